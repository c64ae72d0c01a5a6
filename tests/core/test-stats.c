/* Counter invariants after a mixed workload and close: every call is
 * accounted for once and every byte taken in was flushed. */
#include "core-fixture.h"

static guint n_seen;

static void
return_later (JarvisEvent      *event,
              JarvisInvocation *invocation,
              gpointer          user_data)
{
  n_seen++;

  /* Every third call fails, every fifth is held until its cancel. */
  if (n_seen % 5 == 0)
    {
      g_ptr_array_add (core_fixture->held, invocation);
      return;
    }
  if (n_seen % 3 == 0)
    {
      jarvis_invocation_return_error (invocation, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED, "flaky"));
      return;
    }
  jarvis_invocation_return (invocation);
}

static gboolean
init_mixed (JarvisPlugin  *plugin,
            GError       **error)
{
  jarvis_plugin_subscribe (plugin, "*", core_record_sync, "sync", NULL);
  jarvis_plugin_subscribe_async (plugin, "agent.stream.*", return_later, NULL, NULL);
  return TRUE;
}

static void
test_stats_invariants (CoreFixture   *fixture,
                       gconstpointer  data)
{
  static const char * const tokens[] = { "a", "é", "\xF0\x9F", "\x98\x80", "\xFF", "long token " };
  g_autoptr(GVariant) stats = NULL;
  guint64 value = 0;
  guint64 created;

  n_seen = 0;
  jarvis_bus_set_flush_policy (fixture->bus, 0, 16);
  core_fixture_register (fixture, "mixed", init_mixed);

  for (guint r = 0; r < 12; r++)
    {
      g_autofree char *request_id = g_strdup_printf ("r%u", r);
      g_autofree char *session_id = g_strdup_printf ("s%u", r % 4);

      core_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, request_id, session_id, NULL);
      for (guint i = 0; i < 20; i++)
        core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, request_id, session_id,
                           tokens[(i + r) % G_N_ELEMENTS (tokens)]);
      if (r % 3 == 0)
        core_fixture_emit (fixture, JARVIS_EVENT_STREAM_END, request_id, session_id, NULL);
      if (r % 3 == 1)
        core_fixture_emit (fixture, JARVIS_EVENT_STREAM_CANCEL, request_id, session_id, NULL);

      /* Held calls return after the next request was emitted, so that
       * supersedes find calls in flight, yet every request starts. */
      if (r > 0)
        core_fixture_return_held (fixture);
    }

  core_fixture_return_held (fixture);
  jarvis_test_close_bus (fixture->bus, 10000);
  core_fixture_return_held (fixture);

  created = jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_CREATED);
  g_assert_cmpuint (created, >, 0);
  g_assert_cmpuint (created, ==,
                    jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_COMPLETED) +
                    jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_FAILED) +
                    jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_CANCELLED) +
                    jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_DETACHED));
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_FAILED), >, 0);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_HANDLER_ERRORS), ==,
                    jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_FAILED));
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_BYTES_IN), ==,
                    jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_BYTES_FLUSHED));
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_UTF8_REPLACEMENTS), >, 0);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TOKENS), ==, 12 * 20);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_REQUESTS), ==, 12);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_REQUESTS), ==,
                    jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_REQUESTS_COMPLETED) +
                    jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_REQUESTS_CANCELLED) +
                    jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_REQUESTS_SUPERSEDED) +
                    jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_REQUESTS_FAILED));
  g_assert_cmpuint (fixture->completes->len, ==, 12);

  /* The text the handlers saw is valid UTF-8 and as long as bytes_in. */
  g_assert_true (g_utf8_validate (fixture->flushed->str, fixture->flushed->len, NULL));
  g_assert_cmpuint (fixture->flushed->len, ==, jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_BYTES_IN));

  stats = jarvis_bus_dup_stats (fixture->bus);
  g_assert_true (g_variant_is_of_type (stats, G_VARIANT_TYPE ("a{st}")));
  g_assert_cmpuint (g_variant_n_children (stats), ==, JARVIS_N_COUNTERS);
  for (guint i = 0; i < JARVIS_N_COUNTERS; i++)
    {
      g_assert_true (g_variant_lookup (stats, jarvis_counter_get_name (i), "t", &value));
      g_assert_cmpuint (value, ==, jarvis_bus_get_counter (fixture->bus, i));
    }
  jarvis_test_log_clear ();
}

static void
test_stats_names (void)
{
  g_assert_cmpstr (jarvis_counter_get_name (JARVIS_COUNTER_EVENTS), ==, "events_in");
  g_assert_cmpstr (jarvis_counter_get_name (JARVIS_COUNTER_BYTES_FLUSHED), ==, "bytes_flushed");
  g_assert_cmpstr (jarvis_counter_get_name (JARVIS_COUNTER_REQUESTS_SUPERSEDED), ==, "requests_superseded");
  g_assert_cmpstr (jarvis_counter_get_name (JARVIS_COUNTER_HANDLER_ERRORS), ==, "handler_errors");
  g_assert_cmpstr (jarvis_outcome_to_string (JARVIS_OUTCOME_SUPERSEDED), ==, "superseded");
  g_assert_cmpstr (jarvis_outcome_to_string (JARVIS_OUTCOME_FAILED), ==, "failed");
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  jarvis_test_log_init ();

  g_test_add ("/jarvis/stats/invariants", CoreFixture, NULL,
              core_fixture_set_up, test_stats_invariants, core_fixture_tear_down);
  g_test_add_func ("/jarvis/stats/names", test_stats_names);

  return g_test_run ();
}
