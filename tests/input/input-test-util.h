#pragma once

#include "jarvis-decoder.h"

G_BEGIN_DECLS

/* Everything one decoder run produced, one line per event or error, in
 * order, so that two runs compare as strings. */
typedef struct
{
  GString *log;           /* owned */
  GPtrArray *events;      /* owned, JarvisEvent */
  guint errors;
  GArray *error_lines;    /* owned, guint64 */
  GArray *error_codes;    /* owned, gint */
} InputResult;

InputResult *input_result_new (void);

void input_result_free (InputResult *result);

void input_result_on_event (JarvisEvent *event,
                            gpointer     user_data);

void input_result_on_error (const char   *source_name,
                            guint64       line,
                            const GError *error,
                            gpointer      user_data);

InputResult *input_decode (JarvisInputFormat  format,
                           const char        *source_name,
                           const char        *data,
                           gsize              length,
                           gsize              read_size);

InputResult *input_decode_split_at (JarvisInputFormat  format,
                                    const char        *source_name,
                                    const char        *data,
                                    gsize              length,
                                    const gsize       *split_points,
                                    guint              n_split_points);

char *input_result_dup_text (InputResult *result,
                             const char  *event_type,
                             guint        choice);

guint input_result_count (InputResult *result,
                          const char  *event_type);

const char *input_test_corpus_dir (void);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (InputResult, input_result_free)

G_END_DECLS
