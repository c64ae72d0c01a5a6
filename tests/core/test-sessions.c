/* Sessions: a start supersedes the session's running request, and the new
 * request waits, in order, until the old one's complete was emitted.
 * Other sessions are not affected. */
#include "core-fixture.h"

#define ADD_TEST(path, func) \
  g_test_add (path, CoreFixture, NULL, core_fixture_set_up, func, core_fixture_tear_down)

static gboolean
init_recorder (JarvisPlugin  *plugin,
               GError       **error)
{
  jarvis_plugin_subscribe (plugin, JARVIS_EVENT_STREAM_START, core_record_sync, "sync", NULL);
  jarvis_plugin_subscribe (plugin, JARVIS_EVENT_STREAM_DELTA, core_record_sync, "sync", NULL);
  jarvis_plugin_subscribe (plugin, JARVIS_EVENT_STREAM_COMPLETE, core_record_sync, "sync", NULL);
  jarvis_plugin_subscribe_async (plugin, JARVIS_EVENT_STREAM_DELTA, core_record_and_hold, "hold", NULL);
  return TRUE;
}

static void
test_sessions_supersede (CoreFixture   *fixture,
                         gconstpointer  data)
{
  const char * const prefixes[] = { "stream_", "prev_stream", "cleanup_request_complete", NULL };
  const char * const log_expected[] = {
    "stream_start request_id=old session=s trace=",
    "stream_start request_id=other session=t trace=",
    "stream_cancelled trace= request_id=old",
    "cleanup_request_complete request_id=old",
    "stream_end trace= request_id=old cleanup_done=true",
    "prev_stream_finished_cleanly session=s request_id=old",
    "stream_start request_id=new session=s trace=",
    NULL
  };
  const char * const calls_expected[] = {
    "sync:agent.stream.start:old",
    "sync:agent.stream.delta:old", "hold:agent.stream.delta:old",
    "sync:agent.stream.start:other",
    "sync:agent.stream.delta:other", "hold:agent.stream.delta:other",
    "sync:agent.stream.complete:old",
    "sync:agent.stream.start:new",
    "sync:agent.stream.delta:new", "hold:agent.stream.delta:new",
    "sync:agent.stream.delta:new", "hold:agent.stream.delta:new",
    NULL
  };
  JarvisInvocation *old_call;
  JarvisInvocation *other_call;
  JarvisEvent *complete;

  core_fixture_register (fixture, "recorder", init_recorder);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "old", "s", NULL);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "old", "s", "a");
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "other", "t", NULL);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "other", "t", "b");
  old_call = g_ptr_array_index (fixture->held, 0);
  other_call = g_ptr_array_index (fixture->held, 1);

  /* The new start supersedes "old"; its events wait for old's complete. */
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "new", "s", NULL);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "new", "s", "c");
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "new", "s", "d");
  g_assert_true (jarvis_invocation_is_cancelled (old_call));
  g_assert_false (jarvis_invocation_is_cancelled (other_call));
  g_assert_cmpuint (fixture->calls->len, ==, 6);
  g_assert_cmpuint (jarvis_bus_get_n_active_requests (fixture->bus), ==, 3);

  /* The other session is not blocked. */
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_END, "other", "t", NULL);

  g_ptr_array_remove_index (fixture->held, 0);
  jarvis_invocation_return (old_call);
  jarvis_test_iterate_ready (fixture->context);

  core_fixture_assert_calls (fixture, calls_expected);
  core_assert_log (prefixes, log_expected);

  complete = g_ptr_array_index (fixture->completes, 0);
  g_assert_cmpstr (jarvis_event_get_request_id (complete), ==, "old");
  g_assert_cmpstr (jarvis_event_get_outcome (complete), ==, "superseded");
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_REQUESTS_SUPERSEDED), ==, 1);

  core_fixture_return_held (fixture);
  g_assert_cmpuint (fixture->completes->len, ==, 2);
  g_assert_cmpstr (jarvis_event_get_request_id (g_ptr_array_index (fixture->completes, 1)), ==, "other");

  /* Events that waited for the session pass the router twice but count
   * once: 8 were emitted, 3 of them for "new". */
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_EVENTS), ==, 8);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_END, "new", "s", NULL);
  core_fixture_return_held (fixture);
  g_assert_cmpuint (fixture->completes->len, ==, 3);
  complete = g_ptr_array_index (fixture->completes, 2);
  g_assert_cmpstr (jarvis_event_get_request_id (complete), ==, "new");
  g_assert_cmpuint (core_complete_get (complete, "events"), ==, 4);
}

/* Three starts in a row on one session: each supersedes the one before,
 * and every request that started gets exactly one complete. */
static void
test_sessions_chain (CoreFixture   *fixture,
                     gconstpointer  data)
{
  const char * const ids[] = { "a", "b", "c" };
  const char * const outcomes[] = { "superseded", "superseded", "completed" };

  core_fixture_register (fixture, "recorder", init_recorder);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "a", NULL, NULL);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "a", NULL, "1");
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "b", NULL, NULL);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "b", NULL, "2");
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "c", NULL, NULL);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "c", NULL, "3");
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_END, "c", NULL, NULL);

  for (guint round = 0; round < 4 && fixture->completes->len < 3; round++)
    core_fixture_return_held (fixture);

  g_assert_cmpuint (fixture->completes->len, ==, 3);
  for (guint i = 0; i < 3; i++)
    {
      JarvisEvent *complete = g_ptr_array_index (fixture->completes, i);

      g_assert_cmpstr (jarvis_event_get_request_id (complete), ==, ids[i]);
      g_assert_cmpstr (jarvis_event_get_outcome (complete), ==, outcomes[i]);
    }
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_BYTES_FLUSHED), ==, 3);
  g_assert_cmpuint (jarvis_test_log_count (G_LOG_LEVEL_DEBUG, "prev_stream_finished_cleanly session=default"), ==, 2);
}

/* Cancelling a request whose start still waits drops it and its queued
 * events; it never started, so it gets no complete. */
static void
test_sessions_cancel_waiting (CoreFixture   *fixture,
                              gconstpointer  data)
{
  core_fixture_register (fixture, "recorder", init_recorder);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "old", NULL, NULL);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "old", NULL, "a");
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "new", NULL, NULL);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "new", NULL, "b");

  g_assert_true (jarvis_bus_cancel_request (fixture->bus, "new"));
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_LATE_EVENTS_DROPPED), ==, 2);
  g_assert_cmpuint (jarvis_bus_get_n_active_requests (fixture->bus), ==, 1);

  core_fixture_return_held (fixture);
  g_assert_cmpuint (fixture->completes->len, ==, 1);
  g_assert_cmpstr (jarvis_event_get_outcome (g_ptr_array_index (fixture->completes, 0)), ==, "superseded");
  g_assert_cmpuint (jarvis_test_log_count (G_LOG_LEVEL_DEBUG, "prev_stream_finished_cleanly"), ==, 0);
  g_assert_cmpuint (jarvis_test_log_count (G_LOG_LEVEL_DEBUG, "stream_start request_id=new"), ==, 0);

  /* Its later events are dropped too. */
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "new", NULL, "c");
  g_assert_cmpuint (jarvis_bus_get_n_active_requests (fixture->bus), ==, 0);
}

static gboolean
signal_count_reached (gpointer user_data)
{
  return core_fixture->completes->len >= GPOINTER_TO_UINT (user_data);
}

static void
count_started (JarvisBus  *bus,
               const char *request_id,
               const char *session_id,
               gpointer    user_data)
{
  g_ptr_array_add (user_data, g_strdup_printf ("%s@%s", request_id, session_id));
}

static void
test_sessions_started_signal (CoreFixture   *fixture,
                              gconstpointer  data)
{
  g_autoptr(GPtrArray) started = g_ptr_array_new_with_free_func (g_free);

  g_signal_connect (fixture->bus, "request-started", G_CALLBACK (count_started), started);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "r1", "s1", NULL);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r2", "s2", "x");
  core_fixture_emit (fixture, "agent.stream.usage", "r3", "s3", NULL);

  g_assert_cmpuint (started->len, ==, 2);
  g_assert_cmpstr (g_ptr_array_index (started, 0), ==, "r1@s1");
  g_assert_cmpstr (g_ptr_array_index (started, 1), ==, "r2@s2");

  jarvis_bus_cancel_all (fixture->bus);
  jarvis_test_iterate_until (fixture->context, signal_count_reached, GUINT_TO_POINTER (2), 5000);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_REQUESTS_CANCELLED), ==, 2);
  g_signal_handlers_disconnect_by_data (fixture->bus, started);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  jarvis_test_log_init ();

  ADD_TEST ("/jarvis/sessions/supersede", test_sessions_supersede);
  ADD_TEST ("/jarvis/sessions/chain", test_sessions_chain);
  ADD_TEST ("/jarvis/sessions/started-signal", test_sessions_started_signal);
  ADD_TEST ("/jarvis/sessions/cancel-waiting", test_sessions_cancel_waiting);

  return g_test_run ();
}
