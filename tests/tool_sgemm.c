/* The OpenBLAS sgemm rate on this machine, for tools/bench: times
 * C[N,N] = A[N,N] B[N,N] (one BLAS thread) and prints GFLOP/s (the best of
 * five rounds).
 *   tool_sgemm [N] [OUT]   OUT: also write C (N*N float32, raw) there, so that
 *                          two BLAS kernels' results can be compared
 *   tool_sgemm --kernel    prints the name of the kernel OpenBLAS runs here */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gentrain/core.h"

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--kernel") == 0) {
        printf("%s\n", gt_blas_kernel_name());
        return 0;
    }
    int n = argc > 1 ? atoi(argv[1]) : 1024;
    GT_ASSERT(n > 0 && n <= 8192, "matrix size %d out of range 1..8192", n);
    gt_set_threads(1);
    float *a = gt_alloc_floats((size_t)n * n), *b = gt_alloc_floats((size_t)n * n), *c = gt_alloc_floats((size_t)n * n);
    gt_rand_uniform(a, (size_t)n * n, 1, GT_PURPOSE(GT_RNG_TEST, 0), 0, 0);
    gt_rand_uniform(b, (size_t)n * n, 1, GT_PURPOSE(GT_RNG_TEST, 1), 0, 0);
    gt_sgemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n); /* warm-up */
    /* the best of five rounds of at least 0.4 s: the machine's rate, not its
     * noise (a VM's core can be taken away for part of a round) */
    double best = 0.0;
    for (int round = 0; round < 5; round++) {
        int reps = 0;
        double t0 = gt_now(), t;
        do {
            gt_sgemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
            reps++;
            t = gt_now() - t0;
        } while (t < 0.4);
        double rate = 2.0 * n * n * (double)n * reps / t / 1e9;
        if (rate > best) best = rate;
    }
    printf("%.1f\n", best);
    if (argc > 2) {
        FILE *f = fopen(argv[2], "wb");
        GT_ASSERT(f, "cannot write %s", argv[2]);
        GT_ASSERT(fwrite(c, sizeof(float), (size_t)n * n, f) == (size_t)n * n && fclose(f) == 0, "cannot write %s",
                  argv[2]);
    }
    gt_free(a);
    gt_free(b);
    gt_free(c);
    return 0;
}
