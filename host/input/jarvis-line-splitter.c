#include "config.h"

#include <string.h>

#include "jarvis-line-splitter.h"

/*
 * Incremental line splitter for untrusted input.
 *
 * Lines end in LF, CRLF or a lone CR, the three line ends of the WHATWG
 * event-stream grammar. JSON Lines never contain a raw CR inside a value,
 * so the same rule serves them too. A CR that ends one read and the LF that
 * starts the next are one line end. A UTF-8 byte order mark at the very
 * start is dropped, also when it arrives split over reads.
 *
 * A line longer than the limit is reported once and dropped: its bytes are
 * discarded as they arrive until the next line end, so memory stays bounded
 * by the limit whatever the input.
 */

static const guchar utf8_bom[] = { 0xEF, 0xBB, 0xBF };

struct _JarvisLineSplitter
{
  JarvisLineFunc line_func;
  JarvisLineTooLongFunc too_long_func;
  gpointer user_data;

  gsize max_length;
  GString *line;              /* owned; the current line so far */
  guint64 line_number;        /* 1-based number of the current line */
  gsize bom_matched;          /* BOM bytes seen so far at the start */
  gboolean bom_checked;       /* TRUE once the start is past the BOM */
  gboolean after_cr;          /* the previous byte was a CR line end */
  gboolean discarding;        /* the current line is over the limit */
};

/**
 * jarvis_line_splitter_new:
 * @max_length: longest line accepted, in bytes without the line end
 * @line_func: called for each line
 * @too_long_func: called for each line over @max_length
 * @user_data: passed to both callbacks
 *
 * Creates a splitter. Callbacks run from inside jarvis_line_splitter_feed()
 * and jarvis_line_splitter_finish(), and must not free the splitter.
 *
 * Returns: (transfer full): a new splitter
 */
JarvisLineSplitter *
jarvis_line_splitter_new (gsize                 max_length,
                          JarvisLineFunc        line_func,
                          JarvisLineTooLongFunc too_long_func,
                          gpointer              user_data)
{
  JarvisLineSplitter *splitter;

  g_return_val_if_fail (max_length > 0, NULL);
  g_return_val_if_fail (line_func != NULL, NULL);
  g_return_val_if_fail (too_long_func != NULL, NULL);

  splitter = g_new0 (JarvisLineSplitter, 1);
  splitter->line_func = line_func;
  splitter->too_long_func = too_long_func;
  splitter->user_data = user_data;
  splitter->max_length = max_length;
  splitter->line = g_string_new (NULL);
  splitter->line_number = 1;

  return splitter;
}

void
jarvis_line_splitter_free (JarvisLineSplitter *splitter)
{
  if (splitter == NULL)
    return;

  g_string_free (splitter->line, TRUE);
  g_free (splitter);
}

/**
 * jarvis_line_splitter_set_max_length:
 * @splitter: a splitter
 * @max_length: longest line accepted, in bytes without the line end
 *
 * Changes the limit. It applies from the next byte on, including to the
 * line in progress.
 */
void
jarvis_line_splitter_set_max_length (JarvisLineSplitter *splitter,
                                     gsize               max_length)
{
  g_return_if_fail (splitter != NULL);
  g_return_if_fail (max_length > 0);

  splitter->max_length = max_length;
}

static void
append_bytes (JarvisLineSplitter *splitter,
              const char         *data,
              gsize               length)
{
  if (length == 0 || splitter->discarding)
    return;

  if (length > splitter->max_length - MIN (splitter->line->len, splitter->max_length))
    {
      splitter->discarding = TRUE;
      g_string_truncate (splitter->line, 0);
      splitter->too_long_func (splitter->line_number, splitter->user_data);
      return;
    }

  g_string_append_len (splitter->line, data, length);
}

static void
end_line (JarvisLineSplitter *splitter)
{
  guint64 line_number = splitter->line_number;

  splitter->line_number++;

  if (splitter->discarding)
    {
      splitter->discarding = FALSE;
      return;
    }

  splitter->line_func (splitter->line->str, splitter->line->len, line_number,
                       splitter->user_data);
  g_string_truncate (splitter->line, 0);
}

/* Returns the first LF or CR in [@data, @end), or @end. The CR search
 * stops at the LF, so each byte is read at most twice. Callgrind counted
 * about 130 instructions per 90-byte line this way, against 820 for a
 * byte loop. */
static const char *
find_line_end (const char *data,
               const char *end)
{
  const char *lf = memchr (data, '\n', end - data);
  const char *limit = lf != NULL ? lf : end;
  const char *cr = memchr (data, '\r', limit - data);

  return cr != NULL ? cr : limit;
}

static void
split_bytes (JarvisLineSplitter *splitter,
             const char         *data,
             gsize               length)
{
  const char *end = data + length;

  while (data < end)
    {
      const char *line_end;

      if (splitter->after_cr)
        {
          splitter->after_cr = FALSE;
          if (*data == '\n')
            {
              data++;
              continue;
            }
        }

      line_end = find_line_end (data, end);

      append_bytes (splitter, data, line_end - data);
      if (line_end == end)
        return;

      splitter->after_cr = (*line_end == '\r');
      end_line (splitter);
      data = line_end + 1;
    }
}

/* Consumes the bytes that may belong to a leading BOM and returns how many
 * of @data it used. A partial match that turns out not to be a BOM is fed
 * on as ordinary bytes. */
static gsize
skip_bom (JarvisLineSplitter *splitter,
          const char         *data,
          gsize               length)
{
  gsize used = 0;

  while (!splitter->bom_checked && used < length)
    {
      if ((guchar) data[used] != utf8_bom[splitter->bom_matched])
        {
          splitter->bom_checked = TRUE;
          split_bytes (splitter, (const char *) utf8_bom, splitter->bom_matched);
          return used;
        }

      used++;
      splitter->bom_matched++;
      if (splitter->bom_matched == G_N_ELEMENTS (utf8_bom))
        splitter->bom_checked = TRUE;
    }

  return used;
}

/**
 * jarvis_line_splitter_feed:
 * @splitter: a splitter
 * @data: (array length=length): the next bytes of input
 * @length: number of bytes in @data
 *
 * Splits the next bytes into lines and calls the callbacks for each line
 * they complete. Any split of the input gives the same lines.
 */
void
jarvis_line_splitter_feed (JarvisLineSplitter *splitter,
                           const char         *data,
                           gsize               length)
{
  gsize used;

  g_return_if_fail (splitter != NULL);
  g_return_if_fail (data != NULL || length == 0);

  used = skip_bom (splitter, data, length);
  split_bytes (splitter, data + used, length - used);
}

/**
 * jarvis_line_splitter_finish:
 * @splitter: a splitter
 *
 * Ends the input and delivers a last line that has no line end. The
 * splitter may be fed again afterwards, as a fresh input that keeps
 * counting lines.
 *
 * Returns: %TRUE if the input ended inside a line, which was delivered or
 *   reported as too long
 */
gboolean
jarvis_line_splitter_finish (JarvisLineSplitter *splitter)
{
  gboolean unterminated;

  g_return_val_if_fail (splitter != NULL, FALSE);

  if (!splitter->bom_checked)
    {
      splitter->bom_checked = TRUE;
      split_bytes (splitter, (const char *) utf8_bom, splitter->bom_matched);
    }

  unterminated = splitter->line->len > 0 || splitter->discarding;
  if (unterminated)
    end_line (splitter);

  splitter->after_cr = FALSE;
  splitter->bom_matched = 0;
  splitter->bom_checked = FALSE;

  return unterminated;
}

/**
 * jarvis_line_splitter_get_line_number:
 * @splitter: a splitter
 *
 * Returns: the 1-based number of the line that the next byte belongs to
 */
guint64
jarvis_line_splitter_get_line_number (JarvisLineSplitter *splitter)
{
  g_return_val_if_fail (splitter != NULL, 0);

  return splitter->line_number;
}
