// seq2seq_rnnenc.c: the RNN Encoder-Decoder of Cho et al. 2014, "Learning Phrase Representations
// using RNN Encoder-Decoder for Statistical Machine Translation" (RNNencdec in Bahdanau et al.
// 2015). A GRU encoder reads the source; its state after the last real word is the fixed summary
// c. The decoder starts from h'_0 = tanh(V' c), and c conditions every step and the readout:
// h'_t = f(h'_{t-1}, y_{t-1}, c) (the GRU reads [E y_{t-1}; c]), P(y_t) = g(h'_t, y_{t-1}, c)
// (the readout sees [h'_t; c; E y_{t-1}]). No attention, so the decoder runs as one fused
// sequence op under teacher forcing.
#include <stdlib.h>

#include "seq2seq.h"

static const cfg_key keys[] = {{0}}; // the family's keys only (s2s_keys)

static void *mt_create(const cfg *c, int Vs, int Vt, tz_params *P, tz_rng *r) {
    s2s t, *m;
    s2s_init(&t, c, 0, Vs, Vt, P, r); // on the stack first: a bad key leaks nothing
    if (!(m = malloc(sizeof *m))) tz_fail("rnnenc: out of memory");
    *m = t;
    return m;
}

// c (B,C) repeated for n steps -> (n,B,C), time-major
static tz_tensor *repeat(tz_graph *g, tz_tensor *c, int n) {
    int B = c->shape[0];
    int *ids = tz_arena_alloc(&g->arena, sizeof(int) * n * B);
    for (int i = 0; i < n * B; i++) ids[i] = i % B;
    return tz_reshape(g, tz_embedding(g, c, ids, n * B), 3, (const int[]){n, B, c->shape[1]});
}

// src (B,S), x (B,T) -> logits (B*T, Vt)
static tz_tensor *forward(tz_graph *g, void *vm, tz_batch *b) {
    s2s *m = vm;
    int B = b->B, T = b->T;
    tz_tensor *ann, *c, *s0;
    s2s_encode(g, m, b->src, b->src_len, B, b->S, &ann, &c, &s0);
    tz_tensor *ey = s2s_target_embed(g, m, b->x, B, T); // (T,B,E)
    tz_tensor *cT = repeat(g, c, T); // (T,B,C)
    tz_tensor *in[2] = {ey, cT};
    const nn_recurrent_weights *p = &m->dec.p[0][0];
    tz_tensor *h = tz_gru_seq(g, tz_concat(g, in, 2, 2), s0, p->w_ih, p->w_hh, p->b_ih, p->b_hh, m->cho, 0); // (T,B,D)
    return s2s_readout_context(g, m, h, c, cT, ey, b);
}

static void mt_encode(tz_graph *g, void *vm, const int *src, const int *src_len, int B, int S, int beam) {
    s2s *m = vm;
    tz_tensor *ann, *c, *s0;
    s2s_encode(g, m, src, src_len, B, S, &ann, &c, &s0);
    const int *row_src = s2s_decode_rows(m, src_len, B, S, beam);
    m->ctx = s2s_expand(g, m, c, row_src);
    m->s = s2s_expand(g, m, s0, row_src);
}

// prev (rows), parent (rows) or NULL -> logits (rows, Vt); no attention weights
static tz_tensor *mt_step(tz_graph *g, void *vm, const int *prev, const int *parent, tz_tensor **attn) {
    s2s *m = vm;
    tz_tensor *s = s2s_parent_state(g, m, m->s, parent);
    tz_tensor *e = nn_embedding_forward(g, &m->tgt_emb, prev, m->rows);
    if (attn) *attn = NULL;
    m->s = s2s_gru_step(g, m, e, m->ctx, s);
    tz_tensor *feat[3] = {m->s, m->ctx, e};
    return s2s_readout(g, m, tz_concat(g, feat, 3, 1));
}

const tz_model_def tz_model_rnnenc = {
    .name = "rnnenc",
    .paper = "Cho et al. 2014, Learning Phrase Representations using RNN Encoder-Decoder (RNN Encoder-Decoder)",
    .family_keys = s2s_keys,
    .keys = keys,
    .stream = 0,
    .forward = forward,
    .free = s2s_free,
    .pairs = 1,
    .mt_create = mt_create,
    .mt_encode = mt_encode,
    .mt_step = mt_step,
};
