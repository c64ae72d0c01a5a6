/* A plugin whose name is not a C identifier. */
#include <jarvis/jarvis.h>

static gboolean
bad_name_init (JarvisPlugin  *plugin,
               GError       **error)
{
  g_error ("The loader called init on a plugin with an invalid name");
  return FALSE;
}

JARVIS_PLUGIN_DEFINE ("bad-name", "1.0", "Has a name with a dash", "MIT",
                      bad_name_init, NULL)
