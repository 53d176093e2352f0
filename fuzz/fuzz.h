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
// detection on), or parse into memory the harness owns and frees after FUZZ_TRY. The tokenizer
// harnesses share their round-trip checks (decode, save and load) below.
#ifndef TZ_FUZZ_H
#define TZ_FUZZ_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tz.h"
#include "vocab.h"

static jmp_buf fuzz_jmp;
static void fuzz_on_error(const char *msg) {
    (void)msg;
    longjmp(fuzz_jmp, 1);
}
#define FUZZ_TRY if ((tz_set_error_handler(fuzz_on_error), setjmp(fuzz_jmp) == 0))

// The round trips every tokenizer harness checks (abort() is the finding). What they allocate is
// held in fuzz_rt, so a tz_fail that jumps out of them leaves it reachable, not leaked; the
// harness calls fuzz_roundtrip_free after FUZZ_TRY.
static struct {
    tz_vocab w;
    int *ids, *ids2;
    char *text;
    FILE *f;
} fuzz_rt;

static inline void fuzz_roundtrip_free(void) {
    if (fuzz_rt.f) fclose(fuzz_rt.f);
    free(fuzz_rt.ids), free(fuzz_rt.ids2), free(fuzz_rt.text);
    tz_vocab_free(&fuzz_rt.w);
    memset(&fuzz_rt, 0, sizeof fuzz_rt);
}

// ids (n of them) decode to exactly text[0..len).
static inline void fuzz_check_decode(const tz_vocab *v, const int *ids, long n, const char *text, size_t len) {
    size_t size;
    fuzz_rt.f = open_memstream(&fuzz_rt.text, &size);
    tz_vocab_decode(v, ids, n, fuzz_rt.f);
    fclose(fuzz_rt.f), fuzz_rt.f = NULL;
    if (size != len || memcmp(fuzz_rt.text, text, len)) abort(); // the round trip lost or changed bytes
    fuzz_roundtrip_free();
}

// v saved and loaded back (tz_vocab_copy, as a checkpoint restores it) is the same vocabulary:
// its size, <unk>, <eos>, every token's bytes and every merge, and it encodes text[0..len) to
// the same ids.
static inline void fuzz_check_reload(const tz_vocab *v, const char *text, size_t len) {
    tz_vocab *w = &fuzz_rt.w;
    if (!tz_vocab_copy(w, v) || w->size != v->size || w->n_merges != v->n_merges || w->unk != v->unk ||
        w->eos != v->eos)
        abort(); // what was saved does not load back as itself
    for (int i = 0; i < v->size; i++)
        if (w->len[i] != v->len[i] || memcmp(w->tok[i], v->tok[i], v->len[i])) abort();
    if (v->n_merges && memcmp(w->merges, v->merges, sizeof(int) * 2 * (size_t)v->n_merges)) abort();
    long n, n2, unk;
    fuzz_rt.ids = tz_vocab_encode(v, text, len, &n, &unk);
    fuzz_rt.ids2 = tz_vocab_encode(w, text, len, &n2, &unk);
    if (n2 != n || (n && memcmp(fuzz_rt.ids, fuzz_rt.ids2, sizeof(int) * (size_t)n))) abort();
    fuzz_roundtrip_free();
}

#endif
