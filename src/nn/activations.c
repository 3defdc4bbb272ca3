/* Elementwise activations: relu, leakyrelu, tanh, sigmoid. x, y, dy, dx [n]. */
#include "gentrain/core.h"
#include "gentrain/layers.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

void gt_relu_forward(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
/* Branch-free select of a where c else b, on the bits, so that the loops
 * vectorize (GCC does not if-convert the float forms under -ftrapping-math). */
static inline float select_bits(int c, float a, float b) {
    uint32_t ua, ub, m = -(uint32_t)(c != 0);
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    ua = (ua & m) | (ub & ~m);
    memcpy(&a, &ua, sizeof a);
    return a;
}

/* from the output, like PyTorch's threshold_backward(grad, result, 0) */
void gt_relu_backward(float *dx, const float *dy, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) dx[i] = select_bits(y[i] > 0.0f, dy[i], 0.0f);
}

void gt_leakyrelu_forward(float *y, const float *x, size_t n, float slope) {
    for (size_t i = 0; i < n; i++) y[i] = select_bits(x[i] > 0.0f, x[i], x[i] * slope);
}
/* from the input, like PyTorch's leaky_relu_backward(grad, self, slope) */
void gt_leakyrelu_backward(float *dx, const float *dy, const float *x, size_t n, float slope) {
    for (size_t i = 0; i < n; i++) dx[i] = select_bits(x[i] > 0.0f, dy[i], dy[i] * slope);
}

void gt_tanh_forward(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}
void gt_tanh_backward(float *dx, const float *dy, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

void gt_sigmoid_forward(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
}
void gt_sigmoid_backward(float *dx, const float *dy, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (1.0f - y[i]) * y[i];
}
