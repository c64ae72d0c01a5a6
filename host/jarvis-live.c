/* The live source: sends prompts to an OpenAI-compatible chat-completions
 * endpoint and turns each streamed answer into request events on the bus.
 *
 * One request per prompt. Its HTTP request hangs off the request's scope
 * (jarvis_bus_dup_request_cancellable()), so when a new prompt supersedes
 * it, the bus cancels the scope, that cancels the HTTP request, and libsoup
 * closes the connection. The next prompt goes out only after the old
 * request completed and the new start was admitted. */

#include "config.h"

#include "jarvis-live.h"

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "input/jarvis-decoder.h"

/* The live source logs under its own domain, whatever the host uses. */
#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "jarvis-live"

/* Bytes read from the response per call, and the most of an error body
 * that is kept for the message. */
#define READ_SIZE 16384
#define MAX_ERROR_BODY 65536

/* Extra seconds that libsoup's own I/O timeout waits beyond ours, so that
 * our clearer messages always come first. */
#define SOUP_TIMEOUT_MARGIN_S 5

typedef struct _LiveRun LiveRun;

typedef struct
{
  LiveRun *run;                     /* unowned: the run outlives it */
  char *request_id;                 /* owned */
  char *prompt;                     /* owned */
  GString *answer;                  /* owned: delta text of choice 0 */

  GCancellable *cancellable;        /* owned: cancels the HTTP request */
  GCancellable *scope;              /* owned, nullable: the request's scope */
  gulong scope_handler;
  SoupMessage *message;             /* owned, nullable */
  GInputStream *body;               /* owned, nullable */
  GString *error_body;              /* owned, nullable: a non-2xx body */
  JarvisDecoder *decoder;           /* owned, nullable */
  GSource *timer;                   /* owned, nullable: connect or idle */

  gboolean started;                 /* request-started was seen */
  gboolean sent;                    /* the HTTP request went out */
  gboolean ended;                   /* an end or error event was emitted */
  gboolean completed;               /* request-completed was seen */
  gboolean http_busy;               /* an async HTTP call is pending */
} LiveRequest;

struct _LiveRun
{
  GTask *task;                      /* owned until it returns */
  JarvisBus *bus;                   /* owned */
  GMainContext *context;            /* unowned: the bus's */
  char *url;                        /* owned */
  char *model;                      /* owned, nullable */
  char *api_key;                    /* owned, nullable, secret */
  char *session_id;                 /* owned */
  guint connect_timeout_s;          /* 0: no limit */
  guint idle_timeout_s;             /* 0: no limit */
  gboolean single_prompt;

  SoupSession *session;             /* owned */
  GDataInputStream *prompts;        /* owned, nullable */
  GCancellable *read_cancellable;   /* owned: stops reading prompts */
  GSource *cancel_source;           /* owned, nullable: watches the run's cancellable */
  GQueue requests;                  /* owned LiveRequest pointers, oldest first */
  GList *finishing;                 /* owned LiveRequest pointers whose HTTP call is still pending */
  JsonArray *messages;              /* owned: the conversation so far */
  guint64 n_requests;
  gulong started_handler;
  gulong completed_handler;

  gboolean reading;                 /* a line read is pending */
  gboolean input_done;              /* no more prompts will come */
  gboolean cancelled;
  guint n_failed;
  char *first_failure;              /* owned, nullable */
  GError *input_error;              /* owned, nullable */
};

static void maybe_send (LiveRun *run);
static void read_next_prompt (LiveRun *run);
static void read_body (LiveRequest *request);

static void
clear_timer (LiveRequest *request)
{
  if (request->timer == NULL)
    return;

  g_source_destroy (request->timer);
  g_clear_pointer (&request->timer, g_source_unref);
}

static void
live_request_free (LiveRequest *request)
{
  clear_timer (request);
  if (request->scope_handler != 0)
    g_cancellable_disconnect (request->scope, request->scope_handler);
  g_clear_object (&request->scope);
  g_clear_object (&request->cancellable);
  g_clear_object (&request->message);
  g_clear_object (&request->body);
  g_clear_pointer (&request->decoder, jarvis_decoder_free);
  if (request->error_body != NULL)
    g_string_free (request->error_body, TRUE);
  g_string_free (request->answer, TRUE);
  g_free (request->prompt);
  g_free (request->request_id);
  g_free (request);
}

/* Runs a libsoup or GIO call with the bus's context as thread default, so
 * that its sources and callbacks land there. */
#define WITH_BUS_CONTEXT(run, call)                                \
  G_STMT_START {                                                   \
    g_main_context_push_thread_default ((run)->context);           \
    call;                                                          \
    g_main_context_pop_thread_default ((run)->context);             \
  } G_STMT_END

static void
finish_run_if_done (LiveRun *run)
{
  g_autoptr(GTask) task = NULL;

  if (run->task == NULL || !run->input_done || run->reading ||
      !g_queue_is_empty (&run->requests) || run->finishing != NULL)
    return;

  task = g_steal_pointer (&run->task);

  if (run->input_error != NULL)
    g_task_return_error (task, g_steal_pointer (&run->input_error));
  else if (run->cancelled)
    g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                             "The live session with %s was cancelled", run->url);
  else if (run->n_failed > 0)
    g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_FAILED,
                             "%u of %" G_GUINT64_FORMAT " live requests to %s failed; the first: %s",
                             run->n_failed, run->n_requests, run->url, run->first_failure);
  else
    g_task_return_boolean (task, TRUE);
}

/* Frees a request once the bus completed it and no HTTP callback can
 * still reach it. */
static void
release_if_idle (LiveRequest *request)
{
  LiveRun *run = request->run;

  if (!request->completed || request->http_busy)
    return;

  run->finishing = g_list_remove (run->finishing, request);
  live_request_free (request);
  finish_run_if_done (run);
}

static void
emit_error (LiveRequest *request,
            guint        status,
            const char  *message)
{
  LiveRun *run = request->run;
  g_auto(GVariantDict) payload = G_VARIANT_DICT_INIT (NULL);
  JarvisEvent *event = jarvis_event_new (JARVIS_EVENT_STREAM_ERROR, request->request_id);

  g_variant_dict_insert (&payload, "message", "s", message);
  if (status != 0)
    g_variant_dict_insert (&payload, "status", "i", (gint32) status);
  jarvis_event_set_session_id (event, run->session_id);
  jarvis_event_set_payload (event, g_variant_dict_end (&payload));
  jarvis_bus_emit (run->bus, event);
}

/* Fails the request with @message: logs it, ends the request on the bus
 * with `agent.stream.error`, and stops its HTTP request. */
static void
fail_request (LiveRequest *request,
              guint        status,
              const char  *message)
{
  clear_timer (request);
  g_cancellable_cancel (request->cancellable);

  if (request->ended)
    return;

  request->ended = TRUE;
  g_warning ("live_request_failed request_id=%s status=%u error=%s",
             request->request_id, status, message);
  emit_error (request, status, message);
}

static gboolean
on_connect_timeout (gpointer user_data)
{
  LiveRequest *request = user_data;
  g_autofree char *message =
    g_strdup_printf ("no response from %s within %u s; check that the server is up, "
                     "or raise --connect-timeout",
                     request->run->url, request->run->connect_timeout_s);

  g_clear_pointer (&request->timer, g_source_unref);
  fail_request (request, 0, message);

  return G_SOURCE_REMOVE;
}

static gboolean
on_idle_timeout (gpointer user_data)
{
  LiveRequest *request = user_data;
  g_autofree char *message =
    g_strdup_printf ("%s sent nothing for %u s in the middle of the answer; "
                     "the server stalled, or raise --idle-timeout",
                     request->run->url, request->run->idle_timeout_s);

  g_clear_pointer (&request->timer, g_source_unref);
  fail_request (request, 0, message);

  return G_SOURCE_REMOVE;
}

/* Arms the connect or idle timer on the bus's context. A timeout of 0
 * means no limit. */
static void
arm_timer (LiveRequest *request,
           guint        timeout_s,
           GSourceFunc  callback)
{
  clear_timer (request);
  if (timeout_s == 0)
    return;

  request->timer = g_timeout_source_new_seconds (timeout_s);
  g_source_set_callback (request->timer, callback, request, NULL);
  g_source_attach (request->timer, request->run->context);
}

/* Takes the decoder's events into the request. The decoder names the
 * request by the provider's own stream id, but the start went out under
 * ours before the first byte came, so every event is re-addressed. */
static void
on_decoded (JarvisEvent *decoded_event,
            gpointer     user_data)
{
  g_autoptr(JarvisEvent) decoded = decoded_event;
  LiveRequest *request = user_data;
  LiveRun *run = request->run;
  const char *event_type = jarvis_event_get_event_type (decoded);
  const char *text;
  gsize length = 0;
  JarvisEvent *event;

  /* Nothing of a cancelled or failed request reaches the bus. */
  if (g_cancellable_is_cancelled (request->cancellable) || request->ended)
    return;

  if (jarvis_event_has_type (decoded, JARVIS_EVENT_STREAM_START))
    {
      g_debug ("live_stream_opened request_id=%s provider_id=%s",
               request->request_id, jarvis_event_get_request_id (decoded));
      return;
    }

  event = jarvis_event_new (event_type, request->request_id);
  jarvis_event_set_session_id (event, run->session_id);
  jarvis_event_set_choice (event, jarvis_event_get_choice (decoded));
  if (jarvis_event_get_trace_id (decoded) != NULL)
    jarvis_event_set_trace_id (event, jarvis_event_get_trace_id (decoded));
  text = jarvis_event_get_text (decoded, &length);
  if (text != NULL)
    jarvis_event_set_text (event, text, (gssize) length);
  if (jarvis_event_get_payload (decoded) != NULL)
    jarvis_event_set_payload (event, jarvis_event_get_payload (decoded));

  if (jarvis_event_has_type (decoded, JARVIS_EVENT_STREAM_DELTA) &&
      jarvis_event_get_choice (decoded) == 0 && text != NULL)
    g_string_append_len (request->answer, text, (gssize) length);

  if (jarvis_event_has_type (decoded, JARVIS_EVENT_STREAM_END) ||
      jarvis_event_has_type (decoded, JARVIS_EVENT_STREAM_ERROR))
    {
      request->ended = TRUE;
      clear_timer (request);
    }

  if (jarvis_event_has_type (decoded, JARVIS_EVENT_STREAM_ERROR))
    {
      const char *message = "the provider reported an error";
      gint32 status = 0;

      g_variant_lookup (jarvis_event_get_payload (decoded), "message", "&s", &message);
      g_variant_lookup (jarvis_event_get_payload (decoded), "status", "i", &status);
      g_warning ("live_request_failed request_id=%s status=%d error=%s",
                 request->request_id, status, message);

      /* The completion payload carries only the message, so the status
       * goes into it too. */
      if (status != 0)
        {
          g_auto(GVariantDict) payload = G_VARIANT_DICT_INIT (jarvis_event_get_payload (decoded));
          g_autofree char *with_status = g_strdup_printf ("%s (status %d)", message, status);

          g_variant_dict_insert (&payload, "message", "s", with_status);
          jarvis_event_set_payload (event, g_variant_dict_end (&payload));
        }
    }

  jarvis_bus_emit (run->bus, event);
}

static void
on_decode_error (const char   *source_name,
                 guint64       line,
                 const GError *error,
                 gpointer      user_data)
{
  LiveRequest *request = user_data;

  /* The decoder reports a stream cut off before its end marker, then ends
   * it normally. Failing first keeps that end from completing it. */
  if (g_error_matches (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_TRUNCATED))
    {
      g_autofree char *message =
        g_strdup_printf ("%s closed the stream before the end of the answer (%s)",
                         request->run->url, error->message);

      fail_request (request, 0, message);
      return;
    }

  g_warning ("live_input_error request_id=%s source=%s line=%" G_GUINT64_FORMAT " error=%s",
             request->request_id, source_name, line, error->message);
}

/* Builds the error message of a non-2xx response from its body: the
 * OpenAI `error.message`, a plain `message`, or the start of the text. */
static char *
describe_error_body (SoupMessage *message,
                     GString     *body)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  const char *reason = soup_message_get_reason_phrase (message);
  JsonNode *root;

  if (body->len > 0 && json_parser_load_from_data (parser, body->str, (gssize) body->len, NULL) &&
      (root = json_parser_get_root (parser)) != NULL && JSON_NODE_HOLDS_OBJECT (root))
    {
      JsonObject *object = json_node_get_object (root);
      JsonNode *error = json_object_get_member (object, "error");

      if (error != NULL && JSON_NODE_HOLDS_OBJECT (error) &&
          json_object_has_member (json_node_get_object (error), "message"))
        return g_strdup (json_object_get_string_member_with_default (json_node_get_object (error),
                                                                     "message", reason));
      if (error != NULL && JSON_NODE_HOLDS_VALUE (error) &&
          json_node_get_value_type (error) == G_TYPE_STRING)
        return g_strdup (json_node_get_string (error));
      if (json_object_has_member (object, "message"))
        return g_strdup (json_object_get_string_member_with_default (object, "message", reason));
    }

  if (body->len > 0)
    {
      g_autofree char *valid = g_utf8_make_valid (body->str, MIN (body->len, 200));

      return g_strstrip (g_steal_pointer (&valid));
    }

  return g_strdup (reason != NULL ? reason : "no reason given");
}

static void
finish_http (LiveRequest *request)
{
  clear_timer (request);
  request->http_busy = FALSE;
  g_cancellable_cancel (request->cancellable);
  release_if_idle (request);
}

static void
on_body_read (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  LiveRequest *request = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);
  gsize size = bytes != NULL ? g_bytes_get_size (bytes) : 0;

  if (bytes == NULL)
    {
      /* A cancel came from the bus, a timer or the run, and each of
       * those logged its own reason. */
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_autofree char *message = g_strdup_printf ("reading the answer from %s failed: %s",
                                                      request->run->url, error->message);

          fail_request (request, 0, message);
        }
      finish_http (request);
      return;
    }

  if (request->error_body != NULL)
    {
      guint status = soup_message_get_status (request->message);

      g_string_append_len (request->error_body, g_bytes_get_data (bytes, NULL), (gssize) size);
      if (size > 0 && request->error_body->len < MAX_ERROR_BODY)
        {
          read_body (request);
          return;
        }

      g_autofree char *reason = describe_error_body (request->message, request->error_body);
      g_autofree char *message = g_strdup_printf ("HTTP %u from %s: %s", status, request->run->url, reason);

      fail_request (request, status, message);
      finish_http (request);
      return;
    }

  if (size == 0)
    {
      jarvis_decoder_finish (request->decoder);
      if (!request->ended && !g_cancellable_is_cancelled (request->cancellable))
        {
          g_autofree char *message =
            g_strdup_printf ("%s closed the stream before the end of the answer", request->run->url);

          fail_request (request, 0, message);
        }
      finish_http (request);
      return;
    }

  jarvis_decoder_feed (request->decoder, g_bytes_get_data (bytes, NULL), size);

  /* After [DONE] or a finish reason nothing more belongs to the answer,
   * so the connection is let go without waiting for its end. */
  if (request->ended)
    {
      finish_http (request);
      return;
    }

  arm_timer (request, request->run->idle_timeout_s, on_idle_timeout);
  read_body (request);
}

static void
read_body (LiveRequest *request)
{
  WITH_BUS_CONTEXT (request->run,
                    g_input_stream_read_bytes_async (request->body, READ_SIZE, G_PRIORITY_DEFAULT,
                                                     request->cancellable, on_body_read, request));
}

static void
on_sent (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  LiveRequest *request = user_data;
  LiveRun *run = request->run;
  g_autoptr(GError) error = NULL;
  guint status;

  request->body = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  clear_timer (request);

  if (request->body == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_autofree char *message = g_strdup_printf ("cannot reach %s: %s", run->url, error->message);

          fail_request (request, 0, message);
        }
      finish_http (request);
      return;
    }

  status = soup_message_get_status (request->message);
  g_debug ("live_response request_id=%s status=%u", request->request_id, status);

  if (!SOUP_STATUS_IS_SUCCESSFUL (status))
    request->error_body = g_string_new (NULL);
  else
    {
      request->decoder = jarvis_decoder_new (JARVIS_INPUT_FORMAT_OPENAI, run->url,
                                             on_decoded, on_decode_error, request);
      jarvis_decoder_set_request_id (request->decoder, request->request_id);
      jarvis_decoder_set_session_id (request->decoder, run->session_id);
    }

  arm_timer (request, run->idle_timeout_s, on_idle_timeout);
  read_body (request);
}

static GBytes *
build_request_body (LiveRun *run)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  gsize length = 0;
  char *data;

  json_builder_begin_object (builder);
  if (run->model != NULL)
    {
      json_builder_set_member_name (builder, "model");
      json_builder_add_string_value (builder, run->model);
    }
  json_builder_set_member_name (builder, "stream");
  json_builder_add_boolean_value (builder, TRUE);
  json_builder_set_member_name (builder, "messages");
  json_builder_add_value (builder, json_node_init_array (json_node_alloc (), run->messages));
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  data = json_generator_to_data (generator, &length);

  return g_bytes_new_take (data, length);
}

static void
add_message (LiveRun    *run,
             const char *role,
             const char *content)
{
  JsonObject *message = json_object_new ();

  json_object_set_string_member (message, "role", role);
  json_object_set_string_member (message, "content", content);
  json_array_add_object_element (run->messages, message);
}

static void
on_scope_cancelled (GCancellable *scope,
                    gpointer      user_data)
{
  GCancellable *cancellable = user_data;

  /* Runs inside the scope's `cancelled` emission: only cancel here. */
  g_cancellable_cancel (cancellable);
}

static void
send_request (LiveRequest *request)
{
  LiveRun *run = request->run;
  SoupMessageHeaders *headers;
  g_autoptr(GBytes) body = NULL;

  request->sent = TRUE;
  request->scope = jarvis_bus_dup_request_cancellable (run->bus, request->request_id);
  if (request->scope == NULL)
    {
      g_debug ("live_request_skipped request_id=%s reason=not-active", request->request_id);
      return;
    }

  /* The scope's own reference keeps @cancellable alive while connected. */
  request->scope_handler = g_cancellable_connect (request->scope, G_CALLBACK (on_scope_cancelled),
                                                  g_object_ref (request->cancellable), g_object_unref);
  if (g_cancellable_is_cancelled (request->cancellable))
    return;

  add_message (run, "user", request->prompt);
  body = build_request_body (run);

  request->message = soup_message_new (SOUP_METHOD_POST, run->url);
  headers = soup_message_get_request_headers (request->message);
  soup_message_headers_replace (headers, "Accept", "text/event-stream");
  if (run->api_key != NULL)
    {
      g_autofree char *authorization = g_strconcat ("Bearer ", run->api_key, NULL);

      soup_message_headers_replace (headers, "Authorization", authorization);
    }
  soup_message_set_request_body_from_bytes (request->message, "application/json", body);

  g_debug ("live_request_sent request_id=%s session=%s url=%s messages=%u",
          request->request_id, run->session_id, run->url, json_array_get_length (run->messages));

  request->http_busy = TRUE;
  arm_timer (request, run->connect_timeout_s, on_connect_timeout);
  WITH_BUS_CONTEXT (run,
                    soup_session_send_async (run->session, request->message, G_PRIORITY_DEFAULT,
                                             request->cancellable, on_sent, request));
}

/* Sends the oldest open request once it was admitted and nothing newer
 * waits: a newer prompt supersedes it anyway, so it never goes out. */
static void
maybe_send (LiveRun *run)
{
  LiveRequest *request = g_queue_peek_head (&run->requests);

  if (request == NULL || request->sent || !request->started ||
      g_queue_get_length (&run->requests) > 1)
    return;

  send_request (request);
}

static LiveRequest *
find_request (LiveRun    *run,
              const char *request_id)
{
  for (GList *l = run->requests.head; l != NULL; l = l->next)
    {
      LiveRequest *request = l->data;

      if (g_str_equal (request->request_id, request_id))
        return request;
    }

  return NULL;
}

static void
on_request_started (JarvisBus  *bus,
                    const char *request_id,
                    const char *session_id,
                    gpointer    user_data)
{
  LiveRun *run = user_data;
  LiveRequest *request = find_request (run, request_id);

  if (request == NULL)
    return;

  request->started = TRUE;
  maybe_send (run);
}

static void
on_request_completed (JarvisBus   *bus,
                      JarvisEvent *complete,
                      gpointer     user_data)
{
  LiveRun *run = user_data;
  LiveRequest *request = find_request (run, jarvis_event_get_request_id (complete));
  const char *outcome = jarvis_event_get_outcome (complete);

  if (request == NULL)
    return;

  g_queue_remove (&run->requests, request);
  request->completed = TRUE;
  g_cancellable_cancel (request->cancellable);

  /* The conversation keeps what the user saw, also of an answer cut short
   * by a follow-up. */
  if (request->scope != NULL && request->answer->len > 0)
    add_message (run, "assistant", request->answer->str);

  if (g_strcmp0 (outcome, "failed") == 0)
    {
      const char *error = "unknown error";

      g_variant_lookup (jarvis_event_get_payload (complete), "error", "&s", &error);
      run->n_failed++;
      if (run->first_failure == NULL)
        run->first_failure = g_strdup (error);
    }

  /* Send the next prompt first: releasing the last request may finish the
   * run, and the run's callback may free it. */
  run->finishing = g_list_prepend (run->finishing, request);
  maybe_send (run);
  release_if_idle (request);
}

static void
start_prompt (LiveRun    *run,
              const char *prompt)
{
  LiveRequest *request = g_new0 (LiveRequest, 1);
  JarvisEvent *start;

  request->run = run;
  request->request_id = g_strdup_printf ("live-%" G_GUINT64_FORMAT, ++run->n_requests);
  request->prompt = g_strdup (prompt);
  request->answer = g_string_new (NULL);
  request->cancellable = g_cancellable_new ();
  g_queue_push_tail (&run->requests, request);

  g_debug ("live_prompt request_id=%s session=%s bytes=%zu",
           request->request_id, run->session_id, strlen (prompt));

  /* A start on a session with a running request supersedes it; the bus
   * admits this one after the old one completed. */
  start = jarvis_event_new (JARVIS_EVENT_STREAM_START, request->request_id);
  jarvis_event_set_session_id (start, run->session_id);
  jarvis_bus_emit (run->bus, start);
}

static void
on_line (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  LiveRun *run = user_data;
  g_autoptr(GError) error = NULL;
  gsize length = 0;
  g_autofree char *line = g_data_input_stream_read_line_finish_utf8 (G_DATA_INPUT_STREAM (source),
                                                                      result, &length, &error);

  run->reading = FALSE;

  if (line == NULL)
    {
      if (error != NULL && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_prefix_error (&error, "Reading the next prompt failed: ");
          run->input_error = g_steal_pointer (&error);
        }
      run->input_done = TRUE;
      finish_run_if_done (run);
      return;
    }

  g_strchomp (line);
  if (*line != '\0')
    start_prompt (run, line);

  read_next_prompt (run);
}

static void
read_next_prompt (LiveRun *run)
{
  if (run->input_done)
    return;

  run->reading = TRUE;
  WITH_BUS_CONTEXT (run,
                    g_data_input_stream_read_line_async (run->prompts, G_PRIORITY_DEFAULT,
                                                         run->read_cancellable, on_line, run));
}

/* Runs in the bus's context when the run's cancellable fires: stops
 * reading prompts and cancels every open request. */
static gboolean
on_run_cancelled (GCancellable *cancellable,
                  gpointer      user_data)
{
  LiveRun *run = user_data;

  g_clear_pointer (&run->cancel_source, g_source_unref);
  run->cancelled = TRUE;
  run->input_done = TRUE;
  g_cancellable_cancel (run->read_cancellable);

  for (GList *l = run->requests.head; l != NULL;)
    {
      LiveRequest *request = l->data;
      GList *next = l->next;

      jarvis_bus_cancel_request (run->bus, request->request_id);

      /* A start that still waits for its session gets no complete when the
       * bus closes, so the run stops waiting for it. The cancel event
       * follows the start, so a start that is admitted later ends at once. */
      if (!request->started)
        {
          JarvisEvent *cancel = jarvis_event_new (JARVIS_EVENT_STREAM_CANCEL, request->request_id);

          jarvis_event_set_session_id (cancel, run->session_id);
          jarvis_bus_emit (run->bus, cancel);
          g_queue_delete_link (&run->requests, l);
          live_request_free (request);
        }

      l = next;
    }

  finish_run_if_done (run);

  return G_SOURCE_REMOVE;
}

static void
live_run_free (gpointer data)
{
  LiveRun *run = data;

  g_assert (g_queue_is_empty (&run->requests));
  g_assert (run->finishing == NULL);

  if (run->cancel_source != NULL)
    {
      g_source_destroy (run->cancel_source);
      g_clear_pointer (&run->cancel_source, g_source_unref);
    }
  g_clear_signal_handler (&run->started_handler, run->bus);
  g_clear_signal_handler (&run->completed_handler, run->bus);
  g_clear_object (&run->session);
  g_clear_object (&run->prompts);
  g_clear_object (&run->read_cancellable);
  g_clear_pointer (&run->messages, json_array_unref);
  g_clear_object (&run->bus);
  g_clear_pointer (&run->first_failure, g_free);
  g_clear_error (&run->input_error);
  g_free (run->url);
  g_free (run->model);
  g_free (run->api_key);
  g_free (run->session_id);
  g_free (run);
}

static SoupSession *
create_session (LiveRun *run)
{
  guint io_timeout_s = 0;
  SoupSession *session;

  /* libsoup's own I/O timeout is a backstop behind our timers. 0 for both
   * of ours means no limit, and 0 disables libsoup's too. */
  if (run->connect_timeout_s != 0 || run->idle_timeout_s != 0)
    io_timeout_s = MAX (run->connect_timeout_s, run->idle_timeout_s) + SOUP_TIMEOUT_MARGIN_S;

  /* One stream at a time, plus the connection of a superseded one that
   * may still be closing. */
  WITH_BUS_CONTEXT (run,
                    session = soup_session_new_with_options ("max-conns", 2,
                                                             "max-conns-per-host", 2,
                                                             "timeout", io_timeout_s,
                                                             "idle-timeout", MAX (run->idle_timeout_s, 1),
                                                             "user-agent", "jarvis-host/" PACKAGE_VERSION " ",
                                                             NULL));

  return session;
}

/**
 * jarvis_live_run_async:
 * @bus: the bus to emit request events on; its context must be iterated
 *   by the calling thread
 * @options: the endpoint, model, key, prompt, timeouts and session; copied
 * @prompts: (nullable): prompts, one per line, used when @options has no
 *   prompt
 * @cancellable: (nullable): stops reading prompts and cancels every open
 *   request
 * @callback: called in the bus's context once the last request completed
 * @user_data: data for @callback
 *
 * Runs a live session: each prompt becomes one request whose answer is
 * streamed from the endpoint through the OpenAI decoder onto @bus. A new
 * prompt while an answer streams supersedes it.
 */
void
jarvis_live_run_async (JarvisBus               *bus,
                       const JarvisLiveOptions *options,
                       GInputStream            *prompts,
                       GCancellable            *cancellable,
                       GAsyncReadyCallback      callback,
                       gpointer                 user_data)
{
  g_autoptr(GTask) task = NULL;
  LiveRun *run;

  g_return_if_fail (JARVIS_IS_BUS (bus));
  g_return_if_fail (options != NULL && options->url != NULL);
  g_return_if_fail (options->prompt != NULL || G_IS_INPUT_STREAM (prompts));

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, jarvis_live_run_async);

  run = g_new0 (LiveRun, 1);
  run->bus = g_object_ref (bus);
  run->context = jarvis_bus_get_context (bus);
  run->url = g_strdup (options->url);
  run->model = g_strdup (options->model);
  run->api_key = options->api_key != NULL && *options->api_key != '\0' ? g_strdup (options->api_key) : NULL;
  run->session_id = g_strdup (options->session_id != NULL ? options->session_id : JARVIS_SESSION_DEFAULT);
  run->connect_timeout_s = options->connect_timeout_s;
  run->idle_timeout_s = options->idle_timeout_s;
  run->single_prompt = options->prompt != NULL;
  run->messages = json_array_new ();
  run->read_cancellable = g_cancellable_new ();
  g_queue_init (&run->requests);
  g_task_set_task_data (task, run, live_run_free);

  if (!g_uri_is_valid (run->url, G_URI_FLAGS_NONE, NULL) ||
      (g_ascii_strncasecmp (run->url, "http://", 7) != 0 &&
       g_ascii_strncasecmp (run->url, "https://", 8) != 0))
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                               "Invalid --url '%s': expected an http:// or https:// URL of a "
                               "chat-completions endpoint", run->url);
      return;
    }

  run->session = create_session (run);
  run->task = g_object_ref (task);
  run->started_handler = g_signal_connect (bus, "request-started",
                                           G_CALLBACK (on_request_started), run);
  run->completed_handler = g_signal_connect (bus, "request-completed",
                                             G_CALLBACK (on_request_completed), run);

  if (cancellable != NULL)
    {
      run->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (run->cancel_source, G_SOURCE_FUNC (on_run_cancelled), run, NULL);
      g_source_attach (run->cancel_source, run->context);
    }

  if (run->single_prompt)
    {
      run->input_done = TRUE;
      start_prompt (run, options->prompt);
      return;
    }

  run->prompts = g_data_input_stream_new (prompts);
  g_data_input_stream_set_newline_type (run->prompts, G_DATA_STREAM_NEWLINE_TYPE_ANY);
  read_next_prompt (run);
}

/**
 * jarvis_live_run_finish:
 * @result: the result passed to the callback
 * @error: return location for the first failure
 *
 * Returns: %TRUE if every request completed or was superseded; %FALSE
 *   with %G_IO_ERROR_CANCELLED when the run was cancelled, or with an
 *   error naming the first failed request's message
 */
gboolean
jarvis_live_run_finish (GAsyncResult  *result,
                        GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
