#pragma once

#include "jarvis/jarvis.h"

G_BEGIN_DECLS

/* Seals the event: from now on setters are programmer errors. The bus seals
 * every event it accepts, before any handler or thread can see it. */
void _jarvis_event_seal (JarvisEvent *event);

gboolean _jarvis_event_is_sealed (JarvisEvent *event);

/* Records which plugin emitted the event, so that warnings about it can
 * name the plugin. Set before the event is queued. */
void _jarvis_event_set_origin (JarvisEvent *event,
                               const char  *plugin_name);

const char *_jarvis_event_get_origin (JarvisEvent *event);

gboolean _jarvis_event_type_is_interned (JarvisEvent *event);

/* Whether the event is a flush or a complete, which only the bus emits. */
gboolean _jarvis_event_is_bus_only (JarvisEvent *event);

/* Marks the event as counted and returns whether it already was. Events
 * that wait for their session pass through the router twice, but must be
 * counted once. Bus thread only. */
gboolean _jarvis_event_mark_counted (JarvisEvent *event);

/* Builds a flush event; only the bus emits those. @text is copied. */
JarvisEvent *_jarvis_event_new_flush (const char *request_id,
                                      const char *session_id,
                                      const char *trace_id,
                                      guint       choice,
                                      const char *text,
                                      gsize       length,
                                      guint       token_count);

void _jarvis_event_init_types (void);

typedef GVariant * (*JarvisPayloadBuilder) (gpointer data);

void _jarvis_event_set_payload_builder (JarvisEvent          *event,
                                        const char           *outcome,
                                        JarvisPayloadBuilder  builder,
                                        gpointer              data,
                                        GDestroyNotify        data_free);

G_END_DECLS
