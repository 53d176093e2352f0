// position.c: sinusoidal and learned absolute positions, and the rotary op (RoPE).
#include "position.h"

#include <math.h>
#include <stdio.h>

// Vaswani et al. 2017, 3.5: dims 2i and 2i+1 share the frequency 1 / 10000^(2i/d). An odd d
// simply ends with a sine.
void nn_sinusoidal_fill(real *pe, int T, int d, int offset) {
    for (int t = 0; t < T; t++)
        for (int j = 0; j < d; j++) {
            double angle = (double)(offset + t) / pow(10000.0, (double)(j - (j & 1)) / d);
            pe[(long)t * d + j] = (real)((j & 1) ? cos(angle) : sin(angle));
        }
}

// x (.., T, d), the table (T, d) broadcast over the leading dims.
tz_tensor *nn_sinusoidal_forward(tz_graph *g, tz_tensor *x, int offset) {
    char s[64];
    if (x->ndim < 2 || offset < 0)
        tz_fail("sinusoidal: input %s wants (.., T, d), offset %d >= 0", tz_shape_str(x, s), offset);
    int T = x->shape[x->ndim - 2], d = x->shape[x->ndim - 1];
    tz_tensor *pe = tz_empty(g, 2, (const int[]){T, d});
    nn_sinusoidal_fill(pe->data, T, d, offset);
    return tz_add(g, x, pe);
}

void nn_learned_pos_init(nn_learned_pos *p, tz_params *P, const char *name, int max_len, int dim, nn_init init,
                         tz_rng *r) {
    if (max_len <= 0 || dim <= 0) tz_fail("learned_pos '%s': max_len = %d, dim = %d must be > 0", name, max_len, dim);
    char key[256];
    snprintf(key, sizeof key, "%s.weight", name);
    p->max_len = max_len, p->dim = dim;
    p->w = tz_param(P, key, 2, (const int[]){max_len, dim});
    tz_params_set_flags(P, p->w, TZ_PARAM_EMBEDDING);
    nn_init_apply(p->w, nn_init_or(init, (nn_init){NN_INIT_NORMAL, 0.02}), dim, max_len, 1, r);
}

// x (.., T, dim), W (max_len, dim): rows offset..offset+T-1, a view of W (a leading slice), added
// with broadcasting; backward adds into those rows of W's gradient.
tz_tensor *nn_learned_pos_forward(tz_graph *g, const nn_learned_pos *p, tz_tensor *x, int offset) {
    char s[64];
    int T = x->ndim >= 2 ? x->shape[x->ndim - 2] : 0;
    if (x->ndim < 2 || x->shape[x->ndim - 1] != p->dim)
        tz_fail("learned_pos: input %s wants (.., T, %d)", tz_shape_str(x, s), p->dim);
    if (offset < 0 || offset + T > p->max_len)
        tz_fail("learned_pos: positions [%d, %d) outside max_len %d", offset, offset + T, p->max_len);
    return tz_add(g, x, tz_slice(g, p->w, 0, offset, T));
}

// RoPE. For the pair i of a row at position p, with angle a = p * base^(-2i/D):
//   y0 = x0 cos a - x1 sin a,   y1 = x0 sin a + x1 cos a
// The rotation is orthogonal, so the backward is the rotation by -a:
//   dx0 = dy0 cos a + dy1 sin a, dx1 = -dy0 sin a + dy1 cos a
// aux holds the (T, D/2) table of cos and sin, made once in the forward.
static void rope_backward(tz_graph *g, tz_node *n) {
    (void)g;
    tz_tensor *x = n->in[0], *y = n->out;
    if (!x->grad) return;
    const real *cs = n->aux;
    int D = tz_cols(x), T = n->iarg[0], half = D / 2;
    for (int r = 0; r < tz_rows(x); r++) {
        const real *c = cs + (long)(r % T) * D; // cos, sin interleaved per pair
        const real *gy = y->grad + (long)r * D;
        real *gx = x->grad + (long)r * D;
        for (int i = 0; i < half; i++) {
            real co = c[2 * i], si = c[2 * i + 1];
            gx[2 * i] += gy[2 * i] * co + gy[2 * i + 1] * si;
            gx[2 * i + 1] += -gy[2 * i] * si + gy[2 * i + 1] * co;
        }
    }
}
static const tz_op op_rope = {"rope", rope_backward, 0};

// x (.., T, D), D even
tz_tensor *tz_rope(tz_graph *g, tz_tensor *x, int offset, real base) {
    char s[64];
    if (x->ndim < 2 || x->shape[x->ndim - 1] % 2 || offset < 0 || !(base > 1))
        tz_fail("rope: input %s wants (.., T, D) with D even, offset %d >= 0, base %g > 1", tz_shape_str(x, s), offset,
                (double)base);
    int T = x->shape[x->ndim - 2], D = x->shape[x->ndim - 1], half = D / 2;
    real *cs = tz_arena_alloc(&g->arena, sizeof(real) * (size_t)T * D);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++) {
            double a = (offset + t) * pow((double)base, -2.0 * i / D);
            cs[(long)t * D + 2 * i] = (real)cos(a);
            cs[(long)t * D + 2 * i + 1] = (real)sin(a);
        }
    tz_tensor *in[1] = {x};
    tz_tensor *y = tz_op_output(g, x->ndim, x->shape, in, 1);
    for (int r = 0; r < tz_rows(x); r++) {
        const real *c = cs + (long)(r % T) * D, *xr = x->data + (long)r * D;
        real *yr = y->data + (long)r * D;
        for (int i = 0; i < half; i++) {
            real co = c[2 * i], si = c[2 * i + 1], x0 = xr[2 * i], x1 = xr[2 * i + 1];
            yr[2 * i] = x0 * co - x1 * si;
            yr[2 * i + 1] = x0 * si + x1 * co;
        }
    }
    tz_node *n = tz_op_record(g, &op_rope, y, in, 1);
    if (n) n->iarg[0] = T, n->aux = cs;
    return y;
}
