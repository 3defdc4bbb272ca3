/* The MPI side of gentrain: init, abort, small collectives. Only src/dist includes <mpi.h>;
 * the bucketed gradient reducer is in reduce.c, the training-loop glue in replica.c. */
#include "gentrain/dist.h"

#include <errno.h>
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gentrain/core.h"
#include "internal.h"

/* size is the world the collectives see (1 on rank 0 inside gt_dist_solo);
 * world_size is always MPI_COMM_WORLD's. */
static int rank, size = 1, world_size = 1, initialized;
static MPI_Comm grad_comm = MPI_COMM_NULL;
double gt_dist_comm_clock;

MPI_Comm gt_dist_grad_comm(void) { return grad_comm; }

/* Open MPI's non-blocking collectives (libnbc) reduce an in-place buffer on
 * fewer than 4 ranks with a binomial reduce-then-broadcast: two transfers one
 * after the other, about 1.8x the time of the blocking MPI_Allreduce for the
 * vae's 1.3 MB gradients on 2 ranks here (min of 300 calls: ~490 us against
 * ~265 us). Its ring algorithm (reduce-scatter, then allgather) takes what the
 * blocking call takes (~205-265 us). The gradient reductions choose it per
 * call through the MPI tool interface's control variable
 * coll_libnbc_iallreduce_algorithm (1 = ring), when this MPI has that
 * variable and the user did not set it (OMPI_MCA_coll_libnbc_iallreduce_algorithm). */
static MPI_T_cvar_handle nbc_algorithm;
static int have_nbc_algorithm, mpit_initialized;

static void nbc_algorithm_init(void) {
    int provided, index, count, current = 0;
    if (MPI_T_init_thread(MPI_THREAD_SINGLE, &provided) != MPI_SUCCESS) return;
    mpit_initialized = 1;
    if (MPI_T_cvar_get_index("coll_libnbc_iallreduce_algorithm", &index) != MPI_SUCCESS) return;
    if (MPI_T_cvar_handle_alloc(index, NULL, &nbc_algorithm, &count) != MPI_SUCCESS) return;
    if (count != 1 || MPI_T_cvar_read(nbc_algorithm, &current) != MPI_SUCCESS || current != 0) {
        MPI_T_cvar_handle_free(&nbc_algorithm); /* not an int, or the user chose one */
        return;
    }
    have_nbc_algorithm = 1;
}

static void nbc_algorithm_finalize(void) {
    if (have_nbc_algorithm) MPI_T_cvar_handle_free(&nbc_algorithm);
    have_nbc_algorithm = 0;
    if (mpit_initialized) MPI_T_finalize();
    mpit_initialized = 0;
}

void gt_dist_iallreduce_in_place(void *buf, int n, MPI_Datatype t, MPI_Op op, MPI_Comm comm, MPI_Request *req) {
    int ring = 1, automatic = 0;
    if (have_nbc_algorithm) MPI_T_cvar_write(nbc_algorithm, &ring);
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buf, n, t, op, comm, req));
    if (have_nbc_algorithm) MPI_T_cvar_write(nbc_algorithm, &automatic);
}

void gt_dist_iallreduce_sum_floats(float *buf, int n, MPI_Comm comm, MPI_Request *req) {
    gt_dist_iallreduce_in_place(buf, n, MPI_FLOAT, MPI_SUM, comm, req);
}

/* The exit hook: every rank ends at once. A collective error was found by
 * every rank at the same point, so they meet and leave MPI the normal way:
 * mpirun then reads every rank's stderr to the end before it reports the
 * non-zero exit. MPI_Abort tears the job down without reading what is left in
 * the ranks' pipes, so rank 0's error or another rank's warning could be lost
 * (CI lost one even after a 0.3 s pause before the abort). Any other error
 * aborts at once: the other ranks may be anywhere. */
static _Noreturn void end_job(int code, int collective) {
    /* A world of one just exits: MPI_Abort's banner would bury the message.
     * (An MPI failure inside gt_dist_finalize panics, which comes back here
     * as a non-collective error: abort.) */
    if (initialized && world_size > 1) {
        if (collective) {
            if (MPI_Barrier(MPI_COMM_WORLD) == MPI_SUCCESS) {
                gt_dist_finalize();
                exit(code);
            }
        }
        MPI_Abort(MPI_COMM_WORLD, code);
    }
    exit(code);
}

/* hwloc, which Open MPI uses to map the node's cores, loads every plugin it
 * finds at MPI_Init. Three are of no use to a CPU trainer and bring large
 * libraries whose pages stay resident in every rank: hwloc_gl (libX11; it
 * also tries to reach an X display), hwloc_opencl (the OpenCL loader) and
 * hwloc_xml_libxml (libxml2 and ICU; hwloc reads and writes XML without it).
 * They are skipped unless HWLOC_PLUGINS_BLACKLIST is set already (set it
 * empty to load them all): 2.7 MB less resident memory per rank here.
 * hwloc_pci stays (Open MPI finds the network cards near a rank with it). */
static const char hwloc_plugins_skipped[] = "hwloc_gl,hwloc_opencl,hwloc_xml_libxml";

void gt_dist_init(int *argc, char ***argv) {
    if (setenv("HWLOC_PLUGINS_BLACKLIST", hwloc_plugins_skipped, 0) != 0) {
        fprintf(stderr, "gentrain: error: setenv HWLOC_PLUGINS_BLACKLIST: %s [%s:%d]\n", strerror(errno), __FILE__,
                __LINE__);
        exit(GT_ERR);
    }
    int rc = MPI_Init(argc, argv);
    if (rc != MPI_SUCCESS) {
        fprintf(stderr, "gentrain: error: MPI_Init failed (code %d) [%s:%d]\n", rc, __FILE__, __LINE__);
        exit(GT_ERR);
    }
    initialized = 1;
    /* Errors come back to us as codes, so they are reported with file and line. */
    MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size));
    world_size = size;
    MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &grad_comm)); /* inherits MPI_ERRORS_RETURN */
    gt_dist_watch_init();
    if (size > 1) nbc_algorithm_init();
    gt_set_exit_hook(end_job);
    gt_set_log_rank(rank, size);
}

void gt_dist_finalize(void) {
    if (!initialized) return;
    gt_dist_watch_finalize();
    nbc_algorithm_finalize();
    if (grad_comm != MPI_COMM_NULL) MPI_CHECK(MPI_Comm_free(&grad_comm));
    MPI_CHECK(MPI_Finalize());
    initialized = 0;
}

int gt_dist_rank(void) { return rank; }
int gt_dist_size(void) { return size; }

/* Every collective is started non-blocking and completed by gt_dist_wait,
 * which the step watchdog watches during a training step (watchdog.c). */

void gt_dist_allreduce_mean_f64(double *buf, int n) {
    if (size == 1) return;
    MPI_Request q;
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &q));
    gt_dist_wait(1, &q, "the allreduce of the logged statistics", NULL);
    for (int i = 0; i < n; i++) buf[i] /= size;
}

void gt_dist_allreduce_sum_f64(double *buf, int n) {
    if (size == 1) return;
    MPI_Request q;
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &q));
    gt_dist_wait(1, &q, "an allreduce of sums", NULL);
}

void gt_dist_bcast_what(void *buf, size_t bytes, const char *what) {
    if (size == 1) return;
    char *p = buf;
    size_t chunk = INT_MAX / 2;
    int n = (int)((bytes + chunk - 1) / chunk);
    MPI_Request q1, *q = n > 1 ? gt_alloc(sizeof(MPI_Request) * (size_t)n) : &q1;
    for (int i = 0; i < n; i++) {
        size_t off = (size_t)i * chunk, len = bytes - off < chunk ? bytes - off : chunk;
        MPI_CHECK(MPI_Ibcast(p + off, (int)len, MPI_BYTE, 0, MPI_COMM_WORLD, &q[i]));
    }
    gt_dist_wait(n, q, what, NULL);
    if (q != &q1) gt_free(q);
}

void gt_dist_bcast(void *buf, size_t bytes) { gt_dist_bcast_what(buf, bytes, "a broadcast from rank 0"); }

int gt_dist_any(int flag) {
    if (size == 1) return flag;
    int out = 0;
    MPI_Request q;
    MPI_CHECK(MPI_Iallreduce(&flag, &out, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD, &q));
    gt_dist_wait(1, &q, "an agreement of all ranks (whether one failed)", NULL);
    return out;
}

int gt_dist_or(int flags) {
    if (size == 1) return flags;
    int out = 0;
    MPI_Request q;
    MPI_CHECK(MPI_Iallreduce(&flags, &out, 1, MPI_INT, MPI_BOR, MPI_COMM_WORLD, &q));
    gt_dist_wait(1, &q, "the end-of-step agreement (stop signal, rank 0's writes)", NULL);
    return out;
}

void gt_dist_barrier(void) {
    if (size == 1) return;
    MPI_Request q;
    MPI_CHECK(MPI_Ibarrier(MPI_COMM_WORLD, &q));
    gt_dist_wait(1, &q, "a barrier (rank 0's checkpoint)", NULL);
}

void gt_dist_allgather_u64(const uint64_t *mine, int n, uint64_t *all) {
    if (size == 1) {
        for (int i = 0; i < n; i++) all[i] = mine[i];
        return;
    }
    MPI_Request q;
    MPI_CHECK(MPI_Iallgather(mine, n, MPI_UINT64_T, all, n, MPI_UINT64_T, MPI_COMM_WORLD, &q));
    gt_dist_wait(1, &q, "an allgather of hashes (start-up or replica check)", NULL);
}

void gt_dist_bcast_model(gt_model *m) {
    for (int k = 0; k < m->n_nets; k++) {
        gt_net *net = &m->net[k];
        gt_optim *opt = &m->opt[k];
        gt_dist_bcast(net->params, net->n_params * sizeof(float));
        gt_dist_bcast(net->state, net->n_state * sizeof(float));
        gt_dist_bcast(opt->m, opt->n * sizeof(float));
        if (opt->v) gt_dist_bcast(opt->v, opt->n * sizeof(float));
        gt_dist_bcast(&opt->t, sizeof opt->t);
    }
    if (gt_model_has_ema(m)) {
        gt_dist_bcast(m->ema_params, m->net[0].n_params * sizeof(float));
        gt_dist_bcast(m->ema_state, m->net[0].n_state * sizeof(float));
    }
}

void gt_dist_allreduce_sum_i64(int64_t *buf, int n) {
    if (size == 1) return;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD));
}

void gt_dist_rows(int64_t n, int64_t chunk, int r, int world, int64_t *first, int64_t *last) {
    GT_ASSERT(n >= 0 && chunk >= 1 && world >= 1 && r >= 0 && r < world, "gt_dist_rows: n %lld chunk %lld rank %d of %d",
              (long long)n, (long long)chunk, r, world);
    int64_t chunks = (n + chunk - 1) / chunk, base = chunks / world, extra = chunks % world;
    int64_t c0 = r * base + (r < extra ? r : extra), c1 = c0 + base + (r < extra);
    *first = c0 * chunk < n ? c0 * chunk : n;
    *last = c1 * chunk < n ? c1 * chunk : n;
}

void gt_dist_allgather_rows(void *buf, int64_t n, int64_t chunk, size_t row_bytes) {
    if (size == 1) return;
    GT_ASSERT((double)n * (double)row_bytes < (double)INT_MAX, "gt_dist_allgather_rows: %lld rows of %zu bytes exceed "
              "one MPI message", (long long)n, row_bytes);
    int *counts = gt_alloc(sizeof(int) * (size_t)size), *displs = gt_alloc(sizeof(int) * (size_t)size);
    for (int r = 0; r < size; r++) {
        int64_t first, last;
        gt_dist_rows(n, chunk, r, size, &first, &last);
        counts[r] = (int)((last - first) * (int64_t)row_bytes);
        displs[r] = (int)(first * (int64_t)row_bytes);
    }
    MPI_CHECK(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_BYTE, buf, counts, displs, MPI_BYTE, MPI_COMM_WORLD));
    gt_free(counts);
    gt_free(displs);
}

gt_status gt_dist_solo(gt_status (*fn)(void *arg), void *arg) {
    if (size == 1) return fn(arg);
    gt_status st = GT_OK;
    if (rank == 0) {
        size = 1;
        st = fn(arg);
        size = world_size;
    }
    /* a non-blocking barrier polled with sleeps: the waiting ranks leave the
     * cores to rank 0 (a blocking MPI call would spin on them) */
    MPI_Request req;
    MPI_CHECK(MPI_Ibarrier(MPI_COMM_WORLD, &req));
    for (int done = 0;;) {
        MPI_CHECK(MPI_Test(&req, &done, MPI_STATUS_IGNORE));
        if (done) break;
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    if (gt_dist_any(st != GT_OK)) return st ? st : GT_ERROR_ALL("rank 0 failed");
    return GT_OK;
}
