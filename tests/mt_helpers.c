// mt_helpers.c: see mt_helpers.h.
#include "mt_helpers.h"

#include <criterion/criterion.h>
#include <stdio.h>

#include "setup.h"

void mt_make(mt_model *mm, const char *type, int Vs, int Vt, uint64_t seed, const char *const *over) {
    mm->def = tz_model_find(type);
    cr_assert(mm->def && mm->def->pairs, "%s is a translation model", type);
    tz_cfg_init(&mm->c, mm->def);
    char buf[128];
    snprintf(buf, sizeof buf, "model.type=%s", type);
    cfg_override(&mm->c, buf, 0);
    cfg_override(&mm->c, "data.path=unused", 0);
    for (int i = 0; over && over[i]; i++) cfg_override(&mm->c, over[i], i + 1);
    tz_params_init(&mm->P);
    tz_rng r;
    tz_rng_seed(&r, seed);
    mm->m = mm->def->mt_create(&mm->c, Vs, Vt, &mm->P, &r);
}

void mt_unmake(mt_model *mm) {
    mm->def->free(mm->m);
    tz_params_free(&mm->P);
}

void mt_make_pairs(tz_rng *r, int Vs, int Vt, int B, int S, int T, const int *slen, const int *tlen, int *src, int *len,
                   int *x, int *y) {
    for (int b = 0; b < B; b++) {
        len[b] = slen[b];
        for (int t = 0; t < S; t++) src[b * S + t] = t < slen[b] ? 4 + (int)tz_rng_below(r, Vs - 4) : TZ_PAD;
        for (int t = 0; t < T; t++) {
            y[b * T + t] = t < tlen[b] - 1 ? 4 + (int)tz_rng_below(r, Vt - 4) : t == tlen[b] - 1 ? TZ_EOS : TZ_IGNORE;
            x[b * T + t] = t == 0 ? TZ_BOS : t < tlen[b] ? y[b * T + t - 1] : TZ_PAD;
        }
    }
}

void mt_reverse_batch(tz_rng *r, int lo, int *src, int *len, int *x, int *y) {
    enum { RB = MT_RB, RS = MT_RS, RT = MT_RT };
    for (int b = 0; b < RB; b++) {
        int n = lo + (int)tz_rng_below(r, MT_RMAX - lo + 1);
        len[b] = n;
        for (int t = 0; t < RS; t++) src[b * RS + t] = t < n ? 4 + (int)tz_rng_below(r, 10) : TZ_PAD;
        for (int t = 0; t < RT; t++) {
            y[b * RT + t] = t < n ? src[b * RS + n - 1 - t] : t == n ? TZ_EOS : TZ_IGNORE;
            x[b * RT + t] = t == 0 ? TZ_BOS : t <= n ? y[b * RT + t - 1] : TZ_PAD;
        }
    }
}

double mt_reverse_exact(tz_graph *g, const mt_model *mm, const int *src, const int *len) {
    enum { RB = MT_RB, RS = MT_RS, RT = MT_RT, RV = MT_RV };
    tz_graph_reset(g);
    tz_no_grad_begin(g);
    int prev[RB], done[RB] = {0}, ok[RB];
    for (int b = 0; b < RB; b++) prev[b] = TZ_BOS, ok[b] = 1;
    mm->def->mt_encode(g, mm->m, src, len, RB, RS, 1);
    for (int t = 0; t < RT + 2; t++) {
        tz_tensor *l = mm->def->mt_step(g, mm->m, prev, NULL, NULL);
        for (int b = 0; b < RB; b++) {
            int best = 0;
            for (int v = 1; v < RV; v++)
                if (l->data[b * RV + v] > l->data[b * RV + best]) best = v;
            prev[b] = best;
            if (done[b]) continue;
            int want = t < len[b] ? src[b * RS + len[b] - 1 - t] : TZ_EOS;
            if (best != want) ok[b] = 0;
            if (best == TZ_EOS || best != want) done[b] = 1;
        }
    }
    tz_no_grad_end(g);
    int n = 0;
    for (int b = 0; b < RB; b++) n += ok[b] && done[b];
    return (double)n / RB;
}
