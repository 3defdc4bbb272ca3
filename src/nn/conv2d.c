/* Conv2d (nn.Conv2d, square kernel, zero padding): im2col over the whole
 * batch into one [C*K*K, B*OH*OW] matrix, one GEMM, then a scatter to NCHW.
 * Also the batched lowering helpers that convt2d shares. */
#include "gentrain/core.h"
#include "gentrain/layers.h"

#include <string.h>

int gt_conv_out_size(int n, int K, int S, int P) { return (n + 2 * P - K) / S + 1; }

/* The output positions o in [*lo, *hi) whose input position o*S - P + k lies in [0, n). */
static void valid_range(int k, int S, int P, int n, int on, int *lo, int *hi) {
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
    for (int c = 0; c < C; c++)
        for (int ki = 0; ki < K; ki++)
            for (int kj = 0; kj < K; kj++) {
                float *row = col + (size_t)((c * K + ki) * K + kj) * ld;
                int lo, hi;
                valid_range(kj, S, P, W, OW, &lo, &hi);
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

/* col [C*K*K, B*OH*OW] added into x [B,C,H,W] */
void gt_nn_col2im_batch(const float *col, int B, int C, int H, int W, int K, int S, int P, int OH, int OW,
                        float *x) {
    size_t L = (size_t)OH * OW, ld = (size_t)B * L;
    for (int c = 0; c < C; c++)
        for (int ki = 0; ki < K; ki++)
            for (int kj = 0; kj < K; kj++) {
                const float *row = col + (size_t)((c * K + ki) * K + kj) * ld;
                int lo, hi;
                valid_range(kj, S, P, W, OW, &lo, &hi);
                int off = kj - P;
                for (int b = 0; b < B; b++) {
                    float *img = x + ((size_t)b * C + c) * H * W;
                    const float *src0 = row + (size_t)b * L;
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

/* x [B,C,L] -> t [C, B*L] */
void gt_nn_nchw_to_cbl(float *t, const float *x, int B, int C, size_t L) {
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            memcpy(t + ((size_t)c * B + b) * L, x + ((size_t)b * C + c) * L, sizeof(float) * L);
}

/* t [C, B*L] (+ bias [C]) -> y [B,C,L] */
void gt_nn_cbl_to_nchw(float *y, const float *t, const float *bias, int B, int C, size_t L) {
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
    for (int c = 0; c < C; c++) {
        double s = 0.0;
        for (int b = 0; b < B; b++) {
            const float *p = dy + ((size_t)b * C + c) * L;
            float sb = 0.0f;
            for (size_t l = 0; l < L; l++) sb += p[l];
            s += sb;
        }
        db[c] += (float)s;
    }
}

/* scratch: col [C*K*K, B*L] then t [OC, B*L] */
size_t gt_conv2d_scratch(int B, int C, int OC, int K, int OH, int OW) {
    size_t BL = (size_t)B * OH * OW;
    return (size_t)C * K * K * BL + (size_t)OC * BL;
}

/* x [B,C,H,W], weight [OC,C,K,K], bias [OC] -> y [B,OC,OH,OW] */
void gt_conv2d_forward(float *y, const float *x, const float *weight, const float *bias, int B, int C, int H,
                       int W, int OC, int K, int S, int P, float *scratch) {
    int OH = gt_conv_out_size(H, K, S, P), OW = gt_conv_out_size(W, K, S, P);
    size_t L = (size_t)OH * OW, BL = (size_t)B * L;
    int CKK = C * K * K;
    float *col = scratch, *t = scratch + (size_t)CKK * BL;
    gt_nn_im2col_batch(x, B, C, H, W, K, S, P, OH, OW, col);
    /* t [OC, B*L] = weight [OC, CKK] col [CKK, B*L] */
    gt_sgemm(0, 0, OC, (int)BL, CKK, 1.0f, weight, CKK, col, (int)BL, 0.0f, t, (int)BL);
    gt_nn_cbl_to_nchw(y, t, bias, B, OC, L);
}

/* dy [B,OC,OH,OW] -> dx [B,C,H,W]; dweight [OC,C,K,K] += dt col^T; dbias [OC] += */
void gt_conv2d_backward(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                        const float *weight, int B, int C, int H, int W, int OC, int K, int S, int P,
                        float *scratch) {
    int OH = gt_conv_out_size(H, K, S, P), OW = gt_conv_out_size(W, K, S, P);
    size_t L = (size_t)OH * OW, BL = (size_t)B * L;
    int CKK = C * K * K;
    float *col = scratch, *t = scratch + (size_t)CKK * BL;
    if (dbias) gt_nn_bias_grad_nchw(dbias, dy, B, OC, L);
    if (!dweight && !dx) return;
    gt_nn_nchw_to_cbl(t, dy, B, OC, L);
    if (dweight) {
        gt_nn_im2col_batch(x, B, C, H, W, K, S, P, OH, OW, col);
        gt_sgemm(0, 1, OC, CKK, (int)BL, 1.0f, t, (int)BL, col, (int)BL, 1.0f, dweight, CKK);
    }
    if (dx) {
        /* dcol [CKK, B*L] = weight^T [CKK, OC] dt [OC, B*L] */
        gt_sgemm(1, 0, CKK, (int)BL, OC, 1.0f, weight, CKK, t, (int)BL, 0.0f, col, (int)BL);
        memset(dx, 0, sizeof(float) * (size_t)B * C * H * W);
        gt_nn_col2im_batch(col, B, C, H, W, K, S, P, OH, OW, dx);
    }
}
