// transformer_lm.c: a decoder-only Transformer language model (Vaswani et al. 2017, "Attention Is
// All You Need", the decoder without cross-attention), in the GPT-2 arrangement nanoGPT uses:
// pre-LN blocks, GELU, learned positions, a final LayerNorm, output weights tied to the token
// embedding (Press & Wolf 2017), N(0, 0.02) init.
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "model.h"
#include "nn.h"

static const cfg_key keys[] = {
    {"model", "layers", CFG_INT, "4", "decoder blocks", 1, 1024, NULL},
    {"model", "heads", CFG_INT, "4", "attention heads", 1, 4096, NULL},
    {"model", "d_model", CFG_INT, "128", "model width", 1, 65536, NULL},
    {"model", "d_ff", CFG_INT, "512", "feed-forward width", 1, 262144, NULL},
    {"model", "ffn", CFG_STR, "gelu", "relu (Vaswani), gelu (GPT-2) or swiglu", 0, 0, "relu gelu swiglu"},
    {"model", "pre_ln", CFG_BOOL, "true", "pre-LN blocks (GPT-2) instead of post-LN (Vaswani)", 0, 0, NULL},
    {"model", "residual", CFG_BOOL, "true", "residual connections around each sublayer (false: an ablation)", 0, 0,
     NULL},
    {"model", "positions", CFG_STR, "learned", "learned, sinusoidal (Vaswani) or rope (Su 2021)", 0, 0,
     "learned sinusoidal rope"},
    {"model", "dropout", CFG_FLOAT, "0", "dropout on embeddings, sublayer outputs and attention weights", 0, 0.99,
     NULL},
    {"model", "bias", CFG_BOOL, "true", "biases in the linears", 0, 0, NULL},
    {"model", "tie", CFG_BOOL, "true", "output weights tied to the token embedding", 0, 0, NULL},
    {"model", "embed_scale", CFG_BOOL, "false",
     "token embeddings times sqrt(d_model) before the positions are added (Vaswani 3.4)", 0, 0, NULL},
    {"model", "init_std", CFG_FLOAT, "0.02", "std of the N(0, s) init of weights and embeddings", 0, 1e6, NULL},
    {0},
};

enum { POS_LEARNED, POS_SINUSOIDAL, POS_ROPE };

typedef struct {
    int L, C, V, T, pos, tie;
    real dropout, scale; // scale: on the token embeddings, 1 or sqrt(d_model)
    nn_embedding wte;
    nn_learned_pos wpe;
    nn_decoder_block *blocks;
    nn_layernorm ln_f;
    nn_linear head; // when not tied
    nn_kv_cache cache; // for decode, made at its first call
} transformer;

static void *create(const cfg *c, int V, int block, tz_params *P, tz_rng *r) {
    transformer *m = calloc(1, sizeof *m);
    if (!m) tz_fail("transformer: out of memory");
    m->L = (int)cfg_int(c, "model", "layers");
    m->C = (int)cfg_int(c, "model", "d_model");
    m->V = V;
    m->T = block; // the learned position table and the KV cache hold this many positions
    m->tie = cfg_bool(c, "model", "tie");
    m->dropout = (real)cfg_float(c, "model", "dropout");
    // Vaswani's sqrt(d) lifts N(0, 0.02) embeddings next to unit-scale sinusoids (ablations).
    m->scale = cfg_bool(c, "model", "embed_scale") ? (real)sqrt((double)m->C) : 1;
    const char *pos = cfg_str(c, "model", "positions");
    m->pos = !strcmp(pos, "learned")      ? POS_LEARNED
             : !strcmp(pos, "sinusoidal") ? POS_SINUSOIDAL
             : !strcmp(pos, "rope")       ? POS_ROPE
                                          : -1;
    if (m->pos < 0) tz_fail("%s: [model] positions = '%s' (want learned, sinusoidal or rope)", c->path, pos);
    if (m->L < 1) tz_fail("%s: [model] layers = %d must be >= 1", c->path, m->L);
    nn_block_config bc = nn_block_defaults(m->C, (int)cfg_int(c, "model", "heads"), (int)cfg_int(c, "model", "d_ff"));
    bc.pre_ln = cfg_bool(c, "model", "pre_ln");
    bc.residual = cfg_bool(c, "model", "residual");
    if (!nn_ffn_parse(cfg_str(c, "model", "ffn"), &bc.ffn))
        tz_fail("%s: [model] ffn = '%s' (want relu, gelu or swiglu)", c->path, cfg_str(c, "model", "ffn"));
    bc.bias = cfg_bool(c, "model", "bias");
    bc.rope = m->pos == POS_ROPE;
    bc.dropout = bc.attn_dropout = m->dropout;
    nn_init init = {NN_INIT_NORMAL, cfg_float(c, "model", "init_std")};
    nn_embedding_init(&m->wte, P, "wte", V, m->C, init, r);
    if (m->pos == POS_LEARNED) nn_learned_pos_init(&m->wpe, P, "wpe", m->T, m->C, init, r);
    m->blocks = calloc(m->L, sizeof *m->blocks);
    if (!m->blocks) tz_fail("transformer: out of memory for %d blocks", m->L);
    char name[32];
    for (int l = 0; l < m->L; l++) {
        snprintf(name, sizeof name, "h.%d", l);
        nn_decoder_block_init(&m->blocks[l], P, name, &bc, 0, init, r);
    }
    if (bc.pre_ln) nn_layernorm_init(&m->ln_f, P, "ln_f", m->C, 1e-5);
    if (!m->tie) nn_linear_init(&m->head, P, "lm_head", m->C, V, 0, init, r);
    return m;
}

// x (B,T) -> logits (B*T, V), batch-major like the targets.
static tz_tensor *forward(tz_graph *g, void *vm, tz_batch *b) {
    transformer *m = vm;
    if (b->T > m->T && m->pos == POS_LEARNED)
        tz_fail("transformer: %d positions but the learned table has %d (the block it was built for)", b->T, m->T);
    tz_tensor *x =
        tz_reshape(g, nn_embedding_forward(g, &m->wte, b->x, b->B * b->T), 3, (const int[]){b->B, b->T, m->C});
    if (m->scale != 1) x = tz_scale(g, x, m->scale);
    if (m->pos == POS_LEARNED) x = nn_learned_pos_forward(g, &m->wpe, x, 0);
    if (m->pos == POS_SINUSOIDAL) x = nn_sinusoidal_forward(g, x, 0);
    x = tz_dropout(g, x, m->dropout);
    for (int l = 0; l < m->L; l++) x = nn_decoder_block_forward(g, &m->blocks[l], x, NULL, NULL, NULL);
    if (m->blocks[0].c.pre_ln) x = nn_layernorm_forward(g, &m->ln_f, x);
    x = tz_reshape(g, x, 2, (const int[]){b->B * b->T, m->C});
    b->targets = b->y;
    b->n_targets = b->B * b->T;
    return m->tie ? tz_matmul(g, x, m->wte.w, 0, 1) : nn_linear_forward(g, &m->head, x);
}

// Sampling with a KV cache: each new token costs one position's work, not the window's.
static tz_tensor *decode(tz_graph *g, void *vm, const int *ids, int n, int reset) {
    transformer *m = vm;
    const nn_mha *a = &m->blocks[0].self_attn;
    if (!m->cache.k) nn_kv_cache_init(&m->cache, m->L, 1, a->heads, m->T, a->d_head);
    if (reset) nn_kv_cache_reset(&m->cache);
    int offset = nn_kv_cache_len(&m->cache);
    if (offset + n > m->T) return NULL;
    tz_tensor *x = tz_reshape(g, nn_embedding_forward(g, &m->wte, ids, n), 3, (const int[]){1, n, m->C});
    if (m->scale != 1) x = tz_scale(g, x, m->scale);
    if (m->pos == POS_LEARNED) x = nn_learned_pos_forward(g, &m->wpe, x, offset);
    if (m->pos == POS_SINUSOIDAL) x = nn_sinusoidal_forward(g, x, offset);
    for (int l = 0; l < m->L; l++) x = nn_decoder_block_step(g, &m->blocks[l], x, &m->cache, l, NULL, NULL, NULL);
    if (m->blocks[0].c.pre_ln) x = nn_layernorm_forward(g, &m->ln_f, x);
    x = tz_reshape(g, x, 2, (const int[]){n, m->C});
    return m->tie ? tz_matmul(g, x, m->wte.w, 0, 1) : nn_linear_forward(g, &m->head, x);
}

static void destroy(void *vm) {
    transformer *m = vm;
    if (m->cache.k) nn_kv_cache_free(&m->cache);
    free(m->blocks);
    free(m);
}

const tz_model_def tz_model_transformer = {
    .name = "transformer",
    .paper = "Vaswani et al. 2017, Attention Is All You Need (decoder-only, GPT-2 arrangement)",
    .keys = keys,
    .stream = 0,
    .create = create,
    .forward = forward,
    .decode = decode,
    .free = destroy,
};
