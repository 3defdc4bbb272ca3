/* Thin wrappers over OpenBLAS and its LAPACK (row-major): the only code that
 * includes them. The im2col/col2im lowering of the
 * convolutions lives with them in src/nn (batched, in chunks). */
#include "gentrain/core.h"

#include <cblas.h>
#include <omp.h>
#include <lapacke.h>

static int n_threads = 1;

void gt_set_threads(int n) {
    n_threads = n < 1 ? 1 : n;
    openblas_set_num_threads(1); /* the panels below are the parallelism */
    omp_set_num_threads(n_threads);
}

int gt_threads(void) { return n_threads; }

/* A GEMM is cut into panels along the longer of M and N, about one per
 * 2^22 multiply-adds, at most GT_GEMM_MAX_PANELS, each at least 128 wide (a
 * multiple of 16, OpenBLAS's kernel width): the cut depends on the shape
 * alone, so which floats meet in which single-threaded OpenBLAS call never
 * depends on the thread count, and neither do the results (OpenBLAS's own
 * threading changes its blocking with the thread count, and with it the
 * rounding). Returns the panel width; *n_panels panels cover len. */
#define GT_GEMM_MAX_PANELS 8
static int panel_width(int M, int N, int K, int *n_panels) {
    int len = M > N ? M : N;
    double work = (double)M * N * K;
    int p = (int)(work / (double)(1 << 22));
    if (p > GT_GEMM_MAX_PANELS) p = GT_GEMM_MAX_PANELS;
    if (p > len / 128) p = len / 128;
    if (p < 1) p = 1;
    int w = (len + p - 1) / p;
    w = (w + 15) / 16 * 16;
    *n_panels = (len + w - 1) / w;
    return w;
}

void gt_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    int n_panels, w = panel_width(M, N, K, &n_panels), by_rows = M > N;
    CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
#pragma omp parallel for schedule(static) if (n_panels > 1 && n_threads > 1)
    for (int p = 0; p < n_panels; p++) {
        int lo = p * w, n = (by_rows ? M : N) - lo;
        if (n > w) n = w;
        if (by_rows) /* rows lo.. of op(A) and of C */
            cblas_sgemm(CblasRowMajor, ta, tb, n, N, K, alpha, trans_a ? A + lo : A + (size_t)lo * lda, lda, B, ldb,
                        beta, C + (size_t)lo * ldc, ldc);
        else /* columns lo.. of op(B) and of C */
            cblas_sgemm(CblasRowMajor, ta, tb, M, n, K, alpha, A, lda, trans_b ? B + (size_t)lo * ldb : B + lo, ldb,
                        beta, C + lo, ldc);
    }
}

void gt_dgemm(int trans_a, int trans_b, int M, int N, int K, double alpha, const double *A, int lda, const double *B,
              int ldb, double beta, double *C, int ldc) {
    cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K,
                alpha, A, lda, B, ldb, beta, C, ldc);
}

void gt_dsyrk(int trans, int N, int K, double alpha, const double *A, int lda, double beta, double *C, int ldc) {
    cblas_dsyrk(CblasRowMajor, CblasUpper, trans ? CblasTrans : CblasNoTrans, N, K, alpha, A, lda, beta, C, ldc);
}

const char *gt_blas_kernel_name(void) {
    const char *name = openblas_get_corename();
    return name && *name ? name : "unknown";
}

int gt_dsyevd(int vectors, int n, double *a, double *w) {
    return (int)LAPACKE_dsyevd(LAPACK_ROW_MAJOR, vectors ? 'V' : 'N', 'U', n, a, n, w);
}

