#pragma once

#include "jarvis-decoder.h"

G_BEGIN_DECLS

/* Line limit of the fuzz runs: small, so that inputs of a few KiB reach
 * the over-the-limit paths. */
#define FUZZ_MAX_LINE_LENGTH 2048

char *fuzz_decode (JarvisInputFormat  format,
                   const guint8      *data,
                   gsize              size,
                   gsize              read_size);

char *fuzz_decode_full (JarvisInputFormat  format,
                        const guint8      *data,
                        gsize              size,
                        gsize              read_size,
                        gboolean           events_fast_path);

void fuzz_check_decoder (JarvisInputFormat  format,
                         const guint8      *data,
                         gsize              size);

G_END_DECLS
