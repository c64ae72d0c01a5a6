#include "config.h"

#include "jarvis-live.h"

/* TODO: talk to an OpenAI-compatible endpoint over libsoup; until then every
 * run fails at once so that --url gives a clear error. */
void
jarvis_live_run_async (JarvisBus               *bus,
                       const JarvisLiveOptions *options,
                       GInputStream            *prompts,
                       GCancellable            *cancellable,
                       GAsyncReadyCallback      callback,
                       gpointer                 user_data)
{
  g_autoptr (GTask) task = NULL;

  g_return_if_fail (JARVIS_IS_BUS (bus));
  g_return_if_fail (options != NULL && options->url != NULL);

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, jarvis_live_run_async);
  g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                           "Live streams from '%s' are not supported yet; "
                           "record the stream to a file and pass that file instead",
                           options->url);
}

gboolean
jarvis_live_run_finish (GAsyncResult  *result,
                        GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
