// hybrid.c: a recurrent language model with attention over its own states: embeddings -> a
// recurrent layer (GRU or LSTM, by one key; state carried across batches) -> causal multi-head
// self-attention over the window's recurrent states (residual, LayerNorm) -> softmax. The
// recurrence carries long context cheaply; attention gives each position direct access to the
// recent states (cf. Cheng, Dong & Lapata 2016, "Long Short-Term Memory-Networks").
#include <stdlib.h>
#include <string.h>

#include "recurrent_lm.h"

static const cfg_key keys[] = {
    RECURRENT_LM_KEYS("64", "256", "1"),
    {"model", "cell", CFG_STR, "gru", "the recurrent cell: gru or lstm", 0, 0},
    {"model", "heads", CFG_INT, "4", "attention heads", 1, 4096},
    {0},
};

typedef struct {
    void *rlm;    // embeddings -> recurrent layer (its output layer is unused: see forward)
    nn_mha attn;
    nn_layernorm ln;
    nn_linear out;
    int H;
    real dropout;
} hybrid;

static void *create(const cfg *c, int V, tz_params *P, tz_rng *r) {
    hybrid *m = calloc(1, sizeof *m);
    if (!m) tz_fail("hybrid: out of memory");
    nn_cell_kind cell;
    const char *name = cfg_str(c, "model", "cell");
    if (!nn_cell_parse(name, &cell) || cell == NN_CELL_RNN) tz_fail("%s: [model] cell = '%s' (want gru or lstm)", c->path, name);
    nn_recurrent_config rc = nn_recurrent_defaults(cell, 0, 0);
    if (cell == NN_CELL_LSTM) rc.forget_bias = 1;
    m->rlm = recurrent_lm_create_body(c, V, P, r, rc);
    m->H = (int)cfg_int(c, "model", "hidden");
    m->dropout = (real)cfg_float(c, "model", "dropout");
    nn_mha_init(&m->attn, P, "attn", m->H, (int)cfg_int(c, "model", "heads"), 1, (nn_init){0}, r);
    nn_layernorm_init(&m->ln, P, "ln", m->H, 1e-5);
    nn_linear_init(&m->out, P, "out", m->H, V, 1, (nn_init){0}, r);
    return m;
}

// x (B,T) -> logits (B*T, V), batch-major.
static tz_tensor *forward(tz_graph *g, void *vm, tz_batch *b) {
    hybrid *m = vm;
    tz_tensor *h = recurrent_lm_states(g, m->rlm, b);                            // (T,B,H)
    h = tz_transpose(g, h, 0, 1);                                               // (B,T,H)
    tz_tensor *a = nn_mha_forward(g, &m->attn, h, NULL, NULL, 1, NULL);
    h = nn_layernorm_forward(g, &m->ln, tz_add(g, h, tz_dropout(g, a, m->dropout)));
    h = tz_reshape(g, h, 2, (const int[]){b->B * b->T, m->H});
    b->targets = b->y;
    b->n_targets = b->B * b->T;
    return nn_linear_forward(g, &m->out, h);
}

static void reset(void *vm, int B) { recurrent_lm_reset(((hybrid *)vm)->rlm, B); }
static real *carried(void *vm, size_t *n) { return recurrent_lm_carried(((hybrid *)vm)->rlm, n); }

static void destroy(void *vm) {
    hybrid *m = vm;
    recurrent_lm_free(m->rlm);
    free(m);
}

const tz_model_def tz_model_hybrid = {
    .name = "hybrid",
    .paper = "recurrent states + causal self-attention (cf. Cheng et al. 2016, LSTM-Networks)",
    .keys = keys,
    .stream = 1,
    .create = create,
    .forward = forward,
    .reset = reset,
    .carried = carried,
    .free = destroy,
};
