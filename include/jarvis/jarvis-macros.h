#pragma once

#if !defined(JARVIS_INSIDE) && !defined(JARVIS_COMPILATION)
#error "Only <jarvis/jarvis.h> can be included directly."
#endif

#include <glib.h>

/* Symbols are hidden by default (-fvisibility=hidden); JARVIS_API marks the
 * ones that form the library's ABI. */
#if defined(JARVIS_COMPILATION)
#define JARVIS_API __attribute__ ((visibility ("default"))) extern
#else
#define JARVIS_API extern
#endif

/* Plugins export exactly one symbol, whatever visibility they build with. */
#define JARVIS_PLUGIN_EXPORT __attribute__ ((visibility ("default")))
