// mlp.c: Bengio, Ducharme, Vincent & Jauvin 2003, "A Neural Probabilistic Language Model" (JMLR).
//   x = [C(w_{t-n+1}); ...; C(w_t)],  y = b + W x + U tanh(d + H x),  P(w_{t+1}) = softmax(y)
// with optional direct connections W and, as the seeds stabilise it, optional BatchNorm on H x.
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "nn.h"

static const cfg_key keys[] = {
    {"model", "context", CFG_INT, "16", "tokens of history each prediction sees (n-1 in the paper)", 1, 1024, NULL},
    {"model", "embed", CFG_INT, "32", "embedding size of each token (m)", 1, 65536, NULL},
    {"model", "hidden", CFG_INT, "512", "tanh hidden units (h)", 1, 65536, NULL},
    {"model", "direct", CFG_BOOL, "false", "direct connections W from the embeddings to the output", 0, 0, NULL},
    {"model", "batchnorm", CFG_BOOL, "false", "BatchNorm1d on H x before the tanh", 0, 0, NULL},
    {"model", "dropout", CFG_FLOAT, "0", "dropout on the hidden layer", 0, 0.99, NULL},
    {"model", "shared_pairs", CFG_STR, "auto",
     "H x once per distinct (position, token) of a batch (without direct connections): auto (when that pays), always or"
     " never; the same function",
     0, 0, "auto always never"},
    {0},
};

typedef struct {
    int n, E, H, V;
    real dropout;
    nn_embedding C;
    nn_linear hid, out, direct;
    nn_batchnorm bn;
    int has_direct, has_bn, shared_pairs; // shared_pairs: -1 auto, 1 always, 0 never (nn_window_linear)
} mlp;

static void *create(const cfg *c, int V, int block, tz_params *P, tz_rng *r) {
    (void)block; // each window of the block is one row; the trainer checks it holds a context (context())
    mlp *m = calloc(1, sizeof *m);
    if (!m) tz_fail("mlp: out of memory");
    m->n = (int)cfg_int(c, "model", "context");
    m->E = (int)cfg_int(c, "model", "embed");
    m->H = (int)cfg_int(c, "model", "hidden");
    m->V = V;
    m->dropout = (real)cfg_float(c, "model", "dropout");
    m->has_direct = cfg_bool(c, "model", "direct");
    m->has_bn = cfg_bool(c, "model", "batchnorm");
    const char *sp = cfg_str(c, "model", "shared_pairs");
    m->shared_pairs = !strcmp(sp, "auto") ? -1 : !strcmp(sp, "always") ? 1 : 0; // cfg allows no other value
    if (m->n < 1) tz_fail("mlp: [model] context = %d must be >= 1", m->n);
    nn_init def = {NN_INIT_DEFAULT, 0};
    nn_embedding_init(&m->C, P, "C", V, m->E, def, r);
    nn_linear_init(&m->hid, P, "H", m->n * m->E, m->H, 1, def, r);
    if (m->has_bn) nn_batchnorm_init(&m->bn, P, "bn", m->H, 1e-5, 0.1);
    nn_linear_init(&m->out, P, "U", m->H, V, 1, def, r);
    if (m->has_direct) nn_linear_init(&m->direct, P, "W", m->n * m->E, V, 0, (nn_init){NN_INIT_ZEROS, 0}, r);
    return m;
}

static int context(const void *vm) { return ((const mlp *)vm)->n - 1; }

// x (B,T): position t (t >= n-1) predicts y[t] from x[t-n+1 .. t]. -> logits (B*(T-n+1), V)
static tz_tensor *forward(tz_graph *g, void *vm, tz_batch *b) {
    mlp *m = vm;
    int n = m->n, per_row = b->T - (n - 1);
    if (per_row < 1) tz_fail("mlp: %d positions are fewer than the context %d", b->T, n);
    int R = b->B * per_row;
    int *ids = tz_arena_alloc(&g->arena, sizeof(int) * R * n), *targets = tz_arena_alloc(&g->arena, sizeof(int) * R);
    for (int bi = 0, k = 0; bi < b->B; bi++)
        for (int t = n - 1; t < b->T; t++, k++) {
            for (int j = 0; j < n; j++) ids[k * n + j] = b->x[bi * b->T + t - n + 1 + j];
            targets[k] = b->y[bi * b->T + t];
        }
    // Without direct connections x itself is not needed: H x comes from the window's ids.
    tz_tensor *x = NULL, *h;
    if (m->has_direct) {
        x = tz_reshape(g, nn_embedding_forward(g, &m->C, ids, R * n), 2, (const int[]){R, n * m->E});
        h = nn_linear_forward(g, &m->hid, x);
    } else h = nn_window_linear(g, m->C.w, ids, R, n, m->hid.w, m->hid.b, m->shared_pairs);
    if (m->has_bn) h = nn_batchnorm_forward(g, &m->bn, h);
    h = tz_dropout(g, tz_tanh(g, h), m->dropout);
    tz_tensor *y = nn_linear_forward(g, &m->out, h);
    if (m->has_direct) y = tz_add(g, y, nn_linear_forward(g, &m->direct, x));
    b->targets = targets;
    b->n_targets = R;
    return y;
}

static void destroy(void *vm) { free(vm); }

const tz_model_def tz_model_mlp = {
    .name = "mlp",
    .paper = "Bengio et al. 2003, A Neural Probabilistic Language Model",
    .keys = keys,
    .stream = 0,
    .create = create,
    .context = context,
    .forward = forward,
    .reset = NULL,
    .free = destroy,
};
