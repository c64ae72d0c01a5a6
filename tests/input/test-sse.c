#include "config.h"

#include <string.h>

#include "jarvis-decoder.h"
#include "jarvis-sse.h"

/* Every event and error of one parse, one line each, so that runs over
 * different splits of the same input compare as strings. */
typedef struct
{
  GString *log;
  guint events;
  guint errors;
} SseResult;

static guint eof_debug_logs;

static void
on_event (const JarvisSseEvent *event,
          gpointer              user_data)
{
  SseResult *result = user_data;

  g_assert_cmpuint (strlen (event->data), ==, event->data_length);

  g_string_append_printf (result->log, "%s|%s|%" G_GUINT64_FORMAT "|",
                          event->event_type, event->last_event_id, event->line_number);
  g_string_append_len (result->log, event->data, event->data_length);
  g_string_append_c (result->log, '\n');
  result->events++;
}

static void
on_error (guint64       line_number,
          const GError *error,
          gpointer      user_data)
{
  SseResult *result = user_data;

  g_string_append_printf (result->log, "error|%" G_GUINT64_FORMAT "|%d\n",
                          line_number, error->code);
  result->errors++;
}

static void
sse_result_free (SseResult *result)
{
  g_string_free (result->log, TRUE);
  g_free (result);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SseResult, sse_result_free)

/* Parses @input fed in reads of @read_size bytes (0: all at once). */
static SseResult *
parse (const char *input,
       gsize       length,
       gsize       read_size,
       gsize       max_length)
{
  SseResult *result = g_new0 (SseResult, 1);
  g_autoptr(JarvisSseParser) parser = jarvis_sse_parser_new (on_event, on_error, result);

  result->log = g_string_new (NULL);
  if (max_length > 0)
    jarvis_sse_parser_set_max_event_length (parser, max_length);

  if (read_size == 0)
    read_size = MAX (length, 1);

  for (gsize offset = 0; offset < length; offset += read_size)
    jarvis_sse_parser_feed (parser, input + offset, MIN (read_size, length - offset));

  jarvis_sse_parser_finish (parser);
  return result;
}

static SseResult *
parse_string (const char *input)
{
  return parse (input, strlen (input), 0, 0);
}

static void
assert_parses_to (const char *input,
                  const char *expected)
{
  g_autoptr(SseResult) result = parse_string (input);

  g_assert_cmpstr (result->log->str, ==, expected);
}

static void
test_line_ends (void)
{
  const char *expected = "message||1|a\nmessage||3|b\n";

  assert_parses_to ("data: a\n\ndata: b\n\n", expected);
  assert_parses_to ("data: a\r\n\r\ndata: b\r\n\r\n", expected);
  assert_parses_to ("data: a\r\rdata: b\r\r", expected);
  assert_parses_to ("data: a\r\n\ndata: b\r\r\n", expected);
}

static void
test_cr_lf_split (void)
{
  const char *input = "data: a\r\n\r\ndata: b\r\n\r\n";
  g_autoptr(SseResult) whole = parse_string (input);
  g_autoptr(JarvisSseParser) parser = NULL;
  SseResult split = { g_string_new (NULL), 0, 0 };

  /* Cut right after each CR, so every LF starts a new read. */
  parser = jarvis_sse_parser_new (on_event, on_error, &split);
  jarvis_sse_parser_feed (parser, "data: a\r", 8);
  g_assert_cmpuint (split.events, ==, 0);
  jarvis_sse_parser_feed (parser, "\n\r", 2);
  g_assert_cmpuint (split.events, ==, 1);
  jarvis_sse_parser_feed (parser, "\ndata: b\r", 9);
  g_assert_cmpuint (split.events, ==, 1);
  jarvis_sse_parser_feed (parser, "\n\r", 2);
  g_assert_cmpuint (split.events, ==, 2);

  /* This LF completes the CRLF of the blank line: no extra line. */
  jarvis_sse_parser_feed (parser, "\n", 1);
  g_assert_cmpuint (split.events, ==, 2);
  jarvis_sse_parser_finish (parser);

  g_assert_cmpstr (split.log->str, ==, whole->log->str);
  g_assert_cmpstr (split.log->str, ==, "message||1|a\nmessage||3|b\n");
  g_string_free (split.log, TRUE);
}

static void
test_comments (void)
{
  assert_parses_to (": keep-alive\n:\n\n: OPENROUTER PROCESSING\ndata: x\n: inside\n\n",
                    "message||5|x\n");
}

static void
test_multiline_data (void)
{
  assert_parses_to ("data: one\ndata: two\ndata\ndata:three\n\n",
                    "message||1|one\ntwo\n\nthree\n");
  assert_parses_to ("data: \n\n", "message||1|\n");
  assert_parses_to ("data\ndata\n\n", "message||1|\n\n");
}

static void
test_fields (void)
{
  g_autoptr(JarvisSseParser) parser = NULL;
  SseResult retry_result = { g_string_new (NULL), 0, 0 };

  /* The id persists across events; an id with a NUL is ignored. */
  assert_parses_to ("event: add\nid: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\n",
                    "add|7|1|a\nmessage|7|5|b\nmessage||7|c\n");
  {
    const char with_nul[] = "id: 1\n\nid: x\0y\ndata: d\n\n";
    g_autoptr(SseResult) nul_result = parse (with_nul, sizeof with_nul - 1, 0, 0);

    g_assert_cmpstr (nul_result->log->str, ==, "message|1|3|d\n");
  }

  /* An event type with a NUL is ignored too (found by fuzzing). */
  {
    const char with_nul[] = "event: \0ast\ndata: e\n\nevent: a\0\nevent: b\ndata: f\n\n";
    g_autoptr(SseResult) nul_result = parse (with_nul, sizeof with_nul - 1, 0, 0);

    g_assert_cmpstr (nul_result->log->str, ==, "message||1|e\nb||4|f\n");
  }

  /* Only one space after the colon is dropped. */
  assert_parses_to ("data:  two spaces\n\n", "message||1| two spaces\n");

  /* Unknown fields are ignored. */
  assert_parses_to ("foo: bar\ndata: x\nDATA: y\n\n", "message||1|x\n");

  parser = jarvis_sse_parser_new (on_event, on_error, &retry_result);
  g_assert_cmpint (jarvis_sse_parser_get_retry (parser), ==, -1);
  jarvis_sse_parser_feed (parser, "retry: 3000\n\n", 13);
  g_assert_cmpint (jarvis_sse_parser_get_retry (parser), ==, 3000);
  jarvis_sse_parser_feed (parser, "retry: 12x\nretry:\nretry: -5\n\n", 29);
  g_assert_cmpint (jarvis_sse_parser_get_retry (parser), ==, 3000);
  jarvis_sse_parser_feed (parser, "retry:99999999999999999999999\n\n", 32);
  g_assert_cmpint (jarvis_sse_parser_get_retry (parser), ==, G_MAXINT64);
  jarvis_sse_parser_finish (parser);
  g_assert_cmpuint (retry_result.events, ==, 0);
  g_string_free (retry_result.log, TRUE);
}

static void
test_blocks_without_data (void)
{
  /* The event type of an undispatched block must not leak into the next. */
  assert_parses_to ("event: ping\n\nid: 3\n\nretry: 10\n\ndata: x\n\n", "message|3|7|x\n");
}

static void
test_bom (void)
{
  g_autoptr(SseResult) split = NULL;
  const char input[] = "\xEF\xBB\xBF" "data: a\n\n";

  assert_parses_to (input, "message||1|a\n");

  split = parse (input, strlen (input), 1, 0);
  g_assert_cmpstr (split->log->str, ==, "message||1|a\n");

  /* Only a leading BOM is dropped; a second one is part of the field name. */
  assert_parses_to ("\xEF\xBB\xBF\xEF\xBB\xBF" "data: a\n\ndata: b\n\n", "message||3|b\n");

  /* A partial BOM is ordinary bytes. */
  assert_parses_to ("\xEF\xBB" "data: a\n\ndata: b\n\n", "message||3|b\n");
}

static GLogWriterOutput
count_eof_logs (GLogLevelFlags   log_level,
                const GLogField *fields,
                gsize            n_fields,
                gpointer         user_data)
{
  for (gsize i = 0; i < n_fields; i++)
    {
      if (strcmp (fields[i].key, "MESSAGE") == 0 &&
          g_str_has_prefix (fields[i].value, "sse_event_dispatched_at_eof") &&
          log_level == G_LOG_LEVEL_DEBUG)
        eof_debug_logs++;
    }

  if (log_level == G_LOG_LEVEL_DEBUG || log_level == G_LOG_LEVEL_INFO)
    return G_LOG_WRITER_HANDLED;

  return g_log_writer_default (log_level, fields, n_fields, user_data);
}

static void
test_last_event_at_eof (void)
{
  eof_debug_logs = 0;
  assert_parses_to ("data: a\n\ndata: b", "message||1|a\nmessage||3|b\n");
  g_assert_cmpuint (eof_debug_logs, ==, 1);

  assert_parses_to ("event: x\ndata: b\n", "x||1|b\n");
  g_assert_cmpuint (eof_debug_logs, ==, 2);

  /* A complete stream logs nothing at the end. */
  assert_parses_to ("data: a\n\n", "message||1|a\n");
  g_assert_cmpuint (eof_debug_logs, ==, 2);

  /* A pending block without data is still not dispatched. */
  assert_parses_to ("data: a\n\nevent: y", "message||1|a\n");
  g_assert_cmpuint (eof_debug_logs, ==, 2);
}

static void
test_event_too_long (void)
{
  g_autoptr(SseResult) line_too_long = NULL;
  g_autoptr(SseResult) event_too_long = NULL;
  const char *input_line = "data: 0123456789abcdef\ndata: more\n\ndata: ok\n\n";
  const char *input_event = "data: 0123456789\ndata: 0123456789\n\ndata: ok\n\n";

  /* One line over the limit rejects its event; the next event is fine. */
  line_too_long = parse (input_line, strlen (input_line), 0, 16);
  g_assert_cmpuint (line_too_long->errors, ==, 1);
  g_assert_cmpstr (line_too_long->log->str, ==, "error|1|3\nmessage||4|ok\n");

  /* Lines within the limit that add up to more than it do the same. */
  event_too_long = parse (input_event, strlen (input_event), 0, 16);
  g_assert_cmpstr (event_too_long->log->str, ==, "error|1|3\nmessage||4|ok\n");

  for (gsize read_size = 1; read_size < 9; read_size++)
    {
      g_autoptr(SseResult) split = parse (input_line, strlen (input_line), read_size, 16);

      g_assert_cmpstr (split->log->str, ==, line_too_long->log->str);
    }
}

/* Multi-byte text in several scripts, CR, CRLF and LF line ends, comments,
 * fields and a last event without a blank line. */
static const char split_input[] =
  "\xEF\xBB\xBF: comment\r\n"
  "event: delta\r\n"
  "id: 1\r\n"
  "data: {\"text\":\"caf\xC3\xA9 \xE2\x80\x94 \xE6\x97\xA5\xE6\x9C\xAC\"}\r\n"
  "\r\n"
  "data: \xF0\x9F\x9A\xA8 line one\r"
  "data: line two \xC2\xB0" "C\r"
  "\r"
  "retry: 100\n"
  "data: \xF0\x9F\x8C\x9F\n"
  "\n"
  "data: tail \xE2\x9C\x85";

static void
assert_same_as_whole (const SseResult *whole,
                      const gsize     *split_points,
                      guint            n_split_points)
{
  SseResult split = { g_string_new (NULL), 0, 0 };
  g_autoptr(JarvisSseParser) parser = jarvis_sse_parser_new (on_event, on_error, &split);
  gsize length = sizeof split_input - 1;
  gsize offset = 0;

  for (guint i = 0; i < n_split_points; i++)
    {
      jarvis_sse_parser_feed (parser, split_input + offset, split_points[i] - offset);
      offset = split_points[i];
    }
  jarvis_sse_parser_feed (parser, split_input + offset, length - offset);
  jarvis_sse_parser_finish (parser);

  g_assert_cmpstr (split.log->str, ==, whole->log->str);
  g_string_free (split.log, TRUE);
}

static void
test_split_fixed_reads (void)
{
  g_autoptr(SseResult) whole = parse (split_input, sizeof split_input - 1, 0, 0);

  g_assert_cmpuint (whole->events, ==, 4);
  g_assert_cmpuint (whole->errors, ==, 0);

  for (gsize read_size = 1; read_size <= 16; read_size++)
    {
      g_autoptr(SseResult) split = parse (split_input, sizeof split_input - 1, read_size, 0);

      g_test_message ("reads of %" G_GSIZE_FORMAT " bytes", read_size);
      g_assert_cmpstr (split->log->str, ==, whole->log->str);
    }
}

static void
test_split_every_offset (void)
{
  g_autoptr(SseResult) whole = parse (split_input, sizeof split_input - 1, 0, 0);
  gsize length = sizeof split_input - 1;

  /* Every single cut, then every pair of cuts: this covers cuts inside
   * each UTF-8 sequence, the BOM and each CRLF. */
  for (gsize first = 0; first <= length; first++)
    {
      assert_same_as_whole (whole, &first, 1);

      for (gsize second = first; second <= length; second++)
        {
          gsize points[] = { first, second };

          assert_same_as_whole (whole, points, G_N_ELEMENTS (points));
        }
    }
}

static void
test_split_random (void)
{
  g_autoptr(SseResult) whole = parse (split_input, sizeof split_input - 1, 0, 0);
  gsize length = sizeof split_input - 1;
  GRand *rand = g_rand_new_with_seed (g_test_rand_int ());

  for (guint round = 0; round < 500; round++)
    {
      gsize points[12];
      guint n_points = g_rand_int_range (rand, 1, G_N_ELEMENTS (points) + 1);

      for (guint i = 0; i < n_points; i++)
        points[i] = g_rand_int_range (rand, 0, length + 1);

      /* Cuts must be ascending. */
      for (guint i = 1; i < n_points; i++)
        for (guint j = i; j > 0 && points[j - 1] > points[j]; j--)
          {
            gsize swap = points[j];

            points[j] = points[j - 1];
            points[j - 1] = swap;
          }

      assert_same_as_whole (whole, points, n_points);
    }

  g_rand_free (rand);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_log_set_writer_func (count_eof_logs, NULL, NULL);

  g_test_add_func ("/jarvis/input/sse/line-ends", test_line_ends);
  g_test_add_func ("/jarvis/input/sse/cr-lf-split", test_cr_lf_split);
  g_test_add_func ("/jarvis/input/sse/comments", test_comments);
  g_test_add_func ("/jarvis/input/sse/multiline-data", test_multiline_data);
  g_test_add_func ("/jarvis/input/sse/fields", test_fields);
  g_test_add_func ("/jarvis/input/sse/blocks-without-data", test_blocks_without_data);
  g_test_add_func ("/jarvis/input/sse/bom", test_bom);
  g_test_add_func ("/jarvis/input/sse/last-event-at-eof", test_last_event_at_eof);
  g_test_add_func ("/jarvis/input/sse/event-too-long", test_event_too_long);
  g_test_add_func ("/jarvis/input/sse/split/fixed-reads", test_split_fixed_reads);
  g_test_add_func ("/jarvis/input/sse/split/every-offset", test_split_every_offset);
  g_test_add_func ("/jarvis/input/sse/split/random", test_split_random);

  return g_test_run ();
}
