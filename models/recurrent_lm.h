// recurrent_lm.h: the language model the recurrent zoo shares (rnn.c, lstm.c, gru.c):
// embedding -> stacked recurrent layer (state carried across batches) -> linear -> softmax.
#ifndef TZ_RECURRENT_LM_H
#define TZ_RECURRENT_LM_H

#include "model.h"
#include "nn.h"

// The [model] keys every recurrent LM has; each model file adds its own and sets defaults.
#define RECURRENT_LM_KEYS(embed, hidden, layers)                                                            \
    {"model", "embed", CFG_INT, embed, "embedding size", 1, 65536},                                                   \
    {"model", "hidden", CFG_INT, hidden, "hidden units per layer", 1, 65536},                                         \
    {"model", "layers", CFG_INT, layers, "stacked recurrent layers", 1, 1024},                                       \
    {"model", "dropout", CFG_FLOAT, "0", "dropout on embeddings, between layers and before the output", 0, 0.99},    \
    {"model", "residual", CFG_BOOL, "false", "residual connections between layers", 0, 0},                        \
    {"model", "init", CFG_STR, "default", "weight init: default (PyTorch's), uniform, normal, xavier_uniform, orthogonal, ...", 0, 0}, \
    {"model", "init_scale", CFG_FLOAT, "0", "range/std/gain of the init (0: the init's own default)", 0, 1e6}

// The definition of a recurrent LM of the zoo: its own name, paper, keys and create function;
// the rest (streams, forward, state, free) is this file's.
#define RECURRENT_LM_DEF(NAME, PAPER)                                                         \
    {.name = NAME, .paper = PAPER, .keys = keys, .stream = 1, .create = create,               \
     .forward = recurrent_lm_forward, .reset = recurrent_lm_reset, .carried = recurrent_lm_carried,     \
     .free = recurrent_lm_free}

void *recurrent_lm_create(const cfg *c, int V, tz_params *P, tz_rng *r, nn_recurrent_config rc);
// Embeddings and the recurrent layer only (no output layer), for models that add their own head.
void *recurrent_lm_create_body(const cfg *c, int V, tz_params *P, tz_rng *r, nn_recurrent_config rc);
// The recurrent layer's outputs for x (B,T), time-major (T,B,H); carries the state on.
tz_tensor *recurrent_lm_states(tz_graph *g, void *m, const tz_batch *b);
tz_tensor *recurrent_lm_forward(tz_graph *g, void *m, tz_batch *b);
void recurrent_lm_reset(void *m, int B);
real *recurrent_lm_carried(void *m, size_t *n);
void recurrent_lm_free(void *m);
// The [model] init/init_scale keys as an nn_init (fails naming the key if unknown).
nn_init recurrent_lm_init_of(const cfg *c);

#endif
