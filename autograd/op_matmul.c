// op_matmul.c: matrix products on our gemm. Backward of C = op(A) op(B):
//   d op(A) = dC op(B)^T,  d op(B) = op(A)^T dC  (written so each is one gemm with beta = 1).
#include "internal.h"
#include "parallel.h"

#include <string.h>

// One batched product: its sizes, batch strides and which pass to run.
typedef struct {
    const tz_tensor *a, *b, *c;
    int M, N, K, ta, tb, batch, backward;
    long sa, sb, sc;
    real beta_a, beta_b; // backward: 0 overwrites a fresh gradient, 1 adds
} mm_job;

// Batch p of the job: c = op(a) op(b), or the backward's two products.
static void mm_one(const mm_job *j, int p) {
    int M = j->M, N = j->N, K = j->K, ta = j->ta, tb = j->tb, lda = ta ? M : K, ldb = tb ? K : N;
    const real *A = j->a->data + p * j->sa, *B = j->b->data + p * j->sb;
    if (!j->backward) {
        tz_gemm(ta, tb, M, N, K, 1, A, lda, B, ldb, 0, j->c->data + p * j->sc, N);
        return;
    }
    const real *dC = j->c->grad + p * j->sc;
    if (j->a->grad) {
        real *dA = j->a->grad + p * j->sa;
        if (!ta) tz_gemm(0, !tb, M, K, N, 1, dC, N, B, ldb, j->beta_a, dA, K);
        else tz_gemm(tb, 1, K, M, N, 1, B, ldb, dC, N, j->beta_a, dA, M);
    }
    if (j->b->grad) {
        real *dB = j->b->grad + p * j->sb;
        if (!tb) tz_gemm(!ta, 0, K, N, M, 1, A, lda, dC, N, j->beta_b, dB, N);
        else tz_gemm(1, ta, N, K, M, 1, dC, N, A, lda, j->beta_b, dB, K);
    }
}

static void mm_batches(void *arg, long lo, long hi) {
    for (long p = lo; p < hi; p++) mm_one(arg, (int)p);
}

// Many small products (attention's heads) go one per thread, each single-threaded: splitting a
// 64x64 product across cores costs more than it computes. Each batch is still computed by one
// thread in a fixed order, so results do not depend on the thread count.
static void mm_run(mm_job *j) {
    if (j->batch > 1) tz_parallel_for(j->batch, (long)j->M * j->N * j->K * (j->backward ? 2 : 1), mm_batches, j);
    else mm_one(j, 0);
}

static void matmul_backward(tz_graph *g, tz_node *n) {
    (void)g;
    mm_job j = {n->in[0],   n->in[1], n->out, n->iarg[1], n->iarg[2], n->iarg[3], n->iarg[4], n->iarg[5],
                n->iarg[0], 1,        0,      0,          0,          1,          1};
    j.sa = (long)j.M * j.K, j.sb = j.b->ndim > 2 ? (long)j.K * j.N : 0, j.sc = (long)j.M * j.N;
    // Every batch writes its whole block of each gradient: a fresh buffer is overwritten. (a and
    // b may be one tensor: then only the first product overwrites.)
    if (j.a->grad && tz_grad_overwrite(n->in[0])) j.beta_a = 0;
    if (j.b->grad && j.b->grad != j.a->grad && tz_grad_overwrite(n->in[1])) j.beta_b = 0;
    mm_run(&j);
}
static const tz_op op_matmul = {"matmul", matmul_backward, TZ_OVERWRITES | TZ_OUT_UNREAD};

tz_tensor *tz_matmul(tz_graph *g, tz_tensor *a, tz_tensor *b, int ta, int tb) {
    tz_shape_bufs s;
    ta = !!ta, tb = !!tb;
    int shape[TZ_MAX_DIMS], ndim, batch = 1, M, K;
    if (a->ndim < 2 || b->ndim < 2) goto bad;
    int bK = tb ? b->shape[b->ndim - 1] : b->shape[b->ndim - 2];
    int N = tb ? b->shape[b->ndim - 2] : b->shape[b->ndim - 1];
    if (b->ndim == 2 && !ta) { // a's leading dims are all rows
        K = tz_cols(a);
        M = a->n / K;
        ndim = a->ndim;
        memcpy(shape, a->shape, sizeof shape);
    } else { // batched: equal leading dims (or both 2-D)
        if (a->ndim != b->ndim) goto bad;
        for (int i = 0; i < a->ndim - 2; i++) {
            if (a->shape[i] != b->shape[i]) goto bad;
            batch *= a->shape[i];
        }
        M = ta ? a->shape[a->ndim - 1] : a->shape[a->ndim - 2];
        K = ta ? a->shape[a->ndim - 2] : a->shape[a->ndim - 1];
        ndim = a->ndim;
        memcpy(shape, a->shape, sizeof shape);
        shape[ndim - 2] = M;
    }
    if (K != bK) goto bad;
    shape[ndim - 1] = N;
    tz_tensor *in[2] = {a, b};
    tz_tensor *c = tz_op_output(g, ndim, shape, in, 2);
    mm_job j = {a, b, c, M, N, K, ta, tb, batch, 0, (long)M * K, b->ndim > 2 ? (long)K * N : 0, (long)M * N, 1, 1};
    mm_run(&j);
    tz_node *n = tz_op_record(g, &op_matmul, c, in, 2);
    if (n) {
        int args[6] = {batch, M, N, K, ta, tb};
        memcpy(n->iarg, args, sizeof args);
    }
    return c;
bad:
    tz_fail("matmul: cannot multiply a %s%s by b %s%s", tz_shape_str(a, s.a), ta ? "^T" : "", tz_shape_str(b, s.b),
            tb ? "^T" : "");
}

// x (R,I) as rows, w (O,I), bias (O): y (R,O) = x w^T + bias.
static void linear_backward(tz_graph *g, tz_node *n) {
    (void)g;
    tz_tensor *x = n->in[0], *w = n->in[1], *bias = n->in[2], *y = n->out;
    int R = n->iarg[0], I = n->iarg[1], O = n->iarg[2];
    if (x->grad) tz_gemm(0, 0, R, I, O, 1, y->grad, O, w->data, I, tz_grad_overwrite(x) ? 0 : 1, x->grad, I);
    if (w->grad) tz_gemm(1, 0, O, I, R, 1, y->grad, O, x->data, I, tz_grad_overwrite(w) ? 0 : 1, w->grad, I);
    if (bias && bias->grad) tz_column_sums_add(tz_grad_accumulate(bias), y->grad, R, O);
}
static const tz_op op_linear = {"linear", linear_backward, TZ_OVERWRITES | TZ_OUT_UNREAD};

// tz_linear_add: the residual r gets y's gradient as it is.
static void linear_add_backward(tz_graph *g, tz_node *n) {
    tz_tensor *r = n->in[3];
    if (r->grad) tz_parallel_add(r->grad, n->out->grad, r->n, tz_grad_overwrite(r));
    linear_backward(g, n);
}
static const tz_op op_linear_add = {"linear_add", linear_add_backward, TZ_OVERWRITES | TZ_OUT_UNREAD};

// x (..,I), w (O,I), bias (O) or NULL, r (..,O) or NULL: r + x w^T + bias, the residual added in
// the product's epilogue (no pass over memory of its own; the same bits as tz_add(r, linear)).
tz_tensor *tz_linear_add(tz_graph *g, tz_tensor *x, tz_tensor *w, tz_tensor *bias, tz_tensor *r) {
    tz_shape_bufs s;
    if (x->ndim < 1 || w->ndim != 2 || tz_cols(x) != w->shape[1])
        tz_fail("linear: input %s does not fit weight %s (want input (..,%d))", tz_shape_str(x, s.a),
                tz_shape_str(w, s.b), w->ndim == 2 ? w->shape[1] : -1);
    int I = w->shape[1], O = w->shape[0], R = x->n / I;
    if (bias && (bias->ndim != 1 || bias->shape[0] != O))
        tz_fail("linear: bias %s does not fit weight %s (want (%d))", tz_shape_str(bias, s.a), tz_shape_str(w, s.b), O);
    int shape[TZ_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = O;
    if (r && (r->ndim != x->ndim || memcmp(r->shape, shape, sizeof(int) * (size_t)x->ndim))) {
        char c[64];
        tz_fail("linear: residual %s does not fit the output of input %s by weight %s", tz_shape_str(r, s.a),
                tz_shape_str(x, s.b), tz_shape_str(w, c));
    }
    tz_tensor *in[4] = {x, w, bias, r};
    tz_tensor *y = tz_op_output(g, x->ndim, shape, in, r ? 4 : 3);
    tz_gemm_epi(0, 1, R, O, I, 1, x->data, I, w->data, I, 0, y->data, O, bias ? bias->data : NULL,
                r ? TZ_EPI_ADD : TZ_EPI_NONE, r ? r->data : NULL, O);
    tz_node *n = tz_op_record(g, r ? &op_linear_add : &op_linear, y, in, r ? 4 : 3);
    if (n) n->iarg[0] = R, n->iarg[1] = I, n->iarg[2] = O;
    return y;
}

tz_tensor *tz_linear(tz_graph *g, tz_tensor *x, tz_tensor *w, tz_tensor *bias) {
    return tz_linear_add(g, x, w, bias, NULL);
}
