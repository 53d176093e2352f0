// norm.c: LayerNorm (on the engine's op), RMSNorm and BatchNorm1d (fused ops with their own
// backward here).
#include "layers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static tz_tensor *ones_param(tz_params *P, const char *name, const char *suffix, int dim, real value) {
    char key[256];
    snprintf(key, sizeof key, "%s.%s", name, suffix);
    tz_tensor *t = tz_param(P, key, 1, (const int[]){dim});
    for (int i = 0; i < dim; i++) t->data[i] = value;
    return t;
}

void nn_layernorm_init(nn_layernorm *l, tz_params *P, const char *name, int dim, real eps) {
    if (dim <= 0 || !(eps >= 0)) tz_fail("layernorm '%s': dim = %d must be > 0, eps = %g >= 0", name, dim, (double)eps);
    l->dim = dim, l->eps = eps;
    l->w = ones_param(P, name, "weight", dim, 1);
    l->b = ones_param(P, name, "bias", dim, 0);
}

tz_tensor *nn_layernorm_forward(tz_graph *g, const nn_layernorm *l, tz_tensor *x) {
    return tz_layernorm(g, x, l->w, l->b, l->eps);
}

// RMSNorm: xhat = x * rstd, rstd = 1/sqrt(mean(x^2) + eps), y = xhat * gain.
//   dx = rstd * (dxhat - xhat * mean(dxhat * xhat)),  dxhat = dy * gain
static void rmsnorm_backward(tz_graph *g, tz_node *n) {
    (void)g;
    tz_tensor *x = n->in[0], *gain = n->in[1], *y = n->out;
    const real *rstd = n->aux;
    int D = tz_cols(x);
    for (int r = 0; r < tz_rows(x); r++) {
        const real *xr = x->data + (long)r * D, *gy = y->grad + (long)r * D;
        real dot = 0;
        for (int j = 0; j < D; j++) {
            real xhat = xr[j] * rstd[r];
            dot += gy[j] * (gain ? gain->data[j] : 1) * xhat;
            if (gain && gain->grad) gain->grad[j] += gy[j] * xhat;
        }
        if (!x->grad) continue;
        real *gx = x->grad + (long)r * D;
        for (int j = 0; j < D; j++) {
            real xhat = xr[j] * rstd[r];
            gx[j] += rstd[r] * (gy[j] * (gain ? gain->data[j] : 1) - xhat * dot / D);
        }
    }
}
static const tz_op op_rmsnorm = {"rmsnorm", rmsnorm_backward, 0};

// x (.., D), gain (D) or NULL
tz_tensor *tz_rmsnorm(tz_graph *g, tz_tensor *x, tz_tensor *gain, real eps) {
    int D = tz_cols(x), rows = tz_rows(x);
    if (gain && (gain->ndim != 1 || gain->shape[0] != D)) {
        char a[64], b[64];
        tz_fail("rmsnorm: gain %s does not fit input %s", tz_shape_str(gain, a), tz_shape_str(x, b));
    }
    tz_tensor *in[2] = {x, gain};
    tz_tensor *y = tz_op_output(g, x->ndim, x->shape, in, 2);
    real *rstd = tz_arena_alloc(&g->arena, sizeof(real) * rows);
    for (int r = 0; r < rows; r++) {
        const real *xr = x->data + (long)r * D;
        real *yr = y->data + (long)r * D;
        double ss = 0;
        for (int j = 0; j < D; j++) ss += (double)xr[j] * xr[j];
        rstd[r] = (real)(1 / sqrt(ss / D + eps));
        for (int j = 0; j < D; j++) yr[j] = xr[j] * rstd[r] * (gain ? gain->data[j] : 1);
    }
    tz_node *n = tz_op_record(g, &op_rmsnorm, y, in, 2);
    if (n) n->aux = rstd;
    return y;
}

void nn_rmsnorm_init(nn_rmsnorm *l, tz_params *P, const char *name, int dim, real eps) {
    if (dim <= 0 || !(eps >= 0)) tz_fail("rmsnorm '%s': dim = %d must be > 0, eps = %g >= 0", name, dim, (double)eps);
    l->dim = dim, l->eps = eps;
    l->w = ones_param(P, name, "weight", dim, 1);
}

tz_tensor *nn_rmsnorm_forward(tz_graph *g, const nn_rmsnorm *l, tz_tensor *x) { return tz_rmsnorm(g, x, l->w, l->eps); }

void nn_batchnorm_init(nn_batchnorm *l, tz_params *P, const char *name, int dim, real eps, real momentum) {
    if (dim <= 0 || !(eps >= 0) || !(momentum >= 0 && momentum <= 1))
        tz_fail("batchnorm '%s': dim = %d must be > 0, eps = %g >= 0, momentum = %g in [0,1]", name, dim, (double)eps,
                (double)momentum);
    l->dim = dim, l->eps = eps, l->momentum = momentum;
    l->w = ones_param(P, name, "weight", dim, 1);
    l->b = ones_param(P, name, "bias", dim, 0);
    l->running_mean = ones_param(P, name, "running_mean", dim, 0);
    l->running_var = ones_param(P, name, "running_var", dim, 1);
    tz_params_set_flags(P, l->running_mean, TZ_PARAM_BUFFER);
    tz_params_set_flags(P, l->running_var, TZ_PARAM_BUFFER);
}

// Saved per column: the mean and rstd used (the batch's in training, the running ones in eval).
// Training: dx = rstd/N * (N dxhat - sum(dxhat) - xhat * sum(dxhat xhat)); eval: dx = dxhat rstd.
static void batchnorm_backward(tz_graph *g, tz_node *n) {
    (void)g;
    tz_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2], *y = n->out;
    const real *mean = n->aux, *rstd = mean + x->shape[1];
    int N = x->shape[0], D = x->shape[1], training = n->iarg[0];
    for (int j = 0; j < D; j++) {
        real sum_d = 0, sum_dx = 0;
        for (int i = 0; i < N; i++) {
            real xhat = (x->data[i * D + j] - mean[j]) * rstd[j], gy = y->grad[i * D + j];
            sum_d += gy * w->data[j];
            sum_dx += gy * w->data[j] * xhat;
            if (w->grad) w->grad[j] += gy * xhat;
            if (b->grad) b->grad[j] += gy;
        }
        if (!x->grad) continue;
        for (int i = 0; i < N; i++) {
            real xhat = (x->data[i * D + j] - mean[j]) * rstd[j], d = y->grad[i * D + j] * w->data[j];
            x->grad[i * D + j] += training ? rstd[j] / N * (N * d - sum_d - xhat * sum_dx) : d * rstd[j];
        }
    }
}
static const tz_op op_batchnorm = {"batchnorm", batchnorm_backward, 0};

// x (N, D)
tz_tensor *nn_batchnorm_forward(tz_graph *g, nn_batchnorm *l, tz_tensor *x) {
    int D = l->dim;
    if (x->ndim != 2 || x->shape[1] != D || (g->training && x->shape[0] < 2)) {
        char s[64];
        tz_fail("batchnorm: input %s does not fit dim %d (want (N,%d), N >= 2 in training)", tz_shape_str(x, s), D, D);
    }
    int N = x->shape[0];
    tz_tensor *in[3] = {x, l->w, l->b};
    tz_tensor *y = tz_op_output(g, 2, x->shape, in, 3);
    real *mean = tz_arena_alloc(&g->arena, sizeof(real) * 2 * D), *rstd = mean + D;
    real *rmean = l->running_mean->data, *rvar = l->running_var->data;
    for (int j = 0; j < D; j++) {
        if (g->training) {
            double m = 0, v = 0;
            for (int i = 0; i < N; i++) m += x->data[i * D + j];
            m /= N;
            for (int i = 0; i < N; i++) v += (x->data[i * D + j] - m) * (x->data[i * D + j] - m);
            mean[j] = (real)m;
            rstd[j] = (real)(1 / sqrt(v / N + l->eps));
            rmean[j] = (1 - l->momentum) * rmean[j] + l->momentum * (real)m;
            rvar[j] = (1 - l->momentum) * rvar[j] + l->momentum * (real)(v / (N - 1));
        } else {
            mean[j] = rmean[j];
            rstd[j] = 1 / (real)sqrt(rvar[j] + l->eps);
        }
        for (int i = 0; i < N; i++)
            y->data[i * D + j] = (x->data[i * D + j] - mean[j]) * rstd[j] * l->w->data[j] + l->b->data[j];
    }
    tz_node *n = tz_op_record(g, &op_batchnorm, y, in, 3);
    if (n) n->aux = mean, n->iarg[0] = g->training;
    return y;
}
