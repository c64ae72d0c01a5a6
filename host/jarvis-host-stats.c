/* The `--stats` file: the bus's totals and the host's input errors as one
 * JSON object. The key names are an interface that scripts rely on. */
#include "config.h"

#include "jarvis-host-stats.h"

#include <json-glib/json-glib.h>
#include <stdio.h>

static void
add_count (JsonBuilder *builder,
           const char  *key,
           guint64      value)
{
  json_builder_set_member_name (builder, key);
  json_builder_add_int_value (builder, (gint64) value);
}

static char *
format_stats (JarvisBus *bus,
              guint64    input_errors)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;

  json_builder_begin_object (builder);
  add_count (builder, "requests", jarvis_bus_get_counter (bus, JARVIS_COUNTER_REQUESTS));
  add_count (builder, "requests_completed", jarvis_bus_get_counter (bus, JARVIS_COUNTER_REQUESTS_COMPLETED));

  /* One key for both ways a request can be stopped before its end. */
  add_count (builder, "requests_cancelled",
             jarvis_bus_get_counter (bus, JARVIS_COUNTER_REQUESTS_CANCELLED) +
             jarvis_bus_get_counter (bus, JARVIS_COUNTER_REQUESTS_SUPERSEDED));

  add_count (builder, "requests_failed", jarvis_bus_get_counter (bus, JARVIS_COUNTER_REQUESTS_FAILED));
  add_count (builder, "events_in", jarvis_bus_get_counter (bus, JARVIS_COUNTER_EVENTS));
  add_count (builder, "tokens", jarvis_bus_get_counter (bus, JARVIS_COUNTER_TOKENS));
  add_count (builder, "bytes_in", jarvis_bus_get_counter (bus, JARVIS_COUNTER_BYTES_IN));
  add_count (builder, "bytes_flushed", jarvis_bus_get_counter (bus, JARVIS_COUNTER_BYTES_FLUSHED));
  add_count (builder, "flushes", jarvis_bus_get_counter (bus, JARVIS_COUNTER_FLUSHES));
  add_count (builder, "tasks_created", jarvis_bus_get_counter (bus, JARVIS_COUNTER_TASKS_CREATED));
  add_count (builder, "tasks_completed", jarvis_bus_get_counter (bus, JARVIS_COUNTER_TASKS_COMPLETED));
  add_count (builder, "tasks_cancelled", jarvis_bus_get_counter (bus, JARVIS_COUNTER_TASKS_CANCELLED));
  add_count (builder, "tasks_failed", jarvis_bus_get_counter (bus, JARVIS_COUNTER_TASKS_FAILED));
  add_count (builder, "tasks_detached", jarvis_bus_get_counter (bus, JARVIS_COUNTER_TASKS_DETACHED));
  add_count (builder, "late_events_dropped", jarvis_bus_get_counter (bus, JARVIS_COUNTER_LATE_EVENTS_DROPPED));
  add_count (builder, "input_errors", input_errors);
  add_count (builder, "utf8_replacements", jarvis_bus_get_counter (bus, JARVIS_COUNTER_UTF8_REPLACEMENTS));
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  json_generator_set_pretty (generator, TRUE);

  return json_generator_to_data (generator, NULL);
}

/* Writes the stats to @path, or to stderr when @path is "-". A file is
 * replaced atomically, so a reader never sees half an object. */
gboolean
jarvis_host_stats_write (JarvisBus   *bus,
                         guint64      input_errors,
                         const char  *path,
                         GError     **error)
{
  g_autofree char *text = NULL;
  g_autofree char *line = NULL;

  g_return_val_if_fail (JARVIS_IS_BUS (bus), FALSE);
  g_return_val_if_fail (path != NULL, FALSE);

  text = format_stats (bus, input_errors);
  line = g_strconcat (text, "\n", NULL);

  if (g_strcmp0 (path, "-") == 0)
    {
      fputs (line, stderr);
      fflush (stderr);
      return TRUE;
    }

  if (!g_file_set_contents (path, line, -1, error))
    {
      g_prefix_error (error, "Could not write the stats file: ");
      return FALSE;
    }

  return TRUE;
}
