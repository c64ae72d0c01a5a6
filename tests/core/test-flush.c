/* Coalescing of delta text into flush events: first token at once, the
 * interval and size bounds, the timer, UTF-8 boundaries and repair, and
 * one buffer per choice. */
#include "core-fixture.h"

#include "jarvis-flush-private.h"

static GPtrArray *flushes;      /* JarvisEvent *, every flush in order */

static void
keep_flush (JarvisEvent *event,
            gpointer     user_data)
{
  g_ptr_array_add (flushes, jarvis_event_ref (event));
  core_record_sync (event, "flush");
}

static gboolean
init_flush_recorder (JarvisPlugin  *plugin,
                     GError       **error)
{
  jarvis_plugin_subscribe (plugin, JARVIS_EVENT_STREAM_FLUSH, keep_flush, NULL, NULL);
  return TRUE;
}

static void
flush_set_up (CoreFixture   *fixture,
              gconstpointer  data)
{
  core_fixture_set_up (fixture, data);
  flushes = g_ptr_array_new_with_free_func ((GDestroyNotify) jarvis_event_unref);
  core_fixture_register (fixture, "flushes", init_flush_recorder);
}

static void
flush_tear_down (CoreFixture   *fixture,
                 gconstpointer  data)
{
  core_fixture_tear_down (fixture, data);
  g_clear_pointer (&flushes, g_ptr_array_unref);
}

#define ADD_FLUSH_TEST(path, func) \
  g_test_add (path, CoreFixture, NULL, flush_set_up, func, flush_tear_down)

static const char *
flush_text (guint index)
{
  return jarvis_event_get_text (g_ptr_array_index (flushes, index), NULL);
}

static void
delta (CoreFixture *fixture,
       const char  *text)
{
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r1", NULL, text);
}

static gboolean
flush_count_reached (gpointer user_data)
{
  return flushes->len >= GPOINTER_TO_UINT (user_data);
}

/* The first token goes out at once; later ones wait for the interval,
 * armed as one timer while text waits. */
static void
test_flush_first_then_interval (CoreFixture   *fixture,
                                gconstpointer  data)
{
  const char * const prefixes[] = { "flush_", NULL };
  const char * const expected[] = {
    "flush_done request_id=r1 tokens_sent=1 bytes=3",
    "flush_scheduled request_id=r1",
    "flush_done request_id=r1 tokens_sent=2 bytes=4",
    NULL
  };

  /* The interval must outlast three emits even under valgrind, or the
   * second delta would find it passed and flush at once. */
  jarvis_bus_set_flush_policy (fixture->bus, 200, 4096);

  delta (fixture, "One");
  g_assert_cmpuint (flushes->len, ==, 1);
  g_assert_cmpstr (flush_text (0), ==, "One");
  g_assert_cmpuint (jarvis_event_get_token_count (g_ptr_array_index (flushes, 0)), ==, 1);

  delta (fixture, " tw");
  delta (fixture, "o");
  g_assert_cmpuint (flushes->len, ==, 1);

  jarvis_test_iterate_until (fixture->context, flush_count_reached, GUINT_TO_POINTER (2), 5000);
  g_assert_cmpstr (flush_text (1), ==, " two");
  g_assert_cmpuint (jarvis_event_get_token_count (g_ptr_array_index (flushes, 1)), ==, 2);

  /* No text waits, so no timer is armed and nothing is ready. */
  g_assert_cmpuint (jarvis_test_iterate_ready (fixture->context), ==, 0);
  core_assert_log (prefixes, expected);
}

static void
test_flush_size_bound (CoreFixture   *fixture,
                       gconstpointer  data)
{
  jarvis_bus_set_flush_policy (fixture->bus, 60000, 8);

  delta (fixture, "a");
  delta (fixture, "bcd");
  delta (fixture, "efg");
  g_assert_cmpuint (flushes->len, ==, 1);
  delta (fixture, "hi");
  g_assert_cmpuint (flushes->len, ==, 2);
  g_assert_cmpstr (flush_text (1), ==, "bcdefghi");
  g_assert_cmpuint (jarvis_event_get_token_count (g_ptr_array_index (flushes, 1)), ==, 3);

  delta (fixture, "j");
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_END, "r1", NULL, NULL);
  g_assert_cmpuint (flushes->len, ==, 3);
  g_assert_cmpstr (flush_text (2), ==, "j");
  g_assert_cmpuint (fixture->completes->len, ==, 1);
}

/* A multi-byte character split across deltas is never split across
 * flushes; its first bytes wait for the rest. */
static void
test_flush_utf8_boundary (CoreFixture   *fixture,
                          gconstpointer  data)
{
  jarvis_bus_set_flush_policy (fixture->bus, 60000, 4);

  delta (fixture, "\xE2\x82");          /* first two bytes of € */
  g_assert_cmpuint (flushes->len, ==, 0);

  delta (fixture, "\xAC" "ab\xF0\x9F");  /* rest of €, then half of 😀 */
  g_assert_cmpuint (flushes->len, ==, 1);
  g_assert_cmpstr (flush_text (0), ==, "€ab");
  g_assert_cmpuint (jarvis_event_get_token_count (g_ptr_array_index (flushes, 0)), ==, 2);

  delta (fixture, "\x98\x80");
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_END, "r1", NULL, NULL);

  g_assert_cmpuint (flushes->len, ==, 2);
  g_assert_cmpstr (flush_text (1), ==, "😀");
  for (guint i = 0; i < flushes->len; i++)
    g_assert_true (g_utf8_validate (flush_text (i), -1, NULL));
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_UTF8_REPLACEMENTS), ==, 0);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_BYTES_IN), ==, 9);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_BYTES_FLUSHED), ==, 9);
}

/* Invalid bytes become U+FFFD, one per maximal invalid subpart, and an
 * incomplete sequence left at the end becomes U+FFFD at cleanup. */
static void
test_flush_utf8_repair (CoreFixture   *fixture,
                        gconstpointer  data)
{
  g_autoptr(GString) expected = g_string_new (NULL);
  JarvisEvent *complete;

  jarvis_bus_set_flush_policy (fixture->bus, 60000, 1 << 20);

  delta (fixture, "ok");
  delta (fixture, "a\xFF" "b");          /* invalid byte */
  delta (fixture, "\xE2\x82" "c");       /* truncated sequence, then ASCII */
  delta (fixture, "\xC3");               /* incomplete at the end of the stream */
  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_CANCEL, "r1", NULL, NULL);

  g_string_append (expected, "a\xEF\xBF\xBD" "b" "\xEF\xBF\xBD" "c" "\xEF\xBF\xBD");
  g_assert_cmpuint (flushes->len, ==, 2);
  g_assert_cmpstr (flush_text (0), ==, "ok");
  g_assert_cmpstr (flush_text (1), ==, expected->str);

  complete = g_ptr_array_index (fixture->completes, 0);
  g_assert_cmpstr (jarvis_event_get_outcome (complete), ==, "cancelled");
  g_assert_cmpuint (core_complete_get (complete, "utf8_replacements"), ==, 3);
  g_assert_cmpuint (core_complete_get (complete, "bytes_in"), ==, 2 + expected->len);
  g_assert_cmpuint (core_complete_get (complete, "bytes_flushed"), ==, 2 + expected->len);
  g_assert_cmpuint (core_complete_get (complete, "tokens"), ==, 4);
  g_assert_cmpuint (core_complete_get (complete, "flushes"), ==, 2);
}

/* Each choice of a multi-choice stream has its own buffer, and each flush
 * carries its choice. */
static void
test_flush_choices (CoreFixture   *fixture,
                    gconstpointer  data)
{
  static const guint expected_choices[] = { 0, 1, 7 };
  static const char * const texts[] = { "x", "y", "z" };
  JarvisEvent *event;

  jarvis_bus_set_flush_policy (fixture->bus, 60000, 4096);

  for (guint choice = 0; choice < 3; choice++)
    for (guint i = 0; i < 2; i++)
      {
        event = jarvis_test_event_new (JARVIS_EVENT_STREAM_DELTA, "r1", NULL, texts[choice]);
        jarvis_event_set_choice (event, expected_choices[choice]);
        jarvis_bus_emit (fixture->bus, event);
      }

  /* The first token of each choice went out at once. */
  g_assert_cmpuint (flushes->len, ==, 3);

  core_fixture_emit (fixture, JARVIS_EVENT_STREAM_END, "r1", NULL, NULL);
  g_assert_cmpuint (flushes->len, ==, 6);

  for (guint i = 3; i < 6; i++)
    {
      guint choice = jarvis_event_get_choice (g_ptr_array_index (flushes, i));

      g_assert_cmpuint (choice, ==, expected_choices[i - 3]);
      g_assert_cmpstr (flush_text (i), ==, texts[i - 3]);
    }
}

static void
test_flush_buffer_unit (void)
{
  JarvisFlushBuffer *buffer = _jarvis_flush_buffer_new (0);
  guint replacements = 0;

  /* A NUL byte is replaced, so that flush text stays a C string. */
  g_assert_cmpuint (_jarvis_flush_buffer_append (buffer, "a\0b", 3, &replacements), ==, 5);
  g_assert_cmpuint (replacements, ==, 1);

  /* An overlong encoding is invalid. */
  g_assert_cmpuint (_jarvis_flush_buffer_append (buffer, "\xC0\xAF", 2, &replacements), ==, 6);
  g_assert_cmpuint (replacements, ==, 3);
  g_assert_true (g_utf8_validate (buffer->text->str, buffer->text->len, NULL));

  /* Text is due at once before the first flush, then by size or time. */
  g_assert_true (_jarvis_flush_buffer_is_due (buffer, 1000, 50, 4096));
  buffer->last_flush_us = 1000;
  g_assert_false (_jarvis_flush_buffer_is_due (buffer, 1000 + 49999, 50, 4096));
  g_assert_true (_jarvis_flush_buffer_is_due (buffer, 1000 + 50000, 50, 4096));
  g_assert_true (_jarvis_flush_buffer_is_due (buffer, 1000, 50, 6));
  g_assert_cmpint (_jarvis_flush_buffer_get_due_time (buffer, 50), ==, 51000);
  _jarvis_flush_buffer_free (buffer);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  jarvis_test_log_init ();

  ADD_FLUSH_TEST ("/jarvis/flush/first-then-interval", test_flush_first_then_interval);
  ADD_FLUSH_TEST ("/jarvis/flush/size-bound", test_flush_size_bound);
  ADD_FLUSH_TEST ("/jarvis/flush/utf8-boundary", test_flush_utf8_boundary);
  ADD_FLUSH_TEST ("/jarvis/flush/utf8-repair", test_flush_utf8_repair);
  ADD_FLUSH_TEST ("/jarvis/flush/choices", test_flush_choices);
  g_test_add_func ("/jarvis/flush/buffer-unit", test_flush_buffer_unit);

  return g_test_run ();
}
