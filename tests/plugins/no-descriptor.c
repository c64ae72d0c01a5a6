/* A shared object that exports a function, but not the descriptor. */
#include <jarvis/jarvis.h>

JARVIS_PLUGIN_EXPORT int no_descriptor_answer (void);

int
no_descriptor_answer (void)
{
  return 42;
}
