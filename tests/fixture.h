// fixture.h: reads the golden tensors written by tests/fixtures/fixture.py.
#ifndef TZ_TEST_FIXTURE_H
#define TZ_TEST_FIXTURE_H

#include "tz.h"

typedef struct fixture_tensor {
    char name[64];
    int ndim, shape[TZ_MAX_DIMS], n;
    double *v;
} fixture_tensor;

typedef struct fixture {
    fixture_tensor *t;
    int count;
} fixture;

// Loads tests/fixtures/<name>.txt (found through the TZ_FIXTURES dir the build passes in).
// Fails the test with a clear message if the file is missing or malformed.
void fixture_load(fixture *f, const char *name);
const fixture_tensor *fixture_get(const fixture *f, const char *name); // fails if absent
// Copies a fixture tensor into dst (sizes must match, else the test fails).
void fixture_copy(const fixture *f, const char *name, real *dst, int n);
void fixture_free(fixture *f);
// Asserts t equals the fixture tensor `name` element by element within tol.
void fixture_expect_close(const fixture *f, const tz_tensor *t, const char *name, double tol);
// The fixture tensor `name` as a new tensor in g's arena.
tz_tensor *fixture_tensor_in(const fixture *f, tz_graph *g, const char *name);

#endif
