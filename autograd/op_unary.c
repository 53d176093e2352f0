// op_unary.c: elementwise functions, on both cores for large tensors. Backward uses the output
// where that is cheaper (tanh: 1 - y^2, sigmoid: y (1 - y), exp: y), and stores into a fresh
// input gradient instead of adding (tz_grad_overwrite).
#include "fastmath.h"
#include "internal.h"
#include "parallel.h"

#include <math.h>

// What a chunk of an elementwise pass reads and writes.
typedef struct {
    const real *x, *y, *gy;
    real *out;
    int over;
} unary_args;

// A forward kernel y[i] = f(x[i]) and a backward kernel gx[i] (+)= gy[i] * f'(x[i], y[i]), each
// over [lo, hi), written once per function by these two macros.
#define UNARY_FORWARD(name, expr) \
    static void name(void *arg, long lo, long hi) { \
        const unary_args *a = arg; \
        const real *restrict x = a->x; \
        real *restrict y = a->out; \
        for (long i = lo; i < hi; i++) { \
            real v = x[i]; \
            y[i] = (expr); \
        } \
    }
#define UNARY_BACKWARD(name, deriv) \
    static void name(void *arg, long lo, long hi) { \
        const unary_args *a = arg; \
        const real *restrict x = a->x, *restrict y = a->y, *restrict gy = a->gy; \
        real *restrict gx = a->out; \
        (void)x, (void)y; \
        if (a->over) \
            for (long i = lo; i < hi; i++) gx[i] = gy[i] * (deriv); \
        else \
            for (long i = lo; i < hi; i++) gx[i] += gy[i] * (deriv); \
    }

UNARY_FORWARD(tanh_fw, tz_ftanh(v))
UNARY_FORWARD(sigmoid_fw, tz_fsigmoid(v))
UNARY_FORWARD(relu_fw, v > 0 ? v : 0)
UNARY_FORWARD(exp_fw, tz_fexp(v < TZ_EXP_MAX ? v : TZ_EXP_MAX)) // clamped: the result stays finite
UNARY_FORWARD(log_fw, tz_real_log(v > TZ_LOG_MIN ? v : TZ_LOG_MIN)) // clamped: log(0) is finite

UNARY_BACKWARD(tanh_bw, 1 - y[i] * y[i])
UNARY_BACKWARD(sigmoid_bw, y[i] * (1 - y[i]))
UNARY_BACKWARD(relu_bw, x[i] > 0 ? 1 : 0)
UNARY_BACKWARD(exp_bw, x[i] < TZ_EXP_MAX ? y[i] : 0)
UNARY_BACKWARD(log_bw, x[i] > TZ_LOG_MIN ? 1 / x[i] : 0)

// Work per element, for the threading decision: transcendental functions cost more.
enum { CHEAP = 1, COSTLY = 8 };

typedef struct {
    tz_op op;
    void (*fw)(void *, long, long), (*bw)(void *, long, long);
    int cost;
} unary_def;

static void unary_backward(tz_graph *g, tz_node *n);
static const unary_def defs[] = {
    {{"tanh", unary_backward, 1}, tanh_fw, tanh_bw, COSTLY},
    {{"sigmoid", unary_backward, 1}, sigmoid_fw, sigmoid_bw, COSTLY},
    {{"relu", unary_backward, 1}, relu_fw, relu_bw, CHEAP},
    {{"exp", unary_backward, 1}, exp_fw, exp_bw, COSTLY},
    {{"log", unary_backward, 1}, log_fw, log_bw, COSTLY},
};

static void unary_backward(tz_graph *g, tz_node *n) {
    (void)g;
    const unary_def *d = (const unary_def *)n->op; // the tz_op is the first member of its def
    tz_tensor *x = n->in[0], *y = n->out;
    if (!x->grad) return;
    unary_args a = {x->data, y->data, y->grad, x->grad, tz_grad_overwrite(x)};
    tz_parallel_for(y->n, d->cost, d->bw, &a);
}

static tz_tensor *unary(tz_graph *g, tz_tensor *x, const unary_def *d) {
    tz_tensor *in[1] = {x};
    tz_tensor *y = tz_op_output(g, x->ndim, x->shape, in, 1);
    unary_args a = {x->data, NULL, NULL, y->data, 0};
    tz_parallel_for(x->n, d->cost, d->fw, &a);
    tz_op_record(g, &d->op, y, in, 1);
    return y;
}

tz_tensor *tz_tanh(tz_graph *g, tz_tensor *x) { return unary(g, x, &defs[0]); }
tz_tensor *tz_sigmoid(tz_graph *g, tz_tensor *x) { return unary(g, x, &defs[1]); }
tz_tensor *tz_relu(tz_graph *g, tz_tensor *x) { return unary(g, x, &defs[2]); }
tz_tensor *tz_exp(tz_graph *g, tz_tensor *x) { return unary(g, x, &defs[3]); }
tz_tensor *tz_log(tz_graph *g, tz_tensor *x) { return unary(g, x, &defs[4]); }

// GELU (Hendrycks & Gimpel 2016) saves its derivative in the forward, where erf's exp(-x^2/2)
// is at hand, so backward is one multiply per element instead of an erf and an exp again (that
// was 60% of GELU's time):  y = x Phi(x),  dy/dx = Phi(x) + x phi(x).
// Forward: a->x in, a->out = y, d (the derivative; NULL when nothing will be recorded).
typedef struct {
    unary_args a;
    real *d;
} gelu_args;
static void gelu_fw(void *arg, long lo, long hi) {
    const gelu_args *ga = arg;
    const real *restrict x = ga->a.x;
    real *restrict y = ga->a.out, *restrict d = ga->d;
    for (long i = lo; i < hi; i++) {
        real v = x[i], Phi, phi;
        tz_fnormal(v, &Phi, &phi);
        y[i] = v * Phi;
        if (d) d[i] = Phi + v * phi;
    }
}
UNARY_BACKWARD(gelu_bw, x[i]) // x: the derivative the forward saved

static void gelu_backward(tz_graph *g, tz_node *n) {
    (void)g;
    tz_tensor *x = n->in[0], *y = n->out;
    if (!x->grad) return;
    unary_args a = {n->aux, NULL, y->grad, x->grad, tz_grad_overwrite(x)};
    tz_parallel_for(y->n, CHEAP, gelu_bw, &a);
}
static const tz_op op_gelu = {"gelu", gelu_backward, TZ_OVERWRITES};

tz_tensor *tz_gelu(tz_graph *g, tz_tensor *x) {
    tz_tensor *in[1] = {x};
    tz_tensor *y = tz_op_output(g, x->ndim, x->shape, in, 1);
    gelu_args a = {{x->data, NULL, NULL, y->data, 0},
                   y->requires_grad ? tz_arena_alloc(&g->arena, sizeof(real) * (size_t)x->n) : NULL};
    tz_parallel_for(x->n, COSTLY, gelu_fw, &a);
    tz_node *n = tz_op_record(g, &op_gelu, y, in, 1);
    if (n) n->aux = a.d;
    return y;
}
