// The Transformer encoder-decoder (models/transformer_mt.c): shapes, padding invariance, step by
// step decoding (KV cache, projected memory) against forward under teacher forcing, beam rows
// following their parents (the caches gathered), bad configurations, learning to reverse digit
// strings; and the label-smoothed cross-entropy it trains with.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "corpus.h"
#include "gemm.h"
#include "helpers.h"
#include "model.h"
#include "nn.h"
#include "mt_helpers.h"
#include "setup.h"

// Post-LN (the paper) and pre-LN, untied with GELU; dropout 0 except where a test wants it.
static const char *const post[] = {"model.layers=2",
                                   "model.heads=2",
                                   "model.d_model=8",
                                   "model.d_ff=12",
                                   "model.dropout=0",
                                   "model.skip_padding=false",
                                   NULL};
static const char *const pre[] = {
    "model.layers=2",           "model.heads=2",     "model.d_model=8", "model.d_ff=12",  "model.dropout=0",
    "model.skip_padding=false", "model.pre_ln=true", "model.tie=false", "model.ffn=gelu", NULL};
static const char *const skip[] = {"model.layers=2", "model.heads=2",   "model.d_model=8",
                                   "model.d_ff=12",  "model.dropout=0", NULL};

enum { VS = 11, VT = 9 };

static void check_shapes(const char *const *over, int skipping) {
    mt_model mm;
    mt_make(&mm, "transformer_mt", VS, VT, 1, over);
    mm.g.training = 1;
    tz_rng r;
    tz_rng_seed(&r, 2);
    enum { B = 3, S = 6, T = 5 };
    int src[B * S], len[B], x[B * T], y[B * T];
    mt_make_pairs(&r, VS, VT, B, S, T, (const int[]){6, 1, 3}, (const int[]){2, 5, 1}, src, len, x, y);
    tz_batch b = {.B = B, .T = T, .x = x, .y = y, .S = S, .src = src, .src_len = len};
    tz_tensor *logits = mm.def->forward(&mm.g, mm.m, &b);
    int n = skipping ? 2 + 5 + 1 : B * T;
    cr_assert_eq(logits->ndim, 2);
    cr_assert_eq(logits->shape[0], n);
    cr_assert_eq(logits->shape[1], VT);
    cr_assert_eq(b.n_targets, n);
    if (!skipping) cr_assert_eq(b.targets, y);
    tz_tensor *loss = tz_cross_entropy_smooth(&mm.g, logits, b.targets, TZ_IGNORE, 0.1);
    cr_assert(isfinite(loss->data[0]) && loss->data[0] > 0);
    tz_params_zero_grad(&mm.P);
    tz_backward(&mm.g, loss);
    mt_unmake(&mm);
}

Test(transformer_mt, forward_shapes) {
    check_shapes(post, 0);
    check_shapes(pre, 0);
    check_shapes(skip, 1);
}

// Padded sources are masked in the encoder and in cross-attention, and the causal decoder never
// sees the target padding.
Test(transformer_mt, padding_invariance) {
    mt_check_padding("transformer_mt", post, VS, VT);
    mt_check_padding("transformer_mt", pre, VS, VT);
    mt_check_padding("transformer_mt", skip, VS, VT);
}

Test(transformer_mt, decoding_matches_forward) {
    mt_check_teacher_forcing("transformer_mt", post, VS, VT, 1e-4, 1);
    mt_check_teacher_forcing("transformer_mt", pre, VS, VT, 1e-4, 1);
}

// Beam rows follow their parents (mt_check_beam_rows), and a decode longer than the cache's first
// guess (2 |src| + 11 positions) grows it and still matches forward.
Test(transformer_mt, beam_rows_follow_parents) {
    mt_model mm;
    mt_make(&mm, "transformer_mt", VS, VT, 7, post);
    mt_check_beam_rows(&mm, VS, VT);
    tz_no_grad_begin(&mm.g);
    // 2 * 1 + 11 = 13 cached positions at first; 20 steps grow the cache, the logits still match.
    enum { T = 20 };
    int s1 = 5, l1 = 1, xs[T], ys[T];
    for (int t = 0; t < T; t++) ys[t] = 4 + t % 5, xs[t] = t ? ys[t - 1] : TZ_BOS;
    tz_batch b1 = {.B = 1, .T = T, .x = xs, .y = ys, .S = 1, .src = &s1, .src_len = &l1};
    tz_tensor *full = mm.def->forward(&mm.g, mm.m, &b1);
    mm.def->mt_encode(&mm.g, mm.m, &s1, &l1, 1, 1, 2);
    for (int t = 0; t < T; t++) {
        int prev[2] = {xs[t], xs[t]}, par[2] = {1, 0}; // swapped every step: the same history
        tz_tensor *l = mm.def->mt_step(&mm.g, mm.m, prev, t ? par : NULL, NULL);
        for (int v = 0; v < VT; v++)
            for (int k = 0; k < 2; k++)
                cr_assert_float_eq(l->data[k * VT + v], full->data[t * VT + v], 1e-4, "step %d", t);
    }
    tz_no_grad_end(&mm.g);
    mt_unmake(&mm);
}

Test(transformer_mt, bad_config) {
    mt_model mm;
    const char *const heads[] = {"model.d_model=10", "model.heads=4", NULL};
    cr_assert(EXPECT_FAIL(mt_make(&mm, "transformer_mt", VS, VT, 1, heads)));
    cr_assert(strstr(tz_last_error(), "d_model = 10 is not divisible by heads = 4"), "%s", tz_last_error());
    tz_params_free(&mm.P);
    const char *const ffn[] = {"model.ffn=tanh", NULL};
    cr_assert(EXPECT_FAIL(mt_make(&mm, "transformer_mt", VS, VT, 1, ffn)));
    cr_assert(strstr(tz_last_error(), "ffn = 'tanh' (want relu, gelu or swiglu)"), "%s", tz_last_error());
    tz_params_free(&mm.P);
    cr_assert(EXPECT_FAIL(mt_make(&mm, "transformer_mt", 3, VT, 1, NULL)));
    cr_assert(strstr(tz_last_error(), "vocabularies of 3 (source)"), "%s", tz_last_error());
    tz_params_free(&mm.P);
}

Test(transformer_mt, learns_to_reverse) {
    // 500 training steps: minutes under valgrind; the other tests run this model's code there.
    if (getenv("TZ_UNDER_VALGRIND")) cr_skip_test("500 training steps are too slow under valgrind");
    mt_model mm;
    const char *const over[] = {"model.layers=2", "model.heads=2",   "model.d_model=32",
                                "model.d_ff=64",  "model.dropout=0", NULL};
    mt_make(&mm, "transformer_mt", MT_RV, MT_RV, 11, over);
    // Warm-up to the paper schedule's peak (0.0099 with these sizes), then cosine down to 1e-4
    // at the last step: with the paper's own decay (lr s^-0.5) the exact match ran 0.89-1.00 over
    // seeds 11-16 (0.94 at this one, against 0.9 asked then); decayed, seeds 11-18 all give 1.000
    // (150 steps: 0.48; 50: 0.02).
    mt_reverse_training t = {
        .oc = nn_optim_defaults(NN_OPTIM_ADAM),
        .sched = {.kind = NN_SCHED_COSINE, .lr = 0.0099, .min_lr = 1e-4, .warmup = 20, .decay_iters = 500},
        .steps = 500,
        .eval_lo = MT_RMIN,
        .smoothing = 0.1};
    t.oc.beta2 = 0.98, t.oc.eps = 1e-9;
    double loss, acc = mt_train_reverse(&mm, &t, &loss);
    cr_assert(acc >= 0.95, "exact match %.3f after 500 steps (last loss %.4f)", acc, loss);
    mt_unmake(&mm);
}

// ---------------------------------------------------------------------------------------------
// The label-smoothed cross-entropy against its definition, -sum_j q_j log p_j with
// q = (1 - eps) onehot(y) + eps / V, ignored rows left out; eps = 0 is the plain loss.
Test(transformer_mt, label_smoothing_loss) {
    tz_graph g;
    tz_graph_init(&g, 1 << 16);
    enum { N = 3, V = 4 };
    tz_tensor *x = tz_empty(&g, 2, (const int[]){N, V});
    const real vals[N * V] = {1, 2, 0.5f, -1, 0, 0, 3, 1, -2, 4, 0, 0.25f};
    memcpy(x->data, vals, sizeof vals);
    const int t[N] = {1, TZ_IGNORE, 3};
    double eps = 0.1, want = 0;
    for (int r = 0; r < N; r++) {
        if (t[r] == TZ_IGNORE) continue;
        double lse = 0;
        for (int j = 0; j < V; j++) lse += exp(vals[r * V + j]);
        lse = log(lse);
        for (int j = 0; j < V; j++) want -= ((j == t[r]) * (1 - eps) + eps / V) * (vals[r * V + j] - lse);
    }
    want /= 2;
    cr_assert_float_eq(tz_cross_entropy_smooth(&g, x, t, TZ_IGNORE, (real)eps)->data[0], want, 1e-5);
    cr_assert_eq(tz_cross_entropy_smooth(&g, x, t, TZ_IGNORE, 0)->data[0],
                 tz_cross_entropy(&g, x, t, TZ_IGNORE)->data[0]);
    cr_assert(EXPECT_FAIL(tz_cross_entropy_smooth(&g, x, t, TZ_IGNORE, 1)));
    cr_assert(strstr(tz_last_error(), "label smoothing 1 must be in [0, 1)"), "%s", tz_last_error());
    tz_graph_free(&g);
}
