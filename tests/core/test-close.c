/* Close and unload: every request is cancelled and completed once, calls
 * are waited for or detached, plugins shut down and no source is left.
 * Also the disposal of a bus that was never closed. */
#include "core-fixture.h"

#define ADD_TEST(path, func) \
  g_test_add (path, CoreFixture, NULL, core_fixture_set_up, func, core_fixture_tear_down)

static gboolean
init_holder (JarvisPlugin  *plugin,
             GError       **error)
{
  jarvis_plugin_subscribe (plugin, "agent.stream.*", core_record_sync, "holder-sync", NULL);
  jarvis_plugin_subscribe_async (plugin, "agent.stream.*", core_record_and_hold, "holder", NULL);
  return TRUE;
}

static gboolean
init_quick (JarvisPlugin  *plugin,
            GError       **error)
{
  jarvis_plugin_subscribe_async (plugin, "agent.stream.*", core_record_and_return, "quick", NULL);
  return TRUE;
}

static void
close_done (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (jarvis_bus_close_finish (JARVIS_BUS (object), result, &error));
  g_assert_no_error (error);
  (*(guint *) user_data)++;
}

static void
test_close_waits (CoreFixture   *fixture,
                  gconstpointer  data)
{
  guint n_closed = 0;

  core_fixture_register (fixture, "holder", init_holder);
  core_fixture_register (fixture, "quick", init_quick);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "r1", "s1", NULL);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r2", "s2", "x");
  core_fixture_emit (fixture, "custom.outside", "none", NULL, NULL);
  g_assert_cmpuint (fixture->held->len, ==, 3);

  jarvis_bus_close_async (fixture->bus, NULL, close_done, &n_closed);
  jarvis_bus_close_async (fixture->bus, NULL, close_done, &n_closed);

  /* Every held call was cancelled, and close waits for their returns. */
  for (guint i = 0; i < 3; i++)
    g_assert_true (jarvis_invocation_is_cancelled (g_ptr_array_index (fixture->held, i)));
  jarvis_test_iterate_ready (fixture->context);
  g_assert_cmpuint (n_closed, ==, 0);
  g_assert_false (jarvis_bus_is_closed (fixture->bus));

  /* Emits during close are dropped. */
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r3", NULL, "late");
  g_assert_cmpuint (jarvis_bus_get_n_active_requests (fixture->bus), ==, 2);

  core_fixture_return_held (fixture);
  g_assert_cmpuint (fixture->completes->len, ==, 2);

  /* The two completes dispatched async calls too; close waits for them. */
  g_assert_cmpuint (fixture->held->len, ==, 2);
  g_assert_cmpuint (n_closed, ==, 0);
  core_fixture_return_held (fixture);

  g_assert_cmpuint (n_closed, ==, 2);
  g_assert_true (jarvis_bus_is_closed (fixture->bus));
  g_assert_cmpuint (fixture->n_shutdowns, ==, 2);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_REQUESTS_CANCELLED), ==, 2);
  g_assert_false (g_main_context_pending (fixture->context));

  /* A later close finishes at once; later emits are dropped. */
  jarvis_bus_close_async (fixture->bus, NULL, close_done, &n_closed);
  jarvis_test_iterate_ready (fixture->context);
  g_assert_cmpuint (n_closed, ==, 3);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "r4", NULL, NULL);
  g_assert_cmpuint (jarvis_bus_get_n_active_requests (fixture->bus), ==, 0);
}

static void
count_drained (JarvisBus *bus,
               gpointer   user_data)
{
  (*(guint *) user_data)++;
}

/* `drained` comes once nothing is in flight: after the last request's
 * complete and the return of every call made for it, never while a
 * request is active and never once close began. */
static void
test_close_drained (CoreFixture   *fixture,
                    gconstpointer  data)
{
  guint n_drained = 0;
  guint n_closed = 0;

  g_signal_connect (fixture->bus, "drained", G_CALLBACK (count_drained), &n_drained);
  core_fixture_register (fixture, "holder", init_holder);

  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "r1", "s1", NULL);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "r2", "s2", NULL);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_END, "r1", "s1", NULL);
  core_fixture_return_held (fixture);
  g_assert_cmpuint (fixture->completes->len, ==, 1);

  /* r2 is still open, so returning r1's complete call drains nothing. */
  g_assert_cmpuint (fixture->held->len, ==, 1);
  core_fixture_return_held (fixture);
  g_assert_cmpuint (n_drained, ==, 0);

  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_END, "r2", "s2", NULL);
  core_fixture_return_held (fixture);
  g_assert_cmpuint (fixture->completes->len, ==, 2);

  /* The last request completed, but its complete call is still held. */
  g_assert_cmpuint (jarvis_bus_get_n_active_requests (fixture->bus), ==, 0);
  g_assert_cmpuint (fixture->held->len, ==, 1);
  g_assert_cmpuint (n_drained, ==, 0);

  core_fixture_return_held (fixture);
  g_assert_cmpuint (n_drained, ==, 1);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_CANCELLED), ==, 0);

  /* An event outside any request drains again once its call returns. */
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_USAGE, "none", NULL, NULL);
  g_assert_cmpuint (fixture->held->len, ==, 1);
  g_assert_cmpuint (n_drained, ==, 1);
  core_fixture_return_held (fixture);
  g_assert_cmpuint (n_drained, ==, 2);

  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_USAGE, "none", NULL, NULL);
  jarvis_bus_close_async (fixture->bus, NULL, close_done, &n_closed);
  core_fixture_return_held (fixture);
  g_assert_cmpuint (n_closed, ==, 1);
  g_assert_cmpuint (n_drained, ==, 2);
}

/* The close callback runs in the bus's own context, even when the program
 * iterates that context without pushing it as the thread default. */
static void
test_close_private_context (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  JarvisBus *bus = jarvis_bus_new (context);
  guint n_closed = 0;

  g_assert_true (g_main_context_get_thread_default () != context);

  jarvis_bus_emit (bus, jarvis_test_event_new (JARVIS_EVENT_STREAM_START, "r1", NULL, NULL));
  jarvis_bus_close_async (bus, NULL, close_done, &n_closed);

  for (guint i = 0; i < 100 && n_closed == 0; i++)
    g_main_context_iteration (context, FALSE);

  g_assert_cmpuint (n_closed, ==, 1);
  g_assert_true (jarvis_bus_is_closed (bus));
  g_object_unref (bus);
}

/* A start that waits for its session when close begins never starts: it
 * gets no complete, and its queued events count as dropped. */
static void
test_close_waiting_start (CoreFixture   *fixture,
                          gconstpointer  data)
{
  core_fixture_register (fixture, "holder", init_holder);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "old", NULL, NULL);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "new", NULL, NULL);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "new", NULL, "x");
  g_assert_cmpuint (jarvis_bus_get_n_active_requests (fixture->bus), ==, 2);

  jarvis_bus_close_async (fixture->bus, NULL, NULL, NULL);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_LATE_EVENTS_DROPPED), ==, 2);
  g_assert_cmpuint (jarvis_test_log_count (G_LOG_LEVEL_DEBUG, "stream_dropped_before_start request_id=new"), ==, 1);

  core_fixture_return_held (fixture);
  core_fixture_return_held (fixture);
  g_assert_true (jarvis_bus_is_closed (fixture->bus));
  g_assert_cmpuint (fixture->completes->len, ==, 1);
  g_assert_cmpstr (jarvis_event_get_request_id (g_ptr_array_index (fixture->completes, 0)), ==, "old");
  g_assert_cmpuint (jarvis_test_log_count (G_LOG_LEVEL_DEBUG, "stream_start request_id=new"), ==, 0);
}

static gboolean
close_count_reached (gpointer user_data)
{
  return *(guint *) user_data > 0;
}

/* Calls that ignore the cancel are detached at the deadline; close still
 * finishes, and their late returns are ignored even after the bus is
 * gone. */
static void
test_close_detaches (CoreFixture   *fixture,
                     gconstpointer  data)
{
  g_autoptr(GPtrArray) stuck = NULL;
  guint n_closed = 0;

  jarvis_bus_set_drain_timeout (fixture->bus, 5);
  core_fixture_register (fixture, "holder", init_holder);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "r1", NULL, NULL);
  core_fixture_emit (fixture, "custom.outside", "none", NULL, NULL);

  jarvis_bus_close_async (fixture->bus, NULL, close_done, &n_closed);
  jarvis_test_iterate_until (fixture->context, close_count_reached, &n_closed, 5000);

  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_DETACHED), ==, 2);
  g_assert_cmpuint (jarvis_test_log_count (G_LOG_LEVEL_WARNING, "callback_task_detached request_id=r1 plugin=holder count=1"), ==, 1);
  g_assert_cmpuint (jarvis_test_log_count (G_LOG_LEVEL_WARNING, "callback_task_detached request_id= plugin=holder count=1"), ==, 1);

  stuck = g_steal_pointer (&fixture->held);
  fixture->held = g_ptr_array_new ();
  jarvis_invocation_return (g_ptr_array_index (stuck, 0));
  g_clear_object (&fixture->bus);
  fixture->bus = jarvis_bus_new (fixture->context);

  /* The second call returns after its bus was finalized. */
  jarvis_invocation_return (g_ptr_array_index (stuck, 1));
  g_assert_false (g_main_context_pending (fixture->context));
  jarvis_test_log_clear ();
}

static void
unload_done (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  GError **error = user_data;

  if (!jarvis_bus_unload_plugin_finish (JARVIS_BUS (object), result, error) && *error == NULL)
    g_assert_not_reached ();
  if (*error == NULL)
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_EXISTS, "finished");
}

static gboolean
error_set (gpointer user_data)
{
  return *(GError **) user_data != NULL;
}

/* Unloading one plugin while a request runs: its calls are cancelled and
 * waited for, its shutdown runs, and the request goes on with the other
 * plugin and completes once. */
static void
test_close_unload_plugin (CoreFixture   *fixture,
                          gconstpointer  data)
{
  g_autoptr(GError) result = NULL;
  g_auto(GStrv) names = NULL;

  core_fixture_register (fixture, "holder", init_holder);
  core_fixture_register (fixture, "quick", init_quick);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "r1", NULL, NULL);
  g_assert_cmpuint (fixture->held->len, ==, 1);

  jarvis_bus_unload_plugin (fixture->bus, "holder", NULL, unload_done, &result);
  g_assert_true (jarvis_invocation_is_cancelled (g_ptr_array_index (fixture->held, 0)));

  /* Unsubscribed at once: the next delta reaches only "quick". */
  g_ptr_array_set_size (fixture->calls, 0);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r1", NULL, "x");
  g_assert_cmpuint (fixture->calls->len, ==, 2);
  g_assert_cmpstr (g_ptr_array_index (fixture->calls, 0), ==, "quick:agent.stream.delta:r1");

  jarvis_test_iterate_ready (fixture->context);
  g_assert_null (result);
  g_assert_cmpuint (fixture->n_shutdowns, ==, 0);

  core_fixture_return_held (fixture);
  g_assert_error (result, G_IO_ERROR, G_IO_ERROR_EXISTS);
  g_assert_cmpuint (fixture->n_shutdowns, ==, 1);
  names = jarvis_bus_list_plugins (fixture->bus);
  g_assert_cmpuint (g_strv_length (names), ==, 1);
  g_assert_cmpstr (names[0], ==, "quick");

  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_END, "r1", NULL, NULL);
  jarvis_test_iterate_ready (fixture->context);
  g_assert_cmpuint (fixture->completes->len, ==, 1);
  g_assert_cmpstr (jarvis_event_get_outcome (g_ptr_array_index (fixture->completes, 0)), ==, "completed");
  g_assert_cmpuint (core_complete_get (g_ptr_array_index (fixture->completes, 0), "tasks_cancelled"), ==, 1);
}

/* An unload whose calls never return detaches them at the deadline and
 * warns with the plugin and the count. */
static void
test_close_unload_deadline (CoreFixture   *fixture,
                            gconstpointer  data)
{
  g_autoptr(GError) result = NULL;
  g_autoptr(GPtrArray) stuck = NULL;

  jarvis_bus_set_drain_timeout (fixture->bus, 5);
  core_fixture_register (fixture, "holder", init_holder);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "r1", NULL, NULL);
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "r2", "other", NULL);

  jarvis_bus_unload_plugin (fixture->bus, "holder", NULL, unload_done, &result);
  jarvis_test_iterate_until (fixture->context, error_set, &result, 5000);

  g_assert_error (result, G_IO_ERROR, G_IO_ERROR_EXISTS);
  g_assert_cmpuint (fixture->n_shutdowns, ==, 1);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_DETACHED), ==, 2);
  g_assert_cmpuint (jarvis_test_log_count (G_LOG_LEVEL_WARNING, "plugin_unload_detached plugin=holder count=2"), ==, 1);

  stuck = g_steal_pointer (&fixture->held);
  fixture->held = g_ptr_array_new ();
  for (guint i = 0; i < stuck->len; i++)
    jarvis_invocation_return (g_ptr_array_index (stuck, i));
  jarvis_test_iterate_ready (fixture->context);
  jarvis_test_log_clear ();
}

static void
test_close_unload_unknown (CoreFixture   *fixture,
                           gconstpointer  data)
{
  g_autoptr(GError) result = NULL;

  jarvis_bus_unload_plugin (fixture->bus, "nobody", NULL, unload_done, &result);
  jarvis_test_iterate_until (fixture->context, error_set, &result, 5000);
  g_assert_error (result, JARVIS_BUS_ERROR, JARVIS_BUS_ERROR_UNKNOWN_PLUGIN);
}

/* Releasing a bus without closing it warns, shuts plugins down, and
 * leaks nothing (checked under valgrind and ASan). */
static void
test_close_dispose_unclosed (void)
{
  CoreFixture fixture = { 0 };
  g_autoptr(GPtrArray) stuck = NULL;

  core_fixture_set_up (&fixture, NULL);
  core_fixture_register (&fixture, "holder", init_holder);
  core_fixture_emit (&fixture, JARVIS_EVENT_STREAM_START, "r1", NULL, NULL);
  core_fixture_emit (&fixture, JARVIS_EVENT_STREAM_DELTA, "r1", NULL, "abc");

  stuck = g_steal_pointer (&fixture.held);
  fixture.held = g_ptr_array_new ();
  jarvis_invocation_return (g_ptr_array_index (stuck, 0));
  g_clear_object (&fixture.bus);

  g_assert_cmpuint (fixture.n_shutdowns, ==, 1);
  g_assert_cmpuint (jarvis_test_log_count (G_LOG_LEVEL_WARNING, "bus_disposed_unclosed requests=1 invocations=3"), ==, 1);

  for (guint i = 1; i < stuck->len; i++)
    jarvis_invocation_return (g_ptr_array_index (stuck, i));
  g_assert_false (g_main_context_pending (fixture.context));

  fixture.bus = jarvis_bus_new (fixture.context);
  jarvis_test_log_clear ();
  core_fixture_tear_down (&fixture, NULL);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  jarvis_test_log_init ();

  ADD_TEST ("/jarvis/close/waits", test_close_waits);
  ADD_TEST ("/jarvis/close/detaches", test_close_detaches);
  ADD_TEST ("/jarvis/close/waiting-start", test_close_waiting_start);
  ADD_TEST ("/jarvis/close/unload-plugin", test_close_unload_plugin);
  ADD_TEST ("/jarvis/close/unload-deadline", test_close_unload_deadline);
  ADD_TEST ("/jarvis/close/unload-unknown", test_close_unload_unknown);
  ADD_TEST ("/jarvis/close/drained", test_close_drained);
  g_test_add_func ("/jarvis/close/private-context", test_close_private_context);
  g_test_add_func ("/jarvis/close/dispose-unclosed", test_close_dispose_unclosed);

  return g_test_run ();
}
