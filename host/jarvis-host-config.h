#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define JARVIS_HOST_ERROR (jarvis_host_error_quark ())

/* Error codes of %JARVIS_HOST_ERROR. Each of them is a usage error: the
 * host exits with status 2. */
typedef enum
{
  JARVIS_HOST_ERROR_INVALID_OPTION,  /* a command-line value is malformed */
  JARVIS_HOST_ERROR_INVALID_CONFIG,  /* the configuration file is unreadable or wrong */
} JarvisHostError;

GQuark jarvis_host_error_quark (void);

/* Command-line options as given. Every field is NULL or FALSE until set,
 * so that the `[host]` group of the configuration can fill in the rest.
 * Numbers stay strings until jarvis_host_options_parse_uint() checks them, so a
 * bad number is checked the same way from either source. */
typedef struct
{
  char *format;
  char **plugin_dirs;
  char **plugins;
  char **plugin_options;        /* PLUGIN.KEY=VALUE, command line only */
  char *config_path;            /* command line only */
  gboolean list_plugins;        /* command line only */
  gboolean allow_untrusted_plugins;
  char *flush_interval;
  char *flush_bytes;
  char *session;
  char *request_id;
  char *stats;
  gboolean verbose;
  gboolean version;             /* command line only */
  char *read_size;
  char *max_line_length;
  char *url;
  char *model;
  char *api_key_file;
  char *prompt;
  char *connect_timeout;
  char *idle_timeout;
  char **inputs;

  /* The source of each value, so that a bad one is reported where the user
   * can fix it. */
  char *config_name;            /* the file merged in, or NULL */
  guint32 from_config;          /* bits of the [host] keys taken from it */
} JarvisHostOptions;

void jarvis_host_options_clear (JarvisHostOptions *options);

gboolean jarvis_host_config_add_option (GKeyFile    *config,
                                        const char  *assignment,
                                        GError     **error);

gboolean jarvis_host_options_merge_config (JarvisHostOptions  *options,
                                           GKeyFile           *config,
                                           const char         *config_name,
                                           GError            **error);

void jarvis_host_options_set_value_error (const JarvisHostOptions  *options,
                                         const char               *key,
                                         const char               *value,
                                         const char               *expected,
                                         GError                  **error);

gboolean jarvis_host_options_parse_uint (const JarvisHostOptions  *options,
                                         const char               *key,
                                         const char               *value,
                                         guint64                   default_value,
                                         guint64                   min,
                                         guint64                   max,
                                         guint64                  *out_value,
                                         GError                  **error);

gboolean jarvis_host_parse_uint (const char  *option_name,
                                 const char  *value,
                                 guint64      default_value,
                                 guint64      min,
                                 guint64      max,
                                 guint64     *out_value,
                                 GError     **error);

G_END_DECLS
