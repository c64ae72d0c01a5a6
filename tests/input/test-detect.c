#include "config.h"

#include <string.h>

#include "input-test-util.h"

typedef struct
{
  const char *input;
  JarvisInputFormat expected;
} DetectCase;

static void
test_formats (void)
{
  static const DetectCase cases[] = {
    { "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\n", JARVIS_INPUT_FORMAT_ANTHROPIC },
    { "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n", JARVIS_INPUT_FORMAT_ANTHROPIC },
    { "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{}}\n", JARVIS_INPUT_FORMAT_ANTHROPIC },
    { "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[]}\n\n", JARVIS_INPUT_FORMAT_OPENAI },
    { ": keep-alive\n\ndata: {\"choices\":[]}\n\n", JARVIS_INPUT_FORMAT_OPENAI },
    { "id: 1\ndata: {\"choices\":[]}\n\n", JARVIS_INPUT_FORMAT_OPENAI },
    { "retry: 5\n\ndata: {\"choices\":[]}\n\n", JARVIS_INPUT_FORMAT_OPENAI },
    { "event: error\ndata: {\"error\":{\"message\":\"x\"}}\n\n", JARVIS_INPUT_FORMAT_OPENAI },
    { "{\"object\":\"chat.completion.chunk\",\"choices\":[]}\n", JARVIS_INPUT_FORMAT_OPENAI },
    { "{\"model\":\"m\",\"response\":\"a\",\"done\":false}\n", JARVIS_INPUT_FORMAT_OLLAMA },
    { "{\"model\":\"m\",\"message\":{\"content\":\"a\"},\"done\":false}\n", JARVIS_INPUT_FORMAT_OLLAMA },
    { "{\"type\":\"agent.stream.start\",\"request_id\":\"r\"}\n", JARVIS_INPUT_FORMAT_EVENTS },
    { "\xEF\xBB\xBF  \n\n \t{\"type\":\"agent.stream.start\",\"request_id\":\"r\"}\n", JARVIS_INPUT_FORMAT_EVENTS },
    { "\r\n\r\ndata: {\"choices\":[]}\r\n\r\n", JARVIS_INPUT_FORMAT_OPENAI },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      gsize length = strlen (cases[i].input);

      /* Whole and byte by byte: detection must not depend on reads. */
      for (gsize read_size = 1; read_size <= length; read_size += length - 1)
        {
          g_autoptr(InputResult) result = input_result_new ();
          g_autoptr(JarvisDecoder) decoder = NULL;

          decoder = jarvis_decoder_new (JARVIS_INPUT_FORMAT_AUTO, "in", input_result_on_event,
                                        input_result_on_error, result);
          g_assert_cmpint (jarvis_decoder_get_format (decoder), ==, JARVIS_INPUT_FORMAT_AUTO);

          for (gsize offset = 0; offset < length; offset += read_size)
            jarvis_decoder_feed (decoder, cases[i].input + offset, MIN (read_size, length - offset));

          g_test_message ("input: %s", cases[i].input);
          g_assert_cmpint (jarvis_decoder_get_format (decoder), ==, cases[i].expected);
          g_assert_cmpuint (result->errors, ==, 0);
          jarvis_decoder_finish (decoder);

          if (read_size == length)
            break;
        }
    }
}

static void
test_undetectable (void)
{
  g_autoptr(InputResult) garbage = NULL;
  g_autoptr(InputResult) unknown_json = NULL;
  const char *garbage_input = "hello world\n{\"type\":\"a\",\"request_id\":\"r\"}\n";
  const char *unknown_input = "{\"foo\":1}\n{\"model\":\"m\",\"response\":\"x\",\"done\":true}\n";

  /* The bad first line is reported; detection goes on with the next. */
  garbage = input_decode (JARVIS_INPUT_FORMAT_AUTO, "in", garbage_input, strlen (garbage_input), 0);
  g_assert_cmpuint (garbage->errors, ==, 1);
  g_assert_cmpuint (g_array_index (garbage->error_lines, guint64, 0), ==, 1);
  g_assert_nonnull (strstr (garbage->log->str, "--format"));
  g_assert_cmpuint (garbage->events->len, ==, 1);

  unknown_json = input_decode (JARVIS_INPUT_FORMAT_AUTO, "in", unknown_input, strlen (unknown_input), 0);
  g_assert_cmpuint (unknown_json->errors, ==, 1);
  g_assert_cmpint (g_array_index (unknown_json->error_codes, gint, 0), ==, JARVIS_INPUT_ERROR_MALFORMED);
  g_assert_cmpuint (input_result_count (unknown_json, JARVIS_EVENT_STREAM_END), ==, 1);
}

static void
test_format_names (void)
{
  JarvisInputFormat format = JARVIS_INPUT_FORMAT_AUTO;
  static const char * const names[] = { "auto", "events", "openai", "anthropic", "ollama" };

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_assert_true (jarvis_input_format_from_string (names[i], &format));
      g_assert_cmpint (format, ==, (JarvisInputFormat) i);
      g_assert_cmpstr (jarvis_input_format_to_string (format), ==, names[i]);
    }

  g_assert_false (jarvis_input_format_from_string ("OpenAI", &format));
  g_assert_false (jarvis_input_format_from_string ("", &format));
}

static void
test_empty_input (void)
{
  g_autoptr(InputResult) empty = input_decode (JARVIS_INPUT_FORMAT_AUTO, "in", "", 0, 0);
  g_autoptr(InputResult) blank = input_decode (JARVIS_INPUT_FORMAT_OPENAI, "in", "\n\n \r\n", 5, 0);

  g_assert_cmpuint (empty->errors, ==, 0);
  g_assert_cmpuint (empty->events->len, ==, 0);
  g_assert_cmpuint (blank->errors, ==, 0);
  g_assert_cmpuint (blank->events->len, ==, 0);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/jarvis/input/detect/formats", test_formats);
  g_test_add_func ("/jarvis/input/detect/undetectable", test_undetectable);
  g_test_add_func ("/jarvis/input/detect/format-names", test_format_names);
  g_test_add_func ("/jarvis/input/detect/empty-input", test_empty_input);

  return g_test_run ();
}
