/* GAN: net[0] = generator [z_dim] -> [data], net[1] = discriminator
 * [pack*C, H, W] -> [1] (a logit, or a critic value), on pixels in [-1, 1].
 *
 * The step is PyTorch's DCGAN example's: fake = G(z) once (train mode);
 * D phase: D(x) and D(fake) -> D loss, D's gradients reduced, D's optimizer
 * step; G phase: the updated D on the same fake -> G loss, only D's input
 * gradient, G's gradients reduced, G's optimizer step.
 *
 * Stabilizers (model.h gt_gan_opts, all off by default):
 *  - one-sided label smoothing: D's BCE target for real examples is 1 - a;
 *  - instance noise: every input D sees in training (real and generated, in
 *    both phases) gets N(0, sigma^2) noise, sigma annealed linearly from
 *    sigma0 to 0 (gt_model_noise_sigma); drawn per global example from
 *    (seed, NOISE/0 real or /1 generated, step, example), so it does not
 *    depend on the number of ranks; the G phase sees the D phase's noisy G(z);
 *  - packing (PacGAN, Lin et al. 2018): D judges packs of `pack` consecutive
 *    examples of the local batch concatenated along channels, which in NCHW is
 *    the same memory: D simply runs on B/pack examples of pack*C channels.
 *    Packs are formed within a rank's batch, so they change with the number
 *    of ranks;
 *  - wasserstein loss with weight clipping (Arjovsky et al. 2017): after each
 *    D step, every parameter of D is clipped to [-clip, clip];
 *  - EMA of G's weights: after each G step ema = g_ema * ema + (1 - g_ema) *
 *    params, and G's state (batch-norm statistics, spectral norm's u and v) is
 *    copied. Samples come from it (gt_model_swap_ema); the test-set losses
 *    report it beside the live G (ema_g_loss, ema_d_fake). */
#include "gentrain/model.h"

#include <math.h>
#include <string.h>

static void net_shapes(const gt_model *m, int k, gt_shape *in, gt_shape *out, const char **what) {
    gt_shape z = {m->z_dim, 1, 1}, d = m->data_shape;
    d.c *= m->gan.pack;
    *in = k == 0 ? z : d;
    *out = k == 0 ? m->data_shape : (gt_shape){1, 1, 1};
    *what = k == 0 ? "the data" : "a logit";
}

static int rows_of_inputs(const gt_model *m, int B) { return B > m->gan.pack ? B : m->gan.pack; }

/* z [B, z_dim]; real and fake logits [B], their deltas [B]; D's real and
 * generated inputs [max(B, pack), data] (with noise, or packed for
 * evaluation); at the end, the next step's D(x) logits computed ahead
 * [max_batch] (kept across evaluations) */
static size_t work_floats(const gt_model *m, int B) {
    return (size_t)B * (m->z_dim + 9) + 2 * (size_t)rows_of_inputs(m, B) * gt_shape_size(m->data_shape);
}

typedef struct {
    float *z, *real, *fake, *dreal, *dfake, *xr, *xf, *ahead;
} work_t;

static work_t work_of(const gt_model *m, int B) {
    work_t w;
    w.z = m->work;
    w.real = w.z + (size_t)B * m->z_dim;
    w.fake = w.real + B;
    w.dreal = w.fake + B;
    w.dfake = w.dreal + B;
    w.xr = w.dfake + B;
    w.xf = w.xr + (size_t)rows_of_inputs(m, B) * gt_shape_size(m->data_shape);
    w.ahead = m->work + m->n_work - m->max_batch;
    return w;
}

static double mean_sigmoid(const float *logits, int B) {
    double s = 0;
    for (int i = 0; i < B; i++) s += 1.0 / (1.0 + exp(-(double)logits[i]));
    return s / B;
}

/* out [B, data] = in + sigma * N(0, 1), row i from (seed, NOISE/sub, step, example0 + i*stride) */
static void add_noise(float *out, const float *in, int B, size_t data, double sigma, const gt_step_ctx *ctx,
                      uint32_t sub) {
    gt_model_normal_rows(out, B, (int)data, ctx, GT_PURPOSE(GT_RNG_NOISE, sub));
    float s = (float)sigma;
    for (size_t i = 0; i < (size_t)B * data; i++) out[i] = in[i] + s * out[i];
}

static void clip_params(gt_net *net, float c) {
    for (size_t i = 0; i < net->n_params; i++) net->params[i] = fminf(fmaxf(net->params[i], -c), c);
}

static void update_ema(gt_model *m) {
    const gt_net *G = &m->net[0];
    float b = m->gan.g_ema, a = (float)(1.0 - (double)m->gan.g_ema);
    for (size_t i = 0; i < G->n_params; i++) m->ema_params[i] = b * m->ema_params[i] + a * G->params[i];
    if (G->n_state) memcpy(m->ema_state, G->state, sizeof(float) * G->n_state);
}

/* D's part on real examples: D(x) forward, and backward into D's zeroed
 * gradients (no grads-ready hook: D's gradient is final only after the part
 * on generated examples); logits -> real [B/pack]. Dropout and instance
 * noise are those of ctx's step. */
static void real_part(gt_model *m, const float *x, int B, const gt_step_ctx *ctx, float *real) {
    gt_net *D = &m->net[1];
    work_t w = work_of(m, B);
    int Bp = B / m->gan.pack;
    double sigma = gt_model_noise_sigma(m, ctx->step);
    const float *in = x;
    if (sigma > 0) {
        add_noise(w.xr, x, B, gt_shape_size(m->data_shape), sigma, ctx, 0);
        in = w.xr;
    }
    gt_step_ctx dctx = *ctx; /* D's example i is pack i: local examples i*P .. i*P+P-1 */
    dctx.stride = ctx->stride * (uint64_t)m->gan.pack;
    const gt_grads_ready none = {0};
    gt_net_zero_grads(D);
    memcpy(real, gt_net_forward(D, in, Bp, 1, gt_model_rng(&dctx, 0)), sizeof(float) * Bp);
    memset(w.fake, 0, sizeof(float) * Bp);
    gt_gan_d_loss(m->gan_loss, real, w.fake, Bp, m->gan.label_smoothing, w.dreal, NULL);
    gt_net_backward(D, w.dreal, GT_BACKWARD_PARAMS, none);
}

/* Whether this step computes the next step's D(x) while G's gradients travel:
 * only when the reductions can progress meanwhile, the next batch is at hand,
 * and D keeps no state (its state would be updated in another order than in
 * the plain step). */
static int computes_ahead(const gt_model *m, const gt_step_ctx *ctx) {
    return ctx->next_x && ctx->progress.fn && gt_model_can_compute_ahead(m);
}

static void train_step(gt_model *m, const float *x, const int *labels, int B, const gt_step_ctx *ctx,
                       gt_stats *st) {
    (void)labels;
    gt_net *G = &m->net[0], *D = &m->net[1];
    size_t data = gt_shape_size(m->data_shape);
    int P = m->gan.pack, Bp = B / P;
    GT_ASSERT(B % P == 0, "GAN step: batch %d is not a multiple of pack %d", B, P);
    work_t w = work_of(m, B);
    const gt_grads_ready none = {0};
    gt_model_normal_rows(w.z, B, m->z_dim, ctx, GT_PURPOSE(GT_RNG_LATENT, 0));
    const float *images = gt_net_forward(G, w.z, B, 1, gt_model_rng(ctx, 3));
    const float *d_fake_in = images;
    double sigma = gt_model_noise_sigma(m, ctx->step);
    if (sigma > 0) {
        add_noise(w.xf, images, B, data, sigma, ctx, 1);
        d_fake_in = w.xf;
    }
    gt_step_ctx dctx = *ctx;
    dctx.stride = ctx->stride * (uint64_t)P;

    /* D phase: D(x) forward and backward first (or the previous step did
     * them), then D(G(z)); the loss is a sum of the two parts, so each part's
     * gradient needs only its own logits. D's gradients are final only after
     * the second backward. */
    if (m->ahead_step == (int64_t)ctx->step)
        memcpy(w.real, w.ahead, sizeof(float) * Bp);
    else
        real_part(m, x, B, ctx, w.real);
    m->ahead_step = -1;
    memcpy(w.fake, gt_net_forward(D, d_fake_in, Bp, 1, gt_model_rng(&dctx, 1)), sizeof(float) * Bp);
    double d_loss = gt_gan_d_loss(m->gan_loss, w.real, w.fake, Bp, m->gan.label_smoothing, NULL, w.dfake);
    gt_net_backward(D, w.dfake, GT_BACKWARD_PARAMS, ctx->ready);
    double d_real = mean_sigmoid(w.real, Bp), d_fake = mean_sigmoid(w.fake, Bp);
    double d_norm = gt_model_update(D, &m->opt[1], ctx);
    if (m->gan_loss == GT_GAN_WASSERSTEIN) clip_params(D, m->gan.clip);

    /* G phase: the updated D on the same (noisy) G(z); only D's input
     * gradient, which is G's output gradient (noise is added, packs are the
     * same memory). */
    const float *logits = gt_net_forward(D, d_fake_in, Bp, 1, gt_model_rng(&dctx, 2));
    double g_loss = gt_gan_g_loss(m->gan_loss, logits, Bp, w.dfake);
    const float *dimages = gt_net_backward(D, w.dfake, GT_BACKWARD_INPUT, none);
    gt_net_zero_grads(G);
    gt_net_backward(G, dimages, GT_BACKWARD_PARAMS, ctx->ready);
    /* G's gradients are on their way; D's parameters are final for the next
     * step, so its D(x) can run now and give the reduction time to progress
     * (the same numbers as in the next step: the same parameters, batch and
     * random streams) */
    if (computes_ahead(m, ctx)) {
        gt_step_ctx next = *ctx;
        next.step++;
        real_part(m, ctx->next_x, B, &next, w.ahead);
        m->ahead_step = (int64_t)next.step;
        m->ahead_count++;
    }
    double g_norm = gt_model_update(G, &m->opt[0], ctx);
    if (m->ema_params) update_ema(m);

    gt_stats_add_net(st, "d_loss", d_loss, 1);
    gt_stats_add_net(st, "g_loss", g_loss, 0);
    gt_stats_add_net(st, "d_real", d_real, 1);
    gt_stats_add_net(st, "d_fake", d_fake, 1);
    gt_stats_add_net(st, "d_grad_norm", d_norm, 1);
    gt_stats_add_net(st, "g_grad_norm", g_norm, 0);
    if (m->gan.noise > 0) gt_stats_add(st, "noise_sigma", sigma);
}

/* D's inputs for evaluation: n packs of P examples of x [B, data], example
 * k*P + j of the packs being x's (k*P + j) mod B; n = B/P, at least 1 (the
 * examples a last batch that P does not divide leaves over are dropped; a
 * batch smaller than P is repeated). Returns x itself when nothing moves. */
static const float *packs(const gt_model *m, const float *x, int B, float *buf, int *n) {
    int P = m->gan.pack;
    *n = B / P > 0 ? B / P : 1;
    if (B >= P) return x;
    size_t data = gt_shape_size(m->data_shape);
    for (int i = 0; i < *n * P; i++) memcpy(buf + (size_t)i * data, x + (size_t)(i % B) * data, sizeof(float) * data);
    return buf;
}

/* D and G losses in eval mode on real x and fresh latents (purpose LATENT/1);
 * with an EMA generator also its G loss and D(G(z)) (ema_g_loss, ema_d_fake). */
static void evaluate(gt_model *m, const float *x, const int *labels, int B, const gt_step_ctx *ctx, gt_stats *st) {
    (void)labels;
    gt_net *G = &m->net[0], *D = &m->net[1];
    work_t w = work_of(m, B);
    float *z = w.z, *real = w.real, *fake = w.fake, *xr = w.xr, *xf = w.xf;
    gt_step_ctx dctx = *ctx;
    dctx.stride = ctx->stride * (uint64_t)m->gan.pack;
    int n;
    gt_model_normal_rows(z, B, m->z_dim, ctx, GT_PURPOSE(GT_RNG_LATENT, 1));
    const float *images = packs(m, gt_net_forward(G, z, B, 0, gt_model_rng(ctx, 3)), B, xf, &n);
    memcpy(real, gt_net_forward(D, packs(m, x, B, xr, &n), n, 0, gt_model_rng(&dctx, 0)), sizeof(float) * n);
    memcpy(fake, gt_net_forward(D, images, n, 0, gt_model_rng(&dctx, 1)), sizeof(float) * n);
    gt_stats_add_net(st, "d_loss", gt_gan_d_loss(m->gan_loss, real, fake, n, m->gan.label_smoothing, NULL, NULL), 1);
    gt_stats_add_net(st, "g_loss", gt_gan_g_loss(m->gan_loss, fake, n, NULL), 0);
    gt_stats_add_net(st, "d_real", mean_sigmoid(real, n), 1);
    gt_stats_add_net(st, "d_fake", mean_sigmoid(fake, n), 1);
    if (!m->ema_params) return;
    gt_model_swap_ema(m);
    images = packs(m, gt_net_forward(G, z, B, 0, gt_model_rng(ctx, 3)), B, xf, &n);
    gt_model_swap_ema(m);
    memcpy(fake, gt_net_forward(D, images, n, 0, gt_model_rng(&dctx, 1)), sizeof(float) * n);
    gt_stats_add(st, "ema_g_loss", gt_gan_g_loss(m->gan_loss, fake, n, NULL));
    gt_stats_add(st, "ema_d_fake", mean_sigmoid(fake, n));
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
