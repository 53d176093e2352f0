// tz_sgemm against a double-precision reference: all four transpose combinations, many odd
// sizes (1..70 in each dimension, primes, sizes straddling the register tiles and the K/N cache
// blocks), padded leading dimensions, alpha/beta variants (beta 0 over NaNs), for every kernel
// (TZ_GEMM_KERNEL) at 1 and 2 threads, with and without a bias row (tz_sgemm_bias, added once
// whatever the number of K blocks), and the transposed form of small-M products. Also
// tz_dgemm, and determinism across thread counts.
//
// Criterion runs each test in its own process, so setting TZ_GEMM_KERNEL before the first gemm
// call of a test picks that test's kernel.
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"

static const char *const kernel_names[] = {"portable", "avx2", "avx512"};

// xorshift: the same data in every run, independent of libc's rand.
static uint64_t rng_state = 88172645463325252ull;
static float frand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / (1 << 24)) * 2.0 - 1.0);
}

static int kernel_supported(int k) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    int has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (k == 1) return has2;
    if (k == 2)
        return has2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
    return 1;
#else
    return k == 0;
#endif
}

// Select kernel k (skipping the test if the CPU lacks it) and the thread count.
static void setup(int k, int threads) {
    if (!kernel_supported(k)) cr_skip_test("kernel %s not supported by this CPU", kernel_names[k]);
    setenv("TZ_GEMM_KERNEL", kernel_names[k], 1);
    cr_assert_str_eq(tz_gemm_kernel_name(), kernel_names[k],
                     "TZ_GEMM_KERNEL=%s ignored: gemm state initialised before the test?", kernel_names[k]);
    tz_set_threads(threads);
    cr_assert_eq(tz_get_threads(), threads);
}

// One case: op(A)(M,K) op(B)(K,N), leading dimensions padded by `pad`, C checked against the
// double reference, and the padding columns of C checked untouched. bias: add a row vector.
static void check_case_bias(int ta, int tb, int M, int N, int K, int pad, float alpha, float beta, int bias) {
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    long na = (long)(ta ? K : M) * lda, nb = (long)(tb ? N : K) * ldb, nc = (long)M * ldc;
    float *A = malloc(sizeof(float) * na), *B = malloc(sizeof(float) * nb);
    float *C = malloc(sizeof(float) * nc), *C0 = malloc(sizeof(float) * nc), *bv = malloc(sizeof(float) * N);
    for (int j = 0; j < N; j++) bv[j] = 4 * frand();
    for (long i = 0; i < na; i++) A[i] = frand();
    for (long i = 0; i < nb; i++) B[i] = frand();
    for (long i = 0; i < nc; i++) C0[i] = beta == 0.0f ? NAN : frand();
    for (int i = 0; i < M; i++) // padding columns hold a sentinel that must survive
        for (int j = N; j < ldc; j++) C0[(long)i * ldc + j] = 12345.0f;
    memcpy(C, C0, sizeof(float) * nc);
    if (bias) tz_sgemm_bias(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bv);
    else tz_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    // Error bound: K products of |a|,|b| <= 1 summed in float, plus the beta and bias terms.
    double tol = 8 * 6e-8 * (K * fabs(alpha) + fabs(beta) + (bias ? 4 : 0)) + 1e-6;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)(ta ? A[(long)k * lda + i] : A[(long)i * lda + k]) *
                     (double)(tb ? B[(long)j * ldb + k] : B[(long)k * ldb + j]);
            double ref = alpha * s + (beta == 0.0f ? 0.0 : beta * (double)C0[(long)i * ldc + j]) + (bias ? bv[j] : 0.0);
            double got = C[(long)i * ldc + j];
            if (!(fabs(got - ref) <= tol))
                cr_assert_fail(
                    "%s ta=%d tb=%d M=%d N=%d K=%d pad=%d alpha=%g beta=%g bias=%d: C[%d,%d] = %.9g, want %.9g",
                    tz_gemm_kernel_name(), ta, tb, M, N, K, pad, alpha, beta, bias, i, j, got, ref);
        }
        for (int j = N; j < ldc; j++)
            if (C[(long)i * ldc + j] != 12345.0f)
                cr_assert_fail("%s ta=%d tb=%d M=%d N=%d K=%d: wrote past N at C[%d,%d]", tz_gemm_kernel_name(), ta, tb,
                               M, N, K, i, j);
    }
    free(A);
    free(B);
    free(C);
    free(C0);
    free(bv);
}

static void check_case(int ta, int tb, int M, int N, int K, int pad, float alpha, float beta) {
    check_case_bias(ta, tb, M, N, K, pad, alpha, beta, 0);
}

typedef struct {
    int kernel, threads;
} kparam;

static kparam kparams[] = {{0, 1}, {0, 2}, {1, 1}, {1, 2}, {2, 1}, {2, 2}};

ParameterizedTestParameters(gemm, sizes) { return cr_make_param_array(kparam, kparams, 6); }

// Every dimension swept over 1..70 with the others fixed, all four transposes.
ParameterizedTest(kparam *p, gemm, sizes) {
    setup(p->kernel, p->threads);
    for (int t = 0; t < 4; t++) {
        int ta = t & 1, tb = t >> 1;
        for (int d = 1; d <= 70; d++) {
            check_case(ta, tb, d, 37, 29, 0, 1.0f, 0.0f);
            check_case(ta, tb, 19, d, 41, 0, 1.0f, 0.0f);
            check_case(ta, tb, 23, 53, d, 0, 1.0f, 0.0f);
        }
    }
}

ParameterizedTestParameters(gemm, random_sizes) { return cr_make_param_array(kparam, kparams, 6); }

// Random (M,N,K) in 1..70 with padded leading dimensions and alpha/beta variants; the larger
// ones are big enough to run threaded.
ParameterizedTest(kparam *p, gemm, random_sizes) {
    setup(p->kernel, p->threads);
    static const float ab[][2] = {{1, 0}, {1, 1}, {-0.5f, 0}, {2, -0.75f}, {0.3f, 1}};
    for (int c = 0; c < 240; c++) {
        int M = 1 + (int)((frand() + 1) * 35), N = 1 + (int)((frand() + 1) * 35), K = 1 + (int)((frand() + 1) * 35);
        if (M > 70) M = 70;
        if (N > 70) N = 70;
        if (K > 70) K = 70;
        check_case_bias(c & 1, (c >> 1) & 1, M, N, K, c % 3 == 0 ? 0 : 1 + c % 5, ab[c % 5][0], ab[c % 5][1],
                        c % 7 < 3);
    }
}

ParameterizedTestParameters(gemm, rows_4k_apart) { return cr_make_param_array(kparam, kparams, 6); }

// A row-major A whose rows are 4 KB apart (lda 1024) is copied rather than read in place when
// enough columns share it (gemm.c rows_alias): both sides of that rule, against the reference,
// and a copy in several K blocks with a ragged last row panel.
ParameterizedTest(kparam *p, gemm, rows_4k_apart) {
    setup(p->kernel, p->threads);
    static const int sizes[][3] = {{13, 150, 29}, {40, 37, 100}, {27, 300, 70}, {5, 129, 1}, {29, 260, 900}};
    for (int c = 0; c < 5; c++)
        for (int tb = 0; tb < 2; tb++)
            check_case_bias(0, tb, sizes[c][0], sizes[c][1], sizes[c][2], 1024 - sizes[c][2], 1.0f, c & 1 ? 1.0f : 0.0f,
                            c == 2);
}

ParameterizedTestParameters(gemm, block_edges) { return cr_make_param_array(kparam, kparams, 6); }

// Sizes straddling the cache blocks (KC 256, 384 for AVX-512, a depth up to 4/3 KC in one block:
// 341/342, 512/513; NC 512) and the per-thread splits.
ParameterizedTest(kparam *p, gemm, block_edges) {
    setup(p->kernel, p->threads);
    static const int shapes[][3] = {
        {13, 17, 255}, {13, 17, 256},  {13, 17, 257}, {9, 33, 513},  {5, 511, 7},   {7, 512, 9},   {6, 513, 11},
        {3, 1030, 5},  {97, 130, 300}, {130, 65, 70}, {64, 97, 129}, {1, 600, 600}, {600, 1, 300}, {13, 17, 383},
        {13, 17, 384}, {13, 17, 385},  {9, 33, 769},  {13, 17, 341}, {13, 17, 342}, {13, 17, 512}, {13, 17, 513}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++)
            for (int bias = 0; bias < 2; bias++)
                check_case_bias(t & 1, t >> 1, shapes[s][0], shapes[s][1], shapes[s][2], s % 2 ? 3 : 0,
                                s % 3 ? 1.0f : -1.5f, s % 2 ? 1.0f : 0.0f, bias);
}

ParameterizedTestParameters(gemm, degenerate) { return cr_make_param_array(kparam, kparams, 6); }

// K = 0 and alpha = 0 leave beta * C (beta 0: zeros, even over NaNs); M or N = 0 is a no-op.
ParameterizedTest(kparam *p, gemm, degenerate) {
    setup(p->kernel, p->threads);
    float A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {1, 2, 3, 4, 5, 6}, C[4] = {NAN, NAN, NAN, NAN};
    tz_sgemm(0, 0, 2, 2, 0, 1.0f, A, 1, B, 2, 0.0f, C, 2);
    for (int i = 0; i < 4; i++) cr_assert_eq(C[i], 0.0f);
    float D[4] = {1, 2, 3, 4};
    tz_sgemm(0, 0, 2, 2, 3, 0.0f, A, 3, B, 2, 2.0f, D, 2);
    for (int i = 0; i < 4; i++) cr_assert_eq(D[i], 2.0f * (i + 1));
    tz_sgemm(0, 0, 0, 2, 3, 1.0f, A, 3, B, 2, 0.0f, NULL, 2);
    tz_sgemm(0, 0, 2, 0, 3, 1.0f, A, 3, B, 2, 0.0f, NULL, 2);
    float bias[2] = {10, 20}, E[4] = {NAN, NAN, 1, 1};
    tz_sgemm_bias(0, 0, 2, 2, 0, 1.0f, A, 1, B, 2, 0.0f, E, 2, bias); // K = 0: just the bias
    for (int i = 0; i < 4; i++) cr_assert_eq(E[i], bias[i % 2]);
    // K = 0 with an epilogue: it still runs, on beta * C + bias.
    float F[4] = {-1, 0, 0.5f, 2}, G[4] = {NAN, NAN, NAN, NAN}, H[4] = {1, 2, 3, 4}, S[4] = {3, 3, -1, 0.5f};
    tz_sgemm_epi(0, 0, 2, 2, 0, 1.0f, A, 1, B, 2, 1.0f, F, 2, NULL, TZ_EPI_GELU, G, 2);
    const double x[4] = {-1, 0, 0.5, 2};
    for (int i = 0; i < 4; i++) {
        double Phi = 0.5 * (1 + erf(x[i] / sqrt(2.0))), phi = exp(-0.5 * x[i] * x[i]) / sqrt(2 * M_PI);
        cr_assert_float_eq(F[i], x[i] * Phi, 1e-6, "gelu(%g) = %g", x[i], F[i]);
        cr_assert_float_eq(G[i], Phi + x[i] * phi, 1e-6, "gelu'(%g) = %g", x[i], G[i]);
    }
    tz_sgemm_epi(0, 0, 2, 2, 3, 0.0f, A, 3, B, 2, 1.0f, H, 2, NULL, TZ_EPI_MUL, S, 2); // alpha 0: C * D
    for (int i = 0; i < 4; i++) cr_assert_eq(H[i], (i + 1) * S[i]);
}

// GELU(x) = x Phi(x) and its derivative, in double: the epilogue's reference.
static void gelu_ref(double x, double *y, double *dy) {
    double Phi = 0.5 * (1 + erf(x * M_SQRT1_2)), phi = exp(-0.5 * x * x) / sqrt(2 * M_PI);
    *y = x * Phi;
    *dy = Phi + x * phi;
}

// tz_sgemm_epi: C = epi(alpha op(A) op(B) + beta C + bias) on every element, D written (GELU's
// derivative; or not at all when NULL) or read (MUL, ADD), padding columns of C and D untouched.
static void check_epilogue(int ta, int tb, int M, int N, int K, float beta, int bias, tz_epilogue epi, int with_d) {
    int pad = 2, lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad, ldd = N + 3;
    long na = (long)(ta ? K : M) * lda, nb = (long)(tb ? N : K) * ldb, nc = (long)M * ldc, nd = (long)M * ldd;
    float *A = malloc(sizeof(float) * na), *B = malloc(sizeof(float) * nb), *C = malloc(sizeof(float) * nc),
          *C0 = malloc(sizeof(float) * nc), *D = malloc(sizeof(float) * nd), *D0 = malloc(sizeof(float) * nd),
          *bv = malloc(sizeof(float) * N);
    for (long i = 0; i < na; i++) A[i] = frand();
    for (long i = 0; i < nb; i++) B[i] = frand();
    for (long i = 0; i < nc; i++) C0[i] = frand();
    for (long i = 0; i < nd; i++) D0[i] = epi != TZ_EPI_GELU ? frand() : 777.0f;
    for (int j = 0; j < N; j++) bv[j] = frand();
    memcpy(C, C0, sizeof(float) * nc);
    memcpy(D, D0, sizeof(float) * nd);
    float alpha = 3.0f / sqrtf((float)K); // pre-activations of order 1-3: both tails of GELU
    tz_sgemm_epi(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias ? bv : NULL, epi, with_d ? D : NULL, ldd);
    double tol = 8 * 6e-8 * (K * alpha + 2 + 1) + 2e-6; // the product's rounding, then GELU's (<= 1.5e-7)
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < ldc; j++) {
            long ci = (long)i * ldc + j, di = (long)i * ldd + j;
            if (j >= N) {
                cr_assert_eq(C[ci], C0[ci], "C padding (%d,%d) written", i, j);
                continue;
            }
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)(ta ? A[(long)k * lda + i] : A[(long)i * lda + k]) *
                     (double)(tb ? B[(long)j * ldb + k] : B[(long)k * ldb + j]);
            double u = alpha * s + beta * (double)C0[ci] + (bias ? bv[j] : 0.0), y, dy;
            if (epi == TZ_EPI_MUL) y = u * D0[di], dy = D0[di];
            else if (epi == TZ_EPI_ADD) y = u + D0[di], dy = D0[di];
            else gelu_ref(u, &y, &dy);
            cr_assert(fabs(C[ci] - y) <= tol * (1 + fabs(y)),
                      "epi %d (%d,%d,%d) ta %d tb %d: C(%d,%d) = %.8g, want %.8g", epi, M, N, K, ta, tb, i, j, C[ci],
                      y);
            double want_d = epi == TZ_EPI_GELU && with_d ? dy : D0[di];
            cr_assert(fabs(D[di] - want_d) <= tol * (1 + fabs(want_d)), "epi %d: D(%d,%d) = %.8g, want %.8g", epi, i, j,
                      D[di], want_d);
        }
        for (int j = N; j < ldd; j++) cr_assert_eq(D[(long)i * ldd + j], D0[(long)i * ldd + j], "D padding written");
    }
    free(A), free(B), free(C), free(C0), free(D), free(D0), free(bv);
}

ParameterizedTestParameters(gemm, epilogue) { return cr_make_param_array(kparam, kparams, 6); }

// Odd sizes, several K blocks (the epilogue must run once, after the last), threaded splits
// along N and (200 x 40) along M, a row of two vectors with the second partial (50), rows of A
// 1024 floats apart (K 1022 + 2 of padding: A's rows copied before the kernel reads them), and
// few rows against a large B (16 x 1200 x 1100: ADD's residual added in the transposed form).
ParameterizedTest(kparam *p, gemm, epilogue) {
    setup(p->kernel, p->threads);
    static const int shapes[][3] = {{1, 1, 1},    {7, 45, 13},   {13, 33, 600},   {40, 130, 385},
                                    {50, 50, 70}, {200, 40, 64}, {24, 160, 1022}, {16, 1200, 1100}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            check_epilogue(t & 1, t >> 1, M, N, K, t == 1 ? 1.0f : 0.0f, t != 2, TZ_EPI_GELU, 1);
            check_epilogue(t & 1, t >> 1, M, N, K, t == 0 ? 1.0f : 0.0f, t == 0, TZ_EPI_GELU, 0);
            check_epilogue(t & 1, t >> 1, M, N, K, t >= 2 ? 1.0f : 0.0f, t == 1 || t == 2, TZ_EPI_MUL, 1);
            check_epilogue(t & 1, t >> 1, M, N, K, t == 3 ? 1.0f : 0.0f, t != 1, TZ_EPI_ADD, 1);
        }
}

ParameterizedTestParameters(gemm, epilogue_same_bits) { return cr_make_param_array(kparam, kparams, 6); }

// The epilogue inside the kernel gives the bits of the product stored first and the epilogue run
// on it after (a product with K = 0: beta 1 keeps C, then the epilogue), for every kernel.
ParameterizedTest(kparam *p, gemm, epilogue_same_bits) {
    setup(p->kernel, p->threads);
    static const int shapes[][3] = {{7, 45, 13}, {13, 33, 600}, {50, 50, 70}, {200, 40, 64}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int e = 0; e < 4; e++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ta = (int)s & 1;
            tz_epilogue epi = e == 3 ? TZ_EPI_ADD : e == 2 ? TZ_EPI_MUL : TZ_EPI_GELU;
            float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N),
                  *bv = malloc(sizeof(float) * N);
            float *C1 = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N);
            float *D1 = malloc(sizeof(float) * M * N), *D2 = malloc(sizeof(float) * M * N);
            for (long i = 0; i < (long)M * K; i++) A[i] = frand();
            for (long i = 0; i < (long)K * N; i++) B[i] = frand();
            for (int j = 0; j < N; j++) bv[j] = frand();
            for (long i = 0; i < (long)M * N; i++) C1[i] = C2[i] = frand(), D1[i] = D2[i] = frand();
            float alpha = 3.0f / sqrtf((float)K), *d1 = e == 1 ? NULL : D1, *d2 = e == 1 ? NULL : D2;
            tz_sgemm_epi(ta, 0, M, N, K, alpha, A, ta ? M : K, B, N, 0.5f, C1, N, bv, epi, d1, N);
            tz_sgemm_bias(ta, 0, M, N, K, alpha, A, ta ? M : K, B, N, 0.5f, C2, N, bv);
            tz_sgemm_epi(0, 0, M, N, 0, 1.0f, A, 1, B, N, 1.0f, C2, N, NULL, epi, d2, N);
            for (long i = 0; i < (long)M * N; i++) {
                cr_assert(C1[i] == C2[i], "%s epi %d (%d,%d,%d): C[%ld] %.9g, stored then epilogue %.9g",
                          tz_gemm_kernel_name(), epi, M, N, K, i, C1[i], C2[i]);
                cr_assert(D1[i] == D2[i], "%s epi %d: D[%ld] %.9g against %.9g", tz_gemm_kernel_name(), epi, i, D1[i],
                          D2[i]);
            }
            free(A), free(B), free(bv), free(C1), free(C2), free(D1), free(D2);
        }
}

ParameterizedTestParameters(gemm, tile_finish_same_bits) { return cr_make_param_array(kparam, kparams, 6); }

// With one K block, each way a product finishes a tile (overwrite, add to C, bias, GELU, ADD,
// MUL: the AVX-512 kernel has its own path for these on full 12 x 32 tiles) gives the bits of
// the plain product P (alpha 1, beta 0), times alpha, followed by the same operations one at a
// time, in this order: (alpha P [+ C]) [+ bias], then the epilogue (GELU also without D, which
// must then stay as it was). Full tiles and ragged edges, both forms of A and B, alpha 1 and
// another.
ParameterizedTest(kparam *p, gemm, tile_finish_same_bits) {
    static const struct {
        const char *what;
        int add_c, bias, no_d; // beta 1; a bias; GELU without D
        tz_epilogue epi;
    } finish[] = {{"beta 1", 1, 0, 0, TZ_EPI_NONE},
                  {"bias", 0, 1, 0, TZ_EPI_NONE},
                  {"bias GELU", 0, 1, 0, TZ_EPI_GELU},
                  {"bias ADD", 0, 1, 0, TZ_EPI_ADD},
                  {"beta 1 ADD", 1, 0, 0, TZ_EPI_ADD},
                  {"MUL", 0, 0, 0, TZ_EPI_MUL},
                  {"ADD", 0, 0, 0, TZ_EPI_ADD},
                  {"beta 0", 0, 0, 0, TZ_EPI_NONE},
                  {"bias GELU no D", 0, 1, 1, TZ_EPI_GELU}};
    setup(p->kernel, p->threads);
    static const int shapes[][3] = {{60, 96, 300}, {29, 75, 40}, {48, 64, 320}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 8; t++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ta = t & 1, tb = (t >> 1) & 1;
            int lda = ta ? M : K, ldb = tb ? K : N;
            float alpha = t >> 2 ? 0.125f * 1.1f : 1.0f;
            long mn = (long)M * N;
            float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N),
                  *bv = malloc(sizeof(float) * N);
            float *P = malloc(sizeof(float) * mn), *C0 = malloc(sizeof(float) * mn), *D0 = malloc(sizeof(float) * mn);
            float *C = malloc(sizeof(float) * mn), *D = malloc(sizeof(float) * mn), *W = malloc(sizeof(float) * mn),
                  *WD = malloc(sizeof(float) * mn);
            for (long i = 0; i < (long)M * K; i++) A[i] = frand();
            for (long i = 0; i < (long)K * N; i++) B[i] = frand();
            for (int j = 0; j < N; j++) bv[j] = frand();
            for (long i = 0; i < mn; i++) C0[i] = frand(), D0[i] = frand();
            tz_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, P, N);
            for (long i = 0; i < mn; i++) P[i] = alpha * P[i];
            for (size_t c = 0; c < sizeof finish / sizeof finish[0]; c++) {
                const int add_c = finish[c].add_c, with_bias = finish[c].bias, no_d = finish[c].no_d;
                const tz_epilogue epi = finish[c].epi;
                memcpy(C, C0, sizeof(float) * mn);
                memcpy(D, D0, sizeof(float) * mn);
                tz_sgemm_epi(ta, tb, M, N, K, alpha, A, lda, B, ldb, add_c ? 1.0f : 0.0f, C, N, with_bias ? bv : NULL,
                             epi, no_d ? NULL : D, N);
                for (long i = 0; i < mn; i++) {
                    W[i] = P[i];
                    if (add_c) W[i] = C0[i] + W[i];
                    if (with_bias) W[i] = W[i] + bv[i % N];
                }
                memcpy(WD, D0, sizeof(float) * mn);
                if (epi == TZ_EPI_GELU)
                    tz_sgemm_epi(0, 0, M, N, 0, 1.0f, A, 1, B, N, 1.0f, W, N, NULL, epi, no_d ? NULL : WD, N);
                for (long i = 0; i < mn; i++) {
                    if (epi == TZ_EPI_ADD) W[i] = W[i] + D0[i];
                    if (epi == TZ_EPI_MUL) W[i] = W[i] * D0[i];
                    cr_assert(C[i] == W[i], "%s %s alpha %g ta=%d tb=%d (%d,%d,%d): C[%ld,%ld] %.9g, want %.9g",
                              tz_gemm_kernel_name(), finish[c].what, alpha, ta, tb, M, N, K, i / N, i % N, C[i], W[i]);
                    cr_assert(D[i] == WD[i], "%s %s: D[%ld] %.9g, want %.9g", tz_gemm_kernel_name(), finish[c].what, i,
                              D[i], WD[i]);
                }
            }
            free(A), free(B), free(bv), free(P), free(C0), free(D0), free(C), free(D), free(W), free(WD);
        }
}

ParameterizedTestParameters(gemm, packed_b) { return cr_make_param_array(kparam, kparams, 6); }

// A B packed once (tz_sgemm_pack_b) gives the same bits as the plain product, for both B forms,
// sub-matrices of a larger B (padded ldb), K over several blocks and N off the panel width.
ParameterizedTest(kparam *p, gemm, packed_b) {
    setup(p->kernel, p->threads);
    static const int shapes[][3] = {{32, 1024, 256}, {32, 256, 1024}, {7, 45, 300}, {64, 768, 256},
                                    {1, 33, 5},      {13, 100, 513},  {40, 16, 16}, {12, 1, 70}};
    // Under valgrind (~50x slower) the three products of ~8M multiply-adds are left out: the
    // smaller ones take the same paths (several K blocks, edges, pads), and CI stays in its budget.
    const int vg = getenv("TZ_UNDER_VALGRIND") != NULL;
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++)
        for (int t = 0; t < 4; t++) {
            int ta = t & 1, tb = t >> 1, M = shapes[c][0], N = shapes[c][1], K = shapes[c][2], pad = (int)c % 3 * 5;
            if (vg && (long)M * N * K > 4000000) continue;
            int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad;
            float *A = malloc(sizeof(float) * (ta ? K : M) * lda), *B = malloc(sizeof(float) * (tb ? N : K) * ldb);
            float *C1 = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N);
            float *Bp = aligned_alloc(64, (tz_sgemm_packed_size(K, N) * sizeof(float) + 63) / 64 * 64);
            for (long i = 0; i < (long)(ta ? K : M) * lda; i++) A[i] = frand();
            for (long i = 0; i < (long)(tb ? N : K) * ldb; i++) B[i] = frand();
            for (long i = 0; i < (long)M * N; i++) C1[i] = C2[i] = frand();
            float beta = t == 3 ? 0.0f : 0.5f;
            tz_sgemm(ta, tb, M, N, K, 1.5f, A, lda, B, ldb, beta, C1, N);
            tz_sgemm_pack_b(tb, K, N, B, ldb, Bp);
            tz_sgemm_packed(ta, M, N, K, 1.5f, A, lda, Bp, beta, C2, N);
            cr_assert(memcmp(C1, C2, sizeof(float) * M * N) == 0, "%s packed differs: ta=%d tb=%d M=%d N=%d K=%d",
                      tz_gemm_kernel_name(), ta, tb, M, N, K);
            free(A), free(B), free(C1), free(C2), free(Bp);
        }
}

ParameterizedTestParameters(gemm, transposed_form) { return cr_make_param_array(kparam, kparams, 6); }

// Small-M products may be computed as C^T = op(B)^T op(A)^T and transposed into C (gemm.c,
// use_transposed). TZ_GEMM_FORM=transposed takes that form wherever the kernel can: every
// transpose, alpha/beta, bias and padded leading dimension, over odd sizes and K blocks.
ParameterizedTest(kparam *p, gemm, transposed_form) {
    if (p->kernel == 0) cr_skip_test("the portable kernel never computes the transposed form");
    setenv("TZ_GEMM_FORM", "transposed", 1);
    setup(p->kernel, p->threads);
    static const float ab[][2] = {{1, 0}, {1, 1}, {-0.5f, 0}, {2, -0.75f}, {0.3f, 1}};
    for (int c = 0; c < 100; c++) {
        int M = 1 + (int)((frand() + 1) * 20), N = 1 + (int)((frand() + 1) * 60), K = 1 + (int)((frand() + 1) * 60);
        check_case_bias(c & 1, (c >> 1) & 1, M, N, K, c % 3 == 0 ? 0 : 1 + c % 5, ab[c % 5][0], ab[c % 5][1],
                        c % 7 < 3);
    }
    for (int t = 0; t < 4; t++) check_case_bias(t & 1, t >> 1, 13, 700, 400, t, 1.0f, t & 1 ? 1.0f : 0.0f, t >> 1);
    // Several 32-row slices of a large enough C: the transpose into C is shared between threads.
    for (int t = 0; t < 4; t++) check_case_bias(t & 1, t >> 1, 75, 1100, 20, t, 1.0f, t & 1 ? 1.0f : 0.0f, t >> 1);
}

ParameterizedTestParameters(gemm, small_m_large_b) { return cr_make_param_array(kparam, kparams, 6); }

// The shapes the transposed form is chosen for by default (an MLP's few rows against a big
// weight), all transposes, with and without beta and the bias.
ParameterizedTest(kparam *p, gemm, small_m_large_b) {
    if (p->kernel == 0) cr_skip_test("the portable kernel never computes the transposed form");
    setup(p->kernel, p->threads);
    for (int t = 0; t < 4; t++) // the smallest products chosen (2^24 multiply-adds): valgrind runs this
        check_case_bias(t & 1, t >> 1, 16, 1100, 960, t % 3, 1.0f, t == 3 ? 0.5f : 0.0f, t == 1);
}

static kparam dparams[] = {{0, 2}, {1, 2}, {2, 2}};

ParameterizedTestParameters(gemm, deterministic) { return cr_make_param_array(kparam, dparams, 3); }

// Each C element is computed by one thread in a fixed K order: repeated calls, and 1 vs 2
// threads, give bit-identical results.
ParameterizedTest(kparam *p, gemm, deterministic) {
    // Bit-identity is a question of numbers; under valgrind (~50x slower, 32 s here) the same
    // threaded, two-K-block paths are memory-checked by block_edges.
    if (getenv("TZ_UNDER_VALGRIND")) cr_skip_test("numbers only: block_edges runs these paths under valgrind");
    setup(p->kernel, p->threads);
    const int M = 150, N = 300, K = 700;
    for (int t = 0; t < 4; t++) {
        int ta = t & 1, tb = t >> 1;
        float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
        float *C1 = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N);
        for (int i = 0; i < M * K; i++) A[i] = frand();
        for (int i = 0; i < K * N; i++) B[i] = frand();
        tz_set_threads(2);
        tz_sgemm(ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 0.0f, C1, N);
        tz_sgemm(ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 0.0f, C2, N);
        cr_assert(memcmp(C1, C2, sizeof(float) * M * N) == 0, "repeated call differs (ta=%d tb=%d)", ta, tb);
        tz_set_threads(1);
        tz_sgemm(ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 0.0f, C2, N);
        cr_assert(memcmp(C1, C2, sizeof(float) * M * N) == 0, "1 vs 2 threads differ (ta=%d tb=%d)", ta, tb);
        free(A);
        free(B);
        free(C1);
        free(C2);
    }
}

// Threads that finish first take rows of others' rectangles (more threads than cores makes
// it happen on every machine): the bits stay those of one thread, for both ways of splitting
// C, several K blocks, beta, the bias and the GELU epilogue with its D. (Products big enough to
// share: SHARE_WORK in gemm.c.)
ParameterizedTestParameters(gemm, rows_taken) { return cr_make_param_array(kparam, dparams, 3); }
ParameterizedTest(kparam *p, gemm, rows_taken) {
    if (getenv("TZ_UNDER_VALGRIND")) cr_skip_test("numbers only: block_edges runs the threaded paths under valgrind");
    setup(p->kernel, 1);
    // split along M; along N; along M over 3 N blocks of C (rows taken mid-way through them)
    const int shapes[3][3] = {{800, 112, 900}, {48, 1800, 900}, {300, 1100, 400}}; // >= 2^26 multiply-adds
    for (int s = 0; s < 4; s++) {
        const int packed = s == 3; // a B packed once (tz_sgemm_packed) on the first shape
        const int M = shapes[packed ? 0 : s][0], N = shapes[packed ? 0 : s][1], K = shapes[packed ? 0 : s][2];
        long taken = tz_gemm_rows_taken();
        float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N), *bias = malloc(sizeof(float) * N);
        float *C0 = malloc(sizeof(float) * M * N), *C1 = malloc(sizeof(float) * M * N);
        float *C = malloc(sizeof(float) * M * N), *D1 = malloc(sizeof(float) * M * N),
              *D = malloc(sizeof(float) * M * N);
        float *Bp = packed ? aligned_alloc(64, sizeof(float) * tz_sgemm_packed_size(K, N)) : NULL;
        for (int i = 0; i < M * K; i++) A[i] = frand();
        for (int i = 0; i < K * N; i++) B[i] = frand();
        for (int j = 0; j < N; j++) bias[j] = frand();
        for (int i = 0; i < M * N; i++) C0[i] = frand();
        if (packed) tz_sgemm_pack_b(1, K, N, B, K, Bp);
        tz_set_threads(1);
        memcpy(C1, C0, sizeof(float) * M * N);
        if (packed) tz_sgemm_packed(0, M, N, K, 0.5f, A, K, Bp, 0.25f, C1, N);
        else tz_sgemm_epi(0, 1, M, N, K, 0.5f, A, K, B, K, 0.25f, C1, N, bias, TZ_EPI_GELU, D1, N);
        tz_set_threads(6);
        for (int r = 0; r < 12; r++) {
            memcpy(C, C0, sizeof(float) * M * N);
            if (packed) tz_sgemm_packed(0, M, N, K, 0.5f, A, K, Bp, 0.25f, C, N);
            else tz_sgemm_epi(0, 1, M, N, K, 0.5f, A, K, B, K, 0.25f, C, N, bias, TZ_EPI_GELU, D, N);
            cr_assert(memcmp(C, C1, sizeof(float) * M * N) == 0, "%dx%dx%d%s: C on 6 threads differs from 1 (call %d)",
                      M, N, K, packed ? " packed" : "", r);
            cr_assert(packed || memcmp(D, D1, sizeof(float) * M * N) == 0,
                      "%dx%dx%d: D on 6 threads differs from 1 (call %d)", M, N, K, r);
        }
        tz_set_threads(1);
        cr_assert_gt(tz_gemm_rows_taken(), taken, "%dx%dx%d%s: 12 products on 6 threads, no thread took another's rows",
                     M, N, K, packed ? " packed" : "");
        free(A), free(B), free(bias), free(C0), free(C1), free(C), free(D1), free(D), free(Bp);
    }
}

// tz_dgemm on small integers, where every sum is exact, so results must match exactly.
Test(gemm, dgemm) {
    for (int t = 0; t < 4; t++) {
        int ta = t & 1, tb = t >> 1;
        static const int sizes[][3] = {{1, 1, 1}, {3, 5, 7}, {17, 4, 9}, {8, 33, 2}, {12, 12, 31}};
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            int M = sizes[s][0], N = sizes[s][1], K = sizes[s][2], pad = (int)s;
            int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
            double *A = calloc((size_t)(ta ? K : M) * lda, sizeof(double));
            double *B = calloc((size_t)(tb ? N : K) * ldb, sizeof(double));
            double *C = calloc((size_t)M * ldc, sizeof(double));
            for (int i = 0; i < M; i++)
                for (int k = 0; k < K; k++) A[ta ? (long)k * lda + i : (long)i * lda + k] = (i * 7 + k * 3) % 11 - 5;
            for (int k = 0; k < K; k++)
                for (int j = 0; j < N; j++) B[tb ? (long)j * ldb + k : (long)k * ldb + j] = (k * 5 + j) % 7 - 3;
            double bias[64], *Bp = malloc(sizeof(double) * tz_dgemm_packed_size(K, N)),
                             *C2 = malloc(sizeof(double) * M * ldc);
            tz_dgemm_pack_b(tb, K, N, B, ldb, Bp);
            for (int j = 0; j < N; j++) bias[j] = j % 5 - 2;
            for (int beta = 0; beta < 4; beta++) { // beta 3: 1 with a bias row
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) C[(long)i * ldc + j] = beta == 0 ? NAN : i - j;
                memcpy(C2, C, sizeof(double) * M * ldc);
                tz_dgemm_bias(ta, tb, M, N, K, 2.0, A, lda, B, ldb,
                              beta == 2   ? 0.5
                              : beta == 3 ? 1
                                          : beta,
                              C, ldc, beta == 3 ? bias : NULL);
                if (beta < 3) { // the packed form of B gives the same numbers
                    tz_dgemm_packed(ta, M, N, K, 2.0, A, lda, Bp, beta == 2 ? 0.5 : beta, C2, ldc);
                    for (int i = 0; i < M; i++)
                        for (int j = 0; j < N; j++)
                            cr_assert(C2[(long)i * ldc + j] == C[(long)i * ldc + j] ||
                                          (isnan(C[(long)i * ldc + j]) && isnan(C2[(long)i * ldc + j])),
                                      "dgemm packed ta=%d tb=%d C[%d,%d]", ta, tb, i, j);
                }
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        double ref = 0;
                        for (int k = 0; k < K; k++) ref += (double)((i * 7 + k * 3) % 11 - 5) * ((k * 5 + j) % 7 - 3);
                        ref =
                            2.0 * ref + (beta == 0 ? 0 : (beta == 2 ? 0.5 : 1.0) * (i - j)) + (beta == 3 ? bias[j] : 0);
                        cr_assert_eq(C[(long)i * ldc + j], ref, "dgemm ta=%d tb=%d M=%d N=%d K=%d beta=%d C[%d,%d]", ta,
                                     tb, M, N, K, beta, i, j);
                    }
            }
            free(A);
            free(B);
            free(C);
            free(C2);
            free(Bp);
        }
    }
}

// tz_thread_scratch: a thread's later calls get the same buffer while it is large enough (so a
// pool task's tiles stay in its core's cache), a larger request a buffer that holds it, each
// slot its own, all 64-byte aligned; another thread has buffers of its own.
static void *other_scratch(void *arg) {
    (void)arg;
    return tz_thread_scratch(0, 64);
}
Test(gemm, thread_scratch) {
    char *a = tz_thread_scratch(0, 1000), *b = tz_thread_scratch(1, 1000);
    cr_assert(a && b && a != b);
    cr_assert_eq((uintptr_t)a % 64, 0);
    cr_assert_eq((uintptr_t)b % 64, 0);
    memset(a, 1, 1000);
    memset(b, 2, 1000);
    cr_assert_eq(tz_thread_scratch(0, 10), a, "a smaller request reuses the buffer");
    cr_assert_eq(a[999], 1, "and keeps its contents");
    char *big = tz_thread_scratch(0, 1 << 22);
    cr_assert_eq((uintptr_t)big % 64, 0);
    memset(big, 3, 1 << 22); // all of it writable (ASan checks)
    cr_assert_eq(tz_thread_scratch(1, 1000), b, "slot 1 is untouched by slot 0's growth");
    pthread_t t;
    void *theirs;
    cr_assert_eq(pthread_create(&t, NULL, other_scratch, NULL), 0);
    cr_assert_eq(pthread_join(t, &theirs), 0);
    cr_assert(theirs != big, "each thread has its own");
}
