#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The coalescing buffer of one choice of one request. @text contains only
 * whole UTF-8 characters, so any flush of it is a valid chunk. An
 * incomplete sequence at the end of a delta waits in @tail for the next
 * delta. */
typedef struct
{
  guint choice;
  GString *text;                /* owned; bytes not yet flushed */
  guint tokens;                 /* deltas appended since the last flush */
  gint64 last_flush_us;         /* monotonic; 0 until the first flush */
  guint8 tail[4];               /* a valid but incomplete UTF-8 prefix */
  guint8 tail_length;
} JarvisFlushBuffer;

JarvisFlushBuffer *_jarvis_flush_buffer_new (guint choice);

void _jarvis_flush_buffer_free (JarvisFlushBuffer *buffer);

gsize _jarvis_flush_buffer_append (JarvisFlushBuffer *buffer,
                                   const char        *text,
                                   gsize              length,
                                   guint             *replacements);

gsize _jarvis_flush_buffer_finish_tail (JarvisFlushBuffer *buffer,
                                        guint             *replacements);

gboolean _jarvis_flush_buffer_is_due (JarvisFlushBuffer *buffer,
                                      gint64             now_us,
                                      guint              interval_ms,
                                      gsize              max_bytes);

gint64 _jarvis_flush_buffer_get_due_time (JarvisFlushBuffer *buffer,
                                          guint              interval_ms);

G_END_DECLS
