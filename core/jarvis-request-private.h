#pragma once

#include "jarvis-bus-private.h"
#include "jarvis-flush-private.h"
#include "jarvis-timer-set-private.h"

G_BEGIN_DECLS

typedef enum
{
  REQUEST_PENDING,              /* its start waits for the session's previous request */
  REQUEST_OPEN,
  REQUEST_ENDING,               /* end dispatched; waiting up to the end grace */
  REQUEST_CLEANING,             /* cleanup ran; waiting up to the drain deadline */
} JarvisRequestState;

struct _JarvisRequest
{
  JarvisBus *bus;               /* borrowed; the bus owns its requests */
  char *request_id;             /* owned */
  char *session_id;             /* owned */
  char *trace_id;               /* owned, nullable */
  JarvisSession *session;       /* borrowed; set while it is the session's request */
  JarvisRequestState state;
  JarvisOutcome outcome;
  char *error_message;          /* owned, nullable; from agent.stream.error */
  gboolean cleanup_deferred;    /* queued on bus->deferred */
  gboolean cleanup_finished;    /* all five steps ran; only the complete is left */
  gboolean late_logged;

  JarvisScope scope;
  JarvisFlushBuffer *buffer;    /* owned; choice 0, created on demand */
  GHashTable *choice_buffers;   /* owned, nullable; choice → JarvisFlushBuffer * for others */

  JarvisTimer flush_timer;      /* in bus->flush_timers; armed only while a buffer has text */
  GSource *grace_source;        /* owned; the end grace */
  GSource *drain_source;        /* owned; the drain deadline after cleanup */
  GCancellable *cancellable;    /* owned, nullable; see jarvis_bus_dup_request_cancellable() */

  guint64 counters[REQUEST_N_COUNTERS];
};

/* The requests of one session id. Only one request is active; the starts
 * that come while it runs wait, with every later event of their requests,
 * until its complete was emitted. */
struct _JarvisSession
{
  char *session_id;             /* owned */
  JarvisRequest *active;        /* borrowed, nullable */
  GQueue waiting;               /* JarvisEvent *, owned, emission order */
  char *superseded_id;          /* owned, nullable; the request the waiting start replaced */
};

/* Called once, from the bus's class initialisation. */
void _jarvis_request_init_types (void);

void _jarvis_request_process_event (JarvisBus   *bus,
                                    JarvisEvent *event);

JarvisRequest *_jarvis_request_lookup (JarvisBus  *bus,
                                       const char *request_id);

gboolean _jarvis_request_cleanup (JarvisRequest *request,
                                  JarvisOutcome  outcome);

void _jarvis_request_run_deferred (JarvisBus *bus);

void _jarvis_request_invocation_settled (JarvisRequest *request);

void _jarvis_request_drop_waiting (JarvisRequest *request);

void _jarvis_request_drop_pending (JarvisBus *bus);

void _jarvis_request_free (JarvisRequest *request);

void _jarvis_session_free (JarvisSession *session);

G_END_DECLS
