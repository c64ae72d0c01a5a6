/* Plugin options: group [plugin NAME] of the bus configuration, typed
 * getters, defaults, and errors that name plugin, key and value. */
#include "core-fixture.h"

#define ADD_TEST(path, func) \
  g_test_add (path, CoreFixture, NULL, core_fixture_set_up, func, core_fixture_tear_down)

static JarvisPlugin *configured;

static gboolean
init_configured (JarvisPlugin  *plugin,
                 GError       **error)
{
  configured = plugin;
  return TRUE;
}

static void
options_set_up (CoreFixture   *fixture,
                gconstpointer  data)
{
  g_autoptr(GKeyFile) config = g_key_file_new ();
  g_autoptr(GError) error = NULL;
  const char *text =
    "[plugin configured]\n"
    "path=/tmp/out.jsonl\n"
    "count=42\n"
    "negative=-7\n"
    "enabled=true\n"
    "ratio=0.25\n"
    "bad_count=forty\n"
    "bad_bool=yes\n"
    "bad_ratio=1.5x\n"
    "[plugin other]\n"
    "count=1\n";

  core_fixture_set_up (fixture, data);
  g_assert_true (g_key_file_load_from_data (config, text, -1, G_KEY_FILE_NONE, &error));
  g_assert_no_error (error);
  jarvis_bus_set_config (fixture->bus, config);
  g_assert_true (jarvis_bus_get_config (fixture->bus) == config);
  core_fixture_register (fixture, "configured", init_configured);
}

static void
test_options_values (CoreFixture   *fixture,
                     gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = jarvis_plugin_dup_option_string (configured, "path", "default");
  g_autofree char *missing = jarvis_plugin_dup_option_string (configured, "missing", "fallback");

  g_assert_cmpstr (path, ==, "/tmp/out.jsonl");
  g_assert_cmpstr (missing, ==, "fallback");
  g_assert_true (jarvis_plugin_has_option (configured, "count"));
  g_assert_false (jarvis_plugin_has_option (configured, "missing"));

  g_assert_cmpint (jarvis_plugin_get_option_int (configured, "count", 1, &error), ==, 42);
  g_assert_cmpint (jarvis_plugin_get_option_int (configured, "negative", 1, &error), ==, -7);
  g_assert_cmpuint (jarvis_plugin_get_option_uint (configured, "count", 1, &error), ==, 42);
  g_assert_true (jarvis_plugin_get_option_boolean (configured, "enabled", FALSE, &error));
  g_assert_cmpfloat (jarvis_plugin_get_option_double (configured, "ratio", 1.0, &error), ==, 0.25);
  g_assert_no_error (error);

  /* A missing key is the default, not an error. */
  g_assert_cmpint (jarvis_plugin_get_option_int (configured, "absent", 9, &error), ==, 9);
  g_assert_cmpuint (jarvis_plugin_get_option_uint (configured, "absent", 9, &error), ==, 9);
  g_assert_false (jarvis_plugin_get_option_boolean (configured, "absent", FALSE, &error));
  g_assert_cmpfloat (jarvis_plugin_get_option_double (configured, "absent", 2.5, &error), ==, 2.5);
  g_assert_no_error (error);
}

static void
test_options_invalid (CoreFixture   *fixture,
                      gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (jarvis_plugin_get_option_int (configured, "bad_count", 5, &error), ==, 5);
  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_INVALID_OPTION);
  g_assert_cmpstr (error->message, ==,
                   "Option bad_count of plugin configured has the invalid value “forty”: "
                   "expected an integer");
  g_clear_error (&error);

  g_assert_cmpuint (jarvis_plugin_get_option_uint (configured, "negative", 3, &error), ==, 3);
  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_INVALID_OPTION);
  g_assert_nonnull (strstr (error->message, "“-7”"));
  g_clear_error (&error);

  g_assert_true (jarvis_plugin_get_option_boolean (configured, "bad_bool", TRUE, &error));
  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_INVALID_OPTION);
  g_assert_nonnull (strstr (error->message, "bad_bool"));
  g_clear_error (&error);

  g_assert_cmpfloat (jarvis_plugin_get_option_double (configured, "bad_ratio", 0.5, &error), ==, 0.5);
  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_INVALID_OPTION);
  g_assert_nonnull (strstr (error->message, "1.5x"));
  g_clear_error (&error);

  /* Without a GError the default still comes back. */
  g_assert_cmpint (jarvis_plugin_get_option_int (configured, "bad_count", 6, NULL), ==, 6);
  jarvis_test_log_assert_no_warnings ();
}

static void
test_options_without_config (CoreFixture   *fixture,
                             gconstpointer  data)
{
  g_autofree char *value = NULL;

  core_fixture_register (fixture, "configured", init_configured);
  value = jarvis_plugin_dup_option_string (configured, "path", NULL);
  g_assert_null (value);
  g_assert_false (jarvis_plugin_has_option (configured, "path"));
  g_assert_cmpint (jarvis_plugin_get_option_int (configured, "count", 11, NULL), ==, 11);
}

static void
free_counted (gpointer data)
{
  (*(guint *) data)++;
}

static void
test_options_plugin_data (CoreFixture   *fixture,
                          gconstpointer  data)
{
  guint n_freed = 0;

  g_assert_cmpstr (jarvis_plugin_get_name (configured), ==, "configured");
  g_assert_true (jarvis_plugin_get_context (configured) == fixture->context);

  jarvis_plugin_set_data (configured, &n_freed, free_counted);
  g_assert_true (jarvis_plugin_get_data (configured) == &n_freed);
  jarvis_plugin_set_data (configured, NULL, NULL);
  g_assert_cmpuint (n_freed, ==, 1);

  jarvis_plugin_set_data (configured, &n_freed, free_counted);
  jarvis_test_close_bus (fixture->bus, 5000);
  g_assert_cmpuint (n_freed, ==, 2);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  jarvis_test_log_init ();

  g_test_add ("/jarvis/options/values", CoreFixture, NULL, options_set_up, test_options_values, core_fixture_tear_down);
  g_test_add ("/jarvis/options/invalid", CoreFixture, NULL, options_set_up, test_options_invalid, core_fixture_tear_down);
  g_test_add ("/jarvis/options/plugin-data", CoreFixture, NULL, options_set_up, test_options_plugin_data, core_fixture_tear_down);
  ADD_TEST ("/jarvis/options/without-config", test_options_without_config);

  return g_test_run ();
}
