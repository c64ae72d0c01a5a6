/* good_async: an asynchronous plugin that returns each "test.ping" call
 * from an idle source on the bus's context, then reports it. */
#include "fixture-report.h"

typedef struct
{
  JarvisPlugin *plugin;
  JarvisInvocation *invocation;
} PendingCall;

static gboolean
finish_call (gpointer user_data)
{
  PendingCall *call = user_data;

  fixture_report (call->plugin, jarvis_invocation_get_event (call->invocation));
  jarvis_invocation_return (call->invocation);

  return G_SOURCE_REMOVE;
}

static void
on_ping (JarvisEvent      *event,
         JarvisInvocation *invocation,
         gpointer          user_data)
{
  PendingCall *call = g_new0 (PendingCall, 1);
  GSource *source = g_idle_source_new ();

  call->plugin = user_data;
  call->invocation = invocation;

  g_source_set_callback (source, finish_call, call, g_free);
  g_source_attach (source, jarvis_plugin_get_context (call->plugin));
  g_source_unref (source);
}

static gboolean
good_async_init (JarvisPlugin  *plugin,
                 GError       **error)
{
  jarvis_plugin_subscribe_async (plugin, "test.ping", on_ping, plugin, NULL);

  return TRUE;
}

JARVIS_PLUGIN_DEFINE ("good_async", "1.0", "Reports pings from an idle source", "MIT",
                      good_async_init, NULL)
