#include "config.h"

#include "jarvis-json.h"
#include "jarvis-provider.h"

/*
 * OpenAI chat-completion chunks (`object: chat.completion.chunk`), as sent
 * by OpenAI and the many services that copy its format (OpenRouter, Groq,
 * Together, ...).
 *
 * The request ends at `data: [DONE]`, or at the end of input once some
 * choice has a finish reason. It does not end at the first finish reason:
 * with several choices the others still stream, and the usage chunk comes
 * after all of them. Only the first chunk's `id` names the request, because
 * some services change the id on every chunk.
 */

static void
map_tool_calls (JarvisProviderStream *stream,
                JsonArray            *tool_calls,
                guint                 choice)
{
  guint length = json_array_get_length (tool_calls);

  for (guint i = 0; i < length; i++)
    {
      JsonNode *call = json_array_get_element (tool_calls, i);
      const char *arguments = NULL;

      if (JSON_NODE_HOLDS_OBJECT (call))
        {
          JsonObject *function = jarvis_json_get_object (json_node_get_object (call), "function");

          if (function != NULL)
            arguments = jarvis_json_get_string (function, "arguments");
        }

      jarvis_provider_stream_emit_payload (stream, JARVIS_EVENT_STREAM_TOOL_CALL,
                                           call, arguments, choice);
    }
}

static void
map_delta (JarvisProviderStream *stream,
           JsonObject           *delta,
           guint                 choice)
{
  const char *reasoning;
  JsonArray *tool_calls;

  /* Services name the reasoning text differently; none sends both. */
  reasoning = jarvis_json_get_string (delta, "reasoning_content");
  if (reasoning == NULL)
    reasoning = jarvis_json_get_string (delta, "reasoning");
  jarvis_provider_stream_emit_text (stream, JARVIS_EVENT_STREAM_REASONING, reasoning, choice);

  jarvis_provider_stream_emit_text (stream, JARVIS_EVENT_STREAM_DELTA,
                                    jarvis_json_get_string (delta, "content"), choice);

  /* A refusal is what the model tells the user, so it is delta text. */
  jarvis_provider_stream_emit_text (stream, JARVIS_EVENT_STREAM_DELTA,
                                    jarvis_json_get_string (delta, "refusal"), choice);

  tool_calls = jarvis_json_get_array (delta, "tool_calls");
  if (tool_calls != NULL)
    map_tool_calls (stream, tool_calls, choice);
}

static gboolean
check_choices (JsonArray  *choices,
               GError    **error)
{
  guint length = json_array_get_length (choices);

  for (guint i = 0; i < length; i++)
    {
      JsonNode *node = json_array_get_element (choices, i);
      JsonObject *choice;
      JsonNode *delta;
      gint64 index;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        {
          g_set_error (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_INVALID_VALUE,
                       "choices[%u] is not an object", i);
          return FALSE;
        }

      choice = json_node_get_object (node);
      if (json_object_has_member (choice, "index") &&
          (!jarvis_json_get_int (choice, "index", &index) || index < 0 || index > G_MAXUINT))
        {
          g_set_error (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_INVALID_VALUE,
                       "choices[%u].index is not a non-negative integer", i);
          return FALSE;
        }

      delta = json_object_get_member (choice, "delta");
      if (delta != NULL && !JSON_NODE_HOLDS_OBJECT (delta) && !JSON_NODE_HOLDS_NULL (delta))
        {
          g_set_error (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_INVALID_VALUE,
                       "choices[%u].delta is not an object", i);
          return FALSE;
        }
    }

  return TRUE;
}

static void
map_choices (JarvisProviderStream *stream,
             JsonArray            *choices)
{
  guint length = json_array_get_length (choices);

  for (guint i = 0; i < length; i++)
    {
      JsonObject *choice = json_array_get_object_element (choices, i);
      JsonObject *delta = jarvis_json_get_object (choice, "delta");
      const char *finish_reason = jarvis_json_get_string (choice, "finish_reason");
      gint64 index = 0;

      jarvis_json_get_int (choice, "index", &index);

      /* Legacy completion chunks carry `text` and no delta; chunks that
       * have both repeat the delta in `text`. */
      if (delta != NULL)
        map_delta (stream, delta, (guint) index);
      else
        jarvis_provider_stream_emit_text (stream, JARVIS_EVENT_STREAM_DELTA,
                                          jarvis_json_get_string (choice, "text"),
                                          (guint) index);

      if (finish_reason != NULL)
        jarvis_provider_stream_set_finish_reason (stream, finish_reason);
    }
}

/* Groq reports usage only inside its own `x_groq` member. */
static JsonObject *
find_usage (JsonObject *chunk)
{
  JsonObject *usage = jarvis_json_get_object (chunk, "usage");
  JsonObject *x_groq;

  if (usage != NULL)
    return usage;

  x_groq = jarvis_json_get_object (chunk, "x_groq");
  if (x_groq != NULL)
    return jarvis_json_get_object (x_groq, "usage");

  return NULL;
}

/**
 * jarvis_openai_map_chunk:
 * @stream: the stream
 * @chunk: one chunk object
 * @sse_event_type: (nullable): the SSE event type, or %NULL
 * @error: return location for an error
 *
 * Maps one chunk. The first opens the request. Content becomes deltas,
 * `reasoning`/`reasoning_content` reasoning events, `tool_calls` one
 * tool-call event per call, and `usage` a usage event. A top-level `error`
 * member, or an SSE event named `error`, fails the request after the rest
 * of the chunk is mapped.
 *
 * Returns: %FALSE if the chunk was rejected
 */
gboolean
jarvis_openai_map_chunk (JarvisProviderStream  *stream,
                         JsonObject            *chunk,
                         const char            *sse_event_type,
                         GError               **error)
{
  JsonNode *error_node = json_object_get_member (chunk, "error");
  JsonNode *choices_node = json_object_get_member (chunk, "choices");
  JsonArray *choices = NULL;
  JsonObject *usage;

  if (jarvis_provider_stream_is_closed (stream))
    {
      g_set_error (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_INVALID_VALUE,
                   "chunk after the end of request %s",
                   jarvis_provider_stream_get_request_id (stream));
      return FALSE;
    }

  if (choices_node != NULL && !JSON_NODE_HOLDS_NULL (choices_node))
    {
      if (!JSON_NODE_HOLDS_ARRAY (choices_node))
        {
          g_set_error_literal (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_INVALID_VALUE,
                               "`choices` is not an array");
          return FALSE;
        }

      choices = json_node_get_array (choices_node);
      if (!check_choices (choices, error))
        return FALSE;
    }

  if (choices == NULL && error_node == NULL &&
      g_strcmp0 (sse_event_type, "error") != 0 &&
      g_strcmp0 (jarvis_json_get_string (chunk, "object"), "chat.completion.chunk") != 0)
    {
      g_set_error_literal (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_MISSING_FIELD,
                           "not a chat completion chunk: no `choices`, `object` or `error`");
      return FALSE;
    }

  jarvis_provider_stream_open (stream, jarvis_json_get_string (chunk, "id"),
                               jarvis_json_get_string (chunk, "model"));

  if (choices != NULL)
    map_choices (stream, choices);

  usage = find_usage (chunk);
  if (usage != NULL)
    jarvis_provider_stream_emit_usage (stream, usage);

  if (error_node != NULL && !JSON_NODE_HOLDS_NULL (error_node))
    {
      jarvis_provider_stream_fail (stream, error_node);
    }
  else if (g_strcmp0 (sse_event_type, "error") == 0)
    {
      g_autoptr(JsonNode) node = json_node_init_object (json_node_alloc (), chunk);

      jarvis_provider_stream_fail (stream, node);
    }

  return TRUE;
}

/**
 * jarvis_openai_map_done:
 * @stream: the stream
 * @error: return location for an error
 *
 * Maps the `[DONE]` marker: it ends the request. After an error it is
 * expected and ignored.
 *
 * Returns: %FALSE if the marker was out of place
 */
gboolean
jarvis_openai_map_done (JarvisProviderStream  *stream,
                        GError               **error)
{
  if (!jarvis_provider_stream_is_open (stream))
    {
      g_set_error_literal (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_INVALID_VALUE,
                           "[DONE] before any chunk");
      return FALSE;
    }

  jarvis_provider_stream_end (stream);
  return TRUE;
}
