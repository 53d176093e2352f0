// Attention, positions and transformer blocks: multi-head attention, encoder and decoder layers
// against PyTorch (tests/fixtures/gen_attention.py) to 1e-5 with causal and padding masks;
// Bahdanau, Luong and scaled dot-product attention against hand computation; attention weights
// (rows sum to 1, masked keys exactly 0); incremental decoding with the KV cache against the full
// causal forward; and the one-line errors of bad configurations.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "helpers.h"
#include "nn.h"

static fixture fx;
static tz_graph g;
static tz_params P;
static tz_rng r;
static void setup(void) {
    fixture_load(&fx, "attention");
    tz_graph_init(&g, 1 << 20);
    g.training = 0;
    tz_params_init(&P);
    tz_rng_seed(&r, 1);
}
static void teardown(void) {
    fixture_free(&fx);
    tz_graph_free(&g);
    tz_params_free(&P);
}
TestSuite(attention, .init = setup, .fini = teardown);

static void expect_close(const tz_tensor *t, const char *name, double tol) { fixture_expect_close(&fx, t, name, tol); }
static tz_tensor *from_fixture(const char *name) { return fixture_tensor_in(&fx, &g, name); }

// A fixture tensor as real values in the graph's arena.
static const real *values(const char *prefix, const char *name) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", prefix, name);
    return from_fixture(key)->data;
}

static void lengths_of(const char *name, int *lengths, int B) {
    const fixture_tensor *f = fixture_get(&fx, name);
    cr_assert_eq(f->n, B);
    for (int b = 0; b < B; b++) lengths[b] = (int)f->v[b];
}

// PyTorch's MultiheadAttention under `prefix` ("self", "enc_post.self_attn", ...) into m.
static void load_mha(const nn_mha *m, const char *prefix) {
    nn_mha_load_pytorch(m, values(prefix, "in_proj_weight"), values(prefix, "in_proj_bias"),
                        values(prefix, "out_proj.weight"), values(prefix, "out_proj.bias"));
}
static void load(tz_tensor *t, const char *prefix, const char *name) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", prefix, name);
    fixture_copy(&fx, key, t->data, t->n);
}
static void load_ffn(const nn_ffn *f, const char *prefix) {
    load(f->w1.w, prefix, "linear1.weight");
    load(f->w1.b, prefix, "linear1.bias");
    load(f->w2.w, prefix, "linear2.weight");
    load(f->w2.b, prefix, "linear2.bias");
}
static void load_ln(const nn_layernorm *l, const char *prefix, const char *which) {
    char key[64];
    snprintf(key, sizeof key, "%s.weight", which);
    load(l->w, prefix, key);
    snprintf(key, sizeof key, "%s.bias", which);
    load(l->b, prefix, key);
}

// Rows of weights (.., Tk) sum to 1; keys past lengths[b] (b = row's batch) are exactly 0, and so
// are keys after the query when causal (queries the last Tq of Tk positions).
static void expect_weights(const tz_tensor *w, int B, const int *lengths, int causal) {
    int Tk = w->shape[w->ndim - 1], Tq = w->ndim >= 2 ? w->shape[w->ndim - 2] : 1;
    int rows = w->n / Tk, per_b = rows / B;
    for (int row = 0; row < rows; row++) {
        int b = row / per_b, i = row % Tq;
        double sum = 0;
        for (int j = 0; j < Tk; j++) {
            real a = w->data[(long)row * Tk + j];
            sum += a;
            int masked = (lengths && j >= lengths[b]) || (causal && j > i + Tk - Tq);
            if (masked) cr_assert_eq(a, 0, "weight [row %d, key %d] = %g, masked", row, j, (double)a);
            else cr_assert(a > 0, "weight [row %d, key %d] = %g, not masked", row, j, (double)a);
        }
        cr_assert(fabs(sum - 1) < 1e-6, "row %d sums to %.9f", row, sum);
    }
}

// ---------------------------------------------------------------------------------------------
// Against PyTorch.

Test(attention, mha_self_causal_padding_matches_pytorch) {
    nn_mha m;
    nn_mha_init(&m, &P, "self", 8, 2, 1, (nn_init){0}, &r);
    load_mha(&m, "self");
    int lengths[2];
    lengths_of("self.lengths", lengths, 2);
    tz_tensor *w;
    tz_tensor *y = nn_mha_forward(&g, &m, from_fixture("self.x"), NULL, lengths, 1, &w);
    expect_close(y, "self.out", 1e-5);
    expect_close(w, "self.weights", 1e-5);
    expect_weights(w, 2, lengths, 1);
    cr_assert(tz_params_find(&P, "self.q.weight") && tz_params_find(&P, "self.o.bias"));
}

Test(attention, mha_cross_padding_matches_pytorch) {
    nn_mha m;
    nn_mha_init(&m, &P, "cross", 8, 2, 1, (nn_init){0}, &r);
    load_mha(&m, "cross");
    int lengths[2];
    lengths_of("cross.lengths", lengths, 2);
    tz_tensor *w;
    tz_tensor *y = nn_mha_forward(&g, &m, from_fixture("cross.q"), from_fixture("cross.mem"), lengths, 0, &w);
    expect_close(y, "cross.out", 1e-5);
    expect_close(w, "cross.weights", 1e-5);
    expect_weights(w, 2, lengths, 0);
}

static void encoder_case(const char *name, int pre_ln, nn_ffn_kind ffn) {
    nn_block_config c = nn_block_defaults(8, 2, 12);
    c.pre_ln = pre_ln, c.ffn = ffn, c.dropout = 0, c.attn_dropout = 0;
    nn_encoder_block b;
    nn_encoder_block_init(&b, &P, name, &c, (nn_init){0}, &r);
    char key[64];
    snprintf(key, sizeof key, "%s.self_attn", name);
    load_mha(&b.attn, key);
    load_ffn(&b.ffn, name);
    load_ln(&b.ln1, name, "norm1");
    load_ln(&b.ln2, name, "norm2");
    int lengths[2];
    lengths_of("enc.lengths", lengths, 2);
    nn_block_attn a;
    tz_tensor *y = nn_encoder_block_forward(&g, &b, from_fixture("enc.x"), lengths, &a);
    snprintf(key, sizeof key, "%s.out", name);
    expect_close(y, key, 1e-5);
    expect_weights(a.self, 2, lengths, 0);
    cr_assert_null(a.cross);
}
Test(attention, encoder_postln_relu_matches_pytorch) { encoder_case("enc_post", 0, NN_FFN_RELU); }
Test(attention, encoder_preln_gelu_matches_pytorch) { encoder_case("enc_pre", 1, NN_FFN_GELU); }

Test(attention, decoder_preln_cross_matches_pytorch) {
    nn_block_config c = nn_block_defaults(8, 2, 12);
    c.pre_ln = 1, c.ffn = NN_FFN_GELU, c.dropout = 0, c.attn_dropout = 0;
    nn_decoder_block b;
    nn_decoder_block_init(&b, &P, "dec", &c, 1, (nn_init){0}, &r);
    load_mha(&b.self_attn, "dec.self_attn");
    load_mha(&b.cross_attn, "dec.multihead_attn");
    load_ffn(&b.ffn, "dec");
    load_ln(&b.ln1, "dec", "norm1");
    load_ln(&b.ln2, "dec", "norm2");
    load_ln(&b.ln3, "dec", "norm3");
    int lengths[2];
    lengths_of("dec.lengths", lengths, 2);
    nn_block_attn a;
    tz_tensor *y = nn_decoder_block_forward(&g, &b, from_fixture("dec.y"), from_fixture("dec.mem"), lengths, &a);
    expect_close(y, "dec.out", 1e-5);
    expect_weights(a.self, 2, NULL, 1);
    expect_weights(a.cross, 2, lengths, 0);
}

// ---------------------------------------------------------------------------------------------
// Hand-computed cases.

static void set(tz_tensor *t, const real *v) { memcpy(t->data, v, sizeof(real) * t->n); }

Test(attention, bahdanau_by_hand) {
    nn_bahdanau a;
    nn_bahdanau_init(&a, &P, "bah", 2, 2, 2, (nn_init){0}, &r);
    const real W[4] = {0.5, -1, 0.25, 2}, U[4] = {1, 0.5, -0.5, 1}, Ub[2] = {0.1, -0.2}, v[2] = {1.5, -0.75};
    set(a.W.w, W), set(a.U.w, U), set(a.U.b, Ub), set(a.v.w, v);
    const real s[4] = {0.3, -0.6, 1.0, 0.2};
    const real h[12] = {1, 0, 0, 1, -1, 2, /* b=1 */ 0.5, 0.5, 2, -1, 3, 3};
    const int lengths[2] = {3, 2};
    tz_tensor *wts;
    tz_tensor *c = nn_bahdanau_forward(&g, &a, tz_test_tensor(&g, 2, (const int[]){2, 2}, s),
                                       tz_test_tensor(&g, 3, (const int[]){2, 3, 2}, h), NULL, lengths, &wts);
    for (int b = 0; b < 2; b++) {
        double e[3], m = -1e300, z = 0, want[2] = {0, 0};
        for (int j = 0; j < lengths[b]; j++) {
            const real *hj = h + (b * 3 + j) * 2, *sb = s + b * 2;
            e[j] = 0;
            for (int k = 0; k < 2; k++) // v_k tanh(W_k. s + U_k. h_j + Ub_k)
                e[j] += v[k] *
                        tanh(W[k * 2] * sb[0] + W[k * 2 + 1] * sb[1] + U[k * 2] * hj[0] + U[k * 2 + 1] * hj[1] + Ub[k]);
            if (e[j] > m) m = e[j];
        }
        for (int j = 0; j < lengths[b]; j++) z += exp(e[j] - m);
        for (int j = 0; j < 3; j++) {
            double aj = j < lengths[b] ? exp(e[j] - m) / z : 0;
            cr_assert(fabs(wts->data[b * 3 + j] - aj) < 1e-6, "a[%d][%d] = %g, want %g", b, j, wts->data[b * 3 + j],
                      aj);
            for (int k = 0; k < 2; k++) want[k] += aj * h[(b * 3 + j) * 2 + k];
        }
        for (int k = 0; k < 2; k++)
            cr_assert(fabs(c->data[b * 2 + k] - want[k]) < 1e-6, "c[%d][%d] = %g, want %g", b, k, c->data[b * 2 + k],
                      want[k]);
    }
    cr_assert_eq(wts->data[5], 0); // padded key: exactly 0
    expect_weights(wts, 2, lengths, 0);
    // Precomputed keys give the same.
    tz_tensor *h2 = tz_test_tensor(&g, 3, (const int[]){2, 3, 2}, h);
    tz_tensor *c2 = nn_bahdanau_forward(&g, &a, tz_test_tensor(&g, 2, (const int[]){2, 2}, s), h2,
                                        nn_bahdanau_keys(&g, &a, h2), lengths, NULL);
    for (int i = 0; i < 4; i++) cr_assert_float_eq(c2->data[i], c->data[i], 1e-7);
}

Test(attention, luong_dot_and_general_by_hand) {
    // One sequence, h = [[1,0],[0,1],[1,1]], s = [2, 0]: dot scores [2, 0, 2].
    const real s[2] = {2, 0}, h[6] = {1, 0, 0, 1, 1, 1};
    tz_tensor *st = tz_test_tensor(&g, 2, (const int[]){1, 2}, s),
              *ht = tz_test_tensor(&g, 3, (const int[]){1, 3, 2}, h);
    nn_luong dot, gen;
    nn_luong_init(&dot, &P, "dot", NN_LUONG_DOT, 2, 2, (nn_init){0}, &r);
    tz_tensor *w;
    tz_tensor *c = nn_luong_forward(&g, &dot, st, ht, NULL, &w);
    double z = 2 * exp(2) + 1;
    cr_assert_float_eq(w->data[0], exp(2) / z, 1e-6);
    cr_assert_float_eq(w->data[1], 1 / z, 1e-6);
    cr_assert_float_eq(c->data[0], 2 * exp(2) / z, 1e-6);
    cr_assert_float_eq(c->data[1], (exp(2) + 1) / z, 1e-6);
    // general with W s = [0, 1] (W = [[0,0],[0.5,0]]): scores [0, 1, 1]; length 2 masks key 2.
    nn_luong_init(&gen, &P, "gen", NN_LUONG_GENERAL, 2, 2, (nn_init){0}, &r);
    set(gen.W.w, (const real[]){0, 0, 0.5, 0});
    cr_assert(tz_params_find(&P, "gen.W.weight"));
    c = nn_luong_forward(&g, &gen, st, ht, (const int[]){2}, &w);
    z = 1 + exp(1);
    cr_assert_float_eq(w->data[0], 1 / z, 1e-6);
    cr_assert_float_eq(w->data[1], exp(1) / z, 1e-6);
    cr_assert_eq(w->data[2], 0);
    cr_assert_float_eq(c->data[0], 1 / z, 1e-6);
    cr_assert_float_eq(c->data[1], exp(1) / z, 1e-6);
}

Test(attention, sdpa_by_hand) {
    // q = [[1,0],[0,2]], k = [[1,0],[0,1]], v = [[1,2],[3,4]], D = 2: scores / sqrt 2.
    const real q[4] = {1, 0, 0, 2}, k[4] = {1, 0, 0, 1}, v[4] = {1, 2, 3, 4};
    const int sh[4] = {1, 1, 2, 2};
    tz_tensor *w;
    tz_tensor *y = nn_sdpa(&g, tz_test_tensor(&g, 4, sh, q), tz_test_tensor(&g, 4, sh, k), tz_test_tensor(&g, 4, sh, v),
                           NULL, 0, 0, &w);
    double a0 = 1 / (1 + exp(-1 / sqrt(2))), a1 = 1 / (1 + exp(2 / sqrt(2))); // row 0 and 1 weight of key 0
    cr_assert_float_eq(w->data[0], a0, 1e-6);
    cr_assert_float_eq(w->data[2], a1, 1e-6);
    cr_assert_float_eq(y->data[0], a0 * 1 + (1 - a0) * 3, 1e-6);
    cr_assert_float_eq(y->data[1], a0 * 2 + (1 - a0) * 4, 1e-6);
    cr_assert_float_eq(y->data[2], a1 * 1 + (1 - a1) * 3, 1e-6);
    cr_assert_float_eq(y->data[3], a1 * 2 + (1 - a1) * 4, 1e-6);
    // Causal: the first query sees only the first key.
    y = nn_sdpa(&g, tz_test_tensor(&g, 4, sh, q), tz_test_tensor(&g, 4, sh, k), tz_test_tensor(&g, 4, sh, v), NULL, 1,
                0, &w);
    cr_assert_eq(w->data[0], 1);
    cr_assert_eq(w->data[1], 0);
    cr_assert_float_eq(y->data[0], 1, 1e-6);
    cr_assert_float_eq(y->data[1], 2, 1e-6);
    cr_assert_float_eq(y->data[2], a1 * 1 + (1 - a1) * 3, 1e-6);
}

Test(attention, masks) {
    tz_tensor *m = nn_attn_mask(&g, 2, 2, 4, (const int[]){4, 3}, 1); // queries at positions 2, 3
    cr_assert(m->ndim == 4 && m->shape[0] == 2 && m->shape[1] == 1 && m->shape[2] == 2 && m->shape[3] == 4);
    const real want[16] = {0, 0, 0, 1, 0, 0, 0, 0, /* b=1, length 3 */ 0, 0, 0, 1, 0, 0, 0, 1};
    for (int i = 0; i < 16; i++) cr_assert_eq(m->data[i], want[i], "mask[%d]", i);
    cr_assert_null(nn_attn_mask(&g, 2, 2, 4, NULL, 0));
}

Test(attention, positions) {
    real pe[3 * 6];
    nn_sinusoidal_fill(pe, 3, 6, 1); // positions 1, 2, 3
    for (int t = 0; t < 3; t++)
        for (int i = 0; i < 3; i++) {
            double a = (t + 1) / pow(10000, 2.0 * i / 6);
            cr_assert_float_eq(pe[t * 6 + 2 * i], sin(a), 1e-6);
            cr_assert_float_eq(pe[t * 6 + 2 * i + 1], cos(a), 1e-6);
        }
    // RoPE keeps norms and makes q.k depend on the offset only.
    const real q[4] = {0.3, -1.2, 0.7, 0.5}, k[4] = {-0.4, 0.9, 1.1, 0.2};
    const int sh[2] = {1, 4};
    double dots[2];
    for (int c = 0; c < 2; c++) {
        tz_tensor *rq = tz_rope(&g, tz_test_tensor(&g, 2, sh, q), 5 + 10 * c, 10000);
        tz_tensor *rk = tz_rope(&g, tz_test_tensor(&g, 2, sh, k), 2 + 10 * c, 10000);
        dots[c] = 0;
        for (int i = 0; i < 4; i++) dots[c] += rq->data[i] * rk->data[i];
        cr_assert_float_eq(rq->data[0] * rq->data[0] + rq->data[1] * rq->data[1], q[0] * q[0] + q[1] * q[1], 1e-6);
    }
    cr_assert_float_eq(dots[0], dots[1], 1e-5);
    // At position p, the first pair rotates by p radians.
    tz_tensor *y = tz_rope(&g, tz_test_tensor(&g, 2, sh, (const real[]){1, 0, 1, 0}), 2, 10000);
    cr_assert_float_eq(y->data[0], cos(2), 1e-6);
    cr_assert_float_eq(y->data[1], sin(2), 1e-6);
    cr_assert_float_eq(y->data[2], cos(2 / 100.0), 1e-6);
    nn_learned_pos lp;
    nn_learned_pos_init(&lp, &P, "pos", 8, 4, (nn_init){0}, &r);
    tz_tensor *x = tz_zeros(&g, 3, (const int[]){2, 3, 4});
    y = nn_learned_pos_forward(&g, &lp, x, 4);
    for (int i = 0; i < 24; i++) cr_assert_eq(y->data[i], lp.w->data[16 + i % 12]);
}

Test(attention, ffn_by_hand) {
    // d_model 1, d_ff 2: each kind against its formula at x = -0.7 and 1.3.
    const real w1[2] = {1.5, -2}, b1[2] = {0.25, 0.5}, w2[2] = {0.75, -1.25}, b2[1] = {0.1}, w3[2] = {-0.5, 2};
    const real xs[2] = {-0.7, 1.3};
    for (int kind = NN_FFN_RELU; kind <= NN_FFN_SWIGLU; kind++) {
        nn_ffn f;
        char name[16];
        snprintf(name, sizeof name, "ffn%d", kind);
        nn_ffn_init(&f, &P, name, (nn_ffn_kind)kind, 1, 2, kind != NN_FFN_SWIGLU, (nn_init){0}, &r);
        set(f.w1.w, w1), set(f.w2.w, w2);
        if (f.w1.b) set(f.w1.b, b1), set(f.w2.b, b2);
        if (f.w3.w) set(f.w3.w, w3);
        tz_tensor *y = nn_ffn_forward(&g, &f, tz_test_tensor(&g, 2, (const int[]){2, 1}, xs));
        for (int i = 0; i < 2; i++) {
            double want = kind == NN_FFN_SWIGLU ? 0 : b2[0];
            for (int j = 0; j < 2; j++) {
                double h = w1[j] * xs[i] + (kind == NN_FFN_SWIGLU ? 0 : b1[j]);
                if (kind == NN_FFN_RELU) h = h > 0 ? h : 0;
                else if (kind == NN_FFN_GELU) h = 0.5 * h * (1 + erf(h / sqrt(2)));
                else h = h / (1 + exp(-h)) * (w3[j] * xs[i]);
                want += w2[j] * h;
            }
            cr_assert_float_eq(y->data[i], want, 1e-6, "%s(%g) = %g, want %g", name, xs[i], y->data[i], want);
        }
    }
    nn_ffn_kind k;
    cr_assert(nn_ffn_parse("swiglu", &k) && k == NN_FFN_SWIGLU && !nn_ffn_parse("tanh", &k));
    cr_assert(tz_params_find(&P, "ffn2.w3.weight") && !tz_params_find(&P, "ffn2.w1.bias"));
}

// The GELU block without dropout is one fused node (gemm epilogues); it must compute what
// linear + gelu + linear compute, values and every gradient. d_model 520 makes the products over
// d_model two or three K blocks (KC 384 or 256), so the epilogue runs after the last one only.
// The epilogue's GELU (AVX-512 where the CPU has it) and tz_gelu (fastmath.h) are each within
// 2.6e-7 of the exact function but not bit-equal, and the weight gradients sum 21 rows with
// cancellation: each tensor is compared within 1e-6 of its largest element (seen: <= 2e-7).
// d_ff 1024 gives the hidden rows their padded stride (hidden_ld in ffn.c).
static void ffn_fused_case(int F) {
    enum { R = 21, D = 520 };
    nn_ffn f;
    char fname[32];
    snprintf(fname, sizeof fname, "ffn%d", F);
    nn_ffn_init(&f, &P, fname, NN_FFN_GELU, D, F, 1, (nn_init){0}, &r);
    real *xv = malloc(sizeof(real) * R * D), *gx[2], *seed = malloc(sizeof(real) * R * D), *out[2];
    for (int i = 0; i < R * D; i++) xv[i] = tz_rng_normal(&r), seed[i] = tz_rng_normal(&r);
    tz_tensor *ws[4] = {f.w1.w, f.w1.b, f.w2.w, f.w2.b};
    real *gw[2][4];
    for (int pass = 0; pass < 2; pass++) {
        tz_graph_reset(&g);
        tz_params_zero_grad(&P);
        gx[pass] = calloc(R * D, sizeof(real));
        tz_tensor *x = tz_wrap(&g, xv, gx[pass], 2, (const int[]){R, D});
        tz_tensor *y = pass == 0 ? nn_ffn_forward(&g, &f, x)
                                 : nn_linear_forward(&g, &f.w2, tz_gelu(&g, nn_linear_forward(&g, &f.w1, x)));
        out[pass] = malloc(sizeof(real) * R * D);
        memcpy(out[pass], y->data, sizeof(real) * R * D);
        tz_backward_seed(&g, y, seed);
        for (int k = 0; k < 4; k++)
            gw[pass][k] = memcpy(malloc(sizeof(real) * ws[k]->n), ws[k]->grad, sizeof(real) * ws[k]->n);
    }
    real *got[6] = {out[0], gx[0], gw[0][0], gw[0][1], gw[0][2], gw[0][3]};
    real *want[6] = {out[1], gx[1], gw[1][0], gw[1][1], gw[1][2], gw[1][3]};
    const int n[6] = {R * D, R * D, ws[0]->n, ws[1]->n, ws[2]->n, ws[3]->n};
    const char *name[6] = {"y", "dx", "dw1", "db1", "dw2", "db2"};
    for (int k = 0; k < 6; k++) {
        double big = 0;
        for (int i = 0; i < n[k]; i++) big = fmax(big, fabs(want[k][i]));
        for (int i = 0; i < n[k]; i++)
            cr_assert_float_eq(got[k][i], want[k][i], 1e-6 * big, "d_ff %d: %s[%d]: %.9g, want %.9g (largest %g)", F,
                               name[k], i, got[k][i], want[k][i], big);
    }
    for (int pass = 0; pass < 2; pass++) {
        free(gx[pass]), free(out[pass]);
        for (int k = 0; k < 4; k++) free(gw[pass][k]);
    }
    free(xv), free(seed);
}
Test(attention, ffn_gelu_fused_equals_unfused) {
    ffn_fused_case(40);
    ffn_fused_case(1024);
}

// ---------------------------------------------------------------------------------------------
// Incremental decoding: a decoder-only stack (2 pre-LN blocks, RoPE, final LayerNorm and a head
// to 11 logits) run one position at a time with the KV cache, after a prefill of 3, gives the
// logits of the full causal forward.
static void kv_cache_case(int pre_ln, nn_ffn_kind ffn, int rope, int cross) {
    enum { L = 2, B = 2, T = 7, C = 8, H = 2, V = 11, S = 5 };
    nn_block_config c = nn_block_defaults(C, H, 16);
    c.pre_ln = pre_ln, c.ffn = ffn, c.rope = rope, c.bias = ffn != NN_FFN_SWIGLU;
    nn_decoder_block blocks[L];
    for (int l = 0; l < L; l++) {
        char name[32];
        snprintf(name, sizeof name, "h.%d", l);
        nn_decoder_block_init(&blocks[l], &P, name, &c, cross, (nn_init){0}, &r);
    }
    nn_layernorm lnf;
    nn_layernorm_init(&lnf, &P, "ln_f", C, 1e-5);
    nn_linear head;
    nn_linear_init(&head, &P, "head", C, V, 0, (nn_init){0}, &r);
    for (int i = 0; i < P.count; i++) // biases and gains too
        if (P.t[i]->ndim == 1)
            for (int j = 0; j < P.t[i]->n; j++) P.t[i]->data[j] += 0.2 * tz_rng_normal(&r);
    static real x[B * T * C], mem[B * S * C], full[B * T * V];
    for (int i = 0; i < B * T * C; i++) x[i] = tz_rng_normal(&r);
    for (int i = 0; i < B * S * C; i++) mem[i] = tz_rng_normal(&r);
    const int mem_len[B] = {5, 3};
    const int *ml = cross ? mem_len : NULL;

    tz_graph_reset(&g);
    tz_tensor *h = tz_test_tensor(&g, 3, (const int[]){B, T, C}, x);
    tz_tensor *m = cross ? tz_test_tensor(&g, 3, (const int[]){B, S, C}, mem) : NULL;
    for (int l = 0; l < L; l++) h = nn_decoder_block_forward(&g, &blocks[l], h, m, ml, NULL);
    tz_tensor *logits = nn_linear_forward(&g, &head, nn_layernorm_forward(&g, &lnf, h));
    memcpy(full, logits->data, sizeof full);

    nn_kv_cache cache;
    nn_kv_cache_init(&cache, L, B, H, T, C / H);
    size_t capacity = 0;
    for (int pass = 0; pass < 2; pass++) { // the second pass must not grow the arena
        nn_kv_cache_reset(&cache);
        for (int t0 = 0; t0 < T;) {
            int t = t0 == 0 ? 3 : 1; // a prefill, then one position per step
            tz_graph_reset(&g); // the cache lives outside the arena
            cr_assert_eq(nn_kv_cache_len(&cache), t0);
            tz_tensor *xs = tz_empty(&g, 3, (const int[]){B, t, C});
            for (int b = 0; b < B; b++) memcpy(xs->data + b * t * C, x + (b * T + t0) * C, sizeof(real) * t * C);
            tz_tensor *mm = cross ? tz_test_tensor(&g, 3, (const int[]){B, S, C}, mem) : NULL;
            nn_block_attn a;
            for (int l = 0; l < L; l++) xs = nn_decoder_block_step(&g, &blocks[l], xs, &cache, l, mm, ml, &a);
            cr_assert(a.self->shape[2] == t && a.self->shape[3] == t0 + t);
            expect_weights(a.self, B, NULL, 1);
            tz_tensor *lg = nn_linear_forward(&g, &head, nn_layernorm_forward(&g, &lnf, xs));
            for (int b = 0; b < B; b++)
                for (int i = 0; i < t * V; i++) {
                    real want = full[(b * T + t0) * V + i], got = lg->data[(b * t) * V + i];
                    cr_assert(fabs(got - want) <= 1e-5, "b %d pos %d logit %d: cached %.7f, full %.7f", b, t0 + i / V,
                              i % V, got, want);
                }
            t0 += t;
        }
        if (pass == 0) capacity = tz_arena_capacity(&g.arena);
        else cr_assert_eq(tz_arena_capacity(&g.arena), capacity, "decoding grew the arena");
    }
    cr_assert(EXPECT_FAIL(nn_decoder_block_step(&g, &blocks[0], tz_zeros(&g, 3, (const int[]){B, 1, C}), &cache, 0,
                                                cross ? tz_test_tensor(&g, 3, (const int[]){B, S, C}, mem) : NULL, ml,
                                                NULL)));
    cr_assert_str_eq(tz_last_error(), "mha 'h.0.self_attn': KV cache full: 7 + 1 positions > Tmax 7");
    nn_kv_cache_reset(&cache);
    cr_assert_eq(nn_kv_cache_len(&cache), 0);
    nn_kv_cache_free(&cache);
}
Test(attention, kv_cache_equals_full_forward_preln_rope) {
    tz_no_grad_begin(&g);
    kv_cache_case(1, NN_FFN_GELU, 1, 0);
    tz_no_grad_end(&g);
}
Test(attention, kv_cache_equals_full_forward_postln_swiglu_cross) { kv_cache_case(0, NN_FFN_SWIGLU, 1, 1); }

// Without residuals (the ablation's model.residual = false) a block is its sublayers composed:
// pre-LN FFN(LN3(MHA(LN1(x)))), post-LN LN3(FFN(LN1(MHA(x)))).
static void no_residual_case(int pre_ln) {
    enum { B = 2, T = 5, C = 8 };
    nn_block_config c = nn_block_defaults(C, 2, 16);
    c.pre_ln = pre_ln, c.residual = 0, c.dropout = 0, c.attn_dropout = 0;
    nn_decoder_block b;
    nn_decoder_block_init(&b, &P, "nores", &c, 0, (nn_init){0}, &r);
    static real x[B * T * C];
    for (int i = 0; i < B * T * C; i++) x[i] = tz_rng_normal(&r);
    tz_tensor *in = tz_test_tensor(&g, 3, (const int[]){B, T, C}, x);
    tz_tensor *y = nn_decoder_block_forward(&g, &b, in, NULL, NULL, NULL);
    tz_tensor *h =
        nn_mha_forward(&g, &b.self_attn, pre_ln ? nn_layernorm_forward(&g, &b.ln1, in) : in, NULL, NULL, 1, NULL);
    tz_tensor *want =
        pre_ln ? nn_ffn_forward(&g, &b.ffn, nn_layernorm_forward(&g, &b.ln3, h))
               : nn_layernorm_forward(&g, &b.ln3, nn_ffn_forward(&g, &b.ffn, nn_layernorm_forward(&g, &b.ln1, h)));
    for (int i = 0; i < y->n; i++) cr_assert_float_eq(y->data[i], want->data[i], 1e-6, "element %d", i);
}
Test(attention, decoder_without_residual_preln) { no_residual_case(1); }
Test(attention, decoder_without_residual_postln) { no_residual_case(0); }

// ---------------------------------------------------------------------------------------------
// Errors: one line naming the layer and the values.

#define EXPECT_ERROR(stmt, msg) \
    do { \
        cr_assert(EXPECT_FAIL(stmt), "no error from %s", #stmt); \
        cr_assert_str_eq(tz_last_error(), msg); \
    } while (0)

Test(attention, bad_configuration_names_layer_and_values) {
    nn_mha m;
    EXPECT_ERROR(nn_mha_init(&m, &P, "attn", 10, 3, 1, (nn_init){0}, &r),
                 "mha 'attn': d_model 10 not divisible by heads 3");
    EXPECT_ERROR(nn_mha_init(&m, &P, "attn", 0, 2, 1, (nn_init){0}, &r),
                 "mha 'attn': d_model = 0, heads = 2 must be > 0");
    nn_mha_init(&m, &P, "attn", 8, 2, 1, (nn_init){0}, &r);
    tz_tensor *x = tz_zeros(&g, 3, (const int[]){2, 3, 6});
    EXPECT_ERROR(nn_mha_forward(&g, &m, x, NULL, NULL, 0, NULL), "mha 'attn': query (2,3,6) is not (B,T,8)");
    x = tz_zeros(&g, 3, (const int[]){2, 3, 8});
    tz_tensor *kv = tz_zeros(&g, 3, (const int[]){3, 4, 8});
    EXPECT_ERROR(nn_mha_forward(&g, &m, x, kv, NULL, 0, NULL),
                 "mha 'attn': query (2,3,8) and key/value (3,4,8) differ in batch");
    EXPECT_ERROR(nn_mha_forward(&g, &m, x, NULL, (const int[]){3, 0}, 0, NULL),
                 "mha 'attn': lengths[1] = 0 outside [1, 3]");
    EXPECT_ERROR(nn_attn_mask(&g, 2, 3, 3, (const int[]){4, 1}, 1), "attention mask: lengths[0] = 4 outside [1, 3]");

    nn_block_config c = nn_block_defaults(6, 4, 12);
    nn_encoder_block e;
    EXPECT_ERROR(nn_encoder_block_init(&e, &P, "enc.0", &c, (nn_init){0}, &r),
                 "encoder_block 'enc.0': d_model 6 not divisible by heads 4");
    c = nn_block_defaults(8, 2, 0);
    nn_decoder_block d;
    EXPECT_ERROR(nn_decoder_block_init(&d, &P, "dec.0", &c, 1, (nn_init){0}, &r),
                 "decoder_block 'dec.0': d_model = 8, heads = 2, d_ff = 0 must be > 0");

    c = nn_block_defaults(8, 2, 16);
    nn_decoder_block_init(&d, &P, "dec.1", &c, 1, (nn_init){0}, &r);
    EXPECT_ERROR(nn_decoder_block_forward(&g, &d, x, NULL, NULL, NULL),
                 "decoder_block 'dec.1': cross-attention needs the encoder's output");
    EXPECT_ERROR(nn_decoder_block_forward(&g, &d, x, tz_zeros(&g, 3, (const int[]){3, 5, 8}), NULL, NULL),
                 "decoder_block 'dec.1': memory (3,5,8) does not fit input (2,3,8)");

    nn_bahdanau a;
    EXPECT_ERROR(nn_bahdanau_init(&a, &P, "bah", 4, 0, 3, (nn_init){0}, &r),
                 "bahdanau 'bah': sizes dq = 4, dk = 0, da = 3 must be > 0");
    nn_bahdanau_init(&a, &P, "bah", 4, 6, 3, (nn_init){0}, &r);
    EXPECT_ERROR(nn_bahdanau_forward(&g, &a, tz_zeros(&g, 2, (const int[]){2, 4}),
                                     tz_zeros(&g, 3, (const int[]){2, 5, 4}), NULL, NULL, NULL),
                 "bahdanau 'bah': query (2,4) and keys (2,5,4) do not fit (B,4) and (B,T,6)");
    nn_luong l;
    EXPECT_ERROR(nn_luong_init(&l, &P, "luong", NN_LUONG_DOT, 4, 6, (nn_init){0}, &r),
                 "luong 'luong': dot scores need dq == dk, got dq = 4, dk = 6");
    EXPECT_ERROR(nn_sdpa(&g, tz_zeros(&g, 4, (const int[]){1, 2, 3, 4}), tz_zeros(&g, 4, (const int[]){1, 2, 5, 3}),
                         tz_zeros(&g, 4, (const int[]){1, 2, 5, 4}), NULL, 0, 0, NULL),
                 "sdpa: q (1,2,3,4), k (1,2,5,3), v (1,2,5,4) are not (..,Tq,D), (..,Tk,D), (..,Tk,Dv)");
    nn_ffn f;
    EXPECT_ERROR(nn_ffn_init(&f, &P, "ffn", NN_FFN_GELU, 8, 0, 1, (nn_init){0}, &r),
                 "ffn 'ffn': d_model = 8, d_ff = 0 must be > 0, kind 1");
    EXPECT_ERROR(tz_rope(&g, tz_zeros(&g, 2, (const int[]){3, 5}), 0, 10000),
                 "rope: input (3,5) wants (.., T, D) with D even, offset 0 >= 0, base 10000 > 1");
    nn_learned_pos p;
    nn_learned_pos_init(&p, &P, "pos", 4, 8, (nn_init){0}, &r);
    EXPECT_ERROR(nn_learned_pos_forward(&g, &p, tz_zeros(&g, 3, (const int[]){1, 3, 8}), 2),
                 "learned_pos: positions [2, 5) outside max_len 4");
    nn_kv_cache kc;
    EXPECT_ERROR(nn_kv_cache_init(&kc, 2, 1, 2, 0, 4),
                 "kv_cache: layers = 2, B = 1, heads = 2, Tmax = 0, d_head = 4 must be > 0");
}

// The fused node computes what nn_sdpa computes over split heads with the same masks.
Test(attention, fused_equals_sdpa_over_split_heads) {
    enum { Bb = 2, Tq = 3, Tk = 5, C = 8, Hh = 2, D = C / Hh };
    tz_tensor *q = tz_empty(&g, 3, (const int[]){Bb, Tq, C}), *k = tz_empty(&g, 3, (const int[]){Bb, Tk, C});
    tz_tensor *v = tz_empty(&g, 3, (const int[]){Bb, Tk, C});
    tz_tensor *ts[3] = {q, k, v};
    for (int t = 0; t < 3; t++)
        for (int i = 0; i < ts[t]->n; i++) ts[t]->data[i] = (real)tz_rng_normal(&r);
    static const int lengths[Bb] = {5, 2};
    for (int causal = 0; causal < 2; causal++)
        for (int tile = 0; tile <= 2; tile++) { // tile 0: its own choice (one tile here)
            tz_tensor *w1, *w2;
            nn_attention_fused_tile(tile);
            tz_tensor *fused = nn_attention_fused(&g, q, k, v, Hh, lengths, causal, &w1);
            nn_attention_fused_tile(0);
            tz_tensor *sq =
                tz_permute(&g, tz_reshape(&g, q, 4, (const int[]){Bb, Tq, Hh, D}), (const int[]){0, 2, 1, 3});
            tz_tensor *sk =
                tz_permute(&g, tz_reshape(&g, k, 4, (const int[]){Bb, Tk, Hh, D}), (const int[]){0, 2, 1, 3});
            tz_tensor *sv =
                tz_permute(&g, tz_reshape(&g, v, 4, (const int[]){Bb, Tk, Hh, D}), (const int[]){0, 2, 1, 3});
            tz_tensor *ref = nn_sdpa(&g, sq, sk, sv, nn_attn_mask(&g, Bb, Tq, Tk, lengths, causal), 0, 0, &w2);
            ref = tz_permute(&g, ref, (const int[]){0, 2, 1, 3});
            for (int i = 0; i < ref->n; i++)
                cr_assert_float_eq(fused->data[i], ref->data[i], 1e-5, "causal %d tile %d, output %d", causal, tile, i);
            for (int i = 0; i < w2->n; i++)
                cr_assert_float_eq(w1->data[i], w2->data[i], 1e-6, "causal %d tile %d, weight %d", causal, tile, i);
        }
    cr_assert(EXPECT_FAIL(nn_attention_fused(&g, q, k, v, 3, NULL, 0, NULL)));
    cr_assert(strstr(tz_last_error(), "divisible by 3 heads"), "%s", tz_last_error());
}

// Self-attention from one packed projection [q k v] (B,T,3C) gives the same bits as from three
// tensors, forward and backward (each part of the packed gradient is written whole).
Test(attention, fused_qkv_equals_three_tensors) {
    enum { Bb = 2, T = 5, C = 8, Hh = 2 };
    tz_params Q;
    tz_params_init(&Q);
    tz_tensor *q = tz_param(&Q, "q", 3, (const int[]){Bb, T, C}), *k = tz_param(&Q, "k", 3, (const int[]){Bb, T, C});
    tz_tensor *v = tz_param(&Q, "v", 3, (const int[]){Bb, T, C}),
              *qkv = tz_param(&Q, "qkv", 3, (const int[]){Bb, T, 3 * C});
    tz_tensor *parts[3] = {q, k, v};
    for (int row = 0; row < Bb * T; row++)
        for (int p = 0; p < 3; p++)
            for (int j = 0; j < C; j++)
                parts[p]->data[row * C + j] = qkv->data[row * 3 * C + p * C + j] = (real)tz_rng_normal(&r);
    real seed[Bb * T * C];
    for (int i = 0; i < Bb * T * C; i++) seed[i] = (real)tz_rng_normal(&r);
    static const int lengths[Bb] = {5, 3};
    for (int causal = 0; causal < 2; causal++)
        for (int tile = 0; tile <= 2; tile += 2) {
            tz_params_zero_grad(&Q);
            tz_graph g2, g3; // one tape each: a backward walks every node before its output
            tz_graph_init(&g2, 1 << 16);
            tz_graph_init(&g3, 1 << 16);
            nn_attention_fused_tile(tile);
            tz_tensor *three = nn_attention_fused(&g2, q, k, v, Hh, lengths, causal, NULL);
            tz_tensor *packed = nn_attention_fused_qkv(&g3, qkv, Hh, lengths, causal, NULL);
            nn_attention_fused_tile(0);
            cr_assert(memcmp(three->data, packed->data, sizeof(real) * three->n) == 0, "causal %d: outputs differ",
                      causal);
            tz_backward_seed(&g2, three, seed);
            tz_backward_seed(&g3, packed, seed);
            for (int row = 0; row < Bb * T; row++)
                for (int p = 0; p < 3; p++)
                    for (int j = 0; j < C; j++)
                        cr_assert_eq(parts[p]->grad[row * C + j], qkv->grad[row * 3 * C + p * C + j],
                                     "causal %d tile %d: part %d row %d col %d", causal, tile, p, row, j);
            tz_graph_free(&g2);
            tz_graph_free(&g3);
        }
    cr_assert(EXPECT_FAIL(nn_attention_fused_qkv(&g, tz_zeros(&g, 3, (const int[]){1, 2, 10}), 2, NULL, 0, NULL)));
    cr_assert(strstr(tz_last_error(), "is not (B,T,3C)"), "%s", tz_last_error());
    tz_params_free(&Q);
}

// q, k and v as one tensor x (tiles interleave the three gradient products): x's gradient is the
// sum of the gradients of three separate copies, in tiles of 2 rows and in one tile.
Test(attention, fused_with_one_tensor_as_q_k_v) {
    enum { Bb = 2, T = 5, C = 8, Hh = 2, N = Bb * T * C };
    tz_params Q;
    tz_params_init(&Q);
    tz_tensor *x = tz_param(&Q, "x", 3, (const int[]){Bb, T, C}), *c[3];
    for (int p = 0; p < 3; p++) c[p] = tz_param(&Q, p == 0 ? "q" : p == 1 ? "k" : "v", 3, (const int[]){Bb, T, C});
    real seed[N];
    for (int i = 0; i < N; i++) {
        x->data[i] = c[0]->data[i] = c[1]->data[i] = c[2]->data[i] = (real)tz_rng_normal(&r);
        seed[i] = (real)tz_rng_normal(&r);
    }
    static const int lengths[Bb] = {5, 3};
    for (int tile = 0; tile <= 2; tile += 2) {
        tz_params_zero_grad(&Q);
        tz_graph g2, g3;
        tz_graph_init(&g2, 1 << 16);
        tz_graph_init(&g3, 1 << 16);
        nn_attention_fused_tile(tile);
        tz_tensor *one = nn_attention_fused(&g2, x, x, x, Hh, lengths, 1, NULL);
        tz_tensor *three = nn_attention_fused(&g3, c[0], c[1], c[2], Hh, lengths, 1, NULL);
        nn_attention_fused_tile(0);
        tz_backward_seed(&g2, one, seed);
        tz_backward_seed(&g3, three, seed);
        for (int i = 0; i < N; i++)
            cr_assert_float_eq(x->grad[i], c[0]->grad[i] + c[1]->grad[i] + c[2]->grad[i], 1e-5, "tile %d, element %d",
                               tile, i);
        tz_graph_free(&g2);
        tz_graph_free(&g3);
    }
    tz_params_free(&Q);
}
