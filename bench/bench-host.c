#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gunixoutputstream.h>
#include <glib/gstdio.h>

#include "baseline.h"
#include "bench-script.h"
#include "bench-workloads.h"

/* The host workload: whole processes on files, so that start-up, reading,
 * parsing and writing count too. jarvis-host runs with its default plugin
 * set (console) and stdout on /dev/null. The baseline's counterpart is this
 * program in --baseline-host mode with an equivalent console handler. */

#define HOST_REQUESTS 1000
#define HOST_TOKENS 1000
#define HOST_SESSIONS 50
#define RECORDING_REPEATS 100
#define PROCESS_TIMEOUT_S 120
#define SAMPLE_INTERVAL_MS 5

typedef struct
{
  double seconds;
  guint64 peak_rss_kib;
  guint64 events_in;            /* from the host's --stats output, 0 if unknown */
  gboolean ok;
} ProcessRun;

/* Reads events_in from a jarvis-host --stats file. */
static guint64
read_events_in (const char *stats_path)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonNode *root;

  if (!json_parser_load_from_file (parser, stats_path, NULL))
    return 0;

  root = json_parser_get_root (parser);
  if (!JSON_NODE_HOLDS_OBJECT (root))
    return 0;

  return json_object_get_int_member_with_default (json_node_get_object (root), "events_in", 0);
}

/* Samples the child's peak RSS every SAMPLE_INTERVAL_MS and kills it when
 * it runs longer than PROCESS_TIMEOUT_S, so that a stuck host ends the run
 * with a message instead of hanging it.
 *
 * The peak comes from VmHWM in /proc/PID/status, because the ru_maxrss
 * that wait4() returns also counts the parent's memory that the child
 * shared between fork and exec. NOTE: a peak reached in the last sample
 * interval before exit is missed. */
typedef struct
{
  GMutex lock;
  GCond exited_cond;
  gboolean exited;
  gboolean killed;
  GPid pid;
  guint64 peak_rss_kib;
} Watchdog;

static guint64
read_child_peak_rss_kib (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status", (int) pid);
  g_autofree char *status = NULL;
  const char *line;

  if (!g_file_get_contents (path, &status, NULL, NULL))
    return 0;

  line = strstr (status, "VmHWM:");

  return line != NULL ? g_ascii_strtoull (line + strlen ("VmHWM:"), NULL, 10) : 0;
}

static gpointer
watch_child (gpointer data)
{
  Watchdog *watchdog = data;
  gint64 deadline = g_get_monotonic_time () + PROCESS_TIMEOUT_S * G_TIME_SPAN_SECOND;

  g_mutex_lock (&watchdog->lock);
  while (!watchdog->exited)
    {
      gint64 now = g_get_monotonic_time ();

      watchdog->peak_rss_kib = MAX (watchdog->peak_rss_kib, read_child_peak_rss_kib (watchdog->pid));
      if (now >= deadline)
        {
          kill (watchdog->pid, SIGKILL);
          watchdog->killed = TRUE;
          break;
        }
      g_cond_wait_until (&watchdog->exited_cond, &watchdog->lock,
                         MIN (deadline, now + SAMPLE_INTERVAL_MS * G_TIME_SPAN_MILLISECOND));
    }
  g_mutex_unlock (&watchdog->lock);

  return NULL;
}

/* Runs @argv with stdout on /dev/null and returns its wall time and its
 * sampled peak RSS. */
static ProcessRun
run_process (const char * const *argv)
{
  ProcessRun result = { 0 };
  g_autoptr(GError) error = NULL;
  Watchdog watchdog = { 0 };
  GThread *thread;
  gint64 start_us;
  int status;
  int waited;

  start_us = g_get_monotonic_time ();
  if (!g_spawn_async (NULL, (char **) argv, NULL,
                      G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL,
                      NULL, NULL, &watchdog.pid, &error))
    {
      g_printerr ("jarvis-bench: starting %s failed: %s\n", argv[0], error->message);
      return result;
    }

  g_mutex_init (&watchdog.lock);
  g_cond_init (&watchdog.exited_cond);
  thread = g_thread_new ("bench-watchdog", watch_child, &watchdog);

  waited = waitpid (watchdog.pid, &status, 0);
  result.seconds = (g_get_monotonic_time () - start_us) / 1e6;

  g_mutex_lock (&watchdog.lock);
  watchdog.exited = TRUE;
  g_cond_signal (&watchdog.exited_cond);
  g_mutex_unlock (&watchdog.lock);
  g_thread_join (thread);
  g_mutex_clear (&watchdog.lock);
  g_cond_clear (&watchdog.exited_cond);

  if (waited < 0)
    {
      g_printerr ("jarvis-bench: waiting for %s failed: %s\n", argv[0], g_strerror (errno));
      return result;
    }

  result.peak_rss_kib = watchdog.peak_rss_kib;
  result.ok = WIFEXITED (status) && WEXITSTATUS (status) == 0;
  if (watchdog.killed)
    g_printerr ("jarvis-bench: %s did not exit within %d s and was killed; its figures are left out\n",
                argv[0], PROCESS_TIMEOUT_S);
  else if (!result.ok)
    g_printerr ("jarvis-bench: %s exited with status %d; its figures are left out\n", argv[0],
                WIFEXITED (status) ? WEXITSTATUS (status) : -1);

  return result;
}

static ProcessRun
run_host (const BenchOptions *options,
          const char         *stats_path,
          const char * const *inputs,
          guint               n_inputs)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *plugins_dir = g_build_filename (JARVIS_BENCH_BUILD_ROOT, "plugins", NULL);
  ProcessRun run;

  g_ptr_array_add (argv, g_strdup (options->host_binary));
  g_ptr_array_add (argv, g_strdup_printf ("--plugin-dir=%s", plugins_dir));
  g_ptr_array_add (argv, g_strdup_printf ("--stats=%s", stats_path));
  for (guint i = 0; i < n_inputs; i++)
    g_ptr_array_add (argv, g_strdup (inputs[i]));
  g_ptr_array_add (argv, NULL);

  run = run_process ((const char * const *) argv->pdata);
  run.events_in = read_events_in (stats_path);
  g_unlink (stats_path);

  return run;
}

static ProcessRun
run_baseline_host (const char *input)
{
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *option = g_strdup_printf ("--baseline-host=%s", input);
  const char *argv[] = { self, option, NULL };

  return run_process (argv);
}

static char *
write_events_file (const BenchOptions *options,
                   guint               n_requests)
{
  g_autoptr(BenchScript) script = bench_script_new (n_requests, HOST_TOKENS, MIN (n_requests, HOST_SESSIONS), FALSE);
  g_autofree char *name = g_strdup_printf ("events-%u.jsonl", n_requests * HOST_TOKENS);
  char *path = g_build_filename (options->work_dir, name, NULL);
  g_autoptr(GError) error = NULL;

  if (!bench_script_write_events_file (script, path, &error))
    {
      g_printerr ("jarvis-bench: writing %s failed: %s\n", path, error->message);
      g_clear_pointer (&path, g_free);
    }

  return path;
}

/* The largest regular file in @dir other than SOURCES.md, or NULL. */
static char *
find_largest_recording (const char *dir)
{
  g_autoptr(GDir) handle = g_dir_open (dir, 0, NULL);
  g_autofree char *best = NULL;
  goffset best_size = -1;
  const char *name;

  if (handle == NULL)
    return NULL;

  while ((name = g_dir_read_name (handle)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      GStatBuf info;

      if (g_str_equal (name, "SOURCES.md") || g_stat (path, &info) != 0 || !S_ISREG (info.st_mode))
        continue;
      if (info.st_size > best_size)
        {
          best_size = info.st_size;
          g_free (best);
          best = g_steal_pointer (&path);
        }
    }

  return g_steal_pointer (&best);
}

static void
measure_events_file (const BenchOptions *options,
                     const char         *stats_path)
{
  g_autoptr(BenchResult) rate = bench_result_new ("host", "events_per_s", "events/s", TRUE);
  g_autoptr(BenchResult) rss = bench_result_new ("host", "peak_rss_kib", "KiB", FALSE);
  guint n_requests = options->quick ? HOST_REQUESTS / 10 : HOST_REQUESTS;
  g_autofree char *large = write_events_file (options, n_requests);
  g_autofree char *small = write_events_file (options, n_requests / 10);
  guint64 expected_events = (guint64) n_requests * (HOST_TOKENS + 2);
  guint64 small_rss = 0;
  gboolean counted = TRUE;

  if (large == NULL || small == NULL)
    return;

  for (guint round = 0; round < options->rounds; round++)
    {
      if (options->run_jarvis)
        {
          const char *inputs[] = { large };
          ProcessRun run = run_host (options, stats_path, inputs, 1);

          if (run.ok)
            {
              counted = counted && run.events_in == expected_events;
              g_array_append_val (rate->jarvis, (double) { expected_events / run.seconds });
              g_array_append_val (rss->jarvis, (double) { run.peak_rss_kib });
            }
        }

      if (options->run_baseline)
        {
          ProcessRun run = run_baseline_host (large);

          if (run.ok)
            {
              g_array_append_val (rate->baseline, (double) { expected_events / run.seconds });
              g_array_append_val (rss->baseline, (double) { run.peak_rss_kib });
            }
        }
    }

  if (options->run_jarvis)
    {
      const char *inputs[] = { small };
      ProcessRun run = run_host (options, stats_path, inputs, 1);

      small_rss = run.ok ? run.peak_rss_kib : 0;
    }

  json_object_set_string_member (rate->extra, "input", "generated events file");
  json_object_set_int_member (rate->extra, "events", expected_events);
  json_object_set_boolean_member (rate->extra, "host_counted_every_event", counted);
  json_object_set_int_member (rss->extra, "events", expected_events);
  json_object_set_int_member (rss->extra, "peak_rss_kib_at_tenth_of_input", small_rss);
  bench_result_print (rate);
  bench_result_print (rss);

  g_unlink (large);
  g_unlink (small);
}

/* Returns the value of the first "id" key of @data, the stream id of an
 * OpenAI or Anthropic recording, or NULL when there is none. */
static char *
find_stream_id (const char *data)
{
  static const char *const keys[] = { "\"id\":\"", "\"id\": \"" };

  for (guint k = 0; k < G_N_ELEMENTS (keys); k++)
    {
      const char *start = strstr (data, keys[k]);
      const char *end;

      if (start == NULL)
        continue;
      start += strlen (keys[k]);
      end = strchr (start, '"');
      if (end != NULL && end > start)
        return g_strndup (start, end - start);
    }

  return NULL;
}

/* Writes @repeats copies of @recording to the work folder, each with its own
 * stream id and file name. The core drops every event of a request id that
 * already completed, so identical copies would be one request and
 * @repeats - 1 dropped ones. Returns the paths, or NULL on error. */
static GPtrArray *
write_recording_copies (const BenchOptions *options,
                        const char         *recording,
                        guint               repeats)
{
  g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *data = NULL;
  g_autofree char *stream_id = NULL;
  g_autofree char *base_name = g_path_get_basename (recording);
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) parts = NULL;

  if (!g_file_get_contents (recording, &data, NULL, &error))
    {
      g_printerr ("jarvis-bench: reading %s failed: %s\n", recording, error->message);
      return NULL;
    }
  stream_id = find_stream_id (data);
  if (stream_id != NULL)
    parts = g_strsplit (data, stream_id, -1);

  for (guint i = 0; i < repeats; i++)
    {
      g_autofree char *name = g_strdup_printf ("%u-%s", i, base_name);
      g_autofree char *path = g_build_filename (options->work_dir, name, NULL);
      g_autofree char *copy_id = g_strdup_printf ("%s-%u", stream_id != NULL ? stream_id : "", i);
      g_autofree char *copy = parts != NULL ? g_strjoinv (copy_id, parts) : g_strdup (data);

      if (!g_file_set_contents (path, copy, -1, &error))
        {
          g_printerr ("jarvis-bench: writing %s failed: %s\n", path, error->message);
          return NULL;
        }
      g_ptr_array_add (paths, g_steal_pointer (&path));
    }

  return g_steal_pointer (&paths);
}

static void
measure_recording (const BenchOptions *options,
                   const char         *stats_path)
{
  g_autofree char *recording = find_largest_recording (options->corpus_dir);
  g_autoptr(BenchResult) rate = NULL;
  g_autoptr(BenchResult) rss = NULL;
  g_autoptr(GPtrArray) inputs = NULL;
  guint repeats = options->quick ? RECORDING_REPEATS / 10 : RECORDING_REPEATS;
  guint64 events = 0;

  if (recording == NULL)
    {
      g_printerr ("jarvis-bench: no recording in %s, so the host workload skips the recording part\n",
                  options->corpus_dir);
      return;
    }
  if (!options->run_jarvis)
    return;

  inputs = write_recording_copies (options, recording, repeats);
  if (inputs == NULL)
    return;

  rate = bench_result_new ("host", "events_per_s", "events/s", TRUE);
  rss = bench_result_new ("host", "peak_rss_kib", "KiB", FALSE);
  for (guint round = 0; round < options->rounds; round++)
    {
      ProcessRun run = run_host (options, stats_path, (const char * const *) inputs->pdata, inputs->len);

      if (!run.ok || run.events_in == 0)
        continue;

      events = run.events_in;
      g_array_append_val (rate->jarvis, (double) { run.events_in / run.seconds });
      g_array_append_val (rss->jarvis, (double) { run.peak_rss_kib });
    }

  for (guint i = 0; i < inputs->len; i++)
    g_unlink (inputs->pdata[i]);

  json_object_set_string_member (rate->extra, "input", "largest recording");
  json_object_set_string_member (rate->extra, "recording", recording);
  json_object_set_int_member (rate->extra, "repeats", repeats);
  json_object_set_int_member (rate->extra, "events", events);
  json_object_set_string_member (rss->extra, "input", "largest recording");
  json_object_set_int_member (rss->extra, "repeats", repeats);
  bench_result_print (rate);
  bench_result_print (rss);
}

void
bench_workload_host (const BenchOptions *options)
{
  g_autofree char *stats_path = g_build_filename (options->work_dir, "stats.json", NULL);

  if (options->run_jarvis && !g_file_test (options->host_binary, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_printerr ("jarvis-bench: %s is not an executable, so the host workload is skipped; "
                  "build jarvis-host or pass --host-binary\n", options->host_binary);
      return;
    }

  measure_events_file (options, stats_path);
  measure_recording (options, stats_path);
}

/* The baseline host */

typedef struct
{
  GOutputStream *output;        /* unowned, stdout */
  guint64 completes;
} BaselineConsole;

/* Writes flushed text to stdout as the console plugin does. */
static void
on_baseline_console_event (BaselineEvent *event,
                           gpointer       user_data)
{
  BaselineConsole *console = user_data;

  if (event->event_type == g_intern_static_string ("agent.stream.flush"))
    g_output_stream_write_all (console->output, event->text, event->text_length, NULL, NULL, NULL);
  else if (event->event_type == g_intern_static_string ("agent.stream.complete"))
    console->completes++;
}

static BaselineEvent *
parse_events_line (JsonParser *parser,
                   const char *line,
                   gsize       length)
{
  JsonObject *object;
  BaselineEvent *event;
  const char *text;
  const char *session_id;

  if (!json_parser_load_from_data (parser, line, length, NULL))
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    return NULL;

  object = json_node_get_object (json_parser_get_root (parser));
  if (!json_object_has_member (object, "type") || !json_object_has_member (object, "request_id"))
    return NULL;

  event = baseline_event_new (json_object_get_string_member (object, "type"),
                              json_object_get_string_member (object, "request_id"));
  session_id = json_object_get_string_member_with_default (object, "session_id", NULL);
  if (session_id != NULL)
    baseline_event_set_session_id (event, session_id);
  text = json_object_get_string_member_with_default (object, "text", NULL);
  if (text != NULL)
    baseline_event_set_text (event, text, -1);

  return event;
}

int
bench_run_baseline_host (const char *path)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GFile) file = g_file_new_for_path (path);
  g_autoptr(GFileInputStream) stream = NULL;
  g_autoptr(GDataInputStream) lines = NULL;
  g_autoptr(GOutputStream) output = g_unix_output_stream_new (STDOUT_FILENO, FALSE);
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(GError) error = NULL;
  BaselineConsole console = { .output = output };
  BaselineBus *bus;
  guint64 line_number = 0;
  char *line;
  gsize length;

  g_main_context_push_thread_default (context);

  stream = g_file_read (file, NULL, &error);
  if (stream == NULL)
    {
      g_printerr ("jarvis-bench: opening %s failed: %s\n", path, error->message);
      return 1;
    }
  lines = g_data_input_stream_new (G_INPUT_STREAM (stream));
  g_buffered_input_stream_set_buffer_size (G_BUFFERED_INPUT_STREAM (lines), 1 << 16);

  bus = baseline_bus_new (context);
  baseline_bus_subscribe (bus, "agent.stream.*", on_baseline_console_event, &console);

  while ((line = g_data_input_stream_read_line (lines, &length, NULL, &error)) != NULL)
    {
      BaselineEvent *event = parse_events_line (parser, line, length);

      line_number++;
      if (event != NULL)
        baseline_bus_emit (bus, event);
      else
        g_printerr ("%s:%" G_GUINT64_FORMAT ": invalid events line, skipped\n", path, line_number);
      g_free (line);

      if (line_number % 64 == 0)
        while (g_main_context_iteration (context, FALSE))
          ;
    }
  if (error != NULL)
    g_printerr ("jarvis-bench: reading %s failed: %s\n", path, error->message);

  while (baseline_bus_get_n_active_requests (bus) > 0)
    g_main_context_iteration (context, TRUE);

  baseline_bus_free (bus);
  g_main_context_pop_thread_default (context);

  return error != NULL ? 1 : 0;
}
