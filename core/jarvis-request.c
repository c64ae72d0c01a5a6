#include "config.h"

#include <string.h>

#include "jarvis-alloc-private.h"
#include "jarvis-event-private.h"
#include "jarvis-request-private.h"

static void run_cleanup (JarvisRequest *request,
                         JarvisOutcome  outcome);
static void emit_complete (JarvisRequest *request);

/* The interned event types the bus acts on. g_intern_static_string() takes
 * a global lock, so they are looked up once, not per event. */
static const char *type_start;
static const char *type_delta;
static const char *type_end;
static const char *type_error;
static const char *type_cancel;

void
_jarvis_request_init_types (void)
{
  type_start = g_intern_static_string (JARVIS_EVENT_STREAM_START);
  type_delta = g_intern_static_string (JARVIS_EVENT_STREAM_DELTA);
  type_end = g_intern_static_string (JARVIS_EVENT_STREAM_END);
  type_error = g_intern_static_string (JARVIS_EVENT_STREAM_ERROR);
  type_cancel = g_intern_static_string (JARVIS_EVENT_STREAM_CANCEL);
}

/* Lifecycle of a request: PENDING (only while a start waits for its
 * session) → OPEN → ENDING (after its end) → CLEANING → complete, after
 * which it is freed and its id remembered to drop late events. */

JarvisRequest *
_jarvis_request_lookup (JarvisBus  *bus,
                        const char *request_id)
{
  JarvisRequest *request;

  /* Streams arrive in runs of deltas of one request, so the last request
   * found serves most lookups without hashing the id. */
  request = bus->last_request;
  if (request != NULL && g_str_equal (request->request_id, request_id))
    return request;

  request = g_hash_table_lookup (bus->requests, request_id);
  if (request != NULL)
    bus->last_request = request;

  return request;
}

static JarvisSession *
ensure_session (JarvisBus  *bus,
                const char *session_id)
{
  JarvisSession *session;

  session = g_hash_table_lookup (bus->sessions, session_id);
  if (session != NULL)
    return session;

  session = _jarvis_new0 (JarvisSession);
  session->session_id = g_strdup (session_id);
  g_queue_init (&session->waiting);
  g_hash_table_insert (bus->sessions, session->session_id, session);

  return session;
}

void
_jarvis_session_free (JarvisSession *session)
{
  g_queue_clear_full (&session->waiting, (GDestroyNotify) jarvis_event_unref);
  g_free (session->superseded_id);
  g_free (session->session_id);
  g_free (session);
}

/* A session that still names a superseded request stays, so that the
 * start waiting for it logs prev_stream_finished_cleanly when it opens. */
static void
release_session (JarvisBus     *bus,
                 JarvisSession *session)
{
  if (session->active == NULL && session->waiting.length == 0 && session->superseded_id == NULL)
    g_hash_table_remove (bus->sessions, session->session_id);
}

static void flush_timer_fired (gpointer user_data);

static JarvisRequest *
request_new (JarvisBus   *bus,
             JarvisEvent *event)
{
  JarvisRequest *request;

  request = _jarvis_new0 (JarvisRequest);
  request->bus = bus;
  request->request_id = g_strdup (jarvis_event_get_request_id (event));
  request->session_id = g_strdup (jarvis_event_get_session_id (event));
  request->trace_id = g_strdup (jarvis_event_get_trace_id (event));
  request->state = REQUEST_PENDING;
  g_queue_init (&request->scope.invocations);
  request->scope.request = request;
  _jarvis_timer_init (&request->flush_timer, flush_timer_fired, request);

  g_hash_table_insert (bus->requests, request->request_id, request);
  bus->last_request = request;

  return request;
}

void
_jarvis_request_free (JarvisRequest *request)
{
  JarvisBus *bus = request->bus;

  g_assert (request->scope.invocations.length == 0);

  if (bus->last_request == request)
    bus->last_request = NULL;

  _jarvis_timer_disarm (request->bus->flush_timers, &request->flush_timer);
  _jarvis_bus_clear_source (&request->grace_source);
  _jarvis_bus_clear_source (&request->drain_source);
  g_clear_pointer (&request->buffer, _jarvis_flush_buffer_free);
  g_clear_pointer (&request->choice_buffers, g_hash_table_unref);
  g_clear_object (&request->cancellable);
  g_free (request->error_message);
  g_free (request->trace_id);
  g_free (request->session_id);
  g_free (request->request_id);
  g_free (request);
}

static void
remember_finished (JarvisBus  *bus,
                   const char *request_id)
{
  char *key;

  if (g_hash_table_contains (bus->finished, request_id))
    return;

  if (bus->finished_order.length >= FINISHED_REQUESTS_KEPT)
    {
      g_autofree char *oldest = g_queue_pop_head (&bus->finished_order);

      g_hash_table_remove (bus->finished, oldest);
    }

  key = g_strdup (request_id);
  g_hash_table_insert (bus->finished, key, GINT_TO_POINTER (FALSE));
  g_queue_push_tail (&bus->finished_order, key);
}

/* Counts an event that came after its request stopped admitting events,
 * and logs that once per request. */
static void
drop_late (JarvisBus     *bus,
           JarvisRequest *request,
           JarvisEvent   *event)
{
  const char *request_id = jarvis_event_get_request_id (event);
  gpointer key;
  gpointer logged;
  gboolean first;

  _jarvis_bus_count (bus, request != NULL ? request->counters : NULL,
                     JARVIS_COUNTER_LATE_EVENTS_DROPPED, 1);

  if (request != NULL)
    {
      first = !request->late_logged;
      request->late_logged = TRUE;
    }
  else if (g_hash_table_lookup_extended (bus->finished, request_id, &key, &logged))
    {
      /* The key is owned by finished_order, so it is kept here. */
      first = !GPOINTER_TO_INT (logged);
      g_hash_table_insert (bus->finished, key, GINT_TO_POINTER (TRUE));
    }
  else
    {
      /* A request the bus never saw, after close started. */
      first = !bus->close_drop_logged;
      bus->close_drop_logged = TRUE;
    }

  if (first)
    _jarvis_bus_debug (bus, request_id, "late_event_dropped request_id=%s event=%s",
                       request_id, jarvis_event_get_event_type (event));

  /* Input can race a cancel, but a plugin that emits into a request it saw
   * end (often from a cancelled callback) has a bug its author must see. */
  if (_jarvis_event_get_origin (event) != NULL)
    _jarvis_log_warning (request_id, _jarvis_event_get_origin (event),
                         "plugin_late_emit plugin=%s request_id=%s event=%s: "
                         "the request is already cleaned up, so the event was dropped",
                         _jarvis_event_get_origin (event), request_id,
                         jarvis_event_get_event_type (event));
}

static void
open_request (JarvisRequest *request,
              JarvisSession *session,
              gboolean       implicit)
{
  JarvisBus *bus = request->bus;

  if (session != NULL)
    {
      if (session->superseded_id != NULL)
        {
          _jarvis_bus_debug (bus, session->superseded_id,
                             "prev_stream_finished_cleanly session=%s request_id=%s",
                             session->session_id, session->superseded_id);
          g_clear_pointer (&session->superseded_id, g_free);
        }

      session->active = request;
      request->session = session;
    }

  request->state = REQUEST_OPEN;
  _jarvis_bus_count (bus, NULL, JARVIS_COUNTER_REQUESTS, 1);

  _jarvis_bus_debug (bus, request->request_id, "stream_start request_id=%s session=%s trace=%s%s",
                     request->request_id, request->session_id,
                     request->trace_id != NULL ? request->trace_id : "",
                     implicit ? " implicit=true" : "");

  _jarvis_bus_signal_request_started (bus, request->request_id, request->session_id);
}

static JarvisFlushBuffer *
ensure_buffer (JarvisRequest *request,
               guint          choice)
{
  JarvisFlushBuffer *buffer;

  if (choice == 0)
    {
      if (request->buffer == NULL)
        request->buffer = _jarvis_flush_buffer_new (0);
      return request->buffer;
    }

  if (request->choice_buffers == NULL)
    request->choice_buffers = g_hash_table_new_full (NULL, NULL, NULL,
                                                     (GDestroyNotify) _jarvis_flush_buffer_free);

  buffer = g_hash_table_lookup (request->choice_buffers, GUINT_TO_POINTER (choice));
  if (buffer == NULL)
    {
      buffer = _jarvis_flush_buffer_new (choice);
      g_hash_table_insert (request->choice_buffers, GUINT_TO_POINTER (choice), buffer);
    }

  return buffer;
}

static gint
compare_choice (gconstpointer a,
                gconstpointer b)
{
  const JarvisFlushBuffer *buffer_a = *(JarvisFlushBuffer * const *) a;
  const JarvisFlushBuffer *buffer_b = *(JarvisFlushBuffer * const *) b;

  return buffer_a->choice < buffer_b->choice ? -1 : buffer_a->choice > buffer_b->choice;
}

/* Returns the request's buffers ordered by choice. */
static GPtrArray *
list_buffers (JarvisRequest *request)
{
  GPtrArray *buffers = g_ptr_array_new ();

  if (request->buffer != NULL)
    g_ptr_array_add (buffers, request->buffer);

  if (request->choice_buffers != NULL)
    {
      GHashTableIter iter;
      gpointer value;

      g_hash_table_iter_init (&iter, request->choice_buffers);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        g_ptr_array_add (buffers, value);
      g_ptr_array_sort (buffers, compare_choice);
    }

  return buffers;
}

static void
flush_buffer (JarvisRequest     *request,
              JarvisFlushBuffer *buffer,
              gint64             now_us)
{
  JarvisBus *bus = request->bus;
  JarvisEvent *flush;
  gsize length = buffer->text->len;
  guint tokens = buffer->tokens;

  flush = _jarvis_event_new_flush (request->request_id, request->session_id, request->trace_id,
                                   buffer->choice, buffer->text->str, length, tokens);
  g_string_truncate (buffer->text, 0);
  buffer->tokens = 0;
  buffer->last_flush_us = now_us;

  _jarvis_bus_count (bus, request->counters, JARVIS_COUNTER_FLUSHES, 1);
  _jarvis_bus_count (bus, request->counters, JARVIS_COUNTER_BYTES_FLUSHED, length);
  _jarvis_bus_debug (bus, request->request_id, "flush_done request_id=%s tokens_sent=%u bytes=%zu",
                     request->request_id, tokens, length);

  _jarvis_bus_dispatch (bus, flush, &request->scope);
  jarvis_event_unref (flush);
}


/* Arms the flush timer for the earliest buffer with text, or disarms it
 * when all are empty. */
static void
update_flush_timer (JarvisRequest *request)
{
  JarvisBus *bus = request->bus;
  g_autoptr(GPtrArray) buffers = NULL;
  gint64 due = G_MAXINT64;

  if (request->choice_buffers == NULL)
    {
      if (request->buffer != NULL && request->buffer->text->len > 0)
        due = _jarvis_flush_buffer_get_due_time (request->buffer, bus->flush_interval_ms);
    }
  else
    {
      buffers = list_buffers (request);
      for (guint i = 0; i < buffers->len; i++)
        {
          JarvisFlushBuffer *buffer = g_ptr_array_index (buffers, i);

          if (buffer->text->len > 0)
            due = MIN (due, _jarvis_flush_buffer_get_due_time (buffer, bus->flush_interval_ms));
        }
    }

  if (due == G_MAXINT64)
    {
      _jarvis_timer_disarm (bus->flush_timers, &request->flush_timer);
      return;
    }

  if (_jarvis_timer_is_armed (&request->flush_timer))
    {
      if (request->flush_timer.due_us > due)
        _jarvis_timer_arm (bus->flush_timers, &request->flush_timer, due);
      return;
    }

  _jarvis_timer_arm (bus->flush_timers, &request->flush_timer, due);
  _jarvis_bus_debug (bus, request->request_id, "flush_scheduled request_id=%s", request->request_id);
}

/* The timer set disarmed the timer before calling this. */
static void
flush_timer_fired (gpointer user_data)
{
  JarvisRequest *request = user_data;
  JarvisBus *bus = request->bus;
  g_autoptr(GPtrArray) buffers = NULL;
  gint64 now_us = g_get_monotonic_time ();

  _jarvis_bus_enter (bus);

  if (request->choice_buffers == NULL)
    {
      /* The common single-choice stream needs no list. */
      if (_jarvis_flush_buffer_is_due (request->buffer, now_us, bus->flush_interval_ms, bus->flush_max_bytes))
        flush_buffer (request, request->buffer, now_us);
    }
  else
    {
      buffers = list_buffers (request);
      for (guint i = 0; i < buffers->len; i++)
        {
          JarvisFlushBuffer *buffer = g_ptr_array_index (buffers, i);

          if (_jarvis_flush_buffer_is_due (buffer, now_us, bus->flush_interval_ms, bus->flush_max_bytes))
            flush_buffer (request, buffer, now_us);
        }
    }
  update_flush_timer (request);

  _jarvis_bus_leave (bus);
}

static void
append_delta (JarvisRequest *request,
              JarvisEvent   *event)
{
  JarvisBus *bus = request->bus;
  JarvisFlushBuffer *buffer;
  const char *text;
  gsize length;
  gsize added;
  guint replacements = 0;
  gint64 now_us;

  buffer = ensure_buffer (request, jarvis_event_get_choice (event));
  text = jarvis_event_get_text (event, &length);
  added = _jarvis_flush_buffer_append (buffer, text != NULL ? text : "", length, &replacements);
  buffer->tokens++;

  _jarvis_bus_count (bus, request->counters, JARVIS_COUNTER_TOKENS, 1);
  _jarvis_bus_count (bus, request->counters, JARVIS_COUNTER_BYTES_IN, added);
  if (replacements > 0)
    _jarvis_bus_count (bus, request->counters, JARVIS_COUNTER_UTF8_REPLACEMENTS, replacements);

  if (buffer->text->len == 0)
    return;

  /* An armed timer means the interval has not passed, unless the loop is
   * late, and then the timer flushes next. Only the size bound is checked
   * here, which saves a clock read on most deltas. */
  if (_jarvis_timer_is_armed (&request->flush_timer) && request->choice_buffers == NULL &&
      buffer->text->len < bus->flush_max_bytes)
    return;

  now_us = g_get_monotonic_time ();
  if (_jarvis_flush_buffer_is_due (buffer, now_us, bus->flush_interval_ms, bus->flush_max_bytes))
    {
      flush_buffer (request, buffer, now_us);

      if (_jarvis_timer_is_armed (&request->flush_timer) || request->choice_buffers != NULL)
        update_flush_timer (request);
      return;
    }

  if (!_jarvis_timer_is_armed (&request->flush_timer) || request->choice_buffers != NULL)
    update_flush_timer (request);
}

static gboolean
grace_expired (gpointer user_data)
{
  JarvisRequest *request = user_data;
  JarvisBus *bus = request->bus;

  _jarvis_bus_clear_source (&request->grace_source);

  _jarvis_bus_enter (bus);
  _jarvis_request_cleanup (request, JARVIS_OUTCOME_COMPLETED);
  _jarvis_bus_leave (bus);

  return G_SOURCE_REMOVE;
}

static void
handle_end (JarvisRequest *request)
{
  JarvisBus *bus = request->bus;

  request->state = REQUEST_ENDING;

  if (request->scope.invocations.length == 0)
    {
      _jarvis_request_cleanup (request, JARVIS_OUTCOME_COMPLETED);
      return;
    }

  request->grace_source = _jarvis_bus_add_timer (bus, "jarvis end grace",
                                                 g_get_monotonic_time () + (gint64) bus->end_grace_ms * 1000,
                                                 grace_expired, request);
}

static void
handle_error (JarvisRequest *request,
              JarvisEvent   *event)
{
  GVariant *payload = jarvis_event_get_payload (event);
  const char *message = NULL;

  if (payload != NULL)
    g_variant_lookup (payload, "message", "&s", &message);

  g_free (request->error_message);
  request->error_message = g_strdup (message);

  _jarvis_request_cleanup (request, JARVIS_OUTCOME_FAILED);
}

/* Queues an event of a request whose start waits for its session. A start
 * also supersedes the session's running request, unless that one already
 * ended and only waits for its handlers. */
static void
wait_for_session (JarvisRequest *request,
                  JarvisEvent   *event)
{
  JarvisBus *bus = request->bus;
  JarvisSession *session = ensure_session (bus, request->session_id);
  JarvisRequest *active = session->active;

  g_queue_push_tail (&session->waiting, jarvis_event_ref (event));

  if (!jarvis_event_has_type (event, JARVIS_EVENT_STREAM_START) || active == NULL)
    return;

  g_free (session->superseded_id);
  session->superseded_id = g_strdup (active->request_id);

  if (active->state == REQUEST_OPEN)
    _jarvis_request_cleanup (active, JARVIS_OUTCOME_SUPERSEDED);
}

static void
process_start (JarvisBus     *bus,
               JarvisRequest *request,
               JarvisEvent   *event)
{
  JarvisSession *session = ensure_session (bus, request->session_id);

  if (session->active != NULL)
    {
      wait_for_session (request, event);
      return;
    }

  open_request (request, session, FALSE);
  _jarvis_bus_dispatch (bus, event, &request->scope);
}

/* Opens a request for a delta that came without a start. It takes the
 * session only when the session is idle, and never supersedes. */
static void
open_implicitly (JarvisBus     *bus,
                 JarvisRequest *request)
{
  JarvisSession *session = ensure_session (bus, request->session_id);

  if (session->active != NULL || session->waiting.length > 0)
    {
      open_request (request, NULL, TRUE);
      release_session (bus, session);
      return;
    }

  open_request (request, session, TRUE);
}

/* Routes one event in the bus thread: opens, feeds and ends requests, and
 * dispatches the event to the matching handlers. */
void
_jarvis_request_process_event (JarvisBus   *bus,
                               JarvisEvent *event)
{
  const char *type = jarvis_event_get_event_type (event);
  const char *request_id = jarvis_event_get_request_id (event);
  JarvisRequest *request;
  gboolean is_start = type == type_start;
  gboolean is_delta = type == type_delta;
  gboolean first_pass = !_jarvis_event_mark_counted (event);

  if (first_pass)
    _jarvis_bus_count (bus, NULL, JARVIS_COUNTER_EVENTS, 1);

  request = _jarvis_request_lookup (bus, request_id);
  if (request == NULL)
    {
      if (bus->close_stage != CLOSE_NONE || g_hash_table_contains (bus->finished, request_id))
        {
          drop_late (bus, NULL, event);
          return;
        }

      if (!is_start && !is_delta)
        {
          _jarvis_bus_dispatch (bus, event, &bus->scope);
          return;
        }

      request = request_new (bus, event);
      if (is_delta)
        open_implicitly (bus, request);
    }

  if (first_pass)
    request->counters[JARVIS_COUNTER_EVENTS]++;

  switch (request->state)
    {
    case REQUEST_PENDING:
      if (is_start)
        process_start (bus, request, event);
      else
        wait_for_session (request, event);
      return;

    case REQUEST_ENDING:
    case REQUEST_CLEANING:
      drop_late (bus, request, event);
      return;

    case REQUEST_OPEN:
    default:
      break;
    }

  _jarvis_bus_dispatch (bus, event, &request->scope);

  if (is_delta)
    append_delta (request, event);
  else if (type == type_end)
    handle_end (request);
  else if (type == type_error)
    handle_error (request, event);
  else if (type == type_cancel)
    _jarvis_request_cleanup (request, JARVIS_OUTCOME_CANCELLED);
}

/* Starts the cleanup of @request with @outcome, at once, or from a source
 * when called from inside a handler or a cancel callback. Returns FALSE
 * when the cleanup already started or is already scheduled. */
gboolean
_jarvis_request_cleanup (JarvisRequest *request,
                         JarvisOutcome  outcome)
{
  JarvisBus *bus = request->bus;

  if (request->state >= REQUEST_CLEANING || request->cleanup_deferred)
    return FALSE;

  if (bus->reentry > 0)
    {
      request->cleanup_deferred = TRUE;
      request->outcome = outcome;
      g_queue_push_tail (&bus->deferred, request);
      _jarvis_wake_source_wake (bus->deferred_source);
      return TRUE;
    }

  run_cleanup (request, outcome);
  return TRUE;
}

void
_jarvis_request_run_deferred (JarvisBus *bus)
{
  JarvisRequest *request;

  while ((request = g_queue_pop_head (&bus->deferred)) != NULL)
    {
      request->cleanup_deferred = FALSE;
      if (request->state < REQUEST_CLEANING)
        run_cleanup (request, request->outcome);
    }
}

static gboolean
drain_expired (gpointer user_data)
{
  JarvisRequest *request = user_data;
  JarvisBus *bus = request->bus;

  _jarvis_bus_clear_source (&request->drain_source);

  _jarvis_bus_enter (bus);
  _jarvis_bus_detach_scope (bus, &request->scope, request->request_id);
  if (request->scope.invocations.length == 0)
    emit_complete (request);
  _jarvis_bus_leave (bus);

  return G_SOURCE_REMOVE;
}

/* The fixed cleanup order. Each step logs one line, and the complete is
 * emitted once every invocation of the request returned or was detached. */
static void
run_cleanup (JarvisRequest *request,
             JarvisOutcome  outcome)
{
  JarvisBus *bus = request->bus;
  const char *request_id = request->request_id;
  g_autoptr(GPtrArray) buffers = NULL;
  gint64 now_us = g_get_monotonic_time ();

  g_assert (request->state == REQUEST_OPEN || request->state == REQUEST_ENDING);

  request->outcome = outcome;
  request->state = REQUEST_CLEANING;
  _jarvis_bus_clear_source (&request->grace_source);

  if (outcome == JARVIS_OUTCOME_CANCELLED || outcome == JARVIS_OUTCOME_SUPERSEDED)
    _jarvis_bus_debug (bus, request_id, "stream_cancelled trace=%s request_id=%s",
                       request->trace_id != NULL ? request->trace_id : "", request_id);

  _jarvis_timer_disarm (bus->flush_timers, &request->flush_timer);
  _jarvis_bus_debug (bus, request_id, "cleanup_flush_task request_id=%s", request_id);

  /* Cancel callbacks run synchronously here; anything they trigger on the
   * bus is deferred through reentry. */
  _jarvis_bus_debug (bus, request_id, "cleanup_callback_tasks request_id=%s count=%u",
                     request_id, request->scope.invocations.length);
  bus->reentry++;
  if (request->cancellable != NULL)
    g_cancellable_cancel (request->cancellable);
  for (GList *l = request->scope.invocations.head; l != NULL; l = l->next)
    _jarvis_invocation_cancel (l->data);
  bus->reentry--;

  buffers = list_buffers (request);
  for (guint i = 0; i < buffers->len; i++)
    {
      JarvisFlushBuffer *buffer = g_ptr_array_index (buffers, i);
      guint replacements = 0;
      gsize added = _jarvis_flush_buffer_finish_tail (buffer, &replacements);

      if (added > 0)
        {
          _jarvis_bus_count (bus, request->counters, JARVIS_COUNTER_BYTES_IN, added);
          _jarvis_bus_count (bus, request->counters, JARVIS_COUNTER_UTF8_REPLACEMENTS, replacements);
        }

      if (buffer->text->len > 0)
        flush_buffer (request, buffer, now_us);
    }

  g_clear_pointer (&buffers, g_ptr_array_unref);
  g_clear_pointer (&request->buffer, _jarvis_flush_buffer_free);
  g_clear_pointer (&request->choice_buffers, g_hash_table_unref);
  _jarvis_bus_debug (bus, request_id, "cleanup_buffer request_id=%s", request_id);

  _jarvis_bus_debug (bus, request_id, "cleanup_request_complete request_id=%s", request_id);
  request->cleanup_finished = TRUE;

  if (request->scope.invocations.length == 0)
    {
      emit_complete (request);
      return;
    }

  request->drain_source = _jarvis_bus_add_timer (bus, "jarvis drain deadline",
                                                 g_get_monotonic_time () + (gint64) bus->drain_timeout_ms * 1000,
                                                 drain_expired, request);
}

/* Called after an invocation of @request returned or was detached. */
void
_jarvis_request_invocation_settled (JarvisRequest *request)
{
  if (request->scope.invocations.length > 0)
    return;

  if (request->state == REQUEST_ENDING)
    {
      _jarvis_bus_clear_source (&request->grace_source);
      _jarvis_request_cleanup (request, JARVIS_OUTCOME_COMPLETED);
    }
  else if (request->state == REQUEST_CLEANING && request->cleanup_finished)
    {
      emit_complete (request);
    }
}

static GVariant *
dict_entry (const char *key,
            GVariant   *value)
{
  return g_variant_new_dict_entry (g_variant_new_string (key), g_variant_new_variant (value));
}

/* What a complete event's payload is built from, if anyone reads it. */
typedef struct
{
  JarvisOutcome outcome;
  guint64 counters[REQUEST_N_COUNTERS];
  char *error_message;          /* owned, nullable */
} CompleteSummary;

static void
complete_summary_free (gpointer data)
{
  CompleteSummary *summary = data;

  g_free (summary->error_message);
  g_free (summary);
}

static GVariant *
build_complete_payload (gpointer data)
{
  static const struct
  {
    const char *key;
    JarvisCounter counter;
  } keys[] = {
    { "events", JARVIS_COUNTER_EVENTS },
    { "tokens", JARVIS_COUNTER_TOKENS },
    { "bytes_in", JARVIS_COUNTER_BYTES_IN },
    { "bytes_flushed", JARVIS_COUNTER_BYTES_FLUSHED },
    { "flushes", JARVIS_COUNTER_FLUSHES },
    { "tasks_created", JARVIS_COUNTER_TASKS_CREATED },
    { "tasks_completed", JARVIS_COUNTER_TASKS_COMPLETED },
    { "tasks_failed", JARVIS_COUNTER_TASKS_FAILED },
    { "tasks_cancelled", JARVIS_COUNTER_TASKS_CANCELLED },
    { "tasks_detached", JARVIS_COUNTER_TASKS_DETACHED },
    { "late_events_dropped", JARVIS_COUNTER_LATE_EVENTS_DROPPED },
    { "utf8_replacements", JARVIS_COUNTER_UTF8_REPLACEMENTS },
  };
  CompleteSummary *summary = data;
  GVariant *entries[G_N_ELEMENTS (keys) + 2];
  gsize n_entries = 0;

  /* Entries are built directly rather than with g_variant_builder_add(),
   * whose format-string parsing cost more than the rest of the complete. */
  entries[n_entries++] = dict_entry ("outcome", g_variant_new_string (jarvis_outcome_to_string (summary->outcome)));

  for (gsize i = 0; i < G_N_ELEMENTS (keys); i++)
    entries[n_entries++] = dict_entry (keys[i].key, g_variant_new_uint64 (summary->counters[keys[i].counter]));

  if (summary->outcome == JARVIS_OUTCOME_FAILED)
    entries[n_entries++] = dict_entry ("error",
                                       g_variant_new_string (summary->error_message != NULL ?
                                                             summary->error_message : "stream error"));

  return g_variant_new_array (G_VARIANT_TYPE ("{sv}"), entries, n_entries);
}

/* Hands the session to the next waiting start: its queued events go to the
 * front of the bus's work queue, ahead of anything emitted later. */
static void
release_session_of (JarvisRequest *request)
{
  JarvisBus *bus = request->bus;
  JarvisSession *session = request->session;

  if (session == NULL)
    return;

  session->active = NULL;
  request->session = NULL;

  while (session->waiting.length > 0)
    g_queue_push_head (&bus->pending, g_queue_pop_tail (&session->waiting));

  release_session (bus, session);
}

static void
emit_complete (JarvisRequest *request)
{
  static const JarvisCounter outcome_counters[] = {
    [JARVIS_OUTCOME_COMPLETED] = JARVIS_COUNTER_REQUESTS_COMPLETED,
    [JARVIS_OUTCOME_CANCELLED] = JARVIS_COUNTER_REQUESTS_CANCELLED,
    [JARVIS_OUTCOME_SUPERSEDED] = JARVIS_COUNTER_REQUESTS_SUPERSEDED,
    [JARVIS_OUTCOME_FAILED] = JARVIS_COUNTER_REQUESTS_FAILED,
  };
  JarvisBus *bus = request->bus;
  CompleteSummary *summary;
  JarvisEvent *complete;

  g_assert (request->state == REQUEST_CLEANING);
  g_assert (request->scope.invocations.length == 0);

  _jarvis_bus_clear_source (&request->drain_source);

  summary = _jarvis_new0 (CompleteSummary);
  summary->outcome = request->outcome;
  memcpy (summary->counters, request->counters, sizeof summary->counters);
  summary->error_message = g_steal_pointer (&request->error_message);

  complete = jarvis_event_new (JARVIS_EVENT_STREAM_COMPLETE, request->request_id);
  jarvis_event_set_session_id (complete, request->session_id);
  jarvis_event_set_trace_id (complete, request->trace_id);
  _jarvis_event_set_payload_builder (complete, jarvis_outcome_to_string (request->outcome),
                                     build_complete_payload, summary, complete_summary_free);
  _jarvis_event_seal (complete);

  _jarvis_bus_count (bus, NULL, outcome_counters[request->outcome], 1);
  _jarvis_bus_debug (bus, request->request_id, "stream_end trace=%s request_id=%s cleanup_done=true",
                     request->trace_id != NULL ? request->trace_id : "", request->request_id);

  g_hash_table_steal (bus->requests, request->request_id);
  if (bus->last_request == request)
    bus->last_request = NULL;
  remember_finished (bus, request->request_id);
  release_session_of (request);

  _jarvis_bus_dispatch (bus, complete, &bus->scope);
  _jarvis_bus_signal_request_completed (bus, complete);

  jarvis_event_unref (complete);
  _jarvis_request_free (request);

  _jarvis_bus_check_close (bus);
  _jarvis_bus_check_drained (bus);
}

/* Drops one request whose start still waits for its session, with its
 * queued events, which count as dropped. It never started, so it gets no
 * complete. */
void
_jarvis_request_drop_waiting (JarvisRequest *request)
{
  JarvisBus *bus = request->bus;
  JarvisSession *session = g_hash_table_lookup (bus->sessions, request->session_id);

  g_assert (request->state == REQUEST_PENDING);

  if (session != NULL)
    {
      GList *link = session->waiting.head;

      while (link != NULL)
        {
          GList *next = link->next;
          JarvisEvent *event = link->data;

          if (g_str_equal (jarvis_event_get_request_id (event), request->request_id))
            {
              _jarvis_bus_count (bus, NULL, JARVIS_COUNTER_LATE_EVENTS_DROPPED, 1);
              g_queue_delete_link (&session->waiting, link);
              jarvis_event_unref (event);
            }
          link = next;
        }

      if (session->waiting.length == 0)
        g_clear_pointer (&session->superseded_id, g_free);
      release_session (bus, session);
    }

  _jarvis_bus_debug (bus, request->request_id, "stream_dropped_before_start request_id=%s",
                     request->request_id);
  g_hash_table_steal (bus->requests, request->request_id);
  remember_finished (bus, request->request_id);
  _jarvis_request_free (request);
}

/* Close: drops every request whose start still waits for a session.
 * Every event in a session's waiting queue belongs to one of them. */
void
_jarvis_request_drop_pending (JarvisBus *bus)
{
  GHashTableIter iter;
  gpointer value;
  g_autoptr(GPtrArray) pending = g_ptr_array_new ();

  g_hash_table_iter_init (&iter, bus->requests);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((JarvisRequest *) value)->state == REQUEST_PENDING)
      g_ptr_array_add (pending, value);

  for (guint i = 0; i < pending->len; i++)
    _jarvis_request_drop_waiting (g_ptr_array_index (pending, i));
}
