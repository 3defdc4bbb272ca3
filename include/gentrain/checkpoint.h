/* checkpoint: a run's state in HDF5 (src/io/checkpoint.c), written by rank 0.
 *
 * File dir/step-XXXXXXXX.h5 (the step zero-padded to 8 digits), layout:
 *   root attributes: format = "gentrain-checkpoint", version (1),
 *     gentrain_version (the program's version and git revision), step, epoch,
 *     world_size, batch_size (per rank), seed, model ("gan" | "vae" |
 *     "classifier"), config (the full resolved INI text), text_hash (FNV-1a
 *     64 of model + "\n" + config, since string attributes carry no checksum)
 *   /params/<net>/<NN>_<kind>/<tensor>   float32, PyTorch shapes and names
 *       (weight, bias; batch norm also running_mean, running_var; a layer
 *       with sn=true has torch.nn.utils.spectral_norm's weight_orig instead of
 *       weight, and its power-iteration vectors weight_u, weight_v)
 *   /optim/<net>/t [1] int64             steps taken (Adam's bias correction)
 *   /optim/<net>/m/<NN>_<kind>/<tensor>  Adam's exp_avg (SGD: momentum buffer),
 *   /optim/<net>/v/<NN>_<kind>/<tensor>  Adam's exp_avg_sq (Adam only),
 *       per trainable tensor with the parameter's shape; attributes kind,
 *       lr, beta1, beta2, eps, weight_decay on /optim/<net>
 *   /rng/seed [1], /rng/step [1] int64   all randomness is counter-based
 *       Philox keyed by (seed, purpose, step, global example index): these two
 *       are the whole RNG state (attribute "scheme" says so)
 *   /data/epoch [1], /data/cursor [1]    the sampler: epoch and steps taken in it
 *   /data/batch_size [1], /data/world_size [1], /data/n_train [1],
 *   /data/shape [3] (C,H,W), /data/n_classes [1]
 *   /ema/<generator>/<NN>_<kind>/<tensor>  a GAN trained with [model] g_ema:
 *       the EMA generator's parameters and state, as /params/<generator>;
 *       attribute decay
 *   root attributes rollbacks (int64) and lr_scale (double): the divergence
 *       rollbacks so far and the factor they put on every learning rate
 *       (written when rollbacks > 0; absent means 0 and 1)
 * Every dataset is chunked with HDF5's Fletcher32 checksum; the file uses
 * the HDF5 1.10 format, whose metadata carries checksums too. */
#ifndef GENTRAIN_CHECKPOINT_H
#define GENTRAIN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "gentrain/model.h"

#define GT_CKPT_FORMAT "gentrain-checkpoint"
#define GT_CKPT_VERSION 1

typedef struct {
    int64_t step;               /* optimizer steps done */
    int64_t epoch, cursor;      /* sampler position */
    int64_t world_size, batch_size, n_train;
    uint64_t seed;
    gt_shape data_shape;
    int n_classes;
    int64_t rollbacks;          /* divergence rollbacks so far (root attribute; 0 if absent) */
    double lr_scale;            /* the learning rates' factor from them (root attribute; 1 if absent) */
} gt_ckpt_info;

/* "DIR/step-00000042.h5" */
gt_status gt_ckpt_path(const char *dir, int64_t step, char *out, size_t cap);

/* Writes a checkpoint atomically: DIR/.step-XXXXXXXX.h5.tmp is written,
 * closed, fsync()ed, renamed to DIR/step-XXXXXXXX.h5, and DIR is fsync()ed.
 * Any failure (disk full, file size limit, I/O error) removes the temporary
 * file; the error says which checkpoint could not be written and that the
 * previous one (named) is intact. A model with a non-finite parameter or
 * state value (also in the EMA generator) is refused before anything is
 * written: the error names the network, tensor, index and value. */
gt_status gt_ckpt_save(const char *dir, const gt_model *m, const gt_ckpt_info *info, const char *config_text);

/* The checkpoints in dir (files step-XXXXXXXX.h5), newest (highest step)
 * first (none if dir does not exist). Free with gt_ckpt_free_list. */
gt_status gt_ckpt_list(const char *dir, char ***paths, int64_t **steps, int *n);
void gt_ckpt_free_list(char **paths, int64_t *steps, int n);
/* Deletes all but the `keep` newest (keep 0 = keep all); removes stale
 * temporary files of interrupted writes. */
gt_status gt_ckpt_prune(const char *dir, int keep);
/* Moves a checkpoint that failed verification to dir/damaged/ (never
 * overwriting an earlier one there); *moved_to says where it went. */
gt_status gt_ckpt_set_aside(const char *dir, const char *path, char *moved_to, size_t cap);

/* Checks that path is a complete gentrain checkpoint: an HDF5 file with our
 * format and a version we read, the root attributes, text_hash, the required
 * datasets, and every dataset checksummed and reading back; the error says
 * what is wrong. */
gt_status gt_ckpt_verify(const char *path);
/* Checks that the checkpoint holds exactly the tensors model m needs (names
 * and shapes of parameters, state and optimizer moments), without loading. */
gt_status gt_ckpt_check_model(const char *path, const gt_model *m);

/* Root attributes and /data of a (verified) checkpoint; *config_text and
 * *model_kind are gt_alloc'd (gt_free), either may be NULL. */
gt_status gt_ckpt_read_info(const char *path, gt_ckpt_info *info, char **config_text, char **model_kind);

/* Loads parameters, batch-norm statistics and optimizer state into m, which
 * must have the same architecture (checked first: m is untouched otherwise). */
gt_status gt_ckpt_load(const char *path, gt_model *m);

#endif
