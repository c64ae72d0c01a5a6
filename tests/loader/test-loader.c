/* Tests of loading real plugin files through the real loader. The loader
 * finds plugins by the name in their descriptor. It rejects files with a
 * bad descriptor, a missing symbol, a failing init, a duplicate name or
 * untrusted modes, and the plugins already loaded keep working. */
#include "loader-fixture.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib/gstdio.h>

#define FIXTURE_TEST(path, function) \
  g_test_add ((path), LoaderFixture, NULL, loader_fixture_set_up, (function), loader_fixture_tear_down)

/* Loads good_sync by file, so that no search meets the other fixtures in
 * the directory. Failure tests use it to show that the plugins around a
 * failure keep working. */
static void
load_good_sync (LoaderFixture *fixture)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = loader_fixture_copy_plugin (fixture->plugin_dir, "good-sync", NULL);

  g_assert_true (jarvis_plugin_loader_load_file (fixture->loader, fixture->bus, path, &error));
  g_assert_no_error (error);
}

static void
assert_good_sync_works (LoaderFixture *fixture,
                        const char    *request_id)
{
  g_autofree char *expected = g_strdup_printf ("good_sync:test.ping:%s", request_id);
  guint before = fixture->reports->len;

  loader_fixture_emit (fixture, "test.ping", request_id);
  loader_fixture_iterate_until_reports (fixture, before + 1);

  g_assert_cmpuint (loader_fixture_count_reports (fixture, expected), ==, 1);
}

static void
assert_message_contains (const GError *error,
                         const char   *fragment)
{
  if (strstr (error->message, fragment) == NULL)
    g_error ("Message “%s” lacks “%s”", error->message, fragment);
}

static void
test_load_sync (LoaderFixture *fixture,
                gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) names = NULL;

  loader_fixture_add_plugin (fixture, "good-sync");
  g_assert_true (jarvis_plugin_loader_load (fixture->loader, fixture->bus, "good_sync", &error));
  g_assert_no_error (error);

  g_assert_nonnull (jarvis_bus_lookup_plugin (fixture->bus, "good_sync"));
  names = jarvis_bus_list_plugins (fixture->bus);
  g_assert_true (g_strv_contains ((const char * const *) names, "good_sync"));

  assert_good_sync_works (fixture, "r1");
  assert_good_sync_works (fixture, "r2");
  g_assert_cmpuint (fixture->reports->len, ==, 2);
}

static void
test_load_async (LoaderFixture *fixture,
                 gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;

  loader_fixture_add_plugin (fixture, "good-async");
  g_assert_true (jarvis_plugin_loader_load (fixture->loader, fixture->bus, "good_async", &error));
  g_assert_no_error (error);

  loader_fixture_emit (fixture, "test.ping", "a1");
  loader_fixture_emit (fixture, "test.ping", "a2");
  loader_fixture_iterate_until_reports (fixture, 2);
  loader_fixture_iterate_until_counter (fixture, JARVIS_COUNTER_TASKS_COMPLETED, 2);

  g_assert_cmpuint (fixture->reports->len, ==, 2);
  g_assert_cmpstr (g_ptr_array_index (fixture->reports, 0), ==, "good_async:test.ping:a1");
  g_assert_cmpstr (g_ptr_array_index (fixture->reports, 1), ==, "good_async:test.ping:a2");
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_CREATED), ==, 2);
  g_assert_cmpuint (jarvis_bus_get_counter (fixture->bus, JARVIS_COUNTER_TASKS_COMPLETED), ==, 2);
}

/* Each load goes through /proc/self/fd/N, and descriptor numbers are
 * reused as soon as they are closed. A second plugin loaded through the
 * number of the first must still be the second file. */
static void
test_load_two_plugins (LoaderFixture *fixture,
                       gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;

  loader_fixture_add_plugin (fixture, "good-async");
  load_good_sync (fixture);
  g_assert_true (jarvis_plugin_loader_load (fixture->loader, fixture->bus, "good_async", &error));
  g_assert_no_error (error);

  g_assert_nonnull (jarvis_bus_lookup_plugin (fixture->bus, "good_sync"));
  g_assert_nonnull (jarvis_bus_lookup_plugin (fixture->bus, "good_async"));

  loader_fixture_emit (fixture, "test.ping", "p1");
  loader_fixture_iterate_until_reports (fixture, 2);

  g_assert_cmpuint (loader_fixture_count_reports (fixture, "good_sync:test.ping:p1"), ==, 1);
  g_assert_cmpuint (loader_fixture_count_reports (fixture, "good_async:test.ping:p1"), ==, 1);
}

/* The file name means nothing: the descriptor name finds the plugin. */
static void
test_load_by_descriptor_name (LoaderFixture *fixture,
                              gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = loader_fixture_copy_plugin (fixture->plugin_dir, "good-sync", "zz-renamed.so");
  g_autoptr(JarvisPluginEntry) entry = NULL;

  entry = jarvis_plugin_loader_find (fixture->loader, "good_sync", &error);
  g_assert_no_error (error);
  g_assert_nonnull (entry);
  g_assert_cmpstr (jarvis_plugin_entry_get_path (entry), ==, path);

  g_assert_true (jarvis_plugin_loader_load (fixture->loader, fixture->bus, "good_sync", &error));
  g_assert_no_error (error);
  assert_good_sync_works (fixture, "n1");
}

static void
test_load_file (LoaderFixture *fixture,
                gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *elsewhere = loader_fixture_make_dir (fixture, "elsewhere");
  g_autofree char *path = loader_fixture_copy_plugin (elsewhere, "good-sync", "any-name.so");

  /* The directory is not on the search path: only load_file reaches it. */
  g_assert_false (jarvis_plugin_loader_load (fixture->loader, fixture->bus, "good_sync", &error));
  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_NOT_FOUND);
  g_clear_error (&error);

  g_assert_true (jarvis_plugin_loader_load_file (fixture->loader, fixture->bus, path, &error));
  g_assert_no_error (error);
  assert_good_sync_works (fixture, "f1");
}

static void
test_list_entries (LoaderFixture *fixture,
                   gconstpointer  user_data)
{
  g_autofree char *second_dir = loader_fixture_make_dir (fixture, "second");
  g_autofree char *sync_path = loader_fixture_copy_plugin (fixture->plugin_dir, "good-sync", NULL);
  g_autofree char *async_path = loader_fixture_copy_plugin (second_dir, "good-async", NULL);
  g_autoptr(GPtrArray) entries = NULL;
  JarvisPluginEntry *entry;

  loader_fixture_add_plugin (fixture, "streamer");
  jarvis_plugin_loader_add_search_dir (fixture->loader, second_dir);
  entries = jarvis_plugin_loader_list (fixture->loader);

  /* Search order first, then file name within a directory. */
  g_assert_cmpuint (entries->len, ==, 3);
  g_assert_cmpstr (jarvis_plugin_entry_get_name (g_ptr_array_index (entries, 0)), ==, "good_sync");
  g_assert_cmpstr (jarvis_plugin_entry_get_name (g_ptr_array_index (entries, 1)), ==, "streamer");
  g_assert_cmpstr (jarvis_plugin_entry_get_name (g_ptr_array_index (entries, 2)), ==, "good_async");

  entry = g_ptr_array_index (entries, 0);
  g_assert_cmpstr (jarvis_plugin_entry_get_version (entry), ==, "1.0");
  g_assert_cmpstr (jarvis_plugin_entry_get_description (entry), ==, "Reports pings synchronously");
  g_assert_cmpstr (jarvis_plugin_entry_get_license (entry), ==, "MIT");
  g_assert_cmpstr (jarvis_plugin_entry_get_path (entry), ==, sync_path);
  g_assert_cmpstr (jarvis_plugin_entry_get_path (g_ptr_array_index (entries, 2)), ==, async_path);

  /* Listing reads descriptors only: nothing was registered. */
  g_assert_null (jarvis_bus_lookup_plugin (fixture->bus, "good_sync"));
}

/* Copies a fixture that must be rejected next to good_sync, loads it by
 * file and returns the error, after checking that good_sync still works. */
static GError *
load_bad_fixture (LoaderFixture *fixture,
                  const char    *fixture_name,
                  char         **path_out)
{
  GError *error = NULL;
  g_autofree char *path = loader_fixture_copy_plugin (fixture->plugin_dir, fixture_name, NULL);
  g_auto(GStrv) names = NULL;

  load_good_sync (fixture);

  g_assert_false (jarvis_plugin_loader_load_file (fixture->loader, fixture->bus, path, &error));
  g_assert_nonnull (error);
  g_assert_true (error->domain == JARVIS_PLUGIN_ERROR);
  assert_message_contains (error, path);

  /* The bus has the probe and good_sync, nothing of the rejected file. */
  names = jarvis_bus_list_plugins (fixture->bus);
  g_assert_cmpuint (g_strv_length (names), ==, 2);
  assert_good_sync_works (fixture, "after");

  *path_out = g_steal_pointer (&path);
  return error;
}

static void
test_reject_wrong_abi (LoaderFixture *fixture,
                       gconstpointer  user_data)
{
  g_autofree char *path = NULL;
  g_autoptr(GError) error = load_bad_fixture (fixture, "wrong-abi", &path);
  g_autoptr(GPtrArray) entries = NULL;

  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_ABI_MISMATCH);
  assert_message_contains (error, "plugin ABI version 42");
  assert_message_contains (error, "expected version 1");

  /* A listing skips the file with a warning that carries the same reason. */
  entries = jarvis_plugin_loader_list (fixture->loader);
  g_assert_cmpuint (entries->len, ==, 1);
  loader_test_assert_one_warning (path, "plugin ABI version 42", NULL);
}

static void
test_reject_small_struct (LoaderFixture *fixture,
                          gconstpointer  user_data)
{
  g_autofree char *path = NULL;
  g_autoptr(GError) error = load_bad_fixture (fixture, "small-struct", &path);
  g_autofree char *expected = g_strdup_printf ("descriptor of 8 bytes, expected between %u and %u bytes",
                                               (guint) G_STRUCT_OFFSET (JarvisPluginInfo, reserved),
                                               (guint) sizeof (JarvisPluginInfo));

  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_ABI_MISMATCH);
  assert_message_contains (error, expected);
}

/* The smallest size the loader accepts must register on the bus too: a
 * plugin that the listing shows must also load. */
static void
test_load_smallest_struct (LoaderFixture *fixture,
                           gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) entries = NULL;

  loader_fixture_add_plugin (fixture, "old-size");

  entries = jarvis_plugin_loader_list (fixture->loader);
  g_assert_cmpuint (entries->len, ==, 1);
  g_assert_cmpstr (jarvis_plugin_entry_get_name (g_ptr_array_index (entries, 0)), ==, "old_size");

  g_assert_true (jarvis_plugin_loader_load (fixture->loader, fixture->bus, "old_size", &error));
  g_assert_no_error (error);
  g_assert_nonnull (jarvis_bus_lookup_plugin (fixture->bus, "old_size"));

  loader_fixture_emit (fixture, "test.ping", "s1");
  loader_fixture_iterate_until_reports (fixture, 1);
  g_assert_cmpuint (fixture->reports->len, ==, 1);
  g_assert_cmpstr (g_ptr_array_index (fixture->reports, 0), ==, "old_size:test.ping:s1");
}

static void
test_reject_bad_name (LoaderFixture *fixture,
                      gconstpointer  user_data)
{
  g_autofree char *path = NULL;
  g_autoptr(GError) error = load_bad_fixture (fixture, "bad-name", &path);

  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_ABI_MISMATCH);
  assert_message_contains (error, "invalid name “bad-name”");
  assert_message_contains (error, "expected a C identifier");
}

static void
test_reject_missing_descriptor (LoaderFixture *fixture,
                                gconstpointer  user_data)
{
  g_autofree char *path = NULL;
  g_autoptr(GError) error = load_bad_fixture (fixture, "no-descriptor", &path);

  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_NOT_A_PLUGIN);
  assert_message_contains (error, "does not export jarvis_plugin_get_info()");
}

static void
test_reject_unresolved_symbol (LoaderFixture *fixture,
                               gconstpointer  user_data)
{
  g_autofree char *path = NULL;
  g_autoptr(GError) error = load_bad_fixture (fixture, "unresolved", &path);

  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_NOT_A_PLUGIN);
  assert_message_contains (error, "undefined symbol: jarvis_fixture_function_defined_nowhere");

  /* The descriptor path means nothing to the reader and is cut off. */
  g_assert_null (strstr (error->message, "/proc/self/fd"));
}

static void
test_reject_not_elf (LoaderFixture *fixture,
                     gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_build_filename (fixture->plugin_dir, "garbage.so", NULL);

  g_assert_true (g_file_set_contents_full (path, "not an ELF file\n", -1,
                                           G_FILE_SET_CONTENTS_NONE, 0644, &error));
  g_assert_no_error (error);
  load_good_sync (fixture);

  g_assert_false (jarvis_plugin_loader_load_file (fixture->loader, fixture->bus, path, &error));
  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_NOT_A_PLUGIN);
  assert_message_contains (error, path);
  assert_good_sync_works (fixture, "after");
}

static void
test_reject_init_failure (LoaderFixture *fixture,
                          gconstpointer  user_data)
{
  g_autofree char *path = NULL;
  g_autoptr(GError) error = load_bad_fixture (fixture, "init-fails", &path);

  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_INIT_FAILED);
  assert_message_contains (error, "init_fails");
  assert_message_contains (error, "the backend is unreachable");
  g_assert_null (jarvis_bus_lookup_plugin (fixture->bus, "init_fails"));

  /* The failed plugin's handler is gone, so only good_sync reports. */
  g_assert_cmpuint (fixture->reports->len, ==, 1);
}

static void
test_reject_not_found (LoaderFixture *fixture,
                       gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *missing = g_build_filename (fixture->plugin_dir, "missing.so", NULL);

  load_good_sync (fixture);

  g_assert_false (jarvis_plugin_loader_load (fixture->loader, fixture->bus, "absent", &error));
  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_NOT_FOUND);
  assert_message_contains (error, "Plugin “absent” not found");
  assert_message_contains (error, fixture->plugin_dir);
  assert_message_contains (error, "set JARVIS_PLUGIN_PATH");
  g_clear_error (&error);

  g_assert_false (jarvis_plugin_loader_load_file (fixture->loader, fixture->bus, missing, &error));
  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_NOT_FOUND);
  assert_message_contains (error, missing);

  assert_good_sync_works (fixture, "after");
}

/* A broken file on the path is skipped by a search for another name. */
static void
test_search_skips_broken (LoaderFixture *fixture,
                          gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *broken = loader_fixture_copy_plugin (fixture->plugin_dir, "wrong-abi", "aa-first.so");

  loader_fixture_add_plugin (fixture, "good-sync");
  g_assert_true (jarvis_plugin_loader_load (fixture->loader, fixture->bus, "good_sync", &error));
  g_assert_no_error (error);
  loader_test_assert_one_warning ("Skipped plugin", broken, "plugin ABI version 42", NULL);

  g_assert_false (jarvis_plugin_loader_load (fixture->loader, fixture->bus, "wrong_abi", &error));
  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_NOT_FOUND);
  assert_message_contains (error, "1 plugin file was skipped");
  loader_test_assert_one_warning (broken, NULL);

  assert_good_sync_works (fixture, "after");
}

/* With the default path on, a directory from JARVIS_PLUGIN_PATH is searched
 * after the loader's own directories. */
static void
test_search_environment_path (LoaderFixture *fixture,
                              gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JarvisPluginEntry) entry = NULL;
  g_autofree char *env_dir = loader_fixture_make_dir (fixture, "from-environment");
  g_autofree char *path = loader_fixture_copy_plugin (env_dir, "good-sync", NULL);
  g_autoptr(JarvisPluginLoader) loader = jarvis_plugin_loader_new ();

  g_setenv (JARVIS_PLUGIN_PATH_VARIABLE, env_dir, TRUE);
  jarvis_plugin_loader_add_search_dir (loader, fixture->plugin_dir);

  entry = jarvis_plugin_loader_find (loader, "good_sync", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (jarvis_plugin_entry_get_path (entry), ==, path);

  g_assert_true (jarvis_plugin_loader_load (loader, fixture->bus, "good_sync", &error));
  g_assert_no_error (error);
  assert_good_sync_works (fixture, "env");

  g_setenv (JARVIS_PLUGIN_PATH_VARIABLE, "", TRUE);
}

static void
test_duplicate_first_dir_wins (LoaderFixture *fixture,
                               gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *later_dir = loader_fixture_make_dir (fixture, "later");
  g_autofree char *first = loader_fixture_copy_plugin (fixture->plugin_dir, "duplicate-second", "zz.so");
  g_autofree char *second = loader_fixture_copy_plugin (later_dir, "duplicate-first", "aa.so");
  g_autoptr(GPtrArray) entries = NULL;
  g_autoptr(JarvisPluginEntry) found = NULL;

  jarvis_plugin_loader_add_search_dir (fixture->loader, later_dir);

  entries = jarvis_plugin_loader_list (fixture->loader);
  g_assert_cmpuint (entries->len, ==, 1);
  g_assert_cmpstr (jarvis_plugin_entry_get_version (g_ptr_array_index (entries, 0)), ==, "2.0");
  g_assert_cmpstr (jarvis_plugin_entry_get_path (g_ptr_array_index (entries, 0)), ==, first);
  loader_test_assert_one_warning (second, first, "plugin “duplicate” is already provided", NULL);

  found = jarvis_plugin_loader_find (fixture->loader, "duplicate", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (jarvis_plugin_entry_get_path (found), ==, first);

  g_assert_true (jarvis_plugin_loader_load (fixture->loader, fixture->bus, "duplicate", &error));
  g_assert_no_error (error);

  loader_fixture_emit (fixture, "test.ping", "d1");
  loader_fixture_iterate_until_reports (fixture, 1);
  g_assert_cmpstr (g_ptr_array_index (fixture->reports, 0), ==, "duplicate:test.ping:d1");
}

static void
test_duplicate_same_dir (LoaderFixture *fixture,
                         gconstpointer  user_data)
{
  g_autofree char *first = loader_fixture_copy_plugin (fixture->plugin_dir, "duplicate-first", "a.so");
  g_autofree char *second = loader_fixture_copy_plugin (fixture->plugin_dir, "duplicate-second", "b.so");
  g_autoptr(GPtrArray) entries = NULL;

  entries = jarvis_plugin_loader_list (fixture->loader);
  g_assert_cmpuint (entries->len, ==, 1);
  g_assert_cmpstr (jarvis_plugin_entry_get_version (g_ptr_array_index (entries, 0)), ==, "1.0");
  loader_test_assert_one_warning (second, first, NULL);
}

static void
test_duplicate_already_loaded (LoaderFixture *fixture,
                               gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *elsewhere = loader_fixture_make_dir (fixture, "elsewhere");
  g_autofree char *copy = loader_fixture_copy_plugin (elsewhere, "good-sync", NULL);

  load_good_sync (fixture);

  g_assert_false (jarvis_plugin_loader_load (fixture->loader, fixture->bus, "good_sync", &error));
  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_DUPLICATE);
  assert_message_contains (error, "“good_sync”");
  g_clear_error (&error);

  /* Another file that carries the same name is rejected the same way. */
  g_assert_false (jarvis_plugin_loader_load_file (fixture->loader, fixture->bus, copy, &error));
  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_DUPLICATE);
  assert_message_contains (error, copy);

  /* The loaded copy reports once per ping, not twice. */
  assert_good_sync_works (fixture, "after");
  g_assert_cmpuint (fixture->reports->len, ==, 1);
}

static void
test_untrusted_file (LoaderFixture *fixture,
                     gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = loader_fixture_copy_plugin (fixture->plugin_dir, "good-async", NULL);
  g_autoptr(GPtrArray) entries = NULL;

  load_good_sync (fixture);
  g_assert_no_errno (g_chmod (path, 0664));

  g_assert_false (jarvis_plugin_loader_load_file (fixture->loader, fixture->bus, path, &error));
  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_UNTRUSTED);
  assert_message_contains (error, path);
  assert_message_contains (error, "mode 0664 is writable by group");
  g_clear_error (&error);

  /* By name, the untrusted file is skipped with a warning, so not found. */
  g_assert_false (jarvis_plugin_loader_load (fixture->loader, fixture->bus, "good_async", &error));
  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_NOT_FOUND);
  g_clear_error (&error);
  loader_test_assert_one_warning (path, "writable by group", NULL);

  entries = jarvis_plugin_loader_list (fixture->loader);
  g_assert_cmpuint (entries->len, ==, 1);
  g_assert_cmpstr (jarvis_plugin_entry_get_name (g_ptr_array_index (entries, 0)), ==, "good_sync");
  loader_test_assert_one_warning (path, "writable by group", NULL);

  g_assert_no_errno (g_chmod (path, 0646));
  g_assert_false (jarvis_plugin_loader_load_file (fixture->loader, fixture->bus, path, &error));
  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_UNTRUSTED);
  assert_message_contains (error, "writable by others");
  g_clear_error (&error);

  assert_good_sync_works (fixture, "after");

  /* The development switch lets the same file in. */
  jarvis_plugin_loader_set_allow_untrusted (fixture->loader, TRUE);
  g_assert_true (jarvis_plugin_loader_load_file (fixture->loader, fixture->bus, path, &error));
  g_assert_no_error (error);
  g_assert_nonnull (jarvis_bus_lookup_plugin (fixture->bus, "good_async"));
}

static void
test_untrusted_directory (LoaderFixture *fixture,
                          gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *shared_dir = loader_fixture_make_dir (fixture, "shared");
  g_autofree char *path = loader_fixture_copy_plugin (shared_dir, "good-async", NULL);

  load_good_sync (fixture);
  g_assert_no_errno (g_chmod (shared_dir, 0775));

  g_assert_false (jarvis_plugin_loader_load_file (fixture->loader, fixture->bus, path, &error));
  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_UNTRUSTED);
  assert_message_contains (error, "Untrusted plugin directory");
  assert_message_contains (error, shared_dir);
  assert_message_contains (error, "mode 0775 is writable by group");
  g_clear_error (&error);

  assert_good_sync_works (fixture, "after");

  jarvis_plugin_loader_set_allow_untrusted (fixture->loader, TRUE);
  g_assert_true (jarvis_plugin_loader_load_file (fixture->loader, fixture->bus, path, &error));
  g_assert_no_error (error);
}

static void
test_untrusted_symlink (LoaderFixture *fixture,
                        gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *elsewhere = loader_fixture_make_dir (fixture, "elsewhere");
  g_autofree char *target = loader_fixture_copy_plugin (elsewhere, "good-async", NULL);
  g_autofree char *link = g_build_filename (fixture->plugin_dir, "link.so", NULL);

  g_assert_no_errno (symlink (target, link));

  g_assert_false (jarvis_plugin_loader_load_file (fixture->loader, fixture->bus, link, &error));
  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_UNTRUSTED);
  assert_message_contains (error, "is a symbolic link");
  g_clear_error (&error);

  /* Following links is no part of the development switch either. */
  jarvis_plugin_loader_set_allow_untrusted (fixture->loader, TRUE);
  g_assert_false (jarvis_plugin_loader_load_file (fixture->loader, fixture->bus, link, &error));
  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_UNTRUSTED);
}

static void
test_reject_directory_entry (LoaderFixture *fixture,
                             gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *fake = loader_fixture_make_dir (fixture, "directory.so");
  g_autoptr(GPtrArray) entries = NULL;

  g_assert_false (jarvis_plugin_loader_load_file (fixture->loader, fixture->bus, fake, &error));
  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_NOT_A_PLUGIN);
  assert_message_contains (error, "is not a regular file");

  entries = jarvis_plugin_loader_list (fixture->loader);
  g_assert_cmpuint (entries->len, ==, 0);
  loader_test_assert_one_warning (fake, "not a regular file", NULL);
}

/* A FIFO that carries a plugin's name must not block the scan. */
static void
test_reject_fifo (LoaderFixture *fixture,
                  gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *fifo = g_build_filename (fixture->plugin_dir, "fifo.so", NULL);
  g_autoptr(GPtrArray) entries = NULL;

  g_assert_no_errno (mkfifo (fifo, 0644));
  load_good_sync (fixture);

  entries = jarvis_plugin_loader_list (fixture->loader);
  g_assert_cmpuint (entries->len, ==, 1);
  loader_test_assert_one_warning (fifo, "is not a regular file", NULL);

  g_assert_false (jarvis_plugin_loader_load_file (fixture->loader, fixture->bus, fifo, &error));
  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_NOT_A_PLUGIN);
  assert_good_sync_works (fixture, "after");
}

/* Changing the owner needs root; other users skip these two tests. */
static gboolean
can_change_owner (void)
{
  if (geteuid () == 0)
    return TRUE;

  g_test_skip ("Changing a file's owner needs root");
  return FALSE;
}

static void
test_untrusted_owner (LoaderFixture *fixture,
                      gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = loader_fixture_copy_plugin (fixture->plugin_dir, "good-async", NULL);

  if (!can_change_owner ())
    return;

  load_good_sync (fixture);
  g_assert_no_errno (chown (path, 65534, 65534));

  g_assert_false (jarvis_plugin_loader_load_file (fixture->loader, fixture->bus, path, &error));
  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_UNTRUSTED);
  assert_message_contains (error, "Untrusted plugin file");
  assert_message_contains (error, "owned by uid 65534");
  g_clear_error (&error);

  assert_good_sync_works (fixture, "after");

  jarvis_plugin_loader_set_allow_untrusted (fixture->loader, TRUE);
  g_assert_true (jarvis_plugin_loader_load_file (fixture->loader, fixture->bus, path, &error));
  g_assert_no_error (error);
}

static void
test_untrusted_directory_owner (LoaderFixture *fixture,
                                gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *foreign_dir = loader_fixture_make_dir (fixture, "foreign");
  g_autofree char *path = loader_fixture_copy_plugin (foreign_dir, "good-async", NULL);

  if (!can_change_owner ())
    return;

  g_assert_no_errno (chown (foreign_dir, 65534, 65534));

  g_assert_false (jarvis_plugin_loader_load_file (fixture->loader, fixture->bus, path, &error));
  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_UNTRUSTED);
  assert_message_contains (error, "Untrusted plugin directory");
  assert_message_contains (error, "owned by uid 65534");
}

int
main (int    argc,
      char **argv)
{
  loader_test_init (&argc, &argv);

  FIXTURE_TEST ("/jarvis/loader/load/sync", test_load_sync);
  FIXTURE_TEST ("/jarvis/loader/load/async", test_load_async);
  FIXTURE_TEST ("/jarvis/loader/load/two-plugins", test_load_two_plugins);
  FIXTURE_TEST ("/jarvis/loader/load/by-descriptor-name", test_load_by_descriptor_name);
  FIXTURE_TEST ("/jarvis/loader/load/file", test_load_file);
  FIXTURE_TEST ("/jarvis/loader/list/entries", test_list_entries);
  FIXTURE_TEST ("/jarvis/loader/reject/wrong-abi", test_reject_wrong_abi);
  FIXTURE_TEST ("/jarvis/loader/reject/small-struct", test_reject_small_struct);
  FIXTURE_TEST ("/jarvis/loader/load/smallest-struct", test_load_smallest_struct);
  FIXTURE_TEST ("/jarvis/loader/reject/bad-name", test_reject_bad_name);
  FIXTURE_TEST ("/jarvis/loader/reject/missing-descriptor", test_reject_missing_descriptor);
  FIXTURE_TEST ("/jarvis/loader/reject/unresolved-symbol", test_reject_unresolved_symbol);
  FIXTURE_TEST ("/jarvis/loader/reject/not-elf", test_reject_not_elf);
  FIXTURE_TEST ("/jarvis/loader/reject/directory", test_reject_directory_entry);
  FIXTURE_TEST ("/jarvis/loader/reject/fifo", test_reject_fifo);
  FIXTURE_TEST ("/jarvis/loader/reject/init-failure", test_reject_init_failure);
  FIXTURE_TEST ("/jarvis/loader/reject/not-found", test_reject_not_found);
  FIXTURE_TEST ("/jarvis/loader/search/skips-broken", test_search_skips_broken);
  FIXTURE_TEST ("/jarvis/loader/search/environment-path", test_search_environment_path);
  FIXTURE_TEST ("/jarvis/loader/duplicate/first-dir-wins", test_duplicate_first_dir_wins);
  FIXTURE_TEST ("/jarvis/loader/duplicate/same-dir", test_duplicate_same_dir);
  FIXTURE_TEST ("/jarvis/loader/duplicate/already-loaded", test_duplicate_already_loaded);
  FIXTURE_TEST ("/jarvis/loader/trust/group-writable-file", test_untrusted_file);
  FIXTURE_TEST ("/jarvis/loader/trust/group-writable-dir", test_untrusted_directory);
  FIXTURE_TEST ("/jarvis/loader/trust/symlink", test_untrusted_symlink);
  FIXTURE_TEST ("/jarvis/loader/trust/foreign-file-owner", test_untrusted_owner);
  FIXTURE_TEST ("/jarvis/loader/trust/foreign-dir-owner", test_untrusted_directory_owner);

  return g_test_run ();
}
