/* dist: the only module that talks to MPI. Collective calls must be made by
 * every rank in the same order. Every MPI return value is checked; a failure
 * on any rank prints its message and aborts the whole job (MPI_Abort). */
#ifndef GENTRAIN_DIST_H
#define GENTRAIN_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "gentrain/config.h"
#include "gentrain/model.h"
#include "gentrain/nn.h"

/* MPI_Init (a plain `gentrain` start is a world of one), installs the abort
 * hook for gt_fatal, sets the log rank. */
void gt_dist_init(int *argc, char ***argv);
void gt_dist_finalize(void);
int gt_dist_rank(void);
int gt_dist_size(void);

/* Sums buf[n] over all ranks, then divides by the world size (in place). */
void gt_dist_allreduce_mean(float *buf, size_t n);
/* Same for doubles (statistics). */
void gt_dist_allreduce_mean_f64(double *buf, int n);
/* Sums buf[n] over all ranks (in place). */
void gt_dist_allreduce_sum(float *buf, size_t n);
/* Broadcast from rank 0. */
void gt_dist_bcast(void *buf, size_t bytes);
/* Logical OR of a flag over all ranks. */
int gt_dist_any(int flag);
void gt_dist_barrier(void);
/* all[r*n + i] = rank r's mine[i]. */
void gt_dist_allgather_u64(const uint64_t *mine, int n, uint64_t *all);
/* Ends every rank now (MPI_Abort; a world of one just exits). */
_Noreturn void gt_dist_abort(int code);
/* Seconds this process has spent inside training communication so far
 * (gradient buckets and their waits, synchronized batch norm, buffer
 * broadcasts, replica checks). */
double gt_dist_comm_seconds(void);

/* ---- gradient allreduce (src/dist/reduce.c) ------------------------------
 * Sums a network's flat gradient buffer over all ranks and divides by the
 * world size. overlap = 1: buckets of about bucket_mb (whole layers, in
 * reverse layer order) are started with MPI_Iallreduce from the net's
 * grads_ready hook while backward goes on, and completed in reduce_grads;
 * overlap = 0: reduce_grads is one MPI_Allreduce. At 2 ranks both modes give
 * bitwise identical results (see reduce.c). Usage:
 *     r = gt_dist_reducer_new(overlap, bucket_mb);
 *     gt_dist_reducer_attach(r, &net);   // sets net.grads_ready (overlap, world > 1)
 *     ctx.reduce_grads = gt_dist_reduce_grads; ctx.reduce_arg = r;
 * The hook may fire only in the last backward before the optimizer step of
 * that net (grads must not change once reported final). */
typedef struct gt_dist_reducer gt_dist_reducer;
gt_dist_reducer *gt_dist_reducer_new(int overlap, double bucket_mb);
void gt_dist_reducer_attach(gt_dist_reducer *r, gt_net *net);
/* The gt_step_ctx.reduce_grads hook (arg = the reducer; NULL = one call). */
void gt_dist_reduce_grads(float *buf, size_t n, void *reducer);
long gt_dist_reducer_buckets(const gt_dist_reducer *r); /* collectives posted so far */
void gt_dist_reducer_free(gt_dist_reducer *r);

/* Synchronized batch norm for net (on = 1): sets net->bn_sync to an
 * allreduce-sum hook over all ranks; on = 0 or a world of one: local statistics. */
void gt_dist_sync_bn(gt_net *net, int on);

/* ---- the training loop's side of data parallelism (src/dist/replica.c) ---
 * train.c calls, in this order:
 *   gt_dist_run_config(&run, cfg)          reads [dist] (and [debug]) keys; before gt_config_check_unused
 *   gt_dist_run_attach(&run, m, cfg, n)    after it: checks that all ranks agree on the resolved config,
 *                                          the model's layout and the dataset size (stops naming the ranks
 *                                          otherwise), attaches the reducer and sync BN to every net;
 *                                          then broadcast rank 0's parameters
 *   per step: gt_dist_run_step_begin(&run, step); gt_model_train_step with ctx.reduce_grads =
 *             gt_dist_reduce_grads, ctx.reduce_arg = run.reducer; gt_dist_run_step_end(&run, m, step, steps)
 *   at a log line: gt_dist_run_comm_frac(&run)
 *   at the end: gt_dist_run_finish(&run, m) */
typedef struct {
    int overlap, sync_bn;
    double bucket_mb;
    long check_every;
    /* [debug] test hooks (documented in `gentrain train --help`): rank fail_rank
     * fails (gt_fatal) at step fail_step; rank perturb_rank moves every parameter
     * by one ulp after step perturb_step; dump_params = PATH writes every
     * rank's final parameters and state to PATH.rank<R>. */
    int fail_rank, perturb_rank;
    long fail_step, perturb_step;
    char dump_params[1024];
    gt_dist_reducer *reducer;
    double t_begin, comm_begin, step_s, comm_s; /* since the last gt_dist_run_comm_frac */
} gt_dist_run;

void gt_dist_run_config(gt_dist_run *run, gt_config *cfg);
void gt_dist_run_attach(gt_dist_run *run, gt_model *m, gt_config *cfg, int64_t n_train);
void gt_dist_run_step_begin(gt_dist_run *run, long step);
/* After the optimizer steps: local-BN buffers broadcast from rank 0, replica
 * check every check_every steps and after the last one. */
void gt_dist_run_step_end(gt_dist_run *run, gt_model *m, long step, long steps);
/* Fraction of step time spent in communication since the last call. */
double gt_dist_run_comm_frac(gt_dist_run *run);
void gt_dist_run_finish(gt_dist_run *run, gt_model *m);

#endif
