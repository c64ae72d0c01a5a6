#include "config.h"

#include <string.h>

#include "jarvis-event-private.h"

struct _JarvisEvent
{
  gatomicrefcount ref_count;
  gint sealed;                  /* atomic; set once by the bus */

  const char *event_type;       /* interned, or in storage when type_interned is FALSE */
  gboolean type_interned;
  char *request_id;             /* in storage */
  char *session_id;             /* owned or in storage, nullable */
  char *trace_id;               /* owned or in storage, nullable */
  char *text;                   /* owned or in storage, nullable, NUL-terminated */
  gsize text_length;
  GVariant *payload;            /* owned, a{sv}, nullable; atomic once sealed */
  guint token_count;
  guint choice;
  gboolean counted;             /* bus thread only */
  const char *origin;           /* interned plugin name, nullable */

  /* A payload built on its first read, which most complete events never
   * get. See _jarvis_event_set_payload_builder(). */
  JarvisPayloadBuilder payload_builder;
  gpointer builder_data;        /* owned through builder_data_free */
  GDestroyNotify builder_data_free;
  const char *outcome;          /* static string, nullable */

  /* The strings live in the same block as the event when they fit, so
   * that a typical delta costs one allocation instead of four. The
   * request id comes first; the setters take the rest in order. */
  gsize storage_size;
  gsize storage_used;
  char storage[];
};

/* Room kept after the request id for the session id and a token's text.
 * Model tokens are rarely longer than a dozen bytes. */
#define EVENT_SPARE_STORAGE 48

G_DEFINE_BOXED_TYPE (JarvisEvent, jarvis_event, jarvis_event_ref, jarvis_event_unref)

#define STREAM_PREFIX "agent.stream."

/* The suffixes of the stream event types, interned once. Events are
 * created at token rate, and g_intern_string() takes a global lock. */
static const char * const stream_suffixes[] = {
  "delta", "flush", "start", "end", "complete", "cancel", "error", "reasoning", "tool_call", "usage",
};
static const char *stream_types[G_N_ELEMENTS (stream_suffixes)];

/* Indices into stream_suffixes of the types the bus itself looks at. */
enum
{
  STREAM_FLUSH = 1,
  STREAM_COMPLETE = 4,
};

/* Runs once. The bus also calls it from its class initialisation, so that
 * in practice it finishes before any producer thread exists. */
void
_jarvis_event_init_types (void)
{
  static gsize initialised = 0;

  if (!g_once_init_enter (&initialised))
    return;

  for (gsize i = 0; i < G_N_ELEMENTS (stream_suffixes); i++)
    {
      g_autofree char *type = g_strconcat (STREAM_PREFIX, stream_suffixes[i], NULL);

      stream_types[i] = g_intern_string (type);
    }

  g_once_init_leave (&initialised, 1);
}

/* Returns the interned copy of @event_type when one exists, or NULL. The
 * stream types are interned at start-up, and a subscription interns the
 * type it names. Any other type is not interned here: an interned string
 * lives as long as the process, and input may carry any number of
 * distinct types. */
static const char *
lookup_event_type (const char *event_type)
{
  GQuark quark;

  _jarvis_event_init_types ();

  if (strncmp (event_type, STREAM_PREFIX, strlen (STREAM_PREFIX)) == 0)
    {
      const char *suffix = event_type + strlen (STREAM_PREFIX);

      for (gsize i = 0; i < G_N_ELEMENTS (stream_suffixes); i++)
        if (strcmp (suffix, stream_suffixes[i]) == 0)
          return stream_types[i];
    }

  quark = g_quark_try_string (event_type);

  return quark != 0 ? g_quark_to_string (quark) : NULL;
}

/* Allocates an event whose type is @interned_type, or a copy of
 * @event_type when @interned_type is NULL. */
static JarvisEvent *
event_alloc (const char *interned_type,
             const char *event_type,
             const char *request_id,
             gsize       spare)
{
  gsize id_size = strlen (request_id) + 1;
  gsize type_size = interned_type == NULL ? strlen (event_type) + 1 : 0;
  JarvisEvent *event;

  /* Not g_malloc0(): glibc's calloc skips the per-thread cache that
   * makes malloc and free of small blocks cheap. */
  event = g_malloc (sizeof (JarvisEvent) + id_size + type_size + spare);
  memset (event, 0, sizeof (JarvisEvent));
  g_atomic_ref_count_init (&event->ref_count);
  event->storage_size = id_size + type_size + spare;
  event->storage_used = id_size + type_size;
  event->request_id = memcpy (event->storage, request_id, id_size);
  event->type_interned = interned_type != NULL;
  event->event_type = interned_type != NULL ? interned_type : memcpy (event->storage + id_size, event_type, type_size);

  return event;
}

static gboolean
is_in_storage (JarvisEvent *event,
               const char  *string)
{
  return string >= event->storage && string < event->storage + event->storage_size;
}

static void
release_string (JarvisEvent  *event,
                char        **field)
{
  if (*field != NULL && !is_in_storage (event, *field))
    g_free (*field);
  *field = NULL;
}

/* Copies @length bytes of @string and a NUL into the event's own block
 * when they fit, else into a new allocation. Space given out is never
 * reused, so that a replaced string costs an allocation at worst. */
static char *
store_string (JarvisEvent *event,
              const char  *string,
              gsize        length)
{
  char *copy;

  if (event->storage_size - event->storage_used > length)
    {
      copy = event->storage + event->storage_used;
      event->storage_used += length + 1;
    }
  else
    {
      copy = g_malloc (length + 1);
    }

  memcpy (copy, string, length);
  copy[length] = '\0';

  return copy;
}

/* The copy is made before the old string is released, because @string may
 * point into it. */
static void
set_string (JarvisEvent  *event,
            char        **field,
            const char   *string)
{
  char *copy = string != NULL ? store_string (event, string, strlen (string)) : NULL;

  release_string (event, field);
  *field = copy;
}

/**
 * jarvis_event_new:
 * @event_type: the event type, such as %JARVIS_EVENT_STREAM_DELTA
 * @request_id: the request the event belongs to
 *
 * Creates an event. Set its optional fields, then hand it to
 * jarvis_bus_emit() or jarvis_plugin_emit(), which seal it.
 *
 * Returns: (transfer full): a new event
 *
 * Since: 0.1
 */
JarvisEvent *
jarvis_event_new (const char *event_type,
                  const char *request_id)
{
  g_return_val_if_fail (event_type != NULL && *event_type != '\0', NULL);
  g_return_val_if_fail (request_id != NULL, NULL);

  return event_alloc (lookup_event_type (event_type), event_type, request_id, EVENT_SPARE_STORAGE);
}

/**
 * jarvis_event_ref:
 * @event: an event
 *
 * Takes a reference. Safe from any thread.
 *
 * Returns: (transfer full): @event
 *
 * Since: 0.1
 */
JarvisEvent *
jarvis_event_ref (JarvisEvent *event)
{
  g_return_val_if_fail (event != NULL, NULL);

  g_atomic_ref_count_inc (&event->ref_count);

  return event;
}

/**
 * jarvis_event_unref:
 * @event: (nullable) (transfer full): an event
 *
 * Drops a reference and frees the event with the last one. Safe from any
 * thread; %NULL is ignored.
 *
 * Since: 0.1
 */
void
jarvis_event_unref (JarvisEvent *event)
{
  if (event == NULL)
    return;

  if (!g_atomic_ref_count_dec (&event->ref_count))
    return;

  release_string (event, &event->session_id);
  release_string (event, &event->trace_id);
  release_string (event, &event->text);
  g_clear_pointer (&event->payload, g_variant_unref);
  if (event->builder_data_free != NULL)
    event->builder_data_free (event->builder_data);
  g_free (event);
}

static gboolean
check_mutable (JarvisEvent *event,
               const char  *setter)
{
  if (!g_atomic_int_get (&event->sealed))
    return TRUE;

  g_critical ("%s: event %s for request %s was already emitted and is immutable",
              setter, event->event_type, event->request_id);
  return FALSE;
}

/**
 * jarvis_event_set_text:
 * @event: an unsealed event
 * @text: (nullable) (array length=length): the text, UTF-8 expected
 * @length: length of @text in bytes, or -1 if it is NUL-terminated
 *
 * Sets the event's text, such as a delta's token. The bytes are copied as
 * they are; the bus repairs invalid UTF-8 when it buffers delta text.
 *
 * Since: 0.1
 */
void
jarvis_event_set_text (JarvisEvent *event,
                       const char  *text,
                       gssize       length)
{
  char *copy;

  g_return_if_fail (event != NULL);
  g_return_if_fail (text != NULL || length <= 0);

  if (!check_mutable (event, G_STRFUNC))
    return;

  if (text != NULL && length < 0)
    length = strlen (text);

  /* Copy before releasing, because @text may point into the old text. */
  copy = text != NULL ? store_string (event, text, length) : NULL;
  release_string (event, &event->text);
  event->text = copy;
  event->text_length = text != NULL ? (gsize) length : 0;
}

/**
 * jarvis_event_set_session_id:
 * @event: an unsealed event
 * @session_id: (nullable): the session, or %NULL for %JARVIS_SESSION_DEFAULT
 *
 * Sets the session the event's request belongs to.
 *
 * Since: 0.1
 */
void
jarvis_event_set_session_id (JarvisEvent *event,
                             const char  *session_id)
{
  g_return_if_fail (event != NULL);

  if (!check_mutable (event, G_STRFUNC))
    return;

  set_string (event, &event->session_id, session_id);
}

/**
 * jarvis_event_set_trace_id:
 * @event: an unsealed event
 * @trace_id: (nullable): a trace id for correlating logs
 *
 * Sets the event's trace id.
 *
 * Since: 0.1
 */
void
jarvis_event_set_trace_id (JarvisEvent *event,
                           const char  *trace_id)
{
  g_return_if_fail (event != NULL);

  if (!check_mutable (event, G_STRFUNC))
    return;

  set_string (event, &event->trace_id, trace_id);
}

/**
 * jarvis_event_set_payload:
 * @event: an unsealed event
 * @payload: (nullable): an `a{sv}` variant; a floating reference is sunk
 *
 * Sets the event's structured payload.
 *
 * Since: 0.1
 */
void
jarvis_event_set_payload (JarvisEvent *event,
                          GVariant    *payload)
{
  g_return_if_fail (event != NULL);

  /* A rejected payload is still sunk and released, so that a floating
   * reference handed over does not leak. */
  if (!check_mutable (event, G_STRFUNC))
    {
      if (payload != NULL)
        g_variant_unref (g_variant_ref_sink (payload));
      return;
    }

  if (payload != NULL && !g_variant_is_of_type (payload, G_VARIANT_TYPE_VARDICT))
    {
      g_critical ("%s: the payload of event %s for request %s must be an a{sv}, not %s",
                  G_STRFUNC, event->event_type, event->request_id,
                  g_variant_get_type_string (payload));
      g_variant_unref (g_variant_ref_sink (payload));
      return;
    }

  g_clear_pointer (&event->payload, g_variant_unref);
  if (payload != NULL)
    event->payload = g_variant_ref_sink (payload);
}

/**
 * jarvis_event_set_choice:
 * @event: an unsealed event
 * @choice: the index of the choice in a multi-choice stream
 *
 * Sets which choice of the request a delta belongs to. Each choice has its
 * own text buffer and its own flush events.
 *
 * Since: 0.1
 */
void
jarvis_event_set_choice (JarvisEvent *event,
                         guint        choice)
{
  g_return_if_fail (event != NULL);

  if (!check_mutable (event, G_STRFUNC))
    return;

  event->choice = choice;
}

/**
 * jarvis_event_get_event_type:
 * @event: an event
 *
 * Returns: (transfer none): the event type, valid as long as @event. For
 *   the stream types and any type that a subscription names, it is an
 *   interned string (see g_intern_string())
 *
 * Since: 0.1
 */
const char *
jarvis_event_get_event_type (JarvisEvent *event)
{
  g_return_val_if_fail (event != NULL, NULL);

  return event->event_type;
}

/**
 * jarvis_event_has_type:
 * @event: an event
 * @event_type: an event type
 *
 * Returns: whether @event is of type @event_type
 *
 * Since: 0.1
 */
gboolean
jarvis_event_has_type (JarvisEvent *event,
                       const char  *event_type)
{
  g_return_val_if_fail (event != NULL, FALSE);
  g_return_val_if_fail (event_type != NULL, FALSE);

  /* Callers often pass the interned string they got from an event. */
  return event->event_type == event_type || strcmp (event->event_type, event_type) == 0;
}

/**
 * jarvis_event_get_request_id:
 * @event: an event
 *
 * Returns: (transfer none): the id of the request the event belongs to
 *
 * Since: 0.1
 */
const char *
jarvis_event_get_request_id (JarvisEvent *event)
{
  g_return_val_if_fail (event != NULL, NULL);

  return event->request_id;
}

/**
 * jarvis_event_get_session_id:
 * @event: an event
 *
 * Returns: (transfer none): the session, %JARVIS_SESSION_DEFAULT when none
 *   was set
 *
 * Since: 0.1
 */
const char *
jarvis_event_get_session_id (JarvisEvent *event)
{
  g_return_val_if_fail (event != NULL, NULL);

  return event->session_id != NULL ? event->session_id : JARVIS_SESSION_DEFAULT;
}

/**
 * jarvis_event_get_trace_id:
 * @event: an event
 *
 * Returns: (transfer none) (nullable): the trace id
 *
 * Since: 0.1
 */
const char *
jarvis_event_get_trace_id (JarvisEvent *event)
{
  g_return_val_if_fail (event != NULL, NULL);

  return event->trace_id;
}

/**
 * jarvis_event_get_text:
 * @event: an event
 * @length: (out) (optional): the text's length in bytes
 *
 * Returns: (transfer none) (nullable): the text, NUL-terminated, or %NULL
 *   when the event has none
 *
 * Since: 0.1
 */
const char *
jarvis_event_get_text (JarvisEvent *event,
                       gsize       *length)
{
  g_return_val_if_fail (event != NULL, NULL);

  if (length != NULL)
    *length = event->text_length;

  return event->text;
}

/**
 * jarvis_event_get_payload:
 * @event: an event
 *
 * Returns: (transfer none) (nullable): the `a{sv}` payload
 *
 * Since: 0.1
 */
GVariant *
jarvis_event_get_payload (JarvisEvent *event)
{
  GVariant *payload;

  g_return_val_if_fail (event != NULL, NULL);

  payload = g_atomic_pointer_get (&event->payload);
  if (payload != NULL || event->payload_builder == NULL)
    return payload;

  /* Readers in several threads may race to build it; one result wins. */
  payload = g_variant_ref_sink (event->payload_builder (event->builder_data));
  if (!g_atomic_pointer_compare_and_exchange (&event->payload, NULL, payload))
    g_variant_unref (payload);

  return g_atomic_pointer_get (&event->payload);
}

/**
 * jarvis_event_get_token_count:
 * @event: an event
 *
 * Returns: the number of delta events coalesced into a flush event, or 0
 *   for other events
 *
 * Since: 0.1
 */
guint
jarvis_event_get_token_count (JarvisEvent *event)
{
  g_return_val_if_fail (event != NULL, 0);

  return event->token_count;
}

/**
 * jarvis_event_get_choice:
 * @event: an event
 *
 * Returns: the choice index of a delta or flush event, 0 by default
 *
 * Since: 0.1
 */
guint
jarvis_event_get_choice (JarvisEvent *event)
{
  g_return_val_if_fail (event != NULL, 0);

  return event->choice;
}

/**
 * jarvis_event_get_outcome:
 * @event: an event
 *
 * Returns: (transfer none) (nullable): the `outcome` of a
 *   %JARVIS_EVENT_STREAM_COMPLETE event, or %NULL for other events
 *
 * Since: 0.1
 */
const char *
jarvis_event_get_outcome (JarvisEvent *event)
{
  const char *outcome = NULL;

  GVariant *payload;

  g_return_val_if_fail (event != NULL, NULL);

  if (event->outcome != NULL)
    return event->outcome;

  payload = jarvis_event_get_payload (event);
  if (payload == NULL)
    return NULL;

  if (!g_variant_lookup (payload, "outcome", "&s", &outcome))
    return NULL;

  return outcome;
}

void
_jarvis_event_seal (JarvisEvent *event)
{
  g_atomic_int_set (&event->sealed, 1);
}

gboolean
_jarvis_event_is_sealed (JarvisEvent *event)
{
  return g_atomic_int_get (&event->sealed);
}

/* Whether the event's type is an interned string. Only then does a pointer
 * compare with another interned string decide whether the types are
 * equal. */
gboolean
_jarvis_event_type_is_interned (JarvisEvent *event)
{
  return event->type_interned;
}

/* Whether the event has a type that only the bus may emit. Types are
 * interned, so comparing pointers is enough. */
gboolean
_jarvis_event_is_bus_only (JarvisEvent *event)
{
  _jarvis_event_init_types ();

  return event->event_type == stream_types[STREAM_FLUSH] ||
         event->event_type == stream_types[STREAM_COMPLETE];
}

void
_jarvis_event_set_origin (JarvisEvent *event,
                          const char  *plugin_name)
{
  event->origin = g_intern_string (plugin_name);
}

const char *
_jarvis_event_get_origin (JarvisEvent *event)
{
  return event->origin;
}

gboolean
_jarvis_event_mark_counted (JarvisEvent *event)
{
  gboolean was_counted = event->counted;

  event->counted = TRUE;

  return was_counted;
}

JarvisEvent *
_jarvis_event_new_flush (const char *request_id,
                         const char *session_id,
                         const char *trace_id,
                         guint       choice,
                         const char *text,
                         gsize       length,
                         guint       token_count)
{
  gsize session_size = session_id != NULL ? strlen (session_id) + 1 : 0;
  gsize trace_size = trace_id != NULL ? strlen (trace_id) + 1 : 0;
  JarvisEvent *event;

  _jarvis_event_init_types ();

  /* One block sized for all of it: flushes carry up to the size bound. */
  event = event_alloc (stream_types[STREAM_FLUSH], NULL, request_id, session_size + trace_size + length + 1);
  set_string (event, &event->session_id, session_id);
  set_string (event, &event->trace_id, trace_id);
  event->choice = choice;
  event->token_count = token_count;
  if (text != NULL)
    {
      event->text = store_string (event, text, length);
      event->text_length = length;
    }
  _jarvis_event_seal (event);

  return event;
}

/* Gives an unsealed event a payload that @builder makes from @data on the
 * first jarvis_event_get_payload(), and an outcome that
 * jarvis_event_get_outcome() returns without building it. @outcome is a
 * static string. The event owns @data. */
void
_jarvis_event_set_payload_builder (JarvisEvent          *event,
                                   const char           *outcome,
                                   JarvisPayloadBuilder  builder,
                                   gpointer              data,
                                   GDestroyNotify        data_free)
{
  g_assert (!_jarvis_event_is_sealed (event));
  g_assert (event->payload == NULL && event->payload_builder == NULL);

  event->outcome = outcome;
  event->payload_builder = builder;
  event->builder_data = data;
  event->builder_data_free = data_free;
}
