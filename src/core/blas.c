/* Thin wrappers over OpenBLAS (row-major) and the im2col/col2im lowering. */
#include "gentrain/core.h"

#include <cblas.h>
#include <string.h>

void gt_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gt_blas_set_threads(int n) { openblas_set_num_threads(n); }

/* x [C,H,W] -> col [C*K*K, OH*OW]; rows ordered (c, ki, kj) like PyTorch's weight [out,C,K,K]. */
void gt_im2col(const float *x, int C, int H, int W, int K, int S, int P, int OH, int OW, float *col) {
    for (int c = 0; c < C; c++)
        for (int ki = 0; ki < K; ki++)
            for (int kj = 0; kj < K; kj++) {
                float *row = col + (size_t)((c * K + ki) * K + kj) * OH * OW;
                const float *img = x + (size_t)c * H * W;
                for (int oh = 0; oh < OH; oh++) {
                    int ih = oh * S - P + ki;
                    float *dst = row + (size_t)oh * OW;
                    if (ih < 0 || ih >= H) {
                        memset(dst, 0, sizeof(float) * (size_t)OW);
                        continue;
                    }
                    const float *src = img + (size_t)ih * W;
                    if (S == 1) {
                        for (int ow = 0; ow < OW; ow++) {
                            int iw = ow - P + kj;
                            dst[ow] = (iw >= 0 && iw < W) ? src[iw] : 0.0f;
                        }
                    } else {
                        for (int ow = 0; ow < OW; ow++) {
                            int iw = ow * S - P + kj;
                            dst[ow] = (iw >= 0 && iw < W) ? src[iw] : 0.0f;
                        }
                    }
                }
            }
}

/* col [C*K*K, OH*OW] added into x [C,H,W]. */
void gt_col2im(const float *col, int C, int H, int W, int K, int S, int P, int OH, int OW, float *x) {
    for (int c = 0; c < C; c++)
        for (int ki = 0; ki < K; ki++)
            for (int kj = 0; kj < K; kj++) {
                const float *row = col + (size_t)((c * K + ki) * K + kj) * OH * OW;
                float *img = x + (size_t)c * H * W;
                for (int oh = 0; oh < OH; oh++) {
                    int ih = oh * S - P + ki;
                    if (ih < 0 || ih >= H) continue;
                    const float *src = row + (size_t)oh * OW;
                    float *dst = img + (size_t)ih * W;
                    for (int ow = 0; ow < OW; ow++) {
                        int iw = ow * S - P + kj;
                        if (iw >= 0 && iw < W) dst[iw] += src[ow];
                    }
                }
            }
}
