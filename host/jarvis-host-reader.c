/* Reading the host's inputs: files and stdin, in the order given, with
 * asynchronous reads in the thread-default main context (the bus's).
 *
 * A file that cannot be opened or read is an input error: it is reported
 * as `NAME: reason` and the next input is read. Bad records inside an
 * input are reported by the decoder as `NAME:LINE: reason`.
 */
#include "config.h"

#include "jarvis-host-reader.h"

#include <gio/gunixinputstream.h>
#include <stdio.h>
#include <unistd.h>

#define STDIN_NAME "stdin"

/* How often a paused reader asks whether the consumer caught up. */
#define RESUME_POLL_MS 1

struct _JarvisHostReader
{
  GStrv inputs;                         /* (owned) */
  guint next_input;
  JarvisHostReaderOptions options;      /* strings owned below */
  char *request_id;                     /* (owned) (nullable) */
  char *session_id;                     /* (owned) (nullable) */
  JarvisDecoderEventFunc event_func;
  gpointer user_data;

  /* The input being read; only one at a time. */
  GTask *task;                          /* (owned) (nullable) while running */
  const char *input_name;               /* name in messages, borrowed from @inputs */
  GInputStream *stream;                 /* (owned) (nullable) */
  JarvisDecoder *decoder;               /* (owned) (nullable) */
  GSource *resume_source;               /* (owned) (nullable) while paused */

  guint64 input_errors;
};

static void open_next_input (JarvisHostReader *reader);

JarvisHostReader *
jarvis_host_reader_new (const char * const            *inputs,
                        const JarvisHostReaderOptions *options,
                        JarvisDecoderEventFunc         event_func,
                        gpointer                       user_data)
{
  JarvisHostReader *reader;

  g_return_val_if_fail (inputs != NULL, NULL);
  g_return_val_if_fail (options != NULL, NULL);
  g_return_val_if_fail (options->read_size > 0, NULL);
  g_return_val_if_fail (event_func != NULL, NULL);

  reader = g_new0 (JarvisHostReader, 1);
  reader->inputs = g_strdupv ((char **) inputs);
  reader->options = *options;
  reader->request_id = g_strdup (options->request_id);
  reader->session_id = g_strdup (options->session_id);
  reader->options.request_id = reader->request_id;
  reader->options.session_id = reader->session_id;
  reader->event_func = event_func;
  reader->user_data = user_data;

  return reader;
}

static void
stop_resume_source (JarvisHostReader *reader)
{
  if (reader->resume_source == NULL)
    return;

  g_source_destroy (reader->resume_source);
  g_clear_pointer (&reader->resume_source, g_source_unref);
}

static void
close_input (JarvisHostReader *reader)
{
  stop_resume_source (reader);
  g_clear_pointer (&reader->decoder, jarvis_decoder_free);
  g_clear_object (&reader->stream);
  reader->input_name = NULL;
}

void
jarvis_host_reader_free (JarvisHostReader *reader)
{
  if (reader == NULL)
    return;

  g_return_if_fail (reader->task == NULL);

  close_input (reader);
  g_strfreev (reader->inputs);
  g_free (reader->request_id);
  g_free (reader->session_id);
  g_free (reader);
}

guint64
jarvis_host_reader_get_input_errors (JarvisHostReader *reader)
{
  g_return_val_if_fail (reader != NULL, 0);

  return reader->input_errors;
}

static void
report_input_error (const char   *source_name,
                    guint64       line,
                    const GError *error,
                    gpointer      user_data)
{
  JarvisHostReader *reader = user_data;

  reader->input_errors++;
  g_printerr ("%s:%" G_GUINT64_FORMAT ": %s\n", source_name, line, error->message);
}

static void
forward_event (JarvisEvent *event,
               gpointer     user_data)
{
  JarvisHostReader *reader = user_data;

  reader->event_func (event, reader->user_data);
}

static void
report_file_error (JarvisHostReader *reader,
                   const GError     *error)
{
  reader->input_errors++;
  g_printerr ("%s: %s\n", reader->input_name, error->message);
}

/* Ends the run: returns the task, which may free the reader. */
static void
complete_run (JarvisHostReader *reader,
              GError           *error)
{
  g_autoptr (GTask) task = g_steal_pointer (&reader->task);

  close_input (reader);

  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void on_read (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data);

static void
read_next (JarvisHostReader *reader)
{
  g_input_stream_read_bytes_async (reader->stream, reader->options.read_size,
                                   G_PRIORITY_DEFAULT,
                                   g_task_get_cancellable (reader->task),
                                   on_read, reader);
}

/* Polls, because the consumer's backlog shrinks as handler calls return,
 * and nothing signals a threshold. It runs only while reading is paused. */
static gboolean
check_resume (gpointer user_data)
{
  JarvisHostReader *reader = user_data;
  GError *error = NULL;

  if (g_cancellable_set_error_if_cancelled (g_task_get_cancellable (reader->task), &error))
    {
      g_clear_pointer (&reader->resume_source, g_source_unref);
      complete_run (reader, error);
      return G_SOURCE_REMOVE;
    }

  if (reader->options.busy_func (reader->user_data))
    return G_SOURCE_CONTINUE;

  g_clear_pointer (&reader->resume_source, g_source_unref);
  read_next (reader);

  return G_SOURCE_REMOVE;
}

static void
pause_reading (JarvisHostReader *reader)
{
  reader->resume_source = g_timeout_source_new (RESUME_POLL_MS);
  g_source_set_static_name (reader->resume_source, "jarvis-host reader resume");
  g_source_set_callback (reader->resume_source, check_resume, reader, NULL);
  g_source_attach (reader->resume_source, g_main_context_get_thread_default ());
}

static void
on_read (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  JarvisHostReader *reader = user_data;
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GError) error = NULL;
  gsize size = 0;
  const char *data;

  bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);

  /* On cancellation the rest of the input is dropped unread: the host is
   * shutting down, and finishing the decoder would emit its end events. */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      complete_run (reader, g_steal_pointer (&error));
      return;
    }

  if (error != NULL)
    {
      report_file_error (reader, error);
      jarvis_decoder_finish (reader->decoder);
      close_input (reader);
      open_next_input (reader);
      return;
    }

  data = g_bytes_get_data (bytes, &size);
  if (size == 0)
    {
      jarvis_decoder_finish (reader->decoder);
      close_input (reader);
      open_next_input (reader);
      return;
    }

  jarvis_decoder_feed (reader->decoder, data, size);

  if (reader->options.busy_func != NULL && reader->options.busy_func (reader->user_data))
    {
      pause_reading (reader);
      return;
    }

  read_next (reader);
}

static void
start_decoding (JarvisHostReader *reader,
                GInputStream     *stream)
{
  reader->stream = stream;
  reader->decoder = jarvis_decoder_new (reader->options.format, reader->input_name,
                                        forward_event, report_input_error,
                                        reader);
  jarvis_decoder_set_max_line_length (reader->decoder, reader->options.max_line_length);

  if (reader->request_id != NULL)
    jarvis_decoder_set_request_id (reader->decoder, reader->request_id);

  if (reader->session_id != NULL)
    jarvis_decoder_set_session_id (reader->decoder, reader->session_id);

  read_next (reader);
}

static void
on_opened (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  JarvisHostReader *reader = user_data;
  g_autoptr (GError) error = NULL;
  GFileInputStream *stream;

  stream = g_file_read_finish (G_FILE (source), result, &error);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      complete_run (reader, g_steal_pointer (&error));
      return;
    }

  if (error != NULL)
    {
      report_file_error (reader, error);
      reader->input_name = NULL;
      open_next_input (reader);
      return;
    }

  start_decoding (reader, G_INPUT_STREAM (stream));
}

static void
open_next_input (JarvisHostReader *reader)
{
  const char *name;
  g_autoptr (GFile) file = NULL;

  if (reader->inputs[reader->next_input] == NULL)
    {
      complete_run (reader, NULL);
      return;
    }

  name = reader->inputs[reader->next_input++];

  if (g_strcmp0 (name, "-") == 0)
    {
      reader->input_name = STDIN_NAME;
      start_decoding (reader, g_unix_input_stream_new (STDIN_FILENO, FALSE));
      return;
    }

  reader->input_name = name;
  file = g_file_new_for_commandline_arg (name);
  g_file_read_async (file, G_PRIORITY_DEFAULT, g_task_get_cancellable (reader->task),
                     on_opened, reader);
}

/* Reads every input. The task completes after the last one, or with
 * %G_IO_ERROR_CANCELLED when @cancellable fires. Input errors do not fail
 * the run, and jarvis_host_reader_get_input_errors() counts them. */
void
jarvis_host_reader_run_async (JarvisHostReader    *reader,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_return_if_fail (reader != NULL);
  g_return_if_fail (reader->task == NULL);

  reader->task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (reader->task, jarvis_host_reader_run_async);

  open_next_input (reader);
}

gboolean
jarvis_host_reader_run_finish (JarvisHostReader  *reader,
                               GAsyncResult      *result,
                               GError           **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
