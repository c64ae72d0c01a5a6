/* A plugin that calls a function no library defines. With immediate
 * binding the dynamic linker rejects it at load, before any code runs. */
#include <jarvis/jarvis.h>

void jarvis_fixture_function_defined_nowhere (void);

static gboolean
unresolved_init (JarvisPlugin  *plugin,
                 GError       **error)
{
  jarvis_fixture_function_defined_nowhere ();
  return TRUE;
}

JARVIS_PLUGIN_DEFINE ("unresolved", "1.0", "References an undefined function", "MIT",
                      unresolved_init, NULL)
