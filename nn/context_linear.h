// context_linear.h: a Linear over [a_r; c_{seq(r)}; e_r] whose middle block is one vector per
// sequence, as the readout of Cho et al. 2014's decoder, which sees the same summary c at every
// step: c W_c^T is computed once per sequence instead of once per row, and its gradients from
// the per-sequence sums of the output's gradient. The same function as tz_linear on the
// concatenated rows (another order of the sums), with C/(A+C+E) fewer multiply-adds.
#ifndef NN_CONTEXT_LINEAR_H
#define NN_CONTEXT_LINEAR_H

#include "tz.h"

// a (n,A), c (G,C), e (n,E), seq (n) in [0,G), w (O, A+C+E), b (O) or NULL -> (n,O)
tz_tensor *nn_context_linear(tz_graph *g, tz_tensor *a, tz_tensor *c, tz_tensor *e, const int *seq, tz_tensor *w,
                             tz_tensor *b);

#endif
