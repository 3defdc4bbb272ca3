/* ReLU (nn.ReLU): y = max(x, 0). x, y, dy, dx [n]. */
#include "gentrain/layers.h"

void gt_relu_forward(float *y, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n >= GT_PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* from the output, like PyTorch's threshold_backward(grad, result, 0) */
void gt_relu_backward(float *dx, const float *dy, const float *y, size_t n) {
#pragma omp parallel for schedule(static) if (n >= GT_PAR_MIN)
    for (size_t i = 0; i < n; i++) dx[i] = gt_select_bits(y[i] > 0.0f, dy[i], 0.0f);
}

static gt_status shape(const gt_layer *L, gt_shape *out) {
    *out = L->in;
    return GT_OK;
}

static void forward(gt_layer *L, const float *x, float *y, const gt_pass *p) {
    gt_relu_forward(y, x, (size_t)p->B * gt_shape_size(L->in));
}

static void backward(gt_layer *L, const float *x, const float *y, const float *dy, float *dx, int param_grads,
                     const gt_pass *p) {
    (void)x;
    (void)param_grads;
    gt_relu_backward(dx, dy, y, (size_t)p->B * gt_shape_size(L->in));
}

const gt_layer_kind gt_layer_relu = {
    .name = "relu",
    .torch = "nn.ReLU",
    .help = "max(x, 0)",
    .shape = shape,
    .forward = forward,
    .backward = backward,
};
