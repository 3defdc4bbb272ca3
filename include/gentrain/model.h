/* models: GAN, VAE and classifier, each a kind (src/models/gan.c, vae.c,
 * classifier.c) behind one small table of functions: its networks and their
 * shapes, a training step, an evaluation on a batch, and where it has them,
 * generation and reconstruction. src/models/model.c builds a model from its
 * options and dispatches. A model owns up to two networks, each with its own
 * optimizer. Models know nothing of MPI, HDF5 or config files: the step
 * reaches the other ranks only through the hooks in gt_step_ctx. */
#ifndef GENTRAIN_MODEL_H
#define GENTRAIN_MODEL_H

#include <stdint.h>

#include "gentrain/core.h"
#include "gentrain/data.h"
#include "gentrain/eval.h"
#include "gentrain/loss.h"
#include "gentrain/nn.h"
#include "gentrain/optim.h"

#define GT_MAX_NETS 2
#define GT_MAX_STATS 16

typedef enum { GT_MODEL_GAN, GT_MODEL_VAE, GT_MODEL_CLASSIFIER } gt_model_kind;
typedef enum { GT_RECON_BERNOULLI, GT_RECON_GAUSSIAN } gt_recon;

/* ---- options (parsed from a config by src/app/options.c) ------------------ */

/* One network: its layers, where each was configured (for messages:
 * "FILE:LINE: [section] layerN = \"...\""), and its optimizer. */
typedef struct {
    int n_layers;
    gt_layer_spec *layers;
    char **where;
    gt_optim_opts optim;
    gt_init init; /* the network section's init and init_std */
} gt_net_opts;

/* The GAN's stabilizers ([model] keys; all off by default). */
typedef struct {
    float label_smoothing; /* one-sided: D's target for real examples is 1 - a (BCE losses only) */
    float noise;           /* instance noise: N(0, sigma^2) added to every input of D, sigma0 = noise ... */
    long noise_steps;      /* ... decaying linearly to 0 at step noise_steps (0: constant) */
    int pack;              /* PacGAN: D judges pack samples concatenated along channels (1 = off) */
    float clip;            /* wasserstein: D's parameters clipped to [-clip, clip] after each D step */
    float g_ema;           /* EMA decay of the generator's weights (0 = off) */
} gt_gan_opts;

typedef struct {
    gt_model_kind kind;
    int z_dim;           /* GAN, VAE */
    gt_gan_loss gan_loss; /* GAN */
    gt_gan_opts gan;     /* GAN */
    gt_recon recon;      /* VAE */
    int binarize;        /* VAE: dynamic binarization of the inputs */
    float kl_weight;     /* VAE: beta */
    gt_net_opts net[GT_MAX_NETS]; /* in the kind's order (gt_model_kind_info) */
} gt_model_opts;
void gt_model_opts_free(gt_model_opts *o);

/* ---- statistics of a step ------------------------------------------------- */

/* Named scalars a step reports (losses, D(x), D(G(z)), ...), each a mean over
 * the local batch, so that averaging over ranks gives the global mean; net
 * says which network a value belongs to (its index, -1: the model as a
 * whole), for messages. */
typedef struct {
    int n;
    const char *name[GT_MAX_STATS];
    double value[GT_MAX_STATS];
    int net[GT_MAX_STATS];
} gt_stats;
void gt_stats_add(gt_stats *s, const char *name, double value);          /* net -1 */
void gt_stats_add_net(gt_stats *s, const char *name, double value, int net);

/* ---- one step -------------------------------------------------------------- */

typedef struct {
    uint64_t seed, step;
    uint64_t example0, stride; /* see gt_rng_ctx */
    /* Given to the backward that makes a network's gradients final ({NULL} = none). */
    gt_grads_ready ready;
    /* Sums a network's gradients over the replicas and divides by their number,
     * right before its optimizer step; NULL = one process. */
    void (*reduce_grads)(gt_net *net, void *arg);
    void *reduce_arg;
    /* Given to every network for the step: lets the reductions in flight
     * advance between layers ({NULL} = none). */
    gt_progress progress;
    /* The next step's local batch [B, data] when the caller already holds it
     * (NULL: none). With progress set, a GAN computes the next step's D(x)
     * while its generator's gradients travel (src/models/gan.c). */
    const float *next_x;
} gt_step_ctx;

/* ---- the model ---------------------------------------------------------------- */

typedef struct gt_model gt_model;

/* What a model kind is: its networks and the functions of src/models/<kind>.c. */
typedef struct {
    const char *name; /* "gan", "vae", "classifier" (configs, checkpoints) */
    int n_nets;
    const char *net_names[GT_MAX_NETS]; /* config sections and checkpoint groups */
    gt_pixel_scale scale;               /* the pixel range it trains on */
    /* The input shape of network k and the output shape it must have (and
     * what that output is, for messages), for data of m->data_shape. */
    void (*net_shapes)(const gt_model *m, int k, gt_shape *in, gt_shape *out, const char **what);
    size_t (*work_floats)(const gt_model *m, int max_batch); /* step scratch */
    /* One optimization step on the local batch x [B, data] (labels [B] for a classifier). */
    void (*train_step)(gt_model *m, const float *x, const int *labels, int B, const gt_step_ctx *ctx,
                       gt_stats *stats);
    /* Losses in eval mode, no update. */
    void (*evaluate)(gt_model *m, const float *x, const int *labels, int B, const gt_step_ctx *ctx, gt_stats *stats);
    /* z [n, z_dim] -> images [n, data] in the data range (NULL: the kind does not generate). */
    void (*generate)(gt_model *m, const float *z, int n, float *images);
    /* x [n, data] -> reconstructions [n, data] (NULL: the kind does not reconstruct). */
    void (*reconstruct)(gt_model *m, const float *x, int n, float *out);
    /* What evaluation needs (NULL where a kind has none): see gt_model_features,
     * gt_model_discriminate and gt_model_iwae below. */
    int (*feature_dim)(const gt_model *m);
    void (*features)(gt_model *m, const float *x, int n, float *feat, float *logits);
    void (*discriminate)(gt_model *m, const float *x, int n, float *logits);
    void (*iwae)(gt_model *m, const float *x, int n, int k, uint64_t seed, uint64_t example0, gt_iwae_result *out);
} gt_model_kind_info;

extern const gt_model_kind_info gt_model_gan, gt_model_vae, gt_model_classifier;
const gt_model_kind_info *gt_model_kind_get(gt_model_kind kind);
const char *gt_model_kind_name(gt_model_kind kind);

struct gt_model {
    gt_model_kind kind;
    const gt_model_kind_info *info;
    int n_nets;
    gt_net net[GT_MAX_NETS];   /* GAN: generator, discriminator; VAE: encoder, decoder; classifier: one */
    gt_optim opt[GT_MAX_NETS];
    gt_shape data_shape;
    int z_dim, n_classes, max_batch;
    gt_gan_loss gan_loss;      /* GAN */
    gt_gan_opts gan;           /* GAN */
    gt_recon recon;            /* VAE */
    int binarize;              /* VAE */
    float kl_weight;           /* VAE */
    float *work;               /* step scratch (latents, noise, logits, deltas) */
    size_t n_work;
    /* GAN with gan.g_ema > 0: the exponential moving average of the
     * generator's parameters (net[0].n_params) and a copy of its state
     * (n_state: batch-norm statistics, spectral norm's u and v), updated after
     * every generator step (src/models/gan.c); NULL otherwise. */
    float *ema_params, *ema_state;
    size_t work_bytes, ema_bytes; /* what gt_model_build allocated for work and the EMA (gt_model_memory) */
    /* GAN: step ahead_step's D(x) is done (-1: none): its logits are in the
     * work buffer and its gradient in D's gradients (src/models/gan.c);
     * ahead_count counts such steps (the end-of-run log). */
    int64_t ahead_step, ahead_count;
};

/* Builds the model the options describe for data of the given shape (an
 * error names the configured layer that does not fit, or the network whose
 * output has the wrong shape, or the memory it would need). */
gt_status gt_model_build(const gt_model_opts *o, gt_shape data_shape, int n_classes, int max_batch, uint64_t seed,
                         gt_model **out);
void gt_model_free(gt_model *m);

/* What a model allocated, in bytes, by what it holds: the sums of the
 * networks' gt_net_bytes, the optimizers' and the model's own allocations,
 * as counted where they were made (not the data, the loader's batches, the
 * libraries' own buffers). */
typedef struct {
    int batch;          /* the batch the activations and workspaces are for (max_batch) */
    size_t params;      /* parameters and non-trained state (batch-norm statistics, spectral norm's u and v) */
    size_t grads;       /* gradients */
    size_t optim;       /* optimizer state: Adam's two moments, SGD's momentum */
    size_t ema;         /* the EMA generator's parameters and state (0 without one) */
    size_t activations; /* layer outputs, what layers keep for backward, delta buffers */
    size_t workspaces;  /* lowering columns, spectral norm's blocks, the step's scratch (work) */
    size_t total;
} gt_memory;
void gt_model_memory(const gt_model *m, gt_memory *out);

/* Randomness of local example i, with g = example0 + i*stride:
 *   GAN latent z: gt_rand_normal(z_dim values, seed, GT_PURPOSE(GT_RNG_LATENT, 0), step, g);
 *   D's dropout: rng call 0 = D(x real), 1 = D(G(z)) in the D phase, 2 = D(G(z)) in the G phase;
 *     with packing (gan.pack = m) D's example i is the pack of local examples i*m .. i*m+m-1,
 *     at position example0 + i*m*stride;
 *   G's dropout (if any): call 3;
 *   GAN instance noise: gt_rand_normal(data values, seed, GT_PURPOSE(GT_RNG_NOISE, 0 real / 1 generated),
 *     step, g), times gt_model_noise_sigma(m, step); the G phase reuses the D phase's noisy G(z);
 *   VAE noise eps: gt_rand_normal(z_dim values, seed, GT_PURPOSE(GT_RNG_REPARAM, 0), step, g);
 *   VAE binarization: gt_binarize(..., seed, step, example0, stride); encoder call 0, decoder call 1. */
void gt_model_train_step(gt_model *m, const float *x, const int *labels, int B, const gt_step_ctx *ctx,
                         gt_stats *stats);
void gt_model_eval_batch(gt_model *m, const float *x, const int *labels, int B, const gt_step_ctx *ctx,
                         gt_stats *stats);
/* 1 if the model generates images from latents (GAN, VAE). */
int gt_model_generates(const gt_model *m);
/* 1 if the model's overlapped step may compute the next step's D(x) while
 * G's gradients travel: a GAN whose D keeps no state (batch norm's
 * statistics, spectral norm's vectors would be updated out of order). The
 * step does it when, besides, the next batch is at hand and the reduction
 * progresses meanwhile (src/models/gan.c). */
int gt_model_can_compute_ahead(const gt_model *m);
/* z [n, z_dim] -> images [n, data] in the model's data range (eval mode,
 * batches of at most max_batch). Panics for a kind that does not generate. */
void gt_model_generate(gt_model *m, const float *z, int n, float *images);
/* x [n, data] -> reconstructions [n, data]; NULL reconstruct: panics. */
void gt_model_reconstruct(gt_model *m, const float *x, int n, float *out);
/* The pixel range the model trains on: GAN [-1,1], VAE and classifier [0,1]. */
gt_pixel_scale gt_model_pixel_scale(const gt_model *m);

/* ---- what evaluation needs (src/app/evaluate.c) ------------------------------
 * All in eval mode (batch-norm running statistics, no dropout), in batches of
 * at most max_batch; each row's result depends only on the batches it was
 * computed in, so callers that split work over ranks use fixed batches.
 * Each panics for a kind that has no such function (a bug in the caller). */

/* Classifier: the width of its features, the input of its last layer (the
 * penultimate layer's output). */
int gt_model_feature_dim(const gt_model *m);
/* Classifier: x [n, data] in [0,1] -> feat [n, gt_model_feature_dim] and
 * logits [n, n_classes] (either may be NULL). */
void gt_model_features(gt_model *m, const float *x, int n, float *feat, float *logits);
/* GAN: x [n, data] in [-1,1] -> the discriminator's logits [n]. */
void gt_model_discriminate(gt_model *m, const float *x, int n, float *logits);
/* VAE: log p(x) bounds of the examples x [n, data] in [0,1], whose global
 * indices are example0 + i: out[i] = gt_iwae with k samples of q(z|x_i),
 * noise keyed by (seed, example0 + i). Each example is encoded alone (batch
 * of one) and decoded in chunks of max_batch latents, so out[i] depends on
 * nothing but x_i, k and the seed. log p(x|z) is the decoder's likelihood:
 * Bernoulli sum_j x_j log s(l_j) + (1 - x_j) log s(-l_j) with s the sigmoid
 * and l the logits (minus the training loss's BCE, also for grey levels);
 * Gaussian with unit variance, normalizing constant included:
 * -1/2 sum_j (x_j - mean_j)^2 - D/2 log 2 pi (the training loss's squared
 * error has neither the 1/2 nor the constant). binarize = true models see x
 * binarized by the stream (seed, BINARIZE, step 0, example). */
void gt_model_iwae(gt_model *m, const float *x, int n, int k, uint64_t seed, uint64_t example0, gt_iwae_result *out);
/* The EMA generator (GAN with g_ema > 0). gt_model_swap_ema exchanges the
 * generator's parameters and state with the EMA's (pointers only): between
 * two calls, net[0] (and so gt_model_generate) is the EMA generator. */
int gt_model_has_ema(const gt_model *m);
void gt_model_swap_ema(gt_model *m);
/* Sets an EMA that has no history to the generator's current weights (after
 * a build; a checkpoint load overwrites it). */
void gt_model_reset_ema(gt_model *m);
/* The instance-noise standard deviation at a step (0 without instance noise). */
double gt_model_noise_sigma(const gt_model *m, uint64_t step);

/* 1 if every parameter and state value of m (and of its EMA generator) is
 * finite; else 0, with the first non-finite one described in where (e.g.
 * "discriminator 07_dense/weight[3] = nan"). */
int gt_model_finite(const gt_model *m, char *where, size_t cap);

/* Shared by the kinds (src/models/model.c). */
gt_rng_ctx gt_model_rng(const gt_step_ctx *ctx, uint32_t call);
/* Row i of out [B, D] = normals of the stream (seed, purpose, step, example0 + i*stride). */
void gt_model_normal_rows(float *out, int B, int D, const gt_step_ctx *ctx, uint32_t purpose);
/* Reduce a net's gradients over replicas, then one optimizer step; returns the gradient's L2 norm. */
double gt_model_update(gt_net *net, gt_optim *opt, const gt_step_ctx *ctx);

#endif
