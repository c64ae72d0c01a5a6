#include "config.h"

#include <stdio.h>
#include <string.h>

#include "jarvis-decoder.h"
#include "jarvis-json.h"

/*
 * JSON helpers shared by the input formats. json-glib's typed getters log
 * a critical when a member has another type. In untrusted input that is
 * bad data, not a programmer error, so these getters check the type and
 * return nothing instead.
 */

/* Reads the four hex digits of a `\u` escape at @p. Returns -1 when they
 * are not four hex digits, which json-glib then reports. */
static gint
read_escape_unit (const char *p,
                  const char *end)
{
  gint unit = 0;

  if (end - p < 4)
    return -1;

  for (gsize i = 0; i < 4; i++)
    {
      gint digit = g_ascii_xdigit_value (p[i]);

      if (digit < 0)
        return -1;
      unit = unit * 16 + digit;
    }

  return unit;
}

/* Checks the `\u` escape whose digits start at @digits. Returns how many
 * bytes from @digits on belong to it, or -1 when it must be replaced: a
 * NUL, which would end json-glib's C string, or a UTF-16 surrogate without
 * its partner. json-glib 1.6.6 turns an unpaired low surrogate into invalid
 * UTF-8 and leaks memory on a high surrogate followed by another escape. */
static gssize
check_escape (const char *digits,
              const char *end)
{
  gint unit = read_escape_unit (digits, end);
  gint low;

  if (unit < 0)
    return 0;

  if (unit == 0)
    return -1;

  if (unit < 0xD800 || unit > 0xDFFF)
    return 4;

  if (unit >= 0xDC00)
    return -1;

  if (end - digits < 10 || digits[4] != '\\' || digits[5] != 'u')
    return -1;

  low = read_escape_unit (digits + 6, end);
  if (low < 0xDC00 || low > 0xDFFF)
    return -1;

  return 10;
}

static gboolean
set_trailing_data_error (GError     **error,
                         const char  *data,
                         const char  *p)
{
  g_set_error (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_MALFORMED,
               "invalid JSON at column %td: unexpected data after the end of the "
               "first value; put one JSON object on each line", p - data + 1);
  return FALSE;
}

/* Finds what json-glib 1.6.6 gets wrong, before it parses the text:
 * nesting deep enough to exhaust the stack, unpaired surrogate escapes,
 * and a second value after the first, which it accepts by keeping the
 * last one and leaking the others. Counts the escapes that check_escape()
 * wants replaced in @n_replaced, and when @rewritten is a copy of @data,
 * turns each into `\ufffd` there. */
static gboolean
check_structure (const char  *data,
                 gsize        length,
                 char        *rewritten,
                 guint       *n_replaced,
                 GError     **error)
{
  const char *end = data + length;
  guint depth = 0;
  gboolean in_string = FALSE;
  gboolean scalar_seen = FALSE;     /* the record starts with a string, number or literal */
  gboolean container_done = FALSE;  /* a top-level object or array has ended */

  *n_replaced = 0;

  for (const char *p = data; p < end; p++)
    {
      char c = *p;

      if (in_string)
        {
          if (c == '"')
            {
              in_string = FALSE;
            }
          else if (c == '\\' && p + 1 < end)
            {
              p++;
              if (*p == 'u')
                {
                  gssize escape_length = check_escape (p + 1, end);

                  if (escape_length < 0)
                    {
                      (*n_replaced)++;
                      if (rewritten != NULL)
                        memcpy (rewritten + (p + 1 - data), "fffd", 4);
                      escape_length = 4;
                    }

                  if (p + escape_length < end)
                    p += escape_length;
                }
            }
          continue;
        }

      if (depth == 0 && !g_ascii_isspace (c))
        {
          /* json-glib reports two scalars itself, but leaks the values
           * before an object or array, or after one. */
          if (container_done || (scalar_seen && (c == '{' || c == '[')))
            return set_trailing_data_error (error, data, p);

          if (c != '{' && c != '[')
            scalar_seen = TRUE;
        }

      if (c == '"')
        {
          in_string = TRUE;
        }
      else if (c == '[' || c == '{')
        {
          depth++;
          if (depth > JARVIS_JSON_MAX_DEPTH)
            {
              g_set_error (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_MALFORMED,
                           "JSON is nested deeper than %d levels",
                           JARVIS_JSON_MAX_DEPTH);
              return FALSE;
            }
        }
      else if ((c == ']' || c == '}') && depth > 0)
        {
          depth--;
          container_done = depth == 0;
        }
    }

  return TRUE;
}

static const char *
describe_node (JsonNode *node)
{
  switch (JSON_NODE_TYPE (node))
    {
    case JSON_NODE_OBJECT:
      return "an object";
    case JSON_NODE_ARRAY:
      return "an array";
    case JSON_NODE_NULL:
      return "null";
    case JSON_NODE_VALUE:
    default:
      return json_node_type_name (node);
    }
}

/* json-glib 1.6 words syntax errors as "<data>:LINE:COLUMN: Parse error:
 * DETAIL", naming a file that does not exist here. The position is kept
 * in the project's words; other messages pass through as they are. */
static void
set_parse_error (GError     **error,
                 const char  *message)
{
  guint line = 0;
  guint column = 0;
  int detail_offset = -1;

  if (sscanf (message, "<data>:%u:%u: Parse error: %n", &line, &column, &detail_offset) == 2 &&
      detail_offset > 0)
    {
      const char *detail = message + detail_offset;

      if (line == 1)
        g_set_error (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_MALFORMED,
                     "invalid JSON at column %u: %s", column, detail);
      else
        g_set_error (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_MALFORMED,
                     "invalid JSON at line %u, column %u of the record: %s",
                     line, column, detail);
      return;
    }

  g_set_error (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_MALFORMED,
               "invalid JSON: %s", message);
}

/**
 * jarvis_json_parse_object:
 * @parser: a parser to reuse
 * @data: (array length=length): the JSON text
 * @length: number of bytes in @data
 * @error: return location for a %JARVIS_INPUT_ERROR_MALFORMED error
 *
 * Parses one JSON object. Whitespace around it is allowed; nesting deeper
 * than %JARVIS_JSON_MAX_DEPTH, invalid UTF-8, data before or after the
 * object and any other top-level value are errors. A `\u0000` escape and a
 * UTF-16 surrogate escape without its partner are read as U+FFFD.
 *
 * Returns: (transfer full) (nullable): the object node, or %NULL on error
 */
JsonNode *
jarvis_json_parse_object (JsonParser  *parser,
                          const char  *data,
                          gsize        length,
                          GError     **error)
{
  g_autoptr(GError) parse_error = NULL;
  g_autofree char *rewritten = NULL;
  guint n_replaced = 0;
  JsonNode *root;

  g_return_val_if_fail (JSON_IS_PARSER (parser), NULL);
  g_return_val_if_fail (data != NULL || length == 0, NULL);

  if (!check_structure (data, length, NULL, &n_replaced, error))
    return NULL;

  /* json-glib returns strings as C strings, so a `\u0000` escape would
   * silently cut a string short, and it mangles unpaired surrogates. Such
   * escapes become U+FFFD instead, as invalid UTF-8 and NULs in delta text
   * do on the bus. The escapes have the same length, so error columns stay
   * right. */
  if (n_replaced > 0)
    {
      rewritten = g_memdup2 (data, length);
      check_structure (data, length, rewritten, &n_replaced, NULL);
      data = rewritten;
    }

  /* json-glib reads a length of -1 as NUL-terminated; an empty record must
   * not reach it that way. */
  if (length == 0)
    {
      g_set_error_literal (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_MALFORMED,
                           "expected a JSON object, got empty data");
      return NULL;
    }

  if (!json_parser_load_from_data (parser, data, length, &parse_error))
    {
      set_parse_error (error, parse_error->message);
      return NULL;
    }

  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_MALFORMED,
                   "expected a JSON object, got %s",
                   root != NULL ? describe_node (root) : "nothing");
      return NULL;
    }

  return json_node_ref (root);
}

/* Whether a string value or member name in @node is invalid UTF-8, which
 * g_variant_new_string() rejects with a critical. Input is checked as UTF-8
 * before parsing, but json-glib 1.6.6 decodes an unpaired low surrogate
 * escape such as `\udc00` into invalid UTF-8. Nesting is bounded by
 * JARVIS_JSON_MAX_DEPTH, so the recursion is too. */
static gboolean
has_invalid_utf8 (JsonNode *node)
{
  switch (JSON_NODE_TYPE (node))
    {
    case JSON_NODE_OBJECT:
      {
        JsonObjectIter iter;
        const char *name;
        JsonNode *member;

        json_object_iter_init (&iter, json_node_get_object (node));
        while (json_object_iter_next (&iter, &name, &member))
          {
            if (!g_utf8_validate (name, -1, NULL) || has_invalid_utf8 (member))
              return TRUE;
          }
        return FALSE;
      }

    case JSON_NODE_ARRAY:
      {
        JsonArray *array = json_node_get_array (node);

        for (guint i = 0; i < json_array_get_length (array); i++)
          {
            if (has_invalid_utf8 (json_array_get_element (array, i)))
              return TRUE;
          }
        return FALSE;
      }

    case JSON_NODE_VALUE:
      return json_node_get_value_type (node) == G_TYPE_STRING &&
             !g_utf8_validate (json_node_get_string (node), -1, NULL);

    case JSON_NODE_NULL:
    default:
      return FALSE;
    }
}

/**
 * jarvis_json_to_variant:
 * @node: any JSON node
 * @error: return location for an error
 *
 * Converts @node with json-glib's GVariant mapping: objects become
 * `a{sv}`, integers `x`, numbers `d`, strings `s`, booleans `b` and null
 * `mv`.
 *
 * Returns: (transfer full) (nullable): a non-floating variant, or %NULL
 */
GVariant *
jarvis_json_to_variant (JsonNode  *node,
                        GError   **error)
{
  g_autoptr(GError) convert_error = NULL;
  GVariant *variant;

  g_return_val_if_fail (node != NULL, NULL);

  if (has_invalid_utf8 (node))
    {
      g_set_error (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_INVALID_VALUE,
                   "cannot convert JSON %s to a GVariant: it contains a string that is "
                   "not valid UTF-8, such as an unpaired surrogate escape",
                   describe_node (node));
      return NULL;
    }

  variant = json_gvariant_deserialize (node, NULL, &convert_error);
  if (variant == NULL)
    {
      g_set_error (error, JARVIS_INPUT_ERROR, JARVIS_INPUT_ERROR_INVALID_VALUE,
                   "cannot convert JSON %s to a GVariant: %s",
                   describe_node (node),
                   convert_error != NULL ? convert_error->message : "json-glib gave no reason");
      return NULL;
    }

  return g_variant_ref_sink (variant);
}

/* Returns the member if it is a string, else NULL. */
const char *
jarvis_json_get_string (JsonObject *object,
                        const char *member)
{
  JsonNode *node = json_object_get_member (object, member);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;

  return json_node_get_string (node);
}

/* Returns the member if it is an object, else NULL. */
JsonObject *
jarvis_json_get_object (JsonObject *object,
                        const char *member)
{
  JsonNode *node = json_object_get_member (object, member);

  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return NULL;

  return json_node_get_object (node);
}

/* Returns the member if it is an array, else NULL. */
JsonArray *
jarvis_json_get_array (JsonObject *object,
                       const char *member)
{
  JsonNode *node = json_object_get_member (object, member);

  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    return NULL;

  return json_node_get_array (node);
}

/* Stores the member in @value if it is an integer. */
gboolean
jarvis_json_get_int (JsonObject *object,
                     const char *member,
                     gint64     *value)
{
  JsonNode *node = json_object_get_member (object, member);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;

  *value = json_node_get_int (node);
  return TRUE;
}

/* Stores the member in @value if it is a boolean. */
gboolean
jarvis_json_get_boolean (JsonObject *object,
                         const char *member,
                         gboolean   *value)
{
  JsonNode *node = json_object_get_member (object, member);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_BOOLEAN)
    return FALSE;

  *value = json_node_get_boolean (node);
  return TRUE;
}
