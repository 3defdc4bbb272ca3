/* Memorization by nearest neighbours: are generated samples closer to the
 * training set than fresh data of the same distribution would be?
 *
 * Closer-to-train share. For each generated point g, with T' an equal-size
 * reference of training points and P' of held-out test points (size
 * s = min(n_train, n_test); the larger set is subsampled without
 * replacement from the Philox stream (seed, GT_EVAL_RNG_MEMORIZATION)):
 *   share = (1/m) sum_g ( 1[d(g,T') < d(g,P')] + 1/2 1[d(g,T') = d(g,P')] ).
 * If g is drawn from the data distribution independently of both sets, T'
 * and P' are exchangeable given g, so E[share] = 1/2. A copier of points in
 * T' has d(g,T') = 0 and scores 1; a copier of arbitrary training points
 * scores about 1/2 + s/(2 n_train) (only those in T' are exact hits), so
 * with a training set larger than the test set prefer C_T (copying.c),
 * which looks at the whole training set. */
#include "gentrain/core.h"
#include "gentrain/eval.h"

void gt_memorization_refs(int *train_idx, int *test_idx, int *size, int n_train, int n_test, uint64_t seed) {
    int s = n_train < n_test ? n_train : n_test;
    uint32_t purpose = GT_PURPOSE(GT_RNG_EVAL, GT_EVAL_RNG_MEMORIZATION);
    if (s == n_train)
        for (int i = 0; i < s; i++) train_idx[i] = i;
    else
        gt_draw_subset(train_idx, n_train, s, seed, purpose, 0, 0);
    if (s == n_test)
        for (int i = 0; i < s; i++) test_idx[i] = i;
    else
        gt_draw_subset(test_idx, n_test, s, seed, purpose, 0, 1);
    *size = s;
}

double gt_closer_to_train_count(const float *gen, int first, int last, const float *train_ref,
                                const float *test_ref, int n_ref, int dim) {
    int rows = last - first;
    if (rows <= 0) return 0.0;
    float *d_train = gt_alloc_floats(rows), *d_test = gt_alloc_floats(rows);
    gt_knn(d_train, NULL, 1, gen, first, last, train_ref, n_ref, dim, 0);
    gt_knn(d_test, NULL, 1, gen, first, last, test_ref, n_ref, dim, 0);
    double count = 0.0;
    for (int r = 0; r < rows; r++) count += d_train[r] < d_test[r] ? 1.0 : d_train[r] == d_test[r] ? 0.5 : 0.0;
    gt_free(d_test);
    gt_free(d_train);
    return count;
}

double gt_closer_to_train_share(const float *gen, int n_gen, const float *train, int n_train, const float *test,
                                int n_test, int dim, uint64_t seed) {
    GT_ASSERT(n_gen > 0 && n_train > 0 && n_test > 0, "gt_closer_to_train_share: %d generated, %d train, %d test",
              n_gen, n_train, n_test);
    int s = n_train < n_test ? n_train : n_test;
    int *train_idx = gt_alloc((size_t)s * sizeof(int)), *test_idx = gt_alloc((size_t)s * sizeof(int));
    gt_memorization_refs(train_idx, test_idx, &s, n_train, n_test, seed);
    float *train_ref = gt_alloc_floats((size_t)s * dim), *test_ref = gt_alloc_floats((size_t)s * dim);
    gt_gather_rows(train_ref, train, train_idx, s, dim);
    gt_gather_rows(test_ref, test, test_idx, s, dim);
    double share = gt_closer_to_train_count(gen, 0, n_gen, train_ref, test_ref, s, dim) / n_gen;
    gt_free(test_ref);
    gt_free(train_ref);
    gt_free(test_idx);
    gt_free(train_idx);
    return share;
}
