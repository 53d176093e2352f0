// gemm_avx512.c: the AVX-512 sgemm micro-kernel (compiled for AVX-512 whatever -march says;
// gemm.c only calls it after __builtin_cpu_supports says the CPU has it).
//
// C tile (m x n, m <= MR, n <= NR) = alpha * Ap * Bp + beta * C (+ bias, a row added to each
// row of the tile, when not NULL), then gemm.h's epilogue `epi` in registers before the store
// (GELU: C = gelu, D = gelu' unless D is NULL; MUL: C *= D; ADD: C += D), with
//   Ap k-major: Ap[k*sa + i], i < m   (broadcast, one row of C per element): packed (sa = MR),
//                                      or op(A) = A^T read in place (sa = lda);
//   or, tz_ukr_avx512_rows, row-major:  Ap[i*sa + k] (op(A) = A read in place, sa = lda)
//   Bp packed k-major: Bp[k*NR + j], zero-padded to a multiple of 16 past n (vector loads)
// MR x NR = 12 x 32: 24 zmm accumulators + 2 B vectors, A broadcast straight from memory.
// Zen4 issues one 512-bit FMA per cycle, Zen5 two, with 4 cycles latency: 24 independent chains
// hide the latency either way (>= 8 needed), and 2 vector loads + 12 broadcasts per 24 FMAs stay
// inside the load bandwidth. The A micro-panel (12 x KC) sits in L1, B panels stream from L2.
// (The test machine, with VP2INTERSECT, reaches ~200 GFLOP/s per core: two FMAs per cycle.)
#include "gemm.h" // tz_epilogue (before the target region: nothing of it is AVX-512 code)

#ifdef __clang__ // clang has no target pragma (the fuzz build): the same through an attribute
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,fma")
#endif
#include <immintrin.h>

#define MR 12
#define NV 2 // vectors of 16 floats per row of the tile
#define NR (16 * NV)
#define C_AHEAD 24 // depths before the end of a tile's K loop at which its C lines are asked for (tile)

void tz_ukr_avx512(int m, int n, int kc, const float *Ap, long sa, const float *Bp, float *C, long ldc, float alpha,
                   float beta, const float *bias, int epi, float *D, long ldd);
void tz_ukr_avx512_rows(int m, int n, int kc, const float *A, long lda, const float *Bp, float *C, long ldc,
                        float alpha, float beta, const float *bias, int epi, float *D, long ldd);

// GELU: y = x Phi(x) and its derivative d = Phi(x) + x phi(x), by the formulas of tz_fnormal
// (fastmath.h: A&S 7.1.26, one exp for Phi and phi) written with FMAs, 2^n by scalef and
// 1 / (1 + p a) by rcp14 and one Newton step instead of a division: the vectorised C took ~56
// cycles a vector (mlp/transformer d256: the GELU product 37% slower than without its
// epilogue, d512 24%).
static inline __m512 exp_neg(__m512 x) { // exp(x), x <= 0: 0 below -87, as tz_fexp
    __mmask16 under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_LT_OQ);
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145752f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860677e-6f), r);
    __m512 p = _mm512_set1_ps(0.00138888892f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.00833333377f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.0416666679f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.166666672f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_maskz_scalef_ps((__mmask16)~under, p, n);
}

static inline __m512 gelu_vec(__m512 x, __m512 *d) {
    const __m512 sign = _mm512_set1_ps(-0.0f), one = _mm512_set1_ps(1.0f), half = _mm512_set1_ps(0.5f);
    // a = |x| / sqrt 2 (at most 10: erf is 1 in float long before, and inf stays finite)
    __m512 a =
        _mm512_min_ps(_mm512_mul_ps(_mm512_andnot_ps(sign, x), _mm512_set1_ps(0.707106781f)), _mm512_set1_ps(10.0f));
    __m512 den = _mm512_fmadd_ps(a, _mm512_set1_ps(0.3275911f), one);
    __m512 t = _mm512_rcp14_ps(den);
    t = _mm512_mul_ps(t, _mm512_fnmadd_ps(den, t, _mm512_set1_ps(2.0f)));
    __m512 e = exp_neg(_mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), a), a));
    __m512 q = _mm512_set1_ps(1.061405429f);
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(-1.453152027f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(1.421413741f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(-0.284496736f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(0.254829592f));
    __m512 y = _mm512_fnmadd_ps(_mm512_mul_ps(t, q), e, one); // erf(a)
    y = _mm512_xor_ps(y, _mm512_and_ps(x, sign)); // erf(x / sqrt 2), odd
    __m512 Phi = _mm512_fmadd_ps(y, half, half);
    __m512 phi = _mm512_mul_ps(e, _mm512_set1_ps(0.398942280f)); // 1 / sqrt(2 pi)
    *d = _mm512_fmadd_ps(x, phi, Phi);
    return _mm512_mul_ps(x, Phi);
}

// GELU on a finished tile the kernel left in buf (rows NR apart): C gets gelu, D (unless NULL)
// gelu'. Out of line, called once the accumulators are dead, so they are never saved across it.
static __attribute__((noinline)) void gelu_tile(int m, int nv, __mmask16 last, const float *buf, float *C, long ldc,
                                                float *D, long ldd) {
    for (int i = 0; i < m; i++)
        for (int v = 0; v < nv; v++) {
            __mmask16 k = v == nv - 1 ? last : (__mmask16)0xFFFF;
            __m512 d, y = gelu_vec(_mm512_load_ps(buf + i * NR + 16 * v), &d);
            _mm512_mask_storeu_ps(C + i * ldc + 16 * v, k, y);
            if (D) _mm512_mask_storeu_ps(D + i * ldd + 16 * v, k, d);
        }
}

// A full MR x NR tile, alpha applied, its flags constants: C (+ C if add_c) (+ bias), then
// the epilogue e (GELU: into buf, for gelu_tile).
static inline __attribute__((always_inline)) void finish_full(__m512 acc[MR][NV], float *restrict C, long ldc,
                                                              const int add_c, const float *restrict bias, const int e,
                                                              const float *restrict D, long ldd, float *restrict buf) {
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) bv[v] = bias ? _mm512_loadu_ps(bias + 16 * v) : _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            float *c = C + i * ldc + 16 * v;
            __m512 r = acc[i][v];
            if (add_c) r = _mm512_add_ps(_mm512_loadu_ps(c), r);
            if (bias) r = _mm512_add_ps(r, bv[v]);
            if (e == TZ_EPI_MUL) r = _mm512_mul_ps(r, _mm512_loadu_ps(D + i * ldd + 16 * v));
            if (e == TZ_EPI_ADD) r = _mm512_add_ps(r, _mm512_loadu_ps(D + i * ldd + 16 * v));
            if (e == TZ_EPI_GELU) _mm512_store_ps(buf + i * NR + 16 * v, r);
            else _mm512_storeu_ps(c, r);
        }
}

// One (m, nv) instance: m rows, nv vectors per row, the last vector masked by `last`.
// always_inline + constant m/nv: the compiler unrolls everything and keeps acc in registers.
static inline __attribute__((always_inline)) void tile(const int m, const int nv, const int rows, int kc,
                                                       const float *restrict Ap, long sa, const float *restrict Bp,
                                                       float *restrict C, long ldc, float alpha, float beta,
                                                       const float *restrict bias, int epi, float *restrict D, long ldd,
                                                       __mmask16 last) {
    // rows: op(A) is row-major A read in place, a(i,k) = Ap[i*sa + k] (sa = lda), through three
    // row pointers and the offsets 0, lda, 2 lda, 3 lda (x86 addressing does the rest).
    const float *a4 = Ap + 4 * sa, *a8 = Ap + 8 * sa;
    __m512 acc[MR][NV];
#pragma GCC unroll 16
    for (int i = 0; i < m; i++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) acc[i][v] = _mm512_setzero_ps();
    // C is touched only at the end: its lines are asked for C_AHEAD depths before it (~300 cycles,
    // more than an L3 hit takes). Asked for at the start instead, they came into L1 only to be
    // pushed out again by the A and B panels streaming through before the end needed them: the
    // d512 Transformer's step 0.9-1.0% slower, d384 0.3-1.3% (in-process A/B, the two
    // alternating every two steps; 48 and 96 depths ahead measured 0.4% and 1.3% slower than 24,
    // 12 0.2%; the zoo's Transformer, MLP, RNN, LSTM and GRU alike or faster).
    const int k_fetch_c = kc > C_AHEAD ? kc - C_AHEAD : 0;
#pragma GCC unroll 2
    for (int k = 0; k < kc; k++) {
        if (k == k_fetch_c)
            for (int i = 0; i < m; i++) {
                _mm_prefetch((const char *)(C + i * ldc), _MM_HINT_T0);
                _mm_prefetch((const char *)(C + i * ldc + 16 * (nv - 1)), _MM_HINT_T0);
            }
        __m512 b[NV];
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) b[v] = _mm512_load_ps(Bp + 16 * v);
        _mm_prefetch((const char *)(Bp + 8 * NR), _MM_HINT_T0);
#pragma GCC unroll 16
        for (int i = 0; i < m; i++) {
            __m512 a = rows ? _mm512_set1_ps((i < 4 ? Ap : i < 8 ? a4 : a8)[(i & 3) * sa]) : _mm512_set1_ps(Ap[i]);
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++) acc[i][v] = _mm512_fmadd_ps(a, b[v], acc[i][v]);
        }
        if (rows) Ap++, a4++, a8++;
        else Ap += sa;
        Bp += NR;
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    // Full tiles in the combinations products use (a plain K block that overwrites or adds; the
    // first with a bias; the last with GELU, MUL or ADD): the same operations in the same order
    // as below, without its tests of beta, bias and epi at every vector and its masks. Steps
    // faster (in-process A/B, the paths on and off alternating): the d512 Transformer 2.4-2.5%,
    // d384 0.8%, the zoo's Transformer 0.5% and MLP 1.4% with alpha 1; then any alpha (the
    // attention's 1 / sqrt(D) products) d384 another 0.6-0.7%, the zoo's Transformer 0.8%.
    const int add_c = beta == 1.0f;
    if (m == MR && nv == NV && last == (__mmask16)0xFFFF && (beta == 0.0f || add_c) &&
        (bias ? !add_c && epi != TZ_EPI_MUL
              : epi == TZ_EPI_NONE || epi == TZ_EPI_ADD || (epi == TZ_EPI_MUL && !add_c))) {
        if (alpha != 1.0f)
#pragma GCC unroll 16
            for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++) acc[i][v] = _mm512_mul_ps(acc[i][v], va);
        if (!bias && epi == TZ_EPI_NONE) {
            if (add_c) finish_full(acc, C, ldc, 1, NULL, TZ_EPI_NONE, NULL, 0, NULL);
            else finish_full(acc, C, ldc, 0, NULL, TZ_EPI_NONE, NULL, 0, NULL);
        } else if (bias && epi == TZ_EPI_NONE) finish_full(acc, C, ldc, 0, bias, TZ_EPI_NONE, NULL, 0, NULL);
        else if (bias && epi == TZ_EPI_GELU) {
            float buf[MR * NR] __attribute__((aligned(64)));
            finish_full(acc, C, ldc, 0, bias, TZ_EPI_GELU, NULL, 0, buf);
            gelu_tile(m, nv, last, buf, C, ldc, D, ldd);
        } else if (bias) finish_full(acc, C, ldc, 0, bias, TZ_EPI_ADD, D, ldd, NULL);
        else if (epi == TZ_EPI_ADD && add_c) finish_full(acc, C, ldc, 1, NULL, TZ_EPI_ADD, D, ldd, NULL);
        else if (epi == TZ_EPI_ADD) finish_full(acc, C, ldc, 0, NULL, TZ_EPI_ADD, D, ldd, NULL);
        else finish_full(acc, C, ldc, 0, NULL, TZ_EPI_MUL, D, ldd, NULL);
        return;
    }
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++)
        bv[v] =
            bias ? _mm512_maskz_loadu_ps(v == nv - 1 ? last : (__mmask16)0xFFFF, bias + 16 * v) : _mm512_setzero_ps();
    // GELU: the finished tile goes to buf, not C (C is written once, by gelu_tile, from L1).
    float buf[MR * NR] __attribute__((aligned(64)));
#pragma GCC unroll 16
    for (int i = 0; i < m; i++) {
        float *c = C + i * ldc;
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) {
            __mmask16 k = v == nv - 1 ? last : (__mmask16)0xFFFF;
            __m512 r = _mm512_mul_ps(acc[i][v], va);
            // beta == 0: C is write-only, never read (it may hold NaNs).
            if (beta != 0.0f) r = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, c + 16 * v), vb, r);
            if (bias) r = _mm512_add_ps(r, bv[v]);
            if (epi == TZ_EPI_MUL) r = _mm512_mul_ps(r, _mm512_maskz_loadu_ps(k, D + i * ldd + 16 * v));
            if (epi == TZ_EPI_ADD) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(k, D + i * ldd + 16 * v));
            if (epi == TZ_EPI_GELU) _mm512_store_ps(buf + i * NR + 16 * v, r);
            else _mm512_mask_storeu_ps(c + 16 * v, k, r);
        }
    }
    if (epi == TZ_EPI_GELU) gelu_tile(m, nv, last, buf, C, ldc, D, ldd);
}

// Rows beyond MR cannot happen; the MIN keeps the dead cases of the switch in bounds.
#define RM(x) ((x) < MR ? (x) : MR)
#define ROWS(NVV, RW) \
    switch (m) { \
        case 1: tile(RM(1), NVV, RW, kc, Ap, sa, Bp, C, ldc, alpha, beta, bias, epi, D, ldd, last); break; \
        case 2: tile(RM(2), NVV, RW, kc, Ap, sa, Bp, C, ldc, alpha, beta, bias, epi, D, ldd, last); break; \
        case 3: tile(RM(3), NVV, RW, kc, Ap, sa, Bp, C, ldc, alpha, beta, bias, epi, D, ldd, last); break; \
        case 4: tile(RM(4), NVV, RW, kc, Ap, sa, Bp, C, ldc, alpha, beta, bias, epi, D, ldd, last); break; \
        case 5: tile(RM(5), NVV, RW, kc, Ap, sa, Bp, C, ldc, alpha, beta, bias, epi, D, ldd, last); break; \
        case 6: tile(RM(6), NVV, RW, kc, Ap, sa, Bp, C, ldc, alpha, beta, bias, epi, D, ldd, last); break; \
        case 7: tile(RM(7), NVV, RW, kc, Ap, sa, Bp, C, ldc, alpha, beta, bias, epi, D, ldd, last); break; \
        case 8: tile(RM(8), NVV, RW, kc, Ap, sa, Bp, C, ldc, alpha, beta, bias, epi, D, ldd, last); break; \
        case 9: tile(RM(9), NVV, RW, kc, Ap, sa, Bp, C, ldc, alpha, beta, bias, epi, D, ldd, last); break; \
        case 10: tile(RM(10), NVV, RW, kc, Ap, sa, Bp, C, ldc, alpha, beta, bias, epi, D, ldd, last); break; \
        case 11: tile(RM(11), NVV, RW, kc, Ap, sa, Bp, C, ldc, alpha, beta, bias, epi, D, ldd, last); break; \
        default: tile(RM(12), NVV, RW, kc, Ap, sa, Bp, C, ldc, alpha, beta, bias, epi, D, ldd, last); break; \
    }

// C(m,n) tile: m in [1,MR], n in [1,NR]; Ap (kc x MR) and Bp (kc x NR) packed, Bp 64-byte aligned.
void tz_ukr_avx512(int m, int n, int kc, const float *Ap, long sa, const float *Bp, float *C, long ldc, float alpha,
                   float beta, const float *bias, int epi, float *D, long ldd) {
    int nv = (n + 15) / 16;
    __mmask16 last = (__mmask16)(0xFFFFu >> (16 * nv - n));
    if (nv >= 2) {
        ROWS(2, 0)
    } else {
        ROWS(1, 0)
    }
}

// The same with op(A) = A row-major in place (no packing): a(i,k) = A[i*lda + k].
void tz_ukr_avx512_rows(int m, int n, int kc, const float *Ap, long sa, const float *Bp, float *C, long ldc,
                        float alpha, float beta, const float *bias, int epi, float *D, long ldd) {
    int nv = (n + 15) / 16;
    __mmask16 last = (__mmask16)(0xFFFFu >> (16 * nv - n));
    if (nv >= 2) {
        ROWS(2, 1)
    } else {
        ROWS(1, 1)
    }
}

// GELU on a tile in memory (gemm.c's epilogue_tile, where no kernel ran: a product with K = 0).
void tz_epi_gelu_avx512(int m, int n, float *C, long ldc, float *D, long ldd) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j += 16) {
            __mmask16 k = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
            float *c = C + i * ldc + j;
            __m512 d, y = gelu_vec(_mm512_maskz_loadu_ps(k, c), &d);
            _mm512_mask_storeu_ps(c, k, y);
            if (D) _mm512_mask_storeu_ps(D + i * ldd + j, k, d);
        }
}

#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
