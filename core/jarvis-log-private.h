#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Lifecycle lines are debug records of domain "jarvis" whose MESSAGE is a
 * stable `key=value` text. Callers test _jarvis_log_debug_enabled() (cached
 * per bus) before formatting, so disabled logging costs one branch. */
gboolean _jarvis_log_debug_enabled (void);

void _jarvis_log_debug (const char *request_id,
                        const char *format,
                        ...) G_GNUC_PRINTF (2, 3);

void _jarvis_log_warning (const char *request_id,
                          const char *plugin_name,
                          const char *format,
                          ...) G_GNUC_PRINTF (3, 4);

G_END_DECLS
