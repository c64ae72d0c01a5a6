#include "config.h"

#include "jarvis-bus-private.h"
#include "jarvis-event-private.h"
#include "jarvis-plugin-private.h"
#include "jarvis-request-private.h"

#define DEFAULT_FLUSH_INTERVAL_MS 50
#define DEFAULT_FLUSH_MAX_BYTES 4096
#define DEFAULT_END_GRACE_MS 2000
#define DEFAULT_DRAIN_TIMEOUT_MS 2000
#define DEFAULT_QUEUE_CAPACITY 1024

enum
{
  SIGNAL_REQUEST_STARTED,
  SIGNAL_REQUEST_COMPLETED,
  SIGNAL_DRAINED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (JarvisBus, jarvis_bus, G_TYPE_OBJECT)

static void invocation_returned (JarvisInvocation *invocation,
                                 gpointer          user_data);
static void process_batch (GQueue   *batch,
                           gpointer  user_data);
static gboolean run_deferred (gpointer user_data);
static void finish_unload (JarvisPlugin *plugin);

/**
 * jarvis_outcome_to_string:
 * @outcome: an outcome
 *
 * Returns: (transfer none): the name used in complete payloads and logs,
 *   such as "completed"
 *
 * Since: 0.1
 */
const char *
jarvis_outcome_to_string (JarvisOutcome outcome)
{
  switch (outcome)
    {
    case JARVIS_OUTCOME_COMPLETED:
      return "completed";
    case JARVIS_OUTCOME_CANCELLED:
      return "cancelled";
    case JARVIS_OUTCOME_SUPERSEDED:
      return "superseded";
    case JARVIS_OUTCOME_FAILED:
      return "failed";
    default:
      g_return_val_if_reached (NULL);
    }
}

/**
 * jarvis_counter_get_name:
 * @counter: a counter
 *
 * Gets the counter's name in jarvis_bus_dup_stats(): the enum name in
 * lower case, except %JARVIS_COUNTER_EVENTS, which is `events_in`.
 *
 * Returns: (transfer none): the name
 *
 * Since: 0.1
 */
const char *
jarvis_counter_get_name (JarvisCounter counter)
{
  static const char * const names[] = {
    [JARVIS_COUNTER_EVENTS] = "events_in",
    [JARVIS_COUNTER_TOKENS] = "tokens",
    [JARVIS_COUNTER_BYTES_IN] = "bytes_in",
    [JARVIS_COUNTER_BYTES_FLUSHED] = "bytes_flushed",
    [JARVIS_COUNTER_FLUSHES] = "flushes",
    [JARVIS_COUNTER_TASKS_CREATED] = "tasks_created",
    [JARVIS_COUNTER_TASKS_COMPLETED] = "tasks_completed",
    [JARVIS_COUNTER_TASKS_FAILED] = "tasks_failed",
    [JARVIS_COUNTER_TASKS_CANCELLED] = "tasks_cancelled",
    [JARVIS_COUNTER_TASKS_DETACHED] = "tasks_detached",
    [JARVIS_COUNTER_LATE_EVENTS_DROPPED] = "late_events_dropped",
    [JARVIS_COUNTER_UTF8_REPLACEMENTS] = "utf8_replacements",
    [JARVIS_COUNTER_REQUESTS] = "requests",
    [JARVIS_COUNTER_REQUESTS_COMPLETED] = "requests_completed",
    [JARVIS_COUNTER_REQUESTS_CANCELLED] = "requests_cancelled",
    [JARVIS_COUNTER_REQUESTS_SUPERSEDED] = "requests_superseded",
    [JARVIS_COUNTER_REQUESTS_FAILED] = "requests_failed",
    [JARVIS_COUNTER_HANDLER_ERRORS] = "handler_errors",
  };

  G_STATIC_ASSERT (G_N_ELEMENTS (names) == JARVIS_N_COUNTERS);
  g_return_val_if_fail ((guint) counter < JARVIS_N_COUNTERS, NULL);

  return names[counter];
}

/* g_thread_self() goes through a GPrivate lookup, which costs more than
 * the rest of the emit decision. Every emit needs it, so it is kept
 * in plain thread-local storage. Both live exactly as long as the thread. */
static _Thread_local GThread *current_thread;

static GThread *
get_current_thread (void)
{
  if (G_UNLIKELY (current_thread == NULL))
    current_thread = g_thread_self ();

  return current_thread;
}

static gboolean
in_owner_thread (JarvisBus *bus)
{
  return get_current_thread () == bus->owner;
}

/* GTask calls back in the thread-default context of its creation. The bus
 * promises its callbacks in its own context, which a program that
 * iterates a private context need not have pushed, so it is pushed here. */
static GTask *
new_bus_task (JarvisBus           *bus,
              GCancellable        *cancellable,
              GAsyncReadyCallback  callback,
              gpointer             user_data)
{
  GTask *task;

  g_main_context_push_thread_default (bus->context);
  task = g_task_new (bus, cancellable, callback, user_data);
  g_main_context_pop_thread_default (bus->context);

  return task;
}

GSource *
_jarvis_bus_add_timer (JarvisBus   *bus,
                       const char  *name,
                       gint64       ready_time_us,
                       GSourceFunc  callback,
                       gpointer     user_data)
{
  GSource *source;

  source = _jarvis_wake_source_new (name, callback, user_data);
  g_source_set_ready_time (source, ready_time_us);
  g_source_attach (source, bus->context);

  return source;
}

void
_jarvis_bus_clear_source (GSource **source)
{
  if (*source == NULL)
    return;

  g_source_destroy (*source);
  g_clear_pointer (source, g_source_unref);
}

static void
drain_pending (JarvisBus *bus)
{
  JarvisEvent *event;

  bus->busy++;
  while ((event = g_queue_pop_head (&bus->pending)) != NULL)
    {
      _jarvis_request_process_event (bus, event);
      jarvis_event_unref (event);
    }
  bus->busy--;
}

/* Brackets work started by the main loop (a source, a return, an API call)
 * so that emits made meanwhile are queued, then drained by the outermost
 * frame in order. */
void
_jarvis_bus_enter (JarvisBus *bus)
{
  bus->busy++;
}

void
_jarvis_bus_leave (JarvisBus *bus)
{
  g_assert (bus->busy > 0);

  if (--bus->busy == 0 && bus->pending.length > 0)
    drain_pending (bus);
}

void
_jarvis_bus_signal_request_started (JarvisBus  *bus,
                                    const char *request_id,
                                    const char *session_id)
{
  g_signal_emit (bus, signals[SIGNAL_REQUEST_STARTED], 0, request_id, session_id);
}

void
_jarvis_bus_signal_request_completed (JarvisBus   *bus,
                                      JarvisEvent *complete)
{
  g_signal_emit (bus, signals[SIGNAL_REQUEST_COMPLETED], 0, complete);
}

/* Lets a host close once nothing is in flight, instead of cancelling
 * handler calls for complete events that were about to return. */
void
_jarvis_bus_check_drained (JarvisBus *bus)
{
  if (bus->close_stage != CLOSE_NONE ||
      g_hash_table_size (bus->requests) > 0 ||
      bus->n_invocations > 0)
    return;

  g_signal_emit (bus, signals[SIGNAL_DRAINED], 0);
}

static void
jarvis_bus_init (JarvisBus *bus)
{
  bus->owner = get_current_thread ();
  bus->log_debug = _jarvis_log_debug_enabled ();
  bus->flush_interval_ms = DEFAULT_FLUSH_INTERVAL_MS;
  bus->flush_max_bytes = DEFAULT_FLUSH_MAX_BYTES;
  bus->end_grace_ms = DEFAULT_END_GRACE_MS;
  bus->drain_timeout_ms = DEFAULT_DRAIN_TIMEOUT_MS;
  bus->queue_capacity = DEFAULT_QUEUE_CAPACITY;

  bus->plugins = g_ptr_array_new ();
  bus->subscriptions = g_ptr_array_new ();
  bus->next_subscription_id = 1;
  g_queue_init (&bus->pending);
  g_queue_init (&bus->scope.invocations);

  bus->requests = g_hash_table_new (g_str_hash, g_str_equal);
  bus->sessions = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                         (GDestroyNotify) _jarvis_session_free);
  bus->finished = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, NULL);
  g_queue_init (&bus->finished_order);
  g_queue_init (&bus->deferred);
  bus->close_tasks = g_ptr_array_new_with_free_func (g_object_unref);
}

/**
 * jarvis_bus_new:
 * @context: (nullable): the main context for handlers, signals and sources,
 *   or %NULL for the calling thread's default context
 *
 * Creates a bus owned by the calling thread, which must iterate @context.
 *
 * Returns: (transfer full): a new bus
 *
 * Since: 0.1
 */
JarvisBus *
jarvis_bus_new (GMainContext *context)
{
  JarvisBus *bus;

  bus = g_object_new (JARVIS_TYPE_BUS, NULL);
  bus->context = context != NULL ? g_main_context_ref (context) : g_main_context_ref_thread_default ();

  bus->queue = _jarvis_queue_new (bus->context, bus->queue_capacity, process_batch, bus);
  bus->completion = _jarvis_completion_new (bus->context, invocation_returned, bus);
  bus->deferred_source = _jarvis_wake_source_new ("jarvis deferred cleanup", run_deferred, bus);
  g_source_attach (bus->deferred_source, bus->context);
  bus->flush_timers = _jarvis_timer_set_new (bus->context, "jarvis flush timers");

  return bus;
}

/**
 * jarvis_bus_get_context:
 * @bus: a bus
 *
 * Returns: (transfer none): the main context the bus runs in
 *
 * Since: 0.1
 */
GMainContext *
jarvis_bus_get_context (JarvisBus *bus)
{
  g_return_val_if_fail (JARVIS_IS_BUS (bus), NULL);

  return bus->context;
}

/**
 * jarvis_bus_set_config:
 * @bus: a bus
 * @config: (nullable): the configuration; group `[plugin NAME]` contains
 *   the options of plugin NAME
 *
 * Sets the configuration that plugins read their options from. Set it
 * before registering plugins, because they read options in `init`.
 *
 * Since: 0.1
 */
void
jarvis_bus_set_config (JarvisBus *bus,
                       GKeyFile  *config)
{
  g_return_if_fail (JARVIS_IS_BUS (bus));
  g_return_if_fail (in_owner_thread (bus));

  if (config != NULL)
    g_key_file_ref (config);
  g_clear_pointer (&bus->config, g_key_file_unref);
  bus->config = config;
}

/**
 * jarvis_bus_get_config:
 * @bus: a bus
 *
 * Returns: (transfer none) (nullable): the configuration
 *
 * Since: 0.1
 */
GKeyFile *
jarvis_bus_get_config (JarvisBus *bus)
{
  g_return_val_if_fail (JARVIS_IS_BUS (bus), NULL);

  return bus->config;
}

/**
 * jarvis_bus_set_flush_policy:
 * @bus: a bus
 * @interval_ms: the time between flushes of a request's text, in
 *   milliseconds (default 50)
 * @max_bytes: the buffered size that flushes at once, in bytes (default
 *   4096)
 *
 * Sets when delta text is flushed. The first text of a request is always
 * flushed at once. A new policy applies to the next text buffered. Call
 * it in the bus's thread, like the other setters.
 *
 * Since: 0.1
 */
void
jarvis_bus_set_flush_policy (JarvisBus *bus,
                             guint      interval_ms,
                             gsize      max_bytes)
{
  g_return_if_fail (JARVIS_IS_BUS (bus));
  g_return_if_fail (in_owner_thread (bus));
  g_return_if_fail (max_bytes > 0);

  bus->flush_interval_ms = interval_ms;
  bus->flush_max_bytes = max_bytes;
}

/**
 * jarvis_bus_set_end_grace:
 * @bus: a bus
 * @grace_ms: in milliseconds (default 2000)
 *
 * Sets how long a request waits after its end event for in-flight calls
 * before its cleanup cancels them.
 *
 * Since: 0.1
 */
void
jarvis_bus_set_end_grace (JarvisBus *bus,
                          guint      grace_ms)
{
  g_return_if_fail (JARVIS_IS_BUS (bus));
  g_return_if_fail (in_owner_thread (bus));

  bus->end_grace_ms = grace_ms;
}

/**
 * jarvis_bus_set_drain_timeout:
 * @bus: a bus
 * @timeout_ms: in milliseconds (default 2000)
 *
 * Sets how long cleanup, unload and close wait for cancelled calls to
 * return before they detach them.
 *
 * Since: 0.1
 */
void
jarvis_bus_set_drain_timeout (JarvisBus *bus,
                              guint      timeout_ms)
{
  g_return_if_fail (JARVIS_IS_BUS (bus));
  g_return_if_fail (in_owner_thread (bus));

  bus->drain_timeout_ms = timeout_ms;
}

/**
 * jarvis_bus_set_queue_capacity:
 * @bus: a bus
 * @capacity: the number of events (default 1024)
 *
 * Sets how many events from other threads may wait for the bus thread.
 * A producer that finds the queue full blocks until it drains.
 *
 * Since: 0.1
 */
void
jarvis_bus_set_queue_capacity (JarvisBus *bus,
                               guint      capacity)
{
  g_return_if_fail (JARVIS_IS_BUS (bus));
  g_return_if_fail (in_owner_thread (bus));
  g_return_if_fail (capacity > 0);

  bus->queue_capacity = capacity;
  _jarvis_queue_set_capacity (bus->queue, capacity);
}

/* Subscriptions */

static gboolean
parse_pattern (const char   *pattern,
               JarvisMatch  *match,
               const char  **interned,
               gsize        *prefix_length)
{
  gsize length;
  const char *star;

  if (pattern == NULL || *pattern == '\0')
    return FALSE;

  if (g_str_equal (pattern, "*"))
    {
      *match = MATCH_ALL;
      *interned = g_intern_static_string ("*");
      *prefix_length = 0;
      return TRUE;
    }

  length = strlen (pattern);
  star = strchr (pattern, '*');

  if (star == NULL)
    {
      *match = MATCH_EXACT;
      *interned = g_intern_string (pattern);
      *prefix_length = length;
      return TRUE;
    }

  if (star != pattern + length - 1 || length < 3 || pattern[length - 2] != '.')
    return FALSE;

  {
    g_autofree char *prefix = g_strndup (pattern, length - 1);

    *match = MATCH_PREFIX;
    *interned = g_intern_string (prefix);
    *prefix_length = length - 1;
  }

  return TRUE;
}

guint
_jarvis_bus_subscribe (JarvisBus              *bus,
                       JarvisPlugin           *plugin,
                       const char             *pattern,
                       JarvisHandlerFunc       func,
                       JarvisAsyncHandlerFunc  async_func,
                       gpointer                user_data,
                       GDestroyNotify          destroy)
{
  JarvisSubscription *subscription;
  JarvisMatch match;
  const char *interned;
  gsize prefix_length;

  g_return_val_if_fail (in_owner_thread (bus), 0);

  if (!parse_pattern (pattern, &match, &interned, &prefix_length))
    {
      g_critical ("Plugin %s subscribed with the invalid pattern “%s”; use an event type, "
                  "a prefix ending in “.*”, or “*”", plugin->name, pattern != NULL ? pattern : "(null)");
      return 0;
    }

  if (plugin->unloading)
    {
      g_critical ("Plugin %s subscribed to “%s” while it is being unloaded", plugin->name, pattern);
      return 0;
    }

  subscription = g_new0 (JarvisSubscription, 1);
  subscription->id = bus->next_subscription_id++;
  subscription->match = match;
  subscription->plugin = plugin;
  subscription->pattern = interned;
  subscription->prefix_length = prefix_length;
  subscription->func = func;
  subscription->async_func = async_func;
  subscription->user_data = user_data;
  subscription->destroy = destroy;
  g_ptr_array_add (bus->subscriptions, subscription);

  return subscription->id;
}

static void
mark_removed (JarvisBus          *bus,
              JarvisSubscription *subscription)
{
  subscription->removed = TRUE;
  bus->n_removed_subscriptions++;
}

/* Frees removed subscriptions once no dispatch walks the array, so that a
 * handler may unsubscribe itself or any other. */
static void
compact_subscriptions (JarvisBus *bus)
{
  guint kept = 0;

  if (bus->dispatch_depth > 0 || bus->n_removed_subscriptions == 0)
    return;

  for (guint i = 0; i < bus->subscriptions->len; i++)
    {
      JarvisSubscription *subscription = g_ptr_array_index (bus->subscriptions, i);

      if (!subscription->removed)
        {
          bus->subscriptions->pdata[kept++] = subscription;
          continue;
        }

      if (subscription->destroy != NULL)
        subscription->destroy (subscription->user_data);
      g_free (subscription);
    }

  g_ptr_array_set_size (bus->subscriptions, kept);
  bus->n_removed_subscriptions = 0;
}

void
_jarvis_bus_unsubscribe (JarvisBus    *bus,
                         JarvisPlugin *plugin,
                         guint         subscription_id)
{
  g_return_if_fail (in_owner_thread (bus));

  for (guint i = 0; i < bus->subscriptions->len; i++)
    {
      JarvisSubscription *subscription = g_ptr_array_index (bus->subscriptions, i);

      if (subscription->id != subscription_id)
        continue;

      if (subscription->plugin != plugin || subscription->removed)
        break;

      mark_removed (bus, subscription);
      compact_subscriptions (bus);
      return;
    }

  g_critical ("Plugin %s has no subscription with id %u", plugin->name, subscription_id);
}

/* Removes every subscription of @plugin and runs their destroy notifies
 * now, even during a dispatch, because the plugin's code may be unmapped
 * next. The dispatch skips them by the removed flag. */
static void
remove_plugin_subscriptions (JarvisBus    *bus,
                             JarvisPlugin *plugin)
{
  for (guint i = 0; i < bus->subscriptions->len; i++)
    {
      JarvisSubscription *subscription = g_ptr_array_index (bus->subscriptions, i);
      GDestroyNotify destroy;

      if (subscription->plugin != plugin)
        continue;

      if (!subscription->removed)
        mark_removed (bus, subscription);

      destroy = g_steal_pointer (&subscription->destroy);
      if (destroy != NULL)
        destroy (subscription->user_data);
      subscription->plugin = NULL;
    }

  compact_subscriptions (bus);
}

/* Exact patterns are interned, and so is the type of every event created
 * after a subscription named it. An event created before that carries a
 * copy of its type, which only a string compare can match. */
static inline gboolean
subscription_matches (JarvisSubscription *subscription,
                      JarvisEvent        *event,
                      const char         *event_type)
{
  switch (subscription->match)
    {
    case MATCH_EXACT:
      return subscription->pattern == event_type ||
             (!_jarvis_event_type_is_interned (event) && strcmp (subscription->pattern, event_type) == 0);
    case MATCH_PREFIX:
      return strncmp (event_type, subscription->pattern, subscription->prefix_length) == 0;
    case MATCH_ALL:
    default:
      return TRUE;
    }
}

static void
call_async (JarvisBus          *bus,
            JarvisSubscription *subscription,
            JarvisEvent        *event,
            JarvisScope        *scope)
{
  JarvisPlugin *plugin = subscription->plugin;
  JarvisRequest *request = scope->request;
  JarvisInvocation *invocation;

  invocation = _jarvis_invocation_new (bus->completion, event, plugin, plugin->name, scope);
  g_queue_push_tail_link (&scope->invocations, &invocation->scope_link);
  g_queue_push_tail_link (&plugin->invocations, &invocation->plugin_link);
  bus->n_invocations++;

  _jarvis_bus_count (bus, request != NULL ? request->counters : NULL, JARVIS_COUNTER_TASKS_CREATED, 1);
  _jarvis_bus_debug (bus, jarvis_event_get_request_id (event),
                     "callback_task_created request_id=%s event=%s plugin=%s",
                     jarvis_event_get_request_id (event), jarvis_event_get_event_type (event),
                     plugin->name);

  subscription->async_func (event, invocation, subscription->user_data);
}

/* Calls every handler whose subscription existed when the dispatch began
 * and is still subscribed, in subscription order. Async calls are filed in
 * @scope. */
void
_jarvis_bus_dispatch (JarvisBus   *bus,
                      JarvisEvent *event,
                      JarvisScope *scope)
{
  const char *event_type = jarvis_event_get_event_type (event);
  guint n_subscriptions = bus->subscriptions->len;

  bus->dispatch_depth++;
  bus->reentry++;

  for (guint i = 0; i < n_subscriptions; i++)
    {
      JarvisSubscription *subscription = g_ptr_array_index (bus->subscriptions, i);

      if (subscription->removed || !subscription_matches (subscription, event, event_type))
        continue;

      if (subscription->func != NULL)
        subscription->func (event, subscription->user_data);
      else
        call_async (bus, subscription, event, scope);
    }

  bus->reentry--;
  bus->dispatch_depth--;

  compact_subscriptions (bus);
}

/* Emitting */

static void
process_batch (GQueue   *batch,
               gpointer  user_data)
{
  JarvisBus *bus = user_data;
  JarvisEvent *event;

  _jarvis_bus_enter (bus);
  while ((event = g_queue_pop_head (batch)) != NULL)
    g_queue_push_tail (&bus->pending, event);
  _jarvis_bus_leave (bus);
}

/* Flush and complete events carry text the bus coalesced and an outcome
 * the bus decided. Taking them from outside would let a producer fake a
 * second complete or flush text that no delta carried, so emitting one is
 * API misuse. Returns whether @event was dropped. */
gboolean
_jarvis_bus_reject_bus_only_event (JarvisEvent *event,
                                   const char  *function)
{
  if (!_jarvis_event_is_bus_only (event))
    return FALSE;

  g_critical ("%s: event type %s of request %s is emitted only by the bus, "
              "so the event was dropped", function,
              jarvis_event_get_event_type (event), jarvis_event_get_request_id (event));
  jarvis_event_unref (event);

  return TRUE;
}

/**
 * jarvis_bus_emit:
 * @bus: a bus
 * @event: (transfer full): the event; it is sealed and must not be changed
 *   afterwards
 *
 * Emits an event. Safe from any thread. In the bus thread, outside any
 * handler, the event is dispatched before this returns. From inside a
 * handler it is queued and dispatched after the current event. From
 * another thread it goes through a bounded queue: the call blocks while
 * the queue is full. Events of one thread keep their order.
 *
 * After close, events are dropped and counted as late. An event emitted
 * twice, for example one a plugin received and passes on, is dispatched
 * and counted twice.
 *
 * Events of type %JARVIS_EVENT_STREAM_FLUSH and
 * %JARVIS_EVENT_STREAM_COMPLETE are emitted only by the bus itself. Passing
 * one here is API misuse: it logs a critical that names the type and the
 * request id, and the event is dropped without being dispatched or counted
 * in %JARVIS_COUNTER_EVENTS.
 *
 * Since: 0.1
 */
void
jarvis_bus_emit (JarvisBus   *bus,
                 JarvisEvent *event)
{
  g_return_if_fail (JARVIS_IS_BUS (bus));
  g_return_if_fail (event != NULL);

  if (_jarvis_bus_reject_bus_only_event (event, G_STRFUNC))
    return;

  _jarvis_event_seal (event);

  if (!in_owner_thread (bus))
    {
      _jarvis_queue_push (bus->queue, event);
      return;
    }

  if (bus->busy > 0)
    {
      g_queue_push_tail (&bus->pending, event);
      return;
    }

  bus->busy++;
  _jarvis_request_process_event (bus, event);
  jarvis_event_unref (event);
  bus->busy--;

  if (bus->pending.length > 0)
    drain_pending (bus);
}

/* Returns */

static void
unlink_invocation (JarvisBus        *bus,
                   JarvisInvocation *invocation)
{
  g_queue_unlink (&invocation->scope->invocations, &invocation->scope_link);
  g_queue_unlink (&invocation->plugin->invocations, &invocation->plugin_link);
  bus->n_invocations--;
}

static void
plugin_invocation_settled (JarvisPlugin *plugin)
{
  if (plugin->unloading && plugin->invocations.length == 0 && plugin->unload_source != NULL)
    finish_unload (plugin);
}

static void
invocation_returned (JarvisInvocation *invocation,
                     gpointer          user_data)
{
  JarvisBus *bus = user_data;
  JarvisScope *scope = invocation->scope;
  JarvisPlugin *plugin = invocation->plugin;
  JarvisRequest *request = scope->request;
  guint64 *counters = request != NULL ? request->counters : NULL;
  const char *request_id = jarvis_event_get_request_id (invocation->event);
  const char *outcome;
  gboolean cancelled;

  unlink_invocation (bus, invocation);

  cancelled = (g_atomic_int_get (&invocation->flags) & INVOCATION_CANCELLED) ||
              g_error_matches (invocation->error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  if (cancelled)
    {
      outcome = "cancelled";
      _jarvis_bus_count (bus, counters, JARVIS_COUNTER_TASKS_CANCELLED, 1);
    }
  else if (invocation->error != NULL)
    {
      outcome = "failed";
      _jarvis_bus_count (bus, counters, JARVIS_COUNTER_TASKS_FAILED, 1);
      _jarvis_bus_count (bus, NULL, JARVIS_COUNTER_HANDLER_ERRORS, 1);
      _jarvis_log_warning (request_id, plugin->name,
                           "callback_task_failed request_id=%s plugin=%s event=%s: %s",
                           request_id, plugin->name,
                           jarvis_event_get_event_type (invocation->event),
                           invocation->error->message);
    }
  else
    {
      outcome = "completed";
      _jarvis_bus_count (bus, counters, JARVIS_COUNTER_TASKS_COMPLETED, 1);
    }

  _jarvis_bus_debug (bus, request_id, "callback_task_done request_id=%s outcome=%s",
                     request_id, outcome);

  _jarvis_invocation_free (invocation);

  _jarvis_bus_enter (bus);
  if (request != NULL)
    _jarvis_request_invocation_settled (request);
  else
    _jarvis_bus_check_close (bus);
  plugin_invocation_settled (plugin);
  if (request == NULL)
    _jarvis_bus_check_drained (bus);
  _jarvis_bus_leave (bus);
}

static void
count_detached (GHashTable       *per_plugin,
                JarvisInvocation *invocation)
{
  guint count = GPOINTER_TO_UINT (g_hash_table_lookup (per_plugin, invocation->plugin_name));

  g_hash_table_replace (per_plugin, invocation->plugin_name, GUINT_TO_POINTER (count + 1));
}

static void
warn_detached (GHashTable *per_plugin,
               const char *request_id,
               guint       timeout_ms)
{
  GHashTableIter iter;
  gpointer name;
  gpointer count;

  g_hash_table_iter_init (&iter, per_plugin);
  while (g_hash_table_iter_next (&iter, &name, &count))
    _jarvis_log_warning (request_id, name,
                         "callback_task_detached request_id=%s plugin=%s count=%u: "
                         "handlers did not return within the drain deadline of %u ms; "
                         "their late returns will be ignored",
                         request_id, (const char *) name, GPOINTER_TO_UINT (count), timeout_ms);
}

/* Detaches @invocation unless it returned meanwhile. Its plugin's module
 * stays mapped from now on, because the detached call may still run its
 * code and the bus cannot tell when it stops. */
static gboolean
detach_invocation (JarvisBus        *bus,
                   JarvisInvocation *invocation)
{
  JarvisScope *scope = invocation->scope;
  JarvisRequest *request = scope->request;

  if (!_jarvis_invocation_detach (invocation))
    return FALSE;

  invocation->plugin->n_detached++;
  unlink_invocation (bus, invocation);
  invocation->scope = NULL;
  invocation->plugin = NULL;
  _jarvis_bus_count (bus, request != NULL ? request->counters : NULL,
                     JARVIS_COUNTER_TASKS_DETACHED, 1);

  return TRUE;
}

/* Detaches every invocation of @scope that has not returned yet. Returned
 * ones stay, and are processed by the completion source. */
void
_jarvis_bus_detach_scope (JarvisBus   *bus,
                          JarvisScope *scope,
                          const char  *request_id)
{
  g_autoptr(GHashTable) per_plugin = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GPtrArray) plugins = g_ptr_array_new ();
  GList *link = scope->invocations.head;

  while (link != NULL)
    {
      JarvisInvocation *invocation = link->data;
      JarvisPlugin *plugin = invocation->plugin;

      link = link->next;

      if (!detach_invocation (bus, invocation))
        continue;

      count_detached (per_plugin, invocation);
      if (plugin->unloading && !g_ptr_array_find (plugins, plugin, NULL))
        g_ptr_array_add (plugins, plugin);
    }

  warn_detached (per_plugin, request_id, bus->drain_timeout_ms);

  /* An unloading plugin whose last call was detached here can finish. */
  for (guint i = 0; i < plugins->len; i++)
    plugin_invocation_settled (g_ptr_array_index (plugins, i));
}

/* Plugins */

static JarvisPlugin *
lookup_plugin (JarvisBus  *bus,
               const char *name)
{
  for (guint i = 0; i < bus->plugins->len; i++)
    {
      JarvisPlugin *plugin = g_ptr_array_index (bus->plugins, i);

      if (g_str_equal (plugin->name, name))
        return plugin;
    }

  return NULL;
}

static gboolean
register_plugin (JarvisBus               *bus,
                 const JarvisPluginInfo  *info,
                 GModule                 *module,
                 const char              *path,
                 GError                 **error)
{
  JarvisPlugin *plugin;
  g_autoptr(GError) init_error = NULL;
  gboolean ok;

  if (!_jarvis_plugin_info_check (info, error))
    return FALSE;

  if (bus->close_stage != CLOSE_NONE)
    {
      g_set_error (error, JARVIS_BUS_ERROR, JARVIS_BUS_ERROR_CLOSED,
                   "Cannot register plugin %s: the bus is closing or closed", info->name);
      return FALSE;
    }

  if (lookup_plugin (bus, info->name) != NULL)
    {
      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_DUPLICATE,
                   "Plugin %s is already registered on this bus%s%s",
                   info->name, path != NULL ? "; not loading " : "", path != NULL ? path : "");
      return FALSE;
    }

  plugin = _jarvis_plugin_new (bus, info);
  plugin->path = g_strdup (path);
  g_ptr_array_add (bus->plugins, plugin);

  _jarvis_bus_enter (bus);
  bus->reentry++;
  ok = info->init (plugin, &init_error);
  bus->reentry--;

  if (!ok)
    {
      remove_plugin_subscriptions (bus, plugin);
      g_ptr_array_remove (bus->plugins, plugin);
      _jarvis_plugin_free (plugin);
      _jarvis_bus_leave (bus);

      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_INIT_FAILED,
                   "Plugin %s failed to initialise: %s", info->name,
                   init_error != NULL ? init_error->message : "its init hook returned FALSE without an error");
      return FALSE;
    }

  plugin->module = module;
  _jarvis_bus_leave (bus);

  return TRUE;
}

/**
 * jarvis_bus_register_plugin:
 * @bus: a bus, in its thread
 * @info: a descriptor that outlives the plugin's registration
 * @error: return location for a %JARVIS_PLUGIN_ERROR error
 *
 * Registers a plugin whose descriptor is already in memory, as in tests
 * and static builds, and calls its init hook.
 *
 * Returns: %TRUE on success
 *
 * Since: 0.1
 */
gboolean
jarvis_bus_register_plugin (JarvisBus               *bus,
                            const JarvisPluginInfo  *info,
                            GError                 **error)
{
  g_return_val_if_fail (JARVIS_IS_BUS (bus), FALSE);
  g_return_val_if_fail (info != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  g_return_val_if_fail (in_owner_thread (bus), FALSE);

  return register_plugin (bus, info, NULL, NULL, error);
}

gboolean
_jarvis_bus_register_module (JarvisBus               *bus,
                             const JarvisPluginInfo  *info,
                             GModule                 *module,
                             const char              *path,
                             GError                 **error)
{
  g_return_val_if_fail (JARVIS_IS_BUS (bus), FALSE);
  g_return_val_if_fail (info != NULL, FALSE);
  g_return_val_if_fail (module != NULL, FALSE);
  g_return_val_if_fail (in_owner_thread (bus), FALSE);

  return register_plugin (bus, info, module, path, error);
}

/**
 * jarvis_bus_lookup_plugin:
 * @bus: a bus
 * @name: a plugin name
 *
 * Returns: (transfer none) (nullable): the registered plugin called @name
 *
 * Since: 0.1
 */
JarvisPlugin *
jarvis_bus_lookup_plugin (JarvisBus  *bus,
                          const char *name)
{
  g_return_val_if_fail (JARVIS_IS_BUS (bus), NULL);
  g_return_val_if_fail (name != NULL, NULL);

  return lookup_plugin (bus, name);
}

/**
 * jarvis_bus_list_plugins:
 * @bus: a bus
 *
 * Returns: (transfer full): the names of the registered plugins, in
 *   registration order
 *
 * Since: 0.1
 */
GStrv
jarvis_bus_list_plugins (JarvisBus *bus)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();

  g_return_val_if_fail (JARVIS_IS_BUS (bus), NULL);

  for (guint i = 0; i < bus->plugins->len; i++)
    g_strv_builder_add (builder, ((JarvisPlugin *) g_ptr_array_index (bus->plugins, i))->name);

  return g_strv_builder_end (builder);
}

/* Unloading */

static gboolean
unload_deadline_expired (gpointer user_data)
{
  JarvisPlugin *plugin = user_data;
  JarvisBus *bus = plugin->bus;
  g_autoptr(GPtrArray) requests = g_ptr_array_new ();
  guint detached = 0;
  GList *link = plugin->invocations.head;

  _jarvis_bus_enter (bus);

  while (link != NULL)
    {
      JarvisInvocation *invocation = link->data;
      JarvisRequest *request = invocation->scope->request;

      link = link->next;

      if (!detach_invocation (bus, invocation))
        continue;

      detached++;
      if (request != NULL && !g_ptr_array_find (requests, request, NULL))
        g_ptr_array_add (requests, request);
    }

  if (detached > 0)
    {
      plugin->resident_warned = TRUE;
      _jarvis_log_warning (NULL, plugin->name,
                           "plugin_unload_detached plugin=%s count=%u: handlers did not return "
                           "within the drain deadline of %u ms; the module stays loaded",
                           plugin->name, detached, bus->drain_timeout_ms);
    }

  /* The requests go on with the other plugins. */
  for (guint i = 0; i < requests->len; i++)
    _jarvis_request_invocation_settled (g_ptr_array_index (requests, i));
  _jarvis_bus_check_close (bus);
  _jarvis_bus_check_drained (bus);

  if (plugin->invocations.length == 0)
    finish_unload (plugin);

  _jarvis_bus_leave (bus);

  return G_SOURCE_CONTINUE;
}

static void finish_close (JarvisBus *bus);
static gboolean close_deadline_expired (gpointer user_data);

static void
finish_unload (JarvisPlugin *plugin)
{
  JarvisBus *bus = plugin->bus;
  g_autoptr(GTask) task = g_steal_pointer (&plugin->unload_task);

  g_assert (plugin->invocations.length == 0);

  _jarvis_bus_clear_source (&plugin->unload_source);

  if (plugin->info->shutdown != NULL)
    {
      bus->reentry++;
      plugin->info->shutdown (plugin);
      bus->reentry--;
    }

  /* Subscriptions made by shutdown are a bug, but must not outlive it. */
  remove_plugin_subscriptions (bus, plugin);

  if (plugin->n_detached > 0 && plugin->module != NULL && !plugin->resident_warned)
    _jarvis_log_warning (NULL, plugin->name,
                         "plugin_kept_resident plugin=%s detached=%u: its module stays mapped "
                         "because detached calls may still run its code",
                         plugin->name, plugin->n_detached);

  _jarvis_bus_debug (bus, NULL, "plugin_unloaded plugin=%s detached=%u",
                     plugin->name, plugin->n_detached);

  g_ptr_array_remove (bus->plugins, plugin);
  _jarvis_plugin_free (plugin);

  if (task != NULL)
    g_task_return_boolean (task, TRUE);

  if (bus->close_stage == CLOSE_UNLOADING && --bus->n_unloading == 0)
    finish_close (bus);
}

static gboolean
unload_started (gpointer user_data)
{
  JarvisPlugin *plugin = user_data;
  JarvisBus *bus = plugin->bus;

  /* With nothing in flight the unload finishes here, from its own source,
   * so that a handler that asked for it has returned before shutdown. */
  if (plugin->invocations.length == 0)
    {
      _jarvis_bus_enter (bus);
      finish_unload (plugin);
      _jarvis_bus_leave (bus);
      return G_SOURCE_REMOVE;
    }

  _jarvis_bus_clear_source (&plugin->unload_source);
  plugin->unload_source = _jarvis_bus_add_timer (bus, "jarvis unload deadline",
                                                 g_get_monotonic_time () + (gint64) bus->drain_timeout_ms * 1000,
                                                 unload_deadline_expired, plugin);

  return G_SOURCE_REMOVE;
}

/* Runs the first two unload steps now and the rest from the loop:
 * unsubscribe, cancel in-flight calls, wait for them or the deadline,
 * shutdown, close the module. */
static void
start_unload (JarvisPlugin *plugin,
              GTask        *task)
{
  JarvisBus *bus = plugin->bus;

  plugin->unloading = TRUE;
  plugin->unload_task = task;

  remove_plugin_subscriptions (bus, plugin);

  bus->reentry++;
  for (GList *link = plugin->invocations.head; link != NULL; link = link->next)
    _jarvis_invocation_cancel (link->data);
  bus->reentry--;

  plugin->unload_source = _jarvis_bus_add_timer (bus, "jarvis unload", 0, unload_started, plugin);
}

/**
 * jarvis_bus_unload_plugin:
 * @bus: a bus, in its thread
 * @name: the plugin's name
 * @cancellable: (nullable): not used yet; an unload always runs to its end
 * @callback: called when the plugin is gone
 * @user_data: data for @callback
 *
 * Unloads a plugin: unsubscribes its handlers, cancels its in-flight calls,
 * waits for them without blocking up to the drain deadline, calls its
 * shutdown hook and closes its module. If calls are still in flight at the
 * deadline they are detached, and the module stays loaded (a warning names
 * the plugin and the count). Requests go on with the other plugins.
 * @callback runs in the bus's context.
 *
 * Since: 0.1
 */
void
jarvis_bus_unload_plugin (JarvisBus           *bus,
                          const char          *name,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  JarvisPlugin *plugin;

  g_return_if_fail (JARVIS_IS_BUS (bus));
  g_return_if_fail (name != NULL);
  g_return_if_fail (in_owner_thread (bus));

  task = new_bus_task (bus, cancellable, callback, user_data);
  g_task_set_source_tag (task, jarvis_bus_unload_plugin);

  plugin = lookup_plugin (bus, name);
  if (plugin == NULL)
    {
      g_task_return_new_error (task, JARVIS_BUS_ERROR, JARVIS_BUS_ERROR_UNKNOWN_PLUGIN,
                               "Cannot unload plugin %s: no plugin of that name is registered", name);
      return;
    }

  if (plugin->unloading)
    {
      g_task_return_new_error (task, JARVIS_BUS_ERROR, JARVIS_BUS_ERROR_CLOSED,
                               "Cannot unload plugin %s: it is already being unloaded", name);
      return;
    }

  start_unload (plugin, g_steal_pointer (&task));
}

/**
 * jarvis_bus_unload_plugin_finish:
 * @bus: a bus
 * @result: the result passed to the callback
 * @error: return location for a %JARVIS_BUS_ERROR error
 *
 * Returns: %TRUE when the plugin was unloaded
 *
 * Since: 0.1
 */
gboolean
jarvis_bus_unload_plugin_finish (JarvisBus     *bus,
                                 GAsyncResult  *result,
                                 GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, bus), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == jarvis_bus_unload_plugin, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* Requests */

/**
 * jarvis_bus_cancel_request:
 * @bus: a bus, in its thread
 * @request_id: a request id
 *
 * Cancels a request: its cleanup runs now, or right after the current
 * handler when called from one, and its complete carries the outcome
 * cancelled. A request whose start still waits for its session is dropped
 * without a complete, because it never started.
 *
 * Returns: %TRUE if the request was open or waiting and is now cancelled
 *
 * Since: 0.1
 */
gboolean
jarvis_bus_cancel_request (JarvisBus  *bus,
                           const char *request_id)
{
  JarvisRequest *request;
  gboolean cancelled;

  g_return_val_if_fail (JARVIS_IS_BUS (bus), FALSE);
  g_return_val_if_fail (request_id != NULL, FALSE);
  g_return_val_if_fail (in_owner_thread (bus), FALSE);

  request = _jarvis_request_lookup (bus, request_id);
  if (request == NULL)
    return FALSE;

  _jarvis_bus_enter (bus);
  if (request->state == REQUEST_PENDING)
    {
      _jarvis_request_drop_waiting (request);
      cancelled = TRUE;
    }
  else
    cancelled = _jarvis_request_cleanup (request, JARVIS_OUTCOME_CANCELLED);
  _jarvis_bus_leave (bus);

  return cancelled;
}

static GPtrArray *
list_requests (JarvisBus *bus)
{
  GPtrArray *requests = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, bus->requests);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (requests, value);

  return requests;
}

static void
cancel_requests (JarvisBus *bus)
{
  g_autoptr(GPtrArray) requests = list_requests (bus);

  /* A cleanup may complete its request and free it, so re-check by id. */
  for (guint i = 0; i < requests->len; i++)
    {
      JarvisRequest *request = g_ptr_array_index (requests, i);
      g_autofree char *request_id = NULL;

      if (!g_hash_table_contains (bus->requests, request->request_id))
        continue;
      request_id = g_strdup (request->request_id);
      request = g_hash_table_lookup (bus->requests, request_id);
      if (request != NULL && request->state != REQUEST_PENDING)
        _jarvis_request_cleanup (request, JARVIS_OUTCOME_CANCELLED);
    }
}

/**
 * jarvis_bus_cancel_all:
 * @bus: a bus, in its thread
 *
 * Cancels every open request, as jarvis_bus_cancel_request() does.
 *
 * Since: 0.1
 */
void
jarvis_bus_cancel_all (JarvisBus *bus)
{
  g_return_if_fail (JARVIS_IS_BUS (bus));
  g_return_if_fail (in_owner_thread (bus));

  _jarvis_bus_enter (bus);
  cancel_requests (bus);
  _jarvis_bus_leave (bus);
}

/**
 * jarvis_bus_dup_request_cancellable:
 * @bus: a bus, in its thread
 * @request_id: a request id
 *
 * Gets a cancellable that is cancelled when the request's cleanup starts:
 * on cancel, supersede, error, close, or after the end grace. Embedders
 * tie their own operations for the request to it.
 *
 * Returns: (transfer full) (nullable): the cancellable, or %NULL for an
 *   unknown or finished request
 *
 * Since: 0.1
 */
GCancellable *
jarvis_bus_dup_request_cancellable (JarvisBus  *bus,
                                    const char *request_id)
{
  JarvisRequest *request;

  g_return_val_if_fail (JARVIS_IS_BUS (bus), NULL);
  g_return_val_if_fail (request_id != NULL, NULL);
  g_return_val_if_fail (in_owner_thread (bus), NULL);

  request = _jarvis_request_lookup (bus, request_id);
  if (request == NULL)
    return NULL;

  if (request->cancellable == NULL)
    {
      request->cancellable = g_cancellable_new ();
      if (request->state >= REQUEST_CLEANING)
        g_cancellable_cancel (request->cancellable);
    }

  return g_object_ref (request->cancellable);
}

static gboolean
run_deferred (gpointer user_data)
{
  JarvisBus *bus = user_data;

  _jarvis_bus_enter (bus);
  _jarvis_request_run_deferred (bus);
  _jarvis_bus_leave (bus);

  return G_SOURCE_CONTINUE;
}

/**
 * jarvis_bus_get_n_active_requests:
 * @bus: a bus
 *
 * Returns: the number of requests not yet complete, including those whose
 *   start waits for their session
 *
 * Since: 0.1
 */
guint
jarvis_bus_get_n_active_requests (JarvisBus *bus)
{
  g_return_val_if_fail (JARVIS_IS_BUS (bus), 0);

  return g_hash_table_size (bus->requests);
}

/**
 * jarvis_bus_get_n_invocations:
 * @bus: a bus
 *
 * Returns: the number of async calls in flight and not detached
 *
 * Since: 0.1
 */
guint
jarvis_bus_get_n_invocations (JarvisBus *bus)
{
  g_return_val_if_fail (JARVIS_IS_BUS (bus), 0);

  return bus->n_invocations;
}

/* Emits from other threads after close never reach the bus thread, so the
 * queue counts them, and they are added here as accepted and dropped late
 * like emits after close from the bus thread. */
static guint64
read_counter (JarvisBus     *bus,
              JarvisCounter  counter)
{
  if (counter == JARVIS_COUNTER_EVENTS || counter == JARVIS_COUNTER_LATE_EVENTS_DROPPED)
    return bus->counters[counter] + _jarvis_queue_get_n_rejected (bus->queue);

  return bus->counters[counter];
}

/**
 * jarvis_bus_get_counter:
 * @bus: a bus
 * @counter: a counter
 *
 * Returns: the counter's total since the bus was created
 *
 * Since: 0.1
 */
guint64
jarvis_bus_get_counter (JarvisBus     *bus,
                        JarvisCounter  counter)
{
  g_return_val_if_fail (JARVIS_IS_BUS (bus), 0);
  g_return_val_if_fail ((guint) counter < JARVIS_N_COUNTERS, 0);

  return read_counter (bus, counter);
}

/**
 * jarvis_bus_dup_stats:
 * @bus: a bus
 *
 * Returns: (transfer full): an `a{st}` of every counter, keyed by
 *   jarvis_counter_get_name()
 *
 * Since: 0.1
 */
GVariant *
jarvis_bus_dup_stats (JarvisBus *bus)
{
  GVariantBuilder builder;

  g_return_val_if_fail (JARVIS_IS_BUS (bus), NULL);

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a{st}"));
  for (guint i = 0; i < JARVIS_N_COUNTERS; i++)
    g_variant_builder_add (&builder, "{st}", jarvis_counter_get_name (i), read_counter (bus, i));

  return g_variant_ref_sink (g_variant_builder_end (&builder));
}

/* Closing */

static void
return_close_tasks (JarvisBus *bus)
{
  g_autoptr(GPtrArray) tasks = g_steal_pointer (&bus->close_tasks);

  bus->close_tasks = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < tasks->len; i++)
    g_task_return_boolean (g_ptr_array_index (tasks, i), TRUE);
}

/* Stops the bus's sources. Detached calls that return later are freed by
 * their own thread. */
static void
stop_sources (JarvisBus *bus)
{
  guint dropped = _jarvis_queue_close (bus->queue);

  bus->counters[JARVIS_COUNTER_LATE_EVENTS_DROPPED] += dropped;
  _jarvis_bus_clear_source (&bus->deferred_source);
  _jarvis_bus_clear_source (&bus->close_source);
  _jarvis_timer_set_stop (bus->flush_timers);
  _jarvis_completion_shutdown (bus->completion);
}

static void
finish_close (JarvisBus *bus)
{
  g_assert (bus->plugins->len == 0);

  bus->close_stage = CLOSE_DONE;
  stop_sources (bus);

  _jarvis_bus_debug (bus, NULL, "bus_closed requests=%" G_GUINT64_FORMAT " tasks_created=%" G_GUINT64_FORMAT,
                     bus->counters[JARVIS_COUNTER_REQUESTS], bus->counters[JARVIS_COUNTER_TASKS_CREATED]);

  return_close_tasks (bus);
}

static void
unload_all (JarvisBus *bus)
{
  g_autoptr(GPtrArray) plugins = g_ptr_array_copy (bus->plugins, NULL, NULL);

  bus->close_stage = CLOSE_UNLOADING;
  bus->n_unloading = 1;

  /* Reverse order: later plugins may use what earlier ones set up. */
  for (guint i = plugins->len; i > 0; i--)
    {
      JarvisPlugin *plugin = g_ptr_array_index (plugins, i - 1);

      if (!plugin->unloading)
        {
          bus->n_unloading++;
          start_unload (plugin, NULL);
        }
    }

  /* Unloads started by jarvis_bus_unload_plugin() before close hold their
   * own task; close waits for them too. */
  for (guint i = 0; i < plugins->len; i++)
    {
      JarvisPlugin *plugin = g_ptr_array_index (plugins, i);

      if (plugin->unloading && plugin->unload_task != NULL)
        bus->n_unloading++;
    }

  if (--bus->n_unloading == 0)
    finish_close (bus);
}

/* Moves close on once every request completed and every call outside a
 * request returned or was detached. */
void
_jarvis_bus_check_close (JarvisBus *bus)
{
  if (bus->close_stage != CLOSE_DRAINING)
    return;

  /* Calls made for complete events during close get their own deadline. */
  if (bus->scope.invocations.length > 0 && bus->close_source == NULL)
    bus->close_source = _jarvis_bus_add_timer (bus, "jarvis close deadline",
                                               g_get_monotonic_time () + (gint64) bus->drain_timeout_ms * 1000,
                                               close_deadline_expired, bus);

  if (g_hash_table_size (bus->requests) > 0 || bus->scope.invocations.length > 0)
    return;

  _jarvis_bus_clear_source (&bus->close_source);
  unload_all (bus);
}

static gboolean
close_deadline_expired (gpointer user_data)
{
  JarvisBus *bus = user_data;

  _jarvis_bus_clear_source (&bus->close_source);

  _jarvis_bus_enter (bus);
  _jarvis_bus_detach_scope (bus, &bus->scope, "");
  _jarvis_bus_check_close (bus);
  _jarvis_bus_leave (bus);

  return G_SOURCE_REMOVE;
}

/**
 * jarvis_bus_close_async:
 * @bus: a bus, in its thread
 * @cancellable: (nullable): not used yet; a close always runs to its end
 * @callback: called once the bus is closed
 * @user_data: data for @callback
 *
 * Closes the bus: cancels and cleans up every request, waits until each
 * completed, then unloads every plugin as jarvis_bus_unload_plugin() does.
 * When @callback runs, no source of the bus is attached and no request or
 * invocation is alive. Later emits are dropped. @callback runs in the
 * bus's context, whichever context is the thread default.
 *
 * Since: 0.1
 */
void
jarvis_bus_close_async (JarvisBus           *bus,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (JARVIS_IS_BUS (bus));
  g_return_if_fail (in_owner_thread (bus));

  task = new_bus_task (bus, cancellable, callback, user_data);
  g_task_set_source_tag (task, jarvis_bus_close_async);

  if (bus->close_stage == CLOSE_DONE)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }

  g_ptr_array_add (bus->close_tasks, g_steal_pointer (&task));
  if (bus->close_stage != CLOSE_NONE)
    return;

  bus->close_stage = CLOSE_DRAINING;
  _jarvis_bus_debug (bus, NULL, "bus_closing requests=%u", g_hash_table_size (bus->requests));

  _jarvis_bus_enter (bus);

  _jarvis_request_drop_pending (bus);
  cancel_requests (bus);

  bus->reentry++;
  for (GList *link = bus->scope.invocations.head; link != NULL; link = link->next)
    _jarvis_invocation_cancel (link->data);
  bus->reentry--;

  _jarvis_bus_check_close (bus);
  _jarvis_bus_leave (bus);
}

/**
 * jarvis_bus_close_finish:
 * @bus: a bus
 * @result: the result passed to the callback
 * @error: return location for an error
 *
 * Returns: %TRUE once the bus is closed
 *
 * Since: 0.1
 */
gboolean
jarvis_bus_close_finish (JarvisBus     *bus,
                         GAsyncResult  *result,
                         GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, bus), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == jarvis_bus_close_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * jarvis_bus_is_closed:
 * @bus: a bus
 *
 * Returns: %TRUE once a close has finished
 *
 * Since: 0.1
 */
gboolean
jarvis_bus_is_closed (JarvisBus *bus)
{
  g_return_val_if_fail (JARVIS_IS_BUS (bus), FALSE);

  return bus->close_stage == CLOSE_DONE;
}

/* Disposal without close: nothing more is dispatched. Calls in flight are
 * detached, and plugins get their shutdown hook. A plugin with detached
 * calls keeps its module mapped. */
static void
detach_all (JarvisBus *bus)
{
  g_autoptr(GPtrArray) requests = list_requests (bus);

  for (guint i = 0; i < requests->len; i++)
    {
      JarvisRequest *request = g_ptr_array_index (requests, i);

      _jarvis_bus_detach_scope (bus, &request->scope, request->request_id);
    }
  _jarvis_bus_detach_scope (bus, &bus->scope, "");
}

static void
unlink_all (JarvisBus   *bus,
            JarvisScope *scope)
{
  while (scope->invocations.length > 0)
    unlink_invocation (bus, scope->invocations.head->data);
}

static void
release_unclosed (JarvisBus *bus)
{
  g_autoptr(GPtrArray) requests = list_requests (bus);

  _jarvis_log_warning (NULL, NULL,
                       "bus_disposed_unclosed requests=%u invocations=%u: the bus was "
                       "released without jarvis_bus_close_async(); in-flight calls are detached",
                       requests->len, bus->n_invocations);

  detach_all (bus);

  /* What is still linked returned but was not processed yet; unlink it, and
   * the completion shutdown frees it. */
  for (guint i = 0; i < requests->len; i++)
    unlink_all (bus, &((JarvisRequest *) g_ptr_array_index (requests, i))->scope);
  unlink_all (bus, &bus->scope);
  stop_sources (bus);

  for (guint i = 0; i < requests->len; i++)
    {
      JarvisRequest *request = g_ptr_array_index (requests, i);

      g_hash_table_steal (bus->requests, request->request_id);
      request->session = NULL;
      _jarvis_request_free (request);
    }

  while (bus->plugins->len > 0)
    {
      JarvisPlugin *plugin = g_ptr_array_index (bus->plugins, bus->plugins->len - 1);

      _jarvis_bus_clear_source (&plugin->unload_source);

      if (plugin->info->shutdown != NULL)
        plugin->info->shutdown (plugin);
      remove_plugin_subscriptions (bus, plugin);
      g_ptr_array_remove_index (bus->plugins, bus->plugins->len - 1);

      if (plugin->unload_task != NULL)
        g_task_return_new_error (g_steal_pointer (&plugin->unload_task),
                                 JARVIS_BUS_ERROR, JARVIS_BUS_ERROR_CLOSED,
                                 "Plugin %s was unloaded because its bus was released", plugin->name);
      _jarvis_plugin_free (plugin);
    }
}

static void
jarvis_bus_dispose (GObject *object)
{
  JarvisBus *bus = JARVIS_BUS (object);

  if (bus->close_stage != CLOSE_DONE && bus->completion != NULL)
    {
      bus->close_stage = CLOSE_DONE;
      release_unclosed (bus);
    }

  G_OBJECT_CLASS (jarvis_bus_parent_class)->dispose (object);
}

static void
jarvis_bus_finalize (GObject *object)
{
  JarvisBus *bus = JARVIS_BUS (object);

  g_assert (bus->plugins->len == 0);
  g_assert (g_hash_table_size (bus->requests) == 0);

  for (guint i = 0; i < bus->subscriptions->len; i++)
    {
      JarvisSubscription *subscription = g_ptr_array_index (bus->subscriptions, i);

      if (subscription->destroy != NULL)
        subscription->destroy (subscription->user_data);
      g_free (subscription);
    }
  g_ptr_array_unref (bus->subscriptions);
  g_ptr_array_unref (bus->plugins);

  g_queue_clear_full (&bus->pending, (GDestroyNotify) jarvis_event_unref);
  g_queue_clear (&bus->deferred);
  g_hash_table_unref (bus->requests);
  g_hash_table_unref (bus->sessions);
  g_hash_table_unref (bus->finished);
  g_queue_clear_full (&bus->finished_order, g_free);
  g_clear_pointer (&bus->close_tasks, g_ptr_array_unref);

  _jarvis_queue_free (bus->queue);
  _jarvis_timer_set_free (bus->flush_timers);
  _jarvis_completion_unref (bus->completion);
  g_clear_pointer (&bus->config, g_key_file_unref);
  g_main_context_unref (bus->context);

  G_OBJECT_CLASS (jarvis_bus_parent_class)->finalize (object);
}

static void
jarvis_bus_class_init (JarvisBusClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  _jarvis_event_init_types ();
  _jarvis_request_init_types ();

  object_class->dispose = jarvis_bus_dispose;
  object_class->finalize = jarvis_bus_finalize;

  /**
   * JarvisBus::request-started:
   * @bus: the bus
   * @request_id: the request
   * @session_id: its session
   *
   * Emitted when a request opens, before its start is dispatched.
   *
   * Since: 0.1
   */
  signals[SIGNAL_REQUEST_STARTED] =
    g_signal_new ("request-started", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2,
                  G_TYPE_STRING | G_SIGNAL_TYPE_STATIC_SCOPE,
                  G_TYPE_STRING | G_SIGNAL_TYPE_STATIC_SCOPE);

  /**
   * JarvisBus::request-completed:
   * @bus: the bus
   * @complete: the request's %JARVIS_EVENT_STREAM_COMPLETE event
   *
   * Emitted once per request, after the handlers of its complete ran.
   *
   * Since: 0.1
   */
  signals[SIGNAL_REQUEST_COMPLETED] =
    g_signal_new ("request-completed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1,
                  JARVIS_TYPE_EVENT | G_SIGNAL_TYPE_STATIC_SCOPE);

  /**
   * JarvisBus::drained:
   * @bus: the bus
   *
   * Emitted while the bus is open, each time the last active request has
   * completed and the last handler call has returned, so that nothing is
   * in flight. A program that has fed all its input can close the bus
   * from here without cancelling any handler call. Handlers that never
   * return keep it from being emitted, so wait for it with a deadline.
   *
   * Since: 0.1
   */
  signals[SIGNAL_DRAINED] =
    g_signal_new ("drained", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}
