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

/* ---- the layer kind ------------------------------------------------------ */

enum { OUT, BIAS, N_OPTS };
static const gt_layer_opt opts[N_OPTS] = {
    [OUT] = {"out", GT_OPT_INT, NULL, 1, 1 << 30, 0, 0, "output features"},
    [BIAS] = {"bias", GT_OPT_BOOL, "true", 0, 1, 0, 0, "add a bias"},
};

static gt_status shape(const gt_layer *L, gt_shape *out) {
    if (L->in.h != 1 || L->in.w != 1) return GT_ERROR("dense needs a flat input; add a flatten layer before it");
    *out = (gt_shape){(int)gt_opt_int(L, OUT), 1, 1};
    return GT_OK;
}

static int tensors(const gt_layer *L, gt_tensor_desc *t) {
    int in = L->in.c, out = L->out.c;
    t[0] = (gt_tensor_desc){"weight", GT_T_WEIGHT, 1, 2, {out, in}, in, out};
    if (!gt_opt_int(L, BIAS)) return 1;
    t[1] = (gt_tensor_desc){"bias", GT_T_BIAS, 1, 1, {out}, in, 0};
    return 2;
}

static void forward(gt_layer *L, const float *x, float *y, const gt_pass *p) {
    const float *b = gt_opt_int(L, BIAS) ? gt_layer_tensor(L, L->param, 1) : NULL;
    gt_dense_forward(y, x, L->param, b, p->B, L->in.c, L->out.c);
}

static void backward(gt_layer *L, const float *x, const float *y, const float *dy, float *dx, int param_grads,
                     const gt_pass *p) {
    (void)y;
    float *dW = param_grads ? L->grad : NULL;
    float *db = param_grads && gt_opt_int(L, BIAS) ? gt_layer_tensor(L, L->grad, 1) : NULL;
    gt_dense_backward(dx, dW, db, dy, x, L->param, p->B, L->in.c, L->out.c);
}

const gt_layer_kind gt_layer_dense = {
    .name = "dense",
    .torch = "nn.Linear, weight [out,in]",
    .help = "fully connected; needs a flat input (flatten first)",
    .opts = opts,
    .n_opts = N_OPTS,
    .shape = shape,
    .tensors = tensors,
    .forward = forward,
    .backward = backward,
};
