/* app: the gentrain program (src/app): its commands, the options a config
 * resolves to, and the run directory a training run reads and writes.
 * Only app reads configs (src/app/options.c), and only it decides to end the
 * process (main.c). */
#ifndef GENTRAIN_APP_H
#define GENTRAIN_APP_H

#include <stdint.h>
#include <stdio.h>

#include "gentrain/config.h"
#include "gentrain/core.h"
#include "gentrain/data.h"
#include "gentrain/dist.h"
#include "gentrain/io.h"
#include "gentrain/model.h"

/* ---- commands (one file each) ---------------------------------------------- */

gt_status gt_cmd_train(int argc, char **argv);   /* src/app/train.c */
gt_status gt_cmd_sample(int argc, char **argv);  /* src/app/sample.c */
gt_status gt_cmd_inspect(int argc, char **argv); /* src/app/inspect.c */
gt_status gt_cmd_help(int argc, char **argv);    /* src/app/options.c: help keys|layers [--markdown|--json] */

/* ---- options (src/app/options.c) --------------------------------------------- */

/* Everything a config says, resolved (defaults filled in) and checked. */
typedef struct {
    /* [run] */
    const char *dir;
    uint64_t seed;
    int threads, resume_never;
    /* [data] */
    gt_data_opts data;
    /* [model], the network sections, [optim] (lr: the default of every network's) */
    gt_model_opts model;
    double lr;
    /* [train] [log] [eval] */
    long steps, epochs;
    int batch;
    long log_every;
    int eval_at_end;
    long eval_n;
    /* [checkpoint] [samples] */
    long ckpt_every, ckpt_keep, samples_every;
    int samples_n;
    /* [dist] [debug] */
    gt_dist_opts dist;
    char dir_default[512]; /* storage of dir's default */
    char *text;            /* the resolved configuration as INI text (gt_free) */
} gt_options;

/* Reads every key of cfg into o (strings point into cfg, which must outlive
 * o); unknown keys and bad values are errors naming file, line and key.
 * config_path gives the default run.dir (runs/<its base name>). */
gt_status gt_options_from_config(gt_config *cfg, const char *config_path, gt_options *o);
void gt_options_free(gt_options *o);
/* The keys as help text (every section, key, default and meaning). */
void gt_options_print_keys(FILE *out, int markdown);
/* The layer kinds and their options, from the registry. */
void gt_options_print_layers(FILE *out, int markdown);

/* ---- the run's data (src/app/data.c) -------------------------------------------- */

/* The training and test sources of [data]: IDX and toy data loaded into
 * memory, a gentrain-dataset file opened for reading on demand (and, with
 * cache = shard, this rank's shard read into memory); log lines say what
 * each rank will read and hold. */
gt_status gt_run_data_open(const gt_options *o, int rank, int world, gt_source **train, gt_source **test);
/* Every rank: the examples each rank read, the share of the training loop's
 * time it waited for batches (wait of loop seconds) and its peak resident
 * memory, in one log line (share: the examples of this run's batches per rank). */
void gt_run_data_report(const gt_source *train, int64_t share, double wait, double loop);

/* ---- the run directory of `gentrain train` --------------------------------------
 * Rank 0 does all file I/O; every function is called by every rank in the
 * same order. */

/* Stop signals (src/app/signals.c): SIGTERM, SIGUSR1, SIGINT and SIGHUP set a
 * flag that the step boundary reads; SIGXFSZ is ignored (the write fails). */
gt_status gt_signals_install(void);
int gt_signal_received(void); /* the signal that asked the run to stop, 0 if none */
const char *gt_signal_name(int sig);

/* Opens one of the run's own HDF5 files (metrics.h5, samples.h5) for
 * writing, creating it with its format attribute; a file that is not ours is
 * an error that leaves it untouched (src/app/metrics.c). */
gt_status gt_run_file_open(const char *path, const char *format, gt_h5 **out);

/* Metrics (src/app/metrics.c): metrics.jsonl and metrics.h5 (rank 0). */
typedef struct gt_metrics gt_metrics;
/* Opens both files of run_dir; a resumed run (resumed_step >= 0) drops what
 * came after resumed_step. */
gt_status gt_metrics_open(const char *run_dir, int64_t resumed_step, gt_metrics **out);
gt_status gt_metrics_write(gt_metrics *mt, int64_t step, int64_t epoch, const char *split, const gt_stats *st,
                           double img_per_s, double elapsed);
/* 1 if a resumed run's metrics.jsonl already has the test-set line of `step`. */
int gt_metrics_has_test(const gt_metrics *mt, int64_t step);
gt_status gt_metrics_close(gt_metrics *mt);

/* Samples (src/app/samples.c): samples.h5 and samples.png (rank 0). */
typedef struct gt_samples gt_samples;
/* Opens (or creates) run_dir/samples.h5 for the model's fixed latent batch
 * of n; a resumed run drops the samples after resumed_step. VAEs also keep a
 * fixed test batch and its reconstructions. */
gt_status gt_samples_open(const char *run_dir, gt_model *m, int n, uint64_t seed, gt_source *test,
                          int64_t resumed_step, gt_samples **out);
gt_status gt_samples_write(gt_samples *sm, gt_model *m, int64_t step);
void gt_samples_close(gt_samples *sm);
/* The fixed latent batch: row i is gt_rand_normal(z_dim values, seed,
 * GT_PURPOSE(GT_RNG_FIXED_NOISE, 0), step 0, index i), so the first k rows
 * do not depend on n. out[n, z_dim]. */
void gt_samples_noise(uint64_t seed, int n, int z_dim, float *out);
/* A picture of n samples [n, shape]: a grid of images mapped from the
 * model's data range (GAN [-1,1], VAE [0,1]) to 0..255, or, for 2-D points
 * (shape 2x1x1), a scatter plot over the mixture's centres (toy GT_TOY_NONE: none). */
gt_status gt_samples_png(const char *path, const float *x, int n, gt_shape shape, gt_pixel_scale scale, int points,
                         gt_toy_kind toy);

/* Checkpoints and resume (src/app/resume.c). */
typedef struct {
    int found;               /* a checkpoint was loaded */
    int64_t step, epoch, cursor, world, batch, n_train;
} gt_resume_point;
/* Rank 0: prepares the run directory (creates it; run.resume=never moves an
 * earlier run aside) and loads the newest checkpoint that verifies and fits
 * the model (damaged ones are moved to checkpoints/damaged/ with a warning),
 * checking that its configuration is compatible with this one; then writes
 * config.ini. Every rank: receives the result and rank 0's model state. */
gt_status gt_resume(const gt_options *o, gt_config *cfg, gt_model *m, const gt_source *train, gt_resume_point *rp);
/* Rank 0: writes the checkpoint of `step` and prunes old ones. */
gt_status gt_checkpoint_write(const gt_options *o, const gt_model *m, const gt_sampler *s, const gt_source *train,
                              int64_t step);

#endif
