// fuzz/bleu.c: corpus BLEU of arbitrary text, as ./bleu scores a translation file: the input is
// split at its first NUL into a hypothesis and a reference (any bytes: invalid UTF-8, lone
// continuation bytes, separators at the end), each cut into lines scored pair by pair. The score
// is within 0-100, a hypothesis scored against itself gets 100 when it has 4-grams, and the
// word count agrees with the statistics' hypothesis length.
#include <math.h>

#include "bleu.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 2);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = text[size + 1] = 0;
    char *hyp = text, *ref = text + strlen(text) + 1; // ref is "" when there is no NUL
    if (ref > text + size) ref = text + size;
    tz_bleu_stats all = {0}, self = {0};
    long words = 0;
    for (char *h = hyp, *r = ref; *h || *r;) {
        char *he = strchr(h, '\n'), *re = strchr(r, '\n');
        if (he) *he = 0;
        if (re) *re = 0;
        tz_bleu_add_text(&all, h, r);
        tz_bleu_add_text(&self, h, h);
        words += tz_bleu_words(h);
        h = he ? he + 1 : h + strlen(h), r = re ? re + 1 : r + strlen(r);
    }
    double prec[TZ_BLEU_N], bp, b = tz_bleu_score(&all, prec, &bp), s = tz_bleu_score(&self, prec, &bp);
    if (!(b >= 0 && b <= 100 + 1e-9) || !(s >= 0 && s <= 100 + 1e-9)) abort(); // exp(log 100) rounds up
    if (all.hyp_len != words) abort();
    if (self.total[TZ_BLEU_N - 1] > 0 && fabs(s - 100) > 1e-9) abort(); // every order has n-grams
    free(text);
    return 0;
}
