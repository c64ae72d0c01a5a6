#pragma once

#include <json-glib/json-glib.h>

#include "jarvis-decoder.h"

G_BEGIN_DECLS

JarvisEvent *jarvis_events_format_parse (JsonObject  *record,
                                         const char  *default_session_id,
                                         GError     **error);

G_END_DECLS
