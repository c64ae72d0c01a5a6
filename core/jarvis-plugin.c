#include "config.h"

#include <math.h>

#include "jarvis-bus-private.h"
#include "jarvis-event-private.h"
#include "jarvis-plugin-private.h"

JarvisPlugin *
_jarvis_plugin_new (JarvisBus              *bus,
                    const JarvisPluginInfo *info)
{
  JarvisPlugin *plugin;

  plugin = g_new0 (JarvisPlugin, 1);
  plugin->bus = bus;
  plugin->info = info;
  plugin->name = g_ref_string_new (info->name);
  g_queue_init (&plugin->invocations);

  return plugin;
}

/* Frees the plugin after its shutdown hook ran. Closing the module comes
 * last because the data's destroy function may live in it. */
void
_jarvis_plugin_free (JarvisPlugin *plugin)
{
  g_assert (plugin->invocations.length == 0);
  g_assert (plugin->unload_source == NULL);

  if (plugin->data_destroy != NULL)
    plugin->data_destroy (g_steal_pointer (&plugin->data));

  if (plugin->module != NULL)
    {
      if (plugin->n_detached > 0)
        g_module_make_resident (plugin->module);
      g_module_close (plugin->module);
    }

  g_clear_object (&plugin->unload_task);
  g_free (plugin->path);
  g_ref_string_release (plugin->name);
  g_free (plugin);
}

static gboolean
is_identifier (const char *name)
{
  if (name == NULL || !(g_ascii_isalpha (*name) || *name == '_'))
    return FALSE;

  for (const char *p = name + 1; *p != '\0'; p++)
    if (!(g_ascii_isalnum (*p) || *p == '_'))
      return FALSE;

  return TRUE;
}

/* The one size rule of the loader and the bus: a descriptor must hold every
 * field the library reads and may not claim more than this build defines. */
gboolean
_jarvis_plugin_info_size_is_valid (guint32 struct_size)
{
  return struct_size >= _JARVIS_PLUGIN_INFO_MIN_SIZE &&
         struct_size <= sizeof (JarvisPluginInfo);
}

/* Checks what the bus relies on in a descriptor, whichever way it came. */
gboolean
_jarvis_plugin_info_check (const JarvisPluginInfo  *info,
                           GError                 **error)
{
  if (info->abi_version != JARVIS_PLUGIN_ABI_VERSION)
    {
      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_ABI_MISMATCH,
                   "Plugin descriptor has ABI version %u, but this library supports %u; "
                   "rebuild the plugin against jarvis-events %s",
                   info->abi_version, JARVIS_PLUGIN_ABI_VERSION, PACKAGE_VERSION);
      return FALSE;
    }

  if (!_jarvis_plugin_info_size_is_valid (info->struct_size))
    {
      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_ABI_MISMATCH,
                   "Plugin descriptor has size %u, but this library expects "
                   "between %u and %u; rebuild the plugin against jarvis-events %s",
                   info->struct_size, (guint) _JARVIS_PLUGIN_INFO_MIN_SIZE,
                   (guint) sizeof (JarvisPluginInfo), PACKAGE_VERSION);
      return FALSE;
    }

  if (!is_identifier (info->name))
    {
      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_ABI_MISMATCH,
                   "Plugin name “%s” is invalid: it must be a C identifier",
                   info->name != NULL ? info->name : "(null)");
      return FALSE;
    }

  if (info->init == NULL)
    {
      g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_ABI_MISMATCH,
                   "Plugin %s has no init hook", info->name);
      return FALSE;
    }

  return TRUE;
}

/**
 * jarvis_plugin_get_name:
 * @plugin: a plugin
 *
 * Returns: (transfer none): the name from the plugin's descriptor
 *
 * Since: 0.1
 */
const char *
jarvis_plugin_get_name (JarvisPlugin *plugin)
{
  g_return_val_if_fail (plugin != NULL, NULL);

  return plugin->name;
}

/**
 * jarvis_plugin_subscribe:
 * @plugin: a plugin, in its bus's thread
 * @pattern: an event type, a prefix ending in `.*`, or `*`
 * @func: (scope notified): the handler
 * @user_data: data for @func
 * @destroy: (nullable): frees @user_data once the subscription is gone
 *
 * Subscribes a synchronous handler. Handlers run in subscription order. A
 * subscription made while an event is dispatched takes effect with the
 * next event.
 *
 * Returns: the subscription id, or 0 when the arguments are invalid
 *
 * Since: 0.1
 */
guint
jarvis_plugin_subscribe (JarvisPlugin      *plugin,
                         const char        *pattern,
                         JarvisHandlerFunc  func,
                         gpointer           user_data,
                         GDestroyNotify     destroy)
{
  g_return_val_if_fail (plugin != NULL, 0);
  g_return_val_if_fail (func != NULL, 0);

  return _jarvis_bus_subscribe (plugin->bus, plugin, pattern, func, NULL, user_data, destroy);
}

/**
 * jarvis_plugin_subscribe_async:
 * @plugin: a plugin, in its bus's thread
 * @pattern: an event type, a prefix ending in `.*`, or `*`
 * @func: (scope notified): the handler
 * @user_data: data for @func
 * @destroy: (nullable): frees @user_data once the subscription is gone
 *
 * Subscribes an asynchronous handler. Each call gets a #JarvisInvocation
 * that the handler must return exactly once.
 *
 * Returns: the subscription id, or 0 when the arguments are invalid
 *
 * Since: 0.1
 */
guint
jarvis_plugin_subscribe_async (JarvisPlugin           *plugin,
                               const char             *pattern,
                               JarvisAsyncHandlerFunc  func,
                               gpointer                user_data,
                               GDestroyNotify          destroy)
{
  g_return_val_if_fail (plugin != NULL, 0);
  g_return_val_if_fail (func != NULL, 0);

  return _jarvis_bus_subscribe (plugin->bus, plugin, pattern, NULL, func, user_data, destroy);
}

/**
 * jarvis_plugin_unsubscribe:
 * @plugin: a plugin, in its bus's thread
 * @subscription_id: an id returned for @plugin
 *
 * Removes a subscription. Safe from inside any handler, including the one
 * being removed: it is not called again. The destroy notify runs once no
 * dispatch is in progress.
 *
 * Since: 0.1
 */
void
jarvis_plugin_unsubscribe (JarvisPlugin *plugin,
                           guint         subscription_id)
{
  g_return_if_fail (plugin != NULL);
  g_return_if_fail (subscription_id != 0);

  _jarvis_bus_unsubscribe (plugin->bus, plugin, subscription_id);
}

/**
 * jarvis_plugin_emit:
 * @plugin: a plugin
 * @event: (transfer full): an event
 *
 * Emits an event on the plugin's bus, like jarvis_bus_emit(). Safe from any
 * thread.
 *
 * A plugin cannot emit events of type %JARVIS_EVENT_STREAM_FLUSH or
 * %JARVIS_EVENT_STREAM_COMPLETE, which only the bus emits. Passing one is
 * API misuse: it logs a critical that names the type and the request id,
 * and the event is dropped without being dispatched or counted in
 * %JARVIS_COUNTER_EVENTS.
 *
 * Since: 0.1
 */
void
jarvis_plugin_emit (JarvisPlugin *plugin,
                    JarvisEvent  *event)
{
  g_return_if_fail (plugin != NULL);
  g_return_if_fail (event != NULL);

  if (_jarvis_bus_reject_bus_only_event (event, G_STRFUNC))
    return;

  _jarvis_event_set_origin (event, plugin->name);
  jarvis_bus_emit (plugin->bus, event);
}

/**
 * jarvis_plugin_get_context:
 * @plugin: a plugin
 *
 * Returns: (transfer none): the main context its handlers run in
 *
 * Since: 0.1
 */
GMainContext *
jarvis_plugin_get_context (JarvisPlugin *plugin)
{
  g_return_val_if_fail (plugin != NULL, NULL);

  return jarvis_bus_get_context (plugin->bus);
}

/**
 * jarvis_plugin_set_data:
 * @plugin: a plugin
 * @data: (nullable): the plugin's state
 * @destroy: (nullable): frees @data after the shutdown hook, or when
 *   replaced
 *
 * Stores the plugin's own state, usually from its init hook.
 *
 * Since: 0.1
 */
void
jarvis_plugin_set_data (JarvisPlugin   *plugin,
                        gpointer        data,
                        GDestroyNotify  destroy)
{
  gpointer old_data;
  GDestroyNotify old_destroy;

  g_return_if_fail (plugin != NULL);

  old_data = plugin->data;
  old_destroy = plugin->data_destroy;
  plugin->data = data;
  plugin->data_destroy = destroy;

  if (old_destroy != NULL && old_data != data)
    old_destroy (old_data);
}

/**
 * jarvis_plugin_get_data:
 * @plugin: a plugin
 *
 * Returns: (transfer none) (nullable): the data given to
 *   jarvis_plugin_set_data()
 *
 * Since: 0.1
 */
gpointer
jarvis_plugin_get_data (JarvisPlugin *plugin)
{
  g_return_val_if_fail (plugin != NULL, NULL);

  return plugin->data;
}

static char *
dup_group (JarvisPlugin *plugin)
{
  return g_strconcat ("plugin ", plugin->name, NULL);
}

/**
 * jarvis_plugin_has_option:
 * @plugin: a plugin
 * @key: an option name
 *
 * Returns: whether the bus configuration sets @key in group `[plugin NAME]`
 *
 * Since: 0.1
 */
gboolean
jarvis_plugin_has_option (JarvisPlugin *plugin,
                          const char   *key)
{
  g_autofree char *group = NULL;
  GKeyFile *config;

  g_return_val_if_fail (plugin != NULL, FALSE);
  g_return_val_if_fail (key != NULL, FALSE);

  config = jarvis_bus_get_config (plugin->bus);
  if (config == NULL)
    return FALSE;

  group = dup_group (plugin);

  return g_key_file_has_key (config, group, key, NULL);
}

/**
 * jarvis_plugin_dup_option_string:
 * @plugin: a plugin
 * @key: an option name
 * @default_value: (nullable): the value when the option is not set
 *
 * Reads a string option from group `[plugin NAME]` of the bus
 * configuration.
 *
 * Returns: (transfer full) (nullable): the value, or a copy of
 *   @default_value
 *
 * Since: 0.1
 */
char *
jarvis_plugin_dup_option_string (JarvisPlugin *plugin,
                                 const char   *key,
                                 const char   *default_value)
{
  g_autofree char *group = NULL;
  GKeyFile *config;
  char *value;

  g_return_val_if_fail (plugin != NULL, NULL);
  g_return_val_if_fail (key != NULL, NULL);

  config = jarvis_bus_get_config (plugin->bus);
  if (config == NULL)
    return g_strdup (default_value);

  group = dup_group (plugin);
  value = g_key_file_get_string (config, group, key, NULL);

  return value != NULL ? value : g_strdup (default_value);
}

/* Fetches the raw value of a typed option. Returns FALSE when it is not
 * set, which means the default applies without an error. */
static gboolean
lookup_raw (JarvisPlugin  *plugin,
            const char    *key,
            char         **raw)
{
  g_autofree char *group = NULL;
  GKeyFile *config;

  config = jarvis_bus_get_config (plugin->bus);
  if (config == NULL)
    return FALSE;

  group = dup_group (plugin);
  *raw = g_key_file_get_value (config, group, key, NULL);

  return *raw != NULL;
}

static void
set_invalid_option (GError       **error,
                    JarvisPlugin  *plugin,
                    const char    *key,
                    const char    *raw,
                    const char    *expected)
{
  g_set_error (error, JARVIS_PLUGIN_ERROR, JARVIS_PLUGIN_ERROR_INVALID_OPTION,
               "Option %s of plugin %s has the invalid value “%s”: expected %s",
               key, plugin->name, raw, expected);
}

/**
 * jarvis_plugin_get_option_int:
 * @plugin: a plugin
 * @key: an option name
 * @default_value: the value when the option is missing or invalid
 * @error: return location for a %JARVIS_PLUGIN_ERROR_INVALID_OPTION error
 *
 * Reads a signed integer option from group `[plugin NAME]`.
 *
 * Returns: the value, or @default_value
 *
 * Since: 0.1
 */
gint64
jarvis_plugin_get_option_int (JarvisPlugin *plugin,
                              const char   *key,
                              gint64        default_value,
                              GError      **error)
{
  g_autofree char *raw = NULL;
  gint64 value;

  g_return_val_if_fail (plugin != NULL, default_value);
  g_return_val_if_fail (key != NULL, default_value);
  g_return_val_if_fail (error == NULL || *error == NULL, default_value);

  if (!lookup_raw (plugin, key, &raw))
    return default_value;

  g_strstrip (raw);
  if (!g_ascii_string_to_signed (raw, 10, G_MININT64, G_MAXINT64, &value, NULL))
    {
      set_invalid_option (error, plugin, key, raw, "an integer");
      return default_value;
    }

  return value;
}

/**
 * jarvis_plugin_get_option_uint:
 * @plugin: a plugin
 * @key: an option name
 * @default_value: the value when the option is missing or invalid
 * @error: return location for a %JARVIS_PLUGIN_ERROR_INVALID_OPTION error
 *
 * Reads an unsigned integer option from group `[plugin NAME]`.
 *
 * Returns: the value, or @default_value
 *
 * Since: 0.1
 */
guint64
jarvis_plugin_get_option_uint (JarvisPlugin *plugin,
                               const char   *key,
                               guint64       default_value,
                               GError      **error)
{
  g_autofree char *raw = NULL;
  guint64 value;

  g_return_val_if_fail (plugin != NULL, default_value);
  g_return_val_if_fail (key != NULL, default_value);
  g_return_val_if_fail (error == NULL || *error == NULL, default_value);

  if (!lookup_raw (plugin, key, &raw))
    return default_value;

  g_strstrip (raw);
  if (!g_ascii_string_to_unsigned (raw, 10, 0, G_MAXUINT64, &value, NULL))
    {
      set_invalid_option (error, plugin, key, raw, "an unsigned integer");
      return default_value;
    }

  return value;
}

/**
 * jarvis_plugin_get_option_boolean:
 * @plugin: a plugin
 * @key: an option name
 * @default_value: the value when the option is missing or invalid
 * @error: return location for a %JARVIS_PLUGIN_ERROR_INVALID_OPTION error
 *
 * Reads a boolean option (`true` or `false`) from group `[plugin NAME]`.
 *
 * Returns: the value, or @default_value
 *
 * Since: 0.1
 */
gboolean
jarvis_plugin_get_option_boolean (JarvisPlugin *plugin,
                                  const char   *key,
                                  gboolean      default_value,
                                  GError      **error)
{
  g_autofree char *raw = NULL;

  g_return_val_if_fail (plugin != NULL, default_value);
  g_return_val_if_fail (key != NULL, default_value);
  g_return_val_if_fail (error == NULL || *error == NULL, default_value);

  if (!lookup_raw (plugin, key, &raw))
    return default_value;

  g_strstrip (raw);
  if (g_str_equal (raw, "true"))
    return TRUE;
  if (g_str_equal (raw, "false"))
    return FALSE;

  set_invalid_option (error, plugin, key, raw, "true or false");
  return default_value;
}

/**
 * jarvis_plugin_get_option_double:
 * @plugin: a plugin
 * @key: an option name
 * @default_value: the value when the option is missing or invalid
 * @error: return location for a %JARVIS_PLUGIN_ERROR_INVALID_OPTION error
 *
 * Reads a floating-point option, in C locale notation, from group
 * `[plugin NAME]`.
 *
 * Returns: the value, or @default_value
 *
 * Since: 0.1
 */
double
jarvis_plugin_get_option_double (JarvisPlugin *plugin,
                                 const char   *key,
                                 double        default_value,
                                 GError      **error)
{
  g_autofree char *raw = NULL;
  char *end = NULL;
  double value;

  g_return_val_if_fail (plugin != NULL, default_value);
  g_return_val_if_fail (key != NULL, default_value);
  g_return_val_if_fail (error == NULL || *error == NULL, default_value);

  if (!lookup_raw (plugin, key, &raw))
    return default_value;

  g_strstrip (raw);
  value = g_ascii_strtod (raw, &end);
  if (*raw == '\0' || end == NULL || *end != '\0' || !isfinite (value))
    {
      set_invalid_option (error, plugin, key, raw, "a finite number");
      return default_value;
    }

  return value;
}
