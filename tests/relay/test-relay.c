/* Tests of the relay plugin: the real jarvis-plugin-relay.so, registered
 * on a bus, talking to libsoup clients and raw sockets on loopback. */

#include <gmodule.h>
#include <jarvis/jarvis.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <sys/socket.h>

/* Fails a test that waits for more than this, instead of hanging. */
#define WATCHDOG_S 20

/* Log lines of the process, kept so that tests can assert on them. The
 * writer is process-wide, so the array is global and each fixture clears
 * it. */
static GPtrArray *log_lines;   /* owned char *: "DOMAIN LEVEL MESSAGE" */

static GLogWriterOutput
record_log (GLogLevelFlags   log_level,
            const GLogField *fields,
            gsize            n_fields,
            gpointer         user_data)
{
  const char *domain = "";
  const char *message = "";

  for (gsize i = 0; i < n_fields; i++)
    {
      if (g_strcmp0 (fields[i].key, "GLIB_DOMAIN") == 0)
        domain = fields[i].value;
      else if (g_strcmp0 (fields[i].key, "MESSAGE") == 0)
        message = fields[i].value;
    }

  g_ptr_array_add (log_lines, g_strdup_printf ("%s %s %s", domain,
                                               (log_level & G_LOG_LEVEL_WARNING) ? "warning" :
                                               (log_level & G_LOG_LEVEL_CRITICAL) ? "critical" :
                                               (log_level & G_LOG_LEVEL_ERROR) ? "error" : "other",
                                               message));

  if (log_level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
    return g_log_writer_default (log_level, fields, n_fields, user_data);

  if (g_test_verbose ())
    g_printerr ("%s: %s\n", domain, message);

  return G_LOG_WRITER_HANDLED;
}

static guint
count_log_lines (const char *needle)
{
  guint count = 0;

  for (guint i = 0; i < log_lines->len; i++)
    count += strstr (g_ptr_array_index (log_lines, i), needle) != NULL;

  return count;
}

static char *
dup_logged_url (void)
{
  for (guint i = 0; i < log_lines->len; i++)
    {
      const char *line = g_ptr_array_index (log_lines, i);
      const char *start = strstr (line, "relay_listening url=");

      if (start != NULL)
        {
          start += strlen ("relay_listening url=");
          return g_strndup (start, strcspn (start, " "));
        }
    }

  return NULL;
}

typedef struct
{
  GMainContext *context;
  JarvisBus *bus;
  GModule *module;
  SoupSession *session;
  char *url;                  /* the page URL from the relay's log line */
  GPtrArray *completes;       /* owned JarvisEvent refs from request-completed */
  gboolean timed_out;
  GSource *watchdog;
} Fixture;

static gboolean
on_watchdog (gpointer user_data)
{
  Fixture *fixture = user_data;

  fixture->timed_out = TRUE;

  return G_SOURCE_CONTINUE;
}

static void
on_request_completed (JarvisBus   *bus,
                      JarvisEvent *complete,
                      gpointer     user_data)
{
  Fixture *fixture = user_data;

  g_ptr_array_add (fixture->completes, jarvis_event_ref (complete));
}

/* Iterates the context until @done reads TRUE, failing the test at the
 * watchdog. */
#define ITERATE_UNTIL(fixture, condition)                                     \
  G_STMT_START {                                                              \
    while (!(condition))                                                      \
      {                                                                       \
        g_assert_false ((fixture)->timed_out);                                \
        g_main_context_iteration ((fixture)->context, TRUE);                  \
      }                                                                       \
  } G_STMT_END

static void
fixture_set_up (Fixture       *fixture,
                gconstpointer  user_data)
{
  fixture->context = g_main_context_new ();
  g_main_context_push_thread_default (fixture->context);
  g_ptr_array_set_size (log_lines, 0);

  fixture->bus = jarvis_bus_new (fixture->context);
  fixture->completes = g_ptr_array_new_with_free_func ((GDestroyNotify) jarvis_event_unref);
  g_signal_connect (fixture->bus, "request-completed", G_CALLBACK (on_request_completed), fixture);

  /* Makes every delta its own flush, so tests count frames exactly. */
  jarvis_bus_set_flush_policy (fixture->bus, 1000, 1);

  /* No proxy: the tests talk to loopback only. */
  fixture->session = soup_session_new_with_options ("max-conns-per-host", 8,
                                                    "timeout", WATCHDOG_S,
                                                    "proxy-resolver", NULL,
                                                    NULL);

  fixture->watchdog = g_timeout_source_new_seconds (WATCHDOG_S);
  g_source_set_callback (fixture->watchdog, on_watchdog, fixture, NULL);
  g_source_attach (fixture->watchdog, fixture->context);
}

/* Registers the relay from its shared object with the options given as
 * "key=value" strings. Returns FALSE and sets @error when init fails. */
static gboolean
load_relay (Fixture     *fixture,
            const char **options,
            GError     **error)
{
  g_autoptr(GKeyFile) config = g_key_file_new ();
  const JarvisPluginInfo *(*get_info) (void) = NULL;

  for (gsize i = 0; options != NULL && options[i] != NULL; i++)
    {
      g_auto(GStrv) pair = g_strsplit (options[i], "=", 2);

      g_key_file_set_string (config, "plugin relay", pair[0], pair[1]);
    }
  if (!g_key_file_has_key (config, "plugin relay", "port", NULL))
    g_key_file_set_string (config, "plugin relay", "port", "0");
  jarvis_bus_set_config (fixture->bus, config);

  fixture->module = g_module_open (RELAY_PLUGIN_PATH, G_MODULE_BIND_LOCAL);
  g_assert_nonnull (fixture->module);
  g_assert_true (g_module_symbol (fixture->module, "jarvis_plugin_get_info",
                                  (gpointer *) &get_info));

  if (!jarvis_bus_register_plugin (fixture->bus, get_info (), error))
    return FALSE;

  fixture->url = dup_logged_url ();
  g_assert_nonnull (fixture->url);
  g_assert_true (g_str_has_prefix (fixture->url, "http://127.0.0.1:"));

  return TRUE;
}

static void
on_bus_closed (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  gboolean *closed = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_true (jarvis_bus_close_finish (JARVIS_BUS (source), result, &error));
  g_assert_no_error (error);
  *closed = TRUE;
}

static void
fixture_tear_down (Fixture       *fixture,
                   gconstpointer  user_data)
{
  gboolean closed = FALSE;

  jarvis_bus_close_async (fixture->bus, NULL, on_bus_closed, &closed);
  ITERATE_UNTIL (fixture, closed);
  g_assert_cmpuint (jarvis_bus_get_n_invocations (fixture->bus), ==, 0);
  g_clear_object (&fixture->bus);

  /* The session's connections close in the context, so it goes last. */
  g_clear_object (&fixture->session);
  while (g_main_context_pending (fixture->context))
    g_main_context_iteration (fixture->context, FALSE);

  g_clear_pointer (&fixture->module, g_module_close);
  g_clear_pointer (&fixture->completes, g_ptr_array_unref);
  g_clear_pointer (&fixture->url, g_free);
  g_source_destroy (fixture->watchdog);
  g_clear_pointer (&fixture->watchdog, g_source_unref);
  g_main_context_pop_thread_default (fixture->context);
  g_clear_pointer (&fixture->context, g_main_context_unref);
}

static void
on_send_and_read (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  GAsyncResult **result_out = user_data;

  *result_out = g_object_ref (result);
}

/* Sends @message and reads the whole body. The relay serves in this same
 * thread, so a blocking send would never get an answer. */
static GBytes *
send_and_read (Fixture     *fixture,
               SoupMessage *message)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  GBytes *body;

  soup_session_send_and_read_async (fixture->session, message, G_PRIORITY_DEFAULT, NULL,
                                    on_send_and_read, &result);
  ITERATE_UNTIL (fixture, result != NULL);
  body = soup_session_send_and_read_finish (fixture->session, result, &error);
  g_assert_no_error (error);

  return body;
}

static void
emit (Fixture    *fixture,
      const char *event_type,
      const char *request_id,
      const char *text)
{
  JarvisEvent *event = jarvis_event_new (event_type, request_id);

  if (text != NULL)
    jarvis_event_set_text (event, text, -1);
  jarvis_bus_emit (fixture->bus, event);
}

/* One parsed SSE frame as a client saw it. */
typedef struct
{
  char *id;                 /* owned, nullable */
  char *event;              /* owned */
  JsonNode *data;           /* owned */
} Frame;

static void
frame_free (gpointer data)
{
  Frame *frame = data;

  g_free (frame->id);
  g_free (frame->event);
  json_node_unref (frame->data);
  g_free (frame);
}

static const char *
frame_get_string (Frame      *frame,
                  const char *member)
{
  JsonObject *object = json_node_get_object (frame->data);

  return json_object_has_member (object, member)
         ? json_object_get_string_member (object, member) : NULL;
}

/* A client of /events that reads the stream as it comes and splits it
 * into frames. */
typedef struct
{
  Fixture *fixture;
  SoupMessage *message;     /* owned */
  GInputStream *stream;     /* owned, once the response started */
  GCancellable *cancellable;
  GString *raw;             /* everything read, for framing checks */
  gsize parsed;             /* bytes of @raw already split into frames */
  GPtrArray *frames;        /* owned Frame pointers */
  guint retry_fields;
  gboolean ended;
  GError *error;
} SseClient;

static void
parse_frames (SseClient *client)
{
  const char *end;

  while ((end = strstr (client->raw->str + client->parsed, "\n\n")) != NULL)
    {
      g_autofree char *block = g_strndup (client->raw->str + client->parsed,
                                          end - (client->raw->str + client->parsed));
      g_auto(GStrv) lines = g_strsplit (block, "\n", -1);
      g_autoptr(GError) error = NULL;
      Frame *frame = g_new0 (Frame, 1);

      client->parsed = end + 2 - client->raw->str;

      for (gsize i = 0; lines[i] != NULL; i++)
        {
          if (g_str_has_prefix (lines[i], "id: "))
            frame->id = g_strdup (lines[i] + 4);
          else if (g_str_has_prefix (lines[i], "event: "))
            frame->event = g_strdup (lines[i] + 7);
          else if (g_str_has_prefix (lines[i], "data: "))
            frame->data = json_from_string (lines[i] + 6, &error);
          else if (g_str_has_prefix (lines[i], "retry: "))
            client->retry_fields++;
          else
            g_error ("unexpected SSE line '%s'", lines[i]);
        }
      g_assert_no_error (error);

      if (frame->event == NULL)
        {
          g_assert_null (frame->data);
          g_free (frame->id);
          g_free (frame);
          continue;
        }

      g_assert_nonnull (frame->data);
      g_ptr_array_add (client->frames, frame);
    }
}

static void read_more (SseClient *client);

static void
on_read (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  SseClient *client = user_data;
  g_autoptr(GBytes) bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result,
                                                              &client->error);

  if (bytes == NULL || g_bytes_get_size (bytes) == 0)
    {
      client->ended = TRUE;
      return;
    }

  g_string_append_len (client->raw, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  parse_frames (client);
  read_more (client);
}

static void
read_more (SseClient *client)
{
  g_input_stream_read_bytes_async (client->stream, 64 * 1024, G_PRIORITY_DEFAULT,
                                   client->cancellable, on_read, client);
}

static void
on_sent (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  SseClient *client = user_data;

  client->stream = soup_session_send_finish (SOUP_SESSION (source), result, &client->error);
  if (client->stream == NULL)
    {
      client->ended = TRUE;
      return;
    }

  read_more (client);
}

static SseClient *
sse_client_new (Fixture    *fixture,
                const char *query,
                const char *last_event_id)
{
  g_autofree char *url = g_strconcat (fixture->url, "events", query, NULL);
  SseClient *client = g_new0 (SseClient, 1);

  client->fixture = fixture;
  client->message = soup_message_new (SOUP_METHOD_GET, url);
  client->cancellable = g_cancellable_new ();
  client->raw = g_string_new (NULL);
  client->frames = g_ptr_array_new_with_free_func (frame_free);
  if (last_event_id != NULL)
    soup_message_headers_replace (soup_message_get_request_headers (client->message),
                                  "Last-Event-ID", last_event_id);

  soup_session_send_async (fixture->session, client->message, G_PRIORITY_DEFAULT,
                           client->cancellable, on_sent, client);

  return client;
}

/* Waits until the relay counts @n_clients connected clients, which is
 * after it queued their history. */
static void
wait_for_clients (Fixture *fixture,
                  guint    n_clients)
{
  ITERATE_UNTIL (fixture, count_log_lines ("relay_client_connected") >= n_clients);
}

static void
sse_client_free (SseClient *client)
{
  g_cancellable_cancel (client->cancellable);
  while (client->stream != NULL && !client->ended)
    g_main_context_iteration (client->fixture->context, TRUE);
  if (client->stream == NULL)
    while (!client->ended)
      g_main_context_iteration (client->fixture->context, TRUE);

  g_clear_object (&client->stream);
  g_clear_object (&client->message);
  g_clear_object (&client->cancellable);
  g_string_free (client->raw, TRUE);
  g_ptr_array_unref (client->frames);
  g_clear_error (&client->error);
  g_free (client);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SseClient, sse_client_free)

static Frame *
find_frame (SseClient  *client,
            const char *event,
            const char *request_id)
{
  for (guint i = 0; i < client->frames->len; i++)
    {
      Frame *frame = g_ptr_array_index (client->frames, i);

      if (g_str_equal (frame->event, event) &&
          g_strcmp0 (frame_get_string (frame, "request_id"), request_id) == 0)
        return frame;
    }

  return NULL;
}

static char *
dup_flushed_text (SseClient  *client,
                  const char *request_id)
{
  GString *text = g_string_new (NULL);

  for (guint i = 0; i < client->frames->len; i++)
    {
      Frame *frame = g_ptr_array_index (client->frames, i);

      if (g_str_equal (frame->event, "flush") &&
          g_strcmp0 (frame_get_string (frame, "request_id"), request_id) == 0)
        g_string_append (text, frame_get_string (frame, "text"));
    }

  return g_string_free (text, FALSE);
}

static void
emit_request (Fixture     *fixture,
              const char  *request_id,
              const char **deltas)
{
  emit (fixture, JARVIS_EVENT_STREAM_START, request_id, NULL);
  for (gsize i = 0; deltas[i] != NULL; i++)
    emit (fixture, JARVIS_EVENT_STREAM_DELTA, request_id, deltas[i]);
  emit (fixture, JARVIS_EVENT_STREAM_END, request_id, NULL);
}

static void
test_page_served (Fixture       *fixture,
                  gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SoupMessage) message = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autofree char *missing_url = NULL;
  g_autoptr(SoupMessage) missing = NULL;
  g_autoptr(GBytes) missing_body = NULL;

  g_assert_true (load_relay (fixture, NULL, &error));
  g_assert_no_error (error);

  message = soup_message_new (SOUP_METHOD_GET, fixture->url);
  body = send_and_read (fixture, message);
  g_assert_cmpuint (soup_message_get_status (message), ==, SOUP_STATUS_OK);
  g_assert_cmpstr (soup_message_headers_get_content_type (soup_message_get_response_headers (message), NULL),
                   ==, "text/html");
  g_assert_nonnull (g_strstr_len (g_bytes_get_data (body, NULL), g_bytes_get_size (body),
                                  "new EventSource("));

  missing_url = g_strconcat (fixture->url, "nothing-here", NULL);
  missing = soup_message_new (SOUP_METHOD_GET, missing_url);
  missing_body = send_and_read (fixture, missing);
  g_assert_cmpuint (soup_message_get_status (missing), ==, SOUP_STATUS_NOT_FOUND);
}

static void
test_sse_framing (Fixture       *fixture,
                  gconstpointer  user_data)
{
  const char *deltas[] = { "Hello ", "wörld", ", ", "again\n", NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(SseClient) client = NULL;
  g_autofree char *text = NULL;
  guint64 last_id = 0;
  Frame *complete;
  JsonObject *counters;

  g_assert_true (load_relay (fixture, NULL, &error));
  client = sse_client_new (fixture, "", NULL);
  wait_for_clients (fixture, 1);

  emit_request (fixture, "r1", deltas);
  ITERATE_UNTIL (fixture, find_frame (client, "complete", "r1") != NULL);

  g_assert_cmpuint (soup_message_get_status (client->message), ==, SOUP_STATUS_OK);
  g_assert_cmpstr (soup_message_headers_get_content_type (soup_message_get_response_headers (client->message), NULL),
                   ==, "text/event-stream");
  g_assert_cmpuint (client->retry_fields, ==, 1);

  /* start, one flush per delta, complete; ids rise by one. */
  g_assert_cmpuint (client->frames->len, ==, 6);
  g_assert_cmpstr (((Frame *) g_ptr_array_index (client->frames, 0))->event, ==, "start");
  for (guint i = 1; i <= 4; i++)
    g_assert_cmpstr (((Frame *) g_ptr_array_index (client->frames, i))->event, ==, "flush");
  g_assert_cmpstr (((Frame *) g_ptr_array_index (client->frames, 5))->event, ==, "complete");

  for (guint i = 0; i < client->frames->len; i++)
    {
      Frame *frame = g_ptr_array_index (client->frames, i);
      guint64 id = 0;

      g_assert_nonnull (frame->id);
      g_assert_true (g_ascii_string_to_unsigned (frame->id, 10, 1, G_MAXUINT64, &id, NULL));
      g_assert_cmpuint (id, ==, last_id + 1);
      last_id = id;
      g_assert_cmpstr (frame_get_string (frame, "request_id"), ==, "r1");
      g_assert_cmpstr (frame_get_string (frame, "session_id"), ==, JARVIS_SESSION_DEFAULT);
    }

  text = dup_flushed_text (client, "r1");
  g_assert_cmpstr (text, ==, "Hello wörld, again\n");

  complete = find_frame (client, "complete", "r1");
  g_assert_cmpstr (frame_get_string (complete, "outcome"), ==, "completed");
  counters = json_object_get_object_member (json_node_get_object (complete->data), "counters");
  g_assert_nonnull (counters);
  g_assert_cmpint (json_object_get_int_member (counters, "tokens"), ==, 4);
  g_assert_cmpint (json_object_get_int_member (counters, "bytes_flushed"), ==, strlen ("Hello wörld, again\n"));

  /* The newline in the text stays inside the JSON string, so each frame
   * is exactly one id, one event and one data line. */
  g_assert_nonnull (strstr (client->raw->str, "event: flush\ndata: {"));
  g_assert_nonnull (strstr (client->raw->str, "again\\n"));
}

static void
test_resume_last_event_id (Fixture       *fixture,
                           gconstpointer  user_data)
{
  const char *first[] = { "one ", "two ", "three", NULL };
  const char *second[] = { "four", NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(SseClient) resumed = NULL;
  g_autoptr(SseClient) fresh = NULL;
  g_autofree char *resumed_text = NULL;
  g_autofree char *fresh_text = NULL;
  Frame *second_flush;

  g_assert_true (load_relay (fixture, NULL, &error));

  /* Nobody listens while r1 runs: only the history has it. */
  emit_request (fixture, "r1", first);
  ITERATE_UNTIL (fixture, fixture->completes->len == 1);

  /* Ids 1 to 5 are r1's start, 3 flushes and complete; resuming after
   * id 2 skips the start and the first flush. */
  resumed = sse_client_new (fixture, "", "2");
  fresh = sse_client_new (fixture, "", NULL);
  wait_for_clients (fixture, 2);
  ITERATE_UNTIL (fixture, find_frame (resumed, "complete", "r1") != NULL &&
                          find_frame (fresh, "complete", "r1") != NULL);

  g_assert_cmpuint (resumed->frames->len, ==, 3);
  g_assert_null (find_frame (resumed, "start", "r1"));
  g_assert_cmpstr (((Frame *) g_ptr_array_index (resumed->frames, 0))->id, ==, "3");
  resumed_text = dup_flushed_text (resumed, "r1");
  g_assert_cmpstr (resumed_text, ==, "two three");

  g_assert_cmpuint (fresh->frames->len, ==, 5);
  fresh_text = dup_flushed_text (fresh, "r1");
  g_assert_cmpstr (fresh_text, ==, "one two three");

  /* Live frames follow the replay on both. */
  emit_request (fixture, "r2", second);
  ITERATE_UNTIL (fixture, find_frame (resumed, "complete", "r2") != NULL &&
                          find_frame (fresh, "complete", "r2") != NULL);
  second_flush = find_frame (resumed, "flush", "r2");
  g_assert_cmpstr (second_flush->id, ==, "7");
  g_assert_cmpstr (frame_get_string (second_flush, "text"), ==, "four");
}

static void
test_resume_bounded_history (Fixture       *fixture,
                             gconstpointer  user_data)
{
  const char *options[] = { "history=3", NULL };
  const char *deltas[] = { "a", "b", "c", "d", "e", NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(SseClient) client = NULL;
  g_autofree char *text = NULL;
  Frame *gap;

  g_assert_true (load_relay (fixture, options, &error));
  emit_request (fixture, "r1", deltas);
  ITERATE_UNTIL (fixture, fixture->completes->len == 1);

  /* History keeps the start (id 1) and the latest two frames: the flush
   * of "e" (id 6) and the complete (id 7). */
  client = sse_client_new (fixture, "", NULL);
  wait_for_clients (fixture, 1);
  ITERATE_UNTIL (fixture, find_frame (client, "complete", "r1") != NULL);

  g_assert_cmpuint (client->frames->len, ==, 4);
  g_assert_cmpstr (((Frame *) g_ptr_array_index (client->frames, 0))->event, ==, "start");
  gap = g_ptr_array_index (client->frames, 1);
  g_assert_cmpstr (gap->event, ==, "gap");
  g_assert_null (gap->id);
  g_assert_cmpstr (frame_get_string (gap, "request_id"), ==, "r1");
  text = dup_flushed_text (client, "r1");
  g_assert_cmpstr (text, ==, "e");
}

static void
test_invalid_last_event_id (Fixture       *fixture,
                            gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SoupMessage) message = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autofree char *url = NULL;

  g_assert_true (load_relay (fixture, NULL, &error));

  url = g_strconcat (fixture->url, "events", NULL);
  message = soup_message_new (SOUP_METHOD_GET, url);
  soup_message_headers_replace (soup_message_get_request_headers (message),
                                "Last-Event-ID", "12abc");
  body = send_and_read (fixture, message);
  g_assert_cmpuint (soup_message_get_status (message), ==, SOUP_STATUS_BAD_REQUEST);
  g_assert_nonnull (g_strstr_len (g_bytes_get_data (body, NULL), g_bytes_get_size (body),
                                  "Last-Event-ID"));
}

/* Returns the status of a GET whose response has an end: the page, or
 * a rejected event stream. */
static guint
get_status (Fixture    *fixture,
            const char *path_and_query)
{
  g_autofree char *url = g_strconcat (fixture->url, path_and_query, NULL);
  g_autoptr(SoupMessage) message = soup_message_new (SOUP_METHOD_GET, url);

  g_bytes_unref (send_and_read (fixture, message));

  return soup_message_get_status (message);
}

static void
test_token_required (Fixture       *fixture,
                     gconstpointer  user_data)
{
  const char *options[] = { "token=s3cret-t0ken", NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(SseClient) client = NULL;
  const char *deltas[] = { "hi", NULL };

  g_assert_true (load_relay (fixture, options, &error));
  g_assert_cmpuint (count_log_lines ("token_required=yes"), ==, 1);
  g_assert_cmpuint (count_log_lines ("s3cret"), ==, 0);

  g_assert_cmpuint (get_status (fixture, ""), ==, SOUP_STATUS_FORBIDDEN);
  g_assert_cmpuint (get_status (fixture, "events"), ==, SOUP_STATUS_FORBIDDEN);
  g_assert_cmpuint (get_status (fixture, "?token=wrong"), ==, SOUP_STATUS_FORBIDDEN);
  g_assert_cmpuint (get_status (fixture, "events?token=s3cret-t0ke"), ==, SOUP_STATUS_FORBIDDEN);
  g_assert_cmpuint (get_status (fixture, "events?token=s3cret-t0kenX"), ==, SOUP_STATUS_FORBIDDEN);
  g_assert_cmpuint (get_status (fixture, "?token=s3cret-t0ken"), ==, SOUP_STATUS_OK);

  client = sse_client_new (fixture, "?token=s3cret-t0ken", NULL);
  wait_for_clients (fixture, 1);
  emit_request (fixture, "r1", deltas);
  ITERATE_UNTIL (fixture, find_frame (client, "complete", "r1") != NULL);
  g_assert_cmpuint (soup_message_get_status (client->message), ==, SOUP_STATUS_OK);
}

static void
test_remote_address_needs_option (Fixture       *fixture,
                                  gconstpointer  user_data)
{
  const char *options[] = { "address=0.0.0.0", NULL };
  g_autoptr(GError) error = NULL;

  g_assert_false (load_relay (fixture, options, &error));
  g_assert_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_INIT_FAILED);
  g_assert_nonnull (strstr (error->message, "0.0.0.0"));
  g_assert_nonnull (strstr (error->message, "relay.allow-remote=true"));
  g_assert_cmpuint (count_log_lines ("relay_listening"), ==, 0);
}

static void
test_invalid_address (Fixture       *fixture,
                      gconstpointer  user_data)
{
  const char *options[] = { "address=localhost:80", NULL };
  g_autoptr(GError) error = NULL;

  g_assert_false (load_relay (fixture, options, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "localhost:80"));
}

/* A client that sends its request and then never reads, so the relay's
 * writes to it back up once the socket buffers are full. */
static GSocketConnection *
connect_stalled_client (Fixture *fixture)
{
  g_autoptr(GSocketClient) socket_client = g_socket_client_new ();

  g_autoptr(GUri) uri = g_uri_parse (fixture->url, G_URI_FLAGS_NONE, NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *request = NULL;
  GSocketConnection *connection;
  gsize written = 0;

  g_socket_client_set_enable_proxy (socket_client, FALSE);
  connection = g_socket_client_connect_to_host (socket_client, g_uri_get_host (uri),
                                                (guint16) g_uri_get_port (uri), NULL, &error);
  g_assert_no_error (error);

  /* A small receive buffer makes the backlog build up sooner. */
  g_socket_set_option (g_socket_connection_get_socket (connection), SOL_SOCKET, SO_RCVBUF,
                       4096, NULL);

  request = g_strdup_printf ("GET /events HTTP/1.1\r\nHost: %s:%d\r\n\r\n",
                             g_uri_get_host (uri), g_uri_get_port (uri));
  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (connection)),
                             request, strlen (request), &written, NULL, &error);
  g_assert_no_error (error);

  return connection;
}

static void
test_slow_client_dropped (Fixture       *fixture,
                          gconstpointer  user_data)
{
  /* The long write timeout leaves the queue bound to drop the client,
   * even under valgrind. */
  const char *options[] = { "client-queue=4", "write-timeout=600000", NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketConnection) stalled = NULL;
  g_autoptr(SseClient) reader = NULL;
  g_autofree char *chunk = g_strnfill (64 * 1024, 'x');
  guint n_deltas = 0;

  g_assert_true (load_relay (fixture, options, &error));
  stalled = connect_stalled_client (fixture);
  wait_for_clients (fixture, 1);
  reader = sse_client_new (fixture, "", NULL);
  wait_for_clients (fixture, 2);

  emit (fixture, JARVIS_EVENT_STREAM_START, "r1", NULL);

  /* Each delta is a 64 KiB frame. The stalled client stops taking them
   * once the socket buffers are full, so its queue passes 4. */
  while (count_log_lines ("relay_client_dropped") == 0)
    {
      g_assert_cmpuint (n_deltas, <, 2000);
      emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r1", chunk);
      n_deltas++;
      while (g_main_context_pending (fixture->context))
        g_main_context_iteration (fixture->context, FALSE);
    }

  g_assert_cmpuint (count_log_lines ("jarvis-relay warning relay_client_dropped client=1 reason=slow"), ==, 1);

  /* The reader keeps getting everything, and the request completes
   * without waiting for the dropped client. */
  emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r1", "tail");
  emit (fixture, JARVIS_EVENT_STREAM_END, "r1", NULL);
  ITERATE_UNTIL (fixture, fixture->completes->len == 1 && find_frame (reader, "complete", "r1") != NULL);
  g_assert_cmpstr (jarvis_event_get_outcome (g_ptr_array_index (fixture->completes, 0)), ==, "completed");
  g_assert_cmpuint (count_log_lines ("relay_client_dropped"), ==, 1);
  g_assert_cmpuint (count_log_lines ("relay_client_disconnected client=2"), ==, 0);
  g_assert_cmpuint (reader->frames->len, ==, n_deltas + 3);
}

/* A client that stops reading while its queue stays far under the bound
 * must not hold the request until the end grace cancels its writes. */
static void
test_stalled_client_does_not_delay (Fixture       *fixture,
                                    gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketConnection) stalled = NULL;
  g_autoptr(SseClient) reader = NULL;
  g_autofree char *chunk = g_strnfill (64 * 1024, 'z');
  g_autoptr(GString) emitted = g_string_new (NULL);
  g_autofree char *shown = NULL;
  JarvisEvent *complete;
  guint64 cancelled = G_MAXUINT64;
  guint n_deltas = 0;

  /* Each 64 KiB delta is flushed at once as its own frame. */
  jarvis_bus_set_flush_policy (fixture->bus, 60000, 64 * 1024);

  /* The default queue bound (256) and write timeout. */
  g_assert_true (load_relay (fixture, NULL, &error));
  stalled = connect_stalled_client (fixture);
  wait_for_clients (fixture, 1);
  reader = sse_client_new (fixture, "", NULL);
  wait_for_clients (fixture, 2);

  /* Fills the socket buffers of the stalled client until a write stays
   * pending once the loop is idle, well under the queue bound. */
  emit (fixture, JARVIS_EVENT_STREAM_START, "r1", NULL);
  do
    {
      g_assert_cmpuint (n_deltas, <, 128);
      emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r1", chunk);
      g_string_append (emitted, chunk);
      n_deltas++;
      while (g_main_context_pending (fixture->context))
        g_main_context_iteration (fixture->context, FALSE);
    }
  while (jarvis_bus_get_n_invocations (fixture->bus) == 0);

  emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r1", "tail");
  g_string_append (emitted, "tail");
  emit (fixture, JARVIS_EVENT_STREAM_END, "r1", NULL);
  ITERATE_UNTIL (fixture, fixture->completes->len == 1 && find_frame (reader, "complete", "r1") != NULL);

  /* Had the request waited for the end grace, its pending writes would
   * have been cancelled. */
  complete = g_ptr_array_index (fixture->completes, 0);
  g_assert_cmpstr (jarvis_event_get_outcome (complete), ==, "completed");
  g_assert_true (g_variant_lookup (jarvis_event_get_payload (complete), "tasks_cancelled", "t", &cancelled));
  g_assert_cmpuint (cancelled, ==, 0);
  g_assert_cmpuint (count_log_lines ("relay_write_cancelled"), ==, 0);
  g_assert_cmpuint (count_log_lines ("relay_request_cut"), ==, 0);
  g_assert_cmpuint (count_log_lines ("jarvis-relay warning relay_client_dropped client=1 reason=stalled"), ==, 1);
  g_assert_cmpuint (count_log_lines ("relay_client_dropped"), ==, 1);

  /* The reading client got every frame and the whole text. */
  g_assert_cmpuint (reader->frames->len, ==, n_deltas + 3);
  shown = dup_flushed_text (reader, "r1");
  g_assert_cmpstr (shown, ==, emitted->str);
  g_assert_cmpuint (count_log_lines ("relay_client_disconnected client=2"), ==, 0);
}

static void
test_disconnected_client_dropped (Fixture       *fixture,
                                  gconstpointer  user_data)
{
  const char *first[] = { "one", NULL };
  const char *second[] = { "two", NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(SseClient) leaving = NULL;
  g_autoptr(SseClient) staying = NULL;
  JarvisEvent *complete;
  guint leaving_frames;

  g_assert_true (load_relay (fixture, NULL, &error));
  leaving = sse_client_new (fixture, "", NULL);
  staying = sse_client_new (fixture, "", NULL);
  wait_for_clients (fixture, 2);

  emit_request (fixture, "r1", first);
  ITERATE_UNTIL (fixture, find_frame (leaving, "complete", "r1") != NULL &&
                          find_frame (staying, "complete", "r1") != NULL);

  /* The relay notices the closed connection and stops writing to it. */
  g_cancellable_cancel (leaving->cancellable);
  ITERATE_UNTIL (fixture, leaving->ended);
  g_clear_object (&leaving->stream);
  ITERATE_UNTIL (fixture, count_log_lines ("relay_client_disconnected client=1") == 1);
  leaving_frames = leaving->frames->len;

  emit_request (fixture, "r2", second);
  ITERATE_UNTIL (fixture, fixture->completes->len == 2 && find_frame (staying, "complete", "r2") != NULL);
  g_assert_cmpuint (leaving->frames->len, ==, leaving_frames);
  g_assert_cmpuint (count_log_lines ("relay_client_disconnected client=2"), ==, 0);

  /* No write waited for the gone client. */
  complete = g_ptr_array_index (fixture->completes, 1);
  g_assert_cmpstr (jarvis_event_get_outcome (complete), ==, "completed");
  g_assert_cmpuint (count_log_lines ("warning"), ==, 0);
}

static void
test_supersede_cancels_writes (Fixture       *fixture,
                               gconstpointer  user_data)
{
  /* The stalled client must hold its writes until the supersede, so
   * neither its queue bound nor its write timeout may drop it first. */
  const char *options[] = { "client-queue=100000", "write-timeout=600000", NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketConnection) stalled = NULL;
  g_autoptr(SseClient) reader = NULL;
  g_autoptr(GString) emitted = g_string_new (NULL);
  g_autofree char *shown = NULL;
  g_autofree char *chunk = g_strnfill (64 * 1024, 'y');
  Frame *reader_complete;
  const char *second[] = { "second answer", NULL };
  JarvisEvent *first_complete;
  GVariant *payload;
  guint64 cancelled = 0;
  guint n_deltas = 0;

  /* Each 64 KiB delta fills the buffer and is flushed at once, but the
   * short tail waits for the final flush of the cleanup. */
  jarvis_bus_set_flush_policy (fixture->bus, 60000, 64 * 1024);

  g_assert_true (load_relay (fixture, options, &error));
  stalled = connect_stalled_client (fixture);
  wait_for_clients (fixture, 1);
  reader = sse_client_new (fixture, "", NULL);
  wait_for_clients (fixture, 2);

  /* Fills the stalled client until writes stay pending: those are the
   * invocations that the supersede must cancel. */
  emit (fixture, JARVIS_EVENT_STREAM_START, "r1", NULL);
  while (jarvis_bus_get_n_invocations (fixture->bus) < 8)
    {
      g_assert_cmpuint (n_deltas, <, 2000);
      emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r1", chunk);
      g_string_append (emitted, chunk);
      n_deltas++;
      while (g_main_context_pending (fixture->context))
        g_main_context_iteration (fixture->context, FALSE);
    }

  /* The final flush of the cleanup carries this delta. It comes after the
   * cancelled writes, so the reader must not get it. */
  emit (fixture, JARVIS_EVENT_STREAM_DELTA, "r1", "tail");
  g_string_append (emitted, "tail");
  emit_request (fixture, "r2", second);
  ITERATE_UNTIL (fixture, fixture->completes->len == 1);

  /* The stalled client still blocks the frame it is writing, so it goes
   * before r2 needs it. */
  g_io_stream_close (G_IO_STREAM (stalled), NULL, NULL);
  ITERATE_UNTIL (fixture, fixture->completes->len == 2);

  first_complete = g_ptr_array_index (fixture->completes, 0);
  g_assert_cmpstr (jarvis_event_get_request_id (first_complete), ==, "r1");
  g_assert_cmpstr (jarvis_event_get_outcome (first_complete), ==, "superseded");
  payload = jarvis_event_get_payload (first_complete);
  g_assert_true (g_variant_lookup (payload, "tasks_cancelled", "t", &cancelled));
  g_assert_cmpuint (cancelled, >=, 8);
  g_assert_cmpuint (count_log_lines ("relay_write_cancelled request_id=r1"), >=, 8);
  g_assert_cmpstr (jarvis_event_get_outcome (g_ptr_array_index (fixture->completes, 1)), ==, "completed");

  /* The reader shows a prefix of r1's text without holes, then the end. */
  ITERATE_UNTIL (fixture, find_frame (reader, "complete", "r2") != NULL);
  shown = dup_flushed_text (reader, "r1");
  g_assert_cmpuint (strlen (shown), <, emitted->len);
  g_assert_true (g_str_has_prefix (emitted->str, shown));
  reader_complete = find_frame (reader, "complete", "r1");
  g_assert_nonnull (reader_complete);
  g_assert_cmpstr (frame_get_string (reader_complete, "outcome"), ==, "superseded");
  g_assert_cmpuint (count_log_lines ("relay_request_cut request_id=r1"), ==, 1);
}

int
main (int   argc,
      char *argv[])
{
  log_lines = g_ptr_array_new_with_free_func (g_free);
  g_log_set_writer_func (record_log, NULL, NULL);
  /* The bus logs its lifecycle lines only when debug output is on. */
  g_log_set_debug_enabled (TRUE);
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("/relay/page/served", test_page_served);
  ADD ("/relay/sse/framing", test_sse_framing);
  ADD ("/relay/sse/resume", test_resume_last_event_id);
  ADD ("/relay/sse/resume-bounded-history", test_resume_bounded_history);
  ADD ("/relay/sse/invalid-last-event-id", test_invalid_last_event_id);
  ADD ("/relay/token/required", test_token_required);
  ADD ("/relay/address/remote-needs-option", test_remote_address_needs_option);
  ADD ("/relay/address/invalid", test_invalid_address);
  ADD ("/relay/client/slow-dropped", test_slow_client_dropped);
  ADD ("/relay/client/stalled-does-not-delay", test_stalled_client_does_not_delay);
  ADD ("/relay/client/disconnect-dropped", test_disconnected_client_dropped);
  ADD ("/relay/cancel/supersede-cancels-writes", test_supersede_cancels_writes);
#undef ADD

  return g_test_run ();
}
