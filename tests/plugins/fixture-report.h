/* Shared by the fixture plugins: each call of a fixture handler is reported
 * to the test as a "test.report" event on the request "report", whose text
 * is "PLUGIN:EVENT_TYPE:REQUEST_ID". Tests count these events, so they
 * observe the plugins only through the public API. */
#pragma once

#include <jarvis/jarvis.h>

#define FIXTURE_REPORT_EVENT "test.report"
#define FIXTURE_REPORT_REQUEST "report"

static inline void
fixture_report (JarvisPlugin *plugin,
                JarvisEvent  *event)
{
  g_autofree char *text = g_strdup_printf ("%s:%s:%s",
                                           jarvis_plugin_get_name (plugin),
                                           jarvis_event_get_event_type (event),
                                           jarvis_event_get_request_id (event));
  JarvisEvent *report = jarvis_event_new (FIXTURE_REPORT_EVENT, FIXTURE_REPORT_REQUEST);

  jarvis_event_set_text (report, text, -1);
  jarvis_plugin_emit (plugin, report);
}
