/* The data-copying test C_T of Meehan, Chaudhuri, Dasgupta, "A Non-Parametric
 * Test to Detect Data-Copying in Generative Models", AISTATS 2020.
 *
 * Three samples: training set T, held-out test set P_n (n points), generated
 * Q_m (m points). The instance space is partitioned into cells Pi (here by
 * k-means on T, as the paper's experiments do). In each cell pi, with
 * L(x) the distance from x to its nearest training point in pi (the authors'
 * code searches the cell's training points; with Voronoi cells that is
 * nearly always the global nearest neighbour), the Mann-Whitney statistic
 *   U_pi = sum_{x in Q_m ∩ pi} sum_{y in P_n ∩ pi} ( 1[L(x) > L(y)] + 1/2 1[L(x) = L(y)] )
 * is Z-scored under the null hypothesis of exchangeable distances:
 *   Z_U(pi) = (U_pi - m_pi n_pi / 2) / sqrt(m_pi n_pi (m_pi + n_pi + 1) / 12).
 * Generated points closer to the training set than test points make U, and
 * Z_U, small. Cells with too few generated points are left out:
 * Pi_tau = { pi : Q_m(pi) > tau } with tau = min_gen / m (the authors use
 * tau = 20/m, i.e. more than 20 generated points), and
 *   C_T = sum_{pi in Pi_tau} P_n(pi) Z_U(pi) / sum_{pi in Pi_tau} P_n(pi),
 * with P_n(pi) the cell's share of test points. C_T << 0 means data-copying
 * (e.g. below -3), C_T >> 0 underfitting, about 0 neither. Z_U uses the
 * paper's formula; the authors' released code also subtracts a 0.5
 * continuity correction from the mean (a shift of 0.5 / sd per cell). */
#include "gentrain/core.h"
#include "gentrain/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* order [n] = 0..n-1 stably sorted by key [n] in [0, keys); start [keys+1] */
static void bucket(int *order, int *start, const int *key, int n, int keys) {
    memset(start, 0, (size_t)(keys + 1) * sizeof(int));
    for (int i = 0; i < n; i++) {
        GT_ASSERT(0 <= key[i] && key[i] < keys, "cell %d of row %d is not in [0, %d)", key[i], i, keys);
        start[key[i] + 1]++;
    }
    for (int c = 0; c < keys; c++) start[c + 1] += start[c];
    int *pos = gt_alloc((size_t)keys * sizeof(int));
    memcpy(pos, start, (size_t)keys * sizeof(int));
    for (int i = 0; i < n; i++) order[pos[key[i]]++] = i;
    gt_free(pos);
}

void gt_cell_nn_dist(float *dist, const float *q, const int *q_cell, int first, int last, const float *train,
                     const int *train_cell, int n_train, int dim, int cells) {
    int rows = last - first;
    if (rows <= 0) return;
    int *t_order = gt_alloc((size_t)n_train * sizeof(int)), *t_start = gt_alloc((size_t)(cells + 1) * sizeof(int));
    int *q_order = gt_alloc((size_t)rows * sizeof(int)), *q_start = gt_alloc((size_t)(cells + 1) * sizeof(int));
    bucket(t_order, t_start, train_cell, n_train, cells);
    bucket(q_order, q_start, q_cell + first, rows, cells);
    int max_q = 0;
    for (int c = 0; c < cells; c++) {
        int nq = q_start[c + 1] - q_start[c];
        max_q = nq > max_q ? nq : max_q;
    }
    float *t_rows = gt_alloc_floats((size_t)n_train * dim); /* training rows grouped by cell */
    gt_gather_rows(t_rows, train, t_order, n_train, dim);
    float *q_rows = gt_alloc_floats((size_t)max_q * dim), *q_dist = gt_alloc_floats(max_q);
    int *q_idx = gt_alloc((size_t)max_q * sizeof(int));
    for (int c = 0; c < cells; c++) {
        int nq = q_start[c + 1] - q_start[c], nt = t_start[c + 1] - t_start[c];
        if (nq == 0) continue;
        for (int i = 0; i < nq; i++) q_idx[i] = first + q_order[q_start[c] + i];
        if (nt == 0) {
            for (int i = 0; i < nq; i++) dist[q_idx[i] - first] = INFINITY;
            continue;
        }
        gt_gather_rows(q_rows, q, q_idx, nq, dim);
        gt_knn(q_dist, NULL, 1, q_rows, 0, nq, t_rows + (size_t)t_start[c] * dim, nt, dim, 0);
        for (int i = 0; i < nq; i++) dist[q_idx[i] - first] = q_dist[i];
    }
    gt_free(q_idx);
    gt_free(q_dist);
    gt_free(q_rows);
    gt_free(t_rows);
    gt_free(q_start);
    gt_free(q_order);
    gt_free(t_start);
    gt_free(t_order);
}

typedef struct {
    float v;
    int from_x;
} tagged;

static int cmp_tagged(const void *a, const void *b) {
    float x = ((const tagged *)a)->v, y = ((const tagged *)b)->v;
    return (x > y) - (x < y);
}

double gt_mann_whitney_u(const float *x, int m, const float *y, int n) {
    int total = m + n;
    if (m == 0 || n == 0) return 0.0;
    tagged *all = gt_alloc((size_t)total * sizeof(tagged));
    for (int i = 0; i < m; i++) all[i] = (tagged){x[i], 1};
    for (int j = 0; j < n; j++) all[m + j] = (tagged){y[j], 0};
    qsort(all, (size_t)total, sizeof(tagged), cmp_tagged);
    /* rank sum of x with mid-ranks for ties; U = R_x - m(m+1)/2 */
    double rank_sum = 0.0;
    for (int p = 0; p < total;) {
        int e = p, nx = 0;
        while (e < total && all[e].v == all[p].v) nx += all[e++].from_x;
        double mid_rank = 0.5 * ((p + 1) + e); /* ranks p+1 .. e */
        rank_sum += nx * mid_rank;
        p = e;
    }
    gt_free(all);
    return rank_sum - 0.5 * (double)m * (m + 1.0);
}

double gt_mann_whitney_z(double u, int m, int n) {
    double mn = (double)m * n;
    return (u - 0.5 * mn) / sqrt(mn * (m + n + 1.0) / 12.0);
}

gt_ct_result gt_ct_from_dists(const float *test_dist, const int *test_cell, int n_test, const float *gen_dist,
                              const int *gen_cell, int n_gen, int cells, int min_gen, double *z) {
    int *t_order = gt_alloc((size_t)n_test * sizeof(int)), *t_start = gt_alloc((size_t)(cells + 1) * sizeof(int));
    int *g_order = gt_alloc((size_t)n_gen * sizeof(int)), *g_start = gt_alloc((size_t)(cells + 1) * sizeof(int));
    bucket(t_order, t_start, test_cell, n_test, cells);
    bucket(g_order, g_start, gen_cell, n_gen, cells);
    float *tv = gt_alloc_floats(n_test > 0 ? n_test : 1), *gv = gt_alloc_floats(n_gen > 0 ? n_gen : 1);
    gt_ct_result res = {NAN, cells, 0};
    double weighted = 0.0, weight = 0.0;
    for (int c = 0; c < cells; c++) {
        int nt = t_start[c + 1] - t_start[c], ng = g_start[c + 1] - g_start[c];
        if (z) z[c] = NAN;
        if (ng <= min_gen || nt == 0) continue;
        int finite = 1;
        for (int i = 0; i < nt; i++) finite &= isfinite(tv[i] = test_dist[t_order[t_start[c] + i]]);
        for (int i = 0; i < ng; i++) finite &= isfinite(gv[i] = gen_dist[g_order[g_start[c] + i]]);
        if (!finite) continue; /* no training point in the cell */
        double zc = gt_mann_whitney_z(gt_mann_whitney_u(gv, ng, tv, nt), ng, nt);
        if (z) z[c] = zc;
        double pn = (double)nt / n_test;
        weighted += pn * zc;
        weight += pn;
        res.cells_used++;
    }
    if (weight > 0) res.c_t = weighted / weight;
    gt_free(gv);
    gt_free(tv);
    gt_free(g_start);
    gt_free(g_order);
    gt_free(t_start);
    gt_free(t_order);
    return res;
}

gt_ct_result gt_data_copying_ct(const float *train, int n_train, const float *test, int n_test, const float *gen,
                                int n_gen, int dim, int cells, int min_gen, uint64_t seed) {
    float *centroid = gt_alloc_floats((size_t)cells * dim);
    gt_kmeans(centroid, train, n_train, dim, cells, GT_CT_MAX_ITER, seed);
    int *train_cell = gt_alloc((size_t)n_train * sizeof(int));
    int *test_cell = gt_alloc((size_t)n_test * sizeof(int)), *gen_cell = gt_alloc((size_t)n_gen * sizeof(int));
    gt_nearest_cell(train_cell, train, 0, n_train, centroid, cells, dim);
    gt_nearest_cell(test_cell, test, 0, n_test, centroid, cells, dim);
    gt_nearest_cell(gen_cell, gen, 0, n_gen, centroid, cells, dim);
    float *test_dist = gt_alloc_floats(n_test), *gen_dist = gt_alloc_floats(n_gen);
    gt_cell_nn_dist(test_dist, test, test_cell, 0, n_test, train, train_cell, n_train, dim, cells);
    gt_cell_nn_dist(gen_dist, gen, gen_cell, 0, n_gen, train, train_cell, n_train, dim, cells);
    gt_ct_result r = gt_ct_from_dists(test_dist, test_cell, n_test, gen_dist, gen_cell, n_gen, cells, min_gen, NULL);
    gt_free(gen_dist);
    gt_free(test_dist);
    gt_free(gen_cell);
    gt_free(test_cell);
    gt_free(train_cell);
    gt_free(centroid);
    return r;
}
