#pragma once

#include <jarvis/jarvis.h>

G_BEGIN_DECLS

/* One Server-Sent Events frame, shared by every client queue and by the
 * history. Immutable once built, except for the cancelled flag, and only
 * touched in the bus's context. */
typedef struct
{
  gatomicrefcount ref_count;
  guint64 id;           /* the SSE `id:`, increasing across the relay */
  char *request_id;     /* owned */
  GBytes *text;         /* owned: the whole frame, ready to write */
  gboolean cancelled;   /* its write was cancelled: never sent again */
} RelayFrame;

RelayFrame *relay_frame_new_from_event (JarvisEvent *event,
                                        guint64      id);

RelayFrame *relay_frame_new_gap (const char *request_id);

RelayFrame *relay_frame_ref (RelayFrame *frame);

void relay_frame_unref (RelayFrame *frame);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RelayFrame, relay_frame_unref)

/* The recent frames of recent requests, for clients that reconnect with
 * `Last-Event-ID`. Each request keeps its first frame and its latest
 * frames, at most `max_frames` (2 or more) in all. At most `max_requests`
 * requests are kept, and the oldest request goes first. */
typedef struct _RelayHistory RelayHistory;

RelayHistory *relay_history_new (guint max_frames,
                                 guint max_requests);

void relay_history_free (RelayHistory *history);

void relay_history_append (RelayHistory *history,
                           RelayFrame   *frame);

/* Builds what a client that saw every frame up to @last_id missed, as one
 * buffer of frames in id order. A request whose missed frames were evicted
 * gets a `gap` frame first, so the page can mark its text as incomplete. */
GBytes *relay_history_dup_since (RelayHistory *history,
                                 guint64       last_id);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RelayHistory, relay_history_free)

G_END_DECLS
