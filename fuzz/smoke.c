// smoke.c: a stand-in harness (the JSON parser, on a NUL-terminated copy) to test the fuzzing
// infrastructure before the real harnesses land; remove it once they have.
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    json j;
    memset(&j, 0, sizeof j);
    FUZZ_TRY {
        const char *err = NULL;
        if (json_parse(text, size, &j, &err)) json_free(&j);
    }
    free(text);
    return 0;
}
