/* Tanh (nn.Tanh). x, y, dy, dx [n]. */
#include "gentrain/layers.h"

#include <math.h>

void gt_tanh_forward(float *y, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n >= GT_PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}

void gt_tanh_backward(float *dx, const float *dy, const float *y, size_t n) {
#pragma omp parallel for schedule(static) if (n >= GT_PAR_MIN)
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

static gt_status shape(const gt_layer *L, gt_shape *out) {
    *out = L->in;
    return GT_OK;
}

static void forward(gt_layer *L, const float *x, float *y, const gt_pass *p) {
    gt_tanh_forward(y, x, (size_t)p->B * gt_shape_size(L->in));
}

static void backward(gt_layer *L, const float *x, const float *y, const float *dy, float *dx, int param_grads,
                     const gt_pass *p) {
    (void)x;
    (void)param_grads;
    gt_tanh_backward(dx, dy, y, (size_t)p->B * gt_shape_size(L->in));
}

const gt_layer_kind gt_layer_tanh = {
    .name = "tanh",
    .torch = "nn.Tanh",
    .help = "tanh(x)",
    .shape = shape,
    .forward = forward,
    .backward = backward,
};
