#pragma once

#include <gmodule.h>

#include "jarvis/jarvis.h"
#include "jarvis-invocation-private.h"
#include "jarvis-log-private.h"
#include "jarvis-queue-private.h"
#include "jarvis-timer-set-private.h"

G_BEGIN_DECLS

/* Registers a plugin whose descriptor lives in @module, which the loader has
 * already checked (trust, ABI, name). On success the bus owns @module: it
 * closes it after the plugin's shutdown, or makes it resident when an unload
 * hit its deadline with invocations still in flight, because their code must
 * stay mapped. On failure the caller still owns @module. @path is kept for
 * messages. */
gboolean _jarvis_bus_register_module (JarvisBus               *bus,
                                      const JarvisPluginInfo  *info,
                                      GModule                 *module,
                                      const char              *path,
                                      GError                 **error);

/* Everything below is shared by the core files only. */

typedef struct _JarvisRequest JarvisRequest;
typedef struct _JarvisSession JarvisSession;

typedef enum
{
  MATCH_ALL,
  MATCH_EXACT,
  MATCH_PREFIX,
} JarvisMatch;

typedef struct
{
  guint id;
  JarvisMatch match;
  gboolean removed;             /* unsubscribed; freed once no dispatch runs */
  JarvisPlugin *plugin;         /* borrowed */
  const char *pattern;          /* interned; for MATCH_PREFIX without the '*' */
  gsize prefix_length;
  JarvisHandlerFunc func;       /* exactly one of func and async_func is set */
  JarvisAsyncHandlerFunc async_func;
  gpointer user_data;
  GDestroyNotify destroy;
} JarvisSubscription;

/* Counters 0 .. REQUEST_N_COUNTERS - 1 are also kept per request. */
#define REQUEST_N_COUNTERS (JARVIS_COUNTER_UTF8_REPLACEMENTS + 1)

typedef enum
{
  CLOSE_NONE,
  CLOSE_DRAINING,               /* requests and bus-scope calls are finishing */
  CLOSE_UNLOADING,              /* plugins are being unloaded */
  CLOSE_DONE,
} JarvisCloseStage;

struct _JarvisBus
{
  GObject parent_instance;

  GMainContext *context;        /* owned */
  GThread *owner;               /* the thread that created the bus */
  gboolean log_debug;           /* cached _jarvis_log_debug_enabled() */
  GKeyFile *config;             /* owned, nullable */

  guint flush_interval_ms;
  gsize flush_max_bytes;
  guint end_grace_ms;
  guint drain_timeout_ms;

  GPtrArray *plugins;           /* JarvisPlugin *, owned, registration order */
  GPtrArray *subscriptions;     /* JarvisSubscription *, owned, subscription order */
  guint next_subscription_id;
  guint n_removed_subscriptions;
  guint dispatch_depth;

  /* The owner thread's work queue. While busy > 0 an emit only appends to
   * pending; the outermost frame drains it, so dispatch never recurses. */
  guint busy;
  guint reentry;                /* > 0 inside a handler or a cancel callback */
  GQueue pending;               /* JarvisEvent *, owned */
  JarvisQueue *queue;           /* events from other threads */
  guint queue_capacity;

  JarvisCompletion *completion; /* owned reference */
  guint n_invocations;          /* attached, in all scopes */
  JarvisScope scope;            /* calls outside requests and for completes */

  GHashTable *requests;         /* request id → JarvisRequest *, owned */
  GHashTable *sessions;         /* session id → JarvisSession *, owned */
  GHashTable *finished;         /* request id → logged flag, recent completes */
  GQueue finished_order;        /* the keys of finished, oldest first */
  JarvisRequest *last_request;  /* lookup cache, borrowed */
  gboolean close_drop_logged;   /* an event of an unknown request came during close */

  GQueue deferred;              /* JarvisRequest * whose cleanup was requested re-entrantly */
  GSource *deferred_source;     /* owned */
  JarvisTimerSet *flush_timers; /* owned; the flush timers of all requests */

  JarvisCloseStage close_stage;
  GPtrArray *close_tasks;       /* GTask *, owned */
  GSource *close_source;        /* owned; the drain deadline of close */
  guint n_unloading;

  guint64 counters[JARVIS_N_COUNTERS];
};

/* How many completed request ids the bus keeps to drop their late events.
 * Older ids are forgotten, and an event for one of them opens a new request
 * when it is a start or delta. */
#define FINISHED_REQUESTS_KEPT 4096

#define _jarvis_bus_debug(bus, request_id, ...)           \
  G_STMT_START {                                          \
    if (G_UNLIKELY ((bus)->log_debug))                    \
      _jarvis_log_debug ((request_id), __VA_ARGS__);      \
  } G_STMT_END

static inline void
_jarvis_bus_count (JarvisBus     *bus,
                   guint64       *request_counters,
                   JarvisCounter  counter,
                   guint64        n)
{
  bus->counters[counter] += n;
  if (request_counters != NULL && counter < REQUEST_N_COUNTERS)
    request_counters[counter] += n;
}

GSource *_jarvis_bus_add_timer (JarvisBus   *bus,
                                const char  *name,
                                gint64       ready_time_us,
                                GSourceFunc  callback,
                                gpointer     user_data);

void _jarvis_bus_clear_source (GSource **source);

void _jarvis_bus_enter (JarvisBus *bus);

void _jarvis_bus_leave (JarvisBus *bus);

void _jarvis_bus_dispatch (JarvisBus   *bus,
                           JarvisEvent *event,
                           JarvisScope *scope);

void _jarvis_bus_detach_scope (JarvisBus   *bus,
                               JarvisScope *scope,
                               const char  *request_id);

void _jarvis_bus_check_close (JarvisBus *bus);

void _jarvis_bus_check_drained (JarvisBus *bus);

void _jarvis_bus_signal_request_started (JarvisBus  *bus,
                                         const char *request_id,
                                         const char *session_id);

void _jarvis_bus_signal_request_completed (JarvisBus   *bus,
                                           JarvisEvent *complete);

guint _jarvis_bus_subscribe (JarvisBus              *bus,
                             JarvisPlugin           *plugin,
                             const char             *pattern,
                             JarvisHandlerFunc       func,
                             JarvisAsyncHandlerFunc  async_func,
                             gpointer                user_data,
                             GDestroyNotify          destroy);

void _jarvis_bus_unsubscribe (JarvisBus    *bus,
                              JarvisPlugin *plugin,
                              guint         subscription_id);

gboolean _jarvis_bus_reject_bus_only_event (JarvisEvent *event,
                                            const char  *function);

G_END_DECLS
