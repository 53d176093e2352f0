// linear.c: the Linear layer, y = x W^T + b, on the fused tz_linear op.
#include "layers.h"

#include <math.h>
#include <stdio.h>

void nn_linear_init(nn_linear *l, tz_params *P, const char *name, int in, int out, int bias, nn_init init, tz_rng *r) {
    if (in <= 0 || out <= 0) tz_fail("linear '%s': sizes in = %d, out = %d must be > 0", name, in, out);
    char key[256];
    l->in = in, l->out = out;
    snprintf(key, sizeof key, "%s.weight", name);
    l->w = tz_param(P, key, 2, (const int[]){out, in});
    nn_init_apply(l->w, nn_init_or(init, (nn_init){NN_INIT_PYTORCH, 0}), in, out, 1, r);
    l->b = NULL;
    if (bias) {
        snprintf(key, sizeof key, "%s.bias", name);
        l->b = tz_param(P, key, 1, (const int[]){out});
        nn_init_apply(l->b, (nn_init){NN_INIT_UNIFORM, 1 / sqrt(in)}, in, out, 1, r);
    }
}

tz_tensor *nn_linear_forward(tz_graph *g, const nn_linear *l, tz_tensor *x) { return tz_linear(g, x, l->w, l->b); }
