/* Thin wrappers over OpenBLAS and its LAPACK (row-major): the only code that
 * includes them. The im2col/col2im lowering of the
 * convolutions lives with them in src/nn (batched, in chunks). */
#include "gentrain/core.h"

#include <cblas.h>
#include <lapacke.h>

void gt_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gt_dgemm(int trans_a, int trans_b, int M, int N, int K, double alpha, const double *A, int lda, const double *B,
              int ldb, double beta, double *C, int ldc) {
    cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K,
                alpha, A, lda, B, ldb, beta, C, ldc);
}

void gt_dsyrk(int trans, int N, int K, double alpha, const double *A, int lda, double beta, double *C, int ldc) {
    cblas_dsyrk(CblasRowMajor, CblasUpper, trans ? CblasTrans : CblasNoTrans, N, K, alpha, A, lda, beta, C, ldc);
}

int gt_dsyevd(int vectors, int n, double *a, double *w) {
    return (int)LAPACKE_dsyevd(LAPACK_ROW_MAJOR, vectors ? 'V' : 'N', 'U', n, a, n, w);
}

void gt_blas_set_threads(int n) { openblas_set_num_threads(n); }
