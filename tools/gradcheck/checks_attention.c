// checks_attention.c: gradient checks of attention (Bahdanau, Luong, scaled dot-product,
// multi-head self and cross), positions (sinusoidal, learned, RoPE), feed-forward blocks (ReLU,
// GELU, SwiGLU and its SiLU op) and transformer blocks (pre/post-LN encoder and decoder), on tiny
// shapes with several time steps and the masks on: causal and padding (lengths shorter than T).
//
// Every layer's parameters are redrawn N(0, 0.5) after its init (zero biases and unit LayerNorm
// gains would leave terms of the gradient untested). The KV-cache path is not checked here: it
// cuts the gradient at the cache by design (inference); tests/test_attention.c proves it equals
// the full causal forward.
#include <stdlib.h>

#include "gradcheck.h"
#include "nn.h"

enum { B = 2, T = 4, S = 5 };
static const int len_T[B] = {4, 2}; // padding: the second sequence has 2 real positions of 4
static const int len_S[B] = {3, 5};
static const int len_small[B] = {3, 2}; // for T = 3

typedef struct {
    tz_tensor *x, *y, *z, *mem;
    nn_bahdanau bah;
    nn_luong luong;
    nn_mha mha;
    nn_learned_pos pos;
    nn_ffn ffn;
    nn_encoder_block enc;
    nn_decoder_block dec;
} state;

static tz_tensor *input(tz_params *P, tz_rng *r, const char *name, int ndim, const int *shape) {
    tz_tensor *t = tz_param(P, name, ndim, shape);
    tz_fill_normal(t, r, 1);
    return t;
}
#define IN(name, ...) input(P, r, name, sizeof((int[]){__VA_ARGS__}) / sizeof(int), (const int[]){__VA_ARGS__})

// Redraws every parameter declared from index `from` on (the layer's, not the inputs').
static void redraw(tz_params *P, tz_rng *r, int from) {
    for (int i = from; i < P->count; i++) tz_fill_normal(P->t[i], r, 0.5);
}
static state *new_state(void) { return calloc(1, sizeof(state)); }
#define ST ((state *)st)

// ---- recurrent-era attention: s (B,Dq), h (B,T,Dk) ----
static void *bahdanau_setup(tz_params *P, tz_rng *r) {
    state *s = new_state();
    s->x = IN("s", B, 3);
    s->y = IN("h", B, T, 5);
    int k = P->count;
    nn_bahdanau_init(&s->bah, P, "bah", 3, 5, 4, (nn_init){0}, r);
    redraw(P, r, k);
    return s;
}
static tz_tensor *bahdanau_fw(tz_graph *g, void *st) {
    return nn_bahdanau_forward(g, &ST->bah, ST->x, ST->y, NULL, len_T, NULL);
}
// A decoder's use: keys computed once, two steps attend with them.
static tz_tensor *bahdanau_keys_fw(tz_graph *g, void *st) {
    tz_tensor *keys = nn_bahdanau_keys(g, &ST->bah, ST->y);
    tz_tensor *c1 = nn_bahdanau_forward(g, &ST->bah, ST->x, ST->y, keys, len_T, NULL);
    tz_tensor *c2 = nn_bahdanau_forward(g, &ST->bah, tz_tanh(g, ST->x), ST->y, keys, NULL, NULL);
    return tz_mul(g, c1, c2);
}

static void *luong_setup(tz_params *P, tz_rng *r, nn_luong_score score, int dq) {
    state *s = new_state();
    s->x = IN("s", B, dq);
    s->y = IN("h", B, T, 4);
    int k = P->count;
    nn_luong_init(&s->luong, P, "luong", score, dq, 4, (nn_init){0}, r);
    redraw(P, r, k);
    return s;
}
static void *luong_dot_setup(tz_params *P, tz_rng *r) { return luong_setup(P, r, NN_LUONG_DOT, 4); }
static void *luong_general_setup(tz_params *P, tz_rng *r) { return luong_setup(P, r, NN_LUONG_GENERAL, 3); }
static tz_tensor *luong_fw(tz_graph *g, void *st) { return nn_luong_forward(g, &ST->luong, ST->x, ST->y, len_T, NULL); }

// ---- scaled dot-product attention on (B,H,T,D) ----
static void *sdpa_setup(tz_params *P, tz_rng *r) {
    state *s = new_state();
    s->x = IN("q", B, 2, T, 3);
    s->y = IN("k", B, 2, T, 3);
    s->z = IN("v", B, 2, T, 2);
    return s;
}
static void *sdpa_cross_setup(tz_params *P, tz_rng *r) { // Tq = 3 queries over Tk = 5 keys
    state *s = new_state();
    s->x = IN("q", B, 2, 3, 4);
    s->y = IN("k", B, 2, S, 4);
    s->z = IN("v", B, 2, S, 3);
    return s;
}
static tz_tensor *sdpa_padding_fw(tz_graph *g, void *st) {
    return nn_sdpa(g, ST->x, ST->y, ST->z, nn_attn_mask(g, B, 3, S, len_S, 0), 0, 0, NULL);
}
static tz_tensor *sdpa_causal_fw(tz_graph *g, void *st) { return nn_sdpa(g, ST->x, ST->y, ST->z, NULL, 1, 0, NULL); }
static tz_tensor *sdpa_causal_padding_fw(tz_graph *g, void *st) {
    return nn_sdpa(g, ST->x, ST->y, ST->z, nn_attn_mask(g, B, T, T, len_T, 1), 0, 0, NULL);
}
// Causal over more keys than queries (the queries are the last 3 of 5 positions, as in a cache),
// the mask given separately from `causal`, and dropout on the weights.
static tz_tensor *sdpa_offset_dropout_fw(tz_graph *g, void *st) {
    return nn_sdpa(g, ST->x, ST->y, ST->z, nn_attn_mask(g, B, 3, S, len_S, 0), 1, 0.3, NULL);
}

// ---- multi-head attention: x (B,T,6), 3 heads of 2 ----
static void *mha_setup_full(tz_params *P, tz_rng *r, int cross, int bias) {
    state *s = new_state();
    s->x = IN("x", B, cross ? 3 : T, 6);
    if (cross) s->mem = IN("mem", B, S, 6);
    int k = P->count;
    nn_mha_init(&s->mha, P, "mha", 6, 3, bias, (nn_init){0}, r);
    redraw(P, r, k);
    return s;
}
static void *mha_setup(tz_params *P, tz_rng *r) { return mha_setup_full(P, r, 0, 1); }
static void *mha_nobias_setup(tz_params *P, tz_rng *r) { return mha_setup_full(P, r, 0, 0); }
static void *mha_cross_setup(tz_params *P, tz_rng *r) { return mha_setup_full(P, r, 1, 1); }
static tz_tensor *mha_padding_fw(tz_graph *g, void *st) {
    return nn_mha_forward(g, &ST->mha, ST->x, NULL, len_T, 0, NULL);
}
static tz_tensor *mha_causal_padding_fw(tz_graph *g, void *st) {
    return nn_mha_forward(g, &ST->mha, ST->x, NULL, len_T, 1, NULL);
}
static tz_tensor *mha_rope_fw(tz_graph *g, void *st) {
    ST->mha.rope = 1;
    tz_tensor *y = nn_mha_forward(g, &ST->mha, ST->x, NULL, NULL, 1, NULL);
    ST->mha.rope = 0;
    return y;
}
static tz_tensor *mha_cross_fw(tz_graph *g, void *st) {
    return nn_mha_forward(g, &ST->mha, ST->x, ST->mem, len_S, 0, NULL);
}
static tz_tensor *mha_dropout_fw(tz_graph *g, void *st) {
    ST->mha.dropout = 0.25;
    tz_tensor *y = nn_mha_forward(g, &ST->mha, ST->x, NULL, len_T, 1, NULL);
    ST->mha.dropout = 0;
    return y;
}

// ---- positions ----
static void *rope_setup(tz_params *P, tz_rng *r) {
    state *s = new_state();
    s->x = IN("x", B, 2, T, 6);
    return s;
}
static tz_tensor *rope_fw(tz_graph *g, void *st) { return tz_rope(g, ST->x, 3, 10000); }
// Gradients meet in the product, as in q.k: checks the rotation's transpose on both sides.
static tz_tensor *rope_dot_fw(tz_graph *g, void *st) {
    tz_tensor *q = tz_rope(g, ST->x, 0, 100), *k = tz_rope(g, tz_tanh(g, ST->x), 0, 100);
    return tz_matmul(g, q, k, 0, 1);
}
static void *sin_setup(tz_params *P, tz_rng *r) {
    state *s = new_state();
    s->x = IN("x", B, 3, 5);
    return s;
}
static tz_tensor *sinusoidal_fw(tz_graph *g, void *st) { return tz_tanh(g, nn_sinusoidal_forward(g, ST->x, 2)); }
static void *learned_setup(tz_params *P, tz_rng *r) {
    state *s = new_state();
    s->x = IN("x", B, 3, 4);
    nn_learned_pos_init(&s->pos, P, "pos", 6, 4, (nn_init){0}, r);
    redraw(P, r, 1);
    return s;
}
static tz_tensor *learned_fw(tz_graph *g, void *st) {
    return tz_tanh(g, nn_learned_pos_forward(g, &ST->pos, ST->x, 2));
}

// ---- feed-forward ----
static void *ffn_setup_kind(tz_params *P, tz_rng *r, nn_ffn_kind kind, int bias) {
    state *s = new_state();
    s->x = IN("x", B, 3, 4);
    nn_ffn_init(&s->ffn, P, "ffn", kind, 4, 6, bias, (nn_init){0}, r);
    redraw(P, r, 1);
    return s;
}
static void *ffn_relu_setup(tz_params *P, tz_rng *r) { return ffn_setup_kind(P, r, NN_FFN_RELU, 1); }
static void *ffn_gelu_setup(tz_params *P, tz_rng *r) { return ffn_setup_kind(P, r, NN_FFN_GELU, 1); }
static void *ffn_gelu_nobias_setup(tz_params *P, tz_rng *r) { return ffn_setup_kind(P, r, NN_FFN_GELU, 0); }
static void *ffn_swiglu_setup(tz_params *P, tz_rng *r) { return ffn_setup_kind(P, r, NN_FFN_SWIGLU, 0); }
// GELU without dropout is the fused ffn_gelu node; with dropout, linear + gelu + dropout + linear.
static tz_tensor *ffn_fw(tz_graph *g, void *st) { return nn_ffn_forward(g, &ST->ffn, ST->x); }
static tz_tensor *ffn_dropout_fw(tz_graph *g, void *st) {
    ST->ffn.dropout = 0.25;
    tz_tensor *y = nn_ffn_forward(g, &ST->ffn, ST->x);
    ST->ffn.dropout = 0;
    return y;
}
// A residual added in the last product (the fused GELU node's epilogue; linear_add otherwise);
// x as its own residual too (post-LN).
static tz_tensor *ffn_residual_fw(tz_graph *g, void *st) { return nn_ffn_forward_add(g, &ST->ffn, ST->x, ST->y); }
static tz_tensor *ffn_residual_self_fw(tz_graph *g, void *st) { return nn_ffn_forward_add(g, &ST->ffn, ST->x, ST->x); }
static void *ffn_residual_setup_kind(tz_params *P, tz_rng *r, nn_ffn_kind kind) {
    state *s = new_state();
    s->x = IN("x", B, 3, 4);
    s->y = IN("r", B, 3, 4);
    nn_ffn_init(&s->ffn, P, "ffn", kind, 4, 6, 1, (nn_init){0}, r);
    redraw(P, r, 2);
    return s;
}
static void *ffn_gelu_residual_setup(tz_params *P, tz_rng *r) { return ffn_residual_setup_kind(P, r, NN_FFN_GELU); }
static void *ffn_relu_residual_setup(tz_params *P, tz_rng *r) { return ffn_residual_setup_kind(P, r, NN_FFN_RELU); }
static void *silu_setup(tz_params *P, tz_rng *r) {
    state *s = new_state();
    s->x = IN("x", 3, 5);
    for (int i = 0; i < 15; i++) s->x->data[i] *= 3; // both tails of the sigmoid
    return s;
}
static tz_tensor *silu_fw(tz_graph *g, void *st) { return tz_silu(g, ST->x); }

// ---- blocks: d_model 4, 2 heads, d_ff 6, T = 3 ----
static nn_block_config config(int pre_ln, nn_ffn_kind ffn, real dropout, int rope) {
    nn_block_config c = nn_block_defaults(4, 2, 6);
    c.pre_ln = pre_ln, c.ffn = ffn, c.dropout = dropout, c.attn_dropout = dropout, c.rope = rope;
    c.bias = ffn != NN_FFN_SWIGLU;
    return c;
}
static void *encoder_setup(tz_params *P, tz_rng *r, nn_block_config c) {
    state *s = new_state();
    s->x = IN("x", B, 3, 4);
    nn_encoder_block_init(&s->enc, P, "enc", &c, (nn_init){0}, r);
    redraw(P, r, 1);
    return s;
}
static void *enc_post_setup(tz_params *P, tz_rng *r) { return encoder_setup(P, r, config(0, NN_FFN_RELU, 0.1, 0)); }
static void *enc_pre_setup(tz_params *P, tz_rng *r) { return encoder_setup(P, r, config(1, NN_FFN_GELU, 0, 0)); }
// Post-LN without dropout: each sublayer's input is x itself, and its residual too.
static void *enc_post_fused_setup(tz_params *P, tz_rng *r) { return encoder_setup(P, r, config(0, NN_FFN_GELU, 0, 0)); }
static tz_tensor *encoder_fw(tz_graph *g, void *st) {
    return nn_encoder_block_forward(g, &ST->enc, ST->x, len_small, NULL);
}

static void *decoder_setup(tz_params *P, tz_rng *r, nn_block_config c, int cross) {
    state *s = new_state();
    s->x = IN("x", B, 3, 4);
    if (cross) s->mem = IN("mem", B, S, 4);
    int k = P->count;
    nn_decoder_block_init(&s->dec, P, "dec", &c, cross, (nn_init){0}, r);
    redraw(P, r, k);
    return s;
}
static void *dec_pre_cross_setup(tz_params *P, tz_rng *r) {
    return decoder_setup(P, r, config(1, NN_FFN_GELU, 0, 0), 1);
}
static void *dec_post_cross_setup(tz_params *P, tz_rng *r) {
    return decoder_setup(P, r, config(0, NN_FFN_RELU, 0.1, 0), 1);
}
static void *dec_only_setup(tz_params *P, tz_rng *r) { return decoder_setup(P, r, config(1, NN_FFN_SWIGLU, 0, 1), 0); }
static void *dec_only_nores_setup(tz_params *P, tz_rng *r) { // residual off (the ablation), pre- then post-LN
    nn_block_config c = config(1, NN_FFN_GELU, 0, 0);
    c.residual = 0;
    return decoder_setup(P, r, c, 0);
}
static void *dec_post_nores_setup(tz_params *P, tz_rng *r) {
    nn_block_config c = config(0, NN_FFN_RELU, 0, 0);
    c.residual = 0;
    return decoder_setup(P, r, c, 1);
}
static tz_tensor *decoder_fw(tz_graph *g, void *st) {
    return nn_decoder_block_forward(g, &ST->dec, ST->x, ST->mem, ST->mem ? len_S : NULL, NULL);
}

// The fused multi-head node directly: q (B,T,6), k and v (B,S,6), 2 heads, queries the last T of
// S positions, causal and padding together, and without masks.
static void *fused_setup(tz_params *P, tz_rng *r) {
    state *st = new_state();
    st->x = IN("q", B, T, 6);
    st->y = IN("k", B, S, 6);
    st->z = IN("v", B, S, 6);
    return st;
}
static const int len_fused[B] = {5, 3};
static tz_tensor *fused_masked_fw(tz_graph *g, void *st) {
    return nn_attention_fused(g, ST->x, ST->y, ST->z, 2, len_fused, 1, NULL);
}
static tz_tensor *fused_plain_fw(tz_graph *g, void *st) {
    return nn_attention_fused(g, ST->x, ST->y, ST->z, 2, NULL, 0, NULL);
}
// Self-attention from one packed projection [q k v] (B,S,18), causal with padding.
static void *fused_qkv_setup(tz_params *P, tz_rng *r) {
    state *st = new_state();
    st->x = IN("qkv", B, S, 18);
    return st;
}
static tz_tensor *fused_qkv_fw(tz_graph *g, void *st) {
    return nn_attention_fused_qkv(g, ST->x, 2, len_fused, 1, NULL);
}
// The same two in query tiles of 2 rows (the tile is read when the node is recorded).
static tz_tensor *fused_tiled_fw(tz_graph *g, void *st) {
    nn_attention_fused_tile(2);
    tz_tensor *o = fused_masked_fw(g, st);
    nn_attention_fused_tile(0);
    return o;
}
static tz_tensor *fused_qkv_tiled_fw(tz_graph *g, void *st) {
    nn_attention_fused_tile(2);
    tz_tensor *o = fused_qkv_fw(g, st);
    nn_attention_fused_tile(0);
    return o;
}

#define CHECK(name, setup, fw) \
    { name, setup, fw, free, 0, 0, NULL, NULL }
const tz_check tz_attention_checks[] = {
    CHECK("attn/fused_causal_padding", fused_setup, fused_masked_fw),
    CHECK("attn/fused_unmasked", fused_setup, fused_plain_fw),
    CHECK("attn/fused_qkv_causal_padding", fused_qkv_setup, fused_qkv_fw),
    CHECK("attn/fused_tiled", fused_setup, fused_tiled_fw),
    CHECK("attn/fused_qkv_tiled", fused_qkv_setup, fused_qkv_tiled_fw),
    CHECK("attn/bahdanau", bahdanau_setup, bahdanau_fw),
    CHECK("attn/bahdanau_keys", bahdanau_setup, bahdanau_keys_fw),
    CHECK("attn/luong_dot", luong_dot_setup, luong_fw),
    CHECK("attn/luong_general", luong_general_setup, luong_fw),
    CHECK("attn/sdpa_padding", sdpa_cross_setup, sdpa_padding_fw),
    CHECK("attn/sdpa_causal", sdpa_setup, sdpa_causal_fw),
    CHECK("attn/sdpa_causal_padding", sdpa_setup, sdpa_causal_padding_fw),
    CHECK("attn/sdpa_offset_dropout", sdpa_cross_setup, sdpa_offset_dropout_fw),
    CHECK("attn/mha_self_padding", mha_setup, mha_padding_fw),
    CHECK("attn/mha_self_causal_padding", mha_setup, mha_causal_padding_fw),
    CHECK("attn/mha_self_nobias", mha_nobias_setup, mha_causal_padding_fw),
    CHECK("attn/mha_self_rope", mha_setup, mha_rope_fw),
    CHECK("attn/mha_self_dropout", mha_setup, mha_dropout_fw),
    CHECK("attn/mha_cross", mha_cross_setup, mha_cross_fw),
    CHECK("pos/rope", rope_setup, rope_fw),
    CHECK("pos/rope_dot", rope_setup, rope_dot_fw),
    CHECK("pos/sinusoidal", sin_setup, sinusoidal_fw),
    CHECK("pos/learned", learned_setup, learned_fw),
    CHECK("ffn/silu", silu_setup, silu_fw),
    CHECK("ffn/relu", ffn_relu_setup, ffn_fw),
    CHECK("ffn/gelu", ffn_gelu_setup, ffn_fw),
    CHECK("ffn/gelu_nobias", ffn_gelu_nobias_setup, ffn_fw),
    CHECK("ffn/gelu_dropout", ffn_gelu_setup, ffn_dropout_fw),
    CHECK("ffn/swiglu", ffn_swiglu_setup, ffn_fw),
    CHECK("ffn/gelu_residual", ffn_gelu_residual_setup, ffn_residual_fw),
    CHECK("ffn/gelu_residual_self", ffn_gelu_residual_setup, ffn_residual_self_fw),
    CHECK("ffn/relu_residual", ffn_relu_residual_setup, ffn_residual_fw),
    CHECK("block/encoder_postln", enc_post_setup, encoder_fw),
    CHECK("block/encoder_preln", enc_pre_setup, encoder_fw),
    CHECK("block/encoder_postln_no_dropout", enc_post_fused_setup, encoder_fw),
    CHECK("block/decoder_preln_cross", dec_pre_cross_setup, decoder_fw),
    CHECK("block/decoder_postln_cross", dec_post_cross_setup, decoder_fw),
    CHECK("block/decoder_only_rope_swiglu", dec_only_setup, decoder_fw),
    CHECK("block/decoder_only_no_residual", dec_only_nores_setup, decoder_fw),
    CHECK("block/decoder_postln_cross_no_residual", dec_post_nores_setup, decoder_fw),
};
const int tz_n_attention_checks = sizeof tz_attention_checks / sizeof *tz_attention_checks;
