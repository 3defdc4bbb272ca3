/* Dense (nn.Linear): y = x W^T + b, weight [out,in] as PyTorch. */
#include "gentrain/core.h"
#include "gentrain/layers.h"

#include <omp.h>

/* x [B,in], W [out,in], b [out] or NULL -> y [B,out] */
void gt_dense_forward(float *y, const float *x, const float *W, const float *b, int B, int in, int out) {
    gt_sgemm(0, 1, B, out, in, 1.0f, x, in, W, in, 0.0f, y, out);
    if (b)
#pragma omp parallel for schedule(static) if ((size_t)B * out >= GT_PAR_MIN)
        for (int i = 0; i < B; i++) {
            float *yi = y + (size_t)i * out;
            for (int o = 0; o < out; o++) yi[o] += b[o];
        }
}

/* dy [B,out] -> dx [B,in] = dy W; dW [out,in] += dy^T x; db [out] += sum_B dy */
void gt_dense_backward(float *dx, float *dW, float *db, const float *dy, const float *x, const float *W,
                       int B, int in, int out) {
    if (dx) gt_sgemm(0, 0, B, in, out, 1.0f, dy, out, W, in, 0.0f, dx, in);
    if (dW) gt_sgemm(1, 0, out, in, B, 1.0f, dy, out, x, in, 1.0f, dW, in);
    if (db) /* one thread per range of outputs, each summed over i = 0, 1, ... */
#pragma omp parallel if ((size_t)B * out >= GT_PAR_MIN)
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int lo = (int)((long)out * t / nt), hi = (int)((long)out * (t + 1) / nt);
        for (int i = 0; i < B; i++) {
            const float *dyi = dy + (size_t)i * out;
            for (int o = lo; o < hi; o++) db[o] += dyi[o];
        }
    }
}

/* ---- the layer kind ------------------------------------------------------
 * sn=true: spectral normalization (src/nn/spectral.c): the weight is
 * PyTorch's weight_orig, the layer computes with weight_orig / sigma; state
 * weight_u [out], weight_v [in]; aux: the sn block. */

enum { OUT, BIAS, SN, N_OPTS };
static const gt_layer_opt opts[N_OPTS] = {
    [OUT] = {"out", GT_OPT_INT, NULL, 1, 1 << 30, 0, 0, "output features"},
    [BIAS] = {"bias", GT_OPT_BOOL, "true", 0, 1, 0, 0, "add a bias"},
    [SN] = {"sn", GT_OPT_BOOL, "false", 0, 1, 0, 0,
            "spectral normalization of the weight (torch.nn.utils.spectral_norm: one power iteration per training "
            "forward)"},
};

static gt_status shape(const gt_layer *L, gt_shape *out) {
    if (L->in.h != 1 || L->in.w != 1) return GT_ERROR("dense needs a flat input; add a flatten layer before it");
    *out = (gt_shape){(int)gt_opt_int(L, OUT), 1, 1};
    return GT_OK;
}

static int has_bias(const gt_layer *L) { return gt_opt_int(L, BIAS) != 0; }
static int has_sn(const gt_layer *L) { return gt_opt_int(L, SN) != 0; }
static gt_sn_matrix sn_matrix(const gt_layer *L) { return (gt_sn_matrix){1, L->out.c, L->in.c}; }

static int tensors(const gt_layer *L, gt_tensor_desc *t) {
    int in = L->in.c, out = L->out.c, n = 0;
    t[n++] = (gt_tensor_desc){has_sn(L) ? "weight_orig" : "weight", GT_T_WEIGHT, 1, 2, {out, in}, in, out};
    if (has_bias(L)) t[n++] = (gt_tensor_desc){"bias", GT_T_BIAS, 1, 1, {out}, in, 0};
    if (has_sn(L)) {
        t[n++] = (gt_tensor_desc){"weight_u", GT_T_UNIT, 0, 1, {out}, 0, 0};
        t[n++] = (gt_tensor_desc){"weight_v", GT_T_UNIT, 0, 1, {in}, 0, 0};
    }
    return n;
}

static size_t aux_floats(const gt_layer *L, int B) {
    (void)B;
    return has_sn(L) ? gt_sn_aux_floats(sn_matrix(L)) : 0;
}

static void forward(gt_layer *L, const float *x, float *y, const gt_pass *p) {
    const float *b = has_bias(L) ? gt_layer_tensor(L, L->param, 1) : NULL;
    const float *W = has_sn(L) ? gt_sn_weight(L, L->aux, sn_matrix(L), 1 + has_bias(L), p->train) : L->param;
    gt_dense_forward(y, x, W, b, p->B, L->in.c, L->out.c);
}

static void backward(gt_layer *L, const float *x, const float *y, const float *dy, float *dx, int param_grads,
                     const gt_pass *p) {
    (void)y;
    int sn = has_sn(L);
    const float *W = sn ? gt_sn_aux_at(L->aux, sn_matrix(L)).W_sn : L->param;
    float *dW = !param_grads ? NULL : sn ? gt_sn_grad_begin(L->aux, sn_matrix(L)) : L->grad;
    float *db = param_grads && has_bias(L) ? gt_layer_tensor(L, L->grad, 1) : NULL;
    gt_dense_backward(dx, dW, db, dy, x, W, p->B, L->in.c, L->out.c);
    if (sn && param_grads) gt_sn_grad_end(L, L->aux, sn_matrix(L), 1 + has_bias(L));
}

const gt_layer_kind gt_layer_dense = {
    .name = "dense",
    .torch = "nn.Linear, weight [out,in]",
    .help = "fully connected; needs a flat input (flatten first)",
    .opts = opts,
    .n_opts = N_OPTS,
    .shape = shape,
    .tensors = tensors,
    .aux_floats = aux_floats,
    .aux_is_workspace = 1,
    .forward = forward,
    .backward = backward,
};
