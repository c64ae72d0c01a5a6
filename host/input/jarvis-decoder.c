#include "config.h"

#include <string.h>

#include "jarvis-decoder.h"
#include "jarvis-detect.h"
#include "jarvis-events-format.h"
#include "jarvis-input-limits.h"
#include "jarvis-json.h"
#include "jarvis-line-splitter.h"
#include "jarvis-provider.h"
#include "jarvis-sse.h"

/*
 * The decoder ties the input parts together:
 *
 *   bytes -> line splitter -> SSE parser (SSE framing only)
 *         -> JSON object -> events format or provider mapping -> events
 *
 * The framing is decided on the first line that is not blank: a JSON
 * object means JSON Lines, anything else SSE. The `events` and `ollama`
 * formats are always JSON Lines.
 */

typedef enum
{
  FRAMING_UNKNOWN,
  FRAMING_JSON_LINES,
  FRAMING_SSE,
} Framing;

struct _JarvisDecoder
{
  JarvisDecoderEventFunc event_func;
  JarvisDecoderErrorFunc error_func;    /* nullable */
  gpointer user_data;

  char *source_name;                    /* owned */
  char *session_id;                     /* owned, nullable */
  JarvisInputFormat format;             /* the given or the detected one */
  Framing framing;
  gsize max_line_length;

  JarvisLineSplitter *splitter;         /* owned */
  JarvisSseParser *sse;                 /* owned, SSE framing only */
  JsonParser *json;                     /* owned, reused per record */
  GString *scratch;                     /* owned, reused by the events fast path */
  gboolean events_fast_path;
  JarvisProviderStream *stream;         /* owned */
  gboolean finished;
};

G_DEFINE_QUARK (jarvis-input-error-quark, jarvis_input_error)

static const char *const format_names[] = {
  [JARVIS_INPUT_FORMAT_AUTO] = "auto",
  [JARVIS_INPUT_FORMAT_EVENTS] = "events",
  [JARVIS_INPUT_FORMAT_OPENAI] = "openai",
  [JARVIS_INPUT_FORMAT_ANTHROPIC] = "anthropic",
  [JARVIS_INPUT_FORMAT_OLLAMA] = "ollama",
};

/**
 * jarvis_input_format_to_string:
 * @format: a format
 *
 * Returns: the name used by `--format`, such as "openai"
 */
const char *
jarvis_input_format_to_string (JarvisInputFormat format)
{
  g_return_val_if_fail (format <= JARVIS_INPUT_FORMAT_OLLAMA, NULL);

  return format_names[format];
}

/**
 * jarvis_input_format_from_string:
 * @name: a name used by `--format`
 * @format: (out): the format
 *
 * Returns: %TRUE if @name is a known format
 */
gboolean
jarvis_input_format_from_string (const char        *name,
                                 JarvisInputFormat *format)
{
  g_return_val_if_fail (name != NULL, FALSE);
  g_return_val_if_fail (format != NULL, FALSE);

  for (gsize i = 0; i < G_N_ELEMENTS (format_names); i++)
    {
      if (strcmp (name, format_names[i]) == 0)
        {
          *format = (JarvisInputFormat) i;
          return TRUE;
        }
    }

  return FALSE;
}

static void
report (JarvisDecoder *decoder,
        guint64        line_number,
        const GError  *error)
{
  if (decoder->error_func != NULL)
    decoder->error_func (decoder->source_name, line_number, error, decoder->user_data);
}

static void
report_literal (JarvisDecoder    *decoder,
                guint64           line_number,
                JarvisInputError  code,
                const char       *message)
{
  g_autoptr(GError) error = g_error_new_literal (JARVIS_INPUT_ERROR, code, message);

  report (decoder, line_number, error);
}

static gboolean
is_blank (const char *data,
          gsize       length)
{
  for (gsize i = 0; i < length; i++)
    {
      if (!g_ascii_isspace (data[i]))
        return FALSE;
    }

  return TRUE;
}

/* Whether a record is OpenAI's `[DONE]` marker; whitespace around it is
 * allowed, as around JSON records. */
static gboolean
is_done_marker (const char *data,
                gsize       length)
{
  while (length > 0 && g_ascii_isspace (data[0]))
    {
      data++;
      length--;
    }
  while (length > 0 && g_ascii_isspace (data[length - 1]))
    length--;

  return length == 6 && memcmp (data, "[DONE]", 6) == 0;
}

static void
emit_event (JarvisEvent *event,
            gpointer     user_data)
{
  JarvisDecoder *decoder = user_data;

  decoder->event_func (event, decoder->user_data);
}

static void
map_record (JarvisDecoder *decoder,
            JsonObject    *record,
            const char    *sse_event_type,
            guint64        line_number)
{
  g_autoptr(GError) error = NULL;
  gboolean mapped = FALSE;

  switch (decoder->format)
    {
    case JARVIS_INPUT_FORMAT_EVENTS:
      {
        JarvisEvent *event = jarvis_events_format_parse (record, decoder->session_id, &error);

        mapped = event != NULL;
        if (mapped)
          decoder->event_func (event, decoder->user_data);
      }
      break;

    case JARVIS_INPUT_FORMAT_OPENAI:
      mapped = jarvis_openai_map_chunk (decoder->stream, record, sse_event_type, &error);
      break;

    case JARVIS_INPUT_FORMAT_ANTHROPIC:
      mapped = jarvis_anthropic_map_event (decoder->stream, record, sse_event_type, &error);
      break;

    case JARVIS_INPUT_FORMAT_OLLAMA:
      mapped = jarvis_ollama_map_line (decoder->stream, record, &error);
      break;

    case JARVIS_INPUT_FORMAT_AUTO:
    default:
      g_assert_not_reached ();
    }

  if (!mapped)
    report (decoder, line_number, error);
}

static gboolean
detect_format (JarvisDecoder *decoder,
               JsonObject    *record,
               guint64        line_number)
{
  JarvisInputFormat format = jarvis_detect_json_format (record);

  /* An OpenAI-style stream may fail before its first chunk with a bare
   * error object. */
  if (format == JARVIS_INPUT_FORMAT_AUTO && decoder->framing == FRAMING_SSE &&
      json_object_has_member (record, "error"))
    format = JARVIS_INPUT_FORMAT_OPENAI;

  if (format == JARVIS_INPUT_FORMAT_AUTO)
    {
      report_literal (decoder, line_number, JARVIS_INPUT_ERROR_MALFORMED,
                      "cannot detect the input format from this record; "
                      "pass the format explicitly with --format");
      return FALSE;
    }

  decoder->format = format;
  g_debug ("input_format_detected source=%s format=%s line=%" G_GUINT64_FORMAT,
           decoder->source_name, jarvis_input_format_to_string (format), line_number);
  return TRUE;
}

static void
decode_record (JarvisDecoder *decoder,
               const char    *data,
               gsize          length,
               const char    *sse_event_type,
               guint64        line_number)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) root = NULL;

  if (decoder->format == JARVIS_INPUT_FORMAT_EVENTS && decoder->events_fast_path)
    {
      JarvisEvent *event = jarvis_events_format_read_line (data, length, decoder->session_id,
                                                           decoder->scratch);

      if (event != NULL)
        {
          decoder->event_func (event, decoder->user_data);
          return;
        }
    }

  if (decoder->format == JARVIS_INPUT_FORMAT_AUTO || decoder->format == JARVIS_INPUT_FORMAT_OPENAI)
    {
      if (is_done_marker (data, length))
        {
          decoder->format = JARVIS_INPUT_FORMAT_OPENAI;
          if (!jarvis_openai_map_done (decoder->stream, &error))
            report (decoder, line_number, error);
          return;
        }
    }

  root = jarvis_json_parse_object (decoder->json, data, length, &error);
  if (root == NULL)
    {
      report (decoder, line_number, error);
      return;
    }

  if (decoder->format == JARVIS_INPUT_FORMAT_AUTO &&
      !detect_format (decoder, json_node_get_object (root), line_number))
    return;

  map_record (decoder, json_node_get_object (root), sse_event_type, line_number);
}

static void
on_sse_event (const JarvisSseEvent *event,
              gpointer              user_data)
{
  JarvisDecoder *decoder = user_data;

  /* Like blank lines in JSON Lines, an event with blank data carries no
   * record. */
  if (is_blank (event->data, event->data_length))
    return;

  /* The default type "message" carries no meaning for the mappings. */
  decode_record (decoder, event->data, event->data_length,
                 strcmp (event->event_type, "message") == 0 ? NULL : event->event_type,
                 event->line_number);
}

static void
on_sse_error (guint64       line_number,
              const GError *error,
              gpointer      user_data)
{
  report (user_data, line_number, error);
}

/* Decides the framing on the first line that is not blank. Returns FALSE
 * if the line fits no framing that the format allows. */
static gboolean
choose_framing (JarvisDecoder *decoder,
                const char    *line,
                gsize          length,
                guint64        line_number)
{
  while (length > 0 && g_ascii_isspace (*line))
    {
      line++;
      length--;
    }

  if (decoder->format == JARVIS_INPUT_FORMAT_EVENTS ||
      decoder->format == JARVIS_INPUT_FORMAT_OLLAMA ||
      *line == '{' ||
      (decoder->format != JARVIS_INPUT_FORMAT_ANTHROPIC && is_done_marker (line, length)))
    {
      decoder->framing = FRAMING_JSON_LINES;
      return TRUE;
    }

  if (decoder->format == JARVIS_INPUT_FORMAT_AUTO && !jarvis_detect_sse_line (line, length))
    {
      report_literal (decoder, line_number, JARVIS_INPUT_ERROR_MALFORMED,
                      "cannot detect the input format: the line is neither a JSON object "
                      "nor an SSE field; pass the format explicitly with --format");
      return FALSE;
    }

  decoder->framing = FRAMING_SSE;
  decoder->sse = jarvis_sse_parser_new (on_sse_event, on_sse_error, decoder);
  jarvis_sse_parser_set_max_event_length (decoder->sse, decoder->max_line_length);
  return TRUE;
}

static void
on_line (const char *line,
         gsize       length,
         guint64     line_number,
         gpointer    user_data)
{
  JarvisDecoder *decoder = user_data;

  if (decoder->framing == FRAMING_UNKNOWN)
    {
      if (is_blank (line, length))
        return;

      if (!choose_framing (decoder, line, length, line_number))
        return;
    }

  if (decoder->framing == FRAMING_SSE)
    {
      jarvis_sse_parser_push_line (decoder->sse, line, length, line_number);
      return;
    }

  if (is_blank (line, length))
    return;

  decode_record (decoder, line, length, NULL, line_number);
}

static void
on_line_too_long (guint64  line_number,
                  gpointer user_data)
{
  JarvisDecoder *decoder = user_data;
  g_autoptr(GError) error = NULL;

  if (decoder->framing == FRAMING_SSE)
    {
      jarvis_sse_parser_reject_line (decoder->sse, line_number);
      return;
    }

  error = g_error_new (JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_LINE_TOO_LONG,
                       "line is longer than the limit of %" G_GSIZE_FORMAT
                       " bytes; it was skipped",
                       decoder->max_line_length);
  report (decoder, line_number, error);
}

/**
 * jarvis_decoder_new:
 * @format: the input format, or %JARVIS_INPUT_FORMAT_AUTO to detect it
 * @source_name: the input's name for error reports, such as a path or "-"
 * @event_func: called with each decoded event
 * @error_func: (nullable): called for each bad record
 * @user_data: passed to both callbacks
 *
 * Creates a decoder for one input. Callbacks run from inside
 * jarvis_decoder_feed() and jarvis_decoder_finish(), in input order, and
 * must not free the decoder.
 *
 * Returns: (transfer full): a new decoder
 */
JarvisDecoder *
jarvis_decoder_new (JarvisInputFormat       format,
                    const char             *source_name,
                    JarvisDecoderEventFunc  event_func,
                    JarvisDecoderErrorFunc  error_func,
                    gpointer                user_data)
{
  JarvisDecoder *decoder;
  g_autofree char *base_name = NULL;

  g_return_val_if_fail (format <= JARVIS_INPUT_FORMAT_OLLAMA, NULL);
  g_return_val_if_fail (source_name != NULL && *source_name != '\0', NULL);
  g_return_val_if_fail (event_func != NULL, NULL);

  decoder = g_new0 (JarvisDecoder, 1);
  decoder->event_func = event_func;
  decoder->error_func = error_func;
  decoder->user_data = user_data;
  decoder->source_name = g_strdup (source_name);
  decoder->format = format;
  decoder->max_line_length = JARVIS_INPUT_DEFAULT_MAX_LINE_LENGTH;
  decoder->splitter = jarvis_line_splitter_new (decoder->max_line_length,
                                                on_line, on_line_too_long, decoder);
  decoder->json = json_parser_new_immutable ();
  decoder->scratch = g_string_new (NULL);
  decoder->events_fast_path = TRUE;
  decoder->stream = jarvis_provider_stream_new (emit_event, decoder);

  base_name = g_path_get_basename (source_name);
  jarvis_provider_stream_set_fallback_id (decoder->stream, base_name);

  return decoder;
}

/**
 * jarvis_decoder_free:
 * @decoder: (nullable): a decoder
 *
 * Frees the decoder. Input not yet finished is dropped without events.
 */
void
jarvis_decoder_free (JarvisDecoder *decoder)
{
  if (decoder == NULL)
    return;

  jarvis_line_splitter_free (decoder->splitter);
  jarvis_sse_parser_free (decoder->sse);
  g_clear_object (&decoder->json);
  g_string_free (decoder->scratch, TRUE);
  jarvis_provider_stream_free (decoder->stream);
  g_free (decoder->source_name);
  g_free (decoder->session_id);
  g_free (decoder);
}

/**
 * jarvis_decoder_set_request_id:
 * @decoder: a decoder that has not emitted a provider request yet
 * @request_id: the request id for a provider stream without its own id
 *
 * Overrides the default request id, the base name of the source name.
 * Records of the `events` format name their own request and ignore it.
 */
void
jarvis_decoder_set_request_id (JarvisDecoder *decoder,
                               const char    *request_id)
{
  g_return_if_fail (decoder != NULL);
  g_return_if_fail (request_id != NULL && *request_id != '\0');
  g_return_if_fail (!jarvis_provider_stream_is_open (decoder->stream));

  jarvis_provider_stream_set_fallback_id (decoder->stream, request_id);
}

/**
 * jarvis_decoder_set_session_id:
 * @decoder: a decoder
 * @session_id: (nullable): the session, or %NULL for the default session
 *
 * Sets the session of every event whose record names none. Provider
 * streams never name one.
 */
void
jarvis_decoder_set_session_id (JarvisDecoder *decoder,
                               const char    *session_id)
{
  g_return_if_fail (decoder != NULL);

  g_free (decoder->session_id);
  decoder->session_id = g_strdup (session_id);
  jarvis_provider_stream_set_session_id (decoder->stream, session_id);
}

/**
 * jarvis_decoder_set_max_line_length:
 * @decoder: a decoder
 * @max_length: longest line or SSE event, in bytes
 *
 * Sets the limit over which a line or SSE event is rejected as
 * %JARVIS_INPUT_ERROR_LINE_TOO_LONG. The default is 1 MiB.
 */
void
jarvis_decoder_set_max_line_length (JarvisDecoder *decoder,
                                    gsize          max_length)
{
  g_return_if_fail (decoder != NULL);
  g_return_if_fail (max_length > 0);

  decoder->max_line_length = max_length;
  jarvis_line_splitter_set_max_length (decoder->splitter, max_length);
  if (decoder->sse != NULL)
    jarvis_sse_parser_set_max_event_length (decoder->sse, max_length);
}

/**
 * jarvis_decoder_set_events_fast_path:
 * @decoder: a decoder
 * @enabled: whether to try jarvis_events_format_read_line() first
 *
 * Turns the `events` fast path on (the default) or off. Both paths give the
 * same events and errors, and tests and fuzz targets turn it off to compare
 * them.
 */
void
jarvis_decoder_set_events_fast_path (JarvisDecoder *decoder,
                                     gboolean       enabled)
{
  g_return_if_fail (decoder != NULL);

  decoder->events_fast_path = enabled;
}

/**
 * jarvis_decoder_feed:
 * @decoder: a decoder
 * @data: (array length=length): the next bytes of input
 * @length: number of bytes in @data
 *
 * Decodes the next bytes and calls the callbacks for every record they
 * complete. Any split of the input gives the same events and errors.
 */
void
jarvis_decoder_feed (JarvisDecoder *decoder,
                     const char    *data,
                     gsize          length)
{
  g_return_if_fail (decoder != NULL);
  g_return_if_fail (data != NULL || length == 0);
  g_return_if_fail (!decoder->finished);

  jarvis_line_splitter_feed (decoder->splitter, data, length);
}

static const char *
describe_end_marker (JarvisInputFormat format)
{
  switch (format)
    {
    case JARVIS_INPUT_FORMAT_OPENAI:
      return "`[DONE]` or a finish_reason";
    case JARVIS_INPUT_FORMAT_ANTHROPIC:
      return "a message_stop event";
    case JARVIS_INPUT_FORMAT_OLLAMA:
      return "a line with \"done\": true";
    case JARVIS_INPUT_FORMAT_AUTO:
    case JARVIS_INPUT_FORMAT_EVENTS:
    default:
      return "an end marker";
    }
}

/**
 * jarvis_decoder_finish:
 * @decoder: a decoder
 *
 * Ends the input. A last line without a line end is decoded, and an SSE
 * event without a blank line after it is dispatched. A provider request
 * that is still open gets `agent.stream.end`; unless it had a finish
 * reason (OpenAI), a %JARVIS_INPUT_ERROR_TRUNCATED error is reported first.
 * The decoder takes no more input afterwards.
 */
void
jarvis_decoder_finish (JarvisDecoder *decoder)
{
  g_autoptr(GError) error = NULL;
  guint64 last_line;

  g_return_if_fail (decoder != NULL);
  g_return_if_fail (!decoder->finished);

  decoder->finished = TRUE;

  jarvis_line_splitter_finish (decoder->splitter);
  if (decoder->sse != NULL)
    jarvis_sse_parser_finish (decoder->sse);

  last_line = MAX (jarvis_line_splitter_get_line_number (decoder->splitter), 2) - 1;
  if (!jarvis_provider_stream_check_ended (decoder->stream,
                                           decoder->format == JARVIS_INPUT_FORMAT_OPENAI,
                                           describe_end_marker (decoder->format),
                                           &error))
    report (decoder, last_line, error);

  jarvis_provider_stream_end (decoder->stream);
}

/**
 * jarvis_decoder_get_format:
 * @decoder: a decoder
 *
 * Returns: the format given to jarvis_decoder_new(), or the detected one
 *   once %JARVIS_INPUT_FORMAT_AUTO has seen enough input
 */
JarvisInputFormat
jarvis_decoder_get_format (JarvisDecoder *decoder)
{
  g_return_val_if_fail (decoder != NULL, JARVIS_INPUT_FORMAT_AUTO);

  return decoder->format;
}
