// op_binary.c: add, sub, mul with numpy broadcasting, and scale by a constant.
// A broadcast operand's gradient is the sum over the positions it was repeated to.
#include "internal.h"
#include "parallel.h"

#include <string.h>

int tz_bcast_init(tz_bcast *bc, const tz_tensor *a, const tz_tensor *b, int *out_ndim) {
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    int ra = 1, rb = 1; // running strides of a and b, from the last dim
    for (int d = 3; d >= 0; d--) {
        int k = d - (4 - nd); // dim index in an nd-dim shape, < 0 for padding
        int da = k - (nd - a->ndim) >= 0 ? a->shape[k - (nd - a->ndim)] : 1;
        int db = k - (nd - b->ndim) >= 0 ? b->shape[k - (nd - b->ndim)] : 1;
        if (k < 0) da = db = 1;
        if (da != db && da != 1 && db != 1) return 0;
        bc->shape[d] = da > db ? da : db;
        bc->sa[d] = da == 1 ? 0 : ra;
        bc->sb[d] = db == 1 ? 0 : rb;
        ra *= da;
        rb *= db;
    }
    *out_ndim = nd;
    return 1;
}

enum { ADD, SUB, MUL };

// Same-shape operands, elements [lo, hi): forward y = a op b; backward ga (=|+=) dy/da * gy and
// gb likewise (over_*: the gradient is fresh, store instead of adding; a before b, so when a and
// b are one tensor the store comes first).
typedef struct {
    const real *a, *b, *gy;
    real *y, *ga, *gb;
    int kind, over_a, over_b;
} same_args;

static void same_fw(void *arg, long lo, long hi) {
    const same_args *s = arg;
    const real *restrict a = s->a, *restrict b = s->b;
    real *restrict y = s->y;
    if (s->kind == ADD)
        for (long i = lo; i < hi; i++) y[i] = a[i] + b[i];
    if (s->kind == SUB)
        for (long i = lo; i < hi; i++) y[i] = a[i] - b[i];
    if (s->kind == MUL)
        for (long i = lo; i < hi; i++) y[i] = a[i] * b[i];
}

static void same_bw(void *arg, long lo, long hi) {
    const same_args *s = arg;
    const real *restrict gy = s->gy, *a = s->a, *b = s->b;
    real *ga = s->ga, *gb = s->gb; // may be one buffer
    if (ga) {
        if (s->kind == MUL && s->over_a)
            for (long i = lo; i < hi; i++) ga[i] = gy[i] * b[i];
        else if (s->kind == MUL)
            for (long i = lo; i < hi; i++) ga[i] += gy[i] * b[i];
        else if (s->over_a)
            for (long i = lo; i < hi; i++) ga[i] = gy[i];
        else
            for (long i = lo; i < hi; i++) ga[i] += gy[i];
    }
    if (gb) {
        if (s->kind == MUL && s->over_b)
            for (long i = lo; i < hi; i++) gb[i] = gy[i] * a[i];
        else if (s->kind == MUL)
            for (long i = lo; i < hi; i++) gb[i] += gy[i] * a[i];
        else if (s->kind == SUB && s->over_b)
            for (long i = lo; i < hi; i++) gb[i] = -gy[i];
        else if (s->kind == SUB)
            for (long i = lo; i < hi; i++) gb[i] -= gy[i];
        else if (s->over_b)
            for (long i = lo; i < hi; i++) gb[i] = gy[i];
        else
            for (long i = lo; i < hi; i++) gb[i] += gy[i];
    }
}

static void binary_backward(tz_graph *g, tz_node *n) {
    (void)g;
    tz_tensor *a = n->in[0], *b = n->in[1], *y = n->out;
    tz_bcast *bc = n->aux;
    const real *gy = y->grad;
    if (tz_same_shape(a, b)) {
        same_args s = {a->data, b->data, gy, NULL, a->grad, b->grad, n->iarg[0], 0, 0};
        if (a->grad) s.over_a = tz_grad_overwrite(a);
        if (b->grad) s.over_b = tz_grad_overwrite(b);
        // Two views of one buffer at different offsets (x[1:] - x[:-1]): a thread's range of gb
        // would meet the other's range of ga. Serial then; one tensor twice splits the same way.
        int overlap = s.ga && s.gb && s.ga != s.gb && s.ga < s.gb + y->n && s.gb < s.ga + y->n;
        if (overlap) same_bw(&s, 0, y->n);
        else tz_parallel_for(y->n, 2, same_bw, &s);
        return;
    }
    // Broadcast: a repeated operand's gradient is a sum, so it is added into (zeroed if fresh).
    real *ga = a->grad ? tz_grad_accumulate(a) : NULL, *gb = b->grad ? tz_grad_accumulate(b) : NULL;
    switch (n->iarg[0]) {
        case ADD: TZ_BCAST_FOR(bc, if (ga) ga[ia] += gy[o]; if (gb) gb[ib] += gy[o];); break;
        case SUB: TZ_BCAST_FOR(bc, if (ga) ga[ia] += gy[o]; if (gb) gb[ib] -= gy[o];); break;
        case MUL: {
            const real *ad = a->data, *bd = b->data;
            TZ_BCAST_FOR(bc, if (ga) ga[ia] += gy[o] * bd[ib]; if (gb) gb[ib] += gy[o] * ad[ia];);
            break;
        }
    }
}
static const tz_op op_add = {"add", binary_backward, TZ_OVERWRITES};
static const tz_op op_sub = {"sub", binary_backward, TZ_OVERWRITES};
static const tz_op op_mul = {"mul", binary_backward, TZ_OVERWRITES};

static tz_tensor *binary(tz_graph *g, tz_tensor *a, tz_tensor *b, int kind, const tz_op *op) {
    tz_bcast bc;
    int nd;
    if (!tz_bcast_init(&bc, a, b, &nd)) {
        tz_shape_bufs s;
        tz_fail("%s: shapes a %s and b %s do not broadcast", op->name, tz_shape_str(a, s.a), tz_shape_str(b, s.b));
    }
    tz_tensor *in[2] = {a, b};
    tz_tensor *y = tz_op_output(g, nd, bc.shape + 4 - nd, in, 2);
    const real *ad = a->data, *bd = b->data;
    real *yd = y->data;
    if (tz_same_shape(a, b)) { // the common case: plain loops on both cores
        same_args s = {ad, bd, NULL, yd, NULL, NULL, kind, 0, 0};
        tz_parallel_for(y->n, 1, same_fw, &s);
    } else {
        if (kind == ADD) TZ_BCAST_FOR(&bc, yd[o] = ad[ia] + bd[ib];);
        if (kind == SUB) TZ_BCAST_FOR(&bc, yd[o] = ad[ia] - bd[ib];);
        if (kind == MUL) TZ_BCAST_FOR(&bc, yd[o] = ad[ia] * bd[ib];);
    }
    tz_node *n = tz_op_record(g, op, y, in, 2);
    if (n) {
        n->iarg[0] = kind;
        n->aux = tz_arena_alloc(&g->arena, sizeof bc);
        memcpy(n->aux, &bc, sizeof bc);
    }
    return y;
}

tz_tensor *tz_add(tz_graph *g, tz_tensor *a, tz_tensor *b) { return binary(g, a, b, ADD, &op_add); }
tz_tensor *tz_sub(tz_graph *g, tz_tensor *a, tz_tensor *b) { return binary(g, a, b, SUB, &op_sub); }
tz_tensor *tz_mul(tz_graph *g, tz_tensor *a, tz_tensor *b) { return binary(g, a, b, MUL, &op_mul); }

static void scale_backward(tz_graph *g, tz_node *n) {
    (void)g;
    tz_tensor *x = n->in[0], *y = n->out;
    if (!x->grad) return;
    real s = n->farg[0];
    if (tz_grad_overwrite(x))
        for (int i = 0; i < y->n; i++) x->grad[i] = s * y->grad[i];
    else
        for (int i = 0; i < y->n; i++) x->grad[i] += s * y->grad[i];
}
static const tz_op op_scale = {"scale", scale_backward, TZ_OVERWRITES};

tz_tensor *tz_scale(tz_graph *g, tz_tensor *x, real s) {
    tz_tensor *in[1] = {x};
    tz_tensor *y = tz_op_output(g, x->ndim, x->shape, in, 1);
    for (int i = 0; i < x->n; i++) y->data[i] = x->data[i] * s;
    tz_node *n = tz_op_record(g, &op_scale, y, in, 1);
    if (n) n->farg[0] = s;
    return y;
}
