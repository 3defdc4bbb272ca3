/* Private to src/dist: the MPI error check and the communication clock. */
#ifndef GENTRAIN_DIST_INTERNAL_H
#define GENTRAIN_DIST_INTERNAL_H

#include <mpi.h>

#include "gentrain/core.h"

/* Every MPI call's return code is checked; a failure names the call, file and
 * line and ends the job (a panic: gt_panic -> MPI_Abort). MPI_COMM_WORLD's
 * error handler is MPI_ERRORS_RETURN, set in gt_dist_init, so codes do come back. */
#define MPI_CHECK(call)                                                                          \
    do {                                                                                         \
        int rc_ = (call);                                                                        \
        if (rc_ != MPI_SUCCESS) {                                                                \
            char msg_[MPI_MAX_ERROR_STRING];                                                     \
            int len_ = 0;                                                                        \
            MPI_Error_string(rc_, msg_, &len_);                                                  \
            gt_panic_at(__FILE__, __LINE__, "MPI call %s failed: %s", #call, msg_);              \
        }                                                                                        \
    } while (0)

/* Seconds spent inside MPI calls made for training (gradient buckets, their
 * waits, synchronized batch norm, buffer broadcasts, replica checks): the
 * numerator of the logged comm_wait_frac. Add with COMM_TIMED. */
extern double gt_dist_comm_clock;
#define COMM_TIMED(stmt)                                                                         \
    do {                                                                                         \
        double t0_ = gt_now();                                                                   \
        stmt;                                                                                    \
        gt_dist_comm_clock += gt_now() - t0_;                                                    \
    } while (0)

/* Completes n requests of one collective. Outside a watched training step:
 * MPI_Waitall. Inside one (gt_dist_watch_step): polls, and at the step's
 * deadline (or when another rank's watchdog fires) finds out with the other
 * live ranks which ranks do not answer, prints it and ends the job
 * (watchdog.c). what and name (may be NULL) say what is waited for. */
void gt_dist_wait(int n, MPI_Request *req, const char *what, const char *name);
/* Starts the in-place reduction of a gradient-sized buffer of n elements of
 * type t by op (dist.c: with libnbc's ring algorithm where it can be chosen,
 * see there); gt_dist_iallreduce_sum_floats: floats, MPI_SUM. */
void gt_dist_iallreduce_in_place(void *buf, int n, MPI_Datatype t, MPI_Op op, MPI_Comm comm, MPI_Request *req);
void gt_dist_iallreduce_sum_floats(float *buf, int n, MPI_Comm comm, MPI_Request *req);
/* watchdog.c: its communicator (gt_dist_init / gt_dist_finalize). */
void gt_dist_watch_init(void);
void gt_dist_watch_finalize(void);

/* The duplicate of MPI_COMM_WORLD that carries only gradient reductions, so
 * that their non-blocking collectives never interleave with the blocking
 * ones (batch norm, checks) on one communicator. */
MPI_Comm gt_dist_grad_comm(void);

#endif
