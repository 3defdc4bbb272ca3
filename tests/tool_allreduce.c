/* MPI_Allreduce timing for tools/netns-cluster's measurements and
 * tests/netns_hosts.sh (MPI and libc only):
 *   tool_allreduce [MB] [ITERS] [nonblocking]   (defaults 8 MB, 20 iterations)
 *   tool_allreduce MB ITERS overlap COMPUTE_MS CALLS
 * sums MB megabytes of floats over all ranks ITERS times after 3 warm-up
 * calls (MPI_Allreduce; with `nonblocking`, MPI_Iallreduce and MPI_Wait, the
 * calls gentrain's gradient reduction makes: give it Open MPI's
 * coll_libnbc_iallreduce_algorithm=1 to get the ring gentrain picks) and
 * prints on rank 0 one line:
 *   allreduce <bytes> B x <ranks> ranks: median <ms> ms min <ms> ms max <ms> ms
 * (per call, the slowest rank's time; a barrier before every call).
 * `overlap`: MPI_Iallreduce, then COMPUTE_MS of busy computation with CALLS
 * MPI_Test calls spread evenly over it (what gentrain's progress hook does
 * between layers), then MPI_Wait; the times are those of the final wait. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    double mb = argc > 1 ? atof(argv[1]) : 8.0;
    int iters = argc > 2 ? atoi(argv[2]) : 20;
    int nonblocking = argc > 3 && strcmp(argv[3], "nonblocking") == 0;
    int overlap = argc == 6 && strcmp(argv[3], "overlap") == 0;
    double compute_s = overlap ? atof(argv[4]) / 1e3 : 0;
    int calls = overlap ? atoi(argv[5]) : 0;
    if (!(mb > 0 && mb <= 1024) || iters < 1 || iters > 100000 || (argc > 3 && !nonblocking && !overlap) ||
        (argc > 4 && !overlap) || compute_s < 0 || compute_s > 100 || calls < 0) {
        if (rank == 0)
            fprintf(stderr, "usage: tool_allreduce [MB (0..1024]] [ITERS] [nonblocking]\n"
                            "       tool_allreduce MB ITERS overlap COMPUTE_MS CALLS\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    size_t n = (size_t)(mb * 1e6 / sizeof(float));
    float *buf = malloc(n * sizeof *buf);
    double *t = malloc((size_t)iters * sizeof *t);
    if (!buf || !t) MPI_Abort(MPI_COMM_WORLD, 1);
    for (size_t i = 0; i < n; i++) buf[i] = (float)(rank + 1) * 1e-6f;
    for (int i = -3; i < iters; i++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        if (overlap) {
            MPI_Request q;
            MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &q);
            volatile double x = 0;
            for (int k = 1; k <= calls || MPI_Wtime() - t0 < compute_s;) {
                for (int j = 0; j < 1000; j++) x += j * 1e-9;
                if (k <= calls && MPI_Wtime() - t0 >= k * compute_s / (calls + 1)) {
                    int done;
                    MPI_Test(&q, &done, MPI_STATUS_IGNORE);
                    k++;
                }
            }
            t0 = MPI_Wtime();
            MPI_Wait(&q, MPI_STATUS_IGNORE);
        } else if (nonblocking) {
            MPI_Request q;
            MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &q);
            MPI_Wait(&q, MPI_STATUS_IGNORE);
        } else {
            MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        }
        double dt = MPI_Wtime() - t0, worst;
        MPI_Reduce(&dt, &worst, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
        if (i >= 0) t[i] = worst;
    }
    if (rank == 0) {
        qsort(t, (size_t)iters, sizeof *t, cmp_double);
        if (overlap) printf("beside %g ms of computation with %d MPI_Test calls, the wait for an ", compute_s * 1e3, calls);
        printf("allreduce %zu B x %d ranks: median %.2f ms min %.2f ms max %.2f ms\n", n * sizeof(float), size,
               1e3 * t[iters / 2], 1e3 * t[0], 1e3 * t[iters - 1]);
    }
    free(buf);
    free(t);
    MPI_Finalize();
    return 0;
}
