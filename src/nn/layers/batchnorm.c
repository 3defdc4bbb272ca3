/* BatchNorm1d/2d (affine, running statistics, PyTorch semantics), optionally
 * synchronized over replicas through a sum hook (gt_bn_sync).
 *
 * aux layout, gt_batchnorm_aux_size(B,C,HW) floats:
 *   xhat [B,C,HW] | mean [C] | invstd [C] | sums [2C] (scratch for the hook) | coef [3C] | acc: 2C doubles
 * Statistics are two-pass (mean, then the centered sum of squares); with a
 * sync hook each pass's per-channel sums go through the hook (two calls of C
 * floats in the forward, one call of 2C floats [sum dy, sum dy*xhat] in the
 * backward), so every replica must run the same layers in the same order.
 *
 * Every pass walks the tensors in memory order: per-channel sums go into
 * double accumulators acc[c]; a row of HW values is first summed in float over
 * 8 independent lanes (so that the loops vectorize), and HW = 1 (BatchNorm1d)
 * loops over the channels instead. */
#include "gentrain/core.h"
#include "gentrain/layers.h"

#include <math.h>
#include <omp.h>

/* offset in floats of the double accumulators (kept 8-byte aligned) */
static size_t acc_offset(int B, int C, int HW) {
    size_t o = (size_t)B * C * HW + 7 * (size_t)C;
    return o + (o & 1);
}

size_t gt_batchnorm_aux_size(int B, int C, int HW) { return acc_offset(B, C, HW) + 4 * (size_t)C; }

static int sync_on(const gt_bn_sync *sync) { return sync && sync->sum; }

/* The channels [*lo, *hi) of this thread in a parallel region: every
 * per-channel sum stays in one thread, in the order of the examples. */
static void channel_range(int C, int *lo, int *hi) {
    int nt = omp_get_num_threads(), t = omp_get_thread_num();
    *lo = (int)((long)C * t / nt);
    *hi = (int)((long)C * (t + 1) / nt);
}

#define LANES 8

/* sum of p[0..n) */
static inline double row_sum(const float *p, int n) {
    float a[LANES] = {0};
    int l = 0;
    for (; l + LANES <= n; l += LANES)
        for (int j = 0; j < LANES; j++) a[j] += p[l + j];
    double s = 0.0;
    for (int j = 0; j < LANES; j++) s += a[j];
    for (; l < n; l++) s += p[l];
    return s;
}

/* sum of (p[i] - m)^2 over [0, n) */
static inline double row_sq(const float *p, int n, float m) {
    float a[LANES] = {0};
    int l = 0;
    for (; l + LANES <= n; l += LANES)
        for (int j = 0; j < LANES; j++) {
            float d = p[l + j] - m;
            a[j] += d * d;
        }
    double s = 0.0;
    for (int j = 0; j < LANES; j++) s += a[j];
    for (; l < n; l++) {
        float d = p[l] - m;
        s += d * d;
    }
    return s;
}

/* *s += sum of dy, *sx += sum of dy*xh over [0, n) */
static inline void row_dot2(const float *dy, const float *xh, int n, double *s, double *sx) {
    float a[LANES] = {0}, ax[LANES] = {0};
    int l = 0;
    for (; l + LANES <= n; l += LANES)
        for (int j = 0; j < LANES; j++) {
            a[j] += dy[l + j];
            ax[j] += dy[l + j] * xh[l + j];
        }
    double t = 0.0, tx = 0.0;
    for (int j = 0; j < LANES; j++) {
        t += a[j];
        tx += ax[j];
    }
    for (; l < n; l++) {
        t += dy[l];
        tx += dy[l] * xh[l];
    }
    *s += t;
    *sx += tx;
}

/* x [B,C,HW] -> y [B,C,HW] */
void gt_batchnorm_forward(float *y, float *aux, float *running_mean, float *running_var, const float *x,
                          const float *gamma, const float *beta, int B, int C, int HW, float eps,
                          float momentum, int train, const gt_bn_sync *sync) {
    size_t total = (size_t)B * C * HW, CHW = (size_t)C * HW;
    float *xhat = aux, *mean = aux + total, *invstd = mean + C, *sums = invstd + C;
    double *acc = (double *)(aux + acc_offset(B, C, HW)); /* [2C] */
    if (train) {
        int world = 1;
        if (sync_on(sync)) {
            world = sync->world;
            GT_ASSERT(world >= 1, "batchnorm: sync hook with world = %d", world);
        }
        double n = (double)B * HW * world;
        GT_ASSERT(n > 1, "batchnorm in train mode needs more than one value per channel (got %.0f)", n);
        for (int c = 0; c < 2 * C; c++) acc[c] = 0.0;
#pragma omp parallel if (total >= GT_PAR_MIN)
        {
            int c0, c1;
            channel_range(C, &c0, &c1);
            for (int b = 0; b < B; b++) {
                const float *xb = x + b * CHW;
                if (HW == 1)
                    for (int c = c0; c < c1; c++) acc[c] += xb[c];
                else
                    for (int c = c0; c < c1; c++) acc[c] += row_sum(xb + (size_t)c * HW, HW);
            }
        }
        for (int c = 0; c < C; c++) sums[c] = (float)acc[c];
        if (sync_on(sync)) sync->sum(sums, C, sync->arg);
        for (int c = 0; c < C; c++) mean[c] = (float)(sums[c] / n);
#pragma omp parallel if (total >= GT_PAR_MIN)
        {
            int c0, c1;
            channel_range(C, &c0, &c1);
            for (int b = 0; b < B; b++) {
                const float *xb = x + b * CHW;
                if (HW == 1)
                    for (int c = c0; c < c1; c++) {
                        float d = xb[c] - mean[c];
                        acc[C + c] += d * d;
                    }
                else
                    for (int c = c0; c < c1; c++) acc[C + c] += row_sq(xb + (size_t)c * HW, HW, mean[c]);
            }
        }
        for (int c = 0; c < C; c++) sums[C + c] = (float)acc[C + c];
        if (sync_on(sync)) sync->sum(sums + C, C, sync->arg);
        for (int c = 0; c < C; c++) {
            double var = sums[C + c] / n;
            invstd[c] = (float)(1.0 / sqrt(var + eps));
            running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * mean[c];
            running_var[c] = (1.0f - momentum) * running_var[c] + momentum * (float)(var * n / (n - 1.0));
        }
    } else {
        for (int c = 0; c < C; c++) {
            mean[c] = running_mean[c];
            invstd[c] = (float)(1.0 / sqrt((double)running_var[c] + eps));
        }
    }
#pragma omp parallel for schedule(static) if (total >= GT_PAR_MIN)
    for (int b = 0; b < B; b++) {
        const float *xb = x + b * CHW;
        float *hb = xhat + b * CHW, *yb = y + b * CHW;
        if (HW == 1) {
            for (int c = 0; c < C; c++) {
                float h = (xb[c] - mean[c]) * invstd[c];
                hb[c] = h;
                yb[c] = gamma[c] * h + beta[c];
            }
            continue;
        }
        for (int c = 0; c < C; c++) {
            size_t o = (size_t)c * HW;
            float m = mean[c], is = invstd[c], g = gamma[c], be = beta[c];
            for (int l = 0; l < HW; l++) {
                float h = (xb[o + l] - m) * is;
                hb[o + l] = h;
                yb[o + l] = g * h + be;
            }
        }
    }
}

/* dy [B,C,HW] -> dx [B,C,HW]; dgamma [C] += sum dy*xhat, dbeta [C] += sum dy (local) */
void gt_batchnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy, float *aux,
                           const float *gamma, int B, int C, int HW, int train, const gt_bn_sync *sync) {
    size_t total = (size_t)B * C * HW, CHW = (size_t)C * HW;
    const float *xhat = aux, *invstd = aux + total + C;
    float *sums = aux + total + 2 * (size_t)C; /* [sum dy (C), sum dy*xhat (C)] */
    double *acc = (double *)(aux + acc_offset(B, C, HW)); /* [2C] */
    for (int c = 0; c < 2 * C; c++) acc[c] = 0.0;
#pragma omp parallel if (total >= GT_PAR_MIN)
    {
        int c0, c1;
        channel_range(C, &c0, &c1);
        for (int b = 0; b < B; b++) {
            const float *dyb = dy + b * CHW, *hb = xhat + b * CHW;
            if (HW == 1)
                for (int c = c0; c < c1; c++) {
                    acc[c] += dyb[c];
                    acc[C + c] += dyb[c] * hb[c];
                }
            else
                for (int c = c0; c < c1; c++)
                    row_dot2(dyb + (size_t)c * HW, hb + (size_t)c * HW, HW, &acc[c], &acc[C + c]);
        }
    }
    for (int c = 0; c < C; c++) {
        sums[c] = (float)acc[c];
        sums[C + c] = (float)acc[C + c];
        if (dbeta) dbeta[c] += sums[c];
        if (dgamma) dgamma[c] += sums[C + c];
    }
    if (!dx) return;
    int world = 1;
    if (train && sync_on(sync)) {
        sync->sum(sums, 2 * C, sync->arg);
        world = sync->world;
    }
    float n = (float)((double)B * HW * world);
    /* dx = k (dy - mdy - xhat mdyx) per channel; eval mode: dx = k dy */
    float *k = sums + 2 * (size_t)C, *mdy = k + C, *mdyx = mdy + C; /* coef [3C] */
    for (int c = 0; c < C; c++) {
        float kc = gamma[c] * invstd[c], s = sums[c], sx = sums[C + c];
        k[c] = kc;
        mdy[c] = train ? s / n : 0.0f;
        mdyx[c] = train ? sx / n : 0.0f;
    }
#pragma omp parallel for schedule(static) if (total >= GT_PAR_MIN)
    for (int b = 0; b < B; b++) {
        const float *dyb = dy + b * CHW, *hb = xhat + b * CHW;
        float *dxb = dx + b * CHW;
        if (HW == 1) {
            for (int c = 0; c < C; c++) dxb[c] = k[c] * (dyb[c] - mdy[c] - hb[c] * mdyx[c]);
            continue;
        }
        for (int c = 0; c < C; c++) {
            size_t o = (size_t)c * HW;
            float kc = k[c], m1 = mdy[c], m2 = mdyx[c];
            for (int l = 0; l < HW; l++) dxb[o + l] = kc * (dyb[o + l] - m1 - hb[o + l] * m2);
        }
    }
}

/* ---- the layer kind ------------------------------------------------------ */

enum { EPS, MOMENTUM, N_OPTS };
static const gt_layer_opt opts[N_OPTS] = {
    [EPS] = {"eps", GT_OPT_FLOAT, "1e-5", 0, 1, 1, 0, "added to the variance"},
    [MOMENTUM] = {"momentum", GT_OPT_FLOAT, "0.1", 0, 1, 0, 0, "running statistics' update (PyTorch's meaning)"},
};

static gt_status shape(const gt_layer *L, gt_shape *out) {
    *out = L->in;
    return GT_OK;
}

static int tensors(const gt_layer *L, gt_tensor_desc *t) {
    int C = L->in.c;
    t[0] = (gt_tensor_desc){"weight", GT_T_SCALE, 1, 1, {C}, 0, 0};
    t[1] = (gt_tensor_desc){"bias", GT_T_SHIFT, 1, 1, {C}, 0, 0};
    t[2] = (gt_tensor_desc){"running_mean", GT_T_MEAN, 0, 1, {C}, 0, 0};
    t[3] = (gt_tensor_desc){"running_var", GT_T_VAR, 0, 1, {C}, 0, 0};
    return 4;
}

static size_t aux_floats(const gt_layer *L, int B) { return gt_batchnorm_aux_size(B, L->in.c, L->in.h * L->in.w); }

static void forward(gt_layer *L, const float *x, float *y, const gt_pass *p) {
    gt_batchnorm_forward(y, L->aux, gt_layer_tensor(L, L->state, 2), gt_layer_tensor(L, L->state, 3), x, L->param,
                         gt_layer_tensor(L, L->param, 1), p->B, L->in.c, L->in.h * L->in.w, gt_opt_float(L, EPS),
                         gt_opt_float(L, MOMENTUM), p->train, p->sync);
}

static void backward(gt_layer *L, const float *x, const float *y, const float *dy, float *dx, int param_grads,
                     const gt_pass *p) {
    (void)x;
    (void)y;
    float *dgamma = param_grads ? L->grad : NULL, *dbeta = param_grads ? gt_layer_tensor(L, L->grad, 1) : NULL;
    gt_batchnorm_backward(dx, dgamma, dbeta, dy, L->aux, L->param, p->B, L->in.c, L->in.h * L->in.w, p->train,
                          p->sync);
}

const gt_layer_kind gt_layer_batchnorm = {
    .name = "batchnorm",
    .torch = "nn.BatchNorm1d on vectors, nn.BatchNorm2d on images",
    .help = "batch normalization with affine parameters and running statistics",
    .opts = opts,
    .n_opts = N_OPTS,
    .shape = shape,
    .tensors = tensors,
    .aux_floats = aux_floats,
    .forward = forward,
    .backward = backward,
};
