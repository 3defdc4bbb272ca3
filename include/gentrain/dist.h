/* dist: the only module that talks to MPI. Collective calls must be made by
 * every rank in the same order. Every MPI return value is checked; a failure
 * on any rank prints its message and aborts the whole job (MPI_Abort). */
#ifndef GENTRAIN_DIST_H
#define GENTRAIN_DIST_H

#include <stddef.h>
#include <stdint.h>

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

#endif
