/* Requests cleanup again while its request is being cleaned up. The
 * `cancelled` callback of its invocation emits a cancel and an end for the
 * same request, then returns the invocation from an idle source on the
 * bus's context. The request must be cleaned up and completed once. */

#include <jarvis/jarvis.h>

typedef struct
{
  JarvisPlugin *plugin;         /* unowned */
  JarvisInvocation *invocation; /* returned once, then NULL */
  JarvisEvent *event;           /* owned ref, the start */
  GSource *idle;                /* owned, the pending return */
} Pending;

static void
pending_free (gpointer data)
{
  Pending *pending = data;

  g_assert (pending->invocation == NULL);
  g_clear_pointer (&pending->idle, g_source_unref);
  jarvis_event_unref (pending->event);
  g_free (pending);
}

static gboolean
return_later (gpointer data)
{
  Pending *pending = data;

  jarvis_invocation_return (g_steal_pointer (&pending->invocation));

  return G_SOURCE_REMOVE;
}

static void
emit_for_request (Pending    *pending,
                  const char *event_type)
{
  JarvisEvent *event = jarvis_event_new (event_type, jarvis_event_get_request_id (pending->event));

  jarvis_event_set_session_id (event, jarvis_event_get_session_id (pending->event));
  jarvis_plugin_emit (pending->plugin, event);
}

static void
cancel_again (GCancellable *cancellable,
              gpointer      data)
{
  Pending *pending = data;

  if (pending->idle != NULL)
    return;

  g_message ("reentrant: cancelling again request_id=%s",
             jarvis_event_get_request_id (pending->event));
  emit_for_request (pending, JARVIS_EVENT_STREAM_CANCEL);
  emit_for_request (pending, JARVIS_EVENT_STREAM_END);

  pending->idle = g_idle_source_new ();
  g_source_set_callback (pending->idle, return_later, pending, NULL);
  g_source_attach (pending->idle, jarvis_plugin_get_context (pending->plugin));
}

static void
wait_for_cancel (JarvisEvent      *event,
                 JarvisInvocation *invocation,
                 gpointer          user_data)
{
  Pending *pending = g_new0 (Pending, 1);

  pending->plugin = user_data;
  pending->invocation = invocation;
  pending->event = jarvis_event_ref (event);

  g_cancellable_connect (jarvis_invocation_get_cancellable (invocation),
                         G_CALLBACK (cancel_again), pending, pending_free);
}

static gboolean
init (JarvisPlugin  *plugin,
      GError       **error)
{
  jarvis_plugin_subscribe_async (plugin, JARVIS_EVENT_STREAM_START, wait_for_cancel, plugin, NULL);

  return TRUE;
}

JARVIS_PLUGIN_DEFINE ("hostile_reentrant", "1.0",
                      "Requests cleanup again from its cancelled callback",
                      "MIT", init, NULL)
