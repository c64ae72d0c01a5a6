/* Request cleanup: the fixed order, waiting for cancelled calls, the drain
 * deadline, the end grace, errors, late events, and re-entrant calls. */
#include "core-fixture.h"

#define ADD_TEST(path, func) \
  g_test_add (path, CoreFixture, NULL, core_fixture_set_up, func, core_fixture_tear_down)

static const char * const lifecycle_prefixes[] = {
  "stream_", "cleanup_", "flush_done", "late_event_dropped", NULL
};

static gboolean
init_recorder (JarvisPlugin  *plugin,
               GError       **error)
{
  jarvis_plugin_subscribe (plugin, "agent.stream.*", core_record_sync, "sync", NULL);
  jarvis_plugin_subscribe_async (plugin, JARVIS_EVENT_STREAM_DELTA, core_record_and_hold, "hold", NULL);
  jarvis_plugin_subscribe_async (plugin, JARVIS_EVENT_STREAM_FLUSH, core_record_and_hold, "hold", NULL);
  return TRUE;
}

static gboolean
complete_count_reached (gpointer user_data)
{
  return core_fixture->completes->len >= GPOINTER_TO_UINT (user_data);
}

/* Cancel with calls in flight: the five steps in order, the final flush
 * dispatched to async handlers too, and the complete only after every
 * call returned. */
static void
test_cleanup_order (CoreFixture   *fixture,
                    gconstpointer  data)
{
  const char * const expected[] = {
    "stream_start request_id=r1 session=default trace=t1",
    "flush_done request_id=r1 tokens_sent=1 bytes=5",
    "stream_cancelled trace=t1 request_id=r1",
    "cleanup_flush_task request_id=r1",
    "cleanup_callback_tasks request_id=r1 count=3",
    "flush_done request_id=r1 tokens_sent=1 bytes=6",
    "cleanup_buffer request_id=r1",
    "cleanup_request_complete request_id=r1",
    "stream_end trace=t1 request_id=r1 cleanup_done=true",
    NULL
  };
  JarvisEvent *start = jarvis_test_event_new (JARVIS_EVENT_STREAM_START, "r1", NULL, NULL);
  JarvisEvent *complete;
  g_autoptr(GCancellable) request_cancellable = NULL;

  core_fixture_register (fixture, "recorder", init_recorder);
  jarvis_event_set_trace_id (start, "t1");
  jarvis_bus_emit (fixture->bus, start);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r1", NULL, "Hello");
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r1", NULL, " world");
  request_cancellable = jarvis_bus_dup_request_cancellable (fixture->bus, "r1");
  g_assert_nonnull (request_cancellable);
  g_assert_cmpuint (fixture->held->len, ==, 3);

  g_assert_true (jarvis_bus_cancel_request (fixture->bus, "r1"));
  g_assert_false (jarvis_bus_cancel_request (fixture->bus, "r1"));
  g_assert_true (g_cancellable_is_cancelled (request_cancellable));

  /* The final flush added one uncancelled call; nothing completed yet. */
  g_assert_cmpuint (fixture->held->len, ==, 4);
  g_assert_cmpuint (fixture->completes->len, ==, 0);
  g_assert_cmpstr (fixture->flushed->str, ==, "Hello world");

  /* Late events are dropped and logged once. */
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r1", NULL, "late");
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r1", NULL, "later");

  core_fixture_return_held (fixture);
  g_assert_cmpuint (fixture->completes->len, ==, 1);

  complete = g_ptr_array_index (fixture->completes, 0);
  g_assert_cmpstr (jarvis_event_get_outcome (complete), ==, "cancelled");
  g_assert_cmpstr (jarvis_event_get_trace_id (complete), ==, "t1");
  g_assert_cmpuint (core_complete_get (complete, "tasks_created"), ==, 4);
  g_assert_cmpuint (core_complete_get (complete, "tasks_cancelled"), ==, 3);
  g_assert_cmpuint (core_complete_get (complete, "tasks_completed"), ==, 1);
  g_assert_cmpuint (core_complete_get (complete, "late_events_dropped"), ==, 2);
  g_assert_cmpuint (core_complete_get (complete, "events"), ==, 5);

  {
    const char * const with_late[] = {
      expected[0], expected[1], expected[2], expected[3], expected[4], expected[5],
      expected[6], expected[7], "late_event_dropped request_id=r1 event=agent.stream.delta",
      expected[8], NULL
    };

    core_assert_log (lifecycle_prefixes, with_late);
  }

  /* Nothing is dispatched for the request after its complete. */
  g_ptr_array_set_size (fixture->calls, 0);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r1", NULL, "after");
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "r1", NULL, NULL);
  g_assert_cmpuint (fixture->calls->len, ==, 0);
  g_assert_null (jarvis_bus_dup_request_cancellable (fixture->bus, "r1"));
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_LATE_EVENTS_DROPPED), ==, 4);
}

/* After its end the request waits for in-flight calls, then completes. */
static void
test_cleanup_end_waits (CoreFixture   *fixture,
                        gconstpointer  data)
{
  core_fixture_register (fixture, "recorder", init_recorder);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r1", NULL, "x");
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_END, "r1", NULL, NULL);

  g_assert_cmpuint (fixture->held->len, ==, 2);
  g_assert_cmpuint (jarvis_test_log_count (G_LOG_LEVEL_DEBUG, "cleanup_flush_task"), ==, 0);

  /* After the end, the request admits no new handler calls: two more
   * deltas are dropped, counted, and logged once. */
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r1", NULL, "late");
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r1", NULL, "later");
  g_assert_cmpuint (fixture->held->len, ==, 2);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_LATE_EVENTS_DROPPED), ==, 2);
  g_assert_cmpuint (jarvis_test_log_count (G_LOG_LEVEL_DEBUG,
                                           "late_event_dropped request_id=r1 event=agent.stream.delta"), ==, 1);

  core_fixture_return_held (fixture);
  g_assert_cmpuint (fixture->completes->len, ==, 1);
  g_assert_cmpstr (jarvis_event_get_outcome (g_ptr_array_index (fixture->completes, 0)), ==, "completed");
  g_assert_cmpstr (fixture->flushed->str, ==, "x");
  g_assert_cmpuint (core_complete_get (g_ptr_array_index (fixture->completes, 0), "late_events_dropped"), ==, 2);
  g_assert_cmpuint (jarvis_test_log_count (G_LOG_LEVEL_DEBUG, "cleanup_callback_tasks request_id=r1 count=0"), ==, 1);
  g_assert_cmpuint (jarvis_test_log_count (G_LOG_LEVEL_DEBUG,
                                           "stream_start request_id=r1 session=default trace= implicit=true"), ==, 1);
}

/* Calls that outlive the end grace are cancelled; calls that ignore the
 * cancel are detached at the drain deadline with a warning. Their late
 * return is accepted and ignored. */
static void
test_cleanup_grace_and_drain (CoreFixture   *fixture,
                              gconstpointer  data)
{
  g_autoptr(GPtrArray) stuck = NULL;
  JarvisEvent *complete;

  jarvis_bus_set_end_grace (fixture->bus, 5);
  jarvis_bus_set_drain_timeout (fixture->bus, 5);
  core_fixture_register (fixture, "recorder", init_recorder);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r1", NULL, "x");
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_END, "r1", NULL, NULL);

  jarvis_test_iterate_until (fixture->context, complete_count_reached, GUINT_TO_POINTER (1), 5000);

  complete = g_ptr_array_index (fixture->completes, 0);
  g_assert_cmpstr (jarvis_event_get_outcome (complete), ==, "completed");
  g_assert_cmpuint (core_complete_get (complete, "tasks_detached"), ==, 2);
  g_assert_cmpuint (jarvis_bus_get_n_invocations (fixture->bus), ==, 0);
  g_assert_cmpuint (jarvis_test_log_count (G_LOG_LEVEL_WARNING,
                                           "callback_task_detached request_id=r1 plugin=recorder count=2"), ==, 1);

  /* The handler returns long after; the bus ignores it. */
  stuck = g_steal_pointer (&fixture->held);
  fixture->held = g_ptr_array_new ();
  for (guint i = 0; i < stuck->len; i++)
    {
      g_assert_true (jarvis_invocation_is_cancelled (g_ptr_array_index (stuck, i)));
      jarvis_invocation_return (g_ptr_array_index (stuck, i));
    }
  jarvis_test_iterate_ready (fixture->context);

  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_CANCELLED), ==, 0);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_DETACHED), ==, 2);
  g_assert_cmpuint (fixture->completes->len, ==, 1);
  jarvis_test_log_clear ();
}

/* An error event is dispatched, then the request fails at once; the
 * error's message goes to the complete. */
static void
test_cleanup_error (CoreFixture   *fixture,
                    gconstpointer  data)
{
  JarvisEvent *error_event = jarvis_test_event_new (JARVIS_EVENT_STREAM_ERROR, "r1", NULL, NULL);
  GVariantDict dict;
  JarvisEvent *complete;
  const char *message = NULL;

  core_fixture_register (fixture, "recorder", init_recorder);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "r1", NULL, NULL);
  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "message", "s", "rate limited");
  jarvis_event_set_payload (error_event, g_variant_dict_end (&dict));
  jarvis_bus_emit (fixture->bus, error_event);

  g_assert_cmpuint (fixture->completes->len, ==, 1);
  complete = g_ptr_array_index (fixture->completes, 0);
  g_assert_cmpstr (jarvis_event_get_outcome (complete), ==, "failed");
  g_assert_true (g_variant_lookup (jarvis_event_get_payload (complete), "error", "&s", &message));
  g_assert_cmpstr (message, ==, "rate limited");
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_REQUESTS_FAILED), ==, 1);
  g_assert_cmpuint (jarvis_test_log_count (G_LOG_LEVEL_DEBUG, "stream_cancelled"), ==, 0);
}

/* A handler that cancels its own request: the cleanup is deferred to a
 * source, runs once, and the other handlers of the event still run. */
static JarvisBus *reentrant_bus;
static guint n_cancel_calls;

static void
cancel_own_request (JarvisEvent *event,
                    gpointer     user_data)
{
  core_record_sync (event, "canceller");
  if (jarvis_event_has_type (event, JARVIS_EVENT_STREAM_DELTA) &&
      g_str_equal (jarvis_event_get_request_id (event), "r1"))
    {
      g_assert_true (jarvis_bus_cancel_request (reentrant_bus, jarvis_event_get_request_id (event)));
      g_assert_false (jarvis_bus_cancel_request (reentrant_bus, jarvis_event_get_request_id (event)));
      n_cancel_calls++;
    }
}

static void
cancel_from_cancelled (GCancellable *cancellable,
                       gpointer      user_data)
{
  /* Only flags and cancels are allowed here; the bus defers the cleanup. */
  jarvis_bus_cancel_request (reentrant_bus, "r2");
}

static void
hold_and_watch (JarvisEvent      *event,
                JarvisInvocation *invocation,
                gpointer          user_data)
{
  core_record_and_hold (event, invocation, "watch");
  g_cancellable_connect (jarvis_invocation_get_cancellable (invocation),
                         G_CALLBACK (cancel_from_cancelled), NULL, NULL);
}

static gboolean
init_reentrant (JarvisPlugin  *plugin,
                GError       **error)
{
  jarvis_plugin_subscribe (plugin, "agent.stream.*", cancel_own_request, NULL, NULL);
  jarvis_plugin_subscribe (plugin, "agent.stream.*", core_record_sync, "after", NULL);
  jarvis_plugin_subscribe_async (plugin, JARVIS_EVENT_STREAM_START, hold_and_watch, NULL, NULL);
  return TRUE;
}

static void
test_cleanup_reentrant (CoreFixture   *fixture,
                        gconstpointer  data)
{
  const char * const expected[] = {
    "canceller:agent.stream.start:r1", "after:agent.stream.start:r1", "watch:agent.stream.start:r1",
    "canceller:agent.stream.start:r2", "after:agent.stream.start:r2", "watch:agent.stream.start:r2",
    "canceller:agent.stream.delta:r2", "after:agent.stream.delta:r2",
    "canceller:agent.stream.flush:r2", "after:agent.stream.flush:r2",
    "canceller:agent.stream.delta:r1", "after:agent.stream.delta:r1",
    "canceller:agent.stream.flush:r1", "after:agent.stream.flush:r1",
    "canceller:agent.stream.complete:r1", "after:agent.stream.complete:r1",
    "canceller:agent.stream.complete:r2", "after:agent.stream.complete:r2",
    NULL
  };

  reentrant_bus = fixture->bus;
  n_cancel_calls = 0;
  core_fixture_register (fixture, "reentrant", init_reentrant);

  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "r1", "s1", NULL);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "r2", "s2", NULL);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r2", "s2", "y");

  /* The delta's handler cancels r1 from inside the dispatch. */
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r1", "s1", "x");
  g_assert_cmpuint (n_cancel_calls, ==, 1);
  g_assert_cmpuint (jarvis_test_log_count (G_LOG_LEVEL_DEBUG, "cleanup_flush_task request_id=r1"), ==, 0);

  /* The deferred cleanup of r1 cancels its call, whose cancelled handler
   * requests r2's cleanup, deferred again. */
  jarvis_test_iterate_ready (fixture->context);
  g_assert_cmpuint (jarvis_test_log_count (G_LOG_LEVEL_DEBUG, "cleanup_flush_task request_id=r1"), ==, 1);
  g_assert_cmpuint (jarvis_test_log_count (G_LOG_LEVEL_DEBUG, "cleanup_flush_task request_id=r2"), ==, 1);

  core_fixture_return_held (fixture);
  g_assert_cmpuint (fixture->completes->len, ==, 2);
  core_fixture_assert_calls (fixture, expected);
  g_assert_cmpuint (jarvis_test_log_count (G_LOG_LEVEL_DEBUG, "cleanup_request_complete"), ==, 2);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  jarvis_test_log_init ();

  ADD_TEST ("/jarvis/request/cleanup/order", test_cleanup_order);
  ADD_TEST ("/jarvis/request/cleanup/end-waits", test_cleanup_end_waits);
  ADD_TEST ("/jarvis/request/cleanup/grace-and-drain", test_cleanup_grace_and_drain);
  ADD_TEST ("/jarvis/request/cleanup/error", test_cleanup_error);
  ADD_TEST ("/jarvis/request/cleanup/reentrant", test_cleanup_reentrant);

  return g_test_run ();
}
