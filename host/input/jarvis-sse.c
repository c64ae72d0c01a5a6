#include "config.h"

#include <string.h>

#include "jarvis-decoder.h"
#include "jarvis-input-limits.h"
#include "jarvis-line-splitter.h"
#include "jarvis-sse.h"

/*
 * Incremental parser for the WHATWG event-stream format ("server-sent
 * events"), working on bytes.
 *
 * It follows the interpretation rules of the HTML standard. Comment lines
 * start with a colon. A field name ends at the first colon, and one space
 * after it is dropped. `data` lines are joined with LF, an `id` value with
 * a NUL is ignored, and `retry` takes only ASCII digits. A blank line
 * dispatches the event unless its data is empty.
 *
 * It differs from the standard in three ways, on purpose. An event still
 * pending at the end of input is dispatched (with a debug log) instead of
 * dropped, because recorders often cut the final blank line. Bytes stay
 * bytes, so invalid UTF-8 reaches the consumer, which rejects it when it
 * parses the data as JSON. And an `event` value with a NUL is ignored like
 * such an `id` value.
 */

struct _JarvisSseParser
{
  JarvisSseEventFunc event_func;
  JarvisSseErrorFunc error_func;
  gpointer user_data;

  JarvisLineSplitter *splitter;   /* owned; only for jarvis_sse_parser_feed() */
  gsize max_event_length;

  GString *data;                  /* owned; data buffer of the pending event */
  GString *event_type;            /* owned; event type buffer */
  GString *last_event_id;         /* owned; kept across events */
  gint64 retry;                   /* reconnection time in ms, or -1 */
  guint64 event_line_number;      /* first line of the pending event, or 0 */
  gboolean discarding;            /* the pending event was rejected */
};

static void on_line (const char *line,
                     gsize       length,
                     guint64     line_number,
                     gpointer    user_data);
static void on_line_too_long (guint64  line_number,
                              gpointer user_data);

/**
 * jarvis_sse_parser_new:
 * @event_func: called for each dispatched event
 * @error_func: called for each rejected event
 * @user_data: passed to both callbacks
 *
 * Creates a parser with the default event length limit. Callbacks run
 * from inside the feed, push and finish calls and must not free the parser.
 *
 * Returns: (transfer full): a new parser
 */
JarvisSseParser *
jarvis_sse_parser_new (JarvisSseEventFunc event_func,
                       JarvisSseErrorFunc error_func,
                       gpointer           user_data)
{
  JarvisSseParser *parser;

  g_return_val_if_fail (event_func != NULL, NULL);
  g_return_val_if_fail (error_func != NULL, NULL);

  parser = g_new0 (JarvisSseParser, 1);
  parser->event_func = event_func;
  parser->error_func = error_func;
  parser->user_data = user_data;
  parser->max_event_length = JARVIS_INPUT_DEFAULT_MAX_LINE_LENGTH;
  parser->splitter = jarvis_line_splitter_new (parser->max_event_length,
                                               on_line, on_line_too_long, parser);
  parser->data = g_string_new (NULL);
  parser->event_type = g_string_new (NULL);
  parser->last_event_id = g_string_new (NULL);
  parser->retry = -1;

  return parser;
}

void
jarvis_sse_parser_free (JarvisSseParser *parser)
{
  if (parser == NULL)
    return;

  jarvis_line_splitter_free (parser->splitter);
  g_string_free (parser->data, TRUE);
  g_string_free (parser->event_type, TRUE);
  g_string_free (parser->last_event_id, TRUE);
  g_free (parser);
}

/**
 * jarvis_sse_parser_set_max_event_length:
 * @parser: a parser
 * @max_length: longest line, and longest data plus event type of one
 *   event, in bytes
 *
 * Sets the limit over which lines and events are rejected as
 * %JARVIS_INPUT_ERROR_LINE_TOO_LONG without being buffered whole.
 */
void
jarvis_sse_parser_set_max_event_length (JarvisSseParser *parser,
                                        gsize            max_length)
{
  g_return_if_fail (parser != NULL);
  g_return_if_fail (max_length > 0);

  parser->max_event_length = max_length;
  jarvis_line_splitter_set_max_length (parser->splitter, max_length);
}

static void
reset_event (JarvisSseParser *parser)
{
  g_string_truncate (parser->data, 0);
  g_string_truncate (parser->event_type, 0);
  parser->event_line_number = 0;
  parser->discarding = FALSE;
}

static void
reject_event (JarvisSseParser *parser,
              guint64          line_number)
{
  g_autoptr(GError) error = NULL;

  g_string_truncate (parser->data, 0);
  g_string_truncate (parser->event_type, 0);
  parser->discarding = TRUE;

  error = g_error_new (JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_LINE_TOO_LONG,
                       "SSE event is longer than the limit of %" G_GSIZE_FORMAT
                       " bytes; it was skipped up to the next blank line",
                       parser->max_event_length);
  parser->error_func (line_number, error, parser->user_data);
}

static void
dispatch_event (JarvisSseParser *parser)
{
  JarvisSseEvent event;

  if (parser->discarding || parser->data->len == 0)
    {
      reset_event (parser);
      return;
    }

  /* Every data line appended an LF; the last one is not part of the data. */
  g_string_truncate (parser->data, parser->data->len - 1);

  event.event_type = parser->event_type->len > 0 ? parser->event_type->str : "message";
  event.data = parser->data->str;
  event.data_length = parser->data->len;
  event.last_event_id = parser->last_event_id->str;
  event.line_number = parser->event_line_number;

  parser->event_func (&event, parser->user_data);
  reset_event (parser);
}

static gboolean
parse_retry (const char *value,
             gsize       length,
             gint64     *retry)
{
  guint64 number = 0;

  if (length == 0)
    return FALSE;

  for (gsize i = 0; i < length; i++)
    {
      if (!g_ascii_isdigit (value[i]))
        return FALSE;

      /* Saturate instead of wrapping on absurd values. */
      if (number > (G_MAXINT64 - 9) / 10)
        number = G_MAXINT64;
      else
        number = number * 10 + (value[i] - '0');
    }

  *retry = (gint64) number;
  return TRUE;
}

static void
process_field (JarvisSseParser *parser,
               const char      *name,
               gsize            name_length,
               const char      *value,
               gsize            value_length,
               guint64          line_number)
{
#define FIELD_IS(literal) \
  (name_length == sizeof (literal) - 1 && memcmp (name, literal, name_length) == 0)

  if (FIELD_IS ("data"))
    {
      if (parser->data->len + parser->event_type->len + value_length >
          parser->max_event_length)
        {
          reject_event (parser, parser->event_line_number);
          return;
        }

      g_string_append_len (parser->data, value, value_length);
      g_string_append_c (parser->data, '\n');
    }
  else if (FIELD_IS ("event"))
    {
      /* Consumers compare the event type as a C string, so a NUL would cut
       * it short. Such a value is ignored, as the standard does for `id`. */
      if (memchr (value, '\0', value_length) != NULL)
        return;

      if (parser->data->len + value_length > parser->max_event_length)
        {
          reject_event (parser, parser->event_line_number);
          return;
        }

      g_string_truncate (parser->event_type, 0);
      g_string_append_len (parser->event_type, value, value_length);
    }
  else if (FIELD_IS ("id"))
    {
      if (memchr (value, '\0', value_length) == NULL)
        {
          g_string_truncate (parser->last_event_id, 0);
          g_string_append_len (parser->last_event_id, value, value_length);
        }
    }
  else if (FIELD_IS ("retry"))
    {
      parse_retry (value, value_length, &parser->retry);
    }

#undef FIELD_IS
}

/**
 * jarvis_sse_parser_push_line:
 * @parser: a parser
 * @line: (array length=length): one line without its line end
 * @length: number of bytes in @line
 * @line_number: the 1-based number of @line in the input
 *
 * Processes one line that the caller has already split off, for callers
 * that run their own jarvis_line_splitter_new(). Do not mix with
 * jarvis_sse_parser_feed() on the same parser.
 */
void
jarvis_sse_parser_push_line (JarvisSseParser *parser,
                             const char      *line,
                             gsize            length,
                             guint64          line_number)
{
  const char *colon;
  const char *value;
  gsize name_length;
  gsize value_length;

  g_return_if_fail (parser != NULL);
  g_return_if_fail (line != NULL || length == 0);

  if (length == 0)
    {
      dispatch_event (parser);
      return;
    }

  if (line[0] == ':')
    return;

  if (parser->event_line_number == 0)
    parser->event_line_number = line_number;

  if (parser->discarding)
    return;

  colon = memchr (line, ':', length);
  if (colon == NULL)
    {
      name_length = length;
      value = line + length;
      value_length = 0;
    }
  else
    {
      name_length = colon - line;
      value = colon + 1;
      if (value < line + length && *value == ' ')
        value++;
      value_length = line + length - value;
    }

  process_field (parser, line, name_length, value, value_length, line_number);
}

/**
 * jarvis_sse_parser_reject_line:
 * @parser: a parser
 * @line_number: the 1-based number of the line in the input
 *
 * Tells the parser that the line @line_number was over the length limit
 * and dropped. The pending event is rejected and the parser skips lines up
 * to the next blank line.
 */
void
jarvis_sse_parser_reject_line (JarvisSseParser *parser,
                               guint64          line_number)
{
  g_return_if_fail (parser != NULL);

  if (parser->event_line_number == 0)
    parser->event_line_number = line_number;

  if (parser->discarding)
    return;

  reject_event (parser, parser->event_line_number);
}

static void
on_line (const char *line,
         gsize       length,
         guint64     line_number,
         gpointer    user_data)
{
  jarvis_sse_parser_push_line (user_data, line, length, line_number);
}

static void
on_line_too_long (guint64  line_number,
                  gpointer user_data)
{
  jarvis_sse_parser_reject_line (user_data, line_number);
}

/**
 * jarvis_sse_parser_feed:
 * @parser: a parser
 * @data: (array length=length): the next bytes of the stream
 * @length: number of bytes in @data
 *
 * Parses the next bytes and dispatches every event they complete. Any
 * split of the input, also inside a line end or a UTF-8 sequence, gives the
 * same events.
 */
void
jarvis_sse_parser_feed (JarvisSseParser *parser,
                        const char      *data,
                        gsize            length)
{
  g_return_if_fail (parser != NULL);
  g_return_if_fail (data != NULL || length == 0);

  jarvis_line_splitter_feed (parser->splitter, data, length);
}

/**
 * jarvis_sse_parser_finish:
 * @parser: a parser
 *
 * Ends the stream. A last line without a line end is processed, and an
 * event still pending is dispatched as if a blank line followed it.
 */
void
jarvis_sse_parser_finish (JarvisSseParser *parser)
{
  g_return_if_fail (parser != NULL);

  jarvis_line_splitter_finish (parser->splitter);

  if (parser->data->len > 0 && !parser->discarding)
    {
      g_debug ("sse_event_dispatched_at_eof line=%" G_GUINT64_FORMAT
               " reason=no blank line after the last event",
               parser->event_line_number);
    }

  dispatch_event (parser);
}

/**
 * jarvis_sse_parser_get_retry:
 * @parser: a parser
 *
 * Returns: the last valid `retry:` value in milliseconds, or -1 if none
 *   was seen
 */
gint64
jarvis_sse_parser_get_retry (JarvisSseParser *parser)
{
  g_return_val_if_fail (parser != NULL, -1);

  return parser->retry;
}
