/* End-to-end test of the relay page in a real headless Chromium: the host
 * replays an `events` file with a supersede through the relay plugin, and
 * the test reads the page's DOM through the DevTools protocol. Every
 * connection stays on loopback. */

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#define WATCHDOG_S 60
#define EXPECTED_SECOND_TEXT "The largest moon of Jupiter is Ganymede."
#define FIRST_FULL_TEXT "The three largest moons of Jupiter are"

typedef struct
{
  GMainContext *context;
  gboolean timed_out;
  GSource *watchdog;
  SoupSession *session;

  GSubprocess *host;
  GPtrArray *host_lines;          /* owned char *: the host's stderr */
  gboolean host_stderr_done;

  GSubprocess *browser;
  char *profile_dir;
  char *devtools_url;             /* ws://… of the browser, from its stderr */
  gboolean browser_stderr_done;

  SoupWebsocketConnection *devtools;
  guint next_command_id;
  GHashTable *replies;            /* command id -> owned JsonNode of the reply */
} Fixture;

#define ITERATE_UNTIL(fixture, condition)                                     \
  G_STMT_START {                                                              \
    while (!(condition))                                                      \
      {                                                                       \
        g_assert_false ((fixture)->timed_out);                                \
        g_main_context_iteration ((fixture)->context, TRUE);                  \
      }                                                                       \
  } G_STMT_END

static gboolean
on_watchdog (gpointer user_data)
{
  Fixture *fixture = user_data;

  fixture->timed_out = TRUE;

  return G_SOURCE_CONTINUE;
}

typedef void (*LineFunc) (Fixture    *fixture,
                          const char *line);

typedef struct
{
  Fixture *fixture;
  GDataInputStream *stream;
  LineFunc func;
  gboolean *done;
} LineReader;

static void read_next_line (LineReader *reader);

static void
on_line (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  LineReader *reader = user_data;
  g_autofree char *line = g_data_input_stream_read_line_finish_utf8 (reader->stream, result, NULL, NULL);

  if (line == NULL)
    {
      *reader->done = TRUE;
      g_object_unref (reader->stream);
      g_free (reader);
      return;
    }

  if (g_test_verbose ())
    g_printerr ("%s\n", line);
  reader->func (reader->fixture, line);
  read_next_line (reader);
}

static void
read_next_line (LineReader *reader)
{
  g_data_input_stream_read_line_async (reader->stream, G_PRIORITY_DEFAULT, NULL, on_line, reader);
}

/* Reads @stream line by line until its end, passing each line to @func. */
static void
read_lines (Fixture      *fixture,
            GInputStream *stream,
            LineFunc      func,
            gboolean     *done)
{
  LineReader *reader = g_new0 (LineReader, 1);

  reader->fixture = fixture;
  reader->stream = g_data_input_stream_new (stream);
  reader->func = func;
  reader->done = done;
  read_next_line (reader);
}

static void
keep_host_line (Fixture    *fixture,
                const char *line)
{
  g_ptr_array_add (fixture->host_lines, g_strdup (line));
}

static void
keep_devtools_url (Fixture    *fixture,
                   const char *line)
{
  const char *url = strstr (line, "DevTools listening on ");

  if (url != NULL && fixture->devtools_url == NULL)
    fixture->devtools_url = g_strdup (url + strlen ("DevTools listening on "));
}

static char *
dup_relay_url (Fixture *fixture)
{
  for (guint i = 0; i < fixture->host_lines->len; i++)
    {
      const char *start = strstr (g_ptr_array_index (fixture->host_lines, i), "relay_listening url=");

      if (start != NULL)
        {
          start += strlen ("relay_listening url=");
          return g_strndup (start, strcspn (start, " "));
        }
    }

  return NULL;
}

static void
fixture_set_up (Fixture       *fixture,
                gconstpointer  user_data)
{
  fixture->context = g_main_context_new ();
  g_main_context_push_thread_default (fixture->context);

  fixture->watchdog = g_timeout_source_new_seconds (WATCHDOG_S);
  g_source_set_callback (fixture->watchdog, on_watchdog, fixture, NULL);
  g_source_attach (fixture->watchdog, fixture->context);

  fixture->session = soup_session_new_with_options ("proxy-resolver", NULL, NULL);
  fixture->host_lines = g_ptr_array_new_with_free_func (g_free);
  fixture->replies = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) json_node_unref);
}

static void
remove_tree (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        remove_tree (child);
      else
        g_unlink (child);
    }

  g_rmdir (path);
}

static void
on_waited (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  gboolean *exited = user_data;

  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  *exited = TRUE;
}

/* Waits for @process to exit by itself for up to @seconds, then kills
 * it. Returns whether it exited by itself. */
static gboolean
wait_or_kill (Fixture     *fixture,
              GSubprocess *process,
              guint        seconds)
{
  gint64 deadline = g_get_monotonic_time () + seconds * G_USEC_PER_SEC;
  gboolean exited = FALSE;

  g_subprocess_wait_async (process, NULL, on_waited, &exited);
  while (!exited && g_get_monotonic_time () < deadline)
    g_main_context_iteration (fixture->context, FALSE);

  if (exited)
    return TRUE;

  g_subprocess_force_exit (process);
  while (!exited)
    g_main_context_iteration (fixture->context, TRUE);

  return FALSE;
}

static void
fixture_tear_down (Fixture       *fixture,
                   gconstpointer  user_data)
{
  if (fixture->devtools != NULL)
    {
      if (soup_websocket_connection_get_state (fixture->devtools) == SOUP_WEBSOCKET_STATE_OPEN)
        soup_websocket_connection_close (fixture->devtools, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
      g_signal_handlers_disconnect_by_data (fixture->devtools, fixture);
      g_clear_object (&fixture->devtools);
    }

  if (fixture->browser != NULL)
    wait_or_kill (fixture, fixture->browser, 10);
  if (fixture->host != NULL)
    wait_or_kill (fixture, fixture->host, 10);

  ITERATE_UNTIL (fixture, fixture->browser == NULL || fixture->browser_stderr_done);
  ITERATE_UNTIL (fixture, fixture->host == NULL || fixture->host_stderr_done);
  g_clear_object (&fixture->browser);
  g_clear_object (&fixture->host);

  if (fixture->profile_dir != NULL)
    remove_tree (fixture->profile_dir);
  g_clear_pointer (&fixture->profile_dir, g_free);
  g_clear_pointer (&fixture->devtools_url, g_free);
  g_clear_pointer (&fixture->replies, g_hash_table_unref);
  g_clear_pointer (&fixture->host_lines, g_ptr_array_unref);
  g_clear_object (&fixture->session);
  while (g_main_context_pending (fixture->context))
    g_main_context_iteration (fixture->context, FALSE);

  g_source_destroy (fixture->watchdog);
  g_clear_pointer (&fixture->watchdog, g_source_unref);
  g_main_context_pop_thread_default (fixture->context);
  g_clear_pointer (&fixture->context, g_main_context_unref);
}

static void
start_host (Fixture *fixture)
{
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE |
                               G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  g_autoptr(GError) error = NULL;

  fixture->host = g_subprocess_launcher_spawn (launcher, &error, JARVIS_HOST_PATH,
                                               "--plugin-dir", PLUGIN_DIR,
                                               "--plugin", "relay",
                                               "--option", "relay.port=0",
                                               "--format", "events",
                                               "-v", "-", NULL);
  g_assert_no_error (error);
  read_lines (fixture, g_subprocess_get_stderr_pipe (fixture->host), keep_host_line,
              &fixture->host_stderr_done);
}

static void
start_browser (Fixture    *fixture,
               const char *chromium)
{
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_PIPE | G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  g_autoptr(GError) error = NULL;
  g_autofree char *profile_option = NULL;

  fixture->profile_dir = g_dir_make_tmp ("jarvis-relay-chromium-XXXXXX", &error);
  g_assert_no_error (error);
  profile_option = g_strconcat ("--user-data-dir=", fixture->profile_dir, NULL);

  /* The flags keep Chromium off the network except for loopback: no
   * updates, sync or other background fetches, no proxy, and every host
   * name but 127.0.0.1 fails to resolve. CI runs as root, which needs
   * --no-sandbox. */
  fixture->browser = g_subprocess_launcher_spawn (launcher, &error, chromium,
                                                  "--headless", "--no-sandbox", "--disable-gpu",
                                                  "--disable-quic", "--no-first-run",
                                                  "--disable-background-networking",
                                                  "--disable-component-update", "--disable-sync",
                                                  "--no-proxy-server",
                                                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                                                  "--window-size=900,700",
                                                  "--remote-debugging-address=127.0.0.1",
                                                  "--remote-debugging-port=0",
                                                  "--remote-allow-origins=*",
                                                  profile_option, "about:blank", NULL);
  g_assert_no_error (error);
  read_lines (fixture, g_subprocess_get_stderr_pipe (fixture->browser), keep_devtools_url,
              &fixture->browser_stderr_done);
}

static void
on_devtools_message (SoupWebsocketConnection *connection,
                     gint                     type,
                     GBytes                  *message,
                     gpointer                 user_data)
{
  Fixture *fixture = user_data;
  g_autoptr(JsonNode) node = NULL;
  JsonObject *object;

  node = json_from_string (g_bytes_get_data (message, NULL), NULL);
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return;

  /* Events have no id; only replies to our commands matter here. */
  object = json_node_get_object (node);
  if (!json_object_has_member (object, "id"))
    return;

  g_hash_table_replace (fixture->replies,
                        GUINT_TO_POINTER ((guint) json_object_get_int_member (object, "id")),
                        g_steal_pointer (&node));
}

/* Sends a DevTools command and waits for its reply. Returns the reply's
 * `result` object, owned by the fixture until the next call. */
static JsonObject *
call_devtools (Fixture    *fixture,
               const char *method,
               JsonNode   *params)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *text = NULL;
  guint id = ++fixture->next_command_id;
  JsonObject *reply;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "id");
  json_builder_add_int_value (builder, id);
  json_builder_set_member_name (builder, "method");
  json_builder_add_string_value (builder, method);
  json_builder_set_member_name (builder, "params");
  if (params != NULL)
    json_builder_add_value (builder, params);
  else
    {
      json_builder_begin_object (builder);
      json_builder_end_object (builder);
    }
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  text = json_to_string (root, FALSE);
  soup_websocket_connection_send_text (fixture->devtools, text);

  ITERATE_UNTIL (fixture, g_hash_table_contains (fixture->replies, GUINT_TO_POINTER (id)));
  reply = json_node_get_object (g_hash_table_lookup (fixture->replies, GUINT_TO_POINTER (id)));
  if (json_object_has_member (reply, "error"))
    g_error ("DevTools command %s failed: %s", method,
             json_to_string (json_object_get_member (reply, "error"), FALSE));

  return json_object_get_object_member (reply, "result");
}

static JsonNode *
params_new (const char *first_name,
            ...)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  const char *name = first_name;
  va_list args;

  va_start (args, first_name);
  json_builder_begin_object (builder);
  while (name != NULL)
    {
      json_builder_set_member_name (builder, name);
      json_builder_add_string_value (builder, va_arg (args, const char *));
      name = va_arg (args, const char *);
    }
  json_builder_end_object (builder);
  va_end (args);

  return json_builder_get_root (builder);
}

/* Evaluates @expression in the page and returns its string value. */
static char *
evaluate (Fixture    *fixture,
          const char *expression)
{
  JsonNode *params = params_new ("expression", expression, NULL);
  JsonObject *result;
  JsonObject *value;

  json_object_set_boolean_member (json_node_get_object (params), "returnByValue", TRUE);
  result = call_devtools (fixture, "Runtime.evaluate", params);
  value = json_object_get_object_member (result, "result");

  if (!json_object_has_member (value, "value") ||
      json_node_get_value_type (json_object_get_member (value, "value")) != G_TYPE_STRING)
    return NULL;

  return g_strdup (json_object_get_string_member (value, "value"));
}

static void
on_list_read (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GBytes **body = user_data;

  *body = soup_session_send_and_read_finish (SOUP_SESSION (source), result, NULL);
  if (*body == NULL)
    *body = g_bytes_new (NULL, 0);
}

/* Finds the WebSocket URL of the browser's first page. */
static char *
dup_page_target (Fixture *fixture)
{
  g_autoptr(GUri) browser_uri = g_uri_parse (fixture->devtools_url, G_URI_FLAGS_NONE, NULL);
  g_autofree char *list_url = NULL;
  g_autoptr(SoupMessage) message = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(JsonNode) root = NULL;
  JsonArray *targets;

  g_assert_nonnull (browser_uri);
  g_assert_cmpstr (g_uri_get_host (browser_uri), ==, "127.0.0.1");
  list_url = g_strdup_printf ("http://127.0.0.1:%d/json/list", g_uri_get_port (browser_uri));
  message = soup_message_new (SOUP_METHOD_GET, list_url);
  soup_session_send_and_read_async (fixture->session, message, G_PRIORITY_DEFAULT, NULL,
                                    on_list_read, &body);
  ITERATE_UNTIL (fixture, body != NULL);
  g_assert_cmpuint (soup_message_get_status (message), ==, SOUP_STATUS_OK);

  root = json_from_string (g_bytes_get_data (body, NULL), NULL);
  g_assert_nonnull (root);
  targets = json_node_get_array (root);
  for (guint i = 0; i < json_array_get_length (targets); i++)
    {
      JsonObject *target = json_array_get_object_element (targets, i);

      if (g_strcmp0 (json_object_get_string_member (target, "type"), "page") == 0)
        return g_strdup (json_object_get_string_member (target, "webSocketDebuggerUrl"));
    }

  return NULL;
}

static void
on_devtools_connected (GObject      *source,
                       GAsyncResult *result,
                       gpointer      user_data)
{
  Fixture *fixture = user_data;
  g_autoptr(GError) error = NULL;

  fixture->devtools = soup_session_websocket_connect_finish (SOUP_SESSION (source), result, &error);
  g_assert_no_error (error);
}

static void
connect_devtools (Fixture *fixture)
{
  g_autofree char *page_url = NULL;
  g_autoptr(SoupMessage) message = NULL;

  ITERATE_UNTIL (fixture, fixture->devtools_url != NULL || fixture->browser_stderr_done);
  g_assert_nonnull (fixture->devtools_url);

  page_url = dup_page_target (fixture);
  g_assert_nonnull (page_url);
  g_assert_true (g_str_has_prefix (page_url, "ws://127.0.0.1:"));

  message = soup_message_new (SOUP_METHOD_GET, page_url);
  soup_session_websocket_connect_async (fixture->session, message, NULL, NULL, G_PRIORITY_DEFAULT,
                                        NULL, on_devtools_connected, fixture);
  ITERATE_UNTIL (fixture, fixture->devtools != NULL);

  /* Replies can be large, such as a screenshot. */
  soup_websocket_connection_set_max_incoming_payload_size (fixture->devtools, 64 * 1024 * 1024);
  g_signal_connect (fixture->devtools, "message", G_CALLBACK (on_devtools_message), fixture);
}

/* The requests the page shows, as [{id, state, text}], newest first. */
#define READ_REQUESTS_JS                                                                  \
  "JSON.stringify(Array.from(document.querySelectorAll('section.request')).map(s => ({" \
  "id: s.dataset.requestId, state: s.dataset.state, "                                   \
  "text: Array.from(s.querySelectorAll('pre.text')).map(p => p.textContent).join('')})))"

static JsonObject *
find_request (JsonArray  *requests,
              const char *request_id)
{
  for (guint i = 0; i < json_array_get_length (requests); i++)
    {
      JsonObject *request = json_array_get_object_element (requests, i);

      if (g_strcmp0 (json_object_get_string_member (request, "id"), request_id) == 0)
        return request;
    }

  return NULL;
}

static gboolean
on_poll_timer (gpointer user_data)
{
  gboolean *due = user_data;

  *due = TRUE;

  return G_SOURCE_REMOVE;
}

/* Waits about @interval_ms while the loop runs, so that polling the page
 * does not spin. */
static void
wait_ms (Fixture *fixture,
         guint    interval_ms)
{
  gboolean due = FALSE;
  GSource *timer = g_timeout_source_new (interval_ms);

  g_source_set_callback (timer, on_poll_timer, &due, NULL);
  g_source_attach (timer, fixture->context);
  ITERATE_UNTIL (fixture, due);
  g_source_unref (timer);
}

static void
save_screenshot (Fixture *fixture)
{
  JsonNode *params = params_new ("format", "png", NULL);
  JsonObject *result = call_devtools (fixture, "Page.captureScreenshot", params);
  g_autofree char *path = g_build_filename (OUTPUT_DIR, "relay-browser.png", NULL);
  g_autoptr(GError) error = NULL;
  g_autofree guchar *png = NULL;
  gsize size = 0;

  png = g_base64_decode (json_object_get_string_member (result, "data"), &size);
  g_assert_cmpuint (size, >, 8);
  g_assert_cmpmem (png + 1, 3, "PNG", 3);
  g_assert_true (g_file_set_contents (path, (const char *) png, (gssize) size, &error));
  g_assert_no_error (error);
  g_test_message ("screenshot saved to %s", path);
}

static void
test_browser_supersede (Fixture       *fixture,
                        gconstpointer  user_data)
{
  const char *chromium = user_data;
  g_autofree char *relay_url = NULL;
  g_autofree char *events = NULL;
  g_autofree char *state = NULL;
  g_autoptr(JsonNode) shown = NULL;
  g_autoptr(GError) error = NULL;
  gsize events_length = 0;
  const char *second_start;
  const char *first_text;
  JsonArray *requests;
  JsonObject *first;
  JsonObject *second;

  start_host (fixture);
  while ((relay_url = dup_relay_url (fixture)) == NULL && !fixture->host_stderr_done)
    {
      g_assert_false (fixture->timed_out);
      g_main_context_iteration (fixture->context, TRUE);
    }
  g_assert_nonnull (relay_url);
  g_assert_true (g_str_has_prefix (relay_url, "http://127.0.0.1:"));

  start_browser (fixture, chromium);
  connect_devtools (fixture);
  call_devtools (fixture, "Page.navigate", params_new ("url", relay_url, NULL));

  /* The events go in only once the page listens, so it receives them live. */
  while (g_strcmp0 (state, "open") != 0)
    {
      g_free (state);
      state = evaluate (fixture, "document.getElementById('connection')?.dataset.state ?? ''");
      if (g_strcmp0 (state, "open") != 0)
        wait_ms (fixture, 50);
    }

  g_assert_true (g_file_get_contents (EVENTS_FILE, &events, &events_length, &error));
  g_assert_no_error (error);

  /* The first request's lines go in alone, and the rest only once the
   * page shows some of its text, so its first flush always reaches the
   * page before the supersede. */
  second_start = strstr (events, "{\"type\": \"agent.stream.start\", \"request_id\": \"answer-2\"");
  g_assert_nonnull (second_start);
  g_assert_true (g_output_stream_write_all (g_subprocess_get_stdin_pipe (fixture->host),
                                            events, (gsize) (second_start - events),
                                            NULL, NULL, &error));
  g_assert_no_error (error);

  for (;;)
    {
      g_autofree char *json = evaluate (fixture, READ_REQUESTS_JS);

      g_clear_pointer (&shown, json_node_unref);
      shown = json_from_string (json, &error);
      g_assert_no_error (error);
      first = find_request (json_node_get_array (shown), "answer-1");
      if (first != NULL && *json_object_get_string_member (first, "text") != '\0')
        break;
      wait_ms (fixture, 50);
    }
  g_assert_cmpstr (json_object_get_string_member (first, "state"), ==, "streaming");

  g_assert_true (g_output_stream_write_all (g_subprocess_get_stdin_pipe (fixture->host),
                                            second_start,
                                            events_length - (gsize) (second_start - events),
                                            NULL, NULL, &error));
  g_assert_no_error (error);

  /* Polls the DOM until the second request shows as completed. */
  for (;;)
    {
      g_autofree char *json = evaluate (fixture, READ_REQUESTS_JS);

      g_clear_pointer (&shown, json_node_unref);
      shown = json_from_string (json, &error);
      g_assert_no_error (error);
      requests = json_node_get_array (shown);
      second = find_request (requests, "answer-2");
      if (second != NULL && g_strcmp0 (json_object_get_string_member (second, "state"), "completed") == 0)
        break;
      wait_ms (fixture, 50);
    }

  g_assert_cmpuint (json_array_get_length (requests), ==, 2);
  first = find_request (requests, "answer-1");
  g_assert_nonnull (first);
  g_assert_cmpstr (json_object_get_string_member (first, "state"), ==, "superseded");
  first_text = json_object_get_string_member (first, "text");
  g_assert_cmpuint (strlen (first_text), >, 0);
  g_assert_true (g_str_has_prefix (FIRST_FULL_TEXT, first_text));
  g_assert_cmpstr (json_object_get_string_member (second, "text"), ==, EXPECTED_SECOND_TEXT);

  save_screenshot (fixture);

  /* End of input: the host completes what is left and exits cleanly. */
  g_assert_true (g_output_stream_close (g_subprocess_get_stdin_pipe (fixture->host), NULL, &error));
  g_assert_no_error (error);
  call_devtools (fixture, "Browser.close", NULL);
  g_assert_true (wait_or_kill (fixture, fixture->host, 20));
  g_assert_true (g_subprocess_get_if_exited (fixture->host));
  g_assert_cmpint (g_subprocess_get_exit_status (fixture->host), ==, 0);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *chromium = NULL;

  g_test_init (&argc, &argv, NULL);

  chromium = g_find_program_in_path ("chromium");
  if (chromium == NULL)
    {
      g_printerr ("SKIP: chromium is not installed (Debian package chromium); "
                  "the relay page is not tested in a browser\n");
      return 77;
    }

  g_test_add ("/relay/browser/supersede", Fixture, chromium,
              fixture_set_up, test_browser_supersede, fixture_tear_down);

  return g_test_run ();
}
