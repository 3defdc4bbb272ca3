/* LayerNorm (nn.LayerNorm over the whole per-example shape): each example is
 * normalized by its own mean and (biased) variance over its C*H*W values,
 * then scaled and shifted elementwise: y = weight * (x - mean) / sqrt(var +
 * eps) + bias, weight and bias of the per-example shape ([C] for vectors,
 * [C,H,W] for images, as PyTorch's normalized_shape). The same in training
 * and evaluation: no running statistics, no coupling between examples.
 *
 * aux: xhat [B,N] | invstd [B], N = C*H*W. */
#include "gentrain/layers.h"

#include <math.h>

enum { EPS, N_OPTS };
static const gt_layer_opt opts[N_OPTS] = {
    [EPS] = {"eps", GT_OPT_FLOAT, "1e-5", 0, 1, 1, 0, "added to the variance"},
};

static gt_status shape(const gt_layer *L, gt_shape *out) {
    *out = L->in;
    return GT_OK;
}

static int tensors(const gt_layer *L, gt_tensor_desc *t) {
    gt_shape s = L->in;
    int vec = s.h == 1 && s.w == 1;
    t[0] = (gt_tensor_desc){"weight", GT_T_SCALE, 1, vec ? 1 : 3, {s.c, s.h, s.w}, 0, 0};
    t[1] = (gt_tensor_desc){"bias", GT_T_SHIFT, 1, vec ? 1 : 3, {s.c, s.h, s.w}, 0, 0};
    return 2;
}

static size_t aux_floats(const gt_layer *L, int B) { return (size_t)B * (gt_shape_size(L->in) + 1); }

/* x [B,N] -> y [B,N]; per example: mean and variance in double, two passes. */
static void forward(gt_layer *L, const float *x, float *y, const gt_pass *p) {
    size_t N = gt_shape_size(L->in);
    float eps = gt_opt_float(L, EPS);
    const float *w = L->param, *b = gt_layer_tensor(L, L->param, 1);
    float *xhat = L->aux, *invstd = L->aux + (size_t)p->B * N;
#pragma omp parallel for schedule(static) if ((size_t)p->B * N >= GT_PAR_MIN)
    for (int i = 0; i < p->B; i++) {
        const float *xi = x + (size_t)i * N;
        double m = 0, v = 0;
        for (size_t k = 0; k < N; k++) m += xi[k];
        m /= (double)N;
        for (size_t k = 0; k < N; k++) v += ((double)xi[k] - m) * ((double)xi[k] - m);
        float is = (float)(1.0 / sqrt(v / (double)N + eps)), mf = (float)m;
        invstd[i] = is;
        float *hi = xhat + (size_t)i * N, *yi = y + (size_t)i * N;
        for (size_t k = 0; k < N; k++) {
            hi[k] = (xi[k] - mf) * is;
            yi[k] = w[k] * hi[k] + b[k];
        }
    }
}

/* dy -> dx = invstd/N * (N g - sum g - xhat sum(g xhat)), g = dy * weight;
 * dweight += sum_B dy xhat, dbias += sum_B dy. */
static void backward(gt_layer *L, const float *x, const float *y, const float *dy, float *dx, int param_grads,
                     const gt_pass *p) {
    (void)x;
    (void)y;
    size_t N = gt_shape_size(L->in);
    const float *w = L->param, *xhat = L->aux, *invstd = L->aux + (size_t)p->B * N;
    float *dw = param_grads ? L->grad : NULL, *db = param_grads ? gt_layer_tensor(L, L->grad, 1) : NULL;
    if (dw) /* each element's sum over the examples in order */
        for (int i = 0; i < p->B; i++) {
            const float *gi = dy + (size_t)i * N, *hi = xhat + (size_t)i * N;
            for (size_t k = 0; k < N; k++) {
                dw[k] += gi[k] * hi[k];
                db[k] += gi[k];
            }
        }
    if (!dx) return;
#pragma omp parallel for schedule(static) if ((size_t)p->B * N >= GT_PAR_MIN)
    for (int i = 0; i < p->B; i++) {
        const float *gi = dy + (size_t)i * N, *hi = xhat + (size_t)i * N;
        double s = 0, sh = 0;
        for (size_t k = 0; k < N; k++) {
            double g = (double)gi[k] * w[k];
            s += g;
            sh += g * hi[k];
        }
        float ms = (float)(s / (double)N), msh = (float)(sh / (double)N), is = invstd[i];
        float *dxi = dx + (size_t)i * N;
        for (size_t k = 0; k < N; k++) dxi[k] = is * (gi[k] * w[k] - ms - hi[k] * msh);
    }
}

const gt_layer_kind gt_layer_layernorm = {
    .name = "layernorm",
    .torch = "nn.LayerNorm(normalized_shape = the per-example shape)",
    .help = "normalizes each example over all its values, elementwise affine",
    .opts = opts,
    .n_opts = N_OPTS,
    .shape = shape,
    .tensors = tensors,
    .aux_floats = aux_floats,
    .forward = forward,
    .backward = backward,
};
