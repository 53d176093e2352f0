// op_layernorm.c: layer normalisation over the last dim (Ba, Kiros & Hinton 2016).
//   xhat = (x - mean) * rstd,  y = xhat * gamma + beta
//   dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),  dxhat = dy * gamma
#include "internal.h"

#include <math.h>

static void layernorm_backward(tz_graph *g, tz_node *n) {
    (void)g;
    tz_tensor *x = n->in[0], *gamma = n->in[1], *beta = n->in[2], *y = n->out;
    const real *stats = n->aux; // mean, rstd per row
    int D = tz_cols(x);
    for (int r = 0; r < tz_rows(x); r++) {
        const real *xr = x->data + (long)r * D, *gy = y->grad + (long)r * D;
        real mean = stats[2 * r], rstd = stats[2 * r + 1];
        real sum_d = 0, sum_dx = 0;
        for (int j = 0; j < D; j++) {
            real xhat = (xr[j] - mean) * rstd, d = gy[j] * (gamma ? gamma->data[j] : 1);
            sum_d += d;
            sum_dx += d * xhat;
            if (gamma && gamma->grad) gamma->grad[j] += gy[j] * xhat;
            if (beta && beta->grad) beta->grad[j] += gy[j];
        }
        if (!x->grad) continue;
        real *gx = x->grad + (long)r * D;
        for (int j = 0; j < D; j++) {
            real xhat = (xr[j] - mean) * rstd, d = gy[j] * (gamma ? gamma->data[j] : 1);
            gx[j] += rstd * (d - sum_d / D - xhat * sum_dx / D);
        }
    }
}
static const tz_op op_layernorm = {"layernorm", layernorm_backward};

tz_tensor *tz_layernorm(tz_graph *g, tz_tensor *x, tz_tensor *gamma, tz_tensor *beta, real eps) {
    int D = tz_cols(x), rows = tz_rows(x);
    tz_shape_bufs s;
    if (gamma && (gamma->ndim != 1 || gamma->shape[0] != D))
        tz_fail("layernorm: gamma %s does not fit input %s", tz_shape_str(gamma, s.a), tz_shape_str(x, s.b));
    if (beta && (beta->ndim != 1 || beta->shape[0] != D))
        tz_fail("layernorm: beta %s does not fit input %s", tz_shape_str(beta, s.a), tz_shape_str(x, s.b));
    tz_tensor *in[3] = {x, gamma, beta};
    tz_tensor *y = tz_op_output(g, x->ndim, x->shape, in, 3);
    real *stats = tz_arena_alloc(&g->arena, sizeof(real) * 2 * rows);
    for (int r = 0; r < rows; r++) {
        const real *xr = x->data + (long)r * D;
        real *yr = y->data + (long)r * D;
        double mean = 0, var = 0; // two passes in double: stable for rows with a large offset
        for (int j = 0; j < D; j++) mean += xr[j];
        mean /= D;
        for (int j = 0; j < D; j++) var += (xr[j] - mean) * (xr[j] - mean);
        var /= D;
        real rstd = (real)(1 / sqrt(var + eps));
        stats[2 * r] = (real)mean;
        stats[2 * r + 1] = rstd;
        for (int j = 0; j < D; j++) {
            real v = (xr[j] - (real)mean) * rstd;
            yr[j] = v * (gamma ? gamma->data[j] : 1) + (beta ? beta->data[j] : 0);
        }
    }
    tz_node *n = tz_op_record(g, &op_layernorm, y, in, 3);
    if (n) n->aux = stats;
    return y;
}
