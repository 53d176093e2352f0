// op_unary.c: elementwise functions. Backward uses the output where that is cheaper
// (tanh: 1 - y^2, sigmoid: y (1 - y), exp: y), and always accumulates.
#include "fastmath.h"
#include "internal.h"

#include <math.h>

#ifdef TZ_DOUBLE
#define R(fn) fn
#else
#define R(fn) fn##f
#endif

static tz_tensor *unary_output(tz_graph *g, tz_tensor *x) {
    tz_tensor *in[1] = {x};
    return tz_op_output(g, x->ndim, x->shape, in, 1);
}

static tz_tensor *unary_record(tz_graph *g, const tz_op *op, tz_tensor *x, tz_tensor *y) {
    tz_tensor *in[1] = {x};
    tz_op_record(g, op, y, in, 1);
    return y;
}

// The backward loops: gx += gy * f'(x, y).
#define UNARY_BACKWARD(name, deriv)                                                           \
    static void name(tz_graph *g, tz_node *nd) {                                              \
        (void)g;                                                                              \
        tz_tensor *xt = nd->in[0], *yt = nd->out;                                             \
        if (!xt->grad) return;                                                                \
        const real *x = xt->data, *y = yt->data, *gy = yt->grad;                              \
        real *gx = xt->grad;                                                                  \
        (void)x, (void)y;                                                                     \
        for (int i = 0; i < yt->n; i++) gx[i] += gy[i] * (deriv);                             \
    }

UNARY_BACKWARD(tanh_backward, 1 - y[i] * y[i])
UNARY_BACKWARD(sigmoid_backward, y[i] * (1 - y[i]))
UNARY_BACKWARD(relu_backward, x[i] > 0 ? 1 : 0)
UNARY_BACKWARD(exp_backward, x[i] < TZ_EXP_MAX ? y[i] : 0)
UNARY_BACKWARD(log_backward, x[i] > TZ_LOG_MIN ? 1 / x[i] : 0)
// d/dx [x Phi(x)] = Phi(x) + x phi(x)
UNARY_BACKWARD(gelu_backward, (real)0.5 * (1 + tz_ferf(x[i] * (real)M_SQRT1_2)) +
                                  x[i] * tz_fexp((real)-0.5 * x[i] * x[i]) * (real)(0.5 * M_2_SQRTPI * M_SQRT1_2))

static const tz_op op_tanh = {"tanh", tanh_backward};
static const tz_op op_sigmoid = {"sigmoid", sigmoid_backward};
static const tz_op op_relu = {"relu", relu_backward};
static const tz_op op_gelu = {"gelu", gelu_backward};
static const tz_op op_exp = {"exp", exp_backward};
static const tz_op op_log = {"log", log_backward};

tz_tensor *tz_tanh(tz_graph *g, tz_tensor *x) {
    tz_tensor *y = unary_output(g, x);
    for (int i = 0; i < x->n; i++) y->data[i] = tz_ftanh(x->data[i]);
    return unary_record(g, &op_tanh, x, y);
}


tz_tensor *tz_sigmoid(tz_graph *g, tz_tensor *x) {
    tz_tensor *y = unary_output(g, x);
    for (int i = 0; i < x->n; i++) y->data[i] = tz_fsigmoid(x->data[i]);
    return unary_record(g, &op_sigmoid, x, y);
}

tz_tensor *tz_relu(tz_graph *g, tz_tensor *x) {
    tz_tensor *y = unary_output(g, x);
    for (int i = 0; i < x->n; i++) y->data[i] = x->data[i] > 0 ? x->data[i] : 0;
    return unary_record(g, &op_relu, x, y);
}

tz_tensor *tz_gelu(tz_graph *g, tz_tensor *x) {
    tz_tensor *y = unary_output(g, x);
    for (int i = 0; i < x->n; i++) {
        real v = x->data[i];
        y->data[i] = (real)0.5 * v * (1 + tz_ferf(v * (real)M_SQRT1_2));
    }
    return unary_record(g, &op_gelu, x, y);
}

tz_tensor *tz_exp(tz_graph *g, tz_tensor *x) {
    tz_tensor *y = unary_output(g, x);
    for (int i = 0; i < x->n; i++) y->data[i] = R(exp)(x->data[i] < TZ_EXP_MAX ? x->data[i] : TZ_EXP_MAX);
    return unary_record(g, &op_exp, x, y);
}

tz_tensor *tz_log(tz_graph *g, tz_tensor *x) {
    tz_tensor *y = unary_output(g, x);
    for (int i = 0; i < x->n; i++) y->data[i] = R(log)(x->data[i] > TZ_LOG_MIN ? x->data[i] : TZ_LOG_MIN);
    return unary_record(g, &op_log, x, y);
}
