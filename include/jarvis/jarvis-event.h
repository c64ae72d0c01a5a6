#pragma once

#if !defined(JARVIS_INSIDE) && !defined(JARVIS_COMPILATION)
#error "Only <jarvis/jarvis.h> can be included directly."
#endif

#include <glib-object.h>
#include <jarvis/jarvis-macros.h>

G_BEGIN_DECLS

/* Event types with a meaning to the bus. Any other type is passed through
 * to the handlers that subscribe to it. */
#define JARVIS_EVENT_STREAM_START     "agent.stream.start"
#define JARVIS_EVENT_STREAM_DELTA     "agent.stream.delta"
#define JARVIS_EVENT_STREAM_END       "agent.stream.end"
#define JARVIS_EVENT_STREAM_CANCEL    "agent.stream.cancel"
#define JARVIS_EVENT_STREAM_ERROR     "agent.stream.error"

/* Event types that only the bus emits. */
#define JARVIS_EVENT_STREAM_FLUSH     "agent.stream.flush"
#define JARVIS_EVENT_STREAM_COMPLETE  "agent.stream.complete"

/* Side channels of a model stream. They belong to a request but never become
 * part of its answer text. */
#define JARVIS_EVENT_STREAM_REASONING "agent.stream.reasoning"
#define JARVIS_EVENT_STREAM_TOOL_CALL "agent.stream.tool_call"
#define JARVIS_EVENT_STREAM_USAGE     "agent.stream.usage"

/**
 * JARVIS_SESSION_DEFAULT:
 *
 * The session of events that do not name one.
 *
 * Since: 0.1
 */
#define JARVIS_SESSION_DEFAULT "default"

/**
 * JarvisEvent:
 *
 * One event on the bus: a type, the request it belongs to, and optional
 * session, trace, text and payload.
 *
 * A #JarvisEvent is reference counted. It is mutable only until it is
 * emitted. After that it is sealed, and a setter call is a programmer error
 * that logs a critical and changes nothing. Sealed events may be read and
 * ref'd from any thread.
 *
 * The payload of an %JARVIS_EVENT_STREAM_COMPLETE event is an `a{sv}`. Its
 * key `outcome` (s) is "completed", "cancelled", "superseded" or "failed".
 * Its counters (all t) are `events`, `tokens`, `bytes_in`, `bytes_flushed`, `flushes`,
 * `tasks_created`, `tasks_completed`, `tasks_failed`, `tasks_cancelled`,
 * `tasks_detached`, `late_events_dropped` and `utf8_replacements`. A
 * failed request also has `error` (s).
 *
 * A stream with several choices (`n > 1`) keeps one text buffer per choice
 * inside its request. Deltas and flushes carry the choice index, which is 0
 * for single-choice streams.
 *
 * Since: 0.1
 */
typedef struct _JarvisEvent JarvisEvent;

#define JARVIS_TYPE_EVENT (jarvis_event_get_type ())

JARVIS_API
GType jarvis_event_get_type (void) G_GNUC_CONST;

JARVIS_API G_GNUC_WARN_UNUSED_RESULT
JarvisEvent *jarvis_event_new (const char *event_type,
                               const char *request_id);

JARVIS_API
JarvisEvent *jarvis_event_ref (JarvisEvent *event);

JARVIS_API
void jarvis_event_unref (JarvisEvent *event);

JARVIS_API
void jarvis_event_set_text (JarvisEvent *event,
                            const char  *text,
                            gssize       length);

JARVIS_API
void jarvis_event_set_session_id (JarvisEvent *event,
                                  const char  *session_id);

JARVIS_API
void jarvis_event_set_trace_id (JarvisEvent *event,
                                const char  *trace_id);

JARVIS_API
void jarvis_event_set_payload (JarvisEvent *event,
                               GVariant    *payload);

JARVIS_API
void jarvis_event_set_choice (JarvisEvent *event,
                              guint        choice);

JARVIS_API
const char *jarvis_event_get_event_type (JarvisEvent *event);

JARVIS_API
const char *jarvis_event_get_request_id (JarvisEvent *event);

JARVIS_API
const char *jarvis_event_get_session_id (JarvisEvent *event);

JARVIS_API
const char *jarvis_event_get_trace_id (JarvisEvent *event);

JARVIS_API
const char *jarvis_event_get_text (JarvisEvent *event,
                                   gsize       *length);

JARVIS_API
GVariant *jarvis_event_get_payload (JarvisEvent *event);

JARVIS_API
guint jarvis_event_get_token_count (JarvisEvent *event);

JARVIS_API
guint jarvis_event_get_choice (JarvisEvent *event);

JARVIS_API
gboolean jarvis_event_has_type (JarvisEvent *event,
                                const char  *event_type);

JARVIS_API
const char *jarvis_event_get_outcome (JarvisEvent *event);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (JarvisEvent, jarvis_event_unref)

G_END_DECLS
