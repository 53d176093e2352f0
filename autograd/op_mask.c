// op_mask.c: masked fill for attention scores (the masks themselves: nn_attn_mask, nn/attention.c).
#include "internal.h"

#include <string.h>

static void masked_fill_backward(tz_graph *g, tz_node *n) {
    (void)g;
    tz_tensor *x = n->in[0], *y = n->out;
    if (!x->grad) return;
    const tz_bcast *bc = n->aux;
    const real *m = (const real *)((const tz_bcast *)n->aux + 1);
    TZ_BCAST_FOR(bc, if (m[ib] == 0) x->grad[ia] += y->grad[o];);
}
static const tz_op op_masked_fill = {"masked_fill", masked_fill_backward, 0};

tz_tensor *tz_masked_fill(tz_graph *g, tz_tensor *x, const tz_tensor *mask, real value) {
    tz_bcast bc;
    int nd;
    if (!tz_bcast_init(&bc, x, mask, &nd) || nd != x->ndim || tz_numel(nd, bc.shape + 4 - nd) != x->n) {
        tz_shape_bufs s;
        tz_fail("masked_fill: mask %s does not broadcast to input %s", tz_shape_str(mask, s.a), tz_shape_str(x, s.b));
    }
    tz_tensor *in[1] = {x};
    tz_tensor *y = tz_op_output(g, x->ndim, x->shape, in, 1);
    const real *m = mask->data;
    TZ_BCAST_FOR(&bc, y->data[o] = m[ib] != 0 ? value : x->data[ia];);
    tz_node *n = tz_op_record(g, &op_masked_fill, y, in, 1);
    if (n) { // the broadcast plan followed by a copy of the mask: it may be gone by backward
        n->aux = tz_arena_alloc(&g->arena, sizeof bc + sizeof(real) * mask->n);
        memcpy(n->aux, &bc, sizeof bc);
        memcpy((tz_bcast *)n->aux + 1, mask->data, sizeof(real) * mask->n);
    }
    return y;
}
