#pragma once

#include <json-glib/json-glib.h>

#include "jarvis-decoder.h"

G_BEGIN_DECLS

JarvisEvent *jarvis_events_format_parse (JsonObject  *record,
                                         const char  *default_session_id,
                                         GError     **error);

JarvisEvent *jarvis_events_format_read_line (const char *data,
                                             gsize       length,
                                             const char *default_session_id,
                                             GString    *scratch);

G_END_DECLS
