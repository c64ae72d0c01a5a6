#pragma once

#if !defined(JARVIS_INSIDE) && !defined(JARVIS_COMPILATION)
#error "Only <jarvis/jarvis.h> can be included directly."
#endif

#include <gio/gio.h>
#include <jarvis/jarvis-macros.h>
#include <jarvis/jarvis-event.h>
#include <jarvis/jarvis-plugin.h>

G_BEGIN_DECLS

/**
 * JarvisOutcome:
 * @JARVIS_OUTCOME_COMPLETED: the stream ended normally.
 * @JARVIS_OUTCOME_CANCELLED: the request was cancelled, by an
 *   %JARVIS_EVENT_STREAM_CANCEL event, jarvis_bus_cancel_request() or close.
 * @JARVIS_OUTCOME_SUPERSEDED: a newer request started on the same session.
 * @JARVIS_OUTCOME_FAILED: an %JARVIS_EVENT_STREAM_ERROR event ended it.
 *
 * How a request ended, as carried by its %JARVIS_EVENT_STREAM_COMPLETE
 * event.
 *
 * Since: 0.1
 */
typedef enum
{
  JARVIS_OUTCOME_COMPLETED,
  JARVIS_OUTCOME_CANCELLED,
  JARVIS_OUTCOME_SUPERSEDED,
  JARVIS_OUTCOME_FAILED,
} JarvisOutcome;

JARVIS_API
const char *jarvis_outcome_to_string (JarvisOutcome outcome);

/**
 * JarvisCounter:
 * @JARVIS_COUNTER_EVENTS: events accepted by jarvis_bus_emit() and
 *   jarvis_plugin_emit(), whatever became of them
 * @JARVIS_COUNTER_TOKENS: delta events appended to a request buffer
 * @JARVIS_COUNTER_BYTES_IN: bytes of delta text appended, after UTF-8 repair
 * @JARVIS_COUNTER_BYTES_FLUSHED: bytes carried by flush events
 * @JARVIS_COUNTER_FLUSHES: flush events emitted
 * @JARVIS_COUNTER_TASKS_CREATED: async handler invocations created
 * @JARVIS_COUNTER_TASKS_COMPLETED: invocations returned without error and
 *   without being cancelled
 * @JARVIS_COUNTER_TASKS_FAILED: invocations returned with an error other
 *   than cancellation
 * @JARVIS_COUNTER_TASKS_CANCELLED: invocations returned after their
 *   cancellable fired
 * @JARVIS_COUNTER_TASKS_DETACHED: invocations given up at the drain deadline
 * @JARVIS_COUNTER_LATE_EVENTS_DROPPED: events dropped because their request
 *   was already being cleaned up or complete
 * @JARVIS_COUNTER_UTF8_REPLACEMENTS: invalid UTF-8 sequences replaced by
 *   U+FFFD
 * @JARVIS_COUNTER_REQUESTS: requests opened
 * @JARVIS_COUNTER_REQUESTS_COMPLETED: requests completed with outcome
 *   completed
 * @JARVIS_COUNTER_REQUESTS_CANCELLED: requests completed with outcome
 *   cancelled
 * @JARVIS_COUNTER_REQUESTS_SUPERSEDED: requests completed with outcome
 *   superseded
 * @JARVIS_COUNTER_REQUESTS_FAILED: requests completed with outcome failed
 * @JARVIS_COUNTER_HANDLER_ERRORS: handler errors logged as warnings
 * @JARVIS_N_COUNTERS: the number of counters
 *
 * Totals kept by a #JarvisBus. Once the bus is closed,
 * `TASKS_CREATED = TASKS_COMPLETED + TASKS_FAILED + TASKS_CANCELLED +
 * TASKS_DETACHED` and `BYTES_FLUSHED = BYTES_IN`.
 *
 * Since: 0.1
 */
typedef enum
{
  JARVIS_COUNTER_EVENTS,
  JARVIS_COUNTER_TOKENS,
  JARVIS_COUNTER_BYTES_IN,
  JARVIS_COUNTER_BYTES_FLUSHED,
  JARVIS_COUNTER_FLUSHES,
  JARVIS_COUNTER_TASKS_CREATED,
  JARVIS_COUNTER_TASKS_COMPLETED,
  JARVIS_COUNTER_TASKS_FAILED,
  JARVIS_COUNTER_TASKS_CANCELLED,
  JARVIS_COUNTER_TASKS_DETACHED,
  JARVIS_COUNTER_LATE_EVENTS_DROPPED,
  JARVIS_COUNTER_UTF8_REPLACEMENTS,
  JARVIS_COUNTER_REQUESTS,
  JARVIS_COUNTER_REQUESTS_COMPLETED,
  JARVIS_COUNTER_REQUESTS_CANCELLED,
  JARVIS_COUNTER_REQUESTS_SUPERSEDED,
  JARVIS_COUNTER_REQUESTS_FAILED,
  JARVIS_COUNTER_HANDLER_ERRORS,
  JARVIS_N_COUNTERS
} JarvisCounter;

JARVIS_API
const char *jarvis_counter_get_name (JarvisCounter counter);

#define JARVIS_TYPE_BUS (jarvis_bus_get_type ())

/**
 * JarvisBus:
 *
 * The event bus. It owns registered plugins, dispatches events to their
 * handlers in its #GMainContext, tracks every async invocation per request,
 * coalesces delta text into flush events, and cleans each request up in a
 * fixed order.
 *
 * Create the bus in the thread that iterates its context. Handlers,
 * signals and the callbacks of close and unload run only there, whether or
 * not that context is the thread default. jarvis_bus_emit() takes the
 * event (transfer full) and may be called from any thread; the rest of the
 * API belongs to the bus's thread.
 *
 * Signals:
 * - `request-started` (const char *request_id, const char *session_id):
 *   a request was opened and its start is about to be dispatched.
 * - `request-completed` (JarvisEvent *complete): the request's
 *   %JARVIS_EVENT_STREAM_COMPLETE event, after its sync handlers ran and
 *   while the async calls made for it may still run.
 * - `drained`: no request is active and no handler call is in flight.
 *   Emitted each time that becomes true while the bus is open. A program
 *   that has fed all its input can close from here without cancelling any
 *   call. Wait for it with a deadline, because a handler that never
 *   returns keeps it from coming.
 *
 * Since: 0.1
 */
JARVIS_API
G_DECLARE_FINAL_TYPE (JarvisBus, jarvis_bus, JARVIS, BUS, GObject)

JARVIS_API G_GNUC_WARN_UNUSED_RESULT
JarvisBus *jarvis_bus_new (GMainContext *context);

JARVIS_API
GMainContext *jarvis_bus_get_context (JarvisBus *bus);

JARVIS_API
void jarvis_bus_set_config (JarvisBus *bus,
                            GKeyFile  *config);

JARVIS_API
GKeyFile *jarvis_bus_get_config (JarvisBus *bus);

JARVIS_API
void jarvis_bus_set_flush_policy (JarvisBus *bus,
                                  guint      interval_ms,
                                  gsize      max_bytes);

JARVIS_API
void jarvis_bus_set_end_grace (JarvisBus *bus,
                               guint      grace_ms);

JARVIS_API
void jarvis_bus_set_drain_timeout (JarvisBus *bus,
                                   guint      timeout_ms);

JARVIS_API
void jarvis_bus_set_queue_capacity (JarvisBus *bus,
                                    guint      capacity);

JARVIS_API
gboolean jarvis_bus_register_plugin (JarvisBus               *bus,
                                     const JarvisPluginInfo  *info,
                                     GError                 **error);

JARVIS_API
JarvisPlugin *jarvis_bus_lookup_plugin (JarvisBus  *bus,
                                        const char *name);

JARVIS_API G_GNUC_WARN_UNUSED_RESULT
GStrv jarvis_bus_list_plugins (JarvisBus *bus);

JARVIS_API
void jarvis_bus_unload_plugin (JarvisBus           *bus,
                               const char          *name,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data);

JARVIS_API
gboolean jarvis_bus_unload_plugin_finish (JarvisBus     *bus,
                                          GAsyncResult  *result,
                                          GError       **error);

JARVIS_API
void jarvis_bus_emit (JarvisBus   *bus,
                      JarvisEvent *event);

JARVIS_API
gboolean jarvis_bus_cancel_request (JarvisBus  *bus,
                                    const char *request_id);

JARVIS_API
void jarvis_bus_cancel_all (JarvisBus *bus);

JARVIS_API G_GNUC_WARN_UNUSED_RESULT
GCancellable *jarvis_bus_dup_request_cancellable (JarvisBus  *bus,
                                                  const char *request_id);

JARVIS_API
guint jarvis_bus_get_n_active_requests (JarvisBus *bus);

JARVIS_API
guint jarvis_bus_get_n_invocations (JarvisBus *bus);

JARVIS_API
guint64 jarvis_bus_get_counter (JarvisBus     *bus,
                                JarvisCounter  counter);

JARVIS_API G_GNUC_WARN_UNUSED_RESULT
GVariant *jarvis_bus_dup_stats (JarvisBus *bus);

JARVIS_API
void jarvis_bus_close_async (JarvisBus           *bus,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data);

JARVIS_API
gboolean jarvis_bus_close_finish (JarvisBus     *bus,
                                  GAsyncResult  *result,
                                  GError       **error);

JARVIS_API
gboolean jarvis_bus_is_closed (JarvisBus *bus);

G_END_DECLS
