// position.h: positional information for attention, which by itself is order-blind.
//   - sinusoidal (Vaswani et al. 2017, 3.5): a fixed table added to the embeddings;
//   - learned: a trained table "<name>.weight" (max_len, d) added to the embeddings (GPT-2);
//   - rotary, RoPE (Su et al. 2021): q and k rotated pair by pair by a position-dependent angle,
//     so q·k depends on the offset between positions only.
// Every function takes the position of the first row (`offset`), so incremental decoding with a
// KV cache sees the same positions as the full forward.
#ifndef NN_POSITION_H
#define NN_POSITION_H

#include "init.h"
#include "tz.h"

// PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d)), for positions
// offset .. offset+T-1, into pe (T, d) (caller's memory; computed in double).
void nn_sinusoidal_fill(real *pe, int T, int d, int offset);
// x (.., T, d) -> x + PE[offset .. offset+T). The table is made in the graph's arena.
tz_tensor *nn_sinusoidal_forward(tz_graph *g, tz_tensor *x, int offset);

// Learned absolute positions: "<name>.weight" (max_len, dim), default init N(0, 0.02) (GPT-2).
typedef struct nn_learned_pos {
    tz_tensor *w;
    int max_len, dim;
} nn_learned_pos;
void nn_learned_pos_init(nn_learned_pos *p, tz_params *P, const char *name, int max_len, int dim, nn_init init,
                         tz_rng *r);
// x (.., T, dim) -> x + W[offset .. offset+T); offset + T must not exceed max_len.
tz_tensor *nn_learned_pos_forward(tz_graph *g, const nn_learned_pos *p, tz_tensor *x, int offset);

// RoPE as an op with its own backward (the transpose of the rotation): x (.., T, D), D even, the
// row of time t is at position offset + t. Pairs (x_{2i}, x_{2i+1}) are rotated by the angle
// pos * base^(-2i/D) (Su et al. 2021, eq. 34; base 10000 in the paper).
tz_tensor *tz_rope(tz_graph *g, tz_tensor *x, int offset, real base);

#endif
