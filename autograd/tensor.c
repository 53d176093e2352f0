// tensor.c: heap tensors for setup code and the small shape helpers every op uses.
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tz_numel(int ndim, const int *shape) {
    long n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0) tz_fail("tensor: dim %d has size %d (sizes must be > 0)", i, shape[i]);
        n *= shape[i];
        if (n > 0x7fffffffL) tz_fail("tensor: more than 2^31-1 elements");
    }
    return (int)n;
}

void tz_tensor_set_shape(tz_tensor *t, int ndim, const int *shape) {
    if (ndim < 0 || ndim > TZ_MAX_DIMS) tz_fail("tensor: %d dims (at most %d)", ndim, TZ_MAX_DIMS);
    t->ndim = ndim;
    for (int i = 0; i < TZ_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 1;
    t->n = tz_numel(ndim, shape);
}

tz_tensor *tz_tensor_new(int ndim, const int *shape) {
    tz_tensor tmp = {0};
    tz_tensor_set_shape(&tmp, ndim, shape);
    tz_tensor *t = calloc(1, sizeof *t + sizeof(real) * (size_t)tmp.n);
    if (!t) tz_fail("tensor: out of memory for %d elements", tmp.n);
    *t = tmp;
    t->data = (real *)(t + 1);
    t->node = -1;
    return t;
}

void tz_tensor_free(tz_tensor *t) { free(t); }

char *tz_shape_str(const tz_tensor *t, char *buf) {
    int len = sprintf(buf, "(");
    for (int i = 0; i < t->ndim; i++) len += sprintf(buf + len, i ? ",%d" : "%d", t->shape[i]);
    sprintf(buf + len, ")");
    return buf;
}

int tz_same_shape(const tz_tensor *a, const tz_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

int tz_cols(const tz_tensor *t) { return t->ndim ? t->shape[t->ndim - 1] : 1; }
int tz_rows(const tz_tensor *t) { return t->n / tz_cols(t); }
