// transformer_mt.c: the Transformer encoder-decoder of Vaswani et al. 2017, "Attention Is All You
// Need", for translation: N encoder and N decoder blocks (nn/transformer.c), post-LN as in the
// paper (pre-LN, with a final LayerNorm on each stack, by a key), sinusoidal positions (3.5),
// embeddings scaled by sqrt(d_model) (3.4), the target embedding matrix shared with the output
// projection (3.4, Press & Wolf 2017; the two vocabularies here are separate, so only the target
// side is tied), dropout on the embedding sums and on every sublayer's output (5.4). Label
// smoothing (5.4) is the trainer's ([train] label_smoothing), the warm-up schedule too
// ([schedule] kind = noam).
// Padding: encoder self-attention and cross-attention mask source positions >= src_len; decoder
// self-attention is causal (real targets never see the padding after them).
// Decoding (mt_encode/mt_step) runs the decoder one position at a time: self-attention over a KV
// cache per layer (reordered by parent for beam search), cross-attention over the encoder
// output's keys and values projected once per batch of sentences.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "nn.h"

static const cfg_key keys[] = {
    {"model", "layers", CFG_INT, "3", "blocks in the encoder and in the decoder (N)", 1, 1024, NULL},
    {"model", "heads", CFG_INT, "4", "attention heads (h)", 1, 4096, NULL},
    {"model", "d_model", CFG_INT, "256", "model width", 1, 65536, NULL},
    {"model", "d_ff", CFG_INT, "1024", "feed-forward width", 1, 262144, NULL},
    {"model", "ffn", CFG_STR, "relu", "relu (Vaswani), gelu or swiglu", 0, 0, "relu gelu swiglu"},
    {"model", "pre_ln", CFG_BOOL, "false", "pre-LN blocks (Xiong et al. 2020) instead of post-LN (the paper)", 0, 0,
     NULL},
    {"model", "dropout", CFG_FLOAT, "0.1", "dropout on the embedding sums, sublayer outputs and FFN hidden (P_drop)", 0,
     0.99, NULL},
    {"model", "attn_dropout", CFG_FLOAT, "0", "dropout on the attention weights (tensor2tensor; slower, unfused)", 0,
     0.99, NULL},
    {"model", "tie", CFG_BOOL, "true", "output projection = the target embedding matrix", 0, 0, NULL},
    {"model", "skip_padding", CFG_BOOL, "true",
     "output projection only at real targets: logits (N,V) with b->targets compacted (same loss, less work)", 0, 0,
     NULL},
    {0},
};

typedef struct {
    int L, C, H, Vs, Vt, pre_ln, tie, skip_padding;
    real dropout, scale; // scale: sqrt(d_model) on the embeddings
    nn_embedding src_emb, tgt_emb;
    nn_encoder_block *enc;
    nn_decoder_block *dec;
    nn_layernorm enc_ln, dec_ln; // pre-LN only: after the last block of each stack
    nn_linear out; // when not tied

    // Decoding state (mt_encode .. mt_step): tensors in the caller's graph.
    int rows, beam, cap_rows, pos; // pos: the next target position
    int *row_len, *row_idx; // (rows) source length and source index of each row
    nn_mha_memory *mem; // (L) cross-attention keys and values of each layer (rows,S,C)
    nn_kv_cache cache; // self-attention keys and values of the decoder (L, rows, ...)
} tmt;

static void tmt_free(void *vm) {
    tmt *m = vm;
    if (!m) return;
    free(m->enc), free(m->dec), free(m->mem);
    free(m->row_len), free(m->row_idx);
    if (m->cache.len) nn_kv_cache_free(&m->cache);
    free(m);
}

static void *mt_create(const cfg *c, int Vs, int Vt, tz_params *P, tz_rng *r) {
    int L = (int)cfg_int(c, "model", "layers"), C = (int)cfg_int(c, "model", "d_model");
    int H = (int)cfg_int(c, "model", "heads"), F = (int)cfg_int(c, "model", "d_ff");
    if (L < 1 || C < 1 || H < 1 || F < 1)
        tz_fail("%s: [model] layers = %d, d_model = %d, heads = %d, d_ff = %d must be >= 1", c->path, L, C, H, F);
    if (C % H) tz_fail("%s: [model] d_model = %d is not divisible by heads = %d", c->path, C, H);
    if (Vs <= TZ_UNK || Vt <= TZ_UNK)
        tz_fail("%s: vocabularies of %d (source) and %d (target) words: each needs <pad> <bos> <eos> <unk> and more",
                c->path, Vs, Vt);
    nn_block_config bc = nn_block_defaults(C, H, F);
    bc.pre_ln = cfg_bool(c, "model", "pre_ln");
    if (!nn_ffn_parse(cfg_str(c, "model", "ffn"), &bc.ffn))
        tz_fail("%s: [model] ffn = '%s' (want relu, gelu or swiglu)", c->path, cfg_str(c, "model", "ffn"));
    bc.dropout = (real)cfg_float(c, "model", "dropout");
    bc.attn_dropout = (real)cfg_float(c, "model", "attn_dropout");
    if (!(bc.dropout >= 0 && bc.dropout < 1) || !(bc.attn_dropout >= 0 && bc.attn_dropout < 1))
        tz_fail("%s: [model] dropout = %g and attn_dropout = %g must be in [0,1)", c->path, (double)bc.dropout,
                (double)bc.attn_dropout);
    tmt *m = calloc(1, sizeof *m);
    if (m) m->enc = calloc(L, sizeof *m->enc), m->dec = calloc(L, sizeof *m->dec), m->mem = calloc(L, sizeof *m->mem);
    if (!m || !m->enc || !m->dec || !m->mem) {
        tmt_free(m);
        tz_fail("transformer_mt: out of memory for %d layers", L);
    }
    m->L = L, m->C = C, m->H = H, m->Vs = Vs, m->Vt = Vt, m->pre_ln = bc.pre_ln;
    m->tie = cfg_bool(c, "model", "tie");
    m->skip_padding = cfg_bool(c, "model", "skip_padding");
    m->dropout = bc.dropout;
    m->scale = (real)sqrt((double)C);
    // Embeddings N(0, d^-1/2): times sqrt(d) they are N(0, 1) like the positions, and as the tied
    // output projection they give logits of unit scale (fairseq's and the Annotated Transformer's
    // choice). The linears are Xavier-uniform, as in the reference implementations.
    nn_init emb = {NN_INIT_NORMAL, 1 / sqrt((double)C)}, lin = {NN_INIT_XAVIER_UNIFORM, 0};
    nn_embedding_init(&m->src_emb, P, "src_embed", Vs, C, emb, r);
    nn_embedding_init(&m->tgt_emb, P, "tgt_embed", Vt, C, emb, r);
    char name[32];
    for (int l = 0; l < L; l++) {
        snprintf(name, sizeof name, "encoder.%d", l);
        nn_encoder_block_init(&m->enc[l], P, name, &bc, lin, r);
    }
    for (int l = 0; l < L; l++) {
        snprintf(name, sizeof name, "decoder.%d", l);
        nn_decoder_block_init(&m->dec[l], P, name, &bc, 1, lin, r);
    }
    if (m->pre_ln) {
        nn_layernorm_init(&m->enc_ln, P, "encoder.ln", C, bc.ln_eps);
        nn_layernorm_init(&m->dec_ln, P, "decoder.ln", C, bc.ln_eps);
    }
    if (!m->tie) nn_linear_init(&m->out, P, "out", C, Vt, 0, lin, r);
    return m;
}

// ids (B*T) of rows of T positions starting at position `offset` -> E[ids] sqrt(d) + PE, dropout (B,T,C)
static tz_tensor *embed(tz_graph *g, const tmt *m, const nn_embedding *e, const int *ids, int B, int T, int offset) {
    tz_tensor *x = tz_scale(g, nn_embedding_forward(g, e, ids, B * T), m->scale);
    x = nn_sinusoidal_forward(g, tz_reshape(g, x, 3, (const int[]){B, T, m->C}), offset);
    return tz_dropout(g, x, m->dropout);
}

static void check_sources(const int *len, int B, int S) {
    if (B < 1 || S < 1) tz_fail("transformer_mt: a batch of %d sources of length %d (want >= 1 each)", B, S);
    for (int b = 0; b < B; b++)
        if (len[b] < 1 || len[b] > S)
            tz_fail("transformer_mt: source length src_len[%d] = %d outside [1, %d]", b, len[b], S);
}

// src (B,S), len (B) -> the encoder's output (B,S,C)
static tz_tensor *encode(tz_graph *g, const tmt *m, const int *src, const int *len, int B, int S) {
    check_sources(len, B, S);
    tz_tensor *x = embed(g, m, &m->src_emb, src, B, S, 0);
    for (int l = 0; l < m->L; l++) x = nn_encoder_block_forward(g, &m->enc[l], x, len, NULL);
    return m->pre_ln ? nn_layernorm_forward(g, &m->enc_ln, x) : x;
}

// The decoder's output rows h (N,C) -> logits (N,Vt)
static tz_tensor *project(tz_graph *g, const tmt *m, tz_tensor *h) {
    if (m->pre_ln) h = nn_layernorm_forward(g, &m->dec_ln, h);
    return m->tie ? tz_matmul(g, h, m->tgt_emb.w, 0, 1) : nn_linear_forward(g, &m->out, h);
}

// src (B,S), x (B,T) -> logits (B*T, Vt), or (N, Vt) at the real targets with skip_padding
static tz_tensor *forward(tz_graph *g, void *vm, tz_batch *b) {
    tmt *m = vm;
    int B = b->B, T = b->T;
    tz_tensor *mem = encode(g, m, b->src, b->src_len, B, b->S);
    tz_tensor *y = embed(g, m, &m->tgt_emb, b->x, B, T, 0);
    for (int l = 0; l < m->L; l++) y = nn_decoder_block_forward(g, &m->dec[l], y, mem, b->src_len, NULL);
    y = tz_reshape(g, y, 2, (const int[]){B * T, m->C});
    b->targets = b->y, b->n_targets = B * T;
    if (m->skip_padding) { // the output projection over the target vocabulary is the largest product
        int *idx = tz_arena_alloc(&g->arena, sizeof(int) * B * T),
            *kept = tz_arena_alloc(&g->arena, sizeof(int) * B * T), n = 0;
        for (int i = 0; i < B * T; i++)
            if (b->y[i] != TZ_IGNORE) idx[n] = i, kept[n++] = b->y[i];
        if (n == 0) idx[0] = 0, kept[0] = TZ_IGNORE, n = 1; // nothing to predict: one row the loss ignores
        if (n < B * T) y = tz_embedding(g, y, idx, n), b->targets = kept, b->n_targets = n;
    }
    return project(g, m, y);
}

// A per-source tensor t (B,S,C) repeated for each of its beam rows -> (rows,S,C).
static tz_tensor *expand(tz_graph *g, const tmt *m, tz_tensor *t) {
    if (m->beam == 1) return t;
    int B = t->shape[0], S = t->shape[1];
    tz_tensor *flat = tz_reshape(g, t, 2, (const int[]){B, S * m->C});
    return tz_reshape(g, tz_embedding(g, flat, m->row_idx, m->rows), 3, (const int[]){m->rows, S, m->C});
}

static void mt_encode(tz_graph *g, void *vm, const int *src, const int *src_len, int B, int S, int beam) {
    tmt *m = vm;
    if (beam < 1) tz_fail("transformer_mt: mt_encode with beam %d (want >= 1)", beam);
    tz_tensor *mem = encode(g, m, src, src_len, B, S);
    int rows = B * beam;
    if (rows > m->cap_rows) {
        int *a = realloc(m->row_len, sizeof(int) * rows), *c = a ? realloc(m->row_idx, sizeof(int) * rows) : NULL;
        if (a) m->row_len = a;
        if (!c) tz_fail("transformer_mt: out of memory for %d decoding rows", rows);
        m->row_idx = c, m->cap_rows = rows;
    }
    for (int r = 0; r < rows; r++) m->row_len[r] = src_len[r / beam], m->row_idx[r] = r / beam;
    m->rows = rows, m->beam = beam, m->pos = 0;
    for (int l = 0; l < m->L; l++) {
        nn_mha_memory p = nn_mha_memory_project(g, &m->dec[l].cross_attn, mem);
        m->mem[l] = (nn_mha_memory){expand(g, m, p.k), expand(g, m, p.v)};
    }
    // Room for the translator's default length limit (2 |src| + 10); mt_step grows it if asked for more.
    nn_kv_cache_reserve(&m->cache, m->L, rows, m->H, 2 * S + 11, m->C / m->H);
    nn_kv_cache_reset(&m->cache);
}

// prev (rows), parent (rows) or NULL -> logits (rows, Vt); *attn (rows, S): the last layer's
// cross-attention weights averaged over the heads.
static tz_tensor *mt_step(tz_graph *g, void *vm, const int *prev, const int *parent, tz_tensor **attn) {
    tmt *m = vm;
    if (!m->rows) tz_fail("transformer_mt: mt_step before mt_encode");
    if (parent) {
        for (int r = 0; r < m->rows; r++)
            if (parent[r] < 0 || parent[r] >= m->rows || parent[r] / m->beam != r / m->beam)
                tz_fail("transformer_mt: mt_step parent[%d] = %d is not a row of the same source (rows %d..%d)", r,
                        parent[r], r / m->beam * m->beam, r / m->beam * m->beam + m->beam - 1);
        nn_kv_cache_gather(&m->cache, parent);
    }
    for (int r = 0; r < m->rows; r++)
        if (prev[r] < 0 || prev[r] >= m->Vt)
            tz_fail("transformer_mt: mt_step prev[%d] = %d outside [0, %d)", r, prev[r], m->Vt);
    if (m->pos >= m->cache.Tmax) // doubling: a few allocations however long the target
        nn_kv_cache_reserve(&m->cache, m->L, m->rows, m->H, 2 * m->cache.Tmax, m->C / m->H);
    tz_tensor *x = embed(g, m, &m->tgt_emb, prev, m->rows, 1, m->pos);
    nn_block_attn ba = {0};
    for (int l = 0; l < m->L; l++)
        x = nn_decoder_block_step_memory(g, &m->dec[l], x, &m->cache, l, &m->mem[l], m->row_len,
                                         attn && l == m->L - 1 ? &ba : NULL);
    m->pos++;
    if (attn) { // (rows,H,1,S) -> (rows,S)
        int S = ba.cross->shape[3], H = m->H;
        tz_tensor *a = tz_empty(g, 2, (const int[]){m->rows, S});
        for (int r = 0; r < m->rows; r++)
            for (int j = 0; j < S; j++) {
                real s = 0;
                for (int h = 0; h < H; h++) s += ba.cross->data[((size_t)r * H + h) * S + j];
                a->data[(size_t)r * S + j] = s / (real)H;
            }
        *attn = a;
    }
    return project(g, m, tz_reshape(g, x, 2, (const int[]){m->rows, m->C}));
}

const tz_model_def tz_model_transformer_mt = {
    .name = "transformer_mt",
    .paper = "Vaswani et al. 2017, Attention Is All You Need (encoder-decoder)",
    .keys = keys,
    .stream = 0,
    .forward = forward,
    .free = tmt_free,
    .pairs = 1,
    .mt_create = mt_create,
    .mt_encode = mt_encode,
    .mt_step = mt_step,
};
