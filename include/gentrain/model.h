/* models: GAN, VAE and classifier built from a config, and their training
 * step. A model owns up to two networks, each with its own optimizer. The
 * step talks to the outside (gradient allreduce under MPI) only through the
 * reduce hook in gt_step_ctx, so models know nothing of MPI. */
#ifndef GENTRAIN_MODEL_H
#define GENTRAIN_MODEL_H

#include <stdint.h>

#include "gentrain/config.h"
#include "gentrain/data.h"
#include "gentrain/loss.h"
#include "gentrain/nn.h"
#include "gentrain/optim.h"

typedef enum { GT_MODEL_GAN, GT_MODEL_VAE, GT_MODEL_CLASSIFIER } gt_model_kind;
typedef enum { GT_RECON_BERNOULLI, GT_RECON_GAUSSIAN } gt_recon;

#define GT_MAX_NETS 2
#define GT_MAX_STATS 12

/* Named scalars a step reports (losses, D(x), D(G(z)), ...), each a mean over
 * the local batch, so that averaging over ranks gives the global mean. */
typedef struct {
    int n;
    const char *name[GT_MAX_STATS];
    double value[GT_MAX_STATS];
} gt_stats;
void gt_stats_add(gt_stats *s, const char *name, double value);

typedef struct {
    uint64_t seed, step;
    uint64_t example0, stride; /* see gt_rng_ctx */
    /* Sums n floats over replicas and divides by the world size; NULL = one process. */
    void (*reduce_grads)(float *buf, size_t n, void *arg);
    void *reduce_arg;
} gt_step_ctx;

typedef struct {
    gt_model_kind kind;
    int n_nets;
    gt_net net[GT_MAX_NETS];   /* GAN: generator, discriminator; VAE: encoder, decoder; classifier: one */
    gt_optim opt[GT_MAX_NETS];
    gt_shape data_shape;
    int z_dim, n_classes, max_batch;
    gt_gan_loss gan_loss;      /* GAN */
    gt_recon recon;            /* VAE */
    int binarize;              /* VAE: dynamic binarization of the inputs */
    float kl_weight;           /* VAE: beta */
    float *work;               /* step scratch (latents, noise, logits, deltas) */
    size_t n_work;
} gt_model;

/* Builds the model described by cfg ([model], [generator]/[discriminator] or
 * [encoder]/[decoder] or [classifier], [optim]) for data of the given shape. */
gt_model *gt_model_build(gt_config *cfg, gt_shape data_shape, int n_classes, int max_batch, uint64_t seed);
void gt_model_free(gt_model *m);
const char *gt_model_kind_name(gt_model_kind kind);
/* The pixel range the model trains on: GAN [-1,1], VAE and classifier [0,1]. */
gt_pixel_scale gt_model_pixel_scale(const gt_model *m);

/* One optimization step on the local batch x [B, data] (labels for the classifier).
 * Randomness of local example i, with g = example0 + i*stride:
 *   GAN latent z: gt_rand_normal(z_dim values, seed, GT_PURPOSE(GT_RNG_LATENT, 0), step, g);
 *   D's dropout: rng call 0 = D(x real), 1 = D(G(z)) in the D phase, 2 = D(G(z)) in the G phase;
 *   G's dropout (if any): call 3;
 *   VAE noise eps: gt_rand_normal(z_dim values, seed, GT_PURPOSE(GT_RNG_REPARAM, 0), step, g);
 *   VAE binarization: gt_binarize(..., seed, step, example0, stride); encoder call 0, decoder call 1.
 * GAN step (as PyTorch's DCGAN example): fake = G(z) once (train mode);
 * D phase: D(x) and D(fake) -> D loss, D grads reduced, D optimizer step;
 * G phase: D(fake) with the updated D -> G loss, G grads reduced, G optimizer
 * step (D's parameter gradients are not computed in the G phase). */
void gt_model_train_step(gt_model *m, const float *x, const int *labels, int B, const gt_step_ctx *ctx,
                         gt_stats *stats);
/* Losses in eval mode, no update (VAE: ELBO terms; classifier: loss, accuracy; GAN: D and G losses). */
void gt_model_eval_batch(gt_model *m, const float *x, const int *labels, int B, const gt_step_ctx *ctx,
                         gt_stats *stats);
/* Latents z [n, z_dim] -> images [n, data] in the data range, eval mode
 * (GAN: G(z); VAE: the decoder's mean, sigmoid for Bernoulli). */
void gt_model_generate(gt_model *m, const float *z, int n, float *images);

/* Builds a network from the layer lines of one config section:
 *   layer1 = dense out=256 bias=false
 *   layer2 = batchnorm eps=1e-5 momentum=0.1
 * Layers are taken in the order of their numbers; a bad line gt_fatal()s
 * naming file, line, key and what is allowed. */
void gt_net_from_config(gt_net *net, gt_config *cfg, const char *section, gt_shape in);

#endif
