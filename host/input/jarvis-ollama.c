#include "config.h"

#include "jarvis-json.h"
#include "jarvis-provider.h"

/*
 * Ollama NDJSON from `/api/generate` (text in `response`, reasoning in
 * `thinking`) and `/api/chat` (the same inside `message`, plus
 * `message.tool_calls`). The line with `done: true` carries the timing and
 * token counts, which become the usage event, and ends the request. Ollama
 * streams have no id, so the request uses the decoder's fallback id.
 */

/* Members of the final line that describe usage rather than the text. */
static const char *const usage_members[] = {
  "total_duration",
  "load_duration",
  "prompt_eval_count",
  "prompt_eval_duration",
  "eval_count",
  "eval_duration",
};

static void
emit_usage (JarvisProviderStream *stream,
            JsonObject           *line)
{
  g_autoptr(JsonObject) usage = json_object_new ();

  for (gsize i = 0; i < G_N_ELEMENTS (usage_members); i++)
    {
      JsonNode *node = json_object_get_member (line, usage_members[i]);

      if (node != NULL)
        json_object_set_member (usage, usage_members[i], json_node_copy (node));
    }

  if (json_object_get_size (usage) > 0)
    jarvis_provider_stream_emit_usage (stream, usage);
}

static void
map_message (JarvisProviderStream *stream,
             JsonObject           *message)
{
  JsonArray *tool_calls;

  jarvis_provider_stream_emit_text (stream, JARVIS_EVENT_STREAM_REASONING,
                                    jarvis_json_get_string (message, "thinking"), 0);
  jarvis_provider_stream_emit_text (stream, JARVIS_EVENT_STREAM_DELTA,
                                    jarvis_json_get_string (message, "content"), 0);

  tool_calls = jarvis_json_get_array (message, "tool_calls");
  if (tool_calls == NULL)
    return;

  for (guint i = 0; i < json_array_get_length (tool_calls); i++)
    jarvis_provider_stream_emit_payload (stream, JARVIS_EVENT_STREAM_TOOL_CALL,
                                         json_array_get_element (tool_calls, i), NULL, 0);
}

/**
 * jarvis_ollama_map_line:
 * @stream: the stream
 * @line: one NDJSON object
 * @error: return location for an error
 *
 * Maps one line. The first opens the request. A line with an `error`
 * member fails the request; `done: true` emits usage and ends it.
 *
 * Returns: %FALSE if the line was rejected
 */
gboolean
jarvis_ollama_map_line (JarvisProviderStream  *stream,
                        JsonObject            *line,
                        GError               **error)
{
  JsonNode *error_node = json_object_get_member (line, "error");
  JsonNode *message_node = json_object_get_member (line, "message");
  gboolean done = FALSE;

  if (jarvis_provider_stream_is_closed (stream))
    {
      g_set_error (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_INVALID_VALUE,
                   "line after the end of request %s",
                   jarvis_provider_stream_get_request_id (stream));
      return FALSE;
    }

  if (json_object_has_member (line, "done") &&
      !jarvis_json_get_boolean (line, "done", &done))
    {
      g_set_error_literal (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_INVALID_VALUE,
                           "`done` is not a boolean");
      return FALSE;
    }

  if (message_node != NULL && !JSON_NODE_HOLDS_OBJECT (message_node))
    {
      g_set_error_literal (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_INVALID_VALUE,
                           "`message` is not an object");
      return FALSE;
    }

  if (error_node == NULL && message_node == NULL &&
      !json_object_has_member (line, "response") &&
      !json_object_has_member (line, "done"))
    {
      g_set_error_literal (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_MISSING_FIELD,
                           "not an Ollama stream line: no `response`, `message`, `done` or `error`");
      return FALSE;
    }

  jarvis_provider_stream_open (stream, NULL, jarvis_json_get_string (line, "model"));

  if (error_node != NULL)
    {
      jarvis_provider_stream_fail (stream, error_node);
      return TRUE;
    }

  jarvis_provider_stream_emit_text (stream, JARVIS_EVENT_STREAM_REASONING,
                                    jarvis_json_get_string (line, "thinking"), 0);
  jarvis_provider_stream_emit_text (stream, JARVIS_EVENT_STREAM_DELTA,
                                    jarvis_json_get_string (line, "response"), 0);
  if (message_node != NULL)
    map_message (stream, json_node_get_object (message_node));

  if (done)
    {
      const char *reason = jarvis_json_get_string (line, "done_reason");

      if (reason != NULL)
        jarvis_provider_stream_set_finish_reason (stream, reason);
      emit_usage (stream, line);
      jarvis_provider_stream_end (stream);
    }

  return TRUE;
}
