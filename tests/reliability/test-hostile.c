/* Hostile and faulty plugins, loaded as real shared objects through the
 * loader. Each test runs one of them next to "bystander", a well-behaved
 * in-memory async plugin. It checks that the bystander and every request
 * stay correct and that the bus reports the fault. Valgrind and ASan runs
 * check that nothing leaks. */

#include <jarvis/jarvis.h>

#include "reliability-check.h"
#include "reliability-log.h"

#define DRAIN_TIMEOUT_MS 20
#define END_GRACE_MS 10
#define FLUSH_INTERVAL_MS 2

typedef struct
{
  GMainContext *context;        /* owned */
  JarvisBus *bus;               /* owned */
  JarvisPluginLoader *loader;   /* owned */
  ReliabilityChecker *checker;  /* owned */

  guint n_bystander_starts;
  guint n_bystander_deltas;
  guint n_bystander_completes;

  /* State of the embedder plugin of the re-entrant cleanup test. */
  GPtrArray *embedder_calls;    /* owned, of EmbedderCall * */
  guint n_cancel_calls;
  gboolean first_cancel_accepted;

  gboolean closed;
  gboolean unloaded;
  gboolean unload_ok;
  guint n_unload_callbacks;
  gboolean timed_out;
} Fixture;

typedef struct
{
  Fixture *fixture;             /* unowned */
  JarvisInvocation *invocation; /* returned once, then NULL */
  char *request_id;             /* owned */
  GSource *idle;                /* owned, the pending return */
} EmbedderCall;

/* Plugins' init hooks take no user data; registration hands the fixture
 * over through this pointer. Only the main thread registers. */
static Fixture *registering;

static void
bystander_start (JarvisEvent      *event,
                 JarvisInvocation *invocation,
                 gpointer          user_data)
{
  Fixture *fixture = user_data;

  fixture->n_bystander_starts++;
  jarvis_invocation_return (invocation);
}

static void
bystander_delta (JarvisEvent      *event,
                 JarvisInvocation *invocation,
                 gpointer          user_data)
{
  Fixture *fixture = user_data;

  fixture->n_bystander_deltas++;
  jarvis_invocation_return (invocation);
}

static void
bystander_complete (JarvisEvent *event,
                    gpointer     user_data)
{
  Fixture *fixture = user_data;

  fixture->n_bystander_completes++;
}

static gboolean
init_bystander (JarvisPlugin  *plugin,
                GError       **error)
{
  jarvis_plugin_subscribe_async (plugin, JARVIS_EVENT_STREAM_START, bystander_start, registering, NULL);
  jarvis_plugin_subscribe_async (plugin, JARVIS_EVENT_STREAM_DELTA, bystander_delta, registering, NULL);
  jarvis_plugin_subscribe (plugin, JARVIS_EVENT_STREAM_COMPLETE, bystander_complete, registering, NULL);

  return TRUE;
}

static const JarvisPluginInfo bystander_info = {
  .abi_version = JARVIS_PLUGIN_ABI_VERSION,
  .struct_size = sizeof (JarvisPluginInfo),
  .name = "bystander",
  .version = "1",
  .description = "Well-behaved async handler next to the hostile one",
  .license = "MIT",
  .init = init_bystander,
};

static void
register_plugin (Fixture                *fixture,
                 const JarvisPluginInfo *info)
{
  g_autoptr(GError) error = NULL;
  gboolean registered;

  registering = fixture;
  registered = jarvis_bus_register_plugin (fixture->bus, info, &error);
  registering = NULL;

  g_assert_no_error (error);
  g_assert_true (registered);
}

static void
fixture_set_up (Fixture       *fixture,
                gconstpointer  data)
{
  reliability_log_reset ();
  reliability_log_set_capture_all (TRUE);

  fixture->context = g_main_context_new ();
  g_main_context_push_thread_default (fixture->context);

  fixture->bus = jarvis_bus_new (fixture->context);
  jarvis_bus_set_flush_policy (fixture->bus, FLUSH_INTERVAL_MS, 16);
  jarvis_bus_set_end_grace (fixture->bus, END_GRACE_MS);
  jarvis_bus_set_drain_timeout (fixture->bus, DRAIN_TIMEOUT_MS);

  fixture->checker = reliability_checker_new (0);
  reliability_checker_attach (fixture->checker, fixture->bus);
  register_plugin (fixture, &bystander_info);

  fixture->loader = jarvis_plugin_loader_new ();
  jarvis_plugin_loader_set_use_default_path (fixture->loader, FALSE);
  jarvis_plugin_loader_add_search_dir (fixture->loader, HOSTILE_PLUGIN_DIR);

  fixture->embedder_calls = g_ptr_array_new ();
}

static gboolean
on_watchdog (gpointer data)
{
  Fixture *fixture = data;

  fixture->timed_out = TRUE;

  return G_SOURCE_REMOVE;
}

/* Iterates the bus's context until *@flag is set, failing the test if a
 * watchdog fires first. */
static void
run_until (Fixture        *fixture,
           const gboolean *flag)
{
  GSource *watchdog = g_timeout_source_new_seconds (g_getenv ("JARVIS_UNDER_VALGRIND") ? 120 : 20);

  g_source_set_callback (watchdog, on_watchdog, fixture, NULL);
  g_source_attach (watchdog, fixture->context);

  while (!*flag && !fixture->timed_out)
    g_main_context_iteration (fixture->context, TRUE);

  g_source_destroy (watchdog);
  g_source_unref (watchdog);
  g_assert_false (fixture->timed_out);
}

static void
run_until_completed (Fixture *fixture,
                     guint    n_completed)
{
  GSource *watchdog = g_timeout_source_new_seconds (g_getenv ("JARVIS_UNDER_VALGRIND") ? 120 : 20);

  g_source_set_callback (watchdog, on_watchdog, fixture, NULL);
  g_source_attach (watchdog, fixture->context);

  while (reliability_checker_get_n_completed (fixture->checker) < n_completed && !fixture->timed_out)
    g_main_context_iteration (fixture->context, TRUE);

  g_source_destroy (watchdog);
  g_source_unref (watchdog);
  g_assert_false (fixture->timed_out);
  g_assert_cmpuint (reliability_checker_get_n_completed (fixture->checker), ==, n_completed);
}

/* Dispatches whatever is ready without waiting for timers. */
static void
drain (Fixture *fixture)
{
  while (g_main_context_iteration (fixture->context, FALSE))
    ;
}

static void
emit (Fixture    *fixture,
      const char *event_type,
      const char *request_id,
      const char *session_id,
      const char *text)
{
  JarvisEvent *event = jarvis_event_new (event_type, request_id);

  jarvis_event_set_session_id (event, session_id);
  if (text != NULL)
    jarvis_event_set_text (event, text, -1);

  reliability_checker_note_emit (fixture->checker, event);
  jarvis_bus_emit (fixture->bus, event);
}

/* Emits a whole stream: a start, @n_deltas deltas and an end. */
static void
emit_stream (Fixture    *fixture,
             const char *request_id,
             const char *session_id,
             guint       n_deltas)
{
  emit (fixture, JARVIS_EVENT_STREAM_START, request_id, session_id, NULL);
  for (guint i = 0; i < n_deltas; i++)
    {
      g_autofree char *text = g_strdup_printf ("%s-token-%u ", request_id, i);

      emit (fixture, JARVIS_EVENT_STREAM_DELTA, request_id, session_id, text);
    }
  emit (fixture, JARVIS_EVENT_STREAM_END, request_id, session_id, NULL);
}

static void
load (Fixture    *fixture,
      const char *name)
{
  g_autoptr(GError) error = NULL;
  gboolean loaded;

  loaded = jarvis_plugin_loader_load (fixture->loader, fixture->bus, name, &error);
  g_assert_no_error (error);
  g_assert_true (loaded);
}

static void
on_closed (GObject      *source,
           GAsyncResult *result,
           gpointer      data)
{
  Fixture *fixture = data;
  g_autoptr(GError) error = NULL;

  g_assert_true (jarvis_bus_close_finish (JARVIS_BUS (source), result, &error));
  g_assert_no_error (error);
  fixture->closed = TRUE;
}

static void
close_bus (Fixture *fixture)
{
  jarvis_bus_close_async (fixture->bus, NULL, on_closed, fixture);
  run_until (fixture, &fixture->closed);
  drain (fixture);
}

/* Closes the bus if the test did not, checks the invariants and that the
 * bus is freed with its last reference. */
static void
fixture_tear_down (Fixture       *fixture,
                   gconstpointer  data)
{
  gpointer bus_alive;
  guint n_violations;

  if (!fixture->closed)
    close_bus (fixture);

  n_violations = reliability_checker_finish (fixture->checker, fixture->bus);
  reliability_checker_print (fixture->checker);
  g_assert_cmpuint (n_violations, ==, 0);

  g_assert_cmpuint (fixture->n_bystander_completes, ==, reliability_checker_get_n_completed (fixture->checker));
  g_assert_cmpuint (fixture->n_bystander_deltas, ==,
                    jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TOKENS));

  bus_alive = fixture->bus;
  g_object_add_weak_pointer (G_OBJECT (fixture->bus), &bus_alive);
  g_clear_object (&fixture->bus);
  g_assert_null (bus_alive);

  g_clear_object (&fixture->loader);
  reliability_checker_free (fixture->checker);
  g_assert_cmpuint (fixture->embedder_calls->len, ==, 0);
  g_ptr_array_unref (fixture->embedder_calls);

  g_main_context_pop_thread_default (fixture->context);
  g_main_context_unref (fixture->context);

  g_assert_cmpuint (reliability_log_get_n_unexpected (), ==, 0);
  reliability_log_set_capture_all (FALSE);
}

/* A second return is misuse: a critical naming the plugin, and the call
 * still counted once. The critical runs in a subprocess, which lists the
 * captured criticals on stderr for the parent to match. */
static void
test_double_return (Fixture       *fixture,
                    gconstpointer  data)
{
  if (!g_test_subprocess ())
    {
      g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
      g_test_trap_assert_passed ();
      g_test_trap_assert_stderr ("*critical*hostile_double_return*");
      return;
    }

  reliability_log_allow ("jarvis: *hostile_double_return*");
  load (fixture, "hostile_double_return");

  emit_stream (fixture, "r0", "s0", 2);
  emit_stream (fixture, "r1", "s1", 1);
  run_until_completed (fixture, 2);

  g_assert_cmpuint (reliability_log_count (G_LOG_LEVEL_CRITICAL, "*hostile_double_return*"), ==, 2);
  g_assert_cmpuint (fixture->n_bystander_starts, ==, 2);
  g_assert_cmpstr (reliability_checker_get_outcome (fixture->checker, "r0"), ==, "completed");
  g_assert_cmpstr (reliability_checker_get_outcome (fixture->checker, "r1"), ==, "completed");

  /* Two starts reach both plugins, three deltas the bystander: each call
   * ends once although the hostile plugin returned its calls twice. */
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_CREATED), ==, 7);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_COMPLETED), ==, 7);

  close_bus (fixture);
  reliability_log_dump ();
}

/* Calls that return from a thread after the bus closed are detached at
 * the drain deadline. Their module stays mapped, and the bus ignores the
 * late returns. */
static void
test_late_return (Fixture       *fixture,
                  gconstpointer  data)
{
  g_autoptr(JarvisPluginEntry) entry = NULL;
  g_autoptr(GError) error = NULL;
  GModule *module;
  void (*release) (void) = NULL;
  guint (*get_n_returned) (void) = NULL;

  /* If the module were closed under the parked threads, they would crash
   * the process; the subprocess keeps that from ending the whole program.
   * Valgrind does not follow the subprocess, so under valgrind the test
   * runs in this process. */
  if (!g_test_subprocess () && g_getenv ("JARVIS_UNDER_VALGRIND") == NULL)
    {
      g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
      if (!g_test_trap_has_passed ())
        g_test_fail_printf ("the late-return subprocess failed; a crash here means the module "
                            "was unloaded while detached calls still ran its code");
      return;
    }

  reliability_log_allow ("jarvis: *hostile_late_return*");
  load (fixture, "hostile_late_return");

  /* Look the test hooks up now, then drop this handle again, so that only
   * the loader's handle decides whether the module stays mapped. */
  entry = jarvis_plugin_loader_find (fixture->loader, "hostile_late_return", &error);
  g_assert_no_error (error);
  module = g_module_open (jarvis_plugin_entry_get_path (entry), G_MODULE_BIND_LOCAL);
  g_assert_nonnull (module);
  g_assert_true (g_module_symbol (module, "hostile_late_return_release", (gpointer *) &release));
  g_assert_true (g_module_symbol (module, "hostile_late_return_get_n_returned", (gpointer *) &get_n_returned));
  g_module_close (module);

  emit_stream (fixture, "r0", "s0", 3);
  emit_stream (fixture, "r1", "s1", 0);
  run_until_completed (fixture, 2);

  g_assert_cmpstr (reliability_checker_get_outcome (fixture->checker, "r0"), ==, "completed");
  g_assert_cmpstr (reliability_checker_get_outcome (fixture->checker, "r1"), ==, "completed");
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_DETACHED), ==, 2);
  g_assert_cmpuint (reliability_log_count (G_LOG_LEVEL_WARNING, "*hostile_late_return*"), >=, 2);
  g_assert_cmpuint (get_n_returned (), ==, 0);

  close_bus (fixture);
  g_assert_true (jarvis_bus_is_closed (fixture->bus));

  release ();
  g_assert_cmpuint (get_n_returned (), ==, 2);
  drain (fixture);

  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_DETACHED), ==, 2);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_COMPLETED), ==, 5);
}

/* A handler that blocks its thread past the drain deadline is detached
 * with a warning; the requests complete without it. */
static void
test_blocker (Fixture       *fixture,
              gconstpointer  data)
{
  reliability_log_allow ("jarvis: *hostile_blocker*");
  load (fixture, "hostile_blocker");

  emit_stream (fixture, "r0", "s0", 2);
  emit_stream (fixture, "r1", "s1", 2);
  emit_stream (fixture, "r2", "s2", 1);
  run_until_completed (fixture, 3);

  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *request_id = g_strdup_printf ("r%u", i);

      g_assert_cmpstr (reliability_checker_get_outcome (fixture->checker, request_id), ==, "completed");
    }
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_DETACHED), ==, 3);
  g_assert_cmpuint (reliability_log_count (G_LOG_LEVEL_WARNING, "*hostile_blocker*"), >=, 3);
  g_assert_cmpuint (reliability_log_count (G_LOG_LEVEL_MESSAGE, "*returning after blocking*"), ==, 0);

  /* Shutdown wakes the threads; their returns come after the detach. */
  close_bus (fixture);
  g_assert_cmpuint (reliability_log_count (G_LOG_LEVEL_MESSAGE, "*returning after blocking*"), ==, 3);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_DETACHED), ==, 3);
  g_assert_cmpuint (fixture->n_bystander_starts, ==, 3);
}

static void
on_unloaded (GObject      *source,
             GAsyncResult *result,
             gpointer      data)
{
  Fixture *fixture = data;
  g_autoptr(GError) error = NULL;

  fixture->n_unload_callbacks++;
  fixture->unload_ok = jarvis_bus_unload_plugin_finish (JARVIS_BUS (source), result, &error);
  g_assert_no_error (error);
  fixture->unloaded = TRUE;
}

/* Unloading a plugin whose thread blocks past the deadline detaches its
 * call, keeps the module mapped, and lets the request go on without it. */
static void
test_blocker_unloaded (Fixture       *fixture,
                       gconstpointer  data)
{
  g_auto(GStrv) names = NULL;

  reliability_log_allow ("jarvis: *hostile_blocker*");
  load (fixture, "hostile_blocker");

  emit (fixture, JARVIS_EVENT_STREAM_START, "r0", "s0", NULL);
  emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r0", "s0", "before unload ");
  drain (fixture);
  g_assert_cmpuint (jarvis_bus_get_n_invocations (fixture->bus), >=, 1);

  jarvis_bus_unload_plugin (fixture->bus, "hostile_blocker", NULL, on_unloaded, fixture);
  run_until (fixture, &fixture->unloaded);

  g_assert_cmpuint (fixture->n_unload_callbacks, ==, 1);
  g_assert_true (fixture->unload_ok);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_DETACHED), ==, 1);
  g_assert_cmpuint (reliability_log_count (G_LOG_LEVEL_WARNING,
                                           "*plugin_unload_detached plugin=hostile_blocker count=1*module stays loaded*"), ==, 1);

  /* Shutdown woke the blocked thread, whose return came after the detach. */
  g_assert_cmpuint (reliability_log_count (G_LOG_LEVEL_MESSAGE, "*returning after blocking*"), ==, 1);

  names = jarvis_bus_list_plugins (fixture->bus);
  g_assert_false (g_strv_contains ((const char * const *) names, "hostile_blocker"));
  g_assert_true (g_strv_contains ((const char * const *) names, "bystander"));

  emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r0", "s0", "after unload");
  emit (fixture, JARVIS_EVENT_STREAM_END, "r0", "s0", NULL);
  run_until_completed (fixture, 1);

  g_assert_cmpstr (reliability_checker_get_outcome (fixture->checker, "r0"), ==, "completed");
  g_assert_cmpuint (fixture->n_bystander_deltas, ==, 2);
}

/* Emits from inside `cancelled` are queued; the delta for the request in
 * cleanup is dropped and counted, the note for another id is dispatched. */
static void
test_emit_from_cancelled (Fixture       *fixture,
                          gconstpointer  data)
{
  load (fixture, "hostile_cancel_emitter");
  reliability_log_allow ("jarvis: plugin_late_emit plugin=hostile_cancel_emitter *");

  emit (fixture, JARVIS_EVENT_STREAM_START, "r0", "s0", NULL);
  emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r0", "s0", "before cancel");
  emit (fixture, JARVIS_EVENT_STREAM_CANCEL, "r0", "s0", NULL);
  emit_stream (fixture, "r1", "s1", 2);

  /* The plugin emits one late delta per request from its callback. */
  reliability_checker_note_emits (fixture->checker, 2);
  run_until_completed (fixture, 2);
  drain (fixture);

  g_assert_cmpstr (reliability_checker_get_outcome (fixture->checker, "r0"), ==, "cancelled");
  g_assert_cmpstr (reliability_checker_get_outcome (fixture->checker, "r1"), ==, "completed");
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_LATE_EVENTS_DROPPED), ==, 2);
  /* The bus counts a call whose return it had not processed yet when the
   * request was cancelled as cancelled too, so the bystander's calls may
   * add to the two of the hostile plugin. */
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_CANCELLED), >=, 2);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_FAILED), ==, 0);

  /* 3 + 4 events from the test, 2 deltas and 2 notes from the plugin. */
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_EVENTS), ==, 11);

  /* Each dropped delta names the plugin that emitted it. */
  g_assert_cmpuint (reliability_log_count (G_LOG_LEVEL_WARNING,
                                           "jarvis: plugin_late_emit plugin=hostile_cancel_emitter request_id=r0 *"), ==, 1);
  g_assert_cmpuint (reliability_log_count (G_LOG_LEVEL_WARNING,
                                           "jarvis: plugin_late_emit plugin=hostile_cancel_emitter request_id=r1 *"), ==, 1);
}

/* Cancelling its own request and unsubscribing during dispatch. */
static void
test_self_cancel (Fixture       *fixture,
                  gconstpointer  data)
{
  load (fixture, "hostile_self_cancel");

  emit (fixture, JARVIS_EVENT_STREAM_START, "r0", "s0", NULL);
  emit (fixture, JARVIS_EVENT_STREAM_START, "r1", "s1", NULL);
  emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r1", "s1", "only delta");
  emit (fixture, JARVIS_EVENT_STREAM_END, "r1", "s1", NULL);
  drain (fixture);

  emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r0", "s0", "one ");
  drain (fixture);
  g_assert_cmpuint (reliability_log_count (G_LOG_LEVEL_MESSAGE, "*quitter: called*"), ==, 1);

  /* The second delta makes the plugin emit the cancel, which is queued
   * behind it and dispatched by the same drain. */
  emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r0", "s0", "two ");
  reliability_checker_note_emits (fixture->checker, 1);
  drain (fixture);
  g_assert_cmpuint (reliability_log_count (G_LOG_LEVEL_MESSAGE, "*cancelling request_id=r0*"), ==, 1);

  emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r0", "s0", "three ");
  emit (fixture, JARVIS_EVENT_STREAM_END, "r0", "s0", NULL);
  run_until_completed (fixture, 2);
  drain (fixture);

  g_assert_cmpstr (reliability_checker_get_outcome (fixture->checker, "r0"), ==, "cancelled");
  g_assert_cmpstr (reliability_checker_get_outcome (fixture->checker, "r1"), ==, "completed");
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_LATE_EVENTS_DROPPED), ==, 2);

  /* quitter ran for the first delta only; victim, unsubscribed by it,
   * never ran after that delta. */
  g_assert_cmpuint (reliability_log_count (G_LOG_LEVEL_MESSAGE, "*quitter: called*"), ==, 1);
  g_assert_cmpuint (reliability_log_count (G_LOG_LEVEL_MESSAGE, "*victim: called*"), <=, 1);

  /* The async handler cancelled each of its 3 calls itself, which is no
   * failure and no detach. */
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_FAILED), ==, 0);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_DETACHED), ==, 0);
  g_assert_cmpuint (fixture->n_bystander_deltas, ==, 3);
}

static gboolean
return_embedder_call (gpointer data)
{
  EmbedderCall *call = data;
  Fixture *fixture = call->fixture;

  jarvis_invocation_return (g_steal_pointer (&call->invocation));
  g_ptr_array_remove (fixture->embedder_calls, call);
  g_source_unref (call->idle);
  g_free (call->request_id);
  g_free (call);

  return G_SOURCE_REMOVE;
}

/* Runs inside the bus's cleanup. Asks for the same cleanup again, then
 * returns from an idle source. */
static void
embedder_cancelled (GCancellable *cancellable,
                    gpointer      data)
{
  EmbedderCall *call = data;
  Fixture *fixture = call->fixture;

  if (call->idle != NULL)
    return;

  fixture->n_cancel_calls++;
  jarvis_bus_cancel_request (fixture->bus, call->request_id);

  call->idle = g_idle_source_new ();
  g_source_set_callback (call->idle, return_embedder_call, call, NULL);
  g_source_attach (call->idle, fixture->context);
}

static void
embedder_start (JarvisEvent      *event,
                JarvisInvocation *invocation,
                gpointer          user_data)
{
  Fixture *fixture = user_data;
  EmbedderCall *call = g_new0 (EmbedderCall, 1);

  call->fixture = fixture;
  call->invocation = invocation;
  call->request_id = g_strdup (jarvis_event_get_request_id (event));
  g_ptr_array_add (fixture->embedder_calls, call);

  g_cancellable_connect (jarvis_invocation_get_cancellable (invocation),
                         G_CALLBACK (embedder_cancelled), call, NULL);
}

/* Cancels the request twice from inside dispatch on a "cancel-me" delta. */
static void
embedder_delta (JarvisEvent *event,
                gpointer     user_data)
{
  Fixture *fixture = user_data;
  const char *request_id = jarvis_event_get_request_id (event);

  if (g_strcmp0 (jarvis_event_get_text (event, NULL), "cancel-me") != 0)
    return;

  fixture->n_cancel_calls += 2;
  fixture->first_cancel_accepted = jarvis_bus_cancel_request (fixture->bus, request_id);
  jarvis_bus_cancel_request (fixture->bus, request_id);
}

static gboolean
init_embedder (JarvisPlugin  *plugin,
               GError       **error)
{
  jarvis_plugin_subscribe_async (plugin, JARVIS_EVENT_STREAM_START, embedder_start, registering, NULL);
  jarvis_plugin_subscribe (plugin, JARVIS_EVENT_STREAM_DELTA, embedder_delta, registering, NULL);

  return TRUE;
}

static const JarvisPluginInfo embedder_info = {
  .abi_version = JARVIS_PLUGIN_ABI_VERSION,
  .struct_size = sizeof (JarvisPluginInfo),
  .name = "embedder",
  .version = "1",
  .description = "Calls jarvis_bus_cancel_request() from dispatch and cleanup",
  .license = "MIT",
  .init = init_embedder,
};

/* Cleanup asked for again from a handler, from `cancelled` callbacks and
 * by events emitted there runs once per request. */
static void
test_reentrant_cleanup (Fixture       *fixture,
                        gconstpointer  data)
{
  load (fixture, "hostile_reentrant");
  register_plugin (fixture, &embedder_info);
  reliability_log_allow ("jarvis: plugin_late_emit plugin=hostile_reentrant *");

  emit (fixture, JARVIS_EVENT_STREAM_START, "r0", "s0", NULL);
  emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r0", "s0", "first ");
  emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r0", "s0", "cancel-me");
  emit_stream (fixture, "r1", "s1", 2);

  /* hostile_reentrant emits a cancel and an end per request. */
  reliability_checker_note_emits (fixture->checker, 4);
  run_until_completed (fixture, 2);
  drain (fixture);

  g_assert_cmpstr (reliability_checker_get_outcome (fixture->checker, "r0"), ==, "cancelled");
  g_assert_cmpstr (reliability_checker_get_outcome (fixture->checker, "r1"), ==, "completed");
  g_assert_cmpuint (reliability_log_count (G_LOG_LEVEL_MESSAGE, "*cancelling again*"), ==, 2);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_LATE_EVENTS_DROPPED), ==, 4);
  g_assert_cmpuint (reliability_log_count (G_LOG_LEVEL_WARNING,
                                           "jarvis: plugin_late_emit plugin=hostile_reentrant *"), ==, 4);

  /* Two calls from the delta handler, one from each `cancelled` callback.
   * The first one found r0 active; the cleanup still ran once. */
  g_assert_cmpuint (fixture->n_cancel_calls, ==, 4);
  g_assert_true (fixture->first_cancel_accepted);

  g_assert_cmpuint (reliability_log_count (G_LOG_LEVEL_MASK, "*cleanup_request_complete request_id=r0*"), ==, 1);
  g_assert_cmpuint (reliability_log_count (G_LOG_LEVEL_MASK, "*cleanup_request_complete request_id=r1*"), ==, 1);
}

/* A plugin allocating a large block per delta changes nothing for the
 * others; the blocks are freed with their requests. */
static void
test_heavy_alloc (Fixture       *fixture,
                  gconstpointer  data)
{
  const guint n_requests = 24;

  load (fixture, "hostile_heavy_alloc");

  for (guint i = 0; i < n_requests; i++)
    {
      g_autofree char *request_id = g_strdup_printf ("r%u", i);
      g_autofree char *session_id = g_strdup_printf ("s%u", i);

      emit_stream (fixture, request_id, session_id, 16);
    }
  run_until_completed (fixture, n_requests);

  g_assert_cmpuint (reliability_checker_get_n_outcome (fixture->checker, "completed"), ==, n_requests);
  g_assert_cmpuint (fixture->n_bystander_deltas, ==, n_requests * 16);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_FAILED), ==, 0);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  reliability_log_init ();

#define ADD_TEST(path, func) \
  g_test_add ("/jarvis/reliability/hostile/" path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)

  ADD_TEST ("double-return", test_double_return);
  ADD_TEST ("blocker-detached", test_blocker);
  ADD_TEST ("blocker-unloaded-mid-stream", test_blocker_unloaded);
  ADD_TEST ("emit-from-cancelled", test_emit_from_cancelled);
  ADD_TEST ("self-cancel-unsubscribe", test_self_cancel);
  ADD_TEST ("reentrant-cleanup", test_reentrant_cleanup);
  ADD_TEST ("heavy-alloc", test_heavy_alloc);
  ADD_TEST ("late-return-after-close", test_late_return);

#undef ADD_TEST

  return g_test_run ();
}
