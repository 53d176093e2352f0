// context_linear.c: y_r = [a_r; c_{seq(r)}; e_r] W^T + b with W = [W_a W_c W_e] (see the header).
//   forward:  Z = c W_c^T + b (one row per sequence), y_r = Z_{seq(r)} + a_r W_a^T + e_r W_e^T
// (e may be NULL: [a_r; c_{seq(r)}], the grouped block last.)
//   backward: S_s = sum of dy_r over the rows of sequence s;
//             dW_a = dy^T a, dW_c = S^T c, dW_e = dy^T e, db = colsum(S);
//             da = dy W_a, dc = S W_c, de = dy W_e
#include "context_linear.h"

#include <string.h>

#include "gemm.h"
#include "parallel.h"

typedef struct {
    const int *seq; // (n)
    real *Z; // (G,O): the forward's per-group rows, then the backward's S (no longer needed: reused)
    int n, G, A, C, E, O;
} ctx_saved;

// A pass over rows of the output (y forward, dy backward) and the per-group buffer s->Z.
typedef struct {
    const ctx_saved *s;
    real *rows; // (n,O)
} ctx_pass;

// Rows [lo, hi) of y: their group's row of Z (what the products then add to).
static void spread_rows(void *arg, long lo, long hi) {
    const ctx_pass *p = arg;
    const int O = p->s->O;
    for (long r = lo; r < hi; r++) memcpy(p->rows + r * O, p->s->Z + (long)p->s->seq[r] * O, sizeof(real) * O);
}

// Columns [lo, hi) of S (in Z's buffer): each group's sum of its rows of dy, in row order (the
// same bits on any number of threads).
static void sum_cols(void *arg, long lo, long hi) {
    const ctx_pass *p = arg;
    const int O = p->s->O;
    real *S = p->s->Z;
    for (int q = 0; q < p->s->G; q++) memset(S + (long)q * O + lo, 0, sizeof(real) * (size_t)(hi - lo));
    for (int r = 0; r < p->s->n; r++) {
        real *restrict d = S + (long)p->s->seq[r] * O;
        const real *restrict x = p->rows + (long)r * O;
        for (long j = lo; j < hi; j++) d[j] += x[j];
    }
}

static void ctx_backward(tz_graph *g, tz_node *nd) {
    (void)g;
    tz_tensor *a = nd->in[0], *c = nd->in[1], *e = nd->in[2], *w = nd->in[3], *b = nd->in[4];
    const ctx_saved *s = nd->aux;
    const int n = s->n, G = s->G, A = s->A, C = s->C, E = s->E, O = s->O, F = A + C + E;
    const real *dy = nd->out->grad, *S = s->Z;
    ctx_pass sp = {s, nd->out->grad};
    tz_parallel_for(O, 2L * n, sum_cols, &sp);
    if (w->grad) { // each product writes its own columns of the gradient whole
        real beta = tz_grad_overwrite(w) ? 0 : 1;
        tz_gemm(1, 0, O, A, n, 1, dy, O, a->data, A, beta, w->grad, F);
        tz_gemm(1, 0, O, C, G, 1, S, O, c->data, C, beta, w->grad + A, F);
        if (e) tz_gemm(1, 0, O, E, n, 1, dy, O, e->data, E, beta, w->grad + A + C, F);
    }
    if (b && b->grad) tz_column_sums_add(tz_grad_accumulate(b), S, G, O);
    if (a->grad) tz_gemm(0, 0, n, A, O, 1, dy, O, w->data, F, tz_grad_overwrite(a) ? 0 : 1, a->grad, A);
    if (c->grad) tz_gemm(0, 0, G, C, O, 1, S, O, w->data + A, F, tz_grad_overwrite(c) ? 0 : 1, c->grad, C);
    if (e && e->grad) tz_gemm(0, 0, n, E, O, 1, dy, O, w->data + A + C, F, tz_grad_overwrite(e) ? 0 : 1, e->grad, E);
}
static const tz_op op_context_linear = {"context_linear", ctx_backward, TZ_OVERWRITES | TZ_OUT_UNREAD};

tz_tensor *nn_context_linear(tz_graph *g, tz_tensor *a, tz_tensor *c, tz_tensor *e, const int *seq, tz_tensor *w,
                             tz_tensor *b) {
    char s1[64], s2[64], s3[64], s4[64], s5[64] = "none";
    int n = a->ndim == 2 ? a->shape[0] : 0, A = a->ndim == 2 ? a->shape[1] : 0;
    int G = c->ndim == 2 ? c->shape[0] : 0, C = c->ndim == 2 ? c->shape[1] : 0;
    int E = !e ? 0 : e->ndim == 2 ? e->shape[1] : -1;
    int O = w->ndim == 2 ? w->shape[0] : 0;
    if (!n || !G || E < 0 || (e && e->shape[0] != n) || w->ndim != 2 || w->shape[1] != A + C + E ||
        (b && (b->ndim != 1 || b->shape[0] != O)))
        tz_fail("context_linear: a %s, c %s, e %s, w %s, b %s do not fit (n,A), (G,C), (n,E), (O,A+C+E), (O)",
                tz_shape_str(a, s1), tz_shape_str(c, s2), e ? tz_shape_str(e, s3) : "none", tz_shape_str(w, s4),
                b ? tz_shape_str(b, s5) : s5);
    for (int r = 0; r < n; r++)
        if (seq[r] < 0 || seq[r] >= G)
            tz_fail("context_linear: row %d belongs to sequence %d, not in [0,%d)", r, seq[r], G);
    const int F = A + C + E;
    tz_tensor *in[5] = {a, c, e, w, b};
    tz_tensor *y = tz_op_output(g, 2, (const int[]){n, O}, in, 5);
    real *Z = tz_arena_alloc(&g->arena, sizeof(real) * (size_t)G * O);
    tz_gemm_bias(0, 1, G, O, C, 1, c->data, C, w->data + A, F, 0, Z, O, b ? b->data : NULL);
    ctx_saved *s = tz_arena_alloc(&g->arena, sizeof *s);
    int *keep = tz_arena_alloc(&g->arena, sizeof(int) * n);
    memcpy(keep, seq, sizeof(int) * n);
    *s = (ctx_saved){keep, Z, n, G, A, C, E, O};
    ctx_pass sp = {s, y->data};
    tz_parallel_for(n, O, spread_rows, &sp);
    tz_gemm(0, 1, n, O, A, 1, a->data, A, w->data, F, 1, y->data, O);
    if (e) tz_gemm(0, 1, n, O, E, 1, e->data, E, w->data + A + C, F, 1, y->data, O);
    tz_node *nd = tz_op_record(g, &op_context_linear, y, in, 5);
    if (nd) nd->aux = s;
    return y;
}
