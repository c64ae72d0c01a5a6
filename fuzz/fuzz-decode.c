#include "config.h"

#include <string.h>

#include "fuzz-decode.h"

/*
 * Shared body of the decoder fuzz targets. One run records every event and
 * error as a line of text and checks the decoder's promises on the way.
 * Events are well formed. A provider request starts once, before anything
 * else, and nothing follows its end. Every error is a JARVIS_INPUT_ERROR
 * with a line number inside the input.
 */

typedef struct
{
  JarvisDecoder *decoder;
  GString *log;
  guint64 max_line;
  gboolean started;
  gboolean ended;
} Run;

static void
check_provider_order (Run         *run,
                      JarvisEvent *event)
{
  gboolean is_start = jarvis_event_has_type (event, JARVIS_EVENT_STREAM_START);

  /* The events format passes any order through; providers may not. An
   * event is only emitted after detection picked a format. */
  g_assert_cmpint (jarvis_decoder_get_format (run->decoder), !=, JARVIS_INPUT_FORMAT_AUTO);
  if (jarvis_decoder_get_format (run->decoder) == JARVIS_INPUT_FORMAT_EVENTS)
    return;

  g_assert_false (run->ended);
  g_assert_true (is_start != run->started);
  run->started = TRUE;

  if (jarvis_event_has_type (event, JARVIS_EVENT_STREAM_END) ||
      jarvis_event_has_type (event, JARVIS_EVENT_STREAM_ERROR))
    run->ended = TRUE;
}

static void
on_event (JarvisEvent *event,
          gpointer     user_data)
{
  Run *run = user_data;
  GVariant *payload = jarvis_event_get_payload (event);
  g_autofree char *payload_text = NULL;
  gsize length = 0;
  const char *text = jarvis_event_get_text (event, &length);

  g_assert_nonnull (jarvis_event_get_event_type (event));
  g_assert_nonnull (jarvis_event_get_request_id (event));
  g_assert_true (text == NULL || text[length] == '\0');
  g_assert_true (payload == NULL || g_variant_is_of_type (payload, G_VARIANT_TYPE_VARDICT));
  check_provider_order (run, event);

  if (payload != NULL)
    payload_text = g_variant_print (payload, TRUE);

  g_string_append_printf (run->log, "%s %s %s %s %u ",
                          jarvis_event_get_event_type (event),
                          jarvis_event_get_request_id (event),
                          jarvis_event_get_session_id (event),
                          jarvis_event_get_trace_id (event) ? jarvis_event_get_trace_id (event) : "-",
                          jarvis_event_get_choice (event));
  if (text != NULL)
    g_string_append_len (run->log, text, length);
  g_string_append_printf (run->log, " %s\n", payload_text != NULL ? payload_text : "-");

  jarvis_event_unref (event);
}

static void
on_error (const char   *source_name,
          guint64       line,
          const GError *error,
          gpointer      user_data)
{
  Run *run = user_data;

  g_assert_true (error->domain == JARVIS_INPUT_ERROR);
  g_assert_cmpuint (line, >=, 1);
  g_assert_cmpuint (line, <=, run->max_line);
  g_assert_nonnull (error->message);

  g_string_append_printf (run->log, "error %" G_GUINT64_FORMAT " %d %s\n",
                          line, error->code, error->message);
}

/**
 * fuzz_decode:
 * @format: the decoder format
 * @data: (array length=size): the input
 * @size: number of bytes in @data
 * @read_size: bytes per feed call, or 0 for all at once
 *
 * Decodes @data with the fuzz line limit and checks each event and error.
 *
 * Returns: (transfer full): the log of events and errors
 */
char *
fuzz_decode (JarvisInputFormat  format,
             const guint8      *data,
             gsize              size,
             gsize              read_size)
{
  return fuzz_decode_full (format, data, size, read_size, TRUE);
}

/**
 * fuzz_decode_full:
 * @format: the decoder format
 * @data: (array length=size): the input
 * @size: number of bytes in @data
 * @read_size: bytes per feed call, or 0 for all at once
 * @events_fast_path: whether the decoder may use the `events` fast path
 *
 * Does what fuzz_decode() does, with the `events` fast path on or off.
 *
 * Returns: (transfer full): the log of events and errors
 */
char *
fuzz_decode_full (JarvisInputFormat  format,
                  const guint8      *data,
                  gsize              size,
                  gsize              read_size,
                  gboolean           events_fast_path)
{
  /* Each byte ends at most one line, and a last line may have no end. */
  Run run = { NULL, g_string_new (NULL), (guint64) size + 1, FALSE, FALSE };
  g_autoptr(JarvisDecoder) decoder = NULL;

  decoder = jarvis_decoder_new (format, "fuzz/input", on_event, on_error, &run);
  run.decoder = decoder;
  jarvis_decoder_set_max_line_length (decoder, FUZZ_MAX_LINE_LENGTH);
  jarvis_decoder_set_events_fast_path (decoder, events_fast_path);

  if (read_size == 0)
    read_size = MAX (size, 1);

  for (gsize offset = 0; offset < size; offset += read_size)
    jarvis_decoder_feed (decoder, (const char *) data + offset, MIN (read_size, size - offset));

  jarvis_decoder_finish (decoder);

  /* A provider request that started always ends, also on cut input. */
  if (jarvis_decoder_get_format (decoder) != JARVIS_INPUT_FORMAT_EVENTS)
    g_assert_true (run.started == run.ended);

  return g_string_free (run.log, FALSE);
}

/**
 * fuzz_check_decoder:
 * @format: the decoder format
 * @data: (array length=size): the input
 * @size: number of bytes in @data
 *
 * Decodes @data whole and in reads of 1 and 7 bytes and asserts that all
 * runs give the same events and errors.
 */
void
fuzz_check_decoder (JarvisInputFormat  format,
                    const guint8      *data,
                    gsize              size)
{
  g_autofree char *whole = fuzz_decode (format, data, size, 0);
  g_autofree char *bytes = fuzz_decode (format, data, size, 1);
  g_autofree char *sevens = fuzz_decode (format, data, size, 7);

  g_assert_cmpstr (bytes, ==, whole);
  g_assert_cmpstr (sevens, ==, whole);
}
