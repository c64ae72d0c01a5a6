#pragma once

#include <jarvis/jarvis.h>

G_BEGIN_DECLS

/* An invariant checker for one bus.
 *
 * It registers an in-memory plugin, "reliability_recorder", whose sync
 * handler subscribes to every event before any other plugin does. From
 * the events that handler receives it checks, as they go by:
 * - one agent.stream.complete per request, and nothing after it;
 * - per request and choice, the flushed text equals the text of the
 *   dispatched deltas, byte for byte and in order, and the flushes' token
 *   counts add up to the number of those deltas;
 * - each flush is valid UTF-8;
 * - a session never interleaves two requests: once an event of a request
 *   is dispatched, no event of the session's previous request follows,
 *   and that previous request has completed;
 * - the counters of the complete event agree with what was dispatched.
 *
 * Producers report each event they emit with reliability_checker_note_emit()
 * so that reliability_checker_finish() can check, after close, that every
 * emitted event was either dispatched or counted as a late event.
 *
 * Request ids of the form "r<N>" with N below the @numbered_capacity given
 * to reliability_checker_new() are tracked in a preallocated table, so that
 * long runs keep constant memory. Other ids are tracked in a hash table. */
typedef struct _ReliabilityChecker ReliabilityChecker;

ReliabilityChecker *reliability_checker_new (guint numbered_capacity);

void reliability_checker_free (ReliabilityChecker *checker);

/* Registers the recorder plugin. Call it before any other plugin is
 * registered on @bus. */
void reliability_checker_attach (ReliabilityChecker *checker,
                                 JarvisBus          *bus);

/* Counts one event handed to the bus. Safe from any thread. Only the
 * request event types (start, delta, end, cancel, error) are counted. */
void reliability_checker_note_emit (ReliabilityChecker *checker,
                                    JarvisEvent        *event);

/* Counts @n_events request events that a plugin emitted on its own, which
 * the test expects but did not emit itself. Safe from any thread. */
void reliability_checker_note_emits (ReliabilityChecker *checker,
                                     guint               n_events);

/* Checks the totals after the bus closed: every request whose start was
 * dispatched completed once, no request is left, the bus counters agree with what was
 * dispatched, and emitted = dispatched + late events dropped. Returns the
 * number of violations found so far, including those found while events
 * were dispatched; reliability_checker_print() lists them. */
guint reliability_checker_finish (ReliabilityChecker *checker,
                                  JarvisBus          *bus);

guint reliability_checker_get_n_violations (ReliabilityChecker *checker);

guint reliability_checker_get_n_completed (ReliabilityChecker *checker);

guint reliability_checker_get_n_outcome (ReliabilityChecker *checker,
                                         const char         *outcome);

/* Returns how many request events (start, delta, end, cancel, error) of
 * @request_id were dispatched, or 0 for an unknown request. Only records
 * of requests that have not completed are kept. */
guint reliability_checker_get_n_dispatched (ReliabilityChecker *checker,
                                            const char         *request_id);

/* Returns the outcome of a completed request with a string id, or NULL. */
const char *reliability_checker_get_outcome (ReliabilityChecker *checker,
                                             const char         *request_id);

void reliability_checker_print (ReliabilityChecker *checker);

G_END_DECLS
