#include "config.h"

#include <string.h>

#include "jarvis-decoder.h"
#include "jarvis-sse.h"

#include "fuzz-target.h"

/*
 * SSE framing: feeding any split of the input must give the same events
 * and errors as feeding it whole. The splits tried are every single cut
 * for short inputs, and for all inputs 1-byte reads plus cuts at offsets
 * derived from the input itself, so that libFuzzer can steer them.
 */

/* Line and event limit: small enough for short inputs to exceed it. */
#define FUZZ_SSE_MAX_LENGTH 256

/* Inputs up to this size get every single cut, which costs quadratic time. */
#define FUZZ_SSE_ALL_CUTS_SIZE 512

static void
on_event (const JarvisSseEvent *event,
          gpointer              user_data)
{
  GString *log = user_data;

  /* The callback may read data_length bytes plus the terminating NUL. */
  g_assert_true (event->data[event->data_length] == '\0');
  g_assert_true (strlen (event->event_type) > 0);
  g_assert_nonnull (event->last_event_id);
  g_assert_cmpuint (event->line_number, >=, 1);

  g_string_append_printf (log, "%s|%s|%" G_GUINT64_FORMAT "|%" G_GSIZE_FORMAT "|",
                          event->event_type, event->last_event_id,
                          event->line_number, event->data_length);
  g_string_append_len (log, event->data, event->data_length);
  g_string_append_c (log, '\n');
}

static void
on_error (guint64       line_number,
          const GError *error,
          gpointer      user_data)
{
  GString *log = user_data;

  g_assert_true (g_error_matches (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_LINE_TOO_LONG));
  g_string_append_printf (log, "error|%" G_GUINT64_FORMAT "\n", line_number);
}

/* Parses @data cut at the ascending offsets @cuts, then reads the retry
 * value into the log too. */
static char *
parse_with_cuts (const guint8 *data,
                 gsize         size,
                 const gsize  *cuts,
                 gsize         n_cuts)
{
  GString *log = g_string_new (NULL);
  g_autoptr(JarvisSseParser) parser = jarvis_sse_parser_new (on_event, on_error, log);
  gsize offset = 0;

  jarvis_sse_parser_set_max_event_length (parser, FUZZ_SSE_MAX_LENGTH);

  for (gsize i = 0; i < n_cuts; i++)
    {
      jarvis_sse_parser_feed (parser, (const char *) data + offset, cuts[i] - offset);
      offset = cuts[i];
    }
  jarvis_sse_parser_feed (parser, (const char *) data + offset, size - offset);
  jarvis_sse_parser_finish (parser);

  g_string_append_printf (log, "retry|%" G_GINT64_FORMAT "\n", jarvis_sse_parser_get_retry (parser));
  return g_string_free (log, FALSE);
}

static char *
parse_bytewise (const guint8 *data,
                gsize         size)
{
  GString *log = g_string_new (NULL);
  g_autoptr(JarvisSseParser) parser = jarvis_sse_parser_new (on_event, on_error, log);

  jarvis_sse_parser_set_max_event_length (parser, FUZZ_SSE_MAX_LENGTH);

  for (gsize i = 0; i < size; i++)
    jarvis_sse_parser_feed (parser, (const char *) data + i, 1);
  jarvis_sse_parser_finish (parser);

  g_string_append_printf (log, "retry|%" G_GINT64_FORMAT "\n", jarvis_sse_parser_get_retry (parser));
  return g_string_free (log, FALSE);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autofree char *whole = parse_with_cuts (data, size, NULL, 0);
  g_autofree char *bytewise = parse_bytewise (data, size);
  gsize cuts[4];
  guint32 hash = 2166136261u;

  g_assert_cmpstr (bytewise, ==, whole);

  if (size <= FUZZ_SSE_ALL_CUTS_SIZE)
    {
      for (gsize cut = 0; cut <= size; cut++)
        {
          g_autofree char *split = parse_with_cuts (data, size, &cut, 1);

          g_assert_cmpstr (split, ==, whole);
        }
    }

  /* Four cuts from an FNV-1a hash of the input, sorted ascending. */
  for (gsize i = 0; i < size; i++)
    hash = (hash ^ data[i]) * 16777619u;

  for (gsize i = 0; i < G_N_ELEMENTS (cuts); i++)
    {
      cuts[i] = size > 0 ? hash % (size + 1) : 0;
      hash = hash * 1103515245u + 12345u;

      for (gsize j = i; j > 0 && cuts[j - 1] > cuts[j]; j--)
        {
          gsize swap = cuts[j];

          cuts[j] = cuts[j - 1];
          cuts[j - 1] = swap;
        }
    }

  {
    g_autofree char *split = parse_with_cuts (data, size, cuts, G_N_ELEMENTS (cuts));

    g_assert_cmpstr (split, ==, whole);
  }

  return 0;
}
