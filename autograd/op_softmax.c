// op_softmax.c: softmax, log-softmax and the fused cross-entropy (with optional label
// smoothing), all over the last dim and max-subtracted so exp never overflows.
#include "fastmath.h"
#include "internal.h"
#include "lanes.h"
#include "parallel.h"

#include <math.h>

#define EXP tz_fexp // vectorised in the float build, libm's in the float64 one

// One row's max and sum(exp(x - max)); e (may be NULL) receives exp(x - max).
static real row_exp_sum(const real *restrict x, real *restrict e, int V, real *max) {
    real mx, s;
    TZ_LANE_MAX(mx, V, j, x[j]);
    if (e) {
        for (int j = 0; j < V; j++) e[j] = EXP(x[j] - mx);
        TZ_LANE_SUM(s, V, j, e[j]);
    } else TZ_LANE_SUM(s, V, j, EXP(x[j] - mx));
    *max = mx;
    return s;
}

// log(sum(exp(x))) of one row, as max + log(sum(exp(x - max))).
static real row_logsumexp(const real *x, int V) {
    real mx, s = row_exp_sum(x, NULL, V, &mx);
    return mx + tz_real_log(s);
}

// Rows [lo, hi) of a row-wise pass: x (rows, V) in, y out; gy and gx for backward.
typedef struct {
    const real *x, *y, *gy;
    real *out;
    int V;
} rows_args;

static void softmax_bw_rows(void *arg, long lo, long hi) {
    const rows_args *a = arg;
    int V = a->V;
    for (long r = lo; r < hi; r++) {
        const real *yr = a->y + r * V, *gy = a->gy + r * V;
        real *gx = a->out + r * V, dot;
        TZ_LANE_SUM(dot, V, j, gy[j] * yr[j]);
        for (int j = 0; j < V; j++) gx[j] += yr[j] * (gy[j] - dot);
    }
}

static void softmax_backward(tz_graph *g, tz_node *n) {
    (void)g;
    tz_tensor *x = n->in[0], *y = n->out;
    if (!x->grad) return;
    rows_args a = {NULL, y->data, y->grad, x->grad, tz_cols(y)};
    tz_parallel_for(tz_rows(y), 4L * a.V, softmax_bw_rows, &a);
}
static const tz_op op_softmax = {"softmax", softmax_backward, 0};

static void softmax_fw_rows(void *arg, long lo, long hi) {
    const rows_args *a = arg;
    int V = a->V;
    for (long r = lo; r < hi; r++) {
        const real *xr = a->x + r * V;
        real *yr = a->out + r * V, mx, sum = row_exp_sum(xr, yr, V, &mx);
        for (int j = 0; j < V; j++) yr[j] /= sum; // not exp(x - lse): lse rounds at large x
    }
}

tz_tensor *tz_softmax(tz_graph *g, tz_tensor *x) {
    tz_tensor *in[1] = {x};
    tz_tensor *y = tz_op_output(g, x->ndim, x->shape, in, 1);
    rows_args a = {x->data, NULL, NULL, y->data, tz_cols(x)};
    tz_parallel_for(tz_rows(x), 8L * a.V, softmax_fw_rows, &a);
    tz_op_record(g, &op_softmax, y, in, 1);
    return y;
}

static void log_softmax_backward(tz_graph *g, tz_node *n) {
    (void)g;
    tz_tensor *x = n->in[0], *y = n->out;
    if (!x->grad) return;
    int V = tz_cols(y);
    for (int r = 0; r < tz_rows(y); r++) {
        const real *yr = y->data + (long)r * V, *gy = y->grad + (long)r * V;
        real *gx = x->grad + (long)r * V, sum;
        TZ_LANE_SUM(sum, V, j, gy[j]);
        for (int j = 0; j < V; j++) gx[j] += gy[j] - EXP(yr[j]) * sum;
    }
}
static const tz_op op_log_softmax = {"log_softmax", log_softmax_backward, 0};

tz_tensor *tz_log_softmax(tz_graph *g, tz_tensor *x) {
    tz_tensor *in[1] = {x};
    tz_tensor *y = tz_op_output(g, x->ndim, x->shape, in, 1);
    int V = tz_cols(x);
    for (int r = 0; r < tz_rows(x); r++) {
        const real *xr = x->data + (long)r * V;
        real *yr = y->data + (long)r * V, mx, log_sum = tz_real_log(row_exp_sum(xr, NULL, V, &mx));
        for (int j = 0; j < V; j++) yr[j] = (xr[j] - mx) - log_sum;
    }
    tz_op_record(g, &op_log_softmax, y, in, 1);
    return y;
}

// Cross-entropy against the targets q of each row: onehot(y), or with label smoothing eps
// (Szegedy et al. 2016, 7; the Transformer's eps_ls = 0.1, PyTorch's CrossEntropyLoss(label_smoothing
// = eps)) q = (1 - eps) onehot(y) + eps / V, so
//     loss_r = lse(x_r) - (1 - eps) x_r[y] - eps / V sum_j x_r[j],
//     d loss_r / d x_r[j] = softmax(x_r)_j - q_j,
// averaged over the rows whose target is not ignore_index. eps = 0 computes exactly what the
// plain loss always did (the sum of logits is then neither computed nor used).

// Saved for backward: per row the target (or ignore_index) and the log-sum-exp, so the
// probabilities are recomputed instead of stored (rows x vocab would be the largest tensor).
typedef struct {
    int *targets;
    real *lse, *xsum; // xsum: each row's sum of logits (eps > 0 only)
    int count, ignore;
    real eps;
} ce_saved;

// g: the logits' gradient (backward). over: the gradient is fresh, store (zeros for ignored
// rows) instead of adding.
typedef struct {
    const real *x;
    real *g;
    const ce_saved *s;
    real scale;
    int V, over;
} ce_args;

static void ce_bw_rows(void *arg, long lo, long hi) {
    const ce_args *a = arg;
    int V = a->V;
    // q's smoothed part (0 without smoothing, and x - 0 is x: the plain loss's bits) and its hit.
    real u = a->scale * a->s->eps / (real)V, hit = a->scale * (1 - a->s->eps);
    for (long r = lo; r < hi; r++) {
        real *gx = a->g + r * V;
        int t = a->s->targets[r];
        if (t == a->s->ignore) {
            if (a->over)
                for (int j = 0; j < V; j++) gx[j] = 0;
            continue;
        }
        const real *xr = a->x + r * V;
        real lse = a->s->lse[r];
        if (a->over)
            for (int j = 0; j < V; j++) gx[j] = a->scale * EXP(xr[j] - lse) - u;
        else
            for (int j = 0; j < V; j++) gx[j] += a->scale * EXP(xr[j] - lse) - u;
        gx[t] -= hit;
    }
}

static void cross_entropy_backward(tz_graph *g, tz_node *n) {
    (void)g;
    tz_tensor *x = n->in[0];
    ce_saved *s = n->aux;
    if (!x->grad) return;
    if (s->count == 0) { // every row ignored: nothing flows back
        tz_grad_accumulate(x);
        return;
    }
    ce_args a = {x->data, x->grad, s, n->out->grad[0] / s->count, tz_cols(x), tz_grad_overwrite(x)};
    tz_parallel_for(tz_rows(x), 8L * a.V, ce_bw_rows, &a);
}
static const tz_op op_cross_entropy = {"cross_entropy", cross_entropy_backward, TZ_OVERWRITES | TZ_GRAD_IN_INPUT};

// Rows [lo, hi) of the forward: each counted row's log-sum-exp and, with smoothing, its sum.
static void ce_fw_rows(void *arg, long lo, long hi) {
    const ce_args *a = arg;
    int V = a->V;
    for (long r = lo; r < hi; r++) {
        if (a->s->targets[r] == a->s->ignore) continue;
        const real *xr = a->x + r * V;
        a->s->lse[r] = row_logsumexp(xr, V);
        if (a->s->eps > 0) TZ_LANE_SUM(a->s->xsum[r], V, j, xr[j]);
    }
}

// logits (N,V), targets (N) -> scalar
tz_tensor *tz_cross_entropy_smooth(tz_graph *g, tz_tensor *logits, const int *targets, int ignore_index, real eps) {
    if (!(eps >= 0 && eps < 1)) tz_fail("cross_entropy: label smoothing %g must be in [0, 1)", (double)eps);
    int V = tz_cols(logits), rows = tz_rows(logits);
    tz_tensor *in[1] = {logits};
    tz_tensor *y = tz_op_output(g, 0, NULL, in, 1);
    ce_saved *s = tz_arena_alloc(&g->arena, sizeof *s);
    s->targets = tz_arena_alloc(&g->arena, sizeof(int) * rows);
    s->lse = tz_arena_alloc(&g->arena, sizeof(real) * rows);
    s->xsum = eps > 0 ? tz_arena_alloc(&g->arena, sizeof(real) * rows) : NULL;
    s->ignore = ignore_index, s->count = 0, s->eps = eps;
    for (int r = 0; r < rows; r++) {
        int t = targets[r];
        s->targets[r] = t;
        if (t != ignore_index && (t < 0 || t >= V)) {
            char sh[64];
            tz_fail("cross_entropy: target %d of row %d is outside [0,%d) for logits %s", t, r, V,
                    tz_shape_str(logits, sh));
        }
    }
    ce_args a = {logits->data, NULL, s, 0, V, 0};
    tz_parallel_for(rows, 8L * V, ce_fw_rows, &a);
    double total = 0; // summed in double, in row order: thousands of rows lose digits in float
    for (int r = 0; r < rows; r++) {
        int t = targets[r];
        if (t == ignore_index) continue;
        real x_t = logits->data[(long)r * V + t];
        if (eps > 0) total += (double)s->lse[r] - (1 - (double)eps) * x_t - (double)eps / V * s->xsum[r];
        else total += s->lse[r] - x_t;
        s->count++;
    }
    y->data[0] = s->count ? (real)(total / s->count) : 0;
    tz_node *n = tz_op_record(g, &op_cross_entropy, y, in, 1);
    if (n) n->aux = s;
    return y;
}

tz_tensor *tz_cross_entropy(tz_graph *g, tz_tensor *logits, const int *targets, int ignore_index) {
    return tz_cross_entropy_smooth(g, logits, targets, ignore_index, 0);
}
