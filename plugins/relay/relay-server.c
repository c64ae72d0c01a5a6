#include "relay-server.h"

#include <libsoup/soup.h>

#include "relay-resources.h"

#define PAGE_RESOURCE "/org/jarvis-events/relay/index.html"

/* EventSource waits this long before it reconnects after a drop. */
#define RETRY_MS 1000

/* The page's resource is registered while any relay server exists, and
 * unregistered with the last one, so that the plugin leaves nothing in the
 * process-wide table when it is unloaded. */
G_LOCK_DEFINE_STATIC (resource_users);
static guint resource_users;

static void
use_resource (void)
{
  G_LOCK (resource_users);
  if (resource_users++ == 0)
    relay_register_resource ();
  G_UNLOCK (resource_users);
}

static void
release_resource (void)
{
  G_LOCK (resource_users);
  g_assert (resource_users > 0);
  if (--resource_users == 0)
    relay_unregister_resource ();
  G_UNLOCK (resource_users);
}

struct _RelayWrite
{
  gatomicrefcount ref_count;
  RelayFrame *frame;          /* owned */
  guint pending;              /* clients that still have to write the frame */
  gboolean done;              /* @done_func ran */
  RelayWriteDoneFunc done_func;
  gpointer user_data;
};

typedef struct
{
  RelayServer *server;        /* unowned: the server owns the client */
  guint64 id;                 /* for log lines */
  SoupServerMessage *message; /* owned */
  GQueue queue;               /* owned RelayWrite refs, not yet written */
  RelayWrite *in_flight;      /* owned, nullable: the frame being written */
  gboolean writing;           /* a chunk is appended and not yet written */
  gboolean closed;            /* dropped by us or gone */
  GSource *hangup_watch;      /* owned, nullable: detects that the peer closed */
  GSource *write_deadline;    /* owned, nullable: drops the client if a chunk stays unwritten */
  gulong wrote_chunk_id;
  gulong finished_id;
} RelayClient;

struct _RelayServer
{
  GMainContext *context;      /* owned */
  SoupServer *soup_server;    /* owned */
  char *token;                /* owned, nullable */
  guint client_queue;
  guint write_timeout_ms;
  RelayHistory *history;      /* owned */
  GList *clients;             /* owned RelayClient pointers */
  guint64 next_client_id;
};

RelayWrite *
relay_write_new (RelayFrame         *frame,
                 RelayWriteDoneFunc  done,
                 gpointer            user_data)
{
  RelayWrite *write = g_new0 (RelayWrite, 1);

  g_atomic_ref_count_init (&write->ref_count);
  write->frame = relay_frame_ref (frame);
  write->done_func = done;
  write->user_data = user_data;

  return write;
}

RelayWrite *
relay_write_ref (RelayWrite *write)
{
  g_atomic_ref_count_inc (&write->ref_count);

  return write;
}

void
relay_write_unref (RelayWrite *write)
{
  if (write == NULL || !g_atomic_ref_count_dec (&write->ref_count))
    return;

  relay_frame_unref (write->frame);
  g_free (write);
}

static void
finish_write (RelayWrite *write)
{
  if (write->done)
    return;

  write->done = TRUE;
  if (write->done_func != NULL)
    write->done_func (write, write->user_data);
}

/* Counts one client as finished with @write, and drops the client's
 * reference. */
static void
release_write (RelayWrite *write)
{
  g_assert (write->pending > 0);

  write->pending--;
  if (write->pending == 0)
    finish_write (write);

  relay_write_unref (write);
}

/* libsoup creates its I/O sources in the thread-default context, which may
 * not be the bus's context when a bus handler calls in. */
static void
unpause_client (RelayClient *client)
{
  g_main_context_push_thread_default (client->server->context);
  soup_server_message_unpause (client->message);
  g_main_context_pop_thread_default (client->server->context);
}

static gboolean on_write_deadline (gpointer user_data);

static void
clear_write_deadline (RelayClient *client)
{
  if (client->write_deadline == NULL)
    return;

  g_source_destroy (client->write_deadline);
  g_clear_pointer (&client->write_deadline, g_source_unref);
}

/* A peer that reads nothing keeps a chunk unwritten while its queue stays
 * under the bound, and every handler call waiting for that chunk would
 * hold its request until the end grace cancels it. The deadline, shorter
 * than the grace, drops such a client instead. */
static void
start_write_deadline (RelayClient *client)
{
  clear_write_deadline (client);
  client->write_deadline = g_timeout_source_new (client->server->write_timeout_ms);
  g_source_set_callback (client->write_deadline, on_write_deadline, client, NULL);
  g_source_attach (client->write_deadline, client->server->context);
}

static void
append_chunk (RelayClient *client,
              GBytes      *chunk)
{
  SoupMessageBody *body = soup_server_message_get_response_body (client->message);

  soup_message_body_append_bytes (body, chunk);
  client->writing = TRUE;
  start_write_deadline (client);
  unpause_client (client);
}

/* Starts writing the next queued frame, one chunk at a time, so that a
 * cancelled frame can still leave the queue. */
static void
pump_client (RelayClient *client)
{
  while (!client->closed && !client->writing && !g_queue_is_empty (&client->queue))
    {
      RelayWrite *write = g_queue_pop_head (&client->queue);

      if (write->frame->cancelled)
        {
          release_write (write);
          continue;
        }

      client->in_flight = write;
      append_chunk (client, write->frame->text);
    }
}

static void
release_client_writes (RelayClient *client)
{
  RelayWrite *write;

  while ((write = g_queue_pop_head (&client->queue)) != NULL)
    release_write (write);

  if (client->in_flight != NULL)
    release_write (g_steal_pointer (&client->in_flight));
}

static void
clear_hangup_watch (RelayClient *client)
{
  if (client->hangup_watch == NULL)
    return;

  g_source_destroy (client->hangup_watch);
  g_clear_pointer (&client->hangup_watch, g_source_unref);
}

static void
client_free (RelayClient *client)
{
  clear_hangup_watch (client);
  clear_write_deadline (client);
  g_clear_signal_handler (&client->wrote_chunk_id, client->message);
  g_clear_signal_handler (&client->finished_id, client->message);
  g_clear_object (&client->message);
  g_free (client);
}

/* Ends a client that the server no longer writes to. Its pending writes
 * count as done. The message itself is freed on `finished`. */
static void
close_client (RelayClient *client)
{
  if (client->closed)
    return;

  client->closed = TRUE;
  clear_hangup_watch (client);
  clear_write_deadline (client);
  release_client_writes (client);
}

static void
on_wrote_chunk (SoupServerMessage *message,
                gpointer           user_data)
{
  RelayClient *client = user_data;

  client->writing = FALSE;
  clear_write_deadline (client);
  if (client->in_flight != NULL)
    release_write (g_steal_pointer (&client->in_flight));

  pump_client (client);
}

static void
on_finished (SoupServerMessage *message,
             gpointer           user_data)
{
  RelayClient *client = user_data;

  if (!client->closed)
    g_info ("relay_client_disconnected client=%" G_GUINT64_FORMAT, client->id);

  close_client (client);
  client->server->clients = g_list_remove (client->server->clients, client);
  client_free (client);
}

/* Ends the message of a client that is closed on our side: shutting the
 * socket down makes libsoup's pending or next write fail, which ends the
 * message with `finished` even when the peer reads nothing. */
static void
end_message (RelayServer       *server,
             SoupServerMessage *message)
{
  GSocket *socket = soup_server_message_get_socket (message);

  if (socket != NULL)
    g_socket_shutdown (socket, TRUE, TRUE, NULL);
  soup_message_body_complete (soup_server_message_get_response_body (message));
  g_main_context_push_thread_default (server->context);
  soup_server_message_unpause (message);
  g_main_context_pop_thread_default (server->context);
}

/* An event stream client sends nothing after its request, so a readable
 * socket means that the peer closed it. libsoup would only notice at the
 * next write, and until then the client would hold up every write. */
static gboolean
on_client_socket_ready (GSocket      *socket,
                        GIOCondition  condition,
                        gpointer      user_data)
{
  RelayClient *client = user_data;
  g_autoptr(GError) error = NULL;
  char byte;
  GInputVector vector = { &byte, 1 };
  gint flags = G_SOCKET_MSG_PEEK;
  gssize received;

  received = g_socket_receive_message (socket, NULL, &vector, 1, NULL, NULL, &flags, NULL, &error);
  if (received < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    return G_SOURCE_CONTINUE;

  /* Bytes after the request: the watch stops, and a failed write will
   * still end the client. */
  if (received > 0)
    {
      g_clear_pointer (&client->hangup_watch, g_source_unref);
      return G_SOURCE_REMOVE;
    }

  g_info ("relay_client_disconnected client=%" G_GUINT64_FORMAT, client->id);
  g_clear_pointer (&client->hangup_watch, g_source_unref);
  close_client (client);
  end_message (client->server, client->message);

  return G_SOURCE_REMOVE;
}

/* Disconnects a client that does not keep up, so that its backlog never
 * grows without bound and never holds up the bus. */
static void
drop_slow_client (RelayClient *client)
{
  SoupServerMessage *message = client->message;

  g_warning ("relay_client_dropped client=%" G_GUINT64_FORMAT " reason=slow queued=%u max=%u; "
             "the client did not read its event stream fast enough",
             client->id, g_queue_get_length (&client->queue), client->server->client_queue);

  close_client (client);
  end_message (client->server, message);
}

static gboolean
on_write_deadline (gpointer user_data)
{
  RelayClient *client = user_data;
  SoupServerMessage *message = client->message;

  g_clear_pointer (&client->write_deadline, g_source_unref);
  g_warning ("relay_client_dropped client=%" G_GUINT64_FORMAT " reason=stalled queued=%u "
             "write_timeout_ms=%u; the client read nothing of its event stream for that long",
             client->id, g_queue_get_length (&client->queue), client->server->write_timeout_ms);

  close_client (client);
  end_message (client->server, message);

  return G_SOURCE_REMOVE;
}

static void
queue_write (RelayClient *client,
             RelayWrite  *write)
{
  write->pending++;
  g_queue_push_tail (&client->queue, relay_write_ref (write));

  if (g_queue_get_length (&client->queue) > client->server->client_queue)
    {
      drop_slow_client (client);
      return;
    }

  pump_client (client);
}

void
relay_server_publish (RelayServer *server,
                      RelayWrite  *write)
{
  g_autoptr(GList) clients = g_list_copy (server->clients);

  relay_history_append (server->history, write->frame);

  /* Holds the write at one pending client until every queue has it, so
   * that @done cannot run in the middle of the loop. */
  write->pending++;
  relay_write_ref (write);

  for (GList *l = clients; l != NULL; l = l->next)
    {
      RelayClient *client = l->data;

      if (!client->closed)
        queue_write (client, write);
    }

  release_write (write);
}

void
relay_server_cancel_write (RelayServer *server,
                           RelayWrite  *write)
{
  /* Releasing the queued copies may run @done, which drops the caller's
   * reference, so the write is held until the end. */
  relay_write_ref (write);
  write->frame->cancelled = TRUE;

  for (GList *l = server->clients; l != NULL; l = l->next)
    {
      RelayClient *client = l->data;
      GList *link;

      if (client->closed)
        continue;

      while ((link = g_queue_find (&client->queue, write)) != NULL)
        {
          g_queue_delete_link (&client->queue, link);
          release_write (write);
        }
    }

  finish_write (write);
  relay_write_unref (write);
}

/* Compares in time that depends only on the lengths, so the response time
 * does not tell how much of a guessed token was right. */
static gboolean
token_matches (const char *expected,
               const char *candidate)
{
  gsize expected_length = strlen (expected);
  gsize candidate_length = strlen (candidate);
  guchar difference = expected_length != candidate_length;

  for (gsize i = 0; i < candidate_length; i++)
    difference |= (guchar) candidate[i] ^ (guchar) expected[i % MAX (expected_length, 1)];

  return difference == 0;
}

static gboolean
check_token (RelayServer       *server,
             SoupServerMessage *message)
{
  GUri *uri = soup_server_message_get_uri (message);
  const char *query = g_uri_get_query (uri);
  g_autoptr(GHashTable) params = NULL;
  const char *given;

  if (server->token == NULL)
    return TRUE;

  if (query != NULL)
    params = g_uri_parse_params (query, -1, "&", G_URI_PARAMS_NONE, NULL);

  given = params != NULL ? g_hash_table_lookup (params, "token") : NULL;
  if (given != NULL && token_matches (server->token, given))
    return TRUE;

  g_info ("relay_forbidden remote=%s path=%s reason=%s",
          soup_server_message_get_remote_host (message),
          g_uri_get_path (uri),
          given == NULL ? "missing-token" : "wrong-token");

  return FALSE;
}

/* Closes the connection after a response that has an end. libsoup 3.2.2
 * leaks a server connection that sits idle until the client closes it,
 * and a browser opens a new connection for the event stream anyway. */
static void
close_after_response (SoupServerMessage *message)
{
  soup_message_headers_replace (soup_server_message_get_response_headers (message),
                                "Connection", "close");
}

static void
set_text_response (SoupServerMessage *message,
                   guint              status,
                   const char        *text)
{
  close_after_response (message);
  soup_server_message_set_status (message, status, NULL);
  soup_server_message_set_response (message, "text/plain; charset=utf-8",
                                    SOUP_MEMORY_COPY, text, strlen (text));
}

static void
serve_page (SoupServerMessage *message)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) page = g_resource_lookup_data (relay_get_resource (), PAGE_RESOURCE,
                                                   G_RESOURCE_LOOKUP_FLAGS_NONE, &error);
  gsize size = 0;
  const char *data;

  /* The page is compiled into the plugin, so this is a build mistake. */
  if (page == NULL)
    {
      g_warning ("relay_page_missing resource=%s error=%s", PAGE_RESOURCE, error->message);
      set_text_response (message, SOUP_STATUS_INTERNAL_SERVER_ERROR,
                         "The relay page is missing from the plugin; rebuild the plugin.\n");
      return;
    }

  data = g_bytes_get_data (page, &size);
  close_after_response (message);
  soup_server_message_set_status (message, SOUP_STATUS_OK, NULL);
  soup_message_headers_replace (soup_server_message_get_response_headers (message),
                                "Cache-Control", "no-store");
  soup_server_message_set_response (message, "text/html; charset=utf-8",
                                    SOUP_MEMORY_COPY, data, size);
}

static gboolean
parse_last_event_id (SoupServerMessage *message,
                     guint64           *last_id)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (message);
  const char *value = soup_message_headers_get_one (headers, "Last-Event-ID");

  *last_id = 0;
  if (value == NULL || *value == '\0')
    return TRUE;

  return g_ascii_string_to_unsigned (value, 10, 0, G_MAXUINT64, last_id, NULL);
}

static void
serve_events (RelayServer       *server,
              SoupServerMessage *message)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (message);
  g_autoptr(GBytes) replay = NULL;
  g_autoptr(GString) first = NULL;
  g_autoptr(GBytes) chunk = NULL;
  RelayClient *client;
  guint64 last_id;

  if (!parse_last_event_id (message, &last_id))
    {
      set_text_response (message, SOUP_STATUS_BAD_REQUEST,
                         "Invalid Last-Event-ID: expected the decimal id of an event "
                         "from this relay.\n");
      return;
    }

  soup_server_message_set_status (message, SOUP_STATUS_OK, NULL);
  soup_message_headers_set_content_type (headers, "text/event-stream", NULL);
  soup_message_headers_replace (headers, "Cache-Control", "no-store");
  soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);

  client = g_new0 (RelayClient, 1);
  client->server = server;
  client->id = ++server->next_client_id;
  client->message = g_object_ref (message);
  g_queue_init (&client->queue);
  client->wrote_chunk_id = g_signal_connect (message, "wrote-chunk",
                                             G_CALLBACK (on_wrote_chunk), client);
  client->finished_id = g_signal_connect (message, "finished",
                                          G_CALLBACK (on_finished), client);
  server->clients = g_list_append (server->clients, client);

  if (soup_server_message_get_socket (message) != NULL)
    {
      client->hangup_watch = g_socket_create_source (soup_server_message_get_socket (message),
                                                     G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
      g_source_set_callback (client->hangup_watch, G_SOURCE_FUNC (on_client_socket_ready), client, NULL);
      g_source_attach (client->hangup_watch, server->context);
    }

  g_info ("relay_client_connected client=%" G_GUINT64_FORMAT " remote=%s last_event_id=%" G_GUINT64_FORMAT,
          client->id, soup_server_message_get_remote_host (message), last_id);

  /* The first chunk sets the reconnect delay and carries what the client
   * missed, so that the page is whole before live frames follow. */
  replay = relay_history_dup_since (server->history, last_id);
  first = g_string_new (NULL);
  g_string_append_printf (first, "retry: %u\n\n", RETRY_MS);
  g_string_append_len (first, g_bytes_get_data (replay, NULL), g_bytes_get_size (replay));
  chunk = g_string_free_to_bytes (g_steal_pointer (&first));
  append_chunk (client, chunk);
}

static void
handle_request (SoupServer        *soup_server,
                SoupServerMessage *message,
                const char        *path,
                GHashTable        *query,
                gpointer           user_data)
{
  RelayServer *server = user_data;
  const char *method = soup_server_message_get_method (message);

  if (method != SOUP_METHOD_GET && method != SOUP_METHOD_HEAD)
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (message),
                                    "Allow", "GET, HEAD");
      set_text_response (message, SOUP_STATUS_METHOD_NOT_ALLOWED,
                         "Only GET and HEAD are allowed here.\n");
      return;
    }

  if (g_strcmp0 (path, "/") != 0 && g_strcmp0 (path, "/events") != 0)
    {
      set_text_response (message, SOUP_STATUS_NOT_FOUND,
                         "Not found: the relay serves / and /events.\n");
      return;
    }

  if (!check_token (server, message))
    {
      set_text_response (message, SOUP_STATUS_FORBIDDEN,
                         "Forbidden: add ?token= with the relay's token to the URL.\n");
      return;
    }

  if (g_strcmp0 (path, "/") == 0)
    serve_page (message);
  else if (method == SOUP_METHOD_HEAD)
    {
      /* A HEAD gets the stream's headers but never becomes a client. */
      close_after_response (message);
      soup_server_message_set_status (message, SOUP_STATUS_OK, NULL);
      soup_message_headers_set_content_type (soup_server_message_get_response_headers (message),
                                             "text/event-stream", NULL);
    }
  else
    serve_events (server, message);
}

static gboolean
listen_on (RelayServer               *server,
           const RelayServerOptions  *options,
           GError                   **error)
{
  g_autoptr(GInetAddress) address = g_inet_address_new_from_string (options->address);
  g_autoptr(GSocketAddress) socket_address = NULL;
  gboolean listening;

  if (address == NULL)
    {
      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_INVALID_OPTION,
                   "relay: invalid option address='%s': expected an IP address "
                   "such as 127.0.0.1 or ::1", options->address);
      return FALSE;
    }

  if (!g_inet_address_get_is_loopback (address) && !options->allow_remote)
    {
      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_INVALID_OPTION,
                   "relay: address '%s' is not a loopback address, so other hosts "
                   "could read the streams; set relay.allow-remote=true to listen "
                   "on it anyway, and set relay.token", options->address);
      return FALSE;
    }

  if (options->port > G_MAXUINT16)
    {
      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_INVALID_OPTION,
                   "relay: invalid option port=%u: expected 0 to 65535", options->port);
      return FALSE;
    }

  if (!g_inet_address_get_is_loopback (address) && options->token == NULL)
    g_warning ("relay_remote_without_token address=%s; anyone who can reach this "
               "address can read the streams, so set relay.token", options->address);

  socket_address = g_inet_socket_address_new (address, (guint16) options->port);

  g_main_context_push_thread_default (server->context);
  listening = soup_server_listen (server->soup_server, socket_address, 0, error);
  g_main_context_pop_thread_default (server->context);

  if (!listening)
    g_prefix_error (error, "relay: cannot listen on %s port %u: ",
                    options->address, options->port);

  return listening;
}

RelayServer *
relay_server_new (GMainContext              *context,
                  const RelayServerOptions  *options,
                  GError                   **error)
{
  g_autoptr(RelayServer) server = g_new0 (RelayServer, 1);

  g_assert (options->history_frames >= 2);
  g_assert (options->history_requests >= 1);
  g_assert (options->client_queue >= 1);
  g_assert (options->write_timeout_ms >= 1);

  use_resource ();
  server->context = g_main_context_ref (context);
  server->client_queue = options->client_queue;
  server->write_timeout_ms = options->write_timeout_ms;
  server->history = relay_history_new (options->history_frames, options->history_requests);
  if (options->token != NULL && *options->token != '\0')
    server->token = g_strdup (options->token);

  server->soup_server = soup_server_new ("server-header", "jarvis-relay ", NULL);
  soup_server_add_handler (server->soup_server, NULL, handle_request, server, NULL);

  if (!listen_on (server, options, error))
    return NULL;

  return g_steal_pointer (&server);
}

void
relay_server_free (RelayServer *server)
{
  if (server == NULL)
    return;

  /* Ends every stream; libsoup frees the messages once the connections
   * close, and our signal handlers are gone by then. */
  while (server->clients != NULL)
    {
      RelayClient *client = server->clients->data;
      g_autoptr(SoupServerMessage) message = g_object_ref (client->message);

      server->clients = g_list_delete_link (server->clients, server->clients);
      close_client (client);
      client_free (client);
      soup_message_body_complete (soup_server_message_get_response_body (message));
      g_main_context_push_thread_default (server->context);
      soup_server_message_unpause (message);
      g_main_context_pop_thread_default (server->context);
    }

  if (server->soup_server != NULL)
    {
      soup_server_disconnect (server->soup_server);
      g_clear_object (&server->soup_server);
    }

  g_clear_pointer (&server->history, relay_history_free);
  g_clear_pointer (&server->token, g_free);
  g_clear_pointer (&server->context, g_main_context_unref);
  g_free (server);
  release_resource ();
}

char *
relay_server_dup_url (RelayServer *server)
{
  GSList *listeners = soup_server_get_listeners (server->soup_server);
  g_autoptr(GSocketAddress) address = NULL;
  g_autofree char *host = NULL;
  GInetSocketAddress *inet_address;

  /* Built from the listening socket, because soup_server_get_uris() of
   * libsoup 3.2 leaks an address per call. */
  g_assert (listeners != NULL);
  address = g_socket_get_local_address (listeners->data, NULL);
  g_slist_free (listeners);
  if (address == NULL || !G_IS_INET_SOCKET_ADDRESS (address))
    return NULL;

  inet_address = G_INET_SOCKET_ADDRESS (address);
  host = g_inet_address_to_string (g_inet_socket_address_get_address (inet_address));

  if (g_inet_address_get_family (g_inet_socket_address_get_address (inet_address)) == G_SOCKET_FAMILY_IPV6)
    return g_strdup_printf ("http://[%s]:%u/", host, g_inet_socket_address_get_port (inet_address));

  return g_strdup_printf ("http://%s:%u/", host, g_inet_socket_address_get_port (inet_address));
}

guint
relay_server_get_n_clients (RelayServer *server)
{
  guint n_clients = 0;

  for (GList *l = server->clients; l != NULL; l = l->next)
    n_clients += !((RelayClient *) l->data)->closed;

  return n_clients;
}
