#pragma once

#include <gmodule.h>

#include "jarvis/jarvis.h"

G_BEGIN_DECLS

/* Registers a plugin whose descriptor lives in @module, which the loader has
 * already checked (trust, ABI, name). On success the bus owns @module: it
 * closes it after the plugin's shutdown, or makes it resident when an unload
 * hit its deadline with invocations still in flight, because their code must
 * stay mapped. On failure the caller still owns @module. @path is kept for
 * messages. */
gboolean _jarvis_bus_register_module (JarvisBus               *bus,
                                      const JarvisPluginInfo  *info,
                                      GModule                 *module,
                                      const char              *path,
                                      GError                 **error);

G_END_DECLS
