#pragma once

#if !defined(JARVIS_INSIDE) && !defined(JARVIS_COMPILATION)
#error "Only <jarvis/jarvis.h> can be included directly."
#endif

#include <gio/gio.h>
#include <jarvis/jarvis-macros.h>
#include <jarvis/jarvis-event.h>

G_BEGIN_DECLS

/**
 * JarvisInvocation:
 *
 * One call of an asynchronous handler.
 *
 * The bus creates an invocation for every call of a handler subscribed with
 * jarvis_plugin_subscribe_async(), files it under the event's request id,
 * and passes it to the handler. The handler owns the duty to return it
 * exactly once, with jarvis_invocation_return() or
 * jarvis_invocation_return_error(), from any thread. The pointer stays valid
 * until that return, and the handler must not touch it afterwards.
 *
 * A second return that reaches the bus before the first one was processed
 * is reported as a critical and ignored. Once the bus has processed a
 * return (in its context, soon after), the invocation is freed. A return
 * after that is a use after free, which the bus cannot detect.
 *
 * When the request is cancelled, superseded or closed, the invocation's
 * #GCancellable is cancelled. The handler must then stop its work and
 * return (with an error or without); the request's completion waits for
 * that return up to the bus's drain deadline. An invocation that has not
 * returned by then is detached: it is counted, a warning names its plugin,
 * and its late return is accepted and ignored.
 *
 * Since: 0.1
 */
typedef struct _JarvisInvocation JarvisInvocation;

JARVIS_API
GCancellable *jarvis_invocation_get_cancellable (JarvisInvocation *invocation);

JARVIS_API
gboolean jarvis_invocation_is_cancelled (JarvisInvocation *invocation);

JARVIS_API
JarvisEvent *jarvis_invocation_get_event (JarvisInvocation *invocation);

JARVIS_API
const char *jarvis_invocation_get_plugin_name (JarvisInvocation *invocation);

JARVIS_API
void jarvis_invocation_return (JarvisInvocation *invocation);

JARVIS_API
void jarvis_invocation_return_error (JarvisInvocation *invocation,
                                     GError           *error);

G_END_DECLS
