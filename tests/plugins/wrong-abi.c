/* A descriptor from a future ABI version, written out by hand because
 * JARVIS_PLUGIN_DEFINE always stamps the current one. */
#include <jarvis/jarvis.h>

static gboolean
wrong_abi_init (JarvisPlugin  *plugin,
                GError       **error)
{
  g_error ("The loader called init on a plugin with the wrong ABI version");
  return FALSE;
}

static const JarvisPluginInfo wrong_abi_info = {
  .abi_version = JARVIS_PLUGIN_ABI_VERSION + 41,
  .struct_size = sizeof (JarvisPluginInfo),
  .name = "wrong_abi",
  .version = "1.0",
  .init = wrong_abi_init,
};

JARVIS_PLUGIN_EXPORT const JarvisPluginInfo *jarvis_plugin_get_info (void);

const JarvisPluginInfo *
jarvis_plugin_get_info (void)
{
  return &wrong_abi_info;
}
