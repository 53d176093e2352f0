// gemm.h: our own dense matrix multiply, the heart of tapezoo's speed.
//
// Row-major:  C = alpha * op(A) * op(B) + beta * C
//   op(A) is (M,K): A is stored (M,K) with row stride lda when ta == 0, (K,M) when ta != 0.
//   op(B) is (K,N): B is stored (K,N) with row stride ldb when tb == 0, (N,K) when tb != 0.
//   C is (M,N) with row stride ldc. beta == 0 means C is write-only (NaNs in C are ignored).
// tz_sgemm is cache-blocked, SIMD (AVX-512 / AVX2 chosen at run time, portable C otherwise) and
// runs on the warm thread pool; tz_dgemm is the plain portable path used by the float64 build.
#ifndef TZ_GEMM_H
#define TZ_GEMM_H

#include <stddef.h>

void tz_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc);
void tz_dgemm(int ta, int tb, int M, int N, int K, double alpha, const double *A, int lda, const double *B, int ldb,
              double beta, double *C, int ldc);
// The same, plus bias (N) added to every row of C after the product (NULL: none): a Linear
// layer's bias costs no extra pass over C.
void tz_sgemm_bias(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                   float beta, float *C, int ldc, const float *bias);
void tz_dgemm_bias(int ta, int tb, int M, int N, int K, double alpha, const double *A, int lda, const double *B,
                   int ldb, double beta, double *C, int ldc, const double *bias);

// Many products with one B (a recurrent weight, at every timestep of a sequence): pack op(B)
// (K,N) once into Bp (tz_sgemm_packed_size floats, 64-byte aligned; the layout belongs to the
// kernel chosen at run time), then C = alpha * op(A) * op(B) + beta * C reads it in place.
// A sub-matrix of B is packed by passing its corner and B's ldb.
size_t tz_sgemm_packed_size(int K, int N);
void tz_sgemm_pack_b(int tb, int K, int N, const float *B, int ldb, float *Bp);
void tz_sgemm_packed(int ta, int M, int N, int K, float alpha, const float *A, int lda, const float *Bp, float beta,
                     float *C, int ldc);
size_t tz_dgemm_packed_size(int K, int N);
void tz_dgemm_pack_b(int tb, int K, int N, const double *B, int ldb, double *Bp);
void tz_dgemm_packed(int ta, int M, int N, int K, double alpha, const double *A, int lda, const double *Bp, double beta,
                     double *C, int ldc);

// The gemm of the engine's element type `real` (float64 in the gradient check's build), for
// code compiled in both builds: tz_gemm, tz_gemm_bias, tz_gemm_packed and the packing.
#ifdef TZ_DOUBLE
#define tz_gemm tz_dgemm
#define tz_gemm_bias tz_dgemm_bias
#define tz_gemm_packed_size tz_dgemm_packed_size
#define tz_gemm_pack_b tz_dgemm_pack_b
#define tz_gemm_packed tz_dgemm_packed
#else
#define tz_gemm tz_sgemm
#define tz_gemm_bias tz_sgemm_bias
#define tz_gemm_packed_size tz_sgemm_packed_size
#define tz_gemm_pack_b tz_sgemm_pack_b
#define tz_gemm_packed tz_sgemm_packed
#endif

// Threads used by tz_sgemm (default: the number of online CPUs). n <= 0 restores the default.
void tz_set_threads(int n);
int tz_get_threads(void);
// Name of the kernel chosen at run time: "avx512", "avx2" or "portable".
const char *tz_gemm_kernel_name(void);

#endif
