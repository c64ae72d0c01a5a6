/* Returns every invocation twice. The bus must process the call once and
 * report the second return as a programmer error that names this plugin. */

#include <jarvis/jarvis.h>

static void
return_twice (JarvisEvent      *event,
              JarvisInvocation *invocation,
              gpointer          user_data)
{
  jarvis_invocation_return (invocation);
  jarvis_invocation_return (invocation);
}

static gboolean
init (JarvisPlugin  *plugin,
      GError       **error)
{
  jarvis_plugin_subscribe_async (plugin, JARVIS_EVENT_STREAM_START, return_twice, NULL, NULL);

  return TRUE;
}

JARVIS_PLUGIN_DEFINE ("hostile_double_return", "1.0",
                      "Returns each invocation twice",
                      "MIT", init, NULL)
