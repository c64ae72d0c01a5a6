/* A minimal host, built outside the project: it loads the plugin "hello"
 * by name through the default search path, sends one ping and exits with
 * 0 only if the plugin reported back. */
#include <jarvis/jarvis.h>

#include <stdio.h>

static char *report;

static void
on_report (JarvisEvent *event,
           gpointer     user_data)
{
  g_free (report);
  report = g_strdup (jarvis_event_get_text (event, NULL));
}

static gboolean
probe_init (JarvisPlugin  *plugin,
            GError       **error)
{
  jarvis_plugin_subscribe (plugin, "test.report", on_report, NULL, NULL);
  return TRUE;
}

JARVIS_PLUGIN_DEFINE ("probe", "0.1", "Records reports", "MIT", probe_init, NULL)

static void
on_closed (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  *(gboolean *) user_data = jarvis_bus_close_finish (JARVIS_BUS (source), result, NULL);
}

int
main (void)
{
  GMainContext *context = g_main_context_new ();
  JarvisBus *bus;
  JarvisPluginLoader *loader = jarvis_plugin_loader_new ();
  GError *error = NULL;
  gboolean closed = FALSE;
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  int status = 0;

  /* The close callback runs in the caller's thread-default context. */
  g_main_context_push_thread_default (context);
  bus = jarvis_bus_new (context);

  if (!jarvis_bus_register_plugin (bus, jarvis_plugin_get_info (), &error) ||
      !jarvis_plugin_loader_load (loader, bus, "hello", &error))
    {
      fprintf (stderr, "driver: %s\n", error->message);
      return 1;
    }

  jarvis_bus_emit (bus, jarvis_event_new ("test.ping", "outside"));
  while (report == NULL && g_get_monotonic_time () < deadline)
    g_main_context_iteration (context, FALSE);

  if (g_strcmp0 (report, "hello:outside") != 0)
    {
      fprintf (stderr, "driver: expected the report “hello:outside”, got “%s”\n",
               report != NULL ? report : "(none)");
      status = 1;
    }

  jarvis_bus_close_async (bus, NULL, on_closed, &closed);
  while (!closed && g_get_monotonic_time () < deadline)
    g_main_context_iteration (context, FALSE);

  if (!closed)
    {
      fprintf (stderr, "driver: the bus did not close\n");
      status = 1;
    }

  g_object_unref (loader);
  g_object_unref (bus);
  g_main_context_pop_thread_default (context);
  g_main_context_unref (context);
  g_free (report);

  return status;
}
