// gemm_avx2.c: the AVX2+FMA sgemm micro-kernel and the SIMD transposing pack (used by both the
// AVX2 and the AVX-512 paths). Compiled for AVX2 whatever -march says; gemm.c only calls these
// after __builtin_cpu_supports says the CPU has AVX2 and FMA.
//
// Micro-kernel: C tile (m x n, m <= MR, n <= NR) = alpha * Ap * Bp + beta * C (+ bias, a row
// added to each row, when not NULL), with
//   Ap k-major: Ap[k*sa + i] (packed: sa = MR; or A^T in place: sa = lda); Bp packed k-major:
//   Bp[k*NR + j], zero-padded past n.
// MR x NR = 6 x 16: 12 ymm accumulators + 2 B vectors + 1 broadcast = 15 of the 16 registers.
// Two FMA pipes x 4 cycles latency need >= 8 independent chains; 12 is enough.
#ifdef __clang__ // clang has no target pragma (the fuzz build): the same through an attribute
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
#include <immintrin.h>

#define MR 6
#define NV 2 // vectors of 8 floats per row of the tile
#define NR (8 * NV)

void tz_ukr_avx2(int m, int n, int kc, const float *Ap, long sa, const float *Bp, float *C, long ldc, float alpha,
                 float beta, const float *bias, int epi, float *D, long ldd);
void tz_pack_t_avx2(int rows, int kc, const float *src, long ld, float *dst, int P);

static inline __attribute__((always_inline)) void tile(const int m, const int nv, int kc, const float *restrict Ap,
                                                       long sa, const float *restrict Bp, float *restrict C, long ldc,
                                                       float alpha, float beta, const float *restrict bias,
                                                       __m256i last) {
    __m256 acc[MR][NV];
#pragma GCC unroll 8
    for (int i = 0; i < m; i++) {
        _mm_prefetch((const char *)(C + i * ldc), _MM_HINT_T0);
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) acc[i][v] = _mm256_setzero_ps();
    }
#pragma GCC unroll 2
    for (int k = 0; k < kc; k++) {
        __m256 b[NV];
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) b[v] = _mm256_load_ps(Bp + 8 * v);
#pragma GCC unroll 8
        for (int i = 0; i < m; i++) {
            __m256 a = _mm256_broadcast_ss(Ap + i);
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++) acc[i][v] = _mm256_fmadd_ps(a, b[v], acc[i][v]);
        }
        Ap += sa;
        Bp += NR;
    }
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    const int partial = _mm256_movemask_ps(_mm256_castsi256_ps(last)) != 0xFF;
    __m256 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++)
        bv[v] = !bias                    ? _mm256_setzero_ps()
                : v == nv - 1 && partial ? _mm256_maskload_ps(bias + 8 * v, last)
                                         : _mm256_loadu_ps(bias + 8 * v);
#pragma GCC unroll 8
    for (int i = 0; i < m; i++) {
        float *c = C + i * ldc;
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) {
            __m256 r = _mm256_mul_ps(acc[i][v], va);
            if (v == nv - 1 && partial) {
                // Masked load/store are slow on AMD: only the ragged last vector uses them.
                if (beta != 0.0f) r = _mm256_fmadd_ps(_mm256_maskload_ps(c + 8 * v, last), vb, r);
                if (bias) r = _mm256_add_ps(r, bv[v]);
                _mm256_maskstore_ps(c + 8 * v, last, r);
            } else {
                if (beta != 0.0f) r = _mm256_fmadd_ps(_mm256_loadu_ps(c + 8 * v), vb, r);
                if (bias) r = _mm256_add_ps(r, bv[v]);
                _mm256_storeu_ps(c + 8 * v, r);
            }
        }
    }
}

#define RM(x) ((x) < MR ? (x) : MR)
#define ROWS(NVV) \
    switch (m) { \
        case 1: tile(RM(1), NVV, kc, Ap, sa, Bp, C, ldc, alpha, beta, bias, last); break; \
        case 2: tile(RM(2), NVV, kc, Ap, sa, Bp, C, ldc, alpha, beta, bias, last); break; \
        case 3: tile(RM(3), NVV, kc, Ap, sa, Bp, C, ldc, alpha, beta, bias, last); break; \
        case 4: tile(RM(4), NVV, kc, Ap, sa, Bp, C, ldc, alpha, beta, bias, last); break; \
        case 5: tile(RM(5), NVV, kc, Ap, sa, Bp, C, ldc, alpha, beta, bias, last); break; \
        default: tile(RM(6), NVV, kc, Ap, sa, Bp, C, ldc, alpha, beta, bias, last); break; \
    }

// C(m,n) tile: m in [1,MR], n in [1,NR]; Ap (kc x MR) and Bp (kc x NR) packed, Bp 32-byte aligned.
void tz_ukr_avx2(int m, int n, int kc, const float *Ap, long sa, const float *Bp, float *C, long ldc, float alpha,
                 float beta, const float *bias, int epi, float *D, long ldd) {
    (void)epi, (void)D, (void)ldd; // epilogue_tile applies the epilogue after it
    int nv = (n + 7) / 8;
    int rem = n - 8 * (nv - 1); // lanes used in the last vector, 1..8
    __m256i last = _mm256_cmpgt_epi32(_mm256_set1_epi32(rem), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    if (nv >= 2) {
        ROWS(2)
    } else {
        ROWS(1)
    }
}

// 8x8 transpose in registers: r[i] holds row i on entry, column i on exit.
static inline __attribute__((always_inline)) void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int h = 0; h < 2; h++) { // rows 0-3 and rows 4-7
        u[4 * h + 0] = _mm256_shuffle_ps(t[4 * h + 0], t[4 * h + 2], 0x44);
        u[4 * h + 1] = _mm256_shuffle_ps(t[4 * h + 0], t[4 * h + 2], 0xEE);
        u[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
        u[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

// Transposing pack: dst[k*P + r] = src[r*ld + k] for r < rows, k < kc (rows <= P).
// Used for A when ta == 0 (rows of A become broadcast columns) and B when tb != 0. Rows come in
// groups of 8 (then one of 4) transposed in registers, each load being 8 consecutive k of one
// row; the leftover rows and k fall back to scalar copies.
void tz_pack_t_avx2(int rows, int kc, const float *src, long ld, float *dst, int P) {
    int r0 = 0;
    for (; r0 + 8 <= rows; r0 += 8) {
        const float *s = src + r0 * ld;
        int k = 0;
        for (; k + 8 <= kc; k += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(s + i * ld + k);
            transpose8(r);
            for (int i = 0; i < 8; i++) _mm256_storeu_ps(dst + (long)(k + i) * P + r0, r[i]);
        }
        for (; k < kc; k++)
            for (int i = 0; i < 8; i++) dst[(long)k * P + r0 + i] = s[i * ld + k];
    }
    if (r0 + 4 <= rows) { // a group of 4 (MR = 12 leaves one): 4 x 8 blocks
        const float *s = src + r0 * ld;
        int k = 0;
        for (; k + 8 <= kc; k += 8) {
            __m256 a = _mm256_loadu_ps(s + k), b = _mm256_loadu_ps(s + ld + k);
            __m256 c = _mm256_loadu_ps(s + 2 * ld + k), d = _mm256_loadu_ps(s + 3 * ld + k);
            __m256 t0 = _mm256_unpacklo_ps(a, b), t1 = _mm256_unpackhi_ps(a, b);
            __m256 t2 = _mm256_unpacklo_ps(c, d), t3 = _mm256_unpackhi_ps(c, d);
            __m256 u[4] = {_mm256_shuffle_ps(t0, t2, 0x44), _mm256_shuffle_ps(t0, t2, 0xEE),
                           _mm256_shuffle_ps(t1, t3, 0x44), _mm256_shuffle_ps(t1, t3, 0xEE)};
            for (int i = 0; i < 4; i++) { // u[i] = columns k+i (low half) and k+4+i (high half)
                _mm_storeu_ps(dst + (long)(k + i) * P + r0, _mm256_castps256_ps128(u[i]));
                _mm_storeu_ps(dst + (long)(k + 4 + i) * P + r0, _mm256_extractf128_ps(u[i], 1));
            }
        }
        for (; k < kc; k++)
            for (int i = 0; i < 4; i++) dst[(long)k * P + r0 + i] = s[i * ld + k];
        r0 += 4;
    }
    for (; r0 < rows; r0++)
        for (int k = 0; k < kc; k++) dst[(long)k * P + r0] = src[r0 * ld + k];
}

#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
