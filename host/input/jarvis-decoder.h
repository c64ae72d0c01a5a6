#pragma once

#include <jarvis/jarvis.h>

G_BEGIN_DECLS

/* Input formats of jarvis-host. AUTO decides on the first bytes. */
typedef enum
{
  JARVIS_INPUT_FORMAT_AUTO,
  JARVIS_INPUT_FORMAT_EVENTS,
  JARVIS_INPUT_FORMAT_OPENAI,
  JARVIS_INPUT_FORMAT_ANTHROPIC,
  JARVIS_INPUT_FORMAT_OLLAMA,
} JarvisInputFormat;

#define JARVIS_INPUT_ERROR (jarvis_input_error_quark ())

typedef enum
{
  JARVIS_INPUT_ERROR_MALFORMED,      /* not valid JSON, SSE or NDJSON */
  JARVIS_INPUT_ERROR_MISSING_FIELD,  /* a required key such as `type` */
  JARVIS_INPUT_ERROR_INVALID_VALUE,  /* a key with the wrong type or value */
  JARVIS_INPUT_ERROR_LINE_TOO_LONG,  /* over the decoder's line limit */
  JARVIS_INPUT_ERROR_TRUNCATED,      /* input ended inside a stream */
} JarvisInputError;

GQuark jarvis_input_error_quark (void);

/* Called once per decoded event, in input order. @event is unsealed and
 * owned by the callee (transfer full). */
typedef void (*JarvisDecoderEventFunc) (JarvisEvent *event,
                                        gpointer     user_data);

/* Called for each bad line or event. @line is the 1-based line number in
 * the source where the bad record starts. The decoder skips the record and
 * goes on. */
typedef void (*JarvisDecoderErrorFunc) (const char   *source_name,
                                        guint64       line,
                                        const GError *error,
                                        gpointer      user_data);

typedef struct _JarvisDecoder JarvisDecoder;

JarvisDecoder *jarvis_decoder_new (JarvisInputFormat       format,
                                   const char             *source_name,
                                   JarvisDecoderEventFunc  event_func,
                                   JarvisDecoderErrorFunc  error_func,
                                   gpointer                user_data);

void jarvis_decoder_free (JarvisDecoder *decoder);

/* Request id for provider streams that carry none of their own; the
 * default is the base name of @source_name. */
void jarvis_decoder_set_request_id (JarvisDecoder *decoder,
                                    const char    *request_id);

/* Session put on every event that names none; NULL keeps the default. */
void jarvis_decoder_set_session_id (JarvisDecoder *decoder,
                                    const char    *session_id);

/* Sets the maximum length of a line or SSE event, in bytes. Longer ones
 * are input errors and are never buffered whole. */
void jarvis_decoder_set_max_line_length (JarvisDecoder *decoder,
                                         gsize          max_length);

/* Turns the `events` fast path on (default) or off; both give the same
 * result, and tests turn it off to compare them. */
void jarvis_decoder_set_events_fast_path (JarvisDecoder *decoder,
                                          gboolean       enabled);

/* Feeds the next bytes; any split of the input gives the same events. */
void jarvis_decoder_feed (JarvisDecoder *decoder,
                          const char    *data,
                          gsize          length);

/* Ends the input: dispatches a last unterminated record, and closes a
 * provider stream that never ended. */
void jarvis_decoder_finish (JarvisDecoder *decoder);

/* The format in use: the one given, or the detected one once AUTO has seen
 * enough bytes (AUTO until then). */
JarvisInputFormat jarvis_decoder_get_format (JarvisDecoder *decoder);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (JarvisDecoder, jarvis_decoder_free)

const char *jarvis_input_format_to_string (JarvisInputFormat format);

gboolean jarvis_input_format_from_string (const char        *name,
                                          JarvisInputFormat *format);

G_END_DECLS
