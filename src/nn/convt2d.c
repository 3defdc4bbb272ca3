/* ConvTranspose2d (nn.ConvTranspose2d, square kernel): the adjoint of conv2d.
 * Forward = one GEMM weight^T x over the whole batch, then col2im; backward
 * dx = weight im2col(dy), dweight += x im2col(dy)^T. */
#include "gentrain/core.h"
#include "gentrain/layers.h"

#include <string.h>

int gt_convt_out_size(int n, int K, int S, int P, int output_pad) { return (n - 1) * S - 2 * P + K + output_pad; }

/* scratch: col [OC*K*K, B*H*W] then t [IC, B*H*W] */
size_t gt_convt2d_scratch(int B, int IC, int OC, int K, int H, int W) {
    size_t BL = (size_t)B * H * W;
    return (size_t)OC * K * K * BL + (size_t)IC * BL;
}

/* x [B,IC,H,W], weight [IC,OC,K,K], bias [OC] -> y [B,OC,OH,OW] */
void gt_convt2d_forward(float *y, const float *x, const float *weight, const float *bias, int B, int IC, int H,
                        int W, int OC, int K, int S, int P, int output_pad, float *scratch) {
    int OH = gt_convt_out_size(H, K, S, P, output_pad), OW = gt_convt_out_size(W, K, S, P, output_pad);
    size_t L = (size_t)H * W, OL = (size_t)OH * OW;
    int OKK = OC * K * K;
    float *col = scratch, *t = scratch + (size_t)OKK * B * L;
    int nb = gt_nn_batch_chunk(B, (size_t)OKK * L);
    for (int b0 = 0; b0 < B; b0 += nb) {
        int n = B - b0 < nb ? B - b0 : nb, NL = n * (int)L;
        float *yc = y + b0 * OC * OL;
        gt_nn_nchw_to_cbl(t, x + b0 * IC * L, n, IC, L);
        /* col [OKK, n*L] = weight^T [OKK, IC] t [IC, n*L] */
        gt_sgemm(1, 0, OKK, NL, IC, 1.0f, weight, OKK, t, NL, 0.0f, col, NL);
        memset(yc, 0, sizeof(float) * n * OC * OL);
        gt_nn_col2im_batch(col, n, OC, OH, OW, K, S, P, H, W, yc);
        if (bias)
            for (int b = 0; b < n; b++)
                for (int c = 0; c < OC; c++) {
                    float *p = yc + ((size_t)b * OC + c) * OL, bc = bias[c];
                    for (size_t l = 0; l < OL; l++) p[l] += bc;
                }
    }
}

/* dy [B,OC,OH,OW] -> dx [B,IC,H,W]; dweight [IC,OC,K,K] +=; dbias [OC] += */
void gt_convt2d_backward(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                         const float *weight, int B, int IC, int H, int W, int OC, int K, int S, int P,
                         int output_pad, float *scratch) {
    int OH = gt_convt_out_size(H, K, S, P, output_pad), OW = gt_convt_out_size(W, K, S, P, output_pad);
    size_t L = (size_t)H * W, OL = (size_t)OH * OW;
    int OKK = OC * K * K;
    float *col = scratch, *t = scratch + (size_t)OKK * B * L;
    if (dbias) gt_nn_bias_grad_nchw(dbias, dy, B, OC, OL);
    if (!dweight && !dx) return;
    int nb = gt_nn_batch_chunk(B, (size_t)OKK * L);
    for (int b0 = 0; b0 < B; b0 += nb) {
        int n = B - b0 < nb ? B - b0 : nb, NL = n * (int)L;
        /* dcol [OKK, n*L] = im2col(dy) with the conv geometry that maps OHxOW to HxW */
        gt_nn_im2col_batch(dy + b0 * OC * OL, n, OC, OH, OW, K, S, P, H, W, col);
        if (dweight) {
            gt_nn_nchw_to_cbl(t, x + b0 * IC * L, n, IC, L);
            gt_sgemm(0, 1, IC, OKK, NL, 1.0f, t, NL, col, NL, 1.0f, dweight, OKK);
        }
        if (dx) {
            gt_sgemm(0, 0, IC, NL, OKK, 1.0f, weight, OKK, col, NL, 0.0f, t, NL);
            gt_nn_cbl_to_nchw(dx + b0 * IC * L, t, NULL, n, IC, L);
        }
    }
}
