/* tool_parity CONFIG OUT.h5 [section.key=value ...]
 *
 * Dumps everything tests/parity.py needs to redo one gentrain training step
 * in PyTorch and compare: the model is built from CONFIG for Fashion-MNIST
 * (1x28x28, 10 classes) with batch 8 and seed 1234, and runs ONE
 * gt_model_train_step (step 0, example0 0, stride 1, one process).
 *
 * Layout of OUT.h5 (float32 unless said; network tensors in PyTorch shapes):
 *   attrs /: model ("gan"/"vae"/...), config (resolved INI text), seed, step, batch,
 *            z_dim; GAN: gan_loss; VAE: recon, binarize, kl_weight
 *   /x [B,C,H,W]            the batch the step sees (VAE: after binarization, if on)
 *   /x_raw [B,C,H,W]        the batch as loaded and scaled
 *   /labels [B] int64       the batch's labels (classifier)
 *   /z [B,Z]                GAN latents (GT_RNG_LATENT sub 0)
 *   /eps [B,Z]              VAE reparameterization noise (GT_RNG_REPARAM sub 0)
 *   /masks/<net>/call<c>/<NN> [B,C,H,W]   dropout masks (0 or 1/(1-p)) of
 *                           layer NN in rng call c, recomputed from the keys
 *                           documented in model.h and nn.h (GAN with pack = P:
 *                           D's masks [B/P, ...], pack i from example index i*P)
 *   GAN stabilizers (attrs label_smoothing, instance_noise (sigma at step 0),
 *   pack, clip, g_ema):
 *   /noise/real, /noise/fake [B,C,H,W]   the instance noise added to D's inputs
 *                           (sigma times GT_RNG_NOISE normals), if on
 *   /after/ema/generator/...  the EMA generator after the step, if on
 *   /before/params/<net>/<NN>_<kind>/<tensor>   parameters and BN state before the step;
 *                           attrs of /before/params/<net>: the optimizer (kind, lr, beta1,
 *                           beta2, eps, weight_decay) as gentrain built it
 *   /grads/<net>/<NN>_<kind>/<tensor>   net.grads after the step (GAN: D's from the D
 *                           phase, G's from the G phase)
 *   /after/params/<net>/...             parameters and BN state after the step
 *   attrs /stats: the step's statistics (double)
 *   /forward/...            a fresh identical model, train mode, gt_net_forward only:
 *                           GAN: G_z = G(z) [B,C,H,W], D_x = D(x) [B/pack,1] (dropout call 0);
 *                           VAE: enc = E(x) [B,2Z] (call 0), z = mu + exp(logvar/2) eps,
 *                           dec = Dec(z) [B,C,H,W] logits (call 1); classifier: logits [B,K] */
#include "gentrain/app.h"
#include "gentrain/config.h"
#include "gentrain/core.h"
#include "gentrain/data.h"
#include "gentrain/io.h"
#include "gentrain/model.h"
#include "gentrain/nn.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define BATCH 8
#define SEED 1234
#define MAX_TENSORS 256
static const char *const IMAGES = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
static const char *const LABELS = "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz";

/* A tool: any error ends it with the message. */
static void must(gt_status st) {
    if (st) gt_exit_error(st);
}

static gt_tensor_ref refs[MAX_TENSORS];

static int tensors(const gt_net *net) {
    int n = gt_net_tensors(net, refs, MAX_TENSORS);
    GT_ASSERT(n >= 0 && n <= MAX_TENSORS, "%s has %d tensors, more than %d", net->name, n, MAX_TENSORS);
    return n;
}

/* Every tensor (params and state) of net under prefix/<net>/<name>. */
static void write_tensors(gt_h5 *f, const char *prefix, const gt_net *net) {
    int n = tensors(net);
    for (int i = 0; i < n; i++) {
        char name[256];
        snprintf(name, sizeof name, "%s/%.31s/%.63s", prefix, net->name, refs[i].name);
        must(gt_h5_write_floats(f, name, refs[i].data, refs[i].rank, refs[i].dims));
    }
}

/* The gradient of every trainable tensor: the same offsets in net.grads as in net.params. */
static void write_grads(gt_h5 *f, const gt_net *net) {
    int n = tensors(net);
    for (int i = 0; i < n; i++) {
        if (!refs[i].trainable) continue;
        GT_ASSERT(refs[i].data >= net->params && refs[i].data < net->params + net->n_params,
                 "%s %s is trainable but not in the parameter buffer", net->name, refs[i].name);
        char name[256];
        snprintf(name, sizeof name, "grads/%.31s/%.63s", net->name, refs[i].name);
        must(gt_h5_write_floats(f, name, net->grads + (refs[i].data - net->params), refs[i].rank, refs[i].dims));
    }
}

static void write_optim(gt_h5 *f, const gt_net *net, const gt_optim *opt) {
    char obj[128];
    snprintf(obj, sizeof obj, "before/params/%s", net->name);
    must(gt_h5_set_attr_str(f, obj, "kind", opt->kind == GT_OPT_ADAM ? "adam" : "sgd"));
    must(gt_h5_set_attr_double(f, obj, "lr", opt->lr));
    must(gt_h5_set_attr_double(f, obj, "beta1", opt->beta1));
    must(gt_h5_set_attr_double(f, obj, "beta2", opt->beta2));
    must(gt_h5_set_attr_double(f, obj, "eps", opt->eps));
    must(gt_h5_set_attr_double(f, obj, "weight_decay", opt->weight_decay));
}

static int image_dims(int *dims, int B, gt_shape s) {
    dims[0] = B;
    dims[1] = s.c;
    dims[2] = s.h;
    dims[3] = s.w;
    return 4;
}

/* B rows of n normals for stream (purpose, step 0, example i). */
static void normal_rows(float *out, int B, int n, uint32_t purpose) {
    for (int i = 0; i < B; i++) gt_rand_normal(out + (size_t)i * n, (size_t)n, SEED, purpose, 0, (uint64_t)i);
}

/* Recompute and write the dropout masks of net in rng call `call`
 * (nn.h/dropout: element kept iff u >= p, kept scaled by 1/(1-p)). */
static void write_masks(gt_h5 *f, const gt_net *net, uint32_t call, int n_ex, int stride) {
    for (int l = 0; l < net->n_layers; l++) {
        const gt_layer *L = &net->layers[l];
        if (strcmp(L->kind->name, "dropout") != 0) continue;
        size_t n = gt_shape_size(L->out);
        float p = (float)L->spec.opt[gt_layer_opt_index(L->kind, "p")].f, scale = 1.0f / (1.0f - p);
        float *mask = gt_alloc_floats((size_t)n_ex * n);
        uint32_t purpose = GT_PURPOSE(GT_RNG_DROPOUT, (call << 8) | (uint32_t)l);
        for (int i = 0; i < n_ex; i++) {
            float *m = mask + (size_t)i * n;
            gt_rand_uniform(m, n, SEED, purpose, 0, (uint64_t)i * stride);
            for (size_t j = 0; j < n; j++) m[j] = m[j] >= p ? scale : 0.0f;
        }
        char name[256];
        int dims[4];
        snprintf(name, sizeof name, "masks/%s/call%u/%02d", net->name, (unsigned)call, l);
        must(gt_h5_write_floats(f, name, mask, image_dims(dims, n_ex, L->out), dims));
        gt_free(mask);
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: tool_parity CONFIG OUT.h5 [section.key=value ...]\n");
        return 2;
    }
    gt_set_threads(1);
    gt_config *cfg;
    gt_options o;
    must(gt_config_load(argv[1], &cfg));
    for (int i = 3; i < argc; i++) must(gt_config_override(cfg, argv[i]));
    must(gt_options_from_config(cfg, argv[1], &o));
    const gt_shape shape = {1, 28, 28};
    gt_model *m;
    must(gt_model_build(&o.model, shape, 10, BATCH, SEED, &m));
    const size_t data = gt_shape_size(shape);
    const int Z = m->z_dim;
    const char *config_text = o.text;

    gt_dataset ds;
    must(gt_idx_load(&ds, IMAGES, LABELS, BATCH));
    GT_ASSERT(ds.n == BATCH, "%s: %lld images, wanted %d", IMAGES, (long long)ds.n, BATCH);
    GT_ASSERT(gt_shape_size(ds.shape) == data, "%s: images are not 28x28", IMAGES);
    int64_t idx[BATCH];
    for (int i = 0; i < BATCH; i++) idx[i] = i;
    float *x_raw = gt_alloc_floats((size_t)BATCH * data), *x = gt_alloc_floats((size_t)BATCH * data);
    int labels[BATCH];
    int64_t labels64[BATCH];
    gt_dataset_batch(&ds, idx, BATCH, gt_model_pixel_scale(m), x_raw, labels);
    for (int i = 0; i < BATCH; i++) labels64[i] = labels[i];
    memcpy(x, x_raw, sizeof(float) * (size_t)BATCH * data);
    if (m->kind == GT_MODEL_VAE && m->binarize) gt_binarize(x, BATCH, data, SEED, 0, 0, 1);

    gt_h5 *f;
    must(gt_h5_create(argv[2], &f));
    must(gt_h5_set_attr_str(f, NULL, "model", gt_model_kind_name(m->kind)));
    must(gt_h5_set_attr_str(f, NULL, "config", config_text));
    must(gt_h5_set_attr_int64(f, NULL, "seed", SEED));
    must(gt_h5_set_attr_int64(f, NULL, "step", 0));
    must(gt_h5_set_attr_int64(f, NULL, "batch", BATCH));
    must(gt_h5_set_attr_int64(f, NULL, "z_dim", Z));
    if (m->kind == GT_MODEL_GAN) {
        static const char *const losses[] = {"nonsaturating", "minimax", "hinge", "wasserstein"};
        must(gt_h5_set_attr_str(f, NULL, "gan_loss", losses[m->gan_loss]));
        must(gt_h5_set_attr_double(f, NULL, "label_smoothing", m->gan.label_smoothing));
        must(gt_h5_set_attr_double(f, NULL, "instance_noise", gt_model_noise_sigma(m, 0)));
        must(gt_h5_set_attr_int64(f, NULL, "pack", m->gan.pack));
        must(gt_h5_set_attr_double(f, NULL, "clip", m->gan.clip));
        must(gt_h5_set_attr_double(f, NULL, "g_ema", m->gan.g_ema));
    } else if (m->kind == GT_MODEL_VAE) {
        must(gt_h5_set_attr_str(f, NULL, "recon", m->recon == GT_RECON_BERNOULLI ? "bernoulli" : "gaussian"));
        must(gt_h5_set_attr_int64(f, NULL, "binarize", m->binarize));
        must(gt_h5_set_attr_double(f, NULL, "kl_weight", m->kl_weight));
    }
    int dims[4];
    must(gt_h5_write_floats(f, "x", x, image_dims(dims, BATCH, shape), dims));
    must(gt_h5_write_floats(f, "x_raw", x_raw, image_dims(dims, BATCH, shape), dims));
    must(gt_h5_write_int64(f, "labels", labels64, 1, (int[]){BATCH}));
    for (int k = 0; k < m->n_nets; k++) {
        write_tensors(f, "before/params", &m->net[k]);
        write_optim(f, &m->net[k], &m->opt[k]);
    }

    /* The step's randomness, recomputed from the documented keys (model.h). */
    float *noise = gt_alloc_floats((size_t)BATCH * Z);
    if (m->kind == GT_MODEL_GAN) {
        normal_rows(noise, BATCH, Z, GT_PURPOSE(GT_RNG_LATENT, 0));
        must(gt_h5_write_floats(f, "z", noise, 2, (int[]){BATCH, Z}));
        write_masks(f, &m->net[0], 3, BATCH, 1);
        for (uint32_t call = 0; call < 3; call++) write_masks(f, &m->net[1], call, BATCH / m->gan.pack, m->gan.pack);
        double sigma = gt_model_noise_sigma(m, 0);
        if (sigma > 0) {
            float *in = gt_alloc_floats((size_t)BATCH * data);
            for (uint32_t sub = 0; sub < 2; sub++) {
                normal_rows(in, BATCH, (int)data, GT_PURPOSE(GT_RNG_NOISE, sub));
                for (size_t i = 0; i < (size_t)BATCH * data; i++) in[i] = (float)sigma * in[i];
                must(gt_h5_write_floats(f, sub ? "noise/fake" : "noise/real", in, image_dims(dims, BATCH, shape), dims));
            }
            gt_free(in);
        }
    } else if (m->kind == GT_MODEL_VAE) {
        normal_rows(noise, BATCH, Z, GT_PURPOSE(GT_RNG_REPARAM, 0));
        must(gt_h5_write_floats(f, "eps", noise, 2, (int[]){BATCH, Z}));
        write_masks(f, &m->net[0], 0, BATCH, 1);
        write_masks(f, &m->net[1], 1, BATCH, 1);
    } else {
        write_masks(f, &m->net[0], 0, BATCH, 1);
    }

    /* One step. */
    gt_step_ctx ctx = {.seed = SEED, .step = 0, .example0 = 0, .stride = 1, .reduce_grads = NULL};
    gt_stats stats = {0};
    gt_model_train_step(m, x_raw, labels, BATCH, &ctx, &stats);
    must(gt_h5_make_group(f, "stats"));
    for (int i = 0; i < stats.n; i++) {
        must(gt_h5_set_attr_double(f, "stats", stats.name[i], stats.value[i]));
        printf("  %s = %.6g\n", stats.name[i], stats.value[i]);
    }
    for (int k = 0; k < m->n_nets; k++) {
        write_grads(f, &m->net[k]);
        write_tensors(f, "after/params", &m->net[k]);
    }
    if (gt_model_has_ema(m)) {
        gt_model_swap_ema(m);
        write_tensors(f, "after/ema", &m->net[0]);
        gt_model_swap_ema(m);
    }

    /* Forward passes of a fresh identical model. */
    gt_model *m2;
    must(gt_model_build(&o.model, shape, 10, BATCH, SEED, &m2));
    if (m2->kind == GT_MODEL_GAN) {
        gt_rng_ctx g_rng = {SEED, 0, 0, 1, 3}, d_rng = {SEED, 0, 0, 1, 0};
        const float *gz = gt_net_forward(&m2->net[0], noise, BATCH, 1, g_rng);
        must(gt_h5_write_floats(f, "forward/G_z", gz, image_dims(dims, BATCH, shape), dims));
        d_rng.stride = (uint64_t)m2->gan.pack;
        const float *dx = gt_net_forward(&m2->net[1], x_raw, BATCH / m2->gan.pack, 1, d_rng);
        must(gt_h5_write_floats(f, "forward/D_x", dx, 2, (int[]){BATCH / m2->gan.pack, 1}));
    } else if (m2->kind == GT_MODEL_VAE) {
        gt_rng_ctx e_rng = {SEED, 0, 0, 1, 0}, d_rng = {SEED, 0, 0, 1, 1};
        const float *h = gt_net_forward(&m2->net[0], x, BATCH, 1, e_rng);
        must(gt_h5_write_floats(f, "forward/enc", h, 2, (int[]){BATCH, 2 * Z}));
        float *z = gt_alloc_floats((size_t)BATCH * Z);
        for (int i = 0; i < BATCH; i++)
            for (int j = 0; j < Z; j++) {
                size_t o = (size_t)i * Z + j;
                z[o] = h[(size_t)i * 2 * Z + j] + expf(0.5f * h[(size_t)i * 2 * Z + Z + j]) * noise[o];
            }
        must(gt_h5_write_floats(f, "forward/z", z, 2, (int[]){BATCH, Z}));
        const float *dec = gt_net_forward(&m2->net[1], z, BATCH, 1, d_rng);
        must(gt_h5_write_floats(f, "forward/dec", dec, image_dims(dims, BATCH, shape), dims));
        gt_free(z);
    } else {
        gt_rng_ctx c_rng = {SEED, 0, 0, 1, 0};
        const float *logits = gt_net_forward(&m2->net[0], x_raw, BATCH, 1, c_rng);
        must(gt_h5_write_floats(f, "forward/logits", logits, 2, (int[]){BATCH, m2->n_classes}));
    }
    must(gt_h5_close(f));
    printf("tool_parity: %s step written to %s\n", gt_model_kind_name(m->kind), argv[2]);

    gt_model_free(m2);
    gt_model_free(m);
    gt_dataset_free(&ds);
    gt_free(noise);
    gt_free(x);
    gt_free(x_raw);
    gt_options_free(&o);
    gt_config_free(cfg);
    gt_h5_library_close();
    return 0;
}
