/* old_size: a descriptor that ends where the reserved slots begin, as one
 * built against an older header of the same ABI may. It reports every
 * "test.ping", so tests can see that it loaded and works. */
#include "fixture-report.h"

static void
on_event (JarvisEvent *event,
          gpointer     user_data)
{
  fixture_report (user_data, event);
}

static gboolean
old_size_init (JarvisPlugin  *plugin,
               GError       **error)
{
  jarvis_plugin_subscribe (plugin, "test.ping", on_event, plugin, NULL);

  return TRUE;
}

static const JarvisPluginInfo old_size_info = {
  .abi_version = JARVIS_PLUGIN_ABI_VERSION,
  .struct_size = G_STRUCT_OFFSET (JarvisPluginInfo, reserved),
  .name = "old_size",
  .version = "1.0",
  .description = "Reports pings through a descriptor without reserved slots",
  .license = "MIT",
  .init = old_size_init,
};

JARVIS_PLUGIN_EXPORT const JarvisPluginInfo *jarvis_plugin_get_info (void);

const JarvisPluginInfo *
jarvis_plugin_get_info (void)
{
  return &old_size_info;
}
