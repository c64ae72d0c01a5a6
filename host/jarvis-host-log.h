#pragma once

#include <glib.h>

G_BEGIN_DECLS

void jarvis_host_log_init (void);

void jarvis_host_log_set_verbose (gboolean verbose);

G_END_DECLS
