#include "bench-side.h"

#include <stdlib.h>
#include <string.h>

void
bench_load_observe (BenchLoad  *load,
                    const char *event_type,
                    gsize       text_length)
{
  load->sync_calls++;

  if (strcmp (event_type, "agent.stream.flush") == 0)
    {
      load->flush_events++;
      load->flushed_bytes += text_length;
    }
  else if (strcmp (event_type, "agent.stream.complete") == 0)
    {
      load->completes++;
    }
}

void
bench_iterate_pending (GMainContext *context)
{
  while (g_main_context_iteration (context, FALSE))
    ;
}

static gboolean
on_watchdog (gpointer user_data)
{
  gboolean *expired = user_data;

  *expired = TRUE;

  return G_SOURCE_REMOVE;
}

void
bench_iterate_until (GMainContext  *context,
                     const guint64 *counter,
                     guint64        target,
                     guint          timeout_s,
                     const char    *what)
{
  GSource *watchdog = g_timeout_source_new_seconds (timeout_s);
  gboolean expired = FALSE;

  g_source_set_callback (watchdog, on_watchdog, &expired, NULL);
  g_source_attach (watchdog, context);

  while (*counter < target && !expired)
    g_main_context_iteration (context, TRUE);

  g_source_destroy (watchdog);
  g_source_unref (watchdog);

  if (expired)
    {
      g_printerr ("jarvis-bench: %s did not finish within %u s: reached %" G_GUINT64_FORMAT
                  " of %" G_GUINT64_FORMAT "; the bus under test is stuck, so no figure is printed\n",
                  what, timeout_s, *counter, target);
      exit (1);
    }
}
