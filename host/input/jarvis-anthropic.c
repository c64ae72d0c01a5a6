#include "config.h"

#include <string.h>

#include "jarvis-json.h"
#include "jarvis-provider.h"

/*
 * Anthropic Messages stream events: message_start, content_block_start,
 * content_block_delta, content_block_stop, message_delta, message_stop,
 * ping and error. The event's `type` member decides; the SSE event name
 * repeats it and is used only when `type` is missing. Types this mapping
 * does not know are skipped, because the API adds new ones over time.
 */

static JsonNode *
object_node (JsonObject *object)
{
  return json_node_init_object (json_node_alloc (), object);
}

static void
map_block_start (JarvisProviderStream *stream,
                 JsonObject           *event)
{
  JsonObject *block = jarvis_json_get_object (event, "content_block");
  const char *type;

  if (block == NULL)
    return;

  type = jarvis_json_get_string (block, "type");
  if (g_strcmp0 (type, "text") == 0)
    {
      jarvis_provider_stream_emit_text (stream, JARVIS_EVENT_STREAM_DELTA,
                                        jarvis_json_get_string (block, "text"), 0);
    }
  else if (g_strcmp0 (type, "thinking") == 0)
    {
      jarvis_provider_stream_emit_text (stream, JARVIS_EVENT_STREAM_REASONING,
                                        jarvis_json_get_string (block, "thinking"), 0);
    }
  else if (type != NULL && g_str_has_suffix (type, "tool_use"))
    {
      g_autoptr(JsonNode) node = object_node (block);

      /* tool_use, server_tool_use and mcp_tool_use all open a call. */
      jarvis_provider_stream_emit_payload (stream, JARVIS_EVENT_STREAM_TOOL_CALL,
                                           node, NULL, 0);
    }
}

static void
map_block_delta (JarvisProviderStream *stream,
                 JsonObject           *event)
{
  JsonObject *delta = jarvis_json_get_object (event, "delta");
  const char *type;

  if (delta == NULL)
    return;

  type = jarvis_json_get_string (delta, "type");
  if (g_strcmp0 (type, "text_delta") == 0)
    {
      jarvis_provider_stream_emit_text (stream, JARVIS_EVENT_STREAM_DELTA,
                                        jarvis_json_get_string (delta, "text"), 0);
    }
  else if (g_strcmp0 (type, "thinking_delta") == 0)
    {
      jarvis_provider_stream_emit_text (stream, JARVIS_EVENT_STREAM_REASONING,
                                        jarvis_json_get_string (delta, "thinking"), 0);
    }
  else if (g_strcmp0 (type, "input_json_delta") == 0)
    {
      const char *partial = jarvis_json_get_string (delta, "partial_json");
      g_autoptr(JsonNode) node = NULL;

      /* The first fragment of every call is empty; it carries nothing. */
      if (partial == NULL || *partial == '\0')
        return;

      node = object_node (event);
      jarvis_provider_stream_emit_payload (stream, JARVIS_EVENT_STREAM_TOOL_CALL,
                                           node, partial, 0);
    }
}

static void
map_message_delta (JarvisProviderStream *stream,
                   JsonObject           *event)
{
  JsonObject *delta = jarvis_json_get_object (event, "delta");
  JsonObject *usage = jarvis_json_get_object (event, "usage");

  if (delta != NULL && jarvis_json_get_string (delta, "stop_reason") != NULL)
    jarvis_provider_stream_set_finish_reason (stream, jarvis_json_get_string (delta, "stop_reason"));

  if (usage != NULL)
    jarvis_provider_stream_emit_usage (stream, usage);
}

static gboolean
map_message_start (JarvisProviderStream  *stream,
                   JsonObject            *event,
                   GError               **error)
{
  JsonObject *message = jarvis_json_get_object (event, "message");
  JsonObject *usage;

  if (message == NULL)
    {
      g_set_error_literal (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_MISSING_FIELD,
                           "message_start without a `message` object");
      return FALSE;
    }

  if (jarvis_provider_stream_is_open (stream))
    {
      g_set_error (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_INVALID_VALUE,
                   "second message_start in request %s",
                   jarvis_provider_stream_get_request_id (stream));
      return FALSE;
    }

  jarvis_provider_stream_open (stream, jarvis_json_get_string (message, "id"),
                               jarvis_json_get_string (message, "model"));

  usage = jarvis_json_get_object (message, "usage");
  if (usage != NULL)
    jarvis_provider_stream_emit_usage (stream, usage);

  return TRUE;
}

/**
 * jarvis_anthropic_map_event:
 * @stream: the stream
 * @event: one event object
 * @sse_event_type: (nullable): the SSE event type, or %NULL
 * @error: return location for an error
 *
 * Maps one event. message_start opens the request with the message id.
 * Text blocks and text_delta become deltas, thinking reasoning events,
 * tool-use blocks and input_json_delta tool-call events, usage usage
 * events. message_stop ends the request, and an error event fails it.
 *
 * Returns: %FALSE if the event was rejected
 */
gboolean
jarvis_anthropic_map_event (JarvisProviderStream  *stream,
                            JsonObject            *event,
                            const char            *sse_event_type,
                            GError               **error)
{
  const char *type = jarvis_json_get_string (event, "type");

  if (type == NULL)
    type = sse_event_type;

  if (type == NULL)
    {
      g_set_error_literal (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_MISSING_FIELD,
                           "event without a `type`");
      return FALSE;
    }

  if (strcmp (type, "ping") == 0)
    return TRUE;

  if (jarvis_provider_stream_is_closed (stream))
    {
      g_set_error (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_INVALID_VALUE,
                   "%s event after the end of request %s", type,
                   jarvis_provider_stream_get_request_id (stream));
      return FALSE;
    }

  if (strcmp (type, "message_start") == 0)
    return map_message_start (stream, event, error);

  if (strcmp (type, "error") == 0)
    {
      JsonNode *error_node = json_object_get_member (event, "error");
      g_autoptr(JsonNode) whole = object_node (event);

      jarvis_provider_stream_fail (stream, error_node != NULL ? error_node : whole);
      return TRUE;
    }

  if (strcmp (type, "content_block_start") == 0)
    map_block_start (stream, event);
  else if (strcmp (type, "content_block_delta") == 0)
    map_block_delta (stream, event);
  else if (strcmp (type, "message_delta") == 0)
    map_message_delta (stream, event);
  else if (strcmp (type, "message_stop") == 0)
    {
      jarvis_provider_stream_open (stream, NULL, NULL);
      jarvis_provider_stream_end (stream);
    }
  else if (strcmp (type, "content_block_stop") != 0)
    g_debug ("anthropic_event_skipped type=%s reason=unknown event type", type);

  return TRUE;
}
