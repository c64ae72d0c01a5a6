/* Configuration of jarvis-host: the `[host]` defaults of the key file and
 * the `--option PLUGIN.KEY=VALUE` assignments merged into it.
 *
 * This file takes untrusted text from the user's files and command line,
 * so it is also a fuzz target. Every path returns a GError; none aborts.
 */
#include "config.h"

#include "jarvis-host-config.h"

#include <stddef.h>
#include <string.h>

G_DEFINE_QUARK (jarvis-host-error-quark, jarvis_host_error)

#define HOST_GROUP "host"
#define PLUGIN_GROUP_PREFIX "plugin "

typedef enum
{
  HOST_KEY_STRING,
  HOST_KEY_LIST,
  HOST_KEY_FLAG,
} HostKeyKind;

/* The options that the `[host]` group may set, under their long option
 * names. Options that only make sense once per run (`--config`,
 * `--list-plugins`, `--version`, `--option`) are absent on purpose. */
static const struct
{
  const char *key;
  HostKeyKind kind;
  size_t offset;
} host_keys[] = {
  { "format", HOST_KEY_STRING, offsetof (JarvisHostOptions, format) },
  { "plugin-dir", HOST_KEY_LIST, offsetof (JarvisHostOptions, plugin_dirs) },
  { "plugin", HOST_KEY_LIST, offsetof (JarvisHostOptions, plugins) },
  { "allow-untrusted-plugins", HOST_KEY_FLAG, offsetof (JarvisHostOptions, allow_untrusted_plugins) },
  { "flush-interval", HOST_KEY_STRING, offsetof (JarvisHostOptions, flush_interval) },
  { "flush-bytes", HOST_KEY_STRING, offsetof (JarvisHostOptions, flush_bytes) },
  { "session", HOST_KEY_STRING, offsetof (JarvisHostOptions, session) },
  { "request-id", HOST_KEY_STRING, offsetof (JarvisHostOptions, request_id) },
  { "stats", HOST_KEY_STRING, offsetof (JarvisHostOptions, stats) },
  { "verbose", HOST_KEY_FLAG, offsetof (JarvisHostOptions, verbose) },
  { "read-size", HOST_KEY_STRING, offsetof (JarvisHostOptions, read_size) },
  { "max-line-length", HOST_KEY_STRING, offsetof (JarvisHostOptions, max_line_length) },
  { "url", HOST_KEY_STRING, offsetof (JarvisHostOptions, url) },
  { "model", HOST_KEY_STRING, offsetof (JarvisHostOptions, model) },
  { "api-key-file", HOST_KEY_STRING, offsetof (JarvisHostOptions, api_key_file) },
  { "connect-timeout", HOST_KEY_STRING, offsetof (JarvisHostOptions, connect_timeout) },
  { "idle-timeout", HOST_KEY_STRING, offsetof (JarvisHostOptions, idle_timeout) },
};

/* JarvisHostOptions.from_config has one bit per key. */
G_STATIC_ASSERT (G_N_ELEMENTS (host_keys) <= 32);

void
jarvis_host_options_clear (JarvisHostOptions *options)
{
  g_clear_pointer (&options->format, g_free);
  g_clear_pointer (&options->plugin_dirs, g_strfreev);
  g_clear_pointer (&options->plugins, g_strfreev);
  g_clear_pointer (&options->plugin_options, g_strfreev);
  g_clear_pointer (&options->config_path, g_free);
  g_clear_pointer (&options->flush_interval, g_free);
  g_clear_pointer (&options->flush_bytes, g_free);
  g_clear_pointer (&options->session, g_free);
  g_clear_pointer (&options->request_id, g_free);
  g_clear_pointer (&options->stats, g_free);
  g_clear_pointer (&options->read_size, g_free);
  g_clear_pointer (&options->max_line_length, g_free);
  g_clear_pointer (&options->url, g_free);
  g_clear_pointer (&options->model, g_free);
  g_clear_pointer (&options->api_key_file, g_free);
  g_clear_pointer (&options->prompt, g_free);
  g_clear_pointer (&options->connect_timeout, g_free);
  g_clear_pointer (&options->idle_timeout, g_free);
  g_clear_pointer (&options->inputs, g_strfreev);
  g_clear_pointer (&options->config_name, g_free);
  options->from_config = 0;
}

/* Plugin names are C identifiers, as the loader requires of descriptors. */
static gboolean
is_identifier (const char *start,
               gsize       length)
{
  if (length == 0 || !(g_ascii_isalpha (start[0]) || start[0] == '_'))
    return FALSE;

  for (gsize i = 1; i < length; i++)
    {
      if (!(g_ascii_isalnum (start[i]) || start[i] == '_'))
        return FALSE;
    }

  return TRUE;
}

/* GKeyFile keys may not contain '=', '[', ']' or line breaks, and lose
 * surrounding spaces when the file is parsed, so such a key could never be
 * read back the same way. */
static gboolean
is_valid_key (const char *start,
              gsize       length)
{
  if (length == 0 || g_ascii_isspace (start[0]) || g_ascii_isspace (start[length - 1]))
    return FALSE;

  for (gsize i = 0; i < length; i++)
    {
      if (start[i] == '=' || start[i] == '[' || start[i] == ']' ||
          g_ascii_iscntrl (start[i]))
        return FALSE;
    }

  return g_utf8_validate_len (start, length, NULL);
}

/**
 * jarvis_host_config_add_option:
 * @config: the merged configuration
 * @assignment: one `--option` value, `PLUGIN.KEY=VALUE`
 * @error: return location for a %JARVIS_HOST_ERROR_INVALID_OPTION error
 *
 * Stores VALUE under KEY in the group `[plugin PLUGIN]`, replacing a value
 * from the configuration file. VALUE is taken literally and may be empty.
 *
 * Returns: %TRUE on success, %FALSE if @assignment is malformed
 */
gboolean
jarvis_host_config_add_option (GKeyFile    *config,
                               const char  *assignment,
                               GError     **error)
{
  g_autofree char *plugin = NULL;
  g_autofree char *key = NULL;
  g_autofree char *group = NULL;
  const char *dot;
  const char *equals;

  g_return_val_if_fail (config != NULL, FALSE);
  g_return_val_if_fail (assignment != NULL, FALSE);

  equals = strchr (assignment, '=');
  dot = memchr (assignment, '.', equals != NULL ? (size_t) (equals - assignment) : strlen (assignment));

  if (!g_utf8_validate (assignment, -1, NULL))
    {
      g_set_error (error, JARVIS_HOST_ERROR, JARVIS_HOST_ERROR_INVALID_OPTION,
                   "Invalid --option value: it is not valid UTF-8; "
                   "expected PLUGIN.KEY=VALUE");
      return FALSE;
    }

  if (equals == NULL || dot == NULL)
    {
      g_set_error (error, JARVIS_HOST_ERROR, JARVIS_HOST_ERROR_INVALID_OPTION,
                   "Invalid --option value '%s': expected PLUGIN.KEY=VALUE, "
                   "for example recorder.path=events.jsonl", assignment);
      return FALSE;
    }

  if (!is_identifier (assignment, dot - assignment))
    {
      g_set_error (error, JARVIS_HOST_ERROR, JARVIS_HOST_ERROR_INVALID_OPTION,
                   "Invalid --option value '%s': the plugin name before the "
                   "first '.' must be a C identifier such as 'recorder'", assignment);
      return FALSE;
    }

  if (!is_valid_key (dot + 1, equals - (dot + 1)))
    {
      g_set_error (error, JARVIS_HOST_ERROR, JARVIS_HOST_ERROR_INVALID_OPTION,
                   "Invalid --option value '%s': the key between '.' and '=' must "
                   "be non-empty, without spaces at its ends and without '[', ']' "
                   "or control characters", assignment);
      return FALSE;
    }

  plugin = g_strndup (assignment, dot - assignment);
  key = g_strndup (dot + 1, equals - (dot + 1));
  group = g_strconcat (PLUGIN_GROUP_PREFIX, plugin, NULL);

  /* set_string escapes the value, so the plugin reads back exactly what
   * was given, backslashes and line breaks included. */
  g_key_file_set_string (config, group, key, equals + 1);

  return TRUE;
}

static gboolean
merge_key (JarvisHostOptions  *options,
           GKeyFile           *config,
           const char         *config_name,
           guint               index,
           GError            **error)
{
  g_autoptr (GError) local_error = NULL;
  gpointer field = (char *) options + host_keys[index].offset;
  const char *key = host_keys[index].key;

  if (!g_key_file_has_key (config, HOST_GROUP, key, NULL))
    return TRUE;

  switch (host_keys[index].kind)
    {
    case HOST_KEY_STRING:
      if (*(char **) field != NULL)
        return TRUE;
      *(char **) field = g_key_file_get_string (config, HOST_GROUP, key, &local_error);
      break;

    case HOST_KEY_LIST:
      if (*(char ***) field != NULL)
        return TRUE;
      *(char ***) field = g_key_file_get_string_list (config, HOST_GROUP, key, NULL, &local_error);
      break;

    case HOST_KEY_FLAG:
      if (*(gboolean *) field)
        return TRUE;
      *(gboolean *) field = g_key_file_get_boolean (config, HOST_GROUP, key, &local_error);
      break;

    default:
      g_assert_not_reached ();
    }

  options->from_config |= 1u << index;

  if (local_error != NULL)
    {
      g_autofree char *raw = g_key_file_get_value (config, HOST_GROUP, key, NULL);
      g_autofree char *printable = g_utf8_make_valid (raw != NULL ? raw : "", -1);

      g_set_error (error, JARVIS_HOST_ERROR, JARVIS_HOST_ERROR_INVALID_CONFIG,
                   "Invalid value '%s' for the key '%s' in the [host] group of %s: %s; "
                   "correct the value or remove the key",
                   printable, key, config_name, local_error->message);
      return FALSE;
    }

  return TRUE;
}

/**
 * jarvis_host_options_merge_config:
 * @options: options from the command line
 * @config: the configuration file's contents
 * @config_name: the file name, for messages
 * @error: return location for a %JARVIS_HOST_ERROR_INVALID_CONFIG error
 *
 * Fills every option that the command line left unset from the `[host]`
 * group of @config. The command line always wins. An unknown key in
 * `[host]` is an error, so a typo never goes unnoticed.
 *
 * Returns: %TRUE on success
 */
gboolean
jarvis_host_options_merge_config (JarvisHostOptions  *options,
                                  GKeyFile           *config,
                                  const char         *config_name,
                                  GError            **error)
{
  g_auto (GStrv) keys = NULL;

  g_return_val_if_fail (options != NULL, FALSE);
  g_return_val_if_fail (config != NULL, FALSE);
  g_return_val_if_fail (config_name != NULL, FALSE);

  if (!g_key_file_has_group (config, HOST_GROUP))
    return TRUE;

  keys = g_key_file_get_keys (config, HOST_GROUP, NULL, NULL);
  g_free (options->config_name);
  options->config_name = g_strdup (config_name);

  for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
    {
      gboolean known = FALSE;

      for (guint k = 0; k < G_N_ELEMENTS (host_keys) && !known; k++)
        known = strcmp (keys[i], host_keys[k].key) == 0;

      if (!known)
        {
          g_autofree char *printable = g_utf8_make_valid (keys[i], -1);

          g_set_error (error, JARVIS_HOST_ERROR, JARVIS_HOST_ERROR_INVALID_CONFIG,
                       "Unknown key '%s' in the [host] group of %s; the group takes "
                       "the long option names of jarvis-host, see --help",
                       printable, config_name);
          return FALSE;
        }
    }

  for (guint k = 0; k < G_N_ELEMENTS (host_keys); k++)
    {
      if (!merge_key (options, config, config_name, k, error))
        return FALSE;
    }

  return TRUE;
}

/* Whether the value of the long option @key came from the `[host]` group
 * rather than the command line. */
static gboolean
is_from_config (const JarvisHostOptions *options,
                const char              *key)
{
  if (options == NULL || options->config_name == NULL)
    return FALSE;

  for (guint k = 0; k < G_N_ELEMENTS (host_keys); k++)
    {
      if (strcmp (host_keys[k].key, key) == 0)
        return (options->from_config & (1u << k)) != 0;
    }

  return FALSE;
}

/**
 * jarvis_host_options_set_value_error:
 * @options: (nullable): the options the value belongs to, or %NULL for a
 *   value from the command line
 * @key: the long option name without dashes, which is also its `[host]` key
 * @value: the rejected value
 * @expected: what the value should be, for example "expected auto or events"
 * @error: return location for the error
 *
 * Sets an error about a bad option value that names where the value came
 * from: the command-line option, or the key and the file that set it.
 */
void
jarvis_host_options_set_value_error (const JarvisHostOptions  *options,
                                     const char               *key,
                                     const char               *value,
                                     const char               *expected,
                                     GError                  **error)
{
  g_autofree char *printable = g_utf8_make_valid (value, -1);

  g_return_if_fail (key != NULL);
  g_return_if_fail (value != NULL);
  g_return_if_fail (expected != NULL);

  if (is_from_config (options, key))
    {
      g_set_error (error, JARVIS_HOST_ERROR, JARVIS_HOST_ERROR_INVALID_CONFIG,
                   "Invalid value '%s' for the key '%s' in the [host] group of %s: %s; "
                   "correct the value or remove the key",
                   printable, key, options->config_name, expected);
      return;
    }

  g_set_error (error, JARVIS_HOST_ERROR, JARVIS_HOST_ERROR_INVALID_OPTION,
               "Invalid value '%s' for --%s: %s", printable, key, expected);
}

/**
 * jarvis_host_options_parse_uint:
 * @options: (nullable): the options @value belongs to, for messages
 * @key: the long option name without dashes
 * @value: (nullable): the value as given, or %NULL when unset
 * @default_value: the result when @value is %NULL
 * @min: the smallest accepted value
 * @max: the largest accepted value
 * @out_value: (out): the result
 * @error: return location for the error
 *
 * Parses a decimal number option and checks its range. The error names
 * the configuration file and key when @options took @value from there.
 *
 * Returns: %TRUE on success
 */
gboolean
jarvis_host_options_parse_uint (const JarvisHostOptions  *options,
                                const char               *key,
                                const char               *value,
                                guint64                   default_value,
                                guint64                   min,
                                guint64                   max,
                                guint64                  *out_value,
                                GError                  **error)
{
  g_autofree char *expected = NULL;

  g_return_val_if_fail (key != NULL, FALSE);
  g_return_val_if_fail (out_value != NULL, FALSE);

  if (value == NULL)
    {
      *out_value = default_value;
      return TRUE;
    }

  if (g_ascii_string_to_unsigned (value, 10, min, max, out_value, NULL))
    return TRUE;

  expected = g_strdup_printf ("expected a whole number from %" G_GUINT64_FORMAT
                              " to %" G_GUINT64_FORMAT, min, max);
  jarvis_host_options_set_value_error (options, key, value, expected, error);

  return FALSE;
}

/**
 * jarvis_host_parse_uint:
 * @option_name: the long option name, for messages
 * @value: (nullable): the value as given, or %NULL when unset
 * @default_value: the result when @value is %NULL
 * @min: the smallest accepted value
 * @max: the largest accepted value
 * @out_value: (out): the result
 * @error: return location for a %JARVIS_HOST_ERROR_INVALID_OPTION error
 *
 * Parses a decimal number given on the command line and checks its range.
 *
 * Returns: %TRUE on success
 */
gboolean
jarvis_host_parse_uint (const char  *option_name,
                        const char  *value,
                        guint64      default_value,
                        guint64      min,
                        guint64      max,
                        guint64     *out_value,
                        GError     **error)
{
  return jarvis_host_options_parse_uint (NULL, option_name, value, default_value,
                                         min, max, out_value, error);
}
