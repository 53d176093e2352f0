// op_layernorm.c: layer normalisation over the last dim (Ba, Kiros & Hinton 2016).
//   xhat = (x - mean) * rstd,  y = xhat * gamma + beta
//   dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),  dxhat = dy * gamma
// Rows run on both cores; gamma's and beta's gradients (sums over rows) are split by column, so
// every sum keeps the serial order whatever the thread count.
#include "internal.h"
#include "parallel.h"

#include <math.h>

typedef struct {
    const tz_tensor *x, *gamma, *beta, *y;
    real *stats; // mean, rstd per row
    real eps;
    int D;
} ln_args;

static void ln_bw_rows(void *arg, long lo, long hi) {
    const ln_args *a = arg;
    int D = a->D;
    const real *gm = a->gamma ? a->gamma->data : NULL;
    for (long r = lo; r < hi; r++) {
        const real *xr = a->x->data + r * D, *gy = a->y->grad + r * D;
        real mean = a->stats[2 * r], rstd = a->stats[2 * r + 1], sum_d = 0, sum_dx = 0;
        for (int j = 0; j < D; j++) {
            real xhat = (xr[j] - mean) * rstd, d = gy[j] * (gm ? gm[j] : 1);
            sum_d += d;
            sum_dx += d * xhat;
        }
        real *gx = a->x->grad + r * D;
        for (int j = 0; j < D; j++) {
            real xhat = (xr[j] - mean) * rstd, d = gy[j] * (gm ? gm[j] : 1);
            gx[j] += rstd * (d - sum_d / D - xhat * sum_dx / D);
        }
    }
}

// Columns [lo, hi) of gamma's and beta's gradients: sums over all rows, in row order.
static void ln_bw_cols(void *arg, long lo, long hi) {
    const ln_args *a = arg;
    int D = a->D, rows = tz_rows(a->x);
    real *restrict gg = a->gamma && a->gamma->grad ? a->gamma->grad : NULL;
    real *restrict gb = a->beta && a->beta->grad ? a->beta->grad : NULL;
    for (int r = 0; r < rows; r++) {
        const real *restrict xr = a->x->data + (long)r * D, *restrict gy = a->y->grad + (long)r * D;
        real mean = a->stats[2 * r], rstd = a->stats[2 * r + 1];
        if (gg)
            for (long j = lo; j < hi; j++) gg[j] += gy[j] * (xr[j] - mean) * rstd;
        if (gb)
            for (long j = lo; j < hi; j++) gb[j] += gy[j];
    }
}

static void layernorm_backward(tz_graph *g, tz_node *n) {
    (void)g;
    tz_tensor *x = n->in[0];
    ln_args a = {x, n->in[1], n->in[2], n->out, n->aux, 0, tz_cols(x)};
    if (x->grad) tz_parallel_for(tz_rows(x), 6L * a.D, ln_bw_rows, &a);
    if ((a.gamma && a.gamma->grad) || (a.beta && a.beta->grad)) tz_parallel_for(a.D, 3L * tz_rows(x), ln_bw_cols, &a);
}
static const tz_op op_layernorm = {"layernorm", layernorm_backward};

static void ln_fw_rows(void *arg, long lo, long hi) {
    const ln_args *a = arg;
    int D = a->D;
    const real *gm = a->gamma ? a->gamma->data : NULL, *bt = a->beta ? a->beta->data : NULL;
    for (long r = lo; r < hi; r++) {
        const real *xr = a->x->data + r * D;
        real *yr = a->y->data + r * D;
        double mean = 0, var = 0; // two passes in double: stable for rows with a large offset
        for (int j = 0; j < D; j++) mean += xr[j];
        mean /= D;
        for (int j = 0; j < D; j++) var += (xr[j] - mean) * (xr[j] - mean);
        var /= D;
        real rstd = (real)(1 / sqrt(var + a->eps));
        a->stats[2 * r] = (real)mean;
        a->stats[2 * r + 1] = rstd;
        for (int j = 0; j < D; j++) {
            real v = (xr[j] - (real)mean) * rstd;
            yr[j] = v * (gm ? gm[j] : 1) + (bt ? bt[j] : 0);
        }
    }
}

tz_tensor *tz_layernorm(tz_graph *g, tz_tensor *x, tz_tensor *gamma, tz_tensor *beta, real eps) {
    int D = tz_cols(x), rows = tz_rows(x);
    tz_shape_bufs s;
    if (gamma && (gamma->ndim != 1 || gamma->shape[0] != D))
        tz_fail("layernorm: gamma %s does not fit input %s", tz_shape_str(gamma, s.a), tz_shape_str(x, s.b));
    if (beta && (beta->ndim != 1 || beta->shape[0] != D))
        tz_fail("layernorm: beta %s does not fit input %s", tz_shape_str(beta, s.a), tz_shape_str(x, s.b));
    tz_tensor *in[3] = {x, gamma, beta};
    tz_tensor *y = tz_op_output(g, x->ndim, x->shape, in, 3);
    ln_args a = {x, gamma, beta, y, tz_arena_alloc(&g->arena, sizeof(real) * 2 * rows), eps, D};
    tz_parallel_for(rows, 6L * D, ln_fw_rows, &a);
    tz_node *n = tz_op_record(g, &op_layernorm, y, in, 3);
    if (n) n->aux = a.stats;
    return y;
}
