#pragma once

/* Default longest line or SSE event, in bytes. Model streams put one chunk
 * on a line, and the largest real chunks (tool output) are tens of KiB, so
 * 1 MiB leaves wide room while bounding memory per input. */
#define JARVIS_INPUT_DEFAULT_MAX_LINE_LENGTH (1024 * 1024)
