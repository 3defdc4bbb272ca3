/* What evaluation needs from the models (src/models, model.h): the
 * classifier's features (the input of its last layer) and logits, the
 * GAN's discriminator outputs, the VAE's IWAE bound with its Bernoulli and
 * Gaussian likelihoods (closed forms where the decoder ignores z and
 * q(z|x) = p(z)), and independence of how rows are batched; and the memory
 * account of a model (gt_model_memory). */
#include "check.h"

#include "gentrain/app.h"
#include "gentrain/config.h"
#include "gentrain/core.h"
#include "gentrain/eval.h"
#include "gentrain/model.h"

#include <math.h>
#include <string.h>

#define LOG_2PI 1.8378770664093454836

static gt_model *build(const char *text, gt_shape shape, int classes, int max_batch) {
    gt_config *cfg = NULL;
    gt_options o;
    gt_model *m = NULL;
    CHECK_OK(gt_config_parse(text, "test.ini", &cfg));
    CHECK_OK(gt_options_from_config(cfg, "test.ini", &o));
    CHECK_OK(gt_model_build(&o.model, shape, classes, max_batch, 3, &m));
    if (!m) gt_panic("test: cannot build the model");
    gt_options_free(&o);
    gt_config_free(cfg);
    return m;
}

static void fill_uniform(float *x, size_t n, uint64_t stream) {
    gt_rand_uniform(x, n, 11, GT_PURPOSE(GT_RNG_TEST, 70), 0, stream);
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

static void test_classifier(void) {
    static const char ini[] = "[model]\ntype = classifier\n[train]\nsteps = 1\n"
                              "[classifier]\nlayer1 = conv2d out=4 kernel=3 pad=1\nlayer2 = batchnorm\n"
                              "layer3 = relu\nlayer4 = flatten\nlayer5 = dense out=12\nlayer6 = relu\n"
                              "layer7 = dropout p=0.5\nlayer8 = dense out=5\n";
    gt_shape shape = {1, 6, 6};
    enum { N = 11, D = 36, F = 12, K = 5 };
    gt_model *m = build(ini, shape, K, 4);
    CHECK(gt_model_feature_dim(m) == F, "feature width %d, expected the last layer's input %d", gt_model_feature_dim(m),
          F);
    /* non-trivial batch-norm statistics, so that eval mode matters */
    gt_net *C = &m->net[0];
    for (size_t i = 0; i < C->n_state; i++) C->state[i] = 0.1f * (float)(i % 4) + (i >= 4 ? 0.5f : 0.0f);
    float x[N * D], feat[N * F], logits[N * K], one_feat[F], one_logits[K];
    fill_uniform(x, sizeof x / sizeof x[0], 1);
    gt_model_features(m, x, N, feat, logits);
    /* row by row through the net itself: the dropout's input is the features */
    double df = 0, dl = 0;
    for (int i = 0; i < N; i++) {
        gt_rng_ctx rng = {0, 0, 0, 1, 0};
        const float *out = gt_net_forward(C, x + i * D, 1, 0, rng);
        memcpy(one_logits, out, sizeof one_logits);
        memcpy(one_feat, C->layers[5].y, sizeof one_feat); /* relu after the first dense */
        df = fmax(df, max_abs_diff(one_feat, feat + i * F, F));
        dl = fmax(dl, max_abs_diff(one_logits, logits + i * K, K));
    }
    CHECK(df < 1e-5 && dl < 1e-5, "features/logits differ from the net's own layers: %g %g", df, dl);
    float only_feat[N * F];
    gt_model_features(m, x, N, only_feat, NULL); /* either output may be left out */
    CHECK(!memcmp(only_feat, feat, sizeof feat), "features without logits differ");
    gt_model_free(m);
}

static void test_discriminator(void) {
    static const char ini[] = "[model]\ntype = gan\nz_dim = 3\n[train]\nsteps = 1\n[data]\nkind = toy\n"
                              "[generator]\nlayer1 = dense out=8\nlayer2 = relu\nlayer3 = dense out=2\n"
                              "[discriminator]\nlayer1 = dense out=8\nlayer2 = leakyrelu slope=0.2\n"
                              "layer3 = dropout p=0.5\nlayer4 = dense out=1\n";
    gt_model *m = build(ini, (gt_shape){2, 1, 1}, 1, 3);
    enum { N = 7 };
    float x[N * 2], logits[N];
    fill_uniform(x, sizeof x / sizeof x[0], 2);
    gt_model_discriminate(m, x, N, logits);
    double d = 0;
    for (int i = 0; i < N; i++) {
        gt_rng_ctx rng = {0, 0, 0, 1, 0};
        d = fmax(d, fabs(gt_net_forward(&m->net[1], x + 2 * i, 1, 0, rng)[0] - logits[i]));
    }
    CHECK(d < 1e-6, "D's logits differ from its net in eval mode (no dropout): %g", d);
    gt_model_free(m);
}

/* A VAE whose encoder gives mu = 0, logvar = 0 (q = p) and whose decoder
 * ignores z (constant output c): log w = log p(x|z) for every z, so every
 * bound equals log p(x) = the likelihood at c, in closed form. */
static void test_iwae_closed_form(int gaussian) {
    char ini[512];
    snprintf(ini, sizeof ini,
             "[model]\ntype = vae\nz_dim = 2\nrecon = %s\n[train]\nsteps = 1\n"
             "[encoder]\nlayer1 = flatten\nlayer2 = dense out=4\n"
             "[decoder]\nlayer1 = dense out=6\nlayer2 = reshape shape=1x2x3\n",
             gaussian ? "gaussian" : "bernoulli");
    enum { N = 3, D = 6 };
    gt_model *m = build(ini, (gt_shape){1, 2, 3}, 1, 4);
    memset(m->net[0].params, 0, sizeof(float) * m->net[0].n_params);
    gt_net *dec = &m->net[1];
    memset(dec->params, 0, sizeof(float) * dec->n_params);
    const float c[D] = {-1.5f, 0.2f, 0.9f, 2.0f, -0.3f, 0.0f};
    memcpy(dec->params + 2 * D, c, sizeof c); /* the bias after the weight [6,2] */
    float x[N * D];
    fill_uniform(x, sizeof x / sizeof x[0], 3);
    gt_iwae_result r[N], r1[N];
    gt_model_iwae(m, x, N, 7, 5, 100, r);
    gt_model_iwae(m, x, N, 1, 5, 100, r1);
    for (int i = 0; i < N; i++) {
        double want = 0;
        for (int j = 0; j < D; j++) {
            double v = x[i * D + j], l = c[j];
            if (gaussian) want += -0.5 * (v - l) * (v - l);
            else want += v * l - (fmax(l, 0) + log1p(exp(-fabs(l))));
        }
        if (gaussian) want -= 0.5 * D * LOG_2PI; /* the normalizing constant of N(x; mean, I) */
        CHECK(check_close(r[i].iwae, want, 1e-5, 1e-5) && check_close(r[i].elbo, want, 1e-5, 1e-5),
              "%s example %d: iwae %.8g elbo %.8g, closed form %.8g", gaussian ? "gaussian" : "bernoulli", i,
              r[i].iwae, r[i].elbo, want);
        CHECK(check_close(r1[i].iwae, want, 1e-5, 1e-5), "k = 1: %.8g vs %.8g", r1[i].iwae, want);
    }
    gt_model_free(m);
}

/* A random VAE: the bound does not depend on how examples are grouped or on
 * the decoder's batch (max_batch), grows with k on average, and k = 1 gives
 * iwae = elbo. */
static void test_iwae_properties(void) {
    static const char ini[] = "[model]\ntype = vae\nz_dim = 3\n[train]\nsteps = 1\n"
                              "[encoder]\nlayer1 = flatten\nlayer2 = dense out=16\nlayer3 = relu\nlayer4 = dense out=6\n"
                              "[decoder]\nlayer1 = dense out=16\nlayer2 = relu\nlayer3 = dense out=8\n"
                              "layer4 = reshape shape=1x2x4\n";
    enum { N = 6, D = 8, K = 300 };
    gt_model *small = build(ini, (gt_shape){1, 2, 4}, 1, 7);
    gt_model *big = build(ini, (gt_shape){1, 2, 4}, 1, 64); /* same seed: same weights */
    float x[N * D];
    fill_uniform(x, sizeof x / sizeof x[0], 4);
    gt_iwae_result all[N], one[N], b[N], k1[N];
    gt_model_iwae(small, x, N, K, 9, 40, all);
    for (int i = 0; i < N; i++) gt_model_iwae(small, x + i * D, 1, K, 9, 40 + (uint64_t)i, &one[i]);
    gt_model_iwae(big, x, N, K, 9, 40, b);
    gt_model_iwae(small, x, N, 1, 9, 40, k1);
    double gain = 0;
    for (int i = 0; i < N; i++) {
        CHECK(all[i].iwae == one[i].iwae && all[i].elbo == one[i].elbo,
              "example %d alone differs from within a group: %.17g vs %.17g", i, one[i].iwae, all[i].iwae);
        CHECK(check_close(b[i].iwae, all[i].iwae, 1e-6, 1e-6), "example %d: decoder batch 64 vs 7: %.10g vs %.10g", i,
              b[i].iwae, all[i].iwae);
        CHECK(all[i].elbo <= all[i].iwae, "example %d: elbo %.8g above iwae %.8g", i, all[i].elbo, all[i].iwae);
        CHECK(k1[i].iwae == k1[i].elbo, "k = 1: iwae %.17g != elbo %.17g", k1[i].iwae, k1[i].elbo);
        gain += all[i].iwae - all[i].elbo;
    }
    CHECK(gain > 0, "IWAE with k = %d is not above the ELBO on average (%g)", K, gain / N);
    gt_model_free(small);
    gt_model_free(big);
}

/* The model's memory account (gt_model_memory) against a count by hand: a
 * GAN with Adam and an EMA generator, batch 4, data 1x4x4, z_dim 3. */
static void test_memory(void) {
    static const char ini[] = "[model]\ntype = gan\nz_dim = 3\ng_ema = 0.9\n[train]\nsteps = 1\n"
                              "[generator]\nlayer1 = dense out=16\nlayer2 = batchnorm\nlayer3 = reshape shape=1x4x4\n"
                              "[discriminator]\nlayer1 = flatten\nlayer2 = dense out=1\n";
    gt_model *m = build(ini, (gt_shape){1, 4, 4}, 1, 4);
    gt_memory mem;
    gt_model_memory(m, &mem);
    /* trainable: G dense 3*16 + 16, batch norm 16 + 16; D dense 16 + 1. State: G's running mean and variance. */
    size_t g_params = 64 + 32, d_params = 17, g_state = 32;
    CHECK(m->net[0].n_params == g_params && m->net[1].n_params == d_params, "parameters %zu and %zu",
          m->net[0].n_params, m->net[1].n_params);
    CHECK(mem.batch == 4, "memory batch %d", mem.batch);
    CHECK(mem.params == 4 * (g_params + d_params + g_state), "parameter bytes %zu (with state)", mem.params);
    CHECK(mem.grads == 4 * (g_params + d_params), "gradient bytes %zu", mem.grads);
    CHECK(mem.optim == 2 * mem.grads, "Adam's state is two moments: %zu bytes for %zu of gradients", mem.optim,
          mem.grads);
    CHECK(mem.ema == 4 * (g_params + g_state), "EMA generator bytes %zu", mem.ema);
    /* no layer with a workspace: only the GAN step's scratch, z [B, 3], logits and their deltas 8B, the next
     * step's D(x) logits computed ahead B, and D's two inputs [B, 16] */
    CHECK(mem.workspaces == 4 * (4 * (3 + 9) + 2 * 4 * 16), "workspace bytes %zu", mem.workspaces);
    size_t acts = 0;
    for (int k = 0; k < m->n_nets; k++) acts += m->net[k].bytes.activations;
    CHECK(mem.activations == acts && acts > 0, "activation bytes %zu: the networks'", mem.activations);
    CHECK(mem.total == mem.params + mem.grads + mem.optim + mem.ema + mem.activations + mem.workspaces,
          "the total adds up");
    gt_model_free(m);
}

/* gt_model_finite: every position of a tensor longer than the 1024-float
 * blocks of the vectorized test, NaN, +Inf and -Inf, in parameters and in
 * batch-norm statistics; the largest finite float and subnormals pass. */
static void test_finite(void) {
    static const char ini[] = "[model]\ntype = classifier\n[train]\nsteps = 1\n"
                              "[classifier]\nlayer1 = conv2d out=4 kernel=3 pad=1\nlayer2 = batchnorm\n"
                              "layer3 = relu\nlayer4 = flatten\nlayer5 = dense out=5\n";
    gt_model *m = build(ini, (gt_shape){1, 30, 30}, 5, 2); /* the dense weight: 5 x 3600 floats */
    gt_net *C = &m->net[0];
    char where[256];
    CHECK(gt_model_finite(m, where, sizeof where), "a fresh model is not finite");
    C->params[7] = 3.4028235e38f, C->params[C->n_params - 1] = 1e-45f;
    CHECK(gt_model_finite(m, where, sizeof where), "FLT_MAX or a subnormal counted as not finite");
    const float bad[3] = {NAN, INFINITY, -INFINITY};
    size_t positions[] = {0, 1023, 1024, 1025, 4095, C->n_params - 2, C->n_params - 1};
    int missed = 0;
    for (int b = 0; b < 3; b++)
        for (size_t k = 0; k < sizeof positions / sizeof positions[0]; k++) {
            size_t i = positions[k];
            float keep = C->params[i];
            C->params[i] = bad[b];
            where[0] = '\0';
            if (gt_model_finite(m, where, sizeof where) || !strstr(where, bad[b] != bad[b] ? "nan" : "inf")) missed++;
            C->params[i] = keep;
        }
    CHECK(!missed, "%d non-finite parameters missed or misnamed (last message: %s)", missed, where);
    C->state[C->n_state - 1] = NAN;
    CHECK(!gt_model_finite(m, where, sizeof where) && strstr(where, "batchnorm"),
          "a NaN batch-norm statistic missed: %s", where);
    gt_model_free(m);
}

int main(void) {
    test_classifier();
    test_finite();
    test_memory();
    test_discriminator();
    test_iwae_closed_form(0);
    test_iwae_closed_form(1);
    test_iwae_properties();
    return check_report("test_model_eval");
}
