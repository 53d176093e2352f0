// fuzz.h: what every libFuzzer harness shares. A reader rejects a bad input with tz_fail; here
// the error handler jumps back to the harness instead of exiting, so a rejected input is an
// ordinary return, and a crash, a sanitizer report, a leak or a hang is a finding.
//
//   int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
//       FUZZ_TRY { ... call the reader on data ... }
//       return 0;
//   }
//
// Readers must free what they allocated before they call tz_fail (the harness runs with leak
// detection on), or parse into memory the harness owns and frees after FUZZ_TRY.
#ifndef TZ_FUZZ_H
#define TZ_FUZZ_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#include "tz.h"

static jmp_buf fuzz_jmp;
static void fuzz_on_error(const char *msg) {
    (void)msg;
    longjmp(fuzz_jmp, 1);
}
#define FUZZ_TRY if ((tz_set_error_handler(fuzz_on_error), setjmp(fuzz_jmp) == 0))

#endif
