// gru_step.h: one GRU step as one tape node with a hand-written backward (gru_step.c), for
// decoders that must run step by step (attention needs s_{i-1}) and project their inputs
// themselves (e.g. the embedding part of all steps in one product before the loop).
// Equations and weight layout as tz_gru_seq (recurrent.h): gate order r, z, n;
//   cuDNN form: n = tanh(xg_n + r (U_n h + b_hn));  Cho 2014 form: n = tanh(xg_n + U_n (r h) + b_hn);
//   r = s(xg_r + U_r h + b_hr), z = s(xg_z + U_z h + b_hz), h' = (1 - z) n + z h.
#ifndef NN_GRU_STEP_H
#define NN_GRU_STEP_H

#include "tz.h"

// xg (B,3H) the input side W_ih x + b_ih, h (B,H), w_hh (3H,H), b_hh (3H) or NULL -> h' (B,H).
tz_tensor *nn_gru_cell(tz_graph *g, tz_tensor *xg, tz_tensor *h, tz_tensor *w_hh, tz_tensor *b_hh, int cho);

#endif
