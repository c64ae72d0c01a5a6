/* One of two files that carry the plugin name "duplicate"; the tests check
 * which of them the loader keeps by its version, "1.0". */
#include "fixture-report.h"

static void
on_ping (JarvisEvent *event,
         gpointer     user_data)
{
  fixture_report (user_data, event);
}

static gboolean
duplicate_init (JarvisPlugin  *plugin,
                GError       **error)
{
  jarvis_plugin_subscribe (plugin, "test.ping", on_ping, plugin, NULL);

  return TRUE;
}

JARVIS_PLUGIN_DEFINE ("duplicate", "1.0", "Shares its name with another file", "MIT",
                      duplicate_init, NULL)
