/* dist: the only module that talks to MPI. Collective calls must be made by
 * every rank in the same order. Every MPI return value is checked; a failing
 * MPI call means the job can no longer communicate, so it panics: the
 * message names the call, file and line, and the whole job ends (MPI_Abort).
 * Errors that every rank finds together (ranks that disagree, replicas that
 * diverged) are returned as collective errors (GT_ERROR_ALL). */
#ifndef GENTRAIN_DIST_H
#define GENTRAIN_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "gentrain/core.h"
#include "gentrain/model.h"
#include "gentrain/nn.h"

/* MPI_Init (a plain `gentrain` start is a world of one), installs the exit
 * hook (MPI_Abort), sets the log rank. */
void gt_dist_init(int *argc, char ***argv);
void gt_dist_finalize(void);
int gt_dist_rank(void);
int gt_dist_size(void);

/* Sums buf[n] over all ranks and divides by the world size (in place). */
void gt_dist_allreduce_mean_f64(double *buf, int n);
/* Sums buf[n] over all ranks (in place). */
void gt_dist_allreduce_sum_f64(double *buf, int n);
/* Broadcast from rank 0 (what: for the watchdog's message). */
void gt_dist_bcast(void *buf, size_t bytes);
void gt_dist_bcast_what(void *buf, size_t bytes, const char *what);
/* Rank 0's model state to every rank: parameters, batch-norm statistics and
 * optimizer state (moments and step counts). */
void gt_dist_bcast_model(gt_model *m);
/* Logical OR of a flag over all ranks. */
int gt_dist_any(int flag);
/* Bitwise OR of flags over all ranks. */
int gt_dist_or(int flags);
void gt_dist_barrier(void);
/* all[r*n + i] = rank r's mine[i]. */
void gt_dist_allgather_u64(const uint64_t *mine, int n, uint64_t *all);
/* Sums buf[n] of int64 over all ranks (in place). */
void gt_dist_allreduce_sum_i64(int64_t *buf, int n);

/* ---- rows split over ranks (evaluation) ---------------------------------
 * n rows are cut into chunks of `chunk` rows (the last one may be shorter);
 * rank r of `world` takes a contiguous run of chunks, the first
 * (chunks mod world) ranks one chunk more. A chunk holds the same rows
 * whatever the world size, so work done chunk by chunk gives the same
 * per-row results on any number of ranks. */
void gt_dist_rows(int64_t n, int64_t chunk, int rank, int world, int64_t *first, int64_t *last);
/* buf [n rows of row_bytes each]: every rank has written its own rows
 * (gt_dist_rows of its rank in this world); afterwards every rank holds
 * every row. */
void gt_dist_allgather_rows(void *buf, int64_t n, int64_t chunk, size_t row_bytes);

/* Runs fn(arg) on rank 0 alone, as a world of one (every collective above is
 * a no-op there), while the other ranks wait sleeping, not spinning. Returns
 * fn's status on rank 0; on the others GT_OK, or a collective error if fn
 * failed. For one-off work whose result must not depend on the world size
 * (training the evaluation classifier). */
gt_status gt_dist_solo(gt_status (*fn)(void *arg), void *arg);

/* ---- gradient allreduce (src/dist/reduce.c) ------------------------------
 * Sums a network's flat gradient buffer over all ranks and divides by the
 * world size. overlap = 1: buckets of about bucket_mb (whole layers, in
 * reverse layer order) are started with MPI_Iallreduce from the grads-ready
 * hook while backward goes on, and completed in gt_dist_reduce_grads;
 * overlap = 0: gt_dist_reduce_grads is one MPI_Allreduce. At 2 ranks both
 * modes give bitwise identical results (see reduce.c). Usage:
 *     r = gt_dist_reducer_new(overlap, bucket_mb, compress);
 *     gt_dist_reducer_attach(r, &net);   // for every network
 *     ctx.ready = gt_dist_reducer_hook(r); ctx.progress = gt_dist_reducer_progress(r);
 *     ctx.reduce_grads = gt_dist_reduce_grads; ctx.reduce_arg = r;
 * The hook may fire only in the last backward before the optimizer step of
 * that net (grads must not change once reported final). */
typedef struct gt_dist_reducer gt_dist_reducer;
/* compress = 1: sums in bfloat16 ([dist] compress = bf16; reduce.c) */
gt_dist_reducer *gt_dist_reducer_new(int overlap, double bucket_mb, int compress);
/* Bytes of the bfloat16 copies of the gradients that compression keeps (0 without). */
size_t gt_dist_reducer_bytes(const gt_dist_reducer *r);
void gt_dist_reducer_attach(gt_dist_reducer *r, gt_net *net);
/* The grads-ready hook of the overlapped mode ({NULL} otherwise or in a world of one). */
gt_grads_ready gt_dist_reducer_hook(gt_dist_reducer *r);
/* The gt_step_ctx.progress hook: advances the buckets in flight ({0} without overlap or with one rank). */
gt_progress gt_dist_reducer_progress(gt_dist_reducer *r);
/* The gt_step_ctx.reduce_grads hook (arg = the reducer). */
void gt_dist_reduce_grads(gt_net *net, void *reducer);
long gt_dist_reducer_buckets(const gt_dist_reducer *r); /* collectives posted so far */
void gt_dist_reducer_free(gt_dist_reducer *r);

/* Synchronized batch norm for net (on = 1): sets net->bn_sync to an
 * allreduce-sum hook over all ranks; on = 0 or a world of one: local statistics. */
void gt_dist_sync_bn(gt_net *net, int on);

/* ---- the training loop's side of data parallelism (src/dist/replica.c) --- */

/* [dist] (and the [debug] test hooks) of a config. */
typedef struct {
    int overlap, sync_bn;
    int compress; /* 0: float sums, 1: bfloat16 sums (half the bytes) */
    double bucket_mb;
    long check_every;
    /* the step watchdog: seconds a training step may take before the job
     * ends naming the ranks that do not answer; 0 = automatic (10 x the
     * slowest step so far, at least 300 s) */
    double step_timeout;
    /* [debug] test hooks: rank fail_rank fails at step fail_step; rank
     * perturb_rank moves every parameter by one ulp after step perturb_step
     * (-1 = off); dump_params = PATH writes every rank's final parameters and
     * state to PATH.rank<R> ("" = off). */
    int fail_rank, perturb_rank;
    long fail_step, perturb_step;
    const char *dump_params;
} gt_dist_opts;

/* ---- the step watchdog (src/dist/watchdog.c) --------------------------------
 * Every collective completes through one wait that, during a watched step,
 * polls and watches the step's deadline: gt_dist_watch_step(step, timeout)
 * starts watching step (1-based) with timeout seconds (0 = automatic: 10 x
 * the slowest step so far, at least 300 s); gt_dist_watch_io() says that
 * rank 0 writes a checkpoint before the step's last collective (the others
 * wait for it: the deadline moves to at least 30 minutes, or 10 x the slowest
 * such step, from now); gt_dist_watch_off() stops watching. At the deadline
 * every live rank prints the step, what it waits in and which ranks do not
 * answer, and the job ends (MPI_Abort, exit code 1). The timeout a step
 * gets: gt_dist_watch_timeout(timeout). */
void gt_dist_watch_step(long step, double timeout);
void gt_dist_watch_io(void);
void gt_dist_watch_off(void);
double gt_dist_watch_timeout(double timeout);

/* train.c calls, in this order:
 *   gt_dist_run_attach(&run, opts, m, config_text, n)  checks that all ranks agree on the resolved
 *                                          config, the model's layout and the dataset size (a collective
 *                                          error names the ranks otherwise), attaches the reducer and
 *                                          sync BN to every net; then gt_dist_bcast_model
 *   per step: gt_dist_run_step_begin(&run, step) (also starts the watchdog for the step);
 *             gt_model_train_step with the ctx of gt_dist_run_step_ctx;
 *             gt_dist_run_step_end(&run, m, step, steps); gt_dist_watch_io() before rank 0
 *             writes a checkpoint
 *   after the last step: gt_dist_watch_off()
 *   at a log line: gt_dist_run_comm_frac(&run)
 *   at the end: gt_dist_run_finish(&run, m) */
typedef struct {
    gt_dist_opts o;
    gt_dist_reducer *reducer;
    double t_begin, comm_begin, step_s, comm_s; /* since the last gt_dist_run_comm_frac */
} gt_dist_run;

gt_status gt_dist_run_attach(gt_dist_run *run, const gt_dist_opts *o, gt_model *m, const char *config_text,
                             int64_t n_train);
/* The step context's distributed part: the reducer's hooks. */
void gt_dist_run_step_ctx(gt_dist_run *run, gt_step_ctx *ctx);
gt_status gt_dist_run_step_begin(gt_dist_run *run, long step);
/* After the optimizer steps: local-BN buffers (every network's state, and
 * the EMA generator's copy of it) broadcast from rank 0, replica check every
 * check_every steps and after the last one. */
gt_status gt_dist_run_step_end(gt_dist_run *run, gt_model *m, long step, long steps);
/* Fraction of step time spent in communication since the last call. */
double gt_dist_run_comm_frac(gt_dist_run *run);
gt_status gt_dist_run_finish(gt_dist_run *run, gt_model *m);

#endif
