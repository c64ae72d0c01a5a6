#pragma once

#include "jarvis/jarvis.h"

G_BEGIN_DECLS

/* A source that dispatches @callback once after any number of
 * _jarvis_wake_source_wake() calls, from any thread, since its last
 * dispatch. It stays attached until destroyed. */
GSource *_jarvis_wake_source_new (const char  *name,
                                  GSourceFunc  callback,
                                  gpointer     user_data);

void _jarvis_wake_source_wake (GSource *source);

/* The bounded queue that carries events from foreign threads to the bus's
 * thread. Producers block while it is full; the consumer takes every queued
 * event in one batch per wake-up. */
typedef struct _JarvisQueue JarvisQueue;

/* Receives a batch in emission order and owns its events. */
typedef void (*JarvisQueueFunc) (GQueue   *batch,
                                 gpointer  user_data);

JarvisQueue *_jarvis_queue_new (GMainContext    *context,
                                guint            capacity,
                                JarvisQueueFunc  func,
                                gpointer         user_data);

void _jarvis_queue_set_capacity (JarvisQueue *queue,
                                 guint        capacity);

gboolean _jarvis_queue_push (JarvisQueue *queue,
                             JarvisEvent *event);

guint64 _jarvis_queue_get_n_rejected (JarvisQueue *queue);

guint _jarvis_queue_get_length (JarvisQueue *queue);

guint _jarvis_queue_close (JarvisQueue *queue);

void _jarvis_queue_free (JarvisQueue *queue);

G_END_DECLS
