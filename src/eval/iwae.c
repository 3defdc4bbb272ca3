/* Log-likelihood bounds of VAEs: the importance-weighted bound (Burda,
 * Grosse, Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016)
 *   L_k = log (1/k) sum_{i=1..k} w_i,   w_i = p(x|z_i) p(z_i) / q(z_i|x),  z_i ~ q(z|x),
 * with E[L_1] = ELBO <= E[L_k] <= E[L_{k+1}] <= log p(x) and L_k -> log p(x)
 * as k -> infinity. L_1 is the one-sample ELBO; gt_iwae also returns
 * (1/k) sum_i log w_i over the same samples, a k-sample Monte Carlo ELBO
 * that is never above L_k (Jensen). With q = N(mu, diag exp(logvar)) and
 * p(z) = N(0, I) the ELBO is also E_q[log p(x|z)] - KL(q || p) with the
 * KL in closed form (gt_kl_diag_std_normal). */
#include "gentrain/core.h"
#include "gentrain/eval.h"

#include <math.h>

#define LOG_2PI 1.8378770664093454836

double gt_log_mean_exp(const double *x, int n) {
    GT_ASSERT(n >= 1, "gt_log_mean_exp: n = %d", n);
    double mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    if (mx == -INFINITY || mx == INFINITY) return mx;
    double s = 0.0;
    for (int i = 0; i < n; i++) s += exp(x[i] - mx);
    return mx + log(s / n);
}

double gt_log_normal_diag(const float *x, const float *mu, const float *logvar, int n) {
    double s = 0.0;
    for (int i = 0; i < n; i++) {
        double d = (double)x[i] - mu[i];
        s += d * d * exp(-(double)logvar[i]) + logvar[i];
    }
    return -0.5 * (s + n * LOG_2PI);
}

double gt_log_std_normal(const float *x, int n) {
    double s = 0.0;
    for (int i = 0; i < n; i++) s += (double)x[i] * x[i];
    return -0.5 * (s + n * LOG_2PI);
}

double gt_kl_diag_std_normal(const float *mu, const float *logvar, int n) {
    double s = 0.0;
    for (int i = 0; i < n; i++) s += exp((double)logvar[i]) + (double)mu[i] * mu[i] - 1.0 - logvar[i];
    return 0.5 * s;
}

gt_iwae_result gt_iwae(const float *mu, const float *logvar, int z_dim, int k, int chunk, uint64_t seed,
                       uint64_t example, gt_log_lik_fn log_lik, void *ctx) {
    GT_ASSERT(k >= 1 && chunk >= 1 && z_dim >= 1, "gt_iwae: k %d chunk %d z_dim %d", k, chunk, z_dim);
    if (chunk > k) chunk = k;
    uint32_t purpose = GT_PURPOSE(GT_RNG_EVAL, GT_EVAL_RNG_IWAE);
    float *z = gt_alloc_floats((size_t)chunk * z_dim);
    float *sd = gt_alloc_floats(z_dim);
    double *ll = gt_alloc((size_t)chunk * sizeof(double));
    for (int j = 0; j < z_dim; j++) sd[j] = (float)exp(0.5 * logvar[j]);
    /* streaming log-sum-exp, one sample at a time so that the chunk size
     * cannot change the result: sum_i exp(w_i - mx) with the running max */
    double mx = -INFINITY, sum = 0.0, sum_logw = 0.0;
    for (int i0 = 0; i0 < k; i0 += chunk) {
        int nb = k - i0 < chunk ? k - i0 : chunk;
        for (int b = 0; b < nb; b++) {
            float *zb = z + (size_t)b * z_dim;
            gt_rand_normal(zb, (size_t)z_dim, seed, purpose, example, (uint64_t)(i0 + b));
            for (int j = 0; j < z_dim; j++) zb[j] = mu[j] + sd[j] * zb[j];
        }
        log_lik(ll, z, nb, z_dim, ctx);
        for (int b = 0; b < nb; b++) {
            const float *zb = z + (size_t)b * z_dim;
            /* log w at the float z the decoder saw */
            double logw = ll[b] + gt_log_std_normal(zb, z_dim) - gt_log_normal_diag(zb, mu, logvar, z_dim);
            sum_logw += logw;
            if (logw == -INFINITY) continue; /* w = 0: adds nothing */
            if (logw > mx) {
                sum = sum * exp(mx - logw) + 1.0;
                mx = logw;
            } else {
                sum += exp(logw - mx);
            }
        }
    }
    gt_free(ll);
    gt_free(sd);
    gt_free(z);
    gt_iwae_result r;
    r.iwae = mx == -INFINITY ? -INFINITY : mx + log(sum / k);
    r.elbo = sum_logw / k;
    return r;
}
