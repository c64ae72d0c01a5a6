#pragma once

#include <jarvis/jarvis.h>

G_BEGIN_DECLS

gboolean jarvis_host_stats_write (JarvisBus   *bus,
                                  guint64      input_errors,
                                  const char  *path,
                                  GError     **error);

G_END_DECLS
