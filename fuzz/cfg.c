// fuzz/cfg.c: the cfg reader on arbitrary text and overrides, against the trainer's full schema
// with a model's keys. The input is cfg text, then (after a NUL) override strings separated by
// NULs. Besides not crashing, whatever reads must survive cfg_write and a second read unchanged.
#include <stdlib.h>
#include <string.h>

#include "corpus.h"
#include "fuzz.h"
#include "setup.h"

#define MAX_OVERRIDES 8

static cfg c, d; // large: not on the stack

// Writes c as cfg text, reads it back into d and checks every value came back.
static void roundtrip(const tz_model_def *def) {
    char *text;
    size_t len;
    FILE *f = open_memstream(&text, &len);
    if (!f) return;
    cfg_write(&c, f);
    fclose(f);
    tz_cfg_init(&d, def);
    FUZZ_TRY { cfg_read_string(&d, text, len, "written"); }
    else {
        fprintf(stderr, "cfg_write wrote what cfg_read_string rejects: %s\n%s", tz_last_error(), text);
        abort();
    }
    free(text);
    for (int i = 0; i < c.n; i++)
        if (strcmp(c.v[i].text, d.v[i].text)) {
            fprintf(stderr, "[%s] %s = '%s' came back as '%s'\n", c.v[i].key->section, c.v[i].key->key, c.v[i].text,
                    d.v[i].text);
            abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    const uint8_t *nul = memchr(data, 0, size);
    size_t len = nul ? (size_t)(nul - data) : size;
    // The overrides: NUL-terminated copies (the input itself is not NUL-terminated).
    char *copy = malloc(size + 1), *over[MAX_OVERRIDES];
    if (!copy) return 0;
    memcpy(copy, data, size);
    copy[size] = 0;
    int n_over = 0;
    for (size_t p = len + 1; nul && p <= size && n_over < MAX_OVERRIDES; p += strlen(copy + p) + 1)
        over[n_over++] = copy + p;

    // As the trainer loads: model.type from the text or an override, then everything.
    FUZZ_TRY { tz_cfg_load_text(&c, text, len, "fuzz.cfg", over, n_over); }

    // Against one model's schema whatever the text's type says, then write, read, compare.
    int n_models;
    const tz_model_def *const *models = tz_models(&n_models);
    const tz_model_def *def = models[(len ? data[0] : 0) % n_models];
    volatile int ok = 0;
    FUZZ_TRY {
        tz_cfg_init(&c, def);
        cfg_read_string(&c, text, len, "fuzz.cfg");
        for (int i = 0; i < n_over; i++) cfg_override(&c, over[i], i + 1);
        ok = 1;
    }
    if (ok) roundtrip(def);
    tz_set_error_handler(NULL);
    free(copy);
    return 0;
}
