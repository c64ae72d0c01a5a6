#include "config.h"

#include <string.h>

#include "jarvis-events-format.h"
#include "jarvis-json.h"

/*
 * The `events` format: JSON Lines, one event per line.
 *
 *   {"type": "agent.stream.delta", "request_id": "r1", "text": "Hi"}
 *
 * `type` and `request_id` are required strings. `session_id`, `trace_id`
 * and `text` are optional strings, `payload` an optional object and
 * `choice` an optional non-negative integer. Every other member is kept in
 * the payload, next to the members of `payload` itself. A line of type
 * `agent.stream.flush` or `agent.stream.complete` is an input error,
 * because only the bus emits those.
 */

static const char *const known_members[] = {
  "type", "request_id", "session_id", "trace_id", "text", "payload", "choice",
};

static gboolean
is_known_member (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (known_members); i++)
    {
      if (strcmp (name, known_members[i]) == 0)
        return TRUE;
    }

  return FALSE;
}

static gboolean
get_required_string (JsonObject  *record,
                     const char  *member,
                     const char **value,
                     GError     **error)
{
  if (!json_object_has_member (record, member))
    {
      g_set_error (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_MISSING_FIELD,
                   "missing required member `%s`", member);
      return FALSE;
    }

  *value = jarvis_json_get_string (record, member);
  if (*value == NULL || **value == '\0')
    {
      g_set_error (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_INVALID_VALUE,
                   "`%s` must be a non-empty string", member);
      return FALSE;
    }

  return TRUE;
}

static gboolean
get_optional_string (JsonObject  *record,
                     const char  *member,
                     const char **value,
                     GError     **error)
{
  JsonNode *node = json_object_get_member (record, member);

  *value = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;

  *value = jarvis_json_get_string (record, member);
  if (*value == NULL)
    {
      g_set_error (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_INVALID_VALUE,
                   "`%s` must be a string", member);
      return FALSE;
    }

  return TRUE;
}

static gboolean
get_choice (JsonObject  *record,
            guint       *choice,
            GError     **error)
{
  JsonNode *node = json_object_get_member (record, "choice");
  gint64 value;

  *choice = 0;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;

  if (!jarvis_json_get_int (record, "choice", &value) || value < 0 || value > G_MAXUINT)
    {
      g_set_error_literal (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_INVALID_VALUE,
                           "`choice` must be a non-negative integer");
      return FALSE;
    }

  *choice = (guint) value;
  return TRUE;
}

static gboolean
add_member (GVariantDict  *payload,
            const char    *name,
            JsonNode      *node,
            GError       **error)
{
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GError) convert_error = NULL;

  value = jarvis_json_to_variant (node, &convert_error);
  if (value == NULL)
    {
      g_set_error (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_INVALID_VALUE,
                   "member `%s`: %s", name, convert_error->message);
      return FALSE;
    }

  g_variant_dict_insert_value (payload, name, value);
  return TRUE;
}

/* Flush and complete events carry the bus's own account of a request: an
 * input that sent them could fake text no delta carried or a second
 * completion. */
static gboolean
check_not_bus_type (const char  *type,
                    GError     **error)
{
  if (strcmp (type, JARVIS_EVENT_STREAM_FLUSH) != 0 &&
      strcmp (type, JARVIS_EVENT_STREAM_COMPLETE) != 0)
    return TRUE;

  g_set_error (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_INVALID_VALUE,
               "type %s is emitted only by the bus, so the line was skipped",
               type);
  return FALSE;
}

/* Builds the payload from `payload` and the unknown members. Returns
 * NULL with @error unset when there is nothing to carry. */
static GVariant *
build_payload (JsonObject  *record,
               GError     **error)
{
  g_auto(GVariantDict) payload = G_VARIANT_DICT_INIT (NULL);
  JsonNode *payload_node = json_object_get_member (record, "payload");
  JsonObjectIter iter;
  const char *name;
  JsonNode *node;
  gboolean empty = TRUE;

  if (payload_node != NULL && !JSON_NODE_HOLDS_NULL (payload_node))
    {
      if (!JSON_NODE_HOLDS_OBJECT (payload_node))
        {
          g_set_error_literal (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_INVALID_VALUE,
                               "`payload` must be an object");
          return NULL;
        }

      json_object_iter_init (&iter, json_node_get_object (payload_node));
      while (json_object_iter_next (&iter, &name, &node))
        {
          if (!add_member (&payload, name, node, error))
            return NULL;
        }
      empty = FALSE;
    }

  json_object_iter_init (&iter, record);
  while (json_object_iter_next (&iter, &name, &node))
    {
      if (is_known_member (name))
        continue;

      if (!add_member (&payload, name, node, error))
        return NULL;
      empty = FALSE;
    }

  if (empty)
    return NULL;

  return g_variant_ref_sink (g_variant_dict_end (&payload));
}

/**
 * jarvis_events_format_parse:
 * @record: one line's JSON object
 * @default_session_id: (nullable): session for records that name none
 * @error: return location for a %JARVIS_INPUT_ERROR error
 *
 * Turns one `events` record into an event.
 *
 * Returns: (transfer full) (nullable): an unsealed event, or %NULL if the
 *   record is invalid
 */
JarvisEvent *
jarvis_events_format_parse (JsonObject  *record,
                            const char  *default_session_id,
                            GError     **error)
{
  g_autoptr(JarvisEvent) event = NULL;
  g_autoptr(GVariant) payload = NULL;
  g_autoptr(GError) payload_error = NULL;
  const char *type;
  const char *request_id;
  const char *session_id;
  const char *trace_id;
  const char *text;
  guint choice;

  g_return_val_if_fail (record != NULL, NULL);

  if (!get_required_string (record, "type", &type, error) ||
      !check_not_bus_type (type, error) ||
      !get_required_string (record, "request_id", &request_id, error) ||
      !get_optional_string (record, "session_id", &session_id, error) ||
      !get_optional_string (record, "trace_id", &trace_id, error) ||
      !get_optional_string (record, "text", &text, error) ||
      !get_choice (record, &choice, error))
    return NULL;

  payload = build_payload (record, &payload_error);
  if (payload_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&payload_error));
      return NULL;
    }

  event = jarvis_event_new (type, request_id);
  if (session_id == NULL)
    session_id = default_session_id;
  if (session_id != NULL)
    jarvis_event_set_session_id (event, session_id);
  if (trace_id != NULL)
    jarvis_event_set_trace_id (event, trace_id);
  if (text != NULL)
    jarvis_event_set_text (event, text, -1);
  if (payload != NULL)
    jarvis_event_set_payload (event, payload);
  jarvis_event_set_choice (event, choice);

  return g_steal_pointer (&event);
}
