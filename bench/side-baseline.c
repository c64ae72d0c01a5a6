#include "bench-side.h"
#include "baseline.h"

/* The workload's handlers on the baseline bus. The code mirrors
 * side-jarvis.c line by line so that only the bus differs. */

typedef struct
{
  GTask *task;                  /* owned */
  GCancellable *cancellable;    /* unowned; the task keeps it */
  gulong handler_id;
} HeldCall;

typedef struct
{
  BaselineBus *bus;             /* owned */
  GMainContext *context;        /* unowned */
  BenchLoad *load;              /* unowned */

  GQueue ready;                 /* owned GTask references to return */
  GPtrArray *held;              /* owned GTask references, or HeldCall */
  GSource *idle;                /* owned, nullable */
} Side;

static void
on_sync_event (BaselineEvent *event,
               gpointer       user_data)
{
  Side *side = user_data;

  bench_load_observe (side->load, event->event_type, event->text_length);
}

static gboolean
on_idle (gpointer user_data)
{
  Side *side = user_data;
  GTask *task;

  g_clear_pointer (&side->idle, g_source_unref);

  while ((task = g_queue_pop_head (&side->ready)) != NULL)
    {
      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
    }

  if (side->load->async_mode == BENCH_ASYNC_RETURN_WHEN_CANCELLED)
    {
      guint kept = 0;

      for (guint i = 0; i < side->held->len; i++)
        {
          HeldCall *call = g_ptr_array_index (side->held, i);

          if (!g_cancellable_is_cancelled (call->cancellable))
            {
              side->held->pdata[kept++] = call;
              continue;
            }

          g_cancellable_disconnect (call->cancellable, call->handler_id);
          g_task_return_boolean (call->task, TRUE);
          g_object_unref (call->task);
          g_free (call);
        }
      g_ptr_array_set_size (side->held, kept);
    }

  return G_SOURCE_REMOVE;
}

static void
wake (Side *side)
{
  if (side->idle != NULL)
    return;

  side->idle = g_idle_source_new ();
  g_source_set_callback (side->idle, on_idle, side, NULL);
  g_source_attach (side->idle, side->context);
}

/* Runs in the cancelling thread inside the cancellable's signal, so it only
 * schedules the return. */
static void
on_call_cancelled (GCancellable *cancellable,
                   gpointer      user_data)
{
  wake (user_data);
}

static void
on_async_event (BaselineEvent *event,
                GTask         *task,
                gpointer       user_data)
{
  Side *side = user_data;
  HeldCall *call;

  side->load->async_calls++;

  switch (side->load->async_mode)
    {
    case BENCH_ASYNC_RETURN_FROM_IDLE:
      g_queue_push_tail (&side->ready, g_object_ref (task));
      wake (side);
      break;

    case BENCH_ASYNC_RETURN_WHEN_CANCELLED:
      call = g_new0 (HeldCall, 1);
      call->task = g_object_ref (task);
      call->cancellable = g_task_get_cancellable (task);
      g_ptr_array_add (side->held, call);
      call->handler_id = g_cancellable_connect (call->cancellable, G_CALLBACK (on_call_cancelled), side, NULL);
      break;

    case BENCH_ASYNC_HOLD:
      g_ptr_array_add (side->held, g_object_ref (task));
      break;
    }
}

static gpointer
side_new (GMainContext *context,
          BenchLoad    *load)
{
  Side *side = g_new0 (Side, 1);

  side->context = context;
  side->load = load;
  side->bus = baseline_bus_new (context);
  side->held = g_ptr_array_sized_new (MAX (load->held_capacity, 16));
  g_queue_init (&side->ready);

  baseline_bus_set_flush_policy (side->bus, load->flush_interval_ms, load->flush_max_bytes);
  if (load->queue_capacity > 0)
    baseline_bus_set_queue_capacity (side->bus, load->queue_capacity);

  for (guint i = 0; i < load->n_sync; i++)
    baseline_bus_subscribe (side->bus, load->sync_pattern, on_sync_event, side);
  for (guint i = 0; i < load->n_async; i++)
    baseline_bus_subscribe_async (side->bus, load->async_pattern, on_async_event, side);

  return side;
}

static BaselineEvent *
build_event (const char *event_type,
             const char *request_id,
             const char *session_id,
             const char *text,
             gsize       text_length)
{
  BaselineEvent *event = baseline_event_new (event_type, request_id);

  if (session_id != NULL)
    baseline_event_set_session_id (event, session_id);
  if (text != NULL)
    baseline_event_set_text (event, text, text_length);

  return event;
}

static void
side_emit (gpointer    data,
           const char *event_type,
           const char *request_id,
           const char *session_id,
           const char *text,
           gsize       text_length)
{
  Side *side = data;

  baseline_bus_emit (side->bus, build_event (event_type, request_id, session_id, text, text_length));
}

static void
side_emit_from_thread (gpointer    data,
                       const char *event_type,
                       const char *request_id,
                       const char *text,
                       gsize       text_length)
{
  Side *side = data;

  baseline_bus_emit_from_thread (side->bus, build_event (event_type, request_id, NULL, text, text_length));
}

static gboolean
side_cancel_request (gpointer    data,
                     const char *request_id)
{
  Side *side = data;

  return baseline_bus_cancel_request (side->bus, request_id);
}

static void
side_return_held (gpointer data)
{
  Side *side = data;

  g_assert (side->load->async_mode == BENCH_ASYNC_HOLD);

  for (guint i = 0; i < side->held->len; i++)
    {
      GTask *task = g_ptr_array_index (side->held, i);

      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
    }
  g_ptr_array_set_size (side->held, 0);
}

static guint
side_n_invocations (gpointer data)
{
  Side *side = data;

  return baseline_bus_get_n_invocations (side->bus);
}

static guint64
side_bytes_in (gpointer data)
{
  Side *side = data;

  return baseline_bus_get_counter (side->bus, BASELINE_COUNTER_BYTES_IN);
}

static guint64
side_bytes_flushed (gpointer data)
{
  Side *side = data;

  return baseline_bus_get_counter (side->bus, BASELINE_COUNTER_BYTES_FLUSHED);
}

static void
side_close (gpointer data)
{
  Side *side = data;

  baseline_bus_cancel_all (side->bus);
  while (baseline_bus_get_n_active_requests (side->bus) > 0)
    g_main_context_iteration (side->context, TRUE);
  bench_iterate_pending (side->context);

  g_assert (g_queue_is_empty (&side->ready));
  g_assert (side->held->len == 0);

  baseline_bus_free (side->bus);
  if (side->idle != NULL)
    {
      g_source_destroy (side->idle);
      g_source_unref (side->idle);
    }
  g_ptr_array_unref (side->held);
  g_free (side);
}

const BenchSide bench_side_baseline = {
  .name = "baseline",
  .bus_new = side_new,
  .emit = side_emit,
  .emit_from_thread = side_emit_from_thread,
  .cancel_request = side_cancel_request,
  .return_held = side_return_held,
  .n_invocations = side_n_invocations,
  .bytes_in = side_bytes_in,
  .bytes_flushed = side_bytes_flushed,
  .close = side_close,
};
