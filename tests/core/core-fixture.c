#include "core-fixture.h"

CoreFixture *core_fixture;

static void
shutdown_counted (JarvisPlugin *plugin)
{
  core_fixture->n_shutdowns++;
}

static void
record_complete (JarvisBus   *bus,
                 JarvisEvent *complete,
                 gpointer     user_data)
{
  CoreFixture *fixture = user_data;

  g_ptr_array_add (fixture->completes, jarvis_event_ref (complete));
}

void
core_fixture_set_up (CoreFixture   *fixture,
                     gconstpointer  data)
{
  jarvis_test_log_clear ();

  fixture->context = g_main_context_new ();
  g_main_context_push_thread_default (fixture->context);
  fixture->bus = jarvis_bus_new (fixture->context);
  fixture->calls = g_ptr_array_new_with_free_func (g_free);
  fixture->held = g_ptr_array_new ();
  fixture->flushed = g_string_new (NULL);
  fixture->completes = g_ptr_array_new_with_free_func ((GDestroyNotify) jarvis_event_unref);
  fixture->infos = g_ptr_array_new_with_free_func (g_free);
  fixture->n_shutdowns = 0;

  g_signal_connect (fixture->bus, "request-completed", G_CALLBACK (record_complete), fixture);
  core_fixture = fixture;
}

void
core_fixture_tear_down (CoreFixture   *fixture,
                        gconstpointer  data)
{
  /* Held calls are returned so that close does not wait for the drain
   * deadline; tests that detach calls return them earlier. */
  for (guint i = 0; i < fixture->held->len; i++)
    jarvis_invocation_return (g_ptr_array_index (fixture->held, i));
  g_ptr_array_set_size (fixture->held, 0);

  if (!jarvis_bus_is_closed (fixture->bus))
    jarvis_test_close_bus (fixture->bus, 10000);

  g_assert_cmpuint (jarvis_bus_get_n_active_requests (fixture->bus), ==, 0);
  g_assert_cmpuint (jarvis_bus_get_n_invocations (fixture->bus), ==, 0);
  g_clear_object (&fixture->bus);

  /* A closed bus leaves no source behind. */
  g_assert_false (g_main_context_pending (fixture->context));
  g_main_context_pop_thread_default (fixture->context);
  g_main_context_unref (fixture->context);

  g_ptr_array_unref (fixture->calls);
  g_ptr_array_unref (fixture->held);
  g_string_free (fixture->flushed, TRUE);
  g_ptr_array_unref (fixture->completes);
  g_ptr_array_unref (fixture->infos);
  core_fixture = NULL;
}

void
core_fixture_register (CoreFixture *fixture,
                       const char  *name,
                       gboolean   (*init) (JarvisPlugin *plugin,
                                           GError      **error))
{
  JarvisPluginInfo *info = jarvis_test_plugin_info_new (name, init, shutdown_counted);
  g_autoptr(GError) error = NULL;

  g_ptr_array_add (fixture->infos, info);
  g_assert_true (jarvis_bus_register_plugin (fixture->bus, info, &error));
  g_assert_no_error (error);
}

static void
record (const char  *handler,
        JarvisEvent *event)
{
  g_ptr_array_add (core_fixture->calls,
                   g_strdup_printf ("%s:%s:%s", handler, jarvis_event_get_event_type (event),
                                    jarvis_event_get_request_id (event)));
}

void
core_record_sync (JarvisEvent *event,
                  gpointer     user_data)
{
  record (user_data, event);

  if (jarvis_event_has_type (event, JARVIS_EVENT_STREAM_FLUSH))
    {
      gsize length;
      const char *text = jarvis_event_get_text (event, &length);

      g_string_append_len (core_fixture->flushed, text, length);
    }
}

void
core_record_and_hold (JarvisEvent      *event,
                      JarvisInvocation *invocation,
                      gpointer          user_data)
{
  record (user_data, event);
  g_ptr_array_add (core_fixture->held, invocation);
}

void
core_record_and_return (JarvisEvent      *event,
                        JarvisInvocation *invocation,
                        gpointer          user_data)
{
  record (user_data, event);
  jarvis_invocation_return (invocation);
}

void
core_fixture_return_held (CoreFixture *fixture)
{
  g_autoptr(GPtrArray) held = g_steal_pointer (&fixture->held);

  fixture->held = g_ptr_array_new ();
  for (guint i = 0; i < held->len; i++)
    jarvis_invocation_return (g_ptr_array_index (held, i));

  jarvis_test_iterate_ready (fixture->context);
}

void
core_fixture_emit (CoreFixture *fixture,
                   const char  *event_type,
                   const char  *request_id,
                   const char  *session_id,
                   const char  *text)
{
  jarvis_bus_emit (fixture->bus, jarvis_test_event_new (event_type, request_id, session_id, text));
}

void
core_fixture_assert_calls (CoreFixture        *fixture,
                           const char * const *expected)
{
  guint n_expected = g_strv_length ((GStrv) expected);

  for (guint i = 0; i < MIN (n_expected, fixture->calls->len); i++)
    g_assert_cmpstr (g_ptr_array_index (fixture->calls, i), ==, expected[i]);
  g_assert_cmpuint (fixture->calls->len, ==, n_expected);
}

void
core_assert_log (const char * const *prefixes,
                 const char * const *expected)
{
  g_auto(GStrv) lines = jarvis_test_log_dup_messages (G_LOG_LEVEL_DEBUG, prefixes);
  guint n_expected = g_strv_length ((GStrv) expected);

  for (guint i = 0; i < MIN (n_expected, g_strv_length (lines)); i++)
    g_assert_cmpstr (lines[i], ==, expected[i]);
  g_assert_cmpuint (g_strv_length (lines), ==, n_expected);
}

guint64
core_complete_get (JarvisEvent *complete,
                   const char  *key)
{
  guint64 value = G_MAXUINT64;

  g_assert_true (g_variant_lookup (jarvis_event_get_payload (complete), key, "t", &value));

  return value;
}
