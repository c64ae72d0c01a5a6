#include "bench-script.h"

#include <string.h>

#include <json-glib/json-glib.h>

#define TOKEN_POOL_SIZE 4096
#define SCRIPT_SEED 20261204

/* Characters that tokens are made of, by encoded length. */
static const char *const multibyte_characters[] = {
  "\xC3\xA9",                   /* U+00E9 é */
  "\xC3\xBC",                   /* U+00FC ü */
  "\xE2\x82\xAC",               /* U+20AC € */
  "\xE4\xB8\xAD",               /* U+4E2D 中 */
  "\xF0\x9F\x98\x80",           /* U+1F600 😀 */
};

/* Builds a token of 1 to 8 bytes. Every third token contains at least one
 * multi-byte character and is then 2 to 8 bytes long. */
static char *
make_token (GRand *rand,
            guint  index)
{
  gboolean multibyte = index % 3 == 0;
  guint length = multibyte ? (guint) g_rand_int_range (rand, 2, 9) : (guint) g_rand_int_range (rand, 1, 9);
  GString *token = g_string_sized_new (length);

  while (token->len < length)
    {
      gsize room = length - token->len;
      const char *character = NULL;

      if (multibyte && (token->len == 0 || g_rand_boolean (rand)))
        {
          guint pick = g_rand_int_range (rand, 0, G_N_ELEMENTS (multibyte_characters));

          for (guint tries = 0; tries < G_N_ELEMENTS (multibyte_characters); tries++)
            {
              const char *candidate = multibyte_characters[(pick + tries) % G_N_ELEMENTS (multibyte_characters)];

              if (strlen (candidate) <= room)
                {
                  character = candidate;
                  break;
                }
            }
        }

      if (character != NULL)
        g_string_append (token, character);
      else
        g_string_append_c (token, (char) g_rand_int_range (rand, 'a', 'z' + 1));
    }

  return g_string_free (token, FALSE);
}

static const char *
keep_string (BenchScript *script,
             char        *string)
{
  g_ptr_array_add (script->strings, string);

  return string;
}

static void
add_event (BenchScript *script,
           const char  *event_type,
           const char  *request_id,
           const char  *session_id,
           const char  *text)
{
  BenchScriptEvent event = {
    .event_type = event_type,
    .request_id = request_id,
    .session_id = session_id,
    .text = text,
    .text_length = text != NULL ? strlen (text) : 0,
  };

  g_array_append_val (script->events, event);
  script->delta_bytes += event.text_length;
}

typedef struct
{
  guint place;                  /* index of the current request in the session */
  guint token;                  /* tokens sent of the current request */
  gboolean started;
  const char *request_id;
} SessionCursor;

BenchScript *
bench_script_new (guint    n_requests,
                  guint    n_tokens,
                  guint    n_sessions,
                  gboolean supersede)
{
  BenchScript *script = g_new0 (BenchScript, 1);
  g_autoptr(GRand) rand = g_rand_new_with_seed (SCRIPT_SEED);
  g_autofree const char **tokens = g_new0 (const char *, TOKEN_POOL_SIZE);
  g_autofree const char **session_ids = g_new0 (const char *, n_sessions);
  g_autofree SessionCursor *cursors = g_new0 (SessionCursor, n_sessions);
  guint per_session = n_requests / n_sessions;
  guint active = n_sessions;

  g_return_val_if_fail (n_sessions > 0 && n_requests % n_sessions == 0, NULL);

  script->events = g_array_sized_new (FALSE, FALSE, sizeof (BenchScriptEvent),
                                      n_requests * (n_tokens + 2));
  script->strings = g_ptr_array_new_with_free_func (g_free);
  script->n_requests = n_requests;

  for (guint i = 0; i < TOKEN_POOL_SIZE; i++)
    tokens[i] = keep_string (script, make_token (rand, i));
  for (guint s = 0; s < n_sessions; s++)
    session_ids[s] = keep_string (script, g_strdup_printf ("session-%u", s));

  while (active > 0)
    {
      for (guint s = 0; s < n_sessions; s++)
        {
          SessionCursor *cursor = &cursors[s];
          gboolean cut;

          if (cursor->place >= per_session)
            continue;

          if (!cursor->started)
            {
              cursor->request_id = keep_string (script, g_strdup_printf ("request-%u-%u", s, cursor->place));
              add_event (script, "agent.stream.start", cursor->request_id, session_ids[s], NULL);
              cursor->started = TRUE;
              cursor->token = 0;
              continue;
            }

          cut = supersede && cursor->place % 10 == 5 && cursor->place + 1 < per_session;
          if (cursor->token < (cut ? n_tokens / 2 : n_tokens))
            {
              add_event (script, "agent.stream.delta", cursor->request_id, NULL,
                         tokens[g_rand_int_range (rand, 0, TOKEN_POOL_SIZE)]);
              cursor->token++;
              continue;
            }

          /* A cut request gets no end: the next start supersedes it. */
          if (cut)
            script->n_superseded++;
          else
            add_event (script, "agent.stream.end", cursor->request_id, NULL, NULL);

          cursor->place++;
          cursor->started = FALSE;
          if (cursor->place >= per_session)
            active--;
        }
    }

  return script;
}

void
bench_script_free (BenchScript *script)
{
  g_array_unref (script->events);
  g_ptr_array_unref (script->strings);
  g_free (script);
}

static void
write_event_line (GString                *line,
                  const BenchScriptEvent *event)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "type");
  json_builder_add_string_value (builder, event->event_type);
  json_builder_set_member_name (builder, "request_id");
  json_builder_add_string_value (builder, event->request_id);
  if (event->session_id != NULL)
    {
      json_builder_set_member_name (builder, "session_id");
      json_builder_add_string_value (builder, event->session_id);
    }
  if (event->text != NULL)
    {
      json_builder_set_member_name (builder, "text");
      json_builder_add_string_value (builder, event->text);
    }
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  json_generator_to_gstring (generator, line);
  g_string_append_c (line, '\n');
}

gboolean
bench_script_write_events_file (BenchScript  *script,
                                const char   *path,
                                GError      **error)
{
  g_autoptr(GFile) file = g_file_new_for_path (path);
  g_autoptr(GFileOutputStream) stream = NULL;
  g_autoptr(GOutputStream) buffered = NULL;
  g_autoptr(GString) line = g_string_new (NULL);

  stream = g_file_replace (file, NULL, FALSE, G_FILE_CREATE_NONE, NULL, error);
  if (stream == NULL)
    return FALSE;
  buffered = g_buffered_output_stream_new_sized (G_OUTPUT_STREAM (stream), 1 << 16);

  for (guint i = 0; i < script->events->len; i++)
    {
      g_string_truncate (line, 0);
      write_event_line (line, &g_array_index (script->events, BenchScriptEvent, i));
      if (!g_output_stream_write_all (buffered, line->str, line->len, NULL, NULL, error))
        return FALSE;
    }

  return g_output_stream_close (buffered, NULL, error);
}
