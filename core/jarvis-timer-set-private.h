#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * Many one-shot timers behind one GSource. Every open request has a flush
 * timer, and the main loop checks each attached source on every iteration,
 * so one source per request made each iteration cost grow with the number
 * of open requests. A set keeps its armed timers sorted by due time and
 * gives its source the earliest one.
 *
 * A timer is embedded in its owner and costs no allocation. Bus thread
 * only.
 */

typedef struct _JarvisTimer JarvisTimer;
typedef struct _JarvisTimerSet JarvisTimerSet;

typedef void (*JarvisTimerFunc) (gpointer user_data);

struct _JarvisTimer
{
  GList link;                   /* in the set's queue while armed */
  gint64 due_us;
  JarvisTimerFunc func;
  gpointer user_data;
  gboolean armed;
};

JarvisTimerSet *_jarvis_timer_set_new (GMainContext *context,
                                       const char   *name);

void _jarvis_timer_set_stop (JarvisTimerSet *set);

void _jarvis_timer_set_free (JarvisTimerSet *set);

void _jarvis_timer_init (JarvisTimer     *timer,
                         JarvisTimerFunc  func,
                         gpointer         user_data);

void _jarvis_timer_arm (JarvisTimerSet *set,
                        JarvisTimer    *timer,
                        gint64          due_us);

void _jarvis_timer_disarm (JarvisTimerSet *set,
                           JarvisTimer    *timer);

static inline gboolean
_jarvis_timer_is_armed (const JarvisTimer *timer)
{
  return timer->armed;
}

G_END_DECLS
