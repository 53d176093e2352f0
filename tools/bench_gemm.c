// bench-gemm: throughput of tz_sgemm on the model zoo's shapes, each forward shape also in the
// two transposed forms its backward uses, side by side with OpenBLAS when built with
// -Dblas=openblas. One JSON line per case, then a JSON summary line.
//
//   bench-gemm [--threads N] [--reps N] [--shape M,N,K]... [--case M,N,K,ta,tb]... [--quick] [--cpu-time]
//   bench-gemm --peak [--peak-only] [--threads N] [--shape M,N,K]...
//
// --peak first measures the machine's FMA peak (fma_peak below) on 1 and on N threads (one line
// each and a JSON line {"peak":true,...}), then runs the transformer-at-scale products (M = batch
// 8 x block 256 = 2048 rows, K and N in {384, 1152, 1536}: d_model 384, d_ff 1536, the fused qkv
// projection 1152) or the --shape list, each case's GFLOP/s also as a fraction of the N-thread
// peak ("peak_frac"). --peak-only stops after the peak (tools/bench/run --scale reads it).
//
// Each case is first checked against a double-precision reference (aborts if wrong). Timing:
// one warm-up batch, then --reps batches of enough calls to last ~20 ms (5 ms with --quick);
// the best batch counts (other processes can only slow a batch down). On a busy machine wall
// time says little: --cpu-time (one thread; OpenBLAS then runs on the calling thread too) times
// by the thread's CPU time, so only cache pollution by the other processes remains and one-core
// ratios repeat to ~1-2% (two-core figures need an idle machine). Both libraries run with
// the same thread count. OpenBLAS workers keep spinning for a while after a call, which would
// steal a core from the next measurement, so the bench sleeps between libraries.
// TZ_BENCH_VERBOSE=1 prints every batch to stderr.
#include "gemm.h"
#include "threadpool.h"
#include "tz.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef TZ_BENCH_OPENBLAS
#include <cblas.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

// The clock of every measurement: wall time, or (--cpu-time, one thread) this thread's CPU time,
// which a loaded machine does not inflate by descheduling the bench.
static double thread_cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
static double (*now)(void) = tz_now;

// ---- the FMA peak -----------------------------------------------------------------------------
// A loop of independent FMAs on registers only (no loads or stores), in the ISA the gemm kernel
// uses (tz_gemm_kernel_name): 16 accumulators, so two FMA pipes x 4-5 cycles of latency are
// always fed; acc = acc * x + y with x < 1 converges to a normal number (no denormals, no
// overflow). Returns flops done: iters x 16 FMAs x lanes x 2.
static volatile float peak_sink;
#define PEAK_ACC 16
// Sixteen named accumulators (an array whose elements the loop indexes ends up in memory).
#define PEAK_DECL(T, init) \
    T a0 = init(0), a1 = init(1), a2 = init(2), a3 = init(3), a4 = init(4), a5 = init(5), a6 = init(6), a7 = init(7), \
      a8 = init(8), a9 = init(9), a10 = init(10), a11 = init(11), a12 = init(12), a13 = init(13), a14 = init(14), \
      a15 = init(15)
#define PEAK_STEP(F) \
    a0 = F(a0), a1 = F(a1), a2 = F(a2), a3 = F(a3), a4 = F(a4), a5 = F(a5), a6 = F(a6), a7 = F(a7), a8 = F(a8), \
    a9 = F(a9), a10 = F(a10), a11 = F(a11), a12 = F(a12), a13 = F(a13), a14 = F(a14), a15 = F(a15)
#define PEAK_SUM(ADD) \
    ADD(ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7))), \
        ADD(ADD(ADD(a8, a9), ADD(a10, a11)), ADD(ADD(a12, a13), ADD(a14, a15))))
#if defined(__x86_64__) || defined(__i386__)
#define SET512(i) _mm512_set1_ps((float)(i))
#define FMA512(a) _mm512_fmadd_ps(a, x, y)
__attribute__((target("avx512f"))) static double fma_loop_avx512(long iters) {
    const __m512 x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(0.001f);
    PEAK_DECL(__m512, SET512);
    for (long it = 0; it < iters; it++) PEAK_STEP(FMA512);
    peak_sink = _mm512_reduce_add_ps(PEAK_SUM(_mm512_add_ps));
    return (double)iters * PEAK_ACC * 16 * 2;
}

// AVX2 has 16 ymm registers: 16 accumulators + x + y spill one operand to memory, which the
// FMA reads as a load (two loads a cycle are free next to two FMAs).
#define SET256(i) _mm256_set1_ps((float)(i))
#define FMA256(a) _mm256_fmadd_ps(a, x, y)
__attribute__((target("avx2,fma"))) static double fma_loop_avx2(long iters) {
    const __m256 x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(0.001f);
    PEAK_DECL(__m256, SET256);
    for (long it = 0; it < iters; it++) PEAK_STEP(FMA256);
    __m256 s = PEAK_SUM(_mm256_add_ps);
    float f[8];
    _mm256_storeu_ps(f, s);
    peak_sink = f[0] + f[7];
    return (double)iters * PEAK_ACC * 8 * 2;
}
#endif

// The portable kernel's ISA is whatever the compiler targets: 4-wide vectors of its choosing.
typedef float v4f __attribute__((vector_size(16)));
#define SETV4(i) ((v4f){(float)(i), (float)(i), (float)(i), (float)(i)})
#define FMAV4(a) ((a)*x + y)
#define ADDV4(a, b) ((a) + (b))
static double fma_loop_portable(long iters) {
    const v4f x = SETV4(0.999f), y = SETV4(0.001f);
    PEAK_DECL(v4f, SETV4);
    for (long it = 0; it < iters; it++) PEAK_STEP(FMAV4);
    v4f s = PEAK_SUM(ADDV4);
    peak_sink = s[0] + s[3];
    return (double)iters * PEAK_ACC * 4 * 2;
}

typedef struct {
    long iters;
    double flops[64];
} peak_job;

static void peak_task(void *arg, int t, int T) {
    (void)T;
    peak_job *j = arg;
    const char *k = tz_gemm_kernel_name();
#if defined(__x86_64__) || defined(__i386__)
    if (!strcmp(k, "avx512")) j->flops[t] = fma_loop_avx512(j->iters);
    else if (!strcmp(k, "avx2")) j->flops[t] = fma_loop_avx2(j->iters);
    else
#endif
        j->flops[t] = fma_loop_portable(j->iters);
    (void)k;
}

// Best GFLOP/s of `reps` runs of the FMA loop on `threads` threads of the project's pool (each
// thread the same number of iterations; wall time of the whole region, so the slower core sets
// it). A run lasts ~20 ms: long enough that waking the pool costs nothing (~1 us), shorter than
// most of the scheduler's time slices, so on a shared machine some runs find both cores free.
static double fma_peak(int threads, int reps) {
    // Calibrate on this thread alone (starting the pool's workers would be timed otherwise),
    // doubling until a run is long enough to time, then wake the workers once.
    peak_job j = {.iters = 1000};
    double t0, dt;
    for (;;) {
        t0 = now();
        peak_task(&j, 0, 1);
        dt = now() - t0;
        if (dt > 2e-3 || j.iters > (1L << 40)) break;
        j.iters *= 2;
    }
    j.iters = (long)(j.iters * 0.02 / dt);
    if (j.iters < 1000) j.iters = 1000;
    tz_pool_run(threads, peak_task, &j);
    double best = 0;
    for (int r = 0; r < reps; r++) {
        t0 = now();
        tz_pool_run(threads, peak_task, &j);
        dt = now() - t0;
        double f = 0;
        for (int t = 0; t < threads; t++) f += j.flops[t];
        if (f / dt * 1e-9 > best) best = f / dt * 1e-9;
        if (getenv("TZ_BENCH_VERBOSE"))
            fprintf(stderr, "  peak %d threads run %d: %.1f GFLOP/s\n", threads, r, f / dt * 1e-9);
    }
    return best;
}

typedef struct {
    int m, n, k, ta, tb;
} gcase;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Operands of case c: A stored (M,K) or (K,M), B stored (K,N) or (N,K), C (M,N), all packed.
typedef struct {
    gcase c;
    float *A, *B, *C;
    int lda, ldb, ldc;
} operands;

static void run_tz(const operands *o) {
    const gcase *c = &o->c;
    tz_sgemm(c->ta, c->tb, c->m, c->n, c->k, 1.0f, o->A, o->lda, o->B, o->ldb, 0.0f, o->C, o->ldc);
}

#ifdef TZ_BENCH_OPENBLAS
static void run_openblas(const operands *o) {
    const gcase *c = &o->c;
    cblas_sgemm(CblasRowMajor, c->ta ? CblasTrans : CblasNoTrans, c->tb ? CblasTrans : CblasNoTrans, c->m, c->n, c->k,
                1.0f, o->A, o->lda, o->B, o->ldb, 0.0f, o->C, o->ldc);
}
#endif

// Best GFLOP/s of `reps` batches of fn (after one warm-up batch).
static double measure(void (*fn)(const operands *), const operands *o, int reps, double batch_s) {
    double flops = 2.0 * o->c.m * o->c.n * o->c.k;
    fn(o);
    double t0 = now();
    fn(o);
    double one = now() - t0;
    int iters = one > 0 ? (int)(batch_s / one) : 1000;
    if (iters < 1) iters = 1;
    if (iters > 100000) iters = 100000;
    for (int i = 0; i < iters; i++) fn(o); // warm-up batch
    double *g = malloc(sizeof(double) * reps);
    for (int r = 0; r < reps; r++) {
        t0 = now();
        for (int i = 0; i < iters; i++) fn(o);
        g[r] = flops * iters / (now() - t0) * 1e-9;
        if (getenv("TZ_BENCH_VERBOSE")) fprintf(stderr, "  batch %d: %d calls, %.1f GFLOP/s\n", r, iters, g[r]);
    }
    // Best batch: other processes on a 2-core machine only ever slow a batch down.
    qsort(g, reps, sizeof(double), cmp_double);
    double best = g[reps - 1];
    free(g);
    return best;
}

// C(i,j) of case o in double.
static double ref_elem(const operands *o, int i, int j) {
    const gcase *c = &o->c;
    double s = 0;
    for (int k = 0; k < c->k; k++) {
        double a = c->ta ? o->A[(long)k * o->lda + i] : o->A[(long)i * o->lda + k];
        double b = c->tb ? o->B[(long)j * o->ldb + k] : o->B[(long)k * o->ldb + j];
        s += a * b;
    }
    return s;
}

// Check tz_sgemm's C against the reference: every element of small cases; for big ones the
// first/last rows and columns (where edge handling lives) plus a thousand random elements.
// Inputs are in [-1, 1], so |error| <= K * eps-ish; the tolerance allows a few times that.
static void check(const operands *o) {
    const gcase *c = &o->c;
    for (long i = 0; i < (long)c->m * c->n; i++) o->C[i] = NAN; // beta 0 must ignore these
    run_tz(o);
    double tol = 4 * 6e-8 * c->k + 1e-6;
    int full = (double)c->m * c->n * c->k <= (1 << 24);
    long bad = 0;
    for (int i = 0; i < c->m; i++)
        for (int j = 0; j < c->n; j++) {
            int edge = i == 0 || i == c->m - 1 || j == 0 || j == c->n - 1;
            if (!full && !edge && (rand() % (c->m * c->n / 1000 + 1)) != 0) continue;
            double r = ref_elem(o, i, j), v = o->C[(long)i * o->ldc + j];
            if (!(fabs(v - r) <= tol)) {
                if (bad++ < 5)
                    fprintf(stderr, "bench-gemm: WRONG m=%d n=%d k=%d ta=%d tb=%d: C[%d,%d] = %g, reference %g\n", c->m,
                            c->n, c->k, c->ta, c->tb, i, j, v, r);
            }
        }
    if (bad) {
        fprintf(stderr, "bench-gemm: %ld wrong elements (kernel %s); aborting\n", bad, tz_gemm_kernel_name());
        exit(1);
    }
}

static void usage(void) {
    fprintf(
        stderr,
        "usage: bench-gemm [--threads N] [--reps N] [--shape M,N,K]... [--case M,N,K,ta,tb]... [--quick] [--cpu-time]\n"
        "       bench-gemm --peak [--peak-only] [--threads N] [--shape M,N,K]...\n"
        "  --shape runs M,N,K and its two backward forms; --case runs one product; neither: the zoo\n"
        "  --cpu-time (with --threads 1): time by this thread's CPU time, for a busy machine\n"
        "  --peak: the FMA peak on 1 and N threads, then the transformer-at-scale shapes (or the\n"
        "  --shape list) as fractions of it; --peak-only: the peak alone\n");
    exit(2);
}

int main(int argc, char **argv) {
    int threads = 2, reps = 7, quick = 0, nshapes = 0, peak = 0, peak_only = 0, cpu_time = 0;
    int shapes[64][3], nextra = 0;
    gcase extra[64];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--peak")) peak = 1;
        else if (!strcmp(argv[i], "--cpu-time")) cpu_time = 1;
        else if (!strcmp(argv[i], "--peak-only")) peak = peak_only = 1;
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc && nshapes < 64) {
            int *s = shapes[nshapes];
            if (sscanf(argv[++i], "%d,%d,%d", &s[0], &s[1], &s[2]) != 3 || s[0] < 1 || s[1] < 1 || s[2] < 1) usage();
            nshapes++;
        } else if (!strcmp(argv[i], "--case") && i + 1 < argc && nextra < 64) {
            gcase *c = &extra[nextra];
            if (sscanf(argv[++i], "%d,%d,%d,%d,%d", &c->m, &c->n, &c->k, &c->ta, &c->tb) != 5 || c->m < 1 || c->n < 1 ||
                c->k < 1)
                usage();
            nextra++;
        } else usage();
    }
    if (threads < 1 || threads > 64 || reps < 1) usage();
    if (cpu_time && threads != 1) {
        fprintf(stderr, "bench-gemm: --cpu-time measures one thread's CPU time: use it with --threads 1\n");
        return 2;
    }
    if (cpu_time) now = thread_cpu;
    if (quick && reps > 3) reps = 3;
    double batch_s = quick ? 0.005 : 0.02;

    // The FMA peak: 1 thread, then N (the fraction of peak of every case is against N threads').
    double peak_n = 0;
    if (peak) {
        double p1 = fma_peak(1, 5 * reps);
        peak_n = threads == 1 ? p1 : fma_peak(threads, 5 * reps);
        printf("peak: %-6s 1 thread:  %7.1f GFLOP/s\n", tz_gemm_kernel_name(), p1);
        if (threads > 1) printf("peak: %-6s %d threads: %7.1f GFLOP/s\n", tz_gemm_kernel_name(), threads, peak_n);
        if (threads > 1 && peak_n < 0.8 * threads * p1)
            fprintf(stderr,
                    "bench-gemm: WARNING: %d threads reach %.1fx one thread's peak, not ~%d: the cores were "
                    "busy (the %d-thread peak is low; measure on an idle machine)\n",
                    threads, peak_n / p1, threads, threads);
        printf("{\"peak\":true,\"isa\":\"%s\",\"gflops_1\":%.1f,\"threads\":%d,\"gflops\":%.1f}\n",
               tz_gemm_kernel_name(), p1, threads, peak_n);
        fflush(stdout);
        if (peak_only) return 0;
        if (!nshapes && !nextra) { // the transformer at scale: d_model 384, d_ff 1536, B x T = 2048
            static const int scale[][3] = {{2048, 1152, 384}, {2048, 384, 384}, {2048, 1536, 384}, {2048, 384, 1536}};
            for (size_t s = 0; s < sizeof scale / sizeof scale[0]; s++)
                memcpy(shapes[nshapes++], scale[s], sizeof scale[s]);
        }
    }

    // Forward shapes (M,N,K) of the zoo; each also runs as dA = dC B^T (M,K,N, tb=1) and
    // dB = A^T dC (K,N,M, ta=1). Then the recurrent steps' skinny products (tb=1).
    static const int zoo[][3] = {{32, 1024, 256}, {2048, 1024, 256}, {2048, 65, 256}, {768, 384, 128}, {768, 128, 128},
                                 {768, 512, 128}, {768, 128, 512},   {128, 512, 512}, {128, 65, 512}};
    static const gcase skinny[] = {{64, 1024, 256, 0, 1}, {64, 768, 256, 0, 1}};
    gcase cases[256];
    int nc = 0;
    int nfwd = nshapes ? nshapes : nextra ? 0 : (int)(sizeof zoo / sizeof zoo[0]);
    for (int s = 0; s < nfwd; s++) {
        int m = nshapes ? shapes[s][0] : zoo[s][0], n = nshapes ? shapes[s][1] : zoo[s][1],
            k = nshapes ? shapes[s][2] : zoo[s][2];
        cases[nc++] = (gcase){m, n, k, 0, 0};
        cases[nc++] = (gcase){m, k, n, 0, 1};
        cases[nc++] = (gcase){k, n, m, 1, 0};
    }
    for (int e = 0; e < nextra; e++) cases[nc++] = extra[e];
    if (!nshapes && !nextra)
        for (size_t s = 0; s < sizeof skinny / sizeof skinny[0]; s++) cases[nc++] = skinny[s];

    tz_set_threads(threads);
#ifdef TZ_BENCH_OPENBLAS
    openblas_set_num_threads(threads);
#endif
    srand(1234);
    double logsum = 0, logpeak = 0;
    // Every case run once, in turn, as a step runs its products: ms of ours and OpenBLAS's summed,
    // whose quotient is the whole list's speed ratio (the geomean weighs a small case like a big one).
    double ms_tz = 0;
#ifdef TZ_BENCH_OPENBLAS
    double ms_ob = 0;
#endif
    for (int ci = 0; ci < nc; ci++) {
        operands o = {cases[ci], NULL, NULL, NULL, 0, 0, 0};
        gcase *c = &o.c;
        o.lda = c->ta ? c->m : c->k;
        o.ldb = c->tb ? c->k : c->n;
        o.ldc = c->n;
        o.A = malloc(sizeof(float) * (size_t)c->m * c->k);
        o.B = malloc(sizeof(float) * (size_t)c->k * c->n);
        o.C = malloc(sizeof(float) * (size_t)c->m * c->n);
        if (!o.A || !o.B || !o.C) {
            fprintf(stderr, "bench-gemm: out of memory\n");
            return 1;
        }
        for (long i = 0; i < (long)c->m * c->k; i++) o.A[i] = 2.0f * (float)rand() / (float)RAND_MAX - 1.0f;
        for (long i = 0; i < (long)c->k * c->n; i++) o.B[i] = 2.0f * (float)rand() / (float)RAND_MAX - 1.0f;
        check(&o);
        double g = measure(run_tz, &o, reps, batch_s);
        printf("{\"m\":%d,\"n\":%d,\"k\":%d,\"ta\":%d,\"tb\":%d,\"gflops\":%.1f", c->m, c->n, c->k, c->ta, c->tb, g);
        if (peak) printf(",\"peak_frac\":%.3f", g / peak_n);
        logpeak += log(g / (peak ? peak_n : 1));
        const double gflop = 2e-9 * c->m * c->n * c->k;
        ms_tz += 1e3 * gflop / g;
#ifdef TZ_BENCH_OPENBLAS
        usleep(20000); // let our workers go to sleep
        double ob = measure(run_openblas, &o, reps, batch_s);
        usleep(quick ? 100000 : 250000); // OpenBLAS workers spin ~0.1 s after their last call
        printf(",\"openblas_gflops\":%.1f,\"ratio\":%.3f", ob, g / ob);
        if (peak) printf(",\"openblas_peak_frac\":%.3f", ob / peak_n);
        logsum += log(g / ob);
        ms_ob += 1e3 * gflop / ob;
#else
        logsum += log(g);
#endif
        printf("}\n");
        fflush(stdout);
        free(o.A);
        free(o.B);
        free(o.C);
    }
    if (peak)
        printf("# tz_sgemm on these %d cases: geomean %.1f%% of the %d-thread FMA peak (%.1f GFLOP/s)\n", nc,
               100 * exp(logpeak / nc), threads, peak_n);
#ifdef TZ_BENCH_OPENBLAS
    printf("# all %d cases once each: tz_sgemm %.2f ms, OpenBLAS %.2f ms (%.3fx)\n", nc, ms_tz, ms_ob, ms_ob / ms_tz);
    printf("{\"summary\":true,\"cases\":%d,\"geomean_ratio\":%.3f,\"ms\":%.3f,\"openblas_ms\":%.3f,\"time_ratio\":%.3f,"
           "\"threads\":%d,\"kernel\":\"%s\",\"openblas_core\":\"%s\"",
           nc, exp(logsum / nc), ms_tz, ms_ob, ms_ob / ms_tz, tz_get_threads(), tz_gemm_kernel_name(),
           openblas_get_corename());
#else
    printf("{\"summary\":true,\"cases\":%d,\"geomean_gflops\":%.1f,\"ms\":%.3f,\"threads\":%d,\"kernel\":\"%s\"", nc,
           exp(logsum / nc), ms_tz, tz_get_threads(), tz_gemm_kernel_name());
#endif
    if (peak) printf(",\"peak_gflops\":%.1f,\"geomean_peak_frac\":%.3f", peak_n, exp(logpeak / nc));
    printf("}\n");
    return 0;
}
