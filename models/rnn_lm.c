// rnn_lm.c: Mikolov, Karafiat, Burget, Cernocky & Khudanpur 2010, "Recurrent neural network based
// language model" (Interspeech): s(t) = f(U w(t) + W s(t-1)), y(t) = softmax(V s(t)), trained
// with truncated BPTT. f is tanh here (the paper's sigmoid is the less common choice today).
#include "recurrent_lm.h"

static const cfg_key rnn_keys[] = {{0}}; // the family's keys only

static void *rnn_create(const cfg *c, int V, int block, tz_params *P, tz_rng *r) {
    (void)block; // a recurrence takes windows of any length
    return recurrent_lm_create(c, V, P, r, nn_recurrent_defaults(NN_CELL_RNN, 0, 0));
}

const tz_model_def tz_model_rnn = {
    .name = "rnn",
    .paper = "Mikolov et al. 2010, Recurrent neural network based language model",
    .family_keys = recurrent_lm_keys,
    .keys = rnn_keys,
    .stream = 1,
    .create = rnn_create,
    .forward = recurrent_lm_forward,
    .reset = recurrent_lm_reset,
    .carried = recurrent_lm_carried,
    .carried_blocks = recurrent_lm_carried_blocks,
    .free = recurrent_lm_free,
};
