/* Class histograms of generated samples under a classifier, compared with
 * the data's: how many classes the generator covers and how evenly (mode
 * collapse shows as low entropy and a large KL to the data's histogram),
 * and the classifier score, i.e. the Inception Score (Salimans et al.,
 * "Improved Techniques for Training GANs", NeurIPS 2016) computed with our
 * own classifier:
 *   score = exp( E_x KL(p(y|x) || p(y)) ),  p(y) = E_x p(y|x),
 *         = exp( (1/n) sum_x sum_y p log p  -  sum_y p(y) log p(y) ).
 * All logarithms natural; 0 log 0 = 0. */
#include "gentrain/core.h"
#include "gentrain/eval.h"

#include <math.h>

void gt_class_hist_add(int64_t *counts, const float *logits, int n, int classes) {
    for (int i = 0; i < n; i++) {
        const float *l = logits + (size_t)i * classes;
        int best = 0;
        for (int c = 1; c < classes; c++)
            if (l[c] > l[best]) best = c;
        counts[best]++;
    }
}

/* sum_c p_c log(p_c / q_c) over p_c > 0; +inf when some q_c = 0 < p_c */
static double kl(const double *p, const double *q, int n) {
    double s = 0.0;
    for (int c = 0; c < n; c++) {
        if (p[c] <= 0) continue;
        if (q[c] <= 0) return INFINITY;
        s += p[c] * log(p[c] / q[c]);
    }
    return s;
}

gt_class_stats gt_class_hist_compare(const int64_t *gen_counts, const int64_t *data_counts, int classes) {
    double n_gen = 0, n_data = 0;
    for (int c = 0; c < classes; c++) {
        n_gen += (double)gen_counts[c];
        n_data += (double)data_counts[c];
    }
    GT_ASSERT(n_gen > 0 && n_data > 0, "gt_class_hist_compare: empty histogram (%.0f generated, %.0f data)", n_gen,
              n_data);
    double *p = gt_alloc((size_t)classes * sizeof(double)), *q = gt_alloc((size_t)classes * sizeof(double));
    gt_class_stats st = {.classes = classes};
    for (int c = 0; c < classes; c++) {
        p[c] = (double)gen_counts[c] / n_gen;
        q[c] = (double)data_counts[c] / n_data;
        if (gen_counts[c] > 0) {
            st.covered++;
            st.entropy -= p[c] * log(p[c]);
        }
        st.tv += 0.5 * fabs(p[c] - q[c]);
    }
    st.kl_gen_data = kl(p, q, classes);
    st.kl_data_gen = kl(q, p, classes);
    gt_free(q);
    gt_free(p);
    return st;
}

void gt_class_score_add(double *acc, const float *logits, int n, int classes) {
    double *sum_p = acc + 2;
    double *p = gt_alloc((size_t)classes * sizeof(double));
    for (int i = 0; i < n; i++) {
        const float *l = logits + (size_t)i * classes;
        double mx = l[0];
        for (int c = 1; c < classes; c++) mx = l[c] > mx ? l[c] : mx;
        double z = 0.0;
        for (int c = 0; c < classes; c++) z += (p[c] = exp(l[c] - mx));
        double logz = log(z), plogp = 0.0;
        for (int c = 0; c < classes; c++) {
            double logp = l[c] - mx - logz;
            p[c] /= z;
            plogp += p[c] * logp; /* p = 0 only on underflow, where p logp -> 0 */
            sum_p[c] += p[c];
        }
        acc[1] += plogp;
    }
    acc[0] += n;
    gt_free(p);
}

double gt_class_score(const double *acc, int classes) {
    double n = acc[0];
    GT_ASSERT(n > 0, "gt_class_score: no samples");
    double marginal = 0.0; /* sum_y p(y) log p(y) */
    for (int c = 0; c < classes; c++) {
        double py = acc[2 + c] / n;
        if (py > 0) marginal += py * log(py);
    }
    return exp(acc[1] / n - marginal);
}
