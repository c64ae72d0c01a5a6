#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Opens the plugin file @path for loading and checks the open descriptors of
 * the file and of its directory: a regular file, both owned by root or the
 * effective user, neither writable by group or others. With
 * @allow_untrusted the owner and mode checks are skipped, but the file must
 * still be a regular file reached without a final symbolic link.
 *
 * Returns the file descriptor, which the caller closes, or -1 with @error
 * set in %JARVIS_PLUGIN_ERROR (%JARVIS_PLUGIN_ERROR_NOT_FOUND,
 * %JARVIS_PLUGIN_ERROR_NOT_A_PLUGIN or %JARVIS_PLUGIN_ERROR_UNTRUSTED). */
int _jarvis_trust_open_plugin (const char  *path,
                               gboolean     allow_untrusted,
                               GError     **error);

/* Returns the path through which the dynamic linker loads exactly the file
 * behind *@fd, so that the checked file cannot be swapped before the load.
 * Moves *@fd to a descriptor number whose /proc path no loaded object
 * carries, and closes the old number. Returns %NULL, with errno set and
 * *@fd still open, when no descriptor is left. */
char *_jarvis_trust_dup_load_path (int *fd);

G_END_DECLS
