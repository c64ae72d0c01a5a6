#include "bench-side.h"

#include <jarvis/jarvis.h>

/* The workload's handlers on a JarvisBus, registered through an in-memory
 * plugin. The code mirrors side-baseline.c line by line so that only the
 * bus differs. */

typedef struct
{
  JarvisInvocation *invocation; /* returned exactly once by on_idle() */
  GCancellable *cancellable;    /* unowned; the invocation keeps it */
  gulong handler_id;
} HeldCall;

typedef struct
{
  JarvisBus *bus;               /* owned */
  GMainContext *context;        /* unowned */
  BenchLoad *load;              /* unowned */

  GQueue ready;                 /* invocations to return */
  GPtrArray *held;              /* invocations, or HeldCall */
  GSource *idle;                /* owned, nullable */
} Side;

/* jarvis_bus_register_plugin() calls the init hook synchronously, so the
 * side being set up is passed through this variable. */
static Side *side_in_setup;

static void
on_sync_event (JarvisEvent *event,
               gpointer     user_data)
{
  Side *side = user_data;
  gsize text_length = 0;

  jarvis_event_get_text (event, &text_length);
  bench_load_observe (side->load, jarvis_event_get_event_type (event), text_length);
}

static gboolean
on_idle (gpointer user_data)
{
  Side *side = user_data;
  JarvisInvocation *invocation;

  g_clear_pointer (&side->idle, g_source_unref);

  while ((invocation = g_queue_pop_head (&side->ready)) != NULL)
    jarvis_invocation_return (invocation);

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
          jarvis_invocation_return (call->invocation);
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
on_async_event (JarvisEvent      *event,
                JarvisInvocation *invocation,
                gpointer          user_data)
{
  Side *side = user_data;
  HeldCall *call;

  side->load->async_calls++;

  switch (side->load->async_mode)
    {
    case BENCH_ASYNC_RETURN_FROM_IDLE:
      g_queue_push_tail (&side->ready, invocation);
      wake (side);
      break;

    case BENCH_ASYNC_RETURN_WHEN_CANCELLED:
      call = g_new0 (HeldCall, 1);
      call->invocation = invocation;
      call->cancellable = jarvis_invocation_get_cancellable (invocation);
      g_ptr_array_add (side->held, call);
      call->handler_id = g_cancellable_connect (call->cancellable, G_CALLBACK (on_call_cancelled), side, NULL);
      break;

    case BENCH_ASYNC_HOLD:
      g_ptr_array_add (side->held, invocation);
      break;
    }
}

static gboolean
bench_plugin_init (JarvisPlugin  *plugin,
                   GError       **error)
{
  Side *side = side_in_setup;
  BenchLoad *load = side->load;

  for (guint i = 0; i < load->n_sync; i++)
    jarvis_plugin_subscribe (plugin, load->sync_pattern, on_sync_event, side, NULL);
  for (guint i = 0; i < load->n_async; i++)
    jarvis_plugin_subscribe_async (plugin, load->async_pattern, on_async_event, side, NULL);

  return TRUE;
}

static const JarvisPluginInfo bench_plugin_info = {
  .abi_version = JARVIS_PLUGIN_ABI_VERSION,
  .struct_size = sizeof (JarvisPluginInfo),
  .name = "bench",
  .version = "0.1.0",
  .description = "Workload handlers of jarvis-bench",
  .license = "MIT",
  .init = bench_plugin_init,
  .shutdown = NULL,
};

static gpointer
side_new (GMainContext *context,
          BenchLoad    *load)
{
  Side *side = g_new0 (Side, 1);
  g_autoptr(GError) error = NULL;

  side->context = context;
  side->load = load;
  side->bus = jarvis_bus_new (context);
  side->held = g_ptr_array_sized_new (MAX (load->held_capacity, 16));
  g_queue_init (&side->ready);

  jarvis_bus_set_flush_policy (side->bus, load->flush_interval_ms, load->flush_max_bytes);
  if (load->queue_capacity > 0)
    jarvis_bus_set_queue_capacity (side->bus, load->queue_capacity);

  side_in_setup = side;
  if (!jarvis_bus_register_plugin (side->bus, &bench_plugin_info, &error))
    g_error ("jarvis-bench: registering the workload plugin failed: %s", error->message);
  side_in_setup = NULL;

  return side;
}

static JarvisEvent *
build_event (const char *event_type,
             const char *request_id,
             const char *session_id,
             const char *text,
             gsize       text_length)
{
  JarvisEvent *event = jarvis_event_new (event_type, request_id);

  if (session_id != NULL)
    jarvis_event_set_session_id (event, session_id);
  if (text != NULL)
    jarvis_event_set_text (event, text, text_length);

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

  jarvis_bus_emit (side->bus, build_event (event_type, request_id, session_id, text, text_length));
}

static void
side_emit_from_thread (gpointer    data,
                       const char *event_type,
                       const char *request_id,
                       const char *text,
                       gsize       text_length)
{
  Side *side = data;

  jarvis_bus_emit (side->bus, build_event (event_type, request_id, NULL, text, text_length));
}

static gboolean
side_cancel_request (gpointer    data,
                     const char *request_id)
{
  Side *side = data;

  return jarvis_bus_cancel_request (side->bus, request_id);
}

static void
side_return_held (gpointer data)
{
  Side *side = data;

  g_assert (side->load->async_mode == BENCH_ASYNC_HOLD);

  for (guint i = 0; i < side->held->len; i++)
    jarvis_invocation_return (g_ptr_array_index (side->held, i));
  g_ptr_array_set_size (side->held, 0);
}

static guint
side_n_invocations (gpointer data)
{
  Side *side = data;

  return jarvis_bus_get_n_invocations (side->bus);
}

static guint64
side_bytes_in (gpointer data)
{
  Side *side = data;

  return jarvis_bus_get_counter (side->bus, JARVIS_COUNTER_BYTES_IN);
}

static guint64
side_bytes_flushed (gpointer data)
{
  Side *side = data;

  return jarvis_bus_get_counter (side->bus, JARVIS_COUNTER_BYTES_FLUSHED);
}

static void
on_closed (GObject      *source_object,
           GAsyncResult *result,
           gpointer      user_data)
{
  guint64 *closed = user_data;
  g_autoptr(GError) error = NULL;

  if (!jarvis_bus_close_finish (JARVIS_BUS (source_object), result, &error))
    g_error ("jarvis-bench: closing the bus failed: %s", error->message);
  *closed = 1;
}

static void
side_close (gpointer data)
{
  Side *side = data;
  guint64 closed = 0;

  jarvis_bus_close_async (side->bus, NULL, on_closed, &closed);
  bench_iterate_until (side->context, &closed, 1, 30, "closing the jarvis bus");
  bench_iterate_pending (side->context);

  g_assert (g_queue_is_empty (&side->ready));
  g_assert (side->held->len == 0);

  g_object_unref (side->bus);
  if (side->idle != NULL)
    {
      g_source_destroy (side->idle);
      g_source_unref (side->idle);
    }
  g_ptr_array_unref (side->held);
  g_free (side);
}

const BenchSide bench_side_jarvis = {
  .name = "jarvis",
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
