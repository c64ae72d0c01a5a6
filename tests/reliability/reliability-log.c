#include "reliability-log.h"

typedef struct
{
  GLogLevelFlags level;
  char *text;                   /* owned, "DOMAIN: MESSAGE" */
} CapturedLine;

static GMutex capture_lock;
static GPtrArray *allowed;      /* owned, of char *; under capture_lock */
static GArray *captured;        /* owned, of CapturedLine; under capture_lock */
static guint n_unexpected;      /* under capture_lock */
static gint capture_all;        /* atomic */
static gboolean trace;          /* set once by init */

static void
clear_line (gpointer data)
{
  CapturedLine *line = data;

  g_free (line->text);
}

static const char *
find_field (const GLogField *fields,
            gsize            n_fields,
            const char      *key)
{
  for (gsize i = 0; i < n_fields; i++)
    {
      if (g_strcmp0 (fields[i].key, key) != 0)
        continue;
      if (fields[i].length < 0)
        return fields[i].value;
      return NULL;
    }

  return NULL;
}

static gboolean
is_allowed_unlocked (const char *text)
{
  for (guint i = 0; i < allowed->len; i++)
    {
      if (g_pattern_match_simple (g_ptr_array_index (allowed, i), text))
        return TRUE;
    }

  return FALSE;
}

static GLogWriterOutput
write_log (GLogLevelFlags   log_level,
           const GLogField *fields,
           gsize            n_fields,
           gpointer         user_data)
{
  const GLogLevelFlags checked = G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING;
  const char *domain;
  const char *message;
  CapturedLine line;

  if ((log_level & (G_LOG_LEVEL_ERROR | checked | G_LOG_LEVEL_MESSAGE)) == 0 &&
      !g_atomic_int_get (&capture_all) && !trace)
    return G_LOG_WRITER_HANDLED;

  if (log_level & G_LOG_LEVEL_ERROR)
    return g_log_writer_default (log_level, fields, n_fields, user_data);

  domain = find_field (fields, n_fields, "GLIB_DOMAIN");
  message = find_field (fields, n_fields, "MESSAGE");
  line.level = log_level & G_LOG_LEVEL_MASK;
  line.text = g_strdup_printf ("%s: %s", domain ? domain : "(none)", message ? message : "");

  g_mutex_lock (&capture_lock);
  if (trace)
    g_printerr ("log %" G_GINT64_FORMAT ": %s\n", g_get_monotonic_time () / 1000 % 100000, line.text);
  if ((line.level & checked) != 0 && !is_allowed_unlocked (line.text))
    {
      n_unexpected++;
      g_printerr ("unexpected %s: %s\n",
                  (line.level & G_LOG_LEVEL_CRITICAL) ? "critical" : "warning",
                  line.text);
    }
  g_array_append_val (captured, line);
  g_mutex_unlock (&capture_lock);

  return G_LOG_WRITER_HANDLED;
}

void
reliability_log_init (void)
{
  allowed = g_ptr_array_new_with_free_func (g_free);
  captured = g_array_new (FALSE, FALSE, sizeof (CapturedLine));
  g_array_set_clear_func (captured, clear_line);
  trace = g_getenv ("JARVIS_RELIABILITY_TRACE") != NULL;

  g_log_set_writer_func (write_log, NULL, NULL);
}

void
reliability_log_set_capture_all (gboolean enabled)
{
  /* The bus formats its debug lines only when debug output is enabled,
   * and it reads that when it is created. */
  g_log_set_debug_enabled (enabled);
  g_atomic_int_set (&capture_all, enabled);
}

void
reliability_log_allow (const char *pattern)
{
  g_mutex_lock (&capture_lock);
  g_ptr_array_add (allowed, g_strdup (pattern));
  g_mutex_unlock (&capture_lock);
}

void
reliability_log_reset (void)
{
  g_mutex_lock (&capture_lock);
  g_ptr_array_set_size (allowed, 0);
  g_array_set_size (captured, 0);
  n_unexpected = 0;
  g_mutex_unlock (&capture_lock);
}

guint
reliability_log_count (GLogLevelFlags level,
                       const char    *pattern)
{
  guint count = 0;

  g_mutex_lock (&capture_lock);
  for (guint i = 0; i < captured->len; i++)
    {
      CapturedLine *line = &g_array_index (captured, CapturedLine, i);

      if ((line->level & level) != 0 && g_pattern_match_simple (pattern, line->text))
        count++;
    }
  g_mutex_unlock (&capture_lock);

  return count;
}

guint
reliability_log_get_n_unexpected (void)
{
  guint count;

  g_mutex_lock (&capture_lock);
  count = n_unexpected;
  g_mutex_unlock (&capture_lock);

  return count;
}

void
reliability_log_dump (void)
{
  g_mutex_lock (&capture_lock);
  for (guint i = 0; i < captured->len; i++)
    {
      CapturedLine *line = &g_array_index (captured, CapturedLine, i);

      if ((line->level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING)) == 0)
        continue;

      g_printerr ("  %s %s\n",
                  (line->level & G_LOG_LEVEL_CRITICAL) ? "critical" : "warning",
                  line->text);
    }
  g_mutex_unlock (&capture_lock);
}
