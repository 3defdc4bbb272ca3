/* Conv2d (nn.Conv2d, square kernel, zero padding), lowered to GEMMs in one
 * of two ways, whichever has the smaller column buffer:
 *   im2col: x -> col [C*K*K, B*OH*OW], one GEMM weight col, then a scatter to NCHW;
 *   taps (stride 1 only, e.g. few output channels): per tap (ki,kj) a GEMM over
 *     the channels first, T [OC*K*K, B*H*W] = weight^T x, then y = the sum of
 *     the K*K shifted planes of T. Its columns hold OC*K*K rows instead of C*K*K.
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

/* Examples per chunk of a batched lowering whose column buffer holds
 * col_per_example floats per example: chunks keep the columns in cache
 * between the GEMM that writes them and the pass that reads them. */
int gt_nn_batch_chunk(int B, size_t col_per_example) {
    size_t n = GT_NN_CHUNK_FLOATS / (col_per_example ? col_per_example : 1);
    return n < 1 ? 1 : n > (size_t)B ? B : (int)n;
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

/* ---- the taps lowering (stride 1) ---------------------------------------- */

/* 1: use the taps lowering: stride 1 and T [OC*K*K, B*H*W] no larger than col
 * [C*K*K, B*OH*OW] (so gt_conv2d_scratch covers it). */
static int use_taps(int C, int H, int W, int OC, int S, int OH, int OW) {
    return S == 1 && (size_t)OC * H * W <= (size_t)C * OH * OW;
}

/* T [OC*K*K, B*H*W] -> y [B,OC,OH,OW] = bias + sum over (ki,kj) of
 * T[(oc,ki,kj), b, oh-P+ki, ow-P+kj] (zero outside the input). */
static void taps_sum(float *y, const float *T, const float *bias, int B, int OC, int H, int W, int K, int P, int OH,
                     int OW) {
    size_t L = (size_t)H * W, BL = (size_t)B * L, OL = (size_t)OH * OW;
    for (int b = 0; b < B; b++)
        for (int oc = 0; oc < OC; oc++) {
            float *yp = y + ((size_t)b * OC + oc) * OL, bc = bias ? bias[oc] : 0.0f;
            for (size_t l = 0; l < OL; l++) yp[l] = bc;
            for (int ki = 0; ki < K; ki++)
                for (int kj = 0; kj < K; kj++) {
                    const float *tp = T + ((size_t)(oc * K + ki) * K + kj) * BL + (size_t)b * L;
                    int lo, hi, off = kj - P;
                    valid_range(kj, 1, P, W, OW, &lo, &hi);
                    for (int oh = 0; oh < OH; oh++) {
                        int ih = oh - P + ki;
                        if (ih < 0 || ih >= H) continue;
                        float *d = yp + (size_t)oh * OW;
                        const float *src = tp + (size_t)ih * W + off;
                        for (int ow = lo; ow < hi; ow++) d[ow] += src[ow];
                    }
                }
        }
}

/* The adjoint of taps_sum: dy [B,OC,OH,OW] -> dT [OC*K*K, B*H*W],
 * dT[(oc,ki,kj), b, ih, iw] = dy[b, oc, ih+P-ki, iw+P-kj] (zero outside dy). */
static void taps_spread(float *dT, const float *dy, int B, int OC, int H, int W, int K, int P, int OH, int OW) {
    size_t L = (size_t)H * W, BL = (size_t)B * L, OL = (size_t)OH * OW;
    for (int oc = 0; oc < OC; oc++)
        for (int ki = 0; ki < K; ki++)
            for (int kj = 0; kj < K; kj++) {
                int lo = kj - P, hi = OW + kj - P; /* iw with 0 <= iw+P-kj < OW */
                if (lo < 0) lo = 0;
                if (hi > W) hi = W;
                if (hi < lo) hi = lo;
                for (int b = 0; b < B; b++) {
                    float *tp = dT + ((size_t)(oc * K + ki) * K + kj) * BL + (size_t)b * L;
                    const float *yp = dy + ((size_t)b * OC + oc) * OL;
                    for (int ih = 0; ih < H; ih++) {
                        int oh = ih + P - ki;
                        float *d = tp + (size_t)ih * W;
                        if (oh < 0 || oh >= OH) {
                            memset(d, 0, sizeof(float) * (size_t)W);
                            continue;
                        }
                        const float *src = yp + (size_t)oh * OW + P - kj;
                        for (int iw = 0; iw < lo; iw++) d[iw] = 0.0f;
                        memcpy(d + lo, src + lo, sizeof(float) * (size_t)(hi - lo));
                        for (int iw = hi; iw < W; iw++) d[iw] = 0.0f;
                    }
                }
            }
}

/* Taps forward: T_oc [K*K, H*W] = weight_oc^T [K*K, C] x_b [C, H*W] per output
 * channel and image (weight_oc [C, K*K] is weight[oc]), then taps_sum. */
static void conv2d_taps_forward(float *y, const float *x, const float *weight, const float *bias, int B, int C,
                                int H, int W, int OC, int K, int P, int OH, int OW, float *T) {
    int KK = K * K, L = H * W, BL = B * L;
    for (int oc = 0; oc < OC; oc++)
        for (int b = 0; b < B; b++)
            gt_sgemm(1, 0, KK, L, C, 1.0f, weight + (size_t)oc * C * KK, KK, x + (size_t)b * C * L, L, 0.0f,
                     T + (size_t)oc * KK * BL + (size_t)b * L, BL);
    taps_sum(y, T, bias, B, OC, H, W, K, P, OH, OW);
}

/* Taps backward: dT = taps_spread(dy); dweight_oc [C, K*K] += x_b dT_oc,b^T;
 * dx_b [C, H*W] = sum over oc of weight_oc [C, K*K] dT_oc,b [K*K, H*W]. */
static void conv2d_taps_backward(float *dx, float *dweight, const float *dy, const float *x, const float *weight,
                                 int B, int C, int H, int W, int OC, int K, int P, int OH, int OW, float *dT) {
    int KK = K * K, L = H * W, BL = B * L;
    taps_spread(dT, dy, B, OC, H, W, K, P, OH, OW);
    for (int b = 0; b < B; b++)
        for (int oc = 0; oc < OC; oc++) {
            const float *dTb = dT + (size_t)oc * KK * BL + (size_t)b * L;
            if (dweight)
                gt_sgemm(0, 1, C, KK, L, 1.0f, x + (size_t)b * C * L, L, dTb, BL, 1.0f, dweight + (size_t)oc * C * KK,
                         KK);
            if (dx)
                gt_sgemm(0, 0, C, L, KK, 1.0f, weight + (size_t)oc * C * KK, KK, dTb, BL, oc ? 1.0f : 0.0f,
                         dx + (size_t)b * C * L, L);
        }
}

/* ---- conv2d ------------------------------------------------------------- */

/* scratch: col [C*K*K, B*L] then t [OC, B*L]; the taps lowering needs less */
size_t gt_conv2d_scratch(int B, int C, int OC, int K, int OH, int OW) {
    size_t BL = (size_t)B * OH * OW;
    return (size_t)C * K * K * BL + (size_t)OC * BL;
}

/* x [B,C,H,W], weight [OC,C,K,K], bias [OC] -> y [B,OC,OH,OW] */
void gt_conv2d_forward(float *y, const float *x, const float *weight, const float *bias, int B, int C, int H,
                       int W, int OC, int K, int S, int P, float *scratch) {
    int OH = gt_conv_out_size(H, K, S, P), OW = gt_conv_out_size(W, K, S, P);
    size_t L = (size_t)OH * OW, CHW = (size_t)C * H * W;
    int CKK = C * K * K;
    float *col = scratch, *t = scratch + (size_t)CKK * B * L;
    if (use_taps(C, H, W, OC, S, OH, OW)) {
        conv2d_taps_forward(y, x, weight, bias, B, C, H, W, OC, K, P, OH, OW, scratch);
        return;
    }
    /* chunk by chunk; chunk b0's columns [CKK, n*L] stay at col + b0*CKK*L for the backward */
    int nb = gt_nn_batch_chunk(B, (size_t)CKK * L);
    for (int b0 = 0; b0 < B; b0 += nb) {
        int n = B - b0 < nb ? B - b0 : nb, NL = n * (int)L;
        float *colc = col + b0 * CKK * L;
        gt_nn_im2col_batch(x + b0 * CHW, n, C, H, W, K, S, P, OH, OW, colc);
        /* t [OC, n*L] = weight [OC, CKK] col [CKK, n*L] */
        gt_sgemm(0, 0, OC, NL, CKK, 1.0f, weight, CKK, colc, NL, 0.0f, t, NL);
        gt_nn_cbl_to_nchw(y + b0 * OC * L, t, bias, n, OC, L);
    }
}

/* dy [B,OC,OH,OW] -> dx [B,C,H,W]; dweight [OC,C,K,K] += dt col^T; dbias [OC] += */
void gt_conv2d_backward(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                        const float *weight, int B, int C, int H, int W, int OC, int K, int S, int P,
                        float *scratch, int cols_ready) {
    int OH = gt_conv_out_size(H, K, S, P), OW = gt_conv_out_size(W, K, S, P);
    size_t L = (size_t)OH * OW, CHW = (size_t)C * H * W;
    int CKK = C * K * K;
    float *col = scratch, *t = scratch + (size_t)CKK * B * L;
    if (dbias) gt_nn_bias_grad_nchw(dbias, dy, B, OC, L);
    if (!dweight && !dx) return;
    if (use_taps(C, H, W, OC, S, OH, OW)) {
        conv2d_taps_backward(dx, dweight, dy, x, weight, B, C, H, W, OC, K, P, OH, OW, scratch);
        return;
    }
    int nb = gt_nn_batch_chunk(B, (size_t)CKK * L); /* the forward's chunks */
    for (int b0 = 0; b0 < B; b0 += nb) {
        int n = B - b0 < nb ? B - b0 : nb, NL = n * (int)L;
        float *colc = col + b0 * CKK * L;
        gt_nn_nchw_to_cbl(t, dy + b0 * OC * L, n, OC, L);
        if (dweight) {
            if (!cols_ready) gt_nn_im2col_batch(x + b0 * CHW, n, C, H, W, K, S, P, OH, OW, colc);
            gt_sgemm(0, 1, OC, CKK, NL, 1.0f, t, NL, colc, NL, 1.0f, dweight, CKK);
        }
        if (dx) {
            /* dcol [CKK, n*L] = weight^T [CKK, OC] dt [OC, n*L] */
            gt_sgemm(1, 0, CKK, NL, OC, 1.0f, weight, CKK, t, NL, 0.0f, colc, NL);
            memset(dx + b0 * CHW, 0, sizeof(float) * n * CHW);
            gt_nn_col2im_batch(colc, n, C, H, W, K, S, P, OH, OW, dx + b0 * CHW);
        }
    }
}
