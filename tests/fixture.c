#include "fixture.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TZ_FIXTURES
#define TZ_FIXTURES "tests/fixtures"
#endif

void fixture_load(fixture *f, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.txt", TZ_FIXTURES, name);
    FILE *fp = fopen(path, "r");
    cr_assert(fp, "cannot open fixture %s (regenerate with tests/fixtures/gen_*.py)", path);
    memset(f, 0, sizeof *f);
    int cap = 0;
    fixture_tensor t;
    while (fscanf(fp, "%63s %d", t.name, &t.ndim) == 2) {
        cr_assert(t.ndim >= 0 && t.ndim <= TZ_MAX_DIMS, "%s: tensor %s has %d dims", path, t.name, t.ndim);
        t.n = 1;
        for (int i = 0; i < t.ndim; i++) {
            cr_assert(fscanf(fp, "%d", &t.shape[i]) == 1, "%s: bad shape of %s", path, t.name);
            t.n *= t.shape[i];
        }
        t.v = malloc(sizeof(double) * t.n);
        for (int i = 0; i < t.n; i++) cr_assert(fscanf(fp, "%lf", &t.v[i]) == 1, "%s: %s is short", path, t.name);
        if (f->count == cap) f->t = realloc(f->t, sizeof *f->t * (cap = cap ? 2 * cap : 16));
        f->t[f->count++] = t;
    }
    cr_assert(feof(fp), "%s: malformed after %d tensors", path, f->count);
    fclose(fp);
}

const fixture_tensor *fixture_get(const fixture *f, const char *name) {
    for (int i = 0; i < f->count; i++)
        if (!strcmp(f->t[i].name, name)) return &f->t[i];
    cr_assert_fail("fixture has no tensor '%s'", name);
    return NULL;
}

void fixture_copy(const fixture *f, const char *name, real *dst, int n) {
    const fixture_tensor *t = fixture_get(f, name);
    cr_assert_eq(t->n, n, "fixture tensor %s has %d elements, want %d", name, t->n, n);
    for (int i = 0; i < n; i++) dst[i] = (real)t->v[i];
}

void fixture_free(fixture *f) {
    for (int i = 0; i < f->count; i++) free(f->t[i].v);
    free(f->t);
}

void fixture_expect_close(const fixture *f, const tz_tensor *t, const char *name, double tol) {
    const fixture_tensor *want = fixture_get(f, name);
    cr_assert_eq(t->n, want->n, "%s: %d elements, want %d", name, t->n, want->n);
    for (int i = 0; i < t->n; i++)
        cr_assert(fabs(t->data[i] - want->v[i]) <= tol, "%s[%d]: %.7f, PyTorch %.7f", name, i, t->data[i], want->v[i]);
}

tz_tensor *fixture_tensor_in(const fixture *f, tz_graph *g, const char *name) {
    const fixture_tensor *ft = fixture_get(f, name);
    tz_tensor *t = tz_empty(g, ft->ndim, ft->shape);
    fixture_copy(f, name, t->data, t->n);
    return t;
}
