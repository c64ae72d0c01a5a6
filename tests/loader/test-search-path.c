/* The order of the plugin search path, with and without the default
 * directories and in a process with elevated privileges. */
#include "config.h"

#include "jarvis-plugin-loader-private.h"

static char *
user_plugin_dir (void)
{
  return g_build_filename (g_get_user_data_dir (), "jarvis-events-1", "plugins", NULL);
}

static void
assert_path (JarvisPluginLoader *loader,
             const char * const *expected)
{
  g_auto(GStrv) path = jarvis_plugin_loader_dup_search_path (loader);
  guint n_expected = g_strv_length ((GStrv) expected);

  for (guint i = 0; path[i] != NULL; i++)
    g_test_message ("search path %u: %s", i, path[i]);

  g_assert_cmpuint (g_strv_length (path), ==, n_expected);
  for (guint i = 0; i < n_expected; i++)
    g_assert_cmpstr (path[i], ==, expected[i]);
}

static void
test_search_path_default (void)
{
  g_autoptr(JarvisPluginLoader) loader = jarvis_plugin_loader_new ();
  g_autofree char *user_dir = user_plugin_dir ();

  g_setenv (JARVIS_PLUGIN_PATH_VARIABLE, "/opt/one::/opt/two:", TRUE);
  jarvis_plugin_loader_add_search_dir (loader, "/host/first");
  jarvis_plugin_loader_add_search_dir (loader, "/host/second");

  /* Empty entries of the variable are dropped, not read as ".". */
  assert_path (loader, (const char * const[]) {
    "/host/first", "/host/second", "/opt/one", "/opt/two", user_dir, JARVIS_PLUGINSDIR, NULL,
  });
}

static void
test_search_path_no_default (void)
{
  g_autoptr(JarvisPluginLoader) loader = jarvis_plugin_loader_new ();

  g_setenv (JARVIS_PLUGIN_PATH_VARIABLE, "/opt/one", TRUE);
  jarvis_plugin_loader_add_search_dir (loader, "/host/first");
  jarvis_plugin_loader_set_use_default_path (loader, FALSE);

  assert_path (loader, (const char * const[]) { "/host/first", NULL });
}

/* A setuid host must not let the caller's environment choose its code. */
static void
test_search_path_secure (void)
{
  g_autoptr(JarvisPluginLoader) loader = jarvis_plugin_loader_new ();

  g_setenv (JARVIS_PLUGIN_PATH_VARIABLE, "/opt/one", TRUE);
  jarvis_plugin_loader_add_search_dir (loader, "/host/first");
  _jarvis_plugin_loader_set_secure (loader, TRUE);

  assert_path (loader, (const char * const[]) { "/host/first", JARVIS_PLUGINSDIR, NULL });
}

static void
test_search_path_unset_variable (void)
{
  g_autoptr(JarvisPluginLoader) loader = jarvis_plugin_loader_new ();
  g_autofree char *user_dir = user_plugin_dir ();

  g_unsetenv (JARVIS_PLUGIN_PATH_VARIABLE);

  assert_path (loader, (const char * const[]) { user_dir, JARVIS_PLUGINSDIR, NULL });
}

static void
test_search_path_repeated_dir (void)
{
  g_autoptr(JarvisPluginLoader) loader = jarvis_plugin_loader_new ();

  g_setenv (JARVIS_PLUGIN_PATH_VARIABLE, "/host/first/:/opt/one", TRUE);
  jarvis_plugin_loader_add_search_dir (loader, "/host/first");
  jarvis_plugin_loader_add_search_dir (loader, "/host/./first");
  jarvis_plugin_loader_set_use_default_path (loader, TRUE);

  g_auto(GStrv) path = jarvis_plugin_loader_dup_search_path (loader);
  g_assert_cmpstr (path[0], ==, "/host/first");
  g_assert_cmpstr (path[1], ==, "/opt/one");
  g_assert_cmpuint (g_strv_length (path), ==, 4);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/jarvis/loader/search-path/default", test_search_path_default);
  g_test_add_func ("/jarvis/loader/search-path/no-default", test_search_path_no_default);
  g_test_add_func ("/jarvis/loader/search-path/secure", test_search_path_secure);
  g_test_add_func ("/jarvis/loader/search-path/unset-variable", test_search_path_unset_variable);
  g_test_add_func ("/jarvis/loader/search-path/repeated-dir", test_search_path_repeated_dir);

  return g_test_run ();
}
