/* run_io: what a training run reads and writes besides the model's math
 * (src/app/run_io.c): the run directory, checkpoints and resume, samples,
 * metrics (metrics.jsonl and metrics.h5), and stopping on a signal.
 *
 * train.c calls, in this order (every call on every rank):
 *   io = gt_run_io_new(cfg, run_dir)    reads [checkpoint] [samples] and [run] resume; installs the
 *                                       SIGTERM/SIGUSR1 handlers; before gt_config_check_unused
 *   start = gt_run_io_start(io, cfg, m, &sampler, &test, scale, steps)
 *                                       after the model is built and broadcast: prepares the run dir
 *                                       (rank 0), resumes from the newest valid checkpoint (rank 0 reads,
 *                                       every rank receives), positions the sampler; returns the first step
 *   per logged step: gt_run_io_metrics(io, step, epoch, split, &stats, img_per_s, elapsed)   (rank 0 writes)
 *   after each step: if (gt_run_io_step_end(io, m, &sampler, step_done, steps)) -> exit GT_EXIT_REQUEUE
 *   at the end: gt_run_io_free(io)
 */
#ifndef GENTRAIN_RUN_IO_H
#define GENTRAIN_RUN_IO_H

#include <stdint.h>

#include "gentrain/config.h"
#include "gentrain/data.h"
#include "gentrain/model.h"
#include <stddef.h>

typedef struct gt_run_io gt_run_io;

gt_run_io *gt_run_io_new(gt_config *cfg, const char *run_dir);
int64_t gt_run_io_start(gt_run_io *io, gt_config *cfg, gt_model *m, gt_sampler *s, const gt_dataset *train,
                        const gt_dataset *test, gt_pixel_scale scale, long steps);
void gt_run_io_metrics(gt_run_io *io, int64_t step, int64_t epoch, const char *split, const gt_stats *st,
                       double img_per_s, double elapsed);
/* After step `done` (steps done so far) of `steps`: samples and checkpoints
 * when due (rank 0), then all ranks agree whether a stop signal arrived on
 * any of them; if so, a checkpoint is written (unless one was just written)
 * and 1 is returned: the caller ends with GT_EXIT_REQUEUE. */
int gt_run_io_step_end(gt_run_io *io, gt_model *m, const gt_sampler *s, int64_t done, long steps);
void gt_run_io_free(gt_run_io *io);

/* The signal that asked the run to stop (SIGTERM or SIGUSR1), 0 if none. */
int gt_run_io_signal(void);



/* The fixed latent batch of samples: row i is gt_rand_normal(z_dim values,
 * seed, GT_PURPOSE(GT_RNG_FIXED_NOISE, 0), step 0, index i), so the first k
 * rows do not depend on n. out[n, z_dim]. */
void gt_samples_noise(uint64_t seed, int n, int z_dim, float *out);
/* A picture of n samples [n, shape]: a grid of images mapped from the
 * model's data range (GAN [-1,1], VAE [0,1]) to 0..255, or, for 2-D points
 * (toy data: shape 2x1x1), a scatter plot with the mixture's centres
 * (toy = -1: none). 0, or -1 with why. */
int gt_samples_png(const char *path, const float *x, int n, gt_shape shape, gt_pixel_scale scale, int points,
                   int toy, char *why, size_t cap);

#endif
