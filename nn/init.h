// init.h: weight initialisers, selectable by name from a cfg. All draw from a tz_rng, so a
// seed reproduces a model bit for bit.
#ifndef NN_INIT_H
#define NN_INIT_H

#include "tz.h"

typedef enum {
    NN_INIT_DEFAULT, // the layer's own default (PyTorch's, see below)
    NN_INIT_ZEROS,
    NN_INIT_ONES,
    NN_INIT_CONSTANT, // every element = a
    NN_INIT_UNIFORM, // U(-a, a)
    NN_INIT_NORMAL, // N(0, a^2)
    NN_INIT_XAVIER_UNIFORM, // Glorot & Bengio 2010: U(-b, b), b = a * sqrt(6 / (fan_in + fan_out)), a = gain (1)
    NN_INIT_XAVIER_NORMAL, // N(0, a^2 * 2 / (fan_in + fan_out))
    NN_INIT_KAIMING_UNIFORM, // He et al. 2015, fan_in mode: U(-b, b), b = a * sqrt(3 / fan_in), a = gain (sqrt 2)
    NN_INIT_KAIMING_NORMAL, // N(0, a^2 / fan_in)
    NN_INIT_ORTHOGONAL, // Saxe et al. 2014: each (rows/blocks, cols) block orthogonal, times a (gain 1)
    NN_INIT_PYTORCH, // U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's Linear/RNN/LSTM/GRU default
} nn_init_kind;

typedef struct nn_init {
    nn_init_kind kind;
    double a; // range, std, gain or constant as the kind says; 0 means the kind's default
} nn_init;

// "uniform", "normal", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal",
// "orthogonal", "pytorch", "zeros", "ones", "constant", "default". Returns 0 if unknown.
int nn_init_parse(const char *name, nn_init_kind *kind);
const char *nn_init_name(nn_init_kind kind);
// Fills w. For a weight (out, in): fan_in = in, fan_out = out. blocks > 1 splits the rows into
// that many equal blocks (stacked gates of a recurrent matrix) initialised one by one.
// NN_INIT_DEFAULT must have been resolved by the caller (it is an error here).
void nn_init_apply(tz_tensor *w, nn_init init, int fan_in, int fan_out, int blocks, tz_rng *r);
// The init to use: `init` unless it is NN_INIT_DEFAULT, then `fallback`.
nn_init nn_init_or(nn_init init, nn_init fallback);

#endif
