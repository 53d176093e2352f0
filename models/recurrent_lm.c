// recurrent_lm.c: embedding -> stacked recurrent layer -> linear, with the hidden state carried
// from batch to batch (truncated BPTT: the carried state is a detached copy).
#include "recurrent_lm.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    nn_embedding emb;
    nn_recurrent rnn;
    nn_linear out;
    real dropout;
    int B, L, H; // the carried state is (L, B, H)
    real *h, *c; // one buffer (h then c), reallocated only when the batch size changes
} rlm;

const cfg_key recurrent_lm_keys[] = {
    {"model", "embed", CFG_INT, "64", "embedding size", 1, 65536, NULL},
    {"model", "hidden", CFG_INT, "256", "hidden units per layer", 1, 65536, NULL},
    {"model", "layers", CFG_INT, "1", "stacked recurrent layers", 1, 1024, NULL},
    {"model", "dropout", CFG_FLOAT, "0", "dropout on embeddings, between layers and before the output", 0, 0.99, NULL},
    {"model", "residual", CFG_BOOL, "false", "residual connections between layers", 0, 0, NULL},
    {"model", "init", CFG_STR, "default",
     "weight init: default (PyTorch's), uniform, normal, xavier_uniform, orthogonal, ...", 0, 0,
     "default zeros ones constant uniform normal xavier_uniform xavier_normal kaiming_uniform kaiming_normal "
     "orthogonal pytorch"},
    {"model", "init_scale", CFG_FLOAT, "0", "range/std/gain of the init (0: the init's own default)", 0, 1e6, NULL},
    {0},
};

nn_init recurrent_lm_init_of(const cfg *c) {
    nn_init init = {NN_INIT_DEFAULT, cfg_float(c, "model", "init_scale")};
    if (!nn_init_parse(cfg_str(c, "model", "init"), &init.kind))
        tz_fail("%s: [model] init = '%s' is not an initialiser (uniform, normal, xavier_uniform, xavier_normal, "
                "kaiming_uniform, kaiming_normal, orthogonal, pytorch, default)",
                c->path, cfg_str(c, "model", "init"));
    return init;
}

void *recurrent_lm_create_body(const cfg *c, int V, tz_params *P, tz_rng *r, nn_recurrent_config rc) {
    rlm *m = calloc(1, sizeof *m);
    if (!m) tz_fail("recurrent lm: out of memory");
    int E = (int)cfg_int(c, "model", "embed");
    rc.input = E;
    rc.hidden = (int)cfg_int(c, "model", "hidden");
    rc.layers = (int)cfg_int(c, "model", "layers");
    rc.residual = cfg_bool(c, "model", "residual");
    m->dropout = (real)cfg_float(c, "model", "dropout");
    rc.dropout = m->dropout;
    rc.init = recurrent_lm_init_of(c);
    // Element-wise inits (Zaremba's U(-0.1, 0.1)) cover the embedding and output layer too.
    nn_init emb_init = rc.init.kind == NN_INIT_UNIFORM || rc.init.kind == NN_INIT_NORMAL ? rc.init : (nn_init){0};
    nn_embedding_init(&m->emb, P, "embed", V, E, emb_init, r);
    nn_recurrent_init(&m->rnn, P, "rnn", &rc, r);
    m->L = rc.layers, m->H = rc.hidden;
    return m;
}

void *recurrent_lm_create(const cfg *c, int V, tz_params *P, tz_rng *r, nn_recurrent_config rc) {
    rlm *m = recurrent_lm_create_body(c, V, P, r, rc);
    nn_init init = recurrent_lm_init_of(c);
    nn_linear_init(&m->out, P, "out", m->H, V, 1,
                   init.kind == NN_INIT_UNIFORM || init.kind == NN_INIT_NORMAL ? init : (nn_init){0}, r);
    return m;
}

void recurrent_lm_reset(void *vm, int B) {
    rlm *m = vm;
    size_t n = (size_t)m->L * B * m->H;
    if (B != m->B) {
        free(m->h);
        m->h = malloc(sizeof(real) * 2 * n);
        if (!m->h) tz_fail("recurrent lm: out of memory for the state of %d streams", B);
        m->c = m->h + n;
        m->B = B;
    }
    memset(m->h, 0, sizeof(real) * 2 * n);
}

real *recurrent_lm_carried(void *vm, size_t *n) {
    rlm *m = vm;
    *n = m->h ? 2 * (size_t)m->L * m->B * m->H : 0;
    return m->h;
}

int recurrent_lm_carried_blocks(const void *vm) { return 2 * ((const rlm *)vm)->L; }

// The carried state as a step tensor: a copy, so backward still sees this step's initial state
// after the state buffers have moved on.
static tz_tensor *state_in(tz_graph *g, const rlm *m, const real *s) {
    tz_tensor *t = tz_empty(g, 3, (const int[]){m->L, m->B, m->H});
    memcpy(t->data, s, sizeof(real) * t->n);
    return t;
}

tz_tensor *recurrent_lm_states(tz_graph *g, void *vm, const tz_batch *b) {
    rlm *m = vm;
    int B = b->B, T = b->T, *ids = tz_arena_alloc(&g->arena, sizeof(int) * B * T);
    if (B != m->B) recurrent_lm_reset(m, B);
    for (int t = 0; t < T; t++)
        for (int bi = 0; bi < B; bi++) ids[t * B + bi] = b->x[bi * T + t];
    tz_tensor *x = tz_reshape(g, nn_embedding_forward(g, &m->emb, ids, T * B), 3, (const int[]){T, B, m->emb.dim});
    x = tz_dropout(g, x, m->dropout);
    int lstm = m->rnn.c.cell == NN_CELL_LSTM;
    tz_tensor *h_n, *c_n;
    tz_tensor *y =
        nn_recurrent_forward(g, &m->rnn, x, state_in(g, m, m->h), lstm ? state_in(g, m, m->c) : NULL, &h_n, &c_n);
    memcpy(m->h, h_n->data, sizeof(real) * h_n->n);
    if (lstm) memcpy(m->c, c_n->data, sizeof(real) * c_n->n);
    return y;
}

// x (B,T) -> logits (T*B, V) in time-major order; targets reordered to match.
tz_tensor *recurrent_lm_forward(tz_graph *g, void *vm, tz_batch *b) {
    rlm *m = vm;
    int B = b->B, T = b->T, *targets = tz_arena_alloc(&g->arena, sizeof(int) * B * T);
    for (int t = 0; t < T; t++)
        for (int bi = 0; bi < B; bi++) targets[t * B + bi] = b->y[bi * T + t];
    tz_tensor *y = recurrent_lm_states(g, m, b);
    y = tz_dropout(g, tz_reshape(g, y, 2, (const int[]){T * B, m->H}), m->dropout);
    b->targets = targets;
    b->n_targets = T * B;
    return nn_linear_forward(g, &m->out, y);
}

void recurrent_lm_free(void *vm) {
    rlm *m = vm;
    free(m->h);
    free(m);
}
