#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib/gstdio.h>

#include "bench-workloads.h"

#ifdef HAVE_VALGRIND_CALLGRIND_H
#include <valgrind/callgrind.h>
#endif

typedef struct
{
  const char *name;
  void (*run) (const BenchOptions *options);
} Workload;

static const Workload workloads[] = {
  { "std", bench_workload_std },
  { "sync", bench_workload_sync },
  { "cleanup", bench_workload_cleanup },
  { "memory", bench_workload_memory },
  { "threads", bench_workload_threads },
  { "host", bench_workload_host },
};

BenchResult *
bench_result_new (const char *workload,
                  const char *metric,
                  const char *unit,
                  gboolean    higher_is_better)
{
  BenchResult *result = g_new0 (BenchResult, 1);

  result->workload = g_strdup (workload);
  result->metric = g_strdup (metric);
  result->unit = g_strdup (unit);
  result->higher_is_better = higher_is_better;
  result->jarvis = g_array_new (FALSE, FALSE, sizeof (double));
  result->baseline = g_array_new (FALSE, FALSE, sizeof (double));
  result->extra = json_object_new ();

  return result;
}

void
bench_result_free (BenchResult *result)
{
  g_free (result->workload);
  g_free (result->metric);
  g_free (result->unit);
  g_array_unref (result->jarvis);
  g_array_unref (result->baseline);
  json_object_unref (result->extra);
  g_free (result);
}

static int
compare_doubles (gconstpointer a,
                 gconstpointer b)
{
  double x = *(const double *) a;
  double y = *(const double *) b;

  return (x > y) - (x < y);
}

/* The median of an even count is the mean of the two middle samples. */
double
bench_median (GArray *samples)
{
  guint n = samples->len;

  g_array_sort (samples, compare_doubles);
  if (n % 2 == 1)
    return g_array_index (samples, double, n / 2);

  return (g_array_index (samples, double, n / 2 - 1) + g_array_index (samples, double, n / 2)) / 2;
}

static void
add_number_or_null (JsonBuilder *builder,
                    const char  *key,
                    gboolean     present,
                    double       value)
{
  json_builder_set_member_name (builder, key);
  if (present)
    json_builder_add_double_value (builder, value);
  else
    json_builder_add_null_value (builder);
}

/* Prints the result as one JSON line. The ratio is oriented so that a value
 * above 1 means jarvis-events did better. It is null when a side did not
 * run. */
void
bench_result_print (BenchResult *result)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *line = NULL;
  gboolean have_jarvis = result->jarvis->len > 0;
  gboolean have_baseline = result->baseline->len > 0;
  double jarvis_median = have_jarvis ? bench_median (result->jarvis) : 0;
  double baseline_median = have_baseline ? bench_median (result->baseline) : 0;
  double ratio = 0;
  GList *members;

  if (have_jarvis && have_baseline && jarvis_median > 0 && baseline_median > 0)
    ratio = result->higher_is_better ? jarvis_median / baseline_median : baseline_median / jarvis_median;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "workload");
  json_builder_add_string_value (builder, result->workload);
  json_builder_set_member_name (builder, "metric");
  json_builder_add_string_value (builder, result->metric);
  json_builder_set_member_name (builder, "unit");
  json_builder_add_string_value (builder, result->unit);
  add_number_or_null (builder, "median", have_jarvis, jarvis_median);
  add_number_or_null (builder, "min", have_jarvis, have_jarvis ? g_array_index (result->jarvis, double, 0) : 0);
  add_number_or_null (builder, "max", have_jarvis,
                      have_jarvis ? g_array_index (result->jarvis, double, result->jarvis->len - 1) : 0);
  add_number_or_null (builder, "baseline_median", have_baseline, baseline_median);
  add_number_or_null (builder, "ratio", ratio > 0, ratio);
  json_builder_set_member_name (builder, "rounds");
  json_builder_add_int_value (builder, MAX (result->jarvis->len, result->baseline->len));

  members = json_object_get_members (result->extra);
  for (GList *l = members; l != NULL; l = l->next)
    {
      json_builder_set_member_name (builder, l->data);
      json_builder_add_value (builder, json_object_dup_member (result->extra, l->data));
    }
  g_list_free (members);
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  line = json_generator_to_data (generator, NULL);
  g_print ("%s\n", line);
}

/* Linux resets VmHWM to the current RSS when "5" is written to
 * /proc/self/clear_refs, so each run reports its own peak. */
void
bench_reset_peak_rss (void)
{
  FILE *file = fopen ("/proc/self/clear_refs", "w");
  gboolean written;

  if (file == NULL)
    {
      g_printerr ("jarvis-bench: opening /proc/self/clear_refs failed, so peaks include earlier runs: %s\n",
                  g_strerror (errno));
      return;
    }

  written = fputs ("5", file) != EOF;
  if (fclose (file) != 0 || !written)
    g_printerr ("jarvis-bench: resetting the peak RSS failed, so peaks include earlier runs: %s\n",
                g_strerror (errno));
}

guint64
bench_read_peak_rss_kib (void)
{
  g_autofree char *status = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    return 0;

  line = strstr (status, "VmHWM:");
  if (line == NULL)
    return 0;

  return g_ascii_strtoull (line + strlen ("VmHWM:"), NULL, 10);
}

void
bench_measure_begin (void)
{
#ifdef HAVE_VALGRIND_CALLGRIND_H
  CALLGRIND_TOGGLE_COLLECT;
#endif
}

void
bench_measure_end (void)
{
#ifdef HAVE_VALGRIND_CALLGRIND_H
  CALLGRIND_TOGGLE_COLLECT;
#endif
}

static const Workload *
find_workload (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (workloads); i++)
    if (g_str_equal (workloads[i].name, name))
      return &workloads[i];

  return NULL;
}

static gboolean
parse_sides (const char   *sides,
             BenchOptions *options,
             GError      **error)
{
  g_auto(GStrv) names = g_strsplit (sides, ",", -1);

  options->run_jarvis = options->run_baseline = options->run_floor = FALSE;
  for (guint i = 0; names[i] != NULL; i++)
    {
      if (g_str_equal (names[i], "jarvis"))
        options->run_jarvis = TRUE;
      else if (g_str_equal (names[i], "baseline"))
        options->run_baseline = TRUE;
      else if (g_str_equal (names[i], "floor"))
        options->run_floor = TRUE;
      else
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "invalid side \"%s\" in --sides: use jarvis, baseline and floor, separated by commas",
                       names[i]);
          return FALSE;
        }
    }

  return TRUE;
}

int
main (int   argc,
      char *argv[])
{
  g_auto(GStrv) workload_names = NULL;
  g_autofree char *sides = NULL;
  g_autofree char *baseline_host = NULL;
  g_autofree char *memory_probe = NULL;
  g_autofree char *rss_probe = NULL;
  int memory_count = 0;
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) selected = g_ptr_array_new ();
  BenchOptions options = { .rounds = 5, .run_jarvis = TRUE, .run_baseline = TRUE, .run_floor = TRUE };
  int rounds = 5;
  g_autofree char *corpus_dir_help = g_strdup_printf (
    "Folder of recorded provider streams for the host workload (default %s)", JARVIS_BENCH_CORPUS_DIR);
  GOptionEntry entries[] = {
    { "workload", 'w', 0, G_OPTION_ARG_STRING_ARRAY, &workload_names,
      "Run this workload: std, sync, cleanup, memory, threads or host (repeatable; default all)", "NAME" },
    { "rounds", 'r', 0, G_OPTION_ARG_INT, &rounds,
      "Run each workload N times per side and report the median (default 5)", "N" },
    { "quick", 'q', 0, G_OPTION_ARG_NONE, &options.quick,
      "Use inputs a tenth of the size and one round, for a smoke run", NULL },
    { "sides", 0, 0, G_OPTION_ARG_STRING, &sides,
      "Measure only these sides: jarvis, baseline, floor, separated by commas (default all)", "LIST" },
    { "host-binary", 0, 0, G_OPTION_ARG_FILENAME, &options.host_binary,
      "Path of jarvis-host for the host workload (default: the one in this build tree)", "PATH" },
    { "corpus-dir", 0, 0, G_OPTION_ARG_FILENAME, &options.corpus_dir,
      corpus_dir_help, "DIR" },
    { "baseline-host", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, &baseline_host,
      "Run the baseline's host on an events file and exit", "FILE" },
    { "memory-probe", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &memory_probe,
      "Print the memory figures of one side (jarvis or baseline) and exit", "SIDE" },
    { "rss-probe", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &rss_probe,
      "Print the peak RSS of one std run of one side (jarvis or baseline) and exit", "SIDE" },
    { "memory-count", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &memory_count,
      "Calls and requests the memory probe opens", "N" },
    G_OPTION_ENTRY_NULL
  };

  context = g_option_context_new ("- compare jarvis-events with hand-written GLib");
  g_option_context_set_summary (context,
    "Prints one JSON object per line and result. \"ratio\" is jarvis-events over the baseline,\n"
    "oriented so that a value above 1 means jarvis-events did better.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("jarvis-bench: %s\nRun jarvis-bench --help for the options.\n", error->message);
      return 2;
    }

  if (baseline_host != NULL)
    return bench_run_baseline_host (baseline_host);
  if (rss_probe != NULL)
    return bench_run_rss_probe (rss_probe, options.quick);
  if (memory_probe != NULL)
    {
      if (memory_count < 1)
        {
          g_printerr ("jarvis-bench: invalid --memory-count=%d: give 1 or more\n", memory_count);
          return 2;
        }
      return bench_run_memory_probe (memory_probe, (guint) memory_count);
    }

  if (rounds < 1)
    {
      g_printerr ("jarvis-bench: invalid --rounds=%d: give 1 or more\n", rounds);
      return 2;
    }
  options.rounds = options.quick ? 1 : (guint) rounds;

  if (sides != NULL && !parse_sides (sides, &options, &error))
    {
      g_printerr ("jarvis-bench: %s\n", error->message);
      return 2;
    }

  for (guint i = 0; workload_names != NULL && workload_names[i] != NULL; i++)
    {
      const Workload *workload = find_workload (workload_names[i]);

      if (workload == NULL)
        {
          g_printerr ("jarvis-bench: invalid workload \"%s\": use std, sync, cleanup, memory, threads or host\n",
                      workload_names[i]);
          return 2;
        }
      g_ptr_array_add (selected, (gpointer) workload);
    }
  if (selected->len == 0)
    for (guint i = 0; i < G_N_ELEMENTS (workloads); i++)
      g_ptr_array_add (selected, (gpointer) &workloads[i]);

  if (options.host_binary == NULL)
    options.host_binary = g_strdup (JARVIS_BENCH_HOST_BINARY);
  if (options.corpus_dir != NULL)
    {
      g_autofree char *given = g_steal_pointer (&options.corpus_dir);

      options.corpus_dir = g_canonicalize_filename (given, NULL);
    }
  else
    options.corpus_dir = g_canonicalize_filename (JARVIS_BENCH_CORPUS_DIR, NULL);
  options.work_dir = g_dir_make_tmp ("jarvis-bench-XXXXXX", &error);
  if (options.work_dir == NULL)
    {
      g_printerr ("jarvis-bench: creating a folder for generated inputs failed: %s\n", error->message);
      return 1;
    }

  for (guint i = 0; i < selected->len; i++)
    {
      const Workload *workload = g_ptr_array_index (selected, i);

      workload->run (&options);
    }

  g_rmdir (options.work_dir);
  g_free (options.work_dir);
  g_free (options.host_binary);
  g_free (options.corpus_dir);

  return 0;
}
