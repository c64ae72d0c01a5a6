#include "config.h"

#include "jarvis-queue-private.h"
#include "jarvis-tsan-private.h"

static gboolean
wake_source_dispatch (GSource     *source,
                      GSourceFunc  callback,
                      gpointer     user_data)
{
  /* Disarm before the callback reads shared state, so that a wake from
   * another thread during the callback schedules one more dispatch. */
  g_source_set_ready_time (source, -1);

  return callback (user_data);
}

static GSourceFuncs wake_source_funcs = {
  .dispatch = wake_source_dispatch,
};

GSource *
_jarvis_wake_source_new (const char  *name,
                         GSourceFunc  callback,
                         gpointer     user_data)
{
  GSource *source;

  source = g_source_new (&wake_source_funcs, sizeof (GSource));
  g_source_set_static_name (source, name);
  g_source_set_callback (source, callback, user_data, NULL);
  g_source_set_ready_time (source, -1);

  return source;
}

void
_jarvis_wake_source_wake (GSource *source)
{
  g_source_set_ready_time (source, 0);
}

struct _JarvisQueue
{
  GMutex lock;
  GCond not_full;               /* signalled when a batch is taken or on close */

  /* protected by lock */
  GQueue items;                 /* JarvisEvent *, owned */
  guint capacity;
  gboolean closed;
  guint64 n_rejected;           /* pushes after close */

  GSource *source;              /* owned; attached to the bus context */
  JarvisQueueFunc func;
  gpointer user_data;
};

static gboolean
queue_dispatch (gpointer user_data)
{
  JarvisQueue *queue = user_data;
  GQueue batch = G_QUEUE_INIT;

  g_mutex_lock (&queue->lock);
  _jarvis_tsan_acquire (&queue->lock);
  batch = queue->items;
  g_queue_init (&queue->items);
  g_cond_broadcast (&queue->not_full);
  _jarvis_tsan_release (&queue->lock);
  g_mutex_unlock (&queue->lock);

  if (batch.length > 0)
    queue->func (&batch, queue->user_data);

  return G_SOURCE_CONTINUE;
}

JarvisQueue *
_jarvis_queue_new (GMainContext    *context,
                   guint            capacity,
                   JarvisQueueFunc  func,
                   gpointer         user_data)
{
  JarvisQueue *queue;

  g_assert (capacity > 0);

  queue = g_new0 (JarvisQueue, 1);
  g_mutex_init (&queue->lock);
  g_cond_init (&queue->not_full);
  g_queue_init (&queue->items);
  queue->capacity = capacity;
  queue->func = func;
  queue->user_data = user_data;

  queue->source = _jarvis_wake_source_new ("jarvis cross-thread events", queue_dispatch, queue);
  g_source_attach (queue->source, context);

  return queue;
}

void
_jarvis_queue_set_capacity (JarvisQueue *queue,
                            guint        capacity)
{
  g_assert (capacity > 0);

  g_mutex_lock (&queue->lock);
  _jarvis_tsan_acquire (&queue->lock);
  queue->capacity = capacity;
  g_cond_broadcast (&queue->not_full);
  _jarvis_tsan_release (&queue->lock);
  g_mutex_unlock (&queue->lock);
}

/* Takes ownership of @event. Blocks the calling thread while the queue is
 * full; nothing is ever dropped except after _jarvis_queue_close(), when the
 * event is released and FALSE returned. */
gboolean
_jarvis_queue_push (JarvisQueue *queue,
                    JarvisEvent *event)
{
  gboolean was_empty;

  g_mutex_lock (&queue->lock);
  _jarvis_tsan_acquire (&queue->lock);

  while (!queue->closed && queue->items.length >= queue->capacity)
    {
      _jarvis_tsan_release (&queue->lock);
      g_cond_wait (&queue->not_full, &queue->lock);
      _jarvis_tsan_acquire (&queue->lock);
    }

  if (queue->closed)
    {
      queue->n_rejected++;
      _jarvis_tsan_release (&queue->lock);
      g_mutex_unlock (&queue->lock);
      jarvis_event_unref (event);
      return FALSE;
    }

  was_empty = queue->items.length == 0;
  g_queue_push_tail (&queue->items, event);

  /* One wake-up per batch: later pushes find the source already armed. */
  if (was_empty)
    _jarvis_wake_source_wake (queue->source);

  _jarvis_tsan_release (&queue->lock);
  g_mutex_unlock (&queue->lock);

  return TRUE;
}

/* Returns how many pushes came after _jarvis_queue_close(). Any thread. */
guint64
_jarvis_queue_get_n_rejected (JarvisQueue *queue)
{
  guint64 n_rejected;

  g_mutex_lock (&queue->lock);
  _jarvis_tsan_acquire (&queue->lock);
  n_rejected = queue->n_rejected;
  _jarvis_tsan_release (&queue->lock);
  g_mutex_unlock (&queue->lock);

  return n_rejected;
}

guint
_jarvis_queue_get_length (JarvisQueue *queue)
{
  guint length;

  g_mutex_lock (&queue->lock);
  _jarvis_tsan_acquire (&queue->lock);
  length = queue->items.length;
  _jarvis_tsan_release (&queue->lock);
  g_mutex_unlock (&queue->lock);

  return length;
}

/* Detaches the source, releases blocked producers and drops what is still
 * queued. Returns the number of events dropped. */
guint
_jarvis_queue_close (JarvisQueue *queue)
{
  guint dropped;

  g_mutex_lock (&queue->lock);
  _jarvis_tsan_acquire (&queue->lock);
  queue->closed = TRUE;
  dropped = queue->items.length;
  g_queue_clear_full (&queue->items, (GDestroyNotify) jarvis_event_unref);
  g_cond_broadcast (&queue->not_full);
  _jarvis_tsan_release (&queue->lock);
  g_mutex_unlock (&queue->lock);

  if (queue->source != NULL)
    {
      g_source_destroy (queue->source);
      g_clear_pointer (&queue->source, g_source_unref);
    }

  return dropped;
}

void
_jarvis_queue_free (JarvisQueue *queue)
{
  if (queue == NULL)
    return;

  _jarvis_queue_close (queue);
  g_mutex_clear (&queue->lock);
  g_cond_clear (&queue->not_full);
  g_free (queue);
}
