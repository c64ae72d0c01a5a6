#include "reliability-check.h"

#include <string.h>

#define N_CHOICES 4
#define MAX_REPORTED 20

typedef enum
{
  REQUEST_UNSEEN,
  REQUEST_OPEN,
  REQUEST_COMPLETED,
} RequestState;

/* What the recorder saw of one request that has not completed yet. */
typedef struct
{
  char *request_id;             /* owned */
  char *session_id;             /* owned, from the first event */
  GString *accepted[N_CHOICES]; /* owned, text of dispatched deltas */
  GString *flushed[N_CHOICES];  /* owned, text of flushes */
  guint64 accepted_tokens[N_CHOICES];
  guint64 flushed_tokens[N_CHOICES];
  guint n_dispatched;           /* request events dispatched */
} RequestRecord;

struct _ReliabilityChecker
{
  JarvisBus *bus;               /* unowned; set by attach */

  /* Touched only in the bus's context. */
  GHashTable *open;             /* request id -> RequestRecord, owned */
  GHashTable *completed;        /* string id -> interned outcome */
  guint8 *numbered_state;       /* owned, RequestState per "r<N>" id */
  guint numbered_capacity;
  GHashTable *session_current;  /* session id -> request id, both owned */
  GHashTable *outcomes;         /* interned outcome -> count */
  guint64 n_dispatched_input;
  guint n_starts_dispatched;
  guint n_completed;
  guint n_violations;
  GPtrArray *reports;           /* owned, of char *, the first few */

  gint n_emitted_input;         /* atomic */
  guint n_started;              /* atomic, starts emitted */
};

/* The recorder's init runs inside jarvis_bus_register_plugin(), which takes
 * no user data; the checker being attached is handed over through this
 * pointer. Only the main thread attaches. */
static ReliabilityChecker *attaching;

static void
record_free (gpointer data)
{
  RequestRecord *record = data;

  for (guint i = 0; i < N_CHOICES; i++)
    {
      g_string_free (record->accepted[i], TRUE);
      g_string_free (record->flushed[i], TRUE);
    }
  g_free (record->request_id);
  g_free (record->session_id);
  g_free (record);
}

static G_GNUC_PRINTF (2, 3) void
report (ReliabilityChecker *checker,
        const char         *format,
        ...)
{
  va_list args;

  checker->n_violations++;
  if (checker->reports->len >= MAX_REPORTED)
    return;

  va_start (args, format);
  g_ptr_array_add (checker->reports, g_strdup_vprintf (format, args));
  va_end (args);
}

static gboolean
is_request_event (JarvisEvent *event)
{
  return jarvis_event_has_type (event, JARVIS_EVENT_STREAM_START) ||
         jarvis_event_has_type (event, JARVIS_EVENT_STREAM_DELTA) ||
         jarvis_event_has_type (event, JARVIS_EVENT_STREAM_END) ||
         jarvis_event_has_type (event, JARVIS_EVENT_STREAM_CANCEL) ||
         jarvis_event_has_type (event, JARVIS_EVENT_STREAM_ERROR);
}

/* Returns the index of a numbered id "r<N>" inside the table, or -1. */
static gint64
parse_numbered (ReliabilityChecker *checker,
                const char         *request_id)
{
  guint64 number;
  char *end = NULL;

  if (request_id[0] != 'r' || !g_ascii_isdigit (request_id[1]))
    return -1;

  number = g_ascii_strtoull (request_id + 1, &end, 10);
  if (*end != '\0' || number >= checker->numbered_capacity)
    return -1;

  return (gint64) number;
}

static gboolean
is_completed (ReliabilityChecker *checker,
              const char         *request_id)
{
  gint64 index = parse_numbered (checker, request_id);

  if (index >= 0)
    return checker->numbered_state[index] == REQUEST_COMPLETED;

  return g_hash_table_contains (checker->completed, request_id);
}

static void
mark_completed (ReliabilityChecker *checker,
                const char         *request_id,
                const char         *outcome)
{
  gint64 index = parse_numbered (checker, request_id);

  if (index >= 0)
    {
      checker->numbered_state[index] = REQUEST_COMPLETED;
      return;
    }

  g_hash_table_insert (checker->completed, g_strdup (request_id),
                       (gpointer) g_intern_string (outcome));
}

static RequestRecord *
ensure_record (ReliabilityChecker *checker,
               JarvisEvent        *event)
{
  const char *request_id = jarvis_event_get_request_id (event);
  const char *session_id = jarvis_event_get_session_id (event);
  RequestRecord *record;

  record = g_hash_table_lookup (checker->open, request_id);
  if (record != NULL)
    return record;

  record = g_new0 (RequestRecord, 1);
  record->request_id = g_strdup (request_id);
  record->session_id = g_strdup (session_id ? session_id : JARVIS_SESSION_DEFAULT);
  for (guint i = 0; i < N_CHOICES; i++)
    {
      record->accepted[i] = g_string_new (NULL);
      record->flushed[i] = g_string_new (NULL);
    }
  g_hash_table_insert (checker->open, record->request_id, record);

  return record;
}

/* A session may move on to another request only after the current one
 * completed, and never back to an earlier one. */
static void
check_session (ReliabilityChecker *checker,
               RequestRecord      *record,
               JarvisEvent        *event)
{
  const char *session_id = jarvis_event_get_session_id (event);
  const char *current;

  if (session_id != NULL && g_strcmp0 (session_id, record->session_id) != 0)
    report (checker, "request %s: event %s carries session %s, but the request is on session %s",
            record->request_id, jarvis_event_get_event_type (event), session_id,
            record->session_id);

  current = g_hash_table_lookup (checker->session_current, record->session_id);
  if (g_strcmp0 (current, record->request_id) == 0)
    return;

  if (current != NULL && g_hash_table_contains (checker->open, current))
    report (checker, "session %s: event %s of request %s dispatched while request %s has not completed",
            record->session_id, jarvis_event_get_event_type (event), record->request_id, current);

  if (record->n_dispatched > 0)
    report (checker, "session %s: request %s resumed after request %s",
            record->session_id, record->request_id, current);

  g_hash_table_insert (checker->session_current, g_strdup (record->session_id),
                       g_strdup (record->request_id));
}

static guint64
lookup_counter (JarvisEvent *event,
                const char  *key)
{
  GVariant *payload = jarvis_event_get_payload (event);
  guint64 value = G_MAXUINT64;

  if (payload == NULL || !g_variant_lookup (payload, key, "t", &value))
    return G_MAXUINT64;

  return value;
}

static void
check_complete (ReliabilityChecker *checker,
                RequestRecord      *record,
                JarvisEvent        *event)
{
  const char *outcome = jarvis_event_get_outcome (event);
  guint64 accepted_bytes = 0;
  guint64 accepted_tokens = 0;
  guint64 created, ended;

  for (guint i = 0; i < N_CHOICES; i++)
    {
      if (!g_string_equal (record->accepted[i], record->flushed[i]))
        report (checker, "request %s choice %u: flushed %" G_GSIZE_FORMAT " bytes \"%.40s\", expected %" G_GSIZE_FORMAT " bytes \"%.40s\"",
                record->request_id, i, record->flushed[i]->len, record->flushed[i]->str,
                record->accepted[i]->len, record->accepted[i]->str);
      if (record->accepted_tokens[i] != record->flushed_tokens[i])
        report (checker, "request %s choice %u: flushes carry %" G_GUINT64_FORMAT " tokens, %" G_GUINT64_FORMAT " deltas were dispatched",
                record->request_id, i, record->flushed_tokens[i], record->accepted_tokens[i]);
      accepted_bytes += record->accepted[i]->len;
      accepted_tokens += record->accepted_tokens[i];
    }

  if (outcome == NULL)
    {
      report (checker, "request %s: complete event without an outcome", record->request_id);
      outcome = "(none)";
    }

  if (lookup_counter (event, "bytes_in") != accepted_bytes ||
      lookup_counter (event, "bytes_flushed") != accepted_bytes)
    report (checker, "request %s: complete reports bytes_in=%" G_GUINT64_FORMAT " bytes_flushed=%" G_GUINT64_FORMAT ", dispatched deltas carry %" G_GUINT64_FORMAT,
            record->request_id, lookup_counter (event, "bytes_in"),
            lookup_counter (event, "bytes_flushed"), accepted_bytes);

  if (lookup_counter (event, "tokens") != accepted_tokens)
    report (checker, "request %s: complete reports tokens=%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT " deltas were dispatched",
            record->request_id, lookup_counter (event, "tokens"), accepted_tokens);

  created = lookup_counter (event, "tasks_created");
  ended = lookup_counter (event, "tasks_completed") + lookup_counter (event, "tasks_failed") +
          lookup_counter (event, "tasks_cancelled") + lookup_counter (event, "tasks_detached");
  if (created != ended)
    report (checker, "request %s: complete reports tasks_created=%" G_GUINT64_FORMAT " but %" G_GUINT64_FORMAT " ended",
            record->request_id, created, ended);

  g_hash_table_insert (checker->outcomes, (gpointer) g_intern_string (outcome),
                       GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (checker->outcomes, g_intern_string (outcome))) + 1));
  checker->n_completed++;
  mark_completed (checker, record->request_id, outcome);
  g_hash_table_remove (checker->open, record->request_id);
}

static void
record_event (JarvisEvent *event,
              gpointer     user_data)
{
  ReliabilityChecker *checker = user_data;
  const char *request_id = jarvis_event_get_request_id (event);
  RequestRecord *record;
  const char *text;
  gsize length;
  guint choice;

  if (request_id == NULL || *request_id == '\0')
    return;

  if (is_completed (checker, request_id))
    {
      report (checker, "request %s: event %s dispatched after its complete",
              request_id, jarvis_event_get_event_type (event));
      return;
    }

  /* Other event types, such as a plugin's own, belong to a request only
   * when that request is known. */
  if (!is_request_event (event) && !jarvis_event_has_type (event, JARVIS_EVENT_STREAM_FLUSH) &&
      !jarvis_event_has_type (event, JARVIS_EVENT_STREAM_COMPLETE) &&
      !g_hash_table_contains (checker->open, request_id))
    return;

  record = ensure_record (checker, event);
  check_session (checker, record, event);

  if (is_request_event (event))
    {
      record->n_dispatched++;
      checker->n_dispatched_input++;
    }
  if (jarvis_event_has_type (event, JARVIS_EVENT_STREAM_START))
    checker->n_starts_dispatched++;

  choice = jarvis_event_get_choice (event);
  if (choice >= N_CHOICES && (jarvis_event_has_type (event, JARVIS_EVENT_STREAM_DELTA) ||
                              jarvis_event_has_type (event, JARVIS_EVENT_STREAM_FLUSH)))
    {
      report (checker, "request %s: choice %u out of the checked range", request_id, choice);
      return;
    }

  if (jarvis_event_has_type (event, JARVIS_EVENT_STREAM_DELTA))
    {
      text = jarvis_event_get_text (event, &length);
      g_string_append_len (record->accepted[choice], text, length);
      record->accepted_tokens[choice]++;
    }
  else if (jarvis_event_has_type (event, JARVIS_EVENT_STREAM_FLUSH))
    {
      text = jarvis_event_get_text (event, &length);
      if (!g_utf8_validate_len (text, length, NULL))
        report (checker, "request %s: flush of %" G_GSIZE_FORMAT " bytes is not valid UTF-8",
                request_id, length);
      g_string_append_len (record->flushed[choice], text, length);
      record->flushed_tokens[choice] += jarvis_event_get_token_count (event);
    }
  else if (jarvis_event_has_type (event, JARVIS_EVENT_STREAM_COMPLETE))
    {
      check_complete (checker, record, event);
    }
}

static gboolean
init_recorder (JarvisPlugin  *plugin,
               GError       **error)
{
  g_assert (attaching != NULL);

  jarvis_plugin_subscribe (plugin, "*", record_event, attaching, NULL);

  return TRUE;
}

static const JarvisPluginInfo recorder_info = {
  .abi_version = JARVIS_PLUGIN_ABI_VERSION,
  .struct_size = sizeof (JarvisPluginInfo),
  .name = "reliability_recorder",
  .version = "1",
  .description = "Records dispatched events for the invariant checks",
  .license = "MIT",
  .init = init_recorder,
};

ReliabilityChecker *
reliability_checker_new (guint numbered_capacity)
{
  ReliabilityChecker *checker = g_new0 (ReliabilityChecker, 1);

  checker->open = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, record_free);
  checker->completed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  checker->numbered_capacity = numbered_capacity;
  checker->numbered_state = g_new0 (guint8, MAX (numbered_capacity, 1));
  checker->session_current = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  checker->outcomes = g_hash_table_new (NULL, NULL);
  checker->reports = g_ptr_array_new_with_free_func (g_free);

  return checker;
}

void
reliability_checker_free (ReliabilityChecker *checker)
{
  g_hash_table_unref (checker->open);
  g_hash_table_unref (checker->completed);
  g_free (checker->numbered_state);
  g_hash_table_unref (checker->session_current);
  g_hash_table_unref (checker->outcomes);
  g_ptr_array_unref (checker->reports);
  g_free (checker);
}

void
reliability_checker_attach (ReliabilityChecker *checker,
                            JarvisBus          *bus)
{
  g_autoptr(GError) error = NULL;
  gboolean registered;

  checker->bus = bus;

  attaching = checker;
  registered = jarvis_bus_register_plugin (bus, &recorder_info, &error);
  attaching = NULL;

  g_assert_no_error (error);
  g_assert_true (registered);
}

void
reliability_checker_note_emit (ReliabilityChecker *checker,
                               JarvisEvent        *event)
{
  if (!is_request_event (event))
    return;

  g_atomic_int_inc (&checker->n_emitted_input);
  if (jarvis_event_has_type (event, JARVIS_EVENT_STREAM_START))
    g_atomic_int_inc (&checker->n_started);
}

void
reliability_checker_note_emits (ReliabilityChecker *checker,
                                guint               n_events)
{
  g_atomic_int_add (&checker->n_emitted_input, n_events);
}

static void
check_counter (ReliabilityChecker *checker,
               JarvisBus          *bus,
               JarvisCounter       counter,
               guint64             expected)
{
  guint64 actual = jarvis_bus_get_counter (bus, counter);

  if (actual != expected)
    report (checker, "bus counter %s is %" G_GUINT64_FORMAT ", expected %" G_GUINT64_FORMAT,
            jarvis_counter_get_name (counter), actual, expected);
}

guint
reliability_checker_finish (ReliabilityChecker *checker,
                            JarvisBus          *bus)
{
  guint64 emitted = (guint) g_atomic_int_get (&checker->n_emitted_input);
  guint started = (guint) g_atomic_int_get (&checker->n_started);
  guint64 dropped;

  /* The bus drops a start that still waits behind its session's previous
   * request at close, and counts it as a late event. Its request never
   * opens, so it gets no complete, and the conservation check below
   * accounts for it. */
  if (checker->n_starts_dispatched > started)
    report (checker, "%u starts dispatched, only %u emitted", checker->n_starts_dispatched, started);
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, checker->open);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    report (checker, "request %s: no complete was dispatched", (const char *) key);

  if (checker->n_completed != checker->n_starts_dispatched)
    report (checker, "%u requests completed, %u starts were dispatched",
            checker->n_completed, checker->n_starts_dispatched);

  if (jarvis_bus_get_n_active_requests (bus) != 0)
    report (checker, "%u requests still active after close", jarvis_bus_get_n_active_requests (bus));
  if (jarvis_bus_get_n_invocations (bus) != 0)
    report (checker, "%u invocations still alive after close", jarvis_bus_get_n_invocations (bus));

  dropped = jarvis_bus_get_counter (bus, JARVIS_COUNTER_LATE_EVENTS_DROPPED);
  if (emitted != checker->n_dispatched_input + dropped)
    report (checker, "%" G_GUINT64_FORMAT " request events emitted, but %" G_GUINT64_FORMAT " dispatched + %" G_GUINT64_FORMAT " late events dropped",
            emitted, checker->n_dispatched_input, dropped);

  check_counter (checker, bus, JARVIS_COUNTER_REQUESTS, checker->n_starts_dispatched);
  check_counter (checker, bus, JARVIS_COUNTER_REQUESTS_COMPLETED,
                 reliability_checker_get_n_outcome (checker, "completed"));
  check_counter (checker, bus, JARVIS_COUNTER_REQUESTS_CANCELLED,
                 reliability_checker_get_n_outcome (checker, "cancelled"));
  check_counter (checker, bus, JARVIS_COUNTER_REQUESTS_SUPERSEDED,
                 reliability_checker_get_n_outcome (checker, "superseded"));
  check_counter (checker, bus, JARVIS_COUNTER_REQUESTS_FAILED,
                 reliability_checker_get_n_outcome (checker, "failed"));
  check_counter (checker, bus, JARVIS_COUNTER_BYTES_FLUSHED,
                 jarvis_bus_get_counter (bus, JARVIS_COUNTER_BYTES_IN));
  check_counter (checker, bus, JARVIS_COUNTER_TASKS_CREATED,
                 jarvis_bus_get_counter (bus, JARVIS_COUNTER_TASKS_COMPLETED) +
                 jarvis_bus_get_counter (bus, JARVIS_COUNTER_TASKS_FAILED) +
                 jarvis_bus_get_counter (bus, JARVIS_COUNTER_TASKS_CANCELLED) +
                 jarvis_bus_get_counter (bus, JARVIS_COUNTER_TASKS_DETACHED));

  return checker->n_violations;
}

guint
reliability_checker_get_n_violations (ReliabilityChecker *checker)
{
  return checker->n_violations;
}

guint
reliability_checker_get_n_completed (ReliabilityChecker *checker)
{
  return checker->n_completed;
}

guint
reliability_checker_get_n_outcome (ReliabilityChecker *checker,
                                   const char         *outcome)
{
  return GPOINTER_TO_UINT (g_hash_table_lookup (checker->outcomes, g_intern_string (outcome)));
}

guint
reliability_checker_get_n_dispatched (ReliabilityChecker *checker,
                                      const char         *request_id)
{
  RequestRecord *record = g_hash_table_lookup (checker->open, request_id);

  return record ? record->n_dispatched : 0;
}

const char *
reliability_checker_get_outcome (ReliabilityChecker *checker,
                                 const char         *request_id)
{
  return g_hash_table_lookup (checker->completed, request_id);
}

void
reliability_checker_print (ReliabilityChecker *checker)
{
  for (guint i = 0; i < checker->reports->len; i++)
    g_printerr ("  violation: %s\n", (const char *) g_ptr_array_index (checker->reports, i));

  if (checker->n_violations > checker->reports->len)
    g_printerr ("  ... and %u more\n", checker->n_violations - checker->reports->len);
}
