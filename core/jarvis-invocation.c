#include "config.h"

#include "jarvis-alloc-private.h"
#include "jarvis-invocation-private.h"
#include "jarvis-log-private.h"
#include "jarvis-queue-private.h"
#include "jarvis-tsan-private.h"

/* The state shared by a bus and its invocations. It is reference counted
 * separately from the bus because a detached invocation may return after
 * the bus was finalized: each detached invocation holds one reference. */
struct _JarvisCompletion
{
  gatomicrefcount ref_count;
  GMutex lock;

  /* protected by lock */
  JarvisInvocation *head;       /* returned, not yet processed, in order */
  JarvisInvocation *tail;
  GSource *source;              /* owned; NULL once the bus stopped processing */

  JarvisCompletionFunc func;
  gpointer user_data;
};

static gboolean completion_dispatch (gpointer user_data);

JarvisCompletion *
_jarvis_completion_new (GMainContext         *context,
                        JarvisCompletionFunc  func,
                        gpointer              user_data)
{
  JarvisCompletion *completion;

  completion = g_new0 (JarvisCompletion, 1);
  g_atomic_ref_count_init (&completion->ref_count);
  g_mutex_init (&completion->lock);
  completion->func = func;
  completion->user_data = user_data;

  completion->source = _jarvis_wake_source_new ("jarvis invocation returns",
                                                completion_dispatch, completion);
  g_source_attach (completion->source, context);

  return completion;
}

static JarvisCompletion *
completion_ref (JarvisCompletion *completion)
{
  g_atomic_ref_count_inc (&completion->ref_count);
  return completion;
}

void
_jarvis_completion_unref (JarvisCompletion *completion)
{
  if (completion == NULL)
    return;

  if (!g_atomic_ref_count_dec (&completion->ref_count))
    return;

  g_assert (completion->head == NULL);
  g_assert (completion->source == NULL);

  g_mutex_clear (&completion->lock);
  g_free (completion);
}

static JarvisInvocation *
completion_take_returned (JarvisCompletion *completion)
{
  JarvisInvocation *head;

  g_mutex_lock (&completion->lock);
  _jarvis_tsan_acquire (&completion->lock);
  head = completion->head;
  completion->head = NULL;
  completion->tail = NULL;
  _jarvis_tsan_release (&completion->lock);
  g_mutex_unlock (&completion->lock);

  return head;
}

/* Frees a detached invocation whose return came after the bus gave up on
 * it. Its plugin may be gone, so only the owned name is used. */
static void
free_late_return (JarvisInvocation *invocation)
{
  JarvisCompletion *completion = invocation->completion;

  g_debug ("callback_task_late_return request_id=%s plugin=%s",
           jarvis_event_get_request_id (invocation->event), invocation->plugin_name);

  _jarvis_invocation_free (invocation);
  _jarvis_completion_unref (completion);
}

/* Processes every invocation returned since the last wake-up, in return
 * order, so that many returns cost one main-loop dispatch. */
static gboolean
completion_dispatch (gpointer user_data)
{
  JarvisCompletion *completion = user_data;
  JarvisInvocation *invocation;

  invocation = completion_take_returned (completion);

  while (invocation != NULL)
    {
      JarvisInvocation *next = invocation->next_returned;

      if (g_atomic_int_get (&invocation->flags) & INVOCATION_DETACHED)
        free_late_return (invocation);
      else
        completion->func (invocation, completion->user_data);

      invocation = next;
    }

  return G_SOURCE_CONTINUE;
}

/* Stops processing returns: the bus is closed or finalized. Every
 * invocation still in flight must have been detached. Returns already
 * queued are freed here; later ones are freed by the returning thread. */
void
_jarvis_completion_shutdown (JarvisCompletion *completion)
{
  JarvisInvocation *invocation;
  GSource *source;

  g_mutex_lock (&completion->lock);
  _jarvis_tsan_acquire (&completion->lock);
  source = g_steal_pointer (&completion->source);
  _jarvis_tsan_release (&completion->lock);
  g_mutex_unlock (&completion->lock);

  if (source != NULL)
    {
      g_source_destroy (source);
      g_source_unref (source);
    }

  invocation = completion_take_returned (completion);
  while (invocation != NULL)
    {
      JarvisInvocation *next = invocation->next_returned;

      /* A return that raced with the bus's disposal was never detached
       * and holds no completion reference. */
      if (g_atomic_int_get (&invocation->flags) & INVOCATION_DETACHED)
        free_late_return (invocation);
      else
        _jarvis_invocation_free (invocation);
      invocation = next;
    }
}

JarvisInvocation *
_jarvis_invocation_new (JarvisCompletion *completion,
                        JarvisEvent      *event,
                        JarvisPlugin     *plugin,
                        char             *plugin_name,
                        JarvisScope      *scope)
{
  JarvisInvocation *invocation;

  invocation = _jarvis_new0 (JarvisInvocation);
  invocation->completion = completion;
  invocation->event = jarvis_event_ref (event);
  invocation->plugin = plugin;
  invocation->plugin_name = plugin_name;
  invocation->scope = scope;
  invocation->scope_link.data = invocation;
  invocation->plugin_link.data = invocation;

  return invocation;
}

void
_jarvis_invocation_free (JarvisInvocation *invocation)
{
  if (g_atomic_int_get (&invocation->flags) & INVOCATION_DETACHED)
    g_ref_string_release (invocation->plugin_name);

  jarvis_event_unref (invocation->event);
  g_clear_object (&invocation->cancellable);
  g_clear_error (&invocation->error);
  g_free (invocation);
}

/* Cancels the invocation's cancellable, or, when the handler has not
 * requested one yet, records the cancellation so that the cancellable starts out
 * cancelled. The cancel runs outside the lock because `cancelled` handlers
 * may return the invocation. */
void
_jarvis_invocation_cancel (JarvisInvocation *invocation)
{
  JarvisCompletion *completion = invocation->completion;
  GCancellable *cancellable = NULL;

  g_mutex_lock (&completion->lock);
  _jarvis_tsan_acquire (&completion->lock);
  if (!(g_atomic_int_or (&invocation->flags, INVOCATION_CANCELLED) & INVOCATION_CANCELLED) &&
      invocation->cancellable != NULL)
    cancellable = g_object_ref (invocation->cancellable);
  _jarvis_tsan_release (&completion->lock);
  g_mutex_unlock (&completion->lock);

  if (cancellable != NULL)
    {
      g_cancellable_cancel (cancellable);
      g_object_unref (cancellable);
    }
}

/* Gives up on an invocation that has not returned. Returns FALSE when it
 * returned in the meantime: its return is queued and will be processed
 * normally. The caller unlinks a detached invocation. A detached invocation owns a completion reference and its
 * plugin's name, because both may outlive the bus. */
gboolean
_jarvis_invocation_detach (JarvisInvocation *invocation)
{
  JarvisCompletion *completion = invocation->completion;
  gboolean detached = FALSE;

  g_mutex_lock (&completion->lock);
  _jarvis_tsan_acquire (&completion->lock);
  if (!(g_atomic_int_get (&invocation->flags) & INVOCATION_RETURNED))
    {
      invocation->plugin_name = g_ref_string_acquire (invocation->plugin_name);
      completion_ref (completion);
      g_atomic_int_or (&invocation->flags, INVOCATION_DETACHED);
      detached = TRUE;
    }
  _jarvis_tsan_release (&completion->lock);
  g_mutex_unlock (&completion->lock);

  return detached;
}

static void
complete_return (JarvisInvocation *invocation)
{
  JarvisCompletion *completion = invocation->completion;
  gboolean was_empty;

  g_mutex_lock (&completion->lock);
  _jarvis_tsan_acquire (&completion->lock);

  if (completion->source == NULL)
    {
      /* The bus is gone; only detached invocations can get here. */
      _jarvis_tsan_release (&completion->lock);
      g_mutex_unlock (&completion->lock);
      _jarvis_invocation_free (invocation);
      _jarvis_completion_unref (completion);
      return;
    }

  was_empty = completion->head == NULL;
  if (was_empty)
    completion->head = invocation;
  else
    completion->tail->next_returned = invocation;
  completion->tail = invocation;

  if (was_empty)
    _jarvis_wake_source_wake (completion->source);

  _jarvis_tsan_release (&completion->lock);
  g_mutex_unlock (&completion->lock);
}

static gboolean
mark_returned (JarvisInvocation *invocation,
               const char       *function)
{
  if (!(g_atomic_int_or (&invocation->flags, INVOCATION_RETURNED) & INVOCATION_RETURNED))
    return TRUE;

  g_critical ("%s: the invocation of plugin %s for event %s of request %s "
              "was already returned; each invocation is returned exactly once",
              function, invocation->plugin_name,
              jarvis_event_get_event_type (invocation->event),
              jarvis_event_get_request_id (invocation->event));
  return FALSE;
}

/**
 * jarvis_invocation_get_cancellable:
 * @invocation: an invocation that was not returned yet
 *
 * Gets the cancellable of this call. It is cancelled when the call's
 * request is cancelled, superseded, failed or closed, or when the plugin is
 * unloaded. The first call creates it, already cancelled if the
 * cancellation came earlier. Safe from any thread.
 *
 * Returns: (transfer none): the cancellable, valid until the invocation is
 *   returned
 *
 * Since: 0.1
 */
GCancellable *
jarvis_invocation_get_cancellable (JarvisInvocation *invocation)
{
  JarvisCompletion *completion;
  GCancellable *cancellable;

  g_return_val_if_fail (invocation != NULL, NULL);

  completion = invocation->completion;

  g_mutex_lock (&completion->lock);
  _jarvis_tsan_acquire (&completion->lock);
  if (invocation->cancellable == NULL)
    {
      invocation->cancellable = g_cancellable_new ();

      /* Nothing is connected to it yet, so cancelling under the lock runs
       * no callbacks. */
      if (g_atomic_int_get (&invocation->flags) & INVOCATION_CANCELLED)
        g_cancellable_cancel (invocation->cancellable);
    }
  cancellable = invocation->cancellable;
  _jarvis_tsan_release (&completion->lock);
  g_mutex_unlock (&completion->lock);

  return cancellable;
}

/**
 * jarvis_invocation_is_cancelled:
 * @invocation: an invocation that was not returned yet
 *
 * Checks whether this call was cancelled, without creating its
 * cancellable. Safe from any thread.
 *
 * Returns: %TRUE once the call was cancelled
 *
 * Since: 0.1
 */
gboolean
jarvis_invocation_is_cancelled (JarvisInvocation *invocation)
{
  g_return_val_if_fail (invocation != NULL, FALSE);

  return (g_atomic_int_get (&invocation->flags) & INVOCATION_CANCELLED) != 0;
}

/**
 * jarvis_invocation_get_event:
 * @invocation: an invocation that was not returned yet
 *
 * Returns: (transfer none): the event this call handles
 *
 * Since: 0.1
 */
JarvisEvent *
jarvis_invocation_get_event (JarvisInvocation *invocation)
{
  g_return_val_if_fail (invocation != NULL, NULL);

  return invocation->event;
}

/**
 * jarvis_invocation_get_plugin_name:
 * @invocation: an invocation that was not returned yet
 *
 * Returns: (transfer none): the name of the plugin whose handler was called
 *
 * Since: 0.1
 */
const char *
jarvis_invocation_get_plugin_name (JarvisInvocation *invocation)
{
  g_return_val_if_fail (invocation != NULL, NULL);

  return invocation->plugin_name;
}

/**
 * jarvis_invocation_return:
 * @invocation: (transfer full): an invocation that was not returned yet
 *
 * Ends the call successfully, or as cancelled when its cancellable fired.
 * Safe from any thread. The bus processes the return in its own thread;
 * @invocation must not be used after this call.
 *
 * Since: 0.1
 */
void
jarvis_invocation_return (JarvisInvocation *invocation)
{
  g_return_if_fail (invocation != NULL);

  if (!mark_returned (invocation, G_STRFUNC))
    return;

  complete_return (invocation);
}

/**
 * jarvis_invocation_return_error:
 * @invocation: (transfer full): an invocation that was not returned yet
 * @error: (transfer full): what went wrong
 *
 * Ends the call with an error. Return %G_IO_ERROR_CANCELLED when the call
 * stopped because it was cancelled; any other error is logged as a warning
 * naming the plugin and request, and counted. Safe from any thread;
 * @invocation must not be used after this call.
 *
 * Since: 0.1
 */
void
jarvis_invocation_return_error (JarvisInvocation *invocation,
                                GError           *error)
{
  g_return_if_fail (invocation != NULL);
  g_return_if_fail (error != NULL);

  if (!mark_returned (invocation, G_STRFUNC))
    {
      g_error_free (error);
      return;
    }

  invocation->error = error;
  complete_return (invocation);
}
