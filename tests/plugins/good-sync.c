/* good_sync: a synchronous plugin that reports every "test.ping" and every
 * stream delta. With the option "shutdown-file" set, its shutdown hook
 * appends a line to that file, so tests can count shutdown calls. */
#include "fixture-report.h"

#include <stdio.h>

static void
on_event (JarvisEvent *event,
          gpointer     user_data)
{
  fixture_report (user_data, event);
}

static gboolean
good_sync_init (JarvisPlugin  *plugin,
                GError       **error)
{
  jarvis_plugin_subscribe (plugin, "test.ping", on_event, plugin, NULL);
  jarvis_plugin_subscribe (plugin, JARVIS_EVENT_STREAM_DELTA, on_event, plugin, NULL);

  return TRUE;
}

static void
good_sync_shutdown (JarvisPlugin *plugin)
{
  g_autofree char *path = jarvis_plugin_dup_option_string (plugin, "shutdown-file", NULL);
  FILE *file;

  if (path == NULL)
    return;

  file = fopen (path, "a");
  if (file == NULL)
    return;

  fputs ("good_sync shutdown\n", file);
  fclose (file);
}

JARVIS_PLUGIN_DEFINE ("good_sync", "1.0", "Reports pings synchronously", "MIT",
                      good_sync_init, good_sync_shutdown)
