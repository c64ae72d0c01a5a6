#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* One scripted event. Strings point into the script. */
typedef struct
{
  const char *event_type;       /* static string */
  const char *request_id;
  const char *session_id;       /* set on starts only */
  const char *text;             /* deltas only */
  gsize text_length;
} BenchScriptEvent;

/* A generated, reproducible model-stream workload: @n_requests requests of
 * @n_tokens deltas spread over @n_sessions sessions, the sessions'
 * requests interleaved one event at a time. Tokens are 1 to 8 bytes of
 * valid UTF-8 and a third of them contain multi-byte characters. When
 * @supersede is set, the requests at places 5, 15, 25… of each session are
 * cut after half their tokens by the next request's start on the same
 * session, which supersedes them: 10% of requests. */
typedef struct
{
  GArray *events;               /* BenchScriptEvent */
  guint n_requests;
  guint n_superseded;
  guint64 delta_bytes;

  /*< private >*/
  GPtrArray *strings;           /* owned ids and tokens */
} BenchScript;

BenchScript *bench_script_new (guint    n_requests,
                               guint    n_tokens,
                               guint    n_sessions,
                               gboolean supersede);
void bench_script_free (BenchScript *script);

/* Writes the script in jarvis-host's `events` format, one JSON object per
 * line. */
gboolean bench_script_write_events_file (BenchScript  *script,
                                         const char   *path,
                                         GError      **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BenchScript, bench_script_free)

G_END_DECLS
