#pragma once

#include <stddef.h>
#include <stdint.h>

/* The entry point every fuzz target defines. libFuzzer calls it directly;
 * without libFuzzer, fuzz-replay.c calls it once per seed file. */
int LLVMFuzzerTestOneInput (const uint8_t *data,
                            size_t         size);
