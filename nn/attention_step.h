// attention_step.h: one decoder step of Bahdanau et al. 2015's additive attention as one tape
// node with a hand-written backward (attention_step.c):
//   e_j = v^T tanh(ws + keys_j) for j < len, a = softmax_j(e), c = sum_j a_j h_j,
// where ws = W_a s_{i-1} (one product per step, done by the caller) and keys_j = U_a h_j
// (nn_bahdanau_keys, once per sentence). The same function as nn_bahdanau_forward, without its
// eight nodes and their (B,S,A) intermediates per step; padded j get weight exactly 0.
#ifndef NN_ATTENTION_STEP_H
#define NN_ATTENTION_STEP_H

#include "tz.h"

// ws (B,A), keys (B,S,A), v (1,A) or (A), h (B,S,C), lengths (B) in [1,S] or NULL -> c (B,C).
// *weights (B,S) (arena, no gradient) when weights != NULL.
tz_tensor *nn_additive_attention_step(tz_graph *g, tz_tensor *ws, tz_tensor *keys, tz_tensor *v, tz_tensor *h,
                                      const int *lengths, tz_tensor **weights);

#endif
