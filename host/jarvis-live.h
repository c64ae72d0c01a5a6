#pragma once

#include <jarvis/jarvis.h>

G_BEGIN_DECLS

/* Settings of a live model stream. The strings are borrowed for the whole
 * run. @api_key is a secret: it is never logged or written anywhere. */
typedef struct
{
  const char *url;
  const char *model;
  const char *api_key;
  const char *prompt;           /* NULL: read prompts line by line */
  guint connect_timeout_s;
  guint idle_timeout_s;
  const char *session_id;
} JarvisLiveOptions;

void jarvis_live_run_async (JarvisBus               *bus,
                            const JarvisLiveOptions *options,
                            GInputStream            *prompts,
                            GCancellable            *cancellable,
                            GAsyncReadyCallback      callback,
                            gpointer                 user_data);

gboolean jarvis_live_run_finish (GAsyncResult  *result,
                                 GError       **error);

G_END_DECLS
