#pragma once

#include <gio/gio.h>

#include "relay-frame.h"

G_BEGIN_DECLS

/* The relay's HTTP side: a SoupServer with the page at `/` and the event
 * stream at `/events`, its connected clients, and the history that clients
 * resume from. Everything runs in one GMainContext, the bus's. */
typedef struct _RelayServer RelayServer;

typedef struct
{
  const char *address;     /* an IP address literal */
  guint port;              /* 0 picks a free port */
  gboolean allow_remote;   /* whether a non-loopback address is accepted */
  const char *token;       /* NULL or empty: no token needed */
  guint history_frames;    /* frames kept per request, 2 or more */
  guint history_requests;  /* requests kept in the history, 1 or more */
  guint client_queue;      /* frames a client may have waiting, 1 or more */
  guint write_timeout_ms;  /* how long one chunk may stay unwritten, 1 or more */
} RelayServerOptions;

/* One frame on its way to every client connected when it was published.
 * @done runs once, in the server's context: when every client wrote the
 * frame or went away, or at once when the write is cancelled. */
typedef struct _RelayWrite RelayWrite;

typedef void (*RelayWriteDoneFunc) (RelayWrite *write,
                                    gpointer    user_data);

RelayWrite *relay_write_new (RelayFrame         *frame,
                             RelayWriteDoneFunc  done,
                             gpointer            user_data);

RelayWrite *relay_write_ref (RelayWrite *write);

void relay_write_unref (RelayWrite *write);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RelayWrite, relay_write_unref)

RelayServer *relay_server_new (GMainContext              *context,
                               const RelayServerOptions  *options,
                               GError                   **error);

void relay_server_free (RelayServer *server);

/* The URL of the page, without the token. */
char *relay_server_dup_url (RelayServer *server);

guint relay_server_get_n_clients (RelayServer *server);

/* Adds the write's frame to the history and queues it for every client.
 * @done may run before this returns, when no client is connected. */
void relay_server_publish (RelayServer *server,
                           RelayWrite  *write);

/* Stops the write: its frame leaves every client queue that has not
 * started to write it, is never replayed, and @done runs now. A frame that
 * a client is already writing is finished, so no page sees half a frame. */
void relay_server_cancel_write (RelayServer *server,
                                RelayWrite  *write);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RelayServer, relay_server_free)

G_END_DECLS
