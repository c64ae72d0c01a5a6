/* JarvisTimerSet: many timers behind one source, fired in due order. */
#include "jarvis-timer-set-private.h"
#include "jarvis-test-support.h"

typedef struct
{
  GMainContext *context;
  JarvisTimerSet *set;
  GString *fired;               /* names of the timers, in firing order */
} Fixture;

typedef struct
{
  Fixture *fixture;
  const char *name;
  JarvisTimer timer;
  JarvisTimer *disarm_on_fire;  /* nullable */
  gboolean rearm_in_past;
} Probe;

static void
on_fire (gpointer user_data)
{
  Probe *probe = user_data;

  g_string_append (probe->fixture->fired, probe->name);

  if (probe->disarm_on_fire != NULL)
    _jarvis_timer_disarm (probe->fixture->set, probe->disarm_on_fire);
  if (probe->rearm_in_past)
    _jarvis_timer_arm (probe->fixture->set, &probe->timer, g_get_monotonic_time () - 1);
}

static void
probe_init (Probe      *probe,
            Fixture    *fixture,
            const char *name)
{
  *probe = (Probe) { .fixture = fixture, .name = name };
  _jarvis_timer_init (&probe->timer, on_fire, probe);
}

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  (void) data;

  fixture->context = g_main_context_new ();
  fixture->set = _jarvis_timer_set_new (fixture->context, "test timers");
  fixture->fired = g_string_new (NULL);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  (void) data;

  _jarvis_timer_set_free (fixture->set);
  g_main_context_unref (fixture->context);
  g_string_free (fixture->fired, TRUE);
}

/* Runs every source that is ready now, once. */
static void
iterate (Fixture *fixture)
{
  g_main_context_iteration (fixture->context, FALSE);
}

static void
test_due_order (Fixture       *fixture,
                gconstpointer  data)
{
  gint64 now = g_get_monotonic_time ();
  Probe a, b, c;

  (void) data;

  probe_init (&a, fixture, "a");
  probe_init (&b, fixture, "b");
  probe_init (&c, fixture, "c");
  _jarvis_timer_arm (fixture->set, &a.timer, now - 1000);
  _jarvis_timer_arm (fixture->set, &b.timer, now - 3000);
  _jarvis_timer_arm (fixture->set, &c.timer, now - 2000);

  iterate (fixture);

  g_assert_cmpstr (fixture->fired->str, ==, "bca");
  g_assert_false (_jarvis_timer_is_armed (&a.timer));
  g_assert_false (_jarvis_timer_is_armed (&b.timer));
  g_assert_false (_jarvis_timer_is_armed (&c.timer));
}

static void
test_future_and_rearm (Fixture       *fixture,
                       gconstpointer  data)
{
  gint64 now = g_get_monotonic_time ();
  Probe a, b;

  (void) data;

  probe_init (&a, fixture, "a");
  probe_init (&b, fixture, "b");
  _jarvis_timer_arm (fixture->set, &a.timer, now + (gint64) G_USEC_PER_SEC * 3600);
  _jarvis_timer_arm (fixture->set, &b.timer, now + (gint64) G_USEC_PER_SEC * 3600 + 1);

  iterate (fixture);
  g_assert_cmpstr (fixture->fired->str, ==, "");
  g_assert_true (_jarvis_timer_is_armed (&a.timer));

  /* Moving the later timer before the earlier one must also move the
   * source's ready time. */
  _jarvis_timer_arm (fixture->set, &b.timer, now - 1);
  iterate (fixture);
  g_assert_cmpstr (fixture->fired->str, ==, "b");
  g_assert_true (_jarvis_timer_is_armed (&a.timer));

  _jarvis_timer_disarm (fixture->set, &a.timer);
}

static void
test_disarm (Fixture       *fixture,
             gconstpointer  data)
{
  gint64 now = g_get_monotonic_time ();
  Probe a, b, c;

  (void) data;

  probe_init (&a, fixture, "a");
  probe_init (&b, fixture, "b");
  probe_init (&c, fixture, "c");
  _jarvis_timer_arm (fixture->set, &a.timer, now - 3000);
  _jarvis_timer_arm (fixture->set, &b.timer, now - 2000);
  _jarvis_timer_arm (fixture->set, &c.timer, now - 1000);

  /* The head, then one fired from another timer's callback. */
  _jarvis_timer_disarm (fixture->set, &a.timer);
  b.disarm_on_fire = &c.timer;
  iterate (fixture);

  g_assert_cmpstr (fixture->fired->str, ==, "b");
  g_assert_false (_jarvis_timer_is_armed (&c.timer));
}

static void
test_rearm_in_past_fires_once_per_dispatch (Fixture       *fixture,
                                            gconstpointer  data)
{
  Probe a;

  (void) data;

  probe_init (&a, fixture, "a");
  a.rearm_in_past = TRUE;
  _jarvis_timer_arm (fixture->set, &a.timer, g_get_monotonic_time () - 1);

  iterate (fixture);
  g_assert_cmpstr (fixture->fired->str, ==, "a");
  iterate (fixture);
  g_assert_cmpstr (fixture->fired->str, ==, "aa");

  _jarvis_timer_disarm (fixture->set, &a.timer);
  iterate (fixture);
  g_assert_cmpstr (fixture->fired->str, ==, "aa");
}

static void
test_stopped_set_fires_nothing (Fixture       *fixture,
                                gconstpointer  data)
{
  Probe a;

  (void) data;

  probe_init (&a, fixture, "a");
  _jarvis_timer_arm (fixture->set, &a.timer, g_get_monotonic_time () - 1);
  _jarvis_timer_set_stop (fixture->set);

  iterate (fixture);
  g_assert_cmpstr (fixture->fired->str, ==, "");

  _jarvis_timer_disarm (fixture->set, &a.timer);
  g_assert_false (_jarvis_timer_is_armed (&a.timer));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/jarvis/timer-set/due-order", Fixture, NULL,
              fixture_setup, test_due_order, fixture_teardown);
  g_test_add ("/jarvis/timer-set/future-and-rearm", Fixture, NULL,
              fixture_setup, test_future_and_rearm, fixture_teardown);
  g_test_add ("/jarvis/timer-set/disarm", Fixture, NULL,
              fixture_setup, test_disarm, fixture_teardown);
  g_test_add ("/jarvis/timer-set/rearm-in-past", Fixture, NULL,
              fixture_setup, test_rearm_in_past_fires_once_per_dispatch, fixture_teardown);
  g_test_add ("/jarvis/timer-set/stopped", Fixture, NULL,
              fixture_setup, test_stopped_set_fires_nothing, fixture_teardown);

  return g_test_run ();
}
