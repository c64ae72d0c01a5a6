/* Soak runs: 100,000 requests (and a short run of 5,000) in 1,000 sessions through sync and async
 * handlers. 10% of the requests are superseded by the next request of
 * their session, 5% are cancelled, and 1% meet a failing handler. The
 * ReliabilityChecker checks every request as it completes, in constant
 * memory. Peak RSS (VmHWM) is read after 10% and after 100% of the
 * requests completed; the two must be within 10% of each other.
 *
 * The long run belongs in suite `slow`, which only the normal pass runs.
 * The short run is in the default suite, so valgrind and ASan see the bus
 * forget old finished request ids. */

#include <jarvis/jarvis.h>

#include <string.h>

#include "reliability-check.h"
#include "reliability-log.h"

#define N_REQUESTS_LONG 100000
#define N_REQUESTS_SHORT 5000
#define N_SESSIONS 1000
#define N_DELTAS 5
#define BATCH_REQUESTS 500
#define SEED 7u

typedef enum
{
  PLAN_END,
  PLAN_SUPERSEDED,
  PLAN_CANCELLED,
  PLAN_HANDLER_FAILS,
} Plan;

typedef struct
{
  GMainContext *context;        /* owned */
  JarvisBus *bus;               /* owned */
  ReliabilityChecker *checker;  /* owned */
  GRand *rand;                  /* owned */
  GThreadPool *return_pool;     /* owned */
  guint n_requests;
  guint8 *plans;                /* owned, Plan per request */
  guint n_emitted_requests;
  guint n_pending_returns;      /* atomic */
  guint n_sync_calls;
  guint n_unexpected_lines;
  gboolean closed;
  gboolean timed_out;
} Soak;

static Soak *registering;

static gboolean
return_from_timer (gpointer data)
{
  JarvisInvocation *invocation = data;

  jarvis_invocation_return (invocation);

  return G_SOURCE_REMOVE;
}

static void
return_in_pool (gpointer data,
                gpointer pool_data)
{
  Soak *soak = pool_data;

  jarvis_invocation_return (data);
  g_atomic_int_add (&soak->n_pending_returns, -1);
  g_main_context_wakeup (soak->context);
}

static guint
request_index (JarvisEvent *event)
{
  return (guint) g_ascii_strtoull (jarvis_event_get_request_id (event) + 1, NULL, 10);
}

/* Returns 70% of calls at once, 20% from a timer, 10% from a thread, and
 * fails the start of requests planned to meet a failing handler. */
static void
handle_async (JarvisEvent      *event,
              JarvisInvocation *invocation,
              gpointer          user_data)
{
  Soak *soak = user_data;
  double pick = g_rand_double (soak->rand);
  GSource *timer;

  if (jarvis_event_has_type (event, JARVIS_EVENT_STREAM_START) &&
      soak->plans[request_index (event)] == PLAN_HANDLER_FAILS)
    {
      jarvis_invocation_return_error (invocation,
                                      g_error_new (G_IO_ERROR, G_IO_ERROR_FAILED,
                                                   "planned failure for %s",
                                                   jarvis_event_get_request_id (event)));
      return;
    }

  if (pick < 0.7)
    {
      jarvis_invocation_return (invocation);
    }
  else if (pick < 0.9)
    {
      timer = g_timeout_source_new (g_rand_int_range (soak->rand, 0, 3));
      g_source_set_callback (timer, return_from_timer, invocation, NULL);
      g_source_attach (timer, soak->context);
      g_source_unref (timer);
    }
  else
    {
      g_atomic_int_inc (&soak->n_pending_returns);
      g_thread_pool_push (soak->return_pool, invocation, NULL);
    }
}

static void
handle_sync (JarvisEvent *event,
             gpointer     user_data)
{
  Soak *soak = user_data;

  soak->n_sync_calls++;
}

static gboolean
init_soak_plugin (JarvisPlugin  *plugin,
                  GError       **error)
{
  jarvis_plugin_subscribe_async (plugin, JARVIS_EVENT_STREAM_START, handle_async, registering, NULL);
  jarvis_plugin_subscribe_async (plugin, JARVIS_EVENT_STREAM_DELTA, handle_async, registering, NULL);
  jarvis_plugin_subscribe (plugin, JARVIS_EVENT_STREAM_DELTA, handle_sync, registering, NULL);
  jarvis_plugin_subscribe (plugin, JARVIS_EVENT_STREAM_FLUSH, handle_sync, registering, NULL);

  return TRUE;
}

static const JarvisPluginInfo soak_plugin_info = {
  .abi_version = JARVIS_PLUGIN_ABI_VERSION,
  .struct_size = sizeof (JarvisPluginInfo),
  .name = "soak",
  .version = "1",
  .description = "Mixed sync and async handlers for the soak run",
  .license = "MIT",
  .init = init_soak_plugin,
};

/* Reads the process's peak resident set size, in kB. */
static guint64
read_peak_rss_kb (void)
{
  g_autofree char *status = NULL;
  g_autoptr(GError) error = NULL;
  const char *line;

  g_file_get_contents ("/proc/self/status", &status, NULL, &error);
  g_assert_no_error (error);

  line = strstr (status, "VmHWM:");
  g_assert_nonnull (line);

  return g_ascii_strtoull (line + strlen ("VmHWM:"), NULL, 10);
}

static void
emit (Soak       *soak,
      const char *event_type,
      const char *request_id,
      const char *session_id,
      const char *text)
{
  JarvisEvent *event = jarvis_event_new (event_type, request_id);

  jarvis_event_set_session_id (event, session_id);
  if (text != NULL)
    jarvis_event_set_text (event, text, -1);

  reliability_checker_note_emit (soak->checker, event);
  jarvis_bus_emit (soak->bus, event);
}

/* Emits request @index: a start, its deltas, then an end or a cancel. A
 * request planned to be superseded gets no end; the caller emits the next
 * request of its session right after it. */
static void
emit_request (Soak *soak,
              guint index)
{
  g_autofree char *request_id = g_strdup_printf ("r%u", index);
  g_autofree char *session_id = g_strdup_printf ("s%u", index % N_SESSIONS);

  emit (soak, JARVIS_EVENT_STREAM_START, request_id, session_id, NULL);
  for (guint i = 0; i < N_DELTAS; i++)
    {
      char text[32];

      g_snprintf (text, sizeof text, "tok%u-%u ", index, i);
      emit (soak, JARVIS_EVENT_STREAM_DELTA, request_id, session_id, text);
    }

  switch ((Plan) soak->plans[index])
    {
    case PLAN_SUPERSEDED:
      break;
    case PLAN_CANCELLED:
      emit (soak, JARVIS_EVENT_STREAM_CANCEL, request_id, session_id, NULL);
      break;
    case PLAN_END:
    case PLAN_HANDLER_FAILS:
    default:
      emit (soak, JARVIS_EVENT_STREAM_END, request_id, session_id, NULL);
      break;
    }

  soak->n_emitted_requests++;
}

static gboolean
on_watchdog (gpointer data)
{
  Soak *soak = data;

  soak->timed_out = TRUE;

  return G_SOURCE_REMOVE;
}

static void
run_until_completed (Soak  *soak,
                     guint  n_completed)
{
  GSource *watchdog = g_timeout_source_new_seconds (60);

  g_source_set_callback (watchdog, on_watchdog, soak, NULL);
  g_source_attach (watchdog, soak->context);

  while (reliability_checker_get_n_completed (soak->checker) < n_completed && !soak->timed_out)
    g_main_context_iteration (soak->context, TRUE);

  g_source_destroy (watchdog);
  g_source_unref (watchdog);
  g_assert_false (soak->timed_out);
}

/* Request i is on session i % N_SESSIONS, so the next request of its
 * session is i + N_SESSIONS. A superseded request therefore completes only
 * once a later batch emits that successor, so a session's last request is
 * never planned to be superseded. */
static void
plan_requests (Soak *soak)
{
  soak->plans = g_new0 (guint8, soak->n_requests);

  for (guint i = 0; i < soak->n_requests; i++)
    {
      double pick = g_rand_double (soak->rand);

      if (pick < 0.10 && i + N_SESSIONS < soak->n_requests)
        soak->plans[i] = PLAN_SUPERSEDED;
      else if (pick < 0.15)
        soak->plans[i] = PLAN_CANCELLED;
      else if (pick < 0.16)
        soak->plans[i] = PLAN_HANDLER_FAILS;
      else
        soak->plans[i] = PLAN_END;
    }
}

static void
on_closed (GObject      *source,
           GAsyncResult *result,
           gpointer      data)
{
  Soak *soak = data;
  g_autoptr(GError) error = NULL;

  g_assert_true (jarvis_bus_close_finish (JARVIS_BUS (source), result, &error));
  g_assert_no_error (error);
  soak->closed = TRUE;
}

static guint
count_plan (Soak *soak,
            Plan  plan)
{
  guint count = 0;

  for (guint i = 0; i < soak->n_requests; i++)
    count += soak->plans[i] == plan;

  return count;
}

static void
test_soak (gconstpointer data)
{
  Soak soak = { 0 };
  const guint n_requests = GPOINTER_TO_UINT (data);
  g_autoptr(GError) error = NULL;
  guint64 rss_at_10 = 0;
  guint64 rss_at_100;
  guint n_superseded_pending = 0;
  GSource *watchdog;

  soak.context = g_main_context_new ();
  g_main_context_push_thread_default (soak.context);
  soak.rand = g_rand_new_with_seed (SEED);
  soak.return_pool = g_thread_pool_new (return_in_pool, &soak, 2, FALSE, NULL);
  soak.n_requests = n_requests;
  soak.checker = reliability_checker_new (n_requests);
  plan_requests (&soak);

  soak.bus = jarvis_bus_new (soak.context);
  jarvis_bus_set_flush_policy (soak.bus, 5, 64);
  jarvis_bus_set_end_grace (soak.bus, 200);
  /* The test asserts that no call is detached. Its handlers return within
   * milliseconds, but valgrind can stall a thread for seconds. */
  jarvis_bus_set_drain_timeout (soak.bus, g_getenv ("JARVIS_UNDER_VALGRIND") ? 60000 : 2000);
  reliability_checker_attach (soak.checker, soak.bus);
  registering = &soak;
  jarvis_bus_register_plugin (soak.bus, &soak_plugin_info, &error);
  registering = NULL;
  g_assert_no_error (error);

  /* Requests go out in order of their index. Superseded requests complete
   * only when their session's next request starts, in a later batch, so
   * each wait leaves those out. */
  for (guint next = 0; next < n_requests;)
    {
      guint batch_end = MIN (next + BATCH_REQUESTS, n_requests);

      for (; next < batch_end; next++)
        emit_request (&soak, next);

      n_superseded_pending = 0;
      for (guint i = MAX (batch_end, N_SESSIONS) - N_SESSIONS; i < batch_end; i++)
        n_superseded_pending += soak.plans[i] == PLAN_SUPERSEDED;
      run_until_completed (&soak, soak.n_emitted_requests - n_superseded_pending);

      /* Handler failures log one warning each; keep the capture bounded. */
      soak.n_unexpected_lines += reliability_log_get_n_unexpected ();
      reliability_log_reset ();
      reliability_log_allow ("jarvis: *planned failure*");
      reliability_log_allow ("jarvis: *soak*failed*");

      if (rss_at_10 == 0 && next >= n_requests / 10)
        rss_at_10 = read_peak_rss_kb ();
    }

  run_until_completed (&soak, n_requests);
  rss_at_100 = read_peak_rss_kb ();

  watchdog = g_timeout_source_new_seconds (60);
  g_source_set_callback (watchdog, on_watchdog, &soak, NULL);
  g_source_attach (watchdog, soak.context);
  jarvis_bus_close_async (soak.bus, NULL, on_closed, &soak);
  while ((!soak.closed || g_atomic_int_get (&soak.n_pending_returns) > 0) && !soak.timed_out)
    g_main_context_iteration (soak.context, TRUE);
  g_source_destroy (watchdog);
  g_source_unref (watchdog);
  g_assert_false (soak.timed_out);
  g_thread_pool_free (g_steal_pointer (&soak.return_pool), FALSE, TRUE);

  g_test_message ("soak: %u requests, peak RSS %" G_GUINT64_FORMAT " kB at 10%%, %" G_GUINT64_FORMAT " kB at 100%%",
                  n_requests, rss_at_10, rss_at_100);

  if (reliability_checker_finish (soak.checker, soak.bus) != 0)
    reliability_checker_print (soak.checker);
  g_assert_cmpuint (reliability_checker_get_n_violations (soak.checker), ==, 0);

  g_assert_cmpuint (reliability_checker_get_n_completed (soak.checker), ==, n_requests);
  g_assert_cmpuint (reliability_checker_get_n_outcome (soak.checker, "superseded"), ==,
                    count_plan (&soak, PLAN_SUPERSEDED));
  g_assert_cmpuint (reliability_checker_get_n_outcome (soak.checker, "cancelled"), ==,
                    count_plan (&soak, PLAN_CANCELLED));
  g_assert_cmpuint (reliability_checker_get_n_outcome (soak.checker, "completed"), ==,
                    count_plan (&soak, PLAN_END) + count_plan (&soak, PLAN_HANDLER_FAILS));
  g_assert_cmpuint (jarvis_bus_get_counter (soak.bus, JARVIS_COUNTER_TASKS_FAILED), ==,
                    count_plan (&soak, PLAN_HANDLER_FAILS));
  g_assert_cmpuint (jarvis_bus_get_counter (soak.bus, JARVIS_COUNTER_TASKS_DETACHED), ==, 0);
  g_assert_cmpuint (jarvis_bus_get_counter (soak.bus, JARVIS_COUNTER_LATE_EVENTS_DROPPED), ==, 0);
  g_assert_cmpuint (soak.n_unexpected_lines + reliability_log_get_n_unexpected (), ==, 0);

  /* No growth: the peak after the whole run stays within 10% of the peak
   * after its first tenth. The short run is for valgrind and ASan, whose
   * allocators make RSS meaningless, so it skips this check. */
  if (n_requests >= N_REQUESTS_LONG)
    g_assert_cmpuint (rss_at_100 * 10, <=, rss_at_10 * 11);

  g_clear_object (&soak.bus);
  reliability_checker_free (soak.checker);
  g_free (soak.plans);
  g_rand_free (soak.rand);
  g_main_context_pop_thread_default (soak.context);
  g_main_context_unref (soak.context);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  reliability_log_init ();
  reliability_log_allow ("jarvis: *planned failure*");
  reliability_log_allow ("jarvis: *soak*failed*");

  g_test_add_data_func ("/jarvis/reliability/soak/100k-requests",
                        GUINT_TO_POINTER (N_REQUESTS_LONG), test_soak);

  /* Long enough to cycle the bus's bounded set of finished request ids,
   * short enough for valgrind. */
  g_test_add_data_func ("/jarvis/reliability/soak/5000-requests",
                        GUINT_TO_POINTER (N_REQUESTS_SHORT), test_soak);

  return g_test_run ();
}
