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
gt_status gt_cmd_eval(int argc, char **argv);    /* src/app/eval.c */

/* The training run a config describes (what `gentrain train` does after
 * reading its command line); *stopped = 1 when a signal stopped it after a
 * checkpoint (src/app/train.c). */
gt_status gt_train_config(gt_config *cfg, const char *config_path, int *stopped);

/* ---- options (src/app/options.c) --------------------------------------------- */

/* The longest [run] dir accepted: Linux's PATH_MAX (4096) less room for
 * the names of the run's files under it. */
#define GT_RUN_DIR_MAX 4000

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
    int rollback;              /* on_divergence: 0 = stop, 1 = rollback */
    double loss_bound;         /* 0 = off */
    double rollback_lr_factor;
    long max_rollbacks;
    int nan_rank;              /* [debug] nan_rank, nan_step, nan_times: NaN injection (-1 = off) */
    long nan_step, nan_times;
    long log_every;
    int eval_at_end;
    long eval_n;
    /* [eval]: evaluation metrics during training (every > 0) and by gentrain eval */
    long eval_every;
    const char *eval_metrics;    /* comma-separated metric names, "default" or "all" */
    long eval_samples;           /* generated samples per evaluation during training */
    const char *eval_classifier; /* "" = the cached one */
    const char *eval_cache;      /* "" = $GENTRAIN_CACHE, $XDG_CACHE_HOME/gentrain or ~/.cache/gentrain */
    long iwae_k, likelihood_n;
    int likelihood_train;
    uint64_t eval_seed;
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
/* Only the keys of [data] and [eval] (and run.threads), for `gentrain eval
 * --samples`, which has no model: keys of other sections are errors. */
gt_status gt_options_data_eval(gt_config *cfg, gt_options *o);
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
/* bytes as "12.3 MB" (kB, MB, GB: powers of 1000). */
void gt_human_bytes(double bytes, char *buf, size_t cap);

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
 * an error that leaves it untouched (src/app/metrics.c). *damaged = 1 when
 * the error is that the file cannot be opened or read (truncated, damaged,
 * marked open by a writer that was killed), not that it is someone else's. */
gt_status gt_run_file_open(const char *path, const char *format, gt_h5 **out, int *damaged);
/* Moves one of those files to run_dir/damaged/ (never over an earlier one),
 * clears the pending error `why` came from, and warns: "PATH cannot be used:
 * WHY; moved it to ... and THEN". */
gt_status gt_run_file_set_aside(const char *run_dir, const char *path, const char *why, const char *then);

/* Metrics (src/app/metrics.c): metrics.jsonl and metrics.h5 (rank 0). */
typedef struct gt_metrics gt_metrics;
/* Opens both files of run_dir; a resumed run (resumed_step >= 0) drops what
 * came after resumed_step. */
gt_status gt_metrics_open(const char *run_dir, int64_t resumed_step, gt_metrics **out);
gt_status gt_metrics_write(gt_metrics *mt, int64_t step, int64_t epoch, const char *split, const gt_stats *st,
                           double img_per_s, double elapsed);
/* 1 if a resumed run's metrics.jsonl already has the test-set line of `step`. */
int gt_metrics_has_test(const gt_metrics *mt, int64_t step);
/* A rollback to `step`: drops what came after it from both files. */
gt_status gt_metrics_rewind(gt_metrics *mt, int64_t step);
/* A line {"step": S, "event": "EVENT", FIELDS} in metrics.jsonl only (FIELDS:
 * JSON members, '"a": 1, "b": "x"', or ""). */
gt_status gt_metrics_event(gt_metrics *mt, int64_t step, const char *event, const char *fields);
/* Root attributes of metrics.h5 (integers; an existing one is replaced),
 * e.g. the memory account of the run (memory_*_bytes). */
gt_status gt_metrics_set_attrs(gt_metrics *mt, int n, const char *const *names, const int64_t *values);
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

/* The run directory's lock (src/app/lock.c): rank 0 takes an exclusive fcntl
 * lock on run.dir/gentrain.lock before anything else in run.dir is touched,
 * and holds it until the process ends (the kernel releases it, also when the
 * process is killed). A run.dir locked by another process is an error naming
 * it (pid and host); a file system without locks gives a warning. */
gt_status gt_run_lock(const char *dir);

/* run.dir/stopped: written by rank 0 when the run stops on a signal, once
 * every rank has passed the barrier after the stop's checkpoint (so every
 * rank exits GT_STOPPED): "step N\nsignal SIG\nexit 75\n". Job scripts read
 * it when the launcher's own exit code does not say 75 (mpirun exits 1 on
 * SIGTERM); a run removes an earlier one when it starts. A failure to write
 * it is a warning. */
#define GT_STOPPED_MARKER "stopped"
void gt_run_mark_stopped(const char *dir, int64_t step, const char *signal);

/* Checkpoints and resume (src/app/resume.c). */
typedef struct {
    int found;               /* a checkpoint was loaded */
    int64_t step, epoch, cursor, world, batch, n_train;
    int64_t rollbacks;       /* divergence rollbacks before it (0) */
    double lr_scale;         /* the learning rates' factor from them (1) */
} gt_resume_point;
/* Rank 0: prepares the run directory (creates it; run.resume=never moves an
 * earlier run aside) and loads the newest checkpoint that verifies and fits
 * the model (damaged ones are moved to checkpoints/damaged/ with a warning),
 * checking that its configuration is compatible with this one; then writes
 * config.ini. Every rank: receives the result and rank 0's model state. */
/* mkdir -p path (what names it in errors, e.g. "run directory"); an error if
 * it exists and is not a directory. */
gt_status gt_make_dirs(const char *path, const char *what);
gt_status gt_resume(const gt_options *o, gt_config *cfg, gt_model *m, const gt_source *train, gt_resume_point *rp);
/* Divergence rollback: rank 0 loads the newest checkpoint of the run that
 * verifies and fits (damaged ones set aside, as for resume); every rank
 * receives it and rank 0's model state. No checkpoint is an error (collective). */
gt_status gt_rollback(const gt_options *o, gt_config *cfg, gt_model *m, const gt_source *train, gt_resume_point *rp);
/* Rank 0: writes the checkpoint of `step` (with the rollbacks so far and
 * their learning-rate factor) and prunes old ones. */
gt_status gt_checkpoint_write(const gt_options *o, const gt_model *m, const gt_sampler *s, const gt_source *train,
                              int64_t step, int64_t rollbacks, double lr_scale);

/* ---- evaluation (src/app/evaluate.c; the classifier and the data's features:
 * src/app/reference.c; the command: src/app/eval.c) ----------------------------
 * Every function is collective: every rank calls it with the same arguments;
 * every rank gets the same results. Work is split over the ranks in chunks of
 * GT_EVAL_CHUNK rows (gt_dist_rows), so that the numbers do not depend on the
 * number of ranks. */

#define GT_EVAL_CHUNK 250

/* Metric groups: --metrics and [eval] metrics name them. */
enum {
    GT_METRIC_FID = 1u << 0,           /* FID against train and test */
    GT_METRIC_KID = 1u << 1,           /* KID (100 subsets of 1000) */
    GT_METRIC_PR = 1u << 2,            /* improved precision and recall, k = 3 */
    GT_METRIC_DC = 1u << 3,            /* density and coverage, k = 5 */
    GT_METRIC_CLASSES = 1u << 4,       /* the classifier's class histogram of the samples (images) */
    GT_METRIC_MODES = 1u << 5,         /* modes of a 2-D mixture (toy data) */
    GT_METRIC_MEMORIZATION = 1u << 6,  /* nearest neighbours, closer-to-train share, C_T */
    GT_METRIC_ELBO = 1u << 7,          /* VAE: negative ELBO on train and test */
    GT_METRIC_IWAE = 1u << 8,          /* VAE: IWAE bound on train and test */
    GT_METRIC_DISCRIMINATOR = 1u << 9, /* GAN: D on train and test images */
};
#define GT_METRIC_COUNT 10
extern const char *const gt_metric_names[GT_METRIC_COUNT]; /* "fid", "kid", ... in bit order */
/* The metrics that apply to samples of a model kind (or to given samples,
 * kind < 0) on image data (points = 0) or 2-D points (points = 1). */
unsigned gt_metrics_applicable(int kind, int points);
/* "fid,kid,classes", "all" (everything that applies) or "default" (fid, then
 * classes or modes, then discriminator or elbo) -> bits among `applicable`.
 * An unknown name, or one that does not apply, is an error naming it, `where`
 * and the ones that do. */
gt_status gt_metrics_parse(const char *list, unsigned applicable, const char *where, unsigned *out);

/* The fixed part of an evaluation: the data, the feature space (the
 * classifier's penultimate layer for images, the points themselves for 2-D
 * data) and the training and test sets' features. */
typedef struct gt_evaluator gt_evaluator;
/* For metrics that need features (GT_METRICS_FEATURES) of images: finds the
 * classifier (o->eval_classifier, or the one in the cache, which
 * is trained there by rank 0 alone when missing and may_train, and is an
 * error naming the command that trains it otherwise), checks that it fits
 * the data, and loads the data's features from the cache or computes them
 * (and stores them there). */
gt_status gt_evaluator_open(const gt_options *o, const gt_dataset *train, const gt_dataset *test, unsigned metrics,
                            int may_train, gt_evaluator **out);
/* The metrics that need features (all but elbo, iwae and discriminator):
 * an evaluator opened for other metrics has no classifier. */
#define GT_METRICS_FEATURES                                                                                  \
    (GT_METRIC_FID | GT_METRIC_KID | GT_METRIC_PR | GT_METRIC_DC | GT_METRIC_CLASSES | GT_METRIC_MODES |      \
     GT_METRIC_MEMORIZATION)
void gt_evaluator_free(gt_evaluator *ev);
/* Makes the reference of the memorization metrics (the test set's nearest
 * training neighbours in feature and pixel space, k-means cells of the
 * training features), cached with the features; evaluations that need it
 * call it themselves. */
gt_status gt_evaluator_memorization(gt_evaluator *ev);
/* The classifier's checkpoint, its hash (16 hex digits of FNV-1a-64 over its
 * parameters and batch-norm statistics) and its accuracy on the test set (NaN
 * without labels); for 2-D data "" / "none" / NaN. */
const char *gt_evaluator_classifier_path(const gt_evaluator *ev);
const char *gt_evaluator_classifier_hash(const gt_evaluator *ev);
double gt_evaluator_classifier_accuracy(const gt_evaluator *ev);

#define GT_EVAL_MAX_VALUES 64
#define GT_EVAL_MAX_ARRAYS 12
#define GT_EVAL_MAX_TIMES 16
typedef struct {
    const char *name;
    int64_t len;
    int is_int; /* 1: int64_t data, 0: float data */
    void *data; /* gt_alloc'd */
} gt_eval_array;
/* Named results: scalars (NaN: undefined, e.g. no test labels), arrays
 * (histograms, per-sample distances) and the seconds each part took. A GAN
 * with an EMA generator (model.g_ema > 0) is evaluated twice: the result is
 * the EMA generator's (ema = 1) and live (gt_alloc'd, freed with it) the
 * live generator's, with the same metrics; live is NULL otherwise. */
typedef struct gt_eval_result {
    unsigned metrics;
    long n;
    int ema;
    int nv, na, nt;
    const char *name[GT_EVAL_MAX_VALUES];
    double value[GT_EVAL_MAX_VALUES];
    gt_eval_array array[GT_EVAL_MAX_ARRAYS];
    const char *time_name[GT_EVAL_MAX_TIMES];
    double seconds[GT_EVAL_MAX_TIMES];
    struct gt_eval_result *live;
} gt_eval_result;
void gt_eval_result_free(gt_eval_result *r);
/* The value of a name, NaN if the result has none. */
double gt_eval_value(const gt_eval_result *r, const char *name);

/* n samples of the model (GAN: G(z); VAE: the decoder's mean, on latents z_i
 * = Philox normal(eval seed, EVAL/LATENT, 0, i)), evaluated with the metrics.
 * A GAN with an EMA generator: r is the EMA generator's evaluation and
 * r->live the live one's (the model is swapped to its EMA and back: it is
 * left bitwise as it was). */
gt_status gt_evaluate_model(gt_evaluator *ev, gt_model *m, long n, unsigned metrics, uint64_t seed,
                            const gt_options *o, gt_eval_result *r);
/* Given samples x [n, data] (images in [0,1]; 2-D points as they are). */
gt_status gt_evaluate_samples(gt_evaluator *ev, const float *x, long n, unsigned metrics, uint64_t seed,
                              gt_eval_result *r);

/* metrics.h5 (rank 0; src/app/metrics.c): the result of `gentrain eval` on
 * the checkpoint of `step` as group /eval/step-XXXXXXXX (replaced if it
 * exists): scalars and descriptions as attributes, arrays as datasets. */
gt_status gt_metrics_h5_eval_group(const char *h5_path, int64_t step, const char *checkpoint, const gt_evaluator *ev,
                                   const gt_eval_result *r, uint64_t seed);
/* A row of the evaluation during training: metrics.jsonl ("split": "eval")
 * and the table /eval/training of metrics.h5. */
gt_status gt_metrics_write_eval(gt_metrics *mt, int64_t step, int64_t epoch, const gt_evaluator *ev,
                                const gt_eval_result *r);

/* configs/classifier.ini, built into the program (generated by the build). */
extern const char gt_classifier_config[];

#endif
