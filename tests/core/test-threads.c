/* Cross-thread emits: order per producer thread, one wake-up per batch,
 * and a bounded queue that blocks its producers instead of dropping. */
#include <stdio.h>

#include "core-fixture.h"

#include "jarvis-bus-private.h"

#define ADD_TEST(path, func) \
  g_test_add (path, CoreFixture, NULL, core_fixture_set_up, func, core_fixture_tear_down)

#define N_PRODUCERS 3
#define N_EVENTS 200

static GPtrArray *received;     /* char *, "producer:index" */
static GThread *bus_thread;
static gboolean wrong_thread;

static void
record_custom (JarvisEvent *event,
               gpointer     user_data)
{
  if (g_thread_self () != bus_thread)
    wrong_thread = TRUE;

  g_ptr_array_add (received, g_strdup (jarvis_event_get_request_id (event)));
}

static gboolean
init_receiver (JarvisPlugin  *plugin,
               GError       **error)
{
  jarvis_plugin_subscribe (plugin, JARVIS_EVENT_STREAM_REASONING, record_custom, NULL, NULL);
  return TRUE;
}

typedef struct
{
  JarvisBus *bus;
  guint producer;
  guint n_events;
  gint n_pushed;                /* atomic */
} Producer;

/* Producers emit a stream event type because the bus interns those once.
 * Other types are looked up in GLib's quark table, whose futex-based lock
 * ThreadSanitizer cannot see in an uninstrumented GLib. */
static gpointer
produce (gpointer data)
{
  Producer *producer = data;

  for (guint i = 0; i < producer->n_events; i++)
    {
      g_autofree char *id = g_strdup_printf ("%u:%u", producer->producer, i);

      jarvis_bus_emit (producer->bus, jarvis_event_new (JARVIS_EVENT_STREAM_REASONING, id));
      g_atomic_int_inc (&producer->n_pushed);
    }

  return NULL;
}

static gboolean
received_all (gpointer user_data)
{
  return received->len >= GPOINTER_TO_UINT (user_data);
}

static void
test_threads_order (CoreFixture   *fixture,
                    gconstpointer  data)
{
  Producer producers[N_PRODUCERS];
  GThread *threads[N_PRODUCERS];
  guint next[N_PRODUCERS] = { 0 };

  received = g_ptr_array_new_with_free_func (g_free);
  bus_thread = g_thread_self ();
  wrong_thread = FALSE;
  core_fixture_register (fixture, "receiver", init_receiver);

  for (guint p = 0; p < N_PRODUCERS; p++)
    {
      producers[p] = (Producer) { fixture->bus, p, N_EVENTS, 0 };
      threads[p] = g_thread_new ("producer", produce, &producers[p]);
    }

  jarvis_test_iterate_until (fixture->context, received_all,
                             GUINT_TO_POINTER (N_PRODUCERS * N_EVENTS), 20000);
  for (guint p = 0; p < N_PRODUCERS; p++)
    g_thread_join (threads[p]);

  g_assert_false (wrong_thread);
  g_assert_cmpuint (received->len, ==, N_PRODUCERS * N_EVENTS);
  for (guint i = 0; i < received->len; i++)
    {
      guint producer;
      guint index;

      g_assert_cmpint (sscanf (g_ptr_array_index (received, i), "%u:%u", &producer, &index), ==, 2);
      g_assert_cmpuint (index, ==, next[producer]);
      next[producer]++;
    }
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_EVENTS), ==, N_PRODUCERS * N_EVENTS);

  g_clear_pointer (&received, g_ptr_array_unref);
}

/* With capacity 4 and the bus thread not iterating, the producer stops
 * after 4 events. One iteration takes the whole batch and lets it go on. */
static void
test_threads_bounded_queue (CoreFixture   *fixture,
                            gconstpointer  data)
{
  Producer producer = { fixture->bus, 0, 10, 0 };
  GThread *thread;
  guint dispatched;

  received = g_ptr_array_new_with_free_func (g_free);
  bus_thread = g_thread_self ();
  core_fixture_register (fixture, "receiver", init_receiver);
  jarvis_bus_set_queue_capacity (fixture->bus, 4);

  thread = g_thread_new ("producer", produce, &producer);

  /* Wait (watchdog-bounded) until the queue is full. */
  {
    gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

    while (_jarvis_queue_get_length (fixture->bus->queue) < 4)
      {
        g_assert_cmpint (g_get_monotonic_time (), <, deadline);
        g_thread_yield ();
      }
  }

  /* The producer is blocked in its fifth emit. */
  g_assert_cmpint (g_atomic_int_get (&producer.n_pushed), ==, 4);
  g_assert_cmpuint (received->len, ==, 0);

  dispatched = g_main_context_iteration (fixture->context, FALSE);
  g_assert_true (dispatched);
  g_assert_cmpuint (received->len, ==, 4);

  jarvis_test_iterate_until (fixture->context, received_all, GUINT_TO_POINTER (10), 10000);
  g_thread_join (thread);
  g_assert_cmpuint (received->len, ==, 10);
  g_assert_cmpint (g_atomic_int_get (&producer.n_pushed), ==, 10);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_LATE_EVENTS_DROPPED), ==, 0);

  g_clear_pointer (&received, g_ptr_array_unref);
}

/* A whole stream emitted from a worker thread behaves as from the bus
 * thread: one complete, every byte flushed. */
static gpointer
stream_from_thread (gpointer data)
{
  JarvisBus *bus = data;

  jarvis_bus_emit (bus, jarvis_test_event_new (JARVIS_EVENT_STREAM_START, "w1", NULL, NULL));
  for (guint i = 0; i < 100; i++)
    jarvis_bus_emit (bus, jarvis_test_event_new (JARVIS_EVENT_STREAM_DELTA, "w1", NULL, "ab"));
  jarvis_bus_emit (bus, jarvis_test_event_new (JARVIS_EVENT_STREAM_END, "w1", NULL, NULL));

  return NULL;
}

static gboolean
one_complete (gpointer user_data)
{
  return core_fixture->completes->len == 1;
}

static void
test_threads_stream (CoreFixture   *fixture,
                     gconstpointer  data)
{
  GThread *thread = g_thread_new ("stream", stream_from_thread, fixture->bus);

  jarvis_test_iterate_until (fixture->context, one_complete, NULL, 10000);
  g_thread_join (thread);

  g_assert_cmpuint (core_complete_get (g_ptr_array_index (fixture->completes, 0), "bytes_flushed"), ==, 200);
  g_assert_cmpuint (core_complete_get (g_ptr_array_index (fixture->completes, 0), "tokens"), ==, 100);
}

static void
on_closed (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_assert_true (jarvis_bus_close_finish (JARVIS_BUS (object), result, NULL));
  *(gboolean *) user_data = TRUE;
}

/* Emits from another thread after close are dropped, and counted as
 * accepted and late like emits after close from the bus thread. */
static void
test_threads_emit_after_close (CoreFixture   *fixture,
                               gconstpointer  data)
{
  Producer producer = { .bus = fixture->bus, .producer = 0, .n_events = 25 };
  gboolean closed = FALSE;
  guint64 events_before;
  guint64 late_before;
  GThread *thread;

  jarvis_bus_close_async (fixture->bus, NULL, on_closed, &closed);
  while (!closed)
    g_main_context_iteration (fixture->context, TRUE);

  events_before = jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_EVENTS);
  late_before = jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_LATE_EVENTS_DROPPED);

  thread = g_thread_new ("late producer", produce, &producer);
  g_thread_join (thread);

  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_EVENTS), ==, events_before + 25);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_LATE_EVENTS_DROPPED), ==, late_before + 25);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  jarvis_test_log_init ();

  ADD_TEST ("/jarvis/threads/order", test_threads_order);
  ADD_TEST ("/jarvis/threads/emit-after-close", test_threads_emit_after_close);
  ADD_TEST ("/jarvis/threads/bounded-queue", test_threads_bounded_queue);
  ADD_TEST ("/jarvis/threads/stream", test_threads_stream);

  return g_test_run ();
}
