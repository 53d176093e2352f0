// transformer.c: encoder and decoder blocks, pre- or post-LN, from nn_mha, nn_ffn and LayerNorm.
#include "transformer.h"

#include <stdio.h>
#include <string.h>

nn_block_config nn_block_defaults(int d_model, int heads, int d_ff) {
    return (nn_block_config){.d_model = d_model,
                             .heads = heads,
                             .d_ff = d_ff,
                             .pre_ln = 0,
                             .residual = 1,
                             .ffn = NN_FFN_RELU,
                             .bias = 1,
                             .rope = 0,
                             .dropout = (real)0.1,
                             .attn_dropout = (real)0.1,
                             .ln_eps = (real)1e-5};
}

static void check_config(const char *what, const char *name, const nn_block_config *c) {
    if (c->d_model <= 0 || c->heads <= 0 || c->d_ff <= 0)
        tz_fail("%s '%s': d_model = %d, heads = %d, d_ff = %d must be > 0", what, name, c->d_model, c->heads, c->d_ff);
    if (c->d_model % c->heads)
        tz_fail("%s '%s': d_model %d not divisible by heads %d", what, name, c->d_model, c->heads);
    if (!(c->dropout >= 0 && c->dropout < 1) || !(c->attn_dropout >= 0 && c->attn_dropout < 1) || !(c->ln_eps >= 0))
        tz_fail("%s '%s': dropout %g and attn_dropout %g must be in [0, 1), ln_eps %g >= 0", what, name,
                (double)c->dropout, (double)c->attn_dropout, (double)c->ln_eps);
}

static void init_mha(nn_mha *m, tz_params *P, const char *name, const char *part, const nn_block_config *c, int rope,
                     nn_init init, tz_rng *r) {
    char key[256];
    snprintf(key, sizeof key, "%s.%s", name, part);
    nn_mha_init(m, P, key, c->d_model, c->heads, c->bias, init, r);
    m->dropout = c->attn_dropout;
    m->rope = rope;
}
static void init_ffn(nn_ffn *f, tz_params *P, const char *name, const nn_block_config *c, nn_init init, tz_rng *r) {
    char key[256];
    snprintf(key, sizeof key, "%s.ffn", name);
    nn_ffn_init(f, P, key, c->ffn, c->d_model, c->d_ff, c->bias, init, r);
    f->dropout = c->dropout;
}
static void init_ln(nn_layernorm *l, tz_params *P, const char *name, const char *part, const nn_block_config *c) {
    char key[256];
    snprintf(key, sizeof key, "%s.%s", name, part);
    nn_layernorm_init(l, P, key, c->d_model, c->ln_eps);
}

// The residual for a sublayer to add in its last product (x + y in one pass less, the same
// bits), where nothing comes between them (dropout), else NULL.
static int residual(const nn_block_config *c) { return c->residual && c->dropout <= 0; }
#define RES(c, x) (residual(c) ? (x) : NULL)

// The two halves of a residual sublayer: its input (normalised first in pre-LN) ...
static tz_tensor *sub_in(tz_graph *g, const nn_block_config *c, const nn_layernorm *ln, tz_tensor *x) {
    return c->pre_ln ? nn_layernorm_forward(g, ln, x) : x;
}
// ... and the residual sum (normalised after in post-LN), dropout on the sublayer's output.
// Without residuals (an ablation) the sublayer's output replaces x. summed: the sublayer was
// given RES(c, x) and added it in its last product, so y is the sum already.
static tz_tensor *sub_out(tz_graph *g, const nn_block_config *c, const nn_layernorm *ln, tz_tensor *x, tz_tensor *y,
                          int summed) {
    if (!(summed && residual(c))) {
        if (c->dropout > 0) y = tz_dropout(g, y, c->dropout);
        y = c->residual ? tz_add(g, x, y) : y;
    }
    return c->pre_ln ? y : nn_layernorm_forward(g, ln, y);
}

void nn_encoder_block_init(nn_encoder_block *b, tz_params *P, const char *name, const nn_block_config *c, nn_init init,
                           tz_rng *r) {
    check_config("encoder_block", name, c);
    memset(b, 0, sizeof *b);
    b->c = *c;
    init_mha(&b->attn, P, name, "attn", c, c->rope, init, r);
    init_ffn(&b->ffn, P, name, c, init, r);
    init_ln(&b->ln1, P, name, "ln1", c);
    init_ln(&b->ln2, P, name, "ln2", c);
}

// x (B,T,C) -> (B,T,C)
tz_tensor *nn_encoder_block_forward(tz_graph *g, const nn_encoder_block *b, tz_tensor *x, const int *lengths,
                                    nn_block_attn *attn) {
    const nn_block_config *c = &b->c;
    tz_tensor *w = NULL;
    tz_tensor *h = sub_in(g, c, &b->ln1, x);
    x = sub_out(g, c, &b->ln1, x, nn_mha_forward_add(g, &b->attn, h, NULL, lengths, 0, attn ? &w : NULL, RES(c, x)), 1);
    if (attn) attn->self = w, attn->cross = NULL;
    h = sub_in(g, c, &b->ln2, x);
    return sub_out(g, c, &b->ln2, x, nn_ffn_forward_add(g, &b->ffn, h, RES(c, x)), 1);
}

void nn_decoder_block_init(nn_decoder_block *b, tz_params *P, const char *name, const nn_block_config *c, int cross,
                           nn_init init, tz_rng *r) {
    check_config("decoder_block", name, c);
    memset(b, 0, sizeof *b);
    b->c = *c;
    b->cross = cross != 0;
    snprintf(b->name, sizeof b->name, "%s", name);
    init_mha(&b->self_attn, P, name, "self_attn", c, c->rope, init, r);
    if (cross) init_mha(&b->cross_attn, P, name, "cross_attn", c, 0, init, r); // no positions across
    init_ffn(&b->ffn, P, name, c, init, r);
    init_ln(&b->ln1, P, name, "ln1", c);
    if (cross) init_ln(&b->ln2, P, name, "ln2", c);
    init_ln(&b->ln3, P, name, "ln3", c);
}

// The part of a decoder block after self-attention: cross-attention (over mem, or its projected
// keys and values pmem) and the FFN.
static tz_tensor *decoder_rest(tz_graph *g, const nn_decoder_block *b, tz_tensor *x, tz_tensor *mem,
                               const nn_mha_memory *pmem, const int *mem_lengths, nn_block_attn *attn) {
    const nn_block_config *c = &b->c;
    if (b->cross) {
        tz_tensor *w = NULL, **wp = attn ? &w : NULL;
        tz_tensor *h = sub_in(g, c, &b->ln2, x);
        tz_tensor *y = pmem ? nn_mha_forward_memory(g, &b->cross_attn, h, pmem, mem_lengths, wp)
                            : nn_mha_forward(g, &b->cross_attn, h, mem, mem_lengths, 0, wp);
        x = sub_out(g, c, &b->ln2, x, y, 0);
        if (attn) attn->cross = w;
    } else if (attn) attn->cross = NULL;
    tz_tensor *h = sub_in(g, c, &b->ln3, x);
    return sub_out(g, c, &b->ln3, x, nn_ffn_forward_add(g, &b->ffn, h, RES(c, x)), 1);
}

static void check_mem(const nn_decoder_block *b, const tz_tensor *x, const tz_tensor *mem) {
    if (b->cross && !mem) tz_fail("decoder_block '%s': cross-attention needs the encoder's output", b->name);
    if (!b->cross && mem) tz_fail("decoder_block '%s': given a memory but made without cross-attention", b->name);
    if (mem && (mem->ndim != 3 || x->ndim != 3 || mem->shape[0] != x->shape[0])) {
        char a[64], s[64];
        tz_fail("decoder_block '%s': memory %s does not fit input %s", b->name, tz_shape_str(mem, a),
                tz_shape_str(x, s));
    }
}

// x (B,T,C), mem (B,S,C) -> (B,T,C)
tz_tensor *nn_decoder_block_forward(tz_graph *g, const nn_decoder_block *b, tz_tensor *x, tz_tensor *mem,
                                    const int *mem_lengths, nn_block_attn *attn) {
    check_mem(b, x, mem);
    const nn_block_config *c = &b->c;
    tz_tensor *w = NULL;
    tz_tensor *h = sub_in(g, c, &b->ln1, x);
    x = sub_out(g, c, &b->ln1, x, nn_mha_forward_add(g, &b->self_attn, h, NULL, NULL, 1, attn ? &w : NULL, RES(c, x)),
                1);
    if (attn) attn->self = w;
    return decoder_rest(g, b, x, mem, NULL, mem_lengths, attn);
}

// x (B,t,C) -> (B,t,C)
tz_tensor *nn_decoder_block_step(tz_graph *g, const nn_decoder_block *b, tz_tensor *x, nn_kv_cache *cache, int layer,
                                 tz_tensor *mem, const int *mem_lengths, nn_block_attn *attn) {
    check_mem(b, x, mem);
    const nn_block_config *c = &b->c;
    tz_tensor *w = NULL;
    tz_tensor *h = sub_in(g, c, &b->ln1, x);
    x = sub_out(g, c, &b->ln1, x, nn_mha_forward_cached(g, &b->self_attn, h, cache, layer, attn ? &w : NULL), 0);
    if (attn) attn->self = w;
    return decoder_rest(g, b, x, mem, NULL, mem_lengths, attn);
}

// x (B,t,C), mem k, v (B,S,C) -> (B,t,C)
tz_tensor *nn_decoder_block_step_memory(tz_graph *g, const nn_decoder_block *b, tz_tensor *x, nn_kv_cache *cache,
                                        int layer, const nn_mha_memory *mem, const int *mem_lengths,
                                        nn_block_attn *attn) {
    if (!b->cross || !mem)
        tz_fail("decoder_block '%s': a projected memory needs a block with cross-attention", b->name);
    const nn_block_config *c = &b->c;
    tz_tensor *w = NULL;
    tz_tensor *h = sub_in(g, c, &b->ln1, x);
    x = sub_out(g, c, &b->ln1, x, nn_mha_forward_cached(g, &b->self_attn, h, cache, layer, attn ? &w : NULL), 0);
    if (attn) attn->self = w;
    return decoder_rest(g, b, x, NULL, mem, mem_lengths, attn);
}
