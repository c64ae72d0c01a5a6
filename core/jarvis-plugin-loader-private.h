#pragma once

#include "jarvis/jarvis.h"

G_BEGIN_DECLS

/* Copies the strings of a descriptor that the loader already checked. */
JarvisPluginEntry *_jarvis_plugin_entry_new (const JarvisPluginInfo *info,
                                             const char             *path);

/* Treats the process as privileged (as with AT_SECURE) when @secure is
 * TRUE, so tests can check which directories such a process searches. */
void _jarvis_plugin_loader_set_secure (JarvisPluginLoader *loader,
                                       gboolean            secure);

G_END_DECLS
