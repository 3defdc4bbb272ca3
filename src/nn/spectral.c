/* Spectral normalization, as torch.nn.utils.spectral_norm (PyTorch 1.13):
 * the option sn=true of dense, conv2d and convt2d (include/gentrain/layers.h).
 *
 * The layer's trainable weight is PyTorch's weight_orig W; the weight it uses
 * is W_sn = W / sigma, sigma = u^T W v, with u [rows] and v [cols] kept as
 * state (weight_u, weight_v). In training mode every forward first does one
 * power iteration, v = normalize(W^T u), u = normalize(W v), without a
 * gradient; in evaluation mode u and v stay. normalize(x) = x / max(|x|, 1e-12).
 * The gradient goes through sigma with u and v held fixed (as autograd does
 * for PyTorch's no_grad power iteration):
 *     dL/dW = (G - <G, W_sn> u v^T) / sigma,   G = dL/dW_sn.
 * u and v depend only on W and on themselves, never on the batch, so replicas
 * with the same weights keep the same u and v without communicating.
 * Sums are taken in double. */
#include "gentrain/core.h"
#include "gentrain/layers.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define SN_EPS 1e-12

/* t [rows] = W v */
static void mat_vec(double *t, const float *W, const float *v, gt_sn_matrix m) {
    for (int r = 0; r < m.rows; r++) t[r] = 0.0;
    for (int o = 0; o < m.outer; o++)
        for (int r = 0; r < m.rows; r++) {
            const float *w = W + ((size_t)o * m.rows + r) * m.inner, *vo = v + (size_t)o * m.inner;
            double s = 0.0;
            for (int i = 0; i < m.inner; i++) s += (double)w[i] * vo[i];
            t[r] += s;
        }
}

/* out [cols] = W^T u */
static void mat_t_vec(float *out, const float *W, const float *u, gt_sn_matrix m) {
    for (int o = 0; o < m.outer; o++) {
        float *dst = out + (size_t)o * m.inner;
        for (int i = 0; i < m.inner; i++) {
            double s = 0.0;
            for (int r = 0; r < m.rows; r++) s += (double)W[((size_t)o * m.rows + r) * m.inner + i] * u[r];
            dst[i] = (float)s;
        }
    }
}

static void normalize(float *x, size_t n) {
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float inv = (float)(1.0 / fmax(sqrt(ss), SN_EPS));
    for (size_t i = 0; i < n; i++) x[i] *= inv;
}

size_t gt_sn_aux_floats(gt_sn_matrix m) { return 2 * (size_t)m.rows + 2 * (size_t)m.outer * m.rows * m.inner + 2; }

gt_sn_aux gt_sn_aux_at(float *block, gt_sn_matrix m) {
    GT_ASSERT(((uintptr_t)block & 7) == 0, "spectral norm: aux block not 8-byte aligned");
    size_t n = (size_t)m.outer * m.rows * m.inner;
    gt_sn_aux a = {(double *)block, block + 2 * (size_t)m.rows, block + 2 * (size_t)m.rows + n,
                   block + 2 * (size_t)m.rows + 2 * n};
    return a;
}

float gt_sn_forward(float *W_sn, const float *W, float *u, float *v, gt_sn_matrix m, int power, double *t) {
    size_t n = (size_t)m.outer * m.rows * m.inner, cols = (size_t)m.outer * m.inner;
    if (power) {
        mat_t_vec(v, W, u, m);
        normalize(v, cols);
        mat_vec(t, W, v, m);
        for (int r = 0; r < m.rows; r++) u[r] = (float)t[r];
        normalize(u, (size_t)m.rows);
    }
    mat_vec(t, W, v, m);
    double s = 0.0;
    for (int r = 0; r < m.rows; r++) s += (double)u[r] * t[r];
    float sigma = (float)s;
    for (size_t i = 0; i < n; i++) W_sn[i] = W[i] / sigma;
    return sigma;
}

void gt_sn_backward(float *dW, const float *G, const float *W_sn, const float *u, const float *v, float sigma,
                    gt_sn_matrix m) {
    size_t n = (size_t)m.outer * m.rows * m.inner;
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)G[i] * W_sn[i];
    double inv = 1.0 / sigma;
    for (int o = 0; o < m.outer; o++)
        for (int r = 0; r < m.rows; r++) {
            size_t base = ((size_t)o * m.rows + r) * m.inner;
            const float *vo = v + (size_t)o * m.inner;
            double su = s * u[r];
            for (int i = 0; i < m.inner; i++)
                dW[base + i] += (float)(((double)G[base + i] - su * vo[i]) * inv);
        }
}

/* ---- for the layer kinds ------------------------------------------------- */

const float *gt_sn_weight(gt_layer *L, float *block, gt_sn_matrix m, int u_tensor, int train) {
    gt_sn_aux a = gt_sn_aux_at(block, m);
    float *u = gt_layer_tensor(L, L->state, u_tensor), *v = gt_layer_tensor(L, L->state, u_tensor + 1);
    *a.sigma = gt_sn_forward(a.W_sn, L->param, u, v, m, train, a.t);
    return a.W_sn;
}

float *gt_sn_grad_begin(float *block, gt_sn_matrix m) {
    gt_sn_aux a = gt_sn_aux_at(block, m);
    memset(a.G, 0, sizeof(float) * (size_t)m.outer * m.rows * m.inner);
    return a.G;
}

void gt_sn_grad_end(gt_layer *L, float *block, gt_sn_matrix m, int u_tensor) {
    gt_sn_aux a = gt_sn_aux_at(block, m);
    gt_sn_backward(L->grad, a.G, a.W_sn, gt_layer_tensor(L, L->state, u_tensor),
                   gt_layer_tensor(L, L->state, u_tensor + 1), *a.sigma, m);
}
