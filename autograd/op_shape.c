// op_shape.c: reshape (a view), concat, slice, permute and transpose (copies).
#include "internal.h"

#include <string.h>

// A tensor sharing x's data from element `offset`, recorded as a view when x needs a gradient.
static tz_tensor *view(tz_graph *g, tz_tensor *x, int ndim, const int *shape, int offset) {
    tz_tensor *y = tz_arena_alloc(&g->arena, sizeof *y);
    tz_tensor_set_shape(y, ndim, shape);
    y->data = x->data + offset;
    y->requires_grad = x->requires_grad && !g->no_grad;
    y->node = -1;
    y->grad_fresh = 0;
    y->grad = y->requires_grad && x->node < 0 ? x->grad + offset : NULL; // a leaf's exists already
    if (y->grad) tz_grad_settle(x); // y is a leaf of its own: what adds into y adds into x
    if (y->requires_grad && !y->grad) {
        tz_node *n = tz_op_record(g, &tz_op_view, y, &x, 1);
        n->iarg[0] = offset;
    }
    return y;
}

tz_tensor *tz_reshape(tz_graph *g, tz_tensor *x, int ndim, const int *shape) {
    int s[TZ_MAX_DIMS], infer = -1;
    long known = 1;
    char bx[64];
    if (ndim < 0 || ndim > TZ_MAX_DIMS) tz_fail("reshape: %d dims (at most %d)", ndim, TZ_MAX_DIMS);
    for (int i = 0; i < ndim; i++) {
        s[i] = shape[i];
        if (s[i] == -1 && infer < 0) infer = i;
        else if (s[i] <= 0) tz_fail("reshape: bad size %d in dim %d for %s", s[i], i, tz_shape_str(x, bx));
        else known *= s[i];
    }
    if (infer >= 0) s[infer] = known && x->n % known == 0 ? (int)(x->n / known) : -1;
    if (infer >= 0 ? s[infer] <= 0 : known != x->n)
        tz_fail("reshape: %s has %d elements, which do not fit the new shape", tz_shape_str(x, bx), x->n);
    return view(g, x, ndim, s, 0);
}

// A dim splits a tensor into (outer, dim, inner) blocks; concat and slice move inner runs.
static void split_dims(const tz_tensor *t, int dim, long *outer, long *inner) {
    *outer = 1, *inner = 1;
    for (int i = 0; i < dim; i++) *outer *= t->shape[i];
    for (int i = dim + 1; i < t->ndim; i++) *inner *= t->shape[i];
}

static void concat_backward(tz_graph *g, tz_node *n) {
    (void)g;
    int dim = n->iarg[0], off = 0;
    tz_tensor *y = n->out;
    long outer, inner;
    split_dims(y, dim, &outer, &inner);
    for (int k = 0; k < n->n_in; k++) {
        tz_tensor *x = n->in[k];
        long run = x->shape[dim] * inner;
        if (x->grad)
            for (long o = 0; o < outer; o++) {
                const real *src = y->grad + o * y->shape[dim] * inner + off * inner;
                real *dst = x->grad + o * run;
                for (long i = 0; i < run; i++) dst[i] += src[i];
            }
        off += x->shape[dim];
    }
}
static const tz_op op_concat = {"concat", concat_backward, 0};

tz_tensor *tz_concat(tz_graph *g, tz_tensor **xs, int n, int dim) {
    tz_shape_bufs s;
    if (n < 1) tz_fail("concat: no tensors");
    if (dim < 0 || dim >= xs[0]->ndim) tz_fail("concat: dim %d out of range for %s", dim, tz_shape_str(xs[0], s.a));
    int shape[TZ_MAX_DIMS];
    memcpy(shape, xs[0]->shape, sizeof shape);
    shape[dim] = 0;
    for (int k = 0; k < n; k++) {
        int ok = xs[k]->ndim == xs[0]->ndim;
        for (int i = 0; ok && i < xs[0]->ndim; i++) ok = i == dim || xs[k]->shape[i] == xs[0]->shape[i];
        if (!ok)
            tz_fail("concat: tensor %d %s does not match tensor 0 %s outside dim %d", k, tz_shape_str(xs[k], s.a),
                    tz_shape_str(xs[0], s.b), dim);
        shape[dim] += xs[k]->shape[dim];
    }
    tz_tensor *y = tz_op_output(g, xs[0]->ndim, shape, xs, n);
    long outer, inner;
    split_dims(y, dim, &outer, &inner);
    int off = 0;
    for (int k = 0; k < n; k++) {
        long run = xs[k]->shape[dim] * inner;
        for (long o = 0; o < outer; o++)
            memcpy(y->data + o * shape[dim] * inner + off * inner, xs[k]->data + o * run, sizeof(real) * run);
        off += xs[k]->shape[dim];
    }
    tz_node *nd = tz_op_record(g, &op_concat, y, xs, n);
    if (nd) nd->iarg[0] = dim;
    return y;
}

static void slice_backward(tz_graph *g, tz_node *n) {
    (void)g;
    tz_tensor *x = n->in[0], *y = n->out;
    if (!x->grad) return;
    int dim = n->iarg[0], start = n->iarg[1];
    long outer, inner;
    split_dims(x, dim, &outer, &inner);
    long run = y->shape[dim] * inner;
    for (long o = 0; o < outer; o++) {
        real *dst = x->grad + o * x->shape[dim] * inner + start * inner;
        const real *src = y->grad + o * run;
        for (long i = 0; i < run; i++) dst[i] += src[i];
    }
}
static const tz_op op_slice = {"slice", slice_backward, 0};

tz_tensor *tz_slice(tz_graph *g, tz_tensor *x, int dim, int start, int len) {
    char s[64];
    if (dim < 0 || dim >= x->ndim || start < 0 || len < 1 || start + len > x->shape[dim])
        tz_fail("slice: [%d, %d) of dim %d is outside %s", start, start + len, dim, tz_shape_str(x, s));
    int shape[TZ_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[dim] = len;
    long outer, inner;
    split_dims(x, dim, &outer, &inner);
    if (outer == 1) return view(g, x, x->ndim, shape, (int)(start * inner)); // contiguous: no copy
    tz_tensor *in[1] = {x};
    tz_tensor *y = tz_op_output(g, x->ndim, shape, in, 1);
    long run = len * inner;
    for (long o = 0; o < outer; o++)
        memcpy(y->data + o * run, x->data + o * x->shape[dim] * inner + start * inner, sizeof(real) * run);
    tz_node *n = tz_op_record(g, &op_slice, y, in, 1);
    if (n) n->iarg[0] = dim, n->iarg[1] = start;
    return y;
}

// The strides of x seen in the output's dim order, padded to 4 dims at the front.
static void permuted_strides(const tz_tensor *x, const int *perm, int oshape[4], int ostride[4]) {
    int xstride[TZ_MAX_DIMS], st = 1;
    for (int d = x->ndim - 1; d >= 0; d--) xstride[d] = st, st *= x->shape[d];
    int pad = 4 - x->ndim;
    for (int i = 0; i < 4; i++) {
        oshape[i] = i < pad ? 1 : x->shape[perm[i - pad]];
        ostride[i] = i < pad ? 0 : xstride[perm[i - pad]];
    }
}

#define PERMUTE_FOR(sh, st, BODY) \
    do { \
        int o = 0; \
        for (int i0 = 0; i0 < sh[0]; i0++) \
            for (int i1 = 0; i1 < sh[1]; i1++) \
                for (int i2 = 0; i2 < sh[2]; i2++) \
                    for (int i3 = 0, ix = i0 * st[0] + i1 * st[1] + i2 * st[2]; i3 < sh[3]; i3++, o++, ix += st[3]) { \
                        BODY \
                    } \
    } while (0)

static void permute_backward(tz_graph *g, tz_node *n) {
    (void)g;
    tz_tensor *x = n->in[0], *y = n->out;
    if (!x->grad) return;
    int sh[4], st[4];
    permuted_strides(x, n->iarg, sh, st);
    PERMUTE_FOR(sh, st, x->grad[ix] += y->grad[o];);
}
static const tz_op op_permute = {"permute", permute_backward, 0};

tz_tensor *tz_permute(tz_graph *g, tz_tensor *x, const int *perm) {
    int seen = 0, shape[TZ_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) {
        if (perm[i] < 0 || perm[i] >= x->ndim || (seen >> perm[i] & 1)) {
            char s[64];
            tz_fail("permute: perm[%d] = %d is not a permutation of the dims of %s", i, perm[i], tz_shape_str(x, s));
        }
        seen |= 1 << perm[i];
        shape[i] = x->shape[perm[i]];
    }
    tz_tensor *in[1] = {x};
    tz_tensor *y = tz_op_output(g, x->ndim, shape, in, 1);
    int sh[4], st[4];
    permuted_strides(x, perm, sh, st);
    PERMUTE_FOR(sh, st, y->data[o] = x->data[ix];);
    tz_node *n = tz_op_record(g, &op_permute, y, in, 1);
    if (n) memcpy(n->iarg, perm, sizeof(int) * x->ndim);
    return y;
}

tz_tensor *tz_transpose(tz_graph *g, tz_tensor *x, int d0, int d1) {
    int perm[TZ_MAX_DIMS] = {0, 1, 2, 3};
    char s[64];
    if (d0 < 0 || d1 < 0 || d0 >= x->ndim || d1 >= x->ndim)
        tz_fail("transpose: dims %d and %d out of range for %s", d0, d1, tz_shape_str(x, s));
    perm[d0] = d1;
    perm[d1] = d0;
    return tz_permute(g, x, perm);
}
