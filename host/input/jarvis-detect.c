#include "config.h"

#include <string.h>

#include "jarvis-detect.h"
#include "jarvis-json.h"

/*
 * Format detection for `--format=auto`. The decoder looks at the first
 * line that is not blank: an SSE field or comment means SSE framing, and
 * the first JSON record (the first SSE data, or the line itself) decides
 * the format.
 */

static gboolean
has_prefix (const char *line,
            gsize       length,
            const char *prefix)
{
  gsize prefix_length = strlen (prefix);

  return length >= prefix_length && memcmp (line, prefix, prefix_length) == 0;
}

/**
 * jarvis_detect_sse_line:
 * @line: (array length=length): a line without its line end
 * @length: number of bytes in @line
 *
 * Returns: %TRUE if @line is an SSE comment or starts with one of the
 *   fields `data:`, `event:`, `id:` or `retry:`
 */
gboolean
jarvis_detect_sse_line (const char *line,
                        gsize       length)
{
  return has_prefix (line, length, ":") ||
         has_prefix (line, length, "data:") ||
         has_prefix (line, length, "event:") ||
         has_prefix (line, length, "id:") ||
         has_prefix (line, length, "retry:");
}

/**
 * jarvis_detect_json_format:
 * @record: the first JSON record of the input
 *
 * Decides the format from the members of @record:
 * - `type` starting with `message_` or `content_block_`: anthropic
 * - `object` equal to `chat.completion.chunk`, or a `choices` member: openai
 * - `model` with `done`, `response` or `message`: ollama
 * - string `type` and `request_id`: events
 *
 * Returns: the format, or %JARVIS_INPUT_FORMAT_AUTO if none matches
 */
JarvisInputFormat
jarvis_detect_json_format (JsonObject *record)
{
  const char *type = jarvis_json_get_string (record, "type");

  if (type != NULL &&
      (g_str_has_prefix (type, "message_") || g_str_has_prefix (type, "content_block_")))
    return JARVIS_INPUT_FORMAT_ANTHROPIC;

  if (g_strcmp0 (jarvis_json_get_string (record, "object"), "chat.completion.chunk") == 0 ||
      json_object_has_member (record, "choices"))
    return JARVIS_INPUT_FORMAT_OPENAI;

  if (json_object_has_member (record, "model") &&
      (json_object_has_member (record, "done") ||
       json_object_has_member (record, "response") ||
       json_object_has_member (record, "message")))
    return JARVIS_INPUT_FORMAT_OLLAMA;

  if (type != NULL && jarvis_json_get_string (record, "request_id") != NULL)
    return JARVIS_INPUT_FORMAT_EVENTS;

  return JARVIS_INPUT_FORMAT_AUTO;
}
