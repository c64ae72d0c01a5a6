#include "config.h"

#include "jarvis-json.h"
#include "jarvis-provider.h"

struct _JarvisProviderStream
{
  JarvisDecoderEventFunc event_func;
  gpointer user_data;

  char *fallback_id;          /* owned */
  char *session_id;           /* owned, nullable */
  char *request_id;           /* owned; set when the stream opens */
  char *finish_reason;        /* owned, nullable; the last one seen */
  gboolean open;              /* agent.stream.start was emitted */
  gboolean closed;            /* agent.stream.end or .error was emitted */
};

JarvisProviderStream *
jarvis_provider_stream_new (JarvisDecoderEventFunc event_func,
                            gpointer               user_data)
{
  JarvisProviderStream *stream;

  g_return_val_if_fail (event_func != NULL, NULL);

  stream = g_new0 (JarvisProviderStream, 1);
  stream->event_func = event_func;
  stream->user_data = user_data;
  stream->fallback_id = g_strdup ("stream");

  return stream;
}

void
jarvis_provider_stream_free (JarvisProviderStream *stream)
{
  if (stream == NULL)
    return;

  g_free (stream->fallback_id);
  g_free (stream->session_id);
  g_free (stream->request_id);
  g_free (stream->finish_reason);
  g_free (stream);
}

/* Sets the request id used when the stream carries none of its own. */
void
jarvis_provider_stream_set_fallback_id (JarvisProviderStream *stream,
                                        const char           *request_id)
{
  g_return_if_fail (stream != NULL);
  g_return_if_fail (request_id != NULL && *request_id != '\0');

  g_free (stream->fallback_id);
  stream->fallback_id = g_strdup (request_id);
}

void
jarvis_provider_stream_set_session_id (JarvisProviderStream *stream,
                                       const char           *session_id)
{
  g_return_if_fail (stream != NULL);

  g_free (stream->session_id);
  stream->session_id = g_strdup (session_id);
}

gboolean
jarvis_provider_stream_is_open (JarvisProviderStream *stream)
{
  return stream->open;
}

gboolean
jarvis_provider_stream_is_closed (JarvisProviderStream *stream)
{
  return stream->closed;
}

/* Returns the request id, or NULL before the stream opened. */
const char *
jarvis_provider_stream_get_request_id (JarvisProviderStream *stream)
{
  return stream->request_id;
}

static JarvisEvent *
new_event (JarvisProviderStream *stream,
           const char           *event_type)
{
  JarvisEvent *event = jarvis_event_new (event_type, stream->request_id);

  if (stream->session_id != NULL)
    jarvis_event_set_session_id (event, stream->session_id);

  return event;
}

static void
emit (JarvisProviderStream *stream,
      JarvisEvent          *event)
{
  stream->event_func (event, stream->user_data);
}

/**
 * jarvis_provider_stream_open:
 * @stream: a stream
 * @own_id: (nullable): the id the provider gave the stream
 * @model: (nullable): the model name, put in the start payload
 *
 * Emits `agent.stream.start` once, for the request @own_id or, when that
 * is %NULL or empty, the fallback id. Later calls do nothing.
 */
void
jarvis_provider_stream_open (JarvisProviderStream *stream,
                             const char           *own_id,
                             const char           *model)
{
  JarvisEvent *event;

  if (stream->open)
    return;

  stream->open = TRUE;
  stream->request_id = g_strdup (own_id != NULL && *own_id != '\0' ? own_id
                                                                   : stream->fallback_id);

  event = new_event (stream, JARVIS_EVENT_STREAM_START);
  if (model != NULL)
    {
      g_auto(GVariantDict) payload = G_VARIANT_DICT_INIT (NULL);

      g_variant_dict_insert (&payload, "model", "s", model);
      jarvis_event_set_payload (event, g_variant_dict_end (&payload));
    }

  emit (stream, event);
}

/* Emits a text event such as a delta; empty text emits nothing. */
void
jarvis_provider_stream_emit_text (JarvisProviderStream *stream,
                                  const char           *event_type,
                                  const char           *text,
                                  guint                 choice)
{
  JarvisEvent *event;

  if (text == NULL || *text == '\0')
    return;

  jarvis_provider_stream_open (stream, NULL, NULL);

  event = new_event (stream, event_type);
  jarvis_event_set_text (event, text, -1);
  jarvis_event_set_choice (event, choice);
  emit (stream, event);
}

/* Converts an object node to an owned `a{sv}` payload; anything else is
 * wrapped as the member `value`. */
static GVariant *
payload_from_node (JsonNode *node)
{
  g_autoptr(GVariant) variant = NULL;
  g_auto(GVariantDict) wrapped = G_VARIANT_DICT_INIT (NULL);

  variant = jarvis_json_to_variant (node, NULL);
  if (variant != NULL && g_variant_is_of_type (variant, G_VARIANT_TYPE_VARDICT))
    return g_steal_pointer (&variant);

  if (variant != NULL)
    g_variant_dict_insert_value (&wrapped, "value", variant);

  return g_variant_ref_sink (g_variant_dict_end (&wrapped));
}

/**
 * jarvis_provider_stream_emit_payload:
 * @stream: a stream
 * @event_type: such as %JARVIS_EVENT_STREAM_TOOL_CALL
 * @payload: the JSON data, converted to an `a{sv}` payload
 * @text: (nullable): text to put on the event as well
 * @choice: the choice index
 *
 * Emits a side-channel event whose data is a JSON value.
 */
void
jarvis_provider_stream_emit_payload (JarvisProviderStream *stream,
                                     const char           *event_type,
                                     JsonNode             *payload,
                                     const char           *text,
                                     guint                 choice)
{
  g_autoptr(GVariant) variant = NULL;
  JarvisEvent *event;

  jarvis_provider_stream_open (stream, NULL, NULL);

  variant = payload_from_node (payload);
  event = new_event (stream, event_type);
  jarvis_event_set_payload (event, variant);
  if (text != NULL && *text != '\0')
    jarvis_event_set_text (event, text, -1);
  jarvis_event_set_choice (event, choice);
  emit (stream, event);
}

void
jarvis_provider_stream_emit_usage (JarvisProviderStream *stream,
                                   JsonObject           *usage)
{
  g_autoptr(JsonNode) node = json_node_init_object (json_node_alloc (), usage);

  jarvis_provider_stream_emit_payload (stream, JARVIS_EVENT_STREAM_USAGE, node, NULL, 0);
}

static GVariant *
error_payload (JsonNode *error_node)
{
  g_auto(GVariantDict) payload = G_VARIANT_DICT_INIT (NULL);
  JsonObject *object = NULL;
  const char *message = NULL;
  const char *code = NULL;
  const char *type = NULL;
  gint64 status;
  gint64 number;

  if (JSON_NODE_HOLDS_OBJECT (error_node))
    {
      object = json_node_get_object (error_node);
      message = jarvis_json_get_string (object, "message");
      code = jarvis_json_get_string (object, "code");
      type = jarvis_json_get_string (object, "type");
    }
  else if (JSON_NODE_HOLDS_VALUE (error_node) &&
           json_node_get_value_type (error_node) == G_TYPE_STRING)
    {
      message = json_node_get_string (error_node);
    }

  g_variant_dict_insert (&payload, "message", "s",
                         message != NULL && *message != '\0' ? message
                                                             : "the provider reported an error");

  /* Providers put the HTTP-like status in different members, and some use
   * a numeric `code` for it. */
  if (object != NULL &&
      (jarvis_json_get_int (object, "status", &status) ||
       jarvis_json_get_int (object, "status_code", &status) ||
       jarvis_json_get_int (object, "code", &status)) &&
      status >= G_MININT32 && status <= G_MAXINT32)
    g_variant_dict_insert (&payload, "status", "i", (gint32) status);

  if (code != NULL)
    g_variant_dict_insert (&payload, "code", "s", code);
  else if (object != NULL && jarvis_json_get_int (object, "code", &number))
    g_variant_dict_insert_value (&payload, "code",
                                 g_variant_new_take_string (g_strdup_printf ("%" G_GINT64_FORMAT, number)));

  if (type != NULL)
    g_variant_dict_insert (&payload, "type", "s", type);

  return g_variant_dict_end (&payload);
}

/**
 * jarvis_provider_stream_fail:
 * @stream: a stream
 * @error_node: the provider's error object or message string
 *
 * Emits `agent.stream.error` with the payload `message` (s) and, when the
 * provider gave them, `status` (i), `code` (s) and `type` (s). The error
 * completes the request, so the stream is closed afterwards.
 */
void
jarvis_provider_stream_fail (JarvisProviderStream *stream,
                             JsonNode             *error_node)
{
  JarvisEvent *event;

  if (stream->closed)
    return;

  jarvis_provider_stream_open (stream, NULL, NULL);

  event = new_event (stream, JARVIS_EVENT_STREAM_ERROR);
  jarvis_event_set_payload (event, error_payload (error_node));
  stream->closed = TRUE;
  emit (stream, event);
}

void
jarvis_provider_stream_set_finish_reason (JarvisProviderStream *stream,
                                          const char           *reason)
{
  g_free (stream->finish_reason);
  stream->finish_reason = g_strdup (reason);
}

gboolean
jarvis_provider_stream_has_finish_reason (JarvisProviderStream *stream)
{
  return stream->finish_reason != NULL;
}

/**
 * jarvis_provider_stream_end:
 * @stream: a stream
 *
 * Emits `agent.stream.end` once, with the last finish reason as payload
 * member `finish_reason` (s) when there was one. Does nothing when the
 * stream never opened or is already closed.
 */
void
jarvis_provider_stream_end (JarvisProviderStream *stream)
{
  JarvisEvent *event;

  if (!stream->open || stream->closed)
    return;

  event = new_event (stream, JARVIS_EVENT_STREAM_END);
  if (stream->finish_reason != NULL)
    {
      g_auto(GVariantDict) payload = G_VARIANT_DICT_INIT (NULL);

      g_variant_dict_insert (&payload, "finish_reason", "s", stream->finish_reason);
      jarvis_event_set_payload (event, g_variant_dict_end (&payload));
    }

  stream->closed = TRUE;
  emit (stream, event);
}

/**
 * jarvis_provider_stream_check_ended:
 * @stream: a stream at the end of its input
 * @finish_reason_ends: whether a finish reason alone counts as an end
 * @end_marker: how the format marks the end, for the error message
 * @error: return location for a %JARVIS_INPUT_ERROR_TRUNCATED error
 *
 * Checks that a stream that opened also ended properly. The caller reports
 * the error and then calls jarvis_provider_stream_end() in either case.
 *
 * Returns: %FALSE if the input ended inside the stream
 */
gboolean
jarvis_provider_stream_check_ended (JarvisProviderStream  *stream,
                                    gboolean               finish_reason_ends,
                                    const char            *end_marker,
                                    GError               **error)
{
  if (!stream->open || stream->closed)
    return TRUE;

  if (finish_reason_ends && stream->finish_reason != NULL)
    return TRUE;

  g_set_error (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_TRUNCATED,
               "input ended inside request %s without %s; "
               "the request was ended with the text received so far",
               stream->request_id, end_marker);
  return FALSE;
}
