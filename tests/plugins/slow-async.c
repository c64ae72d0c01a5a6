/* slow_async: an asynchronous plugin slower than its input. It returns at
 * most CALLS_PER_TICK stream deltas per millisecond, oldest first, and
 * writes the most calls it ever held to the file named by its option
 * `report` at shutdown. Host tests use it to check that reading pauses
 * while too many calls are in flight. */
#include <jarvis/jarvis.h>

#include <stdio.h>

#define CALLS_PER_TICK 100

typedef struct
{
  GQueue calls;                 /* JarvisInvocation *, oldest first */
  guint max_in_flight;
  GSource *tick;                /* (owned) */
  char *report_path;            /* (owned) (nullable) */
} SlowAsync;

static gboolean
on_tick (gpointer user_data)
{
  SlowAsync *slow = user_data;
  JarvisInvocation *invocation;

  for (guint i = 0; i < CALLS_PER_TICK && (invocation = g_queue_pop_head (&slow->calls)) != NULL; i++)
    jarvis_invocation_return (invocation);

  return G_SOURCE_CONTINUE;
}

static void
on_delta (JarvisEvent      *event,
          JarvisInvocation *invocation,
          gpointer          user_data)
{
  SlowAsync *slow = user_data;

  g_queue_push_tail (&slow->calls, invocation);
  slow->max_in_flight = MAX (slow->max_in_flight, slow->calls.length);
}

static void
slow_async_free (gpointer data)
{
  SlowAsync *slow = data;

  g_source_destroy (slow->tick);
  g_source_unref (slow->tick);
  g_queue_clear (&slow->calls);
  g_free (slow->report_path);
  g_free (slow);
}

static gboolean
slow_async_init (JarvisPlugin  *plugin,
                 GError       **error)
{
  SlowAsync *slow = g_new0 (SlowAsync, 1);

  g_queue_init (&slow->calls);
  slow->report_path = jarvis_plugin_dup_option_string (plugin, "report", NULL);
  slow->tick = g_timeout_source_new (1);
  g_source_set_callback (slow->tick, on_tick, slow, NULL);
  g_source_attach (slow->tick, jarvis_plugin_get_context (plugin));

  jarvis_plugin_set_data (plugin, slow, slow_async_free);
  jarvis_plugin_subscribe_async (plugin, JARVIS_EVENT_STREAM_DELTA, on_delta, slow, NULL);

  return TRUE;
}

static void
slow_async_shutdown (JarvisPlugin *plugin)
{
  SlowAsync *slow = jarvis_plugin_get_data (plugin);
  g_autofree char *line = g_strdup_printf ("%u\n", slow->max_in_flight);

  if (slow->report_path != NULL)
    g_file_set_contents (slow->report_path, line, -1, NULL);
}

JARVIS_PLUGIN_DEFINE ("slow_async", "1.0", "Returns deltas slower than they come", "MIT",
                      slow_async_init, slow_async_shutdown)
