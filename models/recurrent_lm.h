// recurrent_lm.h: the language model the recurrent zoo shares (rnn.c, lstm.c, gru.c):
// embedding -> stacked recurrent layer (state carried across batches) -> linear -> softmax.
#ifndef TZ_RECURRENT_LM_H
#define TZ_RECURRENT_LM_H

#include "model.h"
#include "nn.h"

// The [model] keys every recurrent LM has (a tz_model_def's family_keys); a model's own table
// may repeat one with another default (e.g. layers).
extern const cfg_key recurrent_lm_keys[];

void *recurrent_lm_create(const cfg *c, int V, tz_params *P, tz_rng *r, nn_recurrent_config rc);
// Embeddings and the recurrent layer only (no output layer), for models that add their own head.
void *recurrent_lm_create_body(const cfg *c, int V, tz_params *P, tz_rng *r, nn_recurrent_config rc);
// The recurrent layer's outputs for x (B,T), time-major (T,B,H); carries the state on.
tz_tensor *recurrent_lm_states(tz_graph *g, void *m, const tz_batch *b);
tz_tensor *recurrent_lm_forward(tz_graph *g, void *m, tz_batch *b);
void recurrent_lm_reset(void *m, int B);
real *recurrent_lm_carried(void *m, size_t *n);
int recurrent_lm_carried_blocks(const void *m); // h and c of each layer: (2 L, B, H)
void recurrent_lm_free(void *m);
// The [model] init/init_scale keys as an nn_init (fails naming the key if unknown).
nn_init recurrent_lm_init_of(const cfg *c);

#endif
