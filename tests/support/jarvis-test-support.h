/* Helpers shared by the GTest programs: capture of the library's log
 * records, in-memory plugin descriptors, and driving a main context. */
#pragma once

#include <jarvis/jarvis.h>

G_BEGIN_DECLS

/* One captured structured log record of domain "jarvis". */
typedef struct
{
  GLogLevelFlags level;
  char *message;                /* the MESSAGE field */
  char *request_id;             /* the JARVIS_REQUEST_ID field, or NULL */
  char *plugin;                 /* the JARVIS_PLUGIN field, or NULL */
} JarvisTestLogRecord;

/* Installs the capturing log writer and enables debug records. Call once,
 * from main() after g_test_init() and before creating a bus, because the
 * bus decides at creation whether to format debug lines. Records of other
 * domains go to GLib's default writer. */
void jarvis_test_log_init (void);

/* Forgets every captured record. */
void jarvis_test_log_clear (void);

/* Returns (transfer container) the captured records, oldest first. */
GPtrArray *jarvis_test_log_dup_records (void);

/* Returns (transfer full) the messages of captured records of @level whose
 * MESSAGE starts with one of @prefixes (NULL-terminated; NULL takes all),
 * oldest first, as a NULL-terminated array. */
GStrv jarvis_test_log_dup_messages (GLogLevelFlags      level,
                                   const char * const *prefixes);

/* Returns how many captured records of @level have a MESSAGE starting with
 * @prefix. */
guint jarvis_test_log_count (GLogLevelFlags  level,
                             const char     *prefix);

/* Fails the test if a warning or critical of domain "jarvis" was captured
 * since the last clear. */
void jarvis_test_log_assert_no_warnings (void);

/* Returns (transfer full) a descriptor filled like JARVIS_PLUGIN_DEFINE()
 * does. Free it with g_free() after the plugin was unloaded or the bus
 * closed. */
JarvisPluginInfo *jarvis_test_plugin_info_new (const char *name,
                                               gboolean  (*init) (JarvisPlugin *plugin,
                                                                  GError      **error),
                                               void      (*shutdown) (JarvisPlugin *plugin));

/* Runs one non-blocking iteration after another until nothing is ready.
 * Returns the number of iterations that dispatched something. */
guint jarvis_test_iterate_ready (GMainContext *context);

/* Iterates @context, blocking, until @done returns TRUE. Fails the test
 * if that takes longer than @watchdog_ms. */
void jarvis_test_iterate_until (GMainContext *context,
                                gboolean    (*done) (gpointer user_data),
                                gpointer      user_data,
                                guint         watchdog_ms);

/* Closes @bus and iterates its context until the close finished; fails
 * the test after @watchdog_ms. */
void jarvis_test_close_bus (JarvisBus *bus,
                            guint      watchdog_ms);

/* Builds an event with optional session, trace and text (NULL for none). */
JarvisEvent *jarvis_test_event_new (const char *event_type,
                                    const char *request_id,
                                    const char *session_id,
                                    const char *text);

G_END_DECLS
