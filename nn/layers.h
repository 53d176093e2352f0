// layers.h: Linear, Embedding, Dropout and the norms (LayerNorm, RMSNorm, BatchNorm1d).
#ifndef NN_LAYERS_H
#define NN_LAYERS_H

#include "init.h"
#include "tz.h"

// y = x W^T + b.  x (.., in) -> (.., out). W "<name>.weight" (out,in), b "<name>.bias" (out).
// Default init: PyTorch's, U(-1/sqrt(in), 1/sqrt(in)) for W and b.
typedef struct nn_linear {
    tz_tensor *w, *b;
    int in, out;
} nn_linear;
void nn_linear_init(nn_linear *l, tz_params *P, const char *name, int in, int out, int bias, nn_init init, tz_rng *r);
tz_tensor *nn_linear_forward(tz_graph *g, const nn_linear *l, tz_tensor *x);

// Rows of a table "<name>.weight" (vocab, dim); ids (n) -> (n, dim). Default init N(0, 1)
// (PyTorch's). Marked TZ_PARAM_EMBEDDING so optimisers can leave it out of weight decay.
typedef struct nn_embedding {
    tz_tensor *w;
    int vocab, dim;
} nn_embedding;
void nn_embedding_init(nn_embedding *e, tz_params *P, const char *name, int vocab, int dim, nn_init init, tz_rng *r);
tz_tensor *nn_embedding_forward(tz_graph *g, const nn_embedding *e, const int *ids, int n);

// Dropout is the op tz_dropout (active only while g->training).

// LayerNorm over the last dim: "<name>.weight" (dim, ones), "<name>.bias" (dim, zeros).
typedef struct nn_layernorm {
    tz_tensor *w, *b;
    int dim;
    real eps;
} nn_layernorm;
void nn_layernorm_init(nn_layernorm *l, tz_params *P, const char *name, int dim, real eps);
tz_tensor *nn_layernorm_forward(tz_graph *g, const nn_layernorm *l, tz_tensor *x);

// RMSNorm (Zhang & Sennrich 2019): x / sqrt(mean(x^2) + eps) * g, g "<name>.weight" (dim, ones).
typedef struct nn_rmsnorm {
    tz_tensor *w;
    int dim;
    real eps;
} nn_rmsnorm;
void nn_rmsnorm_init(nn_rmsnorm *l, tz_params *P, const char *name, int dim, real eps);
tz_tensor *nn_rmsnorm_forward(tz_graph *g, const nn_rmsnorm *l, tz_tensor *x);
// The op itself: x (.., D), gain (D) or NULL.
tz_tensor *tz_rmsnorm(tz_graph *g, tz_tensor *x, tz_tensor *gain, real eps);

// BatchNorm1d (Ioffe & Szegedy 2015) over rows: x (N, D). Training (g->training): normalise
// with the batch's mean and biased variance, update running stats with momentum (PyTorch: the
// unbiased variance goes into running_var). Evaluation: use the running stats.
// "<name>.weight" (ones), "<name>.bias" (zeros); "<name>.running_mean" and "<name>.running_var"
// are TZ_PARAM_BUFFER parameters: saved with the weights, never trained.
typedef struct nn_batchnorm {
    tz_tensor *w, *b;
    tz_tensor *running_mean, *running_var;
    int dim;
    real eps, momentum;
} nn_batchnorm;
void nn_batchnorm_init(nn_batchnorm *l, tz_params *P, const char *name, int dim, real eps, real momentum);
tz_tensor *nn_batchnorm_forward(tz_graph *g, nn_batchnorm *l, tz_tensor *x);

#endif
