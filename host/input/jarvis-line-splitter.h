#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Called once per complete line. @line is NUL-terminated at @length and
 * excludes the line end; it is only valid during the call. */
typedef void (*JarvisLineFunc) (const char *line,
                                gsize       length,
                                guint64     line_number,
                                gpointer    user_data);

/* Called once per line longer than the limit, instead of JarvisLineFunc. */
typedef void (*JarvisLineTooLongFunc) (guint64  line_number,
                                       gpointer user_data);

typedef struct _JarvisLineSplitter JarvisLineSplitter;

JarvisLineSplitter *jarvis_line_splitter_new (gsize                  max_length,
                                              JarvisLineFunc         line_func,
                                              JarvisLineTooLongFunc  too_long_func,
                                              gpointer               user_data);

void jarvis_line_splitter_free (JarvisLineSplitter *splitter);

void jarvis_line_splitter_set_max_length (JarvisLineSplitter *splitter,
                                          gsize               max_length);

void jarvis_line_splitter_feed (JarvisLineSplitter *splitter,
                                const char         *data,
                                gsize               length);

gboolean jarvis_line_splitter_finish (JarvisLineSplitter *splitter);

guint64 jarvis_line_splitter_get_line_number (JarvisLineSplitter *splitter);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (JarvisLineSplitter, jarvis_line_splitter_free)

G_END_DECLS
