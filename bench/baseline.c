#include "baseline.h"

#include <string.h>

/* Log lines use the same keys as the core bus, under their own domain so a
 * benchmark run can tell them apart. Debug lines are tested against a flag
 * read once, as a careful hand-written program would do. */
#define BASELINE_LOG_DOMAIN "jarvis-baseline"

#define log_debug(bus, ...)                                              \
  G_STMT_START {                                                         \
    if ((bus)->debug_enabled)                                            \
      g_log_structured (BASELINE_LOG_DOMAIN, G_LOG_LEVEL_DEBUG,          \
                        "MESSAGE", __VA_ARGS__);                         \
  } G_STMT_END

#define log_warning(...)                                                 \
  g_log_structured (BASELINE_LOG_DOMAIN, G_LOG_LEVEL_WARNING,            \
                    "MESSAGE", __VA_ARGS__)

#define REPLACEMENT_CHARACTER "\xEF\xBF\xBD"

typedef enum
{
  REQUEST_OPEN,
  REQUEST_ENDING,
  REQUEST_CLEANED,
} RequestState;

typedef struct
{
  char *pattern;                /* owned */
  gsize prefix_length;          /* for "prefix.*" patterns, else 0 */
  gboolean match_all;
  BaselineHandlerFunc func;     /* exactly one of the two is set */
  BaselineAsyncHandlerFunc async_func;
  gpointer user_data;
} Subscription;

/* Reference-counted with g_rc_box: the table holds one reference and every
 * call of an async handler holds one, so a late return never touches freed
 * memory. */
typedef struct
{
  BaselineBus *bus;             /* unowned; outlives every request */
  char *request_id;             /* owned */
  char *session_id;             /* owned */
  char *trace_id;               /* owned, nullable */
  RequestState state;
  const char *outcome;          /* static string */

  GPtrArray *tasks;             /* owned GTask references, in flight */

  GString *buffer;              /* owned; NULL once cleaned */
  guint buffered_tokens;
  gboolean flushed_once;
  gint64 last_flush_us;         /* monotonic */
  GSource *flush_source;        /* owned, nullable */

  GSource *deadline_source;     /* owned, nullable: end grace or drain */
  gboolean late_logged;
  guint64 tokens;
} Request;

/* The data of one async handler call, owned by its GTask. */
typedef struct
{
  Request *request;             /* owned reference */
  gboolean detached;
} Call;

typedef struct
{
  char *session_id;             /* owned */
  Request *active;              /* unowned; cleared when it completes */
  GQueue backlog;               /* owned events of requests that wait */
} Session;

typedef struct
{
  BaselineBus *bus;
  BaselineEvent *event;         /* owned */
} CrossThreadItem;

struct _BaselineBus
{
  GMainContext *context;        /* owned reference */
  gboolean debug_enabled;

  guint flush_interval_ms;
  gsize flush_max_bytes;
  guint end_grace_ms;
  guint drain_timeout_ms;

  GPtrArray *subscriptions;     /* owned Subscription */
  GHashTable *requests;         /* request id → Request (owned reference) */
  GHashTable *sessions;         /* session id → Session (owned) */
  GHashTable *waiting;          /* request id → Session (unowned), starts held back by a supersede */
  GPtrArray *detached;          /* owned GTask references given up at the drain deadline */

  GQueue pending;               /* owned events, emitted during a dispatch */
  gboolean dispatching;

  guint n_invocations;
  guint64 counters[BASELINE_N_COUNTERS];

  /* The cross-thread queue: one idle source per event, bounded by a count
   * that producers wait on. Protected by lock. */
  GMutex lock;
  GCond not_full;
  guint queued;
  guint capacity;
};

static void cleanup (Request *request, const char *outcome);
static void drain (BaselineBus *bus);

BaselineEvent *
baseline_event_new (const char *event_type,
                    const char *request_id)
{
  BaselineEvent *event = g_atomic_rc_box_new0 (BaselineEvent);

  event->event_type = g_intern_string (event_type);
  event->request_id = g_strdup (request_id);

  return event;
}

BaselineEvent *
baseline_event_ref (BaselineEvent *event)
{
  return g_atomic_rc_box_acquire (event);
}

static void
event_clear (gpointer data)
{
  BaselineEvent *event = data;

  g_free (event->request_id);
  g_free (event->session_id);
  g_free (event->trace_id);
  g_free (event->text);
}

void
baseline_event_unref (BaselineEvent *event)
{
  g_atomic_rc_box_release_full (event, event_clear);
}

void
baseline_event_set_text (BaselineEvent *event,
                         const char    *text,
                         gssize         length)
{
  if (length < 0)
    length = strlen (text);

  g_free (event->text);
  event->text = g_strndup (text, length);
  event->text_length = length;
}

void
baseline_event_set_session_id (BaselineEvent *event,
                               const char    *session_id)
{
  g_free (event->session_id);
  event->session_id = g_strdup (session_id);
}

static void
subscription_free (gpointer data)
{
  Subscription *subscription = data;

  g_free (subscription->pattern);
  g_free (subscription);
}

static void
session_free (gpointer data)
{
  Session *session = data;

  g_queue_clear_full (&session->backlog, (GDestroyNotify) baseline_event_unref);
  g_free (session->session_id);
  g_free (session);
}

static void
request_clear (gpointer data)
{
  Request *request = data;

  g_assert (request->flush_source == NULL);
  g_assert (request->deadline_source == NULL);

  g_ptr_array_unref (request->tasks);
  if (request->buffer != NULL)
    g_string_free (request->buffer, TRUE);
  g_free (request->request_id);
  g_free (request->session_id);
  g_free (request->trace_id);
}

static void
request_release (gpointer data)
{
  g_rc_box_release_full (data, request_clear);
}

static void
source_clear (GSource **source)
{
  if (*source == NULL)
    return;

  g_source_destroy (*source);
  g_source_unref (*source);
  *source = NULL;
}

BaselineBus *
baseline_bus_new (GMainContext *context)
{
  BaselineBus *bus = g_new0 (BaselineBus, 1);

  bus->context = g_main_context_ref (context);
  bus->debug_enabled = !g_log_writer_default_would_drop (G_LOG_LEVEL_DEBUG, BASELINE_LOG_DOMAIN);

  bus->flush_interval_ms = 50;
  bus->flush_max_bytes = 4096;
  bus->end_grace_ms = 2000;
  bus->drain_timeout_ms = 2000;

  bus->subscriptions = g_ptr_array_new_with_free_func (subscription_free);
  bus->requests = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, request_release);
  bus->sessions = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, session_free);
  bus->waiting = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  bus->detached = g_ptr_array_new_with_free_func (g_object_unref);
  g_queue_init (&bus->pending);

  g_mutex_init (&bus->lock);
  g_cond_init (&bus->not_full);
  bus->capacity = 1024;

  return bus;
}

/* Frees the bus. Every request must have completed and every call must have
 * returned, which baseline_bus_cancel_all() and iterating the context give. */
void
baseline_bus_free (BaselineBus *bus)
{
  g_return_if_fail (g_hash_table_size (bus->requests) == 0);
  g_return_if_fail (bus->detached->len == 0);

  g_queue_clear_full (&bus->pending, (GDestroyNotify) baseline_event_unref);
  g_hash_table_unref (bus->waiting);
  g_hash_table_unref (bus->sessions);
  g_hash_table_unref (bus->requests);
  g_ptr_array_unref (bus->detached);
  g_ptr_array_unref (bus->subscriptions);
  g_mutex_clear (&bus->lock);
  g_cond_clear (&bus->not_full);
  g_main_context_unref (bus->context);
  g_free (bus);
}

void
baseline_bus_set_flush_policy (BaselineBus *bus,
                               guint        interval_ms,
                               gsize        max_bytes)
{
  bus->flush_interval_ms = interval_ms;
  bus->flush_max_bytes = max_bytes;
}

void
baseline_bus_set_queue_capacity (BaselineBus *bus,
                                 guint        capacity)
{
  g_mutex_lock (&bus->lock);
  bus->capacity = MAX (capacity, 1);
  g_cond_broadcast (&bus->not_full);
  g_mutex_unlock (&bus->lock);
}

static Subscription *
subscription_new (const char *pattern,
                  gpointer    user_data)
{
  Subscription *subscription = g_new0 (Subscription, 1);
  gsize length = strlen (pattern);

  subscription->pattern = g_strdup (pattern);
  subscription->user_data = user_data;
  subscription->match_all = g_str_equal (pattern, "*");
  if (!subscription->match_all && g_str_has_suffix (pattern, ".*"))
    subscription->prefix_length = length - 1;

  return subscription;
}

void
baseline_bus_subscribe (BaselineBus         *bus,
                        const char          *pattern,
                        BaselineHandlerFunc  func,
                        gpointer             user_data)
{
  Subscription *subscription = subscription_new (pattern, user_data);

  subscription->func = func;
  g_ptr_array_add (bus->subscriptions, subscription);
}

void
baseline_bus_subscribe_async (BaselineBus              *bus,
                              const char               *pattern,
                              BaselineAsyncHandlerFunc  func,
                              gpointer                  user_data)
{
  Subscription *subscription = subscription_new (pattern, user_data);

  subscription->async_func = func;
  g_ptr_array_add (bus->subscriptions, subscription);
}

static gboolean
subscription_matches (const Subscription *subscription,
                      const char         *event_type)
{
  if (subscription->match_all)
    return TRUE;

  if (subscription->prefix_length > 0)
    return strncmp (event_type, subscription->pattern, subscription->prefix_length) == 0;

  return strcmp (event_type, subscription->pattern) == 0;
}

static const char *
task_outcome (GTask   *task,
              GError **error)
{
  gboolean cancelled = g_cancellable_is_cancelled (g_task_get_cancellable (task));

  g_task_propagate_boolean (task, error);

  if (cancelled)
    return "cancelled";

  return *error != NULL ? "failed" : "completed";
}

static void
complete (Request *request);

static void
on_task_done (GObject      *source_object,
              GAsyncResult *result,
              gpointer      user_data)
{
  GTask *task = G_TASK (result);
  Call *call = user_data;
  Request *request = call->request;
  BaselineBus *bus = request->bus;
  g_autoptr(GError) error = NULL;
  const char *outcome = task_outcome (task, &error);

  if (call->detached)
    {
      g_ptr_array_remove_fast (bus->detached, task);
      return;
    }

  bus->n_invocations--;
  if (g_str_equal (outcome, "cancelled"))
    bus->counters[BASELINE_COUNTER_TASKS_CANCELLED]++;
  else if (g_str_equal (outcome, "failed"))
    bus->counters[BASELINE_COUNTER_TASKS_FAILED]++;
  else
    bus->counters[BASELINE_COUNTER_TASKS_COMPLETED]++;

  if (error != NULL && !g_str_equal (outcome, "cancelled"))
    log_warning ("handler failed on request_id=%s: %s", request->request_id, error->message);
  log_debug (bus, "callback_task_done request_id=%s outcome=%s", request->request_id, outcome);

  /* The reference in the array goes; GTask keeps its own during this
   * callback. */
  g_rc_box_acquire (request);
  g_ptr_array_remove_fast (request->tasks, task);

  if (request->tasks->len == 0)
    {
      if (request->state == REQUEST_ENDING)
        cleanup (request, request->outcome);
      else if (request->state == REQUEST_CLEANED)
        complete (request);
    }

  request_release (request);
  drain (bus);
}

static void
call_free (gpointer data)
{
  Call *call = data;

  request_release (call->request);
  g_free (call);
}

static void
start_call (BaselineBus        *bus,
            Request            *request,
            const Subscription *subscription,
            BaselineEvent      *event)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  Call *call = g_new0 (Call, 1);
  GTask *task;

  call->request = g_rc_box_acquire (request);
  task = g_task_new (NULL, cancellable, on_task_done, call);
  g_task_set_task_data (task, call, call_free);

  g_ptr_array_add (request->tasks, task);
  bus->n_invocations++;
  bus->counters[BASELINE_COUNTER_TASKS_CREATED]++;
  log_debug (bus, "callback_task_created request_id=%s event=%s plugin=baseline",
             request->request_id, event->event_type);

  subscription->async_func (event, task, subscription->user_data);
}

/* Calls every matching handler in subscription order. Async handlers are
 * called only while @request admits new calls. */
static void
run_handlers (BaselineBus   *bus,
              Request       *request,
              BaselineEvent *event)
{
  gboolean was_dispatching = bus->dispatching;
  guint n_subscriptions = bus->subscriptions->len;

  bus->dispatching = TRUE;

  for (guint i = 0; i < n_subscriptions; i++)
    {
      const Subscription *subscription = g_ptr_array_index (bus->subscriptions, i);

      if (!subscription_matches (subscription, event->event_type))
        continue;

      if (subscription->func != NULL)
        subscription->func (event, subscription->user_data);
      else if (request != NULL && request->state == REQUEST_OPEN)
        start_call (bus, request, subscription, event);
    }

  bus->dispatching = was_dispatching;
}

static void
flush (Request *request)
{
  BaselineBus *bus = request->bus;
  g_autoptr(BaselineEvent) event = baseline_event_new ("agent.stream.flush", request->request_id);
  gsize length = request->buffer->len;

  event->session_id = g_strdup (request->session_id);
  event->text = g_strndup (request->buffer->str, length);
  event->text_length = length;
  event->token_count = request->buffered_tokens;

  g_string_truncate (request->buffer, 0);
  request->buffered_tokens = 0;
  request->flushed_once = TRUE;
  request->last_flush_us = g_get_monotonic_time ();
  source_clear (&request->flush_source);

  bus->counters[BASELINE_COUNTER_FLUSHES]++;
  bus->counters[BASELINE_COUNTER_BYTES_FLUSHED] += length;
  log_debug (bus, "flush_done request_id=%s tokens_sent=%u bytes=%" G_GSIZE_FORMAT,
             request->request_id, event->token_count, length);

  run_handlers (bus, request, event);
}

static gboolean
on_flush_timeout (gpointer user_data)
{
  Request *request = user_data;

  g_clear_pointer (&request->flush_source, g_source_unref);
  flush (request);
  drain (request->bus);

  return G_SOURCE_REMOVE;
}

static GSource *
attach_timeout (BaselineBus *bus,
                guint        interval_ms,
                GSourceFunc  func,
                gpointer     user_data)
{
  GSource *source = g_timeout_source_new (interval_ms);

  g_source_set_callback (source, func, user_data, NULL);
  g_source_attach (source, bus->context);

  return source;
}

/* Flushes at once for the first token, when the buffer reached the size
 * bound, or when the interval already passed. Otherwise it arms the timer
 * for the rest of the interval. */
static void
schedule_flush (Request *request)
{
  BaselineBus *bus = request->bus;
  gint64 due_us;
  gint64 now_us;

  if (!request->flushed_once || request->buffer->len >= bus->flush_max_bytes)
    {
      flush (request);
      return;
    }

  if (request->flush_source != NULL)
    return;

  due_us = request->last_flush_us + (gint64) bus->flush_interval_ms * 1000;
  now_us = g_get_monotonic_time ();
  if (now_us >= due_us)
    {
      flush (request);
      return;
    }

  request->flush_source = attach_timeout (bus, (guint) ((due_us - now_us + 999) / 1000),
                                          on_flush_timeout, request);
  log_debug (bus, "flush_scheduled request_id=%s", request->request_id);
}

/* Appends @text with every invalid UTF-8 byte replaced by U+FFFD, so the
 * buffer always ends on a character boundary. */
static gsize
append_repaired (GString    *buffer,
                 const char *text,
                 gsize       length,
                 guint64    *replacements)
{
  const char *end = text + length;
  gsize before = buffer->len;
  const char *valid_end;

  while (!g_utf8_validate_len (text, end - text, &valid_end))
    {
      g_string_append_len (buffer, text, valid_end - text);
      g_string_append (buffer, REPLACEMENT_CHARACTER);
      (*replacements)++;
      text = valid_end + 1;
    }
  g_string_append_len (buffer, text, end - text);

  return buffer->len - before;
}

static Session *
ensure_session (BaselineBus *bus,
                const char  *session_id)
{
  Session *session = g_hash_table_lookup (bus->sessions, session_id);

  if (session != NULL)
    return session;

  session = g_new0 (Session, 1);
  session->session_id = g_strdup (session_id);
  g_queue_init (&session->backlog);
  g_hash_table_insert (bus->sessions, session->session_id, session);

  return session;
}

static Request *
open_request (BaselineBus   *bus,
              BaselineEvent *event)
{
  Request *request = g_rc_box_new0 (Request);
  const char *session_id = event->session_id != NULL ? event->session_id : "default";
  Session *session = ensure_session (bus, session_id);

  request->bus = bus;
  request->request_id = g_strdup (event->request_id);
  request->session_id = g_strdup (session_id);
  request->trace_id = g_strdup (event->trace_id);
  request->state = REQUEST_OPEN;
  request->outcome = "completed";
  request->tasks = g_ptr_array_new_with_free_func (g_object_unref);
  request->buffer = g_string_new (NULL);

  g_hash_table_insert (bus->requests, request->request_id, request);
  if (session->active == NULL)
    session->active = request;
  bus->counters[BASELINE_COUNTER_REQUESTS]++;

  if (event->event_type != g_intern_static_string ("agent.stream.start"))
    log_debug (bus, "request opened by a delta request_id=%s", request->request_id);
  log_debug (bus, "stream_start request_id=%s session=%s trace=%s",
             request->request_id, session_id, request->trace_id != NULL ? request->trace_id : "");

  return request;
}

/* Hands the events held back on the session to the pending queue, ahead of
 * anything emitted since, because they were emitted earlier. */
static void
release_backlog (BaselineBus *bus,
                 Session     *session)
{
  BaselineEvent *event;

  while ((event = g_queue_pop_tail (&session->backlog)) != NULL)
    {
      g_hash_table_remove (bus->waiting, event->request_id);
      g_queue_push_head (&bus->pending, event);
    }
}

static void
complete (Request *request)
{
  BaselineBus *bus = request->bus;
  g_autoptr(BaselineEvent) event = baseline_event_new ("agent.stream.complete", request->request_id);
  Session *session = g_hash_table_lookup (bus->sessions, request->session_id);

  source_clear (&request->deadline_source);

  event->session_id = g_strdup (request->session_id);
  event->outcome = request->outcome;
  event->token_count = request->tokens;
  run_handlers (bus, request, event);

  bus->counters[BASELINE_COUNTER_REQUESTS_COMPLETED]++;
  log_debug (bus, "stream_end trace=%s request_id=%s cleanup_done=true",
             request->trace_id != NULL ? request->trace_id : "", request->request_id);

  if (session != NULL && session->active == request)
    {
      session->active = NULL;
      if (session->backlog.length > 0)
        log_debug (bus, "prev_stream_finished_cleanly session=%s request_id=%s",
                   session->session_id, request->request_id);
      release_backlog (bus, session);
      g_hash_table_remove (bus->sessions, request->session_id);
    }

  g_hash_table_remove (bus->requests, request->request_id);
}

static gboolean
on_drain_deadline (gpointer user_data)
{
  Request *request = user_data;
  BaselineBus *bus = request->bus;

  g_clear_pointer (&request->deadline_source, g_source_unref);

  for (guint i = 0; i < request->tasks->len; i++)
    {
      GTask *task = g_ptr_array_index (request->tasks, i);
      Call *call = g_task_get_task_data (task);

      call->detached = TRUE;
      g_ptr_array_add (bus->detached, g_object_ref (task));
      bus->n_invocations--;
      bus->counters[BASELINE_COUNTER_TASKS_DETACHED]++;
    }
  log_warning ("detached %u handler calls of request_id=%s after the drain deadline",
               request->tasks->len, request->request_id);
  g_ptr_array_set_size (request->tasks, 0);

  complete (request);
  drain (bus);

  return G_SOURCE_REMOVE;
}

/* Runs the five cleanup steps once. The complete event follows at once when
 * no call is in flight, else when the last one returns or is detached. */
static void
cleanup (Request    *request,
         const char *outcome)
{
  BaselineBus *bus = request->bus;
  g_autoptr(GPtrArray) snapshot = NULL;

  if (request->state == REQUEST_CLEANED)
    return;

  g_rc_box_acquire (request);
  request->state = REQUEST_CLEANED;
  request->outcome = outcome;
  source_clear (&request->deadline_source);

  source_clear (&request->flush_source);
  log_debug (bus, "cleanup_flush_task request_id=%s", request->request_id);

  /* A cancelled handler may return at once, which edits the array. */
  log_debug (bus, "cleanup_callback_tasks request_id=%s count=%u", request->request_id, request->tasks->len);
  snapshot = g_ptr_array_new_full (request->tasks->len, g_object_unref);
  for (guint i = 0; i < request->tasks->len; i++)
    g_ptr_array_add (snapshot, g_object_ref (g_ptr_array_index (request->tasks, i)));
  for (guint i = 0; i < snapshot->len; i++)
    g_cancellable_cancel (g_task_get_cancellable (g_ptr_array_index (snapshot, i)));

  if (request->buffer->len > 0)
    flush (request);

  g_string_free (g_steal_pointer (&request->buffer), TRUE);
  log_debug (bus, "cleanup_buffer request_id=%s", request->request_id);

  log_debug (bus, "cleanup_request_complete request_id=%s", request->request_id);

  if (request->tasks->len == 0)
    complete (request);
  else
    request->deadline_source = attach_timeout (bus, bus->drain_timeout_ms, on_drain_deadline, request);

  request_release (request);
}

static gboolean
on_end_grace (gpointer user_data)
{
  Request *request = user_data;

  g_clear_pointer (&request->deadline_source, g_source_unref);
  cleanup (request, request->outcome);
  drain (request->bus);

  return G_SOURCE_REMOVE;
}

static void
drop_late (BaselineBus   *bus,
           Request       *request,
           BaselineEvent *event)
{
  bus->counters[BASELINE_COUNTER_LATE_EVENTS_DROPPED]++;
  if (request->late_logged)
    return;

  request->late_logged = TRUE;
  log_debug (bus, "late event dropped request_id=%s event=%s", request->request_id, event->event_type);
}

static void
handle_delta (Request       *request,
              BaselineEvent *event)
{
  BaselineBus *bus = request->bus;
  gsize appended = 0;

  if (event->text != NULL)
    appended = append_repaired (request->buffer, event->text, event->text_length,
                                &bus->counters[BASELINE_COUNTER_UTF8_REPLACEMENTS]);
  request->buffered_tokens++;
  request->tokens++;
  bus->counters[BASELINE_COUNTER_TOKENS]++;
  bus->counters[BASELINE_COUNTER_BYTES_IN] += appended;

  run_handlers (bus, request, event);

  /* A handler may have cancelled the request, whose cleanup flushed. */
  if (request->state == REQUEST_OPEN)
    schedule_flush (request);
}

static void
handle_end (Request       *request,
            BaselineEvent *event,
            const char    *outcome)
{
  BaselineBus *bus = request->bus;

  run_handlers (bus, request, event);
  if (request->state != REQUEST_OPEN)
    return;

  request->state = REQUEST_ENDING;
  request->outcome = outcome;
  if (request->tasks->len == 0)
    cleanup (request, outcome);
  else
    request->deadline_source = attach_timeout (bus, bus->end_grace_ms, on_end_grace, request);
}

/* Opens the request, or keeps the start back while the session's active
 * request is being superseded. */
static void
handle_start (BaselineBus   *bus,
              BaselineEvent *event)
{
  const char *session_id = event->session_id != NULL ? event->session_id : "default";
  Session *session = ensure_session (bus, session_id);
  Request *request;

  if (session->active != NULL || session->backlog.length > 0)
    {
      Request *previous = session->active;

      g_queue_push_tail (&session->backlog, baseline_event_ref (event));
      g_hash_table_insert (bus->waiting, g_strdup (event->request_id), session);

      if (previous != NULL && previous->state == REQUEST_OPEN)
        {
          log_debug (bus, "stream_cancelled trace=%s request_id=%s",
                     previous->trace_id != NULL ? previous->trace_id : "", previous->request_id);
          cleanup (previous, "superseded");
        }
      return;
    }

  if (g_hash_table_contains (bus->requests, event->request_id))
    {
      drop_late (bus, g_hash_table_lookup (bus->requests, event->request_id), event);
      return;
    }

  request = open_request (bus, event);
  run_handlers (bus, request, event);
}

static void
process (BaselineBus   *bus,
         BaselineEvent *event)
{
  const char *type = event->event_type;
  Session *waiting_on = g_hash_table_lookup (bus->waiting, event->request_id);
  Request *request;

  if (waiting_on != NULL)
    {
      g_queue_push_tail (&waiting_on->backlog, baseline_event_ref (event));
      return;
    }

  if (g_str_equal (type, "agent.stream.start"))
    {
      handle_start (bus, event);
      return;
    }

  request = g_hash_table_lookup (bus->requests, event->request_id);
  if (request == NULL && g_str_equal (type, "agent.stream.delta"))
    request = open_request (bus, event);

  if (request == NULL)
    {
      run_handlers (bus, NULL, event);
      return;
    }

  if (request->state != REQUEST_OPEN)
    {
      drop_late (bus, request, event);
      return;
    }

  if (g_str_equal (type, "agent.stream.delta"))
    handle_delta (request, event);
  else if (g_str_equal (type, "agent.stream.end"))
    handle_end (request, event, "completed");
  else if (g_str_equal (type, "agent.stream.error"))
    handle_end (request, event, "failed");
  else if (g_str_equal (type, "agent.stream.cancel"))
    {
      run_handlers (bus, request, event);
      log_debug (bus, "stream_cancelled trace=%s request_id=%s",
                 request->trace_id != NULL ? request->trace_id : "", request->request_id);
      cleanup (request, "cancelled");
    }
  else
    run_handlers (bus, request, event);
}

static void
drain (BaselineBus *bus)
{
  BaselineEvent *event;

  if (bus->dispatching)
    return;

  bus->dispatching = TRUE;
  while ((event = g_queue_pop_head (&bus->pending)) != NULL)
    {
      process (bus, event);
      baseline_event_unref (event);
    }
  bus->dispatching = FALSE;
}

void
baseline_bus_emit (BaselineBus   *bus,
                   BaselineEvent *event)
{
  bus->counters[BASELINE_COUNTER_EVENTS]++;
  g_queue_push_tail (&bus->pending, event);
  drain (bus);
}

static gboolean
deliver_cross_thread (gpointer user_data)
{
  CrossThreadItem *item = user_data;
  BaselineBus *bus = item->bus;

  g_mutex_lock (&bus->lock);
  bus->queued--;
  g_cond_signal (&bus->not_full);
  g_mutex_unlock (&bus->lock);

  baseline_bus_emit (bus, g_steal_pointer (&item->event));

  return G_SOURCE_REMOVE;
}

static void
cross_thread_item_free (gpointer data)
{
  CrossThreadItem *item = data;

  g_clear_pointer (&item->event, baseline_event_unref);
  g_free (item);
}

void
baseline_bus_emit_from_thread (BaselineBus   *bus,
                               BaselineEvent *event)
{
  CrossThreadItem *item = g_new0 (CrossThreadItem, 1);

  g_mutex_lock (&bus->lock);
  while (bus->queued >= bus->capacity)
    g_cond_wait (&bus->not_full, &bus->lock);
  bus->queued++;
  g_mutex_unlock (&bus->lock);

  item->bus = bus;
  item->event = event;
  g_main_context_invoke_full (bus->context, G_PRIORITY_DEFAULT,
                              deliver_cross_thread, item, cross_thread_item_free);
}

/* NOTE: a request whose start still waits behind a supersede is not found
 * here, so it cannot be cancelled before it opens. No workload does that. */
gboolean
baseline_bus_cancel_request (BaselineBus *bus,
                             const char  *request_id)
{
  Request *request = g_hash_table_lookup (bus->requests, request_id);

  if (request == NULL || request->state == REQUEST_CLEANED)
    return FALSE;

  log_debug (bus, "stream_cancelled trace=%s request_id=%s",
             request->trace_id != NULL ? request->trace_id : "", request->request_id);
  cleanup (request, "cancelled");
  drain (bus);

  return TRUE;
}

/* Cancels every open request and drops the events that wait behind a
 * supersede, counting them as late. */
void
baseline_bus_cancel_all (BaselineBus *bus)
{
  g_autoptr(GPtrArray) requests = g_ptr_array_new_with_free_func (request_release);
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, bus->sessions);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Session *session = value;

      bus->counters[BASELINE_COUNTER_LATE_EVENTS_DROPPED] += session->backlog.length;
      g_queue_clear_full (&session->backlog, (GDestroyNotify) baseline_event_unref);
    }
  g_hash_table_remove_all (bus->waiting);

  g_hash_table_iter_init (&iter, bus->requests);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (requests, g_rc_box_acquire (value));

  for (guint i = 0; i < requests->len; i++)
    cleanup (g_ptr_array_index (requests, i), "cancelled");

  drain (bus);
}

guint
baseline_bus_get_n_active_requests (BaselineBus *bus)
{
  return g_hash_table_size (bus->requests);
}

guint
baseline_bus_get_n_invocations (BaselineBus *bus)
{
  return bus->n_invocations;
}

guint64
baseline_bus_get_counter (BaselineBus     *bus,
                          BaselineCounter  counter)
{
  g_return_val_if_fail (counter < BASELINE_N_COUNTERS, 0);

  return bus->counters[counter];
}
