// optim.c: SGD, Adagrad, RMSProp, Adam, AdamW and gradient clipping with torch.optim's
// semantics (PyTorch 1.13, single-tensor path, dampening 0, no amsgrad/centered/maximize).
// Elementwise arithmetic is in `real`, as PyTorch does it in the parameters' dtype.
#include "optim.h"

#include "fastmath.h"
#include "lanes.h"
#include "parallel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {"sgd", "adagrad", "rmsprop", "adam", "adamw"};
#define N_KINDS ((int)(sizeof names / sizeof names[0]))

const char *nn_optim_name(nn_optim_kind kind) {
    return (int)kind >= 0 && (int)kind < N_KINDS ? names[kind] : "unknown";
}

nn_optim_kind nn_optim_parse(const char *name) {
    for (int k = 0; name && k < N_KINDS; k++)
        if (!strcmp(name, names[k])) return (nn_optim_kind)k;
    tz_fail("optim: unknown optimiser '%s' (sgd, adagrad, rmsprop, adam, adamw)", name ? name : "(null)");
}

nn_optim_config nn_optim_defaults(nn_optim_kind kind) {
    nn_optim_config c = {.kind = kind, .alpha = 0.99, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    if (kind == NN_OPTIM_ADAGRAD) c.eps = 1e-10;
    if (kind == NN_OPTIM_ADAMW) c.weight_decay = 0.01;
    return c;
}

int nn_optim_decays(const tz_params *P, int i, int no_decay_embeddings) {
    // nanoGPT's configure_optimizers: matrices decay; biases and norm gains (1-D) do not.
    unsigned f = P->flags[i];
    return P->t[i]->ndim >= 2 && !(f & TZ_PARAM_NO_DECAY) && !(no_decay_embeddings && (f & TZ_PARAM_EMBEDDING));
}

void nn_optim_init(nn_optim *o, const tz_params *P, const nn_optim_config *c) {
    const char *name = nn_optim_name(c->kind);
    if (!strcmp(name, "unknown")) tz_fail("optim: unknown kind %d", (int)c->kind);
    if (!(c->momentum >= 0 && c->momentum < 1)) tz_fail("optim %s: momentum = %g must be in [0, 1)", name, c->momentum);
    if (c->nesterov && !(c->kind == NN_OPTIM_SGD && c->momentum > 0))
        tz_fail("optim %s: nesterov needs SGD with momentum > 0 (momentum = %g)", name, c->momentum);
    if (c->momentum > 0 && c->kind != NN_OPTIM_SGD && c->kind != NN_OPTIM_RMSPROP)
        tz_fail("optim %s: momentum = %g is for sgd and rmsprop only", name, c->momentum);
    if (!(c->alpha >= 0 && c->alpha <= 1)) tz_fail("optim %s: alpha = %g must be in [0, 1]", name, c->alpha);
    if (!(c->beta1 >= 0 && c->beta1 < 1 && c->beta2 >= 0 && c->beta2 < 1))
        tz_fail("optim %s: betas = (%g, %g) must be in [0, 1)", name, c->beta1, c->beta2);
    if (!(c->eps >= 0)) tz_fail("optim %s: eps = %g must be >= 0", name, c->eps);
    if (!(c->weight_decay >= 0)) tz_fail("optim %s: weight_decay = %g must be >= 0", name, c->weight_decay);

    memset(o, 0, sizeof *o);
    o->c = *c;
    o->n = P->n;
    o->count = P->count;
    switch (c->kind) {
        case NN_OPTIM_SGD:
            if (c->momentum > 0) o->state_name[o->n_state++] = "momentum_buffer";
            break;
        case NN_OPTIM_ADAGRAD: o->state_name[o->n_state++] = "sum"; break;
        case NN_OPTIM_RMSPROP:
            o->state_name[o->n_state++] = "square_avg";
            if (c->momentum > 0) o->state_name[o->n_state++] = "momentum_buffer";
            break;
        case NN_OPTIM_ADAM:
        case NN_OPTIM_ADAMW:
            o->state_name[o->n_state++] = "exp_avg";
            o->state_name[o->n_state++] = "exp_avg_sq";
            break;
    }
    for (int k = 0; k < o->n_state; k++) {
        o->state[k] = calloc(o->n ? o->n : 1, sizeof(real));
        if (!o->state[k]) tz_fail("optim %s: out of memory for %zu elements of state", name, o->n);
    }
    o->decay = malloc(o->count ? (size_t)o->count : 1);
    if (!o->decay) tz_fail("optim %s: out of memory", name);
    for (int i = 0; i < o->count; i++) o->decay[i] = (unsigned char)nn_optim_decays(P, i, c->no_decay_embeddings);
}

real *nn_optim_state(const nn_optim *o, const char *name) {
    for (int k = 0; k < o->n_state; k++)
        if (!strcmp(o->state_name[k], name)) return o->state[k];
    return NULL;
}

void nn_optim_free(nn_optim *o) {
    for (int k = 0; k < o->n_state; k++) free(o->state[k]);
    free(o->decay);
    memset(o, 0, sizeof *o);
}

// The per-step scalars, computed once in double and rounded to real.
typedef struct step_consts {
    real lr, mom, alpha, b1, b2, eps;
    real c_alpha, c_b1, c_b2; // 1 - alpha, 1 - beta1, 1 - beta2 (rounded from double:
        // 1 - (float)0.999 is off by 1.3e-5 relative)
    real step_size, bc2_sqrt, decay_mul; // Adam: lr / bc1, sqrt(bc2); AdamW: 1 - lr wd
    real grad_scale; // the gradient is read as grad_scale x P->grad (1: as it is, the same bits)
} step_consts;

// One tensor's elements [lo, hi): w, gr, s0, s1 point at element lo; wd is its L2 coefficient.
static void update(const nn_optim *o, const step_consts *k, real wd, size_t n, real *w, const real *gr, real *s0,
                   real *s1) {
    const real gs = k->grad_scale;
    switch (o->c.kind) {
        case NN_OPTIM_SGD: // buf = momentum buf + g; step with buf, or g + momentum buf (Nesterov)
            for (size_t j = 0; j < n; j++) {
                real g = gs * gr[j] + wd * w[j];
                if (s0) {
                    s0[j] = k->mom * s0[j] + g;
                    g = o->c.nesterov ? g + k->mom * s0[j] : s0[j];
                }
                w[j] -= k->lr * g;
            }
            break;
        case NN_OPTIM_ADAGRAD: // Duchi et al. 2011: G += g^2; θ -= lr g / (sqrt(G) + eps)
            for (size_t j = 0; j < n; j++) {
                real g = gs * gr[j] + wd * w[j];
                s0[j] += g * g;
                w[j] -= k->lr * g / (tz_real_sqrt(s0[j]) + k->eps);
            }
            break;
        case NN_OPTIM_RMSPROP: // Tieleman & Hinton 2012: v = α v + (1-α) g^2; θ -= lr g / (sqrt(v) + eps)
            for (size_t j = 0; j < n; j++) {
                real g = gs * gr[j] + wd * w[j];
                s0[j] = k->alpha * s0[j] + k->c_alpha * g * g;
                real u = g / (tz_real_sqrt(s0[j]) + k->eps);
                if (s1) u = s1[j] = k->mom * s1[j] + u; // PyTorch: buf = momentum buf + g / avg
                w[j] -= k->lr * u;
            }
            break;
        case NN_OPTIM_ADAM:
        case NN_OPTIM_ADAMW: { // Kingma & Ba 2015, Alg. 1 in PyTorch's arrangement of the bias corrections
            // Constants in locals, so the compiler knows the stores to w, s0, s1 cannot change them
            // and vectorises the loop. decay_mul is 1 for Adam: AdamW's decoupled decay (Loshchilov
            // & Hutter 2019) costs Adam nothing.
            const real b1 = k->b1, b2 = k->b2, c_b1 = k->c_b1, c_b2 = k->c_b2, eps = k->eps;
            const real inv_bc2_sqrt = 1 / k->bc2_sqrt, step_size = k->step_size;
            const real decay_mul = o->c.kind == NN_OPTIM_ADAMW ? k->decay_mul : 1;
            for (size_t j = 0; j < n; j++) {
                real g = gs * gr[j] + wd * w[j];
                real m = b1 * s0[j] + c_b1 * g, v = b2 * s1[j] + c_b2 * g * g;
                s0[j] = m, s1[j] = v;
                w[j] = w[j] * decay_mul - step_size * m / (tz_real_sqrt(v) * inv_bc2_sqrt + eps);
            }
            break;
        }
    }
}

typedef struct {
    const nn_optim *o;
    const step_consts *k;
    tz_params *P;
} step_args;

// Elements [lo, hi) of the parameter block, tensor by tensor (each has its own decay rule). The
// block is split in element ranges so both cores share the work evenly, however the tensors'
// sizes fall; each element's update is the same whichever thread makes it.
static void step_range(void *arg, long lo, long hi) {
    const step_args *a = arg;
    const nn_optim *o = a->o;
    const nn_optim_config *c = &o->c;
    tz_params *P = a->P;
    for (int i = 0; i < P->count; i++) {
        long t0 = (long)P->off[i], t1 = t0 + P->t[i]->n;
        long b = t0 > lo ? t0 : lo, e = t1 < hi ? t1 : hi;
        if (b >= e) continue;
        // AdamW decays by decay_mul instead; the others add wd θ to the gradient (L2).
        real wd = o->decay[i] && c->kind != NN_OPTIM_ADAMW ? (real)c->weight_decay : 0;
        step_consts ki = *a->k;
        if (c->kind == NN_OPTIM_ADAMW && !o->decay[i]) ki.decay_mul = 1;
        update(o, &ki, wd, (size_t)(e - b), P->data + b, P->grad + b, o->state[0] ? o->state[0] + b : NULL,
               o->state[1] ? o->state[1] + b : NULL);
    }
}

void nn_optim_step(nn_optim *o, tz_params *P, double lr) { nn_optim_step_scaled(o, P, lr, 1); }

void nn_optim_step_scaled(nn_optim *o, tz_params *P, double lr, double grad_scale) {
    const nn_optim_config *c = &o->c;
    if (P->n != o->n || P->count != o->count)
        tz_fail("optim %s: params have %d tensors, %zu elements; the optimiser was made for %d, %zu",
                nn_optim_name(c->kind), P->count, P->n, o->count, o->n);
    if (!(lr >= 0)) tz_fail("optim %s: lr = %g must be >= 0", nn_optim_name(c->kind), lr);
    o->step++;
    double bc1 = 1 - pow(c->beta1, (double)o->step), bc2 = 1 - pow(c->beta2, (double)o->step);
    step_consts k = {
        .lr = (real)lr,
        .mom = (real)c->momentum,
        .alpha = (real)c->alpha,
        .b1 = (real)c->beta1,
        .b2 = (real)c->beta2,
        .eps = (real)c->eps,
        .c_alpha = (real)(1 - c->alpha),
        .c_b1 = (real)(1 - c->beta1),
        .c_b2 = (real)(1 - c->beta2),
        .step_size = (real)(lr / bc1),
        .bc2_sqrt = (real)sqrt(bc2),
        .decay_mul = (real)(1 - lr * c->weight_decay),
        .grad_scale = (real)grad_scale,
    };
    step_args a = {o, &k, P};
    tz_parallel_for((long)P->n, 12, step_range, &a);
}

// Sums of squares of fixed blocks of the gradient (the blocks depend only on its size, so the
// norm is the same bits whatever the thread count), computed on both cores.
#define NORM_BLOCKS 256
typedef struct {
    const real *g;
    size_t n, block;
    double part[NORM_BLOCKS];
    real scale;
} norm_args;

static void norm_blocks(void *arg, long lo, long hi) {
    norm_args *a = arg;
    for (long b = lo; b < hi; b++) {
        size_t s = (size_t)b * a->block, e = s + a->block < a->n ? s + a->block : a->n;
        const real *restrict g = a->g + s;
        double ss;
        TZ_LANE_SUM_AS(double, ss, (long)(e - s), j, (double)g[j] * g[j]); // one serial chain was 60% of Adam's time
        a->part[b] = ss;
    }
}

static void scale_range(void *arg, long lo, long hi) {
    norm_args *a = arg;
    real *g = (real *)a->g, k = a->scale;
    for (long j = lo; j < hi; j++) g[j] *= k;
}

double nn_grad_norm(const tz_params *P) {
    norm_args a = {.g = P->grad, .n = P->n, .block = (P->n + NORM_BLOCKS - 1) / NORM_BLOCKS};
    if (a.block == 0) a.block = 1;
    long blocks = (long)((P->n + a.block - 1) / a.block);
    tz_parallel_for(blocks, 2 * (long)a.block, norm_blocks, &a);
    double ss = 0;
    for (long b = 0; b < blocks; b++) ss += a.part[b];
    return sqrt(ss);
}

double nn_clip_scale(double norm, double max_norm) {
    if (!(max_norm >= 0)) tz_fail("clip_grad_norm: max_norm = %g must be >= 0", max_norm);
    return norm > max_norm ? (double)(real)(max_norm / (norm + 1e-6)) : 1; // PyTorch: g *= max / (norm + 1e-6)
}

double nn_clip_grad_norm(tz_params *P, double max_norm) {
    double norm = nn_grad_norm(P), scale = nn_clip_scale(norm, max_norm);
    if (scale != 1) {
        norm_args a = {.g = P->grad, .scale = (real)scale};
        tz_parallel_for((long)P->n, 1, scale_range, &a);
    }
    return norm;
}

void nn_clip_grad_value(tz_params *P, double v) {
    if (!(v >= 0)) tz_fail("clip_grad_value: v = %g must be >= 0", v);
    real hi = (real)v;
    for (size_t j = 0; j < P->n; j++) {
        if (P->grad[j] > hi) P->grad[j] = hi;
        else if (P->grad[j] < -hi) P->grad[j] = -hi;
    }
}
