/* Tests of unloading real plugin files while streams run. The unloaded
 * plugin's calls are cancelled and drained. A call that never returns is
 * detached at the deadline, and its module stays mapped. The other plugins
 * go on, and each request still completes once. */
#include "loader-fixture.h"

#include <string.h>

#define FIXTURE_TEST(path, function) \
  g_test_add ((path), LoaderFixture, NULL, loader_fixture_set_up, (function), loader_fixture_tear_down)

typedef struct
{
  gboolean done;
  gboolean result;
  GError *error;
} UnloadResult;

static void
on_unloaded (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  UnloadResult *unload = user_data;

  unload->result = jarvis_bus_unload_plugin_finish (JARVIS_BUS (source), result, &unload->error);
  unload->done = TRUE;
}

static gboolean
is_unloaded (gpointer data)
{
  return ((UnloadResult *) data)->done;
}

/* Copies the fixture plugin FILE_NAME into the search directory, loads
 * it and returns the path of the copy. */
static char *
load_fixture_copy (LoaderFixture *fixture,
                   const char    *file_name,
                   const char    *plugin_name)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = loader_fixture_copy_plugin (fixture->plugin_dir, file_name, NULL);

  g_assert_true (jarvis_plugin_loader_load_file (fixture->loader, fixture->bus, path, &error));
  g_assert_no_error (error);
  g_assert_nonnull (jarvis_bus_lookup_plugin (fixture->bus, plugin_name));

  return g_steal_pointer (&path);
}

static void
load_fixture (LoaderFixture *fixture,
              const char    *file_name,
              const char    *plugin_name)
{
  g_free (load_fixture_copy (fixture, file_name, plugin_name));
}

/* Returns whether the file at @path is mapped into this process. Each
 * test copies its plugins into a fresh directory, so no other test's
 * mapping has the same path. */
static gboolean
is_mapped (const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *maps = NULL;
  g_auto(GStrv) lines = NULL;
  gsize path_length = strlen (path);

  g_assert_true (g_file_get_contents ("/proc/self/maps", &maps, NULL, &error));
  g_assert_no_error (error);

  lines = g_strsplit (maps, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      gsize line_length = strlen (lines[i]);

      if (line_length > path_length &&
          lines[i][line_length - path_length - 1] == ' ' &&
          g_str_has_suffix (lines[i], path))
        return TRUE;
    }

  return FALSE;
}

static void
emit_delta (LoaderFixture *fixture,
            const char    *request_id,
            const char    *text)
{
  JarvisEvent *event = jarvis_event_new (JARVIS_EVENT_STREAM_DELTA, request_id);

  jarvis_event_set_text (event, text, -1);
  jarvis_bus_emit (fixture->bus, event);
}

typedef struct
{
  LoaderFixture *fixture;
  const char *request_id;
} CompleteWait;

static gboolean
has_complete (gpointer data)
{
  CompleteWait *wait = data;

  for (guint i = 0; i < wait->fixture->completes->len; i++)
    if (g_strcmp0 (g_ptr_array_index (wait->fixture->completes, i), wait->request_id) == 0)
      return TRUE;

  return FALSE;
}

static void
end_and_wait (LoaderFixture *fixture,
              const char    *request_id)
{
  CompleteWait wait = { fixture, request_id };

  loader_fixture_emit (fixture, JARVIS_EVENT_STREAM_END, request_id);
  loader_fixture_iterate_until (fixture, has_complete, &wait);
}

static void
test_unload_mid_stream (LoaderFixture *fixture,
                        gconstpointer  user_data)
{
  UnloadResult unload = { 0 };

  load_fixture (fixture, "good-sync", "good_sync");
  load_fixture (fixture, "streamer", "streamer");

  loader_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "r1");
  emit_delta (fixture, "r1", "Hello");
  emit_delta (fixture, "r1", ", ");
  emit_delta (fixture, "r1", "world");
  loader_fixture_iterate_until_reports (fixture, 6);

  g_assert_cmpuint (loader_fixture_count_reports (fixture, "good_sync:agent.stream.delta:r1"), ==, 3);
  g_assert_cmpuint (loader_fixture_count_reports (fixture, "streamer:agent.stream.delta:r1"), ==, 3);
  g_assert_cmpuint (jarvis_bus_get_n_invocations (fixture->bus), ==, 3);

  jarvis_bus_unload_plugin (fixture->bus, "streamer", NULL, on_unloaded, &unload);
  loader_fixture_iterate_until (fixture, is_unloaded, &unload);

  g_assert_no_error (unload.error);
  g_assert_true (unload.result);
  g_assert_null (jarvis_bus_lookup_plugin (fixture->bus, "streamer"));
  g_assert_cmpuint (jarvis_bus_get_n_invocations (fixture->bus), ==, 0);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_CANCELLED), ==, 3);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_DETACHED), ==, 0);

  /* The request goes on with the plugins that remain. */
  g_assert_cmpuint (jarvis_bus_get_n_active_requests (fixture->bus), ==, 1);
  emit_delta (fixture, "r1", "!");
  end_and_wait (fixture, "r1");

  g_assert_cmpuint (loader_fixture_count_reports (fixture, "good_sync:agent.stream.delta:r1"), ==, 4);
  g_assert_cmpuint (loader_fixture_count_reports (fixture, "streamer:agent.stream.delta:r1"), ==, 3);
  g_assert_cmpuint (fixture->completes->len, ==, 1);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_REQUESTS_COMPLETED), ==, 1);
}

static void
test_unload_never_returns (LoaderFixture *fixture,
                           gconstpointer  user_data)
{
  UnloadResult unload = { 0 };
  g_autofree char *path = NULL;

  jarvis_bus_set_drain_timeout (fixture->bus, 50);
  load_fixture (fixture, "good-sync", "good_sync");
  path = load_fixture_copy (fixture, "never-returns", "never_returns");
  g_assert_true (is_mapped (path));

  loader_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "r1");
  emit_delta (fixture, "r1", "one");
  emit_delta (fixture, "r1", "two");
  loader_fixture_iterate_until_reports (fixture, 4);
  g_assert_cmpuint (jarvis_bus_get_n_invocations (fixture->bus), ==, 2);

  jarvis_bus_unload_plugin (fixture->bus, "never_returns", NULL, on_unloaded, &unload);
  loader_fixture_iterate_until (fixture, is_unloaded, &unload);

  /* The plugin is gone from the bus even though its calls never returned;
   * its code stays mapped because those calls may still run. */
  g_assert_null (jarvis_bus_lookup_plugin (fixture->bus, "never_returns"));
  g_assert_cmpuint (jarvis_bus_get_n_invocations (fixture->bus), ==, 0);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_DETACHED), ==, 2);
  g_assert_no_error (unload.error);
  g_assert_true (unload.result);
  loader_test_assert_one_warning ("plugin=never_returns", "count=2", NULL);
  g_assert_true (is_mapped (path));

  emit_delta (fixture, "r1", "three");
  end_and_wait (fixture, "r1");

  g_assert_cmpuint (loader_fixture_count_reports (fixture, "good_sync:agent.stream.delta:r1"), ==, 3);
  g_assert_cmpuint (loader_fixture_count_reports (fixture, "never_returns:agent.stream.delta:r1"), ==, 2);
  g_assert_cmpuint (fixture->completes->len, ==, 1);
}

static char *
read_shutdown_file (const char *path)
{
  g_autoptr(GError) error = NULL;
  char *contents = NULL;

  if (!g_file_get_contents (path, &contents, NULL, &error))
    {
      g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
      return g_strdup ("");
    }

  return contents;
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

/* Closing the bus mid-stream unloads every plugin the same way: calls are
 * cancelled, the request completes once, and each shutdown runs once. */
static void
test_close_unloads_all (LoaderFixture *fixture,
                        gconstpointer  user_data)
{
  g_autoptr(GKeyFile) config = g_key_file_new ();
  g_autofree char *marker = g_build_filename (fixture->plugin_dir, "shutdown.log", NULL);
  g_autofree char *contents = NULL;
  gboolean closed = FALSE;

  g_key_file_set_string (config, "plugin good_sync", "shutdown-file", marker);
  jarvis_bus_set_config (fixture->bus, config);

  load_fixture (fixture, "good-sync", "good_sync");
  load_fixture (fixture, "streamer", "streamer");

  loader_fixture_emit (fixture, JARVIS_EVENT_STREAM_START, "r1");
  emit_delta (fixture, "r1", "partial");
  loader_fixture_iterate_until_reports (fixture, 2);

  contents = read_shutdown_file (marker);
  g_assert_cmpstr (contents, ==, "");
  g_clear_pointer (&contents, g_free);

  jarvis_bus_close_async (fixture->bus, NULL, on_closed, &closed);
  loader_fixture_iterate_until (fixture, is_true, &closed);

  contents = read_shutdown_file (marker);
  g_assert_cmpstr (contents, ==, "good_sync shutdown\n");
  g_assert_cmpuint (fixture->completes->len, ==, 1);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_REQUESTS_CANCELLED), ==, 1);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_CANCELLED), ==, 1);
  g_assert_null (jarvis_bus_lookup_plugin (fixture->bus, "streamer"));
  g_assert_null (jarvis_bus_lookup_plugin (fixture->bus, "good_sync"));
}

/* A clean unload closes the module, so the file is unmapped, and the file
 * can be loaded again. */
static void
test_reload_after_unload (LoaderFixture *fixture,
                          gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  UnloadResult unload = { 0 };
  g_autofree char *path = load_fixture_copy (fixture, "good-sync", "good_sync");

  g_assert_true (is_mapped (path));

  jarvis_bus_unload_plugin (fixture->bus, "good_sync", NULL, on_unloaded, &unload);
  loader_fixture_iterate_until (fixture, is_unloaded, &unload);
  g_assert_no_error (unload.error);
  g_assert_true (unload.result);
  g_assert_false (is_mapped (path));

  g_assert_true (jarvis_plugin_loader_load (fixture->loader, fixture->bus, "good_sync", &error));
  g_assert_no_error (error);

  loader_fixture_emit (fixture, "test.ping", "again");
  loader_fixture_iterate_until_reports (fixture, 1);
  g_assert_cmpstr (g_ptr_array_index (fixture->reports, 0), ==, "good_sync:test.ping:again");
}

static void
on_second_bus_closed (GObject      *source,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  gboolean *closed = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_true (jarvis_bus_close_finish (JARVIS_BUS (source), result, &error));
  g_assert_no_error (error);
  *closed = TRUE;
}

/* Two buses load the same file, which the dynamic linker maps once. Each
 * bus holds its own reference to the module, so unloading the plugin from
 * one bus must leave the code in place for the other. */
static void
test_same_file_two_buses (LoaderFixture *fixture,
                          gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JarvisBus) second_bus = jarvis_bus_new (fixture->context);
  g_autofree char *path = loader_fixture_copy_plugin (fixture->plugin_dir, "good-sync", NULL);
  UnloadResult unload = { 0 };
  gboolean closed = FALSE;

  g_assert_true (jarvis_bus_register_plugin (second_bus, loader_fixture_get_probe_info (), &error));
  g_assert_no_error (error);

  g_assert_true (jarvis_plugin_loader_load_file (fixture->loader, fixture->bus, path, &error));
  g_assert_no_error (error);
  g_assert_true (jarvis_plugin_loader_load_file (fixture->loader, second_bus, path, &error));
  g_assert_no_error (error);

  jarvis_bus_unload_plugin (fixture->bus, "good_sync", NULL, on_unloaded, &unload);
  loader_fixture_iterate_until (fixture, is_unloaded, &unload);
  g_assert_no_error (unload.error);
  g_assert_true (unload.result);

  jarvis_bus_emit (second_bus, jarvis_event_new ("test.ping", "second"));
  loader_fixture_emit (fixture, "test.ping", "first");
  loader_fixture_iterate_until_reports (fixture, 1);

  /* Only the second bus still has the plugin; the first bus's ping
   * reaches no handler of it. */
  g_assert_cmpuint (fixture->reports->len, ==, 1);
  g_assert_cmpstr (g_ptr_array_index (fixture->reports, 0), ==, "good_sync:test.ping:second");

  jarvis_bus_close_async (second_bus, NULL, on_second_bus_closed, &closed);
  loader_fixture_iterate_until (fixture, is_true, &closed);
}

int
main (int    argc,
      char **argv)
{
  loader_test_init (&argc, &argv);

  FIXTURE_TEST ("/jarvis/loader/unload/mid-stream", test_unload_mid_stream);
  FIXTURE_TEST ("/jarvis/loader/unload/never-returns", test_unload_never_returns);
  FIXTURE_TEST ("/jarvis/loader/unload/bus-close", test_close_unloads_all);
  FIXTURE_TEST ("/jarvis/loader/unload/reload", test_reload_after_unload);
  FIXTURE_TEST ("/jarvis/loader/unload/same-file-two-buses", test_same_file_two_buses);

  return g_test_run ();
}
