/* Emits events from inside its invocations' `cancelled` callback, which the
 * bus runs during the request's cleanup, and returns the invocation right
 * there. The emits must be queued, not dispatched re-entrantly; the delta
 * for the request being cleaned up must be dropped and counted as late. */

#include <jarvis/jarvis.h>

#define NOTE_EVENT "hostile.cancel_note"

typedef struct
{
  JarvisPlugin *plugin;         /* unowned, outlives its invocations */
  JarvisInvocation *invocation; /* returned once, then NULL */
  JarvisEvent *event;           /* owned ref, the start */
} CancelData;

static void
cancel_data_free (gpointer data)
{
  CancelData *cancel_data = data;

  jarvis_event_unref (cancel_data->event);
  g_free (cancel_data);
}

static void
emit_from_cancelled (GCancellable *cancellable,
                     gpointer      data)
{
  CancelData *cancel_data = data;
  const char *request_id = jarvis_event_get_request_id (cancel_data->event);
  JarvisEvent *late_delta = jarvis_event_new (JARVIS_EVENT_STREAM_DELTA, request_id);
  JarvisEvent *note = jarvis_event_new (NOTE_EVENT, "hostile-notes");

  jarvis_event_set_session_id (late_delta, jarvis_event_get_session_id (cancel_data->event));
  jarvis_event_set_text (late_delta, "late", -1);
  jarvis_plugin_emit (cancel_data->plugin, late_delta);

  jarvis_event_set_text (note, request_id, -1);
  jarvis_plugin_emit (cancel_data->plugin, note);

  if (cancel_data->invocation != NULL)
    jarvis_invocation_return (g_steal_pointer (&cancel_data->invocation));
}

static void
wait_for_cancel (JarvisEvent      *event,
                 JarvisInvocation *invocation,
                 gpointer          user_data)
{
  CancelData *cancel_data = g_new0 (CancelData, 1);

  cancel_data->plugin = user_data;
  cancel_data->invocation = invocation;
  cancel_data->event = jarvis_event_ref (event);

  /* The handler stays connected until the bus drops the cancellable,
   * which then frees the data. */
  g_cancellable_connect (jarvis_invocation_get_cancellable (invocation),
                         G_CALLBACK (emit_from_cancelled), cancel_data, cancel_data_free);
}

static gboolean
init (JarvisPlugin  *plugin,
      GError       **error)
{
  jarvis_plugin_subscribe_async (plugin, JARVIS_EVENT_STREAM_START, wait_for_cancel, plugin, NULL);

  return TRUE;
}

JARVIS_PLUGIN_DEFINE ("hostile_cancel_emitter", "1.0",
                      "Emits events and returns from its cancelled callback",
                      "MIT", init, NULL)
