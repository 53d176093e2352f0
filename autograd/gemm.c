// Placeholder portable gemm, replaced by the blocked SIMD implementation.
#include "gemm.h"

#define GEMM_BODY(T)                                                                          \
    for (int i = 0; i < M; i++) {                                                             \
        T *c = C + (long)i * ldc;                                                             \
        if (beta == 0) for (int j = 0; j < N; j++) c[j] = 0;                                  \
        else if (beta != 1) for (int j = 0; j < N; j++) c[j] *= beta;                         \
        for (int k = 0; k < K; k++) {                                                         \
            T a = alpha * (ta ? A[(long)k * lda + i] : A[(long)i * lda + k]);                 \
            if (!tb) { const T *b = B + (long)k * ldb; for (int j = 0; j < N; j++) c[j] += a * b[j]; } \
            else for (int j = 0; j < N; j++) c[j] += a * B[(long)j * ldb + k];                \
        }                                                                                     \
    }

void tz_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) { GEMM_BODY(float) }
void tz_dgemm(int ta, int tb, int M, int N, int K, double alpha, const double *A, int lda,
              const double *B, int ldb, double beta, double *C, int ldc) { GEMM_BODY(double) }
void tz_set_threads(int n) { (void)n; }
int tz_get_threads(void) { return 1; }
const char *tz_gemm_kernel_name(void) { return "portable"; }
