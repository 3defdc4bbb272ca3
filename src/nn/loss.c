/* Losses (include/gentrain/loss.h).
 *
 * Every loss is evaluated in a numerically stable form and summed in double;
 * gradients are computed in double and stored as float. Gradient pointers may
 * alias the inputs they are the gradient of (each element is read before its
 * gradient is written). */
#include "gentrain/loss.h"

#include "gentrain/core.h"

#include <math.h>

/* log(1 + exp(-|l|)), never overflows. */
static inline double log1p_exp_neg_abs(double l) { return log1p(exp(-fabs(l))); }

/* BCE with logits for one value: max(l,0) - l*t + log(1 + exp(-|l|)). */
static inline double bce_one(double l, double t) { return fmax(l, 0.0) - l * t + log1p_exp_neg_abs(l); }

/* Stable logistic sigmoid. */
static inline double sigmoid(double l) {
    if (l >= 0.0) return 1.0 / (1.0 + exp(-l));
    double e = exp(l);
    return e / (1.0 + e);
}

/* softplus(l) = log(1 + exp(l)) = BCE(l, 0). */
static inline double softplus(double l) { return fmax(l, 0.0) + log1p_exp_neg_abs(l); }

/* logits, targets, dlogits: [n] */
float gt_bce_logits_mean(const float *logits, const float *targets, size_t n, float *dlogits) {
    GT_CHECK(n > 0, "gt_bce_logits_mean: empty input (n = 0)");
    double sum = 0.0, inv = 1.0 / (double)n;
    for (size_t i = 0; i < n; i++) {
        double l = logits[i], t = targets[i];
        sum += bce_one(l, t);
        if (dlogits) dlogits[i] = (float)((sigmoid(l) - t) * inv);
    }
    return (float)(sum * inv);
}

/* logits, targets, dlogits: [B, D]; summed over D, mean over B */
float gt_bce_logits_sum(const float *logits, const float *targets, int B, size_t D, float *dlogits) {
    GT_CHECK(B > 0, "gt_bce_logits_sum: batch size must be positive (B = %d)", B);
    size_t n = (size_t)B * D;
    double sum = 0.0, inv = 1.0 / (double)B;
    for (size_t i = 0; i < n; i++) {
        double l = logits[i], t = targets[i];
        sum += bce_one(l, t);
        if (dlogits) dlogits[i] = (float)((sigmoid(l) - t) * inv);
    }
    return (float)(sum * inv);
}

/* pred, target, dpred: [B, D]; sum over D of (pred - target)^2, mean over B */
float gt_mse_sum(const float *pred, const float *target, int B, size_t D, float *dpred) {
    GT_CHECK(B > 0, "gt_mse_sum: batch size must be positive (B = %d)", B);
    size_t n = (size_t)B * D;
    double sum = 0.0, inv = 1.0 / (double)B;
    for (size_t i = 0; i < n; i++) {
        double d = (double)pred[i] - (double)target[i];
        sum += d * d;
        if (dpred) dpred[i] = (float)(2.0 * d * inv);
    }
    return (float)(sum * inv);
}

/* logits, dlogits: [B, K]; labels: [B] in [0, K) */
float gt_cross_entropy(const float *logits, const int *labels, int B, int K, float *dlogits) {
    GT_CHECK(B > 0 && K > 0, "gt_cross_entropy: bad shape [B = %d, K = %d]", B, K);
    double sum = 0.0, inv = 1.0 / (double)B;
    for (int b = 0; b < B; b++) {
        const float *l = logits + (size_t)b * K;
        int y = labels[b];
        GT_CHECK(y >= 0 && y < K, "gt_cross_entropy: label %d of example %d is outside [0, %d)", y, b, K);
        double mx = l[0];
        for (int k = 1; k < K; k++) mx = fmax(mx, (double)l[k]);
        double se = 0.0;
        for (int k = 0; k < K; k++) se += exp((double)l[k] - mx);
        double lse = mx + log(se);
        sum += lse - (double)l[y];
        if (dlogits) {
            float *d = dlogits + (size_t)b * K;
            for (int k = 0; k < K; k++) {
                double p = exp((double)l[k] - lse);
                d[k] = (float)((p - (k == y ? 1.0 : 0.0)) * inv);
            }
        }
    }
    return (float)(sum * inv);
}

/* real, fake, dreal, dfake: [B] logits of D */
float gt_gan_d_loss(gt_gan_loss kind, const float *real, const float *fake, int B, float *dreal, float *dfake) {
    GT_CHECK(B > 0, "gt_gan_d_loss: batch size must be positive (B = %d)", B);
    double sr = 0.0, sf = 0.0, inv = 1.0 / (double)B;
    switch (kind) {
    case GT_GAN_NONSATURATING:
    case GT_GAN_MINIMAX:
        /* BCE(real, 1) = softplus(-l); BCE(fake, 0) = softplus(l) */
        for (int i = 0; i < B; i++) {
            double r = real[i], f = fake[i];
            sr += softplus(-r);
            sf += softplus(f);
            if (dreal) dreal[i] = (float)((sigmoid(r) - 1.0) * inv);
            if (dfake) dfake[i] = (float)(sigmoid(f) * inv);
        }
        break;
    case GT_GAN_HINGE:
        /* relu(1 - real) + relu(1 + fake); the kink takes gradient 0 (as torch.relu). */
        for (int i = 0; i < B; i++) {
            double r = real[i], f = fake[i];
            double mr = 1.0 - r, mf = 1.0 + f;
            sr += mr > 0.0 ? mr : 0.0;
            sf += mf > 0.0 ? mf : 0.0;
            if (dreal) dreal[i] = (float)(mr > 0.0 ? -inv : 0.0);
            if (dfake) dfake[i] = (float)(mf > 0.0 ? inv : 0.0);
        }
        break;
    default:
        gt_fatal("gt_gan_d_loss: unknown GAN loss kind %d", (int)kind);
    }
    return (float)((sr + sf) * inv);
}

/* fake, dfake: [B] logits of D on generated examples */
float gt_gan_g_loss(gt_gan_loss kind, const float *fake, int B, float *dfake) {
    GT_CHECK(B > 0, "gt_gan_g_loss: batch size must be positive (B = %d)", B);
    double s = 0.0, inv = 1.0 / (double)B;
    switch (kind) {
    case GT_GAN_NONSATURATING: /* BCE(fake, 1) = softplus(-l) */
        for (int i = 0; i < B; i++) {
            double f = fake[i];
            s += softplus(-f);
            if (dfake) dfake[i] = (float)((sigmoid(f) - 1.0) * inv);
        }
        break;
    case GT_GAN_MINIMAX: /* -BCE(fake, 0) = -softplus(l) */
        for (int i = 0; i < B; i++) {
            double f = fake[i];
            s -= softplus(f);
            if (dfake) dfake[i] = (float)(-sigmoid(f) * inv);
        }
        break;
    case GT_GAN_HINGE: /* -mean fake */
        for (int i = 0; i < B; i++) {
            s -= (double)fake[i];
            if (dfake) dfake[i] = (float)(-inv);
        }
        break;
    default:
        gt_fatal("gt_gan_g_loss: unknown GAN loss kind %d", (int)kind);
    }
    return (float)(s * inv);
}

/* mu, logvar, eps, z: [n] (= [B, Z]) */
void gt_reparam_forward(const float *mu, const float *logvar, const float *eps, size_t n, float *z) {
    for (size_t i = 0; i < n; i++) z[i] = mu[i] + expf(0.5f * logvar[i]) * eps[i];
}

/* dz, logvar, eps, dmu, dlogvar: [n]; dmu = dz, dlogvar = dz * eps * exp(logvar/2) / 2 (overwrite) */
void gt_reparam_backward(const float *dz, const float *logvar, const float *eps, size_t n, float *dmu,
                         float *dlogvar) {
    for (size_t i = 0; i < n; i++) {
        float g = dz[i], lv = logvar[i], e = eps[i];
        if (dmu) dmu[i] = g;
        if (dlogvar) dlogvar[i] = g * e * 0.5f * expf(0.5f * lv);
    }
}

/* mu, logvar, dmu, dlogvar: [B, Z]
 * KL = -0.5 * sum_z (1 + logvar - mu^2 - exp(logvar)), mean over B;
 * dKL/dmu = mu / B, dKL/dlogvar = (exp(logvar) - 1) / (2B), ADDED. */
float gt_kl_normal(const float *mu, const float *logvar, int B, int Z, float *dmu, float *dlogvar) {
    GT_CHECK(B > 0 && Z > 0, "gt_kl_normal: bad shape [B = %d, Z = %d]", B, Z);
    size_t n = (size_t)B * Z;
    double sum = 0.0, inv = 1.0 / (double)B;
    for (size_t i = 0; i < n; i++) {
        double m = mu[i], lv = logvar[i], em1 = expm1(lv);
        /* expm1 keeps logvar near 0 accurate: 1 + lv - e^lv = lv - expm1(lv) */
        sum += -0.5 * (lv - em1 - m * m);
        if (dmu) dmu[i] += (float)(m * inv);
        if (dlogvar) dlogvar[i] += (float)(0.5 * em1 * inv);
    }
    return (float)(sum * inv);
}
