#include "jarvis-test-support.h"

#include <string.h>

static GMutex log_lock;
static GPtrArray *log_records;  /* JarvisTestLogRecord *, under log_lock */

static void
record_free (gpointer data)
{
  JarvisTestLogRecord *record = data;

  g_free (record->message);
  g_free (record->request_id);
  g_free (record->plugin);
  g_free (record);
}

static char *
dup_field (const GLogField *field)
{
  if (field->length < 0)
    return g_strdup (field->value);

  return g_strndup (field->value, field->length);
}

static GLogWriterOutput
capture_writer (GLogLevelFlags   log_level,
                const GLogField *fields,
                gsize            n_fields,
                gpointer         user_data)
{
  JarvisTestLogRecord *record;
  gboolean ours = FALSE;

  for (gsize i = 0; i < n_fields; i++)
    if (g_str_equal (fields[i].key, "GLIB_DOMAIN") &&
        fields[i].value != NULL && fields[i].length < 0 &&
        g_str_equal (fields[i].value, "jarvis"))
      ours = TRUE;

  if (!ours)
    {
      if ((log_level & G_LOG_LEVEL_DEBUG) != 0)
        return G_LOG_WRITER_HANDLED;
      return g_log_writer_default (log_level, fields, n_fields, user_data);
    }

  record = g_new0 (JarvisTestLogRecord, 1);
  record->level = log_level & G_LOG_LEVEL_MASK;
  for (gsize i = 0; i < n_fields; i++)
    {
      if (g_str_equal (fields[i].key, "MESSAGE"))
        record->message = dup_field (&fields[i]);
      else if (g_str_equal (fields[i].key, "JARVIS_REQUEST_ID"))
        record->request_id = dup_field (&fields[i]);
      else if (g_str_equal (fields[i].key, "JARVIS_PLUGIN"))
        record->plugin = dup_field (&fields[i]);
    }
  if (record->message == NULL)
    record->message = g_strdup ("");

  g_mutex_lock (&log_lock);
  g_ptr_array_add (log_records, record);
  g_mutex_unlock (&log_lock);

  /* Criticals stay fatal, as G_DEBUG=fatal-criticals requests. */
  if ((log_level & G_LOG_LEVEL_CRITICAL) != 0)
    return g_log_writer_default (log_level, fields, n_fields, user_data);

  return G_LOG_WRITER_HANDLED;
}

void
jarvis_test_log_init (void)
{
  log_records = g_ptr_array_new_with_free_func (record_free);
  g_log_set_debug_enabled (TRUE);
  g_log_set_writer_func (capture_writer, NULL, NULL);
}

void
jarvis_test_log_clear (void)
{
  g_mutex_lock (&log_lock);
  g_ptr_array_set_size (log_records, 0);
  g_mutex_unlock (&log_lock);
}

static JarvisTestLogRecord *
record_copy (const JarvisTestLogRecord *record)
{
  JarvisTestLogRecord *copy = g_new0 (JarvisTestLogRecord, 1);

  copy->level = record->level;
  copy->message = g_strdup (record->message);
  copy->request_id = g_strdup (record->request_id);
  copy->plugin = g_strdup (record->plugin);

  return copy;
}

GPtrArray *
jarvis_test_log_dup_records (void)
{
  GPtrArray *copy = g_ptr_array_new_with_free_func (record_free);

  g_mutex_lock (&log_lock);
  for (guint i = 0; i < log_records->len; i++)
    g_ptr_array_add (copy, record_copy (g_ptr_array_index (log_records, i)));
  g_mutex_unlock (&log_lock);

  return copy;
}

static gboolean
has_any_prefix (const char         *message,
                const char * const *prefixes)
{
  if (prefixes == NULL)
    return TRUE;

  for (gsize i = 0; prefixes[i] != NULL; i++)
    if (g_str_has_prefix (message, prefixes[i]))
      return TRUE;

  return FALSE;
}

GStrv
jarvis_test_log_dup_messages (GLogLevelFlags      level,
                              const char * const *prefixes)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();

  g_mutex_lock (&log_lock);
  for (guint i = 0; i < log_records->len; i++)
    {
      JarvisTestLogRecord *record = g_ptr_array_index (log_records, i);

      if ((record->level & level) != 0 && has_any_prefix (record->message, prefixes))
        g_strv_builder_add (builder, record->message);
    }
  g_mutex_unlock (&log_lock);

  return g_strv_builder_end (builder);
}

guint
jarvis_test_log_count (GLogLevelFlags  level,
                       const char     *prefix)
{
  guint count = 0;

  g_mutex_lock (&log_lock);
  for (guint i = 0; i < log_records->len; i++)
    {
      JarvisTestLogRecord *record = g_ptr_array_index (log_records, i);

      if ((record->level & level) != 0 && g_str_has_prefix (record->message, prefix))
        count++;
    }
  g_mutex_unlock (&log_lock);

  return count;
}

void
jarvis_test_log_assert_no_warnings (void)
{
  g_autofree char *first = NULL;

  g_mutex_lock (&log_lock);
  for (guint i = 0; i < log_records->len && first == NULL; i++)
    {
      JarvisTestLogRecord *record = g_ptr_array_index (log_records, i);

      if ((record->level & (G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL)) != 0)
        first = g_strdup (record->message);
    }
  g_mutex_unlock (&log_lock);

  if (first != NULL)
    g_error ("unexpected warning from the library: %s", first);
}

JarvisPluginInfo *
jarvis_test_plugin_info_new (const char *name,
                             gboolean  (*init) (JarvisPlugin *plugin,
                                                GError      **error),
                             void      (*shutdown) (JarvisPlugin *plugin))
{
  JarvisPluginInfo *info = g_new0 (JarvisPluginInfo, 1);

  info->abi_version = JARVIS_PLUGIN_ABI_VERSION;
  info->struct_size = sizeof (JarvisPluginInfo);
  info->name = g_intern_string (name);
  info->version = "0.0.1";
  info->description = "test plugin";
  info->license = "MIT";
  info->init = init;
  info->shutdown = shutdown;

  return info;
}

guint
jarvis_test_iterate_ready (GMainContext *context)
{
  guint dispatched = 0;

  while (g_main_context_iteration (context, FALSE))
    dispatched++;

  return dispatched;
}

static gboolean
watchdog_fired (gpointer user_data)
{
  gboolean *fired = user_data;

  *fired = TRUE;
  return G_SOURCE_REMOVE;
}

void
jarvis_test_iterate_until (GMainContext *context,
                           gboolean    (*done) (gpointer user_data),
                           gpointer      user_data,
                           guint         watchdog_ms)
{
  GSource *watchdog;
  gboolean fired = FALSE;

  watchdog = g_timeout_source_new (watchdog_ms);
  g_source_set_callback (watchdog, watchdog_fired, &fired, NULL);
  g_source_attach (watchdog, context);

  while (!done (user_data) && !fired)
    g_main_context_iteration (context, TRUE);

  g_source_destroy (watchdog);
  g_source_unref (watchdog);

  if (fired)
    g_error ("watchdog: the condition was not met within %u ms", watchdog_ms);
}

static void
close_done (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  gboolean *closed = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_true (jarvis_bus_close_finish (JARVIS_BUS (object), result, &error));
  g_assert_no_error (error);
  *closed = TRUE;
}

static gboolean
is_true (gpointer user_data)
{
  return *(gboolean *) user_data;
}

void
jarvis_test_close_bus (JarvisBus *bus,
                       guint      watchdog_ms)
{
  gboolean closed = FALSE;

  jarvis_bus_close_async (bus, NULL, close_done, &closed);
  jarvis_test_iterate_until (jarvis_bus_get_context (bus), is_true, &closed, watchdog_ms);
}

JarvisEvent *
jarvis_test_event_new (const char *event_type,
                       const char *request_id,
                       const char *session_id,
                       const char *text)
{
  JarvisEvent *event = jarvis_event_new (event_type, request_id);

  if (session_id != NULL)
    jarvis_event_set_session_id (event, session_id);
  if (text != NULL)
    jarvis_event_set_text (event, text, -1);

  return event;
}
