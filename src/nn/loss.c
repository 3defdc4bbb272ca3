/* Losses (include/gentrain/loss.h).
 *
 * Every loss is evaluated in a numerically stable form and summed in double;
 * gradients are computed in double and stored as float. Gradient pointers may
 * alias the inputs they are the gradient of (each element is read before its
 * gradient is written). */
#include "gentrain/loss.h"

#include "gentrain/core.h"
#include "gentrain/layers.h" /* GT_PAR_MIN */

#include <math.h>
#include <stdint.h>
#include <string.h>

/* log(1 + exp(-|l|)), never overflows. */
static inline double log1p_exp_neg_abs(double l) { return log1p(exp(-fabs(l))); }

/* Stable logistic sigmoid. */
static inline double sigmoid(double l) {
    if (l >= 0.0) return 1.0 / (1.0 + exp(-l));
    double e = exp(l);
    return e / (1.0 + e);
}

/* exp(x) for x in [-87, 0] in float, as plain arithmetic so that loops
 * calling it vectorize: x = n ln2 + r with |r| <= ln2/2, exp(r) by Cephes'
 * expf polynomial, times 2^n put into the exponent bits (exp(-87) ~ 1.6e-38
 * is still a normal float). Relative error ~1e-7. */
static inline float exp_nonpos(float x) {
    const float round = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer (floorf would not vectorize) */
    float n = (x * 1.44269504f + round) - round;
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23; /* 2^n, n in [-126, 0] */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* log(1 + e) for e in [0, 1], as plain arithmetic: 2 atanh(s) with
 * s = e / (2 + e) in [0, 1/3], by its odd series up to s^13 (truncation below
 * 1e-8); accurate for tiny e too (the result is then ~e). */
static inline float log1p_unit(float e) {
    float s = e / (2.0f + e), z = s * s;
    float p = 1.0f / 13.0f;
    p = p * z + 1.0f / 11.0f;
    p = p * z + 1.0f / 9.0f;
    p = p * z + 1.0f / 7.0f;
    p = p * z + 1.0f / 5.0f;
    p = p * z + 1.0f / 3.0f;
    return 2.0f * s * (1.0f + z * p);
}

/* BCE-with-logits terms of m elements in float (the callers sum them in
 * double): e = exp(-|l|) gives both log(1 + exp(-|l|)) and sigmoid(l)
 * (1/(1+e) for l >= 0, e/(1+e) below). The loop vectorizes: no libm calls
 * and no float compares, which GCC does not if-convert; pos is 1 when the
 * sign bit of l is clear, else 0, and |l| is clamped at 87 on the bits
 * (exp(-87) is as good as 0 here). */
static void bce_block(const float *restrict logits, const float *restrict targets, size_t m, float inv,
                      float *restrict term, float *restrict dlogits) {
    const uint32_t bits87 = 0x42ae0000u; /* 87.0f */
    for (size_t k = 0; k < m; k++) {
        float l = logits[k], t = targets[k], a;
        uint32_t u, ua;
        memcpy(&u, &l, sizeof u);
        ua = u & 0x7fffffffu;
        ua = ua < bits87 ? ua : bits87;
        memcpy(&a, &ua, sizeof a);
        float pos = (float)(int32_t)(1u - (u >> 31)), e = exp_nonpos(-a), r = 1.0f / (1.0f + e);
        term[k] = l * pos - l * t + log1p_unit(e); /* max(l,0) - l t + log(1 + e) */
        dlogits[k] = (r * (pos + (1.0f - pos) * e) - t) * inv;
    }
}

/* sum over [0, n) of the BCE terms (and the gradients times inv): the
 * blocks' terms in parallel into term [n], their sum in one thread, in
 * order (the same bits for any thread count) */
static double bce_sum(const float *logits, const float *targets, size_t n, float inv, float *dlogits, float *term) {
    enum { BLOCK = 256 };
    size_t n_blocks = (n + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static) if (n >= GT_PAR_MIN)
    for (size_t j = 0; j < n_blocks; j++) {
        size_t i = j * BLOCK, m = n - i < BLOCK ? n - i : BLOCK;
        float grad[BLOCK]; /* where the gradients go when dlogits is NULL */
        bce_block(logits + i, targets + i, m, inv, term + i, dlogits ? dlogits + i : grad);
    }
    double sum = 0.0;
    for (size_t k = 0; k < n; k++) sum += term[k];
    return sum;
}

/* softplus(l) = log(1 + exp(l)) = BCE(l, 0). */
static inline double softplus(double l) { return fmax(l, 0.0) + log1p_exp_neg_abs(l); }

/* logits, targets, dlogits, term: [n] */
float gt_bce_logits_mean(const float *logits, const float *targets, size_t n, float *dlogits, float *term) {
    GT_ASSERT(n > 0, "gt_bce_logits_mean: empty input (n = 0)");
    double inv = 1.0 / (double)n;
    return (float)(bce_sum(logits, targets, n, (float)inv, dlogits, term) * inv);
}

/* logits, targets, dlogits, term: [B, D]; summed over D, mean over B */
float gt_bce_logits_sum(const float *logits, const float *targets, int B, size_t D, float *dlogits, float *term) {
    GT_ASSERT(B > 0, "gt_bce_logits_sum: batch size must be positive (B = %d)", B);
    size_t n = (size_t)B * D;
    double inv = 1.0 / (double)B;
    return (float)(bce_sum(logits, targets, n, (float)inv, dlogits, term) * inv);
}

/* pred, target, dpred: [B, D]; sum over D of (pred - target)^2, mean over B */
float gt_mse_sum(const float *pred, const float *target, int B, size_t D, float *dpred) {
    GT_ASSERT(B > 0, "gt_mse_sum: batch size must be positive (B = %d)", B);
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
    GT_ASSERT(B > 0 && K > 0, "gt_cross_entropy: bad shape [B = %d, K = %d]", B, K);
    double sum = 0.0, inv = 1.0 / (double)B;
    for (int b = 0; b < B; b++) {
        const float *l = logits + (size_t)b * K;
        int y = labels[b];
        GT_ASSERT(y >= 0 && y < K, "gt_cross_entropy: label %d of example %d is outside [0, %d)", y, b, K);
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
float gt_gan_d_loss(gt_gan_loss kind, const float *real, const float *fake, int B, float smooth, float *dreal,
                    float *dfake) {
    GT_ASSERT(B > 0, "gt_gan_d_loss: batch size must be positive (B = %d)", B);
    GT_ASSERT(smooth >= 0.0f && smooth < 1.0f, "gt_gan_d_loss: label smoothing %g outside [0, 1)", (double)smooth);
    GT_ASSERT(smooth == 0.0f || kind == GT_GAN_NONSATURATING || kind == GT_GAN_MINIMAX,
              "gt_gan_d_loss: label smoothing applies to the BCE losses only");
    double sr = 0.0, sf = 0.0, inv = 1.0 / (double)B, a = smooth;
    switch (kind) {
    case GT_GAN_NONSATURATING:
    case GT_GAN_MINIMAX:
        /* BCE(real, 1 - a) = softplus(-l) + a l; BCE(fake, 0) = softplus(l) */
        for (int i = 0; i < B; i++) {
            double r = real[i], f = fake[i];
            sr += softplus(-r);
            if (a != 0.0) sr += a * r; /* without smoothing, bitwise the plain BCE (also for infinite logits) */
            sf += softplus(f);
            if (dreal) dreal[i] = (float)((sigmoid(r) - (1.0 - a)) * inv);
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
    case GT_GAN_WASSERSTEIN:
        /* mean fake - mean real */
        for (int i = 0; i < B; i++) {
            sr -= (double)real[i];
            sf += (double)fake[i];
            if (dreal) dreal[i] = (float)(-inv);
            if (dfake) dfake[i] = (float)inv;
        }
        break;
    default:
        gt_panic("gt_gan_d_loss: unknown GAN loss kind %d", (int)kind);
    }
    return (float)((sr + sf) * inv);
}

/* fake, dfake: [B] logits of D on generated examples */
float gt_gan_g_loss(gt_gan_loss kind, const float *fake, int B, float *dfake) {
    GT_ASSERT(B > 0, "gt_gan_g_loss: batch size must be positive (B = %d)", B);
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
    case GT_GAN_WASSERSTEIN:
        for (int i = 0; i < B; i++) {
            s -= (double)fake[i];
            if (dfake) dfake[i] = (float)(-inv);
        }
        break;
    default:
        gt_panic("gt_gan_g_loss: unknown GAN loss kind %d", (int)kind);
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
    GT_ASSERT(B > 0 && Z > 0, "gt_kl_normal: bad shape [B = %d, Z = %d]", B, Z);
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
