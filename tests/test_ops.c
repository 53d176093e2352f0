// Forward values of every op against hand-computed cases, numerical safety at extremes, and
// the one-line errors for bad shapes.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "nn.h"
#include "parallel.h"

#include <stdatomic.h>
#include <time.h>

static tz_graph g;
static void setup(void) { tz_graph_init(&g, 1 << 16); }
static void teardown(void) { tz_graph_free(&g); }
TestSuite(ops, .init = setup, .fini = teardown);

#define T(...) tz_test_tensor(&g, sizeof((int[]){__VA_ARGS__}) / sizeof(int), (const int[]){__VA_ARGS__},
#define V(...) (const real[]){__VA_ARGS__})

static void expect(const tz_tensor *t, const real *want, int n, real tol) {
    cr_assert_eq(t->n, n, "size %d, want %d", t->n, n);
    for (int i = 0; i < n; i++)
        cr_assert(fabs(t->data[i] - want[i]) <= tol, "element %d: %.7g, want %.7g", i, t->data[i], want[i]);
}
#define EXPECT(t, tol, ...) expect(t, (const real[]){__VA_ARGS__}, sizeof((real[]){__VA_ARGS__}) / sizeof(real), tol)

Test(ops, matmul_all_transposes) {
    tz_tensor *a = T(2, 2) V(1, 2, 3, 4);
    tz_tensor *b = T(2, 2) V(5, 6, 7, 8);
    EXPECT(tz_matmul(&g, a, b, 0, 0), 0, 19, 22, 43, 50);
    EXPECT(tz_matmul(&g, a, b, 1, 0), 0, 26, 30, 38, 44);
    EXPECT(tz_matmul(&g, a, b, 0, 1), 0, 17, 23, 39, 53);
    EXPECT(tz_matmul(&g, a, b, 1, 1), 0, 23, 31, 34, 46);
    tz_tensor *c = tz_matmul(&g, T(2, 1, 3) V(1, 2, 3, 4, 5, 6), T(3, 1) V(1, 1, 1), 0, 0);
    cr_assert_eq(c->ndim, 3);
    cr_assert_eq(c->shape[0], 2);
    cr_assert_eq(c->shape[2], 1);
    EXPECT(c, 0, 6, 15);
}

Test(ops, matmul_batched) {
    tz_tensor *a = T(2, 1, 2) V(1, 2, 3, 4);
    tz_tensor *b = T(2, 2, 1) V(1, 1, 2, -1);
    EXPECT(tz_matmul(&g, a, b, 0, 0), 0, 3, 2);
}

Test(ops, linear) {
    tz_tensor *y = tz_linear(&g, T(1, 2) V(1, 2), T(3, 2) V(1, 0, 0, 1, 1, 1), T(3) V(0.5, 0, -1));
    EXPECT(y, 0, 1.5, 2, 2);
    EXPECT(tz_linear(&g, T(1, 2) V(1, 2), T(1, 2) V(3, 4), NULL), 0, 11);
}

Test(ops, binary_broadcasting) {
    tz_tensor *a = T(2, 2) V(1, 2, 3, 4);
    EXPECT(tz_add(&g, a, T(2) V(10, 20)), 0, 11, 22, 13, 24);
    EXPECT(tz_sub(&g, a, T(2, 1) V(1, 2)), 0, 0, 1, 1, 2);
    EXPECT(tz_mul(&g, T(2, 1) V(2, 3), T(1, 3) V(1, 10, 100)), 0, 2, 20, 200, 3, 30, 300);
    EXPECT(tz_mul(&g, a, a), 0, 1, 4, 9, 16);
    EXPECT(tz_scale(&g, a, -0.5), 0, -0.5, -1, -1.5, -2);
}

Test(ops, unary_values_and_extremes) {
    tz_tensor *x = T(5) V(-1000, -1, 0, 1, 1000);
    EXPECT(tz_tanh(&g, x), 1e-6, -1, -0.7615942, 0, 0.7615942, 1);
    EXPECT(tz_sigmoid(&g, x), 1e-6, 0, 0.2689414, 0.5, 0.7310586, 1);
    EXPECT(tz_relu(&g, x), 0, 0, 0, 0, 1, 1000);
    EXPECT(tz_gelu(&g, T(3) V(-1, 0, 1)), 1e-6, -0.1586553, 0, 0.8413447);
    tz_tensor *e = tz_exp(&g, x);
    EXPECT(tz_exp(&g, T(2) V(0, 1)), 1e-6, 1, 2.7182818);
    for (int i = 0; i < 5; i++) cr_assert(isfinite(e->data[i]), "exp overflowed at %d", i);
    tz_tensor *l = tz_log(&g, T(3) V(0, 1, 2.7182818));
    cr_assert(isfinite(l->data[0]) && l->data[0] < -80, "log(0) = %g", l->data[0]);
    cr_assert(fabs(l->data[1]) < 1e-7 && fabs(l->data[2] - 1) < 1e-6);
}

Test(ops, softmax_family) {
    EXPECT(tz_softmax(&g, T(2, 3) V(1, 2, 3, 1000, 1000, 1000)), 1e-6, 0.09003057, 0.24472847, 0.66524096, 1. / 3,
           1. / 3, 1. / 3);
    EXPECT(tz_log_softmax(&g, T(3) V(1, 2, 3)), 1e-6, -2.4076059, -1.4076059, -0.4076059);
    EXPECT(tz_log_softmax(&g, T(2) V(-1e4, 1e4)), 1e-3, -2e4, 0);
}

Test(ops, cross_entropy_mean_and_ignore) {
    tz_tensor *x = T(3, 2) V(0, 0, 0, 1000, 5, 5);
    EXPECT(tz_cross_entropy(&g, x, (const int[]){0, 1, -1}, -1), 1e-6, 0.6931472 / 2);
    EXPECT(tz_cross_entropy(&g, x, (const int[]){-1, 0, -1}, -1), 1e-3, 1000);
    EXPECT(tz_cross_entropy(&g, x, (const int[]){-1, -1, -1}, -1), 0, 0); // nothing counted
}

Test(ops, embedding_gathers_rows) {
    tz_tensor *w = T(3, 2) V(1, 2, 3, 4, 5, 6);
    EXPECT(tz_embedding(&g, w, (const int[]){2, 0, 2}, 3), 0, 5, 6, 1, 2, 5, 6);
}

Test(ops, layernorm) {
    EXPECT(tz_layernorm(&g, T(2, 3) V(1, 2, 3, 1e4 + 1, 1e4 + 2, 1e4 + 3), NULL, NULL, 0), 1e-3, -1.2247449, 0,
           1.2247449, -1.2247449, 0, 1.2247449);
    EXPECT(tz_layernorm(&g, T(3) V(1, 2, 3), T(3) V(2, 2, 2), T(3) V(1, 1, 1), 0), 1e-5, -1.4494897, 1, 3.4494897);
}

Test(ops, shapes) {
    tz_tensor *a = T(2, 3) V(1, 2, 3, 4, 5, 6);
    tz_tensor *r = tz_reshape(&g, a, 2, (const int[]){3, -1});
    cr_assert(r->shape[0] == 3 && r->shape[1] == 2 && r->data == a->data, "reshape is a view");
    EXPECT(tz_transpose(&g, a, 0, 1), 0, 1, 4, 2, 5, 3, 6);
    EXPECT(tz_slice(&g, a, 1, 1, 2), 0, 2, 3, 5, 6);
    tz_tensor *row = tz_slice(&g, a, 0, 1, 1);
    cr_assert(row->data == a->data + 3, "a slice of leading rows is a view");
    EXPECT(row, 0, 4, 5, 6);
    tz_tensor *parts[2] = {a, T(2, 1) V(7, 8)};
    EXPECT(tz_concat(&g, parts, 2, 1), 0, 1, 2, 3, 7, 4, 5, 6, 8);
    tz_tensor *x = T(1, 2, 2, 2) V(0, 1, 2, 3, 4, 5, 6, 7);
    tz_tensor *p = tz_permute(&g, x, (const int[]){0, 2, 1, 3});
    EXPECT(p, 0, 0, 1, 4, 5, 2, 3, 6, 7);
    EXPECT(tz_sum(&g, a), 0, 21);
    EXPECT(tz_mean(&g, a), 1e-6, 3.5);
}

Test(ops, dropout_train_and_eval) {
    int shape[1] = {10000};
    tz_tensor *x = tz_empty(&g, 1, shape);
    for (int i = 0; i < x->n; i++) x->data[i] = 1;
    tz_tensor *y = tz_dropout(&g, x, 0.25);
    int zeros = 0;
    for (int i = 0; i < y->n; i++) {
        if (y->data[i] == 0) zeros++;
        else cr_assert(fabs(y->data[i] - 1 / 0.75) < 1e-6, "kept units are scaled by 1/(1-p)");
    }
    cr_assert(zeros > 2300 && zeros < 2700, "%d of 10000 dropped at p = 0.25", zeros);
    g.training = 0;
    cr_assert_eq(tz_dropout(&g, x, 0.25), x, "dropout is the identity in evaluation");
}

Test(ops, masks) {
    tz_tensor *s = T(3, 3) V(1, 2, 3, 4, 5, 6, 7, 8, 9);
    EXPECT(tz_masked_fill(&g, s, nn_attn_mask(&g, 1, 3, 3, NULL, 1), -1), 0, 1, -1, -1, 4, 5, -1, 7, 8, 9);
    tz_tensor *x = tz_zeros(&g, 4, (const int[]){2, 1, 2, 3});
    tz_tensor *m = tz_masked_fill(&g, x, nn_attn_mask(&g, 2, 2, 3, (const int[]){2, 1}, 0), 9);
    EXPECT(m, 0, 0, 0, 9, 0, 0, 9, 0, 9, 9, 0, 9, 9);
}

// Every shape error names the op and both shapes, in one line.
Test(ops, bad_shapes_name_both_shapes) {
    tz_tensor *a = tz_zeros(&g, 2, (const int[]){2, 3}), *b = tz_zeros(&g, 2, (const int[]){4, 5});
    cr_assert(EXPECT_FAIL(tz_matmul(&g, a, b, 0, 0)));
    cr_assert_str_eq(tz_last_error(), "matmul: cannot multiply a (2,3) by b (4,5)");
    cr_assert(EXPECT_FAIL(tz_add(&g, a, b)));
    cr_assert_str_eq(tz_last_error(), "add: shapes a (2,3) and b (4,5) do not broadcast");
    cr_assert(EXPECT_FAIL(tz_linear(&g, a, b, NULL)));
    cr_assert(strstr(tz_last_error(), "(2,3)") && strstr(tz_last_error(), "(4,5)"), "%s", tz_last_error());
    tz_tensor *parts[2] = {a, b};
    cr_assert(EXPECT_FAIL(tz_concat(&g, parts, 2, 0)));
    cr_assert(strstr(tz_last_error(), "(2,3)") && strstr(tz_last_error(), "(4,5)"), "%s", tz_last_error());
    cr_assert(EXPECT_FAIL(tz_reshape(&g, a, 1, (const int[]){7})));
    cr_assert(EXPECT_FAIL(tz_embedding(&g, a, (const int[]){2}, 1)));
    cr_assert_str_eq(tz_last_error(), "embedding: id 2 at position 0 is outside [0,2) for table (2,3)");
    cr_assert(EXPECT_FAIL(tz_cross_entropy(&g, a, (const int[]){0, 3}, -1)));
    cr_assert(EXPECT_FAIL(tz_masked_fill(&g, a, b, 0)));
    cr_assert(EXPECT_FAIL(tz_slice(&g, a, 1, 2, 2)));
}

// The default handler: one line on stderr and exit status 1, never a crash.
Test(ops, default_error_exits_1, .exit_code = 1) {
    tz_tensor *a = tz_zeros(&g, 2, (const int[]){2, 3});
    tz_matmul(&g, a, a, 0, 0);
}

#include "fastmath.h"

// The float build's vectorised exp/tanh/sigmoid and the normal cdf/pdf pair of GELU: accurate
// to float, exactly 0 where exp underflows (masked attention), finite at the ends, and NaN
// stays NaN (divergence is caught).
Test(ops, fastmath_accuracy_and_edges) {
    static const char *what[5] = {"exp relative", "tanh absolute", "sigmoid absolute", "normal cdf absolute",
                                  "normal pdf absolute"};
    double worst[5] = {0};
    for (double x0 = -20; x0 < 20; x0 += 1e-3) {
        double x = (real)x0; // the reference at the very input the function sees
        real Phi, phi;
        tz_fnormal((real)x, &Phi, &phi);
        double err[5] = {fabs(tz_fexp((real)x) - exp(x)) / exp(x), fabs(tz_ftanh((real)x) - tanh(x)),
                         fabs(tz_fsigmoid((real)x) - 1 / (1 + exp(-x))), fabs(Phi - 0.5 * (1 + erf(x / sqrt(2)))),
                         fabs(phi - exp(-0.5 * x * x) / sqrt(2 * M_PI))};
        for (int k = 0; k < 5; k++) worst[k] = err[k] > worst[k] ? err[k] : worst[k];
    }
    for (int k = 0; k < 5; k++) cr_assert_lt(worst[k], 1e-6, "%s error %g", what[k], worst[k]);
    cr_assert_eq(tz_fexp(-1e9), 0);
    cr_assert(isfinite(tz_fexp(1e9)) && tz_ftanh(1e9) == 1 && tz_ftanh(-1e9) == -1 && tz_fsigmoid(-1e9) < 1e-30);
    cr_assert(isnan(tz_fexp(NAN)) && isnan(tz_ftanh(NAN)) && isnan(tz_fsigmoid(NAN)));
}

#include "gemm.h"

// Big enough for the threaded paths of the row-wise and elementwise ops (the gradient check's
// tiny shapes run inline): one and two threads must give the same bits, forward and backward.
static void run_graph(int threads, real *out, real *grads, int n_params) {
    tz_set_threads(threads);
    tz_params P;
    tz_params_init(&P);
    tz_tensor *x = tz_param(&P, "x", 2, (const int[]){300, 96}), *gamma = tz_param(&P, "gamma", 1, (const int[]){96});
    tz_tensor *beta = tz_param(&P, "beta", 1, (const int[]){96});
    tz_rng r;
    tz_rng_seed(&r, 4);
    for (size_t i = 0; i < P.n; i++) P.data[i] = (real)tz_rng_normal(&r);
    static int targets[300];
    for (int i = 0; i < 300; i++) targets[i] = i % 7 ? i % 96 : -1;
    tz_graph gr;
    tz_graph_init(&gr, 1 << 20);
    tz_tensor *h = tz_gelu(&gr, tz_layernorm(&gr, x, gamma, beta, 1e-5));
    h = tz_mul(&gr, tz_softmax(&gr, tz_tanh(&gr, h)), tz_sigmoid(&gr, h));
    tz_tensor *loss = tz_cross_entropy(&gr, tz_exp(&gr, h), targets, -1);
    tz_backward(&gr, loss);
    out[0] = loss->data[0];
    cr_assert_eq((int)P.n, n_params);
    memcpy(grads, P.grad, sizeof(real) * P.n);
    tz_graph_free(&gr);
    tz_params_free(&P);
}

Test(ops, threaded_ops_match_serial_bit_for_bit) {
    enum { N = 300 * 96 + 2 * 96 };
    static real g1[N], g2[N];
    real l1, l2;
    run_graph(1, &l1, g1, N);
    run_graph(2, &l2, g2, N);
    tz_set_threads(0);
    cr_assert_eq(l1, l2, "loss %.9g (1 thread) vs %.9g (2 threads)", l1, l2);
    for (int i = 0; i < N; i++) cr_assert_eq(g1[i], g2[i], "gradient %d: %.9g vs %.9g", i, g1[i], g2[i]);
}

#include "optim.h"

// The gradient norm is summed over fixed blocks: the same bits on one or two threads.
Test(ops, grad_norm_is_thread_count_independent) {
    tz_params P;
    tz_params_init(&P);
    tz_param(&P, "a", 2, (const int[]){700, 300});
    tz_param(&P, "b", 1, (const int[]){77});
    tz_rng r;
    tz_rng_seed(&r, 8);
    for (size_t i = 0; i < P.n; i++) P.grad[i] = (real)tz_rng_normal(&r);
    double exact = 0;
    for (size_t i = 0; i < P.n; i++) exact += (double)P.grad[i] * P.grad[i];
    tz_set_threads(1);
    double n1 = nn_clip_grad_norm(&P, INFINITY);
    tz_set_threads(2);
    double n2 = nn_clip_grad_norm(&P, INFINITY);
    tz_set_threads(0);
    cr_assert_eq(n1, n2);
    cr_assert_float_eq(n1, sqrt(exact), 1e-9 * sqrt(exact));
    tz_params_free(&P);
}

// Two overlapping views of one buffer as the operands of a same-shape op (x[1:] * x[:-1]), big
// enough for two threads: both contributions reach every element. (Split over threads, the two
// gradient ranges would meet at the split, a race on one element that a test cannot reliably
// catch; the op takes its serial path here.)
Test(ops, overlapping_views_accumulate_exactly) {
    tz_set_threads(2);
    tz_params P;
    tz_params_init(&P);
    enum { N = 60001 };
    tz_tensor *x = tz_param(&P, "x", 1, (const int[]){N});
    for (int i = 0; i < N; i++) x->data[i] = (real)(1 + i % 7);
    tz_graph g2;
    tz_graph_init(&g2, 1 << 16);
    for (int rep = 0; rep < 5; rep++) {
        tz_graph_reset(&g2);
        tz_params_zero_grad(&P);
        tz_tensor *y = tz_mul(&g2, tz_slice(&g2, x, 0, 1, N - 1), tz_slice(&g2, x, 0, 0, N - 1));
        tz_backward(&g2, tz_sum(&g2, y));
        for (int i = 0; i < N; i++) { // d/dx_i sum x_{j+1} x_j = x_{i-1} + x_{i+1}
            real want = (i > 0 ? x->data[i - 1] : 0) + (i < N - 1 ? x->data[i + 1] : 0);
            cr_assert_eq(x->grad[i], want, "rep %d: dx[%d] = %g, want %g", rep, i, (double)x->grad[i], (double)want);
        }
    }
    tz_graph_free(&g2);
    tz_params_free(&P);
    tz_set_threads(0);
}

// The MLP's H x over windows of looked-up embeddings (nn_window_linear): the pairs' way, the
// plain way and the per-batch choice give the values and gradients, to float32 rounding, of
// a Linear on the gathered rows (37 rows of 5 positions over 11 words, one never used: 55 or
// fewer pairs for 185 row-positions; 300 outputs, enough for both threads).
Test(ops, window_linear_is_linear_on_gathered_rows) {
    enum { N = 37, P = 5, V = 11, E = 8, O = 300 };
    tz_params Ps;
    tz_params_init(&Ps);
    tz_rng r;
    tz_rng_seed(&r, 4);
    tz_tensor *C = tz_param(&Ps, "C", 2, (const int[]){V, E}), *w = tz_param(&Ps, "w", 2, (const int[]){O, P * E});
    tz_tensor *bias = tz_param(&Ps, "b", 1, (const int[]){O});
    for (size_t k = 0; k < Ps.n; k++) Ps.data[k] = (real)(tz_rng_uniform(&r) - 0.5);
    int ids[N * P];
    for (int i = 0; i < N * P; i++) ids[i] = (int)tz_rng_below(&r, V - 1); // word V-1 in no window
    real *R = malloc(sizeof(real) * N * O), *want = malloc(sizeof(real) * Ps.n), *y1 = malloc(sizeof(real) * N * O);
    for (int k = 0; k < N * O; k++) R[k] = (real)(tz_rng_uniform(&r) - 0.5);
    tz_graph gw;
    tz_graph_init(&gw, 1 << 20);
    for (int way = -2; way <= 1; way++) { // -2: the reference, then auto, never, always
        tz_graph_reset(&gw);
        tz_params_zero_grad(&Ps);
        tz_tensor *y =
            way == -2
                ? tz_linear(&gw, tz_reshape(&gw, tz_embedding(&gw, C, ids, N * P), 2, (const int[]){N, P * E}), w, bias)
                : nn_window_linear(&gw, C, ids, N, P, w, bias, way);
        if (way == -2) memcpy(y1, y->data, sizeof(real) * N * O);
        else
            for (int k = 0; k < N * O; k++)
                cr_assert(fabs(y->data[k] - y1[k]) <= 1e-5, "way %d: y[%d] = %g, want %g", way, k, (double)y->data[k],
                          (double)y1[k]);
        tz_backward(&gw, tz_sum(&gw, tz_mul(&gw, y, tz_wrap(&gw, R, NULL, 2, (const int[]){N, O}))));
        if (way == -2) memcpy(want, Ps.grad, sizeof(real) * Ps.n);
        else
            for (size_t k = 0; k < Ps.n; k++)
                cr_assert(fabs(Ps.grad[k] - want[k]) <= 1e-4 * (1 + fabs(want[k])), "way %d: grad[%zu] = %g, want %g",
                          way, k, (double)Ps.grad[k], (double)want[k]);
        for (int k = 0; k < E; k++)
            cr_assert_eq(C->grad[(V - 1) * E + k], 0, "way %d: an unused word has a gradient", way);
    }
    free(R);
    free(want);
    free(y1);
    tz_graph_free(&gw);
    tz_params_free(&Ps);
}

// tz_parallel_for: every item exactly once, whoever does it; the first part's items are slow,
// so the threads done with theirs take some of them (each part is in chunks at this cost, and
// the first part's owner sleeps). tz_parallel_split: one call per thread, the parts n t / T.
typedef struct {
    atomic_int seen[600], by[600];
    atomic_int calls, threads;
    long lo[8], hi[8];
} par_check;
static _Thread_local int par_id; // 1 + this thread's number, 0 until it does an item
static void par_items(void *arg, long lo, long hi) {
    par_check *c = arg;
    if (!par_id) par_id = 1 + atomic_fetch_add(&c->threads, 1);
    for (long i = lo; i < hi; i++) {
        if (i < 100) nanosleep(&(struct timespec){0, 200000}, NULL);
        atomic_fetch_add(&c->seen[i], 1);
        atomic_store(&c->by[i], par_id);
    }
}
static void par_parts(void *arg, long lo, long hi) {
    par_check *c = arg;
    int k = atomic_fetch_add(&c->calls, 1);
    if (k < 8) c->lo[k] = lo, c->hi[k] = hi;
}
Test(ops, parallel_for_takes_items) {
    static par_check c;
    tz_set_threads(6);
    tz_parallel_for(600, 1L << 20, par_items, &c);
    for (int i = 0; i < 600; i++) cr_assert_eq(atomic_load(&c.seen[i]), 1, "item %d done %d times", i, c.seen[i]);
    int others = 0;
    for (int i = 1; i < 100; i++) others += atomic_load(&c.by[i]) != atomic_load(&c.by[0]);
    cr_assert_gt(others, 0, "the slow part's 100 items were all done by its own thread: nobody took any");
    tz_parallel_split(600, 1000, par_parts, &c);
    cr_assert_eq(atomic_load(&c.calls), 6, "tz_parallel_split: %d calls for 6 threads", c.calls);
    long covered = 0;
    for (int k = 0; k < 6; k++) {
        cr_assert((c.lo[k] * 6) % 600 == 0 && c.hi[k] - c.lo[k] == 100, "part [%ld, %ld) is not one of n t / T",
                  c.lo[k], c.hi[k]);
        covered += c.hi[k] - c.lo[k];
    }
    cr_assert_eq(covered, 600);
    tz_set_threads(0);
}

// tz_linear_add (the residual added in the product's epilogue) gives the bits of tz_add(r,
// tz_linear(x, w, b)), forward and every gradient, with r a tensor of its own and with r = x
// (post-LN: both of x's gradients land in one buffer). 2 K blocks of 600 inputs, 300 rows (2
// threads sharing the rows) and 70 (the transposed form, which adds the residual in its copy).
static void linear_add_case(int R) {
    enum { I = 600, O = 600 };
    real *xv = malloc(sizeof(real) * R * I), *wv = malloc(sizeof(real) * O * I), *bv = malloc(sizeof(real) * O);
    real *rv = malloc(sizeof(real) * R * O), *seed = malloc(sizeof(real) * R * O);
    tz_rng r;
    tz_rng_seed(&r, 7);
    for (int i = 0; i < R * I; i++) xv[i] = tz_rng_normal(&r);
    for (int i = 0; i < O * I; i++) wv[i] = tz_rng_normal(&r) * 0.05;
    for (int i = 0; i < O; i++) bv[i] = tz_rng_normal(&r);
    for (int i = 0; i < R * O; i++) rv[i] = tz_rng_normal(&r), seed[i] = tz_rng_normal(&r);
    tz_set_threads(2);
    for (int self = 0; self < 2; self++) {
        real *out[2], *grads[2][4];
        for (int pass = 0; pass < 2; pass++) {
            tz_graph_reset(&g);
            real *gx = calloc(R * I, sizeof(real)), *gw = calloc(O * I, sizeof(real)), *gb = calloc(O, sizeof(real)),
                 *gr = calloc(R * O, sizeof(real));
            tz_tensor *x = tz_wrap(&g, xv, gx, 2, (const int[]){R, I});
            tz_tensor *w = tz_wrap(&g, wv, gw, 2, (const int[]){O, I}), *b = tz_wrap(&g, bv, gb, 1, (const int[]){O});
            tz_tensor *res = self ? x : tz_wrap(&g, rv, gr, 2, (const int[]){R, O});
            tz_tensor *y = pass == 0 ? tz_linear_add(&g, x, w, b, res) : tz_add(&g, res, tz_linear(&g, x, w, b));
            out[pass] = memcpy(malloc(sizeof(real) * R * O), y->data, sizeof(real) * R * O);
            tz_backward_seed(&g, y, seed);
            grads[pass][0] = gx, grads[pass][1] = gw, grads[pass][2] = gb, grads[pass][3] = gr;
        }
        cr_assert(memcmp(out[0], out[1], sizeof(real) * R * O) == 0,
                  "%d rows, self %d: y differs from tz_add + tz_linear", R, self);
        const long n[4] = {R * I, O * I, O, R * O};
        const char *name[4] = {"dx", "dw", "db", "dr"};
        for (int k = 0; k < 4; k++) { // (self: r is x, dr's buffers are untouched)
            cr_assert((self && k == 3) || memcmp(grads[0][k], grads[1][k], sizeof(real) * n[k]) == 0,
                      "%d rows, self %d: %s differs", R, self, name[k]);
            free(grads[0][k]), free(grads[1][k]);
        }
        free(out[0]), free(out[1]);
    }
    tz_set_threads(0);
    free(xv), free(wv), free(bv), free(rv), free(seed);
}
Test(ops, linear_add_same_bits) {
    linear_add_case(300);
    linear_add_case(70);
}
