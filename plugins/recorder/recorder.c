/* recorder: writes every event it receives as one JSON object per line.
 *
 * Each event becomes a line with `type`, `request_id`, `session_id` and
 * `trace_id`, plus `text` when the event has text, `tokens` for flush
 * events, `choice` when it is not 0, and `outcome` for complete events.
 * Payloads are never written, so nothing a payload carries (keys, headers)
 * can leak into a recording.
 *
 * Lines wait in a FIFO queue. One asynchronous write at a time takes every
 * line that waits, up to RECORDER_MAX_BATCH bytes, so the file keeps the
 * event order and a fast stream costs one write per batch, not one per
 * event. Each handler invocation returns when the write that carried its
 * line has finished. The file is flushed, synced and closed in
 * `shutdown`.
 */
#include <jarvis/jarvis.h>

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <gio/gunixoutputstream.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <unistd.h>

/* A batch stops growing past this size. Large enough that a write per
 * batch keeps up with a stream of hundreds of thousands of events per
 * second, small enough to bound the copy. */
#define RECORDER_MAX_BATCH (256 * 1024)

typedef struct
{
  GBytes *line;                 /* (owned) */
  JarvisInvocation *invocation; /* returned once the line is written */
} PendingLine;

/* Reference counted with g_atomic_rc_box: the plugin holds one reference
 * and a write in flight holds another, so a write that completes after
 * `shutdown` still finds its state. Only the bus's context touches the
 * fields. */
typedef struct
{
  char *path;                   /* (owned) */
  int fd;                       /* owned by @stream */
  GOutputStream *stream;        /* (owned) (nullable) NULL once closed */
  GMainContext *context;        /* (owned) the bus's context */
  GQueue pending;               /* (element-type PendingLine) the first n_writing are being written */
  GBytes *batch;                /* (owned) (nullable) the lines of the write in flight */
  guint n_writing;              /* lines in @batch; 0 when no write is in flight */
  gboolean shut_down;
} Recorder;

static void write_next (Recorder *recorder);

static void
pending_line_free (PendingLine *pending)
{
  g_bytes_unref (pending->line);
  g_free (pending);
}

static void
recorder_clear (gpointer data)
{
  Recorder *recorder = data;

  /* Lines are left only when `shutdown` never ran; their invocations went
   * with the bus. */
  g_queue_clear_full (&recorder->pending, (GDestroyNotify) pending_line_free);

  g_clear_pointer (&recorder->batch, g_bytes_unref);
  g_clear_object (&recorder->stream);
  g_main_context_unref (recorder->context);
  g_free (recorder->path);
}

static void
recorder_release (gpointer data)
{
  g_atomic_rc_box_release_full (data, recorder_clear);
}

static void
add_string_member (JsonBuilder *builder,
                   const char  *name,
                   const char  *value)
{
  json_builder_set_member_name (builder, name);

  if (value != NULL)
    json_builder_add_string_value (builder, value);
  else
    json_builder_add_null_value (builder);
}

static void
add_text_member (JsonBuilder *builder,
                 const char  *text,
                 gsize        length)
{
  g_autofree char *valid = NULL;

  /* The bus repairs delta and flush text, but pass-through events may
   * carry any bytes; JSON strings must be UTF-8. */
  if (!g_utf8_validate_len (text, length, NULL))
    valid = g_utf8_make_valid (text, length);
  else
    valid = g_strndup (text, length);

  json_builder_set_member_name (builder, "text");
  json_builder_add_string_value (builder, valid);
}

static GBytes *
format_line (JarvisEvent *event)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  const char *text;
  gsize text_length = 0;
  gsize length = 0;
  char *data;

  json_builder_begin_object (builder);
  add_string_member (builder, "type", jarvis_event_get_event_type (event));
  add_string_member (builder, "request_id", jarvis_event_get_request_id (event));
  add_string_member (builder, "session_id", jarvis_event_get_session_id (event));
  add_string_member (builder, "trace_id", jarvis_event_get_trace_id (event));

  text = jarvis_event_get_text (event, &text_length);
  if (text != NULL)
    add_text_member (builder, text, text_length);

  if (jarvis_event_has_type (event, JARVIS_EVENT_STREAM_FLUSH))
    {
      json_builder_set_member_name (builder, "tokens");
      json_builder_add_int_value (builder, jarvis_event_get_token_count (event));
    }

  if (jarvis_event_get_choice (event) != 0)
    {
      json_builder_set_member_name (builder, "choice");
      json_builder_add_int_value (builder, jarvis_event_get_choice (event));
    }

  if (jarvis_event_has_type (event, JARVIS_EVENT_STREAM_COMPLETE))
    add_string_member (builder, "outcome", jarvis_event_get_outcome (event));

  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  data = json_generator_to_data (generator, &length);

  /* The generator's NUL terminator becomes the line end. */
  data[length] = '\n';

  return g_bytes_new_take (data, length + 1);
}

static GError *
new_write_error (Recorder     *recorder,
                 const GError *cause)
{
  return g_error_new (G_IO_ERROR, G_IO_ERROR_FAILED,
                      "Could not write to the recording '%s': %s",
                      recorder->path, cause->message);
}

static void
return_pending (Recorder    *recorder,
                PendingLine *pending,
                GError      *error)
{
  if (error != NULL)
    jarvis_invocation_return_error (pending->invocation, new_write_error (recorder, error));
  else
    jarvis_invocation_return (pending->invocation);

  pending_line_free (pending);
}

/* Writes the remaining lines with blocking calls, then syncs and closes
 * the file. Runs in `shutdown`, when nothing can wait any more. */
static void
finish_file (Recorder *recorder)
{
  g_autoptr (GError) error = NULL;
  PendingLine *pending;

  while ((pending = g_queue_pop_head (&recorder->pending)) != NULL)
    {
      g_autoptr (GError) write_error = NULL;
      gsize size = 0;
      const char *data = g_bytes_get_data (pending->line, &size);

      g_output_stream_write_all (recorder->stream, data, size, NULL, NULL, &write_error);
      return_pending (recorder, pending, write_error);
    }

  if (fsync (recorder->fd) != 0)
    {
      int saved_errno = errno;

      g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
                        "MESSAGE", "Could not sync the recording '%s' to disk: %s",
                        recorder->path, g_strerror (saved_errno));
    }

  if (!g_output_stream_close (recorder->stream, NULL, &error))
    g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
                      "MESSAGE", "Could not close the recording '%s': %s",
                      recorder->path, error->message);

  g_clear_object (&recorder->stream);
}

static void
on_batch_written (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Recorder *recorder = user_data;
  g_autoptr (GError) error = NULL;
  guint n_written = recorder->n_writing;

  g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, &error);

  recorder->n_writing = 0;
  g_clear_pointer (&recorder->batch, g_bytes_unref);
  for (guint i = 0; i < n_written; i++)
    return_pending (recorder, g_queue_pop_head (&recorder->pending), error);

  if (recorder->shut_down)
    finish_file (recorder);
  else if (!g_queue_is_empty (&recorder->pending))
    write_next (recorder);

  recorder_release (recorder);
}

/* Starts one write with every line that waits, up to RECORDER_MAX_BATCH
 * bytes and at least one line. */
static void
write_next (Recorder *recorder)
{
  GString *batch = g_string_new (NULL);
  gsize size = 0;
  const char *data;

  for (GList *l = recorder->pending.head; l != NULL; l = l->next)
    {
      PendingLine *pending = l->data;
      gsize line_size = 0;
      const char *line = g_bytes_get_data (pending->line, &line_size);

      if (recorder->n_writing > 0 && batch->len + line_size > RECORDER_MAX_BATCH)
        break;

      g_string_append_len (batch, line, line_size);
      recorder->n_writing++;
    }

  recorder->batch = g_string_free_to_bytes (batch);
  data = g_bytes_get_data (recorder->batch, &size);

  /* The write is not tied to the invocations' cancellables, because a
   * recording with half a line is useless. An accepted line is written whole,
   * even for a cancelled request, and a local write returns quickly. */
  g_main_context_push_thread_default (recorder->context);
  g_output_stream_write_all_async (recorder->stream, data, size,
                                   G_PRIORITY_DEFAULT, NULL,
                                   on_batch_written,
                                   g_atomic_rc_box_acquire (recorder));
  g_main_context_pop_thread_default (recorder->context);
}

static void
on_event (JarvisEvent      *event,
          JarvisInvocation *invocation,
          gpointer          user_data)
{
  Recorder *recorder = user_data;
  PendingLine *pending;

  pending = g_new0 (PendingLine, 1);
  pending->line = format_line (event);
  pending->invocation = invocation;
  g_queue_push_tail (&recorder->pending, pending);

  if (recorder->n_writing == 0)
    write_next (recorder);
}

static Recorder *
open_recording (JarvisPlugin  *plugin,
                const char    *path,
                GError       **error)
{
  Recorder *recorder;
  int fd;

  fd = g_open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0)
    {
      int saved_errno = errno;

      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_INIT_FAILED,
                   "Could not open the recording '%s' for writing: %s; "
                   "check that its directory exists and is writable",
                   path, g_strerror (saved_errno));
      return NULL;
    }

  recorder = g_atomic_rc_box_new0 (Recorder);
  recorder->path = g_strdup (path);
  recorder->fd = fd;
  recorder->stream = g_unix_output_stream_new (fd, TRUE);
  recorder->context = g_main_context_ref (jarvis_plugin_get_context (plugin));
  g_queue_init (&recorder->pending);

  return recorder;
}

static gboolean
recorder_init (JarvisPlugin  *plugin,
               GError       **error)
{
  g_autofree char *path = NULL;
  Recorder *recorder;

  path = jarvis_plugin_dup_option_string (plugin, "path", NULL);
  if (path == NULL || *path == '\0')
    {
      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_INVALID_OPTION,
                   "The recorder plugin needs the option 'path', the file to write "
                   "events to; set it with --option=recorder.path=FILE or in the "
                   "[plugin recorder] group of the configuration");
      return FALSE;
    }

  recorder = open_recording (plugin, path, error);
  if (recorder == NULL)
    return FALSE;

  jarvis_plugin_set_data (plugin, recorder, recorder_release);
  jarvis_plugin_subscribe_async (plugin, "*", on_event, recorder, NULL);

  return TRUE;
}

static void
recorder_shutdown (JarvisPlugin *plugin)
{
  Recorder *recorder = jarvis_plugin_get_data (plugin);

  /* A write still in flight belongs to a detached invocation; its
   * completion finishes the file instead. */
  recorder->shut_down = TRUE;
  if (recorder->n_writing == 0)
    finish_file (recorder);
}

JARVIS_PLUGIN_DEFINE ("recorder",
                      "0.1.0",
                      "Writes every event as a JSON line to a file",
                      "MIT",
                      recorder_init,
                      recorder_shutdown)
