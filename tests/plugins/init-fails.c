/* init_fails: a plugin whose init hook fails after subscribing a handler,
 * as an init that reads a bad option would. */
#include "fixture-report.h"

static void
on_ping (JarvisEvent *event,
         gpointer     user_data)
{
  fixture_report (user_data, event);
}

static gboolean
init_fails_init (JarvisPlugin  *plugin,
                 GError       **error)
{
  guint id = jarvis_plugin_subscribe (plugin, "test.ping", on_ping, plugin, NULL);

  /* The init contract requires it to release what it acquired before failing. */
  jarvis_plugin_unsubscribe (plugin, id);

  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                       "fixture init failure: the backend is unreachable");
  return FALSE;
}

JARVIS_PLUGIN_DEFINE ("init_fails", "1.0", "Fails in init", "MIT",
                      init_fails_init, NULL)
