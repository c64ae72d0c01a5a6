#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/auxv.h>

#include <glib/gstdio.h>

#include "jarvis-bus-private.h"
#include "jarvis-plugin-loader-private.h"
#include "jarvis-plugin-private.h"
#include "jarvis-trust-private.h"

#define GET_INFO_SYMBOL "jarvis_plugin_get_info"

typedef const JarvisPluginInfo *(*GetInfoFunc) (void);

struct _JarvisPluginLoader
{
  GObject parent_instance;

  /* all accessed from the thread that owns the loader */
  GPtrArray *search_dirs;       /* owned, of owned strings, in the order added */
  gboolean use_default_path;
  gboolean allow_untrusted;
  gboolean secure;              /* the process runs with elevated privileges */
};

G_DEFINE_FINAL_TYPE (JarvisPluginLoader, jarvis_plugin_loader, G_TYPE_OBJECT)

static void
jarvis_plugin_loader_finalize (GObject *object)
{
  JarvisPluginLoader *loader = JARVIS_PLUGIN_LOADER (object);

  g_clear_pointer (&loader->search_dirs, g_ptr_array_unref);

  G_OBJECT_CLASS (jarvis_plugin_loader_parent_class)->finalize (object);
}

static void
jarvis_plugin_loader_class_init (JarvisPluginLoaderClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = jarvis_plugin_loader_finalize;
}

static void
jarvis_plugin_loader_init (JarvisPluginLoader *loader)
{
  loader->search_dirs = g_ptr_array_new_with_free_func (g_free);
  loader->use_default_path = TRUE;

  /* The kernel sets AT_SECURE for setuid and setgid programs and for file
   * capabilities. The environment of such a process comes from a less
   * privileged user, so it must not choose the code that runs. */
  loader->secure = getauxval (AT_SECURE) != 0;
}

void
_jarvis_plugin_loader_set_secure (JarvisPluginLoader *loader,
                                  gboolean            secure)
{
  g_return_if_fail (JARVIS_IS_PLUGIN_LOADER (loader));

  loader->secure = !!secure;
}

/**
 * jarvis_plugin_loader_new:
 *
 * Creates a loader whose search path contains the default directories: those
 * in `$JARVIS_PLUGIN_PATH`, the user directory and the installed plugins
 * directory. Owner and mode checks are on.
 *
 * Returns: (transfer full): a new loader
 *
 * Since: 0.1
 */
JarvisPluginLoader *
jarvis_plugin_loader_new (void)
{
  return g_object_new (JARVIS_TYPE_PLUGIN_LOADER, NULL);
}

/**
 * jarvis_plugin_loader_add_search_dir:
 * @loader: a loader
 * @directory: (type filename): a directory to search for plugin files
 *
 * Appends @directory to the directories searched before the default ones.
 * Directories added first are searched first. A directory that does not
 * exist is skipped when searching.
 *
 * Since: 0.1
 */
void
jarvis_plugin_loader_add_search_dir (JarvisPluginLoader *loader,
                                     const char         *directory)
{
  g_return_if_fail (JARVIS_IS_PLUGIN_LOADER (loader));
  g_return_if_fail (directory != NULL && *directory != '\0');

  g_ptr_array_add (loader->search_dirs, g_strdup (directory));
}

/**
 * jarvis_plugin_loader_set_use_default_path:
 * @loader: a loader
 * @use_default_path: whether to search the default directories
 *
 * Chooses whether the directories from `$JARVIS_PLUGIN_PATH`, the user
 * directory and the installed plugins directory follow the directories
 * added with jarvis_plugin_loader_add_search_dir(). The default is %TRUE.
 * Tests and hosts that must load only their own plugins set %FALSE.
 *
 * Since: 0.1
 */
void
jarvis_plugin_loader_set_use_default_path (JarvisPluginLoader *loader,
                                           gboolean            use_default_path)
{
  g_return_if_fail (JARVIS_IS_PLUGIN_LOADER (loader));

  loader->use_default_path = !!use_default_path;
}

/**
 * jarvis_plugin_loader_set_allow_untrusted:
 * @loader: a loader
 * @allow_untrusted: whether to skip the owner and mode checks
 *
 * Chooses whether plugin files, and the directories that contain them,
 * may be owned by another user or be writable by group or others. Such a
 * file lets other accounts run code in this process, so allow it only for
 * development. Symbolic links and files that are not regular files are
 * rejected either way. The default is %FALSE.
 *
 * Since: 0.1
 */
void
jarvis_plugin_loader_set_allow_untrusted (JarvisPluginLoader *loader,
                                          gboolean            allow_untrusted)
{
  g_return_if_fail (JARVIS_IS_PLUGIN_LOADER (loader));

  loader->allow_untrusted = !!allow_untrusted;
  if (loader->allow_untrusted)
    g_debug ("Owner and mode checks of plugin files are off");
}

/**
 * jarvis_plugin_loader_dup_search_path:
 * @loader: a loader
 *
 * Lists the directories searched for plugins, in search order: those added
 * with jarvis_plugin_loader_add_search_dir(), then, unless turned off with
 * jarvis_plugin_loader_set_use_default_path(), the entries of
 * `$JARVIS_PLUGIN_PATH`, `$XDG_DATA_HOME/jarvis-events-1/plugins` and the
 * installed plugins directory. The environment variable and the user
 * directory are left out when the process runs with elevated privileges
 * (`AT_SECURE`). A directory listed twice is kept at its first place.
 *
 * Returns: (transfer full) (array zero-terminated=1) (element-type filename):
 *   the directories
 *
 * Since: 0.1
 */
GStrv
jarvis_plugin_loader_dup_search_path (JarvisPluginLoader *loader)
{
  g_autoptr(GPtrArray) candidates = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GHashTable) seen = NULL;
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();

  g_return_val_if_fail (JARVIS_IS_PLUGIN_LOADER (loader), NULL);

  for (guint i = 0; i < loader->search_dirs->len; i++)
    g_ptr_array_add (candidates, g_strdup (g_ptr_array_index (loader->search_dirs, i)));

  if (loader->use_default_path && !loader->secure)
    {
      const char *variable = g_getenv (JARVIS_PLUGIN_PATH_VARIABLE);

      if (variable != NULL)
        {
          g_auto(GStrv) entries = g_strsplit (variable, G_SEARCHPATH_SEPARATOR_S, -1);

          /* An empty entry would mean the working directory to the dynamic
           * linker; loading code from wherever the host was started is
           * never intended here. */
          for (guint i = 0; entries[i] != NULL; i++)
            if (entries[i][0] != '\0')
              g_ptr_array_add (candidates, g_strdup (entries[i]));
        }

      g_ptr_array_add (candidates,
                       g_build_filename (g_get_user_data_dir (), JARVIS_API_NAME, "plugins", NULL));
    }

  if (loader->use_default_path)
    g_ptr_array_add (candidates, g_strdup (JARVIS_PLUGINSDIR));

  seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < candidates->len; i++)
    {
      const char *directory = g_ptr_array_index (candidates, i);
      char *canonical = g_canonicalize_filename (directory, NULL);

      if (!g_hash_table_add (seen, canonical))
        continue;

      g_strv_builder_add (builder, directory);
    }

  return g_strv_builder_end (builder);
}

static gboolean
is_identifier (const char *name)
{
  if (!g_ascii_isalpha (name[0]) && name[0] != '_')
    return FALSE;

  for (const char *p = name + 1; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '_')
      return FALSE;

  return TRUE;
}

static gboolean
check_text_field (const char  *value,
                  const char  *field,
                  const char  *path,
                  GError     **error)
{
  if (value == NULL || g_utf8_validate (value, -1, NULL))
    return TRUE;

  g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_ABI_MISMATCH,
               "Plugin file “%s” has a descriptor whose %s is not valid UTF-8",
               path, field);
  return FALSE;
}

/* Checks what the loader relies on before it calls any hook: the ABI
 * version, the size, a name that works as an identifier, and an init hook.
 * The ABI version and size are read first because they occupy the same
 * place in every version of the descriptor. */
static gboolean
check_descriptor (const JarvisPluginInfo  *info,
                  const char              *path,
                  GError                 **error)
{
  if (info->abi_version != JARVIS_PLUGIN_ABI_VERSION)
    {
      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_ABI_MISMATCH,
                   "Plugin file “%s” was built for plugin ABI version %u, "
                   "expected version %u; rebuild it against jarvis-events %s",
                   path, (guint) info->abi_version, (guint) JARVIS_PLUGIN_ABI_VERSION,
                   PACKAGE_VERSION);
      return FALSE;
    }

  if (!_jarvis_plugin_info_size_is_valid (info->struct_size))
    {
      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_ABI_MISMATCH,
                   "Plugin file “%s” has a descriptor of %u bytes, expected "
                   "between %u and %u bytes; rebuild it against jarvis-events %s",
                   path, (guint) info->struct_size, (guint) _JARVIS_PLUGIN_INFO_MIN_SIZE,
                   (guint) sizeof (JarvisPluginInfo), PACKAGE_VERSION);
      return FALSE;
    }

  if (info->name == NULL)
    {
      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_ABI_MISMATCH,
                   "Plugin file “%s” has a descriptor without a name", path);
      return FALSE;
    }

  if (!is_identifier (info->name))
    {
      g_autofree char *escaped = g_strescape (info->name, NULL);

      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_ABI_MISMATCH,
                   "Plugin file “%s” has the invalid name “%s”, expected a C "
                   "identifier (letters, digits and underscores, not starting "
                   "with a digit)", path, escaped);
      return FALSE;
    }

  if (info->init == NULL)
    {
      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_ABI_MISMATCH,
                   "Plugin file “%s” has a descriptor without an init hook", path);
      return FALSE;
    }

  return check_text_field (info->version, "version", path, error) &&
         check_text_field (info->description, "description", path, error) &&
         check_text_field (info->license, "license", path, error);
}

/* Returns the module error without the /proc path it starts with, which
 * means nothing to the reader of the message. */
static const char *
describe_module_error (const char *load_path)
{
  const char *message = g_module_error ();
  gsize prefix_length = strlen (load_path);

  if (message == NULL)
    return "unknown error";

  if (strncmp (message, load_path, prefix_length) == 0 && message[prefix_length] == ':')
    {
      message += prefix_length + 1;
      while (*message == ' ')
        message++;
    }

  return message;
}

/* Opens and checks the plugin file @path and returns its module, with its
 * checked descriptor in @info_out. The file's trust is checked on an open
 * descriptor, and that same descriptor is what the dynamic linker loads. */
static GModule *
open_plugin (JarvisPluginLoader      *loader,
             const char              *path,
             const JarvisPluginInfo **info_out,
             GError                 **error)
{
  g_autofree char *load_path = NULL;
  GModule *module;
  GetInfoFunc get_info = NULL;
  const JarvisPluginInfo *info;
  int fd;

  fd = _jarvis_trust_open_plugin (path, loader->allow_untrusted, error);
  if (fd < 0)
    return NULL;

  load_path = _jarvis_trust_dup_load_path (&fd);
  if (load_path == NULL)
    {
      int saved_errno = errno;

      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_NOT_A_PLUGIN,
                   "Cannot load plugin file “%s”: %s", path, g_strerror (saved_errno));
      g_close (fd, NULL);
      return NULL;
    }

  /* Immediate binding (no G_MODULE_BIND_LAZY) makes an unresolved symbol
   * fail here rather than crash at its first call. Local binding keeps one
   * plugin's symbols from resolving another plugin's references. */
  module = g_module_open (load_path, G_MODULE_BIND_LOCAL);
  if (module == NULL)
    {
      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_NOT_A_PLUGIN,
                   "Cannot load plugin file “%s”: %s",
                   path, describe_module_error (load_path));
      g_close (fd, NULL);
      return NULL;
    }

  /* The mapping stays valid without the descriptor. */
  g_close (fd, NULL);

  if (!g_module_symbol (module, GET_INFO_SYMBOL, (gpointer *) &get_info) || get_info == NULL)
    {
      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_NOT_A_PLUGIN,
                   "Plugin file “%s” does not export %s(); define the plugin "
                   "with JARVIS_PLUGIN_DEFINE()", path, GET_INFO_SYMBOL);
      g_module_close (module);
      return NULL;
    }

  info = get_info ();
  if (info == NULL)
    {
      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_NOT_A_PLUGIN,
                   "Plugin file “%s” returned no descriptor from %s()",
                   path, GET_INFO_SYMBOL);
      g_module_close (module);
      return NULL;
    }

  if (!check_descriptor (info, path, error))
    {
      g_module_close (module);
      return NULL;
    }

  *info_out = info;
  return module;
}

static JarvisPluginEntry *
probe_plugin (JarvisPluginLoader  *loader,
              const char          *path,
              GError             **error)
{
  const JarvisPluginInfo *info = NULL;
  JarvisPluginEntry *entry;
  GModule *module;

  module = open_plugin (loader, path, &info, error);
  if (module == NULL)
    return NULL;

  entry = _jarvis_plugin_entry_new (info, path);
  g_module_close (module);

  return entry;
}

static int
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return g_strcmp0 (*(const char * const *) a, *(const char * const *) b);
}

/* Returns the paths of the files ending in ".so" in @directory, sorted by
 * name so that the first of two duplicates does not depend on the order of
 * directory entries. */
static GPtrArray *
list_plugin_files (const char *directory)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) dir = NULL;
  GPtrArray *paths = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  dir = g_dir_open (directory, 0, &error);
  if (dir == NULL)
    {
      if (g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        g_debug ("Plugin directory %s does not exist", directory);
      else
        g_warning ("Skipped plugin directory: %s", error->message);

      return paths;
    }

  while ((name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_suffix (name, "." G_MODULE_SUFFIX))
      g_ptr_array_add (paths, g_build_filename (directory, name, NULL));

  g_ptr_array_sort (paths, compare_strings);

  return paths;
}

/**
 * jarvis_plugin_loader_list:
 * @loader: a loader
 *
 * Scans every directory of the search path and reads the descriptor of
 * each file whose name ends in `.so`. A file that cannot be loaded, is not
 * trusted or carries an incompatible descriptor is skipped with a warning.
 * When two files carry the same plugin name, the first on the search path
 * wins and the other is skipped with a warning that names both files.
 *
 * Reading a descriptor loads the file, which runs its constructors; no
 * plugin hook is called.
 *
 * Returns: (transfer full) (element-type JarvisPluginEntry): the plugins
 *   found, in search order
 *
 * Since: 0.1
 */
GPtrArray *
jarvis_plugin_loader_list (JarvisPluginLoader *loader)
{
  g_auto(GStrv) directories = NULL;
  g_autoptr(GHashTable) by_name = NULL;
  GPtrArray *entries;

  g_return_val_if_fail (JARVIS_IS_PLUGIN_LOADER (loader), NULL);

  entries = g_ptr_array_new_with_free_func ((GDestroyNotify) jarvis_plugin_entry_unref);
  by_name = g_hash_table_new (g_str_hash, g_str_equal);
  directories = jarvis_plugin_loader_dup_search_path (loader);

  for (guint i = 0; directories[i] != NULL; i++)
    {
      g_autoptr(GPtrArray) paths = list_plugin_files (directories[i]);

      for (guint j = 0; j < paths->len; j++)
        {
          const char *path = g_ptr_array_index (paths, j);
          g_autoptr(GError) error = NULL;
          JarvisPluginEntry *entry;
          JarvisPluginEntry *first;

          entry = probe_plugin (loader, path, &error);
          if (entry == NULL)
            {
              g_warning ("Skipped plugin: %s", error->message);
              continue;
            }

          first = g_hash_table_lookup (by_name, jarvis_plugin_entry_get_name (entry));
          if (first != NULL)
            {
              g_warning ("Skipped plugin file “%s”: plugin “%s” is already "
                         "provided by “%s”, which comes first on the search path",
                         path, jarvis_plugin_entry_get_name (entry),
                         jarvis_plugin_entry_get_path (first));
              jarvis_plugin_entry_unref (entry);
              continue;
            }

          g_hash_table_insert (by_name, (gpointer) jarvis_plugin_entry_get_name (entry), entry);
          g_ptr_array_add (entries, entry);
        }
    }

  return entries;
}

/**
 * jarvis_plugin_loader_find:
 * @loader: a loader
 * @name: a plugin name, as in its descriptor
 * @error: return location for a #GError
 *
 * Searches the search path for the first file whose descriptor carries
 * @name. Files met before it that cannot be loaded or are not trusted are
 * skipped with a warning.
 *
 * The search stops at that first file, so a later file that carries the
 * same name is not reported here: only jarvis_plugin_loader_list() warns
 * about such shadowed files. Looking for them on every search would load
 * every later file and run its constructors.
 *
 * Returns: (transfer full) (nullable): the plugin's entry, or %NULL with
 *   %JARVIS_PLUGIN_ERROR_NOT_FOUND
 *
 * Since: 0.1
 */
JarvisPluginEntry *
jarvis_plugin_loader_find (JarvisPluginLoader  *loader,
                           const char          *name,
                           GError             **error)
{
  g_auto(GStrv) directories = NULL;
  g_autofree char *joined = NULL;
  guint n_skipped = 0;

  g_return_val_if_fail (JARVIS_IS_PLUGIN_LOADER (loader), NULL);
  g_return_val_if_fail (name != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  directories = jarvis_plugin_loader_dup_search_path (loader);

  for (guint i = 0; directories[i] != NULL; i++)
    {
      g_autoptr(GPtrArray) paths = list_plugin_files (directories[i]);

      for (guint j = 0; j < paths->len; j++)
        {
          const char *path = g_ptr_array_index (paths, j);
          g_autoptr(GError) local_error = NULL;
          JarvisPluginEntry *entry;

          entry = probe_plugin (loader, path, &local_error);
          if (entry == NULL)
            {
              g_warning ("Skipped plugin: %s", local_error->message);
              n_skipped++;
              continue;
            }

          if (g_strcmp0 (jarvis_plugin_entry_get_name (entry), name) == 0)
            return entry;

          jarvis_plugin_entry_unref (entry);
        }
    }

  /* A skipped file may be the requested plugin: its name stays unknown
   * because an untrusted or broken file is never asked for it. */
  joined = g_strjoinv (G_SEARCHPATH_SEPARATOR_S, directories);
  if (n_skipped > 0)
    g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_NOT_FOUND,
                 "Plugin “%s” not found in the search path “%s”; %u plugin "
                 "%s skipped, see the warnings about them",
                 name, joined, n_skipped, n_skipped == 1 ? "file was" : "files were");
  else
    g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_NOT_FOUND,
                 "Plugin “%s” not found in the search path “%s”; add its "
                 "directory or set %s", name, joined, JARVIS_PLUGIN_PATH_VARIABLE);
  return NULL;
}

/* Loads @path into @bus. With @expected_name set, the descriptor must still
 * carry that name, because the file may have been replaced since the
 * search found it. */
static gboolean
load_checked (JarvisPluginLoader  *loader,
              JarvisBus           *bus,
              const char          *path,
              const char          *expected_name,
              GError             **error)
{
  g_autoptr(GError) register_error = NULL;
  const JarvisPluginInfo *info = NULL;
  GModule *module;

  module = open_plugin (loader, path, &info, error);
  if (module == NULL)
    return FALSE;

  if (expected_name != NULL && strcmp (info->name, expected_name) != 0)
    {
      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_NOT_FOUND,
                   "Plugin file “%s” now carries plugin “%s”, expected “%s”; "
                   "it changed during the search, so load again",
                   path, info->name, expected_name);
      g_module_close (module);
      return FALSE;
    }

  if (jarvis_bus_lookup_plugin (bus, info->name) != NULL)
    {
      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_DUPLICATE,
                   "Cannot load plugin “%s” from “%s”: a plugin of that name "
                   "is already loaded", info->name, path);
      g_module_close (module);
      return FALSE;
    }

  if (!_jarvis_bus_register_module (bus, info, module, path, &register_error))
    {
      /* The reader of an init failure needs the file as much as the name. */
      if (strstr (register_error->message, path) == NULL)
        g_prefix_error (&register_error, "Cannot load plugin file “%s”: ", path);

      g_propagate_error (error, g_steal_pointer (&register_error));
      g_module_close (module);
      return FALSE;
    }

  g_info ("Loaded plugin %s %s from %s",
          info->name, info->version != NULL ? info->version : "", path);

  return TRUE;
}

/**
 * jarvis_plugin_loader_load:
 * @loader: a loader
 * @bus: the bus to register the plugin on
 * @name: a plugin name, as in its descriptor
 * @error: return location for a #GError
 *
 * Finds the plugin @name on the search path, as
 * jarvis_plugin_loader_find() does, and loads it into @bus: the file is
 * opened once, checked for trust on that open descriptor and loaded from
 * it, its descriptor is checked, and its `init` hook runs. Call it in the
 * thread that iterates the bus's context.
 *
 * Failure concerns only this plugin: other plugins, loaded or not, are
 * left as they are. A later file on the search path that carries the same
 * name is neither loaded nor reported; jarvis_plugin_loader_list() reports
 * it, see jarvis_plugin_loader_find().
 *
 * Returns: %TRUE if the plugin was loaded; %FALSE with an error in
 *   %JARVIS_PLUGIN_ERROR otherwise
 *
 * Since: 0.1
 */
gboolean
jarvis_plugin_loader_load (JarvisPluginLoader  *loader,
                           JarvisBus           *bus,
                           const char          *name,
                           GError             **error)
{
  g_autoptr(JarvisPluginEntry) entry = NULL;

  g_return_val_if_fail (JARVIS_IS_PLUGIN_LOADER (loader), FALSE);
  g_return_val_if_fail (JARVIS_IS_BUS (bus), FALSE);
  g_return_val_if_fail (name != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (jarvis_bus_lookup_plugin (bus, name) != NULL)
    {
      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_DUPLICATE,
                   "Cannot load plugin “%s”: a plugin of that name is already loaded",
                   name);
      return FALSE;
    }

  entry = jarvis_plugin_loader_find (loader, name, error);
  if (entry == NULL)
    return FALSE;

  return load_checked (loader, bus, jarvis_plugin_entry_get_path (entry), name, error);
}

/**
 * jarvis_plugin_loader_load_file:
 * @loader: a loader
 * @bus: the bus to register the plugin on
 * @path: (type filename): the plugin file
 * @error: return location for a #GError
 *
 * Loads the plugin file @path into @bus, whatever plugin it carries, with
 * the same checks as jarvis_plugin_loader_load(). The search path is not
 * used. Call it in the thread that iterates the bus's context.
 *
 * Returns: %TRUE if the plugin was loaded; %FALSE with an error in
 *   %JARVIS_PLUGIN_ERROR otherwise
 *
 * Since: 0.1
 */
gboolean
jarvis_plugin_loader_load_file (JarvisPluginLoader  *loader,
                                JarvisBus           *bus,
                                const char          *path,
                                GError             **error)
{
  g_return_val_if_fail (JARVIS_IS_PLUGIN_LOADER (loader), FALSE);
  g_return_val_if_fail (JARVIS_IS_BUS (bus), FALSE);
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return load_checked (loader, bus, path, NULL, error);
}
