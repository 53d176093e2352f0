// The float32 gradient check (gradcheck --f32, tools/gradcheck): every registered op, layer and
// model on the float32 engine users train with, under each gemm kernel (AVX-512, AVX2, portable;
// a kernel the CPU lacks falls back to the best it has), and proof that directional derivatives
// at float32's tolerance (1e-2) catch a wrong backward: a wrong formula, a gradient 5% too large,
// and a wrong transposition in an op built on the SIMD gemm.
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "gradcheck.h"

#ifdef TZ_DOUBLE
#error "this test checks the float32 engine"
#endif

static const char *const kernels[] = {"avx512", "avx2", "portable"};
enum { N_KERNELS = 3 };

ParameterizedTestParameters(gradcheck_f32, each) {
    static int idx[4096];
    int n;
    tz_checks(&n);
    for (int i = 0; i < n * N_KERNELS; i++) idx[i] = i;
    return cr_make_param_array(int, idx, n *N_KERNELS);
}

ParameterizedTest(int *i, gradcheck_f32, each) {
    setenv("TZ_GEMM_KERNEL", kernels[*i % N_KERNELS], 1); // read at the first product (a fresh process)
    int n;
    const tz_check *c = &tz_checks(&n)[*i / N_KERNELS];
    tz_check_opts o = tz_check_defaults();
    tz_check_result r;
    tz_check_run(c, &o, &r);
    cr_assert(r.checked > 0, "%s: nothing was compared", c->name);
    cr_assert(r.ok, "%s (%s kernel): max relative error %.3e at %s: numeric %.8g analytic %.8g", c->name,
              tz_gemm_kernel_name(), r.max_err, r.worst_param[0] ? r.worst_param : "a direction", r.numeric,
              r.analytic);
}

// y = x^3 with the backward factor `wrong_by` times 3x^2, or 3x (power 1) instead of 3x^2.
static double wrong_by = 1;
static int wrong_power = 0;
static void cube_backward(tz_graph *g, tz_node *n) {
    (void)g;
    for (int i = 0; i < n->out->n; i++) {
        real x = n->in[0]->data[i];
        n->in[0]->grad[i] += n->out->grad[i] * (real)wrong_by * 3 * (wrong_power ? x : x * x);
    }
}
static const tz_op op_cube = {"cube_test", cube_backward, 0};
static tz_tensor *cube_fw(tz_graph *g, void *st) {
    tz_tensor *x = st;
    tz_tensor *y = tz_op_output(g, x->ndim, x->shape, &x, 1);
    for (int i = 0; i < x->n; i++) y->data[i] = x->data[i] * x->data[i] * x->data[i];
    tz_op_record(g, &op_cube, y, &x, 1);
    return y;
}
static void *cube_setup(tz_params *P, tz_rng *r) {
    tz_tensor *x = tz_param(P, "x", 1, (const int[]){50});
    tz_fill_uniform(x, r, 0.5, 2);
    return x;
}

static int cube_check(double by, int power) {
    wrong_by = by, wrong_power = power;
    tz_check c = {"test/cube", cube_setup, cube_fw, NULL, 0, 0, NULL, NULL};
    tz_check_opts o = tz_check_defaults();
    tz_check_result r;
    tz_check_run(&c, &o, &r);
    cr_assert(r.checked > 0);
    return r.ok;
}

Test(gradcheck_f32_proof, passes_a_right_backward) { cr_assert(cube_check(1, 0)); }
Test(gradcheck_f32_proof, catches_a_wrong_formula) { cr_assert(!cube_check(1, 1), "3x for 3x^2 passed"); }
Test(gradcheck_f32_proof, catches_a_gradient_5_percent_too_large) { cr_assert(!cube_check(1.05, 0), "1.05 x passed"); }

// C = A B (A (M,K), B (K,N)) on tz_sgemm, the SIMD kernels; backward dA = dC B^T, and dB = A^T dC,
// or with `transpose_wrong`, dB = A dC (A square: the shapes fit, the values do not).
enum { M = 40, K = 40, N = 35 };
static int transpose_wrong;
static void mm_backward(tz_graph *g, tz_node *n) {
    (void)g;
    tz_tensor *a = n->in[0], *b = n->in[1];
    const real *dc = n->out->grad;
    tz_sgemm(0, 1, M, K, N, 1, dc, N, b->data, N, 1, a->grad, K);
    tz_sgemm(!transpose_wrong, 0, K, N, M, 1, a->data, K, dc, N, 1, b->grad, N);
}
static const tz_op op_mm = {"mm_test", mm_backward, 0};
static void *mm_setup(tz_params *P, tz_rng *r) {
    tz_tensor **t = malloc(2 * sizeof *t);
    t[0] = tz_param(P, "a", 2, (const int[]){M, K});
    t[1] = tz_param(P, "b", 2, (const int[]){K, N});
    tz_fill_normal(t[0], r, 1);
    tz_fill_normal(t[1], r, 1);
    return t;
}
static tz_tensor *mm_fw(tz_graph *g, void *st) {
    tz_tensor **in = st;
    tz_tensor *c = tz_op_output(g, 2, (const int[]){M, N}, in, 2);
    tz_sgemm(0, 0, M, N, K, 1, in[0]->data, K, in[1]->data, N, 0, c->data, N);
    tz_op_record(g, &op_mm, c, in, 2);
    return c;
}

// Runs the check; *report receives its failure lines (free it).
static tz_check_result mm_check(int wrong, char **report) {
    transpose_wrong = wrong;
    tz_check c = {"test/mm", mm_setup, mm_fw, free, 0, 0, NULL, NULL};
    tz_check_opts o = tz_check_defaults();
    size_t len;
    o.report = open_memstream(report, &len);
    tz_check_result r;
    tz_check_run(&c, &o, &r);
    fclose(o.report);
    return r;
}

Test(gradcheck_f32_proof, passes_a_right_gemm_backward) {
    char *report;
    tz_check_result r = mm_check(0, &report);
    cr_assert(r.ok, "max error %g: %s", r.max_err, report);
    free(report);
}
Test(gradcheck_f32_proof, catches_a_wrong_transpose_in_a_gemm_backward) {
    char *report;
    tz_check_result r = mm_check(1, &report);
    cr_assert(!r.ok, "a wrong dB passed (max error %g)", r.max_err);
    // The direction within b fails, the one within a (whose gradient is right) does not.
    cr_assert(strstr(report, "FAIL b (direction"), "b's direction did not fail: %s", report);
    cr_assert(!strstr(report, "FAIL a (direction"), "a's right gradient failed: %s", report);
    free(report);
}
