// optim.h: optimisers and gradient clipping over a whole tz_params block, with PyTorch's
// semantics (torch.optim, 1.13) so runs are comparable. Each step is one loop over P->data and
// P->grad and allocates nothing; the state lives in arrays parallel to P->data.
#ifndef NN_OPTIM_H
#define NN_OPTIM_H

#include <stddef.h>

#include "tz.h"

typedef enum { NN_OPTIM_SGD, NN_OPTIM_ADAGRAD, NN_OPTIM_RMSPROP, NN_OPTIM_ADAM, NN_OPTIM_ADAMW } nn_optim_kind;

typedef struct nn_optim_config {
    nn_optim_kind kind;
    double momentum; // SGD, RMSProp: 0 = none (dampening is always 0)
    int nesterov; // SGD: g + momentum * buf (needs momentum > 0)
    double alpha; // RMSProp smoothing of g^2
    double beta1, beta2; // Adam, AdamW
    double eps; // Adagrad, RMSProp, Adam, AdamW
    double weight_decay; // AdamW: decoupled (θ *= 1 - lr wd); the others: L2 (g += wd θ)
    int no_decay_embeddings; // also exempt TZ_PARAM_EMBEDDING tensors from decay
} nn_optim_config;

// PyTorch's defaults for a kind: momentum 0; Adagrad eps 1e-10; RMSProp alpha 0.99, eps 1e-8;
// Adam(W) betas (0.9, 0.999), eps 1e-8; weight_decay 0 (AdamW 0.01). Set what differs.
nn_optim_config nn_optim_defaults(nn_optim_kind kind);
// "sgd", "adagrad", "rmsprop", "adam", "adamw"; anything else is a tz_fail naming the choices.
nn_optim_kind nn_optim_parse(const char *name);
const char *nn_optim_name(nn_optim_kind kind);

// Whether weight decay applies to P's tensor i (nanoGPT's rule): ndim >= 2, not
// TZ_PARAM_NO_DECAY, and not TZ_PARAM_EMBEDDING when no_decay_embeddings is set.
int nn_optim_decays(const tz_params *P, int i, int no_decay_embeddings);

#define NN_OPTIM_MAX_STATE 2

typedef struct nn_optim {
    nn_optim_config c;
    size_t n; // elements of the block it was made for (P->n)
    int count; // tensors of that block (P->count)
    long step; // steps taken (Adam's t; Adagrad/RMSProp/SGD keep it too)
    // The state for checkpoints: n_state arrays of n elements parallel to P->data, named as in
    // PyTorch's state_dict: SGD "momentum_buffer" (if momentum); Adagrad "sum"; RMSProp
    // "square_avg" (+ "momentum_buffer" if momentum); Adam(W) "exp_avg", "exp_avg_sq".
    int n_state;
    const char *state_name[NN_OPTIM_MAX_STATE];
    real *state[NN_OPTIM_MAX_STATE];
    unsigned char *decay; // (count) nn_optim_decays of each tensor, fixed at init
} nn_optim;

// Makes an optimiser for P (its tensors must all be declared by now), state zeroed, step 0.
void nn_optim_init(nn_optim *o, const tz_params *P, const nn_optim_config *c);
// One update of P->data from P->grad (not modified) at learning rate lr. No allocation.
void nn_optim_step(nn_optim *o, tz_params *P, double lr);
// The same from grad_scale x P->grad (P->grad still not modified): clipping by norm folded into
// the update (grad_scale = nn_clip_scale), one pass over the gradient instead of two. The same
// bits as nn_clip_grad_norm then nn_optim_step.
void nn_optim_step_scaled(nn_optim *o, tz_params *P, double lr, double grad_scale);
// The state array called name (n elements), or NULL if this optimiser has none of that name.
real *nn_optim_state(const nn_optim *o, const char *name);
void nn_optim_free(nn_optim *o);

// Global L2 norm of P->grad (accumulated in double); if it exceeds max_norm, every gradient is
// scaled by max_norm / (norm + 1e-6) as torch.nn.utils.clip_grad_norm_. Returns the norm before
// clipping (inf/nan pass through so the caller can skip the step).
double nn_clip_grad_norm(tz_params *P, double max_norm);
// Its two halves: the norm (the same bits whatever the thread count), and the factor the
// gradient is scaled by: max_norm / (norm + 1e-6) rounded to the element type when norm >
// max_norm, else 1.
double nn_grad_norm(const tz_params *P);
double nn_clip_scale(double norm, double max_norm);
// Clamps every gradient to [-v, v] (torch.nn.utils.clip_grad_value_).
void nn_clip_grad_value(tz_params *P, double v);

#endif
