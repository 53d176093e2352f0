// mt_helpers.c: see mt_helpers.h.
#include "mt_helpers.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h" // tz_set_threads
#include "helpers.h"
#include "setup.h"

void mt_make(mt_model *mm, const char *type, int Vs, int Vt, uint64_t seed, const char *const *over) {
    tz_params_init(&mm->P); // first: a cfg value refused below leaves P for the caller to free
    mm->def = tz_model_find(type);
    cr_assert(mm->def && mm->def->pairs, "%s is a translation model", type);
    tz_cfg_init(&mm->c, mm->def);
    char buf[128];
    snprintf(buf, sizeof buf, "model.type=%s", type);
    cfg_override(&mm->c, buf, 0);
    cfg_override(&mm->c, "data.path=unused", 0);
    for (int i = 0; over && over[i]; i++) cfg_override(&mm->c, over[i], i + 1);
    tz_rng r;
    tz_rng_seed(&r, seed);
    mm->m = mm->def->mt_create(&mm->c, Vs, Vt, &mm->P, &r);
    tz_graph_init(&mm->g, 1 << 20); // after mt_create: a bad key leaves nothing to free
}

void mt_unmake(mt_model *mm) {
    tz_graph_free(&mm->g);
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

void mt_check_beam_rows(mt_model *mm, int Vs, int Vt) {
    tz_graph *g = &mm->g;
    tz_rng r;
    tz_rng_seed(&r, 8);
    enum { B = 2, S = 4, K = 3, R = B * K };
    int src[B * S], len[B], x[B * 2], y[B * 2];
    mt_make_pairs(&r, Vs, Vt, B, S, 2, (const int[]){4, 2}, (const int[]){2, 2}, src, len, x, y);
    const int w1[R] = {4, 5, 6, 7, 8, 4}, parent[R] = {2, 2, 0, 4, 3, 5}, w2[R] = {5, 6, 7, 8, 4, 5};
    int bos[R];
    for (int i = 0; i < R; i++) bos[i] = TZ_BOS;
    tz_no_grad_begin(g);
    mm->def->mt_encode(g, mm->m, src, len, B, S, K);
    mm->def->mt_step(g, mm->m, bos, NULL, NULL);
    mm->def->mt_step(g, mm->m, w1, NULL, NULL);
    tz_tensor *beam = mm->def->mt_step(g, mm->m, w2, parent, NULL);
    cr_assert_eq(beam->shape[0], R);
    real *got = malloc(sizeof(real) * R * Vt);
    memcpy(got, beam->data, sizeof(real) * R * Vt);
    for (int i = 0; i < R; i++) {
        int b = i / K, p1 = TZ_BOS, p2 = w1[parent[i]], p3 = w2[i];
        mm->def->mt_encode(g, mm->m, src + b * S, len + b, 1, S, 1);
        mm->def->mt_step(g, mm->m, &p1, NULL, NULL);
        mm->def->mt_step(g, mm->m, &p2, NULL, NULL);
        tz_tensor *ref = mm->def->mt_step(g, mm->m, &p3, NULL, NULL);
        for (int v = 0; v < Vt; v++)
            cr_assert_float_eq(got[i * Vt + v], ref->data[v], 1e-5, "%s: beam row %d, word %d", mm->def->name, i, v);
    }
    free(got);
    mm->def->mt_encode(g, mm->m, src, len, B, S, K);
    const int bad[R] = {0, 1, 3, 3, 4, 5};
    cr_assert(EXPECT_FAIL(mm->def->mt_step(g, mm->m, bos, bad, NULL)));
    cr_assert(strstr(tz_last_error(), "parent[2] = 3"), "%s", tz_last_error());
    tz_no_grad_end(g);
}

void mt_check_padding(const char *type, const char *const *over, int Vs, int Vt) {
    mt_model mm;
    mt_make(&mm, type, Vs, Vt, 3, over);
    tz_rng r;
    tz_rng_seed(&r, 4);
    enum { B = 3, S = 7, T = 6, S1 = 3, T1 = 2 };
    int src[B * S], len[B], x[B * T], y[B * T];
    mt_make_pairs(&r, Vs, Vt, B, S, T, (const int[]){7, S1, 5}, (const int[]){6, T1, 4}, src, len, x, y);
    // The middle pair alone, unpadded.
    int src1[S1], x1[T1], y1[T1], len1 = S1;
    memcpy(src1, src + S, sizeof src1);
    memcpy(x1, x + T, sizeof x1);
    memcpy(y1, y + T, sizeof y1);
    tz_batch b1 = {.B = 1, .T = T1, .x = x1, .y = y1, .S = S1, .src = src1, .src_len = &len1};
    tz_tensor *o1 = mm.def->forward(&mm.g, mm.m, &b1);
    tz_tensor *l1 = tz_cross_entropy(&mm.g, o1, b1.targets, TZ_IGNORE);
    int yb[B * T];
    for (int i = 0; i < B * T; i++) yb[i] = i / T == 1 ? y[i] : TZ_IGNORE;
    tz_batch b = {.B = B, .T = T, .x = x, .y = yb, .S = S, .src = src, .src_len = len};
    tz_tensor *o = mm.def->forward(&mm.g, mm.m, &b);
    tz_tensor *l = tz_cross_entropy(&mm.g, o, b.targets, TZ_IGNORE);
    cr_assert_float_eq(l->data[0], l1->data[0], 1e-5, "%s: alone %.7f, batched %.7f", type, (double)l1->data[0],
                       (double)l->data[0]);
    mt_unmake(&mm);
}

void mt_check_teacher_forcing(const char *type, const char *const *over, int Vs, int Vt, double tol, int attention) {
    mt_model mm;
    mt_make(&mm, type, Vs, Vt, 5, over);
    tz_rng r;
    tz_rng_seed(&r, 6);
    enum { B = 3, S = 5, T = 4 };
    int src[B * S], len[B], x[B * T], y[B * T];
    mt_make_pairs(&r, Vs, Vt, B, S, T, (const int[]){2, 5, 4}, (const int[]){4, 2, 3}, src, len, x, y);
    tz_no_grad_begin(&mm.g);
    tz_batch b = {.B = B, .T = T, .x = x, .y = y, .S = S, .src = src, .src_len = len};
    tz_tensor *logits = mm.def->forward(&mm.g, mm.m, &b);
    cr_assert_eq(logits->shape[0], B * T, "%s: forward's logits are not (B*T, V)", type);
    mm.def->mt_encode(&mm.g, mm.m, src, len, B, S, 1);
    for (int t = 0; t < T; t++) {
        int prev[B];
        for (int i = 0; i < B; i++) prev[i] = x[i * T + t];
        tz_tensor *attn = NULL;
        tz_tensor *step = mm.def->mt_step(&mm.g, mm.m, prev, NULL, &attn);
        cr_assert_eq(step->shape[0], B);
        cr_assert_eq(step->shape[1], Vt);
        for (int i = 0; i < B; i++)
            for (int v = 0; v < Vt; v++)
                cr_assert_float_eq(step->data[i * Vt + v], logits->data[(i * T + t) * Vt + v], tol, "%s row %d step %d",
                                   type, i, t);
        if (!attention) {
            cr_assert_null(attn);
            continue;
        }
        cr_assert(attn && attn->shape[0] == B && attn->shape[1] == S);
        for (int i = 0; i < B; i++) {
            double sum = 0;
            for (int j = 0; j < S; j++) {
                if (j >= len[i]) cr_assert_eq(attn->data[i * S + j], 0, "padding gets no attention");
                sum += attn->data[i * S + j];
            }
            cr_assert_float_eq(sum, 1, 1e-5);
        }
    }
    tz_no_grad_end(&mm.g);
    mt_unmake(&mm);
}

double mt_train_reverse(mt_model *mm, const mt_reverse_training *t, double *last_loss) {
    tz_set_threads(1); // tiny products: one thread is faster, and the test must not wait on a busy machine
    nn_optim o;
    nn_optim_init(&o, &mm->P, &t->oc);
    tz_graph *g = &mm->g;
    tz_rng r;
    tz_rng_seed(&r, 12);
    int src[MT_RB * MT_RS], len[MT_RB], x[MT_RB * MT_RT], y[MT_RB * MT_RT];
    for (int step = 0; step < t->steps; step++) {
        mt_reverse_batch(&r, MT_RMIN, src, len, x, y);
        tz_graph_reset(g);
        g->training = 1;
        tz_batch b = {.B = MT_RB, .T = MT_RT, .x = x, .y = y, .S = MT_RS, .src = src, .src_len = len};
        tz_tensor *logits = mm->def->forward(g, mm->m, &b); // sets b.targets
        tz_tensor *l = tz_cross_entropy_smooth(g, logits, b.targets, TZ_IGNORE, t->smoothing);
        *last_loss = l->data[0];
        tz_params_zero_grad(&mm->P);
        tz_backward(g, l);
        nn_clip_grad_norm(&mm->P, 1);
        nn_optim_step(&o, &mm->P, (real)nn_schedule_lr(&t->sched, step));
    }
    g->training = 0;
    double acc = 0;
    for (int k = 0; k < 4; k++) { // 4 x 32 fresh draws
        mt_reverse_batch(&r, t->eval_lo, src, len, x, y);
        acc += mt_reverse_exact(g, mm, src, len) / 4;
    }
    nn_optim_free(&o);
    tz_set_threads(0);
    return acc;
}
