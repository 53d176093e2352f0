// op_unary.c: elementwise functions, on both cores for large tensors. Backward uses the output
// where that is cheaper (tanh: 1 - y^2, sigmoid: y (1 - y), exp: y), and always accumulates.
#include "fastmath.h"
#include "internal.h"
#include "parallel.h"

#include <math.h>

#ifdef TZ_DOUBLE
#define LOG log
#else
#define LOG logf
#endif

// What a chunk of an elementwise pass reads and writes.
typedef struct { const real *x, *y, *gy; real *out; } unary_args;

// A forward kernel y[i] = f(x[i]) and a backward kernel gx[i] += gy[i] * f'(x[i], y[i]), each
// over [lo, hi), written once per function by these two macros.
#define UNARY_FORWARD(name, expr)                                                             \
    static void name(void *arg, long lo, long hi) {                                           \
        const unary_args *a = arg;                                                            \
        const real *restrict x = a->x;                                                        \
        real *restrict y = a->out;                                                            \
        for (long i = lo; i < hi; i++) {                                                      \
            real v = x[i];                                                                    \
            y[i] = (expr);                                                                    \
        }                                                                                     \
    }
#define UNARY_BACKWARD(name, deriv)                                                           \
    static void name(void *arg, long lo, long hi) {                                           \
        const unary_args *a = arg;                                                            \
        const real *restrict x = a->x, *restrict y = a->y, *restrict gy = a->gy;              \
        real *restrict gx = a->out;                                                           \
        (void)x, (void)y;                                                                     \
        for (long i = lo; i < hi; i++) gx[i] += gy[i] * (deriv);                              \
    }

UNARY_FORWARD(tanh_fw, tz_ftanh(v))
UNARY_FORWARD(sigmoid_fw, tz_fsigmoid(v))
UNARY_FORWARD(relu_fw, v > 0 ? v : 0)
UNARY_FORWARD(gelu_fw, (real)0.5 * v * (1 + tz_ferf(v * (real)M_SQRT1_2)))
UNARY_FORWARD(exp_fw, tz_fexp(v < TZ_EXP_MAX ? v : TZ_EXP_MAX)) // clamped: the result stays finite
UNARY_FORWARD(log_fw, LOG(v > TZ_LOG_MIN ? v : TZ_LOG_MIN))      // clamped: log(0) is finite

UNARY_BACKWARD(tanh_bw, 1 - y[i] * y[i])
UNARY_BACKWARD(sigmoid_bw, y[i] * (1 - y[i]))
UNARY_BACKWARD(relu_bw, x[i] > 0 ? 1 : 0)
UNARY_BACKWARD(exp_bw, x[i] < TZ_EXP_MAX ? y[i] : 0)
UNARY_BACKWARD(log_bw, x[i] > TZ_LOG_MIN ? 1 / x[i] : 0)
// d/dx [x Phi(x)] = Phi(x) + x phi(x)
UNARY_BACKWARD(gelu_bw, (real)0.5 * (1 + tz_ferf(x[i] * (real)M_SQRT1_2)) +
                            x[i] * tz_fexp((real)-0.5 * x[i] * x[i]) * (real)(0.5 * M_2_SQRTPI * M_SQRT1_2))

// Work per element, for the threading decision: transcendental functions cost more.
enum { CHEAP = 1, COSTLY = 8 };

typedef struct { tz_op op; void (*fw)(void *, long, long), (*bw)(void *, long, long); int cost; } unary_def;

static void unary_backward(tz_graph *g, tz_node *n);
static const unary_def defs[] = {
    {{"tanh", unary_backward}, tanh_fw, tanh_bw, COSTLY},
    {{"sigmoid", unary_backward}, sigmoid_fw, sigmoid_bw, COSTLY},
    {{"relu", unary_backward}, relu_fw, relu_bw, CHEAP},
    {{"gelu", unary_backward}, gelu_fw, gelu_bw, COSTLY},
    {{"exp", unary_backward}, exp_fw, exp_bw, COSTLY},
    {{"log", unary_backward}, log_fw, log_bw, COSTLY},
};

static void unary_backward(tz_graph *g, tz_node *n) {
    (void)g;
    const unary_def *d = (const unary_def *)n->op; // the tz_op is the first member of its def
    tz_tensor *x = n->in[0], *y = n->out;
    if (!x->grad) return;
    unary_args a = {x->data, y->data, y->grad, x->grad};
    tz_parallel_for(y->n, d->cost, d->bw, &a);
}

static tz_tensor *unary(tz_graph *g, tz_tensor *x, const unary_def *d) {
    tz_tensor *in[1] = {x};
    tz_tensor *y = tz_op_output(g, x->ndim, x->shape, in, 1);
    unary_args a = {x->data, NULL, NULL, y->data};
    tz_parallel_for(x->n, d->cost, d->fw, &a);
    tz_op_record(g, &d->op, y, in, 1);
    return y;
}

tz_tensor *tz_tanh(tz_graph *g, tz_tensor *x) { return unary(g, x, &defs[0]); }
tz_tensor *tz_sigmoid(tz_graph *g, tz_tensor *x) { return unary(g, x, &defs[1]); }
tz_tensor *tz_relu(tz_graph *g, tz_tensor *x) { return unary(g, x, &defs[2]); }
tz_tensor *tz_gelu(tz_graph *g, tz_tensor *x) { return unary(g, x, &defs[3]); }
tz_tensor *tz_exp(tz_graph *g, tz_tensor *x) { return unary(g, x, &defs[4]); }
tz_tensor *tz_log(tz_graph *g, tz_tensor *x) { return unary(g, x, &defs[5]); }
