// embedding.c: the Embedding layer, a table of rows picked by id.
#include "layers.h"

#include <stdio.h>

void nn_embedding_init(nn_embedding *e, tz_params *P, const char *name, int vocab, int dim, nn_init init, tz_rng *r) {
    if (vocab <= 0 || dim <= 0) tz_fail("embedding '%s': vocab = %d, dim = %d must be > 0", name, vocab, dim);
    char key[256];
    snprintf(key, sizeof key, "%s.weight", name);
    e->vocab = vocab, e->dim = dim;
    e->w = tz_param(P, key, 2, (const int[]){vocab, dim});
    tz_params_set_flags(P, e->w, TZ_PARAM_EMBEDDING);
    nn_init_apply(e->w, nn_init_or(init, (nn_init){NN_INIT_NORMAL, 1}), dim, vocab, 1, r);
}

tz_tensor *nn_embedding_forward(tz_graph *g, const nn_embedding *e, const int *ids, int n) {
    return tz_embedding(g, e->w, ids, n);
}
