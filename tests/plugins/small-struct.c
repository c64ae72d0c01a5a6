/* A descriptor that claims to end after its first two fields. */
#include <jarvis/jarvis.h>

static gboolean
small_struct_init (JarvisPlugin  *plugin,
                   GError       **error)
{
  g_error ("The loader called init on a plugin with a truncated descriptor");
  return FALSE;
}

static const JarvisPluginInfo small_struct_info = {
  .abi_version = JARVIS_PLUGIN_ABI_VERSION,
  .struct_size = 8,
  .name = "small_struct",
  .init = small_struct_init,
};

JARVIS_PLUGIN_EXPORT const JarvisPluginInfo *jarvis_plugin_get_info (void);

const JarvisPluginInfo *
jarvis_plugin_get_info (void)
{
  return &small_struct_info;
}
