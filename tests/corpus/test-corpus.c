/* Runs jarvis-host with the recorder on every recorded model stream of the
 * corpus and checks the recording against the answer text that this test
 * extracts from the stream itself.
 *
 * The extraction here is deliberately simple and separate from the host's
 * decoders: it knows only where each provider puts its answer text. The
 * corpus files use LF line ends and one `data:` line per SSE event, which
 * is all this extraction handles.
 */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

/* Read sizes that split the stream inside lines, JSON tokens and UTF-8
 * sequences, and one that reads most files in a few reads. */
static const guint read_sizes[] = { 1, 7, 4096 };

/* Answer text per choice index. */
typedef GPtrArray Answers;

static GString *
answer_for_choice (Answers *answers,
                   guint    choice)
{
  while (answers->len <= choice)
    g_ptr_array_add (answers, g_string_new (NULL));

  return g_ptr_array_index (answers, choice);
}

static void
free_string (gpointer data)
{
  g_string_free (data, TRUE);
}

static Answers *
answers_new (void)
{
  return g_ptr_array_new_with_free_func (free_string);
}

static void
append_member (Answers    *answers,
               guint       choice,
               JsonObject *object,
               const char *member)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, member) : NULL;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return;

  g_string_append (answer_for_choice (answers, choice), json_node_get_string (node));
}

/* Adds the answer text that one chunk of any provider carries. */
static void
extract_chunk (Answers    *answers,
               JsonObject *chunk)
{
  JsonArray *choices = NULL;
  JsonObject *delta;

  if (json_object_has_member (chunk, "choices") &&
      JSON_NODE_HOLDS_ARRAY (json_object_get_member (chunk, "choices")))
    choices = json_object_get_array_member (chunk, "choices");

  /* OpenAI and compatible: text in choices[].delta.content (or a refusal),
   * or in choices[].text for chunks without a delta. */
  for (guint i = 0; choices != NULL && i < json_array_get_length (choices); i++)
    {
      JsonObject *choice = json_array_get_object_element (choices, i);
      guint index = json_object_get_int_member_with_default (choice, "index", 0);

      if (json_object_has_member (choice, "delta") &&
          JSON_NODE_HOLDS_OBJECT (json_object_get_member (choice, "delta")))
        {
          delta = json_object_get_object_member (choice, "delta");
          append_member (answers, index, delta, "content");
          append_member (answers, index, delta, "refusal");
        }
      else
        {
          append_member (answers, index, choice, "text");
        }
    }

  /* Anthropic: text_delta inside content_block_delta events. */
  if (g_strcmp0 (json_object_get_string_member_with_default (chunk, "type", ""), "content_block_delta") == 0)
    {
      delta = json_object_get_object_member (chunk, "delta");

      if (g_strcmp0 (json_object_get_string_member_with_default (delta, "type", ""), "text_delta") == 0)
        append_member (answers, 0, delta, "text");
    }

  /* Ollama: message.content for /api/chat, response for /api/generate. */
  if (json_object_has_member (chunk, "message") &&
      JSON_NODE_HOLDS_OBJECT (json_object_get_member (chunk, "message")))
    append_member (answers, 0, json_object_get_object_member (chunk, "message"), "content");

  append_member (answers, 0, chunk, "response");
}

static Answers *
extract_answers (const char *path)
{
  g_autofree char *contents = NULL;
  g_auto (GStrv) lines = NULL;
  g_autoptr (GError) error = NULL;
  gboolean sse = g_str_has_suffix (path, ".sse");
  Answers *answers = answers_new ();

  g_file_get_contents (path, &contents, NULL, &error);
  g_assert_no_error (error);
  lines = g_strsplit (contents, "\n", -1);

  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_autoptr (JsonParser) parser = json_parser_new ();
      const char *json = lines[i];
      JsonNode *root;

      if (sse)
        {
          if (!g_str_has_prefix (json, "data:"))
            continue;

          json += strlen ("data:");
          if (*json == ' ')
            json++;
        }

      if (*json == '\0' || strcmp (json, "[DONE]") == 0)
        continue;

      if (!json_parser_load_from_data (parser, json, -1, NULL))
        continue;

      root = json_parser_get_root (parser);
      if (JSON_NODE_HOLDS_OBJECT (root))
        extract_chunk (answers, json_node_get_object (root));
    }

  return answers;
}

/* What one host run produced. */
typedef struct
{
  Answers *flushed;             /* flush text per choice */
  GString *events;              /* every non-flush record, one per line */
  JsonObject *stats;
} Result;

static void
result_free (Result *result)
{
  g_ptr_array_unref (result->flushed);
  g_string_free (result->events, TRUE);
  json_object_unref (result->stats);
  g_free (result);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Result, result_free)

static JsonObject *
parse_object (const char *text)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  JsonNode *root;

  json_parser_load_from_data (parser, text, -1, &error);
  g_assert_no_error (error);

  root = json_parser_get_root (parser);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (root));

  return json_object_ref (json_node_get_object (root));
}

/* Reads the recording, checking that every request completes once. */
static void
read_recording (const char *path,
                Result     *result)
{
  g_autoptr (GHashTable) completes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GHashTable) requests = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *contents = NULL;
  g_auto (GStrv) lines = NULL;
  GHashTableIter iter;
  gpointer key;

  g_file_get_contents (path, &contents, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_suffix (contents, "\n"));
  contents[strlen (contents) - 1] = '\0';
  lines = g_strsplit (contents, "\n", -1);

  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_autoptr (JsonObject) record = parse_object (lines[i]);
      const char *type = json_object_get_string_member (record, "type");
      const char *request_id = json_object_get_string_member (record, "request_id");
      guint choice = json_object_get_int_member_with_default (record, "choice", 0);

      g_hash_table_add (requests, g_strdup (request_id));

      if (g_strcmp0 (type, "agent.stream.flush") == 0)
        {
          g_string_append (answer_for_choice (result->flushed, choice),
                           json_object_get_string_member (record, "text"));
          continue;
        }

      if (g_strcmp0 (type, "agent.stream.complete") == 0)
        {
          guint count = GPOINTER_TO_UINT (g_hash_table_lookup (completes, request_id));

          g_hash_table_insert (completes, g_strdup (request_id), GUINT_TO_POINTER (count + 1));
        }

      g_string_append_printf (result->events, "%s %s %u %s %s\n", type, request_id, choice,
                              json_object_get_string_member_with_default (record, "text", ""),
                              json_object_get_string_member_with_default (record, "outcome", ""));
    }

  g_assert_cmpuint (g_hash_table_size (requests), >, 0);

  g_hash_table_iter_init (&iter, requests);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      g_test_message ("request %s", (const char *) key);
      g_assert_cmpuint (GPOINTER_TO_UINT (g_hash_table_lookup (completes, key)), ==, 1);
    }

  g_assert_cmpint (json_object_get_int_member (result->stats, "requests"), ==,
                   g_hash_table_size (completes));
}

/* One host run in flight; the runs of all read sizes go in parallel. */
typedef struct
{
  guint read_size;
  char *directory;
  char *recording;
  char *stats_path;
  GSubprocess *process;
} HostRun;

static HostRun *
start_host (const char *input,
            guint       read_size)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *host = g_test_build_filename (G_TEST_BUILT, "..", "host", "jarvis-host", NULL);
  g_autofree char *plugins = g_test_build_filename (G_TEST_BUILT, "..", "plugins", NULL);
  g_autofree char *path_option = NULL;
  g_autofree char *read_size_option = g_strdup_printf ("--read-size=%u", read_size);
  HostRun *run = g_new0 (HostRun, 1);

  run->read_size = read_size;
  run->directory = g_dir_make_tmp ("jarvis-corpus-test-XXXXXX", &error);
  g_assert_no_error (error);
  run->recording = g_build_filename (run->directory, "recording.jsonl", NULL);
  run->stats_path = g_build_filename (run->directory, "stats.json", NULL);
  path_option = g_strdup_printf ("recorder.path=%s", run->recording);

  run->process = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE, &error,
                                   host, "--plugin-dir", plugins, "--plugin=recorder",
                                   "--option", path_option, "--stats", run->stats_path,
                                   read_size_option, input, NULL);
  g_assert_no_error (error);

  return run;
}

/* Waits for the run and reads what it wrote, then frees @run. */
static Result *
finish_host (HostRun *run)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *stats_text = NULL;
  g_autofree char *err = NULL;
  Result *result;

  g_subprocess_communicate_utf8 (run->process, NULL, NULL, NULL, &err, &error);
  g_assert_no_error (error);
  g_test_message ("read size %u, stderr:\n%s", run->read_size, err);
  g_assert_true (g_subprocess_get_if_exited (run->process));
  g_assert_cmpint (g_subprocess_get_exit_status (run->process), ==, 0);

  result = g_new0 (Result, 1);
  result->flushed = answers_new ();
  result->events = g_string_new (NULL);

  g_file_get_contents (run->stats_path, &stats_text, NULL, &error);
  g_assert_no_error (error);
  result->stats = parse_object (stats_text);
  read_recording (run->recording, result);

  g_assert_no_errno (g_unlink (run->recording));
  g_assert_no_errno (g_unlink (run->stats_path));
  g_assert_no_errno (g_rmdir (run->directory));

  g_object_unref (run->process);
  g_free (run->recording);
  g_free (run->stats_path);
  g_free (run->directory);
  g_free (run);

  return result;
}

static void
test_corpus_file (gconstpointer data)
{
  const char *path = data;
  g_autoptr (GPtrArray) expected = extract_answers (path);
  g_autoptr (Result) first = NULL;
  HostRun *runs[G_N_ELEMENTS (read_sizes)];

  for (guint r = 0; r < G_N_ELEMENTS (read_sizes); r++)
    runs[r] = start_host (path, read_sizes[r]);

  for (guint r = 0; r < G_N_ELEMENTS (read_sizes); r++)
    {
      g_autoptr (Result) result = finish_host (runs[r]);
      JsonObject *stats = result->stats;

      g_assert_cmpint (json_object_get_int_member (stats, "bytes_flushed"), ==,
                       json_object_get_int_member (stats, "bytes_in"));
      g_assert_cmpint (json_object_get_int_member (stats, "input_errors"), ==, 0);

      /* Choices without text have no flush, so compare up to the longer
       * list and treat a missing entry as empty. */
      for (guint c = 0; c < MAX (expected->len, result->flushed->len); c++)
        {
          GString *want = answer_for_choice (expected, c);
          GString *got = answer_for_choice (result->flushed, c);

          g_test_message ("read size %u, choice %u", read_sizes[r], c);
          g_assert_cmpuint (got->len, ==, want->len);
          g_assert_cmpmem (got->str, got->len, want->str, want->len);
        }

      if (first == NULL)
        {
          first = g_steal_pointer (&result);
          continue;
        }

      g_assert_cmpstr (result->events->str, ==, first->events->str);
    }
}

static int
compare_paths (gconstpointer a,
               gconstpointer b)
{
  return g_strcmp0 (*(const char * const *) a, *(const char * const *) b);
}

int
main (int    argc,
      char **argv)
{
  const char *corpus = g_getenv ("JARVIS_CORPUS_DIR");
  g_autoptr (GPtrArray) paths = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GDir) dir = NULL;
  const char *name;

  g_test_init (&argc, &argv, NULL);

  if (corpus == NULL || !g_file_test (corpus, G_FILE_TEST_IS_DIR))
    {
      g_printerr ("Skipping the corpus tests: no recorded streams at '%s'; "
                  "set JARVIS_CORPUS_DIR to the folder of recorded streams\n",
                  corpus != NULL ? corpus : "(JARVIS_CORPUS_DIR unset)");
      return 77;
    }

  dir = g_dir_open (corpus, 0, NULL);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      if (g_str_has_suffix (name, ".sse") || g_str_has_suffix (name, ".jsonl") ||
          g_str_has_suffix (name, ".ndjson"))
        g_ptr_array_add (paths, g_build_filename (corpus, name, NULL));
    }

  g_ptr_array_sort (paths, compare_paths);

  for (guint i = 0; i < paths->len; i++)
    {
      const char *path = g_ptr_array_index (paths, i);
      g_autofree char *base = g_path_get_basename (path);
      g_autofree char *test_path = g_strdup_printf ("/jarvis/corpus/%s", base);

      g_test_add_data_func (test_path, path, test_corpus_file);
    }

  return g_test_run ();
}
