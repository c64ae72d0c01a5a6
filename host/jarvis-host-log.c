/* The host's structured log writer. Every record goes to stderr, because
 * stdout carries the console plugin's text; GLib's default writer would
 * send info and debug records to stdout. */
#include "config.h"

#include "jarvis-host-log.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CORE_DOMAIN "jarvis"

static gint verbose_core;        /* atomic: records come from any thread */
static gboolean use_color;
static char **debug_domains;    /* (owned) from G_MESSAGES_DEBUG, read once */

static const char *
find_domain (const GLogField *fields,
             gsize            n_fields)
{
  for (gsize i = 0; i < n_fields; i++)
    {
      if (strcmp (fields[i].key, "GLIB_DOMAIN") == 0)
        return fields[i].value;
    }

  return NULL;
}

static gboolean
is_debug_domain (const char *domain)
{
  for (guint i = 0; debug_domains != NULL && debug_domains[i] != NULL; i++)
    {
      if (strcmp (debug_domains[i], "all") == 0 || g_strcmp0 (debug_domains[i], domain) == 0)
        return TRUE;
    }

  return FALSE;
}

/* Warnings and worse always show. `-v` shows the core's info and debug
 * records, which carry the request lifecycle. Plugins log rarely at info
 * level (a listening address, for example), so their info records show
 * too. G_MESSAGES_DEBUG turns on any domain, as everywhere in GLib. */
static gboolean
should_show (GLogLevelFlags  level,
             const char     *domain)
{
  gboolean core = g_strcmp0 (domain, CORE_DOMAIN) == 0;

  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE))
    return TRUE;

  if (core && g_atomic_int_get (&verbose_core))
    return TRUE;

  if ((level & G_LOG_LEVEL_INFO) && !core)
    return TRUE;

  return is_debug_domain (domain);
}

static GLogWriterOutput
write_record (GLogLevelFlags   level,
              const GLogField *fields,
              gsize            n_fields,
              gpointer         user_data)
{
  g_autofree char *line = NULL;

  if (!should_show (level, find_domain (fields, n_fields)))
    return G_LOG_WRITER_HANDLED;

  line = g_log_writer_format_fields (level, fields, n_fields, use_color);

  flockfile (stderr);
  fputs (line, stderr);
  fputc ('\n', stderr);
  fflush (stderr);
  funlockfile (stderr);

  return G_LOG_WRITER_HANDLED;
}

/* Installs the writer. GLib allows this once per process, before the
 * first record is logged. */
void
jarvis_host_log_init (void)
{
  use_color = g_log_writer_supports_color (STDERR_FILENO);
  debug_domains = g_strsplit_set (g_getenv ("G_MESSAGES_DEBUG") != NULL ? g_getenv ("G_MESSAGES_DEBUG") : "",
                                  " ,", -1);

  g_log_set_writer_func (write_record, NULL, NULL);
}

/* Turns the core's lifecycle records on or off. The core formats them only
 * when GLib's debug switch is on, so -v sets that switch too. The writer
 * still hides debug records of other domains unless G_MESSAGES_DEBUG names
 * them. Call it before the bus is created, because the bus caches the
 * switch. */
void
jarvis_host_log_set_verbose (gboolean verbose)
{
  g_atomic_int_set (&verbose_core, verbose ? 1 : 0);

  if (verbose)
    g_log_set_debug_enabled (TRUE);
}
