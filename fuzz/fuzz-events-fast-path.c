#include "config.h"

#include <string.h>

#include "fuzz-decode.h"
#include "fuzz-target.h"
#include "jarvis-events-format.h"
#include "jarvis-json.h"

/*
 * The `events` fast path against json-glib. Each line of the input, and
 * the input as one record, goes through jarvis_events_format_read_line()
 * and through json-glib with jarvis_events_format_parse(). When the fast
 * path accepts a record, json-glib must accept it too and build the same
 * event, field by field. Then the whole input is decoded with the fast path
 * on and off, which must give the same events and errors.
 */

static void
check_same_string (const char *field,
                   const char *fast,
                   const char *full)
{
  if (g_strcmp0 (fast, full) != 0)
    g_error ("fast path and json-glib differ in %s: \"%s\" and \"%s\"", field,
             fast != NULL ? fast : "(null)", full != NULL ? full : "(null)");
}

static void
check_same_event (JarvisEvent *fast,
                  JarvisEvent *full)
{
  const char *fast_text;
  const char *full_text;
  gsize fast_length = 0;
  gsize full_length = 0;

  check_same_string ("type", jarvis_event_get_event_type (fast), jarvis_event_get_event_type (full));
  check_same_string ("request_id", jarvis_event_get_request_id (fast), jarvis_event_get_request_id (full));
  check_same_string ("session_id", jarvis_event_get_session_id (fast), jarvis_event_get_session_id (full));
  check_same_string ("trace_id", jarvis_event_get_trace_id (fast), jarvis_event_get_trace_id (full));
  g_assert_cmpuint (jarvis_event_get_choice (fast), ==, jarvis_event_get_choice (full));

  fast_text = jarvis_event_get_text (fast, &fast_length);
  full_text = jarvis_event_get_text (full, &full_length);
  g_assert_true ((fast_text == NULL) == (full_text == NULL));
  g_assert_cmpmem (fast_text, fast_length, full_text, full_length);

  /* The fast path takes no line with a payload. */
  g_assert_null (jarvis_event_get_payload (fast));
  g_assert_null (jarvis_event_get_payload (full));
}

static void
check_record (JsonParser *parser,
              GString    *scratch,
              const char *data,
              gsize       length,
              const char *default_session_id)
{
  g_autoptr(JarvisEvent) fast = NULL;
  g_autoptr(JarvisEvent) full = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) error = NULL;

  fast = jarvis_events_format_read_line (data, length, default_session_id, scratch);
  if (fast == NULL)
    return;

  root = jarvis_json_parse_object (parser, data, length, &error);
  if (root != NULL)
    full = jarvis_events_format_parse (json_node_get_object (root), default_session_id, &error);

  if (full == NULL)
    g_error ("fast path accepted a record that json-glib rejects: %s", error->message);

  check_same_event (fast, full);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(GString) scratch = g_string_new (NULL);
  g_autofree char *with_fast_path = NULL;
  g_autofree char *without_fast_path = NULL;
  const char *line = (const char *) data;
  const char *end = line + size;

  check_record (parser, scratch, (const char *) data, size, NULL);

  while (line < end)
    {
      const char *newline = memchr (line, '\n', end - line);
      const char *line_end = newline != NULL ? newline : end;

      check_record (parser, scratch, line, line_end - line, NULL);
      check_record (parser, scratch, line, line_end - line, "fuzz-session");
      line = line_end + 1;
    }

  with_fast_path = fuzz_decode_full (JARVIS_INPUT_FORMAT_EVENTS, data, size, 0, TRUE);
  without_fast_path = fuzz_decode_full (JARVIS_INPUT_FORMAT_EVENTS, data, size, 0, FALSE);
  g_assert_cmpstr (with_fast_path, ==, without_fast_path);

  return 0;
}
