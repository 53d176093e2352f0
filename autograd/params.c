// params.c: every parameter of a model in one contiguous block of values and one of gradients.
#include "internal.h"
#include "parallel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void tz_params_init(tz_params *P) { memset(P, 0, sizeof *P); }

// Values, gradients and an optimiser's two moments (Adam's): what a parameter costs in training.
#define COPIES 4

void tz_params_check_size(size_t n) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return; // unknown: the allocations will tell
    double need = (double)n * COPIES * sizeof(real), have = (double)pages * (double)page;
    if (need > have)
        tz_fail("model needs %zu parameters (%.1f GiB with gradients and optimiser state) - more than this machine's "
                "memory (%.1f GiB)",
                n, need / (1 << 30), have / (1 << 30));
}

// Re-points every tensor into the (possibly moved) blocks.
static void repoint(tz_params *P) {
    for (int i = 0; i < P->count; i++) {
        P->t[i]->data = P->data + P->off[i];
        P->t[i]->grad = P->grad + P->off[i];
    }
}

tz_tensor *tz_param(tz_params *P, const char *name, int ndim, const int *shape) {
    if (tz_params_find(P, name)) tz_fail("params: '%s' is declared twice", name);
    tz_tensor tmp = {0};
    tz_tensor_set_shape(&tmp, ndim, shape); // may fail: before anything is allocated
    tz_tensor *t = calloc(1, sizeof *t); // a header only: its data lives in the block
    if (!t) tz_fail("params: out of memory");
    *t = tmp;
    t->node = -1;
    if (P->count == P->cap_count) {
        int cap = P->cap_count ? 2 * P->cap_count : 16;
        // Each array keeps its old block until its realloc succeeds: nothing leaks on failure.
        tz_tensor **ts = realloc(P->t, sizeof *ts * cap);
        if (ts) P->t = ts;
        char **names = ts ? realloc(P->names, sizeof *names * cap) : NULL;
        if (names) P->names = names;
        size_t *off = names ? realloc(P->off, sizeof *off * cap) : NULL;
        if (off) P->off = off;
        unsigned *flags = off ? realloc(P->flags, sizeof *flags * cap) : NULL;
        if (flags) P->flags = flags;
        if (!flags) {
            tz_tensor_free(t);
            tz_fail("params: out of memory");
        }
        P->cap_count = cap;
    }
    size_t need = P->n + (size_t)t->n;
    if (need > P->cap) {
        // Checked before growing: a model too large for the machine fails here with its size,
        // not by the OOM killer. Doubling stops where it would pass the check: then exact.
        tz_params_check_size(need);
        size_t cap = P->cap ? 2 * P->cap : 1024;
        while (cap < need) cap *= 2;
        long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
        if (pages > 0 && page > 0 && (double)cap * COPIES * sizeof(real) > (double)pages * (double)page) cap = need;
        real *data = realloc(P->data, sizeof(real) * cap);
        if (data) P->data = data;
        real *grad = data ? realloc(P->grad, sizeof(real) * cap) : NULL;
        if (grad) P->grad = grad;
        if (!data || !grad) {
            tz_tensor_free(t);
            tz_fail("params: out of memory for %zu elements", cap);
        }
        P->cap = cap;
    }
    memset(P->data + P->n, 0, sizeof(real) * t->n);
    memset(P->grad + P->n, 0, sizeof(real) * t->n);
    P->t[P->count] = t;
    P->names[P->count] = strdup(name);
    if (!P->names[P->count]) {
        tz_tensor_free(t);
        tz_fail("params: out of memory");
    }
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

void tz_params_zero_grad(tz_params *P) {
    tz_parallel_zero(P->grad, (long)P->n);
    for (int i = 0; i < P->count; i++) P->t[i]->grad_fresh = 0;
}

void tz_params_grad_begin(tz_params *P) {
    for (int i = 0; i < P->count; i++) {
        P->t[i]->grad_fresh = 1;
#ifdef TZ_DOUBLE // the gradient check's build: garbage is NaN, so a missed overwrite shows
        for (int k = 0; k < P->t[i]->n; k++) P->t[i]->grad[k] = NAN;
#endif
    }
}

void tz_params_grad_end(tz_params *P) {
    for (int i = 0; i < P->count; i++)
        if (P->t[i]->grad_fresh) {
            tz_parallel_zero(P->t[i]->grad, P->t[i]->n);
            P->t[i]->grad_fresh = 0;
        }
}

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
