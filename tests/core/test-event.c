/* JarvisEvent: construction, getters, defaults and sealing. */
#include <string.h>

#include <jarvis/jarvis.h>

#include "jarvis-event-private.h"
#include "jarvis-test-support.h"

static void
test_event_fields (void)
{
  g_autoptr(JarvisEvent) event = jarvis_event_new (JARVIS_EVENT_STREAM_DELTA, "r1");
  gsize length = 99;

  g_assert_cmpstr (jarvis_event_get_event_type (event), ==, JARVIS_EVENT_STREAM_DELTA);
  g_assert_true (jarvis_event_has_type (event, JARVIS_EVENT_STREAM_DELTA));
  g_assert_false (jarvis_event_has_type (event, JARVIS_EVENT_STREAM_END));
  g_assert_cmpstr (jarvis_event_get_request_id (event), ==, "r1");
  g_assert_cmpstr (jarvis_event_get_session_id (event), ==, JARVIS_SESSION_DEFAULT);
  g_assert_null (jarvis_event_get_trace_id (event));
  g_assert_null (jarvis_event_get_text (event, &length));
  g_assert_cmpuint (length, ==, 0);
  g_assert_null (jarvis_event_get_payload (event));
  g_assert_cmpuint (jarvis_event_get_token_count (event), ==, 0);
  g_assert_cmpuint (jarvis_event_get_choice (event), ==, 0);
  g_assert_null (jarvis_event_get_outcome (event));

  jarvis_event_set_session_id (event, "s1");
  jarvis_event_set_trace_id (event, "t1");
  jarvis_event_set_text (event, "ab\0cd", 5);
  jarvis_event_set_choice (event, 2);

  g_assert_cmpstr (jarvis_event_get_session_id (event), ==, "s1");
  g_assert_cmpstr (jarvis_event_get_trace_id (event), ==, "t1");
  g_assert_cmpmem (jarvis_event_get_text (event, &length), 5, "ab\0cd", 5);
  g_assert_cmpuint (length, ==, 5);
  g_assert_cmpuint (jarvis_event_get_choice (event), ==, 2);
}

/* Short strings share the event's block and long ones get their own. Each
 * setter call must keep the other fields intact, whichever way they are
 * stored, and valgrind and ASan check that nothing leaks or overlaps. */
static void
test_event_string_storage (void)
{
  g_autofree char *long_id = g_strnfill (300, 'r');
  g_autofree char *long_text = g_strnfill (5000, 'x');
  g_autoptr(JarvisEvent) event = jarvis_event_new (JARVIS_EVENT_STREAM_DELTA, long_id);
  gsize length = 0;

  for (guint round = 0; round < 20; round++)
    {
      g_autofree char *session = g_strdup_printf ("session-%u", round);
      g_autofree char *trace = g_strdup_printf ("trace-%u-%s", round, round % 2 ? "odd" : "even");
      const char *text = round % 3 == 2 ? long_text : "tok";

      jarvis_event_set_session_id (event, session);
      jarvis_event_set_trace_id (event, trace);
      jarvis_event_set_text (event, text, -1);

      g_assert_cmpstr (jarvis_event_get_request_id (event), ==, long_id);
      g_assert_cmpstr (jarvis_event_get_session_id (event), ==, session);
      g_assert_cmpstr (jarvis_event_get_trace_id (event), ==, trace);
      g_assert_cmpstr (jarvis_event_get_text (event, &length), ==, text);
      g_assert_cmpuint (length, ==, strlen (text));
    }

  /* A setter may be given a part of the string it replaces, inside the
   * event's block or outside it. */
  jarvis_event_set_text (event, long_text, -1);
  jarvis_event_set_text (event, jarvis_event_get_text (event, NULL) + 10, -1);
  g_assert_cmpstr (jarvis_event_get_text (event, &length), ==, long_text + 10);
  jarvis_event_set_text (event, "short text", -1);
  jarvis_event_set_text (event, jarvis_event_get_text (event, NULL) + 6, 2);
  g_assert_cmpstr (jarvis_event_get_text (event, &length), ==, "te");
  jarvis_event_set_trace_id (event, long_text);
  jarvis_event_set_trace_id (event, jarvis_event_get_trace_id (event) + 4000);
  g_assert_cmpstr (jarvis_event_get_trace_id (event), ==, long_text + 4000);
  jarvis_event_set_session_id (event, jarvis_event_get_request_id (event) + 290);
  g_assert_cmpstr (jarvis_event_get_session_id (event), ==, long_id + 290);

  jarvis_event_set_session_id (event, NULL);
  jarvis_event_set_trace_id (event, NULL);
  jarvis_event_set_text (event, NULL, 0);
  g_assert_cmpstr (jarvis_event_get_session_id (event), ==, JARVIS_SESSION_DEFAULT);
  g_assert_null (jarvis_event_get_trace_id (event));
  g_assert_null (jarvis_event_get_text (event, &length));
  g_assert_cmpuint (length, ==, 0);
}

static void
test_event_payload (void)
{
  g_autoptr(JarvisEvent) event = jarvis_event_new (JARVIS_EVENT_STREAM_COMPLETE, "r1");
  GVariantDict dict;

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "outcome", "s", "superseded");
  jarvis_event_set_payload (event, g_variant_dict_end (&dict));

  g_assert_cmpstr (jarvis_event_get_outcome (event), ==, "superseded");
  g_assert_true (g_variant_is_of_type (jarvis_event_get_payload (event), G_VARIANT_TYPE_VARDICT));
}

static void
test_event_ref_from_threads (void)
{
  JarvisEvent *event = jarvis_event_new ("custom.event", "r1");
  GThread *threads[4];

  _jarvis_event_seal (event);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("ref", (GThreadFunc) jarvis_event_ref, event);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_assert_true (g_thread_join (threads[i]) == event);

  for (guint i = 0; i < G_N_ELEMENTS (threads) + 1; i++)
    jarvis_event_unref (event);
}

/* Setting a field of an emitted event is a programmer error: a critical,
 * and the field keeps its value. */
static void
test_event_sealed_setter (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(JarvisEvent) event = jarvis_event_new (JARVIS_EVENT_STREAM_DELTA, "r1");

      jarvis_event_set_text (event, "before", -1);
      _jarvis_event_seal (event);
      g_assert_true (_jarvis_event_is_sealed (event));
      jarvis_event_set_text (event, "after", -1);
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*CRITICAL*jarvis_event_set_text*agent.stream.delta*r1*already emitted*");
}

/* A payload of the wrong type is refused with a critical that names the
 * event, and its floating reference is released (valgrind checks it). */
static void
test_event_payload_wrong_type (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(JarvisEvent) event = jarvis_event_new (JARVIS_EVENT_STREAM_DELTA, "r1");

      g_log_set_always_fatal (G_LOG_FATAL_MASK);
      jarvis_event_set_payload (event, g_variant_new_string ("not a dict"));
      g_assert_null (jarvis_event_get_payload (event));
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("*CRITICAL*jarvis_event_set_payload*agent.stream.delta*r1*must be an a{sv}, not s*");
}

static void
test_event_flush_constructor (void)
{
  g_autoptr(JarvisEvent) flush = _jarvis_event_new_flush ("r1", "s1", "t1", 1, "héllo", 6, 3);
  gsize length;

  g_assert_true (jarvis_event_has_type (flush, JARVIS_EVENT_STREAM_FLUSH));
  g_assert_true (_jarvis_event_is_sealed (flush));
  g_assert_cmpstr (jarvis_event_get_text (flush, &length), ==, "héllo");
  g_assert_cmpuint (length, ==, 6);
  g_assert_cmpuint (jarvis_event_get_token_count (flush), ==, 3);
  g_assert_cmpuint (jarvis_event_get_choice (flush), ==, 1);
  g_assert_cmpstr (jarvis_event_get_session_id (flush), ==, "s1");
  g_assert_cmpstr (jarvis_event_get_trace_id (flush), ==, "t1");
}

static gint n_built;

static GVariant *
build_payload (gpointer data)
{
  GVariantDict dict;

  g_atomic_int_inc (&n_built);
  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "outcome", "s", (const char *) data);

  return g_variant_dict_end (&dict);
}

static gpointer
read_payload (gpointer data)
{
  return jarvis_event_get_payload (data);
}

/* A built-on-read payload: the outcome comes without building it, and
 * readers in several threads all get the one payload that won. */
static void
test_event_payload_builder (void)
{
  g_autoptr(JarvisEvent) event = jarvis_event_new (JARVIS_EVENT_STREAM_COMPLETE, "r1");
  GThread *threads[4];
  GVariant *payload;

  n_built = 0;
  _jarvis_event_set_payload_builder (event, "completed", build_payload, g_strdup ("completed"), g_free);
  _jarvis_event_seal (event);

  g_assert_cmpstr (jarvis_event_get_outcome (event), ==, "completed");
  g_assert_cmpint (g_atomic_int_get (&n_built), ==, 0);

  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("reader", read_payload, event);
  payload = jarvis_event_get_payload (event);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_assert_true (g_thread_join (threads[i]) == payload);

  g_assert_cmpint (g_atomic_int_get (&n_built), >=, 1);
  g_assert_true (jarvis_event_get_payload (event) == payload);
  g_assert_true (g_variant_is_of_type (payload, G_VARIANT_TYPE_VARDICT));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  jarvis_test_log_init ();

  g_test_add_func ("/jarvis/event/fields", test_event_fields);
  g_test_add_func ("/jarvis/event/string-storage", test_event_string_storage);
  g_test_add_func ("/jarvis/event/payload", test_event_payload);
  g_test_add_func ("/jarvis/event/payload-wrong-type", test_event_payload_wrong_type);
  g_test_add_func ("/jarvis/event/ref-from-threads", test_event_ref_from_threads);
  g_test_add_func ("/jarvis/event/sealed-setter", test_event_sealed_setter);
  g_test_add_func ("/jarvis/event/flush-constructor", test_event_flush_constructor);
  g_test_add_func ("/jarvis/event/payload-builder", test_event_payload_builder);

  return g_test_run ();
}
