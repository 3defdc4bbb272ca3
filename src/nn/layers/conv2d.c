/* Conv2d (nn.Conv2d, square kernel, zero padding), lowered to GEMMs in one
 * of two ways, whichever has the smaller column buffer:
 *   im2col: x -> col [C*K*K, B*OH*OW], one GEMM weight col, then a scatter to NCHW;
 *   taps (stride 1 only, e.g. few output channels): per tap (ki,kj) a GEMM over
 *     the channels first, T [OC*K*K, B*H*W] = weight^T x, then y = the sum of
 *     the K*K shifted planes of T. Its columns hold OC*K*K rows instead of C*K*K.
 * The lowering helpers it shares with convt2d are in src/nn/lowering.c. */
#include "gentrain/core.h"
#include "gentrain/layers.h"

#include <string.h>

int gt_conv_out_size(int n, int K, int S, int P) { return (n + 2 * P - K) / S + 1; }

/* ---- the taps lowering (stride 1) ---------------------------------------- */

/* 1: use the taps lowering: stride 1 and T [OC*K*K, B*H*W] no larger than col
 * [C*K*K, B*OH*OW] (gt_conv2d_scratch sizes the scratch for the lowering used). */
static int use_taps(int C, int H, int W, int OC, int S, int OH, int OW) {
    return S == 1 && (size_t)OC * H * W <= (size_t)C * OH * OW;
}

/* T [OC*K*K, B*H*W] -> y [B,OC,OH,OW] = bias + sum over (ki,kj) of
 * T[(oc,ki,kj), b, oh-P+ki, ow-P+kj] (zero outside the input). */
static void taps_sum(float *y, const float *T, const float *bias, int B, int OC, int H, int W, int K, int P, int OH,
                     int OW) {
    size_t L = (size_t)H * W, BL = (size_t)B * L, OL = (size_t)OH * OW;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)B * OC * OL * K * K >= GT_PAR_MIN)
    for (int b = 0; b < B; b++)
        for (int oc = 0; oc < OC; oc++) {
            float *yp = y + ((size_t)b * OC + oc) * OL, bc = bias ? bias[oc] : 0.0f;
            for (size_t l = 0; l < OL; l++) yp[l] = bc;
            for (int ki = 0; ki < K; ki++)
                for (int kj = 0; kj < K; kj++) {
                    const float *tp = T + ((size_t)(oc * K + ki) * K + kj) * BL + (size_t)b * L;
                    int lo, hi, off = kj - P;
                    gt_nn_valid_range(kj, 1, P, W, OW, &lo, &hi);
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
#pragma omp parallel for collapse(3) schedule(static) if ((size_t)OC * K * K * BL >= GT_PAR_MIN)
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
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)OC * B >= 2)
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
    /* dweight_oc sums over the images in order b = 0, 1, ...; dx_b over the channels in order oc = 0, 1, ... */
    if (dweight)
#pragma omp parallel for schedule(static) if (OC >= 2)
        for (int oc = 0; oc < OC; oc++)
            for (int b = 0; b < B; b++)
                gt_sgemm(0, 1, C, KK, L, 1.0f, x + (size_t)b * C * L, L, dT + (size_t)oc * KK * BL + (size_t)b * L, BL,
                         1.0f, dweight + (size_t)oc * C * KK, KK);
    if (dx)
#pragma omp parallel for schedule(static) if (B >= 2)
        for (int b = 0; b < B; b++)
            for (int oc = 0; oc < OC; oc++)
                gt_sgemm(0, 0, C, L, KK, 1.0f, weight + (size_t)oc * C * KK, KK, dT + (size_t)oc * KK * BL + (size_t)b * L,
                         BL, oc ? 1.0f : 0.0f, dx + (size_t)b * C * L, L);
}

/* ---- conv2d ------------------------------------------------------------- */

/* scratch: col [C*K*K, B*L] then t [OC, B*L]; the taps lowering only its T [OC*K*K, B*H*W] */
size_t gt_conv2d_scratch(int B, int C, int H, int W, int OC, int K, int S, int OH, int OW) {
    if (use_taps(C, H, W, OC, S, OH, OW)) return (size_t)OC * K * K * B * H * W;
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
            gt_nn_col2im_batch(colc, n, C, H, W, K, S, P, OH, OW, dx + b0 * CHW);
        }
    }
}

/* ---- the layer kind ------------------------------------------------------
 * sn=true: spectral normalization (src/nn/spectral.c) of the weight as the
 * matrix [out, in*K*K]: weight_orig, weight_u [out], weight_v [in*K*K]; the
 * sn block comes first in aux, the convolution's columns after it. */

enum { OUT, KERNEL, STRIDE, PAD, BIAS, SN, N_OPTS };
static const gt_layer_opt opts[N_OPTS] = {
    [OUT] = {"out", GT_OPT_INT, NULL, 1, 1 << 30, 0, 0, "output channels"},
    [KERNEL] = {"kernel", GT_OPT_INT, NULL, 1, 1 << 16, 0, 0, "kernel size (square)"},
    [STRIDE] = {"stride", GT_OPT_INT, "1", 1, 1 << 16, 0, 0, "stride"},
    [PAD] = {"pad", GT_OPT_INT, "0", 0, 1 << 16, 0, 0, "zero padding on each side"},
    [BIAS] = {"bias", GT_OPT_BOOL, "true", 0, 1, 0, 0, "add a bias per output channel"},
    [SN] = {"sn", GT_OPT_BOOL, "false", 0, 1, 0, 0,
            "spectral normalization of the weight (torch.nn.utils.spectral_norm: one power iteration per training "
            "forward)"},
};

static gt_status shape(const gt_layer *L, gt_shape *out) {
    int K = (int)gt_opt_int(L, KERNEL), S = (int)gt_opt_int(L, STRIDE), P = (int)gt_opt_int(L, PAD);
    if (L->in.h + 2 * P < K || L->in.w + 2 * P < K)
        return GT_ERROR("kernel %d is larger than the padded input %dx%d", K, L->in.h + 2 * P, L->in.w + 2 * P);
    *out = (gt_shape){(int)gt_opt_int(L, OUT), gt_conv_out_size(L->in.h, K, S, P), gt_conv_out_size(L->in.w, K, S, P)};
    return GT_OK;
}

static int has_bias(const gt_layer *L) { return gt_opt_int(L, BIAS) != 0; }
static int has_sn(const gt_layer *L) { return gt_opt_int(L, SN) != 0; }
static gt_sn_matrix sn_matrix(const gt_layer *L) {
    int K = (int)gt_opt_int(L, KERNEL);
    return (gt_sn_matrix){1, L->out.c, L->in.c * K * K};
}

static int tensors(const gt_layer *L, gt_tensor_desc *t) {
    int K = (int)gt_opt_int(L, KERNEL), C = L->in.c, O = L->out.c, n = 0;
    t[n++] = (gt_tensor_desc){has_sn(L) ? "weight_orig" : "weight", GT_T_WEIGHT, 1, 4, {O, C, K, K}, C * K * K,
                              O * K * K};
    if (has_bias(L)) t[n++] = (gt_tensor_desc){"bias", GT_T_BIAS, 1, 1, {O}, C * K * K, 0};
    if (has_sn(L)) {
        t[n++] = (gt_tensor_desc){"weight_u", GT_T_UNIT, 0, 1, {O}, 0, 0};
        t[n++] = (gt_tensor_desc){"weight_v", GT_T_UNIT, 0, 1, {C * K * K}, 0, 0};
    }
    return n;
}

/* aux: (sn) the sn block first, then the convolution's columns */
static size_t sn_floats(const gt_layer *L) { return has_sn(L) ? gt_sn_aux_floats(sn_matrix(L)) : 0; }

static size_t aux_floats(const gt_layer *L, int B) {
    return sn_floats(L) + gt_conv2d_scratch(B, L->in.c, L->in.h, L->in.w, L->out.c, (int)gt_opt_int(L, KERNEL),
                                            (int)gt_opt_int(L, STRIDE), L->out.h, L->out.w);
}

static void forward(gt_layer *L, const float *x, float *y, const gt_pass *p) {
    const float *b = has_bias(L) ? gt_layer_tensor(L, L->param, 1) : NULL;
    const float *W = has_sn(L) ? gt_sn_weight(L, L->aux, sn_matrix(L), 1 + has_bias(L), p->train) : L->param;
    gt_conv2d_forward(y, x, W, b, p->B, L->in.c, L->in.h, L->in.w, L->out.c, (int)gt_opt_int(L, KERNEL),
                      (int)gt_opt_int(L, STRIDE), (int)gt_opt_int(L, PAD), L->aux + sn_floats(L));
}

static void backward(gt_layer *L, const float *x, const float *y, const float *dy, float *dx, int param_grads,
                     const gt_pass *p) {
    (void)y;
    int sn = has_sn(L);
    const float *W = sn ? gt_sn_aux_at(L->aux, sn_matrix(L)).W_sn : L->param;
    float *dW = !param_grads ? NULL : sn ? gt_sn_grad_begin(L->aux, sn_matrix(L)) : L->grad;
    float *db = param_grads && has_bias(L) ? gt_layer_tensor(L, L->grad, 1) : NULL;
    gt_conv2d_backward(dx, dW, db, dy, x, W, p->B, L->in.c, L->in.h, L->in.w, L->out.c, (int)gt_opt_int(L, KERNEL),
                       (int)gt_opt_int(L, STRIDE), (int)gt_opt_int(L, PAD), L->aux + sn_floats(L), 1);
    if (sn && param_grads) gt_sn_grad_end(L, L->aux, sn_matrix(L), 1 + has_bias(L));
}

const gt_layer_kind gt_layer_conv2d = {
    .name = "conv2d",
    .torch = "nn.Conv2d, weight [out,in,K,K]",
    .help = "2-D convolution, square kernel, zero padding",
    .opts = opts,
    .n_opts = N_OPTS,
    .shape = shape,
    .tensors = tensors,
    .aux_floats = aux_floats,
    .aux_is_workspace = 1,
    .forward = forward,
    .backward = backward,
};
