// seq2seq.c: RNNsearch, Bahdanau, Cho & Bengio 2015, "Neural Machine Translation by Jointly
// Learning to Align and Translate". A bidirectional GRU encoder gives annotations
// h_j = [h->_j; h<-_j]; the decoder GRU starts from s_0 = tanh(W_s h<-_1) and at step i attends
// with e_ij = v^T tanh(W_a s_{i-1} + U_a h_j) (padded j masked), a_ij = softmax_j(e_ij),
// c_i = sum_j a_ij h_j, reads [E y_{i-1}; c_i] and gives s_i; the readout sees [s_i; c_i; E y_{i-1}].
// Keys choose Luong et al. 2015's dot or general scores (of s_{i-1}, in the same place), the GRU
// form, and the paper's maxout readout.
#include <stdlib.h>
#include <string.h>

#include "seq2seq.h"

static const cfg_key keys[] = {
    {"model", "score", CFG_STR, "additive", "attention scores: additive (Bahdanau), dot or general (Luong 2015)", 0, 0,
     "additive dot general"},
    {"model", "attn_dim", CFG_INT, "256", "additive attention: units of W_a s + U_a h", 1, 65536, NULL},
    {0},
};

static void *mt_create(const cfg *c, int Vs, int Vt, tz_params *P, tz_rng *r) {
    s2s t, *m = &t; // built here, then copied to the heap: a bad key leaks nothing
    s2s_init(m, c, 1, Vs, Vt, P, r);
    const char *score = cfg_str(c, "model", "score");
    if (!strcmp(score, "additive")) {
        m->score = S2S_ADDITIVE;
        int A = (int)cfg_int(c, "model", "attn_dim");
        if (A < 1) tz_fail("%s: [model] attn_dim = %d must be >= 1", c->path, A);
        nn_bahdanau_init(&m->bahd, P, "attention", m->D, m->C, A, (nn_init){0}, r);
    } else if (!strcmp(score, "dot") || !strcmp(score, "general")) {
        m->score = !strcmp(score, "dot") ? S2S_DOT : S2S_GENERAL;
        if (m->score == S2S_DOT && m->D != m->C)
            tz_fail("%s: [model] score = dot needs dec_hidden (%d) = 2 * hidden (%d), the annotations' size", c->path,
                    m->D, m->C);
        nn_luong_init(&m->luong, P, "attention", m->score == S2S_DOT ? NN_LUONG_DOT : NN_LUONG_GENERAL, m->D, m->C,
                      (nn_init){0}, r);
    } else {
        tz_fail("%s: [model] score = '%s' (want additive, dot or general)", c->path, score);
    }
    if (!(m = malloc(sizeof *m))) tz_fail("rnnsearch: out of memory");
    *m = t;
    return m;
}

// U_a h_j for every j, once per sentence (additive scores only).
static tz_tensor *attn_keys(tz_graph *g, const s2s *m, tz_tensor *ann) {
    return m->score == S2S_ADDITIVE ? nn_bahdanau_keys(g, &m->bahd, ann) : NULL;
}

// s (B,D), ann (B,S,C), keys (B,S,A) or NULL, len (B) -> c (B,C); *w (B,S) if asked
static tz_tensor *attend(tz_graph *g, const s2s *m, tz_tensor *s, tz_tensor *ann, tz_tensor *keys, const int *len,
                         tz_tensor **w) {
    if (m->score == S2S_ADDITIVE) // W_a s_{i-1}, then one fused node for the rest
        return nn_additive_attention_step(g, nn_linear_forward(g, &m->bahd.W, s), keys, m->bahd.v.w, ann, len, w);
    return nn_luong_forward(g, &m->luong, s, ann, len, w);
}

// src (B,S), x (B,T) -> logits (B*T, Vt)
static tz_tensor *forward(tz_graph *g, void *vm, tz_batch *b) {
    s2s *m = vm;
    int B = b->B, T = b->T;
    tz_tensor *ann, *summary, *s;
    s2s_encode(g, m, b->src, b->src_len, B, b->S, &ann, &summary, &s);
    tz_tensor *keys = attn_keys(g, m, ann);
    tz_tensor *ey = s2s_target_embed(g, m, b->x, B, T); // (T,B,E)
    // The decoder GRU reads [E y_{i-1}; c_i]: W_ih = [W_e W_c]. The embedding side of every step
    // is one product before the loop; inside it only c_i W_c^T, attention and the GRU cell.
    const nn_recurrent_weights *p = &m->dec.p[0][0];
    int G = 3 * m->D;
    tz_tensor *w_e = tz_slice(g, p->w_ih, 1, 0, m->E), *w_c = tz_slice(g, p->w_ih, 1, m->E, m->C);
    tz_tensor *xe = tz_linear(g, ey, w_e, p->b_ih); // (T,B,3D)
    // The readout of every step is one product after the loop.
    tz_tensor **sc = tz_arena_alloc(&g->arena, sizeof(tz_tensor *) * T);
    for (int t = 0; t < T; t++) {
        tz_tensor *c = attend(g, m, s, ann, keys, b->src_len, NULL);
        tz_tensor *xg =
            tz_add(g, tz_reshape(g, tz_slice(g, xe, 0, t, 1), 2, (const int[]){B, G}), tz_linear(g, c, w_c, NULL));
        s = nn_gru_cell(g, xg, s, p->w_hh, p->b_hh, m->cho);
        tz_tensor *pair[2] = {s, c};
        sc[t] = tz_concat(g, pair, 2, 1); // [s_i; c_i] (B, D+C)
    }
    tz_tensor *all = tz_reshape(g, tz_concat(g, sc, T, 0), 3, (const int[]){T, B, m->D + m->C});
    return s2s_readout_prev(g, m, all, ey, b);
}

static void mt_encode(tz_graph *g, void *vm, const int *src, const int *src_len, int B, int S, int beam) {
    s2s *m = vm;
    tz_tensor *ann, *summary, *s0;
    s2s_encode(g, m, src, src_len, B, S, &ann, &summary, &s0);
    tz_tensor *keys = attn_keys(g, m, ann);
    const int *row_src = s2s_decode_rows(m, src_len, B, S, beam);
    m->ann = s2s_expand(g, m, ann, row_src);
    m->keys = keys ? s2s_expand(g, m, keys, row_src) : NULL;
    m->s = s2s_expand(g, m, s0, row_src);
}

// prev (rows), parent (rows) or NULL -> logits (rows, Vt); *attn (rows, S)
static tz_tensor *mt_step(tz_graph *g, void *vm, const int *prev, const int *parent, tz_tensor **attn) {
    s2s *m = vm;
    tz_tensor *s = s2s_parent_state(g, m, m->s, parent);
    tz_tensor *e = nn_embedding_forward(g, &m->tgt_emb, prev, m->rows);
    tz_tensor *c = attend(g, m, s, m->ann, m->keys, m->row_len, attn);
    m->s = s2s_gru_step(g, m, e, c, s);
    tz_tensor *feat[3] = {m->s, c, e};
    return s2s_readout(g, m, tz_concat(g, feat, 3, 1));
}

const tz_model_def tz_model_rnnsearch = {
    .name = "rnnsearch",
    .paper = "Bahdanau, Cho & Bengio 2015, Neural Machine Translation by Jointly Learning to Align and Translate",
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
