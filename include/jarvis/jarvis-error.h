#pragma once

#if !defined(JARVIS_INSIDE) && !defined(JARVIS_COMPILATION)
#error "Only <jarvis/jarvis.h> can be included directly."
#endif

#include <glib.h>
#include <jarvis/jarvis-macros.h>

G_BEGIN_DECLS

/**
 * JARVIS_BUS_ERROR:
 *
 * Error domain of the event bus. Errors in this domain use #JarvisBusError
 * codes. Cancellation is reported as %G_IO_ERROR_CANCELLED instead.
 *
 * Since: 0.1
 */
#define JARVIS_BUS_ERROR (jarvis_bus_error_quark ())

/**
 * JarvisBusError:
 * @JARVIS_BUS_ERROR_CLOSED: the bus is closing or closed.
 * @JARVIS_BUS_ERROR_UNKNOWN_PLUGIN: no plugin of that name is registered.
 * @JARVIS_BUS_ERROR_HANDLER_FAILED: a handler returned an error; the
 *   original message is kept in the error message.
 * @JARVIS_BUS_ERROR_TIMED_OUT: handlers did not return before a deadline.
 *
 * Error codes of %JARVIS_BUS_ERROR.
 *
 * Since: 0.1
 */
typedef enum
{
  JARVIS_BUS_ERROR_CLOSED,
  JARVIS_BUS_ERROR_UNKNOWN_PLUGIN,
  JARVIS_BUS_ERROR_HANDLER_FAILED,
  JARVIS_BUS_ERROR_TIMED_OUT,
} JarvisBusError;

/**
 * JARVIS_PLUGIN_ERROR:
 *
 * Error domain for finding, checking, configuring and initialising plugins.
 * Errors in this domain use #JarvisPluginError codes.
 *
 * Since: 0.1
 */
#define JARVIS_PLUGIN_ERROR (jarvis_plugin_error_quark ())

/**
 * JarvisPluginError:
 * @JARVIS_PLUGIN_ERROR_NOT_FOUND: no plugin with the requested name is on
 *   the search path, or the file does not exist.
 * @JARVIS_PLUGIN_ERROR_NOT_A_PLUGIN: the file is not a loadable shared
 *   object, has unresolved symbols, or does not export
 *   `jarvis_plugin_get_info`.
 * @JARVIS_PLUGIN_ERROR_ABI_MISMATCH: the descriptor's `abi_version`,
 *   `struct_size` or name does not match what this library expects.
 * @JARVIS_PLUGIN_ERROR_UNTRUSTED: the file or its directory has an owner
 *   or mode that would let another user replace the code.
 * @JARVIS_PLUGIN_ERROR_INIT_FAILED: the plugin's `init` hook failed.
 * @JARVIS_PLUGIN_ERROR_DUPLICATE: a plugin of that name is already loaded.
 * @JARVIS_PLUGIN_ERROR_INVALID_OPTION: an option value has the wrong type
 *   or is out of range.
 *
 * Error codes of %JARVIS_PLUGIN_ERROR.
 *
 * Since: 0.1
 */
typedef enum
{
  JARVIS_PLUGIN_ERROR_NOT_FOUND,
  JARVIS_PLUGIN_ERROR_NOT_A_PLUGIN,
  JARVIS_PLUGIN_ERROR_ABI_MISMATCH,
  JARVIS_PLUGIN_ERROR_UNTRUSTED,
  JARVIS_PLUGIN_ERROR_INIT_FAILED,
  JARVIS_PLUGIN_ERROR_DUPLICATE,
  JARVIS_PLUGIN_ERROR_INVALID_OPTION,
} JarvisPluginError;

JARVIS_API
GQuark jarvis_bus_error_quark (void);

JARVIS_API
GQuark jarvis_plugin_error_quark (void);

G_END_DECLS
