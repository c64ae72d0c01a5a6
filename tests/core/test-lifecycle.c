/* A whole request through the bus: start, deltas, end, cleanup, complete
 * and close, with sync and async handlers of an in-memory plugin. */
#include <jarvis/jarvis.h>

#include "jarvis-test-support.h"

typedef struct
{
  GPtrArray *seen;              /* "handler:event_type" strings, in call order */
  GPtrArray *held;              /* JarvisInvocation *, not returned yet */
  GString *flushed;             /* text of every flush, in order */
  guint completes;
} Recorder;

static Recorder recorder;

static void
record_sync (JarvisEvent *event,
             gpointer     user_data)
{
  g_ptr_array_add (recorder.seen, g_strdup_printf ("sync:%s", jarvis_event_get_event_type (event)));

  if (jarvis_event_has_type (event, JARVIS_EVENT_STREAM_FLUSH))
    {
      gsize length;
      const char *text = jarvis_event_get_text (event, &length);

      g_string_append_len (recorder.flushed, text, length);
    }

  if (jarvis_event_has_type (event, JARVIS_EVENT_STREAM_COMPLETE))
    recorder.completes++;
}

static void
record_async (JarvisEvent      *event,
              JarvisInvocation *invocation,
              gpointer          user_data)
{
  g_ptr_array_add (recorder.seen, g_strdup_printf ("async:%s", jarvis_event_get_event_type (event)));
  g_ptr_array_add (recorder.held, invocation);
}

static gboolean
recorder_init (JarvisPlugin  *plugin,
               GError       **error)
{
  jarvis_plugin_subscribe (plugin, "agent.stream.*", record_sync, NULL, NULL);
  jarvis_plugin_subscribe_async (plugin, JARVIS_EVENT_STREAM_DELTA, record_async, NULL, NULL);
  return TRUE;
}

static void
return_held (void)
{
  for (guint i = 0; i < recorder.held->len; i++)
    jarvis_invocation_return (g_ptr_array_index (recorder.held, i));
  g_ptr_array_set_size (recorder.held, 0);
}

static void
emit (JarvisBus  *bus,
      const char *type,
      const char *text)
{
  jarvis_bus_emit (bus, jarvis_test_event_new (type, "r1", NULL, text));
}

static void
test_lifecycle_basic (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(JarvisBus) bus = NULL;
  g_autofree JarvisPluginInfo *info = jarvis_test_plugin_info_new ("recorder", recorder_init, NULL);
  g_autoptr(GError) error = NULL;
  const char * const lifecycle[] = {
    "stream_start", "cleanup_", "stream_end", NULL
  };
  g_auto(GStrv) lines = NULL;

  recorder.seen = g_ptr_array_new_with_free_func (g_free);
  recorder.held = g_ptr_array_new ();
  recorder.flushed = g_string_new (NULL);
  recorder.completes = 0;
  jarvis_test_log_clear ();

  g_main_context_push_thread_default (context);
  bus = jarvis_bus_new (context);
  g_assert_true (jarvis_bus_register_plugin (bus, info, &error));
  g_assert_no_error (error);

  emit (bus, JARVIS_EVENT_STREAM_START, NULL);
  emit (bus, JARVIS_EVENT_STREAM_DELTA, "Hel");
  emit (bus, JARVIS_EVENT_STREAM_DELTA, "lo");
  g_assert_cmpuint (jarvis_bus_get_n_invocations (bus), ==, 2);
  g_assert_cmpstr (recorder.flushed->str, ==, "Hel");

  emit (bus, JARVIS_EVENT_STREAM_END, NULL);
  g_assert_cmpuint (recorder.completes, ==, 0);

  return_held ();
  jarvis_test_iterate_ready (context);

  g_assert_cmpuint (recorder.completes, ==, 1);
  g_assert_cmpstr (recorder.flushed->str, ==, "Hello");
  g_assert_cmpuint (jarvis_bus_get_n_active_requests (bus), ==, 0);

  lines = jarvis_test_log_dup_messages (G_LOG_LEVEL_DEBUG, lifecycle);
  g_assert_cmpuint (g_strv_length (lines), ==, 6);
  g_assert_cmpstr (lines[0], ==, "stream_start request_id=r1 session=default trace=");
  g_assert_cmpstr (lines[1], ==, "cleanup_flush_task request_id=r1");
  g_assert_cmpstr (lines[2], ==, "cleanup_callback_tasks request_id=r1 count=0");
  g_assert_cmpstr (lines[3], ==, "cleanup_buffer request_id=r1");
  g_assert_cmpstr (lines[4], ==, "cleanup_request_complete request_id=r1");
  g_assert_cmpstr (lines[5], ==, "stream_end trace= request_id=r1 cleanup_done=true");

  jarvis_test_close_bus (bus, 5000);
  g_assert_true (jarvis_bus_is_closed (bus));
  g_assert_cmpuint (jarvis_bus_get_counter (bus, JARVIS_COUNTER_BYTES_IN), ==,
                    jarvis_bus_get_counter (bus, JARVIS_COUNTER_BYTES_FLUSHED));
  jarvis_test_log_assert_no_warnings ();

  g_clear_object (&bus);
  g_assert_false (g_main_context_pending (context));
  g_main_context_pop_thread_default (context);

  g_ptr_array_unref (recorder.seen);
  g_ptr_array_unref (recorder.held);
  g_string_free (recorder.flushed, TRUE);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  jarvis_test_log_init ();

  g_test_add_func ("/jarvis/lifecycle/basic", test_lifecycle_basic);

  return g_test_run ();
}
