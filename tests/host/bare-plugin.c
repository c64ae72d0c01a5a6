/* A plugin whose descriptor sets no version and no description, which the
 * descriptor allows, so that the host's listing can be tested on it. */
#include <jarvis/jarvis.h>

static gboolean
bare_init (JarvisPlugin  *plugin,
           GError       **error)
{
  return TRUE;
}

static const JarvisPluginInfo bare_info = {
  .abi_version = JARVIS_PLUGIN_ABI_VERSION,
  .struct_size = sizeof (JarvisPluginInfo),
  .name = "bare",
  .init = bare_init,
};

JARVIS_PLUGIN_EXPORT const JarvisPluginInfo *jarvis_plugin_get_info (void);

const JarvisPluginInfo *
jarvis_plugin_get_info (void)
{
  return &bare_info;
}
