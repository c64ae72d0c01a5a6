/* Hands every start to a thread that ignores cancellation and returns the
 * invocation only when the test calls hostile_late_return_release(), which
 * it does after the bus closed. The bus must detach the call at its drain
 * deadline, keep this module mapped, and ignore the late return.
 *
 * The extra exported function is for the test only: it opens this same
 * file with GModule, which yields the handle the loader already holds. */

#include <jarvis/jarvis.h>

JARVIS_PLUGIN_EXPORT void hostile_late_return_release (void);
JARVIS_PLUGIN_EXPORT guint hostile_late_return_get_n_returned (void);

static GMutex lock;
static GCond released_cond;
static gboolean released;       /* under lock */
static GPtrArray *threads;      /* owned, of GThread *; under lock */
static guint n_returned;        /* atomic */

static gpointer
wait_and_return (gpointer data)
{
  JarvisInvocation *invocation = data;

  g_mutex_lock (&lock);
  while (!released)
    g_cond_wait (&released_cond, &lock);
  g_mutex_unlock (&lock);

  jarvis_invocation_return (invocation);
  g_atomic_int_inc (&n_returned);

  return NULL;
}

static void
hand_to_thread (JarvisEvent      *event,
                JarvisInvocation *invocation,
                gpointer          user_data)
{
  GThread *thread = g_thread_new ("late-return", wait_and_return, invocation);

  g_mutex_lock (&lock);
  if (threads == NULL)
    threads = g_ptr_array_new ();
  g_ptr_array_add (threads, thread);
  g_mutex_unlock (&lock);
}

/* Lets every waiting thread return its invocation, and joins them. */
void
hostile_late_return_release (void)
{
  GPtrArray *joined;

  g_mutex_lock (&lock);
  released = TRUE;
  g_cond_broadcast (&released_cond);
  joined = g_steal_pointer (&threads);
  g_mutex_unlock (&lock);

  if (joined == NULL)
    return;

  for (guint i = 0; i < joined->len; i++)
    g_thread_join (g_ptr_array_index (joined, i));
  g_ptr_array_unref (joined);
}

guint
hostile_late_return_get_n_returned (void)
{
  return (guint) g_atomic_int_get (&n_returned);
}

static gboolean
init (JarvisPlugin  *plugin,
      GError       **error)
{
  jarvis_plugin_subscribe_async (plugin, JARVIS_EVENT_STREAM_START, hand_to_thread, NULL, NULL);

  return TRUE;
}

JARVIS_PLUGIN_DEFINE ("hostile_late_return", "1.0",
                      "Returns invocations from a thread after the bus closed",
                      "MIT", init, NULL)
