// op_reduce.c: sum and mean of all elements, to a scalar.
#include "internal.h"

static void sum_backward(tz_graph *g, tz_node *n) {
    (void)g;
    tz_tensor *x = n->in[0];
    if (!x->grad) return;
    real d = n->out->grad[0] * n->farg[0];
    for (int i = 0; i < x->n; i++) x->grad[i] += d;
}
static const tz_op op_sum = {"sum", sum_backward, 0};
static const tz_op op_mean = {"mean", sum_backward, 0};

static tz_tensor *reduce(tz_graph *g, tz_tensor *x, real scale, const tz_op *op) {
    tz_tensor *in[1] = {x};
    tz_tensor *y = tz_op_output(g, 0, NULL, in, 1);
    double s = 0;
    for (int i = 0; i < x->n; i++) s += x->data[i];
    y->data[0] = (real)(s * scale);
    tz_node *n = tz_op_record(g, op, y, in, 1);
    if (n) n->farg[0] = scale;
    return y;
}

tz_tensor *tz_sum(tz_graph *g, tz_tensor *x) { return reduce(g, x, 1, &op_sum); }
tz_tensor *tz_mean(tz_graph *g, tz_tensor *x) { return reduce(g, x, (real)1 / x->n, &op_mean); }
