#pragma once

#include <string.h>

#include <glib.h>

G_BEGIN_DECLS

/* Allocates a zeroed struct like g_new0(), through malloc. glibc's calloc,
 * which g_new0() uses, bypasses the per-thread cache of small blocks, so
 * that every calloc and the free after it takes the slow path. Structs
 * allocated at event rate use this instead. */
#define _jarvis_new0(StructType) \
  ((StructType *) memset (g_malloc (sizeof (StructType)), 0, sizeof (StructType)))

G_END_DECLS
