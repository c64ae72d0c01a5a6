/* Dispatch: subscription order, patterns, unsubscribe and subscribe during
 * dispatch, emits from handlers queued in FIFO order, and the rejection of
 * the event types that only the bus emits. */
#include "core-fixture.h"

#define ADD_TEST(path, func) \
  g_test_add (path, CoreFixture, NULL, core_fixture_set_up, func, core_fixture_tear_down)

static gboolean
init_patterns (JarvisPlugin  *plugin,
               GError       **error)
{
  jarvis_plugin_subscribe (plugin, "*", core_record_sync, "all", NULL);
  jarvis_plugin_subscribe (plugin, "custom.*", core_record_sync, "prefix", NULL);
  jarvis_plugin_subscribe (plugin, "custom.ping", core_record_sync, "exact", NULL);
  jarvis_plugin_subscribe_async (plugin, "custom.ping", core_record_and_return, "async", NULL);
  return TRUE;
}

static void
test_dispatch_order_and_patterns (CoreFixture   *fixture,
                                  gconstpointer  data)
{
  const char * const expected[] = {
    "all:custom.ping:x", "prefix:custom.ping:x", "exact:custom.ping:x", "async:custom.ping:x",
    "all:custom.pong:x", "prefix:custom.pong:x",
    "all:customer.ping:x",
    NULL
  };

  core_fixture_register (fixture, "patterns", init_patterns);

  core_fixture_emit (fixture, "custom.ping", "x", NULL, NULL);
  core_fixture_emit (fixture, "custom.pong", "x", NULL, NULL);
  core_fixture_emit (fixture, "customer.ping", "x", NULL, NULL);

  core_fixture_assert_calls (fixture, expected);

  /* An event outside any request files its async call under the bus. */
  g_assert_cmpuint (jarvis_bus_get_n_invocations (fixture->bus), ==, 1);
  jarvis_test_iterate_ready (fixture->context);
  g_assert_cmpuint (jarvis_bus_get_n_invocations (fixture->bus), ==, 0);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_COMPLETED), ==, 1);
  g_assert_cmpuint (jarvis_bus_get_n_active_requests (fixture->bus), ==, 0);
}

/* Handlers that change the subscription list while an event is being
 * dispatched. */
static JarvisPlugin *mutator;
static guint self_id;
static guint victim_id;
static guint n_added;

static void
unsubscribe_self (JarvisEvent *event,
                  gpointer     user_data)
{
  core_record_sync (event, "self");
  jarvis_plugin_unsubscribe (mutator, self_id);
}

static void
unsubscribe_victim_and_add (JarvisEvent *event,
                            gpointer     user_data)
{
  core_record_sync (event, "killer");
  if (victim_id != 0)
    {
      jarvis_plugin_unsubscribe (mutator, victim_id);
      victim_id = 0;
    }

  if (n_added++ == 0)
    jarvis_plugin_subscribe (mutator, "*", core_record_sync, "late", NULL);
}

static void
count_destroy (gpointer data)
{
  (*(guint *) data)++;
}

static guint n_destroyed;

static void
ignore_event (JarvisEvent *event,
              gpointer     user_data)
{
}

static gboolean
init_mutator (JarvisPlugin  *plugin,
              GError       **error)
{
  mutator = plugin;
  self_id = jarvis_plugin_subscribe (plugin, "*", unsubscribe_self, NULL, NULL);
  jarvis_plugin_subscribe (plugin, "*", unsubscribe_victim_and_add, NULL, NULL);
  victim_id = jarvis_plugin_subscribe (plugin, "*", core_record_sync, "victim", NULL);
  jarvis_plugin_subscribe (plugin, "*", core_record_sync, "survivor", NULL);
  return TRUE;
}

static gboolean
init_late_exact (JarvisPlugin  *plugin,
                 GError       **error)
{
  jarvis_plugin_subscribe (plugin, "custom.late-exact-type", core_record_sync, "exact", NULL);
  return TRUE;
}

/* Event types that no subscription names are copied into the event, not
 * interned, so input with ever new types cannot grow the process's quark
 * table. An event created before a subscription named its type still
 * reaches that subscription. */
static void
test_dispatch_types_not_interned (CoreFixture   *fixture,
                                  gconstpointer  data)
{
  const char * const expected[] = {
    "exact:custom.late-exact-type:x", "exact:custom.late-exact-type:y", NULL
  };
  JarvisEvent *early;

  for (guint i = 0; i < 100; i++)
    {
      g_autofree char *type = g_strdup_printf ("custom.unique-%u", i);
      g_autoptr(JarvisEvent) event = jarvis_event_new (type, "r");

      g_assert_cmpstr (jarvis_event_get_event_type (event), ==, type);
      g_assert_cmpuint (g_quark_try_string (type), ==, 0);
    }

  early = jarvis_event_new ("custom.late-exact-type", "x");
  g_assert_cmpuint (g_quark_try_string ("custom.late-exact-type"), ==, 0);

  core_fixture_register (fixture, "late", init_late_exact);
  jarvis_bus_emit (fixture->bus, early);
  core_fixture_emit (fixture, "custom.late-exact-type", "y", NULL, NULL);

  core_fixture_assert_calls (fixture, expected);
}

static void
test_dispatch_mutation (CoreFixture   *fixture,
                        gconstpointer  data)
{
  const char * const expected[] = {
    "self:e1:x", "killer:e1:x", "survivor:e1:x",
    "killer:e2:x", "survivor:e2:x", "late:e2:x",
    NULL
  };

  n_added = 0;
  core_fixture_register (fixture, "mutator", init_mutator);

  core_fixture_emit (fixture, "e1", "x", NULL, NULL);
  core_fixture_emit (fixture, "e2", "x", NULL, NULL);

  core_fixture_assert_calls (fixture, expected);
}

/* The destroy notify of a subscription runs once, when it is removed, and
 * for the remaining ones when the plugin is unloaded. */
static gboolean
init_destroy (JarvisPlugin  *plugin,
              GError       **error)
{
  mutator = plugin;
  self_id = jarvis_plugin_subscribe (plugin, "a", ignore_event, &n_destroyed, count_destroy);
  jarvis_plugin_subscribe (plugin, "b", ignore_event, &n_destroyed, count_destroy);
  return TRUE;
}

static void
test_dispatch_destroy_notify (CoreFixture   *fixture,
                              gconstpointer  data)
{
  n_destroyed = 0;
  core_fixture_register (fixture, "destroy", init_destroy);

  jarvis_plugin_unsubscribe (mutator, self_id);
  g_assert_cmpuint (n_destroyed, ==, 1);

  jarvis_test_close_bus (fixture->bus, 5000);
  g_assert_cmpuint (n_destroyed, ==, 2);
  g_assert_cmpuint (fixture->n_shutdowns, ==, 1);
}

/* Emits from handlers are queued and dispatched after the current event,
 * in emission order, never recursively. */
static guint depth;
static guint max_depth;

static void
emit_children (JarvisEvent *event,
               gpointer     user_data)
{
  depth++;
  max_depth = MAX (max_depth, depth);
  core_record_sync (event, "emitter");

  if (jarvis_event_has_type (event, "parent"))
    {
      jarvis_plugin_emit (mutator, jarvis_event_new ("child.1", "x"));
      jarvis_plugin_emit (mutator, jarvis_event_new ("child.2", "x"));
    }
  if (jarvis_event_has_type (event, "child.1"))
    jarvis_plugin_emit (mutator, jarvis_event_new ("grandchild", "x"));
  depth--;
}

static gboolean
init_emitter (JarvisPlugin  *plugin,
              GError       **error)
{
  mutator = plugin;
  jarvis_plugin_subscribe (plugin, "*", emit_children, NULL, NULL);
  jarvis_plugin_subscribe (plugin, "*", core_record_sync, "second", NULL);
  return TRUE;
}

static void
test_dispatch_fifo (CoreFixture   *fixture,
                    gconstpointer  data)
{
  const char * const expected[] = {
    "emitter:parent:x", "second:parent:x",
    "emitter:child.1:x", "second:child.1:x",
    "emitter:child.2:x", "second:child.2:x",
    "emitter:grandchild:x", "second:grandchild:x",
    NULL
  };

  depth = max_depth = 0;
  core_fixture_register (fixture, "emitter", init_emitter);

  core_fixture_emit (fixture, "parent", "x", NULL, NULL);

  /* All four were dispatched before emit returned. */
  core_fixture_assert_calls (fixture, expected);
  g_assert_cmpuint (max_depth, ==, 1);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_EVENTS), ==, 4);
}

static gboolean
init_bad_pattern (JarvisPlugin  *plugin,
                  GError       **error)
{
  jarvis_plugin_subscribe (plugin, "agent.*.delta", core_record_sync, "bad", NULL);
  return TRUE;
}

static void
test_dispatch_invalid_pattern (void)
{
  if (g_test_subprocess ())
    {
      CoreFixture fixture = { 0 };

      core_fixture_set_up (&fixture, NULL);
      core_fixture_register (&fixture, "bad", init_bad_pattern);
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*CRITICAL*Plugin bad subscribed with the invalid pattern*agent.*.delta*");
}

static void
test_dispatch_register_errors (CoreFixture   *fixture,
                               gconstpointer  data)
{
  g_autofree JarvisPluginInfo *wrong_abi = jarvis_test_plugin_info_new ("wrong", init_emitter, NULL);
  g_autofree JarvisPluginInfo *bad_name = jarvis_test_plugin_info_new ("bad-name", init_emitter, NULL);
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) names = NULL;

  wrong_abi->abi_version = 2;
  g_assert_false (jarvis_bus_register_plugin (fixture->bus, wrong_abi, &error));
  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_ABI_MISMATCH);
  g_clear_error (&error);

  g_assert_false (jarvis_bus_register_plugin (fixture->bus, bad_name, &error));
  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_ABI_MISMATCH);
  g_assert_nonnull (strstr (error->message, "bad-name"));
  g_clear_error (&error);

  core_fixture_register (fixture, "emitter", init_emitter);
  g_assert_false (jarvis_bus_register_plugin (fixture->bus, g_ptr_array_index (fixture->infos, 0), &error));
  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_DUPLICATE);

  names = jarvis_bus_list_plugins (fixture->bus);
  g_assert_cmpuint (g_strv_length (names), ==, 1);
  g_assert_cmpstr (names[0], ==, "emitter");
  g_assert_nonnull (jarvis_bus_lookup_plugin (fixture->bus, "emitter"));
  g_assert_null (jarvis_bus_lookup_plugin (fixture->bus, "wrong"));
}

static gboolean
init_fails (JarvisPlugin  *plugin,
            GError       **error)
{
  jarvis_plugin_subscribe (plugin, "*", core_record_sync, "failed", NULL);
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no model configured");
  return FALSE;
}

static void
test_dispatch_init_fails (CoreFixture   *fixture,
                          gconstpointer  data)
{
  g_autofree JarvisPluginInfo *info = jarvis_test_plugin_info_new ("failing", init_fails, NULL);
  g_autoptr(GError) error = NULL;

  g_assert_false (jarvis_bus_register_plugin (fixture->bus, info, &error));
  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_INIT_FAILED);
  g_assert_cmpstr (error->message, ==, "Plugin failing failed to initialise: no model configured");

  /* Its subscription went with it. */
  core_fixture_emit (fixture, "anything", "x", NULL, NULL);
  g_assert_cmpuint (fixture->calls->len, ==, 0);
  g_assert_null (jarvis_bus_lookup_plugin (fixture->bus, "failing"));
}

static gboolean
init_watcher (JarvisPlugin  *plugin,
              GError       **error)
{
  jarvis_plugin_subscribe (plugin, "*", core_record_sync, "watcher", NULL);
  return TRUE;
}

/* Emits a fake flush and a fake complete for each request that starts. */
static void
forge_on_start (JarvisEvent *event,
                gpointer     user_data)
{
  JarvisPlugin *plugin = user_data;
  const char *request_id = jarvis_event_get_request_id (event);

  core_record_sync (event, "forger");
  jarvis_plugin_emit (plugin, jarvis_test_event_new (JARVIS_EVENT_STREAM_FLUSH, request_id, NULL, "fake"));
  jarvis_plugin_emit (plugin, jarvis_test_event_new (JARVIS_EVENT_STREAM_COMPLETE, request_id, NULL, NULL));
}

static gboolean
init_forger (JarvisPlugin  *plugin,
             GError       **error)
{
  jarvis_plugin_subscribe (plugin, JARVIS_EVENT_STREAM_START, forge_on_start, plugin, NULL);
  return TRUE;
}

/* Checks, after the fake events were dropped, that nothing but the start
 * was dispatched or counted and that each fake logged one critical. Then
 * ends the request and checks that exactly one complete follows. */
static void
assert_fakes_dropped (CoreFixture        *fixture,
                      const char         *function,
                      const char * const *expected_calls)
{
  g_autofree char *flush_prefix = g_strdup_printf ("%s: event type agent.stream.flush of request r1", function);
  g_autofree char *complete_prefix = g_strdup_printf ("%s: event type agent.stream.complete of request r1", function);

  core_fixture_assert_calls (fixture, expected_calls);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_EVENTS), ==, 1);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_FLUSHES), ==, 0);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_BYTES_FLUSHED), ==, 0);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_LATE_EVENTS_DROPPED), ==, 0);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_REQUESTS_COMPLETED), ==, 0);
  g_assert_cmpuint (jarvis_bus_get_n_active_requests (fixture->bus), ==, 1);
  g_assert_cmpuint (fixture->completes->len, ==, 0);
  g_assert_cmpuint (jarvis_test_log_count (G_LOG_LEVEL_CRITICAL, flush_prefix), ==, 1);
  g_assert_cmpuint (jarvis_test_log_count (G_LOG_LEVEL_CRITICAL, complete_prefix), ==, 1);
  g_assert_cmpuint (jarvis_test_log_count (G_LOG_LEVEL_CRITICAL, ""), ==, 2);

  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_END, "r1", NULL, NULL);
  jarvis_test_iterate_ready (fixture->context);
  g_assert_cmpuint (fixture->completes->len, ==, 1);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_REQUESTS_COMPLETED), ==, 1);
}

/* Flush and complete come only from the bus. The subprocess keeps running
 * after the critical, so that it can check what became of the events. */
static void
test_dispatch_bus_emit_bus_only_type (void)
{
  if (g_test_subprocess ())
    {
      const char * const expected[] = { "watcher:agent.stream.start:r1", NULL };
      CoreFixture fixture = { 0 };

      g_log_set_always_fatal (G_LOG_FATAL_MASK);
      core_fixture_set_up (&fixture, NULL);
      core_fixture_register (&fixture, "watcher", init_watcher);

      core_fixture_emit (&fixture, JARVIS_EVENT_STREAM_START, "r1", NULL, NULL);
      core_fixture_emit (&fixture, JARVIS_EVENT_STREAM_FLUSH, "r1", NULL, "fake");
      core_fixture_emit (&fixture, JARVIS_EVENT_STREAM_COMPLETE, "r1", NULL, NULL);

      assert_fakes_dropped (&fixture, "jarvis_bus_emit", expected);
      core_fixture_tear_down (&fixture, NULL);
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("*CRITICAL*jarvis_bus_emit: event type agent.stream.flush of request r1 "
                             "is emitted only by the bus*"
                             "*CRITICAL*jarvis_bus_emit: event type agent.stream.complete of request r1 "
                             "is emitted only by the bus*");
}

static void
test_dispatch_plugin_emit_bus_only_type (void)
{
  if (g_test_subprocess ())
    {
      const char * const expected[] = {
        "forger:agent.stream.start:r1", "watcher:agent.stream.start:r1", NULL
      };
      CoreFixture fixture = { 0 };

      g_log_set_always_fatal (G_LOG_FATAL_MASK);
      core_fixture_set_up (&fixture, NULL);
      core_fixture_register (&fixture, "forger", init_forger);
      core_fixture_register (&fixture, "watcher", init_watcher);

      core_fixture_emit (&fixture, JARVIS_EVENT_STREAM_START, "r1", NULL, NULL);

      assert_fakes_dropped (&fixture, "jarvis_plugin_emit", expected);
      core_fixture_tear_down (&fixture, NULL);
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("*CRITICAL*jarvis_plugin_emit: event type agent.stream.flush of request r1 "
                             "is emitted only by the bus*"
                             "*CRITICAL*jarvis_plugin_emit: event type agent.stream.complete of request r1 "
                             "is emitted only by the bus*");
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  jarvis_test_log_init ();

  ADD_TEST ("/jarvis/dispatch/order-and-patterns", test_dispatch_order_and_patterns);
  ADD_TEST ("/jarvis/dispatch/mutation", test_dispatch_mutation);
  ADD_TEST ("/jarvis/dispatch/destroy-notify", test_dispatch_destroy_notify);
  ADD_TEST ("/jarvis/dispatch/fifo", test_dispatch_fifo);
  ADD_TEST ("/jarvis/dispatch/register-errors", test_dispatch_register_errors);
  ADD_TEST ("/jarvis/dispatch/init-fails", test_dispatch_init_fails);
  ADD_TEST ("/jarvis/dispatch/types-not-interned", test_dispatch_types_not_interned);
  g_test_add_func ("/jarvis/dispatch/invalid-pattern", test_dispatch_invalid_pattern);
  g_test_add_func ("/jarvis/dispatch/bus-only-type/bus-emit", test_dispatch_bus_emit_bus_only_type);
  g_test_add_func ("/jarvis/dispatch/bus-only-type/plugin-emit", test_dispatch_plugin_emit_bus_only_type);

  return g_test_run ();
}
