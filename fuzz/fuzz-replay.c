#include "config.h"

#include <string.h>

#include <glib.h>

#include "fuzz-target.h"

/*
 * Replay driver for builds without libFuzzer: runs the target once per
 * file of each folder named on the command line. A folder that does not
 * exist is skipped with a message, so optional seed folders can be passed
 * unconditionally. Exits 77 (skipped) when no input was found at all.
 */

static gboolean
replay_file (const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *contents = NULL;
  gsize length = 0;

  if (!g_file_get_contents (path, &contents, &length, &error))
    {
      g_printerr ("fuzz-replay: cannot read %s: %s\n", path, error->message);
      return FALSE;
    }

  g_print ("# %s (%" G_GSIZE_FORMAT " bytes)\n", path, length);

  /* Pass an exact-size copy so that a read past the end hits the heap
   * redzone under ASan and valgrind, instead of the NUL that GLib adds.
   * An empty input still gets a valid pointer, as libFuzzer gives it. */
  {
    g_autofree guint8 *exact = g_malloc (MAX (length, 1));

    memcpy (exact, contents, length);
    LLVMFuzzerTestOneInput (exact, length);
  }

  return TRUE;
}

static gint
compare_names (gconstpointer a,
               gconstpointer b)
{
  return g_strcmp0 (*(const char * const *) a, *(const char * const *) b);
}

/* Replays every regular file in @dir in name order; returns how many. */
static guint
replay_dir (const char *dir,
            gboolean   *failed)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) handle = g_dir_open (dir, 0, &error);
  g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  if (handle == NULL)
    {
      g_print ("# skipping %s: %s\n", dir, error->message);
      return 0;
    }

  while ((name = g_dir_read_name (handle)) != NULL)
    {
      char *path = g_build_filename (dir, name, NULL);

      if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
        g_ptr_array_add (paths, path);
      else
        g_free (path);
    }

  g_ptr_array_sort (paths, compare_names);

  for (guint i = 0; i < paths->len; i++)
    {
      if (!replay_file (g_ptr_array_index (paths, i)))
        *failed = TRUE;
    }

  return paths->len;
}

int
main (int   argc,
      char *argv[])
{
  gboolean failed = FALSE;
  guint replayed = 0;

  if (argc < 2)
    {
      g_printerr ("Usage: %s DIR_OR_FILE...\n"
                  "Runs the fuzz target once on each file.\n", argv[0]);
      return 2;
    }

  for (int i = 1; i < argc; i++)
    {
      if (g_file_test (argv[i], G_FILE_TEST_IS_DIR))
        replayed += replay_dir (argv[i], &failed);
      else if (g_file_test (argv[i], G_FILE_TEST_IS_REGULAR))
        replayed += replay_file (argv[i]) ? 1 : 0;
      else
        g_print ("# skipping %s: not found\n", argv[i]);
    }

  if (failed)
    return 1;

  if (replayed == 0)
    {
      g_print ("# no input found; nothing replayed\n");
      return 77;
    }

  g_print ("# replayed %u inputs\n", replayed);
  return 0;
}
