// graph.c: the tape. Ops append nodes as they run; backward walks them in reverse and each
// node's backward accumulates into its inputs' gradients, so a tensor used twice gets both.
#include "internal.h"
#include "parallel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void tz_graph_init(tz_graph *g, size_t arena_bytes) {
    memset(g, 0, sizeof *g);
    tz_arena_init(&g->arena, arena_bytes);
    g->cap_nodes = 256;
    g->nodes = malloc(sizeof *g->nodes * g->cap_nodes);
    if (!g->nodes) tz_fail("graph: out of memory");
    g->training = 1;
    tz_rng_seed(&g->rng, 1);
}

void tz_graph_free(tz_graph *g) {
    tz_profile_stop(g);
    tz_arena_free(&g->arena);
    free(g->nodes);
    memset(g, 0, sizeof *g);
}

void tz_graph_reset(tz_graph *g) {
    g->n_nodes = 0;
    tz_arena_reset(&g->arena);
    if (g->prof) tz_profile_mark(g);
}

void tz_no_grad_begin(tz_graph *g) { g->no_grad++; }
void tz_no_grad_end(tz_graph *g) {
    if (g->no_grad <= 0) tz_fail("graph: tz_no_grad_end without tz_no_grad_begin");
    g->no_grad--;
}

static tz_tensor *arena_tensor(tz_graph *g, int ndim, const int *shape, int zero) {
    tz_tensor *t = tz_arena_alloc(&g->arena, sizeof *t);
    tz_tensor_set_shape(t, ndim, shape);
    size_t bytes = sizeof(real) * (size_t)t->n;
    t->data = zero ? tz_arena_calloc(&g->arena, bytes) : tz_arena_alloc(&g->arena, bytes);
    t->grad = NULL;
    t->requires_grad = 0;
    t->node = -1;
    t->grad_fresh = 0;
    return t;
}

tz_tensor *tz_empty(tz_graph *g, int ndim, const int *shape) { return arena_tensor(g, ndim, shape, 0); }
tz_tensor *tz_zeros(tz_graph *g, int ndim, const int *shape) { return arena_tensor(g, ndim, shape, 1); }

tz_tensor *tz_wrap(tz_graph *g, real *data, real *grad, int ndim, const int *shape) {
    tz_tensor *t = tz_arena_alloc(&g->arena, sizeof *t);
    tz_tensor_set_shape(t, ndim, shape);
    t->data = data;
    t->grad = grad;
    t->requires_grad = grad != NULL;
    t->node = -1;
    t->grad_fresh = 0;
    return t;
}

tz_tensor *tz_detach(tz_graph *g, tz_tensor *x) { return tz_wrap(g, x->data, NULL, x->ndim, x->shape); }

tz_tensor *tz_op_output(tz_graph *g, int ndim, const int *shape, tz_tensor **in, int n_in) {
    tz_tensor *t = arena_tensor(g, ndim, shape, 0);
    if (!g->no_grad)
        for (int i = 0; i < n_in; i++)
            if (in[i] && in[i]->requires_grad) t->requires_grad = 1;
    return t;
}

tz_node *tz_op_record(tz_graph *g, const tz_op *op, tz_tensor *out, tz_tensor **in, int n_in) {
    if (!out->requires_grad) return NULL;
    if (g->n_nodes == g->cap_nodes) { // grows during the first steps only
        g->cap_nodes *= 2;
        g->nodes = realloc(g->nodes, sizeof *g->nodes * g->cap_nodes);
        if (!g->nodes) tz_fail("graph: out of memory for %d tape nodes", g->cap_nodes);
    }
    tz_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->out = out;
    n->n_in = n_in;
    n->in = tz_arena_alloc(&g->arena, sizeof *n->in * n_in);
    memcpy(n->in, in, sizeof *n->in * n_in);
    out->node = g->n_nodes++;
    if (g->prof) tz_profile_forward(g, op->name);
    return n;
}

// Views (reshape, leading slices) share their input's data, and so its gradient, from the
// element offset iarg[0]: no backward to run.
const tz_op tz_op_view = {"view", NULL, 0};

static void zero_grads(void *arg, long lo, long hi) {
    tz_tensor **t = arg;
    for (long i = lo; i < hi; i++) memset(t[i]->grad, 0, sizeof(real) * (size_t)t[i]->n);
}

int tz_grad_overwrite(tz_tensor *t) {
    int fresh = t->grad_fresh;
    t->grad_fresh = 0;
    return fresh;
}

real *tz_grad_accumulate(tz_tensor *t) {
    if (t->grad_fresh) {
        tz_parallel_zero(t->grad, t->n);
        t->grad_fresh = 0;
    }
    return t->grad;
}

// The tensor whose gradient buffer t's gradient lives in: t itself, or what t is a view of.
static tz_tensor *grad_owner(const tz_graph *g, tz_tensor *t) {
    while (t->node >= 0 && g->nodes[t->node].op == &tz_op_view) t = g->nodes[t->node].in[0];
    return t;
}

// By node: 1 where the output's gradient can live in its values (see TZ_GRAD_IN_INPUT in tz.h):
// an op that does not read its output in backward, whose output has exactly one consumer, an
// op that stores that gradient over the values; no view of it, and it is not the loss.
static unsigned char *gradient_in_values(tz_graph *g, int last, const tz_tensor *out) {
    unsigned char *uses = tz_arena_calloc(&g->arena, (size_t)last + 1);
    int *consumer = tz_arena_alloc(&g->arena, sizeof(int) * ((size_t)last + 1));
    for (int i = 0; i <= last; i++) {
        const tz_node *n = &g->nodes[i];
        for (int j = 0; j < n->n_in; j++) {
            if (!n->in[j] || n->in[j]->node < 0) continue;
            int k = n->in[j]->node;
            // a view shares the buffer: never alias what a view reads
            uses[k] = n->op == &tz_op_view ? 2 : uses[k] < 2 ? uses[k] + 1 : 2;
            consumer[k] = i;
        }
    }
    for (int i = 0; i <= last; i++) {
        const tz_node *n = &g->nodes[i];
        uses[i] = uses[i] == 1 && n->out != out && n->out->data && (n->op->flags & TZ_OUT_UNREAD) &&
                  (g->nodes[consumer[i]].op->flags & (TZ_GRAD_IN_INPUT | TZ_OVERWRITES)) ==
                      (TZ_GRAD_IN_INPUT | TZ_OVERWRITES);
    }
    return uses;
}

void tz_grad_settle(tz_tensor *t) {
    if (!t->grad_fresh) return;
    tz_parallel_zero(t->grad, t->n);
    t->grad_fresh = 0;
}

// Gradient buffers of the step's tensors are made only here, for the nodes before the output.
// They start fresh (unwritten): the first backward to reach one overwrites it (a gemm with
// beta 0, `=` instead of `+=`), so most are never zeroed, nor read back as zeros. A buffer is
// zeroed up front only if something may add into it before (or without) an overwrite: a
// consumer whose op does not follow the contract, a view (it may cover part of the buffer), the
// seed, or no consumer at all (its own backward reads it).
void tz_backward_seed(tz_graph *g, tz_tensor *out, const real *seed) {
    if (!out->requires_grad) tz_fail("backward: the tensor does not depend on anything that needs a gradient");
    int last = out->node;
    unsigned char *zero = tz_arena_calloc(&g->arena, (size_t)last + 1); // by node: zero up front
    unsigned char *made = tz_arena_calloc(&g->arena, (size_t)last + 1); // by node: buffer made now
    unsigned char *used = tz_arena_calloc(&g->arena, (size_t)last + 1); // by node: has a consumer
    unsigned char *alias = gradient_in_values(g, last, out); // by node: grad = its values
    for (int i = 0; i <= last; i++) {
        tz_node *n = &g->nodes[i];
        if (n->out->grad) continue;
        if (n->op == &tz_op_view) { // at the view's offset
            n->out->grad = n->in[0]->grad + n->iarg[0];
            n->out->grad_fresh = 0;
            tz_tensor *o = grad_owner(g, n->in[0]);
            if (o->node >= 0) zero[o->node] = 1;
            else tz_grad_settle(o);
        } else {
            n->out->grad = alias[i] ? n->out->data : tz_arena_alloc(&g->arena, sizeof(real) * (size_t)n->out->n);
            made[i] = 1;
        }
    }
    for (int i = 0; i <= last; i++) {
        tz_node *n = &g->nodes[i];
        if (n->op == &tz_op_view) continue;
        for (int j = 0; j < n->n_in; j++) {
            if (!n->in[j] || !n->in[j]->grad) continue;
            tz_tensor *o = grad_owner(g, n->in[j]);
            if (o->node < 0) {
                if (!(n->op->flags & TZ_OVERWRITES)) tz_grad_settle(o);
                continue;
            }
            used[o->node] = 1;
            if (!(n->op->flags & TZ_OVERWRITES)) zero[o->node] = 1;
        }
    }
    tz_tensor *o = grad_owner(g, out);
    if (o->node >= 0) zero[o->node] = 1;
    tz_tensor **eager = tz_arena_alloc(&g->arena, sizeof *eager * ((size_t)last + 1));
    long n_eager = 0, elems = 0;
    for (int i = 0; i <= last; i++) {
        if (!made[i]) continue;
        tz_tensor *t = g->nodes[i].out;
        if (zero[i] || !used[i]) {
            eager[n_eager++] = t;
            elems += t->n;
            t->grad_fresh = 0;
        } else {
            t->grad_fresh = 1;
#ifdef TZ_DOUBLE // the gradient check's build: garbage is NaN, so a missed overwrite shows
            if (!alias[i])
                for (int k = 0; k < t->n; k++) t->grad[k] = NAN;
#endif
        }
    }
    double t0 = g->prof ? tz_now() : 0;
    if (n_eager) tz_parallel_for(n_eager, elems / n_eager + 1, zero_grads, eager);
    for (int i = 0; i < out->n; i++) out->grad[i] += seed[i];
    if (g->prof) tz_profile_backward(g, "(zero step grads)", tz_now() - t0);
    for (int i = last; i >= 0; i--) {
        tz_node *n = &g->nodes[i];
        if (!n->op->backward) continue;
        if (!g->prof) n->op->backward(g, n);
        else {
            t0 = tz_now();
            n->op->backward(g, n);
            tz_profile_backward(g, n->op->name, tz_now() - t0);
        }
    }
}

void tz_backward(tz_graph *g, tz_tensor *loss) {
    if (loss->n != 1) {
        char s[64];
        tz_fail("backward: the loss must be a scalar, got shape %s", tz_shape_str(loss, s));
    }
    real one = 1;
    tz_backward_seed(g, loss, &one);
}
