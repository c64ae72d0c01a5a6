#include "loader-fixture.h"

#include <string.h>
#include <glib/gstdio.h>

#define REPORT_EVENT "test.report"

static GMutex warnings_lock;
static GPtrArray *warnings;     /* guarded by warnings_lock */

/* The probe is registered from memory, so its hooks cannot receive the
 * fixture by argument. GTest runs one test at a time. */
static LoaderFixture *current_fixture;

static GLogWriterOutput
record_warnings (GLogLevelFlags   log_level,
                 const GLogField *fields,
                 gsize            n_fields,
                 gpointer         user_data)
{
  if ((log_level & (G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE)) != 0)
    {
      const char *message = NULL;

      for (gsize i = 0; i < n_fields; i++)
        if (g_strcmp0 (fields[i].key, "MESSAGE") == 0)
          message = fields[i].value;

      g_mutex_lock (&warnings_lock);
      g_ptr_array_add (warnings, g_strdup (message != NULL ? message : ""));
      g_mutex_unlock (&warnings_lock);

      if (g_test_verbose ())
        g_test_message ("logged: %s", message);

      return G_LOG_WRITER_HANDLED;
    }

  return g_log_writer_default (log_level, fields, n_fields, user_data);
}

void
loader_test_init (int    *argc,
                  char ***argv)
{
  g_test_init (argc, argv, NULL);

  warnings = g_ptr_array_new_with_free_func (g_free);
  g_log_set_writer_func (record_warnings, NULL, NULL);
}

GPtrArray *
loader_test_steal_warnings (void)
{
  GPtrArray *stolen;

  g_mutex_lock (&warnings_lock);
  stolen = g_steal_pointer (&warnings);
  warnings = g_ptr_array_new_with_free_func (g_free);
  g_mutex_unlock (&warnings_lock);

  return stolen;
}

void
loader_test_assert_one_warning (const char *first_fragment,
                                ...)
{
  g_autoptr(GPtrArray) logged = loader_test_steal_warnings ();
  const char *message;
  const char *fragment;
  va_list args;

  g_assert_cmpuint (logged->len, ==, 1);
  message = g_ptr_array_index (logged, 0);

  va_start (args, first_fragment);
  for (fragment = first_fragment; fragment != NULL; fragment = va_arg (args, const char *))
    g_assert_nonnull (strstr (message, fragment));
  va_end (args);
}

void
loader_test_assert_no_warning (void)
{
  g_autoptr(GPtrArray) logged = loader_test_steal_warnings ();

  for (guint i = 0; i < logged->len; i++)
    g_test_message ("unexpected warning: %s", (char *) g_ptr_array_index (logged, i));

  g_assert_cmpuint (logged->len, ==, 0);
}

static void
on_report (JarvisEvent *event,
           gpointer     user_data)
{
  LoaderFixture *fixture = user_data;

  g_ptr_array_add (fixture->reports, g_strdup (jarvis_event_get_text (event, NULL)));
}

static void
on_complete (JarvisEvent *event,
             gpointer     user_data)
{
  LoaderFixture *fixture = user_data;

  g_ptr_array_add (fixture->completes, g_strdup (jarvis_event_get_request_id (event)));
}

static gboolean
probe_init (JarvisPlugin  *plugin,
            GError       **error)
{
  jarvis_plugin_subscribe (plugin, REPORT_EVENT, on_report, current_fixture, NULL);
  jarvis_plugin_subscribe (plugin, JARVIS_EVENT_STREAM_COMPLETE, on_complete,
                           current_fixture, NULL);

  return TRUE;
}

static const JarvisPluginInfo probe_info = {
  .abi_version = JARVIS_PLUGIN_ABI_VERSION,
  .struct_size = sizeof (JarvisPluginInfo),
  .name = "probe",
  .version = "1.0",
  .init = probe_init,
};

const JarvisPluginInfo *
loader_fixture_get_probe_info (void)
{
  return &probe_info;
}

char *
loader_fixture_make_dir (LoaderFixture *fixture,
                         const char    *name)
{
  char *directory = g_build_filename (fixture->plugin_dir, name, NULL);

  g_assert_no_errno (g_mkdir (directory, 0755));
  g_assert_no_errno (g_chmod (directory, 0755));

  return directory;
}

void
loader_fixture_set_up (LoaderFixture *fixture,
                       gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;

  g_assert_null (current_fixture);
  current_fixture = fixture;

  /* GTask callbacks, such as those of close and unload, run in the
   * thread-default context of the caller. */
  fixture->context = g_main_context_new ();
  g_main_context_push_thread_default (fixture->context);
  fixture->bus = jarvis_bus_new (fixture->context);
  fixture->reports = g_ptr_array_new_with_free_func (g_free);
  fixture->completes = g_ptr_array_new_with_free_func (g_free);

  fixture->plugin_dir = g_dir_make_tmp ("jarvis-loader-XXXXXX", &error);
  g_assert_no_error (error);

  fixture->loader = jarvis_plugin_loader_new ();
  jarvis_plugin_loader_set_use_default_path (fixture->loader, FALSE);
  jarvis_plugin_loader_add_search_dir (fixture->loader, fixture->plugin_dir);

  g_assert_true (jarvis_bus_register_plugin (fixture->bus, &probe_info, &error));
  g_assert_no_error (error);

  loader_test_assert_no_warning ();
}

static void
on_closed (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  gboolean *closed = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_true (jarvis_bus_close_finish (JARVIS_BUS (source), result, &error));
  g_assert_no_error (error);
  *closed = TRUE;
}

static gboolean
is_true (gpointer data)
{
  return *(gboolean *) data;
}

static void
remove_tree (const char *directory)
{
  g_autoptr(GDir) dir = g_dir_open (directory, 0, NULL);
  const char *name;

  if (dir == NULL)
    return;

  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (directory, name, NULL);

      if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
        remove_tree (path);
      else
        g_assert_no_errno (g_unlink (path));
    }

  g_assert_no_errno (g_rmdir (directory));
}

void
loader_fixture_tear_down (LoaderFixture *fixture,
                          gconstpointer  user_data)
{
  gboolean closed = FALSE;

  if (!jarvis_bus_is_closed (fixture->bus))
    {
      jarvis_bus_close_async (fixture->bus, NULL, on_closed, &closed);
      loader_fixture_iterate_until (fixture, is_true, &closed);
    }

  g_assert_cmpuint (jarvis_bus_get_n_invocations (fixture->bus), ==, 0);
  g_assert_cmpuint (jarvis_bus_get_n_active_requests (fixture->bus), ==, 0);

  g_clear_object (&fixture->loader);
  g_assert_finalize_object (fixture->bus);

  /* Nothing may stay attached to the bus's context once it is closed. */
  g_assert_false (g_main_context_pending (fixture->context));
  g_main_context_pop_thread_default (fixture->context);
  g_main_context_unref (fixture->context);

  remove_tree (fixture->plugin_dir);
  g_free (fixture->plugin_dir);
  g_ptr_array_unref (fixture->reports);
  g_ptr_array_unref (fixture->completes);

  loader_test_assert_no_warning ();
  current_fixture = NULL;
}

char *
loader_fixture_copy_plugin (const char *directory,
                            const char *name,
                            const char *file_name)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *built_name = g_strdup_printf ("jarvis-plugin-%s.so", name);
  g_autofree char *source = NULL;
  g_autofree char *contents = NULL;
  char *target;
  gsize length;

  source = g_build_filename (g_getenv ("JARVIS_TEST_FIXTURE_PLUGINS_DIR"), built_name, NULL);
  target = g_build_filename (directory, file_name != NULL ? file_name : built_name, NULL);

  g_assert_true (g_file_get_contents (source, &contents, &length, &error));
  g_assert_no_error (error);
  g_assert_true (g_file_set_contents_full (target, contents, length,
                                           G_FILE_SET_CONTENTS_NONE, 0644, &error));
  g_assert_no_error (error);

  /* The umask may have cleared bits; the trust tests need exact modes. */
  g_assert_no_errno (g_chmod (target, 0644));

  return target;
}

void
loader_fixture_add_plugin (LoaderFixture *fixture,
                           const char    *name)
{
  g_free (loader_fixture_copy_plugin (fixture->plugin_dir, name, NULL));
}

void
loader_fixture_emit (LoaderFixture *fixture,
                     const char    *event_type,
                     const char    *request_id)
{
  jarvis_bus_emit (fixture->bus, jarvis_event_new (event_type, request_id));
}

guint
loader_fixture_count_reports (LoaderFixture *fixture,
                              const char    *text)
{
  guint count = 0;

  for (guint i = 0; i < fixture->reports->len; i++)
    if (g_strcmp0 (g_ptr_array_index (fixture->reports, i), text) == 0)
      count++;

  return count;
}

static gboolean
on_watchdog (gpointer user_data)
{
  gboolean *expired = user_data;

  *expired = TRUE;
  return G_SOURCE_REMOVE;
}

void
loader_fixture_iterate_until (LoaderFixture *fixture,
                              gboolean     (*condition) (gpointer data),
                              gpointer       data)
{
  gboolean expired = FALSE;
  guint seconds = g_getenv ("JARVIS_UNDER_VALGRIND") != NULL ? 60 : 10;
  GSource *watchdog = g_timeout_source_new_seconds (seconds);

  g_source_set_callback (watchdog, on_watchdog, &expired, NULL);
  g_source_attach (watchdog, fixture->context);

  while (!condition (data) && !expired)
    g_main_context_iteration (fixture->context, TRUE);

  g_source_destroy (watchdog);
  g_source_unref (watchdog);

  if (expired)
    g_assert_not_reached ();
}

typedef struct
{
  LoaderFixture *fixture;
  guint n_reports;
} ReportWait;

static gboolean
has_reports (gpointer data)
{
  ReportWait *wait = data;

  return wait->fixture->reports->len >= wait->n_reports;
}

void
loader_fixture_iterate_until_reports (LoaderFixture *fixture,
                                      guint          n_reports)
{
  ReportWait wait = { fixture, n_reports };

  loader_fixture_iterate_until (fixture, has_reports, &wait);
}

typedef struct
{
  LoaderFixture *fixture;
  JarvisCounter counter;
  guint64 value;
} CounterWait;

static gboolean
has_counter_value (gpointer data)
{
  CounterWait *wait = data;

  return jarvis_bus_get_counter (wait->fixture->bus, wait->counter) >= wait->value;
}

void
loader_fixture_iterate_until_counter (LoaderFixture *fixture,
                                      JarvisCounter  counter,
                                      guint64        value)
{
  CounterWait wait = { fixture, counter, value };

  loader_fixture_iterate_until (fixture, has_counter_value, &wait);
}
