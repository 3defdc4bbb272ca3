/* Improved precision and recall (Kynkäänniemi, Karras, Laine, Lehtinen,
 * Aila, "Improved Precision and Recall Metric for Assessing Generative
 * Models", NeurIPS 2019; k = 3) and density and coverage (Naeem, Oh, Uh,
 * Choi, Yoo, "Reliable Fidelity and Diversity Metrics for Generative
 * Models", ICML 2020; k = 5).
 *
 * With B(x, r) the closed ball and NND_k(x) the distance from x to its k-th
 * nearest other point of its own set, for real X_1..X_N, fake Y_1..Y_M:
 *   precision = (1/M) sum_j 1[Y_j in U_i B(X_i, NND_3(X_i))]
 *   recall    = (1/N) sum_i 1[X_i in U_j B(Y_j, NND_3(Y_j))]
 *   density   = 1/(k M) sum_j sum_i 1[Y_j in B(X_i, NND_5(X_i))]
 *   coverage  = (1/N) sum_i 1[exists j: Y_j in B(X_i, NND_5(X_i))]
 * Distances are float(sqrt(exact double squared distance)), the same
 * function for the radii and the memberships. */
#include "gentrain/core.h"
#include "gentrain/eval.h"
#include "internal.h"

#include <string.h>

void gt_prdc_radii(float *radius_pr, float *radius_dc, int k_pr, int k_dc, const float *x, int n, int dim, int first,
                   int last) {
    int rows = last - first;
    if (rows <= 0) return;
    int k = k_pr > k_dc ? k_pr : k_dc;
    float *dist = gt_alloc_floats((size_t)rows * k);
    gt_knn(dist, NULL, k, x, first, last, x, n, dim, 1);
    for (int r = 0; r < rows; r++) {
        if (radius_pr) radius_pr[r] = dist[(size_t)r * k + k_pr - 1];
        if (radius_dc) radius_dc[r] = dist[(size_t)r * k + k_dc - 1];
    }
    gt_free(dist);
}

/* fake queries against real balls */
typedef struct {
    const float *fake, *real, *radius_pr, *radius_dc;
    int dim, first;
    unsigned char *in_pr; /* [rows] */
    int64_t *balls_dc;    /* [rows] */
} fake_state;

static void fake_tile(const gt_dist_tile *t, void *ctx) {
    fake_state *s = ctx;
    for (int i = 0; i < t->nq; i++) {
        int r = t->q0 + i - s->first;
        int64_t balls = 0;
        int in = s->in_pr[r];
        for (int j = 0; j < t->nr; j++) {
            int c = t->r0 + j;
            balls += gt_tile_within(t, i, j, s->radius_dc[c], s->fake, s->real, s->dim);
            if (!in) in = gt_tile_within(t, i, j, s->radius_pr[c], s->fake, s->real, s->dim);
        }
        s->in_pr[r] = (unsigned char)in;
        s->balls_dc[r] += balls;
    }
}

void gt_prdc_count_fake(gt_prdc_counts *c, const float *fake, int first, int last, const float *real, int n_real,
                        const float *real_radius_pr, const float *real_radius_dc, int dim) {
    int rows = last - first;
    if (rows <= 0) return;
    fake_state s = {fake, real, real_radius_pr, real_radius_dc, dim, first, gt_alloc((size_t)rows),
                    gt_alloc((size_t)rows * sizeof(int64_t))};
    gt_dist_tiles(fake, first, last, real, n_real, dim, fake_tile, &s);
    for (int r = 0; r < rows; r++) {
        c->fake_in_real += s.in_pr[r];
        c->fake_real_balls += s.balls_dc[r];
    }
    c->n_fake += rows;
    gt_free(s.balls_dc);
    gt_free(s.in_pr);
}

/* real queries against fake balls (recall) and own balls holding fakes (coverage) */
typedef struct {
    const float *real, *fake, *real_radius_dc, *fake_radius_pr;
    int dim, first;
    unsigned char *in_fake, *covered; /* [rows] */
} real_state;

static void real_tile(const gt_dist_tile *t, void *ctx) {
    real_state *s = ctx;
    for (int i = 0; i < t->nq; i++) {
        int r = t->q0 + i - s->first;
        int in = s->in_fake[r], cov = s->covered[r];
        float own = s->real_radius_dc[t->q0 + i];
        for (int j = 0; j < t->nr && !(in && cov); j++) {
            if (!in) in = gt_tile_within(t, i, j, s->fake_radius_pr[t->r0 + j], s->real, s->fake, s->dim);
            if (!cov) cov = gt_tile_within(t, i, j, own, s->real, s->fake, s->dim);
        }
        s->in_fake[r] = (unsigned char)in;
        s->covered[r] = (unsigned char)cov;
    }
}

void gt_prdc_count_real(gt_prdc_counts *c, const float *real, int first, int last, const float *real_radius_dc,
                        const float *fake, int n_fake, const float *fake_radius_pr, int dim) {
    int rows = last - first;
    if (rows <= 0) return;
    real_state s = {real, fake, real_radius_dc, fake_radius_pr, dim, first, gt_alloc((size_t)rows),
                    gt_alloc((size_t)rows)};
    gt_dist_tiles(real, first, last, fake, n_fake, dim, real_tile, &s);
    for (int r = 0; r < rows; r++) {
        c->real_in_fake += s.in_fake[r];
        c->real_covered += s.covered[r];
    }
    c->n_real += rows;
    gt_free(s.covered);
    gt_free(s.in_fake);
}

gt_prdc gt_prdc_finish(const gt_prdc_counts *c, int k_dc) {
    GT_ASSERT(c->n_fake > 0 && c->n_real > 0, "gt_prdc_finish: %lld fake and %lld real queries counted",
              (long long)c->n_fake, (long long)c->n_real);
    return (gt_prdc){
        .precision = (double)c->fake_in_real / (double)c->n_fake,
        .recall = (double)c->real_in_fake / (double)c->n_real,
        .density = (double)c->fake_real_balls / ((double)k_dc * (double)c->n_fake),
        .coverage = (double)c->real_covered / (double)c->n_real,
    };
}

gt_prdc gt_prdc_compute(const float *real, int n_real, const float *fake, int n_fake, int dim, int k_pr, int k_dc) {
    float *real_pr = gt_alloc_floats(n_real), *real_dc = gt_alloc_floats(n_real);
    float *fake_pr = gt_alloc_floats(n_fake);
    gt_prdc_radii(real_pr, real_dc, k_pr, k_dc, real, n_real, dim, 0, n_real);
    gt_prdc_radii(fake_pr, NULL, k_pr, k_pr, fake, n_fake, dim, 0, n_fake);
    gt_prdc_counts c;
    memset(&c, 0, sizeof c);
    gt_prdc_count_fake(&c, fake, 0, n_fake, real, n_real, real_pr, real_dc, dim);
    gt_prdc_count_real(&c, real, 0, n_real, real_dc, fake, n_fake, fake_pr, dim);
    gt_free(fake_pr);
    gt_free(real_dc);
    gt_free(real_pr);
    return gt_prdc_finish(&c, k_dc);
}
