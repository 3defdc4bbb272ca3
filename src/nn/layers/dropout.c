/* Dropout (nn.Dropout): per-example masks from the counter-based RNG keyed by
 * the example's global position, so a batch split over ranks or calls draws
 * the same masks as the whole batch. x, y, mask [B,n]. */
#include "gentrain/core.h"
#include "gentrain/layers.h"

#include <string.h>

void gt_dropout_forward(float *y, float *mask, const float *x, int B, size_t n, float p, int train,
                        const gt_rng_ctx *rng, int layer) {
    size_t total = (size_t)B * n;
    if (!train) {
        if (y != x) memcpy(y, x, sizeof(float) * total);
        return;
    }
    uint32_t purpose = GT_PURPOSE(GT_RNG_DROPOUT, ((uint32_t)rng->call << 8) | ((uint32_t)layer & 0xffu));
    uint64_t stride = rng->stride ? rng->stride : 1;
    float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
#pragma omp parallel for schedule(static) if (total >= GT_PAR_MIN)
    for (int i = 0; i < B; i++) {
        float *m = mask + (size_t)i * n, *yi = y + (size_t)i * n;
        const float *xi = x + (size_t)i * n;
        gt_rand_uniform(m, n, rng->seed, purpose, rng->step, rng->example0 + (uint64_t)i * stride);
        for (size_t j = 0; j < n; j++) {
            m[j] = gt_select_bits(m[j] >= p, scale, 0.0f);
            yi[j] = xi[j] * m[j];
        }
    }
}

void gt_dropout_backward(float *dx, const float *dy, const float *mask, size_t total, int train) {
    if (!train) {
        if (dx != dy) memcpy(dx, dy, sizeof(float) * total);
        return;
    }
#pragma omp parallel for schedule(static) if (total >= GT_PAR_MIN)
    for (size_t k = 0; k < total; k++) dx[k] = dy[k] * mask[k];
}

/* ---- the layer kind ------------------------------------------------------ */

enum { P, N_OPTS };
static const gt_layer_opt opts[N_OPTS] = {
    [P] = {"p", GT_OPT_FLOAT, "0.5", 0, 1, 0, 1, "probability of zeroing an element (training only)"},
};

static gt_status shape(const gt_layer *L, gt_shape *out) {
    *out = L->in;
    return GT_OK;
}

static size_t aux_floats(const gt_layer *L, int B) { return (size_t)B * gt_shape_size(L->in); }

static void forward(gt_layer *L, const float *x, float *y, const gt_pass *p) {
    gt_dropout_forward(y, L->aux, x, p->B, gt_shape_size(L->in), gt_opt_float(L, P), p->train, &p->rng, L->index);
}

static void backward(gt_layer *L, const float *x, const float *y, const float *dy, float *dx, int param_grads,
                     const gt_pass *p) {
    (void)x;
    (void)y;
    (void)param_grads;
    gt_dropout_backward(dx, dy, L->aux, (size_t)p->B * gt_shape_size(L->in), p->train);
}

const gt_layer_kind gt_layer_dropout = {
    .name = "dropout",
    .torch = "nn.Dropout",
    .help = "zeroes elements with probability p and scales the rest by 1/(1-p) in training",
    .opts = opts,
    .n_opts = N_OPTS,
    .shape = shape,
    .aux_floats = aux_floats,
    .forward = forward,
    .backward = backward,
};
