#pragma once

#include <json-glib/json-glib.h>

#include "bench-side.h"

G_BEGIN_DECLS

typedef struct
{
  guint rounds;
  gboolean quick;               /* smaller inputs, for smoke runs */
  gboolean run_jarvis;
  gboolean run_baseline;
  gboolean run_floor;
  char *host_binary;            /* owned */
  char *corpus_dir;             /* owned */
  char *work_dir;               /* owned; generated input files go here */
} BenchOptions;

/* One printed line: the samples of one metric on both sides, one per round.
 * Extra keys carry the workload's parameters and checks. */
typedef struct
{
  char *workload;               /* owned */
  char *metric;                 /* owned */
  char *unit;                   /* owned */
  gboolean higher_is_better;
  GArray *jarvis;               /* double samples */
  GArray *baseline;             /* double samples */
  JsonObject *extra;            /* owned */
} BenchResult;

BenchResult *bench_result_new (const char *workload,
                               const char *metric,
                               const char *unit,
                               gboolean    higher_is_better);
void bench_result_free (BenchResult *result);
void bench_result_print (BenchResult *result);

/* Returns the median of @samples (doubles), sorting them in place. */
double bench_median (GArray *samples);

/* Resets the peak resident set size of this process to its current size,
 * and reads it, in KiB. */
void bench_reset_peak_rss (void);
guint64 bench_read_peak_rss_kib (void);

/* Turns callgrind's instruction counting on or off around a measured
 * region; does nothing outside callgrind. */
void bench_measure_begin (void);
void bench_measure_end (void);

void bench_workload_std (const BenchOptions *options);
void bench_workload_sync (const BenchOptions *options);
void bench_workload_cleanup (const BenchOptions *options);
void bench_workload_memory (const BenchOptions *options);
void bench_workload_threads (const BenchOptions *options);
void bench_workload_host (const BenchOptions *options);

/* The baseline's counterpart of jarvis-host, run as a child process by the
 * host workload: reads an events file and dispatches it on the baseline. */
int bench_run_baseline_host (const char *path);

/* Prints the memory figures of one side, measured in this process; the
 * memory workload runs it in a child process. */
int bench_run_memory_probe (const char *side_name,
                            guint       count);

/* Prints the peak RSS in KiB of one std run of one side in this process;
 * the std workload runs it in a child process. */
int bench_run_rss_probe (const char *side_name,
                         gboolean    quick);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BenchResult, bench_result_free)

G_END_DECLS
