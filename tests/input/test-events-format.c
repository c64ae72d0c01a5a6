#include "config.h"

#include <string.h>

#include "input-test-util.h"

static InputResult *
decode_events (const char *input)
{
  return input_decode (JARVIS_INPUT_FORMAT_EVENTS, "in.jsonl", input, strlen (input), 0);
}

static void
test_fields (void)
{
  g_autoptr(InputResult) result = decode_events (
    "{\"type\":\"agent.stream.start\",\"request_id\":\"r1\",\"session_id\":\"s\",\"trace_id\":\"t\"}\n"
    "{\"type\":\"agent.stream.delta\",\"request_id\":\"r1\",\"text\":\"caf\\u00e9 \\ud83d\\ude00\",\"choice\":2}\n"
    "{\"type\":\"agent.stream.end\",\"request_id\":\"r1\"}\n");
  JarvisEvent *start;
  JarvisEvent *delta;
  JarvisEvent *end;
  gsize length = 0;

  g_assert_cmpuint (result->errors, ==, 0);
  g_assert_cmpuint (result->events->len, ==, 3);

  start = g_ptr_array_index (result->events, 0);
  g_assert_cmpstr (jarvis_event_get_event_type (start), ==, JARVIS_EVENT_STREAM_START);
  g_assert_cmpstr (jarvis_event_get_request_id (start), ==, "r1");
  g_assert_cmpstr (jarvis_event_get_session_id (start), ==, "s");
  g_assert_cmpstr (jarvis_event_get_trace_id (start), ==, "t");
  g_assert_null (jarvis_event_get_payload (start));

  delta = g_ptr_array_index (result->events, 1);
  g_assert_cmpstr (jarvis_event_get_text (delta, &length), ==, "caf\xC3\xA9 \xF0\x9F\x98\x80");
  g_assert_cmpuint (length, ==, 10);
  g_assert_cmpuint (jarvis_event_get_choice (delta), ==, 2);
  g_assert_cmpstr (jarvis_event_get_session_id (delta), ==, JARVIS_SESSION_DEFAULT);

  end = g_ptr_array_index (result->events, 2);
  g_assert_cmpstr (jarvis_event_get_event_type (end), ==, JARVIS_EVENT_STREAM_END);
  g_assert_null (jarvis_event_get_text (end, NULL));
}

static void
test_payload_and_unknown_keys (void)
{
  g_autoptr(InputResult) result = decode_events (
    "{\"type\":\"custom.thing\",\"request_id\":\"r\",\"payload\":{\"n\":1,\"s\":\"x\"},\"extra\":true}\n");
  JarvisEvent *event;
  GVariant *payload;
  gint64 number = 0;
  const char *text = NULL;
  gboolean extra = FALSE;

  g_assert_cmpuint (result->errors, ==, 0);
  g_assert_cmpuint (result->events->len, ==, 1);

  event = g_ptr_array_index (result->events, 0);
  g_assert_cmpstr (jarvis_event_get_event_type (event), ==, "custom.thing");

  payload = jarvis_event_get_payload (event);
  g_assert_nonnull (payload);
  g_assert_true (g_variant_is_of_type (payload, G_VARIANT_TYPE_VARDICT));
  g_assert_true (g_variant_lookup (payload, "n", "x", &number));
  g_assert_cmpint (number, ==, 1);
  g_assert_true (g_variant_lookup (payload, "s", "&s", &text));
  g_assert_cmpstr (text, ==, "x");
  g_assert_true (g_variant_lookup (payload, "extra", "b", &extra));
  g_assert_true (extra);
  g_assert_cmpuint (g_variant_n_children (payload), ==, 3);
}

typedef struct
{
  const char *line;
  JarvisInputError code;
  const char *message_part;
} BadLine;

static void
test_bad_lines (void)
{
  static const BadLine bad_lines[] = {
    { "{\"request_id\":\"r\"}", JARVIS_INPUT_ERROR_MISSING_FIELD, "`type`" },
    { "{\"type\":\"x\"}", JARVIS_INPUT_ERROR_MISSING_FIELD, "`request_id`" },
    { "{\"type\":1,\"request_id\":\"r\"}", JARVIS_INPUT_ERROR_INVALID_VALUE, "`type`" },
    { "{\"type\":\"\",\"request_id\":\"r\"}", JARVIS_INPUT_ERROR_INVALID_VALUE, "`type`" },
    { "{\"type\":\"x\",\"request_id\":[]}", JARVIS_INPUT_ERROR_INVALID_VALUE, "`request_id`" },
    { "{\"type\":\"x\",\"request_id\":\"r\",\"text\":5}", JARVIS_INPUT_ERROR_INVALID_VALUE, "`text`" },
    { "{\"type\":\"agent.stream.flush\",\"request_id\":\"r\",\"text\":\"fake\"}",
      JARVIS_INPUT_ERROR_INVALID_VALUE, "type agent.stream.flush is emitted only by the bus, so the line was skipped" },
    { "{\"type\":\"agent.stream.complete\",\"request_id\":\"r\"}",
      JARVIS_INPUT_ERROR_INVALID_VALUE, "type agent.stream.complete is emitted only by the bus, so the line was skipped" },
    { "{\"type\":\"x\",\"request_id\":\"r\",\"session_id\":{}}", JARVIS_INPUT_ERROR_INVALID_VALUE, "`session_id`" },
    { "{\"type\":\"x\",\"request_id\":\"r\",\"payload\":[1]}", JARVIS_INPUT_ERROR_INVALID_VALUE, "`payload`" },
    { "{\"type\":\"x\",\"request_id\":\"r\",\"choice\":-1}", JARVIS_INPUT_ERROR_INVALID_VALUE, "`choice`" },
    { "{\"type\":\"x\",\"request_id\":\"r\",\"choice\":1.5}", JARVIS_INPUT_ERROR_INVALID_VALUE, "`choice`" },
    { "{\"type\":\"x\",", JARVIS_INPUT_ERROR_MALFORMED, "invalid JSON" },
    { "not json", JARVIS_INPUT_ERROR_MALFORMED, "invalid JSON at column 3: unexpected identifier" },
    { "[1,2]", JARVIS_INPUT_ERROR_MALFORMED, "an array" },
    { "\"text\"", JARVIS_INPUT_ERROR_MALFORMED, "expected a JSON object" },
    { "{\"type\":\"x\",\"request_id\":\"\xFF\"}", JARVIS_INPUT_ERROR_MALFORMED, "UTF-8" },
    { "{\"type\":\"x\",\"request_id\":\"r\"}{\"type\":\"y\",\"request_id\":\"r\"}",
      JARVIS_INPUT_ERROR_MALFORMED, "invalid JSON at column 30: unexpected data after the end of the first value" },
    { "{\"type\":\"x\",\"request_id\":\"r\"}  7", JARVIS_INPUT_ERROR_MALFORMED, "column 32: unexpected data" },
    { "0 {\"type\":\"x\",\"request_id\":\"r\"}", JARVIS_INPUT_ERROR_MALFORMED, "column 3: unexpected data" },
    { "\"a\" [1]", JARVIS_INPUT_ERROR_MALFORMED, "column 5: unexpected data" },
    { "1 2", JARVIS_INPUT_ERROR_MALFORMED, "invalid JSON at column 3" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bad_lines); i++)
    {
      g_autofree char *input = g_strdup_printf (
        "{\"type\":\"a\",\"request_id\":\"r\"}\n"
        "\n"
        "%s\n"
        "{\"type\":\"b\",\"request_id\":\"r\"}\n",
        bad_lines[i].line);
      g_autoptr(InputResult) result = decode_events (input);
      g_autofree char *escaped_line = g_strescape (bad_lines[i].line, NULL);

      /* Escaped, because TAP readers reject a line that is not UTF-8. */
      g_test_message ("line: %s", escaped_line);
      g_assert_cmpuint (result->errors, ==, 1);
      g_assert_cmpuint (g_array_index (result->error_lines, guint64, 0), ==, 3);
      g_assert_cmpint (g_array_index (result->error_codes, gint, 0), ==, bad_lines[i].code);
      g_assert_nonnull (strstr (result->log->str, bad_lines[i].message_part));

      /* The lines around the bad one still decode. */
      g_assert_cmpuint (result->events->len, ==, 2);
      g_assert_true (jarvis_event_has_type (g_ptr_array_index (result->events, 1), "b"));
    }
}

/* json-glib hands strings over as C strings, so a NUL escape would cut
 * the text short without a word, and it mangles unpaired surrogates. Each
 * must arrive as U+FFFD with the rest of the string, wherever it sits. */
static void
test_replaced_escapes (void)
{
  g_autoptr(InputResult) result = decode_events (
    "{\"type\":\"agent.stream.delta\",\"request_id\":\"r\\u0000x\",\"text\":\"a\\u0000b \\\\u0000 c\"}\n"
    "{\"type\":\"agent.stream.delta\",\"request_id\":\"r\",\"text\":\"\\ud800\\u0041|\\udc00b|\\ud83d\"}\n"
    "{\"type\":\"agent.stream.delta\",\"request_id\":\"r\",\"text\":\"\\ud83d\\ude00\\ud83d\"}\n");
  JarvisEvent *delta;
  gsize length = 0;

  g_assert_cmpuint (result->errors, ==, 0);
  g_assert_cmpuint (result->events->len, ==, 3);

  delta = g_ptr_array_index (result->events, 0);
  g_assert_cmpstr (jarvis_event_get_request_id (delta), ==, "r\xEF\xBF\xBDx");
  g_assert_cmpstr (jarvis_event_get_text (delta, &length), ==, "a\xEF\xBF\xBD" "b \\u0000 c");
  g_assert_cmpuint (length, ==, strlen ("a\xEF\xBF\xBD" "b \\u0000 c"));

  delta = g_ptr_array_index (result->events, 1);
  g_assert_cmpstr (jarvis_event_get_text (delta, NULL), ==,
                   "\xEF\xBF\xBD" "A|\xEF\xBF\xBD" "b|\xEF\xBF\xBD");

  delta = g_ptr_array_index (result->events, 2);
  g_assert_cmpstr (jarvis_event_get_text (delta, NULL), ==, "\xF0\x9F\x98\x80\xEF\xBF\xBD");
}

static void
test_deep_nesting (void)
{
  GString *input = g_string_new ("{\"type\":\"x\",\"request_id\":\"r\",\"payload\":{\"a\":");
  g_autoptr(InputResult) result = NULL;

  for (guint i = 0; i < 100000; i++)
    g_string_append_c (input, '[');
  g_string_append (input, "\n{\"type\":\"ok\",\"request_id\":\"r\"}\n");

  result = decode_events (input->str);
  g_assert_cmpuint (result->errors, ==, 1);
  g_assert_cmpint (g_array_index (result->error_codes, gint, 0), ==, JARVIS_INPUT_ERROR_MALFORMED);
  g_assert_cmpuint (result->events->len, ==, 1);
  g_string_free (input, TRUE);
}

static void
test_line_too_long (void)
{
  g_autoptr(JarvisDecoder) decoder = NULL;
  g_autoptr(InputResult) result = input_result_new ();
  g_autofree char *long_text = g_strnfill (300, 'x');
  g_autofree char *long_line = g_strdup_printf (
    "{\"type\":\"x\",\"request_id\":\"r\",\"text\":\"%s\"}\n", long_text);
  const char *first = "{\"type\":\"a\",\"request_id\":\"r\"}\n";
  const char *last = "{\"type\":\"b\",\"request_id\":\"r\"}";

  decoder = jarvis_decoder_new (JARVIS_INPUT_FORMAT_EVENTS, "in", input_result_on_event,
                                input_result_on_error, result);
  jarvis_decoder_set_max_line_length (decoder, 256);

  jarvis_decoder_feed (decoder, first, strlen (first));
  for (const char *p = long_line; *p != '\0'; p++)
    jarvis_decoder_feed (decoder, p, 1);
  jarvis_decoder_feed (decoder, last, strlen (last));
  jarvis_decoder_finish (decoder);

  g_assert_cmpuint (result->errors, ==, 1);
  g_assert_cmpint (g_array_index (result->error_codes, gint, 0), ==, JARVIS_INPUT_ERROR_LINE_TOO_LONG);
  g_assert_cmpuint (g_array_index (result->error_lines, guint64, 0), ==, 2);
  g_assert_cmpuint (result->events->len, ==, 2);
}

static void
test_default_session (void)
{
  g_autoptr(JarvisDecoder) decoder = NULL;
  g_autoptr(InputResult) result = input_result_new ();
  const char *input =
    "{\"type\":\"a\",\"request_id\":\"r\"}\r\n"
    "{\"type\":\"b\",\"request_id\":\"r\",\"session_id\":\"own\"}\r\n";

  decoder = jarvis_decoder_new (JARVIS_INPUT_FORMAT_EVENTS, "in", input_result_on_event,
                                input_result_on_error, result);
  jarvis_decoder_set_session_id (decoder, "cli");
  jarvis_decoder_feed (decoder, input, strlen (input));
  jarvis_decoder_finish (decoder);

  g_assert_cmpuint (result->events->len, ==, 2);
  g_assert_cmpstr (jarvis_event_get_session_id (g_ptr_array_index (result->events, 0)), ==, "cli");
  g_assert_cmpstr (jarvis_event_get_session_id (g_ptr_array_index (result->events, 1)), ==, "own");
}

static void
test_no_end_is_not_an_error (void)
{
  g_autoptr(InputResult) result = decode_events (
    "{\"type\":\"agent.stream.start\",\"request_id\":\"r\"}");

  /* The events format has no stream of its own to close. */
  g_assert_cmpuint (result->errors, ==, 0);
  g_assert_cmpuint (result->events->len, ==, 1);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/jarvis/input/events/fields", test_fields);
  g_test_add_func ("/jarvis/input/events/payload-and-unknown-keys", test_payload_and_unknown_keys);
  g_test_add_func ("/jarvis/input/events/bad-lines", test_bad_lines);
  g_test_add_func ("/jarvis/input/events/replaced-escapes", test_replaced_escapes);
  g_test_add_func ("/jarvis/input/events/deep-nesting", test_deep_nesting);
  g_test_add_func ("/jarvis/input/events/line-too-long", test_line_too_long);
  g_test_add_func ("/jarvis/input/events/default-session", test_default_session);
  g_test_add_func ("/jarvis/input/events/no-end-is-not-an-error", test_no_end_is_not_an_error);

  return g_test_run ();
}
