// op_dropout.c: inverted dropout (Srivastava et al. 2014): kept units are scaled by 1/(1-p)
// during training so evaluation needs no rescaling.
#include "internal.h"

static void dropout_backward(tz_graph *g, tz_node *n) {
    (void)g;
    tz_tensor *x = n->in[0], *y = n->out;
    if (!x->grad) return;
    const unsigned char *keep = n->aux;
    real scale = n->farg[0];
    for (int i = 0; i < y->n; i++)
        if (keep[i]) x->grad[i] += scale * y->grad[i];
}
static const tz_op op_dropout = {"dropout", dropout_backward, 0};

tz_tensor *tz_dropout(tz_graph *g, tz_tensor *x, real p) {
    if (!(p >= 0 && p < 1)) tz_fail("dropout: p = %g must be in [0, 1)", (double)p);
    if (!g->training || p == 0) return x;
    tz_tensor *in[1] = {x};
    tz_tensor *y = tz_op_output(g, x->ndim, x->shape, in, 1);
    unsigned char *keep = tz_arena_alloc(&g->arena, (size_t)x->n);
    real scale = 1 / (1 - p);
    // Compare 32 random bits with p * 2^32: one draw per element, reproducible from g->rng.
    uint64_t cut = (uint64_t)((double)p * 4294967296.0);
    for (int i = 0; i < x->n; i++) {
        keep[i] = (tz_rng_u64(&g->rng) >> 32) >= cut;
        y->data[i] = keep[i] ? x->data[i] * scale : 0;
    }
    tz_node *n = tz_op_record(g, &op_dropout, y, in, 1);
    if (n) n->aux = keep, n->farg[0] = scale;
    return y;
}
