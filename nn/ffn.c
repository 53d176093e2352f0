// ffn.c: ReLU/GELU and SwiGLU feed-forward blocks, and the SiLU op SwiGLU gates with.
#include "ffn.h"

#include "fastmath.h"

#include <stdio.h>
#include <string.h>

static void silu_backward(tz_graph *g, tz_node *n) {
    (void)g;
    tz_tensor *x = n->in[0], *y = n->out;
    if (!x->grad) return;
    for (int i = 0; i < x->n; i++) {
        real s = tz_fsigmoid(x->data[i]); // recomputed, not stored: one exp per element is cheaper than a buffer
        x->grad[i] += y->grad[i] * s * (1 + x->data[i] * (1 - s));
    }
}
static const tz_op op_silu = {"silu", silu_backward, 0};

// x (..) -> (..)
tz_tensor *tz_silu(tz_graph *g, tz_tensor *x) {
    tz_tensor *in[1] = {x};
    tz_tensor *y = tz_op_output(g, x->ndim, x->shape, in, 1);
    for (int i = 0; i < x->n; i++) y->data[i] = x->data[i] * tz_fsigmoid(x->data[i]);
    tz_op_record(g, &op_silu, y, in, 1);
    return y;
}

int nn_ffn_parse(const char *name, nn_ffn_kind *kind) {
    static const char *const names[] = {"relu", "gelu", "swiglu"};
    for (int k = 0; name && k < 3; k++)
        if (!strcmp(name, names[k])) {
            *kind = (nn_ffn_kind)k;
            return 1;
        }
    return 0;
}

void nn_ffn_init(nn_ffn *f, tz_params *P, const char *name, nn_ffn_kind kind, int d_model, int d_ff, int bias,
                 nn_init init, tz_rng *r) {
    if (d_model <= 0 || d_ff <= 0 || (unsigned)kind > NN_FFN_SWIGLU)
        tz_fail("ffn '%s': d_model = %d, d_ff = %d must be > 0, kind %d", name, d_model, d_ff, (int)kind);
    char key[256];
    memset(f, 0, sizeof *f);
    f->kind = kind, f->d_model = d_model, f->d_ff = d_ff;
    snprintf(key, sizeof key, "%s.w1", name);
    nn_linear_init(&f->w1, P, key, d_model, d_ff, bias, init, r);
    snprintf(key, sizeof key, "%s.w2", name);
    nn_linear_init(&f->w2, P, key, d_ff, d_model, bias, init, r);
    if (kind == NN_FFN_SWIGLU) {
        snprintf(key, sizeof key, "%s.w3", name);
        nn_linear_init(&f->w3, P, key, d_model, d_ff, bias, init, r);
    }
}

// x (.., d_model) -> (.., d_model); hidden (.., d_ff)
tz_tensor *nn_ffn_forward(tz_graph *g, const nn_ffn *f, tz_tensor *x) {
    if (x->shape[x->ndim - 1] != f->d_model) {
        char s[64];
        tz_fail("ffn: input %s does not end in d_model %d", tz_shape_str(x, s), f->d_model);
    }
    tz_tensor *h = nn_linear_forward(g, &f->w1, x);
    switch (f->kind) {
        case NN_FFN_RELU: h = tz_relu(g, h); break;
        case NN_FFN_GELU: h = tz_gelu(g, h); break;
        case NN_FFN_SWIGLU: h = tz_mul(g, tz_silu(g, h), nn_linear_forward(g, &f->w3, x)); break;
    }
    if (f->dropout > 0) h = tz_dropout(g, h, f->dropout);
    return nn_linear_forward(g, &f->w2, h);
}
