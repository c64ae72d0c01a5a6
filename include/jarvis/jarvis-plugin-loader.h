#pragma once

#if !defined(JARVIS_INSIDE) && !defined(JARVIS_COMPILATION)
#error "Only <jarvis/jarvis.h> can be included directly."
#endif

#include <gio/gio.h>
#include <jarvis/jarvis-macros.h>
#include <jarvis/jarvis-bus.h>

G_BEGIN_DECLS

/**
 * JARVIS_PLUGIN_PATH_VARIABLE:
 *
 * The environment variable with extra plugin directories, separated by
 * colons. It is ignored in processes with elevated privileges.
 *
 * Since: 0.1
 */
#define JARVIS_PLUGIN_PATH_VARIABLE "JARVIS_PLUGIN_PATH"

/**
 * JarvisPluginEntry:
 *
 * A plugin found on the search path: its descriptor's strings and the file
 * it came from. Immutable and reference counted.
 *
 * Since: 0.1
 */
typedef struct _JarvisPluginEntry JarvisPluginEntry;

#define JARVIS_TYPE_PLUGIN_ENTRY (jarvis_plugin_entry_get_type ())

JARVIS_API
GType jarvis_plugin_entry_get_type (void) G_GNUC_CONST;

JARVIS_API
JarvisPluginEntry *jarvis_plugin_entry_ref (JarvisPluginEntry *entry);

JARVIS_API
void jarvis_plugin_entry_unref (JarvisPluginEntry *entry);

JARVIS_API
const char *jarvis_plugin_entry_get_name (JarvisPluginEntry *entry);

JARVIS_API
const char *jarvis_plugin_entry_get_version (JarvisPluginEntry *entry);

JARVIS_API
const char *jarvis_plugin_entry_get_description (JarvisPluginEntry *entry);

JARVIS_API
const char *jarvis_plugin_entry_get_license (JarvisPluginEntry *entry);

JARVIS_API
const char *jarvis_plugin_entry_get_path (JarvisPluginEntry *entry);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (JarvisPluginEntry, jarvis_plugin_entry_unref)

#define JARVIS_TYPE_PLUGIN_LOADER (jarvis_plugin_loader_get_type ())

/**
 * JarvisPluginLoader:
 *
 * Finds plugins by the name in their descriptor on a search path, checks
 * that each file is trusted and has a compatible ABI, and loads it into a
 * #JarvisBus.
 *
 * The search order is: the directories added with
 * jarvis_plugin_loader_add_search_dir(), in order; then
 * `$JARVIS_PLUGIN_PATH`; then `$XDG_DATA_HOME/jarvis-events-1/plugins`;
 * then the installed plugins directory. The environment variable and the
 * user directory are skipped when the process runs with elevated
 * privileges.
 *
 * Since: 0.1
 */
JARVIS_API
G_DECLARE_FINAL_TYPE (JarvisPluginLoader, jarvis_plugin_loader, JARVIS, PLUGIN_LOADER, GObject)

JARVIS_API G_GNUC_WARN_UNUSED_RESULT
JarvisPluginLoader *jarvis_plugin_loader_new (void);

JARVIS_API
void jarvis_plugin_loader_add_search_dir (JarvisPluginLoader *loader,
                                          const char         *directory);

JARVIS_API
void jarvis_plugin_loader_set_use_default_path (JarvisPluginLoader *loader,
                                                gboolean            use_default_path);

JARVIS_API
void jarvis_plugin_loader_set_allow_untrusted (JarvisPluginLoader *loader,
                                               gboolean            allow_untrusted);

JARVIS_API G_GNUC_WARN_UNUSED_RESULT
GStrv jarvis_plugin_loader_dup_search_path (JarvisPluginLoader *loader);

JARVIS_API G_GNUC_WARN_UNUSED_RESULT
GPtrArray *jarvis_plugin_loader_list (JarvisPluginLoader *loader);

JARVIS_API
JarvisPluginEntry *jarvis_plugin_loader_find (JarvisPluginLoader  *loader,
                                              const char          *name,
                                              GError             **error);

JARVIS_API
gboolean jarvis_plugin_loader_load (JarvisPluginLoader  *loader,
                                    JarvisBus           *bus,
                                    const char          *name,
                                    GError             **error);

JARVIS_API
gboolean jarvis_plugin_loader_load_file (JarvisPluginLoader  *loader,
                                         JarvisBus           *bus,
                                         const char          *path,
                                         GError             **error);

G_END_DECLS
