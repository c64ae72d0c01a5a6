/* Blocks a worker thread for each start, ignoring cancellation, for up to
 * BLOCK_SECONDS, far longer than the drain deadline the tests set. The bus
 * must detach the call with a warning that names this plugin and complete
 * the request without it. Shutdown wakes and joins the threads, as a
 * well-behaved plugin must, so that none outlives the module. */

#include <jarvis/jarvis.h>

#define BLOCK_SECONDS 5

static GMutex lock;
static GCond stop_cond;
static gboolean stopping;       /* under lock */
static GPtrArray *threads;      /* owned, of GThread *; under lock */

static gpointer
block_then_return (gpointer data)
{
  JarvisInvocation *invocation = data;
  gint64 deadline = g_get_monotonic_time () + BLOCK_SECONDS * G_TIME_SPAN_SECOND;

  g_mutex_lock (&lock);
  while (!stopping)
    {
      if (!g_cond_wait_until (&stop_cond, &lock, deadline))
        break;
    }
  g_mutex_unlock (&lock);

  g_message ("hostile_blocker: returning after blocking");
  jarvis_invocation_return (invocation);

  return NULL;
}

static void
hand_to_thread (JarvisEvent      *event,
                JarvisInvocation *invocation,
                gpointer          user_data)
{
  GThread *thread = g_thread_new ("blocker", block_then_return, invocation);

  g_mutex_lock (&lock);
  if (threads == NULL)
    threads = g_ptr_array_new ();
  g_ptr_array_add (threads, thread);
  g_mutex_unlock (&lock);
}

static gboolean
init (JarvisPlugin  *plugin,
      GError       **error)
{
  g_mutex_lock (&lock);
  stopping = FALSE;
  g_mutex_unlock (&lock);

  jarvis_plugin_subscribe_async (plugin, JARVIS_EVENT_STREAM_START, hand_to_thread, NULL, NULL);

  return TRUE;
}

static void
shutdown (JarvisPlugin *plugin)
{
  GPtrArray *joined;

  g_mutex_lock (&lock);
  stopping = TRUE;
  g_cond_broadcast (&stop_cond);
  joined = g_steal_pointer (&threads);
  g_mutex_unlock (&lock);

  if (joined == NULL)
    return;

  for (guint i = 0; i < joined->len; i++)
    g_thread_join (g_ptr_array_index (joined, i));
  g_ptr_array_unref (joined);
}

JARVIS_PLUGIN_DEFINE ("hostile_blocker", "1.0",
                      "Blocks a thread per call past the drain deadline",
                      "MIT", init, shutdown)
