/* Mode coverage on 2-D Gaussian mixtures (ring of 8, grid of 25), as in the
 * GAN literature since Metz et al. (unrolled GANs, 2017) and Srivastava et
 * al. ("VEEGAN", NeurIPS 2017):
 *  - a sample is high quality when it lies within 3 standard deviations of
 *    its nearest mixture centre (GT_MIXTURE_QUALITY_STD);
 *  - a mode is covered when at least min_count high-quality samples have it
 *    as their nearest centre. VEEGAN's convention is min_count = 1 (a mode
 *    counts as captured when some high-quality sample falls to it); PacGAN
 *    (Lin et al. 2018) asks for 20 of 2500 samples on the grid. The caller
 *    chooses; the tests use both;
 *  - the reverse KL, KL(p_hq || uniform) = log(modes) - H(p_hq), where
 *    p_hq is the histogram of the high-quality samples over their nearest
 *    modes: 0 when they spread evenly, log(modes) when all fall to one
 *    (as reported by e.g. Dieng et al. 2019, "Prescribed GANs"). */
#include "gentrain/core.h"
#include "gentrain/eval.h"

#include <math.h>

void gt_mixture_count(int64_t *counts, const float *x, int n, const float *centres, int modes, double std) {
    GT_ASSERT(modes >= 1 && std > 0, "gt_mixture_count: %d modes, std %g", modes, std);
    double limit2 = (GT_MIXTURE_QUALITY_STD * std) * (GT_MIXTURE_QUALITY_STD * std);
    for (int i = 0; i < n; i++) {
        double px = x[2 * i], py = x[2 * i + 1];
        int best = 0;
        double best_d2 = INFINITY;
        for (int m = 0; m < modes; m++) {
            double dx = px - centres[2 * m], dy = py - centres[2 * m + 1];
            double d2 = dx * dx + dy * dy;
            if (d2 < best_d2) {
                best_d2 = d2;
                best = m;
            }
        }
        counts[0]++;
        if (best_d2 <= limit2) {
            counts[1]++;
            counts[2 + best]++;
        }
    }
}

gt_mixture_stats gt_mixture_summary(const int64_t *counts, int modes, int64_t min_count) {
    GT_ASSERT(counts[0] > 0, "gt_mixture_summary: no samples");
    GT_ASSERT(min_count >= 1, "gt_mixture_summary: min_count %lld", (long long)min_count);
    gt_mixture_stats st = {.modes = modes};
    int64_t hq = counts[1];
    st.high_quality_share = (double)hq / (double)counts[0];
    double entropy = 0.0;
    for (int m = 0; m < modes; m++) {
        int64_t c = counts[2 + m];
        if (c >= min_count) st.modes_covered++;
        if (c > 0) {
            double p = (double)c / (double)hq;
            entropy -= p * log(p);
        }
    }
    st.reverse_kl = hq > 0 ? fmax(0.0, log((double)modes) - entropy) : NAN; /* >= 0; rounding aside */
    return st;
}
