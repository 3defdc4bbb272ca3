/* Random subsets (Philox, without replacement) and row gathering. */
#include "gentrain/core.h"
#include "gentrain/eval.h"

#include <string.h>

void gt_draw_subset(int *idx, int n, int m, uint64_t seed, uint32_t purpose, uint64_t step, uint64_t index) {
    GT_ASSERT(0 <= m && m <= n, "gt_draw_subset: %d of %d", m, n);
    /* Partial Fisher-Yates: position i swaps with a uniform position in
     * [i, n). The modulo's bias is below n / 2^64. */
    int *perm = gt_alloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = 0; i < m; i++) {
        uint64_t r = gt_rand_u64(seed, purpose, step, index, (uint64_t)i);
        int j = i + (int)(r % (uint64_t)(n - i));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        idx[i] = perm[i];
    }
    gt_free(perm);
}

void gt_gather_rows(float *out, const float *x, const int *idx, int m, int dim) {
    for (int i = 0; i < m; i++) memcpy(out + (size_t)i * dim, x + (size_t)idx[i] * dim, (size_t)dim * sizeof(float));
}
