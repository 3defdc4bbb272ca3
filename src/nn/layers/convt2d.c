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
        gt_nn_col2im_batch(col, n, OC, OH, OW, K, S, P, H, W, yc);
        if (bias)
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)n * OC * OL >= GT_PAR_MIN)
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

/* ---- the layer kind ------------------------------------------------------
 * sn=true: spectral normalization (src/nn/spectral.c) with PyTorch's dim = 1
 * for ConvTranspose2d: the matrix [out, in*K*K] of weight [in,out,K,K];
 * weight_orig, weight_u [out], weight_v [in*K*K]; aux: the sn block. */

enum { OUT, KERNEL, STRIDE, PAD, OUTPUT_PAD, BIAS, SN, N_OPTS };
static const gt_layer_opt opts[N_OPTS] = {
    [OUT] = {"out", GT_OPT_INT, NULL, 1, 1 << 30, 0, 0, "output channels"},
    [KERNEL] = {"kernel", GT_OPT_INT, NULL, 1, 1 << 16, 0, 0, "kernel size (square)"},
    [STRIDE] = {"stride", GT_OPT_INT, "1", 1, 1 << 16, 0, 0, "stride"},
    [PAD] = {"pad", GT_OPT_INT, "0", 0, 1 << 16, 0, 0, "padding removed from each side of the output"},
    [OUTPUT_PAD] = {"output_pad", GT_OPT_INT, "0", 0, 1 << 16, 0, 0, "extra rows/columns on one side (< stride)"},
    [BIAS] = {"bias", GT_OPT_BOOL, "true", 0, 1, 0, 0, "add a bias per output channel"},
    [SN] = {"sn", GT_OPT_BOOL, "false", 0, 1, 0, 0,
            "spectral normalization of the weight (torch.nn.utils.spectral_norm with dim=1: one power iteration per "
            "training forward)"},
};

static gt_status shape(const gt_layer *L, gt_shape *out) {
    int K = (int)gt_opt_int(L, KERNEL), S = (int)gt_opt_int(L, STRIDE), P = (int)gt_opt_int(L, PAD);
    int Q = (int)gt_opt_int(L, OUTPUT_PAD);
    if (Q >= S) return GT_ERROR("convt2d needs 0 <= output_pad < stride (got output_pad %d, stride %d)", Q, S);
    long oh = (long)(L->in.h - 1) * S - 2L * P + K + Q, ow = (long)(L->in.w - 1) * S - 2L * P + K + Q;
    if (oh < 1 || ow < 1) return GT_ERROR("output would be %ldx%ld (padding %d too large)", oh, ow, P);
    if (oh > (1L << 24) || ow > (1L << 24)) return GT_ERROR("output would be %ldx%ld: too large", oh, ow);
    *out = (gt_shape){(int)gt_opt_int(L, OUT), (int)oh, (int)ow};
    return GT_OK;
}

static int has_bias(const gt_layer *L) { return gt_opt_int(L, BIAS) != 0; }
static int has_sn(const gt_layer *L) { return gt_opt_int(L, SN) != 0; }
static gt_sn_matrix sn_matrix(const gt_layer *L) {
    int K = (int)gt_opt_int(L, KERNEL);
    return (gt_sn_matrix){L->in.c, L->out.c, K * K};
}

/* PyTorch's fan-in of a ConvTranspose2d weight [in,out,K,K] is weight.size(1)*K*K = out*K*K. */
static int tensors(const gt_layer *L, gt_tensor_desc *t) {
    int K = (int)gt_opt_int(L, KERNEL), C = L->in.c, O = L->out.c, n = 0;
    t[n++] = (gt_tensor_desc){has_sn(L) ? "weight_orig" : "weight", GT_T_WEIGHT, 1, 4, {C, O, K, K}, O * K * K,
                              C * K * K};
    if (has_bias(L)) t[n++] = (gt_tensor_desc){"bias", GT_T_BIAS, 1, 1, {O}, O * K * K, 0};
    if (has_sn(L)) {
        t[n++] = (gt_tensor_desc){"weight_u", GT_T_UNIT, 0, 1, {O}, 0, 0};
        t[n++] = (gt_tensor_desc){"weight_v", GT_T_UNIT, 0, 1, {C * K * K}, 0, 0};
    }
    return n;
}

static size_t aux_floats(const gt_layer *L, int B) {
    (void)B;
    return has_sn(L) ? gt_sn_aux_floats(sn_matrix(L)) : 0;
}

static size_t scratch_floats(const gt_layer *L, int B) {
    return gt_convt2d_scratch(B, L->in.c, L->out.c, (int)gt_opt_int(L, KERNEL), L->in.h, L->in.w);
}

static void forward(gt_layer *L, const float *x, float *y, const gt_pass *p) {
    const float *b = has_bias(L) ? gt_layer_tensor(L, L->param, 1) : NULL;
    const float *W = has_sn(L) ? gt_sn_weight(L, L->aux, sn_matrix(L), 1 + has_bias(L), p->train) : L->param;
    gt_convt2d_forward(y, x, W, b, p->B, L->in.c, L->in.h, L->in.w, L->out.c, (int)gt_opt_int(L, KERNEL),
                       (int)gt_opt_int(L, STRIDE), (int)gt_opt_int(L, PAD), (int)gt_opt_int(L, OUTPUT_PAD), p->scratch);
}

static void backward(gt_layer *L, const float *x, const float *y, const float *dy, float *dx, int param_grads,
                     const gt_pass *p) {
    (void)y;
    int sn = has_sn(L);
    const float *W = sn ? gt_sn_aux_at(L->aux, sn_matrix(L)).W_sn : L->param;
    float *dW = !param_grads ? NULL : sn ? gt_sn_grad_begin(L->aux, sn_matrix(L)) : L->grad;
    float *db = param_grads && has_bias(L) ? gt_layer_tensor(L, L->grad, 1) : NULL;
    gt_convt2d_backward(dx, dW, db, dy, x, W, p->B, L->in.c, L->in.h, L->in.w, L->out.c, (int)gt_opt_int(L, KERNEL),
                        (int)gt_opt_int(L, STRIDE), (int)gt_opt_int(L, PAD), (int)gt_opt_int(L, OUTPUT_PAD),
                        p->scratch);
    if (sn && param_grads) gt_sn_grad_end(L, L->aux, sn_matrix(L), 1 + has_bias(L));
}

const gt_layer_kind gt_layer_convt2d = {
    .name = "convt2d",
    .torch = "nn.ConvTranspose2d, weight [in,out,K,K]",
    .help = "2-D transposed convolution (the adjoint of conv2d), square kernel",
    .opts = opts,
    .n_opts = N_OPTS,
    .shape = shape,
    .tensors = tensors,
    .aux_floats = aux_floats,
    .aux_is_workspace = 1,
    .scratch_floats = scratch_floats,
    .forward = forward,
    .backward = backward,
};
