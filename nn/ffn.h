// ffn.h: the position-wise feed-forward blocks of transformers.
//   ReLU  (Vaswani et al. 2017, eq. 2): W2 max(0, W1 x + b1) + b2
//   GELU  (Hendrycks & Gimpel 2016; GPT-2, BERT): W2 gelu(W1 x + b1) + b2
//   SwiGLU (Shazeer 2020, "GLU Variants Improve Transformer"): W2 (silu(W1 x) * W3 x)
// Names follow PyTorch/LLaMA: "<name>.w1" (d_ff, d_model), "<name>.w2" (d_model, d_ff), and for
// SwiGLU the gate's partner "<name>.w3" (d_ff, d_model).
#ifndef NN_FFN_H
#define NN_FFN_H

#include "layers.h"

typedef enum { NN_FFN_RELU, NN_FFN_GELU, NN_FFN_SWIGLU } nn_ffn_kind;

// "relu", "gelu", "swiglu"; returns 0 if unknown.
int nn_ffn_parse(const char *name, nn_ffn_kind *kind);

typedef struct nn_ffn {
    nn_linear w1, w2, w3; // w3 only for SwiGLU
    nn_ffn_kind kind;
    int d_model, d_ff;
    real dropout; // on the hidden activations (as PyTorch's TransformerEncoderLayer); 0 at init
} nn_ffn;
// bias: whether the linears have biases (Vaswani: yes; SwiGLU as in LLaMA: no).
void nn_ffn_init(nn_ffn *f, tz_params *P, const char *name, nn_ffn_kind kind, int d_model, int d_ff, int bias,
                 nn_init init, tz_rng *r);
// x (.., d_model) -> (.., d_model)
tz_tensor *nn_ffn_forward(tz_graph *g, const nn_ffn *f, tz_tensor *x);
// r + nn_ffn_forward(x), r (.., d_model) added in the last product (r NULL: nn_ffn_forward).
tz_tensor *nn_ffn_forward_add(tz_graph *g, const nn_ffn *f, tz_tensor *x, tz_tensor *r);

// SiLU / Swish-1 (Elfwing et al. 2018; Ramachandran et al. 2017): x * sigmoid(x), an op with its
// own backward: d/dx = s (1 + x (1 - s)), s = sigmoid(x).
tz_tensor *tz_silu(tz_graph *g, tz_tensor *x);

#endif
