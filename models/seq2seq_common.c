// seq2seq_common.c: the encoder, decoder step, readout and decoding state that the RNN
// Encoder-Decoder (Cho et al. 2014) and RNNsearch (Bahdanau et al. 2015) share.
#include "seq2seq.h"

#include <stdlib.h>
#include <string.h>

const cfg_key s2s_keys[] = {
    {"model", "embed", CFG_INT, "128", "embedding size (source and target)", 1, 65536, NULL},
    {"model", "hidden", CFG_INT, "256", "encoder GRU units (per direction for RNNsearch)", 1, 65536, NULL},
    {"model", "dec_hidden", CFG_INT, "256", "decoder GRU units", 1, 65536, NULL},
    {"model", "form", CFG_STR, "cudnn", "GRU form: cho (Cho 2014: U (r*h)) or cudnn (PyTorch: r*(U h + b))", 0, 0,
     "cho cudnn"},
    {"model", "readout", CFG_STR, "linear", "linear ([s; c; E y] -> vocabulary) or maxout (Bahdanau's deep output)", 0,
     0, "linear maxout"},
    {"model", "maxout_units", CFG_INT, "256", "maxout readout: units after the max over pairs", 1, 65536, NULL},
    {"model", "dropout", CFG_FLOAT, "0", "dropout on the embeddings and the readout's input", 0, 0.99, NULL},
    {"model", "skip_padding", CFG_BOOL, "true",
     "readout only at real targets: logits (N,V) with b->targets compacted (same loss, less work; false: (B*T,V))", 0,
     0, NULL},
    {0},
};

void s2s_init(s2s *m, const cfg *c, int attention, int Vs, int Vt, tz_params *P, tz_rng *r) {
    memset(m, 0, sizeof *m);
    m->attention = attention;
    m->E = (int)cfg_int(c, "model", "embed");
    m->H = (int)cfg_int(c, "model", "hidden");
    m->D = (int)cfg_int(c, "model", "dec_hidden");
    m->Vs = Vs, m->Vt = Vt;
    const char *keys[] = {"embed", "hidden", "dec_hidden"};
    const int vals[] = {m->E, m->H, m->D};
    for (int i = 0; i < 3; i++)
        if (vals[i] < 1) tz_fail("%s: [model] %s = %d must be >= 1", c->path, keys[i], vals[i]);
    if (Vs <= TZ_UNK || Vt <= TZ_UNK)
        tz_fail("%s: vocabularies of %d (source) and %d (target) words: each needs <pad> <bos> <eos> <unk> and more",
                c->path, Vs, Vt);
    const char *form = cfg_str(c, "model", "form");
    m->cho = !strcmp(form, "cho");
    const char *readout = cfg_str(c, "model", "readout");
    if (!strcmp(readout, "maxout")) {
        m->maxout = (int)cfg_int(c, "model", "maxout_units");
        if (m->maxout < 1) tz_fail("%s: [model] maxout_units = %d must be >= 1", c->path, m->maxout);
    }
    m->dropout = (real)cfg_float(c, "model", "dropout");
    m->skip_padding = cfg_bool(c, "model", "skip_padding");
    if (!(m->dropout >= 0 && m->dropout < 1))
        tz_fail("%s: [model] dropout = %g must be in [0,1)", c->path, (double)m->dropout);
    m->C = attention ? 2 * m->H : m->H;

    nn_embedding_init(&m->src_emb, P, "src_embed", Vs, m->E, (nn_init){0}, r);
    nn_embedding_init(&m->tgt_emb, P, "tgt_embed", Vt, m->E, (nn_init){0}, r);
    nn_recurrent_config rc = nn_recurrent_defaults(NN_CELL_GRU, m->E, m->H);
    rc.bidirectional = attention, rc.gru_cho = m->cho;
    nn_recurrent_init(&m->enc, P, "encoder", &rc, r);
    nn_recurrent_config dc = nn_recurrent_defaults(NN_CELL_GRU, m->E + m->C, m->D);
    dc.gru_cho = m->cho;
    nn_recurrent_init(&m->dec, P, "decoder", &dc, r);
    nn_linear_init(&m->init, P, "init_state", m->H, m->D, 1, (nn_init){0}, r);
    int F = m->D + m->C + m->E;
    if (m->maxout) {
        nn_linear_init(&m->pre, P, "readout", F, 2 * m->maxout, 1, (nn_init){0}, r);
        nn_linear_init(&m->out, P, "out", m->maxout, Vt, 1, (nn_init){0}, r);
    } else {
        nn_linear_init(&m->out, P, "out", F, Vt, 1, (nn_init){0}, r);
    }
}

void s2s_free(void *vm) {
    s2s *m = vm;
    free(m->row_len);
    free(m->row_idx);
    free(m);
}

// One direction of the encoder over x (S,B,E) -> (S,B,H).
static tz_tensor *enc_gru(tz_graph *g, const s2s *m, tz_tensor *x, int dir) {
    const nn_recurrent_weights *p = &m->enc.p[0][dir];
    return tz_gru_seq(g, x, NULL, p->w_ih, p->w_hh, p->b_ih, p->b_hh, m->cho, 0);
}

// src (B,S), len (B) -> *ann (B,S,2H) or *summary (B,H); *s0 (B,D)
void s2s_encode(tz_graph *g, s2s *m, const int *src, const int *len, int B, int S, tz_tensor **ann, tz_tensor **summary,
                tz_tensor **s0) {
    if (B < 1 || S < 1) tz_fail("seq2seq: a batch of %d sources of length %d (want >= 1 each)", B, S);
    for (int b = 0; b < B; b++)
        if (len[b] < 1 || len[b] > S) tz_fail("seq2seq: source length src_len[%d] = %d outside [1, %d]", b, len[b], S);
    int n = S * B, E = m->E, H = m->H;
    int *ids = tz_arena_alloc(&g->arena, sizeof(int) * n);
    for (int t = 0; t < S; t++)
        for (int b = 0; b < B; b++) ids[t * B + b] = src[b * S + t];
    tz_tensor *x = tz_dropout(g, nn_embedding_forward(g, &m->src_emb, ids, n), m->dropout); // (S*B,E)
    tz_tensor *fwd = enc_gru(g, m, tz_reshape(g, x, 3, (const int[]){S, B, E}), 0); // (S,B,H)
    int *idx = tz_arena_alloc(&g->arena, sizeof(int) * n);
    if (!m->attention) {
        // Cho et al. 2014: c is the encoder's state after the last real word of each sentence
        // (the padding after it never reaches that state); h'_0 = tanh(V' c).
        for (int b = 0; b < B; b++) idx[b] = (len[b] - 1) * B + b;
        tz_tensor *c = tz_embedding(g, tz_reshape(g, fwd, 2, (const int[]){n, H}), idx, B); // (B,H)
        *ann = NULL;
        *summary = c;
        *s0 = tz_tanh(g, nn_linear_forward(g, &m->init, c));
        return;
    }
    // Bahdanau et al. 2015, A.2.1: the backward RNN reads each sentence from its last real word
    // to its first. Reversing every sentence within its length (padding stays at the end) lets
    // the fused op run it forwards; the same index map (an involution) puts the states back.
    for (int t = 0; t < S; t++)
        for (int b = 0; b < B; b++) idx[t * B + b] = (t < len[b] ? len[b] - 1 - t : t) * B + b;
    tz_tensor *xr = tz_reshape(g, tz_embedding(g, x, idx, n), 3, (const int[]){S, B, E});
    tz_tensor *br = enc_gru(g, m, xr, 1);
    tz_tensor *bwd =
        tz_reshape(g, tz_embedding(g, tz_reshape(g, br, 2, (const int[]){n, H}), idx, n), 3, (const int[]){S, B, H});
    tz_tensor *both[2] = {fwd, bwd};
    *ann = tz_transpose(g, tz_concat(g, both, 2, 2), 0, 1); // h_j = [h->_j; h<-_j]: (B,S,2H)
    *summary = NULL;
    // s_0 = tanh(W_s h<-_1) (A.2.2): the backward state at the first source word.
    tz_tensor *first = tz_reshape(g, tz_slice(g, bwd, 0, 0, 1), 2, (const int[]){B, H});
    *s0 = tz_tanh(g, nn_linear_forward(g, &m->init, first));
}

// e (B,E), c (B,C), s (B,D) -> (B,D)
tz_tensor *s2s_gru_step(tz_graph *g, const s2s *m, tz_tensor *e, tz_tensor *c, tz_tensor *s) {
    tz_tensor *in[2] = {e, c};
    const nn_recurrent_weights *p = &m->dec.p[0][0];
    tz_tensor *xg = tz_linear(g, tz_concat(g, in, 2, 1), p->w_ih, p->b_ih); // (B,3D)
    return nn_gru_cell(g, xg, s, p->w_hh, p->b_hh, m->cho);
}

// feat (N, D+C+E) -> (N, Vt)
tz_tensor *s2s_readout(tz_graph *g, const s2s *m, tz_tensor *feat) {
    feat = tz_dropout(g, feat, m->dropout);
    if (!m->maxout) return nn_linear_forward(g, &m->out, feat);
    // Bahdanau et al. 2015, A.2.2 (Goodfellow et al. 2013): t_i = max over pairs of t~_i; the
    // pairs are unit k and unit k + L. max(a, b) = b + relu(a - b).
    tz_tensor *z = nn_linear_forward(g, &m->pre, feat);
    int L = m->maxout;
    tz_tensor *a = tz_slice(g, z, 1, 0, L), *b = tz_slice(g, z, 1, L, L);
    return nn_linear_forward(g, &m->out, tz_add(g, b, tz_relu(g, tz_sub(g, a, b))));
}

// x (B,T) -> (T,B,E)
tz_tensor *s2s_target_embed(tz_graph *g, const s2s *m, const int *x, int B, int T) {
    int *ids = tz_arena_alloc(&g->arena, sizeof(int) * B * T);
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) ids[t * B + b] = x[b * T + t];
    tz_tensor *e = tz_dropout(g, nn_embedding_forward(g, &m->tgt_emb, ids, B * T), m->dropout);
    return tz_reshape(g, e, 3, (const int[]){T, B, m->E});
}

// The readout's rows of a (T,B) batch: into idx (time-major positions t*B + i) in batch-major
// order, with skip_padding only those whose target is real; sets b->targets, b->n_targets.
static int readout_rows(tz_graph *g, const s2s *m, tz_batch *b, int T, int B, int **idx_out) {
    int n = 0;
    // One gather puts the rows in batch-major order (it is the transpose), and with skip_padding
    // leaves out the padded positions, whose logits the loss would ignore: the readout over the
    // target vocabulary is most of the model's work.
    int *idx = tz_arena_alloc(&g->arena, sizeof(int) * B * T);
    int *kept = m->skip_padding ? tz_arena_alloc(&g->arena, sizeof(int) * B * T) : NULL;
    for (int i = 0; i < B; i++)
        for (int t = 0; t < T; t++) {
            if (kept && b->y[i * T + t] == TZ_IGNORE) continue;
            if (kept) kept[n] = b->y[i * T + t];
            idx[n++] = t * B + i;
        }
    if (n == 0) { // (skip_padding) nothing to predict: keep one row, which the loss ignores
        idx[0] = 0, kept[0] = TZ_IGNORE;
        n = 1;
    }
    b->targets = kept ? kept : b->y;
    b->n_targets = n;
    *idx_out = idx;
    return n;
}

// feat (T,B,F) -> (B*T, Vt) or (N, Vt)
tz_tensor *s2s_readout_tm(tz_graph *g, const s2s *m, tz_tensor *feat, tz_batch *b) {
    int T = feat->shape[0], B = feat->shape[1], F = feat->shape[2], *idx;
    int n = readout_rows(g, m, b, T, B, &idx);
    return s2s_readout(g, m, tz_embedding(g, tz_reshape(g, feat, 2, (const int[]){T * B, F}), idx, n));
}

// Whether the readout may compute a block shared by rows once (nn_context_linear): not with
// maxout (it is not one linear map), nor under dropout while training (each row its own mask).
static int shared_blocks_ok(const tz_graph *g, const s2s *m) { return !m->maxout && !(m->dropout > 0 && g->training); }

// h (T,B,D), c (B,C), cT (T,B,C) c repeated, ey (T,B,E) -> as s2s_readout_tm of [h; cT; ey]
tz_tensor *s2s_readout_context(tz_graph *g, const s2s *m, tz_tensor *h, tz_tensor *c, tz_tensor *cT, tz_tensor *ey,
                               tz_batch *b) {
    int T = h->shape[0], B = h->shape[1], *idx;
    if (!shared_blocks_ok(g, m)) {
        tz_tensor *feat[3] = {h, cT, ey};
        return s2s_readout_tm(g, m, tz_concat(g, feat, 3, 2), b);
    }
    int n = readout_rows(g, m, b, T, B, &idx);
    int *seq = tz_arena_alloc(&g->arena, sizeof(int) * n);
    for (int r = 0; r < n; r++) seq[r] = idx[r] % B;
    tz_tensor *hr = tz_embedding(g, tz_reshape(g, h, 2, (const int[]){T * B, m->D}), idx, n);
    tz_tensor *er = tz_embedding(g, tz_reshape(g, ey, 2, (const int[]){T * B, m->E}), idx, n);
    return nn_context_linear(g, hr, c, er, seq, m->out.w, m->out.b);
}

// sc (T,B,D+C) the [s_i; c_i] rows, ey (T,B,E) = E y_{i-1} -> as s2s_readout_tm of [sc; ey]
tz_tensor *s2s_readout_prev(tz_graph *g, const s2s *m, tz_tensor *sc, tz_tensor *ey, tz_batch *b) {
    int T = sc->shape[0], B = sc->shape[1], *idx;
    if (!shared_blocks_ok(g, m)) {
        tz_tensor *feat[2] = {sc, ey};
        return s2s_readout_tm(g, m, tz_concat(g, feat, 2, 2), b);
    }
    int n = readout_rows(g, m, b, T, B, &idx), V = m->tgt_emb.w->shape[0], U = 0;
    // E y_{i-1} W_e^T once per distinct previous word of the batch (<bos> starts every sentence).
    int *group = tz_arena_alloc(&g->arena, sizeof(int) * V), *words = tz_arena_alloc(&g->arena, sizeof(int) * n);
    int *seq = tz_arena_alloc(&g->arena, sizeof(int) * n);
    for (int v = 0; v < V; v++) group[v] = -1;
    for (int r = 0; r < n; r++) {
        int w = b->x[(idx[r] % B) * T + idx[r] / B];
        if (w < 0 || w >= V) tz_fail("seq2seq: decoder input %d outside the target vocabulary [0,%d)", w, V);
        if (group[w] < 0) group[w] = U, words[U++] = w;
        seq[r] = group[w];
    }
    tz_tensor *rows = tz_embedding(g, tz_reshape(g, sc, 2, (const int[]){T * B, m->D + m->C}), idx, n);
    return nn_context_linear(g, rows, nn_embedding_forward(g, &m->tgt_emb, words, U), NULL, seq, m->out.w, m->out.b);
}

const int *s2s_decode_rows(s2s *m, const int *len, int B, int S, int beam) {
    if (B < 1 || S < 1 || beam < 1)
        tz_fail("seq2seq: mt_encode of %d sources of length %d, beam %d (want >= 1 each)", B, S, beam);
    int rows = B * beam;
    if (rows > m->cap_rows) {
        int *a = realloc(m->row_len, sizeof(int) * rows), *b = a ? realloc(m->row_idx, sizeof(int) * rows) : NULL;
        if (a) m->row_len = a;
        if (!b) tz_fail("seq2seq: out of memory for %d decoding rows", rows);
        m->row_idx = b;
        m->cap_rows = rows;
    }
    for (int r = 0; r < rows; r++) m->row_len[r] = len[r / beam], m->row_idx[r] = r / beam;
    m->rows = rows, m->beam = beam;
    return m->row_idx;
}

// t (B, ...) -> (rows, ...)
tz_tensor *s2s_expand(tz_graph *g, s2s *m, tz_tensor *t, const int *row_src) {
    if (m->beam == 1) return t;
    int B = t->shape[0], shape[TZ_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    shape[0] = m->rows;
    tz_tensor *flat = tz_reshape(g, t, 2, (const int[]){B, t->n / B});
    return tz_reshape(g, tz_embedding(g, flat, row_src, m->rows), t->ndim, shape);
}

// s (rows,D), parent (rows) or NULL -> (rows,D)
tz_tensor *s2s_parent_state(tz_graph *g, s2s *m, tz_tensor *s, const int *parent) {
    if (!s) tz_fail("seq2seq: mt_step before mt_encode");
    if (!parent) return s;
    for (int r = 0; r < m->rows; r++)
        if (parent[r] < 0 || parent[r] >= m->rows || parent[r] / m->beam != r / m->beam)
            tz_fail("seq2seq: mt_step parent[%d] = %d is not a row of the same source (rows %d..%d)", r, parent[r],
                    r / m->beam * m->beam, r / m->beam * m->beam + m->beam - 1);
    return tz_embedding(g, s, parent, m->rows);
}
