/* LeakyReLU (nn.LeakyReLU): y = x if x > 0 else slope * x. x, y, dy, dx [n]. */
#include "gentrain/layers.h"

void gt_leakyrelu_forward(float *y, const float *x, size_t n, float slope) {
#pragma omp parallel for schedule(static) if (n >= GT_PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = gt_select_bits(x[i] > 0.0f, x[i], x[i] * slope);
}

/* from the input, like PyTorch's leaky_relu_backward(grad, self, slope) */
void gt_leakyrelu_backward(float *dx, const float *dy, const float *x, size_t n, float slope) {
#pragma omp parallel for schedule(static) if (n >= GT_PAR_MIN)
    for (size_t i = 0; i < n; i++) dx[i] = gt_select_bits(x[i] > 0.0f, dy[i], dy[i] * slope);
}

enum { SLOPE, N_OPTS };
static const gt_layer_opt opts[N_OPTS] = {
    [SLOPE] = {"slope", GT_OPT_FLOAT, "0.01", 0, 1e6, 0, 0, "slope for negative inputs"},
};

static gt_status shape(const gt_layer *L, gt_shape *out) {
    *out = L->in;
    return GT_OK;
}

static void forward(gt_layer *L, const float *x, float *y, const gt_pass *p) {
    gt_leakyrelu_forward(y, x, (size_t)p->B * gt_shape_size(L->in), gt_opt_float(L, SLOPE));
}

static void backward(gt_layer *L, const float *x, const float *y, const float *dy, float *dx, int param_grads,
                     const gt_pass *p) {
    (void)y;
    (void)param_grads;
    gt_leakyrelu_backward(dx, dy, x, (size_t)p->B * gt_shape_size(L->in), gt_opt_float(L, SLOPE));
}

const gt_layer_kind gt_layer_leakyrelu = {
    .name = "leakyrelu",
    .torch = "nn.LeakyReLU",
    .help = "x for x > 0, slope * x otherwise",
    .opts = opts,
    .n_opts = N_OPTS,
    .shape = shape,
    .forward = forward,
    .backward = backward,
};
