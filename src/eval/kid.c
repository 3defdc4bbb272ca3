/* Kernel Inception Distance (Bińkowski, Sutherland, Arbel, Gretton,
 * "Demystifying MMD GANs", ICLR 2018): the unbiased estimate of the squared
 * maximum mean discrepancy with the cubic polynomial kernel
 *   k(x, y) = (x.y / dim + 1)^3,
 *   MMD^2_u = sum_{i != j} k(x_i,x_j) / (m(m-1)) + sum_{i != j} k(y_i,y_j) / (m(m-1))
 *             - 2 sum_{i,j} k(x_i,y_j) / m^2,
 * averaged over random subsets of m rows of each set (defaults as the paper
 * and torch-fidelity: 100 subsets of 1000; here m is clipped to the set
 * sizes). Kernel matrices in double (dgemm / dsyrk). */
#include "gentrain/core.h"
#include "gentrain/eval.h"

#include <math.h>

int gt_kid_subset_size(int n_a, int n_b, int subset_size) {
    int m = subset_size;
    if (n_a < m) m = n_a;
    if (n_b < m) m = n_b;
    return m;
}

void gt_kid_subset_rows(int *idx_a, int *idx_b, int n_a, int n_b, int size, uint64_t seed, int s) {
    uint32_t purpose = GT_PURPOSE(GT_RNG_EVAL, GT_EVAL_RNG_KID);
    gt_draw_subset(idx_a, n_a, size, seed, purpose, (uint64_t)s, 0);
    gt_draw_subset(idx_b, n_b, size, seed, purpose, (uint64_t)s, 1);
}

static inline double cubic(double dot, double inv_dim) {
    double t = dot * inv_dim + 1.0;
    return t * t * t;
}

/* x, y [m,dim] in double, gram [m,m] scratch */
static double mmd2_poly3_double(const double *x, const double *y, int m, int dim, double *gram) {
    double inv_dim = 1.0 / dim;
    double sum_xx = 0.0, sum_yy = 0.0, sum_xy = 0.0;
    /* off-diagonal sums of the within-set kernels from the upper triangles */
    gt_dsyrk(0, m, dim, 1.0, x, dim, 0.0, gram, m);
    for (int i = 0; i < m; i++)
        for (int j = i + 1; j < m; j++) sum_xx += cubic(gram[(size_t)i * m + j], inv_dim);
    gt_dsyrk(0, m, dim, 1.0, y, dim, 0.0, gram, m);
    for (int i = 0; i < m; i++)
        for (int j = i + 1; j < m; j++) sum_yy += cubic(gram[(size_t)i * m + j], inv_dim);
    gt_dgemm(0, 1, m, m, dim, 1.0, x, dim, y, dim, 0.0, gram, m);
    for (size_t i = 0; i < (size_t)m * m; i++) sum_xy += cubic(gram[i], inv_dim);
    double mm = (double)m;
    return 2.0 * (sum_xx + sum_yy) / (mm * (mm - 1.0)) - 2.0 * sum_xy / (mm * mm);
}

double gt_mmd2_poly3(const float *x, const float *y, int m, int dim) {
    GT_ASSERT(m >= 2 && dim > 0, "gt_mmd2_poly3: m %d dim %d", m, dim);
    size_t md = (size_t)m * dim;
    double *xd = gt_alloc(md * sizeof(double)), *yd = gt_alloc(md * sizeof(double));
    double *gram = gt_alloc((size_t)m * m * sizeof(double));
    for (size_t i = 0; i < md; i++) {
        xd[i] = x[i];
        yd[i] = y[i];
    }
    double v = mmd2_poly3_double(xd, yd, m, dim, gram);
    gt_free(gram);
    gt_free(yd);
    gt_free(xd);
    return v;
}

void gt_kid_subsets(double *mmd2, const float *a, int n_a, const float *b, int n_b, int dim, int subset_size,
                    uint64_t seed, int first, int last) {
    int m = gt_kid_subset_size(n_a, n_b, subset_size);
    GT_ASSERT(m >= 2, "gt_kid_subsets: subsets of %d rows (sets of %d and %d); KID needs at least 2", m, n_a, n_b);
    GT_ASSERT(0 <= first && first <= last, "gt_kid_subsets: range [%d,%d)", first, last);
    size_t md = (size_t)m * dim;
    int *idx_a = gt_alloc((size_t)m * sizeof(int)), *idx_b = gt_alloc((size_t)m * sizeof(int));
    double *xd = gt_alloc(md * sizeof(double)), *yd = gt_alloc(md * sizeof(double));
    double *gram = gt_alloc((size_t)m * m * sizeof(double));
    for (int s = first; s < last; s++) {
        gt_kid_subset_rows(idx_a, idx_b, n_a, n_b, m, seed, s);
        for (int i = 0; i < m; i++)
            for (int k = 0; k < dim; k++) {
                xd[(size_t)i * dim + k] = a[(size_t)idx_a[i] * dim + k];
                yd[(size_t)i * dim + k] = b[(size_t)idx_b[i] * dim + k];
            }
        mmd2[s - first] = mmd2_poly3_double(xd, yd, m, dim, gram);
    }
    gt_free(gram);
    gt_free(yd);
    gt_free(xd);
    gt_free(idx_b);
    gt_free(idx_a);
}

gt_kid_result gt_kid_summary(const double *mmd2, int subsets, int subset_size) {
    GT_ASSERT(subsets >= 1, "gt_kid_summary: %d subsets", subsets);
    double mean = 0.0, var = 0.0;
    for (int s = 0; s < subsets; s++) mean += mmd2[s];
    mean /= subsets;
    for (int s = 0; s < subsets; s++) var += (mmd2[s] - mean) * (mmd2[s] - mean);
    return (gt_kid_result){mean, sqrt(var / subsets), subsets, subset_size};
}

gt_kid_result gt_kid(const float *a, int n_a, const float *b, int n_b, int dim, int subsets, int subset_size,
                     uint64_t seed) {
    double *mmd2 = gt_alloc((size_t)subsets * sizeof(double));
    gt_kid_subsets(mmd2, a, n_a, b, n_b, dim, subset_size, seed, 0, subsets);
    gt_kid_result r = gt_kid_summary(mmd2, subsets, gt_kid_subset_size(n_a, n_b, subset_size));
    gt_free(mmd2);
    return r;
}
