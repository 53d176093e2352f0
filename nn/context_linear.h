// context_linear.h: a Linear over [a_r; c_{seq(r)}; e_r] whose middle block is one vector per
// group of rows: c W_c^T is computed once per group instead of once per row, and c's gradients
// from the per-group sums of the output's gradient. The readout of Cho et al. 2014's decoder
// sees the same summary c at every step of a sentence (a group per sentence); a readout that
// sees E y_{i-1} sees the same vector for every row whose previous word is the same (a group
// per distinct word, e NULL). The same function as tz_linear on the concatenated rows (another
// order of the sums), with fewer multiply-adds.
#ifndef NN_CONTEXT_LINEAR_H
#define NN_CONTEXT_LINEAR_H

#include "tz.h"

// a (n,A), c (G,C), e (n,E) or NULL (E = 0), seq (n) in [0,G), w (O, A+C+E), b (O) or NULL -> (n,O)
tz_tensor *nn_context_linear(tz_graph *g, tz_tensor *a, tz_tensor *c, tz_tensor *e, const int *seq, tz_tensor *w,
                             tz_tensor *b);

#endif
