/* BatchNorm1d/2d (affine, running statistics, PyTorch semantics), optionally
 * synchronized over replicas through a sum hook (gt_bn_sync).
 *
 * aux layout, gt_batchnorm_aux_size(B,C,HW) floats:
 *   xhat [B,C,HW] | mean [C] | invstd [C] | sums [2C] (scratch for the hook)
 * Statistics are two-pass (mean, then the centered sum of squares); with a
 * sync hook each pass's per-channel sums go through the hook (two calls of C
 * floats in the forward, one call of 2C floats [sum dy, sum dy*xhat] in the
 * backward), so every replica must run the same layers in the same order. */
#include "gentrain/core.h"
#include "gentrain/layers.h"

#include <math.h>

size_t gt_batchnorm_aux_size(int B, int C, int HW) { return (size_t)B * C * HW + 4 * (size_t)C; }

static int sync_on(const gt_bn_sync *sync) { return sync && sync->sum; }

/* x [B,C,HW] -> y [B,C,HW] */
void gt_batchnorm_forward(float *y, float *aux, float *running_mean, float *running_var, const float *x,
                          const float *gamma, const float *beta, int B, int C, int HW, float eps,
                          float momentum, int train, const gt_bn_sync *sync) {
    size_t total = (size_t)B * C * HW;
    float *xhat = aux, *mean = aux + total, *invstd = mean + C, *sums = invstd + C;
    if (train) {
        int world = 1;
        if (sync_on(sync)) {
            world = sync->world;
            GT_CHECK(world >= 1, "batchnorm: sync hook with world = %d", world);
        }
        double n = (double)B * HW * world;
        GT_CHECK(n > 1, "batchnorm in train mode needs more than one value per channel (got %.0f)", n);
        for (int c = 0; c < C; c++) {
            double s = 0.0;
            for (int b = 0; b < B; b++) {
                const float *p = x + ((size_t)b * C + c) * HW;
                for (int l = 0; l < HW; l++) s += p[l];
            }
            sums[c] = (float)s;
        }
        if (sync_on(sync)) sync->sum(sums, C, sync->arg);
        for (int c = 0; c < C; c++) mean[c] = (float)(sums[c] / n);
        for (int c = 0; c < C; c++) {
            double q = 0.0, m = mean[c];
            for (int b = 0; b < B; b++) {
                const float *p = x + ((size_t)b * C + c) * HW;
                for (int l = 0; l < HW; l++) {
                    double d = p[l] - m;
                    q += d * d;
                }
            }
            sums[C + c] = (float)q;
        }
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
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            size_t o = ((size_t)b * C + c) * HW;
            float m = mean[c], is = invstd[c], g = gamma[c], be = beta[c];
            for (int l = 0; l < HW; l++) {
                float h = (x[o + l] - m) * is;
                xhat[o + l] = h;
                y[o + l] = g * h + be;
            }
        }
}

/* dy [B,C,HW] -> dx [B,C,HW]; dgamma [C] += sum dy*xhat, dbeta [C] += sum dy (local) */
void gt_batchnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy, float *aux,
                           const float *gamma, int B, int C, int HW, int train, const gt_bn_sync *sync) {
    size_t total = (size_t)B * C * HW;
    const float *xhat = aux, *invstd = aux + total + C;
    float *sums = aux + total + 2 * (size_t)C; /* [sum dy (C), sum dy*xhat (C)] */
    for (int c = 0; c < C; c++) {
        double s = 0.0, sx = 0.0;
        for (int b = 0; b < B; b++) {
            size_t o = ((size_t)b * C + c) * HW;
            for (int l = 0; l < HW; l++) {
                s += dy[o + l];
                sx += (double)dy[o + l] * xhat[o + l];
            }
        }
        sums[c] = (float)s;
        sums[C + c] = (float)sx;
        if (dbeta) dbeta[c] += (float)s;
        if (dgamma) dgamma[c] += (float)sx;
    }
    if (!dx) return;
    if (!train) {
        for (int b = 0; b < B; b++)
            for (int c = 0; c < C; c++) {
                size_t o = ((size_t)b * C + c) * HW;
                float k = gamma[c] * invstd[c];
                for (int l = 0; l < HW; l++) dx[o + l] = dy[o + l] * k;
            }
        return;
    }
    int world = 1;
    if (sync_on(sync)) {
        sync->sum(sums, 2 * C, sync->arg);
        world = sync->world;
    }
    float n = (float)((double)B * HW * world);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            size_t o = ((size_t)b * C + c) * HW;
            float k = gamma[c] * invstd[c], mdy = sums[c] / n, mdyx = sums[C + c] / n;
            for (int l = 0; l < HW; l++) dx[o + l] = k * (dy[o + l] - mdy - xhat[o + l] * mdyx);
        }
}
