/* Tests of the jarvis-host executable. Each test runs the real binary with
 * the real bundled plugins on real files in a private directory, and checks
 * its exit status, stdout, stderr, recording and stats. */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <string.h>

#define OPENAI_EXAMPLE_TEXT "Grüße aus Zürich! 日本語も話せます — emoji too: 🚀✨\nÇa marche."
#define ANTHROPIC_EXAMPLE_TEXT "Hello from an example stream."
#define OLLAMA_EXAMPLE_TEXT "Sure, here is a haiku:\nQuiet main loop hums"
#define FIRST_ANSWER_TEXT "The three largest moons of Jupiter are"
#define SECOND_ANSWER_TEXT "The largest moon of Jupiter is Ganymede."

/* The keys of the --stats object, in the order the host writes them. */
static const char * const stats_keys[] = {
  "requests", "requests_completed", "requests_cancelled", "requests_failed",
  "events_in", "tokens", "bytes_in", "bytes_flushed", "flushes",
  "tasks_created", "tasks_completed", "tasks_cancelled", "tasks_failed",
  "tasks_detached", "late_events_dropped", "input_errors", "utf8_replacements",
};

typedef struct
{
  char *directory;              /* private temporary directory */
  char *config_home;            /* XDG_CONFIG_HOME for the host */
} Fixture;

typedef struct
{
  int exit_status;
  char *out;
  gsize out_length;
  char *err;
} HostRun;

static char *
host_path (void)
{
  return g_test_build_filename (G_TEST_BUILT, "..", "host", "jarvis-host", NULL);
}

static char *
plugin_dir (void)
{
  return g_test_build_filename (G_TEST_BUILT, "..", "plugins", NULL);
}

static char *
example_path (const char *name)
{
  return g_test_build_filename (G_TEST_DIST, "..", "examples", name, NULL);
}

static char *
fixture_path (Fixture    *fixture,
              const char *name)
{
  return g_build_filename (fixture->directory, name, NULL);
}

static void
remove_tree (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR))
        remove_tree (child);
      else
        g_assert_no_errno (g_unlink (child));
    }

  g_assert_no_errno (g_rmdir (path));
}

static void
fixture_set_up (Fixture       *fixture,
                gconstpointer  user_data)
{
  g_autoptr (GError) error = NULL;

  fixture->directory = g_dir_make_tmp ("jarvis-host-test-XXXXXX", &error);
  g_assert_no_error (error);

  fixture->config_home = g_build_filename (fixture->directory, "config", NULL);
  g_assert_no_errno (g_mkdir (fixture->config_home, 0700));
}

static void
fixture_tear_down (Fixture       *fixture,
                   gconstpointer  user_data)
{
  remove_tree (fixture->directory);
  g_free (fixture->directory);
  g_free (fixture->config_home);
}

static void
host_run_free (HostRun *run)
{
  g_free (run->out);
  g_free (run->err);
  g_free (run);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (HostRun, host_run_free)

static GSubprocessLauncher *
new_launcher (Fixture        *fixture,
              GSubprocessFlags flags)
{
  GSubprocessLauncher *launcher = g_subprocess_launcher_new (flags);

  /* The host must see only this test's configuration and no key. */
  g_subprocess_launcher_setenv (launcher, "XDG_CONFIG_HOME", fixture->config_home, TRUE);
  g_subprocess_launcher_unsetenv (launcher, "OPENAI_API_KEY");
  g_subprocess_launcher_unsetenv (launcher, "G_MESSAGES_DEBUG");

  return launcher;
}

static GPtrArray *
host_argv (const char * const *args)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);

  g_ptr_array_add (argv, host_path ());
  g_ptr_array_add (argv, g_strdup ("--plugin-dir"));
  g_ptr_array_add (argv, plugin_dir ());

  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));

  g_ptr_array_add (argv, NULL);

  return argv;
}

static char *
bytes_to_string (GBytes *bytes)
{
  gsize size = 0;
  const char *data = g_bytes_get_data (bytes, &size);

  return size > 0 ? g_strndup (data, size) : g_strdup ("");
}

/* Runs the host to its end with @stdin_text (or an empty stdin). */
static HostRun *
run_host (Fixture            *fixture,
          const char         *stdin_text,
          const char * const *args)
{
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GSubprocess) process = NULL;
  g_autoptr (GPtrArray) argv = host_argv (args);
  g_autoptr (GBytes) input = NULL;
  g_autoptr (GBytes) out = NULL;
  g_autoptr (GBytes) err = NULL;
  g_autoptr (GError) error = NULL;
  HostRun *run;

  launcher = new_launcher (fixture, G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                    G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                    G_SUBPROCESS_FLAGS_STDERR_PIPE);
  process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);

  input = g_bytes_new (stdin_text != NULL ? stdin_text : "", stdin_text != NULL ? strlen (stdin_text) : 0);
  g_subprocess_communicate (process, input, NULL, &out, &err, &error);
  g_assert_no_error (error);

  run = g_new0 (HostRun, 1);
  g_assert_true (g_subprocess_get_if_exited (process));
  run->exit_status = g_subprocess_get_exit_status (process);
  run->out = bytes_to_string (out);
  run->out_length = g_bytes_get_size (out);
  run->err = bytes_to_string (err);

  if (g_test_verbose ())
    g_test_message ("exit %d, stderr:\n%s", run->exit_status, run->err);

  return run;
}

static void
write_file (const char *path,
            const char *contents)
{
  g_autoptr (GError) error = NULL;

  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
}

static char *
read_file (const char *path)
{
  g_autoptr (GError) error = NULL;
  char *contents = NULL;

  g_file_get_contents (path, &contents, NULL, &error);
  g_assert_no_error (error);

  return contents;
}

static JsonObject *
read_stats (const char *path)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  JsonNode *root;

  json_parser_load_from_file (parser, path, &error);
  g_assert_no_error (error);

  root = json_parser_get_root (parser);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (root));

  return json_object_ref (json_node_get_object (root));
}

/* Parses a recording into one object per line, failing on any bad line. */
static GPtrArray *
read_recording (const char *path)
{
  g_autofree char *contents = read_file (path);
  g_auto (GStrv) lines = NULL;
  GPtrArray *records = g_ptr_array_new_with_free_func ((GDestroyNotify) json_object_unref);

  g_assert_true (g_str_has_suffix (contents, "\n"));
  contents[strlen (contents) - 1] = '\0';
  lines = g_strsplit (contents, "\n", -1);

  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_autoptr (JsonParser) parser = json_parser_new ();
      g_autoptr (GError) error = NULL;
      JsonNode *root;

      json_parser_load_from_data (parser, lines[i], -1, &error);
      g_assert_no_error (error);

      root = json_parser_get_root (parser);
      g_assert_true (JSON_NODE_HOLDS_OBJECT (root));
      g_ptr_array_add (records, json_object_ref (json_node_get_object (root)));
    }

  return records;
}

/* Concatenates the text of the recorded flush events of @request_id. */
static char *
recorded_flush_text (GPtrArray  *records,
                     const char *request_id)
{
  GString *text = g_string_new (NULL);

  for (guint i = 0; i < records->len; i++)
    {
      JsonObject *record = g_ptr_array_index (records, i);

      if (g_strcmp0 (json_object_get_string_member (record, "type"), "agent.stream.flush") != 0 ||
          g_strcmp0 (json_object_get_string_member (record, "request_id"), request_id) != 0)
        continue;

      g_string_append (text, json_object_get_string_member_with_default (record, "text", ""));
    }

  return g_string_free (text, FALSE);
}

static const char *
recorded_outcome (GPtrArray  *records,
                  const char *request_id)
{
  const char *outcome = NULL;
  guint completes = 0;

  for (guint i = 0; i < records->len; i++)
    {
      JsonObject *record = g_ptr_array_index (records, i);

      if (g_strcmp0 (json_object_get_string_member (record, "type"), "agent.stream.complete") != 0 ||
          g_strcmp0 (json_object_get_string_member (record, "request_id"), request_id) != 0)
        continue;

      completes++;
      outcome = json_object_get_string_member (record, "outcome");
    }

  g_assert_cmpuint (completes, ==, 1);

  return outcome;
}

static void
assert_stats_invariants (JsonObject *stats)
{
  g_autoptr (GList) members = json_object_get_members (stats);

  g_assert_cmpuint (g_list_length (members), ==, G_N_ELEMENTS (stats_keys));

  for (guint i = 0; i < G_N_ELEMENTS (stats_keys); i++)
    g_assert_true (json_object_has_member (stats, stats_keys[i]));

  g_assert_cmpint (json_object_get_int_member (stats, "bytes_flushed"), ==,
                   json_object_get_int_member (stats, "bytes_in"));
  g_assert_cmpint (json_object_get_int_member (stats, "tasks_created"), ==,
                   json_object_get_int_member (stats, "tasks_completed") +
                   json_object_get_int_member (stats, "tasks_cancelled") +
                   json_object_get_int_member (stats, "tasks_failed") +
                   json_object_get_int_member (stats, "tasks_detached"));
  g_assert_cmpint (json_object_get_int_member (stats, "requests"), ==,
                   json_object_get_int_member (stats, "requests_completed") +
                   json_object_get_int_member (stats, "requests_cancelled") +
                   json_object_get_int_member (stats, "requests_failed"));
}

/* Command line. */

static void
test_version (Fixture       *fixture,
              gconstpointer  user_data)
{
  const char * const args[] = { "--version", NULL };
  g_autoptr (HostRun) run = run_host (fixture, NULL, args);

  g_assert_cmpint (run->exit_status, ==, 0);
  g_assert_cmpstr (run->out, ==, "jarvis-host 0.1.0\n");
}

static void
test_help (Fixture       *fixture,
           gconstpointer  user_data)
{
  const char * const args[] = { "--help", NULL };
  g_autoptr (HostRun) run = run_host (fixture, NULL, args);
  g_auto (GStrv) lines = NULL;
  const char *usage = NULL;

  g_assert_cmpint (run->exit_status, ==, 0);

  lines = g_strsplit (run->out, "\n", -1);
  for (guint i = 0; lines[i] != NULL && usage == NULL; i++)
    {
      if (g_str_has_prefix (lines[i], "  jarvis-host [OPTION"))
        usage = lines[i];
    }

  /* The ellipsis depends on the locale's charset, so only the words are
   * compared. */
  g_assert_nonnull (usage);
  g_assert_nonnull (strstr (usage, "] [INPUT"));
  g_assert_true (g_str_has_suffix (usage, "] - run model streams through plugins"));
  g_assert_null (strstr (strstr (usage, "[INPUT") + 1, "[INPUT"));
}

static void
test_list_plugins (Fixture       *fixture,
                   gconstpointer  user_data)
{
  const char * const args[] = { "--list-plugins", NULL };
  g_autoptr (HostRun) run = run_host (fixture, NULL, args);

  g_assert_cmpint (run->exit_status, ==, 0);
  g_assert_true (g_str_has_prefix (run->out, "console 0.1.0\t") || strstr (run->out, "\nconsole 0.1.0\t") != NULL);
  g_assert_nonnull (strstr (run->out, "recorder 0.1.0\t"));
}

static void
test_list_plugins_unset_fields (Fixture       *fixture,
                                gconstpointer  user_data)
{
  g_autofree char *own_plugins = g_test_build_filename (G_TEST_BUILT, "host", NULL);
  const char * const args[] = { "--list-plugins", "--plugin-dir", own_plugins, NULL };
  g_autoptr (HostRun) run = run_host (fixture, NULL, args);

  /* The bare plugin sets neither version nor description. */
  g_assert_cmpint (run->exit_status, ==, 0);
  g_assert_nonnull (strstr (run->out, "bare -\t\t"));
  g_assert_null (strstr (run->out, "(null)"));
}

/* Without --plugin-dir the host searches only the default path, so the
 * test points that path at an empty directory. */
static void
test_list_plugins_none_found (Fixture       *fixture,
                              gconstpointer  user_data)
{
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GSubprocess) process = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *host = host_path ();
  g_autofree char *data_home = fixture_path (fixture, "data");
  g_autofree char *user_plugins = g_build_filename (data_home, "jarvis-events-1", "plugins", NULL);
  g_autofree char *listed = g_strdup_printf ("\n  %s\n", user_plugins);
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;

  launcher = new_launcher (fixture, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_setenv (launcher, "XDG_DATA_HOME", data_home, TRUE);
  g_subprocess_launcher_unsetenv (launcher, "JARVIS_PLUGIN_PATH");
  process = g_subprocess_launcher_spawn (launcher, &error, host, "--list-plugins", NULL);
  g_assert_no_error (error);

  g_subprocess_communicate_utf8 (process, NULL, NULL, &out, &err, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (process));
  g_assert_cmpint (g_subprocess_get_exit_status (process), ==, 0);

  if (*out != '\0')
    {
      g_test_skip ("plugins are installed on the default path of this machine");
      return;
    }

  g_assert_true (g_str_has_prefix (err, "jarvis-host: no plugins found; searched:\n"));
  g_assert_nonnull (strstr (err, listed));
  g_assert_nonnull (strstr (err, "--plugin-dir"));
}

static void
test_untrusted_warning (Fixture       *fixture,
                        gconstpointer  user_data)
{
  const char * const args[] = { "--list-plugins", "--allow-untrusted-plugins", NULL };
  g_autoptr (HostRun) run = run_host (fixture, NULL, args);

  g_assert_cmpint (run->exit_status, ==, 0);
  g_assert_nonnull (strstr (run->out, "console 0.1.0\t"));
  g_assert_nonnull (strstr (run->err, "warning: loading plugins without the owner and mode checks"));
}

static void
test_usage_errors (Fixture       *fixture,
                   gconstpointer  user_data)
{
  /* Each case, and a word its message must contain. */
  const struct
  {
    const char *args[4];
    const char *expected;
  } cases[] = {
    { { "--bogus", NULL }, "--bogus" },
    { { "--format=xml", NULL }, "'xml'" },
    { { "--flush-interval=soon", NULL }, "'soon'" },
    { { "--flush-interval=0", NULL }, "--flush-interval" },
    { { "--flush-bytes=-5", NULL }, "'-5'" },
    { { "--read-size=0", NULL }, "--read-size" },
    { { "--option=console", NULL }, "'console'" },
    { { "--option=console.marks", NULL }, "'console.marks'" },
    { { "--option=.marks=true", NULL }, "'.marks=true'" },
    { { "--option=1console.marks=true", NULL }, "'1console.marks=true'" },
    { { "--option=console.=true", NULL }, "'console.=true'" },
    { { "--option=console.[x]=1", NULL }, "'console.[x]=1'" },
    { { "--model=m", NULL }, "--url" },
    { { "--url=http://127.0.0.1:9/", "input.sse", NULL }, "'input.sse'" },
    { { "--config=/nonexistent/host.conf", NULL }, "/nonexistent/host.conf" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (HostRun) run = run_host (fixture, NULL, cases[i].args);

      g_test_message ("case %u: %s", i, cases[i].args[0]);
      g_assert_cmpint (run->exit_status, ==, 2);
      g_assert_cmpstr (run->out, ==, "");
      g_assert_nonnull (strstr (run->err, cases[i].expected));
    }
}

/* Formats and inputs. */

static void
check_example (Fixture    *fixture,
               const char *example,
               const char *format,
               const char *expected_text)
{
  g_autofree char *input = example_path (example);
  g_autofree char *stats_path = fixture_path (fixture, "stats.json");
  g_autofree char *format_option = g_strdup_printf ("--format=%s", format);
  g_autofree char *expected_out = g_strconcat (expected_text, "\n", NULL);
  const char * const args[] = { format_option, "--stats", stats_path, input, NULL };
  g_autoptr (HostRun) run = run_host (fixture, NULL, args);
  g_autoptr (JsonObject) stats = NULL;

  g_assert_cmpint (run->exit_status, ==, 0);
  g_assert_cmpstr (run->out, ==, expected_out);

  stats = read_stats (stats_path);
  assert_stats_invariants (stats);
  g_assert_cmpint (json_object_get_int_member (stats, "requests"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (stats, "requests_completed"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (stats, "bytes_in"), ==, strlen (expected_text));
  g_assert_cmpint (json_object_get_int_member (stats, "input_errors"), ==, 0);
}

static void
test_format_openai (Fixture       *fixture,
                    gconstpointer  user_data)
{
  check_example (fixture, "openai-multibyte.sse", "openai", OPENAI_EXAMPLE_TEXT);
  check_example (fixture, "openai-multibyte.sse", "auto", OPENAI_EXAMPLE_TEXT);
}

static void
test_format_anthropic (Fixture       *fixture,
                       gconstpointer  user_data)
{
  check_example (fixture, "anthropic-hello.sse", "anthropic", ANTHROPIC_EXAMPLE_TEXT);
  check_example (fixture, "anthropic-hello.sse", "auto", ANTHROPIC_EXAMPLE_TEXT);
}

static void
test_format_ollama (Fixture       *fixture,
                    gconstpointer  user_data)
{
  check_example (fixture, "ollama-chat.ndjson", "ollama", OLLAMA_EXAMPLE_TEXT);
  check_example (fixture, "ollama-chat.ndjson", "auto", OLLAMA_EXAMPLE_TEXT);
}

static void
test_format_events (Fixture       *fixture,
                    gconstpointer  user_data)
{
  g_autofree char *input = example_path ("supersede.events");
  g_autofree char *recording = fixture_path (fixture, "recording.jsonl");
  g_autofree char *path_option = g_strdup_printf ("recorder.path=%s", recording);
  g_autofree char *first_text = NULL;
  g_autofree char *second_text = NULL;
  const char * const args[] = {
    "--format=events", "--plugin=console", "--plugin=recorder",
    "--option", path_option, input, NULL
  };
  g_autoptr (HostRun) run = run_host (fixture, NULL, args);
  g_autoptr (GPtrArray) records = NULL;

  g_assert_cmpint (run->exit_status, ==, 0);
  g_assert_cmpstr (run->out, ==, FIRST_ANSWER_TEXT "\n" SECOND_ANSWER_TEXT "\n");

  records = read_recording (recording);
  first_text = recorded_flush_text (records, "answer-1");
  second_text = recorded_flush_text (records, "answer-2");
  g_assert_cmpstr (first_text, ==, FIRST_ANSWER_TEXT);
  g_assert_cmpstr (second_text, ==, SECOND_ANSWER_TEXT);
  g_assert_cmpstr (recorded_outcome (records, "answer-1"), ==, "superseded");
  g_assert_cmpstr (recorded_outcome (records, "answer-2"), ==, "completed");

  /* Every line names its request, session and trace, and flushes carry a
   * token count. */
  for (guint i = 0; i < records->len; i++)
    {
      JsonObject *record = g_ptr_array_index (records, i);
      const char *type = json_object_get_string_member (record, "type");

      g_assert_true (json_object_has_member (record, "request_id"));
      g_assert_cmpstr (json_object_get_string_member (record, "session_id"), ==, "chat-1");
      g_assert_true (json_object_has_member (record, "trace_id"));
      g_assert_false (json_object_has_member (record, "payload"));

      if (g_strcmp0 (type, "agent.stream.flush") == 0)
        g_assert_cmpint (json_object_get_int_member (record, "tokens"), >, 0);
      else
        g_assert_false (json_object_has_member (record, "tokens"));
    }
}

/* The recorder writes each complete event asynchronously. On a clean run
 * the host waits for those writes before it closes the bus, so no call is
 * cancelled and every complete line is in the file. */
static void
test_clean_run_cancels_nothing (Fixture       *fixture,
                                gconstpointer  user_data)
{
  g_autofree char *openai = example_path ("openai-multibyte.sse");
  g_autofree char *anthropic = example_path ("anthropic-hello.sse");
  g_autofree char *recording = fixture_path (fixture, "recording.jsonl");
  g_autofree char *stats_path = fixture_path (fixture, "stats.json");
  g_autofree char *path_option = g_strdup_printf ("recorder.path=%s", recording);
  const char * const args[] = {
    "--plugin=console", "--plugin=recorder", "--option", path_option,
    "--stats", stats_path, openai, anthropic, NULL
  };
  g_autoptr (HostRun) run = run_host (fixture, NULL, args);
  g_autoptr (JsonObject) stats = NULL;
  g_autoptr (GPtrArray) records = NULL;
  guint completes = 0;

  g_assert_cmpint (run->exit_status, ==, 0);

  stats = read_stats (stats_path);
  assert_stats_invariants (stats);
  g_assert_cmpint (json_object_get_int_member (stats, "requests_completed"), ==, 2);
  g_assert_cmpint (json_object_get_int_member (stats, "tasks_created"), >, 0);
  g_assert_cmpint (json_object_get_int_member (stats, "tasks_cancelled"), ==, 0);
  g_assert_cmpint (json_object_get_int_member (stats, "tasks_detached"), ==, 0);
  g_assert_cmpint (json_object_get_int_member (stats, "tasks_completed"), ==,
                   json_object_get_int_member (stats, "tasks_created"));

  records = read_recording (recording);
  for (guint i = 0; i < records->len; i++)
    {
      JsonObject *record = g_ptr_array_index (records, i);

      if (g_strcmp0 (json_object_get_string_member (record, "type"), "agent.stream.complete") == 0)
        completes++;
    }
  g_assert_cmpuint (completes, ==, 2);
}

/* A plugin that returns 100 calls a millisecond falls behind a file read
 * at full speed. Reading must pause while 10,000 calls are in flight, so
 * that the plugin never keeps many more than that waiting. No call may be
 * cancelled for being queued past the end grace. */
static void
test_slow_plugin_sets_pace (Fixture       *fixture,
                            gconstpointer  user_data)
{
  g_autofree char *fixture_plugins = g_test_build_filename (G_TEST_BUILT, "plugins", NULL);
  g_autofree char *input = fixture_path (fixture, "many-deltas.events");
  g_autofree char *report = fixture_path (fixture, "max-in-flight.txt");
  g_autofree char *report_option = g_strdup_printf ("slow_async.report=%s", report);
  g_autofree char *stats_path = fixture_path (fixture, "stats.json");
  g_autofree char *report_contents = NULL;
  g_autoptr (GString) events = g_string_new ("{\"type\":\"agent.stream.start\",\"request_id\":\"long\"}\n");
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) stats = NULL;
  g_autoptr (HostRun) run = NULL;
  const char * const args[] = {
    "--format=events", "--plugin-dir", fixture_plugins, "--plugin=slow_async",
    "--option", report_option, "--stats", stats_path, input, NULL
  };

  for (guint i = 0; i < 40000; i++)
    g_string_append_printf (events, "{\"type\":\"agent.stream.delta\",\"request_id\":\"long\",\"text\":\"t%u \"}\n", i);
  g_string_append (events, "{\"type\":\"agent.stream.end\",\"request_id\":\"long\"}\n");
  g_file_set_contents (input, events->str, events->len, &error);
  g_assert_no_error (error);

  run = run_host (fixture, NULL, args);
  g_assert_cmpint (run->exit_status, ==, 0);

  stats = read_stats (stats_path);
  assert_stats_invariants (stats);
  g_assert_cmpint (json_object_get_int_member (stats, "tasks_created"), ==, 40000);
  g_assert_cmpint (json_object_get_int_member (stats, "tasks_completed"), ==, 40000);

  /* One read of 64 KiB adds about 1,000 calls after the check. */
  g_file_get_contents (report, &report_contents, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_ascii_strtoull (report_contents, NULL, 10), >=, 1);
  g_assert_cmpuint (g_ascii_strtoull (report_contents, NULL, 10), <=, 12000);
}

/* A call that never returns is detached at the drain deadline. The run
 * still completes its request, but exits with status 1 for a plugin failure. */
static void
test_detached_call_fails_run (Fixture       *fixture,
                              gconstpointer  user_data)
{
  g_autofree char *fixture_plugins = g_test_build_filename (G_TEST_BUILT, "plugins", NULL);
  g_autofree char *stats_path = fixture_path (fixture, "stats.json");
  g_autoptr (JsonObject) stats = NULL;
  g_autoptr (HostRun) run = NULL;
  const char * const args[] = {
    "--format=events", "--plugin-dir", fixture_plugins, "--plugin=never_returns",
    "--stats", stats_path, "-", NULL
  };
  const char *events =
    "{\"type\":\"agent.stream.start\",\"request_id\":\"r1\"}\n"
    "{\"type\":\"agent.stream.delta\",\"request_id\":\"r1\",\"text\":\"x\"}\n"
    "{\"type\":\"agent.stream.end\",\"request_id\":\"r1\"}\n";

  run = run_host (fixture, events, args);

  g_assert_cmpint (run->exit_status, ==, 1);
  g_assert_nonnull (strstr (run->err, "1 handler call did not return within the drain deadline"));

  stats = read_stats (stats_path);
  assert_stats_invariants (stats);
  g_assert_cmpint (json_object_get_int_member (stats, "requests"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (stats, "tasks_detached"), ==, 1);
}

static void
test_stdin (Fixture       *fixture,
            gconstpointer  user_data)
{
  g_autofree char *input = example_path ("openai-multibyte.sse");
  g_autofree char *contents = read_file (input);
  const char * const no_args[] = { NULL };
  const char * const dash_args[] = { "-", NULL };
  g_autoptr (HostRun) implicit_run = run_host (fixture, contents, no_args);
  g_autoptr (HostRun) dash_run = run_host (fixture, contents, dash_args);

  g_assert_cmpint (implicit_run->exit_status, ==, 0);
  g_assert_cmpstr (implicit_run->out, ==, OPENAI_EXAMPLE_TEXT "\n");
  g_assert_cmpint (dash_run->exit_status, ==, 0);
  g_assert_cmpstr (dash_run->out, ==, OPENAI_EXAMPLE_TEXT "\n");
}

static void
test_several_inputs (Fixture       *fixture,
                     gconstpointer  user_data)
{
  g_autofree char *openai = example_path ("openai-multibyte.sse");
  g_autofree char *anthropic = example_path ("anthropic-hello.sse");
  g_autofree char *ollama = example_path ("ollama-chat.ndjson");
  g_autofree char *stats_path = fixture_path (fixture, "stats.json");
  const char * const args[] = { "--stats", stats_path, openai, anthropic, ollama, NULL };
  g_autoptr (HostRun) run = run_host (fixture, NULL, args);
  g_autoptr (JsonObject) stats = NULL;

  g_assert_cmpint (run->exit_status, ==, 0);
  g_assert_cmpstr (run->out, ==, OPENAI_EXAMPLE_TEXT "\n" ANTHROPIC_EXAMPLE_TEXT "\n" OLLAMA_EXAMPLE_TEXT "\n");

  stats = read_stats (stats_path);
  assert_stats_invariants (stats);
  g_assert_cmpint (json_object_get_int_member (stats, "requests"), ==, 3);
  g_assert_cmpint (json_object_get_int_member (stats, "requests_completed"), ==, 3);
}

/* Runs the host on an example, with @flush_option unless it is NULL, and
 * returns the number of flushes. */
static gint64
count_flushes (Fixture    *fixture,
               const char *flush_option)
{
  g_autofree char *input = example_path ("openai-multibyte.sse");
  g_autofree char *stats_path = fixture_path (fixture, "stats.json");
  const char * const args[] = { "--stats", stats_path, input, flush_option, NULL };
  g_autoptr (HostRun) run = run_host (fixture, NULL, args);
  g_autoptr (JsonObject) stats = NULL;

  g_assert_cmpint (run->exit_status, ==, 0);
  g_assert_cmpstr (run->out, ==, OPENAI_EXAMPLE_TEXT "\n");

  stats = read_stats (stats_path);
  assert_stats_invariants (stats);

  return json_object_get_int_member (stats, "flushes");
}

static void
test_flush_bytes_reach_bus (Fixture       *fixture,
                            gconstpointer  user_data)
{
  gint64 default_flushes = count_flushes (fixture, NULL);
  gint64 small_flushes = count_flushes (fixture, "--flush-bytes=3");

  g_test_message ("flushes: %" G_GINT64_FORMAT " by default, %" G_GINT64_FORMAT " with 3 bytes",
                  default_flushes, small_flushes);
  g_assert_cmpint (default_flushes, >, 0);
  g_assert_cmpint (small_flushes, >, default_flushes);
}

static void
test_stats_on_startup_failure (Fixture       *fixture,
                               gconstpointer  user_data)
{
  g_autofree char *input = example_path ("openai-multibyte.sse");
  g_autofree char *stats_path = fixture_path (fixture, "stats.json");
  const char * const args[] = { "--plugin=nosuch", "--stats", stats_path, input, NULL };
  g_autoptr (HostRun) run = run_host (fixture, NULL, args);
  g_autoptr (JsonObject) stats = NULL;

  g_assert_cmpint (run->exit_status, ==, 1);
  g_assert_cmpstr (run->out, ==, "");
  g_assert_true (g_file_test (stats_path, G_FILE_TEST_EXISTS));

  /* Nothing was read, so every counter is zero. */
  stats = read_stats (stats_path);
  assert_stats_invariants (stats);
  for (guint i = 0; i < G_N_ELEMENTS (stats_keys); i++)
    {
      g_test_message ("key %s", stats_keys[i]);
      g_assert_cmpint (json_object_get_int_member (stats, stats_keys[i]), ==, 0);
    }
}

/* Plugins. */

static void
test_allow_untrusted_loads (Fixture       *fixture,
                            gconstpointer  user_data)
{
  g_autofree char *source = g_test_build_filename (G_TEST_BUILT, "plugins",
                                                   "jarvis-plugin-good-sync.so", NULL);
  g_autofree char *plugins = fixture_path (fixture, "plugins");
  g_autofree char *copy = g_build_filename (plugins, "jarvis-plugin-good-sync.so", NULL);
  g_autofree char *input = fixture_path (fixture, "ping.events");
  g_autofree char *contents = NULL;
  g_autoptr (GError) error = NULL;
  gsize length = 0;
  const char * const strict_args[] = {
    "--format=events", "--plugin-dir", plugins, "--plugin=good_sync", input, NULL
  };
  const char * const relaxed_args[] = {
    "--format=events", "--plugin-dir", plugins, "--plugin=good_sync", "--allow-untrusted-plugins",
    input, NULL
  };
  g_autoptr (HostRun) strict_run = NULL;
  g_autoptr (HostRun) relaxed_run = NULL;

  g_file_get_contents (source, &contents, &length, &error);
  g_assert_no_error (error);
  g_assert_no_errno (g_mkdir (plugins, 0700));
  g_file_set_contents (copy, contents, length, &error);
  g_assert_no_error (error);
  g_assert_no_errno (g_chmod (copy, 0664));
  write_file (input, "{\"type\":\"test.ping\",\"request_id\":\"r1\"}\n");

  /* A plugin file that its group can write is refused by default. */
  strict_run = run_host (fixture, NULL, strict_args);
  g_assert_cmpint (strict_run->exit_status, ==, 1);
  g_assert_nonnull (strstr (strict_run->err, copy));

  relaxed_run = run_host (fixture, NULL, relaxed_args);
  g_assert_cmpint (relaxed_run->exit_status, ==, 0);
  g_assert_nonnull (strstr (relaxed_run->err, "warning: loading plugins without the owner and mode checks"));
}

static void
test_default_plugin_missing (Fixture       *fixture,
                             gconstpointer  user_data)
{
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GSubprocess) process = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *host = host_path ();
  g_autofree char *empty = fixture_path (fixture, "empty");
  g_autofree char *data_home = fixture_path (fixture, "data");
  g_autofree char *input = example_path ("openai-multibyte.sse");
  g_autofree char *stats_path = fixture_path (fixture, "stats.json");
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autoptr (JsonObject) stats = NULL;

  g_assert_no_errno (g_mkdir (empty, 0700));

  /* Only the empty directory is searched, so the default console plugin
   * is missing. */
  launcher = new_launcher (fixture, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_setenv (launcher, "XDG_DATA_HOME", data_home, TRUE);
  g_subprocess_launcher_unsetenv (launcher, "JARVIS_PLUGIN_PATH");
  process = g_subprocess_launcher_spawn (launcher, &error, host, "--plugin-dir", empty,
                                         "--stats", stats_path, input, NULL);
  g_assert_no_error (error);

  g_subprocess_communicate_utf8 (process, NULL, NULL, &out, &err, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (process));
  g_assert_cmpint (g_subprocess_get_exit_status (process), ==, 1);
  g_assert_cmpstr (out, ==, "");
  g_assert_nonnull (strstr (err, "console"));

  /* The input was still read to its end. */
  stats = read_stats (stats_path);
  assert_stats_invariants (stats);
  g_assert_cmpint (json_object_get_int_member (stats, "requests_completed"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (stats, "bytes_in"), ==, strlen (OPENAI_EXAMPLE_TEXT));
}

/* Input errors. */

static void
test_bad_lines (Fixture       *fixture,
                gconstpointer  user_data)
{
  g_autofree char *input = fixture_path (fixture, "bad.events");
  g_autofree char *stats_path = fixture_path (fixture, "stats.json");
  g_autofree char *line2 = NULL;
  g_autofree char *line4 = NULL;
  g_autofree char *line5 = NULL;
  g_autofree char *line6 = NULL;
  const char * const args[] = { "--format=events", "--stats", stats_path, input, NULL };
  g_autoptr (HostRun) run = NULL;
  g_autoptr (JsonObject) stats = NULL;

  write_file (input,
              "{\"type\":\"agent.stream.start\",\"request_id\":\"r1\"}\n"
              "{\"type\":\"agent.stream.delta\",\"request_id\":\"r1\",\"text\":\"before \"\n"
              "{\"type\":\"agent.stream.delta\",\"request_id\":\"r1\",\"text\":\"after\"}\n"
              "{\"request_id\":\"r1\",\"text\":\"no type\"}\n"
              "{\"type\":\"agent.stream.flush\",\"request_id\":\"r1\",\"text\":\"fake\"}\n"
              "{\"type\":\"agent.stream.complete\",\"request_id\":\"r1\"}\n"
              "{\"type\":\"agent.stream.end\",\"request_id\":\"r1\"}\n");
  run = run_host (fixture, NULL, args);

  g_assert_cmpint (run->exit_status, ==, 1);
  g_assert_cmpstr (run->out, ==, "after\n");

  line2 = g_strdup_printf ("%s:2: ", input);
  line4 = g_strdup_printf ("%s:4: ", input);
  line5 = g_strdup_printf ("%s:5: type agent.stream.flush is emitted only by the bus, so the line was skipped",
                           input);
  line6 = g_strdup_printf ("%s:6: type agent.stream.complete is emitted only by the bus, so the line was skipped",
                           input);
  g_assert_nonnull (strstr (run->err, line2));
  g_assert_nonnull (strstr (run->err, line4));
  g_assert_nonnull (strstr (run->err, line5));
  g_assert_nonnull (strstr (run->err, line6));

  /* The bus's own flush and completion are the only ones. */
  stats = read_stats (stats_path);
  assert_stats_invariants (stats);
  g_assert_cmpint (json_object_get_int_member (stats, "input_errors"), ==, 4);
  g_assert_cmpint (json_object_get_int_member (stats, "requests_completed"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (stats, "bytes_in"), ==, strlen ("after"));
}

static void
test_line_too_long (Fixture       *fixture,
                    gconstpointer  user_data)
{
  g_autofree char *input = fixture_path (fixture, "long.events");
  g_autofree char *long_text = g_strnfill (500, 'x');
  g_autofree char *contents = NULL;
  g_autofree char *line2 = NULL;
  const char * const args[] = { "--format=events", "--max-line-length=200", input, NULL };
  g_autoptr (HostRun) run = NULL;

  contents = g_strdup_printf ("{\"type\":\"agent.stream.delta\",\"request_id\":\"r1\",\"text\":\"short \"}\n"
                              "{\"type\":\"agent.stream.delta\",\"request_id\":\"r1\",\"text\":\"%s\"}\n"
                              "{\"type\":\"agent.stream.delta\",\"request_id\":\"r1\",\"text\":\"end\"}\n"
                              "{\"type\":\"agent.stream.end\",\"request_id\":\"r1\"}\n",
                              long_text);
  write_file (input, contents);
  run = run_host (fixture, NULL, args);

  g_assert_cmpint (run->exit_status, ==, 1);
  g_assert_cmpstr (run->out, ==, "short end\n");

  line2 = g_strdup_printf ("%s:2: ", input);
  g_assert_nonnull (strstr (run->err, line2));
}

static void
test_missing_input (Fixture       *fixture,
                    gconstpointer  user_data)
{
  g_autofree char *missing = fixture_path (fixture, "missing.sse");
  g_autofree char *input = example_path ("anthropic-hello.sse");
  g_autofree char *prefix = NULL;
  const char * const args[] = { missing, input, NULL };
  g_autoptr (HostRun) run = run_host (fixture, NULL, args);

  g_assert_cmpint (run->exit_status, ==, 1);
  g_assert_cmpstr (run->out, ==, ANTHROPIC_EXAMPLE_TEXT "\n");

  prefix = g_strdup_printf ("%s: ", missing);
  g_assert_nonnull (strstr (run->err, prefix));
}

static void
test_reused_request_id (Fixture       *fixture,
                        gconstpointer  user_data)
{
  g_autofree char *input = fixture_path (fixture, "reuse.events");
  const char *contents =
    "{\"type\":\"agent.stream.start\",\"request_id\":\"r1\"}\n"
    "{\"type\":\"agent.stream.delta\",\"request_id\":\"r1\",\"text\":\"first\"}\n"
    "{\"type\":\"agent.stream.end\",\"request_id\":\"r1\"}\n"
    "{\"type\":\"agent.stream.start\",\"request_id\":\"r1\"}\n"
    "{\"type\":\"agent.stream.delta\",\"request_id\":\"r1\",\"text\":\"second\"}\n"
    "{\"type\":\"agent.stream.end\",\"request_id\":\"r1\"}\n";

  write_file (input, contents);

  /* Read sizes that let the first request complete before the second
   * start is read, and one that reads everything at once. Either way the
   * bus drops the reused id and the host must not wait for it. */
  for (guint i = 0; i < 2; i++)
    {
      const char *read_size = i == 0 ? "--read-size=1" : "--read-size=4096";
      const char * const args[] = { "--format=events", "--stats=-", read_size, input, NULL };
      g_autoptr (HostRun) run = run_host (fixture, NULL, args);

      g_assert_cmpint (run->exit_status, ==, 0);
      g_assert_true (g_str_has_prefix (run->out, "first"));
      g_assert_nonnull (strstr (run->err, "\"late_events_dropped\""));
    }
}

static void
test_request_and_session_ids (Fixture       *fixture,
                              gconstpointer  user_data)
{
  g_autofree char *input = example_path ("ollama-chat.ndjson");
  g_autofree char *recording = fixture_path (fixture, "recording.jsonl");
  g_autofree char *path_option = g_strdup_printf ("recorder.path=%s", recording);
  const char * const default_args[] = { "--plugin=recorder", "--option", path_option, input, NULL };
  const char * const given_args[] = {
    "--plugin=recorder", "--option", path_option, "--request-id=my-request", "--session=my-session",
    input, NULL
  };
  g_autoptr (HostRun) default_run = NULL;
  g_autoptr (HostRun) given_run = NULL;
  g_autoptr (GPtrArray) default_records = NULL;
  g_autoptr (GPtrArray) given_records = NULL;
  JsonObject *first;

  /* Ollama streams carry no id, so the input's base name names the request. */
  default_run = run_host (fixture, NULL, default_args);
  g_assert_cmpint (default_run->exit_status, ==, 0);
  default_records = read_recording (recording);
  first = g_ptr_array_index (default_records, 0);
  g_assert_cmpstr (json_object_get_string_member (first, "request_id"), ==, "ollama-chat.ndjson");
  g_assert_cmpstr (json_object_get_string_member (first, "session_id"), ==, "default");

  given_run = run_host (fixture, NULL, given_args);
  g_assert_cmpint (given_run->exit_status, ==, 0);
  given_records = read_recording (recording);
  first = g_ptr_array_index (given_records, 0);
  g_assert_cmpstr (json_object_get_string_member (first, "request_id"), ==, "my-request");
  g_assert_cmpstr (json_object_get_string_member (first, "session_id"), ==, "my-session");
  g_assert_cmpstr (recorded_outcome (given_records, "my-request"), ==, "completed");
}

static void
test_stream_id_wins (Fixture       *fixture,
                     gconstpointer  user_data)
{
  g_autofree char *input = example_path ("openai-multibyte.sse");
  g_autofree char *recording = fixture_path (fixture, "recording.jsonl");
  g_autofree char *path_option = g_strdup_printf ("recorder.path=%s", recording);
  const char * const args[] = {
    "--plugin=recorder", "--option", path_option, "--request-id=my-request", input, NULL
  };
  g_autoptr (HostRun) run = run_host (fixture, NULL, args);
  g_autoptr (GPtrArray) records = NULL;

  /* The stream names its own request, so --request-id is not used. */
  g_assert_cmpint (run->exit_status, ==, 0);
  records = read_recording (recording);
  for (guint i = 0; i < records->len; i++)
    {
      JsonObject *record = g_ptr_array_index (records, i);

      g_assert_cmpstr (json_object_get_string_member (record, "request_id"), ==,
                       "chatcmpl-example-multibyte");
    }
  g_assert_cmpstr (recorded_outcome (records, "chatcmpl-example-multibyte"), ==, "completed");
}

/* Returns a loopback port that nothing listens on: the port of a socket
 * that was bound and closed again. */
static guint16
closed_port (void)
{
  g_autoptr (GSocket) socket = NULL;
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any_port = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GError) error = NULL;

  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_socket_bind (socket, any_port, FALSE, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  g_socket_close (socket, &error);
  g_assert_no_error (error);

  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

static void
assert_file_lacks (const char *path,
                   const char *secret)
{
  g_autofree char *contents = read_file (path);

  g_assert_cmpstr (contents, !=, "");
  g_assert_null (strstr (contents, secret));
}

/* Runs a live request that fails to connect, with the key from the
 * environment or from a file, and checks the files the run writes. */
static void
test_api_key_not_written (Fixture       *fixture,
                          gconstpointer  user_data)
{
  const char *secret = "sk-test-secret-5f1c";
  g_autofree char *url = g_strdup_printf ("http://127.0.0.1:%u/", closed_port ());
  g_autofree char *url_option = g_strdup_printf ("--url=%s", url);
  g_autofree char *key_file = fixture_path (fixture, "key");
  g_autofree char *recording = fixture_path (fixture, "recording.jsonl");
  g_autofree char *stats_path = fixture_path (fixture, "stats.json");
  g_autofree char *path_option = g_strdup_printf ("recorder.path=%s", recording);
  g_autofree char *host = host_path ();
  g_autofree char *plugins = plugin_dir ();

  write_file (key_file, secret);
  g_assert_no_errno (g_chmod (key_file, 0600));

  for (guint i = 0; i < 2; i++)
    {
      gboolean from_file = i == 1;
      g_autoptr (GSubprocessLauncher) launcher = NULL;
      g_autoptr (GSubprocess) process = NULL;
      g_autoptr (GError) error = NULL;
      g_autofree char *err = NULL;

      g_test_message ("key from %s", from_file ? "--api-key-file" : "OPENAI_API_KEY");
      launcher = new_launcher (fixture, G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
      if (!from_file)
        g_subprocess_launcher_setenv (launcher, "OPENAI_API_KEY", secret, TRUE);

      /* GIO's libproxy module loads C++ code whose exceptions
       * AddressSanitizer cannot intercept, and a loopback URL needs no
       * proxy, so GIO's no-proxy resolver is used. */
      g_subprocess_launcher_setenv (launcher, "GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
      if (from_file)
        process = g_subprocess_launcher_spawn (launcher, &error, host, "--plugin-dir", plugins,
                                               url_option, "--prompt=hi", "--api-key-file", key_file,
                                               "--plugin=recorder", "--option", path_option,
                                               "--stats", stats_path, NULL);
      else
        process = g_subprocess_launcher_spawn (launcher, &error, host, "--plugin-dir", plugins,
                                               url_option, "--prompt=hi",
                                               "--plugin=recorder", "--option", path_option,
                                               "--stats", stats_path, NULL);
      g_assert_no_error (error);

      g_subprocess_communicate_utf8 (process, NULL, NULL, NULL, &err, &error);
      g_assert_no_error (error);
      g_assert_true (g_subprocess_get_if_exited (process));
      g_assert_cmpint (g_subprocess_get_exit_status (process), ==, 1);
      g_assert_nonnull (strstr (err, url));
      g_assert_null (strstr (err, secret));

      assert_file_lacks (stats_path, secret);
      assert_file_lacks (recording, secret);
      g_assert_no_errno (g_unlink (stats_path));
      g_assert_no_errno (g_unlink (recording));
    }
}

/* Configuration. */

static void
test_config_precedence (Fixture       *fixture,
                        gconstpointer  user_data)
{
  g_autofree char *input = example_path ("anthropic-hello.sse");
  g_autofree char *config = fixture_path (fixture, "host.conf");
  g_autofree char *from_config = fixture_path (fixture, "from-config.jsonl");
  g_autofree char *from_command_line = fixture_path (fixture, "from-command-line.jsonl");
  g_autofree char *contents = NULL;
  g_autofree char *path_option = g_strdup_printf ("recorder.path=%s", from_command_line);
  const char * const config_args[] = { "--config", config, input, NULL };
  const char * const option_args[] = { "--config", config, "--option", path_option, input, NULL };
  const char * const plugin_args[] = { "--config", config, "--plugin=console", input, NULL };
  g_autoptr (HostRun) config_run = NULL;
  g_autoptr (HostRun) option_run = NULL;
  g_autoptr (HostRun) plugin_run = NULL;
  g_autoptr (GPtrArray) records = NULL;

  contents = g_strdup_printf ("[host]\nplugin=recorder\nflush-interval=20\n\n"
                              "[plugin recorder]\npath=%s\n", from_config);
  write_file (config, contents);

  /* The configuration alone: only the recorder runs, into its path. */
  config_run = run_host (fixture, NULL, config_args);
  g_assert_cmpint (config_run->exit_status, ==, 0);
  g_assert_cmpstr (config_run->out, ==, "");
  records = read_recording (from_config);
  g_assert_cmpuint (records->len, >, 0);
  g_assert_no_errno (g_unlink (from_config));

  /* --option wins over the [plugin recorder] group. */
  option_run = run_host (fixture, NULL, option_args);
  g_assert_cmpint (option_run->exit_status, ==, 0);
  g_assert_true (g_file_test (from_command_line, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (from_config, G_FILE_TEST_EXISTS));

  /* --plugin wins over the [host] plugin list. */
  plugin_run = run_host (fixture, NULL, plugin_args);
  g_assert_cmpint (plugin_run->exit_status, ==, 0);
  g_assert_cmpstr (plugin_run->out, ==, ANTHROPIC_EXAMPLE_TEXT "\n");
  g_assert_false (g_file_test (from_config, G_FILE_TEST_EXISTS));
}

static void
test_config_default_location (Fixture       *fixture,
                              gconstpointer  user_data)
{
  g_autofree char *input = example_path ("anthropic-hello.sse");
  g_autofree char *directory = g_build_filename (fixture->config_home, "jarvis-events", NULL);
  g_autofree char *config = g_build_filename (directory, "host.conf", NULL);
  const char * const args[] = { input, NULL };
  g_autoptr (HostRun) run = NULL;

  g_assert_no_errno (g_mkdir (directory, 0700));
  write_file (config, "[host]\nplugin=console\n\n[plugin console]\nmarks=true\nunused=1\n");
  run = run_host (fixture, NULL, args);

  g_assert_cmpint (run->exit_status, ==, 0);
  g_assert_cmpstr (run->out, ==, ANTHROPIC_EXAMPLE_TEXT "\n");

  /* A broken default file is reported like an explicit one. */
  write_file (config, "[host\n");
  {
    g_autoptr (HostRun) broken_run = run_host (fixture, NULL, args);

    g_assert_cmpint (broken_run->exit_status, ==, 2);
    g_assert_nonnull (strstr (broken_run->err, config));
  }
}

static void
test_config_wrong_types (Fixture       *fixture,
                         gconstpointer  user_data)
{
  g_autofree char *input = example_path ("anthropic-hello.sse");
  g_autofree char *config = fixture_path (fixture, "host.conf");
  const struct
  {
    const char *contents;
    const char *expected;
  } cases[] = {
    { "[host]\nflush-interval=soon\n", "Invalid value 'soon' for the key 'flush-interval' in the [host] group of " },
    { "[host]\nverbose=maybe\n", "Invalid value 'maybe' for the key 'verbose' in the [host] group of " },
    { "[host]\nflush-intervall=20\n", "Unknown key 'flush-intervall' in the [host] group of " },
    { "[host]\nread-size=0\n", "Invalid value '0' for the key 'read-size' in the [host] group of " },
    { "[host]\nflush-bytes=abc\n", "Invalid value 'abc' for the key 'flush-bytes' in the [host] group of " },
    { "[host]\nformat=xml\n", "Invalid value 'xml' for the key 'format' in the [host] group of " },
  };
  const char * const args[] = { "--config", config, input, NULL };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (HostRun) run = NULL;
      g_autofree char *expected = g_strconcat (cases[i].expected, config, NULL);

      write_file (config, cases[i].contents);
      run = run_host (fixture, NULL, args);

      g_test_message ("case %u: %s", i, cases[i].contents);
      g_assert_cmpint (run->exit_status, ==, 2);
      g_assert_nonnull (strstr (run->err, expected));

      /* The user passed no option, so the message names none. */
      g_assert_null (strstr (run->err, "for --"));
    }
}

/* The error for a bad value in the default file names that file, which the
 * user may not know is read at all, and tells how to fix it. */
static void
test_config_default_bad_value (Fixture       *fixture,
                               gconstpointer  user_data)
{
  g_autofree char *input = example_path ("anthropic-hello.sse");
  g_autofree char *directory = g_build_filename (fixture->config_home, "jarvis-events", NULL);
  g_autofree char *config = g_build_filename (directory, "host.conf", NULL);
  g_autofree char *expected = NULL;
  const char * const args[] = { input, NULL };
  const char * const override_args[] = { "--flush-interval=20", input, NULL };
  const char * const bad_option_args[] = { "--flush-interval=20", "--flush-bytes=0", input, NULL };
  g_autoptr (HostRun) run = NULL;
  g_autoptr (HostRun) override_run = NULL;
  g_autoptr (HostRun) bad_option_run = NULL;

  g_assert_no_errno (g_mkdir (directory, 0700));
  write_file (config, "[host]\nflush-interval=abc\n");

  run = run_host (fixture, NULL, args);
  expected = g_strdup_printf ("Invalid value 'abc' for the key 'flush-interval' in the [host] "
                              "group of %s: expected a whole number from 1 to 3600000; "
                              "correct the value or remove the key", config);
  g_assert_cmpint (run->exit_status, ==, 2);
  g_assert_cmpstr (run->out, ==, "");
  g_assert_nonnull (strstr (run->err, expected));
  g_assert_null (strstr (run->err, "--flush-interval"));

  /* The command line wins, so the bad value is never read. */
  override_run = run_host (fixture, NULL, override_args);
  g_assert_cmpint (override_run->exit_status, ==, 0);
  g_assert_cmpstr (override_run->out, ==, ANTHROPIC_EXAMPLE_TEXT "\n");

  /* A bad value given on the command line names the option. */
  bad_option_run = run_host (fixture, NULL, bad_option_args);
  g_assert_cmpint (bad_option_run->exit_status, ==, 2);
  g_assert_nonnull (strstr (bad_option_run->err, "Invalid value '0' for --flush-bytes"));
}

static void
test_plugin_option_errors (Fixture       *fixture,
                           gconstpointer  user_data)
{
  g_autofree char *input = example_path ("anthropic-hello.sse");
  const char * const marks_args[] = { "--option=console.marks=maybe", input, NULL };
  const char * const recorder_args[] = { "--plugin=recorder", input, NULL };
  g_autoptr (HostRun) marks_run = run_host (fixture, NULL, marks_args);
  g_autoptr (HostRun) recorder_run = run_host (fixture, NULL, recorder_args);

  /* A plugin that fails to start never gets to see events. */
  g_assert_cmpint (marks_run->exit_status, ==, 1);
  g_assert_nonnull (strstr (marks_run->err, "marks"));
  g_assert_nonnull (strstr (marks_run->err, "maybe"));

  g_assert_cmpint (recorder_run->exit_status, ==, 1);
  g_assert_nonnull (strstr (recorder_run->err, "'path'"));
}

/* Only a plugin that was explicitly requested makes startup fail, and it
 * does so before any input is read. A plugin that fails at run time lets
 * the run finish. */
static void
test_plugin_failure_rule (Fixture       *fixture,
                          gconstpointer  user_data)
{
  g_autofree char *input = example_path ("supersede.events");
  const char * const init_args[] = { "--plugin=console", "--plugin=recorder", input, NULL };
  const char * const missing_args[] = { "--plugin=console", "--plugin=nosuch", input, NULL };
  const char * const runtime_args[] = { "--plugin=console", "--plugin=recorder",
                                        "--option=recorder.path=/dev/full", input, NULL };
  g_autoptr (HostRun) init_run = run_host (fixture, NULL, init_args);
  g_autoptr (HostRun) missing_run = run_host (fixture, NULL, missing_args);
  g_autoptr (HostRun) runtime_run = NULL;

  /* The console did load, but no event reaches it. */
  g_assert_cmpint (init_run->exit_status, ==, 1);
  g_assert_cmpstr (init_run->out, ==, "");
  g_assert_nonnull (strstr (init_run->err, "Could not load the plugin 'recorder'"));

  g_assert_cmpint (missing_run->exit_status, ==, 1);
  g_assert_cmpstr (missing_run->out, ==, "");
  g_assert_nonnull (strstr (missing_run->err, "Could not load the plugin 'nosuch'"));

  if (!g_file_test ("/dev/full", G_FILE_TEST_EXISTS))
    {
      g_test_skip ("/dev/full is missing, so no write can fail at run time");
      return;
    }

  /* Every write to /dev/full fails, so each recorder call returns an error
   * while the console still writes the text of both requests. */
  runtime_run = run_host (fixture, NULL, runtime_args);
  g_assert_cmpint (runtime_run->exit_status, ==, 1);
  g_assert_cmpstr (runtime_run->out, ==, FIRST_ANSWER_TEXT "\n" SECOND_ANSWER_TEXT "\n");
  g_assert_nonnull (strstr (runtime_run->err, "callback_task_failed request_id=answer-2 plugin=recorder"));
}

static void
test_recorder_unwritable_path (Fixture       *fixture,
                               gconstpointer  user_data)
{
  g_autofree char *input = example_path ("anthropic-hello.sse");
  g_autofree char *recording = fixture_path (fixture, "missing-directory/recording.jsonl");
  g_autofree char *path_option = g_strdup_printf ("recorder.path=%s", recording);
  const char * const args[] = { "--plugin=recorder", "--option", path_option, input, NULL };
  g_autoptr (HostRun) run = run_host (fixture, NULL, args);

  g_assert_cmpint (run->exit_status, ==, 1);
  g_assert_nonnull (strstr (run->err, recording));
  g_assert_false (g_file_test (recording, G_FILE_TEST_EXISTS));
}

/* The wordcount plugin of docs/plugin-authoring.md, built from the page. */

static void
test_doc_wordcount_split_words (Fixture       *fixture,
                                gconstpointer  user_data)
{
  g_autofree char *input = example_path ("openai-multibyte.sse");
  g_autofree char *doc_plugins = g_test_build_filename (G_TEST_BUILT, "host", NULL);
  const char * const whole_args[] = { "--plugin-dir", doc_plugins, "--plugin=wordcount", input, NULL };
  const char * const split_args[] = { "--plugin-dir", doc_plugins, "--plugin=wordcount",
                                      "--read-size=1", "--flush-bytes=3", input, NULL };
  g_autoptr (HostRun) whole_run = run_host (fixture, NULL, whole_args);
  g_autoptr (HostRun) split_run = run_host (fixture, NULL, split_args);
  const char *expected = "request chatcmpl-example-multibyte: 10 words\n";

  /* The example text has ten words, whether it arrives in one flush or
   * in pieces of three bytes that split most words. */
  g_assert_cmpint (whole_run->exit_status, ==, 0);
  g_assert_true (g_str_has_suffix (whole_run->err, expected));

  g_assert_cmpint (split_run->exit_status, ==, 0);
  g_assert_true (g_str_has_suffix (split_run->err, expected));
}

/* The recorder lines shown in docs/host.md must be real: each one is a
 * line of the recording of the command that the page names. */
static void
test_doc_recorder_example (Fixture       *fixture,
                           gconstpointer  user_data)
{
  g_autofree char *input = example_path ("supersede.events");
  g_autofree char *page_path = g_test_build_filename (G_TEST_DIST, "..", "docs", "host.md", NULL);
  g_autofree char *recording = fixture_path (fixture, "rec.jsonl");
  g_autofree char *path_option = g_strdup_printf ("recorder.path=%s", recording);
  const char * const args[] = { "--plugin=recorder", "--option", path_option, input, NULL };
  g_autoptr (HostRun) run = run_host (fixture, NULL, args);
  g_autofree char *page = read_file (page_path);
  g_autofree char *recorded = NULL;
  g_auto (GStrv) recorded_lines = NULL;
  g_autofree char *block_text = NULL;
  g_auto (GStrv) block = NULL;
  const char *section;
  const char *start;
  const char *end;
  guint n_checked = 0;

  g_assert_cmpint (run->exit_status, ==, 0);
  recorded = read_file (recording);
  recorded_lines = g_strsplit (recorded, "\n", -1);

  section = strstr (page, "### recorder\n");
  g_assert_nonnull (section);
  start = strstr (section, "```json\n");
  g_assert_nonnull (start);
  start += strlen ("```json\n");
  end = strstr (start, "```\n");
  g_assert_nonnull (end);

  block_text = g_strndup (start, end - start);
  block = g_strsplit (block_text, "\n", -1);
  for (guint i = 0; block[i] != NULL; i++)
    {
      if (*block[i] == '\0')
        continue;

      g_test_message ("documented line: %s", block[i]);
      g_assert_true (g_strv_contains ((const char * const *) recorded_lines, block[i]));
      n_checked++;
    }

  g_assert_cmpuint (n_checked, ==, 4);
}

/* Console rendering. */

static void
test_console_marks (Fixture       *fixture,
                    gconstpointer  user_data)
{
  g_autofree char *input = example_path ("supersede.events");
  const char * const args[] = { "--option=console.marks=true", input, NULL };
  g_autoptr (HostRun) run = run_host (fixture, NULL, args);

  g_assert_cmpint (run->exit_status, ==, 0);
  g_assert_nonnull (strstr (run->out, FIRST_ANSWER_TEXT "\n\033[7m[answer-1 superseded]\033[0m\n"));
  g_assert_null (strstr (run->out, "[answer-2"));
}

static void
test_console_failed_mark (Fixture       *fixture,
                          gconstpointer  user_data)
{
  g_autofree char *input = fixture_path (fixture, "failed.events");
  const char * const args[] = { "--format=events", "--option=console.marks=true", input, NULL };
  g_autoptr (HostRun) run = NULL;

  write_file (input,
              "{\"type\":\"agent.stream.start\",\"request_id\":\"r1\"}\n"
              "{\"type\":\"agent.stream.delta\",\"request_id\":\"r1\",\"text\":\"partial\"}\n"
              "{\"type\":\"agent.stream.error\",\"request_id\":\"r1\",\"text\":\"overloaded\"}\n");
  run = run_host (fixture, NULL, args);

  /* A failed model stream is data, not an input error. */
  g_assert_cmpint (run->exit_status, ==, 0);
  g_assert_cmpstr (run->out, ==, "partial\n\033[7m[r1 failed]\033[0m\n");
}

/* An in-band provider error fails the request, and its text is printed
 * even without -v, because no plugin is bound to show it. */
static void
test_failed_request_warning (Fixture       *fixture,
                             gconstpointer  user_data)
{
  g_autofree char *input = fixture_path (fixture, "overloaded.sse");
  g_autofree char *stats_path = fixture_path (fixture, "stats.json");
  const char * const args[] = { "--stats", stats_path, input, NULL };
  g_autoptr (HostRun) run = NULL;
  g_autoptr (JsonObject) stats = NULL;

  write_file (input,
              "event: message_start\n"
              "data: {\"type\": \"message_start\", \"message\": {\"id\": \"msg_overloaded\", "
              "\"type\": \"message\", \"role\": \"assistant\", \"content\": [], "
              "\"model\": \"example-model\", \"stop_reason\": null, "
              "\"usage\": {\"input_tokens\": 3, \"output_tokens\": 1}}}\n\n"
              "event: content_block_start\n"
              "data: {\"type\": \"content_block_start\", \"index\": 0, "
              "\"content_block\": {\"type\": \"text\", \"text\": \"\"}}\n\n"
              "event: content_block_delta\n"
              "data: {\"type\": \"content_block_delta\", \"index\": 0, "
              "\"delta\": {\"type\": \"text_delta\", \"text\": \"Partial\"}}\n\n"
              "event: error\n"
              "data: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", "
              "\"message\": \"Overloaded \\u001b[2J\\u00fcber\"}}\n\n");
  run = run_host (fixture, NULL, args);

  /* A failed model stream is data, not an input error. */
  g_assert_cmpint (run->exit_status, ==, 0);
  g_assert_cmpstr (run->out, ==, "Partial\n");
  g_assert_nonnull (strstr (run->err, "jarvis-host: warning: request 'msg_overloaded' failed: "
                                      "Overloaded \\033[2Jüber\n"));
  g_assert_null (strstr (run->err, "\033"));

  stats = read_stats (stats_path);
  g_assert_cmpint (json_object_get_int_member (stats, "requests_failed"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (stats, "input_errors"), ==, 0);
}

/* A request that completes normally prints no warning. */
static void
test_completed_request_quiet (Fixture       *fixture,
                              gconstpointer  user_data)
{
  g_autofree char *input = example_path ("anthropic-hello.sse");
  const char * const args[] = { input, NULL };
  g_autoptr (HostRun) run = run_host (fixture, NULL, args);

  g_assert_cmpint (run->exit_status, ==, 0);
  g_assert_cmpstr (run->err, ==, "");
}

static void
test_console_choices (Fixture       *fixture,
                      gconstpointer  user_data)
{
  g_autofree char *input = fixture_path (fixture, "choices.events");
  const char * const args[] = { "--format=events", input, NULL };
  g_autoptr (HostRun) run = NULL;

  write_file (input,
              "{\"type\":\"agent.stream.start\",\"request_id\":\"r1\"}\n"
              "{\"type\":\"agent.stream.delta\",\"request_id\":\"r1\",\"text\":\"zero\"}\n"
              "{\"type\":\"agent.stream.delta\",\"request_id\":\"r1\",\"text\":\"one\",\"choice\":1}\n"
              "{\"type\":\"agent.stream.delta\",\"request_id\":\"r1\",\"text\":\" 0\",\"choice\":0}\n"
              "{\"type\":\"agent.stream.delta\",\"request_id\":\"r1\",\"text\":\" 1\",\"choice\":1}\n"
              "{\"type\":\"agent.stream.end\",\"request_id\":\"r1\"}\n");
  run = run_host (fixture, NULL, args);

  g_assert_cmpint (run->exit_status, ==, 0);
  g_assert_cmpstr (run->out, ==, "zero 0\n--- r1 choice 1 ---\none 1\n");
}

static void
test_console_newline (Fixture       *fixture,
                      gconstpointer  user_data)
{
  g_autofree char *input = fixture_path (fixture, "newline.events");
  const char * const args[] = { "--format=events", input, NULL };
  g_autoptr (HostRun) run = NULL;

  /* A request whose text ends with a newline gets no second one, and a
   * request without text prints nothing. */
  write_file (input,
              "{\"type\":\"agent.stream.start\",\"request_id\":\"r1\",\"session_id\":\"a\"}\n"
              "{\"type\":\"agent.stream.delta\",\"request_id\":\"r1\",\"text\":\"line\\n\"}\n"
              "{\"type\":\"agent.stream.end\",\"request_id\":\"r1\"}\n"
              "{\"type\":\"agent.stream.start\",\"request_id\":\"r2\",\"session_id\":\"b\"}\n"
              "{\"type\":\"agent.stream.end\",\"request_id\":\"r2\"}\n");
  run = run_host (fixture, NULL, args);

  g_assert_cmpint (run->exit_status, ==, 0);
  g_assert_cmpstr (run->out, ==, "line\n");
}

/* Logs. */

static gssize
find_line (char       **lines,
           gsize        start,
           const char  *word,
           const char  *request_id)
{
  g_autofree char *id_field = request_id != NULL ? g_strdup_printf ("request_id=%s", request_id) : NULL;

  for (gsize i = start; lines[i] != NULL; i++)
    {
      const char *id;

      if (strstr (lines[i], word) == NULL)
        continue;

      if (id_field == NULL)
        return i;

      id = strstr (lines[i], id_field);
      if (id != NULL && (id[strlen (id_field)] == '\0' || g_ascii_isspace (id[strlen (id_field)])))
        return i;
    }

  return -1;
}

static void
test_supersede_log_order (Fixture       *fixture,
                          gconstpointer  user_data)
{
  g_autofree char *input = example_path ("supersede.events");
  g_autofree char *recording = fixture_path (fixture, "recording.jsonl");
  g_autofree char *path_option = g_strdup_printf ("recorder.path=%s", recording);
  g_autofree char *stats_path = fixture_path (fixture, "stats.json");
  const char * const args[] = {
    "-v", "--plugin=console", "--plugin=recorder", "--option", path_option,
    "--stats", stats_path, input, NULL
  };
  g_autoptr (HostRun) run = run_host (fixture, NULL, args);
  g_autoptr (JsonObject) stats = NULL;
  g_auto (GStrv) lines = NULL;
  gssize cancelled, callbacks, complete, finished, created;

  g_assert_cmpint (run->exit_status, ==, 0);

  /* The superseded request counts as cancelled. */
  stats = read_stats (stats_path);
  assert_stats_invariants (stats);
  g_assert_cmpint (json_object_get_int_member (stats, "requests"), ==, 2);
  g_assert_cmpint (json_object_get_int_member (stats, "requests_cancelled"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (stats, "requests_completed"), ==, 1);

  /* Logs never reach stdout, which carries only the console's text. */
  g_assert_cmpstr (run->out, ==, FIRST_ANSWER_TEXT "\n" SECOND_ANSWER_TEXT "\n");

  lines = g_strsplit (run->err, "\n", -1);
  cancelled = find_line (lines, 0, "stream_cancelled", "answer-1");
  g_assert_cmpint (cancelled, >=, 0);
  callbacks = find_line (lines, cancelled, "cleanup_callback_tasks", "answer-1");
  g_assert_cmpint (callbacks, >, cancelled);
  complete = find_line (lines, callbacks, "cleanup_request_complete", "answer-1");
  g_assert_cmpint (complete, >, callbacks);
  finished = find_line (lines, complete, "prev_stream_finished_cleanly", NULL);
  g_assert_cmpint (finished, >, complete);

  /* The new request's first handler call comes only after that. */
  created = find_line (lines, 0, "callback_task_created", "answer-2");
  g_assert_cmpint (created, >, finished);
}

static void
test_quiet_without_verbose (Fixture       *fixture,
                            gconstpointer  user_data)
{
  g_autofree char *input = example_path ("supersede.events");
  const char * const args[] = { input, NULL };
  g_autoptr (HostRun) run = run_host (fixture, NULL, args);

  g_assert_cmpint (run->exit_status, ==, 0);
  g_assert_null (strstr (run->err, "stream_cancelled"));
  g_assert_null (strstr (run->err, "callback_task_created"));
}

/* Signals. */

typedef struct
{
  GString *out;
  gboolean got_text;
  gboolean timed_out;
} SignalState;

static gboolean
on_watchdog (gpointer user_data)
{
  SignalState *state = user_data;

  state->timed_out = TRUE;
  return G_SOURCE_REMOVE;
}

static void
on_output (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  SignalState *state = user_data;
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GError) error = NULL;

  bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);
  g_assert_no_error (error);

  g_string_append_len (state->out, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  state->got_text = TRUE;
}

static void
test_signal_mid_stream (Fixture       *fixture,
                        gconstpointer  user_data)
{
  int signal_number = GPOINTER_TO_INT (user_data);
  g_autofree char *recording = fixture_path (fixture, "recording.jsonl");
  g_autofree char *stats_path = fixture_path (fixture, "stats.json");
  g_autofree char *path_option = g_strdup_printf ("recorder.path=%s", recording);
  const char * const args[] = {
    "--format=events", "--plugin=console", "--plugin=recorder", "--option", path_option,
    "--stats", stats_path, NULL
  };
  const char *first_events =
    "{\"type\":\"agent.stream.start\",\"request_id\":\"r1\"}\n"
    "{\"type\":\"agent.stream.delta\",\"request_id\":\"r1\",\"text\":\"Hello\"}\n";
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GSubprocess) process = NULL;
  g_autoptr (GPtrArray) argv = host_argv (args);
  g_autoptr (GPtrArray) records = NULL;
  g_autoptr (JsonObject) stats = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  GSource *watchdog;
  SignalState state = { g_string_new (NULL), FALSE, FALSE };

  launcher = new_launcher (fixture, G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);

  /* Stdin stays open, so the host is still reading when the signal comes. */
  g_output_stream_write_all (g_subprocess_get_stdin_pipe (process), first_events,
                             strlen (first_events), NULL, NULL, &error);
  g_assert_no_error (error);

  watchdog = g_timeout_source_new_seconds (20);
  g_source_set_callback (watchdog, on_watchdog, &state, NULL);
  g_source_attach (watchdog, NULL);

  /* The first token of a request is flushed at once, so the console
   * prints it while the stream is still open. */
  g_input_stream_read_bytes_async (g_subprocess_get_stdout_pipe (process), 4096,
                                   G_PRIORITY_DEFAULT, NULL, on_output, &state);
  while (!state.got_text && !state.timed_out)
    g_main_context_iteration (NULL, TRUE);

  g_assert_false (state.timed_out);
  g_assert_cmpstr (state.out->str, ==, "Hello");

  g_subprocess_send_signal (process, signal_number);
  g_subprocess_wait (process, NULL, &error);
  g_assert_no_error (error);
  g_source_destroy (watchdog);
  g_source_unref (watchdog);
  g_string_free (state.out, TRUE);

  g_assert_true (g_subprocess_get_if_exited (process));
  g_assert_cmpint (g_subprocess_get_exit_status (process), ==, 0);

  /* The recording is complete: the request's completion is its last line. */
  records = read_recording (recording);
  text = recorded_flush_text (records, "r1");
  g_assert_cmpstr (text, ==, "Hello");
  g_assert_cmpstr (recorded_outcome (records, "r1"), ==, "cancelled");
  g_assert_cmpstr (json_object_get_string_member (g_ptr_array_index (records, records->len - 1), "type"),
                   ==, "agent.stream.complete");

  stats = read_stats (stats_path);
  assert_stats_invariants (stats);
  g_assert_cmpint (json_object_get_int_member (stats, "requests_cancelled"), ==, 1);
}

typedef struct
{
  GDataInputStream *lines;
  GString *seen;
  gboolean found;
  gboolean ended;
  guint reads_done;
  const char *wanted;
} StderrWatch;

static void
on_stderr_line (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  StderrWatch *watch = user_data;
  g_autoptr (GError) error = NULL;
  g_autofree char *line = NULL;

  line = g_data_input_stream_read_line_finish_utf8 (watch->lines, result, NULL, &error);
  g_assert_no_error (error);
  watch->reads_done++;

  if (line == NULL)
    {
      watch->ended = TRUE;
      return;
    }

  g_string_append_printf (watch->seen, "%s\n", line);
  if (strstr (line, watch->wanted) != NULL)
    watch->found = TRUE;
}

/* Reads stderr lines until one contains @wanted, failing on end of stream
 * or after the watchdog's 20 seconds. */
static void
wait_for_stderr (StderrWatch *watch,
                 const char  *wanted)
{
  SignalState timer = { NULL, FALSE, FALSE };
  GSource *watchdog = g_timeout_source_new_seconds (20);

  g_source_set_callback (watchdog, on_watchdog, &timer, NULL);
  g_source_attach (watchdog, NULL);

  watch->wanted = wanted;
  watch->found = FALSE;

  while (!watch->found && !watch->ended && !timer.timed_out)
    {
      guint reads_before = watch->reads_done;

      g_data_input_stream_read_line_async (watch->lines, G_PRIORITY_DEFAULT, NULL,
                                           on_stderr_line, watch);
      while (watch->reads_done == reads_before && !timer.timed_out)
        g_main_context_iteration (NULL, TRUE);
    }

  g_source_destroy (watchdog);
  g_source_unref (watchdog);

  if (!watch->found)
    g_test_message ("stderr so far:\n%s", watch->seen->str);

  g_assert_false (timer.timed_out);
  g_assert_true (watch->found);
}

static void
test_second_signal_exits_at_once (Fixture       *fixture,
                                  gconstpointer  user_data)
{
  g_autofree char *fixture_plugins = g_test_build_filename (G_TEST_BUILT, "plugins", NULL);
  const char * const args[] = {
    "-v", "--format=events", "--plugin-dir", fixture_plugins, "--plugin=never_returns", NULL
  };
  const char *events =
    "{\"type\":\"agent.stream.start\",\"request_id\":\"r1\"}\n"
    "{\"type\":\"agent.stream.delta\",\"request_id\":\"r1\",\"text\":\"Hello\"}\n";
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GSubprocess) process = NULL;
  g_autoptr (GPtrArray) argv = host_argv (args);
  g_autoptr (GError) error = NULL;
  StderrWatch watch = { NULL, g_string_new (NULL), FALSE, FALSE, 0, NULL };

  launcher = new_launcher (fixture, G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
                                    G_SUBPROCESS_FLAGS_STDERR_PIPE);
  process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);
  watch.lines = g_data_input_stream_new (g_subprocess_get_stderr_pipe (process));

  g_output_stream_write_all (g_subprocess_get_stdin_pipe (process), events, strlen (events),
                             NULL, NULL, &error);
  g_assert_no_error (error);

  /* The plugin holds the delta's call and never returns it, so after the
   * first signal the close waits for the drain deadline. */
  wait_for_stderr (&watch, "callback_task_created request_id=r1 event=agent.stream.delta");
  g_subprocess_send_signal (process, SIGTERM);
  wait_for_stderr (&watch, "bus_closing");
  g_subprocess_send_signal (process, SIGTERM);

  g_subprocess_wait (process, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (process));
  g_assert_cmpint (g_subprocess_get_exit_status (process), ==, 128 + SIGTERM);
  g_assert_null (strstr (watch.seen->str, "bus_closed"));

  g_object_unref (watch.lines);
  g_string_free (watch.seen, TRUE);
}

int
main (int    argc,
      char **argv)
{
  g_autofree char *host = NULL;

  g_test_init (&argc, &argv, NULL);

  host = host_path ();
  if (!g_file_test (host, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_message ("jarvis-host is not built at %s", host);
      return 77;
    }

#define ADD(path, func) \
  g_test_add ("/jarvis/host/" path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)

  ADD ("command-line/version", test_version);
  ADD ("command-line/help", test_help);
  ADD ("command-line/list-plugins", test_list_plugins);
  ADD ("command-line/list-plugins-unset-fields", test_list_plugins_unset_fields);
  ADD ("command-line/list-plugins-none-found", test_list_plugins_none_found);
  ADD ("command-line/untrusted-warning", test_untrusted_warning);
  ADD ("command-line/usage-errors", test_usage_errors);
  ADD ("format/openai", test_format_openai);
  ADD ("format/anthropic", test_format_anthropic);
  ADD ("format/ollama", test_format_ollama);
  ADD ("format/events", test_format_events);
  ADD ("stats/clean-run-cancels-nothing", test_clean_run_cancels_nothing);
  ADD ("input/slow-plugin-sets-pace", test_slow_plugin_sets_pace);
  ADD ("stats/detached-call-fails-run", test_detached_call_fails_run);
  ADD ("input/stdin", test_stdin);
  ADD ("input/several", test_several_inputs);
  ADD ("input/flush-bytes", test_flush_bytes_reach_bus);
  ADD ("input/stream-id-wins", test_stream_id_wins);
  ADD ("input/bad-lines", test_bad_lines);
  ADD ("input/line-too-long", test_line_too_long);
  ADD ("input/missing-file", test_missing_input);
  ADD ("input/reused-request-id", test_reused_request_id);
  ADD ("input/request-and-session-ids", test_request_and_session_ids);
  ADD ("config/precedence", test_config_precedence);
  ADD ("config/default-location", test_config_default_location);
  ADD ("config/wrong-types", test_config_wrong_types);
  ADD ("config/default-bad-value", test_config_default_bad_value);
  ADD ("config/plugin-option-errors", test_plugin_option_errors);
  ADD ("config/recorder-unwritable-path", test_recorder_unwritable_path);
  ADD ("plugin/failure-rule", test_plugin_failure_rule);
  ADD ("plugin/allow-untrusted", test_allow_untrusted_loads);
  ADD ("plugin/default-missing", test_default_plugin_missing);
  ADD ("stats/startup-failure", test_stats_on_startup_failure);
  ADD ("live/api-key-not-written", test_api_key_not_written);
  ADD ("doc-plugin/wordcount-split-words", test_doc_wordcount_split_words);
  ADD ("doc/recorder-example", test_doc_recorder_example);
  ADD ("console/marks", test_console_marks);
  ADD ("console/failed-mark", test_console_failed_mark);
  ADD ("console/choices", test_console_choices);
  ADD ("outcome/failed-warning", test_failed_request_warning);
  ADD ("outcome/completed-quiet", test_completed_request_quiet);
  ADD ("console/newline", test_console_newline);
  ADD ("log/supersede-order", test_supersede_log_order);
  ADD ("log/quiet-without-verbose", test_quiet_without_verbose);
  g_test_add ("/jarvis/host/signal/sigterm-mid-stream", Fixture, GINT_TO_POINTER (SIGTERM),
              fixture_set_up, test_signal_mid_stream, fixture_tear_down);
  g_test_add ("/jarvis/host/signal/sigint-mid-stream", Fixture, GINT_TO_POINTER (SIGINT),
              fixture_set_up, test_signal_mid_stream, fixture_tear_down);
  ADD ("signal/second-signal-exits-at-once", test_second_signal_exits_at_once);

#undef ADD

  return g_test_run ();
}
