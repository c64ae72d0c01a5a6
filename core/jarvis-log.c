#include "config.h"

#include <stdarg.h>

#include "jarvis-log-private.h"

/* Returns whether debug records of our domain reach a writer. The result
 * comes from the default writer's filter (G_MESSAGES_DEBUG or
 * g_log_set_debug_enabled()); a custom writer installed by a test or host
 * sees the same decision. It reads the environment, so the bus caches it. */
gboolean
_jarvis_log_debug_enabled (void)
{
  return !g_log_writer_default_would_drop (G_LOG_LEVEL_DEBUG, G_LOG_DOMAIN);
}

static void
log_fields (GLogLevelFlags  level,
            const char     *priority,
            const char     *request_id,
            const char     *plugin_name,
            const char     *message)
{
  GLogField fields[5] = {
    { "GLIB_DOMAIN", G_LOG_DOMAIN, -1 },
    { "PRIORITY", priority, -1 },
    { "MESSAGE", message, -1 },
  };
  gsize n_fields = 3;

  if (request_id != NULL)
    fields[n_fields++] = (GLogField) { "JARVIS_REQUEST_ID", request_id, -1 };
  if (plugin_name != NULL)
    fields[n_fields++] = (GLogField) { "JARVIS_PLUGIN", plugin_name, -1 };

  g_log_structured_array (level, fields, n_fields);
}

void
_jarvis_log_debug (const char *request_id,
                   const char *format,
                   ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  log_fields (G_LOG_LEVEL_DEBUG, "7", request_id, NULL, message);
}

void
_jarvis_log_warning (const char *request_id,
                     const char *plugin_name,
                     const char *format,
                     ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  log_fields (G_LOG_LEVEL_WARNING, "4", request_id, plugin_name, message);
}
