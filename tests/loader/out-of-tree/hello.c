/* A third-party plugin, built outside the project with only the installed
 * headers and pkg-config. It responds to each "test.ping" with a "test.report"
 * event whose text is "hello:REQUEST_ID". */
#include <jarvis/jarvis.h>

static void
on_ping (JarvisEvent *event,
         gpointer     user_data)
{
  JarvisPlugin *plugin = user_data;
  JarvisEvent *report = jarvis_event_new ("test.report", "report");
  char *text = g_strdup_printf ("hello:%s", jarvis_event_get_request_id (event));

  jarvis_event_set_text (report, text, -1);
  g_free (text);
  jarvis_plugin_emit (plugin, report);
}

static gboolean
hello_init (JarvisPlugin  *plugin,
            GError       **error)
{
  jarvis_plugin_subscribe (plugin, "test.ping", on_ping, plugin, NULL);
  return TRUE;
}

JARVIS_PLUGIN_DEFINE ("hello", "0.1", "Answers pings from outside the tree", "MIT",
                      hello_init, NULL)
