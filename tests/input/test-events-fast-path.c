#include "config.h"

#include <string.h>

#include "input-test-util.h"
#include "jarvis-events-format.h"
#include "jarvis-json.h"

/*
 * Differential tests of the `events` fast path: whenever
 * jarvis_events_format_read_line() accepts a line, its event must equal the
 * one that json-glib and jarvis_events_format_parse() build, field by
 * field. Whole inputs must give the same events and errors with the fast
 * path on and off.
 */

#define DEFAULT_SESSION "session-from-option"

typedef struct
{
  guint lines;
  guint accepted;
} Tally;

static void
assert_events_equal (JarvisEvent *fast,
                     JarvisEvent *full)
{
  const char *fast_text;
  const char *full_text;
  gsize fast_length = 0;
  gsize full_length = 0;
  GVariant *fast_payload = jarvis_event_get_payload (fast);
  GVariant *full_payload = jarvis_event_get_payload (full);

  g_assert_cmpstr (jarvis_event_get_event_type (fast), ==, jarvis_event_get_event_type (full));
  g_assert_cmpstr (jarvis_event_get_request_id (fast), ==, jarvis_event_get_request_id (full));
  g_assert_cmpstr (jarvis_event_get_session_id (fast), ==, jarvis_event_get_session_id (full));
  g_assert_cmpstr (jarvis_event_get_trace_id (fast), ==, jarvis_event_get_trace_id (full));
  g_assert_cmpuint (jarvis_event_get_choice (fast), ==, jarvis_event_get_choice (full));
  g_assert_cmpuint (jarvis_event_get_token_count (fast), ==, jarvis_event_get_token_count (full));

  fast_text = jarvis_event_get_text (fast, &fast_length);
  full_text = jarvis_event_get_text (full, &full_length);
  g_assert_true ((fast_text == NULL) == (full_text == NULL));
  g_assert_cmpmem (fast_text, fast_length, full_text, full_length);

  g_assert_true ((fast_payload == NULL) == (full_payload == NULL));
  if (fast_payload != NULL)
    g_assert_true (g_variant_equal (fast_payload, full_payload));
}

static JarvisEvent *
parse_with_json_glib (const char *line,
                      gsize       length,
                      const char *default_session_id)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) error = NULL;
  JarvisEvent *event;

  root = jarvis_json_parse_object (parser, line, length, &error);
  if (root == NULL)
    return NULL;

  event = jarvis_events_format_parse (json_node_get_object (root), default_session_id, &error);
  g_assert_true ((event == NULL) == (error != NULL));

  return event;
}

/* Compares both paths on one line, with and without a default session.
 * Returns whether the fast path accepted it. */
static gboolean
compare_line (const char *line,
              gsize       length)
{
  g_autoptr(GString) scratch = g_string_new (NULL);
  const char *sessions[] = { NULL, DEFAULT_SESSION };
  gboolean accepted = FALSE;

  for (gsize i = 0; i < G_N_ELEMENTS (sessions); i++)
    {
      g_autoptr(JarvisEvent) fast = NULL;
      g_autoptr(JarvisEvent) full = NULL;

      fast = jarvis_events_format_read_line (line, length, sessions[i], scratch);
      full = parse_with_json_glib (line, length, sessions[i]);

      if (fast == NULL)
        {
          g_assert_true (i == 0 || !accepted);
          continue;
        }

      if (full == NULL)
        {
          g_autofree char *copy = g_strndup (line, length);
          g_autofree char *printable = g_strescape (copy, NULL);

          g_error ("fast path accepted a line that json-glib rejects: %s", printable);
        }

      g_assert_true (i == 0 || accepted);
      accepted = TRUE;
      assert_events_equal (fast, full);
    }

  return accepted;
}

static InputResult *
decode_with_fast_path (JarvisInputFormat  format,
                       const char        *data,
                       gsize              length,
                       gboolean           fast_path)
{
  InputResult *result = input_result_new ();
  g_autoptr(JarvisDecoder) decoder = NULL;

  decoder = jarvis_decoder_new (format, "in.jsonl", input_result_on_event,
                                input_result_on_error, result);
  jarvis_decoder_set_session_id (decoder, DEFAULT_SESSION);
  jarvis_decoder_set_events_fast_path (decoder, fast_path);
  jarvis_decoder_feed (decoder, data, length);
  jarvis_decoder_finish (decoder);

  return result;
}

/* Decodes a whole input as `events` and as `auto`, with the fast path on
 * and off, and asserts that the events and errors are the same. */
static void
compare_decoders (const char *data,
                  gsize       length)
{
  const JarvisInputFormat formats[] = { JARVIS_INPUT_FORMAT_EVENTS, JARVIS_INPUT_FORMAT_AUTO };

  for (gsize i = 0; i < G_N_ELEMENTS (formats); i++)
    {
      g_autoptr(InputResult) fast = decode_with_fast_path (formats[i], data, length, TRUE);
      g_autoptr(InputResult) full = decode_with_fast_path (formats[i], data, length, FALSE);

      g_assert_cmpstr (fast->log->str, ==, full->log->str);
      g_assert_cmpuint (fast->errors, ==, full->errors);
    }
}

/* Compares every line of @data, split as the line splitter does, and the
 * whole input through the decoder. */
static void
compare_input (const char *data,
               gsize       length,
               Tally      *tally)
{
  const char *line = data;
  const char *end = data + length;

  while (line < end)
    {
      const char *newline = memchr (line, '\n', end - line);
      const char *line_end = newline != NULL ? newline : end;
      gsize line_length = line_end - line;

      if (line_length > 0 && line[line_length - 1] == '\r')
        line_length--;

      tally->lines++;
      if (compare_line (line, line_length))
        tally->accepted++;

      line = line_end + 1;
    }

  compare_decoders (data, length);
}

/* Compares every regular file in @dir. Returns how many it read. */
static guint
compare_folder (const char *dir,
                Tally      *tally)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) handle = g_dir_open (dir, 0, &error);
  const char *name;
  guint files = 0;

  g_assert_no_error (error);

  while ((name = g_dir_read_name (handle)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *contents = NULL;
      gsize length = 0;

      if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
        continue;

      g_file_get_contents (path, &contents, &length, &error);
      g_assert_no_error (error);

      g_test_message ("comparing %s", path);
      compare_input (contents, length, tally);
      files++;
    }

  return files;
}

typedef struct
{
  const char *line;
  gboolean accepted;
} TrickyLine;

/* Lines the fast path must accept, and lines it must leave to json-glib:
 * either because json-glib rejects them, or because they carry a payload,
 * or because json-glib 1.6.6 reads them in its own way.
 *
 * json-glib 1.6.6 leaks memory on a second value before or after an object
 * or array, such as `{…}{…}` or `0 {…}`, and on a high surrogate escape
 * followed by another escape, such as `\ud800\u0041`. Before json-glib
 * parses a line, jarvis_json_parse_object() rejects the second value and
 * turns the unpaired surrogate into `\ufffd`. Valgrind checks that nothing
 * leaks. */
static const TrickyLine tricky_lines[] = {
  { "0 {\"type\":\"a\",\"request_id\":\"r\"}", FALSE },
  { "\"s\" [{\"type\":\"a\",\"request_id\":\"r\"}]", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":\"x\\u0000y\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\"}{\"type\":\"b\",\"request_id\":\"r\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\"} [1]", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":\"\\ud800\\u0041\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"x\":\"\\ud800\\n\"}", FALSE },
  { "{\"type\":\"agent.stream.delta\",\"request_id\":\"r1\",\"text\":\"hi\"}", TRUE },
  { "{\"type\":\"agent.stream.start\",\"request_id\":\"r1\",\"session_id\":\"s\",\"trace_id\":\"t\"}", TRUE },
  { "{\"type\":\"agent.stream.delta\",\"request_id\":\"r1\",\"session_id\":\"s\",\"trace_id\":\"t\",\"text\":\"x\",\"choice\":3}", TRUE },
  { "{\"type\":\"agent.stream.end\",\"request_id\":\"r1\"}", TRUE },
  { "{\"type\":\"agent.stream.cancel\",\"request_id\":\"r1\"}", TRUE },
  { "{\"type\":\"agent.stream.error\",\"request_id\":\"r1\",\"text\":\"boom\"}", TRUE },
  { "{\"type\":\"agent.stream.reasoning\",\"request_id\":\"r1\",\"text\":\"hmm\"}", TRUE },
  { "{\"type\":\"custom.thing\",\"request_id\":\"r1\"}", TRUE },

  /* Whitespace and member order */
  { "{ \"type\" : \"agent.stream.delta\" , \"request_id\" : \"r\" , \"text\" : \"a\" }", TRUE },
  { "\t{\t\"type\"\t:\t\"a\",\r\"request_id\":\"r\"\r}\t ", TRUE },
  { "  {\"request_id\":\"r\",\"text\":\"b\",\"choice\":1,\"type\":\"agent.stream.delta\"}  ", TRUE },
  { "{\"text\":\"c\",\"session_id\":\"s\",\"type\":\"agent.stream.delta\",\"trace_id\":\"t\",\"request_id\":\"r\"}", TRUE },

  /* Escapes */
  { "{\"type\":\"d\",\"request_id\":\"r\",\"text\":\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\"}", TRUE },
  { "{\"type\":\"d\",\"request_id\":\"r\",\"text\":\"\\n\"}", TRUE },
  { "{\"type\":\"d\",\"request_id\":\"r\",\"text\":\"caf\\u00e9 caf\\u00E9 \\u20ac\"}", TRUE },
  { "{\"type\":\"d\",\"request_id\":\"r\",\"text\":\"\\ud83d\\ude00\\uD83D\\uDE00\"}", TRUE },
  { "{\"type\":\"d\",\"request_id\":\"r\",\"text\":\"\\udbff\\udfff\\ud800\\udc00\"}", TRUE },
  { "{\"type\":\"d\",\"request_id\":\"r\",\"text\":\"\\u0001\\u001f\\u007f\\u0080\\u07ff\\u0800\"}", TRUE },
  { "{\"type\":\"d\",\"request_id\":\"r\",\"text\":\"\\uffff\\uFFFE\\ufeff\"}", TRUE },
  { "{\"type\":\"\\u0064\",\"request_id\":\"r\\u00e9\",\"session_id\":\"\\t\",\"trace_id\":\"\\/\"}", TRUE },

  /* Raw UTF-8 and DEL, which JSON allows unescaped */
  { "{\"type\":\"d\",\"request_id\":\"r\",\"text\":\"\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xc3\xa9\"}", TRUE },
  { "{\"type\":\"d\",\"request_id\":\"\xf0\x9f\x98\x80\",\"text\":\"a\x7f" "b\"}", TRUE },

  /* Null, empty and integer values */
  { "{\"type\":\"d\",\"request_id\":\"r\",\"session_id\":null,\"trace_id\":null,\"text\":null,\"choice\":null}", TRUE },
  { "{\"type\":\"d\",\"request_id\":\"r\",\"text\":\"\"}", TRUE },
  { "{\"type\":\"d\",\"request_id\":\"r\",\"session_id\":\"\",\"trace_id\":\"\"}", TRUE },
  { "{\"type\":\"d\",\"request_id\":\"r\",\"choice\":0}", TRUE },
  { "{\"type\":\"d\",\"request_id\":\"r\",\"choice\":10}", TRUE },
  { "{\"type\":\"d\",\"request_id\":\"r\",\"choice\":4294967295}", TRUE },

  /* Invalid records, which json-glib and the events format report */
  { "", FALSE },
  { "{}", FALSE },
  { "{\"type\":\"a\"}", FALSE },
  { "{\"request_id\":\"r\"}", FALSE },
  { "{\"type\":\"\",\"request_id\":\"r\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"\"}", FALSE },
  { "{\"type\":null,\"request_id\":\"r\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":null}", FALSE },
  { "{\"type\":\"agent.stream.flush\",\"request_id\":\"r\"}", FALSE },
  { "{\"type\":\"agent.stream.complete\",\"request_id\":\"r\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":1}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":true}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":{\"a\":1}}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":[\"a\"]}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"choice\":-1}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"choice\":1.0}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"choice\":1e2}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"choice\":\"1\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"choice\":true}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"choice\":4294967296}", FALSE },
  { "[1]", FALSE },
  { "not json", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\"}x", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",}", FALSE },
  { "{\"type\":\"a\" \"request_id\":\"r\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\"", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":nul}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":nullx}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":NULL}", FALSE },
  { "{\v\"type\":\"a\",\"request_id\":\"r\"}", FALSE },
  { "{\f\"type\":\"a\",\"request_id\":\"r\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":\"\xff\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":\"\xc0\x80\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":\"\xe2\x82\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":\"\xed\xa0\x80\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":\"\xc3\\u00a9\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":\"\\u00e9\xa9\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":\"\\u00e9\xe2\x82\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\xff\",\"text\":\"ok\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\"}\xff", FALSE },
  { "{\"typ\xc3\xa9\":\"a\",\"request_id\":\"r\"}", FALSE },
  { "\xc2\xa0{\"type\":\"a\",\"request_id\":\"r\"}", FALSE },

  /* Valid records with a payload: other members, `payload` itself */
  { "{\"type\":\"a\",\"request_id\":\"r\",\"extra\":true}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"payload\":{\"n\":1}}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"payload\":null}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"Text\":\"x\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"\":\"x\"}", FALSE },

  /* Valid JSON that json-glib 1.6.6 reads in its own way, or that the
   * fast path leaves to it */
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":\"a\",\"text\":\"b\"}", FALSE },
  { "{\"type\":\"a\",\"type\":\"b\",\"request_id\":\"r\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"choice\":null,\"choice\":1}", FALSE },
  { "{\"t\\u0079pe\":\"a\",\"request_id\":\"r\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"choice\":01}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"choice\":00}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"choice\":-0}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"choice\":99999999999999999999}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":\"x\\u0000y\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":\"\\ud800\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":\"\\ud800x\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":\"\\ud800\\n\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":\"\\udc00x\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":\"\\x41\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":\"\\U0041\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":\"\\u12\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":\"\\u12G4\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":\"\\u+041\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":\"\\'\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":\"a\x01" "b\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":\"a\tb\"}", FALSE },
  { "{\"type\":\"a\",\"request_id\":\"r\",\"text\":\"\\", FALSE },
  { "\xef\xbb\xbf{\"type\":\"a\",\"request_id\":\"r\"}", FALSE },
  { "{'type':'a','request_id':'r'}", FALSE },
};

static void
test_tricky_lines (void)
{
  g_autoptr(GString) all = g_string_new (NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (tricky_lines); i++)
    {
      const TrickyLine *tricky = &tricky_lines[i];
      g_autofree char *printable = g_strescape (tricky->line, NULL);
      gboolean accepted;

      g_test_message ("line %" G_GSIZE_FORMAT ": %s", i, printable);
      accepted = compare_line (tricky->line, strlen (tricky->line));
      if (accepted != tricky->accepted)
        g_error ("fast path %s line %" G_GSIZE_FORMAT ": %s",
                 accepted ? "accepted" : "declined", i, printable);

      g_string_append (all, tricky->line);
      g_string_append_c (all, '\n');
    }

  compare_decoders (all->str, all->len);
}

/* A raw NUL inside a line, which the string literals above cannot hold. */
static void
test_nul_byte (void)
{
  static const char line[] = "{\"type\":\"a\",\"request_id\":\"r\",\"text\":\"a\0b\"}";
  g_autoptr(GString) scratch = g_string_new (NULL);
  g_autoptr(JarvisEvent) event = NULL;

  event = jarvis_events_format_read_line (line, sizeof line - 1, NULL, scratch);
  g_assert_null (event);
  g_assert_false (compare_line (line, sizeof line - 1));
  compare_decoders (line, sizeof line - 1);
}

typedef struct
{
  const char *bytes;
  gboolean accepted;
} SpecialByte;

/* Puts each byte that ends a plain run at every offset of a string longer
 * than two eight-byte words. The reader then meets it in the word loop and
 * in the byte loop, at the start, the middle and the end of a word. */
static void
test_special_byte_positions (void)
{
  static const SpecialByte specials[] = {
    { "\\\"", TRUE },
    { "\\\\", TRUE },
    { "\\n", TRUE },
    { "\\u00e9", TRUE },
    { "\\ud83d\\ude00", TRUE },
    { "\xc3\xa9", TRUE },
    { "\xf0\x9f\x98\x80", TRUE },
    { "\x7f", TRUE },
    { "\x01", FALSE },
    { "\x1f", FALSE },
    { "\t", FALSE },
    { "\xff", FALSE },
    { "\xc3", FALSE },
  };
  const char *filler = "abcdefghijklmnopqrstuvwx";

  for (gsize i = 0; i < G_N_ELEMENTS (specials); i++)
    {
      for (gsize offset = 0; offset <= strlen (filler); offset++)
        {
          g_autofree char *line = NULL;
          g_autofree char *printable = NULL;
          gboolean accepted;

          line = g_strdup_printf ("{\"type\":\"d\",\"request_id\":\"r\",\"text\":\"%.*s%s%s\"}",
                                  (int) offset, filler, specials[i].bytes, filler + offset);
          printable = g_strescape (line, NULL);
          accepted = compare_line (line, strlen (line));
          if (accepted != specials[i].accepted)
            g_error ("fast path %s %s", accepted ? "accepted" : "declined", printable);
        }
    }
}

/* The reader decodes into the scratch buffer in place. A long line after a
 * short one, and a short one after a long one, must both come out whole. */
static void
test_scratch_reuse (void)
{
  g_autoptr(GString) scratch = g_string_new (NULL);
  g_autoptr(GString) long_line = g_string_new ("{\"type\":\"d\",\"request_id\":\"r\",\"text\":\"");
  g_autoptr(GString) long_text = g_string_new (NULL);
  const char *short_line = "{\"type\":\"d\",\"request_id\":\"q\",\"text\":\"\\u00e9\"}";

  for (guint i = 0; i < 4096; i++)
    {
      g_string_append (long_line, "\\u00e9x\\n");
      g_string_append (long_text, "\xc3\xa9x\n");
    }
  g_string_append (long_line, "\"}");

  for (guint round = 0; round < 2; round++)
    {
      g_autoptr(JarvisEvent) small = NULL;
      g_autoptr(JarvisEvent) large = NULL;
      gsize length = 0;
      const char *text;

      small = jarvis_events_format_read_line (short_line, strlen (short_line), NULL, scratch);
      g_assert_nonnull (small);
      g_assert_cmpstr (jarvis_event_get_text (small, NULL), ==, "\xc3\xa9");

      large = jarvis_events_format_read_line (long_line->str, long_line->len, NULL, scratch);
      g_assert_nonnull (large);
      text = jarvis_event_get_text (large, &length);
      g_assert_cmpmem (text, length, long_text->str, long_text->len);
    }

  g_assert_true (compare_line (long_line->str, long_line->len));
}

/* Characters for generated text: ASCII, the characters JSON must escape,
 * and two-, three- and four-byte UTF-8. */
static const gunichar text_alphabet[] = {
  'a', 'Z', '0', ' ', '"', '\\', '/', '\b', '\f', '\n', '\r', '\t', 0x01, 0x1f, 0x7f,
  0xe9, 0x7ff, 0x800, 0x20ac, 0xfeff, 0xfffd, 0xffff, 0x10000, 0x1f600, 0x10ffff,
};

/* Appends @c in one of the forms JSON allows, picked by @choice, so that
 * the generated lines use every escape form. */
static void
append_escaped (GString  *line,
                gunichar  c,
                guint32   choice)
{
  if (c >= 0x10000)
    {
      gunichar offset = c - 0x10000;

      g_string_append_printf (line, choice % 2 ? "\\u%04x\\u%04x" : "\\u%04X\\u%04X",
                              0xD800 + (offset >> 10), 0xDC00 + (offset & 0x3ff));
      return;
    }

  switch (c)
    {
    case '"': g_string_append (line, "\\\""); return;
    case '\\': g_string_append (line, "\\\\"); return;
    case '/': g_string_append (line, choice % 2 ? "\\/" : "/"); return;
    case '\b': g_string_append (line, "\\b"); return;
    case '\f': g_string_append (line, "\\f"); return;
    case '\n': g_string_append (line, "\\n"); return;
    case '\r': g_string_append (line, "\\r"); return;
    case '\t': g_string_append (line, "\\t"); return;
    default: break;
    }

  if (c < 0x20 || choice % 3 == 0)
    g_string_append_printf (line, "\\u%04x", c);
  else
    g_string_append_unichar (line, c);
}

/* Writes random tokens once with json-glib's generator and once with
 * every escape form, and checks that both paths agree on each line. */
static void
test_generated_text (void)
{
  g_autoptr(GString) input = g_string_new (NULL);
  Tally tally = { 0 };
  guint expected_accepted = 0;

  for (guint i = 0; i < 500; i++)
    {
      g_autoptr(GString) text = g_string_new (NULL);
      g_autoptr(GString) escaped = g_string_new (NULL);
      g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
      g_autoptr(JsonGenerator) generator = json_generator_new ();
      g_autoptr(JsonNode) root = NULL;
      g_autofree char *generated = NULL;
      guint length = g_test_rand_int_range (0, 12);

      for (guint j = 0; j < length; j++)
        {
          gunichar c = text_alphabet[g_test_rand_int_range (0, G_N_ELEMENTS (text_alphabet))];

          g_string_append_unichar (text, c);
          append_escaped (escaped, c, g_test_rand_int ());
        }

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "type");
      json_builder_add_string_value (builder, JARVIS_EVENT_STREAM_DELTA);
      json_builder_set_member_name (builder, "request_id");
      json_builder_add_string_value (builder, "request-1");
      json_builder_set_member_name (builder, "text");
      json_builder_add_string_value (builder, text->str);
      json_builder_end_object (builder);
      root = json_builder_get_root (builder);
      json_generator_set_root (generator, root);
      generated = json_generator_to_data (generator, NULL);

      /* json-glib 1.6.6's generator writes U+001F unescaped, a raw
       * control character that the fast path leaves to json-glib. */
      if (strchr (generated, 0x1f) == NULL)
        expected_accepted++;
      expected_accepted++;

      g_string_append_printf (input, "%s\n", generated);
      g_string_append_printf (input, "{\"type\": \"%s\", \"request_id\": \"request-1\", "
                              "\"choice\": %u, \"text\": \"%s\"}\n",
                              JARVIS_EVENT_STREAM_DELTA, i, escaped->str);
    }

  compare_input (input->str, input->len, &tally);

  g_assert_cmpuint (tally.lines, ==, 1000);
  g_assert_cmpuint (tally.accepted, ==, expected_accepted);
  g_assert_cmpuint (tally.accepted, >, 800);
}

/* Lines of an `events` file that carry no payload, which the fast path
 * must accept. */
static guint
count_plain_records (const char *contents)
{
  g_auto(GStrv) lines = g_strsplit (contents, "\n", -1);
  guint count = 0;

  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (*lines[i] == '{' && strstr (lines[i], "\"payload\"") == NULL)
        count++;
    }

  return count;
}

/* json-glib 1.6.6 decodes an unpaired low surrogate escape into invalid
 * UTF-8. In a payload that used to reach g_variant_new_string(), which
 * logged a critical and crashed the host. Now the escape becomes U+FFFD
 * before json-glib parses the line, in member names too. */
static void
test_invalid_utf8_payload (void)
{
  static const char *const lines[] = {
    "{\"type\":\"a\",\"request_id\":\"r\",\"x\":\"\\udc00x\"}",
    "{\"type\":\"a\",\"request_id\":\"r\",\"payload\":{\"x\":[\"\\udc00x\"]}}",
    "{\"type\":\"a\",\"request_id\":\"r\",\"\\udc00x\":1}",
    "{\"type\":\"a\",\"request_id\":\"r\",\"payload\":{\"\\udc00x\":1}}",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (lines); i++)
    {
      g_autoptr(InputResult) result = NULL;
      g_autofree char *printed = NULL;
      GVariant *payload;

      g_assert_false (compare_line (lines[i], strlen (lines[i])));
      compare_decoders (lines[i], strlen (lines[i]));

      result = decode_with_fast_path (JARVIS_INPUT_FORMAT_EVENTS, lines[i], strlen (lines[i]), TRUE);
      g_assert_cmpuint (result->errors, ==, 0);
      g_assert_cmpuint (result->events->len, ==, 1);

      payload = jarvis_event_get_payload (g_ptr_array_index (result->events, 0));
      g_assert_nonnull (payload);
      printed = g_variant_print (payload, FALSE);
      g_assert_nonnull (strstr (printed, "\xEF\xBF\xBD" "x"));
    }
}

static void
test_examples (void)
{
  g_autofree char *dir = g_test_build_filename (G_TEST_DIST, "..", "examples", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) handle = g_dir_open (dir, 0, &error);
  const char *name;
  guint events_files = 0;
  Tally tally = { 0 };

  g_assert_no_error (error);

  while ((name = g_dir_read_name (handle)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *contents = NULL;
      gsize length = 0;
      Tally file_tally = { 0 };

      g_file_get_contents (path, &contents, &length, &error);
      g_assert_no_error (error);

      g_test_message ("comparing %s", path);
      compare_input (contents, length, &file_tally);
      tally.lines += file_tally.lines;
      tally.accepted += file_tally.accepted;

      if (g_str_has_suffix (name, ".events"))
        {
          g_assert_cmpuint (file_tally.accepted, ==, count_plain_records (contents));
          g_assert_cmpuint (file_tally.accepted, >, 0);
          events_files++;
        }
    }

  g_test_message ("%u of %u lines took the fast path", tally.accepted, tally.lines);
  g_assert_cmpuint (events_files, >=, 1);
}

static void
test_fuzz_seeds (void)
{
  g_autofree char *root = g_test_build_filename (G_TEST_DIST, "..", "fuzz", "corpus", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) handle = g_dir_open (root, 0, &error);
  const char *name;
  Tally tally = { 0 };
  guint files = 0;

  g_assert_no_error (error);

  while ((name = g_dir_read_name (handle)) != NULL)
    {
      g_autofree char *dir = g_build_filename (root, name, NULL);

      if (g_file_test (dir, G_FILE_TEST_IS_DIR))
        files += compare_folder (dir, &tally);
    }

  g_test_message ("%u of %u lines in %u files took the fast path", tally.accepted, tally.lines, files);
  g_assert_cmpuint (files, >=, 10);
  g_assert_cmpuint (tally.accepted, >, 0);
}

static void
test_recorded_streams (void)
{
  const char *dir = input_test_corpus_dir ();
  Tally tally = { 0 };
  guint files;

  if (dir == NULL)
    {
      g_test_skip ("no recorded streams; set JARVIS_CORPUS_DIR or check out the corpus beside the source tree");
      return;
    }

  /* The recordings are provider streams, so the fast path is expected to
   * decline their lines. What counts is that both paths agree. */
  files = compare_folder (dir, &tally);
  g_test_message ("%u of %u lines in %u files took the fast path", tally.accepted, tally.lines, files);
  g_assert_cmpuint (files, >, 0);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/jarvis/input/events-fast-path/tricky-lines", test_tricky_lines);
  g_test_add_func ("/jarvis/input/events-fast-path/nul-byte", test_nul_byte);
  g_test_add_func ("/jarvis/input/events-fast-path/special-byte-positions", test_special_byte_positions);
  g_test_add_func ("/jarvis/input/events-fast-path/scratch-reuse", test_scratch_reuse);
  g_test_add_func ("/jarvis/input/events-fast-path/generated-text", test_generated_text);
  g_test_add_func ("/jarvis/input/events-fast-path/invalid-utf8-payload", test_invalid_utf8_payload);
  g_test_add_func ("/jarvis/input/events-fast-path/examples", test_examples);
  g_test_add_func ("/jarvis/input/events-fast-path/fuzz-seeds", test_fuzz_seeds);
  g_test_add_func ("/jarvis/input/events-fast-path/recorded-streams", test_recorded_streams);

  return g_test_run ();
}
