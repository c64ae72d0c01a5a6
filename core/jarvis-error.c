#include "config.h"

#include "jarvis/jarvis.h"

G_DEFINE_QUARK (jarvis-bus-error-quark, jarvis_bus_error)
G_DEFINE_QUARK (jarvis-plugin-error-quark, jarvis_plugin_error)
