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

// The same, then an elementwise epilogue on each finished tile of C while it is in cache (a
// fused layer's activation costs no extra pass over C):
//   TZ_EPI_GELU: C = gelu(C) and D = gelu'(C) (D written, unless NULL; gelu(x) = x Phi(x), as tz_gelu)
//   TZ_EPI_MUL:  C = C * D elementwise (D read: a saved derivative, for the backward)
//   TZ_EPI_ADD:  C = C + D elementwise (D read: a residual, added after the bias)
// D is (M,N) with row stride ldd; unused (may be NULL) with TZ_EPI_NONE.
// (The float64 version: libm's erf and exp, as the float64 build's tz_gelu.)
typedef enum { TZ_EPI_NONE, TZ_EPI_GELU, TZ_EPI_MUL, TZ_EPI_ADD } tz_epilogue;
void tz_sgemm_epi(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                  float beta, float *C, int ldc, const float *bias, tz_epilogue epi, float *D, int ldd);
void tz_dgemm_epi(int ta, int tb, int M, int N, int K, double alpha, const double *A, int lda, const double *B, int ldb,
                  double beta, double *C, int ldc, const double *bias, tz_epilogue epi, double *D, int ldd);

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
// code compiled in both builds: tz_gemm, tz_gemm_bias, tz_gemm_epi, tz_gemm_packed and the packing.
#ifdef TZ_DOUBLE
#define tz_gemm tz_dgemm
#define tz_gemm_bias tz_dgemm_bias
#define tz_gemm_epi tz_dgemm_epi
#define tz_gemm_packed_size tz_dgemm_packed_size
#define tz_gemm_pack_b tz_dgemm_pack_b
#define tz_gemm_packed tz_dgemm_packed
#else
#define tz_gemm tz_sgemm
#define tz_gemm_bias tz_sgemm_bias
#define tz_gemm_epi tz_sgemm_epi
#define tz_gemm_packed_size tz_sgemm_packed_size
#define tz_gemm_pack_b tz_sgemm_pack_b
#define tz_gemm_packed tz_sgemm_packed
#endif

// How many times, since the program started, a thread of tz_sgemm that was done with its own
// rectangle of C took over rows of another's (tests).
long tz_gemm_rows_taken(void);

// This thread's scratch buffer number slot (0 or 1) of at least `bytes`, 64-byte aligned: kept
// and reused by the thread's later calls (grown when too small, freed when the thread exits), so
// work that runs in pool tasks keeps its tiles in its own core's cache (attention's score tiles).
void *tz_thread_scratch(int slot, size_t bytes);

// Threads used by tz_sgemm (default: the number of online CPUs). n <= 0 restores the default.
void tz_set_threads(int n);
int tz_get_threads(void);
// Name of the kernel chosen at run time: "avx512", "avx2" or "portable".
const char *tz_gemm_kernel_name(void);

#endif
