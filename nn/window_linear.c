// window_linear.c: y_r = b + [C(w_{r,0}); ...; C(w_{r,n-1})] W^T (see the header).
// Pairs' way: pair u = (position p, word) gets X_u = C(word), Z_u = X_u W_p^T, y_r = b + sum_p Z_{slot(r,p)}
//   backward: S_u = sum of dy_r over the rows with pair u;
//             dW_p = S_p^T X_p, db = sum of S over position 0's pairs (each row once),
//             dX_p = S_p W_p, dC(word_u) += dX_u
// Plain way: the engine's own ops, tz_embedding, tz_reshape and tz_linear on the gathered rows.
#include "window_linear.h"

#include <string.h>

#include "gemm.h"
#include "parallel.h"

typedef struct {
    int *slot; // (R*n): the pair of row r at position p, in [off[p], off[p+1])
    int *word; // (U): each pair's word
    int *off; // (n+1): position p's pairs are [off[p], off[p+1])
    real *X; // (U, E): each pair's embedding; the backward's dX replaces it
    real *Z; // (U, O): the forward's per-pair rows, then the backward's S
    int R, n, E, O, U;
} win_saved;

typedef struct {
    const win_saved *s;
    real *rows; // (R,O): y forward, dy backward
    const real *bias; // forward, or NULL
} win_pass;

// Rows [lo, hi) of y: b plus their pairs' rows of Z, positions in order.
static void add_pairs(void *arg, long lo, long hi) {
    const win_pass *p = arg;
    const win_saved *s = p->s;
    const int O = s->O, n = s->n;
    for (long r = lo; r < hi; r++) {
        real *restrict y = p->rows + r * O;
        const int *sl = s->slot + r * n;
        const real *restrict z = s->Z + (long)sl[0] * O;
        if (p->bias)
            for (int j = 0; j < O; j++) y[j] = p->bias[j] + z[j];
        else memcpy(y, z, sizeof(real) * O);
        for (int q = 1; q < n; q++) {
            z = s->Z + (long)sl[q] * O;
            for (int j = 0; j < O; j++) y[j] += z[j];
        }
    }
}

// Columns [lo, hi) of S (in Z's buffer): each pair's sum of its rows of dy, in row order (the
// same bits on any number of threads).
static void sum_pairs(void *arg, long lo, long hi) {
    const win_pass *p = arg;
    const win_saved *s = p->s;
    const int O = s->O, n = s->n;
    real *S = s->Z;
    for (int u = 0; u < s->U; u++) memset(S + (long)u * O + lo, 0, sizeof(real) * (size_t)(hi - lo));
    for (int r = 0; r < s->R; r++) {
        const real *restrict x = p->rows + (long)r * O;
        for (int q = 0; q < n; q++) {
            real *restrict d = S + (long)s->slot[r * n + q] * O;
            for (long j = lo; j < hi; j++) d[j] += x[j];
        }
    }
}

// dC(word) += the rows of dX (in X's buffer) of the words in `word`, in order.
static void scatter_rows(real *gc, const real *dX, const int *word, int rows, int E) {
    for (int u = 0; u < rows; u++) {
        real *restrict d = gc + (long)word[u] * E;
        const real *restrict x = dX + (long)u * E;
        for (int k = 0; k < E; k++) d[k] += x[k];
    }
}

static void window_backward(tz_graph *g, tz_node *nd) {
    (void)g;
    tz_tensor *C = nd->in[0], *w = nd->in[1], *b = nd->in[2];
    const win_saved *s = nd->aux;
    const int R = s->R, n = s->n, E = s->E, O = s->O, F = n * E;
    win_pass sp = {s, nd->out->grad, NULL};
    tz_parallel_for(O, 2L * R * n, sum_pairs, &sp);
    const real *S = s->Z;
    if (w->grad) { // each position's product writes its own columns of the gradient whole
        real beta = tz_grad_overwrite(w) ? 0 : 1;
        for (int p = 0; p < n; p++) {
            int u0 = s->off[p], U = s->off[p + 1] - u0;
            tz_gemm(1, 0, O, E, U, 1, S + (long)u0 * O, O, s->X + (long)u0 * E, E, beta, w->grad + (long)p * E, F);
        }
    }
    if (b && b->grad) tz_column_sums_add(tz_grad_accumulate(b), S, s->off[1], O);
    if (C->grad) {
        for (int p = 0; p < n; p++) {
            int u0 = s->off[p], U = s->off[p + 1] - u0;
            tz_gemm(0, 0, U, E, O, 1, S + (long)u0 * O, O, w->data + (long)p * E, F, 0, s->X + (long)u0 * E, E);
        }
        scatter_rows(tz_grad_accumulate(C), s->X, s->word, s->U, E);
    }
}
static const tz_op op_window_linear = {"window_linear", window_backward, TZ_OVERWRITES | TZ_OUT_UNREAD};

// The plain way: x gathered (R, n*E), one product.
static tz_tensor *plain(tz_graph *g, tz_tensor *C, const int *ids, int R, int n, tz_tensor *w, tz_tensor *b) {
    tz_tensor *x = tz_reshape(g, tz_embedding(g, C, ids, R * n), 2, (const int[]){R, n * C->shape[1]});
    return tz_linear(g, x, w, b);
}

tz_tensor *nn_window_linear(tz_graph *g, tz_tensor *C, const int *ids, int R, int n, tz_tensor *w, tz_tensor *b,
                            int group) {
    char s1[64], s2[64], s3[64] = "none";
    int V = C->ndim == 2 ? C->shape[0] : 0, E = C->ndim == 2 ? C->shape[1] : 0;
    int O = w->ndim == 2 ? w->shape[0] : 0;
    if (!V || R < 1 || n < 1 || w->ndim != 2 || w->shape[1] != n * E || (b && (b->ndim != 1 || b->shape[0] != O)))
        tz_fail("window_linear: C %s, w %s, b %s do not fit (V,E), (O, %d x E), (O) for %d rows", tz_shape_str(C, s1),
                tz_shape_str(w, s2), b ? tz_shape_str(b, s3) : s3, n, R);
    if (group == 0) return plain(g, C, ids, R, n, w, b); // tz_embedding checks the ids
    for (long i = 0; i < (long)R * n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            tz_fail("window_linear: id %d at row %ld, position %ld is outside [0,%d)", ids[i], i / n, i % n, V);
    const int F = n * E;
    win_saved *s = tz_arena_alloc(&g->arena, sizeof *s);
    *s = (win_saved){.R = R, .n = n, .E = E, .O = O};
    // Number the distinct (position, word) pairs, position by position: mark[w] holds the last
    // pair made for w, which belongs to this position when it is >= off[p].
    s->slot = tz_arena_alloc(&g->arena, sizeof(int) * R * n);
    s->word = tz_arena_alloc(&g->arena, sizeof(int) * R * n);
    s->off = tz_arena_alloc(&g->arena, sizeof(int) * (n + 1));
    int *mark = tz_arena_alloc(&g->arena, sizeof(int) * V);
    for (int v = 0; v < V; v++) mark[v] = -1;
    int U = 0;
    for (int p = 0; p < n; p++) {
        s->off[p] = U;
        for (int r = 0; r < R; r++) {
            int wd = ids[r * n + p];
            if (mark[wd] < s->off[p]) mark[wd] = U, s->word[U++] = wd;
            s->slot[r * n + p] = mark[wd];
        }
    }
    s->off[n] = U;
    s->U = U;
    // auto: at most half as many pairs as row-positions, and each position's product big enough
    // to pay for its calls (three per position a step): mlp h512 / embed 32 (~35 x 32 x 512 per
    // position) ran 17% slower by pairs, h1024 / embed 64 (~35 x 64 x 1024) 20% faster
    // (`./train models/mlp.cfg model.hidden=H model.embed=E train.steps=1000 model.shared_pairs=
    // always` against `never`, alternating, 2026-12-03).
    if (group < 0 && !(2L * U <= (long)R * n && (double)U * E * O >= (double)n * (1 << 20)))
        return plain(g, C, ids, R, n, w, b);
    tz_tensor *in[3] = {C, w, b};
    tz_tensor *y = tz_op_output(g, 2, (const int[]){R, O}, in, 3);
    s->X = tz_arena_alloc(&g->arena, sizeof(real) * (size_t)U * E);
    s->Z = tz_arena_alloc(&g->arena, sizeof(real) * (size_t)U * O);
    for (int u = 0; u < U; u++) memcpy(s->X + (long)u * E, C->data + (long)s->word[u] * E, sizeof(real) * E);
    for (int p = 0; p < n; p++) {
        int u0 = s->off[p];
        tz_gemm(0, 1, s->off[p + 1] - u0, O, E, 1, s->X + (long)u0 * E, E, w->data + (long)p * E, F, 0,
                s->Z + (long)u0 * O, O);
    }
    win_pass sp = {s, y->data, b ? b->data : NULL};
    tz_parallel_for(R, (long)n * O, add_pairs, &sp);
    tz_node *nd = tz_op_record(g, &op_window_linear, y, in, 3);
    if (nd) nd->aux = s;
    return y;
}
