#include "config.h"

#include "jarvis-alloc-private.h"
#include "jarvis-timer-set-private.h"

struct _JarvisTimerSet
{
  GQueue armed;                 /* JarvisTimer *, earliest due first */
  GSource *source;              /* owned; NULL once stopped */
};

/* Sets the source's ready time to the earliest due time, or disarms it. */
static void
update_source (JarvisTimerSet *set)
{
  JarvisTimer *first = g_queue_peek_head (&set->armed);

  if (set->source != NULL)
    g_source_set_ready_time (set->source, first != NULL ? first->due_us : -1);
}

static gboolean
timer_set_dispatch (GSource     *source,
                    GSourceFunc  callback,
                    gpointer     user_data)
{
  JarvisTimerSet *set = user_data;
  gint64 now_us = g_source_get_time (source);
  guint n_due = 0;

  (void) callback;

  for (GList *l = set->armed.head; l != NULL && ((JarvisTimer *) l->data)->due_us <= now_us; l = l->next)
    n_due++;

  /* A callback may arm or disarm any timer, itself included. Firing at
   * most the timers that were due on entry keeps one that re-arms itself
   * in the past from running this loop forever: it fires on the next
   * dispatch instead. */
  for (guint i = 0; i < n_due; i++)
    {
      JarvisTimer *timer = g_queue_peek_head (&set->armed);

      if (timer == NULL || timer->due_us > now_us)
        break;

      _jarvis_timer_disarm (set, timer);
      timer->func (timer->user_data);
    }

  update_source (set);

  return G_SOURCE_CONTINUE;
}

static GSourceFuncs timer_set_funcs = {
  .dispatch = timer_set_dispatch,
};

JarvisTimerSet *
_jarvis_timer_set_new (GMainContext *context,
                       const char   *name)
{
  JarvisTimerSet *set = _jarvis_new0 (JarvisTimerSet);

  g_queue_init (&set->armed);
  set->source = g_source_new (&timer_set_funcs, sizeof (GSource));
  g_source_set_static_name (set->source, name);
  g_source_set_callback (set->source, NULL, set, NULL);
  g_source_set_ready_time (set->source, -1);
  g_source_attach (set->source, context);

  return set;
}

/* Detaches the source. Timers may still be armed and disarmed, but none
 * fires any more. */
void
_jarvis_timer_set_stop (JarvisTimerSet *set)
{
  if (set->source == NULL)
    return;

  g_source_destroy (set->source);
  g_clear_pointer (&set->source, g_source_unref);
}

void
_jarvis_timer_set_free (JarvisTimerSet *set)
{
  if (set == NULL)
    return;

  _jarvis_timer_set_stop (set);

  /* The owners of timers still armed free them without disarming. */
  g_queue_clear (&set->armed);
  g_free (set);
}

void
_jarvis_timer_init (JarvisTimer     *timer,
                    JarvisTimerFunc  func,
                    gpointer         user_data)
{
  *timer = (JarvisTimer) { .func = func, .user_data = user_data };
  timer->link.data = timer;
}

/* Arms @timer for @due_us, or moves it there when it is armed already.
 * Timers of one set mostly share an interval, so the new place is found
 * by walking back from the tail, which is one step in the common case. */
void
_jarvis_timer_arm (JarvisTimerSet *set,
                   JarvisTimer    *timer,
                   gint64          due_us)
{
  GList *later = NULL;
  GList *l;

  if (timer->armed)
    g_queue_unlink (&set->armed, &timer->link);

  timer->due_us = due_us;
  timer->armed = TRUE;

  for (l = set->armed.tail; l != NULL && ((JarvisTimer *) l->data)->due_us > due_us; l = l->prev)
    later = l;

  if (later == NULL)
    g_queue_push_tail_link (&set->armed, &timer->link);
  else
    g_queue_insert_before_link (&set->armed, later, &timer->link);

  if (set->armed.head == &timer->link)
    update_source (set);
}

void
_jarvis_timer_disarm (JarvisTimerSet *set,
                      JarvisTimer    *timer)
{
  gboolean was_first;

  if (!timer->armed)
    return;

  was_first = set->armed.head == &timer->link;
  g_queue_unlink (&set->armed, &timer->link);
  timer->armed = FALSE;

  if (was_first)
    update_source (set);
}
