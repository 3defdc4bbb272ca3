/* The batched lowering that conv2d and convt2d share: im2col/col2im over a
 * chunk of the batch, NCHW <-> [C, B*L] transposes, bias gradients. */
#include "gentrain/core.h"
#include "gentrain/layers.h"

#include <string.h>

/* The output positions o in [*lo, *hi) whose input position o*S - P + k lies in [0, n). */
void gt_nn_valid_range(int k, int S, int P, int n, int on, int *lo, int *hi) {
    int a = P - k; /* need o*S >= a */
    int l = a <= 0 ? 0 : (a + S - 1) / S;
    int b = n - 1 + P - k; /* need o*S <= b */
    int h = b < 0 ? 0 : b / S + 1;
    if (l > on) l = on;
    if (h > on) h = on;
    if (h < l) h = l;
    *lo = l;
    *hi = h;
}

/* x [B,C,H,W] -> col [C*K*K, B*OH*OW] */
void gt_nn_im2col_batch(const float *x, int B, int C, int H, int W, int K, int S, int P, int OH, int OW,
                        float *col) {
    size_t L = (size_t)OH * OW, ld = (size_t)B * L;
#pragma omp parallel for collapse(3) schedule(static) if ((size_t)C * K * K * ld >= GT_PAR_MIN)
    for (int c = 0; c < C; c++)
        for (int ki = 0; ki < K; ki++)
            for (int kj = 0; kj < K; kj++) {
                float *row = col + (size_t)((c * K + ki) * K + kj) * ld;
                int lo, hi;
                gt_nn_valid_range(kj, S, P, W, OW, &lo, &hi);
                int off = kj - P;
                for (int b = 0; b < B; b++) {
                    const float *img = x + ((size_t)b * C + c) * H * W;
                    float *dst0 = row + (size_t)b * L;
                    for (int oh = 0; oh < OH; oh++) {
                        int ih = oh * S - P + ki;
                        float *dst = dst0 + (size_t)oh * OW;
                        if (ih < 0 || ih >= H) {
                            memset(dst, 0, sizeof(float) * (size_t)OW);
                            continue;
                        }
                        const float *src = img + (size_t)ih * W;
                        for (int ow = 0; ow < lo; ow++) dst[ow] = 0.0f;
                        if (S == 1)
                            memcpy(dst + lo, src + lo + off, sizeof(float) * (size_t)(hi - lo));
                        else
                            for (int ow = lo; ow < hi; ow++) dst[ow] = src[ow * S + off];
                        for (int ow = hi; ow < OW; ow++) dst[ow] = 0.0f;
                    }
                }
            }
}

/* col [C*K*K, B*OH*OW] -> x [B,C,H,W] (overwritten) */
void gt_nn_col2im_batch(const float *col, int B, int C, int H, int W, int K, int S, int P, int OH, int OW,
                        float *x) {
    size_t L = (size_t)OH * OW, ld = (size_t)B * L;
    /* one thread per plane x[b,c] (planes, not channels: a 1-channel output
     * is parallel too), zeroed and then summed in the order (ki, kj) */
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)C * K * K * ld >= GT_PAR_MIN)
    for (int c = 0; c < C; c++)
        for (int b = 0; b < B; b++) {
            float *img = x + ((size_t)b * C + c) * H * W;
            memset(img, 0, sizeof(float) * (size_t)H * W);
            for (int ki = 0; ki < K; ki++)
                for (int kj = 0; kj < K; kj++) {
                    const float *src0 = col + (size_t)((c * K + ki) * K + kj) * ld + (size_t)b * L;
                    int lo, hi;
                    gt_nn_valid_range(kj, S, P, W, OW, &lo, &hi);
                    int off = kj - P;
                    for (int oh = 0; oh < OH; oh++) {
                        int ih = oh * S - P + ki;
                        if (ih < 0 || ih >= H) continue;
                        const float *src = src0 + (size_t)oh * OW;
                        float *dst = img + (size_t)ih * W;
                        if (S == 1)
                            for (int ow = lo; ow < hi; ow++) dst[ow + off] += src[ow];
                        else
                            for (int ow = lo; ow < hi; ow++) dst[ow * S + off] += src[ow];
                    }
                }
        }
}

/* Examples per chunk of a batched lowering whose column buffer holds
 * col_per_example floats per example: chunks keep the columns in cache
 * between the GEMM that writes them and the pass that reads them. */
int gt_nn_batch_chunk(int B, size_t col_per_example) {
    size_t n = GT_NN_CHUNK_FLOATS / (col_per_example ? col_per_example : 1);
    return n < 1 ? 1 : n > (size_t)B ? B : (int)n;
}

/* x [B,C,L] -> t [C, B*L] */
void gt_nn_nchw_to_cbl(float *t, const float *x, int B, int C, size_t L) {
#pragma omp parallel for schedule(static) if ((size_t)B * C * L >= GT_PAR_MIN)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            memcpy(t + ((size_t)c * B + b) * L, x + ((size_t)b * C + c) * L, sizeof(float) * L);
}

/* t [C, B*L] (+ bias [C]) -> y [B,C,L] */
void gt_nn_cbl_to_nchw(float *y, const float *t, const float *bias, int B, int C, size_t L) {
#pragma omp parallel for schedule(static) if ((size_t)B * C * L >= GT_PAR_MIN)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            float *dst = y + ((size_t)b * C + c) * L;
            const float *src = t + ((size_t)c * B + b) * L;
            if (bias) {
                float bc = bias[c];
                for (size_t l = 0; l < L; l++) dst[l] = src[l] + bc;
            } else {
                memcpy(dst, src, sizeof(float) * L);
            }
        }
}

/* db [C] += sum over b, l of dy [B,C,L] */
void gt_nn_bias_grad_nchw(float *db, const float *dy, int B, int C, size_t L) {
#pragma omp parallel for schedule(static) if ((size_t)B * C * L >= GT_PAR_MIN)
    for (int c = 0; c < C; c++) {
        double s = 0.0;
        for (int b = 0; b < B; b++) {
            const float *p = dy + ((size_t)b * C + c) * L;
            float a[8] = {0}; /* independent partial sums, so that the loop vectorizes */
            size_t l = 0;
            for (; l + 8 <= L; l += 8)
                for (int j = 0; j < 8; j++) a[j] += p[l + j];
            float sb = 0.0f;
            for (int j = 0; j < 8; j++) sb += a[j];
            for (; l < L; l++) sb += p[l];
            s += sb;
        }
        db[c] += (float)s;
    }
}

