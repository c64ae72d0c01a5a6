#include "config.h"

#include <string.h>

#include "fuzz-target.h"
#include "jarvis-host-config.h"

/* Checks that an accepted `--option` reads back exactly as given. */
static void
check_option (GKeyFile   *config,
              const char *assignment)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *group = NULL;
  g_autofree char *key = NULL;
  g_autofree char *value = NULL;
  const char *dot;
  const char *equals;

  if (!jarvis_host_config_add_option (config, assignment, &error))
    {
      g_assert_nonnull (error);
      g_assert_true (g_error_matches (error, JARVIS_HOST_ERROR, JARVIS_HOST_ERROR_INVALID_OPTION));
      return;
    }

  equals = strchr (assignment, '=');
  dot = strchr (assignment, '.');
  g_assert_nonnull (equals);
  g_assert_true (dot != NULL && dot < equals);

  group = g_strdup_printf ("plugin %.*s", (int) (dot - assignment), assignment);
  key = g_strndup (dot + 1, equals - (dot + 1));
  value = g_key_file_get_string (config, group, key, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (value, ==, equals + 1);
}

/* The input is a configuration file. Every line of it is also tried as an
 * `--option` value and as a number option, so one seed covers both
 * parsers. */
int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr (GKeyFile) config = g_key_file_new ();
  g_autoptr (GKeyFile) options_config = g_key_file_new ();
  g_autofree char *text = g_strndup ((const char *) data, size);
  g_auto (GStrv) lines = NULL;
  JarvisHostOptions options = { 0 };

  if (g_key_file_load_from_data (config, (const char *) data, size, G_KEY_FILE_NONE, NULL))
    {
      g_autoptr (GError) error = NULL;

      if (!jarvis_host_options_merge_config (&options, config, "fuzz.conf", &error))
        g_assert_true (g_error_matches (error, JARVIS_HOST_ERROR, JARVIS_HOST_ERROR_INVALID_CONFIG));
    }

  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_autoptr (GError) error = NULL;
      guint64 value = 0;

      check_option (options_config, lines[i]);

      if (jarvis_host_parse_uint ("fuzz", lines[i], 0, 1, 1000, &value, &error))
        g_assert_true (value >= 1 && value <= 1000);
      else
        g_assert_true (g_error_matches (error, JARVIS_HOST_ERROR, JARVIS_HOST_ERROR_INVALID_OPTION));
    }

  jarvis_host_options_clear (&options);

  return 0;
}
