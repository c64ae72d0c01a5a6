#pragma once

#include <gmodule.h>

#include "jarvis/jarvis.h"

G_BEGIN_DECLS

struct _JarvisPlugin
{
  JarvisBus *bus;               /* borrowed; the bus owns its plugins */
  const JarvisPluginInfo *info; /* borrowed from the module or the caller */
  char *name;                   /* GRefString, shared with detached invocations */
  GModule *module;              /* owned, nullable */
  char *path;                   /* owned, nullable */

  gpointer data;                /* owned through data_destroy */
  GDestroyNotify data_destroy;

  GQueue invocations;           /* in flight, linked by plugin_link */

  gboolean unloading;
  guint n_detached;             /* invocations ever detached; keeps the module mapped */
  gboolean resident_warned;     /* the unload deadline already warned about it */
  GTask *unload_task;           /* owned, nullable */
  GSource *unload_source;       /* owned; the deadline of an unload */
};

JarvisPlugin *_jarvis_plugin_new (JarvisBus              *bus,
                                  const JarvisPluginInfo *info);

void _jarvis_plugin_free (JarvisPlugin *plugin);

/* The fields the library reads end where the reserved slots begin. A
 * descriptor from an older build of the same ABI may stop there. */
#define _JARVIS_PLUGIN_INFO_MIN_SIZE ((guint32) G_STRUCT_OFFSET (JarvisPluginInfo, reserved))

gboolean _jarvis_plugin_info_size_is_valid (guint32 struct_size);

gboolean _jarvis_plugin_info_check (const JarvisPluginInfo  *info,
                                    GError                 **error);

G_END_DECLS
