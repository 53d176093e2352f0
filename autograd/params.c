// params.c: every parameter of a model in one contiguous block of values and one of gradients.
#include "internal.h"
#include "parallel.h"

#include <stdlib.h>
#include <string.h>

void tz_params_init(tz_params *P) { memset(P, 0, sizeof *P); }

// Re-points every tensor into the (possibly moved) blocks.
static void repoint(tz_params *P) {
    for (int i = 0; i < P->count; i++) {
        P->t[i]->data = P->data + P->off[i];
        P->t[i]->grad = P->grad + P->off[i];
    }
}

tz_tensor *tz_param(tz_params *P, const char *name, int ndim, const int *shape) {
    if (tz_params_find(P, name)) tz_fail("params: '%s' is declared twice", name);
    tz_tensor *t = calloc(1, sizeof *t); // a header only: its data lives in the block
    if (!t) tz_fail("params: out of memory");
    tz_tensor_set_shape(t, ndim, shape);
    t->node = -1;
    if (P->count == P->cap_count) {
        P->cap_count = P->cap_count ? 2 * P->cap_count : 16;
        P->t = realloc(P->t, sizeof *P->t * P->cap_count);
        P->names = realloc(P->names, sizeof *P->names * P->cap_count);
        P->off = realloc(P->off, sizeof *P->off * P->cap_count);
        P->flags = realloc(P->flags, sizeof *P->flags * P->cap_count);
        if (!P->t || !P->names || !P->off || !P->flags) tz_fail("params: out of memory");
    }
    if (P->n + (size_t)t->n > P->cap) {
        size_t cap = P->cap ? 2 * P->cap : 1024;
        while (cap < P->n + (size_t)t->n) cap *= 2;
        P->data = realloc(P->data, sizeof(real) * cap);
        P->grad = realloc(P->grad, sizeof(real) * cap);
        if (!P->data || !P->grad) tz_fail("params: out of memory for %zu elements", cap);
        P->cap = cap;
    }
    memset(P->data + P->n, 0, sizeof(real) * t->n);
    memset(P->grad + P->n, 0, sizeof(real) * t->n);
    P->t[P->count] = t;
    P->names[P->count] = strdup(name);
    P->off[P->count] = P->n;
    P->flags[P->count] = 0;
    P->count++;
    P->n += t->n;
    t->requires_grad = 1;
    repoint(P);
    return t;
}

tz_tensor *tz_params_find(const tz_params *P, const char *name) {
    for (int i = 0; i < P->count; i++)
        if (!strcmp(P->names[i], name)) return P->t[i];
    return NULL;
}

int tz_params_index(const tz_params *P, const tz_tensor *t) {
    for (int i = 0; i < P->count; i++)
        if (P->t[i] == t) return i;
    return -1;
}

void tz_params_set_flags(tz_params *P, const tz_tensor *t, unsigned flags) {
    int i = tz_params_index(P, t);
    if (i < 0) tz_fail("params: set_flags on a tensor that is not a parameter");
    P->flags[i] = flags;
}

void tz_params_zero_grad(tz_params *P) { tz_parallel_zero(P->grad, (long)P->n); }

void tz_params_free(tz_params *P) {
    for (int i = 0; i < P->count; i++) {
        tz_tensor_free(P->t[i]);
        free(P->names[i]);
    }
    free(P->t);
    free(P->names);
    free(P->off);
    free(P->flags);
    free(P->data);
    free(P->grad);
    memset(P, 0, sizeof *P);
}
