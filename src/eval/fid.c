/* Fréchet Inception Distance (Heusel, Ramsauer, Unterthiner, Nessler,
 * Hochreiter, "GANs Trained by a Two Time-Scale Update Rule Converge to a
 * Local Nash Equilibrium", NeurIPS 2017):
 *   FID = ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))
 * of the Gaussian fits (mean, unbiased covariance) of two feature sets.
 *
 * tr (S_a S_b)^(1/2) is computed as TF-GAN's trace_sqrt_product: with
 * R = S_a^(1/2) (symmetric eigendecomposition), S_a S_b = R (R S_b R) R^-1
 * is similar to the symmetric PSD matrix M = R S_b R, so the trace of its
 * square root is sum_i sqrt(lambda_i(M)). Both eigenproblems go to LAPACK's
 * dsyevd, in double; eigenvalues that rounding made slightly negative are
 * taken as 0. Unlike scipy.linalg.sqrtm of the non-symmetric product this
 * needs no complex arithmetic and no discarding of imaginary parts. */
#include "gentrain/core.h"
#include "gentrain/eval.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define ADD_CHUNK 256 /* rows converted to double per dsyrk call */

void gt_gauss_stats_init(gt_gauss_stats *s, int dim) {
    GT_ASSERT(dim > 0, "gt_gauss_stats_init: dim %d", dim);
    s->dim = dim;
    s->len = 1 + (size_t)dim + (size_t)dim * dim;
    s->buf = gt_alloc(s->len * sizeof(double));
}

void gt_gauss_stats_free(gt_gauss_stats *s) {
    gt_free(s->buf);
    s->buf = NULL;
    s->len = 0;
}

double gt_gauss_stats_count(const gt_gauss_stats *s) { return s->buf[0]; }

void gt_gauss_stats_add(gt_gauss_stats *s, const float *x, int n) {
    int d = s->dim;
    double *sum = s->buf + 1, *outer = s->buf + 1 + d;
    double *chunk = gt_alloc((size_t)ADD_CHUNK * d * sizeof(double));
    for (int r0 = 0; r0 < n; r0 += ADD_CHUNK) {
        int m = n - r0 < ADD_CHUNK ? n - r0 : ADD_CHUNK;
        for (size_t i = 0; i < (size_t)m * d; i++) chunk[i] = x[(size_t)r0 * d + i];
        for (int i = 0; i < m; i++)
            for (int k = 0; k < d; k++) sum[k] += chunk[(size_t)i * d + k];
        /* upper triangle of outer += chunk^T chunk */
        gt_dsyrk(1, d, m, 1.0, chunk, d, 1.0, outer, d);
    }
    /* keep the stored matrix full and symmetric, so that sums of buffers are plain sums */
    for (int i = 0; i < d; i++)
        for (int j = 0; j < i; j++) outer[(size_t)i * d + j] = outer[(size_t)j * d + i];
    s->buf[0] += n;
    gt_free(chunk);
}

void gt_gauss_stats_merge(gt_gauss_stats *into, const gt_gauss_stats *from) {
    GT_ASSERT(into->dim == from->dim, "gt_gauss_stats_merge: dim %d and %d", into->dim, from->dim);
    for (size_t i = 0; i < into->len; i++) into->buf[i] += from->buf[i];
}

void gt_gauss_stats_moments(const gt_gauss_stats *s, double *mean, double *cov) {
    int d = s->dim;
    double n = s->buf[0];
    GT_ASSERT(n >= 2, "gt_gauss_stats_moments: %.0f rows; a covariance needs at least 2", n);
    const double *sum = s->buf + 1, *outer = s->buf + 1 + d;
    for (int k = 0; k < d; k++) mean[k] = sum[k] / n;
    /* (sum x x^T - n mu mu^T) / (n - 1); in double the cancellation is
     * harmless unless |mean| / std exceeds about 1e5 */
    for (int i = 0; i < d; i++)
        for (int j = i; j < d; j++) {
            double c = (outer[(size_t)i * d + j] - n * mean[i] * mean[j]) / (n - 1);
            cov[(size_t)i * d + j] = c;
            cov[(size_t)j * d + i] = c;
        }
}

/* a [d,d] symmetric PSD -> w [d] eigenvalues ascending; with vectors: a
 * holds them in its columns. Eigenvalues below the rounding level of the
 * largest (d * eps * max|w|), including slightly negative ones, are set to
 * 0: square roots would turn that noise into sqrt(eps)-sized errors. */
static void sym_eig(double *a, double *w, int d, int vectors) {
    int info = gt_dsyevd(vectors, d, a, w);
    GT_ASSERT(info == 0, "LAPACKE_dsyevd failed (info %d) on a %dx%d covariance: non-finite features?", (int)info, d,
             d);
    double big = fmax(fabs(w[0]), fabs(w[d - 1])), noise = d * DBL_EPSILON * big;
    for (int i = 0; i < d; i++)
        if (w[i] < noise) w[i] = 0.0;
}

double gt_trace_sqrt_product(const double *cov_a, const double *cov_b, int d) {
    size_t dd = (size_t)d * d;
    double *v = gt_alloc(dd * sizeof(double));
    double *w = gt_alloc((size_t)d * sizeof(double));
    double *root = gt_alloc(dd * sizeof(double));
    double *tmp = gt_alloc(dd * sizeof(double));
    /* root = V diag(sqrt(max(w,0))) V^T = (V diag(w^1/4)) (V diag(w^1/4))^T */
    memcpy(v, cov_a, dd * sizeof(double));
    sym_eig(v, w, d, 1);
    for (int j = 0; j < d; j++) {
        double s = w[j] > 0 ? sqrt(sqrt(w[j])) : 0.0;
        for (int i = 0; i < d; i++) v[(size_t)i * d + j] *= s;
    }
    gt_dgemm(0, 1, d, d, d, 1.0, v, d, v, d, 0.0, root, d);
    /* M = root cov_b root, symmetrized against rounding */
    gt_dgemm(0, 0, d, d, d, 1.0, root, d, cov_b, d, 0.0, tmp, d);
    gt_dgemm(0, 0, d, d, d, 1.0, tmp, d, root, d, 0.0, v, d);
    for (int i = 0; i < d; i++)
        for (int j = 0; j < i; j++) {
            double m = 0.5 * (v[(size_t)i * d + j] + v[(size_t)j * d + i]);
            v[(size_t)i * d + j] = m;
            v[(size_t)j * d + i] = m;
        }
    sym_eig(v, w, d, 0);
    double tr = 0.0;
    for (int i = 0; i < d; i++) tr += w[i] > 0 ? sqrt(w[i]) : 0.0;
    gt_free(tmp);
    gt_free(root);
    gt_free(w);
    gt_free(v);
    return tr;
}

double gt_fid_moments(const double *mean_a, const double *cov_a, const double *mean_b, const double *cov_b, int d) {
    double diff2 = 0.0, tr = 0.0;
    for (int k = 0; k < d; k++) {
        double t = mean_a[k] - mean_b[k];
        diff2 += t * t;
        tr += cov_a[(size_t)k * d + k] + cov_b[(size_t)k * d + k];
    }
    return diff2 + tr - 2.0 * gt_trace_sqrt_product(cov_a, cov_b, d);
}

double gt_fid(const gt_gauss_stats *a, const gt_gauss_stats *b) {
    GT_ASSERT(a->dim == b->dim, "gt_fid: dim %d and %d", a->dim, b->dim);
    int d = a->dim;
    size_t dd = (size_t)d * d;
    double *mean_a = gt_alloc((size_t)d * sizeof(double)), *mean_b = gt_alloc((size_t)d * sizeof(double));
    double *cov_a = gt_alloc(dd * sizeof(double)), *cov_b = gt_alloc(dd * sizeof(double));
    gt_gauss_stats_moments(a, mean_a, cov_a);
    gt_gauss_stats_moments(b, mean_b, cov_b);
    double fid = gt_fid_moments(mean_a, cov_a, mean_b, cov_b, d);
    gt_free(cov_b);
    gt_free(cov_a);
    gt_free(mean_b);
    gt_free(mean_a);
    return fid;
}
