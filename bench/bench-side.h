#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* How the workload's async handlers behave. */
typedef enum
{
  /* Queue the call and return it from one idle source that all async
   * handlers of the bus share, so a burst of calls costs one dispatch. */
  BENCH_ASYNC_RETURN_FROM_IDLE,
  /* Keep the call until its cancellable fires, then return it from the
   * shared idle source. */
  BENCH_ASYNC_RETURN_WHEN_CANCELLED,
  /* Keep the call until the workload calls BenchSide.return_held(). */
  BENCH_ASYNC_HOLD,
} BenchAsyncMode;

/* The handlers a workload subscribes and what they observed. Both sides
 * run the same handler code on their own event and call types. */
typedef struct
{
  guint n_sync;
  const char *sync_pattern;
  guint n_async;
  const char *async_pattern;
  BenchAsyncMode async_mode;

  guint flush_interval_ms;
  gsize flush_max_bytes;
  guint queue_capacity;         /* 0 keeps the default */
  guint held_capacity;          /* calls BENCH_ASYNC_HOLD keeps, preallocated */

  /* Written by the handlers, in the bus's thread. */
  guint64 sync_calls;
  guint64 async_calls;
  guint64 flush_events;
  guint64 flushed_bytes;        /* summed over every sync handler */
  guint64 completes;
} BenchLoad;

/* One implementation under test: the jarvis-events bus or the baseline. */
typedef struct
{
  const char *name;

  /* Creates a bus on @context, which is the thread-default context of the
   * calling thread, and subscribes the handlers of @load. */
  gpointer (*bus_new) (GMainContext *context,
                       BenchLoad    *load);

  /* Builds an event and emits it; @session_id and @text may be NULL. */
  void (*emit) (gpointer    bus,
                const char *event_type,
                const char *request_id,
                const char *session_id,
                const char *text,
                gsize       text_length);

  /* The same from a thread that is not the bus's. */
  void (*emit_from_thread) (gpointer    bus,
                            const char *event_type,
                            const char *request_id,
                            const char *text,
                            gsize       text_length);

  gboolean (*cancel_request) (gpointer    bus,
                              const char *request_id);

  /* Returns every call kept by BENCH_ASYNC_HOLD handlers. */
  void (*return_held) (gpointer bus);

  guint (*n_invocations) (gpointer bus);
  guint64 (*bytes_in) (gpointer bus);
  guint64 (*bytes_flushed) (gpointer bus);

  /* Cancels what is left, iterates the context until everything settled,
   * and frees the bus. */
  void (*close) (gpointer bus);
} BenchSide;

extern const BenchSide bench_side_jarvis;
extern const BenchSide bench_side_baseline;

/* Counts what a sync handler saw: every call, the bytes of flush events
 * and the complete events. */
void bench_load_observe (BenchLoad  *load,
                         const char *event_type,
                         gsize       text_length);

/* Iterates @context without blocking until nothing is ready. */
void bench_iterate_pending (GMainContext *context);

/* Iterates @context, blocking, until *@counter reaches @target. Aborts the
 * run with a message after @timeout_s seconds, because a stuck workload
 * means a broken bus and no figure should come out of it. */
void bench_iterate_until (GMainContext  *context,
                          const guint64 *counter,
                          guint64        target,
                          guint          timeout_s,
                          const char    *what);

G_END_DECLS
