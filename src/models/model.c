/* Models built from a config, and their training steps.
 *
 * GAN: net[0] = generator [z_dim] -> [data], net[1] = discriminator [data] -> [1] (a logit).
 * VAE: net[0] = encoder [data] -> [2*z_dim] = (mu, logvar), net[1] = decoder [z_dim] -> [data].
 * Classifier: net[0] = [data] -> [n_classes] logits.
 * See model.h for the order of operations and where randomness comes from. */
#include "gentrain/model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gentrain/core.h"

void gt_stats_add(gt_stats *s, const char *name, double value) {
    GT_CHECK(s->n < GT_MAX_STATS, "too many statistics (adding %s)", name);
    s->name[s->n] = name;
    s->value[s->n] = value;
    s->n++;
}

const char *gt_model_kind_name(gt_model_kind kind) {
    static const char *names[] = {"gan", "vae", "classifier"};
    return names[kind];
}

gt_pixel_scale gt_model_pixel_scale(const gt_model *m) {
    return m->kind == GT_MODEL_GAN ? GT_SCALE_SIGNED : GT_SCALE_UNIT;
}

static int shape_eq(gt_shape a, gt_shape b) { return a.c == b.c && a.h == b.h && a.w == b.w; }

static void expect_shape(gt_config *cfg, const gt_net *net, gt_shape got, gt_shape want, const char *what) {
    if (!shape_eq(got, want))
        gt_fatal("%s: [%s] ends with shape %dx%dx%d but %s is %dx%dx%d: change its last layers",
                 gt_config_where(cfg, "model", "type"), net->name, got.c, got.h, got.w, what, want.c, want.h,
                 want.w);
}

static void build_optimizer(gt_optim *opt, gt_config *cfg, size_t n, const char *net_key) {
    static const char *const kinds[] = {"adam", "sgd", NULL};
    int kind = gt_config_choice(cfg, "optim", "kind", "adam", kinds);
    double lr = gt_config_float(cfg, "optim", "lr", 1e-3, 0.0, 10.0);
    /* Optional per-network learning rate, e.g. [optim] lr_discriminator = 4e-4 (TTUR). */
    char key[64];
    snprintf(key, sizeof key, "lr_%s", net_key);
    lr = gt_config_float(cfg, "optim", key, lr, 0.0, 10.0);
    double beta1 = gt_config_float(cfg, "optim", "beta1", kind == GT_OPT_ADAM ? 0.9 : 0.0, 0.0, 0.999999);
    double beta2 = gt_config_float(cfg, "optim", "beta2", 0.999, 0.0, 0.99999999);
    double eps = gt_config_float(cfg, "optim", "eps", 1e-8, 0.0, 1.0);
    double wd = gt_config_float(cfg, "optim", "weight_decay", 0.0, 0.0, 1.0);
    gt_optim_init(opt, (gt_opt_kind)kind, n, (float)lr, (float)beta1, (float)beta2, (float)eps, (float)wd);
}

gt_model *gt_model_build(gt_config *cfg, gt_shape data_shape, int n_classes, int max_batch, uint64_t seed) {
    static const char *const types[] = {"gan", "vae", "classifier", NULL};
    gt_model *m = gt_alloc(sizeof *m);
    m->kind = (gt_model_kind)gt_config_choice(cfg, "model", "type", NULL, types);
    m->data_shape = data_shape;
    m->n_classes = n_classes;
    m->max_batch = max_batch;
    size_t data = gt_shape_size(data_shape);
    const char *names[2];
    if (m->kind == GT_MODEL_GAN) {
        static const char *const losses[] = {"nonsaturating", "minimax", "hinge", NULL};
        m->z_dim = (int)gt_config_int(cfg, "model", "z_dim", 100, 1, 1 << 16);
        m->gan_loss = (gt_gan_loss)gt_config_choice(cfg, "model", "loss", "nonsaturating", losses);
        m->n_nets = 2;
        names[0] = "generator";
        names[1] = "discriminator";
        gt_net_from_config(&m->net[0], cfg, "generator", (gt_shape){m->z_dim, 1, 1});
        gt_net_from_config(&m->net[1], cfg, "discriminator", data_shape);
        expect_shape(cfg, &m->net[0], m->net[0].out, data_shape, "the data");
        expect_shape(cfg, &m->net[1], m->net[1].out, (gt_shape){1, 1, 1}, "a logit");
        m->n_work = (size_t)max_batch * (m->z_dim + 8);
    } else if (m->kind == GT_MODEL_VAE) {
        static const char *const recons[] = {"bernoulli", "gaussian", NULL};
        m->z_dim = (int)gt_config_int(cfg, "model", "z_dim", 20, 1, 1 << 16);
        m->recon = (gt_recon)gt_config_choice(cfg, "model", "recon", "bernoulli", recons);
        m->binarize = gt_config_bool(cfg, "model", "binarize", 0);
        m->kl_weight = (float)gt_config_float(cfg, "model", "kl_weight", 1.0, 0.0, 1e6);
        if (m->binarize && m->recon != GT_RECON_BERNOULLI)
            gt_fatal("%s: [model] binarize = true needs recon = bernoulli", gt_config_where(cfg, "model", "binarize"));
        m->n_nets = 2;
        names[0] = "encoder";
        names[1] = "decoder";
        gt_net_from_config(&m->net[0], cfg, "encoder", data_shape);
        gt_net_from_config(&m->net[1], cfg, "decoder", (gt_shape){m->z_dim, 1, 1});
        expect_shape(cfg, &m->net[0], m->net[0].out, (gt_shape){2 * m->z_dim, 1, 1}, "(mu, logvar), 2*z_dim");
        expect_shape(cfg, &m->net[1], m->net[1].out, data_shape, "the data");
        /* binarized x, mu, logvar, eps, z, dmu, dlogvar, dh, dlogits */
        m->n_work = (size_t)max_batch * (2 * data + 8 * (size_t)m->z_dim);
    } else {
        m->n_nets = 1;
        names[0] = "classifier";
        gt_net_from_config(&m->net[0], cfg, "classifier", data_shape);
        expect_shape(cfg, &m->net[0], m->net[0].out, (gt_shape){n_classes, 1, 1}, "the number of classes");
        m->n_work = (size_t)max_batch * (size_t)n_classes;
    }
    for (int k = 0; k < m->n_nets; k++) {
        gt_net_finalize(&m->net[k], max_batch, seed, (uint32_t)k);
        build_optimizer(&m->opt[k], cfg, m->net[k].n_params, names[k]);
    }
    /* Nobody needs the input delta of G, the encoder or the classifier; the
     * VAE decoder's is dz. D's is set per phase in gan_step. */
    m->net[0].need_input_grad = 0;
    m->work = gt_alloc_floats(m->n_work);
    return m;
}

void gt_model_free(gt_model *m) {
    if (!m) return;
    for (int k = 0; k < m->n_nets; k++) {
        gt_net_free(&m->net[k]);
        gt_optim_free(&m->opt[k]);
    }
    gt_free(m->work);
    gt_free(m);
}

static gt_rng_ctx rng_for(const gt_step_ctx *ctx, uint32_t call) {
    return (gt_rng_ctx){ctx->seed, ctx->step, ctx->example0, ctx->stride, call};
}

static void normal_rows(float *out, int B, int D, const gt_step_ctx *ctx, uint32_t purpose) {
    for (int i = 0; i < B; i++)
        gt_rand_normal(out + (size_t)i * D, (size_t)D, ctx->seed, purpose, ctx->step,
                       ctx->example0 + (uint64_t)i * ctx->stride);
}

static double mean_sigmoid(const float *logits, int B) {
    double s = 0;
    for (int i = 0; i < B; i++) s += 1.0 / (1.0 + exp(-(double)logits[i]));
    return s / B;
}

static double l2_norm(const float *v, size_t n) {
    double s[8] = {0}; /* independent partial sums, so that the loop vectorizes */
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) s[j] += (double)v[i + j] * v[i + j];
    for (; i < n; i++) s[0] += (double)v[i] * v[i];
    double t = 0;
    for (int j = 0; j < 8; j++) t += s[j];
    return sqrt(t);
}

/* Reduce a net's gradients over replicas, then one optimizer step. */
static double update(gt_net *net, gt_optim *opt, const gt_step_ctx *ctx) {
    if (ctx->reduce_grads) ctx->reduce_grads(net->grads, net->n_params, ctx->reduce_arg);
    double norm = l2_norm(net->grads, net->n_params);
    gt_optim_step(opt, net->params, net->grads);
    return norm;
}

static void gan_step(gt_model *m, const float *x, int B, const gt_step_ctx *ctx, gt_stats *st) {
    gt_net *G = &m->net[0], *D = &m->net[1];
    float *z = m->work;                          /* [B, z_dim] */
    float *real = z + (size_t)B * m->z_dim;      /* [B] D logits on x */
    float *fake = real + B;                      /* [B] D logits on G(z) */
    float *dreal = fake + B, *dfake = dreal + B; /* [B] */
    normal_rows(z, B, m->z_dim, ctx, GT_PURPOSE(GT_RNG_LATENT, 0));
    const float *images = gt_net_forward(G, z, B, 1, rng_for(ctx, 3));

    /* D phase: D(x) forward and backward first, then D(G(z)); the loss is a
     * sum of the two parts, so each part's gradient needs only its own logits. */
    gt_net_zero_grads(D);
    D->skip_param_grads = 0;
    D->need_input_grad = 0;
    memcpy(real, gt_net_forward(D, x, B, 1, rng_for(ctx, 0)), sizeof(float) * B);
    memset(fake, 0, sizeof(float) * B);
    gt_gan_d_loss(m->gan_loss, real, fake, B, dreal, NULL);
    {   /* D's gradients are final only after the second backward: no grads_ready
         * (which may start their allreduce) during the first one */
        void (*ready)(size_t, void *) = D->grads_ready;
        D->grads_ready = NULL;
        gt_net_backward(D, dreal);
        D->grads_ready = ready;
    }
    memcpy(fake, gt_net_forward(D, images, B, 1, rng_for(ctx, 1)), sizeof(float) * B);
    double d_loss = gt_gan_d_loss(m->gan_loss, real, fake, B, NULL, dfake);
    gt_net_backward(D, dfake);
    double d_real = mean_sigmoid(real, B), d_fake = mean_sigmoid(fake, B);
    double d_norm = update(D, &m->opt[1], ctx);

    /* G phase: the updated D on the same G(z); only D's input gradient is needed. */
    D->skip_param_grads = 1;
    D->need_input_grad = 1;
    const float *logits = gt_net_forward(D, images, B, 1, rng_for(ctx, 2));
    double g_loss = gt_gan_g_loss(m->gan_loss, logits, B, dfake);
    const float *dimages = gt_net_backward(D, dfake);
    D->skip_param_grads = 0;
    gt_net_zero_grads(G);
    gt_net_backward(G, dimages);
    double g_norm = update(G, &m->opt[0], ctx);

    gt_stats_add(st, "d_loss", d_loss);
    gt_stats_add(st, "g_loss", g_loss);
    gt_stats_add(st, "d_real", d_real);
    gt_stats_add(st, "d_fake", d_fake);
    gt_stats_add(st, "d_grad_norm", d_norm);
    gt_stats_add(st, "g_grad_norm", g_norm);
}

/* VAE forward (and backward when train): returns recon and kl (means over B). */
static void vae_pass(gt_model *m, const float *x, int B, const gt_step_ctx *ctx, int train, double *recon_out,
                     double *kl_out) {
    gt_net *E = &m->net[0], *Dec = &m->net[1];
    size_t data = gt_shape_size(m->data_shape);
    int Z = m->z_dim;
    size_t bz = (size_t)B * Z;
    float *xb = m->work;              /* [B, data] binarized input */
    float *dlogits = xb + (size_t)B * data; /* [B, data] */
    float *mu = dlogits + (size_t)B * data, *logvar = mu + bz, *eps = logvar + bz, *z = eps + bz;
    float *dmu = z + bz, *dlogvar = dmu + bz, *dh = dlogvar + bz; /* dh [B, 2Z] */
    if (m->binarize) {
        memcpy(xb, x, sizeof(float) * (size_t)B * data);
        gt_binarize(xb, B, data, ctx->seed, ctx->step, ctx->example0, ctx->stride);
        x = xb;
    }
    const float *h = gt_net_forward(E, x, B, train, rng_for(ctx, 0));
    for (int i = 0; i < B; i++) {
        memcpy(mu + (size_t)i * Z, h + (size_t)i * 2 * Z, sizeof(float) * Z);
        memcpy(logvar + (size_t)i * Z, h + (size_t)i * 2 * Z + Z, sizeof(float) * Z);
    }
    normal_rows(eps, B, Z, ctx, GT_PURPOSE(GT_RNG_REPARAM, train ? 0 : 1));
    gt_reparam_forward(mu, logvar, eps, bz, z);
    const float *out = gt_net_forward(Dec, z, B, train, rng_for(ctx, 1));
    float *dout = train ? dlogits : NULL;
    double recon = m->recon == GT_RECON_BERNOULLI ? gt_bce_logits_sum(out, x, B, data, dout)
                                                  : gt_mse_sum(out, x, B, data, dout);
    if (train) memset(dmu, 0, sizeof(float) * 2 * bz); /* dmu and dlogvar */
    double kl = gt_kl_normal(mu, logvar, B, Z, train ? dmu : NULL, train ? dlogvar : NULL);
    *recon_out = recon;
    *kl_out = kl;
    if (!train) return;
    const float *dz = gt_net_backward(Dec, dlogits);
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
    gt_net_backward(E, dh);
}

static void vae_step(gt_model *m, const float *x, int B, const gt_step_ctx *ctx, gt_stats *st) {
    gt_net_zero_grads(&m->net[0]);
    gt_net_zero_grads(&m->net[1]);
    double recon, kl;
    vae_pass(m, x, B, ctx, 1, &recon, &kl);
    double e_norm = update(&m->net[0], &m->opt[0], ctx);
    double d_norm = update(&m->net[1], &m->opt[1], ctx);
    gt_stats_add(st, "loss", recon + m->kl_weight * kl);
    gt_stats_add(st, "recon", recon);
    gt_stats_add(st, "kl", kl);
    gt_stats_add(st, "enc_grad_norm", e_norm);
    gt_stats_add(st, "dec_grad_norm", d_norm);
}

static double accuracy(const float *logits, const int *labels, int B, int K) {
    int right = 0;
    for (int i = 0; i < B; i++) {
        int best = 0;
        for (int k = 1; k < K; k++)
            if (logits[(size_t)i * K + k] > logits[(size_t)i * K + best]) best = k;
        right += best == labels[i];
    }
    return (double)right / B;
}

static void classifier_step(gt_model *m, const float *x, const int *labels, int B, const gt_step_ctx *ctx,
                            int train, gt_stats *st) {
    GT_CHECK(labels, "the classifier needs labels: the dataset has none");
    gt_net *C = &m->net[0];
    const float *logits = gt_net_forward(C, x, B, train, rng_for(ctx, 0));
    double loss = gt_cross_entropy(logits, labels, B, m->n_classes, train ? m->work : NULL);
    double acc = accuracy(logits, labels, B, m->n_classes);
    if (train) {
        gt_net_zero_grads(C);
        gt_net_backward(C, m->work);
        update(C, &m->opt[0], ctx);
    }
    gt_stats_add(st, "loss", loss);
    gt_stats_add(st, "accuracy", acc);
}

static void check_batch(const gt_model *m, int B) {
    GT_CHECK(B >= 1 && B <= m->max_batch, "batch of %d examples, the model was built for 1..%d", B, m->max_batch);
}

void gt_model_train_step(gt_model *m, const float *x, const int *labels, int B, const gt_step_ctx *ctx,
                         gt_stats *stats) {
    check_batch(m, B);
    stats->n = 0;
    if (m->kind == GT_MODEL_GAN)
        gan_step(m, x, B, ctx, stats);
    else if (m->kind == GT_MODEL_VAE)
        vae_step(m, x, B, ctx, stats);
    else
        classifier_step(m, x, labels, B, ctx, 1, stats);
}

void gt_model_eval_batch(gt_model *m, const float *x, const int *labels, int B, const gt_step_ctx *ctx,
                         gt_stats *stats) {
    check_batch(m, B);
    stats->n = 0;
    if (m->kind == GT_MODEL_VAE) {
        double recon, kl;
        vae_pass(m, x, B, ctx, 0, &recon, &kl);
        gt_stats_add(stats, "loss", recon + kl); /* the negative ELBO (one sample), whatever kl_weight */
        gt_stats_add(stats, "recon", recon);
        gt_stats_add(stats, "kl", kl);
    } else if (m->kind == GT_MODEL_GAN) {
        gt_net *G = &m->net[0], *D = &m->net[1];
        float *z = m->work, *real = z + (size_t)B * m->z_dim, *fake = real + B;
        normal_rows(z, B, m->z_dim, ctx, GT_PURPOSE(GT_RNG_LATENT, 1));
        const float *images = gt_net_forward(G, z, B, 0, rng_for(ctx, 3));
        memcpy(real, gt_net_forward(D, x, B, 0, rng_for(ctx, 0)), sizeof(float) * B);
        memcpy(fake, gt_net_forward(D, images, B, 0, rng_for(ctx, 1)), sizeof(float) * B);
        gt_stats_add(stats, "d_loss", gt_gan_d_loss(m->gan_loss, real, fake, B, NULL, NULL));
        gt_stats_add(stats, "g_loss", gt_gan_g_loss(m->gan_loss, fake, B, NULL));
        gt_stats_add(stats, "d_real", mean_sigmoid(real, B));
        gt_stats_add(stats, "d_fake", mean_sigmoid(fake, B));
    } else {
        classifier_step(m, x, labels, B, ctx, 0, stats);
    }
}

void gt_model_generate(gt_model *m, const float *z, int n, float *images) {
    GT_CHECK(m->kind != GT_MODEL_CLASSIFIER, "a classifier does not generate images");
    gt_net *net = &m->net[m->kind == GT_MODEL_GAN ? 0 : 1];
    size_t data = gt_shape_size(m->data_shape);
    gt_rng_ctx rng = {0, 0, 0, 1, 0};
    for (int i = 0; i < n; i += m->max_batch) {
        int B = n - i < m->max_batch ? n - i : m->max_batch;
        const float *out = gt_net_forward(net, z + (size_t)i * m->z_dim, B, 0, rng);
        float *dst = images + (size_t)i * data;
        if (m->kind == GT_MODEL_VAE && m->recon == GT_RECON_BERNOULLI)
            for (size_t j = 0; j < (size_t)B * data; j++) dst[j] = 1.0f / (1.0f + expf(-out[j]));
        else
            memcpy(dst, out, sizeof(float) * (size_t)B * data);
    }
}
