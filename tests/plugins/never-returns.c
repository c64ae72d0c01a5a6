/* never_returns: an asynchronous plugin whose handler reports the call and
 * then never returns its invocation, not even when cancelled. The bus must
 * detach such calls at its drain deadline and keep the module mapped. */
#include "fixture-report.h"

/* The calls are kept, as a hung operation keeps its state, so that memory
 * checkers see them as reachable rather than lost. The bus keeps a
 * detached invocation alive because its late return may still come. */
static GPtrArray *hung_calls;

static void
on_event (JarvisEvent      *event,
          JarvisInvocation *invocation,
          gpointer          user_data)
{
  fixture_report (user_data, event);

  if (hung_calls == NULL)
    hung_calls = g_ptr_array_new ();
  g_ptr_array_add (hung_calls, invocation);
}

static gboolean
never_returns_init (JarvisPlugin  *plugin,
                    GError       **error)
{
  jarvis_plugin_subscribe_async (plugin, "test.hang", on_event, plugin, NULL);
  jarvis_plugin_subscribe_async (plugin, JARVIS_EVENT_STREAM_DELTA, on_event, plugin, NULL);

  return TRUE;
}

JARVIS_PLUGIN_DEFINE ("never_returns", "1.0", "Never returns its calls", "MIT",
                      never_returns_init, NULL)
