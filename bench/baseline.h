#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The hand-written comparison point of the benchmarks. It is the design of
 * the jarvis-events bus written the plain way with raw GLib and no
 * framework.
 * Each async handler call gets its own GTask and GCancellable, requests are
 * a GHashTable of request id to a GPtrArray of in-flight tasks, and each
 * request buffers delta text in a GString flushed by a timeout source.
 *
 * It keeps the observable rules of the bus. The first token is flushed at
 * once and later ones on the interval or the size bound. Invalid UTF-8
 * becomes U+FFFD. An end waits for a grace period, and cancel and
 * supersede clean up at once. A superseding request waits for the old
 * one's completion. Cleanup runs the same five steps in order, and each
 * request gets one complete event after every call returned or was
 * detached. It is single-context: handlers run in the context passed to
 * baseline_bus_new(), which must be the thread-default context of the thread
 * that iterates it, because GTask completes in the thread-default context. */

typedef struct _BaselineBus BaselineBus;

/* A reference-counted event. The fields are read-only once emitted. */
typedef struct
{
  const char *event_type;       /* interned */
  char *request_id;             /* owned */
  char *session_id;             /* owned, nullable */
  char *trace_id;               /* owned, nullable */
  char *text;                   /* owned, nullable, NUL-terminated */
  gsize text_length;
  guint token_count;            /* flush events */
  const char *outcome;          /* complete events; static string */
} BaselineEvent;

typedef void (*BaselineHandlerFunc) (BaselineEvent *event,
                                     gpointer       user_data);

/* @task carries the call's GCancellable (g_task_get_cancellable()). The
 * handler returns it exactly once with g_task_return_boolean() or
 * g_task_return_error(), from the bus's context. The bus keeps its own
 * reference, so the handler takes one only if it keeps the task. */
typedef void (*BaselineAsyncHandlerFunc) (BaselineEvent *event,
                                          GTask         *task,
                                          gpointer       user_data);

typedef enum
{
  BASELINE_COUNTER_EVENTS,
  BASELINE_COUNTER_TOKENS,
  BASELINE_COUNTER_BYTES_IN,
  BASELINE_COUNTER_BYTES_FLUSHED,
  BASELINE_COUNTER_FLUSHES,
  BASELINE_COUNTER_TASKS_CREATED,
  BASELINE_COUNTER_TASKS_COMPLETED,
  BASELINE_COUNTER_TASKS_FAILED,
  BASELINE_COUNTER_TASKS_CANCELLED,
  BASELINE_COUNTER_TASKS_DETACHED,
  BASELINE_COUNTER_LATE_EVENTS_DROPPED,
  BASELINE_COUNTER_UTF8_REPLACEMENTS,
  BASELINE_COUNTER_REQUESTS,
  BASELINE_COUNTER_REQUESTS_COMPLETED,
  BASELINE_N_COUNTERS
} BaselineCounter;

BaselineEvent *baseline_event_new (const char *event_type,
                                   const char *request_id);
BaselineEvent *baseline_event_ref (BaselineEvent *event);
void baseline_event_unref (BaselineEvent *event);
void baseline_event_set_text (BaselineEvent *event,
                              const char    *text,
                              gssize         length);
void baseline_event_set_session_id (BaselineEvent *event,
                                    const char    *session_id);

BaselineBus *baseline_bus_new (GMainContext *context);
void baseline_bus_free (BaselineBus *bus);

void baseline_bus_set_flush_policy (BaselineBus *bus,
                                    guint        interval_ms,
                                    gsize        max_bytes);
void baseline_bus_set_queue_capacity (BaselineBus *bus,
                                      guint        capacity);

void baseline_bus_subscribe (BaselineBus         *bus,
                             const char          *pattern,
                             BaselineHandlerFunc  func,
                             gpointer             user_data);
void baseline_bus_subscribe_async (BaselineBus              *bus,
                                   const char               *pattern,
                                   BaselineAsyncHandlerFunc  func,
                                   gpointer                  user_data);

/* Both take @event (transfer full). baseline_bus_emit() is for the bus's
 * own thread; baseline_bus_emit_from_thread() for any other thread, and it
 * blocks while the cross-thread queue is full. */
void baseline_bus_emit (BaselineBus   *bus,
                        BaselineEvent *event);
void baseline_bus_emit_from_thread (BaselineBus   *bus,
                                    BaselineEvent *event);

gboolean baseline_bus_cancel_request (BaselineBus *bus,
                                      const char  *request_id);
void baseline_bus_cancel_all (BaselineBus *bus);

guint baseline_bus_get_n_active_requests (BaselineBus *bus);
guint baseline_bus_get_n_invocations (BaselineBus *bus);
guint64 baseline_bus_get_counter (BaselineBus     *bus,
                                  BaselineCounter  counter);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BaselineEvent, baseline_event_unref)

G_END_DECLS
