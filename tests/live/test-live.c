/* Tests of the live source against an in-process OpenAI-compatible server
 * on loopback. The server replays scripted SSE answers with delays between
 * chunks and records what it received; a recording plugin on the bus sees
 * what the live source emitted. */

#include <gio/gunixinputstream.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <jarvis/jarvis.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "jarvis-live.h"

#define WATCHDOG_S 20
#define API_KEY "sk-test-0123456789"

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
                                               (log_level & G_LOG_LEVEL_WARNING) ? "warning" : "other",
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

/* What the server does next on one response. */
typedef enum
{
  STEP_SEND,        /* write the data */
  STEP_END,         /* end the response body */
  STEP_STALL,       /* send nothing more and keep the connection open */
  STEP_WAIT_CLOSE,  /* send nothing until the peer closes, then go on */
} StepKind;

typedef struct
{
  StepKind kind;
  guint delay_ms;
  const char *data;
} Step;

/* The answer to one request: an HTTP status, then the steps. With
 * no_headers the server never even sends the status line. */
typedef struct
{
  guint status;
  const char *content_type;
  const Step *steps;
  gboolean no_headers;
} Script;

/* A request the server received, and what became of its connection. */
typedef struct
{
  char *method;
  char *path;
  char *accept;
  char *content_type;
  char *authorization;
  JsonNode *body;
  gboolean finished;          /* the response ended or the peer went away */
  gboolean peer_closed;       /* a STEP_WAIT_CLOSE saw the peer close */
  guint peer_closed_before;   /* requests received when the peer closed */
  guint steps_sent;
} Received;

typedef struct _Fixture Fixture;

/* One response in progress. */
typedef struct
{
  Fixture *fixture;
  SoupServerMessage *message; /* owned */
  Received *received;         /* unowned: fixture->received owns it */
  const Step *next;
  GSource *timer;             /* owned, nullable: the next step, or the close watch */
} Response;

typedef struct
{
  char *type;
  char *request_id;
  char *text;
} Seen;

struct _Fixture
{
  GMainContext *context;
  JarvisBus *bus;
  SoupServer *server;
  char *url;
  const Script *scripts;      /* one per expected request, in order */
  guint n_scripts;
  GPtrArray *received;        /* owned Received pointers */
  GPtrArray *responses;       /* owned Response pointers */
  GPtrArray *seen;            /* owned Seen pointers: events the plugin got */
  GPtrArray *completes;       /* owned JarvisEvent refs */
  gboolean timed_out;
  GSource *watchdog;
};

static Fixture *current_fixture;

#define ITERATE_UNTIL(fixture, condition)                                     \
  G_STMT_START {                                                              \
    while (!(condition))                                                      \
      {                                                                       \
        g_assert_false ((fixture)->timed_out);                                \
        g_main_context_iteration ((fixture)->context, TRUE);                  \
      }                                                                       \
  } G_STMT_END

static void
received_free (gpointer data)
{
  Received *received = data;

  g_free (received->method);
  g_free (received->path);
  g_free (received->accept);
  g_free (received->content_type);
  g_free (received->authorization);
  g_clear_pointer (&received->body, json_node_unref);
  g_free (received);
}

static void
response_free (gpointer data)
{
  Response *response = data;

  if (response->timer != NULL)
    {
      g_source_destroy (response->timer);
      g_source_unref (response->timer);
    }
  g_signal_handlers_disconnect_by_data (response->message, response);
  g_object_unref (response->message);
  g_free (response);
}

static void
seen_free (gpointer data)
{
  Seen *seen = data;

  g_free (seen->type);
  g_free (seen->request_id);
  g_free (seen->text);
  g_free (seen);
}

static void
record_event (JarvisEvent *event,
              gpointer     user_data)
{
  Fixture *fixture = current_fixture;
  Seen *seen = g_new0 (Seen, 1);
  const char *text = jarvis_event_get_text (event, NULL);

  seen->type = g_strdup (jarvis_event_get_event_type (event));
  seen->request_id = g_strdup (jarvis_event_get_request_id (event));
  seen->text = g_strdup (text);
  g_ptr_array_add (fixture->seen, seen);
}

static gboolean
recorder_init (JarvisPlugin  *plugin,
               GError       **error)
{
  jarvis_plugin_subscribe (plugin, "*", record_event, NULL, NULL);

  return TRUE;
}

static const JarvisPluginInfo recorder_info = {
  JARVIS_PLUGIN_ABI_VERSION,
  sizeof (JarvisPluginInfo),
  "live_test_recorder",
  "0.1.0",
  "Records the events of the live tests",
  "MIT",
  recorder_init,
  NULL,
  { NULL, },
};

static void step_response (Response *response);
static void schedule_next_step (Response *response);

/* A peer that closed makes the socket readable with nothing to read. */
static gboolean
on_socket_ready (GSocket      *socket,
                 GIOCondition  condition,
                 gpointer      user_data)
{
  Response *response = user_data;
  char byte;

  if (!(condition & (G_IO_HUP | G_IO_ERR)) &&
      recv (g_socket_get_fd (socket), &byte, 1, MSG_PEEK | MSG_DONTWAIT) != 0)
    return G_SOURCE_CONTINUE;

  response->received->peer_closed = TRUE;
  response->received->peer_closed_before = response->fixture->received->len;
  g_clear_pointer (&response->timer, g_source_unref);
  schedule_next_step (response);

  return G_SOURCE_REMOVE;
}

static gboolean
on_step_timer (gpointer user_data)
{
  Response *response = user_data;

  g_clear_pointer (&response->timer, g_source_unref);
  step_response (response);

  return G_SOURCE_REMOVE;
}

/* Carries out the response's current step and schedules the next. */
static void
step_response (Response *response)
{
  const Step *step = response->next;
  SoupMessageBody *body = soup_server_message_get_response_body (response->message);

  if (response->received->finished)
    return;

  switch (step->kind)
    {
    case STEP_SEND:
      soup_message_body_append (body, SOUP_MEMORY_STATIC, step->data, strlen (step->data));
      soup_server_message_unpause (response->message);
      response->received->steps_sent++;
      break;

    case STEP_END:
      soup_message_body_complete (body);
      soup_server_message_unpause (response->message);
      return;

    case STEP_STALL:
      return;

    case STEP_WAIT_CLOSE:
      response->timer = g_socket_create_source (soup_server_message_get_socket (response->message),
                                                G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
      g_source_set_callback (response->timer, G_SOURCE_FUNC (on_socket_ready), response, NULL);
      g_source_attach (response->timer, response->fixture->context);
      return;
    }

  schedule_next_step (response);
}

static void
schedule_next_step (Response *response)
{
  response->next++;
  response->timer = g_timeout_source_new (response->next->delay_ms);
  g_source_set_callback (response->timer, on_step_timer, response, NULL);
  g_source_attach (response->timer, response->fixture->context);
}

static void
on_response_finished (SoupServerMessage *message,
                      gpointer           user_data)
{
  Response *response = user_data;

  response->received->finished = TRUE;
}

static char *
dup_header (SoupMessageHeaders *headers,
            const char         *name)
{
  return g_strdup (soup_message_headers_get_one (headers, name));
}

static void
handle_completions (SoupServer        *server,
                    SoupServerMessage *message,
                    const char        *path,
                    GHashTable        *query,
                    gpointer           user_data)
{
  Fixture *fixture = user_data;
  SoupMessageHeaders *request_headers = soup_server_message_get_request_headers (message);
  SoupMessageBody *request_body = soup_server_message_get_request_body (message);
  g_autoptr(GBytes) body_bytes = soup_message_body_flatten (request_body);
  const Script *script;
  Received *received = g_new0 (Received, 1);
  Response *response;

  received->method = g_strdup (soup_server_message_get_method (message));
  received->path = g_strdup (path);
  received->accept = dup_header (request_headers, "Accept");
  received->content_type = dup_header (request_headers, "Content-Type");
  received->authorization = dup_header (request_headers, "Authorization");
  received->body = json_from_string (g_bytes_get_data (body_bytes, NULL), NULL);
  g_ptr_array_add (fixture->received, received);

  g_assert_cmpuint (fixture->received->len, <=, fixture->n_scripts);
  script = &fixture->scripts[fixture->received->len - 1];

  response = g_new0 (Response, 1);
  response->fixture = fixture;
  response->message = g_object_ref (message);
  response->received = received;
  response->next = script->steps;
  g_ptr_array_add (fixture->responses, response);
  g_signal_connect (message, "finished", G_CALLBACK (on_response_finished), response);

  soup_server_message_pause (message);
  if (script->no_headers)
    return;

  /* libsoup 3.2.2 leaks a server connection that sits idle until the
   * client closes it, so none is kept alive. */
  soup_message_headers_replace (soup_server_message_get_response_headers (message),
                                "Connection", "close");

  soup_server_message_set_status (message, script->status, NULL);
  soup_message_headers_set_content_type (soup_server_message_get_response_headers (message),
                                         script->content_type, NULL);
  soup_message_headers_set_encoding (soup_server_message_get_response_headers (message),
                                     SOUP_ENCODING_CHUNKED);

  response->timer = g_timeout_source_new (script->steps[0].delay_ms);
  g_source_set_callback (response->timer, on_step_timer, response, NULL);
  g_source_attach (response->timer, fixture->context);
}

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

static void
fixture_set_up (Fixture       *fixture,
                gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) bound = NULL;
  GSList *listeners;

  fixture->context = g_main_context_new ();
  g_main_context_push_thread_default (fixture->context);
  g_ptr_array_set_size (log_lines, 0);
  current_fixture = fixture;

  fixture->received = g_ptr_array_new_with_free_func (received_free);
  fixture->responses = g_ptr_array_new_with_free_func (response_free);
  fixture->seen = g_ptr_array_new_with_free_func (seen_free);
  fixture->completes = g_ptr_array_new_with_free_func ((GDestroyNotify) jarvis_event_unref);

  fixture->bus = jarvis_bus_new (fixture->context);
  g_signal_connect (fixture->bus, "request-completed", G_CALLBACK (on_request_completed), fixture);
  g_assert_true (jarvis_bus_register_plugin (fixture->bus, &recorder_info, &error));
  g_assert_no_error (error);

  fixture->server = soup_server_new (NULL, NULL);
  soup_server_add_handler (fixture->server, "/v1/chat/completions", handle_completions, fixture, NULL);
  address = g_inet_socket_address_new (loopback, 0);
  g_assert_true (soup_server_listen (fixture->server, address, 0, &error));
  g_assert_no_error (error);
  /* From the listener, because soup_server_get_uris() of libsoup 3.2
   * leaks an address per call. */
  listeners = soup_server_get_listeners (fixture->server);
  bound = g_socket_get_local_address (listeners->data, &error);
  g_assert_no_error (error);
  g_slist_free (listeners);
  fixture->url = g_strdup_printf ("http://127.0.0.1:%u/v1/chat/completions",
                                  g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));

  fixture->watchdog = g_timeout_source_new_seconds (WATCHDOG_S);
  g_source_set_callback (fixture->watchdog, on_watchdog, fixture, NULL);
  g_source_attach (fixture->watchdog, fixture->context);
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
  g_clear_object (&fixture->bus);

  g_clear_pointer (&fixture->responses, g_ptr_array_unref);
  soup_server_disconnect (fixture->server);
  g_clear_object (&fixture->server);
  while (g_main_context_pending (fixture->context))
    g_main_context_iteration (fixture->context, FALSE);

  g_clear_pointer (&fixture->received, g_ptr_array_unref);
  g_clear_pointer (&fixture->seen, g_ptr_array_unref);
  g_clear_pointer (&fixture->completes, g_ptr_array_unref);
  g_clear_pointer (&fixture->url, g_free);
  g_source_destroy (fixture->watchdog);
  g_clear_pointer (&fixture->watchdog, g_source_unref);
  current_fixture = NULL;
  g_main_context_pop_thread_default (fixture->context);
  g_clear_pointer (&fixture->context, g_main_context_unref);
}

static void
use_scripts (Fixture      *fixture,
             const Script *scripts,
             guint         n_scripts)
{
  fixture->scripts = scripts;
  fixture->n_scripts = n_scripts;
}

typedef struct
{
  gboolean done;
  gboolean success;
  GError *error;
} RunResult;

static void
on_live_done (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  RunResult *run = user_data;

  run->success = jarvis_live_run_finish (result, &run->error);
  run->done = TRUE;
}

static JarvisLiveOptions
default_options (Fixture *fixture)
{
  JarvisLiveOptions options = { 0 };

  options.url = fixture->url;
  options.model = "test-model";
  options.api_key = API_KEY;
  options.connect_timeout_s = 5;
  options.idle_timeout_s = 5;

  return options;
}

static char *
dup_flushed_text (Fixture    *fixture,
                  const char *request_id)
{
  GString *text = g_string_new (NULL);

  for (guint i = 0; i < fixture->seen->len; i++)
    {
      Seen *seen = g_ptr_array_index (fixture->seen, i);

      if (g_str_equal (seen->type, JARVIS_EVENT_STREAM_FLUSH) &&
          g_str_equal (seen->request_id, request_id))
        g_string_append (text, seen->text);
    }

  return g_string_free (text, FALSE);
}

static JarvisEvent *
find_complete (Fixture    *fixture,
               const char *request_id)
{
  for (guint i = 0; i < fixture->completes->len; i++)
    {
      JarvisEvent *complete = g_ptr_array_index (fixture->completes, i);

      if (g_str_equal (jarvis_event_get_request_id (complete), request_id))
        return complete;
    }

  return NULL;
}

static guint64
get_counter (JarvisEvent *complete,
             const char  *name)
{
  guint64 value = G_MAXUINT64;

  g_assert_true (g_variant_lookup (jarvis_event_get_payload (complete), name, "t", &value));

  return value;
}

static const char *
get_error (JarvisEvent *complete)
{
  const char *error = NULL;

  g_variant_lookup (jarvis_event_get_payload (complete), "error", "&s", &error);

  return error;
}

/* Checks one message of a request body's conversation. */
static void
assert_message (Received   *received,
                guint       index,
                const char *role,
                const char *content)
{
  JsonArray *messages = json_object_get_array_member (json_node_get_object (received->body), "messages");
  JsonObject *message;

  g_assert_cmpuint (index, <, json_array_get_length (messages));
  message = json_array_get_object_element (messages, index);
  g_assert_cmpstr (json_object_get_string_member (message, "role"), ==, role);
  g_assert_cmpstr (json_object_get_string_member (message, "content"), ==, content);
}

static guint
count_messages (Received *received)
{
  JsonObject *body = json_node_get_object (received->body);

  return json_array_get_length (json_object_get_array_member (body, "messages"));
}

#define CHUNK(content) \
  "data: {\"id\":\"chatcmpl-t1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" content "\"},\"finish_reason\":null}]}\n\n"
#define ROLE_CHUNK \
  "data: {\"id\":\"chatcmpl-t1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n"
#define STOP_CHUNK \
  "data: {\"id\":\"chatcmpl-t1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
#define DONE "data: [DONE]\n\n"

static const Step whole_answer[] = {
  { STEP_SEND, 5, ROLE_CHUNK },
  { STEP_SEND, 10, CHUNK ("Hel") },
  /* One SSE event split across two writes. */
  { STEP_SEND, 10, "data: {\"id\":\"chatcmpl-t1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo w" },
  { STEP_SEND, 10, "\\u00f6rld\"},\"finish_reason\":null}]}\n\n" },
  { STEP_SEND, 10, STOP_CHUNK DONE },
  { STEP_END, 5, NULL },
};

static void
test_whole_answer (Fixture       *fixture,
                   gconstpointer  user_data)
{
  static const Script scripts[] = { { SOUP_STATUS_OK, "text/event-stream", whole_answer, FALSE } };
  JarvisLiveOptions options = default_options (fixture);
  RunResult run = { 0 };
  g_autofree char *text = NULL;
  Received *received;
  JarvisEvent *complete;

  use_scripts (fixture, scripts, G_N_ELEMENTS (scripts));
  options.prompt = "Say hello";
  jarvis_live_run_async (fixture->bus, &options, NULL, NULL, on_live_done, &run);
  ITERATE_UNTIL (fixture, run.done);

  g_assert_no_error (run.error);
  g_assert_true (run.success);

  g_assert_cmpuint (fixture->received->len, ==, 1);
  received = g_ptr_array_index (fixture->received, 0);
  g_assert_cmpstr (received->method, ==, "POST");
  g_assert_cmpstr (received->accept, ==, "text/event-stream");
  g_assert_cmpstr (received->content_type, ==, "application/json");
  g_assert_cmpstr (received->authorization, ==, "Bearer " API_KEY);
  g_assert_nonnull (received->body);
  g_assert_true (json_object_get_boolean_member (json_node_get_object (received->body), "stream"));
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (received->body), "model"),
                   ==, "test-model");
  g_assert_cmpuint (count_messages (received), ==, 1);
  assert_message (received, 0, "user", "Say hello");

  text = dup_flushed_text (fixture, "live-1");
  g_assert_cmpstr (text, ==, "Hello wörld");
  g_assert_cmpuint (fixture->completes->len, ==, 1);
  complete = find_complete (fixture, "live-1");
  g_assert_cmpstr (jarvis_event_get_outcome (complete), ==, "completed");
  g_assert_cmpuint (get_counter (complete, "tokens"), ==, 2);

  /* The key is a secret: no log line carries it. */
  g_assert_cmpuint (count_log_lines ("sk-test"), ==, 0);
  g_assert_cmpuint (count_log_lines ("warning"), ==, 0);
}

static const Step first_answer_cut[] = {
  { STEP_SEND, 5, ROLE_CHUNK },
  { STEP_SEND, 5, CHUNK ("one ") },
  { STEP_SEND, 5, CHUNK ("two ") },
  { STEP_WAIT_CLOSE, 0, NULL },
  { STEP_SEND, 0, CHUNK ("three") STOP_CHUNK DONE },
  { STEP_END, 5, NULL },
};

static const Step second_answer[] = {
  { STEP_SEND, 5, ROLE_CHUNK CHUNK ("fine") },
  { STEP_SEND, 5, STOP_CHUNK DONE },
  { STEP_END, 5, NULL },
};

static void
test_followup_supersedes (Fixture       *fixture,
                          gconstpointer  user_data)
{
  static const Script scripts[] = {
    { SOUP_STATUS_OK, "text/event-stream", first_answer_cut, FALSE },
    { SOUP_STATUS_OK, "text/event-stream", second_answer, FALSE },
  };
  JarvisLiveOptions options = default_options (fixture);
  RunResult run = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(GInputStream) prompts = NULL;
  g_autofree char *first_text = NULL;
  g_autofree char *second_text = NULL;
  Received *first;
  Received *second;
  JarvisEvent *complete;
  int fds[2];
  guint seen_at_cancel;

  use_scripts (fixture, scripts, G_N_ELEMENTS (scripts));
  g_assert_true (g_unix_open_pipe (fds, FD_CLOEXEC, &error));
  prompts = g_unix_input_stream_new (fds[0], TRUE);

  g_assert_cmpint (write (fds[1], "first question\n", 15), ==, 15);
  jarvis_live_run_async (fixture->bus, &options, prompts, NULL, on_live_done, &run);

  /* The follow-up comes once the first answer is half through. */
  ITERATE_UNTIL (fixture, fixture->received->len == 1 &&
                          ((Received *) g_ptr_array_index (fixture->received, 0))->steps_sent == 3);
  for (first_text = dup_flushed_text (fixture, "live-1");
       !g_str_equal (first_text, "one two ");
       first_text = dup_flushed_text (fixture, "live-1"))
    {
      g_free (first_text);
      g_assert_false (fixture->timed_out);
      g_main_context_iteration (fixture->context, TRUE);
    }
  seen_at_cancel = fixture->seen->len;
  g_assert_cmpint (write (fds[1], "second question\n", 16), ==, 16);
  g_close (fds[1], NULL);

  ITERATE_UNTIL (fixture, run.done);
  g_assert_no_error (run.error);
  g_assert_true (run.success);

  /* The server saw the first connection close before the second request
   * came, and the rest it sent then reached nobody. */
  g_assert_cmpuint (fixture->received->len, ==, 2);
  first = g_ptr_array_index (fixture->received, 0);
  second = g_ptr_array_index (fixture->received, 1);
  g_assert_true (first->peer_closed);
  g_assert_cmpuint (first->peer_closed_before, ==, 1);
  ITERATE_UNTIL (fixture, first->finished);

  /* The second request carries the conversation so far, with the part of
   * the first answer that the user saw. */
  g_assert_cmpuint (count_messages (second), ==, 3);
  assert_message (second, 0, "user", "first question");
  assert_message (second, 1, "assistant", "one two ");
  assert_message (second, 2, "user", "second question");

  complete = find_complete (fixture, "live-1");
  g_assert_nonnull (complete);
  g_assert_cmpstr (jarvis_event_get_outcome (complete), ==, "superseded");
  g_assert_cmpuint (get_counter (complete, "late_events_dropped"), ==, 0);
  g_assert_cmpuint (get_counter (complete, "tokens"), ==, 2);

  /* After the cancel, no token of the first answer reached the plugin. */
  for (guint i = seen_at_cancel; i < fixture->seen->len; i++)
    {
      Seen *seen = g_ptr_array_index (fixture->seen, i);

      if (g_str_equal (seen->request_id, "live-1"))
        g_assert_cmpstr (seen->type, !=, JARVIS_EVENT_STREAM_DELTA);
    }

  second_text = dup_flushed_text (fixture, "live-2");
  g_assert_cmpstr (second_text, ==, "fine");
  complete = find_complete (fixture, "live-2");
  g_assert_cmpstr (jarvis_event_get_outcome (complete), ==, "completed");
  g_assert_cmpuint (count_log_lines ("prev_stream_finished_cleanly"), ==, 1);
}

static void
test_run_cancelled (Fixture       *fixture,
                    gconstpointer  user_data)
{
  static const Script scripts[] = { { SOUP_STATUS_OK, "text/event-stream", first_answer_cut, FALSE } };
  JarvisLiveOptions options = default_options (fixture);
  RunResult run = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(GInputStream) prompts = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autofree char *text = NULL;
  Received *received;
  int fds[2];

  use_scripts (fixture, scripts, G_N_ELEMENTS (scripts));
  g_assert_true (g_unix_open_pipe (fds, FD_CLOEXEC, &error));
  prompts = g_unix_input_stream_new (fds[0], TRUE);
  g_assert_cmpint (write (fds[1], "first question\n", 15), ==, 15);

  /* The input stays open: the cancel, not its end, stops the run. */
  jarvis_live_run_async (fixture->bus, &options, prompts, cancellable, on_live_done, &run);
  ITERATE_UNTIL (fixture, fixture->received->len == 1 &&
                          ((Received *) g_ptr_array_index (fixture->received, 0))->steps_sent == 3);
  g_cancellable_cancel (cancellable);
  ITERATE_UNTIL (fixture, run.done);

  g_assert_false (run.success);
  g_assert_error (run.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&run.error);
  g_assert_cmpstr (jarvis_event_get_outcome (find_complete (fixture, "live-1")), ==, "cancelled");
  text = dup_flushed_text (fixture, "live-1");
  g_assert_true (g_str_has_prefix ("one two ", text));

  received = g_ptr_array_index (fixture->received, 0);
  ITERATE_UNTIL (fixture, received->peer_closed);
  g_close (fds[1], NULL);
}

static const Step server_error_body[] = {
  { STEP_SEND, 5, "{\"error\":{\"message\":\"The model is overloaded\",\"type\":\"server_error\"}}" },
  { STEP_END, 5, NULL },
};

static void
test_http_error_status (Fixture       *fixture,
                        gconstpointer  user_data)
{
  static const Script scripts[] = {
    { SOUP_STATUS_SERVICE_UNAVAILABLE, "application/json", server_error_body, FALSE },
  };
  JarvisLiveOptions options = default_options (fixture);
  RunResult run = { 0 };
  JarvisEvent *complete;

  use_scripts (fixture, scripts, G_N_ELEMENTS (scripts));
  options.prompt = "Hello?";
  jarvis_live_run_async (fixture->bus, &options, NULL, NULL, on_live_done, &run);
  ITERATE_UNTIL (fixture, run.done);

  g_assert_false (run.success);
  g_assert_error (run.error, G_IO_ERROR, G_IO_ERROR_FAILED);
  g_assert_nonnull (strstr (run.error->message, "The model is overloaded"));
  g_clear_error (&run.error);

  complete = find_complete (fixture, "live-1");
  g_assert_cmpstr (jarvis_event_get_outcome (complete), ==, "failed");
  g_assert_nonnull (get_error (complete));
  g_assert_nonnull (strstr (get_error (complete), "HTTP 503"));
  g_assert_nonnull (strstr (get_error (complete), "The model is overloaded"));
  g_assert_cmpuint (count_log_lines ("live_request_failed request_id=live-1 status=503"), ==, 1);
}

static const Step in_band_error[] = {
  { STEP_SEND, 5, ROLE_CHUNK CHUNK ("partial ") },
  { STEP_SEND, 5, "data: {\"error\":{\"message\":\"Rate limit reached\",\"code\":429}}\n\n" },
  { STEP_END, 5, NULL },
};

static void
test_in_band_error (Fixture       *fixture,
                    gconstpointer  user_data)
{
  static const Script scripts[] = { { SOUP_STATUS_OK, "text/event-stream", in_band_error, FALSE } };
  JarvisLiveOptions options = default_options (fixture);
  RunResult run = { 0 };
  g_autofree char *text = NULL;
  JarvisEvent *complete;

  use_scripts (fixture, scripts, G_N_ELEMENTS (scripts));
  options.prompt = "Hello?";
  jarvis_live_run_async (fixture->bus, &options, NULL, NULL, on_live_done, &run);
  ITERATE_UNTIL (fixture, run.done);

  g_assert_false (run.success);
  g_assert_nonnull (run.error);
  g_assert_nonnull (strstr (run.error->message, "Rate limit reached"));
  g_clear_error (&run.error);

  text = dup_flushed_text (fixture, "live-1");
  g_assert_cmpstr (text, ==, "partial ");
  complete = find_complete (fixture, "live-1");
  g_assert_cmpstr (jarvis_event_get_outcome (complete), ==, "failed");
  g_assert_nonnull (strstr (get_error (complete), "Rate limit reached"));
  g_assert_nonnull (strstr (get_error (complete), "status 429"));
  g_assert_cmpuint (count_log_lines ("live_request_failed request_id=live-1 status=429"), ==, 1);
}

static const Step stalls[] = {
  { STEP_SEND, 5, ROLE_CHUNK CHUNK ("before the stall") },
  { STEP_WAIT_CLOSE, 0, NULL },
  { STEP_SEND, 0, CHUNK ("too late") },
  { STEP_END, 5, NULL },
};

static void
test_idle_timeout (Fixture       *fixture,
                   gconstpointer  user_data)
{
  static const Script scripts[] = { { SOUP_STATUS_OK, "text/event-stream", stalls, FALSE } };
  JarvisLiveOptions options = default_options (fixture);
  RunResult run = { 0 };
  g_autofree char *text = NULL;
  JarvisEvent *complete;

  use_scripts (fixture, scripts, G_N_ELEMENTS (scripts));
  options.prompt = "Hello?";
  options.idle_timeout_s = 1;
  jarvis_live_run_async (fixture->bus, &options, NULL, NULL, on_live_done, &run);
  ITERATE_UNTIL (fixture, run.done);

  g_assert_false (run.success);
  g_assert_nonnull (strstr (run.error->message, "sent nothing for 1 s"));
  g_clear_error (&run.error);

  text = dup_flushed_text (fixture, "live-1");
  g_assert_cmpstr (text, ==, "before the stall");
  complete = find_complete (fixture, "live-1");
  g_assert_cmpstr (jarvis_event_get_outcome (complete), ==, "failed");
  g_assert_nonnull (strstr (get_error (complete), "--idle-timeout"));

  /* The stalled connection was closed, not left hanging. */
  ITERATE_UNTIL (fixture, ((Received *) g_ptr_array_index (fixture->received, 0))->peer_closed);
}

static const Step never_answers[] = {
  { STEP_STALL, 0, NULL },
};

static void
test_connect_timeout (Fixture       *fixture,
                      gconstpointer  user_data)
{
  static const Script scripts[] = { { SOUP_STATUS_OK, "text/event-stream", never_answers, TRUE } };
  JarvisLiveOptions options = default_options (fixture);
  RunResult run = { 0 };
  JarvisEvent *complete;

  use_scripts (fixture, scripts, G_N_ELEMENTS (scripts));
  options.prompt = "Hello?";
  options.connect_timeout_s = 1;
  jarvis_live_run_async (fixture->bus, &options, NULL, NULL, on_live_done, &run);
  ITERATE_UNTIL (fixture, run.done);

  g_assert_false (run.success);
  g_assert_nonnull (strstr (run.error->message, "within 1 s"));
  g_clear_error (&run.error);

  complete = find_complete (fixture, "live-1");
  g_assert_cmpstr (jarvis_event_get_outcome (complete), ==, "failed");
  g_assert_nonnull (strstr (get_error (complete), "--connect-timeout"));
}

static const Step closes_mid_event[] = {
  { STEP_SEND, 5, ROLE_CHUNK CHUNK ("abc") },
  { STEP_SEND, 5, "data: {\"id\":\"chatcmpl-t1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"de" },
  { STEP_END, 5, NULL },
};

static void
test_close_mid_event (Fixture       *fixture,
                      gconstpointer  user_data)
{
  static const Script scripts[] = { { SOUP_STATUS_OK, "text/event-stream", closes_mid_event, FALSE } };
  JarvisLiveOptions options = default_options (fixture);
  RunResult run = { 0 };
  g_autofree char *text = NULL;
  JarvisEvent *complete;

  use_scripts (fixture, scripts, G_N_ELEMENTS (scripts));
  options.prompt = "Hello?";
  jarvis_live_run_async (fixture->bus, &options, NULL, NULL, on_live_done, &run);
  ITERATE_UNTIL (fixture, run.done);

  g_assert_false (run.success);
  g_assert_nonnull (strstr (run.error->message, "closed the stream before the end of the answer"));
  g_clear_error (&run.error);

  /* What arrived whole is kept; the cut event is not. */
  text = dup_flushed_text (fixture, "live-1");
  g_assert_cmpstr (text, ==, "abc");
  complete = find_complete (fixture, "live-1");
  g_assert_cmpstr (jarvis_event_get_outcome (complete), ==, "failed");
}

static void
test_connection_refused (Fixture       *fixture,
                         gconstpointer  user_data)
{
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                            G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any_port = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  JarvisLiveOptions options = default_options (fixture);
  RunResult run = { 0 };
  JarvisEvent *complete;

  /* A port that was just free, bound but not listening, refuses. */
  g_assert_true (g_socket_bind (socket, any_port, FALSE, &error));
  bound = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  url = g_strdup_printf ("http://127.0.0.1:%u/v1/chat/completions",
                         g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));

  options.url = url;
  options.prompt = "Hello?";
  jarvis_live_run_async (fixture->bus, &options, NULL, NULL, on_live_done, &run);
  ITERATE_UNTIL (fixture, run.done);

  g_assert_false (run.success);
  g_assert_nonnull (strstr (run.error->message, "cannot reach"));
  g_clear_error (&run.error);
  complete = find_complete (fixture, "live-1");
  g_assert_cmpstr (jarvis_event_get_outcome (complete), ==, "failed");
}

static void
test_invalid_url (Fixture       *fixture,
                  gconstpointer  user_data)
{
  JarvisLiveOptions options = default_options (fixture);
  RunResult run = { 0 };

  options.url = "ftp://127.0.0.1/";
  options.prompt = "Hello?";
  jarvis_live_run_async (fixture->bus, &options, NULL, NULL, on_live_done, &run);
  ITERATE_UNTIL (fixture, run.done);

  g_assert_false (run.success);
  g_assert_error (run.error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (run.error->message, "ftp://127.0.0.1/"));
  g_clear_error (&run.error);
  g_assert_cmpuint (fixture->completes->len, ==, 0);
}

/* Computes the answer text of a recorded OpenAI SSE stream on its own,
 * from the `data:` lines, without the decoder under test. */
static char *
dup_recorded_answer (const char *contents)
{
  g_auto(GStrv) lines = g_strsplit (contents, "\n", -1);
  GString *answer = g_string_new (NULL);

  for (gsize i = 0; lines[i] != NULL; i++)
    {
      g_autoptr(JsonNode) node = NULL;
      JsonArray *choices;

      if (!g_str_has_prefix (lines[i], "data: ") || g_str_equal (lines[i], "data: [DONE]"))
        continue;

      node = json_from_string (lines[i] + strlen ("data: "), NULL);
      g_assert_nonnull (node);
      choices = json_object_get_array_member (json_node_get_object (node), "choices");
      for (guint c = 0; choices != NULL && c < json_array_get_length (choices); c++)
        {
          JsonObject *choice = json_array_get_object_element (choices, c);
          JsonObject *delta = json_object_get_object_member (choice, "delta");

          if (json_object_get_int_member (choice, "index") == 0 && delta != NULL &&
              json_object_has_member (delta, "content") &&
              !JSON_NODE_HOLDS_NULL (json_object_get_member (delta, "content")))
            g_string_append (answer, json_object_get_string_member (delta, "content"));
        }
    }

  return g_string_free (answer, FALSE);
}

static void
test_recorded_stream (Fixture       *fixture,
                      gconstpointer  user_data)
{
  const char *corpus_dir = g_getenv ("JARVIS_CORPUS_DIR");
  g_autofree char *path = NULL;
  g_autofree char *contents = NULL;
  g_autofree char *expected = NULL;
  g_autofree char *text = NULL;
  g_autoptr(GPtrArray) chunks = g_ptr_array_new_with_free_func (g_free);
  g_autofree Step *steps = NULL;
  Script script = { SOUP_STATUS_OK, "text/event-stream", NULL, FALSE };
  JarvisLiveOptions options = default_options (fixture);
  RunResult run = { 0 };
  gsize length = 0;
  guint n_steps = 0;

  path = g_build_filename (corpus_dir != NULL ? corpus_dir : "", "openai-chat-long-181chunks-usage.sse", NULL);
  if (corpus_dir == NULL || !g_file_get_contents (path, &contents, &length, NULL))
    {
      g_test_skip ("the recorded stream corpus is not there; set JARVIS_CORPUS_DIR");
      return;
    }

  /* The recording goes out in 1000-byte writes, 1 ms apart, so events and
   * UTF-8 sequences are split across reads. */
  steps = g_new0 (Step, length / 1000 + 2);
  for (gsize offset = 0; offset < length; offset += 1000)
    {
      char *chunk = g_strndup (contents + offset, MIN (1000, length - offset));

      g_ptr_array_add (chunks, chunk);
      steps[n_steps++] = (Step) { STEP_SEND, 1, chunk };
    }
  steps[n_steps] = (Step) { STEP_END, 1, NULL };
  script.steps = steps;
  use_scripts (fixture, &script, 1);

  options.prompt = "What is the weather?";
  jarvis_live_run_async (fixture->bus, &options, NULL, NULL, on_live_done, &run);
  ITERATE_UNTIL (fixture, run.done);
  g_assert_no_error (run.error);
  g_assert_true (run.success);

  expected = dup_recorded_answer (contents);
  g_assert_cmpuint (strlen (expected), >, 100);
  text = dup_flushed_text (fixture, "live-1");
  g_assert_cmpstr (text, ==, expected);
  g_assert_cmpstr (jarvis_event_get_outcome (find_complete (fixture, "live-1")), ==, "completed");

  /* The steps go away with this function, so the response must be over. */
  ITERATE_UNTIL (fixture, ((Received *) g_ptr_array_index (fixture->received, 0))->finished);
}

typedef struct
{
  gboolean done;
  char *stdout_text;
  char *stderr_text;
} HostResult;

static void
on_host_done (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  HostResult *host = user_data;
  g_autoptr(GError) error = NULL;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), result,
                                        &host->stdout_text, &host->stderr_text, &error);
  g_assert_no_error (error);
  host->done = TRUE;
}

static void
test_host_binary (Fixture       *fixture,
                  gconstpointer  user_data)
{
  static const Script scripts[] = { { SOUP_STATUS_OK, "text/event-stream", whole_answer, FALSE } };
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *key_dir = NULL;
  g_autofree char *key_file = NULL;
  HostResult host = { 0 };
  Received *received;

  use_scripts (fixture, scripts, G_N_ELEMENTS (scripts));
  key_dir = g_dir_make_tmp ("jarvis-live-key-XXXXXX", &error);
  g_assert_no_error (error);
  key_file = g_build_filename (key_dir, "key", NULL);
  g_assert_true (g_file_set_contents (key_file, API_KEY "\n", -1, &error));

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_unsetenv (launcher, "OPENAI_API_KEY");
  process = g_subprocess_launcher_spawn (launcher, &error, JARVIS_HOST_PATH,
                                         "--plugin-dir", PLUGIN_DIR, "--plugin", "console",
                                         "--url", fixture->url, "--model", "test-model",
                                         "--api-key-file", key_file, "--prompt", "Say hello",
                                         "--connect-timeout", "5", "--idle-timeout", "5",
                                         "-v", NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (process, NULL, NULL, on_host_done, &host);
  ITERATE_UNTIL (fixture, host.done);

  g_assert_true (g_subprocess_get_if_exited (process));
  g_assert_cmpint (g_subprocess_get_exit_status (process), ==, 0);
  g_assert_cmpstr (host.stdout_text, ==, "Hello wörld\n");
  g_assert_null (strstr (host.stderr_text, "sk-test"));
  g_assert_nonnull (strstr (host.stderr_text, "cleanup_request_complete request_id=live-1"));

  g_assert_cmpuint (fixture->received->len, ==, 1);
  received = g_ptr_array_index (fixture->received, 0);
  g_assert_cmpstr (received->authorization, ==, "Bearer " API_KEY);
  assert_message (received, 0, "user", "Say hello");

  g_unlink (key_file);
  g_rmdir (key_dir);
  g_free (host.stdout_text);
  g_free (host.stderr_text);
}

int
main (int   argc,
      char *argv[])
{
  /* The live source uses the system's proxy settings. The tests talk to
   * loopback only, and GIO's libproxy module would also load C++ code that
   * AddressSanitizer cannot intercept, so GIO's no-proxy resolver is used. */
  g_setenv ("GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
  log_lines = g_ptr_array_new_with_free_func (g_free);
  g_log_set_writer_func (record_log, NULL, NULL);
  /* The bus logs its lifecycle lines only when debug output is on. */
  g_log_set_debug_enabled (TRUE);
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("/live/answer/whole", test_whole_answer);
  ADD ("/live/followup/supersedes", test_followup_supersedes);
  ADD ("/live/cancel/run", test_run_cancelled);
  ADD ("/live/error/http-status", test_http_error_status);
  ADD ("/live/error/in-band", test_in_band_error);
  ADD ("/live/timeout/idle", test_idle_timeout);
  ADD ("/live/timeout/connect", test_connect_timeout);
  ADD ("/live/close/mid-event", test_close_mid_event);
  ADD ("/live/connect/refused", test_connection_refused);
  ADD ("/live/url/invalid", test_invalid_url);
  ADD ("/live/host/binary", test_host_binary);
  ADD ("/live/answer/recorded", test_recorded_stream);
#undef ADD

  return g_test_run ();
}
