/* console: renders each request's flushed text on stdout as it arrives.
 *
 * Choice 0 is written live, byte for byte. The text of further choices
 * (streams with `n > 1`) is kept per request and written when the request
 * completes, each under its own heading, so that interleaved choices stay
 * readable. Both handlers are synchronous: a write to stdout is short, and
 * running in dispatch order keeps the output in event order.
 */
#include <jarvis/jarvis.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct
{
  gboolean wrote_text;          /* any byte of choice 0 was written */
  gboolean ends_with_newline;   /* the last byte written was '\n' */
  GPtrArray *other_choices;     /* (element-type GString) (nullable), index = choice - 1 */
} ConsoleRequest;

typedef struct
{
  GHashTable *requests;         /* (owned) request id → ConsoleRequest */
  gboolean mark_outcomes;
} Console;

static void
console_request_free (gpointer data)
{
  ConsoleRequest *request = data;

  g_clear_pointer (&request->other_choices, g_ptr_array_unref);
  g_free (request);
}

static void
console_free (gpointer data)
{
  Console *console = data;

  g_hash_table_unref (console->requests);
  g_free (console);
}

static ConsoleRequest *
lookup_request (Console    *console,
                const char *request_id)
{
  ConsoleRequest *request = g_hash_table_lookup (console->requests, request_id);

  if (request == NULL)
    {
      request = g_new0 (ConsoleRequest, 1);
      request->ends_with_newline = TRUE;
      g_hash_table_insert (console->requests, g_strdup (request_id), request);
    }

  return request;
}

static void
write_stdout (const char *data,
              gsize       length)
{
  if (length == 0)
    return;

  /* A closed pipe or full disk is not worth a warning per chunk; the
   * console keeps the request's bookkeeping either way. */
  if (fwrite (data, 1, length, stdout) != length)
    clearerr (stdout);

  fflush (stdout);
}

static void
free_string (gpointer data)
{
  g_string_free (data, TRUE);
}

static void
keep_other_choice (ConsoleRequest *request,
                   guint           choice,
                   const char     *text,
                   gsize           length)
{
  GString *buffer;

  if (request->other_choices == NULL)
    request->other_choices = g_ptr_array_new_with_free_func (free_string);

  while (request->other_choices->len < choice)
    g_ptr_array_add (request->other_choices, g_string_new (NULL));

  buffer = g_ptr_array_index (request->other_choices, choice - 1);
  g_string_append_len (buffer, text, length);
}

static void
on_flush (JarvisEvent *event,
          gpointer     user_data)
{
  Console *console = user_data;
  ConsoleRequest *request;
  const char *text;
  gsize length = 0;
  guint choice;

  text = jarvis_event_get_text (event, &length);
  if (text == NULL || length == 0)
    return;

  request = lookup_request (console, jarvis_event_get_request_id (event));
  choice = jarvis_event_get_choice (event);

  if (choice > 0)
    {
      keep_other_choice (request, choice, text, length);
      return;
    }

  write_stdout (text, length);
  request->wrote_text = TRUE;
  request->ends_with_newline = text[length - 1] == '\n';
}

static void
write_other_choices (ConsoleRequest *request,
                     const char     *request_id)
{
  for (guint i = 0; request->other_choices != NULL && i < request->other_choices->len; i++)
    {
      GString *buffer = g_ptr_array_index (request->other_choices, i);
      g_autofree char *heading = NULL;

      if (buffer->len == 0)
        continue;

      heading = g_strdup_printf ("--- %s choice %u ---\n", request_id, i + 1);
      write_stdout (heading, strlen (heading));
      write_stdout (buffer->str, buffer->len);

      if (buffer->str[buffer->len - 1] != '\n')
        write_stdout ("\n", 1);
    }
}

static void
on_complete (JarvisEvent *event,
             gpointer     user_data)
{
  Console *console = user_data;
  const char *request_id = jarvis_event_get_request_id (event);
  const char *outcome = jarvis_event_get_outcome (event);
  ConsoleRequest *request;

  request = g_hash_table_lookup (console->requests, request_id);

  if (request != NULL && request->wrote_text && !request->ends_with_newline)
    write_stdout ("\n", 1);

  if (request != NULL)
    write_other_choices (request, request_id);

  if (console->mark_outcomes && outcome != NULL && g_strcmp0 (outcome, "completed") != 0)
    {
      g_autofree char *mark = g_strdup_printf ("\033[7m[%s %s]\033[0m\n", request_id, outcome);

      write_stdout (mark, strlen (mark));
    }

  g_hash_table_remove (console->requests, request_id);
}

static gboolean
console_init (JarvisPlugin  *plugin,
              GError       **error)
{
  g_autoptr (GError) local_error = NULL;
  Console *console;
  gboolean mark_outcomes;

  /* Outcome marks use terminal escapes, so by default they appear only on a
   * terminal; the `marks` option forces them on or off. */
  mark_outcomes = jarvis_plugin_get_option_boolean (plugin, "marks",
                                                    isatty (STDOUT_FILENO),
                                                    &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }

  console = g_new0 (Console, 1);
  console->requests = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, console_request_free);
  console->mark_outcomes = mark_outcomes;
  jarvis_plugin_set_data (plugin, console, console_free);

  jarvis_plugin_subscribe (plugin, JARVIS_EVENT_STREAM_FLUSH, on_flush, console, NULL);
  jarvis_plugin_subscribe (plugin, JARVIS_EVENT_STREAM_COMPLETE, on_complete, console, NULL);

  return TRUE;
}

JARVIS_PLUGIN_DEFINE ("console",
                      "0.1.0",
                      "Writes each request's text to stdout as it is flushed",
                      "MIT",
                      console_init,
                      NULL)
