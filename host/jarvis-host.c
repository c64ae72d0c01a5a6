/* jarvis-host: runs recorded, piped or live model streams through plugins.
 *
 * The run has three phases. Startup parses the command line and the
 * configuration, creates the bus and loads the plugins. The source phase
 * reads the inputs (or a live stream) and emits their events. The drain
 * phase waits until every request whose stream ended has completed, then
 * closes the bus, which cancels requests that never ended. Stats are
 * written after the close, when the counters are final.
 *
 * Exit status: 0 on success, 1 after input errors or plugin failures, 2 on
 * a usage error. A first SIGINT or SIGTERM cancels every request and exits
 * 0 once the bus is closed; a second one exits at once.
 */
#include "config.h"

#include <jarvis/jarvis.h>

#include <gio/gunixinputstream.h>
#include <glib-unix.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "input/jarvis-decoder.h"
#include "input/jarvis-input-limits.h"
#include "jarvis-host-config.h"
#include "jarvis-host-log.h"
#include "jarvis-host-reader.h"
#include "jarvis-host-stats.h"
#include "jarvis-live.h"

#define EXIT_USAGE 2
#define DEFAULT_PLUGIN "console"
#define DEFAULT_FLUSH_INTERVAL_MS 50
#define DEFAULT_FLUSH_BYTES 4096
#define DEFAULT_READ_SIZE 65536
#define DEFAULT_CONNECT_TIMEOUT_S 30
#define DEFAULT_IDLE_TIMEOUT_S 60

/* How long the host waits, once all requests completed, for the handler
 * calls of their complete events before it closes the bus and so cancels
 * them. As long as the bus's default drain deadline. */
#define HOST_SETTLE_MS 2000

/* Reading pauses while this many handler calls are in flight, and goes on
 * once fewer than HOST_RESUME_IN_FLIGHT are left. Without a bound, a slow
 * async plugin falls ever further behind a fast input, its calls use
 * memory without limit, and the end grace and drain deadline cancel and
 * detach those still queued. */
#define HOST_MAX_IN_FLIGHT 10000
#define HOST_RESUME_IN_FLIGHT 5000

/* The state of a request as seen from the events the host emitted. Only
 * requests whose stream ended are waited for before close. */
typedef enum
{
  REQUEST_OPEN = 1,
  REQUEST_ENDED,
} RequestState;

/* Option values after parsing and range checks. */
typedef struct
{
  JarvisInputFormat format;
  guint64 flush_interval_ms;
  guint64 flush_bytes;
  guint64 read_size;
  guint64 max_line_length;
  guint64 connect_timeout_s;
  guint64 idle_timeout_s;
} HostSettings;

typedef struct
{
  JarvisHostOptions options;
  HostSettings settings;
  GKeyFile *config;                     /* (owned) merged configuration */

  GMainContext *context;                /* (owned) the bus's context */
  JarvisBus *bus;                       /* (owned) */
  JarvisPluginLoader *loader;           /* (owned) */
  GCancellable *cancellable;            /* (owned) stops the source phase */
  GSource *signal_sources[2];           /* (owned) SIGINT, SIGTERM */
  GSource *settle_source;               /* (owned) (nullable) bounds the wait for drained */
  JarvisHostReader *reader;             /* (owned) (nullable) */
  char *api_key;                        /* (owned) (nullable) secret, wiped on free */

  GHashTable *requests;                 /* (owned) request id → RequestState */
  guint n_ended;                        /* requests in REQUEST_ENDED */
  GHashTable *finished;                 /* (owned) ids of completed requests */

  gboolean source_done;
  gboolean backlogged;                  /* reading paused for in-flight calls */
  gboolean closing;
  gboolean done;
  gboolean interrupted;
  gboolean failed;                      /* an error that makes the exit status 1 */
} Host;

static void
free_secret (char *secret)
{
  if (secret == NULL)
    return;

  explicit_bzero (secret, strlen (secret));
  g_free (secret);
}

static void
usage_error (GOptionContext *option_context,
             const char     *message)
{
  g_printerr ("jarvis-host: %s\n", message);

  if (option_context != NULL)
    g_printerr ("Run 'jarvis-host --help' to see the options.\n");
}

/* Parsing the command line and the configuration. */

static gboolean
parse_command_line (Host            *host,
                    GOptionContext **out_context,
                    int             *argc,
                    char          ***argv,
                    GError         **error)
{
  JarvisHostOptions *o = &host->options;
  const GOptionEntry entries[] = {
    { "format", 0, 0, G_OPTION_ARG_STRING, &o->format,
      "Input format: auto (default), events, openai, anthropic or ollama", "FORMAT" },
    { "plugin-dir", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &o->plugin_dirs,
      "Search DIR for plugins before the default path (repeatable)", "DIR" },
    { "plugin", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->plugins,
      "Enable the plugin NAME; when given, only these plugins run (repeatable, default: console)", "NAME" },
    { "option", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->plugin_options,
      "Set a plugin option, for example recorder.path=out.jsonl (repeatable)", "PLUGIN.KEY=VALUE" },
    { "list-plugins", 0, 0, G_OPTION_ARG_NONE, &o->list_plugins,
      "List the plugins found on the search path and exit", NULL },
    { "allow-untrusted-plugins", 0, 0, G_OPTION_ARG_NONE, &o->allow_untrusted_plugins,
      "Load plugins that other users could modify (for development only)", NULL },
    { "config", 0, 0, G_OPTION_ARG_FILENAME, &o->config_path,
      "Read defaults from FILE (default: $XDG_CONFIG_HOME/jarvis-events/host.conf)", "FILE" },
    { "flush-interval", 0, 0, G_OPTION_ARG_STRING, &o->flush_interval,
      "Flush buffered text at most every MS milliseconds (default 50)", "MS" },
    { "flush-bytes", 0, 0, G_OPTION_ARG_STRING, &o->flush_bytes,
      "Flush buffered text when it reaches N bytes (default 4096)", "N" },
    { "session", 0, 0, G_OPTION_ARG_STRING, &o->session,
      "Put events that name no session into session ID", "ID" },
    { "request-id", 0, 0, G_OPTION_ARG_STRING, &o->request_id,
      "Request id for provider streams that carry none (default: the input's base name)", "ID" },
    { "stats", 0, 0, G_OPTION_ARG_FILENAME, &o->stats,
      "Write the run's totals as JSON to FILE at exit; '-' means stderr", "FILE" },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &o->verbose,
      "Log the request lifecycle (debug records of the domain 'jarvis') to stderr", NULL },
    { "version", 0, 0, G_OPTION_ARG_NONE, &o->version,
      "Print the version and exit", NULL },
    { "read-size", 0, 0, G_OPTION_ARG_STRING, &o->read_size,
      "Read inputs N bytes at a time (default 65536)", "N" },
    { "max-line-length", 0, 0, G_OPTION_ARG_STRING, &o->max_line_length,
      "Reject input lines or SSE events longer than N bytes (default 1048576)", "N" },
    { "url", 0, 0, G_OPTION_ARG_STRING, &o->url,
      "Stream answers from the OpenAI-compatible chat-completions endpoint URL", "URL" },
    { "model", 0, 0, G_OPTION_ARG_STRING, &o->model,
      "Model name sent to --url", "NAME" },
    { "api-key-file", 0, 0, G_OPTION_ARG_FILENAME, &o->api_key_file,
      "Read the API key for --url from FILE (default: $OPENAI_API_KEY)", "FILE" },
    { "prompt", 0, 0, G_OPTION_ARG_STRING, &o->prompt,
      "Send TEXT to --url and exit; without it, each stdin line is a prompt", "TEXT" },
    { "connect-timeout", 0, 0, G_OPTION_ARG_STRING, &o->connect_timeout,
      "Fail a --url request with no response after S seconds (default 30)", "S" },
    { "idle-timeout", 0, 0, G_OPTION_ARG_STRING, &o->idle_timeout,
      "Fail a --url request that stalls for S seconds between chunks (default 60)", "S" },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &o->inputs,
      NULL, "[INPUT…]" },
    { NULL },
  };
  GOptionContext *option_context;

  /* GLib puts the "[INPUT…]" of the remaining-arguments entry into the
   * usage line itself, so the parameter string leaves it out. */
  option_context = g_option_context_new ("- run model streams through plugins");
  g_option_context_set_description (option_context,
    "INPUT is a file or '-' for stdin; with no INPUT the host reads stdin.\n"
    "Exit status: 0 on success, 1 after input errors or plugin failures,\n"
    "2 on a usage error.");
  g_option_context_add_main_entries (option_context, entries, NULL);
  *out_context = option_context;

  return g_option_context_parse (option_context, argc, argv, error);
}

static gboolean
load_config (Host    *host,
             GError **error)
{
  g_autofree char *default_path = NULL;
  g_autoptr (GError) local_error = NULL;
  const char *path = host->options.config_path;

  host->config = g_key_file_new ();

  if (path == NULL)
    {
      default_path = g_build_filename (g_get_user_config_dir (), "jarvis-events", "host.conf", NULL);

      if (!g_file_test (default_path, G_FILE_TEST_EXISTS))
        return TRUE;

      path = default_path;
    }

  if (!g_key_file_load_from_file (host->config, path, G_KEY_FILE_NONE, &local_error))
    {
      g_set_error (error, JARVIS_HOST_ERROR, JARVIS_HOST_ERROR_INVALID_CONFIG,
                   "Could not read the configuration file '%s': %s",
                   path, local_error->message);
      return FALSE;
    }

  return jarvis_host_options_merge_config (&host->options, host->config, path, error);
}

static gboolean
add_plugin_options (Host    *host,
                    GError **error)
{
  char **assignments = host->options.plugin_options;

  for (guint i = 0; assignments != NULL && assignments[i] != NULL; i++)
    {
      if (!jarvis_host_config_add_option (host->config, assignments[i], error))
        return FALSE;
    }

  return TRUE;
}

static gboolean
check_options (Host    *host,
               GError **error)
{
  JarvisHostOptions *o = &host->options;
  HostSettings *settings = &host->settings;

  settings->format = JARVIS_INPUT_FORMAT_AUTO;
  if (o->format != NULL && !jarvis_input_format_from_string (o->format, &settings->format))
    {
      jarvis_host_options_set_value_error (o, "format", o->format,
                                           "expected auto, events, openai, anthropic or ollama",
                                           error);
      return FALSE;
    }

  if (o->url != NULL && o->inputs != NULL)
    {
      g_set_error (error, JARVIS_HOST_ERROR, JARVIS_HOST_ERROR_INVALID_OPTION,
                   "--url reads prompts from --prompt or stdin and takes no INPUT; "
                   "drop '%s' or run it without --url", o->inputs[0]);
      return FALSE;
    }

  if (o->url == NULL && (o->model != NULL || o->prompt != NULL || o->api_key_file != NULL))
    {
      g_set_error (error, JARVIS_HOST_ERROR, JARVIS_HOST_ERROR_INVALID_OPTION,
                   "--model, --prompt and --api-key-file need --url");
      return FALSE;
    }

  return jarvis_host_options_parse_uint (o, "flush-interval", o->flush_interval, DEFAULT_FLUSH_INTERVAL_MS,
                                         1, 3600 * 1000, &settings->flush_interval_ms, error) &&
         jarvis_host_options_parse_uint (o, "flush-bytes", o->flush_bytes, DEFAULT_FLUSH_BYTES,
                                         1, 64 * 1024 * 1024, &settings->flush_bytes, error) &&
         jarvis_host_options_parse_uint (o, "read-size", o->read_size, DEFAULT_READ_SIZE,
                                         1, 16 * 1024 * 1024, &settings->read_size, error) &&
         jarvis_host_options_parse_uint (o, "max-line-length", o->max_line_length,
                                         JARVIS_INPUT_DEFAULT_MAX_LINE_LENGTH, 1, G_MAXUINT32,
                                         &settings->max_line_length, error) &&
         jarvis_host_options_parse_uint (o, "connect-timeout", o->connect_timeout, DEFAULT_CONNECT_TIMEOUT_S,
                                         1, 24 * 3600, &settings->connect_timeout_s, error) &&
         jarvis_host_options_parse_uint (o, "idle-timeout", o->idle_timeout, DEFAULT_IDLE_TIMEOUT_S,
                                         1, 24 * 3600, &settings->idle_timeout_s, error);
}

/* Plugins. */

static JarvisPluginLoader *
create_loader (Host *host)
{
  JarvisPluginLoader *loader = jarvis_plugin_loader_new ();
  char **dirs = host->options.plugin_dirs;

  for (guint i = 0; dirs != NULL && dirs[i] != NULL; i++)
    jarvis_plugin_loader_add_search_dir (loader, dirs[i]);

  if (host->options.allow_untrusted_plugins)
    {
      g_printerr ("jarvis-host: warning: loading plugins without the owner and mode checks; "
                  "any user who can write to a plugin directory can run code in this process\n");
      jarvis_plugin_loader_set_allow_untrusted (loader, TRUE);
    }

  return loader;
}

static int
list_plugins (Host *host)
{
  g_autoptr (JarvisPluginLoader) loader = create_loader (host);
  g_autoptr (GPtrArray) entries = jarvis_plugin_loader_list (loader);

  /* Finding nothing is not an error, but an empty listing alone would not
   * tell the user where to put plugins or which option to use. */
  if (entries->len == 0)
    {
      g_auto (GStrv) directories = jarvis_plugin_loader_dup_search_path (loader);

      g_printerr ("jarvis-host: no plugins found; searched:\n");
      for (guint i = 0; directories[i] != NULL; i++)
        g_printerr ("  %s\n", directories[i]);
      g_printerr ("Add a directory with --plugin-dir=DIR or $" JARVIS_PLUGIN_PATH_VARIABLE ".\n");

      return EXIT_SUCCESS;
    }

  /* A descriptor may leave its version and description unset, and the
   * columns must stay in place for scripts that split on tabs. */
  for (guint i = 0; i < entries->len; i++)
    {
      JarvisPluginEntry *entry = g_ptr_array_index (entries, i);
      const char *version = jarvis_plugin_entry_get_version (entry);
      const char *description = jarvis_plugin_entry_get_description (entry);

      g_print ("%s %s\t%s\t%s\n",
               jarvis_plugin_entry_get_name (entry),
               version != NULL ? version : "-",
               description != NULL ? description : "",
               jarvis_plugin_entry_get_path (entry));
    }

  return EXIT_SUCCESS;
}

/* Loads the requested plugins. A plugin named on the command line or in
 * the configuration must load. The default one may be missing: that is
 * reported and makes the exit status 1. */
static gboolean
load_plugins (Host    *host,
              GError **error)
{
  const char * const default_plugins[] = { DEFAULT_PLUGIN, NULL };
  gboolean requested = host->options.plugins != NULL;
  const char * const *names = requested ? (const char * const *) host->options.plugins : default_plugins;

  host->loader = create_loader (host);

  for (guint i = 0; names[i] != NULL; i++)
    {
      g_autoptr (GError) local_error = NULL;

      if (jarvis_plugin_loader_load (host->loader, host->bus, names[i], &local_error))
        continue;

      if (requested)
        {
          g_propagate_prefixed_error (error, g_steal_pointer (&local_error),
                                      "Could not load the plugin '%s': ", names[i]);
          return FALSE;
        }

      g_printerr ("jarvis-host: could not load the default plugin '%s': %s\n",
                  names[i], local_error->message);
      host->failed = TRUE;
    }

  return TRUE;
}

/* The drain phase. */

static void
on_closed (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  Host *host = user_data;
  g_autoptr (GError) error = NULL;

  if (!jarvis_bus_close_finish (JARVIS_BUS (source), result, &error))
    {
      g_printerr ("jarvis-host: closing the bus failed: %s\n", error->message);
      host->failed = TRUE;
    }

  host->done = TRUE;
}

static void
begin_close (Host *host)
{
  if (host->closing)
    return;

  host->closing = TRUE;
  if (host->settle_source != NULL)
    {
      g_source_destroy (host->settle_source);
      g_clear_pointer (&host->settle_source, g_source_unref);
    }
  jarvis_bus_close_async (host->bus, NULL, on_closed, host);
}

static gboolean
on_settle_timeout (gpointer user_data)
{
  Host *host = user_data;

  g_clear_pointer (&host->settle_source, g_source_unref);
  begin_close (host);

  return G_SOURCE_REMOVE;
}

/* Closes the bus once the source is done and every request whose stream
 * ended has completed. Requests that never ended are cancelled at once.
 * Handler calls for the last complete events, such as the recorder's
 * writes, may still be running, and close would cancel them. So the host
 * waits for the bus's `drained` signal, for at most HOST_SETTLE_MS. The
 * host's own table may disagree with the bus, so only the bus's count of
 * active requests decides, and a mismatch cannot hang the run. */
static void
close_when_drained (Host *host)
{
  if (!host->source_done || host->closing)
    return;

  if (host->interrupted ||
      (host->n_ended == 0 && jarvis_bus_get_n_active_requests (host->bus) > 0))
    {
      begin_close (host);
      return;
    }

  if (jarvis_bus_get_n_active_requests (host->bus) > 0)
    return;

  if (jarvis_bus_get_n_invocations (host->bus) == 0)
    {
      begin_close (host);
      return;
    }

  if (host->settle_source == NULL)
    {
      host->settle_source = g_timeout_source_new (HOST_SETTLE_MS);
      g_source_set_static_name (host->settle_source, "jarvis-host settle deadline");
      g_source_set_callback (host->settle_source, on_settle_timeout, host, NULL);
      g_source_attach (host->settle_source, host->context);
    }
}

static void
on_drained (JarvisBus *bus,
            gpointer   user_data)
{
  close_when_drained (user_data);
}

/* Prints the error of a failed request, which no plugin is bound to show.
 * A failed model stream is data, so it leaves the exit status alone. */
static void
warn_if_failed (JarvisEvent *complete)
{
  GVariant *payload;
  const char *message = NULL;
  g_autofree char *printable = NULL;
  char non_ascii[129];

  /* The bus builds a complete event's payload on its first read, so it is
   * read only for the rare failed request. */
  if (g_strcmp0 (jarvis_event_get_outcome (complete), "failed") != 0)
    return;

  payload = jarvis_event_get_payload (complete);

  if (payload == NULL || !g_variant_lookup (payload, "error", "&s", &message))
    message = "no error message";

  /* The text comes from the provider, so control characters are escaped
   * before they reach a terminal, while other UTF-8 stays readable. */
  for (guint i = 0; i < 128; i++)
    non_ascii[i] = (char) (0x80 + i);
  non_ascii[128] = '\0';
  printable = g_strescape (message, non_ascii);

  g_printerr ("jarvis-host: warning: request '%s' failed: %s\n",
              jarvis_event_get_request_id (complete), printable);
}

static void
on_request_completed (JarvisBus   *bus,
                      JarvisEvent *complete,
                      gpointer     user_data)
{
  Host *host = user_data;
  const char *request_id = jarvis_event_get_request_id (complete);
  gpointer state;

  warn_if_failed (complete);

  if (g_hash_table_lookup_extended (host->requests, request_id, NULL, &state))
    {
      if (GPOINTER_TO_INT (state) == REQUEST_ENDED)
        host->n_ended--;

      g_hash_table_remove (host->requests, request_id);
    }

  g_hash_table_add (host->finished, g_strdup (request_id));
  close_when_drained (host);
}

static gboolean
is_terminal_event (JarvisEvent *event)
{
  return jarvis_event_has_type (event, JARVIS_EVENT_STREAM_END) ||
         jarvis_event_has_type (event, JARVIS_EVENT_STREAM_CANCEL) ||
         jarvis_event_has_type (event, JARVIS_EVENT_STREAM_ERROR);
}

/* Notes what the event does to its request, then emits it (transfer full). */
static void
emit_event (JarvisEvent *event,
            gpointer     user_data)
{
  Host *host = user_data;
  const char *request_id = jarvis_event_get_request_id (event);
  gpointer state = NULL;
  gboolean known;

  known = g_hash_table_lookup_extended (host->requests, request_id, NULL, &state);

  /* The bus drops every event of a request id that already completed, so
   * such an event opens nothing to wait for. An id moves to @finished only
   * when it leaves @requests, so a known id needs no second lookup. */
  if (!known && g_hash_table_contains (host->finished, request_id))
    {
      jarvis_bus_emit (host->bus, event);
      return;
    }

  if (!known && (jarvis_event_has_type (event, JARVIS_EVENT_STREAM_START) ||
                 jarvis_event_has_type (event, JARVIS_EVENT_STREAM_DELTA)))
    {
      g_hash_table_insert (host->requests, g_strdup (request_id), GINT_TO_POINTER (REQUEST_OPEN));
    }
  else if (known && GPOINTER_TO_INT (state) == REQUEST_OPEN && is_terminal_event (event))
    {
      g_hash_table_insert (host->requests, g_strdup (request_id), GINT_TO_POINTER (REQUEST_ENDED));
      host->n_ended++;
    }

  jarvis_bus_emit (host->bus, event);
}

static void
on_source_done (Host *host)
{
  host->source_done = TRUE;
  close_when_drained (host);
}

static void
on_inputs_read (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  Host *host = user_data;
  g_autoptr (GError) error = NULL;

  if (!jarvis_host_reader_run_finish (host->reader, result, &error) &&
      !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_printerr ("jarvis-host: %s\n", error->message);
      host->failed = TRUE;
    }

  on_source_done (host);
}

static void
on_live_done (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Host *host = user_data;
  g_autoptr (GError) error = NULL;

  if (!jarvis_live_run_finish (result, &error) &&
      !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_printerr ("jarvis-host: %s\n", error->message);
      host->failed = TRUE;
    }

  on_source_done (host);
}

static void
handle_signal (Host *host,
               int   signal_number)
{
  if (host->interrupted)
    _exit (128 + signal_number);

  host->interrupted = TRUE;
  g_cancellable_cancel (host->cancellable);
  jarvis_bus_cancel_all (host->bus);
  close_when_drained (host);
}

static gboolean
on_sigint (gpointer user_data)
{
  handle_signal (user_data, SIGINT);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_sigterm (gpointer user_data)
{
  handle_signal (user_data, SIGTERM);
  return G_SOURCE_CONTINUE;
}

static void
watch_signals (Host *host)
{
  const int signals[] = { SIGINT, SIGTERM };
  GSourceFunc callbacks[] = { on_sigint, on_sigterm };

  for (guint i = 0; i < G_N_ELEMENTS (signals); i++)
    {
      host->signal_sources[i] = g_unix_signal_source_new (signals[i]);
      g_source_set_callback (host->signal_sources[i], callbacks[i], host, NULL);
      g_source_attach (host->signal_sources[i], host->context);
    }
}

/* The source phase. */

static gboolean
is_backlogged (gpointer user_data)
{
  Host *host = user_data;
  guint n_in_flight = jarvis_bus_get_n_invocations (host->bus);

  if (host->backlogged)
    host->backlogged = n_in_flight >= HOST_RESUME_IN_FLIGHT;
  else
    host->backlogged = n_in_flight >= HOST_MAX_IN_FLIGHT;

  return host->backlogged;
}

static void
start_reading (Host *host)
{
  const char * const stdin_only[] = { "-", NULL };
  JarvisHostReaderOptions reader_options = { 0 };
  const char * const *inputs = stdin_only;

  if (host->options.inputs != NULL)
    inputs = (const char * const *) host->options.inputs;

  reader_options.format = host->settings.format;
  reader_options.read_size = host->settings.read_size;
  reader_options.max_line_length = host->settings.max_line_length;
  reader_options.request_id = host->options.request_id;
  reader_options.session_id = host->options.session;

  reader_options.busy_func = is_backlogged;
  host->reader = jarvis_host_reader_new (inputs, &reader_options, emit_event, host);
  jarvis_host_reader_run_async (host->reader, host->cancellable, on_inputs_read, host);
}

static gboolean
read_api_key (Host    *host,
              GError **error)
{
  g_autofree char *contents = NULL;
  g_autoptr (GError) local_error = NULL;
  gsize length = 0;

  if (host->options.api_key_file == NULL)
    {
      host->api_key = g_strdup (g_getenv ("OPENAI_API_KEY"));
      return TRUE;
    }

  if (!g_file_get_contents (host->options.api_key_file, &contents, &length, &local_error))
    {
      g_set_error (error, JARVIS_HOST_ERROR, JARVIS_HOST_ERROR_INVALID_OPTION,
                   "Could not read the API key file: %s", local_error->message);
      return FALSE;
    }

  /* Stripping moves the key inside the buffer, so wipe all of it. */
  host->api_key = g_strdup (g_strstrip (contents));
  explicit_bzero (contents, length);

  if (*host->api_key == '\0')
    {
      g_set_error (error, JARVIS_HOST_ERROR, JARVIS_HOST_ERROR_INVALID_OPTION,
                   "The API key file '%s' is empty; put the key on its first line",
                   host->options.api_key_file);
      return FALSE;
    }

  return TRUE;
}

static void
start_live (Host *host)
{
  JarvisLiveOptions live_options = { 0 };
  g_autoptr (GInputStream) prompts = NULL;

  live_options.url = host->options.url;
  live_options.model = host->options.model;
  live_options.api_key = host->api_key;
  live_options.prompt = host->options.prompt;
  live_options.connect_timeout_s = host->settings.connect_timeout_s;
  live_options.idle_timeout_s = host->settings.idle_timeout_s;
  live_options.session_id = host->options.session;

  if (host->options.prompt == NULL)
    prompts = g_unix_input_stream_new (STDIN_FILENO, FALSE);

  jarvis_live_run_async (host->bus, &live_options, prompts, host->cancellable,
                         on_live_done, host);
}

/* Startup and teardown. */

static void
create_bus (Host *host)
{
  host->bus = jarvis_bus_new (host->context);
  jarvis_bus_set_config (host->bus, host->config);
  jarvis_bus_set_flush_policy (host->bus, host->settings.flush_interval_ms, host->settings.flush_bytes);
  g_signal_connect (host->bus, "request-completed", G_CALLBACK (on_request_completed), host);
  g_signal_connect (host->bus, "drained", G_CALLBACK (on_drained), host);
}

static void
host_clear (Host *host)
{
  for (guint i = 0; i < G_N_ELEMENTS (host->signal_sources); i++)
    {
      if (host->signal_sources[i] != NULL)
        g_source_destroy (host->signal_sources[i]);

      g_clear_pointer (&host->signal_sources[i], g_source_unref);
    }

  if (host->settle_source != NULL)
    g_source_destroy (host->settle_source);
  g_clear_pointer (&host->settle_source, g_source_unref);
  g_clear_pointer (&host->reader, jarvis_host_reader_free);
  g_clear_object (&host->loader);
  g_clear_object (&host->bus);
  g_clear_object (&host->cancellable);
  g_clear_pointer (&host->requests, g_hash_table_unref);
  g_clear_pointer (&host->finished, g_hash_table_unref);
  g_clear_pointer (&host->config, g_key_file_unref);
  g_clear_pointer (&host->api_key, free_secret);
  jarvis_host_options_clear (&host->options);

  if (host->context != NULL)
    {
      g_main_context_pop_thread_default (host->context);
      g_clear_pointer (&host->context, g_main_context_unref);
    }
}

static void
iterate_until_done (Host *host)
{
  while (!host->done)
    g_main_context_iteration (host->context, TRUE);
}

/* Writes the --stats file, if one was requested. A run that stopped at
 * startup writes one too, so that a script always finds the file. */
static void
write_stats (Host    *host,
             guint64  input_errors)
{
  g_autoptr (GError) error = NULL;

  if (host->options.stats == NULL)
    return;

  if (!jarvis_host_stats_write (host->bus, input_errors, host->options.stats, &error))
    {
      g_printerr ("jarvis-host: %s\n", error->message);
      host->failed = TRUE;
    }
}

static int
run (Host *host)
{
  g_autoptr (GError) error = NULL;
  guint64 input_errors = 0;
  guint64 detached;

  if (!check_options (host, &error) ||
      (host->options.url != NULL && !read_api_key (host, &error)))
    {
      usage_error (NULL, error->message);
      return EXIT_USAGE;
    }

  host->context = g_main_context_new ();
  g_main_context_push_thread_default (host->context);
  host->cancellable = g_cancellable_new ();
  host->requests = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  host->finished = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  create_bus (host);

  /* Plugins that did load are shut down through the close, so that their
   * files are complete even when startup fails. */
  if (!load_plugins (host, &error))
    {
      g_printerr ("jarvis-host: %s\n", error->message);
      host->source_done = TRUE;
      begin_close (host);
      iterate_until_done (host);
      write_stats (host, 0);
      return EXIT_FAILURE;
    }

  watch_signals (host);

  if (host->options.url != NULL)
    start_live (host);
  else
    start_reading (host);

  iterate_until_done (host);

  if (host->reader != NULL)
    input_errors = jarvis_host_reader_get_input_errors (host->reader);

  write_stats (host, input_errors);

  if (host->interrupted)
    return EXIT_SUCCESS;

  if (input_errors > 0 || jarvis_bus_get_counter (host->bus, JARVIS_COUNTER_HANDLER_ERRORS) > 0)
    host->failed = TRUE;

  /* A detached call never finished its work, which is a plugin failure
   * even though the bus went on without it. */
  detached = jarvis_bus_get_counter (host->bus, JARVIS_COUNTER_TASKS_DETACHED);
  if (detached > 0)
    {
      g_printerr ("jarvis-host: %" G_GUINT64_FORMAT " handler %s not return within the "
                  "drain deadline and %s given up; the plugins named in the warnings above "
                  "may not have finished their work\n", detached,
                  detached == 1 ? "call did" : "calls did",
                  detached == 1 ? "was" : "were");
      host->failed = TRUE;
    }

  return host->failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

int
main (int    argc,
      char **argv)
{
  g_autoptr (GOptionContext) option_context = NULL;
  g_autoptr (GError) error = NULL;
  Host host = { 0 };
  int status;

  setlocale (LC_ALL, "");
  jarvis_host_log_init ();

  if (!parse_command_line (&host, &option_context, &argc, &argv, &error))
    {
      usage_error (option_context, error->message);
      jarvis_host_options_clear (&host.options);
      return EXIT_USAGE;
    }

  if (host.options.version)
    {
      g_print ("jarvis-host %s\n", PACKAGE_VERSION);
      jarvis_host_options_clear (&host.options);
      return EXIT_SUCCESS;
    }

  if (!load_config (&host, &error) || !add_plugin_options (&host, &error))
    {
      usage_error (option_context, error->message);
      host_clear (&host);
      return EXIT_USAGE;
    }

  jarvis_host_log_set_verbose (host.options.verbose);

  if (host.options.list_plugins)
    status = list_plugins (&host);
  else
    status = run (&host);

  host_clear (&host);

  return status;
}
