/* The fixture of the core test programs: a bus on a fresh main context and
 * a recording plugin whose handlers log every call in order. */
#pragma once

#include <jarvis/jarvis.h>

#include "jarvis-test-support.h"

typedef struct
{
  GMainContext *context;        /* owned, pushed as thread default */
  JarvisBus *bus;               /* owned */
  GPtrArray *calls;             /* char *, "handler:event_type:request_id" */
  GPtrArray *held;              /* JarvisInvocation *, not yet returned */
  GString *flushed;             /* text of every flush, in order */
  GPtrArray *completes;         /* JarvisEvent *, owned refs */
  GPtrArray *infos;             /* JarvisPluginInfo *, owned */
  guint n_shutdowns;
} CoreFixture;

/* The fixture being set up; plugin init hooks take no user data. */
extern CoreFixture *core_fixture;

void core_fixture_set_up (CoreFixture   *fixture,
                          gconstpointer  data);

void core_fixture_tear_down (CoreFixture   *fixture,
                             gconstpointer  data);

/* Registers an in-memory plugin called @name whose init hook is @init. */
void core_fixture_register (CoreFixture *fixture,
                            const char  *name,
                            gboolean   (*init) (JarvisPlugin *plugin,
                                                GError      **error));

/* Handlers for jarvis_plugin_subscribe*(); user_data is a static string
 * that names the handler in fixture->calls. */
void core_record_sync (JarvisEvent *event,
                       gpointer     user_data);

void core_record_and_hold (JarvisEvent      *event,
                           JarvisInvocation *invocation,
                           gpointer          user_data);

void core_record_and_return (JarvisEvent      *event,
                             JarvisInvocation *invocation,
                             gpointer          user_data);

/* Returns every held invocation, oldest first, and iterates the context
 * until nothing is ready. */
void core_fixture_return_held (CoreFixture *fixture);

void core_fixture_emit (CoreFixture *fixture,
                        const char  *event_type,
                        const char  *request_id,
                        const char  *session_id,
                        const char  *text);

/* Asserts that fixture->calls equals @expected (NULL-terminated). */
void core_fixture_assert_calls (CoreFixture        *fixture,
                                const char * const *expected);

/* Asserts that the debug lines starting with one of @prefixes equal
 * @expected (both NULL-terminated). */
void core_assert_log (const char * const *prefixes,
                      const char * const *expected);

guint64 core_complete_get (JarvisEvent *complete,
                           const char  *key);
