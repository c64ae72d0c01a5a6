#include "config.h"

#include "fuzz-decode.h"
#include "fuzz-target.h"

/* Format detection and whichever format it picks: any bytes must decode without a crash, a leak or a
 * broken request order, and give the same result for any read size. */
int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  fuzz_check_decoder (JARVIS_INPUT_FORMAT_AUTO, data, size);
  return 0;
}
