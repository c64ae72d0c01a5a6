#include "config.h"

#include "input-test-util.h"

InputResult *
input_result_new (void)
{
  InputResult *result = g_new0 (InputResult, 1);

  result->log = g_string_new (NULL);
  result->events = g_ptr_array_new_with_free_func ((GDestroyNotify) jarvis_event_unref);
  result->error_lines = g_array_new (FALSE, FALSE, sizeof (guint64));
  result->error_codes = g_array_new (FALSE, FALSE, sizeof (gint));

  return result;
}

void
input_result_free (InputResult *result)
{
  g_string_free (result->log, TRUE);
  g_ptr_array_unref (result->events);
  g_array_unref (result->error_lines);
  g_array_unref (result->error_codes);
  g_free (result);
}

void
input_result_on_event (JarvisEvent *event,
                       gpointer     user_data)
{
  InputResult *result = user_data;
  GVariant *payload = jarvis_event_get_payload (event);
  g_autofree char *payload_text = payload != NULL ? g_variant_print (payload, TRUE) : NULL;
  gsize length = 0;
  const char *text = jarvis_event_get_text (event, &length);

  g_string_append_printf (result->log, "event %s request=%s session=%s trace=%s choice=%u text=",
                          jarvis_event_get_event_type (event),
                          jarvis_event_get_request_id (event),
                          jarvis_event_get_session_id (event),
                          jarvis_event_get_trace_id (event) ? jarvis_event_get_trace_id (event) : "",
                          jarvis_event_get_choice (event));
  if (text != NULL)
    g_string_append_len (result->log, text, length);
  g_string_append_printf (result->log, " payload=%s\n", payload_text ? payload_text : "");

  g_ptr_array_add (result->events, event);
}

void
input_result_on_error (const char   *source_name,
                       guint64       line,
                       const GError *error,
                       gpointer      user_data)
{
  InputResult *result = user_data;

  g_assert_error (error, JARVIS_INPUT_ERROR, error->code);
  g_assert_nonnull (source_name);

  g_string_append_printf (result->log, "error %s:%" G_GUINT64_FORMAT ": code=%d %s\n",
                          source_name, line, error->code, error->message);
  result->errors++;
  g_array_append_val (result->error_lines, line);
  g_array_append_val (result->error_codes, error->code);
}

/* Feeds @data in reads of @read_size bytes (0: all at once). */
InputResult *
input_decode (JarvisInputFormat  format,
              const char        *source_name,
              const char        *data,
              gsize              length,
              gsize              read_size)
{
  InputResult *result = input_result_new ();
  g_autoptr(JarvisDecoder) decoder = NULL;

  decoder = jarvis_decoder_new (format, source_name, input_result_on_event,
                                input_result_on_error, result);

  if (read_size == 0)
    read_size = MAX (length, 1);

  for (gsize offset = 0; offset < length; offset += read_size)
    jarvis_decoder_feed (decoder, data + offset, MIN (read_size, length - offset));

  jarvis_decoder_finish (decoder);
  return result;
}

/* Feeds @data cut at the given ascending offsets. */
InputResult *
input_decode_split_at (JarvisInputFormat  format,
                       const char        *source_name,
                       const char        *data,
                       gsize              length,
                       const gsize       *split_points,
                       guint              n_split_points)
{
  InputResult *result = input_result_new ();
  g_autoptr(JarvisDecoder) decoder = NULL;
  gsize offset = 0;

  decoder = jarvis_decoder_new (format, source_name, input_result_on_event,
                                input_result_on_error, result);

  for (guint i = 0; i < n_split_points; i++)
    {
      g_assert_cmpuint (split_points[i], >=, offset);
      g_assert_cmpuint (split_points[i], <=, length);
      jarvis_decoder_feed (decoder, data + offset, split_points[i] - offset);
      offset = split_points[i];
    }

  jarvis_decoder_feed (decoder, data + offset, length - offset);
  jarvis_decoder_finish (decoder);
  return result;
}

/* Concatenates the text of all events of one type and choice. */
char *
input_result_dup_text (InputResult *result,
                       const char  *event_type,
                       guint        choice)
{
  GString *text = g_string_new (NULL);

  for (guint i = 0; i < result->events->len; i++)
    {
      JarvisEvent *event = g_ptr_array_index (result->events, i);
      gsize length = 0;
      const char *data;

      if (!jarvis_event_has_type (event, event_type) || jarvis_event_get_choice (event) != choice)
        continue;

      data = jarvis_event_get_text (event, &length);
      if (data != NULL)
        g_string_append_len (text, data, length);
    }

  return g_string_free (text, FALSE);
}

guint
input_result_count (InputResult *result,
                    const char  *event_type)
{
  guint count = 0;

  for (guint i = 0; i < result->events->len; i++)
    {
      if (jarvis_event_has_type (g_ptr_array_index (result->events, i), event_type))
        count++;
    }

  return count;
}

/* Returns the recorded-stream folder, or NULL when it is absent. */
const char *
input_test_corpus_dir (void)
{
  const char *dir = g_getenv ("JARVIS_CORPUS_DIR");

  if (dir == NULL || !g_file_test (dir, G_FILE_TEST_IS_DIR))
    return NULL;

  return dir;
}
