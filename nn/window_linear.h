// window_linear.h: a Linear over a window of n looked-up embeddings, Bengio et al. 2003's H x
// with x = [C(w_{r,0}); ...; C(w_{r,n-1})]. Split W by position, W = [W_0 ... W_{n-1}]:
//   y_r = b + sum_p C(w_{r,p}) W_p^T
// and C(w) W_p^T is the same vector for every row that has word w at position p. When a batch
// has few distinct (position, word) pairs (a character vocabulary: 128 windows of 16 characters
// hold ~530 distinct pairs, not 2,048), each pair's product is computed once and the rows sum
// them; the backward sums the output's gradient per pair first, then multiplies once per pair.
// The same function as tz_linear on the gathered rows (another order of the sums), with a
// fraction of the multiply-adds. A batch with many distinct pairs (a word vocabulary), or
// products too small to gain, takes the plain path: gather x, one product.
#ifndef NN_WINDOW_LINEAR_H
#define NN_WINDOW_LINEAR_H

#include "tz.h"

// group: -1 per batch (the pairs' way when there are at most half as many distinct pairs as
// rows x positions and each position's product is large enough to be worth its calls: at least
// ~1M multiply-adds), 0 never, 1 always.
// C (V,E), ids (R,n) in [0,V), w (O, n*E), b (O) or NULL -> (R,O)
tz_tensor *nn_window_linear(tz_graph *g, tz_tensor *C, const int *ids, int R, int n, tz_tensor *w, tz_tensor *b,
                            int group);

#endif
