#pragma once

#include <jarvis/jarvis.h>

#include "input/jarvis-decoder.h"

G_BEGIN_DECLS

/* Reads the host's inputs one after the other, each through its own
 * decoder, and hands every decoded event to a callback. */
typedef struct _JarvisHostReader JarvisHostReader;

typedef struct
{
  JarvisInputFormat format;
  gsize read_size;              /* bytes per read, at least 1 */
  gsize max_line_length;        /* bytes */
  const char *request_id;       /* (nullable) for provider streams without one */
  const char *session_id;       /* (nullable) for events that name none */

  /* (nullable) Called with the event callback's user_data after each
   * read. While it returns TRUE, reading pauses, so that a consumer with
   * too much work in flight sets the pace. */
  gboolean (*busy_func) (gpointer user_data);
} JarvisHostReaderOptions;

JarvisHostReader *jarvis_host_reader_new (const char * const            *inputs,
                                          const JarvisHostReaderOptions *options,
                                          JarvisDecoderEventFunc         event_func,
                                          gpointer                       user_data);

void jarvis_host_reader_free (JarvisHostReader *reader);

void jarvis_host_reader_run_async (JarvisHostReader    *reader,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data);

gboolean jarvis_host_reader_run_finish (JarvisHostReader  *reader,
                                        GAsyncResult      *result,
                                        GError           **error);

guint64 jarvis_host_reader_get_input_errors (JarvisHostReader *reader);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (JarvisHostReader, jarvis_host_reader_free)

G_END_DECLS
