#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* One dispatched event of a WHATWG event stream. All strings are
 * NUL-terminated and valid only during the callback. */
typedef struct
{
  const char *event_type;     /* the `event:` field, or "message" */
  const char *data;           /* `data:` lines joined with LF */
  gsize data_length;
  const char *last_event_id;  /* the last `id:` seen so far, or "" */
  guint64 line_number;        /* 1-based line where the event starts */
} JarvisSseEvent;

typedef void (*JarvisSseEventFunc) (const JarvisSseEvent *event,
                                    gpointer              user_data);

/* Called for each rejected event; @line_number is where it starts. */
typedef void (*JarvisSseErrorFunc) (guint64       line_number,
                                    const GError *error,
                                    gpointer      user_data);

typedef struct _JarvisSseParser JarvisSseParser;

JarvisSseParser *jarvis_sse_parser_new (JarvisSseEventFunc event_func,
                                        JarvisSseErrorFunc error_func,
                                        gpointer           user_data);

void jarvis_sse_parser_free (JarvisSseParser *parser);

void jarvis_sse_parser_set_max_event_length (JarvisSseParser *parser,
                                             gsize            max_length);

void jarvis_sse_parser_feed (JarvisSseParser *parser,
                             const char      *data,
                             gsize            length);

void jarvis_sse_parser_push_line (JarvisSseParser *parser,
                                  const char      *line,
                                  gsize            length,
                                  guint64          line_number);

void jarvis_sse_parser_reject_line (JarvisSseParser *parser,
                                    guint64          line_number);

void jarvis_sse_parser_finish (JarvisSseParser *parser);

gint64 jarvis_sse_parser_get_retry (JarvisSseParser *parser);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (JarvisSseParser, jarvis_sse_parser_free)

G_END_DECLS
