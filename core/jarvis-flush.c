#include "config.h"

#include <string.h>

#include "jarvis-alloc-private.h"
#include "jarvis-flush-private.h"

/* U+FFFD REPLACEMENT CHARACTER in UTF-8. */
#define REPLACEMENT "\xEF\xBF\xBD"
#define REPLACEMENT_LENGTH 3

JarvisFlushBuffer *
_jarvis_flush_buffer_new (guint choice)
{
  JarvisFlushBuffer *buffer;

  buffer = _jarvis_new0 (JarvisFlushBuffer);
  buffer->choice = choice;
  buffer->text = g_string_sized_new (64);

  return buffer;
}

void
_jarvis_flush_buffer_free (JarvisFlushBuffer *buffer)
{
  if (buffer == NULL)
    return;

  g_string_free (buffer->text, TRUE);
  g_free (buffer);
}

static gboolean
is_incomplete_prefix (const char *bytes,
                      gsize       length)
{
  return length > 0 && length < 4 &&
         bytes[0] != '\0' &&
         g_utf8_get_char_validated (bytes, length) == (gunichar) -2;
}

/* Length of the maximal invalid subpart at @bytes: the longest prefix that
 * could have started a valid sequence, or one byte. Each subpart becomes
 * one U+FFFD, as the Unicode standard recommends (chapter 3, "U+FFFD
 * Substitution of Maximal Subparts"). */
static gsize
invalid_subpart_length (const char *bytes,
                        gsize       length)
{
  gsize subpart = 1;

  while (subpart < length && is_incomplete_prefix (bytes, subpart + 1))
    subpart++;

  return subpart;
}

static void
append_replacement (JarvisFlushBuffer *buffer,
                    guint             *replacements)
{
  g_string_append_len (buffer->text, REPLACEMENT, REPLACEMENT_LENGTH);
  (*replacements)++;
}

/* Completes a held tail with the first bytes of @text. Returns how many
 * bytes of @text were consumed. */
static gsize
complete_tail (JarvisFlushBuffer *buffer,
               const char        *text,
               gsize              length,
               guint             *replacements)
{
  char joined[4];
  gsize taken;
  gsize joined_length;
  gunichar c;

  taken = MIN (length, sizeof joined - buffer->tail_length);
  memcpy (joined, buffer->tail, buffer->tail_length);
  memcpy (joined + buffer->tail_length, text, taken);
  joined_length = buffer->tail_length + taken;

  c = g_utf8_get_char_validated (joined, joined_length);

  if (c == (gunichar) -2)
    {
      /* Still incomplete: @text was shorter than the missing bytes. */
      memcpy (buffer->tail, joined, joined_length);
      buffer->tail_length = joined_length;
      return taken;
    }

  if (c == (gunichar) -1 || c == 0)
    {
      /* The held prefix was its own maximal invalid subpart. */
      append_replacement (buffer, replacements);
      buffer->tail_length = 0;
      return 0;
    }

  g_string_append_len (buffer->text, joined, g_utf8_skip[(guchar) joined[0]]);
  taken = g_utf8_skip[(guchar) joined[0]] - buffer->tail_length;
  buffer->tail_length = 0;

  return taken;
}

/* Appends a delta's text, replacing each invalid sequence and each NUL by
 * U+FFFD and holding a trailing incomplete sequence back. Returns the bytes
 * added to the buffer, which is what `bytes_in` counts. */
gsize
_jarvis_flush_buffer_append (JarvisFlushBuffer *buffer,
                             const char        *text,
                             gsize              length,
                             guint             *replacements)
{
  gsize before = buffer->text->len;
  const char *end = text + length;
  const char *p = text;

  if (buffer->tail_length > 0)
    p += complete_tail (buffer, text, length, replacements);

  while (p < end && buffer->tail_length == 0)
    {
      const char *valid_end;
      gsize remaining;

      g_utf8_validate_len (p, end - p, &valid_end);
      g_string_append_len (buffer->text, p, valid_end - p);
      p = valid_end;

      if (p == end)
        break;

      remaining = end - p;
      if (is_incomplete_prefix (p, remaining))
        {
          memcpy (buffer->tail, p, remaining);
          buffer->tail_length = remaining;
          break;
        }

      append_replacement (buffer, replacements);
      p += invalid_subpart_length (p, remaining);
    }

  return buffer->text->len - before;
}

/* Turns a held incomplete sequence into U+FFFD, because no more text will
 * come. Returns the bytes added. */
gsize
_jarvis_flush_buffer_finish_tail (JarvisFlushBuffer *buffer,
                                  guint             *replacements)
{
  if (buffer->tail_length == 0)
    return 0;

  buffer->tail_length = 0;
  append_replacement (buffer, replacements);

  return REPLACEMENT_LENGTH;
}

/* The first text of a buffer is due at once. Later text is due when the
 * interval since the last flush has passed or the size bound is reached. */
gboolean
_jarvis_flush_buffer_is_due (JarvisFlushBuffer *buffer,
                             gint64             now_us,
                             guint              interval_ms,
                             gsize              max_bytes)
{
  if (buffer->text->len == 0)
    return FALSE;

  if (buffer->last_flush_us == 0)
    return TRUE;

  if (buffer->text->len >= max_bytes)
    return TRUE;

  return now_us - buffer->last_flush_us >= (gint64) interval_ms * 1000;
}

gint64
_jarvis_flush_buffer_get_due_time (JarvisFlushBuffer *buffer,
                                   guint              interval_ms)
{
  return buffer->last_flush_us + (gint64) interval_ms * 1000;
}
