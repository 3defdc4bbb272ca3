/* k-means (Lloyd 1982) with k-means++ seeding (Arthur & Vassilvitskii 2007),
 * deterministic: the seeding draws from Philox (seed, GT_EVAL_RNG_KMEANS,
 * step = centre). The iterations stop when no assignment changes, when the
 * centres moved by at most 1e-4 of the data's mean per-dimension variance
 * in total squared distance (scikit-learn's KMeans rule, tol = 1e-4), or
 * after max_iter. Assignments go through gt_knn (GEMM); means are summed in
 * double in row order. An emptied cluster keeps its previous centre. */
#include "gentrain/core.h"
#include "gentrain/eval.h"
#include "internal.h"

#include <math.h>
#include <string.h>

void gt_nearest_cell(int *cell, const float *x, int first, int last, const float *centroid, int cells, int dim) {
    int rows = last - first;
    if (rows <= 0) return;
    /* two candidates, compared exactly: the same point gets the same cell
     * whichever set and position it comes in */
    int k = cells < 2 ? cells : 2;
    float *dist = gt_alloc_floats((size_t)rows * k);
    int *index = gt_alloc((size_t)rows * k * sizeof(int));
    gt_knn(dist, index, k, x, first, last, centroid, cells, dim, 0);
    for (int r = 0; r < rows; r++) cell[r] = index[(size_t)r * k];
    gt_free(index);
    gt_free(dist);
}

static double unit_double(uint64_t r) { return (double)(r >> 11) * 0x1p-53; }

int gt_kmeans(float *centroid, const float *x, int n, int dim, int cells, int max_iter, uint64_t seed) {
    GT_ASSERT(cells >= 1 && cells <= n, "gt_kmeans: %d cells for %d points", cells, n);
    uint32_t purpose = GT_PURPOSE(GT_RNG_EVAL, GT_EVAL_RNG_KMEANS);
    /* k-means++: the first centre uniform, then each with probability
     * proportional to the squared distance to the nearest centre so far */
    double *near2 = gt_alloc((size_t)n * sizeof(double));
    int pick = (int)(gt_rand_u64(seed, purpose, 0, 0, 0) % (uint64_t)n);
    memcpy(centroid, x + (size_t)pick * dim, (size_t)dim * sizeof(float));
    for (int i = 0; i < n; i++) near2[i] = gt_dist2_exact(x + (size_t)i * dim, centroid, dim);
    for (int c = 1; c < cells; c++) {
        double total = 0.0;
        for (int i = 0; i < n; i++) total += near2[i];
        if (total > 0) {
            double u = unit_double(gt_rand_u64(seed, purpose, (uint64_t)c, 0, 0)) * total, acc = 0.0;
            pick = -1;
            for (int i = 0; i < n; i++) {
                if (near2[i] <= 0) continue;
                acc += near2[i];
                pick = i;
                if (acc > u) break;
            }
        } else { /* fewer distinct points than cells: repeat one */
            pick = (int)(gt_rand_u64(seed, purpose, (uint64_t)c, 0, 0) % (uint64_t)n);
        }
        float *cc = centroid + (size_t)c * dim;
        memcpy(cc, x + (size_t)pick * dim, (size_t)dim * sizeof(float));
        for (int i = 0; i < n; i++) {
            double d2 = gt_dist2_exact(x + (size_t)i * dim, cc, dim);
            if (d2 < near2[i]) near2[i] = d2;
        }
    }
    gt_free(near2);

    /* the stopping tolerance: 1e-4 x mean over dimensions of the variance */
    double tol = 0.0;
    {
        double *m1 = gt_alloc((size_t)dim * sizeof(double)), *m2 = gt_alloc((size_t)dim * sizeof(double));
        for (int i = 0; i < n; i++)
            for (int k = 0; k < dim; k++) {
                double v = x[(size_t)i * dim + k];
                m1[k] += v;
                m2[k] += v * v;
            }
        for (int k = 0; k < dim; k++) tol += (m2[k] / n - (m1[k] / n) * (m1[k] / n)) / dim;
        tol *= 1e-4;
        gt_free(m2);
        gt_free(m1);
    }

    /* Lloyd's iterations */
    int *cell = gt_alloc((size_t)n * sizeof(int)), *prev = gt_alloc((size_t)n * sizeof(int));
    double *sum = gt_alloc((size_t)cells * dim * sizeof(double));
    int64_t *count = gt_alloc((size_t)cells * sizeof(int64_t));
    int iter = 0;
    for (int i = 0; i < n; i++) prev[i] = -1;
    while (iter < max_iter) {
        gt_nearest_cell(cell, x, 0, n, centroid, cells, dim);
        if (!memcmp(cell, prev, (size_t)n * sizeof(int))) break;
        iter++;
        memset(sum, 0, (size_t)cells * dim * sizeof(double));
        memset(count, 0, (size_t)cells * sizeof(int64_t));
        for (int i = 0; i < n; i++) {
            double *s = sum + (size_t)cell[i] * dim;
            const float *xi = x + (size_t)i * dim;
            for (int k = 0; k < dim; k++) s[k] += xi[k];
            count[cell[i]]++;
        }
        double shift = 0.0;
        for (int c = 0; c < cells; c++)
            if (count[c] > 0)
                for (int k = 0; k < dim; k++) {
                    float m = (float)(sum[(size_t)c * dim + k] / (double)count[c]);
                    double dm = (double)m - centroid[(size_t)c * dim + k];
                    shift += dm * dm;
                    centroid[(size_t)c * dim + k] = m;
                }
        memcpy(prev, cell, (size_t)n * sizeof(int));
        if (shift <= tol) break;
    }
    gt_free(count);
    gt_free(sum);
    gt_free(prev);
    gt_free(cell);
    return iter;
}
