/* VAE: net[0] = encoder [data] -> [2*z_dim] = (mu, logvar), net[1] = decoder
 * [z_dim] -> [data] (logits for a Bernoulli likelihood, the mean for a
 * Gaussian one), on pixels in [0, 1].
 *
 * Loss per example: reconstruction (Bernoulli: BCE-with-logits summed over
 * pixels; Gaussian: squared error summed over pixels) + kl_weight * KL(q(z|x)
 * || N(0, I)), with z = mu + exp(logvar/2) * eps; averaged over the batch. */
#include "gentrain/model.h"

#include <math.h>
#include <string.h>

static void net_shapes(const gt_model *m, int k, gt_shape *in, gt_shape *out, const char **what) {
    gt_shape z = {m->z_dim, 1, 1};
    *in = k == 0 ? m->data_shape : z;
    *out = k == 0 ? (gt_shape){2 * m->z_dim, 1, 1} : m->data_shape;
    *what = k == 0 ? "(mu, logvar), 2*z_dim" : "the data";
}

/* binarized x, dlogits, the BCE terms [B, data]; mu, logvar, eps, z, dmu, dlogvar [B, z_dim]; dh [B, 2 z_dim] */
static size_t work_floats(const gt_model *m, int B) {
    return (size_t)B * (3 * gt_shape_size(m->data_shape) + 8 * (size_t)m->z_dim);
}

/* Forward (and backward when train): *recon_out and *kl_out are means over B. */
static void pass(gt_model *m, const float *x, int B, const gt_step_ctx *ctx, int train, double *recon_out,
                 double *kl_out) {
    gt_net *E = &m->net[0], *Dec = &m->net[1];
    size_t data = gt_shape_size(m->data_shape);
    int Z = m->z_dim;
    size_t bz = (size_t)B * Z;
    float *xb = m->work;                    /* [B, data] binarized input */
    float *dlogits = xb + (size_t)B * data; /* [B, data] */
    float *term = dlogits + (size_t)B * data; /* [B, data] the BCE terms */
    float *mu = term + (size_t)B * data, *logvar = mu + bz, *eps = logvar + bz, *z = eps + bz;
    float *dmu = z + bz, *dlogvar = dmu + bz, *dh = dlogvar + bz; /* dh [B, 2Z] */
    if (m->binarize) {
        memcpy(xb, x, sizeof(float) * (size_t)B * data);
        gt_binarize(xb, B, data, ctx->seed, ctx->step, ctx->example0, ctx->stride);
        x = xb;
    }
    const float *h = gt_net_forward(E, x, B, train, gt_model_rng(ctx, 0));
    for (int i = 0; i < B; i++) {
        memcpy(mu + (size_t)i * Z, h + (size_t)i * 2 * Z, sizeof(float) * Z);
        memcpy(logvar + (size_t)i * Z, h + (size_t)i * 2 * Z + Z, sizeof(float) * Z);
    }
    gt_model_normal_rows(eps, B, Z, ctx, GT_PURPOSE(GT_RNG_REPARAM, train ? 0 : 1));
    gt_reparam_forward(mu, logvar, eps, bz, z);
    const float *out = gt_net_forward(Dec, z, B, train, gt_model_rng(ctx, 1));
    float *dout = train ? dlogits : NULL;
    double recon = m->recon == GT_RECON_BERNOULLI ? gt_bce_logits_sum(out, x, B, data, dout, term)
                                                  : gt_mse_sum(out, x, B, data, dout);
    if (train) memset(dmu, 0, sizeof(float) * 2 * bz); /* dmu and dlogvar */
    double kl = gt_kl_normal(mu, logvar, B, Z, train ? dmu : NULL, train ? dlogvar : NULL);
    *recon_out = recon;
    *kl_out = kl;
    if (!train) return;
    const float *dz = gt_net_backward(Dec, dlogits, GT_BACKWARD_ALL, ctx->ready);
    /* dh = [d/dmu, d/dlogvar] of recon + kl_weight * kl */
    gt_reparam_backward(dz, logvar, eps, bz, dh, dh + bz); /* dh used as scratch [2, B, Z] */
    for (size_t j = 0; j < bz; j++) {
        dmu[j] = m->kl_weight * dmu[j] + dh[j];
        dlogvar[j] = m->kl_weight * dlogvar[j] + dh[bz + j];
    }
    for (int i = 0; i < B; i++) {
        memcpy(dh + (size_t)i * 2 * Z, dmu + (size_t)i * Z, sizeof(float) * Z);
        memcpy(dh + (size_t)i * 2 * Z + Z, dlogvar + (size_t)i * Z, sizeof(float) * Z);
    }
    gt_net_backward(E, dh, GT_BACKWARD_PARAMS, ctx->ready);
}

static void train_step(gt_model *m, const float *x, const int *labels, int B, const gt_step_ctx *ctx,
                       gt_stats *st) {
    (void)labels;
    gt_net_zero_grads(&m->net[0]);
    gt_net_zero_grads(&m->net[1]);
    double recon, kl;
    pass(m, x, B, ctx, 1, &recon, &kl);
    double e_norm = gt_model_update(&m->net[0], &m->opt[0], ctx);
    double d_norm = gt_model_update(&m->net[1], &m->opt[1], ctx);
    gt_stats_add(st, "loss", recon + m->kl_weight * kl);
    gt_stats_add(st, "recon", recon);
    gt_stats_add(st, "kl", kl);
    gt_stats_add_net(st, "enc_grad_norm", e_norm, 0);
    gt_stats_add_net(st, "dec_grad_norm", d_norm, 1);
}

/* The negative ELBO (one sample of z, REPARAM/1) whatever kl_weight. */
static void evaluate(gt_model *m, const float *x, const int *labels, int B, const gt_step_ctx *ctx, gt_stats *st) {
    (void)labels;
    double recon, kl;
    pass(m, x, B, ctx, 0, &recon, &kl);
    gt_stats_add(st, "loss", recon + kl);
    gt_stats_add(st, "recon", recon);
    gt_stats_add(st, "kl", kl);
}

/* The decoder's mean: sigmoid of the logits (Bernoulli) or the output (Gaussian). */
static void generate(gt_model *m, const float *z, int n, float *images) {
    size_t data = gt_shape_size(m->data_shape);
    gt_rng_ctx rng = {0, 0, 0, 1, 0};
    for (int i = 0; i < n; i += m->max_batch) {
        int B = n - i < m->max_batch ? n - i : m->max_batch;
        const float *out = gt_net_forward(&m->net[1], z + (size_t)i * m->z_dim, B, 0, rng);
        float *dst = images + (size_t)i * data;
        if (m->recon == GT_RECON_BERNOULLI)
            for (size_t j = 0; j < (size_t)B * data; j++) dst[j] = 1.0f / (1.0f + expf(-out[j]));
        else
            memcpy(dst, out, sizeof(float) * (size_t)B * data);
    }
}

/* The decoder's mean at the encoder's mean (eval mode). */
static void reconstruct(gt_model *m, const float *x, int n, float *out) {
    size_t size = gt_shape_size(m->data_shape);
    float *mu = gt_alloc_floats((size_t)n * m->z_dim);
    gt_rng_ctx rng = {0, 0, 0, 1, 0};
    for (int i = 0; i < n; i += m->max_batch) {
        int B = n - i < m->max_batch ? n - i : m->max_batch;
        const float *h = gt_net_forward(&m->net[0], x + (size_t)i * size, B, 0, rng);
        for (int b = 0; b < B; b++)
            memcpy(mu + (size_t)(i + b) * m->z_dim, h + (size_t)b * 2 * m->z_dim, sizeof(float) * m->z_dim);
    }
    generate(m, mu, n, out);
    gt_free(mu);
}

/* ---- log-likelihood bounds (gt_model_iwae) ------------------------------------ */

#define LOG_2PI 1.8378770664093454836

typedef struct {
    gt_model *m;
    const float *x; /* [data] the example, as the encoder saw it */
} likelihood_ctx;

/* log p(x | z_b) [nb] for the latents z [nb, z_dim]: the decoder in eval mode.
 * Per-pixel terms in float (their rounding is far below a nat), sums in double. */
static void log_lik(double *out, const float *z, int nb, int z_dim, void *arg) {
    (void)z_dim;
    likelihood_ctx *c = arg;
    gt_model *m = c->m;
    size_t data = gt_shape_size(m->data_shape);
    gt_rng_ctx rng = {0, 0, 0, 1, 0};
    const float *out_dec = gt_net_forward(&m->net[1], z, nb, 0, rng); /* [nb, data] logits or means */
    for (int b = 0; b < nb; b++) {
        const float *l = out_dec + (size_t)b * data;
        double s = 0.0;
        if (m->recon == GT_RECON_BERNOULLI) {
            /* x l - softplus(l) = x log s(l) + (1 - x) log s(-l) */
            for (size_t j = 0; j < data; j++) {
                float v = l[j];
                s += (double)(c->x[j] * v - (fmaxf(v, 0.0f) + log1pf(expf(-fabsf(v)))));
            }
        } else {
            for (size_t j = 0; j < data; j++) {
                double d = (double)c->x[j] - l[j];
                s += d * d;
            }
            s = -0.5 * s - 0.5 * (double)data * LOG_2PI;
        }
        out[b] = s;
    }
}

static void iwae(gt_model *m, const float *x, int n, int k, uint64_t seed, uint64_t example0, gt_iwae_result *out) {
    size_t data = gt_shape_size(m->data_shape);
    int Z = m->z_dim;
    float *xb = gt_alloc_floats(data), *mu = gt_alloc_floats((size_t)Z), *logvar = gt_alloc_floats((size_t)Z);
    gt_rng_ctx rng = {0, 0, 0, 1, 0};
    for (int i = 0; i < n; i++) {
        uint64_t example = example0 + (uint64_t)i;
        memcpy(xb, x + (size_t)i * data, sizeof(float) * data);
        if (m->binarize) gt_binarize(xb, 1, data, seed, 0, example, 1);
        const float *h = gt_net_forward(&m->net[0], xb, 1, 0, rng); /* [2Z] = (mu, logvar) */
        memcpy(mu, h, sizeof(float) * (size_t)Z);
        memcpy(logvar, h + Z, sizeof(float) * (size_t)Z);
        likelihood_ctx c = {m, xb};
        out[i] = gt_iwae(mu, logvar, Z, k, m->max_batch, seed, example, log_lik, &c);
    }
    gt_free(xb);
    gt_free(mu);
    gt_free(logvar);
}

const gt_model_kind_info gt_model_vae = {
    .name = "vae",
    .n_nets = 2,
    .net_names = {"encoder", "decoder"},
    .scale = GT_SCALE_UNIT,
    .net_shapes = net_shapes,
    .work_floats = work_floats,
    .train_step = train_step,
    .evaluate = evaluate,
    .generate = generate,
    .reconstruct = reconstruct,
    .iwae = iwae,
};
