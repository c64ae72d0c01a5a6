#include "config.h"

#include "jarvis-plugin-loader-private.h"

struct _JarvisPluginEntry
{
  gatomicrefcount ref_count;

  /* all owned and immutable after construction */
  char *name;
  char *version;                /* nullable */
  char *description;            /* nullable */
  char *license;                /* nullable */
  char *path;
};

G_DEFINE_BOXED_TYPE (JarvisPluginEntry, jarvis_plugin_entry,
                     jarvis_plugin_entry_ref, jarvis_plugin_entry_unref)

JarvisPluginEntry *
_jarvis_plugin_entry_new (const JarvisPluginInfo *info,
                          const char             *path)
{
  JarvisPluginEntry *entry;

  g_assert (info != NULL && info->name != NULL);
  g_assert (path != NULL);

  entry = g_new0 (JarvisPluginEntry, 1);
  g_atomic_ref_count_init (&entry->ref_count);
  entry->name = g_strdup (info->name);
  entry->version = g_strdup (info->version);
  entry->description = g_strdup (info->description);
  entry->license = g_strdup (info->license);
  entry->path = g_strdup (path);

  return entry;
}

/**
 * jarvis_plugin_entry_ref:
 * @entry: a plugin entry
 *
 * Takes a reference. Safe from any thread.
 *
 * Returns: (transfer full): @entry
 *
 * Since: 0.1
 */
JarvisPluginEntry *
jarvis_plugin_entry_ref (JarvisPluginEntry *entry)
{
  g_return_val_if_fail (entry != NULL, NULL);

  g_atomic_ref_count_inc (&entry->ref_count);

  return entry;
}

/**
 * jarvis_plugin_entry_unref:
 * @entry: (nullable) (transfer full): a plugin entry
 *
 * Drops a reference and frees the entry with the last one. Safe from any
 * thread; %NULL is ignored.
 *
 * Since: 0.1
 */
void
jarvis_plugin_entry_unref (JarvisPluginEntry *entry)
{
  if (entry == NULL)
    return;

  if (!g_atomic_ref_count_dec (&entry->ref_count))
    return;

  g_free (entry->name);
  g_free (entry->version);
  g_free (entry->description);
  g_free (entry->license);
  g_free (entry->path);
  g_free (entry);
}

/**
 * jarvis_plugin_entry_get_name:
 * @entry: a plugin entry
 *
 * Gets the name from the plugin's descriptor, the name by which
 * jarvis_plugin_loader_load() finds it.
 *
 * Returns: (transfer none): the plugin's name, a C identifier
 *
 * Since: 0.1
 */
const char *
jarvis_plugin_entry_get_name (JarvisPluginEntry *entry)
{
  g_return_val_if_fail (entry != NULL, NULL);

  return entry->name;
}

/**
 * jarvis_plugin_entry_get_version:
 * @entry: a plugin entry
 *
 * Gets the plugin's own version from its descriptor.
 *
 * Returns: (transfer none) (nullable): the version, or %NULL if the
 *   descriptor has none
 *
 * Since: 0.1
 */
const char *
jarvis_plugin_entry_get_version (JarvisPluginEntry *entry)
{
  g_return_val_if_fail (entry != NULL, NULL);

  return entry->version;
}

/**
 * jarvis_plugin_entry_get_description:
 * @entry: a plugin entry
 *
 * Gets the one-line description from the plugin's descriptor.
 *
 * Returns: (transfer none) (nullable): the description, or %NULL if the
 *   descriptor has none
 *
 * Since: 0.1
 */
const char *
jarvis_plugin_entry_get_description (JarvisPluginEntry *entry)
{
  g_return_val_if_fail (entry != NULL, NULL);

  return entry->description;
}

/**
 * jarvis_plugin_entry_get_license:
 * @entry: a plugin entry
 *
 * Gets the SPDX license identifier from the plugin's descriptor.
 *
 * Returns: (transfer none) (nullable): the license, or %NULL if the
 *   descriptor has none
 *
 * Since: 0.1
 */
const char *
jarvis_plugin_entry_get_license (JarvisPluginEntry *entry)
{
  g_return_val_if_fail (entry != NULL, NULL);

  return entry->license;
}

/**
 * jarvis_plugin_entry_get_path:
 * @entry: a plugin entry
 *
 * Gets the file the plugin was found in, as built from its search
 * directory.
 *
 * Returns: (transfer none): the plugin file's path
 *
 * Since: 0.1
 */
const char *
jarvis_plugin_entry_get_path (JarvisPluginEntry *entry)
{
  g_return_val_if_fail (entry != NULL, NULL);

  return entry->path;
}
