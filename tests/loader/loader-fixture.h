/* Shared setup of the loader tests. Each test gets a bus on a private
 * context and a loader that searches only a private temporary directory,
 * with copies of the fixture plugins. An in-memory probe plugin records
 * the fixtures' reports, and a log writer records warnings so that tests
 * can assert them. */
#pragma once

#include <jarvis/jarvis.h>

G_BEGIN_DECLS

typedef struct
{
  GMainContext *context;
  JarvisBus *bus;
  JarvisPluginLoader *loader;
  char *plugin_dir;             /* owned temporary directory, mode 0700 */
  GPtrArray *reports;           /* texts of the fixtures' report events */
  GPtrArray *completes;         /* request ids of complete events */
} LoaderFixture;

void loader_test_init (int    *argc,
                       char ***argv);

void loader_fixture_set_up (LoaderFixture *fixture,
                            gconstpointer  user_data);

void loader_fixture_tear_down (LoaderFixture *fixture,
                               gconstpointer  user_data);

/* Copies the fixture plugin NAME (such as "good-sync") into @directory as
 * @file_name, or as its built name when @file_name is NULL, with mode 0644.
 * Returns the new path. */
char *loader_fixture_copy_plugin (const char *directory,
                                  const char *name,
                                  const char *file_name);

/* Returns the in-memory probe plugin's descriptor, to register it on a
 * second bus. */
const JarvisPluginInfo *loader_fixture_get_probe_info (void);

/* Copies the fixture plugin NAME into the fixture's search directory. */
void loader_fixture_add_plugin (LoaderFixture *fixture,
                                const char    *name);

char *loader_fixture_make_dir (LoaderFixture *fixture,
                               const char    *name);

void loader_fixture_emit (LoaderFixture *fixture,
                          const char    *event_type,
                          const char    *request_id);

guint loader_fixture_count_reports (LoaderFixture *fixture,
                                    const char    *text);

/* Iterates the fixture's context until @condition returns TRUE, failing the
 * test when a watchdog of some seconds fires first. */
void loader_fixture_iterate_until (LoaderFixture *fixture,
                                   gboolean     (*condition) (gpointer data),
                                   gpointer       data);

void loader_fixture_iterate_until_reports (LoaderFixture *fixture,
                                           guint          n_reports);

void loader_fixture_iterate_until_counter (LoaderFixture *fixture,
                                           JarvisCounter  counter,
                                           guint64        value);

/* Returns the warnings logged since the last call and clears the list. */
GPtrArray *loader_test_steal_warnings (void);

/* Asserts that exactly one warning was logged since the last check and
 * that it contains every fragment of the NULL-terminated list. */
void loader_test_assert_one_warning (const char *first_fragment,
                                     ...) G_GNUC_NULL_TERMINATED;

void loader_test_assert_no_warning (void);

G_END_DECLS
