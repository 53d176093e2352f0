// op_ce_smooth.c: cross-entropy against label-smoothed targets (Szegedy et al. 2016, 7; the
// Transformer's eps_ls = 0.1), PyTorch's CrossEntropyLoss(label_smoothing = eps): the target
// distribution of a row is q = (1 - eps) onehot(y) + eps / V, so
//     loss_r = lse(x_r) - (1 - eps) x_r[y] - eps / V sum_j x_r[j],
//     d loss_r / d x_r[j] = softmax(x_r)_j - q_j,
// averaged over the rows whose target is not ignore_index. A sibling of tz_cross_entropy (its
// own file, so the plain loss stays as it is).
#include "fastmath.h"
#include "internal.h"
#include "lanes.h"
#include "parallel.h"

#include <math.h>

#ifdef TZ_DOUBLE
#define LOG log
#else
#define LOG logf
#endif

// Saved for backward: per row the target (or ignore) and the log-sum-exp (the probabilities are
// recomputed: rows x vocab would be the largest tensor).
typedef struct {
    int *targets;
    real *lse, *xsum;
    int count, ignore;
    real eps;
} ces_saved;
typedef struct {
    const real *x;
    real *g;
    const ces_saved *s;
    real scale;
    int V, over;
} ces_args;

// Rows [lo, hi) of the forward: each counted row's log-sum-exp and sum of logits.
static void ces_fw_rows(void *arg, long lo, long hi) {
    const ces_args *a = arg;
    int V = a->V;
    for (long r = lo; r < hi; r++) {
        if (a->s->targets[r] == a->s->ignore) continue;
        const real *x = a->x + r * V;
        real mx, s, xs;
        TZ_LANE_MAX(mx, V, j, x[j]);
        TZ_LANE_SUM(s, V, j, tz_fexp(x[j] - mx));
        TZ_LANE_SUM(xs, V, j, x[j]);
        a->s->lse[r] = mx + LOG(s);
        a->s->xsum[r] = xs;
    }
}

static void ces_bw_rows(void *arg, long lo, long hi) {
    const ces_args *a = arg;
    int V = a->V;
    real u = a->scale * a->s->eps / (real)V, hit = a->scale * (1 - a->s->eps);
    for (long r = lo; r < hi; r++) {
        real *gx = a->g + r * V;
        int t = a->s->targets[r];
        if (t == a->s->ignore) {
            if (a->over)
                for (int j = 0; j < V; j++) gx[j] = 0;
            continue;
        }
        const real *x = a->x + r * V;
        real lse = a->s->lse[r];
        if (a->over)
            for (int j = 0; j < V; j++) gx[j] = a->scale * tz_fexp(x[j] - lse) - u;
        else
            for (int j = 0; j < V; j++) gx[j] += a->scale * tz_fexp(x[j] - lse) - u;
        gx[t] -= hit;
    }
}

static void ce_smooth_backward(tz_graph *g, tz_node *n) {
    (void)g;
    tz_tensor *x = n->in[0];
    ces_saved *s = n->aux;
    if (!x->grad) return;
    if (s->count == 0) { // every row ignored: nothing flows back
        tz_grad_accumulate(x);
        return;
    }
    ces_args a = {x->data, x->grad, s, n->out->grad[0] / s->count, tz_cols(x), tz_grad_overwrite(x)};
    tz_parallel_for(tz_rows(x), 8L * a.V, ces_bw_rows, &a);
}
static const tz_op op_ce_smooth = {"cross_entropy_smooth", ce_smooth_backward, TZ_OVERWRITES | TZ_GRAD_IN_INPUT};

// logits (N,V), targets (N) -> scalar
tz_tensor *tz_cross_entropy_smooth(tz_graph *g, tz_tensor *logits, const int *targets, int ignore_index, real eps) {
    if (!(eps >= 0 && eps < 1)) tz_fail("cross_entropy_smooth: label smoothing %g must be in [0, 1)", (double)eps);
    if (eps == 0) return tz_cross_entropy(g, logits, targets, ignore_index); // the same function, bit for bit
    int V = tz_cols(logits), rows = tz_rows(logits);
    tz_tensor *in[1] = {logits};
    tz_tensor *y = tz_op_output(g, 0, NULL, in, 1);
    ces_saved *s = tz_arena_alloc(&g->arena, sizeof *s);
    s->targets = tz_arena_alloc(&g->arena, sizeof(int) * rows);
    s->lse = tz_arena_alloc(&g->arena, sizeof(real) * rows);
    s->xsum = tz_arena_alloc(&g->arena, sizeof(real) * rows);
    s->ignore = ignore_index, s->count = 0, s->eps = eps;
    for (int r = 0; r < rows; r++) {
        int t = targets[r];
        s->targets[r] = t;
        if (t != ignore_index && (t < 0 || t >= V)) {
            char sh[64];
            tz_fail("cross_entropy_smooth: target %d of row %d is outside [0,%d) for logits %s", t, r, V,
                    tz_shape_str(logits, sh));
        }
    }
    ces_args a = {logits->data, NULL, s, 0, V, 0};
    tz_parallel_for(rows, 8L * V, ces_fw_rows, &a);
    double total = 0; // in double, in row order
    for (int r = 0; r < rows; r++) {
        int t = targets[r];
        if (t == ignore_index) continue;
        real x_t = logits->data[(long)r * V + t];
        total += (double)s->lse[r] - (1 - (double)eps) * x_t - (double)eps / V * s->xsum[r];
        s->count++;
    }
    y->data[0] = s->count ? (real)(total / s->count) : 0;
    tz_node *n = tz_op_record(g, &op_ce_smooth, y, in, 1);
    if (n) n->aux = s;
    return y;
}
