#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Deepest nesting of arrays and objects accepted in one JSON record.
 * json-glib parses recursively, so unbounded nesting would overflow the
 * stack; real records nest fewer than ten levels. */
#define JARVIS_JSON_MAX_DEPTH 128

JsonNode *jarvis_json_parse_object (JsonParser  *parser,
                                    const char  *data,
                                    gsize        length,
                                    GError     **error);

GVariant *jarvis_json_to_variant (JsonNode  *node,
                                  GError   **error);

const char *jarvis_json_get_string (JsonObject *object,
                                    const char *member);

JsonObject *jarvis_json_get_object (JsonObject *object,
                                    const char *member);

JsonArray *jarvis_json_get_array (JsonObject *object,
                                  const char *member);

gboolean jarvis_json_get_int (JsonObject *object,
                              const char *member,
                              gint64     *value);

gboolean jarvis_json_get_boolean (JsonObject *object,
                                  const char *member,
                                  gboolean   *value);

G_END_DECLS
