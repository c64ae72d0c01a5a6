#include "config.h"

#include <string.h>

#include "jarvis-events-format.h"
#include "jarvis-json.h"

/*
 * The `events` format: JSON Lines, one event per line.
 *
 *   {"type": "agent.stream.delta", "request_id": "r1", "text": "Hi"}
 *
 * `type` and `request_id` are required strings. `session_id`, `trace_id`
 * and `text` are optional strings, `payload` an optional object and
 * `choice` an optional non-negative integer. Every other member is kept in
 * the payload, next to the members of `payload` itself. A line of type
 * `agent.stream.flush` or `agent.stream.complete` is an input error,
 * because only the bus emits those.
 */

static const char *const known_members[] = {
  "type", "request_id", "session_id", "trace_id", "text", "payload", "choice",
};

static gboolean
is_known_member (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (known_members); i++)
    {
      if (strcmp (name, known_members[i]) == 0)
        return TRUE;
    }

  return FALSE;
}

static gboolean
get_required_string (JsonObject  *record,
                     const char  *member,
                     const char **value,
                     GError     **error)
{
  if (!json_object_has_member (record, member))
    {
      g_set_error (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_MISSING_FIELD,
                   "missing required member `%s`", member);
      return FALSE;
    }

  *value = jarvis_json_get_string (record, member);
  if (*value == NULL || **value == '\0')
    {
      g_set_error (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_INVALID_VALUE,
                   "`%s` must be a non-empty string", member);
      return FALSE;
    }

  return TRUE;
}

static gboolean
get_optional_string (JsonObject  *record,
                     const char  *member,
                     const char **value,
                     GError     **error)
{
  JsonNode *node = json_object_get_member (record, member);

  *value = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;

  *value = jarvis_json_get_string (record, member);
  if (*value == NULL)
    {
      g_set_error (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_INVALID_VALUE,
                   "`%s` must be a string", member);
      return FALSE;
    }

  return TRUE;
}

static gboolean
get_choice (JsonObject  *record,
            guint       *choice,
            GError     **error)
{
  JsonNode *node = json_object_get_member (record, "choice");
  gint64 value;

  *choice = 0;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;

  if (!jarvis_json_get_int (record, "choice", &value) || value < 0 || value > G_MAXUINT)
    {
      g_set_error_literal (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_INVALID_VALUE,
                           "`choice` must be a non-negative integer");
      return FALSE;
    }

  *choice = (guint) value;
  return TRUE;
}

static gboolean
add_member (GVariantDict  *payload,
            const char    *name,
            JsonNode      *node,
            GError       **error)
{
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GError) convert_error = NULL;

  /* The name becomes a GVariant string, see jarvis_json_to_variant(). */
  if (!g_utf8_validate (name, -1, NULL))
    {
      g_set_error_literal (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_INVALID_VALUE,
                           "a member name is not valid UTF-8, such as an unpaired "
                           "surrogate escape");
      return FALSE;
    }

  value = jarvis_json_to_variant (node, &convert_error);
  if (value == NULL)
    {
      g_set_error (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_INVALID_VALUE,
                   "member `%s`: %s", name, convert_error->message);
      return FALSE;
    }

  g_variant_dict_insert_value (payload, name, value);
  return TRUE;
}

/* Flush and complete events carry the bus's own account of a request: an
 * input that sent them could fake text no delta carried or a second
 * completion. */
static gboolean
check_not_bus_type (const char  *type,
                    GError     **error)
{
  if (strcmp (type, JARVIS_EVENT_STREAM_FLUSH) != 0 &&
      strcmp (type, JARVIS_EVENT_STREAM_COMPLETE) != 0)
    return TRUE;

  g_set_error (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_INVALID_VALUE,
               "type %s is emitted only by the bus, so the line was skipped",
               type);
  return FALSE;
}

/* Builds the payload from `payload` and the unknown members. Returns
 * NULL with @error unset when there is nothing to carry. */
static GVariant *
build_payload (JsonObject  *record,
               GError     **error)
{
  g_auto(GVariantDict) payload = G_VARIANT_DICT_INIT (NULL);
  JsonNode *payload_node = json_object_get_member (record, "payload");
  JsonObjectIter iter;
  const char *name;
  JsonNode *node;
  gboolean empty = TRUE;

  if (payload_node != NULL && !JSON_NODE_HOLDS_NULL (payload_node))
    {
      if (!JSON_NODE_HOLDS_OBJECT (payload_node))
        {
          g_set_error_literal (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_INVALID_VALUE,
                               "`payload` must be an object");
          return NULL;
        }

      json_object_iter_init (&iter, json_node_get_object (payload_node));
      while (json_object_iter_next (&iter, &name, &node))
        {
          if (!add_member (&payload, name, node, error))
            return NULL;
        }
      empty = FALSE;
    }

  json_object_iter_init (&iter, record);
  while (json_object_iter_next (&iter, &name, &node))
    {
      if (is_known_member (name))
        continue;

      if (!add_member (&payload, name, node, error))
        return NULL;
      empty = FALSE;
    }

  if (empty)
    return NULL;

  return g_variant_ref_sink (g_variant_dict_end (&payload));
}

/**
 * jarvis_events_format_parse:
 * @record: one line's JSON object
 * @default_session_id: (nullable): session for records that name none
 * @error: return location for a %JARVIS_INPUT_ERROR error
 *
 * Turns one `events` record into an event.
 *
 * Returns: (transfer full) (nullable): an unsealed event, or %NULL if the
 *   record is invalid
 */
JarvisEvent *
jarvis_events_format_parse (JsonObject  *record,
                            const char  *default_session_id,
                            GError     **error)
{
  g_autoptr(JarvisEvent) event = NULL;
  g_autoptr(GVariant) payload = NULL;
  g_autoptr(GError) payload_error = NULL;
  const char *type;
  const char *request_id;
  const char *session_id;
  const char *trace_id;
  const char *text;
  guint choice;

  g_return_val_if_fail (record != NULL, NULL);

  if (!get_required_string (record, "type", &type, error) ||
      !check_not_bus_type (type, error) ||
      !get_required_string (record, "request_id", &request_id, error) ||
      !get_optional_string (record, "session_id", &session_id, error) ||
      !get_optional_string (record, "trace_id", &trace_id, error) ||
      !get_optional_string (record, "text", &text, error) ||
      !get_choice (record, &choice, error))
    return NULL;

  payload = build_payload (record, &payload_error);
  if (payload_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&payload_error));
      return NULL;
    }

  event = jarvis_event_new (type, request_id);
  if (session_id == NULL)
    session_id = default_session_id;
  if (session_id != NULL)
    jarvis_event_set_session_id (event, session_id);
  if (trace_id != NULL)
    jarvis_event_set_trace_id (event, trace_id);
  if (text != NULL)
    jarvis_event_set_text (event, text, -1);
  if (payload != NULL)
    jarvis_event_set_payload (event, payload);
  jarvis_event_set_choice (event, choice);

  return g_steal_pointer (&event);
}

/*
 * The fast path: a strict reader for the shape almost every line has, a
 * flat object whose members are only `type`, `request_id`, `session_id`,
 * `trace_id` and `text` (strings, or null where optional) and `choice` (a
 * non-negative integer or null). For each line json-glib builds a
 * JsonObject with a hash table and a node per member. Callgrind put that
 * at about four fifths of the 34,000 to 42,000 instructions jarvis-host
 * spent on a delta line, depending on the line's members.
 *
 * The reader declines everything else: other members, duplicate members,
 * nested values, floats, escapes in member names, raw control characters,
 * `\u0000`, unpaired surrogates, invalid UTF-8, trailing bytes and the
 * bus-only types. The caller then parses the line with json-glib, so that
 * errors and payloads come from one place. For a line the reader accepts,
 * the event equals the one jarvis_events_format_parse() builds, which the
 * test `input-events-fast-path` and the fuzz target `events-fast-path`
 * check.
 */

typedef enum
{
  MEMBER_TYPE,
  MEMBER_REQUEST_ID,
  MEMBER_SESSION_ID,
  MEMBER_TRACE_ID,
  MEMBER_TEXT,
  MEMBER_CHOICE,
  N_MEMBERS,
} Member;

/* Indexed by Member. Each name ends with its closing quote, so that one
 * comparison checks that the member name ends there. */
static const struct
{
  const char *quoted_name;
  gsize length;
} fast_path_members[N_MEMBERS] = {
#define MEMBER_NAME(name) { name "\"", sizeof name }
  [MEMBER_TYPE] = MEMBER_NAME ("type"),
  [MEMBER_REQUEST_ID] = MEMBER_NAME ("request_id"),
  [MEMBER_SESSION_ID] = MEMBER_NAME ("session_id"),
  [MEMBER_TRACE_ID] = MEMBER_NAME ("trace_id"),
  [MEMBER_TEXT] = MEMBER_NAME ("text"),
  [MEMBER_CHOICE] = MEMBER_NAME ("choice"),
#undef MEMBER_NAME
};

typedef struct
{
  /* The caller's scratch copy of the line, which strings are decoded into. */
  char *cursor;
  char *end;

  const char *strings[N_MEMBERS];  /* in the copy, NUL-terminated, nullable */
  gsize text_length;
  guint choice;
} LineReader;

static void
skip_whitespace (LineReader *reader)
{
  while (reader->cursor < reader->end &&
         (*reader->cursor == ' ' || *reader->cursor == '\t' ||
          *reader->cursor == '\n' || *reader->cursor == '\r'))
    reader->cursor++;
}

static gboolean
expect_char (LineReader *reader,
             char        c)
{
  skip_whitespace (reader);
  if (reader->cursor >= reader->end || *reader->cursor != c)
    return FALSE;

  reader->cursor++;
  return TRUE;
}

static gboolean
match_member_name (LineReader *reader,
                   Member      member)
{
  gsize length = fast_path_members[member].length;

  if ((gsize) (reader->end - reader->cursor) < length ||
      memcmp (reader->cursor, fast_path_members[member].quoted_name, length) != 0)
    return FALSE;

  reader->cursor += length;
  return TRUE;
}

/* Reads one of the known member names, up to and including the colon. Any
 * other name, also one spelt with escapes, makes the reader decline. */
static gboolean
read_member_name (LineReader *reader,
                  Member     *member)
{
  if (!expect_char (reader, '"') || reader->cursor >= reader->end)
    return FALSE;

  switch (*reader->cursor)
    {
    case 't':
      if (match_member_name (reader, MEMBER_TYPE))
        *member = MEMBER_TYPE;
      else if (match_member_name (reader, MEMBER_TEXT))
        *member = MEMBER_TEXT;
      else if (match_member_name (reader, MEMBER_TRACE_ID))
        *member = MEMBER_TRACE_ID;
      else
        return FALSE;
      break;

    case 'r':
      if (!match_member_name (reader, MEMBER_REQUEST_ID))
        return FALSE;
      *member = MEMBER_REQUEST_ID;
      break;

    case 's':
      if (!match_member_name (reader, MEMBER_SESSION_ID))
        return FALSE;
      *member = MEMBER_SESSION_ID;
      break;

    case 'c':
      if (!match_member_name (reader, MEMBER_CHOICE))
        return FALSE;
      *member = MEMBER_CHOICE;
      break;

    default:
      return FALSE;
    }

  return expect_char (reader, ':');
}

/* Reads the four hex digits of a `\u` escape that starts before the cursor. */
static gboolean
read_hex4 (LineReader *reader,
           gunichar   *value)
{
  *value = 0;
  if (reader->end - reader->cursor < 4)
    return FALSE;

  for (int i = 0; i < 4; i++)
    {
      int digit = g_ascii_xdigit_value (reader->cursor[i]);

      if (digit < 0)
        return FALSE;
      *value = (*value << 4) | (gunichar) digit;
    }

  reader->cursor += 4;
  return TRUE;
}

/* Decodes a `\u` escape, or two for a surrogate pair, from the hex digits
 * at the cursor. Declines U+0000, because the event's strings are C
 * strings, and unpaired surrogates, which json-glib 1.6.6 turns into
 * invalid UTF-8. */
static gboolean
read_unicode_escape (LineReader *reader,
                     gunichar   *value)
{
  gunichar low;

  if (!read_hex4 (reader, value) || *value == 0)
    return FALSE;

  if (*value >= 0xDC00 && *value <= 0xDFFF)
    return FALSE;
  if (*value < 0xD800 || *value > 0xDBFF)
    return TRUE;

  if (reader->end - reader->cursor < 2 || reader->cursor[0] != '\\' || reader->cursor[1] != 'u')
    return FALSE;
  reader->cursor += 2;

  if (!read_hex4 (reader, &low) || low < 0xDC00 || low > 0xDFFF)
    return FALSE;

  *value = 0x10000 + ((*value - 0xD800) << 10) + (low - 0xDC00);
  return TRUE;
}

/* Repeats a byte value in all eight bytes of a guint64. */
#define BYTES_OF(byte) (G_GUINT64_CONSTANT (0x0101010101010101) * (byte))

/* Whether any byte of @word is below 0x20, a quote or a backslash: the
 * bytes that end a plain run in a JSON string. (x - 0x01…) & ~x has the
 * top bit set in some byte exactly when x has a zero byte, and
 * (x - 0x20…) & ~x when x has a byte below 0x20. */
static inline gboolean
has_special_byte (guint64 word)
{
  guint64 quote = word ^ BYTES_OF ('"');
  guint64 backslash = word ^ BYTES_OF ('\\');
  guint64 found = ((word - BYTES_OF (0x20)) & ~word) |
                  ((quote - BYTES_OF (0x01)) & ~quote) |
                  ((backslash - BYTES_OF (0x01)) & ~backslash);

  return (found & BYTES_OF (0x80)) != 0;
}

/* Decodes a string in place and NUL-terminates it: every escape is at
 * least as long as the UTF-8 it stands for, so the output never passes the
 * input. The cursor is after the opening quote.
 *
 * Only strings with raw bytes above 0x7F need a UTF-8 check, because
 * escapes add only complete, valid characters. Checking the decoded string
 * rejects what checking the raw bytes would: an escape's UTF-8 never starts
 * with a continuation byte, so it cannot complete a broken raw sequence. */
static gboolean
read_string (LineReader  *reader,
             const char **value,
             gsize       *length)
{
  char *out = reader->cursor;
  const char *start = out;
  guint64 raw_bits = 0;

  for (;;)
    {
      const char *run = reader->cursor;
      guchar c = 0;
      gunichar unichar;

      /* Find the end of the run of bytes that need no decoding, eight at a
       * time and then byte by byte, and move the run in one go. */
      while (reader->end - reader->cursor >= 8)
        {
          guint64 word;

          memcpy (&word, reader->cursor, sizeof word);
          if (has_special_byte (word))
            break;
          raw_bits |= word;
          reader->cursor += 8;
        }

      while (reader->cursor < reader->end)
        {
          c = (guchar) *reader->cursor;
          if (c < 0x20 || c == '"' || c == '\\')
            break;
          raw_bits |= c;
          reader->cursor++;
        }

      if (out != run)
        memmove (out, run, reader->cursor - run);
      out += reader->cursor - run;

      if (reader->cursor >= reader->end || c < 0x20)
        return FALSE;

      reader->cursor++;
      if (c == '"')
        break;

      if (reader->cursor >= reader->end)
        return FALSE;

      switch (*reader->cursor++)
        {
        case '"': *out++ = '"'; break;
        case '\\': *out++ = '\\'; break;
        case '/': *out++ = '/'; break;
        case 'b': *out++ = '\b'; break;
        case 'f': *out++ = '\f'; break;
        case 'n': *out++ = '\n'; break;
        case 'r': *out++ = '\r'; break;
        case 't': *out++ = '\t'; break;
        case 'u':
          if (!read_unicode_escape (reader, &unichar))
            return FALSE;
          out += g_unichar_to_utf8 (unichar, out);
          break;
        default:
          return FALSE;
        }
    }

  *out = '\0';
  if ((raw_bits & BYTES_OF (0x80)) != 0 && !g_utf8_validate_len (start, out - start, NULL))
    return FALSE;

  *value = start;
  *length = out - start;
  return TRUE;
}

static gboolean
read_null (LineReader *reader)
{
  if (reader->end - reader->cursor < 4 || memcmp (reader->cursor, "null", 4) != 0)
    return FALSE;

  reader->cursor += 4;
  return TRUE;
}

/* Reads `choice`: null, or an integer without sign, fraction, exponent or
 * leading zero that fits a guint. json-glib 1.6.6 reads `01` as 1 and wraps
 * integers past 64 bits, so those decline rather than guess. */
static gboolean
read_choice (LineReader *reader)
{
  guint64 value = 0;
  int digits = 0;

  skip_whitespace (reader);
  if (reader->cursor < reader->end && *reader->cursor == 'n')
    {
      reader->choice = 0;
      return read_null (reader);
    }

  while (reader->cursor < reader->end && g_ascii_isdigit (*reader->cursor))
    {
      if (digits == 1 && value == 0)
        return FALSE;
      if (++digits > 10)
        return FALSE;
      value = value * 10 + (guint64) (*reader->cursor - '0');
      reader->cursor++;
    }

  if (digits == 0 || value > G_MAXUINT)
    return FALSE;

  reader->choice = (guint) value;
  return TRUE;
}

static gboolean
read_member_value (LineReader *reader,
                   Member      member)
{
  gsize length = 0;

  if (member == MEMBER_CHOICE)
    return read_choice (reader);

  skip_whitespace (reader);
  if (reader->cursor >= reader->end)
    return FALSE;

  if (*reader->cursor == 'n')
    {
      reader->strings[member] = NULL;
      return read_null (reader);
    }

  if (*reader->cursor != '"')
    return FALSE;
  reader->cursor++;

  if (!read_string (reader, &reader->strings[member], &length))
    return FALSE;

  if (member == MEMBER_TEXT)
    reader->text_length = length;
  return TRUE;
}

static gboolean
read_object (LineReader *reader)
{
  guint seen = 0;

  if (!expect_char (reader, '{'))
    return FALSE;

  for (;;)
    {
      Member member;
      char separator;

      if (!read_member_name (reader, &member) || (seen & (1u << member)) != 0)
        return FALSE;
      seen |= 1u << member;

      if (!read_member_value (reader, member))
        return FALSE;

      skip_whitespace (reader);
      if (reader->cursor >= reader->end)
        return FALSE;

      separator = *reader->cursor++;
      if (separator == '}')
        break;
      if (separator != ',')
        return FALSE;
    }

  skip_whitespace (reader);
  return reader->cursor == reader->end;
}

/**
 * jarvis_events_format_read_line:
 * @data: (array length=length): one line of the `events` format
 * @length: number of bytes in @data
 * @default_session_id: (nullable): session for records that name none
 * @scratch: a buffer the reader reuses across lines
 *
 * Builds the event of a line in the common shape without json-glib (see
 * the comment above). For any other line it returns %NULL and reports
 * nothing, and the caller parses the line with json-glib and hands the
 * object to jarvis_events_format_parse().
 *
 * Returns: (transfer full) (nullable): an unsealed event, or %NULL if the
 *   line needs the full parser
 */
JarvisEvent *
jarvis_events_format_read_line (const char *data,
                                gsize       length,
                                const char *default_session_id,
                                GString    *scratch)
{
  LineReader reader = { 0 };
  JarvisEvent *event;
  const char *session_id;

  g_return_val_if_fail (data != NULL || length == 0, NULL);
  g_return_val_if_fail (scratch != NULL, NULL);

  /* Bytes above 0x7F outside strings make the reader decline, and
   * read_string() checks those inside, so the line needs no UTF-8 check of
   * its own. */
  if (length == 0)
    return NULL;

  g_string_truncate (scratch, 0);
  g_string_append_len (scratch, data, length);
  reader.cursor = scratch->str;
  reader.end = scratch->str + length;

  if (!read_object (&reader))
    return NULL;

  if (reader.strings[MEMBER_TYPE] == NULL || *reader.strings[MEMBER_TYPE] == '\0' ||
      reader.strings[MEMBER_REQUEST_ID] == NULL || *reader.strings[MEMBER_REQUEST_ID] == '\0' ||
      strcmp (reader.strings[MEMBER_TYPE], JARVIS_EVENT_STREAM_FLUSH) == 0 ||
      strcmp (reader.strings[MEMBER_TYPE], JARVIS_EVENT_STREAM_COMPLETE) == 0)
    return NULL;

  event = jarvis_event_new (reader.strings[MEMBER_TYPE], reader.strings[MEMBER_REQUEST_ID]);

  session_id = reader.strings[MEMBER_SESSION_ID];
  if (session_id == NULL)
    session_id = default_session_id;
  if (session_id != NULL)
    jarvis_event_set_session_id (event, session_id);
  if (reader.strings[MEMBER_TRACE_ID] != NULL)
    jarvis_event_set_trace_id (event, reader.strings[MEMBER_TRACE_ID]);
  if (reader.strings[MEMBER_TEXT] != NULL)
    jarvis_event_set_text (event, reader.strings[MEMBER_TEXT], reader.text_length);
  jarvis_event_set_choice (event, reader.choice);

  return event;
}
