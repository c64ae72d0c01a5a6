/* streamer: an asynchronous plugin that keeps every stream delta in flight
 * until its cancellable fires, as a long model-side operation would. It is
 * the plugin that tests unload in the middle of a stream. */
#include "fixture-report.h"

typedef struct
{
  JarvisInvocation *invocation;
} PendingCall;

static gboolean
on_cancelled (GCancellable *cancellable,
              gpointer      user_data)
{
  PendingCall *call = user_data;

  jarvis_invocation_return_error (call->invocation,
                                  g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                       "Stream delta cancelled"));

  return G_SOURCE_REMOVE;
}

static void
on_delta (JarvisEvent      *event,
          JarvisInvocation *invocation,
          gpointer          user_data)
{
  JarvisPlugin *plugin = user_data;
  PendingCall *call = g_new0 (PendingCall, 1);
  GSource *source;

  fixture_report (plugin, event);

  /* A cancellable source dispatches in the bus's context, so the return
   * never runs inside the cancellable's own "cancelled" emission. */
  call->invocation = invocation;
  source = g_cancellable_source_new (jarvis_invocation_get_cancellable (invocation));
  g_source_set_callback (source, G_SOURCE_FUNC (on_cancelled), call, g_free);
  g_source_attach (source, jarvis_plugin_get_context (plugin));
  g_source_unref (source);
}

static gboolean
streamer_init (JarvisPlugin  *plugin,
               GError       **error)
{
  jarvis_plugin_subscribe_async (plugin, JARVIS_EVENT_STREAM_DELTA, on_delta, plugin, NULL);

  return TRUE;
}

JARVIS_PLUGIN_DEFINE ("streamer", "1.0", "Holds stream deltas until cancelled", "MIT",
                      streamer_init, NULL)
