/* jarvis-events: streaming events through loadable plugins.
 *
 * This is the only header that applications and plugins include. The
 * individual headers refuse direct inclusion so that the set of headers
 * can change without breaking callers.
 */
#pragma once

#define JARVIS_INSIDE

#include <jarvis/jarvis-version.h>
#include <jarvis/jarvis-macros.h>
#include <jarvis/jarvis-error.h>
#include <jarvis/jarvis-event.h>
#include <jarvis/jarvis-invocation.h>
#include <jarvis/jarvis-plugin.h>
#include <jarvis/jarvis-bus.h>
#include <jarvis/jarvis-plugin-loader.h>

#undef JARVIS_INSIDE
