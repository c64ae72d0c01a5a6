/* Changes its own request and subscriptions during dispatch:
 * - on the second delta of a request it emits that request's cancel;
 * - its async delta handler cancels its own invocation's cancellable before
 *   returning;
 * - on its first delta, "quitter" unsubscribes itself and "victim", which
 *   was subscribed after it.
 * Each handler logs one message per call (domain "hostile") so that the
 * test can count the calls. */

#include <jarvis/jarvis.h>

typedef struct
{
  JarvisPlugin *plugin;         /* unowned */
  GHashTable *deltas_seen;      /* owned, request id -> count */
  guint quitter_id;
  guint victim_id;
} SelfCancel;

static void
self_cancel_free (gpointer data)
{
  SelfCancel *self = data;

  g_hash_table_unref (self->deltas_seen);
  g_free (self);
}

static void
cancel_on_second_delta (JarvisEvent *event,
                        gpointer     user_data)
{
  SelfCancel *self = user_data;
  const char *request_id = jarvis_event_get_request_id (event);
  guint seen = GPOINTER_TO_UINT (g_hash_table_lookup (self->deltas_seen, request_id)) + 1;
  JarvisEvent *cancel;

  g_hash_table_insert (self->deltas_seen, g_strdup (request_id), GUINT_TO_POINTER (seen));
  if (seen != 2)
    return;

  g_message ("self_cancel: cancelling request_id=%s", request_id);
  cancel = jarvis_event_new (JARVIS_EVENT_STREAM_CANCEL, request_id);
  jarvis_event_set_session_id (cancel, jarvis_event_get_session_id (event));
  jarvis_plugin_emit (self->plugin, cancel);
}

static void
quit (JarvisEvent *event,
      gpointer     user_data)
{
  SelfCancel *self = user_data;

  g_message ("quitter: called request_id=%s", jarvis_event_get_request_id (event));
  jarvis_plugin_unsubscribe (self->plugin, self->quitter_id);
  jarvis_plugin_unsubscribe (self->plugin, self->victim_id);
}

static void
victim (JarvisEvent *event,
        gpointer     user_data)
{
  g_message ("victim: called request_id=%s", jarvis_event_get_request_id (event));
}

static void
cancel_own_invocation (JarvisEvent      *event,
                       JarvisInvocation *invocation,
                       gpointer          user_data)
{
  g_cancellable_cancel (jarvis_invocation_get_cancellable (invocation));
  jarvis_invocation_return (invocation);
}

static gboolean
init (JarvisPlugin  *plugin,
      GError       **error)
{
  SelfCancel *self = g_new0 (SelfCancel, 1);

  self->plugin = plugin;
  self->deltas_seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  jarvis_plugin_set_data (plugin, self, self_cancel_free);

  jarvis_plugin_subscribe (plugin, JARVIS_EVENT_STREAM_DELTA, cancel_on_second_delta, self, NULL);
  self->quitter_id = jarvis_plugin_subscribe (plugin, JARVIS_EVENT_STREAM_DELTA, quit, self, NULL);
  self->victim_id = jarvis_plugin_subscribe (plugin, JARVIS_EVENT_STREAM_DELTA, victim, self, NULL);
  jarvis_plugin_subscribe_async (plugin, JARVIS_EVENT_STREAM_DELTA, cancel_own_invocation, NULL, NULL);

  return TRUE;
}

JARVIS_PLUGIN_DEFINE ("hostile_self_cancel", "1.0",
                      "Cancels its own request and unsubscribes during dispatch",
                      "MIT", init, NULL)
