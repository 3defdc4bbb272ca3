/* GAN: net[0] = generator [z_dim] -> [data], net[1] = discriminator [data]
 * -> [1] (a logit), on pixels in [-1, 1].
 *
 * The step is PyTorch's DCGAN example's: fake = G(z) once (train mode);
 * D phase: D(x) and D(fake) -> D loss, D's gradients reduced, D's optimizer
 * step; G phase: the updated D on the same fake -> G loss, only D's input
 * gradient, G's gradients reduced, G's optimizer step. */
#include "gentrain/model.h"

#include <math.h>
#include <string.h>

static void net_shapes(const gt_model *m, int k, gt_shape *in, gt_shape *out, const char **what) {
    gt_shape z = {m->z_dim, 1, 1};
    *in = k == 0 ? z : m->data_shape;
    *out = k == 0 ? m->data_shape : (gt_shape){1, 1, 1};
    *what = k == 0 ? "the data" : "a logit";
}

/* z [B, z_dim], real and fake logits [B], their deltas [B] */
static size_t work_floats(const gt_model *m, int B) { return (size_t)B * (m->z_dim + 8); }

static double mean_sigmoid(const float *logits, int B) {
    double s = 0;
    for (int i = 0; i < B; i++) s += 1.0 / (1.0 + exp(-(double)logits[i]));
    return s / B;
}

static void train_step(gt_model *m, const float *x, const int *labels, int B, const gt_step_ctx *ctx,
                       gt_stats *st) {
    (void)labels;
    gt_net *G = &m->net[0], *D = &m->net[1];
    float *z = m->work;                          /* [B, z_dim] */
    float *real = z + (size_t)B * m->z_dim;      /* [B] D logits on x */
    float *fake = real + B;                      /* [B] D logits on G(z) */
    float *dreal = fake + B, *dfake = dreal + B; /* [B] */
    const gt_grads_ready none = {0};
    gt_model_normal_rows(z, B, m->z_dim, ctx, GT_PURPOSE(GT_RNG_LATENT, 0));
    const float *images = gt_net_forward(G, z, B, 1, gt_model_rng(ctx, 3));

    /* D phase: D(x) forward and backward first, then D(G(z)); the loss is a
     * sum of the two parts, so each part's gradient needs only its own
     * logits. D's gradients are final only after the second backward. */
    gt_net_zero_grads(D);
    memcpy(real, gt_net_forward(D, x, B, 1, gt_model_rng(ctx, 0)), sizeof(float) * B);
    memset(fake, 0, sizeof(float) * B);
    gt_gan_d_loss(m->gan_loss, real, fake, B, dreal, NULL);
    gt_net_backward(D, dreal, GT_BACKWARD_PARAMS, none);
    memcpy(fake, gt_net_forward(D, images, B, 1, gt_model_rng(ctx, 1)), sizeof(float) * B);
    double d_loss = gt_gan_d_loss(m->gan_loss, real, fake, B, NULL, dfake);
    gt_net_backward(D, dfake, GT_BACKWARD_PARAMS, ctx->ready);
    double d_real = mean_sigmoid(real, B), d_fake = mean_sigmoid(fake, B);
    double d_norm = gt_model_update(D, &m->opt[1], ctx);

    /* G phase: the updated D on the same G(z); only D's input gradient. */
    const float *logits = gt_net_forward(D, images, B, 1, gt_model_rng(ctx, 2));
    double g_loss = gt_gan_g_loss(m->gan_loss, logits, B, dfake);
    const float *dimages = gt_net_backward(D, dfake, GT_BACKWARD_INPUT, none);
    gt_net_zero_grads(G);
    gt_net_backward(G, dimages, GT_BACKWARD_PARAMS, ctx->ready);
    double g_norm = gt_model_update(G, &m->opt[0], ctx);

    gt_stats_add(st, "d_loss", d_loss);
    gt_stats_add(st, "g_loss", g_loss);
    gt_stats_add(st, "d_real", d_real);
    gt_stats_add(st, "d_fake", d_fake);
    gt_stats_add(st, "d_grad_norm", d_norm);
    gt_stats_add(st, "g_grad_norm", g_norm);
}

/* D and G losses in eval mode on real x and fresh latents (purpose LATENT/1). */
static void evaluate(gt_model *m, const float *x, const int *labels, int B, const gt_step_ctx *ctx, gt_stats *st) {
    (void)labels;
    gt_net *G = &m->net[0], *D = &m->net[1];
    float *z = m->work, *real = z + (size_t)B * m->z_dim, *fake = real + B;
    gt_model_normal_rows(z, B, m->z_dim, ctx, GT_PURPOSE(GT_RNG_LATENT, 1));
    const float *images = gt_net_forward(G, z, B, 0, gt_model_rng(ctx, 3));
    memcpy(real, gt_net_forward(D, x, B, 0, gt_model_rng(ctx, 0)), sizeof(float) * B);
    memcpy(fake, gt_net_forward(D, images, B, 0, gt_model_rng(ctx, 1)), sizeof(float) * B);
    gt_stats_add(st, "d_loss", gt_gan_d_loss(m->gan_loss, real, fake, B, NULL, NULL));
    gt_stats_add(st, "g_loss", gt_gan_g_loss(m->gan_loss, fake, B, NULL));
    gt_stats_add(st, "d_real", mean_sigmoid(real, B));
    gt_stats_add(st, "d_fake", mean_sigmoid(fake, B));
}

static void generate(gt_model *m, const float *z, int n, float *images) {
    size_t data = gt_shape_size(m->data_shape);
    gt_rng_ctx rng = {0, 0, 0, 1, 0};
    for (int i = 0; i < n; i += m->max_batch) {
        int B = n - i < m->max_batch ? n - i : m->max_batch;
        const float *out = gt_net_forward(&m->net[0], z + (size_t)i * m->z_dim, B, 0, rng);
        memcpy(images + (size_t)i * data, out, sizeof(float) * (size_t)B * data);
    }
}

static void discriminate(gt_model *m, const float *x, int n, float *logits) {
    size_t data = gt_shape_size(m->data_shape);
    gt_rng_ctx rng = {0, 0, 0, 1, 0};
    for (int i = 0; i < n; i += m->max_batch) {
        int B = n - i < m->max_batch ? n - i : m->max_batch;
        memcpy(logits + i, gt_net_forward(&m->net[1], x + (size_t)i * data, B, 0, rng), sizeof(float) * B);
    }
}

const gt_model_kind_info gt_model_gan = {
    .name = "gan",
    .n_nets = 2,
    .net_names = {"generator", "discriminator"},
    .scale = GT_SCALE_SIGNED,
    .net_shapes = net_shapes,
    .work_floats = work_floats,
    .train_step = train_step,
    .evaluate = evaluate,
    .generate = generate,
    .discriminate = discriminate,
};
