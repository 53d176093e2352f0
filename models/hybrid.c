// hybrid.c: a recurrent language model with attention over its own states: embeddings -> a
// recurrent layer (GRU or LSTM, by one key; state carried across batches) -> causal multi-head
// self-attention over the window's recurrent states (residual, LayerNorm) -> softmax. The
// recurrence carries long context cheaply; attention gives each position direct access to the
// recent states (cf. Cheng, Dong & Lapata 2016, "Long Short-Term Memory-Networks").
#include <stdlib.h>
#include <string.h>

#include "recurrent_lm.h"

static const cfg_key keys[] = {
    {"model", "cell", CFG_STR, "gru", "the recurrent cell: gru or lstm", 0, 0, "gru lstm"},
    {"model", "heads", CFG_INT, "4", "attention heads", 1, 4096, NULL},
    {0},
};

typedef struct {
    void *rlm; // embeddings -> recurrent layer, without an output layer (recurrent_lm_create_body)
    nn_mha attn; // causal self-attention over the recurrent states
    nn_layernorm ln;
    nn_linear out; // the model's one output layer
    int H;
    real dropout;
    // decode: the recurrent states of the last `block` positions (block, H), oldest first, so a
    // sampled position attends over the same states a training window would give it.
    int block, win_n;
    real *win;
} hybrid;

static void *create(const cfg *c, int V, int block, tz_params *P, tz_rng *r) {
    hybrid *m = calloc(1, sizeof *m);
    if (!m) tz_fail("hybrid: out of memory");
    nn_cell_kind cell;
    const char *name = cfg_str(c, "model", "cell");
    if (!nn_cell_parse(name, &cell) || cell == NN_CELL_RNN)
        tz_fail("%s: [model] cell = '%s' (want gru or lstm)", c->path, name);
    nn_recurrent_config rc = nn_recurrent_defaults(cell, 0, 0);
    if (cell == NN_CELL_LSTM) rc.forget_bias = 1;
    m->rlm = recurrent_lm_create_body(c, V, P, r, rc);
    m->H = (int)cfg_int(c, "model", "hidden");
    m->dropout = (real)cfg_float(c, "model", "dropout");
    nn_mha_init(&m->attn, P, "attn", m->H, (int)cfg_int(c, "model", "heads"), 1, (nn_init){0}, r);
    nn_layernorm_init(&m->ln, P, "ln", m->H, 1e-5);
    nn_linear_init(&m->out, P, "out", m->H, V, 1, (nn_init){0}, r);
    if (block < 1 || block > (1 << 20)) tz_fail("hybrid: a block of %d positions (want 1 to 1048576)", block);
    m->block = block;
    return m;
}

// x (B,T) -> logits (B*T, V), batch-major.
static tz_tensor *forward(tz_graph *g, void *vm, tz_batch *b) {
    hybrid *m = vm;
    tz_tensor *h = recurrent_lm_states(g, m->rlm, b); // (T,B,H)
    h = tz_transpose(g, h, 0, 1); // (B,T,H)
    tz_tensor *a = nn_mha_forward(g, &m->attn, h, NULL, NULL, 1, NULL);
    h = nn_layernorm_forward(g, &m->ln, tz_add(g, h, tz_dropout(g, a, m->dropout)));
    h = tz_reshape(g, h, 2, (const int[]){b->B * b->T, m->H});
    b->targets = b->y;
    b->n_targets = b->B * b->T;
    return nn_linear_forward(g, &m->out, h);
}

// Incremental decoding of one stream: each of ids (n) advances the recurrent state by one step,
// joins the window of the last `block` states, and attends over that window (it is the window's
// newest position, so no mask is needed) -> logits (n, V). Within the first `block` positions
// this is exactly forward on the same sequence; after that each position sees the last `block`
// states, as the last position of a training window does. Never returns NULL.
static tz_tensor *decode(tz_graph *g, void *vm, const int *ids, int n, int reset) {
    hybrid *m = vm;
    int H = m->H;
    if (!m->win && !(m->win = malloc(sizeof(real) * (size_t)m->block * H)))
        tz_fail("hybrid: out of memory for the decoding window");
    if (reset) recurrent_lm_reset(m->rlm, 1), m->win_n = 0;
    tz_tensor *out = NULL;
    for (int i = 0; i < n; i++) {
        tz_batch b = {.B = 1, .T = 1, .x = ids + i, .y = ids + i};
        tz_tensor *h = tz_reshape(g, recurrent_lm_states(g, m->rlm, &b), 3, (const int[]){1, 1, H}); // (1,1,H)
        if (m->win_n == m->block) memmove(m->win, m->win + H, sizeof(real) * (size_t)(m->block - 1) * H), m->win_n--;
        memcpy(m->win + (size_t)m->win_n * H, h->data, sizeof(real) * H);
        m->win_n++;
        tz_tensor *kv = tz_wrap(g, m->win, NULL, 3, (const int[]){1, m->win_n, H}); // (1,W,H)
        tz_tensor *a = nn_mha_forward(g, &m->attn, h, kv, NULL, 0, NULL); // (1,1,H)
        tz_tensor *y = nn_layernorm_forward(g, &m->ln, tz_add(g, h, a));
        tz_tensor *logits = nn_linear_forward(g, &m->out, tz_reshape(g, y, 2, (const int[]){1, H})); // (1,V)
        int V = tz_cols(logits);
        if (!out) out = tz_empty(g, 2, (const int[]){n, V});
        memcpy(out->data + (size_t)i * V, logits->data, sizeof(real) * V);
    }
    return out;
}

static void reset(void *vm, int B) { recurrent_lm_reset(((hybrid *)vm)->rlm, B); }
static real *carried(void *vm, size_t *n) { return recurrent_lm_carried(((hybrid *)vm)->rlm, n); }
static int carried_blocks(const void *vm) { return recurrent_lm_carried_blocks(((const hybrid *)vm)->rlm); }

static void destroy(void *vm) {
    hybrid *m = vm;
    recurrent_lm_free(m->rlm);
    free(m->win);
    free(m);
}

const tz_model_def tz_model_hybrid = {
    .name = "hybrid",
    .paper = "recurrent states + causal self-attention (cf. Cheng et al. 2016, LSTM-Networks)",
    .family_keys = recurrent_lm_keys,
    .keys = keys,
    .stream = 1,
    .create = create,
    .forward = forward,
    .decode = decode,
    .reset = reset,
    .carried = carried,
    .carried_blocks = carried_blocks,
    .free = destroy,
};
