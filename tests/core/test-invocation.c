/* Invocations: lazy cancellables, returns from any thread, errors, double
 * returns, and the task log lines. */
#include "core-fixture.h"

#define ADD_TEST(path, func) \
  g_test_add (path, CoreFixture, NULL, core_fixture_set_up, func, core_fixture_tear_down)

static gboolean
init_holder (JarvisPlugin  *plugin,
             GError       **error)
{
  jarvis_plugin_subscribe_async (plugin, "agent.stream.*", core_record_and_hold, "hold", NULL);
  return TRUE;
}

/* A handler that never requested its cancellable gets the cancellation
 * as a flag, and a cancellable created afterwards starts out cancelled. */
static void
test_invocation_lazy_cancellable (CoreFixture   *fixture,
                                  gconstpointer  data)
{
  JarvisInvocation *early;
  JarvisInvocation *late;
  GCancellable *cancellable;

  core_fixture_register (fixture, "holder", init_holder);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "r1", NULL, NULL);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r1", NULL, "a");
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r1", NULL, "b");

  /* start, delta "a", its immediate flush, delta "b" */
  g_assert_cmpuint (fixture->held->len, ==, 4);

  early = g_ptr_array_index (fixture->held, 0);
  late = g_ptr_array_index (fixture->held, 1);
  cancellable = jarvis_invocation_get_cancellable (early);
  g_assert_true (jarvis_invocation_get_cancellable (early) == cancellable);
  g_assert_false (g_cancellable_is_cancelled (cancellable));
  g_assert_false (jarvis_invocation_is_cancelled (late));
  g_assert_cmpstr (jarvis_invocation_get_plugin_name (late), ==, "holder");
  g_assert_true (jarvis_event_has_type (jarvis_invocation_get_event (late), JARVIS_EVENT_STREAM_DELTA));

  g_assert_true (jarvis_bus_cancel_request (fixture->bus, "r1"));

  g_assert_true (g_cancellable_is_cancelled (cancellable));
  g_assert_true (jarvis_invocation_is_cancelled (late));
  g_assert_true (g_cancellable_is_cancelled (jarvis_invocation_get_cancellable (late)));

  /* The fifth call is the final flush of "b", created after the cancel. */
  g_assert_cmpuint (fixture->held->len, ==, 5);
  g_assert_true (jarvis_invocation_is_cancelled (g_ptr_array_index (fixture->held, 3)));
  g_assert_false (jarvis_invocation_is_cancelled (g_ptr_array_index (fixture->held, 4)));

  core_fixture_return_held (fixture);
  g_assert_cmpuint (fixture->completes->len, ==, 1);
  g_assert_cmpuint (core_complete_get (g_ptr_array_index (fixture->completes, 0), "tasks_cancelled"), ==, 4);
  g_assert_cmpuint (core_complete_get (g_ptr_array_index (fixture->completes, 0), "tasks_completed"), ==, 1);
}

static gpointer
return_in_thread (gpointer data)
{
  JarvisInvocation *invocation = data;

  if (jarvis_event_has_type (jarvis_invocation_get_event (invocation), JARVIS_EVENT_STREAM_DELTA))
    jarvis_invocation_return_error (invocation, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED,
                                                                     "disk full"));
  else
    jarvis_invocation_return (invocation);

  return NULL;
}

/* Returns from other threads are processed in the bus thread, as a batch:
 * one dispatch for all of them. */
static void
test_invocation_return_from_threads (CoreFixture   *fixture,
                                     gconstpointer  data)
{
  const char * const task_lines[] = { "callback_task_", NULL };
  const char * const expected[] = {
    "callback_task_created request_id=r1 event=agent.stream.start plugin=holder",
    "callback_task_created request_id=r1 event=agent.stream.delta plugin=holder",
    "callback_task_created request_id=r1 event=agent.stream.flush plugin=holder",
    "callback_task_created request_id=r1 event=agent.stream.end plugin=holder",
    "callback_task_done request_id=r1 outcome=completed",
    "callback_task_done request_id=r1 outcome=failed",
    "callback_task_done request_id=r1 outcome=completed",
    "callback_task_done request_id=r1 outcome=completed",
    "callback_task_created request_id=r1 event=agent.stream.complete plugin=holder",
    NULL
  };
  guint dispatched;

  core_fixture_register (fixture, "holder", init_holder);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "r1", NULL, NULL);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r1", NULL, "a");
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_END, "r1", NULL, NULL);
  g_assert_cmpuint (fixture->held->len, ==, 4);

  /* Threads run one after another so that the return order is fixed. */
  for (guint i = 0; i < fixture->held->len; i++)
    g_thread_join (g_thread_new ("return", return_in_thread, g_ptr_array_index (fixture->held, i)));
  g_ptr_array_set_size (fixture->held, 0);

  dispatched = jarvis_test_iterate_ready (fixture->context);
  g_assert_cmpuint (dispatched, ==, 1);

  core_assert_log (task_lines, expected);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_FAILED), ==, 1);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_HANDLER_ERRORS), ==, 1);
  g_assert_cmpuint (jarvis_test_log_count (G_LOG_LEVEL_WARNING,
                                           "callback_task_failed request_id=r1 plugin=holder "
                                           "event=agent.stream.delta: disk full"), ==, 1);
  g_assert_cmpuint (fixture->completes->len, ==, 1);
  g_assert_cmpstr (jarvis_event_get_outcome (g_ptr_array_index (fixture->completes, 0)), ==, "completed");

  jarvis_test_log_clear ();
}

/* A handler that returns G_IO_ERROR_CANCELLED on its own counts as
 * cancelled, not failed, and logs no warning. */
static void
test_invocation_cancelled_error (CoreFixture   *fixture,
                                 gconstpointer  data)
{
  core_fixture_register (fixture, "holder", init_holder);
  core_fixture_emit (fixture, "agent.stream.usage", "r9", NULL, NULL);
  g_assert_cmpuint (fixture->held->len, ==, 1);

  jarvis_invocation_return_error (g_ptr_array_index (fixture->held, 0),
                                  g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "stopped"));
  g_ptr_array_set_size (fixture->held, 0);
  jarvis_test_iterate_ready (fixture->context);

  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_CANCELLED), ==, 1);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_FAILED), ==, 0);
  jarvis_test_log_assert_no_warnings ();
}

static void
return_twice (JarvisEvent      *event,
              JarvisInvocation *invocation,
              gpointer          user_data)
{
  jarvis_invocation_return (invocation);
  jarvis_invocation_return (invocation);
}

static gboolean
init_twice (JarvisPlugin  *plugin,
            GError       **error)
{
  jarvis_plugin_subscribe_async (plugin, "custom.event", return_twice, NULL, NULL);
  return TRUE;
}

/* A second return is a critical naming plugin and request; the call is
 * processed once. The subprocess runs without fatal criticals to check
 * the count afterwards. */
static void
test_invocation_double_return (void)
{
  if (g_test_subprocess ())
    {
      CoreFixture fixture = { 0 };

      g_log_set_always_fatal (G_LOG_FATAL_MASK);
      core_fixture_set_up (&fixture, NULL);
      core_fixture_register (&fixture, "twice", init_twice);
      core_fixture_emit (&fixture, "custom.event", "r7", NULL, NULL);
      jarvis_test_iterate_ready (fixture.context);

      g_assert_cmpuint (jarvis_bus_get_counter (fixture.bus, JARVIS_COUNTER_TASKS_CREATED), ==, 1);
      g_assert_cmpuint (jarvis_bus_get_counter (fixture.bus, JARVIS_COUNTER_TASKS_COMPLETED), ==, 1);
      g_assert_cmpuint (jarvis_test_log_count (G_LOG_LEVEL_CRITICAL, "jarvis_invocation_return:"), ==, 1);
      core_fixture_tear_down (&fixture, NULL);
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("*CRITICAL*invocation of plugin twice for event custom.event of request r7*already returned*");
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  jarvis_test_log_init ();

  ADD_TEST ("/jarvis/invocation/lazy-cancellable", test_invocation_lazy_cancellable);
  ADD_TEST ("/jarvis/invocation/return-from-threads", test_invocation_return_from_threads);
  ADD_TEST ("/jarvis/invocation/cancelled-error", test_invocation_cancelled_error);
  g_test_add_func ("/jarvis/invocation/double-return", test_invocation_double_return);

  return g_test_run ();
}
