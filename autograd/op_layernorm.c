// op_layernorm.c: layer normalisation over the last dim (Ba, Kiros & Hinton 2016).
//   xhat = (x - mean) * rstd,  y = xhat * gamma + beta
//   dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),  dxhat = dy * gamma
// Rows run on both cores; gamma's and beta's gradients (sums over rows) are split by column, so
// every sum keeps its order whatever the thread count. Row sums use fixed lanes (lanes.h).
#include "internal.h"
#include "lanes.h"
#include "parallel.h"

#include <math.h>

typedef struct {
    const tz_tensor *x, *gamma, *beta, *y;
    real *stats; // mean, rstd per row
    real eps;
    int D;
    int over; // backward: x's gradient is fresh, store instead of adding
} ln_args;

// One row of dx, given dxhat = dy * gamma (gm == NULL: gamma = 1); over: store, else add.
static inline __attribute__((always_inline)) void ln_bw_row(const real *restrict xr, const real *restrict gy,
                                                            const real *restrict gm, real mean, real rstd, int D,
                                                            real *restrict gx, int over) {
    real sum_d, sum_dx;
    TZ_LANE_SUM(sum_d, D, j, gy[j] * (gm ? gm[j] : 1));
    TZ_LANE_SUM(sum_dx, D, j, gy[j] * (gm ? gm[j] : 1) * ((xr[j] - mean) * rstd));
    const real md = sum_d / D, mdx = sum_dx / D;
    if (over)
        for (int j = 0; j < D; j++) gx[j] = rstd * (gy[j] * (gm ? gm[j] : 1) - md - (xr[j] - mean) * rstd * mdx);
    else
        for (int j = 0; j < D; j++) gx[j] += rstd * (gy[j] * (gm ? gm[j] : 1) - md - (xr[j] - mean) * rstd * mdx);
}

static void ln_bw_rows(void *arg, long lo, long hi) {
    const ln_args *a = arg;
    int D = a->D;
    const real *gm = a->gamma ? a->gamma->data : NULL;
    for (long r = lo; r < hi; r++) {
        const real *xr = a->x->data + r * D, *gy = a->y->grad + r * D;
        real mean = a->stats[2 * r], rstd = a->stats[2 * r + 1], *gx = a->x->grad + r * D;
        if (gm) ln_bw_row(xr, gy, gm, mean, rstd, D, gx, a->over);
        else ln_bw_row(xr, gy, NULL, mean, rstd, D, gx, a->over);
    }
}

// Columns [lo, hi) of gamma's and beta's gradients: sums over all rows, in row order.
static void ln_bw_cols(void *arg, long lo, long hi) {
    const ln_args *a = arg;
    const int D = a->D, rows = tz_rows(a->x);
    const real *restrict x = a->x->data, *restrict gy = a->y->grad, *restrict st = a->stats;
    if (a->gamma && a->gamma->grad)
        TZ_COLUMN_SUMS(a->gamma->grad, lo, hi, rows, r, j,
                       gy[(long)r * D + j] * ((x[(long)r * D + j] - st[2 * r]) * st[2 * r + 1]));
    if (a->beta && a->beta->grad) TZ_COLUMN_SUMS(a->beta->grad, lo, hi, rows, r, j, gy[(long)r * D + j]);
}

static void layernorm_backward(tz_graph *g, tz_node *n) {
    (void)g;
    tz_tensor *x = n->in[0];
    ln_args a = {x, n->in[1], n->in[2], n->out, n->aux, 0, tz_cols(x), 0};
    if (x->grad) {
        a.over = tz_grad_overwrite(x);
        tz_parallel_for(tz_rows(x), 6L * a.D, ln_bw_rows, &a);
    }
    if (a.gamma && a.gamma->grad) tz_grad_accumulate(n->in[1]);
    if (a.beta && a.beta->grad) tz_grad_accumulate(n->in[2]);
    if ((a.gamma && a.gamma->grad) || (a.beta && a.beta->grad)) tz_parallel_for(a.D, 3L * tz_rows(x), ln_bw_cols, &a);
}
static const tz_op op_layernorm = {"layernorm", layernorm_backward, TZ_OVERWRITES};

static void ln_fw_rows(void *arg, long lo, long hi) {
    const ln_args *a = arg;
    int D = a->D;
    const real *gm = a->gamma ? a->gamma->data : NULL, *bt = a->beta ? a->beta->data : NULL;
    for (long r = lo; r < hi; r++) {
        const real *restrict xr = a->x->data + r * D;
        real *restrict yr = a->y->data + r * D;
        real mean, var; // two passes: stable for rows with a large offset
        TZ_LANE_SUM(mean, D, j, xr[j]);
        mean /= D;
        TZ_LANE_SUM(var, D, j, (xr[j] - mean) * (xr[j] - mean));
        var /= D;
        real rstd = (real)(1 / sqrt((double)var + a->eps));
        a->stats[2 * r] = mean;
        a->stats[2 * r + 1] = rstd;
        if (gm && bt)
            for (int j = 0; j < D; j++) yr[j] = (xr[j] - mean) * rstd * gm[j] + bt[j];
        else
            for (int j = 0; j < D; j++) yr[j] = (xr[j] - mean) * rstd * (gm ? gm[j] : 1) + (bt ? bt[j] : 0);
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
    ln_args a = {x, gamma, beta, y, tz_arena_alloc(&g->arena, sizeof(real) * 2 * rows), eps, D, 0};
    tz_parallel_for(rows, 6L * D, ln_fw_rows, &a);
    tz_node *n = tz_op_record(g, &op_layernorm, y, in, 3);
    if (n) n->aux = a.stats;
    return y;
}
