#include <malloc.h>
#include <stdio.h>

#include "bench-script.h"
#include "bench-workloads.h"

/* Workload sizes, as the benchmark page defines them; --quick divides the
 * counts by ten. */
#define STD_REQUESTS 1000
#define STD_TOKENS 200
#define STD_SESSIONS 50
#define STD_FLUSH_INTERVAL_MS 20
#define STD_FLUSH_MAX_BYTES 4096
#define CLEANUP_INVOCATIONS 10000
#define MEMORY_COUNT 100000
#define THREADS_REQUESTS 100
#define THREADS_TOKENS 1000

/* Emitting pauses to iterate the loop after this many events, as a
 * producer reading a socket would. */
#define EMIT_BATCH 64

/* Maximum time of a single run before the harness gives up. */
#define RUN_TIMEOUT_S 120

static guint
scaled (const BenchOptions *options,
        guint               count)
{
  return options->quick ? count / 10 : count;
}

typedef struct
{
  GMainContext *context;        /* owned, pushed as thread default */
  const BenchSide *side;
  gpointer bus;
} Run;

static void
run_begin (Run             *run,
           const BenchSide *side,
           BenchLoad       *load)
{
  run->context = g_main_context_new ();
  g_main_context_push_thread_default (run->context);
  run->side = side;
  run->bus = side->bus_new (run->context, load);
}

static void
run_end (Run *run)
{
  run->side->close (run->bus);
  bench_iterate_pending (run->context);
  g_main_context_pop_thread_default (run->context);
  g_main_context_unref (run->context);
}

static const BenchSide *
side_for_round (const BenchOptions *options,
                guint               index)
{
  if (index == 0)
    return options->run_jarvis ? &bench_side_jarvis : NULL;

  return options->run_baseline ? &bench_side_baseline : NULL;
}

static const BenchSide *
find_side (const char *name)
{
  if (g_str_equal (name, bench_side_jarvis.name))
    return &bench_side_jarvis;
  if (g_str_equal (name, bench_side_baseline.name))
    return &bench_side_baseline;

  g_printerr ("jarvis-bench: invalid probe side \"%s\": use jarvis or baseline\n", name);

  return NULL;
}

/* Runs this program as `jarvis-bench @option=SIDE @extra_option` in a fresh
 * process and returns what it printed, or NULL with a message. */
static char *
run_probe (const char      *option,
           const BenchSide *side,
           const char      *extra_option,
           gboolean         slice_to_malloc)
{
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *probe_option = g_strdup_printf ("%s=%s", option, side->name);
  const char *argv[] = { self, probe_option, extra_option, NULL };
  g_auto(GStrv) envp = g_get_environ ();
  g_autofree char *output = NULL;
  g_autoptr(GError) error = NULL;
  int status;

  if (slice_to_malloc)
    envp = g_environ_setenv (envp, "G_SLICE", "always-malloc", TRUE);

  if (!g_spawn_sync (NULL, (char **) argv, envp, G_SPAWN_DEFAULT, NULL, NULL, &output, NULL, &status, &error)
      || !g_spawn_check_wait_status (status, &error))
    {
      g_printerr ("jarvis-bench: the %s probe of %s failed: %s\n", option, side->name, error->message);
      return NULL;
    }

  return g_steal_pointer (&output);
}

static void
add_sample (BenchResult     *result,
            const BenchSide *side,
            double           value)
{
  g_array_append_val (side == &bench_side_jarvis ? result->jarvis : result->baseline, value);
}

/* std and sync */

typedef struct
{
  double seconds;
  guint64 async_calls;
  guint64 peak_rss_kib;
  gboolean lossless;
} StreamRun;

static void
emit_script (const BenchSide   *side,
             gpointer           bus,
             GMainContext      *context,
             const BenchScript *script)
{
  for (guint i = 0; i < script->events->len; i++)
    {
      const BenchScriptEvent *event = &g_array_index (script->events, BenchScriptEvent, i);

      side->emit (bus, event->event_type, event->request_id, event->session_id,
                  event->text, event->text_length);
      if ((i + 1) % EMIT_BATCH == 0)
        bench_iterate_pending (context);
    }
}

/* Runs the script on @side until every request completed. No flushed byte
 * is lost when each sync handler saw every delta byte in flush events and
 * the bus's own counters agree. */
static StreamRun
run_stream (const BenchSide   *side,
            const BenchScript *script,
            guint              n_async)
{
  BenchLoad load = {
    .n_sync = 2,
    .sync_pattern = "*",
    .n_async = n_async,
    .async_pattern = "agent.stream.delta",
    .async_mode = BENCH_ASYNC_RETURN_FROM_IDLE,
    .flush_interval_ms = STD_FLUSH_INTERVAL_MS,
    .flush_max_bytes = STD_FLUSH_MAX_BYTES,
  };
  StreamRun result = { 0 };
  Run run;
  gint64 start_us;

  run_begin (&run, side, &load);
  bench_reset_peak_rss ();

  bench_measure_begin ();
  start_us = g_get_monotonic_time ();
  emit_script (side, run.bus, run.context, script);
  bench_iterate_until (run.context, &load.completes, (guint64) load.n_sync * script->n_requests,
                       RUN_TIMEOUT_S, "the stream workload");
  result.seconds = (g_get_monotonic_time () - start_us) / 1e6;
  bench_measure_end ();

  result.peak_rss_kib = bench_read_peak_rss_kib ();
  result.async_calls = load.async_calls;
  result.lossless = load.flushed_bytes == load.n_sync * script->delta_bytes
                    && side->bytes_in (run.bus) == script->delta_bytes
                    && side->bytes_flushed (run.bus) == script->delta_bytes;
  if (!result.lossless)
    g_printerr ("jarvis-bench: %s lost flushed bytes: sent %" G_GUINT64_FORMAT ", bus took %" G_GUINT64_FORMAT
                " and flushed %" G_GUINT64_FORMAT ", handlers saw %" G_GUINT64_FORMAT " per handler\n",
                side->name, script->delta_bytes, side->bytes_in (run.bus), side->bytes_flushed (run.bus),
                load.flushed_bytes / load.n_sync);

  run_end (&run);

  return result;
}

static void
add_script_facts (BenchResult       *result,
                  const BenchScript *script)
{
  json_object_set_int_member (result->extra, "events", script->events->len);
  json_object_set_int_member (result->extra, "requests", script->n_requests);
  json_object_set_int_member (result->extra, "superseded", script->n_superseded);
}

/* The peak RSS of a std run in a fresh process, because this process keeps
 * the heap of earlier runs resident and its peak would hide the run's own. */
int
bench_run_rss_probe (const char *side_name,
                     gboolean    quick)
{
  const BenchSide *side = find_side (side_name);
  g_autoptr(BenchScript) script = NULL;
  StreamRun run;

  if (side == NULL)
    return 2;

  script = bench_script_new (quick ? STD_REQUESTS / 10 : STD_REQUESTS, STD_TOKENS,
                             quick ? STD_SESSIONS / 10 : STD_SESSIONS, TRUE);
  run = run_stream (side, script, 2);
  g_print ("%" G_GUINT64_FORMAT "\n", run.peak_rss_kib);

  return run.lossless ? 0 : 1;
}

static guint64
run_rss_probe (const BenchSide *side,
               gboolean         quick)
{
  g_autofree char *output = run_probe ("--rss-probe", side, quick ? "--quick" : NULL, FALSE);

  return output != NULL ? g_ascii_strtoull (output, NULL, 10) : 0;
}

void
bench_workload_std (const BenchOptions *options)
{
  g_autoptr(BenchScript) script = bench_script_new (scaled (options, STD_REQUESTS), STD_TOKENS,
                                                    scaled (options, STD_SESSIONS), TRUE);
  g_autoptr(BenchResult) events = bench_result_new ("std", "events_per_s", "events/s", TRUE);
  g_autoptr(BenchResult) invocations = bench_result_new ("std", "invocations_per_s", "invocations/s", TRUE);
  g_autoptr(BenchResult) rss = bench_result_new ("std", "peak_rss_kib", "KiB", FALSE);
  gboolean lossless = TRUE;

  for (guint round = 0; round < options->rounds; round++)
    for (guint s = 0; s < 2; s++)
      {
        const BenchSide *side = side_for_round (options, s);
        guint64 peak_rss_kib;
        StreamRun run;

        if (side == NULL)
          continue;

        run = run_stream (side, script, 2);
        lossless = lossless && run.lossless;
        add_sample (events, side, script->events->len / run.seconds);
        add_sample (invocations, side, run.async_calls / run.seconds);

        peak_rss_kib = run_rss_probe (side, options->quick);
        if (peak_rss_kib > 0)
          add_sample (rss, side, peak_rss_kib);
      }

  add_script_facts (events, script);
  if (events->jarvis->len + events->baseline->len > 0)
    json_object_set_boolean_member (events->extra, "no_flushed_byte_lost", lossless);
  bench_result_print (events);
  bench_result_print (invocations);
  bench_result_print (rss);
}

/* The floor of the sync workload: the same handler calls through function
 * pointers, with no bus, no allocation and no buffering. */
typedef void (*FloorHandler) (BenchLoad  *load,
                              const char *event_type,
                              gsize       text_length);

static void
floor_handler (BenchLoad  *load,
               const char *event_type,
               gsize       text_length)
{
  bench_load_observe (load, event_type, text_length);
}

/* Volatile keeps the compiler from inlining the calls away. */
static FloorHandler volatile floor_handlers[2] = { floor_handler, floor_handler };

static double
run_floor (const BenchScript *script)
{
  BenchLoad load = { 0 };
  gint64 start_us;

  bench_measure_begin ();
  start_us = g_get_monotonic_time ();
  for (guint i = 0; i < script->events->len; i++)
    {
      const BenchScriptEvent *event = &g_array_index (script->events, BenchScriptEvent, i);

      for (guint h = 0; h < G_N_ELEMENTS (floor_handlers); h++)
        floor_handlers[h] (&load, event->event_type, event->text_length);
    }
  bench_measure_end ();

  return (g_get_monotonic_time () - start_us) * 1e3 / script->events->len;
}

void
bench_workload_sync (const BenchOptions *options)
{
  g_autoptr(BenchScript) script = bench_script_new (scaled (options, STD_REQUESTS), STD_TOKENS,
                                                    scaled (options, STD_SESSIONS), TRUE);
  g_autoptr(BenchResult) result = bench_result_new ("sync", "ns_per_event", "ns", FALSE);
  g_autoptr(GArray) floor = g_array_new (FALSE, FALSE, sizeof (double));
  gboolean lossless = TRUE;

  for (guint round = 0; round < options->rounds; round++)
    {
      for (guint s = 0; s < 2; s++)
        {
          const BenchSide *side = side_for_round (options, s);
          StreamRun run;

          if (side == NULL)
            continue;

          run = run_stream (side, script, 0);
          lossless = lossless && run.lossless;
          add_sample (result, side, run.seconds * 1e9 / script->events->len);
        }

      if (options->run_floor)
        {
          double ns = run_floor (script);

          g_array_append_val (floor, ns);
        }
    }

  add_script_facts (result, script);
  if (result->jarvis->len + result->baseline->len > 0)
    json_object_set_boolean_member (result->extra, "no_flushed_byte_lost", lossless);
  if (floor->len > 0)
    {
      double floor_median = bench_median (floor);

      json_object_set_int_member (result->extra, "floor_rounds", floor->len);
      json_object_set_double_member (result->extra, "floor_median", floor_median);
      if (result->jarvis->len > 0)
        json_object_set_double_member (result->extra, "floor_ratio", floor_median / bench_median (result->jarvis));
    }
  bench_result_print (result);
}

/* cleanup */

typedef struct
{
  double cleanup_call_ms;
  double settle_ms;
} CleanupRun;

/* Opens one request with @n_invocations calls in flight, whose handler
 * returns each call once its cancellable fires, then cancels the request. */
static CleanupRun
run_cleanup (const BenchSide *side,
             guint            n_invocations)
{
  BenchLoad load = {
    .n_sync = 1,
    .sync_pattern = "*",
    .n_async = 1,
    .async_pattern = "agent.stream.delta",
    .async_mode = BENCH_ASYNC_RETURN_WHEN_CANCELLED,
    .flush_interval_ms = STD_FLUSH_INTERVAL_MS,
    .flush_max_bytes = STD_FLUSH_MAX_BYTES,
    .held_capacity = n_invocations,
  };
  CleanupRun result = { 0 };
  Run run;
  gint64 start_us;

  run_begin (&run, side, &load);

  side->emit (run.bus, "agent.stream.start", "cleanup", "cleanup", NULL, 0);
  for (guint i = 0; i < n_invocations; i++)
    {
      side->emit (run.bus, "agent.stream.delta", "cleanup", NULL, "tok", 3);
      if ((i + 1) % EMIT_BATCH == 0)
        bench_iterate_pending (run.context);
    }
  bench_iterate_pending (run.context);
  if (side->n_invocations (run.bus) != n_invocations)
    g_printerr ("jarvis-bench: %s has %u calls in flight before cleanup, expected %u\n",
                side->name, side->n_invocations (run.bus), n_invocations);

  bench_measure_begin ();
  start_us = g_get_monotonic_time ();
  side->cancel_request (run.bus, "cleanup");
  result.cleanup_call_ms = (g_get_monotonic_time () - start_us) / 1e3;
  bench_iterate_until (run.context, &load.completes, 1, RUN_TIMEOUT_S, "the cleanup workload");
  result.settle_ms = (g_get_monotonic_time () - start_us) / 1e3;
  bench_measure_end ();

  run_end (&run);

  return result;
}

void
bench_workload_cleanup (const BenchOptions *options)
{
  guint n_invocations = scaled (options, CLEANUP_INVOCATIONS);
  g_autoptr(BenchResult) call = bench_result_new ("cleanup", "ms_cleanup_call", "ms", FALSE);
  g_autoptr(BenchResult) settle = bench_result_new ("cleanup", "ms_to_settle", "ms", FALSE);

  for (guint round = 0; round < options->rounds; round++)
    for (guint s = 0; s < 2; s++)
      {
        const BenchSide *side = side_for_round (options, s);
        CleanupRun run;

        if (side == NULL)
          continue;

        run = run_cleanup (side, n_invocations);
        add_sample (call, side, run.cleanup_call_ms);
        add_sample (settle, side, run.settle_ms);
      }

  json_object_set_int_member (call->extra, "invocations", n_invocations);
  json_object_set_int_member (settle->extra, "invocations", n_invocations);
  bench_result_print (call);
  bench_result_print (settle);
}

/* memory */

/* Bytes allocated through malloc, in every arena and in mmap'd blocks. */
static gsize
heap_in_use (void)
{
  struct mallinfo2 info = mallinfo2 ();

  return info.uordblks + info.hblkhd;
}

/* Bytes per in-flight call: one delta reaches @count held async handlers. */
static double
measure_invocation_bytes (const BenchSide *side,
                          guint            count)
{
  BenchLoad load = {
    .n_sync = 1,
    .sync_pattern = "*",
    .n_async = count,
    .async_pattern = "agent.stream.delta",
    .async_mode = BENCH_ASYNC_HOLD,
    .flush_interval_ms = STD_FLUSH_INTERVAL_MS,
    .flush_max_bytes = STD_FLUSH_MAX_BYTES,
    .held_capacity = count,
  };
  Run run;
  gsize before;
  gsize after;

  run_begin (&run, side, &load);
  side->emit (run.bus, "agent.stream.start", "memory", "memory", NULL, 0);
  bench_iterate_pending (run.context);

  before = heap_in_use ();
  side->emit (run.bus, "agent.stream.delta", "memory", NULL, "tok", 3);
  bench_iterate_pending (run.context);
  after = heap_in_use ();

  if (side->n_invocations (run.bus) != count)
    g_printerr ("jarvis-bench: %s has %u calls in flight, expected %u\n",
                side->name, side->n_invocations (run.bus), count);

  side->return_held (run.bus);
  bench_iterate_pending (run.context);
  run_end (&run);

  return ((double) after - (double) before) / count;
}

/* Bytes per open request: @count starts, each on its own session. */
static double
measure_request_bytes (const BenchSide *side,
                       guint            count)
{
  BenchLoad load = {
    .n_sync = 1,
    .sync_pattern = "*",
    .flush_interval_ms = STD_FLUSH_INTERVAL_MS,
    .flush_max_bytes = STD_FLUSH_MAX_BYTES,
  };
  g_autoptr(GPtrArray) ids = g_ptr_array_new_full (count, g_free);
  Run run;
  gsize before;
  gsize after;

  for (guint i = 0; i < count; i++)
    g_ptr_array_add (ids, g_strdup_printf ("request-%u", i));

  run_begin (&run, side, &load);
  bench_iterate_pending (run.context);

  before = heap_in_use ();
  for (guint i = 0; i < count; i++)
    {
      side->emit (run.bus, "agent.stream.start", ids->pdata[i], ids->pdata[i], NULL, 0);
      if ((i + 1) % EMIT_BATCH == 0)
        bench_iterate_pending (run.context);
    }
  bench_iterate_pending (run.context);
  after = heap_in_use ();

  run_end (&run);

  return ((double) after - (double) before) / count;
}

/* Measures both figures for @side_name in this process and prints them as
 * "INVOCATION_BYTES REQUEST_BYTES". The memory workload runs this in a
 * fresh child per side and round. GLib 2.74 still allocates GObjects with
 * GSlice, which keeps freed chunks cached, so a probe after other workloads
 * would reuse memory that malloc already counts as in use. */
int
bench_run_memory_probe (const char *side_name,
                        guint       count)
{
  const BenchSide *side = find_side (side_name);

  if (side == NULL)
    return 2;

  g_print ("%.3f %.3f\n", measure_invocation_bytes (side, count), measure_request_bytes (side, count));

  return 0;
}

static gboolean
run_memory_probe (const BenchSide *side,
                  guint            count,
                  double          *invocation_bytes,
                  double          *request_bytes)
{
  g_autofree char *count_option = g_strdup_printf ("--memory-count=%u", count);
  g_autofree char *output = run_probe ("--memory-probe", side, count_option, TRUE);

  if (output == NULL)
    return FALSE;

  if (sscanf (output, "%lf %lf", invocation_bytes, request_bytes) != 2)
    {
      g_printerr ("jarvis-bench: the memory probe of %s printed \"%s\", expected two numbers\n",
                  side->name, output);
      return FALSE;
    }

  return TRUE;
}

void
bench_workload_memory (const BenchOptions *options)
{
  guint count = scaled (options, MEMORY_COUNT);
  g_autoptr(BenchResult) invocation = bench_result_new ("memory", "bytes_per_invocation", "B", FALSE);
  g_autoptr(BenchResult) request = bench_result_new ("memory", "bytes_per_request", "B", FALSE);

  for (guint round = 0; round < options->rounds; round++)
    for (guint s = 0; s < 2; s++)
      {
        const BenchSide *side = side_for_round (options, s);
        double invocation_bytes;
        double request_bytes;

        if (side == NULL || !run_memory_probe (side, count, &invocation_bytes, &request_bytes))
          continue;

        add_sample (invocation, side, invocation_bytes);
        add_sample (request, side, request_bytes);
      }

  json_object_set_int_member (invocation->extra, "count", count);
  json_object_set_int_member (request->extra, "count", count);
  json_object_set_string_member (invocation->extra, "allocator", "malloc (G_SLICE=always-malloc)");
  json_object_set_string_member (request->extra, "allocator", "malloc (G_SLICE=always-malloc)");
  bench_result_print (invocation);
  bench_result_print (request);
}

/* threads */

typedef struct
{
  const BenchSide *side;
  gpointer bus;
  guint n_requests;
  guint n_tokens;
  guint emitted;                /* atomic; events whose emit returned */
} Producer;

static gpointer
produce (gpointer data)
{
  Producer *producer = data;

  for (guint r = 0; r < producer->n_requests; r++)
    {
      g_autofree char *request_id = g_strdup_printf ("thread-request-%u", r);

      producer->side->emit_from_thread (producer->bus, "agent.stream.start", request_id, NULL, 0);
      g_atomic_int_inc (&producer->emitted);
      for (guint t = 0; t < producer->n_tokens; t++)
        {
          producer->side->emit_from_thread (producer->bus, "agent.stream.delta", request_id, "token ", 6);
          g_atomic_int_inc (&producer->emitted);
        }
      producer->side->emit_from_thread (producer->bus, "agent.stream.end", request_id, NULL, 0);
      g_atomic_int_inc (&producer->emitted);
    }

  return NULL;
}

/* Waits until the producer made no progress for 50 ms and returns how far
 * it got. The sleep is only for this check, never for a timed figure. */
static guint
wait_for_stall (Producer *producer)
{
  guint last = G_MAXUINT;
  guint now = g_atomic_int_get (&producer->emitted);
  guint total = producer->n_requests * (producer->n_tokens + 2);

  while (now != last && now < total)
    {
      last = now;
      g_usleep (50 * 1000);
      now = g_atomic_int_get (&producer->emitted);
    }

  return now;
}

typedef struct
{
  double seconds;
  guint stalled_at;             /* events accepted before the loop first ran */
  gboolean all_delivered;
} ThreadsRun;

/* With @check_blocking the loop is not iterated until the producer stalls,
 * which shows that a full queue blocks it. The loop then drains and the
 * time is not used. Without it the run is timed. */
static ThreadsRun
run_threads (const BenchSide *side,
             guint            capacity,
             guint            n_requests,
             guint            n_tokens,
             gboolean         check_blocking)
{
  BenchLoad load = {
    .n_sync = 1,
    .sync_pattern = "*",
    .flush_interval_ms = STD_FLUSH_INTERVAL_MS,
    .flush_max_bytes = STD_FLUSH_MAX_BYTES,
    .queue_capacity = capacity,
  };
  Producer producer = { .side = side, .n_requests = n_requests, .n_tokens = n_tokens };
  ThreadsRun result = { 0 };
  GThread *thread;
  Run run;
  gint64 start_us;

  run_begin (&run, side, &load);
  producer.bus = run.bus;

  start_us = g_get_monotonic_time ();
  thread = g_thread_new ("bench-producer", produce, &producer);
  if (check_blocking)
    result.stalled_at = wait_for_stall (&producer);
  bench_iterate_until (run.context, &load.completes, n_requests, RUN_TIMEOUT_S, "the threads workload");
  result.seconds = (g_get_monotonic_time () - start_us) / 1e6;
  g_thread_join (thread);

  result.all_delivered = side->bytes_in (run.bus) == (guint64) n_requests * n_tokens * 6;
  run_end (&run);

  return result;
}

void
bench_workload_threads (const BenchOptions *options)
{
  static const guint capacities[] = { 1024, 65536 };
  guint n_requests = scaled (options, THREADS_REQUESTS);
  guint total = n_requests * (THREADS_TOKENS + 2);

  for (guint c = 0; c < G_N_ELEMENTS (capacities); c++)
    {
      g_autoptr(BenchResult) result = bench_result_new ("threads", "events_per_s", "events/s", TRUE);
      g_autoptr(JsonArray) stalls = json_array_new ();
      gboolean verified = TRUE;

      for (guint s = 0; s < 2; s++)
        {
          const BenchSide *side = side_for_round (options, s);
          ThreadsRun check;

          if (side == NULL)
            continue;

          /* The producer may stop at the capacity plus one event that is
           * in hand while it waits; more means it never blocked. */
          check = run_threads (side, capacities[c], n_requests, THREADS_TOKENS, TRUE);
          json_array_add_int_element (stalls, check.stalled_at);
          if (total > capacities[c] + 1 && check.stalled_at > capacities[c] + 1)
            {
              g_printerr ("jarvis-bench: %s did not block its producer: %u events accepted with a queue of %u\n",
                          side->name, check.stalled_at, capacities[c]);
              verified = FALSE;
            }
          if (!check.all_delivered)
            {
              g_printerr ("jarvis-bench: %s dropped cross-thread events\n", side->name);
              verified = FALSE;
            }
        }

      for (guint round = 0; round < options->rounds; round++)
        for (guint s = 0; s < 2; s++)
          {
            const BenchSide *side = side_for_round (options, s);
            ThreadsRun run;

            if (side == NULL)
              continue;

            run = run_threads (side, capacities[c], n_requests, THREADS_TOKENS, FALSE);
            verified = verified && run.all_delivered;
            add_sample (result, side, total / run.seconds);
          }

      json_object_set_int_member (result->extra, "queue_capacity", capacities[c]);
      json_object_set_int_member (result->extra, "events", total);
      json_object_set_array_member (result->extra, "producer_stalled_at", json_array_ref (stalls));
      json_object_set_boolean_member (result->extra, "blocks_and_drops_nothing", verified);
      bench_result_print (result);
    }
}
