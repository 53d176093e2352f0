// op_embedding.c: gather rows of a table; backward scatter-adds (an id used twice gets both).
#include "internal.h"

#include <string.h>

static void embedding_backward(tz_graph *g, tz_node *n) {
    (void)g;
    tz_tensor *w = n->in[0], *y = n->out;
    if (!w->grad) return;
    tz_grad_accumulate(w); // a scatter: rows not looked up get nothing
    const int *ids = n->aux;
    int D = w->shape[1];
    for (int i = 0; i < n->iarg[0]; i++) {
        real *gw = w->grad + (long)ids[i] * D;
        const real *gy = y->grad + (long)i * D;
        for (int d = 0; d < D; d++) gw[d] += gy[d];
    }
}
static const tz_op op_embedding = {"embedding", embedding_backward, TZ_OVERWRITES};

tz_tensor *tz_embedding(tz_graph *g, tz_tensor *w, const int *ids, int n) {
    char s[64];
    if (w->ndim != 2) tz_fail("embedding: table must be (V,D), got %s", tz_shape_str(w, s));
    int V = w->shape[0], D = w->shape[1];
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            tz_fail("embedding: id %d at position %d is outside [0,%d) for table %s", ids[i], i, V, tz_shape_str(w, s));
    tz_tensor *in[1] = {w};
    int shape[2] = {n, D};
    tz_tensor *y = tz_op_output(g, 2, shape, in, 1);
    for (int i = 0; i < n; i++) memcpy(y->data + (long)i * D, w->data + (long)ids[i] * D, sizeof(real) * D);
    tz_node *nd = tz_op_record(g, &op_embedding, y, in, 1);
    if (nd) { // the caller's ids may change before backward: keep a copy
        nd->iarg[0] = n;
        nd->aux = memcpy(tz_arena_alloc(&g->arena, sizeof(int) * n), ids, sizeof(int) * n);
    }
    return y;
}
