#pragma once

#include <json-glib/json-glib.h>

#include "jarvis-decoder.h"

G_BEGIN_DECLS

gboolean jarvis_detect_sse_line (const char *line,
                                 gsize       length);

JarvisInputFormat jarvis_detect_json_format (JsonObject *record);

G_END_DECLS
