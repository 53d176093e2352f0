// gemm.c: tz_sgemm (packed, cache-blocked, SIMD micro-kernels, threaded) and tz_dgemm (plain).
//
// tz_sgemm follows BLIS/GotoBLAS, transposed for row-major C: the micro-kernel vectorises along
// N (a row of a C tile is a few SIMD vectors) and broadcasts along M. Per thread, for its
// rectangle of C:
//   for jc over N in blocks of NC:
//     for pc over K in blocks of KC:            K order is fixed: results do not depend on threads
//                                               (a depth up to 4/3 KC is one block: k_block)
//       pack B(pc:+KC, jc:+NC) into Bp          KC x NC, stays in L2 while every row panel uses it
//       for ir over M in steps of MR:
//         pack A(ir:+MR, pc:+KC) into Ap        MR x KC, stays in L1 across the jr loop
//         for jr over NC in steps of NR:
//           micro-kernel: C(ir:+MR, jc+jr:+NR) (=|+=) alpha * Ap * Bp(jr)
// Edges are not padded with wasted work: the kernels have an instance for every row count
// m <= MR and mask the last vector of a row, so only the SIMD lanes past N are wasted.
// Threads: C is cut into one rectangle per thread along M or N (whichever wastes less); a thread
// done first takes over the bottom rows of another's (take_rows). Each C element is computed by
// exactly one thread, in the same order as single-threaded.
// A product of few rows against a large B runs transposed, C^T = op(B)^T op(A)^T, so the large
// operand is read in place instead of packed (use_transposed; TZ_GEMM_FORM forces a form).
#include "gemm.h"
#include "fastmath.h" // tz_fnormal: the GELU epilogue computes what tz_gelu computes
#include "threadpool.h"
#include "tz.h" // tz_fail (error.c is built into this library)

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// Micro-kernel contract (see gemm_avx512.c): C(m,n) tile = alpha*Ap*Bp + beta*C (beta 0: no
// read) + bias (a row of n, added to every row; NULL: none), then, for kernels with
// epi_in_kernel, gemm.h's epilogue epi on the tile before it is stored (D: its (m,n) tile, ldd
// apart; GELU writes it unless NULL, MUL and ADD read it). Other kernels are always given TZ_EPI_NONE.
typedef void (*ukr_fn)(int m, int n, int kc, const float *Ap, long sa, const float *Bp, float *C, long ldc, float alpha,
                       float beta, const float *bias, int epi, float *D, long ldd);
#if defined(__x86_64__) || defined(__i386__)
#define TZ_X86 1
void tz_ukr_avx512(int m, int n, int kc, const float *Ap, long sa, const float *Bp, float *C, long ldc, float alpha,
                   float beta, const float *bias, int epi, float *D, long ldd);
void tz_ukr_avx512_rows(int m, int n, int kc, const float *Ap, long sa, const float *Bp, float *C, long ldc,
                        float alpha, float beta, const float *bias, int epi, float *D, long ldd);
void tz_ukr_avx2(int m, int n, int kc, const float *Ap, long sa, const float *Bp, float *C, long ldc, float alpha,
                 float beta, const float *bias, int epi, float *D, long ldd);
void tz_pack_t_avx2(int rows, int kc, const float *src, long ld, float *dst, int P);
void tz_epi_gelu_avx512(int m, int n, float *C, long ldc, float *D, long ldd);
#endif

typedef struct {
    const char *name;
    int mr, nr; // register tile; nr is a multiple of the vector width
    int kc, nc; // cache blocks: MR x KC in L1, KC x NC in L2
    int simd; // may use the AVX2 transposing pack
    ukr_fn ukr;
    ukr_fn ukr_rows; // the same reading a row-major op(A) in place (sa = lda), or NULL
    // GELU on C in memory (epilogue_tile's, in the kernel's ISA), or NULL: the portable loop
    void (*gelu)(int m, int n, float *C, long ldc, float *D, long ldd);
    int epi_in_kernel; // 1: ukr applies its epilogue (GELU, MUL, ADD) before storing, else it ignores it
} kernel;

// ---- portable micro-kernel ----------------------------------------------------------------
#define PMR 4
#define PNR 16
// C(m,n) tile, m <= 4, n <= 16. Ap/Bp are zero-padded, so the full 4x16 tile is computed and
// only m x n stored; the fixed-size loops let the compiler vectorise whatever ISA it targets.
static void ukr_portable(int m, int n, int kc, const float *Ap, long sa, const float *Bp, float *C, long ldc,
                         float alpha, float beta, const float *bias, int epi, float *D, long ldd) {
    (void)epi, (void)D, (void)ldd; // epilogue_tile applies the epilogue after it
    float acc[PMR][PNR] = {{0}};
    // One short j loop per row: plain loops the vectoriser maps onto the target's vectors.
    // (Nested i/j loops made GCC interleave k steps with shuffles, 3x slower.)
    for (int k = 0; k < kc; k++, Ap += sa, Bp += PNR) {
        const float a0 = Ap[0], a1 = Ap[1], a2 = Ap[2], a3 = Ap[3];
        for (int j = 0; j < PNR; j++) acc[0][j] += a0 * Bp[j];
        for (int j = 0; j < PNR; j++) acc[1][j] += a1 * Bp[j];
        for (int j = 0; j < PNR; j++) acc[2][j] += a2 * Bp[j];
        for (int j = 0; j < PNR; j++) acc[3][j] += a3 * Bp[j];
    }
    for (int i = 0; i < m; i++) {
        float *c = C + i * ldc;
        if (beta == 0.0f)
            for (int j = 0; j < n; j++) c[j] = alpha * acc[i][j];
        else
            for (int j = 0; j < n; j++) {
                // alpha * acc rounded on its own, as the SIMD kernels do: in one expression clang
                // (-ffp-contract=on) fuses it with the add into one rounding, gcc (-std=c11) does not
                const float r = alpha * acc[i][j];
                c[j] = r + beta * c[j];
            }
        if (bias)
            for (int j = 0; j < n; j++) c[j] += bias[j];
    }
}

// KC = 256: a 12 x 256 A panel is 12 KiB (L1 is 32 KiB, B panels stream through the rest);
// NC = 512: a 256 x 512 B block is 512 KiB, half of Zen4's 1 MiB L2.
// AVX-512 takes KC = 384: a depth of 384 (d_model 384, the transformer at scale) is then one K
// block instead of two, so each C tile is stored once instead of stored, reloaded and stored
// again (a third of the C traffic, which two cores share), and 1536 takes 4 blocks instead of 6.
// One core, the 12 transformer-at-scale products, in-process A/B by thread CPU time: +2-3%
// geomean, none slower beyond the noise. The 18 KiB A panel and a 48 KiB B micro-panel no
// longer both fit a 48 KiB L1; A's broadcasts partly come from L2, which measured no slower.
static const kernel k_portable = {.name = "portable", .mr = PMR, .nr = PNR, .kc = 256, .nc = 512, .ukr = ukr_portable};
#ifdef TZ_X86
static const kernel k_avx2 = {.name = "avx2", .mr = 6, .nr = 16, .kc = 256, .nc = 512, .simd = 1, .ukr = tz_ukr_avx2};
static const kernel k_avx512 = {.name = "avx512",
                                .mr = 12,
                                .nr = 32,
                                .kc = 384,
                                .nc = 512,
                                .simd = 1,
                                .ukr = tz_ukr_avx512,
                                .ukr_rows = tz_ukr_avx512_rows,
                                .gelu = tz_epi_gelu_avx512,
                                .epi_in_kernel = 1};
#endif

// ---- settings: kernel and thread count ----------------------------------------------------
static const kernel *g_kernel;
static int g_form = -1; // -1: choose (use_transposed), 0: never C^T, 1: C^T wherever the kernel allows
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static atomic_int g_threads; // 0 = default
static int g_default_threads;

static void init_settings(void) {
    const kernel *k = &k_portable;
#ifdef TZ_X86
    __builtin_cpu_init();
    int has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    int has512 = has2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                 __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
    k = has512 ? &k_avx512 : has2 ? &k_avx2 : &k_portable;
    // TZ_GEMM_KERNEL forces a kernel (tests, benchmarks); unsupported requests fall back to the
    // best kernel the CPU does have below the request.
    const char *want = getenv("TZ_GEMM_KERNEL");
    if (want && strcmp(want, "portable") == 0) k = &k_portable;
    if (want && strcmp(want, "avx2") == 0) k = has2 ? &k_avx2 : &k_portable;
    if (want && strcmp(want, "avx512") == 0) k = has512 ? &k_avx512 : has2 ? &k_avx2 : &k_portable;
#endif
    g_kernel = k;
    // TZ_GEMM_FORM=normal|transposed forces the form of small-M products (tests, benchmarks).
    const char *form = getenv("TZ_GEMM_FORM");
    if (form && strcmp(form, "normal") == 0) g_form = 0;
    if (form && strcmp(form, "transposed") == 0) g_form = 1;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    const char *env = getenv("TZ_NUM_THREADS");
    if (env && atoi(env) > 0) n = atoi(env);
    g_default_threads = n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

static void init(void) { pthread_once(&g_once, init_settings); }

void tz_set_threads(int n) {
    init();
    atomic_store(&g_threads, n <= 0 ? 0 : n > 64 ? 64 : n);
}

int tz_get_threads(void) {
    init();
    int n = atomic_load(&g_threads);
    return n > 0 ? n : g_default_threads;
}

const char *tz_gemm_kernel_name(void) {
    init();
    return g_kernel->name;
}

// ---- per-thread packing buffers -----------------------------------------------------------
// Grown on demand and kept, so steady-state calls never allocate. A pthread key frees them
// when a thread that used tz_sgemm exits.
typedef struct {
    float *a, *b, *ct; // packed A, packed B, C^T of a transposed product
    size_t acap, bcap, ctcap; // in floats
    float *scratch[2]; // tz_thread_scratch
    size_t scap[2];
} buffers;

static _Thread_local buffers tls_buf;
static pthread_key_t buf_key;
static pthread_once_t buf_key_once = PTHREAD_ONCE_INIT;

static void buf_free(void *p) {
    buffers *b = p;
    free(b->a);
    free(b->b);
    free(b->ct);
    free(b->scratch[0]);
    free(b->scratch[1]);
    *b = (buffers){0};
}
static void buf_key_init(void) { pthread_key_create(&buf_key, buf_free); }

// Grow *p to at least n floats, 64-byte aligned (the kernels use aligned loads of Bp): the
// packing buffers and tz_thread_scratch's.
static float *grow(float **p, size_t *cap, size_t n) {
    if (*cap >= n) return *p;
    pthread_once(&buf_key_once, buf_key_init);
    pthread_setspecific(buf_key, &tls_buf);
    free(*p);
    n = (n + 1023) & ~(size_t)1023;
    *p = aligned_alloc(64, n * sizeof(float));
    *cap = *p ? n : 0;
    if (!*p) tz_fail("gemm: out of memory for a per-thread buffer of %zu floats", n);
    return *p;
}

void *tz_thread_scratch(int slot, size_t bytes) {
    if (slot < 0 || slot > 1) tz_fail("tz_thread_scratch: slot %d is not 0 or 1", slot);
    return grow(&tls_buf.scratch[slot], &tls_buf.scap[slot], (bytes + sizeof(float) - 1) / sizeof(float));
}

// ---- packing ----------------------------------------------------------------------------------
// Copying pack: dst[k*P + c] = src[k*ld + c] for c < w, zeros for w <= c < P.
// Full panels (w == P) of the kernels' widths get a copy loop of constant length, which the
// compiler turns into a few vector moves per k; a memcpy call per 48-128 bytes costs more than
// the copy itself and made packing dominate small-M products.
static inline __attribute__((always_inline)) void copy_fixed(int kc, const float *src, long ld, float *dst,
                                                             const int P) {
    for (int k = 0; k < kc; k++, src += ld, dst += P)
        for (int c = 0; c < P; c++) dst[c] = src[c];
}

static void pack_copy(int w, int kc, const float *src, long ld, float *dst, int P) {
    if (w == P) {
        switch (P) {
            case 32: copy_fixed(kc, src, ld, dst, 32); return;
            case 16: copy_fixed(kc, src, ld, dst, 16); return;
            case 12: copy_fixed(kc, src, ld, dst, 12); return;
            case 6: copy_fixed(kc, src, ld, dst, 6); return;
            case 4: copy_fixed(kc, src, ld, dst, 4); return;
            default: break;
        }
    }
    for (int k = 0; k < kc; k++, src += ld, dst += P) {
        for (int c = 0; c < w; c++) dst[c] = src[c];
        for (int c = w; c < P; c++) dst[c] = 0.0f;
    }
}

// Transposing pack: dst[k*P + r] = src[r*ld + k] for r < rows, zeros for rows <= r < P.
static void pack_trans(const kernel *K, int rows, int kc, const float *src, long ld, float *dst, int P) {
#ifdef TZ_X86
    if (K->simd) tz_pack_t_avx2(rows, kc, src, ld, dst, P);
    else
#endif
    {
        (void)K;
        // Blocks of 16 k keep the P destination lines being filled resident in L1.
        for (int k0 = 0; k0 < kc; k0 += 16) {
            int k1 = k0 + 16 < kc ? k0 + 16 : kc;
            for (int r = 0; r < rows; r++)
                for (int k = k0; k < k1; k++) dst[(long)k * P + r] = src[r * ld + k];
        }
    }
    if (rows < P)
        for (int k = 0; k < kc; k++) memset(dst + (long)k * P + rows, 0, (size_t)(P - rows) * sizeof(float));
}

// ---- the blocked driver (one thread, one rectangle of C) --------------------------------------
typedef struct {
    const kernel *K;
    int ta, tb, M, N, Kd;
    float alpha, beta;
    const float *A, *B;
    float *C;
    const float *bias; // (N) or NULL, added by the first K block
    const float *Bpre; // op(B) packed by tz_sgemm_pack_b (then B is unused), or NULL
    long Npad; // N rounded up to the kernel's NR: the row length of a packed K block
    long lda, ldb, ldc;
    struct rect_share *share; // the threads' rectangles (gemm_task)
    tz_epilogue epi; // applied to each C tile by the last K block (TZ_EPI_NONE: nothing)
    float *D; // the epilogue's second matrix (M,N), row stride ldd
    long ldd;
} job;

// Block size for a dimension of n: the fewest blocks of at most bmax, evened out and rounded up
// to a multiple of q, so there is no thin leftover block.
static int even_block(int n, int bmax, int q) {
    int nb = (n + bmax - 1) / bmax;
    int b = (n + nb - 1) / nb;
    return (b + q - 1) / q * q;
}

// The K block size for a depth of KD: gemm_rect and a packed B (tz_sgemm_pack_b) must agree.
// A depth up to a third over KC stays one block: a second block stores, reloads and stores C
// again, which costs most when C is large (translation's readout gradient, 13,605 x 896 at a depth
// of ~485 target positions: 48.8 MB of C; one block measured +6% there, median of 6 pairs).
// Deeper products keep blocks of at most KC (512-deep blocks were 1% slower on the
// transformer's shapes, and on the readout's 896-deep forward).
static int k_block(const kernel *K, int KD) {
    if (KD <= K->kc + K->kc / 3) return KD;
    int kcb = even_block(KD, K->kc, 8);
    return kcb > KD ? KD : kcb;
}

// One NR-wide panel of op(B): rows pc:+kc, columns col:+n (n <= NR), zero-padded to NR.
static void pack_b_panel(const kernel *K, int tb, const float *B, long ldb, int pc, int kc, long col, int n,
                         float *dst) {
    if (!tb) pack_copy(n, kc, B + (long)pc * ldb + col, ldb, dst, K->nr);
    else pack_trans(K, n, kc, B + col * ldb + pc, ldb, dst, K->nr);
}

// The epilogue on a finished m x n block of C, D at the same place in D's rows: after each tile
// of kernels without epi_in_kernel (while it is in L1), and on all of C when no kernel runs
// (K = 0 or alpha = 0). (GELU with D NULL: C only, for a forward that records nothing.)
static void epilogue_tile(const kernel *K, tz_epilogue epi, int m, int n, float *C, long ldc, float *D, long ldd) {
    if (epi == TZ_EPI_GELU && K->gelu) {
        K->gelu(m, n, C, ldc, D, ldd);
        return;
    }
    for (int i = 0; i < m; i++) {
        float *restrict c = C + i * ldc, *restrict d = D ? D + i * ldd : NULL;
        float Phi, phi;
        if (epi == TZ_EPI_GELU && d)
            for (int j = 0; j < n; j++) {
                float v = c[j];
                tz_fnormal(v, &Phi, &phi);
                c[j] = v * Phi;
                d[j] = Phi + v * phi;
            }
        else if (epi == TZ_EPI_GELU)
            for (int j = 0; j < n; j++) {
                float v = c[j];
                tz_fnormal(v, &Phi, &phi);
                c[j] = v * Phi;
            }
        else if (epi == TZ_EPI_MUL)
            for (int j = 0; j < n; j++) c[j] *= d[j];
        else
            for (int j = 0; j < n; j++) c[j] += d[j];
    }
}

// The rows kernel reads MR rows of A in place, lda apart. When lda is a multiple of 4 KB the
// rows all fall in one set of the L1 cache (64 sets of 64-byte lines, 12 ways: 4 KB apart is the
// same set), and with the B panel streaming through they evict each other: a hidden size of
// 1024, 2048 or 4096 ran 20-25% slower than one of 1032 or 2056 (bench-gemm --case
// 2048,512,2048,0,1: 274 vs 343 GFLOP/s). Such an A is copied instead, unless fewer than four
// B panels would share the copy (few columns: 64 x 4096 x 1024 gained nothing from it).
static int rows_alias(long lda) { return lda % 1024 == 0; }
// The copy keeps A's rows (one memcpy each, ROWS_SKEW floats apart beyond kc, so they fall in
// different sets) for the rows kernel, instead of transposing them into the packed layout: the
// MLP's 128 x 4096 x 3072 forward (the 50 MB weight copied every call) 346-353 -> 364-368
// GFLOP/s, the d512 Transformer's 2048 x 512 x 2048 products about 1% faster (bench-gemm, the
// two forms alternating, 2 threads).
#define ROWS_SKEW 16

// B(pc:+kc, col:+nc) as the nc/NR panels of kc x NR the kernels read: packed into Bp, or found
// in a B packed already (tz_sgemm_pack_b).
static const float *b_block(const job *J, float *Bp, long col, int nc, int pc, int kc) {
    const int NR = J->K->nr;
    if (J->Bpre) return J->Bpre + (long)pc * J->Npad + col * kc;
    for (int jr = 0; jr < nc; jr += NR)
        pack_b_panel(J->K, J->tb, J->B, J->ldb, pc, kc, col + jr, nc - jr < NR ? nc - jr : NR, Bp + (long)jr * kc);
    return Bp;
}

// Rows row:+m of C(:, col:+nc) (m <= MR) against the B block Bp of depth pc:+kc, single-threaded.
// Ap: this thread's buffer for an A panel (MR x (kc + ROWS_SKEW)).
static void gemm_panel(const job *J, const float *Bp, long col, int nc, int pc, int kc, long row, int m, float *Ap) {
    const kernel *K = J->K;
    const int MR = K->mr, NR = K->nr;
    // The first K block applies beta and the bias; later ones accumulate into what it wrote.
    float beta = pc == 0 ? J->beta : 1.0f;
    const float *bias = pc == 0 && J->bias ? J->bias + col : NULL;
    // op(A) = A^T has the kernel's layout already (k-major rows of M): the SIMD kernels
    // broadcast from it in place, reading only their m rows. A row-major A is read in place too
    // by kernels that can (AVX-512: 3-5% on the transformer, 10% on attention's small products,
    // measured against packing it).
    const float *a = Ap;
    long sa = MR;
    ukr_fn ukr = K->ukr;
    if (!J->ta && K->ukr_rows && (!rows_alias(J->lda) || nc < 4 * NR))
        a = J->A + row * J->lda + pc, sa = J->lda, ukr = K->ukr_rows;
    else if (!J->ta && K->ukr_rows) {
        for (int i = 0; i < m; i++)
            memcpy(Ap + (long)i * (kc + ROWS_SKEW), J->A + (row + i) * J->lda + pc, sizeof(float) * kc);
        a = Ap, sa = kc + ROWS_SKEW, ukr = K->ukr_rows;
    } else if (!J->ta) pack_trans(K, m, kc, J->A + row * J->lda + pc, J->lda, Ap, MR);
    else if (K->simd) a = J->A + (long)pc * J->lda + row, sa = J->lda;
    else pack_copy(m, kc, J->A + (long)pc * J->lda + row, J->lda, Ap, MR);
    float *c = J->C + row * J->ldc + col;
    // The last K block finishes the tiles: the epilogue runs on each while it is in cache.
    const int fin = J->epi && pc + kc == J->Kd;
    float *d = fin && J->D ? J->D + row * J->ldd + col : NULL;
    for (int jr = 0; jr < nc; jr += NR) {
        int n = nc - jr < NR ? nc - jr : NR;
        // The epilogue's D tile (GELU writes it, MUL and ADD read it; it went out to memory since the
        // forward) is asked for while the kernel computes: the d512 Transformer's step
        // 0.35-0.86% faster, four in-process A/B runs.
        for (int i = 0; d && i < m; i++) {
            __builtin_prefetch(d + jr + i * J->ldd, 1, 3);
            __builtin_prefetch(d + jr + i * J->ldd + n - 1, 1, 3);
        }
        // The epilogue inside the kernel, before the tile's only store, instead of the tile
        // stored, loaded back and stored again (its cost over a plain product 3-4x smaller for
        // MUL, ~40% for GELU: commit messages, scale-history.md).
        const int in_kernel = fin && K->epi_in_kernel;
        ukr(m, n, kc, a, sa, Bp + (long)jr * kc, c + jr, J->ldc, J->alpha, beta, bias ? bias + jr : NULL,
            in_kernel ? J->epi : TZ_EPI_NONE, in_kernel && d ? d + jr : NULL, J->ldd);
        if (fin && !in_kernel) epilogue_tile(K, J->epi, m, n, c + jr, J->ldc, d ? d + jr : NULL, J->ldd);
    }
}

// C(i0:i1, j0:j1) of job J, single-threaded (a product on one thread).
static void gemm_rect(const job *J, int i0, int i1, int j0, int j1) {
    const kernel *K = J->K;
    const int MR = K->mr, NR = K->nr, M = i1 - i0, N = j1 - j0, KD = J->Kd;
    if (M <= 0 || N <= 0) return;
    int kcb = k_block(K, KD);
    int ncb = even_block(N, K->nc, NR);
    buffers *bf = &tls_buf;
    float *Ap = grow(&bf->a, &bf->acap, (size_t)(kcb + ROWS_SKEW) * MR);
    float *Bp = J->Bpre ? NULL : grow(&bf->b, &bf->bcap, (size_t)kcb * ncb);
    for (int jc = 0; jc < N; jc += ncb) {
        int nc = N - jc < ncb ? N - jc : ncb;
        for (int pc = 0; pc < KD; pc += kcb) {
            int kc = KD - pc < kcb ? KD - pc : kcb;
            const float *Bb = b_block(J, Bp, j0 + jc, nc, pc, kc);
            for (int ir = 0; ir < M; ir += MR)
                gemm_panel(J, Bb, j0 + jc, nc, pc, kc, i0 + ir, M - ir < MR ? M - ir : MR, Ap);
        }
    }
}

// Slice t of T of [0, n) cut on multiples of q: [*lo, *hi).
static void slice(int n, int q, int t, int T, int *lo, int *hi) {
    int units = (n + q - 1) / q, u0 = (int)((long)units * t / T), u1 = (int)((long)units * (t + 1) / T);
    *lo = u0 * q, *hi = u1 * q < n ? u1 * q : n;
}

// Threads for `work` multiply-adds (or element moves) cut into `units` slices: below ~64k,
// waking a second core costs more than it saves; inside a pool task (attention's per-head
// products) the pool is taken, and a split would run serially; never more than the slices.
static int threads_for(double work, int units) {
    int T = work < 65536.0 || tz_pool_in_task() ? 1 : tz_get_threads();
    return T < units ? T : units;
}

// ---- threads' rectangles, with the rest of a slow thread's rows taken by the others ----------
// Each thread starts on its rectangle of C (a slice of M, all of N; or all of M, a slice of N),
// working through its (jc, pc) blocks in order: B block, then the row panels against it. A
// thread done with its own takes the bottom rows of the rectangle with the most work left, for
// the victim's current block and all later ones (the victim stops at the new last row from then
// on): every element is still computed by one thread, in the same K order, so the bits do not
// depend on who does it. The two cores of this VM often run a product's halves at different
// speeds (the faster by up to 7 ms of 12, either one: a trace of the pool's calls,
// scale-history.md), which a fixed split waits out.
typedef struct {
    int lo, end; // rows [lo, end); end comes down when another thread takes the bottom rows
    int c0, c1; // columns [c0, c1), in blocks of ncb
    int ncb, phases; // blocks: (c1 - c0) / ncb of N times nk of K
    int phase; // the (jc, pc) block being worked, jc-major; == phases: done
    int next; // the first row of that block not started
} rect_work;

// A thread's rectangle and its lock, on a cache line of its own: the owner takes its lock once
// per row panel, which stays in its core's cache until another thread comes to take rows (one
// lock for all made the line travel between the cores at every panel: 0.5% of the d512 step).
typedef struct {
    _Alignas(64) atomic_flag lock;
    rect_work w;
} rect_slot;

struct rect_share {
    int nk, kcb; // K blocks
    rect_slot r[64];
};

static rect_work rect_of(const job *J, const struct rect_share *S, int i0, int i1, int j0, int j1) {
    int ncb = j1 > j0 ? even_block(j1 - j0, J->K->nc, J->K->nr) : 1;
    return (rect_work){.lo = i0,
                       .end = i1,
                       .c0 = j0,
                       .c1 = j1,
                       .ncb = ncb,
                       .phases = (j1 - j0 + ncb - 1) / ncb * S->nk,
                       .phase = 0,
                       .next = i0};
}

static atomic_long g_rows_taken; // times a thread took another's rows (tz_gemm_rows_taken)
long tz_gemm_rows_taken(void) { return atomic_load(&g_rows_taken); }

static void slot_lock(rect_slot *s) { tz_spin_lock(&s->lock); }
static void slot_unlock(rect_slot *s) { tz_spin_unlock(&s->lock); }

// Least multiply-adds a claim of row panels covers.
#define CLAIM_WORK (1L << 21)

// Works rectangle `me` to its end: every remaining block, its row panels claimed under its lock.
static void run_rect(const job *J, int me) {
    struct rect_share *S = J->share;
    rect_slot *sl = &S->r[me];
    rect_work *r = &sl->w;
    const int MR = J->K->mr, M = J->M;
    buffers *bf = &tls_buf;
    float *Ap = grow(&bf->a, &bf->acap, (size_t)(S->kcb + ROWS_SKEW) * MR);
    float *Bp = J->Bpre ? NULL : grow(&bf->b, &bf->bcap, (size_t)S->kcb * r->ncb);
    for (;;) {
        slot_lock(sl);
        int ph = r->phase, todo = ph < r->phases && r->next < r->end;
        if (!todo) r->phase = r->phases;
        slot_unlock(sl);
        if (!todo) return;
        int col = r->c0 + ph / S->nk * r->ncb, pc = ph % S->nk * S->kcb;
        int nc = r->c1 - col < r->ncb ? r->c1 - col : r->ncb, kc = J->Kd - pc < S->kcb ? J->Kd - pc : S->kcb;
        const float *Bb = b_block(J, Bp, col, nc, pc, kc);
        // Row panels claimed a few at a time where they are small: the lock's atomic exchange
        // waits for the panel's C stores to drain (the MLP at scale, panels of 12 x 128 x 384,
        // ran 1-2% slower claiming one at a time).
        long per = CLAIM_WORK / ((long)MR * nc * kc);
        const int step = MR * (per < 1 ? 1 : per > 16 ? 16 : (int)per);
        for (;;) {
            slot_lock(sl);
            int row = r->next, end = r->end;
            if (row >= end) r->phase = ph + 1, r->next = r->lo;
            else r->next = row + step < end ? row + step : end;
            slot_unlock(sl);
            if (row >= end) break;
            for (int last = row + step < end ? row + step : end; row < last; row += MR)
                gemm_panel(J, Bb, col, nc, pc, kc, row, M - row < MR ? M - row : MR, Ap);
        }
    }
}

// Work left in w: rows of the current block plus rows x later blocks, by block area.
static double work_left(const rect_work *w) {
    if (w->phase >= w->phases) return 0;
    return ((w->end - w->next) + (double)(w->end - w->lo) * (w->phases - w->phase - 1)) * (w->c1 - w->c0) / w->phases;
}

// Takes for `me` (done with its own) the bottom rows of the rectangle with the most work left,
// split so both have about as much; 0 when none is worth its B blocks packed again (two row
// panels a block at least). One lock at a time: the taken rows are nobody's while in between.
static int take_rows(const job *J, int me, int T) {
    struct rect_share *S = J->share;
    const int MR = J->K->mr;
    int v = -1;
    double most = 0;
    for (int t = 0; t < T; t++) {
        if (t == me) continue;
        slot_lock(&S->r[t]);
        double w = work_left(&S->r[t].w);
        slot_unlock(&S->r[t]);
        if (w > most) most = w, v = t;
    }
    if (v < 0) return 0;
    rect_work taken;
    int took = 0;
    slot_lock(&S->r[v]);
    rect_work *q = &S->r[v].w;
    if (q->phase < q->phases) {
        long L = q->phases - q->phase - 1;
        // (end - x)(L + 1) = (x - next) + (x - lo) L, x rounded up to a row panel
        long x = ((long)q->end * (L + 1) + q->next + (long)q->lo * L) / (2 * (L + 1));
        x = (x + MR - 1) / MR * MR;
        if (x < q->next) x = q->next;
        if (q->end - x >= 2 * MR) {
            taken = *q;
            taken.lo = taken.next = (int)x;
            q->end = (int)x;
            took = 1;
        }
    }
    slot_unlock(&S->r[v]);
    if (!took) return 0;
    slot_lock(&S->r[me]);
    S->r[me].w = taken;
    slot_unlock(&S->r[me]);
    atomic_fetch_add_explicit(&g_rows_taken, 1, memory_order_relaxed);
    return 1;
}

// Task t of T: its own rectangle, then others' rows while any are worth taking (products of
// at least SHARE_WORK multiply-adds; smaller ones keep their rectangles: the zoo's MLP, whose
// products are 8-33M, ran 1-2% slower a step with the rows shared, in-process A/B). The zoo's
// LSTM, GRU and hybrid steps 3.5-4% faster with it, the RNN 1%, the Transformer the same.
#define SHARE_WORK (1L << 26)
static void gemm_task(void *arg, int t, int T) {
    const job *J = arg;
    const rect_work *w = &J->share->r[t].w;
    if ((double)J->M * J->N * J->Kd < SHARE_WORK) {
        gemm_rect(J, w->lo, w->end, w->c0, w->c1);
        return;
    }
    run_rect(J, t);
    while (take_rows(J, t, T)) run_rect(J, t);
}

// Estimated cost (in cycles of one core, roughly) of the busiest thread for a split.
// FMAs count per 16-lane vector actually issued (ragged N edges waste lanes); packing counts one
// unit per element, which is roughly what a pack costs next to a 16-wide FMA.
static double split_cost(const job *J, int split_m, int T) {
    int M = J->M, N = J->N, mr = J->K->mr, q = J->Bpre ? J->K->nr : 16;
    int m = M, n = N;
    if (split_m) m = ((M + mr - 1) / mr + T - 1) / T * mr;
    else n = ((N + q - 1) / q + T - 1) / T * q;
    if (m > M) m = M;
    if (n > N) n = N;
    int nblocks_n = (n + J->K->nc - 1) / J->K->nc;
    double fma = (double)m * ((n + 15) / 16) * J->Kd;
    double pack = (J->Bpre ? 0.0 : (double)J->Kd * n) + (double)m * J->Kd * nblocks_n;
    return fma + pack;
}

// C = beta * C (+ bias) when there is nothing to multiply (beta 0 overwrites NaNs).
static void scale_only(int M, int N, float beta, float *C, int ldc, const float *bias) {
    for (int i = 0; i < M; i++) {
        float *c = C + (long)i * ldc;
        for (int j = 0; j < N; j++) c[j] = (beta == 0.0f ? 0.0f : beta * c[j]) + (bias ? bias[j] : 0.0f);
    }
}

// Runs a job on the pool: one rectangle of C per thread, or all of it here.
static void run_job(job *J) {
    int M = J->M, N = J->N, rows = (M + J->K->mr - 1) / J->K->mr, cols = (N + 15) / 16;
    int T = threads_for((double)M * N * J->Kd, rows > cols ? rows : cols); // MR-row or 16-column slices
    if (T <= 1) {
        gemm_rect(J, 0, M, 0, N);
        return;
    }
    const int split_m = split_cost(J, 1, T) <= split_cost(J, 0, T); // else split N
    // Rectangles cut on MR rows or 16 columns (NR with a packed B, so each starts on a panel).
    struct rect_share S; // only the first T slots are used (no 4 KB of zeros a product)
    S.kcb = k_block(J->K, J->Kd), S.nk = (J->Kd + S.kcb - 1) / S.kcb;
    for (int t = 0; t < T; t++) {
        int lo, hi;
        atomic_flag_clear(&S.r[t].lock);
        if (split_m) slice(M, J->K->mr, t, T, &lo, &hi), S.r[t].w = rect_of(J, &S, lo, hi, 0, N);
        else slice(N, J->Bpre ? J->K->nr : 16, t, T, &lo, &hi), S.r[t].w = rect_of(J, &S, 0, M, lo, hi);
    }
    J->share = &S;
    tz_pool_run(T, gemm_task, J);
}

// ---- small M against a large B: C^T = op(B)^T op(A)^T -----------------------------------------
// With few rows (an MLP's 128 contexts against a 4096 x 3072 weight), packing op(B) - the whole
// weight, every call - is amortised over only M rows (perf, h4096: that pack was 14.5% of the
// run's samples against 42% in the kernels). Computed transposed, the weight becomes the in-place A operand (no packing at all)
// and the small op(A) is the one packed, once for all N rows; the (N,M) result then goes into C
// with beta and the bias in one blocked transpose. Same K blocks, same order of the sums.
static int use_transposed(const kernel *Kr, int tb, int M, int N, int K) {
    // op(B)^T must be readable in place: B^T (k-major) by every SIMD kernel, B row-major by
    // kernels with a rows variant.
    if (!(tb ? Kr->ukr_rows != NULL : Kr->simd)) return 0;
    if (g_form >= 0) return g_form;
    // Packing op(B) costs ~K*N; the transposed form packs op(A) (~K*M) and moves C twice (~2MN).
    // The margin 1.5: the d256 Transformer's dW2 = dy^T H (256 x 1024, K 2048, at 2.0 against
    // 2.0) ran 343-352 GFLOP/s normal, 399-400 transposed (bench-gemm --threads 2, TZ_GEMM_FORM);
    // 256 x 768 and 256 x 2048 +15% and +6%; 384 x 1536 (3.1 against 2.95) the same either way,
    // while 512 x 2048 (4.2 against 4.7, left normal) is 5% slower transposed.
    double normal = (double)K * N, transposed = (double)K * M + 2.0 * M * N;
    return (double)M * N * K >= (double)(1 << 24) && normal > 1.5 * transposed;
}

// C(i0:i1, :) = Ct^T + beta * C (+ bias) (+ D: TZ_EPI_ADD's residual), Ct (N,M) dense; 32 x 32
// blocks keep both sides' lines in L1.
typedef struct {
    int M, N;
    const float *Ct;
    float beta;
    float *C;
    long ldc;
    const float *bias;
    const float *D;
    long ldd;
} transpose_job;

static void transpose_rows(const transpose_job *t, int r0, int r1) {
    const int M = t->M, N = t->N;
    const float *Ct = t->Ct, *bias = t->bias;
    const float beta = t->beta;
    for (int i0 = r0; i0 < r1; i0 += 32) {
        int i1 = i0 + 32 < r1 ? i0 + 32 : r1;
        for (int j0 = 0; j0 < N; j0 += 32) {
            int j1 = j0 + 32 < N ? j0 + 32 : N;
            for (int i = i0; i < i1; i++) {
                float *c = t->C + (long)i * t->ldc;
                for (int j = j0; j < j1; j++) {
                    float v = Ct[(long)j * M + i] + (bias ? bias[j] : 0.0f);
                    c[j] = beta == 0.0f ? v : v + beta * c[j];
                }
                // ADD's residual in a loop of its own: inside the one above, gcc vectorised that
                // loop along j, gathering Ct's column with scalar inserts: the d384 Transformer's
                // dW2 (384 x 1536, K 2048) ran 247 GFLOP/s instead of 388-395 (bench-gemm
                // --threads 2 --case 384,1536,2048,1,0, TZ_GEMM_FORM=transposed).
                if (t->D) {
                    const float *d = t->D + (long)i * t->ldd;
                    for (int j = j0; j < j1; j++) c[j] += d[j];
                }
            }
        }
    }
}

// Rows of C in 32-row slices, one contiguous run of slices per thread.
static void transpose_task(void *arg, int t, int T) {
    const transpose_job *J = arg;
    int lo, hi;
    slice(J->M, 32, t, T, &lo, &hi);
    transpose_rows(J, lo, hi);
}

static void transpose_into(int M, int N, const float *Ct, float beta, float *C, long ldc, const float *bias,
                           const float *D, long ldd) {
    transpose_job J = {M, N, Ct, beta, C, ldc, bias, D, ldd};
    int T = threads_for((double)M * N, (M + 31) / 32);
    if (T <= 1) transpose_rows(&J, 0, M);
    else tz_pool_run(T, transpose_task, &J);
}

// Row-major C(M,N) = alpha * op(A)(M,K) * op(B)(K,N) + beta * C (+ bias), then the epilogue;
// see gemm.h.
void tz_sgemm_epi(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                  float beta, float *C, int ldc, const float *bias, tz_epilogue epi, float *D, int ldd) {
    if ((epi == TZ_EPI_MUL || epi == TZ_EPI_ADD) && !D)
        tz_fail("gemm: the %s epilogue needs D", epi == TZ_EPI_MUL ? "MUL" : "ADD");
    if (M <= 0 || N <= 0) return;
    init();
    if (K <= 0 || alpha == 0.0f) {
        scale_only(M, N, beta, C, ldc, bias);
        if (epi) epilogue_tile(g_kernel, epi, M, N, C, ldc, D, ldd);
        return;
    }
    // (The transposed form finishes C in its copy, not tile by tile: no epilogue there but ADD's.)
    if ((!epi || epi == TZ_EPI_ADD) && use_transposed(g_kernel, tb, M, N, K)) {
        buffers *bf = &tls_buf; // this thread's: pool workers use their own a and b only
        float *Ct = grow(&bf->ct, &bf->ctcap, (size_t)N * M);
        job J = {.K = g_kernel,
                 .ta = !tb,
                 .tb = !ta,
                 .M = N,
                 .N = M,
                 .Kd = K,
                 .alpha = alpha,
                 .A = B,
                 .B = A,
                 .C = Ct,
                 .lda = ldb,
                 .ldb = lda,
                 .ldc = M};
        run_job(&J);
        transpose_into(M, N, Ct, beta, C, ldc, bias, epi == TZ_EPI_ADD ? D : NULL, ldd);
        return;
    }
    job J = {.K = g_kernel,
             .ta = ta,
             .tb = tb,
             .M = M,
             .N = N,
             .Kd = K,
             .alpha = alpha,
             .beta = beta,
             .A = A,
             .B = B,
             .C = C,
             .bias = bias,
             .lda = lda,
             .ldb = ldb,
             .ldc = ldc,
             .epi = epi,
             .D = D,
             .ldd = ldd};
    run_job(&J);
}

void tz_sgemm_bias(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                   float beta, float *C, int ldc, const float *bias) {
    tz_sgemm_epi(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias, TZ_EPI_NONE, NULL, 0);
}

// ---- a B packed once for many products (recurrent weights) ----------------------------------
// Layout: op(B) (K,N) in the K blocks gemm_rect uses for this K, each block as the NR-wide
// panels of kc x NR it would have packed, zero-padded to Npad columns: block pc starts at
// pc * Npad, its panel jr at pc * Npad + jr * kc.
size_t tz_sgemm_packed_size(int K, int N) {
    init();
    int NR = g_kernel->nr;
    return (size_t)(K > 0 ? K : 0) * (size_t)((N + NR - 1) / NR * NR);
}

void tz_sgemm_pack_b(int tb, int K, int N, const float *B, int ldb, float *Bp) {
    init();
    const kernel *Kr = g_kernel;
    const int NR = Kr->nr, kcb = k_block(Kr, K);
    const long Npad = (N + NR - 1) / NR * NR;
    for (int pc = 0; pc < K; pc += kcb) {
        int kc = K - pc < kcb ? K - pc : kcb;
        for (int jr = 0; jr < N; jr += NR)
            pack_b_panel(Kr, tb, B, ldb, pc, kc, jr, N - jr < NR ? N - jr : NR, Bp + (long)pc * Npad + (long)jr * kc);
    }
}

void tz_sgemm_packed(int ta, int M, int N, int K, float alpha, const float *A, int lda, const float *Bp, float beta,
                     float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    init();
    if (K <= 0 || alpha == 0.0f) {
        scale_only(M, N, beta, C, ldc, NULL);
        return;
    }
    const int NR = g_kernel->nr;
    job J = {.K = g_kernel,
             .ta = ta,
             .M = M,
             .N = N,
             .Kd = K,
             .alpha = alpha,
             .beta = beta,
             .A = A,
             .C = C,
             .Bpre = Bp,
             .Npad = (N + NR - 1) / NR * NR,
             .lda = lda,
             .ldc = ldc};
    run_job(&J);
}

void tz_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc) {
    tz_sgemm_bias(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

// Row-major C(M,N) = alpha * op(A)(M,K) * op(B)(K,N) + beta * C (+ bias) in double: i-k-j
// loops, so the inner loop runs along rows of B and C (or along K for both operands when B is
// transposed).
void tz_dgemm_bias(int ta, int tb, int M, int N, int K, double alpha, const double *A, int lda, const double *B,
                   int ldb, double beta, double *C, int ldc, const double *bias) {
    for (int i = 0; i < M; i++) {
        double *c = C + (long)i * ldc;
        for (int j = 0; j < N; j++) c[j] = beta == 0.0 ? 0.0 : beta * c[j];
        if (alpha != 0.0 && !tb) {
            for (int k = 0; k < K; k++) {
                double a = alpha * (ta ? A[(long)k * lda + i] : A[(long)i * lda + k]);
                const double *b = B + (long)k * ldb;
                for (int j = 0; j < N; j++) c[j] += a * b[j];
            }
        } else if (alpha != 0.0) {
            for (int j = 0; j < N; j++) {
                const double *b = B + (long)j * ldb;
                double s = 0;
                if (!ta)
                    for (int k = 0; k < K; k++) s += A[(long)i * lda + k] * b[k];
                else
                    for (int k = 0; k < K; k++) s += A[(long)k * lda + i] * b[k];
                c[j] += alpha * s;
            }
        }
        if (bias)
            for (int j = 0; j < N; j++) c[j] += bias[j];
    }
}

// The epilogue in double with libm's erf and exp (the float64 build's GELU, fastmath.h).
void tz_dgemm_epi(int ta, int tb, int M, int N, int K, double alpha, const double *A, int lda, const double *B, int ldb,
                  double beta, double *C, int ldc, const double *bias, tz_epilogue epi, double *D, int ldd) {
    tz_dgemm_bias(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias);
    for (int i = 0; epi && i < M; i++) {
        double *c = C + (long)i * ldc, *d = D ? D + (long)i * ldd : NULL;
        for (int j = 0; j < N; j++) {
            if (epi == TZ_EPI_MUL || epi == TZ_EPI_ADD) {
                c[j] = epi == TZ_EPI_MUL ? c[j] * d[j] : c[j] + d[j];
                continue;
            }
            double v = c[j], Phi = 0.5 * (1 + erf(v * M_SQRT1_2)),
                   phi = 0.5 * M_2_SQRTPI * M_SQRT1_2 * exp(-0.5 * v * v);
            c[j] = v * Phi;
            if (d) d[j] = Phi + v * phi;
        }
    }
}

void tz_dgemm(int ta, int tb, int M, int N, int K, double alpha, const double *A, int lda, const double *B, int ldb,
              double beta, double *C, int ldc) {
    tz_dgemm_bias(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

// The float64 "packing" is op(B) as a dense row-major (K,N).
size_t tz_dgemm_packed_size(int K, int N) { return (size_t)(K > 0 ? K : 0) * (size_t)(N > 0 ? N : 0); }

void tz_dgemm_pack_b(int tb, int K, int N, const double *B, int ldb, double *Bp) {
    for (int k = 0; k < K; k++)
        for (int j = 0; j < N; j++) Bp[(long)k * N + j] = tb ? B[(long)j * ldb + k] : B[(long)k * ldb + j];
}

void tz_dgemm_packed(int ta, int M, int N, int K, double alpha, const double *A, int lda, const double *Bp, double beta,
                     double *C, int ldc) {
    tz_dgemm(ta, 0, M, N, K, alpha, A, lda, Bp, N, beta, C, ldc);
}
