/* The relay plugin: shows every request live in a browser page, through
 * Server-Sent Events. Each write of a start or flush frame to the browsers
 * is an async handler call, so cancelling or superseding a request cancels
 * the frames that have not started to go out. */

#include <jarvis/jarvis.h>

#include "relay-frame.h"
#include "relay-server.h"

#define DEFAULT_ADDRESS "127.0.0.1"
#define DEFAULT_HISTORY 512
#define DEFAULT_HISTORY_REQUESTS 64
#define DEFAULT_CLIENT_QUEUE 256
/* Shorter than the bus's default end grace of 2 s, so that a client that
 * stopped reading is dropped before the grace cancels its request's
 * writes. */
#define DEFAULT_WRITE_TIMEOUT_MS 1000

typedef struct
{
  JarvisPlugin *plugin;       /* unowned: the plugin owns this struct */
  RelayServer *server;        /* owned */
  guint64 last_frame_id;
  GList *calls;               /* owned RelayCall pointers, still writing */
  GHashTable *cut_requests;   /* owned request ids whose writes were cancelled */
} Relay;

/* One async handler call: the frame on its way out, and the source that
 * cancels it when the invocation's cancellable fires. */
typedef struct
{
  Relay *relay;                   /* unowned */
  JarvisInvocation *invocation;   /* returned once, when the write is done */
  RelayWrite *write;              /* owned */
  GSource *cancel_source;         /* owned, attached to the bus's context */
} RelayCall;

static void
relay_call_free (RelayCall *call)
{
  if (call->cancel_source != NULL)
    {
      g_source_destroy (call->cancel_source);
      g_clear_pointer (&call->cancel_source, g_source_unref);
    }

  g_clear_pointer (&call->write, relay_write_unref);
  g_free (call);
}

static void
on_write_done (RelayWrite *write,
               gpointer    user_data)
{
  RelayCall *call = user_data;
  JarvisInvocation *invocation = call->invocation;

  call->relay->calls = g_list_remove (call->relay->calls, call);
  relay_call_free (call);
  jarvis_invocation_return (invocation);
}

/* Stops writing a request's text to the pages. A cancelled frame leaves a
 * hole, so every later start or flush frame of the request is dropped too:
 * a page keeps a prefix of the text, and the complete frame then shows how
 * the request ended. */
static void
cut_request (Relay      *relay,
             const char *request_id)
{
  if (g_hash_table_add (relay->cut_requests, g_strdup (request_id)))
    g_debug ("relay_request_cut request_id=%s", request_id);
}

/* Returns whether a write of @request_id is still pending although its
 * invocation was cancelled. The bus dispatches the cleanup's final flush
 * before on_call_cancelled() runs, so this catches the cancel first. */
static gboolean
has_cancelled_call (Relay      *relay,
                    const char *request_id)
{
  for (GList *l = relay->calls; l != NULL; l = l->next)
    {
      JarvisInvocation *invocation = ((RelayCall *) l->data)->invocation;

      if (jarvis_invocation_is_cancelled (invocation) &&
          g_str_equal (jarvis_event_get_request_id (jarvis_invocation_get_event (invocation)), request_id))
        return TRUE;
    }

  return FALSE;
}

/* Runs in the bus's context, not inside the cancellable's `cancelled`
 * emission, so it may change the queues and return the invocation. */
static gboolean
on_call_cancelled (GCancellable *cancellable,
                   gpointer      user_data)
{
  RelayCall *call = user_data;
  const char *request_id = jarvis_event_get_request_id (jarvis_invocation_get_event (call->invocation));

  g_debug ("relay_write_cancelled request_id=%s", request_id);
  cut_request (call->relay, request_id);
  relay_server_cancel_write (call->relay->server, call->write);

  return G_SOURCE_REMOVE;
}

static void
write_frame_async (JarvisEvent      *event,
                   JarvisInvocation *invocation,
                   gpointer          user_data)
{
  Relay *relay = user_data;
  g_autoptr(RelayFrame) frame = NULL;
  RelayCall *call;

  /* A request that is already being cleaned up shows its final state
   * through its complete frame; a late frame would only half-update it. */
  if (jarvis_invocation_is_cancelled (invocation) ||
      has_cancelled_call (relay, jarvis_event_get_request_id (event)))
    cut_request (relay, jarvis_event_get_request_id (event));

  if (g_hash_table_contains (relay->cut_requests, jarvis_event_get_request_id (event)))
    {
      jarvis_invocation_return (invocation);
      return;
    }

  frame = relay_frame_new_from_event (event, ++relay->last_frame_id);
  g_assert (frame != NULL);

  call = g_new0 (RelayCall, 1);
  call->relay = relay;
  call->invocation = invocation;
  call->write = relay_write_new (frame, on_write_done, call);
  call->cancel_source = g_cancellable_source_new (jarvis_invocation_get_cancellable (invocation));
  g_source_set_callback (call->cancel_source, G_SOURCE_FUNC (on_call_cancelled), call, NULL);
  g_source_attach (call->cancel_source, jarvis_plugin_get_context (relay->plugin));
  relay->calls = g_list_prepend (relay->calls, call);

  /* on_write_done may free the call before this returns, when no client
   * is connected; publish holds its own reference to the write. */
  relay_server_publish (relay->server, call->write);
}

/* The complete frame is written without an invocation: it is the request's
 * final state, and nothing after it may cancel it. */
static void
write_complete (JarvisEvent *event,
                gpointer     user_data)
{
  Relay *relay = user_data;
  g_autoptr(RelayFrame) frame = relay_frame_new_from_event (event, ++relay->last_frame_id);
  g_autoptr(RelayWrite) write = relay_write_new (frame, NULL, NULL);

  /* Nothing of the request follows its complete event. */
  g_hash_table_remove (relay->cut_requests, jarvis_event_get_request_id (event));
  relay_server_publish (relay->server, write);
}

static void
relay_free (gpointer data)
{
  Relay *relay = data;

  /* The bus returned or detached every invocation before shutdown. A
   * detached one may still be here, and its late return is accepted. */
  while (relay->calls != NULL)
    relay_server_cancel_write (relay->server, ((RelayCall *) relay->calls->data)->write);

  g_clear_pointer (&relay->server, relay_server_free);
  g_clear_pointer (&relay->cut_requests, g_hash_table_unref);
  g_free (relay);
}

static gboolean
read_count_option (JarvisPlugin  *plugin,
                   const char    *key,
                   guint          default_value,
                   guint          minimum,
                   guint         *value,
                   GError       **error)
{
  GError *local_error = NULL;
  guint64 number = jarvis_plugin_get_option_uint (plugin, key, default_value, &local_error);

  if (local_error != NULL)
    {
      g_propagate_error (error, local_error);
      return FALSE;
    }

  if (number < minimum || number > G_MAXUINT)
    {
      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_INVALID_OPTION,
                   "relay: invalid option %s=%" G_GUINT64_FORMAT ": expected %u to %u",
                   key, number, minimum, G_MAXUINT);
      return FALSE;
    }

  *value = (guint) number;

  return TRUE;
}

static gboolean
relay_init (JarvisPlugin  *plugin,
            GError       **error)
{
  g_autofree char *address = jarvis_plugin_dup_option_string (plugin, "address", DEFAULT_ADDRESS);
  g_autofree char *token = jarvis_plugin_dup_option_string (plugin, "token", NULL);
  g_autofree char *url = NULL;
  RelayServerOptions options = { 0 };
  GError *local_error = NULL;
  Relay *relay;

  options.address = address;
  options.token = token;
  options.allow_remote = jarvis_plugin_get_option_boolean (plugin, "allow-remote", FALSE,
                                                           &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, local_error);
      return FALSE;
    }

  if (!read_count_option (plugin, "port", 0, 0, &options.port, error) ||
      !read_count_option (plugin, "history", DEFAULT_HISTORY, 2,
                          &options.history_frames, error) ||
      !read_count_option (plugin, "history-requests", DEFAULT_HISTORY_REQUESTS, 1,
                          &options.history_requests, error) ||
      !read_count_option (plugin, "client-queue", DEFAULT_CLIENT_QUEUE, 1,
                          &options.client_queue, error) ||
      !read_count_option (plugin, "write-timeout", DEFAULT_WRITE_TIMEOUT_MS, 1,
                          &options.write_timeout_ms, error))
    return FALSE;

  relay = g_new0 (Relay, 1);
  relay->plugin = plugin;
  relay->cut_requests = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  relay->server = relay_server_new (jarvis_plugin_get_context (plugin), &options, error);
  if (relay->server == NULL)
    {
      relay_free (relay);
      return FALSE;
    }

  jarvis_plugin_set_data (plugin, relay, relay_free);
  jarvis_plugin_subscribe_async (plugin, JARVIS_EVENT_STREAM_START, write_frame_async, relay, NULL);
  jarvis_plugin_subscribe_async (plugin, JARVIS_EVENT_STREAM_FLUSH, write_frame_async, relay, NULL);
  jarvis_plugin_subscribe (plugin, JARVIS_EVENT_STREAM_COMPLETE, write_complete, relay, NULL);

  /* The token is a secret, so the URL is logged without it. */
  url = relay_server_dup_url (relay->server);
  g_info ("relay_listening url=%s token_required=%s", url, token != NULL && *token != '\0' ? "yes" : "no");

  return TRUE;
}

JARVIS_PLUGIN_DEFINE ("relay", "0.1.0",
                      "Shows requests live in a browser page through Server-Sent Events",
                      "MIT", relay_init, NULL)
