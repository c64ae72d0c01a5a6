#include "config.h"

#include <string.h>

#include "input-test-util.h"

/* Decodes @input whole and in reads of 1, 7 and 4096 bytes, asserts that
 * all runs agree, and returns the whole run. */
static InputResult *
decode_checked (JarvisInputFormat  format,
                const char        *source_name,
                const char        *input,
                gsize              length)
{
  static const gsize read_sizes[] = { 1, 7, 4096 };
  InputResult *whole = input_decode (format, source_name, input, length, 0);

  for (gsize i = 0; i < G_N_ELEMENTS (read_sizes); i++)
    {
      g_autoptr(InputResult) split = input_decode (format, source_name, input, length,
                                                   read_sizes[i]);

      g_test_message ("reads of %" G_GSIZE_FORMAT " bytes", read_sizes[i]);
      g_assert_cmpstr (split->log->str, ==, whole->log->str);
    }

  return whole;
}

static InputResult *
decode (JarvisInputFormat  format,
        const char        *input)
{
  return decode_checked (format, "recordings/stream.sse", input, strlen (input));
}

static const char *
event_type_at (InputResult *result,
               guint        index)
{
  g_assert_cmpuint (index, <, result->events->len);

  return jarvis_event_get_event_type (g_ptr_array_index (result->events, index));
}

static GVariant *
payload_at (InputResult *result,
            guint        index)
{
  g_assert_cmpuint (index, <, result->events->len);

  return jarvis_event_get_payload (g_ptr_array_index (result->events, index));
}

static void
assert_types (InputResult        *result,
              const char * const *expected)
{
  guint count = g_strv_length ((char **) expected);

  for (guint i = 0; i < MIN (count, result->events->len); i++)
    g_assert_cmpstr (event_type_at (result, i), ==, expected[i]);

  g_assert_cmpuint (result->events->len, ==, count);
}

static void
assert_all_requests (InputResult *result,
                     const char  *request_id)
{
  for (guint i = 0; i < result->events->len; i++)
    g_assert_cmpstr (jarvis_event_get_request_id (g_ptr_array_index (result->events, i)), ==,
                     request_id);
}

#define OPENAI_CHUNK(delta, finish) \
  "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"model\":\"m\"," \
  "\"choices\":[{\"index\":0,\"delta\":" delta ",\"finish_reason\":" finish "}]}\n\n"

static void
test_openai_basic (void)
{
  g_autoptr(InputResult) result = decode (JARVIS_INPUT_FORMAT_OPENAI,
    OPENAI_CHUNK ("{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}", "null")
    OPENAI_CHUNK ("{\"content\":\"Hel\"}", "null")
    OPENAI_CHUNK ("{\"content\":\"lo \\u00b0C \\ud83d\\ude00\"}", "null")
    OPENAI_CHUNK ("{}", "\"stop\"")
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[],"
    "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n"
    "data: [DONE]\n\n");
  static const char * const types[] = {
    JARVIS_EVENT_STREAM_START, JARVIS_EVENT_STREAM_DELTA, JARVIS_EVENT_STREAM_DELTA,
    JARVIS_EVENT_STREAM_USAGE, JARVIS_EVENT_STREAM_END, NULL,
  };
  g_autofree char *text = NULL;
  const char *finish_reason = NULL;
  const char *model = NULL;
  gint64 tokens = 0;

  g_assert_cmpuint (result->errors, ==, 0);
  assert_types (result, types);
  assert_all_requests (result, "chatcmpl-1");

  text = input_result_dup_text (result, JARVIS_EVENT_STREAM_DELTA, 0);
  g_assert_cmpstr (text, ==, "Hello \xC2\xB0" "C \xF0\x9F\x98\x80");

  g_assert_true (g_variant_lookup (payload_at (result, 0), "model", "&s", &model));
  g_assert_cmpstr (model, ==, "m");
  g_assert_true (g_variant_lookup (payload_at (result, 3), "completion_tokens", "x", &tokens));
  g_assert_cmpint (tokens, ==, 4);
  g_assert_true (g_variant_lookup (payload_at (result, 4), "finish_reason", "&s", &finish_reason));
  g_assert_cmpstr (finish_reason, ==, "stop");
}

static void
test_openai_choices (void)
{
  g_autoptr(InputResult) result = decode (JARVIS_INPUT_FORMAT_OPENAI,
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}},"
    "{\"index\":1,\"delta\":{\"content\":\"x\"}}]}\n\n"
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
    "data: {\"id\":\"c\",\"choices\":[{\"index\":1,\"delta\":{\"content\":\"y\"}}]}\n\n"
    "data: {\"id\":\"c\",\"choices\":[{\"index\":2,\"delta\":{\"content\":\"z\"},\"finish_reason\":\"length\"}]}\n\n"
    "data: {\"id\":\"c\",\"choices\":[{\"index\":1,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
    "data: [DONE]\n\n");
  g_autofree char *text0 = input_result_dup_text (result, JARVIS_EVENT_STREAM_DELTA, 0);
  g_autofree char *text1 = input_result_dup_text (result, JARVIS_EVENT_STREAM_DELTA, 1);
  g_autofree char *text2 = input_result_dup_text (result, JARVIS_EVENT_STREAM_DELTA, 2);

  g_assert_cmpuint (result->errors, ==, 0);
  g_assert_cmpstr (text0, ==, "a");
  g_assert_cmpstr (text1, ==, "xy");
  g_assert_cmpstr (text2, ==, "z");

  /* The first choice's finish reason does not end the request. */
  g_assert_cmpuint (input_result_count (result, JARVIS_EVENT_STREAM_END), ==, 1);
  g_assert_cmpstr (event_type_at (result, result->events->len - 1), ==, JARVIS_EVENT_STREAM_END);
}

static void
test_openai_side_channels (void)
{
  g_autoptr(InputResult) result = decode (JARVIS_INPUT_FORMAT_OPENAI,
    OPENAI_CHUNK ("{\"role\":\"assistant\",\"content\":null}", "null")
    OPENAI_CHUNK ("{\"reasoning\":\"think \"}", "null")
    OPENAI_CHUNK ("{\"reasoning_content\":\"more\",\"content\":\"<think>kept</think>\"}", "null")
    OPENAI_CHUNK ("{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}},"
                  "{\"index\":1,\"id\":\"call_2\",\"function\":{\"name\":\"g\",\"arguments\":\"{\\\"a\\\"\"}}]}", "null")
    OPENAI_CHUNK ("{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\":1}\"}}]}", "\"tool_calls\"")
    "data: [DONE]\n");
  g_autofree char *answer = input_result_dup_text (result, JARVIS_EVENT_STREAM_DELTA, 0);
  g_autofree char *reasoning = input_result_dup_text (result, JARVIS_EVENT_STREAM_REASONING, 0);
  g_autofree char *arguments = input_result_dup_text (result, JARVIS_EVENT_STREAM_TOOL_CALL, 0);
  GVariant *call = NULL;
  const char *id = NULL;

  g_assert_cmpuint (result->errors, ==, 0);
  g_assert_cmpstr (answer, ==, "<think>kept</think>");
  g_assert_cmpstr (reasoning, ==, "think more");
  g_assert_cmpstr (arguments, ==, "{\"a\":1}");
  g_assert_cmpuint (input_result_count (result, JARVIS_EVENT_STREAM_TOOL_CALL), ==, 3);

  for (guint i = 0; i < result->events->len && call == NULL; i++)
    {
      if (g_str_equal (event_type_at (result, i), JARVIS_EVENT_STREAM_TOOL_CALL))
        call = payload_at (result, i);
    }
  g_assert_nonnull (call);
  g_assert_true (g_variant_lookup (call, "id", "&s", &id));
  g_assert_cmpstr (id, ==, "call_1");
}

static void
assert_error_payload (InputResult *result,
                      guint        index,
                      const char  *message,
                      gint         status,
                      const char  *code)
{
  GVariant *payload = payload_at (result, index);
  const char *value = NULL;
  gint32 status_value = 0;

  g_assert_cmpstr (event_type_at (result, index), ==, JARVIS_EVENT_STREAM_ERROR);
  g_assert_true (g_variant_lookup (payload, "message", "&s", &value));
  g_assert_cmpstr (value, ==, message);

  if (status != 0)
    {
      g_assert_true (g_variant_lookup (payload, "status", "i", &status_value));
      g_assert_cmpint (status_value, ==, status);
    }

  if (code != NULL)
    {
      g_assert_true (g_variant_lookup (payload, "code", "&s", &value));
      g_assert_cmpstr (value, ==, code);
    }
}

static void
test_openai_inband_error (void)
{
  g_autoptr(InputResult) result = decode (JARVIS_INPUT_FORMAT_OPENAI,
    ": PROCESSING\n\n: PROCESSING\n\n"
    OPENAI_CHUNK ("{\"content\":\"part\"}", "\"length\"")
    "data: {\"id\":\"chatcmpl-1\",\"error\":{\"code\":400,\"message\":\"Token limit reached\"},"
    "\"choices\":[],\"usage\":{\"total_tokens\":5}}\n\n"
    "data: [DONE]\n\n");
  static const char * const types[] = {
    JARVIS_EVENT_STREAM_START, JARVIS_EVENT_STREAM_DELTA, JARVIS_EVENT_STREAM_USAGE,
    JARVIS_EVENT_STREAM_ERROR, NULL,
  };

  g_assert_cmpuint (result->errors, ==, 0);
  assert_types (result, types);
  assert_error_payload (result, 3, "Token limit reached", 400, "400");
}

static void
test_openai_error_event (void)
{
  g_autoptr(InputResult) result = decode (JARVIS_INPUT_FORMAT_OPENAI,
    OPENAI_CHUNK ("{\"reasoning\":\"r\"}", "null")
    "event: error\n"
    "data: {\"error\":{\"message\":\"validation failed\",\"type\":\"invalid_request_error\","
    "\"code\":\"tool_use_failed\",\"status_code\":400}}\n\n");
  static const char * const types[] = {
    JARVIS_EVENT_STREAM_START, JARVIS_EVENT_STREAM_REASONING, JARVIS_EVENT_STREAM_ERROR, NULL,
  };

  /* The error completes the request, so the missing [DONE] is fine. */
  g_assert_cmpuint (result->errors, ==, 0);
  assert_types (result, types);
  assert_error_payload (result, 2, "validation failed", 400, "tool_use_failed");
}

static void
test_openai_truncated (void)
{
  g_autoptr(InputResult) truncated = decode (JARVIS_INPUT_FORMAT_OPENAI,
    OPENAI_CHUNK ("{\"content\":\"cut\"}", "null")
    "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" off");
  g_autoptr(InputResult) finished = decode (JARVIS_INPUT_FORMAT_OPENAI,
    OPENAI_CHUNK ("{\"content\":\"whole\"}", "\"stop\""));

  /* The half chunk at the end is malformed, then the stream is cut. */
  g_assert_cmpuint (truncated->errors, ==, 2);
  g_assert_cmpint (g_array_index (truncated->error_codes, gint, 0), ==, JARVIS_INPUT_ERROR_MALFORMED);
  g_assert_cmpuint (g_array_index (truncated->error_lines, guint64, 0), ==, 3);
  g_assert_cmpint (g_array_index (truncated->error_codes, gint, 1), ==, JARVIS_INPUT_ERROR_TRUNCATED);
  g_assert_cmpuint (input_result_count (truncated, JARVIS_EVENT_STREAM_END), ==, 1);
  g_assert_cmpstr (event_type_at (truncated, truncated->events->len - 1), ==, JARVIS_EVENT_STREAM_END);

  /* A finish reason without [DONE] ends the request without an error. */
  g_assert_cmpuint (finished->errors, ==, 0);
  g_assert_cmpuint (input_result_count (finished, JARVIS_EVENT_STREAM_END), ==, 1);
}

static void
test_openai_json_lines (void)
{
  g_autoptr(InputResult) result = decode (JARVIS_INPUT_FORMAT_AUTO,
    "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n"
    "\n"
    "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"},\"finish_reason\":\"stop\"}]}\n"
    "[DONE]\n");
  g_autofree char *text = input_result_dup_text (result, JARVIS_EVENT_STREAM_DELTA, 0);

  g_assert_cmpuint (result->errors, ==, 0);
  g_assert_cmpstr (text, ==, "ab");
  g_assert_cmpuint (input_result_count (result, JARVIS_EVENT_STREAM_END), ==, 1);
}

static void
test_openai_bad_chunks (void)
{
  g_autoptr(InputResult) result = decode (JARVIS_INPUT_FORMAT_OPENAI,
    OPENAI_CHUNK ("{\"content\":\"a\"}", "null")
    "data: {\"id\":\"c\",\"choices\":{}}\n\n"
    "data: {\"id\":\"c\",\"choices\":[{\"index\":-1,\"delta\":{}}]}\n\n"
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":\"x\"}]}\n\n"
    "data: {\"something\":\"else\"}\n\n"
    "data: not json\n\n"
    OPENAI_CHUNK ("{\"content\":\"b\"}", "\"stop\"")
    "data: [DONE]\n\n"
    OPENAI_CHUNK ("{\"content\":\"late\"}", "null"));
  g_autofree char *text = input_result_dup_text (result, JARVIS_EVENT_STREAM_DELTA, 0);
  static const guint64 lines[] = { 3, 5, 7, 9, 11, 17 };

  g_assert_cmpstr (text, ==, "ab");
  g_assert_cmpuint (result->errors, ==, G_N_ELEMENTS (lines));
  for (guint i = 0; i < G_N_ELEMENTS (lines); i++)
    g_assert_cmpuint (g_array_index (result->error_lines, guint64, i), ==, lines[i]);
  g_assert_cmpint (g_array_index (result->error_codes, gint, 3), ==, JARVIS_INPUT_ERROR_MISSING_FIELD);
  g_assert_cmpint (g_array_index (result->error_codes, gint, 4), ==, JARVIS_INPUT_ERROR_MALFORMED);
  g_assert_cmpuint (input_result_count (result, JARVIS_EVENT_STREAM_END), ==, 1);
}

static void
test_request_ids (void)
{
  const char *input = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":\"stop\"}]}\n\n";
  g_autoptr(InputResult) from_name = decode (JARVIS_INPUT_FORMAT_OPENAI, input);
  g_autoptr(InputResult) from_option = input_result_new ();
  g_autoptr(JarvisDecoder) decoder = NULL;

  assert_all_requests (from_name, "stream.sse");

  decoder = jarvis_decoder_new (JARVIS_INPUT_FORMAT_OPENAI, "-", input_result_on_event,
                                input_result_on_error, from_option);
  jarvis_decoder_set_request_id (decoder, "cli-id");
  jarvis_decoder_set_session_id (decoder, "cli-session");
  jarvis_decoder_feed (decoder, input, strlen (input));
  jarvis_decoder_finish (decoder);

  g_assert_cmpuint (from_option->events->len, ==, 3);
  assert_all_requests (from_option, "cli-id");
  g_assert_cmpstr (jarvis_event_get_session_id (g_ptr_array_index (from_option->events, 1)), ==,
                   "cli-session");
}

static void
test_padded_json (void)
{
  g_autoptr(InputResult) result = decode (JARVIS_INPUT_FORMAT_ANTHROPIC,
    "event: message_start\r\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"c\"}}     \r\n\r\n"
    "event: content_block_delta\r\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"ok\"}}   \r\n\r\n"
    "data: {\"type\":\"message_stop\"}  \r\n\r\n");
  g_autofree char *text = input_result_dup_text (result, JARVIS_EVENT_STREAM_DELTA, 0);

  g_assert_cmpuint (result->errors, ==, 0);
  g_assert_cmpstr (text, ==, "ok");
  assert_all_requests (result, "msg_1");
}

#define ANTHROPIC_EVENT(type, data) "event: " type "\ndata: " data "\n\n"

static void
test_anthropic_flow (void)
{
  g_autoptr(InputResult) result = decode (JARVIS_INPUT_FORMAT_ANTHROPIC,
    ANTHROPIC_EVENT ("message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_9\",\"model\":\"claude\",\"usage\":{\"input_tokens\":5}}}")
    ANTHROPIC_EVENT ("content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}")
    ANTHROPIC_EVENT ("ping", "{\"type\": \"ping\"}")
    ANTHROPIC_EVENT ("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hmm\"}}")
    ANTHROPIC_EVENT ("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"\"}}")
    ANTHROPIC_EVENT ("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"c2ln\"}}")
    ANTHROPIC_EVENT ("content_block_start", "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}")
    ANTHROPIC_EVENT ("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"1\xEF\xB8\x8F\"}}")
    ANTHROPIC_EVENT ("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"\\u20e3 done\"}}")
    ANTHROPIC_EVENT ("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":1}")
    ANTHROPIC_EVENT ("content_block_start", "{\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"w\",\"input\":{}}}")
    ANTHROPIC_EVENT ("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}")
    ANTHROPIC_EVENT ("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"loc\"}}")
    ANTHROPIC_EVENT ("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\": 1}\"}}")
    ANTHROPIC_EVENT ("message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":9}}")
    ANTHROPIC_EVENT ("future_event", "{\"type\":\"future_event\"}")
    "event: message_stop\ndata: {\"type\":\"message_stop\"}");
  static const char * const types[] = {
    JARVIS_EVENT_STREAM_START, JARVIS_EVENT_STREAM_USAGE, JARVIS_EVENT_STREAM_REASONING,
    JARVIS_EVENT_STREAM_DELTA, JARVIS_EVENT_STREAM_DELTA, JARVIS_EVENT_STREAM_TOOL_CALL,
    JARVIS_EVENT_STREAM_TOOL_CALL, JARVIS_EVENT_STREAM_TOOL_CALL, JARVIS_EVENT_STREAM_USAGE,
    JARVIS_EVENT_STREAM_END, NULL,
  };
  g_autofree char *text = input_result_dup_text (result, JARVIS_EVENT_STREAM_DELTA, 0);
  g_autofree char *arguments = input_result_dup_text (result, JARVIS_EVENT_STREAM_TOOL_CALL, 0);
  const char *reason = NULL;

  g_assert_cmpuint (result->errors, ==, 0);
  assert_types (result, types);
  assert_all_requests (result, "msg_9");
  g_assert_cmpstr (text, ==, "1\xEF\xB8\x8F\xE2\x83\xA3 done");
  g_assert_cmpstr (arguments, ==, "{\"loc\": 1}");
  g_assert_true (g_variant_lookup (payload_at (result, 9), "finish_reason", "&s", &reason));
  g_assert_cmpstr (reason, ==, "tool_use");
}

static void
test_anthropic_error_and_truncation (void)
{
  g_autoptr(InputResult) failed = decode (JARVIS_INPUT_FORMAT_ANTHROPIC,
    ANTHROPIC_EVENT ("message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_2\"}}")
    ANTHROPIC_EVENT ("error", "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}"));
  g_autoptr(InputResult) truncated = decode (JARVIS_INPUT_FORMAT_ANTHROPIC,
    ANTHROPIC_EVENT ("message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_3\"}}")
    ANTHROPIC_EVENT ("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"half\"}}"));
  const char *type = NULL;

  g_assert_cmpuint (failed->errors, ==, 0);
  g_assert_cmpuint (failed->events->len, ==, 2);
  assert_error_payload (failed, 1, "Overloaded", 0, NULL);
  g_assert_true (g_variant_lookup (payload_at (failed, 1), "type", "&s", &type));
  g_assert_cmpstr (type, ==, "overloaded_error");

  g_assert_cmpuint (truncated->errors, ==, 1);
  g_assert_cmpint (g_array_index (truncated->error_codes, gint, 0), ==, JARVIS_INPUT_ERROR_TRUNCATED);
  g_assert_nonnull (strstr (truncated->log->str, "message_stop"));
  g_assert_cmpstr (event_type_at (truncated, truncated->events->len - 1), ==, JARVIS_EVENT_STREAM_END);
}

static void
test_ollama (void)
{
  g_autoptr(InputResult) generate = decode (JARVIS_INPUT_FORMAT_AUTO,
    "{\"model\":\"m\",\"response\":\"A\",\"done\":false}\n"
    "{\"model\":\"m\",\"thinking\":\"t\",\"response\":\"\",\"done\":false}\n"
    "{\"model\":\"m\",\"response\":\" rabbit\",\"done\":false}\n"
    "{\"model\":\"m\",\"response\":\"\",\"done\":true,\"done_reason\":\"stop\",\"eval_count\":3,\"context\":[1,2]}\n");
  g_autoptr(InputResult) chat = decode (JARVIS_INPUT_FORMAT_OLLAMA,
    "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"done\":false}\n"
    "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":{}}}]},\"done\":false}\n"
    "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done_reason\":\"stop\",\"done\":true}");
  g_autoptr(InputResult) failed = decode (JARVIS_INPUT_FORMAT_OLLAMA,
    "{\"model\":\"m\",\"response\":\"x\",\"done\":false}\n{\"error\":\"model not found\"}\n");
  g_autoptr(InputResult) truncated = decode (JARVIS_INPUT_FORMAT_OLLAMA,
    "{\"model\":\"m\",\"response\":\"x\",\"done\":false}\n{\"model\":\"m\",\"done\":\"yes\"}\n");
  static const char * const generate_types[] = {
    JARVIS_EVENT_STREAM_START, JARVIS_EVENT_STREAM_DELTA, JARVIS_EVENT_STREAM_REASONING,
    JARVIS_EVENT_STREAM_DELTA, JARVIS_EVENT_STREAM_USAGE, JARVIS_EVENT_STREAM_END, NULL,
  };
  static const char * const chat_types[] = {
    JARVIS_EVENT_STREAM_START, JARVIS_EVENT_STREAM_DELTA, JARVIS_EVENT_STREAM_TOOL_CALL,
    JARVIS_EVENT_STREAM_END, NULL,
  };
  g_autofree char *text = input_result_dup_text (generate, JARVIS_EVENT_STREAM_DELTA, 0);
  gint64 eval_count = 0;

  g_assert_cmpuint (generate->errors, ==, 0);
  assert_types (generate, generate_types);
  assert_all_requests (generate, "stream.sse");
  g_assert_cmpstr (text, ==, "A rabbit");
  g_assert_true (g_variant_lookup (payload_at (generate, 4), "eval_count", "x", &eval_count));
  g_assert_cmpint (eval_count, ==, 3);
  g_assert_false (g_variant_lookup (payload_at (generate, 4), "context", "*", NULL));

  g_assert_cmpuint (chat->errors, ==, 0);
  assert_types (chat, chat_types);

  g_assert_cmpuint (failed->errors, ==, 0);
  assert_error_payload (failed, 2, "model not found", 0, NULL);

  g_assert_cmpuint (truncated->errors, ==, 2);
  g_assert_cmpint (g_array_index (truncated->error_codes, gint, 0), ==, JARVIS_INPUT_ERROR_INVALID_VALUE);
  g_assert_cmpint (g_array_index (truncated->error_codes, gint, 1), ==, JARVIS_INPUT_ERROR_TRUNCATED);
}

typedef struct
{
  const char *file;
  JarvisInputFormat format;
  const char *request_id;       /* NULL: the file name, for streams without an id */
  const char *last_type;
  const char *text_part;        /* expected inside the delta text of choice 0 */
} CorpusCase;

static const CorpusCase corpus_cases[] = {
  { "anthropic-basic-ping-no-final-newline.sse", JARVIS_INPUT_FORMAT_ANTHROPIC,
    "msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK", JARVIS_EVENT_STREAM_END, "Hello there!" },
  { "anthropic-split-keycap-emoji-server-tool.sse", JARVIS_INPUT_FORMAT_ANTHROPIC,
    "msg_01Js8aWE7YbmiaUPneGiCskE", JARVIS_EVENT_STREAM_END, "\xEF\xB8\x8F\xE2\x83\xA3" },
  { "anthropic-thinking-padded-json.sse", JARVIS_INPUT_FORMAT_ANTHROPIC,
    "msg_01ALwQ87pTS7hH1PjSdC9wJD", JARVIS_EVENT_STREAM_END, NULL },
  { "anthropic-tool-use-input-json-delta.sse", JARVIS_INPUT_FORMAT_ANTHROPIC,
    "msg_019Q1hrJbZG26Fb9BQhrkHEr", JARVIS_EVENT_STREAM_END, "weather in Paris" },
  { "groq-compound-split-think-tag-unicode-escapes.sse", JARVIS_INPUT_FORMAT_OPENAI,
    "chatcmpl-03ea1ed2-c2dc-4f8d-ba51-54e08ca9287c", JARVIS_EVENT_STREAM_END, NULL },
  { "groq-event-error-midstream-no-done.sse", JARVIS_INPUT_FORMAT_OPENAI,
    "chatcmpl-4f39f3af-3267-4ac1-a0cf-6aa7451877dc", JARVIS_EVENT_STREAM_ERROR, NULL },
  { "ollama-chat-phi3-tail-no-final-newline.ndjson", JARVIS_INPUT_FORMAT_OLLAMA,
    NULL, JARVIS_EVENT_STREAM_END, " these times of day." },
  { "ollama-generate-dolphin3-full.ndjson", JARVIS_INPUT_FORMAT_OLLAMA,
    NULL, JARVIS_EVENT_STREAM_END, "A rabbit is a small mamm" },
  { "openai-chat-gpt41nano-300tok.jsonl", JARVIS_INPUT_FORMAT_OPENAI,
    "chatcmpl-D8Z5oo6uDh67AD85p73ksdT1KxhE0", JARVIS_EVENT_STREAM_END, "**Holiday" },
  { "openai-chat-long-181chunks-usage.sse", JARVIS_INPUT_FORMAT_OPENAI,
    "chatcmpl-ABfwCjPMi0ubw56UyMIIeNfJzyogq", JARVIS_EVENT_STREAM_END, "\xC2\xB0" "C" },
  { "openai-chat-n3-interleaved-choices.sse", JARVIS_INPUT_FORMAT_OPENAI,
    "chatcmpl-ABfw2KKFuVXmEJgVwYfBvejMAdWtq", JARVIS_EVENT_STREAM_END, NULL },
  { "openai-chat-parallel-tool-calls.sse", JARVIS_INPUT_FORMAT_OPENAI,
    "chatcmpl-ABfwAwrNePHUgBBezonVC6MX3zd63", JARVIS_EVENT_STREAM_END, NULL },
  { "openrouter-keepalive-comments-inband-error.sse", JARVIS_INPUT_FORMAT_OPENAI,
    "gen-1762179802-UN8pkJI4AGZvryk0kFnb", JARVIS_EVENT_STREAM_ERROR, NULL },
  { "together-r1-956chunks-emoji.sse", JARVIS_INPUT_FORMAT_OPENAI,
    "oV1nHvx-28Eivz-9c4b16f37c27e605", JARVIS_EVENT_STREAM_END, "\xF0\x9F\x9A\xA8" },
};

static void
test_corpus_file (gconstpointer data)
{
  const CorpusCase *corpus_case = data;
  const char *dir = input_test_corpus_dir ();
  g_autofree char *path = NULL;
  g_autofree char *contents = NULL;
  g_autofree char *text = NULL;
  g_autoptr(InputResult) result = NULL;
  g_autoptr(JarvisDecoder) decoder = NULL;
  g_autoptr(GError) error = NULL;
  InputResult detected = { 0 };
  gsize length = 0;
  const char *request_id;

  if (dir == NULL)
    {
      g_test_skip ("recorded streams not found; set JARVIS_CORPUS_DIR");
      return;
    }

  path = g_build_filename (dir, corpus_case->file, NULL);
  g_file_get_contents (path, &contents, &length, &error);
  g_assert_no_error (error);

  result = decode_checked (JARVIS_INPUT_FORMAT_AUTO, path, contents, length);

  /* Every recording is one well-formed request. */
  g_assert_cmpuint (result->errors, ==, 0);
  g_assert_cmpuint (input_result_count (result, JARVIS_EVENT_STREAM_START), ==, 1);
  g_assert_cmpstr (event_type_at (result, 0), ==, JARVIS_EVENT_STREAM_START);
  g_assert_cmpuint (input_result_count (result, JARVIS_EVENT_STREAM_END) +
                    input_result_count (result, JARVIS_EVENT_STREAM_ERROR), ==, 1);
  g_assert_cmpstr (event_type_at (result, result->events->len - 1), ==, corpus_case->last_type);

  request_id = corpus_case->request_id;
  if (request_id == NULL)
    request_id = corpus_case->file;
  assert_all_requests (result, request_id);

  text = input_result_dup_text (result, JARVIS_EVENT_STREAM_DELTA, 0);
  g_assert_true (g_utf8_validate (text, -1, NULL));
  if (corpus_case->text_part != NULL)
    g_assert_nonnull (strstr (text, corpus_case->text_part));

  /* Detection agrees with the format named by the file. */
  detected.log = g_string_new (NULL);
  detected.events = g_ptr_array_new_with_free_func ((GDestroyNotify) jarvis_event_unref);
  detected.error_lines = g_array_new (FALSE, FALSE, sizeof (guint64));
  detected.error_codes = g_array_new (FALSE, FALSE, sizeof (gint));
  decoder = jarvis_decoder_new (JARVIS_INPUT_FORMAT_AUTO, path, input_result_on_event,
                                input_result_on_error, &detected);
  jarvis_decoder_feed (decoder, contents, length);
  g_assert_cmpint (jarvis_decoder_get_format (decoder), ==, corpus_case->format);
  jarvis_decoder_finish (decoder);
  g_string_free (detected.log, TRUE);
  g_ptr_array_unref (detected.events);
  g_array_unref (detected.error_lines);
  g_array_unref (detected.error_codes);
}

static void
test_corpus_n3_choices (void)
{
  const char *dir = input_test_corpus_dir ();
  g_autofree char *path = NULL;
  g_autofree char *contents = NULL;
  g_autoptr(InputResult) result = NULL;
  gsize length = 0;

  if (dir == NULL)
    {
      g_test_skip ("recorded streams not found; set JARVIS_CORPUS_DIR");
      return;
    }

  path = g_build_filename (dir, "openai-chat-n3-interleaved-choices.sse", NULL);
  g_assert_true (g_file_get_contents (path, &contents, &length, NULL));
  result = input_decode (JARVIS_INPUT_FORMAT_OPENAI, path, contents, length, 0);

  for (guint choice = 0; choice < 3; choice++)
    {
      g_autofree char *text = input_result_dup_text (result, JARVIS_EVENT_STREAM_DELTA, choice);

      g_assert_cmpuint (strlen (text), >, 0);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/jarvis/input/openai/basic", test_openai_basic);
  g_test_add_func ("/jarvis/input/openai/choices", test_openai_choices);
  g_test_add_func ("/jarvis/input/openai/side-channels", test_openai_side_channels);
  g_test_add_func ("/jarvis/input/openai/inband-error", test_openai_inband_error);
  g_test_add_func ("/jarvis/input/openai/error-event", test_openai_error_event);
  g_test_add_func ("/jarvis/input/openai/truncated", test_openai_truncated);
  g_test_add_func ("/jarvis/input/openai/json-lines", test_openai_json_lines);
  g_test_add_func ("/jarvis/input/openai/bad-chunks", test_openai_bad_chunks);
  g_test_add_func ("/jarvis/input/provider/request-ids", test_request_ids);
  g_test_add_func ("/jarvis/input/provider/padded-json", test_padded_json);
  g_test_add_func ("/jarvis/input/anthropic/flow", test_anthropic_flow);
  g_test_add_func ("/jarvis/input/anthropic/error-and-truncation", test_anthropic_error_and_truncation);
  g_test_add_func ("/jarvis/input/ollama/lines", test_ollama);

  for (gsize i = 0; i < G_N_ELEMENTS (corpus_cases); i++)
    {
      g_autofree char *test_path = g_strdup_printf ("/jarvis/input/corpus/%s", corpus_cases[i].file);

      g_test_add_data_func (test_path, &corpus_cases[i], test_corpus_file);
    }
  g_test_add_func ("/jarvis/input/corpus/n3-choices", test_corpus_n3_choices);

  return g_test_run ();
}
