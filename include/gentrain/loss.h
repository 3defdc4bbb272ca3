/* Losses. Each returns the loss value and, when the gradient pointer is not
 * NULL, writes d loss / d input there (overwriting). "mean" losses divide by
 * the batch size B, so that averaging gradients over ranks gives the mean
 * over the global batch. */
#ifndef GENTRAIN_LOSS_H
#define GENTRAIN_LOSS_H

#include <stddef.h>

/* mean over n of  max(l,0) - l*t + log(1 + exp(-|l|))  (PyTorch BCEWithLogitsLoss);
 * term: the caller's scratch of n floats (the terms, summed in order). */
float gt_bce_logits_mean(const float *logits, const float *targets, size_t n, float *dlogits, float *term);
/* BCE-with-logits summed over the D values of each example, mean over B; term: scratch [B, D]. */
float gt_bce_logits_sum(const float *logits, const float *targets, int B, size_t D, float *dlogits, float *term);
/* Squared error summed over D values of each example, mean over B (Gaussian decoder, unit variance up to a constant). */
float gt_mse_sum(const float *pred, const float *target, int B, size_t D, float *dpred);
/* mean over B of -log softmax(logits)[label]; logits [B,K]. */
float gt_cross_entropy(const float *logits, const int *labels, int B, int K, float *dlogits);

typedef enum { GT_GAN_NONSATURATING, GT_GAN_MINIMAX, GT_GAN_HINGE, GT_GAN_WASSERSTEIN } gt_gan_loss;
/* D's loss from its logits (critic values) on real [B] and fake [B] examples:
 *   nonsaturating/minimax: BCE(real, 1 - smooth) + BCE(fake, 0), each a mean
 *     over B (smooth: one-sided label smoothing, Salimans et al. 2016; 0 = off);
 *   hinge: mean relu(1 - real) + mean relu(1 + fake);
 *   wasserstein: mean fake - mean real (the critic of WGAN; weight clipping is
 *     the caller's).
 * smooth must be 0 for hinge and wasserstein. */
float gt_gan_d_loss(gt_gan_loss kind, const float *real, const float *fake, int B, float smooth, float *dreal,
                    float *dfake);
/* G's loss from D's logits on fake [B]:
 *   nonsaturating: BCE(fake, 1); minimax: -BCE(fake, 0); hinge and wasserstein: -mean fake. */
float gt_gan_g_loss(gt_gan_loss kind, const float *fake, int B, float *dfake);

/* VAE: z = mu + exp(logvar / 2) * eps, all [B,Z]. */
void gt_reparam_forward(const float *mu, const float *logvar, const float *eps, size_t n, float *z);
/* dz -> dmu, dlogvar (overwrite). */
void gt_reparam_backward(const float *dz, const float *logvar, const float *eps, size_t n, float *dmu, float *dlogvar);
/* KL(N(mu, exp(logvar)) || N(0, I)) summed over Z, mean over B; gradients ADDED into dmu, dlogvar. */
float gt_kl_normal(const float *mu, const float *logvar, int B, int Z, float *dmu, float *dlogvar);

#endif
