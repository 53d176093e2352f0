// synth.c: copy and reverse of random digit strings (see synth.h).
#include "synth.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tz.h"

void tz_synth_vocab(tz_vocab *v) {
    static const char *tok[14] = {"<pad>", "<bos>", "<eos>", "<unk>", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    memset(v, 0, sizeof *v);
    v->kind = TOK_WORD;
    for (int i = 0; i < 14; i++) tz_vocab_add_token(v, tok[i]);
    v->unk = TZ_UNK, v->eos = TZ_EOS;
}

void tz_synth_check_lengths(const char *what, long min_len, long max_len) {
    if (min_len < 1 || max_len < min_len || max_len > TZ_PAIRS_MAX_LEN)
        tz_fail("%s: lengths %ld..%ld: want 1 <= min_len <= max_len <= %d", what, min_len, max_len, TZ_PAIRS_MAX_LEN);
}

// How many strings have lengths min_len..max_len (saturating: only "enough" matters).
static double strings_of(int min_len, int max_len) {
    double n = 0;
    for (int l = min_len; l <= max_len && n < 1e18; l++) n += pow(10, l);
    return n;
}

void tz_synth_make(const tz_synth *s, tz_rng *r, long n, tz_pairset *out, tz_vocab *seen) {
    int src[TZ_PAIRS_MAX_LEN], tgt[TZ_PAIRS_MAX_LEN];
    char a[2 * TZ_PAIRS_MAX_LEN + 1], b[2 * TZ_PAIRS_MAX_LEN + 1];
    tz_synth_check_lengths("synthetic strings", s->min_len, s->max_len);
    for (long i = 0; i < n; i++) {
        int len, tries = 0;
        do { // draw until the string is not held out (the lengths hold many more than held_out)
            if (++tries > 1000)
                tz_fail("synthetic strings: 1000 draws of lengths %d..%d in a row were held out; too few strings of "
                        "these lengths ([data] min_len, max_len, eval_size)",
                        s->min_len, s->max_len);
            len = s->min_len + (int)tz_rng_below(r, (uint32_t)(s->max_len - s->min_len + 1));
            for (int t = 0; t < len; t++) {
                int d = (int)tz_rng_below(r, 10);
                src[t] = 4 + d;
                a[2 * t] = (char)('0' + d), a[2 * t + 1] = ' ';
            }
            a[2 * len - 1] = 0;
        } while (s->held_out && tz_vocab_find(s->held_out, a) >= 0);
        for (int t = 0; t < len; t++) tgt[t] = s->kind == TZ_DATA_REVERSE ? src[len - 1 - t] : src[t];
        for (int t = 0; t < len; t++) b[2 * t] = (char)('0' + tgt[t] - 4), b[2 * t + 1] = ' ';
        b[2 * len - 1] = 0;
        tz_pairset_add(out, src, len, tgt, len, a, b);
        if (seen && tz_vocab_find(seen, a) < 0) tz_vocab_add_token(seen, a);
    }
}

void tz_synth_draw(void *ctx, tz_rng *r, int B, tz_pairset *out) { tz_synth_make(ctx, r, B, out, NULL); }

void tz_synth_set(tz_pairset *out, tz_data_kind kind, long n, int min_len, int max_len, uint64_t seed,
                  const tz_vocab *held_out) {
    memset(out, 0, sizeof *out);
    tz_synth s = {kind, min_len, max_len, held_out};
    tz_rng r;
    tz_rng_seed(&r, seed);
    tz_synth_make(&s, &r, n, out, NULL);
}

void tz_synth_load(tz_pairs *p, const cfg *c) {
    long min_len = cfg_int(c, "data", "min_len"), max_len = cfg_int(c, "data", "max_len");
    long test_min = cfg_int(c, "data", "test_min_len"), test_max = cfg_int(c, "data", "test_max_len");
    long eval_size = cfg_int(c, "data", "eval_size"), train_size = cfg_int(c, "data", "train_size");
    long seed = cfg_int(c, "data", "seed");
    if (!seed) seed = cfg_int(c, "train", "seed");
    if (!test_min) test_min = min_len;
    if (!test_max) test_max = max_len;
    char what[400];
    snprintf(what, sizeof what, "%s: [data] min_len, max_len", c->path);
    tz_synth_check_lengths(what, min_len, max_len);
    snprintf(what, sizeof what, "%s: [data] test_min_len, test_max_len", c->path);
    tz_synth_check_lengths(what, test_min, test_max);
    if (eval_size < 1 || train_size < 0)
        tz_fail("%s: [data] eval_size = %ld, train_size = %ld: want eval_size >= 1, train_size >= 0", c->path,
                eval_size, train_size);
    // Held-out strings must stay a small part of those the training lengths hold, or training
    // draws would mostly be rejected (and exact match on them would measure memory).
    if (strings_of((int)min_len, (int)max_len) < 8.0 * eval_size)
        tz_fail("%s: [data] min_len..max_len = %ld..%ld hold %.0f strings, too few to hold out 2 x eval_size = %ld "
                "(want at least 4x as many)",
                c->path, min_len, max_len, strings_of((int)min_len, (int)max_len), 2 * eval_size);
    tz_synth_vocab(&p->src_vocab);
    tz_synth_vocab(&p->tgt_vocab);
    p->synth = (tz_synth){p->kind, (int)min_len, (int)max_len, &p->held_out};
    tz_synth test = {p->kind, (int)test_min, (int)test_max, &p->held_out};
    if (strings_of((int)test_min, (int)test_max) < 2.0 * eval_size)
        tz_fail("%s: [data] test_min_len..test_max_len = %ld..%ld hold %.0f strings, fewer than 2 x eval_size = %ld",
                c->path, test_min, test_max, strings_of((int)test_min, (int)test_max), 2 * eval_size);
    tz_rng r;
    // Validation and test: distinct strings, disjoint from each other (each joins held_out).
    tz_rng_seed(&r, (uint64_t)seed ^ 0x56414c4944ull); // "VALID"
    tz_synth_make(&p->synth, &r, eval_size, &p->set[SPLIT_VAL], &p->held_out);
    tz_rng_seed(&r, (uint64_t)seed ^ 0x54455354ull); // "TEST"
    tz_synth_make(&test, &r, eval_size, &p->set[SPLIT_TEST], &p->held_out);
    if (train_size) {
        tz_rng_seed(&r, (uint64_t)seed ^ 0x545241494eull); // "TRAIN"
        tz_synth_make(&p->synth, &r, train_size, &p->set[SPLIT_TRAIN], NULL);
    }
    snprintf(p->path[SPLIT_TRAIN], sizeof p->path[0], "%s", p->kind == TZ_DATA_REVERSE ? "reverse" : "copy");
}
