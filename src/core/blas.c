/* Thin wrappers over OpenBLAS (row-major). The im2col/col2im lowering of the
 * convolutions lives with them in src/nn (batched, in chunks). */
#include "gentrain/core.h"

#include <cblas.h>

void gt_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gt_blas_set_threads(int n) { openblas_set_num_threads(n); }
