#pragma once

#if !defined(JARVIS_INSIDE) && !defined(JARVIS_COMPILATION)
#error "Only <jarvis/jarvis.h> can be included directly."
#endif

#include <gio/gio.h>
#include <jarvis/jarvis-macros.h>
#include <jarvis/jarvis-event.h>
#include <jarvis/jarvis-invocation.h>

G_BEGIN_DECLS

/**
 * JARVIS_PLUGIN_ABI_VERSION:
 *
 * Version of #JarvisPluginInfo and of the contract of its hooks. The loader
 * refuses a plugin whose descriptor carries another value.
 *
 * Since: 0.1
 */
#define JARVIS_PLUGIN_ABI_VERSION 1

/**
 * JarvisPlugin:
 *
 * A plugin registered on a #JarvisBus. It is owned by the bus and stays
 * valid from the call of its `init` hook until its `shutdown` hook returns.
 *
 * Since: 0.1
 */
typedef struct _JarvisPlugin JarvisPlugin;

/**
 * JarvisHandlerFunc:
 * @event: (transfer none): the event, sealed; take a reference to keep it
 * @user_data: the data given to jarvis_plugin_subscribe()
 *
 * A synchronous handler. It runs in the bus's #GMainContext, in
 * subscription order, and must not block: the next handler and the next
 * event wait for it. It may emit, subscribe and unsubscribe; emits are
 * queued and dispatched after the current event.
 *
 * Since: 0.1
 */
typedef void (*JarvisHandlerFunc) (JarvisEvent *event,
                                   gpointer     user_data);

/**
 * JarvisAsyncHandlerFunc:
 * @event: (transfer none): the event, sealed; take a reference to keep it
 * @invocation: (transfer none): the call, to be returned exactly once
 * @user_data: the data given to jarvis_plugin_subscribe_async()
 *
 * An asynchronous handler. It starts in the bus's #GMainContext and must
 * not block there. It may hand the work to another thread or to an async
 * operation, and returns @invocation later from any thread. When the
 * invocation's cancellable fires, it must stop and return soon.
 *
 * Since: 0.1
 */
typedef void (*JarvisAsyncHandlerFunc) (JarvisEvent      *event,
                                        JarvisInvocation *invocation,
                                        gpointer          user_data);

/**
 * JarvisPluginInfo:
 * @abi_version: %JARVIS_PLUGIN_ABI_VERSION at build time
 * @struct_size: `sizeof (JarvisPluginInfo)` at build time
 * @name: the plugin's name, a C identifier; plugins are found by it
 * @version: the plugin's own version
 * @description: one line for plugin lists
 * @license: an SPDX license identifier
 * @init: called once in the bus's context, after the plugin is registered;
 *   subscribes handlers and reads options. On failure it sets @error and
 *   must have released what it acquired. May not be %NULL.
 * @shutdown: called once in the bus's context, after every handler of the
 *   plugin was unsubscribed and every invocation returned or was detached.
 *   Frees what `init` created. May be %NULL.
 *
 * The descriptor of a plugin, usually defined with JARVIS_PLUGIN_DEFINE().
 * It is the only public struct of the library; new fields take reserved
 * slots so that the size stays stable within an ABI version.
 *
 * Since: 0.1
 */
typedef struct
{
  guint32 abi_version;
  guint32 struct_size;
  const char *name;
  const char *version;
  const char *description;
  const char *license;
  gboolean (*init) (JarvisPlugin *plugin,
                    GError      **error);
  void (*shutdown) (JarvisPlugin *plugin);

  /*< private >*/
  gpointer reserved[8];
} JarvisPluginInfo;

/**
 * JARVIS_PLUGIN_DEFINE:
 * @name: the plugin's name, a string literal that is a C identifier
 * @version: the plugin's version, a string literal
 * @description: a one-line description, a string literal
 * @license: an SPDX license identifier, a string literal
 * @init: the `init` hook
 * @shutdown: the `shutdown` hook, or %NULL
 *
 * Defines the plugin's #JarvisPluginInfo and exports
 * `jarvis_plugin_get_info()`, the one symbol the loader looks up. Use it
 * once per shared object, at file scope.
 *
 * Since: 0.1
 */
#define JARVIS_PLUGIN_DEFINE(name, version, description, license, init, shutdown) \
  static const JarvisPluginInfo jarvis_plugin_info_ = {                           \
    JARVIS_PLUGIN_ABI_VERSION,                                                    \
    (guint32) sizeof (JarvisPluginInfo),                                          \
    "" name "",                                                                   \
    "" version "",                                                                \
    "" description "",                                                            \
    "" license "",                                                                \
    (init),                                                                       \
    (shutdown),                                                                   \
    { NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL },                           \
  };                                                                              \
  JARVIS_PLUGIN_EXPORT const JarvisPluginInfo *jarvis_plugin_get_info (void);     \
  JARVIS_PLUGIN_EXPORT const JarvisPluginInfo *jarvis_plugin_get_info (void)      \
  {                                                                               \
    return &jarvis_plugin_info_;                                                  \
  }

JARVIS_API
const char *jarvis_plugin_get_name (JarvisPlugin *plugin);

JARVIS_API
guint jarvis_plugin_subscribe (JarvisPlugin      *plugin,
                               const char        *pattern,
                               JarvisHandlerFunc  func,
                               gpointer           user_data,
                               GDestroyNotify     destroy);

JARVIS_API
guint jarvis_plugin_subscribe_async (JarvisPlugin           *plugin,
                                     const char             *pattern,
                                     JarvisAsyncHandlerFunc  func,
                                     gpointer                user_data,
                                     GDestroyNotify          destroy);

JARVIS_API
void jarvis_plugin_unsubscribe (JarvisPlugin *plugin,
                                guint         subscription_id);

JARVIS_API
void jarvis_plugin_emit (JarvisPlugin *plugin,
                         JarvisEvent  *event);

JARVIS_API
GMainContext *jarvis_plugin_get_context (JarvisPlugin *plugin);

JARVIS_API
void jarvis_plugin_set_data (JarvisPlugin   *plugin,
                             gpointer        data,
                             GDestroyNotify  destroy);

JARVIS_API
gpointer jarvis_plugin_get_data (JarvisPlugin *plugin);

JARVIS_API
gboolean jarvis_plugin_has_option (JarvisPlugin *plugin,
                                   const char   *key);

JARVIS_API G_GNUC_WARN_UNUSED_RESULT
char *jarvis_plugin_dup_option_string (JarvisPlugin *plugin,
                                       const char   *key,
                                       const char   *default_value);

JARVIS_API
gint64 jarvis_plugin_get_option_int (JarvisPlugin *plugin,
                                     const char   *key,
                                     gint64        default_value,
                                     GError      **error);

JARVIS_API
guint64 jarvis_plugin_get_option_uint (JarvisPlugin *plugin,
                                       const char   *key,
                                       guint64       default_value,
                                       GError      **error);

JARVIS_API
gboolean jarvis_plugin_get_option_boolean (JarvisPlugin *plugin,
                                           const char   *key,
                                           gboolean      default_value,
                                           GError      **error);

JARVIS_API
double jarvis_plugin_get_option_double (JarvisPlugin *plugin,
                                        const char   *key,
                                        double        default_value,
                                        GError      **error);

G_END_DECLS
