#include "config.h"

#include <string.h>

#include "jarvis-line-splitter.h"

typedef struct
{
  GString *log;
  guint lines;
  guint too_long;
} Lines;

static void
on_line (const char *line,
         gsize       length,
         guint64     line_number,
         gpointer    user_data)
{
  Lines *lines = user_data;

  g_assert_cmpuint (strlen (line), ==, length);

  g_string_append_printf (lines->log, "%" G_GUINT64_FORMAT ":%s|", line_number, line);
  lines->lines++;
}

static void
on_too_long (guint64  line_number,
             gpointer user_data)
{
  Lines *lines = user_data;

  g_string_append_printf (lines->log, "%" G_GUINT64_FORMAT ":too-long|", line_number);
  lines->too_long++;
}

/* Splits @input in reads of @read_size bytes and returns the log. */
static char *
split (const char *input,
       gsize       length,
       gsize       read_size,
       gsize       max_length,
       gboolean   *unterminated)
{
  Lines lines = { g_string_new (NULL), 0, 0 };
  g_autoptr(JarvisLineSplitter) splitter = jarvis_line_splitter_new (max_length, on_line,
                                                                     on_too_long, &lines);
  gboolean ended_inside_line;

  for (gsize offset = 0; offset < length; offset += read_size)
    jarvis_line_splitter_feed (splitter, input + offset, MIN (read_size, length - offset));

  ended_inside_line = jarvis_line_splitter_finish (splitter);
  if (unterminated != NULL)
    *unterminated = ended_inside_line;

  return g_string_free (lines.log, FALSE);
}

static void
assert_splits_to (const char *input,
                  gsize       max_length,
                  const char *expected)
{
  gsize length = strlen (input);

  for (gsize read_size = 1; read_size <= length; read_size++)
    {
      g_autofree char *log = split (input, length, read_size, max_length, NULL);

      g_test_message ("reads of %" G_GSIZE_FORMAT " bytes", read_size);
      g_assert_cmpstr (log, ==, expected);
    }
}

static void
test_line_ends (void)
{
  assert_splits_to ("a\nb\r\nc\rd\n", 64, "1:a|2:b|3:c|4:d|");
  assert_splits_to ("\n\r\n\r", 64, "1:|2:|3:|");
  assert_splits_to ("a\r\r\nb", 64, "1:a|2:|3:b|");
  assert_splits_to ("\n\nx", 64, "1:|2:|3:x|");
}

static void
test_unterminated_last_line (void)
{
  gboolean unterminated = FALSE;
  g_autofree char *with_tail = split ("a\nb", 3, 1, 64, &unterminated);
  g_autofree char *without_tail = NULL;

  g_assert_cmpstr (with_tail, ==, "1:a|2:b|");
  g_assert_true (unterminated);

  without_tail = split ("a\n", 2, 1, 64, &unterminated);
  g_assert_cmpstr (without_tail, ==, "1:a|");
  g_assert_false (unterminated);
}

static void
test_bom (void)
{
  assert_splits_to ("\xEF\xBB\xBFx\ny", 64, "1:x|2:y|");
  assert_splits_to ("\xEF\xBBx", 64, "1:\xEF\xBBx|");
  assert_splits_to ("\xEF", 64, "1:\xEF|");
  assert_splits_to ("x\xEF\xBB\xBF", 64, "1:x\xEF\xBB\xBF|");
}

static void
test_too_long (void)
{
  Lines lines = { g_string_new (NULL), 0, 0 };
  g_autoptr(JarvisLineSplitter) splitter = jarvis_line_splitter_new (4, on_line, on_too_long, &lines);

  assert_splits_to ("1234\n12345\nok\n", 4, "1:1234|2:too-long|3:ok|");
  assert_splits_to ("123456789\r\n\r\nx", 4, "1:too-long|2:|3:x|");
  assert_splits_to ("12345", 4, "1:too-long|");

  /* A line far over the limit, fed in many reads, is reported once. */
  for (guint i = 0; i < 1000; i++)
    jarvis_line_splitter_feed (splitter, "0123456789", 10);
  jarvis_line_splitter_feed (splitter, "\nok\n", 4);
  jarvis_line_splitter_finish (splitter);

  g_assert_cmpuint (lines.too_long, ==, 1);
  g_assert_cmpuint (lines.lines, ==, 1);
  g_assert_cmpstr (lines.log->str, ==, "1:too-long|2:ok|");
  g_string_free (lines.log, TRUE);
}

static void
test_line_numbers (void)
{
  Lines lines = { g_string_new (NULL), 0, 0 };
  g_autoptr(JarvisLineSplitter) splitter = jarvis_line_splitter_new (64, on_line, on_too_long, &lines);

  g_assert_cmpuint (jarvis_line_splitter_get_line_number (splitter), ==, 1);
  jarvis_line_splitter_feed (splitter, "a\r", 2);
  g_assert_cmpuint (jarvis_line_splitter_get_line_number (splitter), ==, 2);
  jarvis_line_splitter_feed (splitter, "\nb", 2);
  g_assert_cmpuint (jarvis_line_splitter_get_line_number (splitter), ==, 2);
  jarvis_line_splitter_finish (splitter);
  g_assert_cmpuint (jarvis_line_splitter_get_line_number (splitter), ==, 3);
  g_assert_cmpstr (lines.log->str, ==, "1:a|2:b|");
  g_string_free (lines.log, TRUE);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/jarvis/input/lines/line-ends", test_line_ends);
  g_test_add_func ("/jarvis/input/lines/unterminated-last-line", test_unterminated_last_line);
  g_test_add_func ("/jarvis/input/lines/bom", test_bom);
  g_test_add_func ("/jarvis/input/lines/too-long", test_too_long);
  g_test_add_func ("/jarvis/input/lines/line-numbers", test_line_numbers);

  return g_test_run ();
}
