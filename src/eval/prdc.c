/* Improved precision and recall (Kynkäänniemi, Karras, Laine, Lehtinen,
 * Aila, "Improved Precision and Recall Metric for Assessing Generative
 * Models", NeurIPS 2019; k = 3) and density and coverage (Naeem, Oh, Uh,
 * Choi, Yoo, "Reliable Fidelity and Diversity Metrics for Generative
 * Models", ICML 2020; k = 5).
 *
 * With NND_k(x) the distance from x to its k-th nearest other point of its
 * own set, for real X_1..X_N, fake Y_1..Y_M:
 *   precision = (1/M) sum_j 1[Y_j in U_i B(X_i, NND_3(X_i))]
 *   recall    = (1/N) sum_i 1[X_i in U_j B(Y_j, NND_3(Y_j))]
 *   density   = 1/(k M) sum_j sum_i 1[Y_j in B°(X_i, NND_5(X_i))]
 *   coverage  = (1/N) sum_i 1[exists j: Y_j in B°(X_i, NND_5(X_i))]
 * B is the closed ball (dist <= r) as in Kynkäänniemi et al.'s code, B° the
 * open ball (dist < r) as in Naeem et al.'s code (the prdc package); the
 * difference shows only for points exactly at a radius, e.g. identical
 * sets: precision = recall = coverage = 1 and density = 1 exactly (each ball
 * holds its centre and k - 1 others; the k-th lies on the boundary).
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

/* Ball membership on a tile, decided on the approximate squared distances
 * unless they are within the error bound of r^2 (then exactly). Entry j of
 * a tile row is surely inside when d2 < lo[j] + lo_add, surely outside when
 * d2 > hi[j] + hi_add; the bounds split into a per-column part (the ball's
 * r^2, its column's share of the slack) and a per-row part (the query's
 * share), so that the common case is a vectorizable count. */
typedef struct {
    const float *q, *ref; /* the query rows and the reference rows (global indexing) */
    int dim;
    const float *radius;  /* per tile column (ball j), or NULL: every ball has radius r */
    float r;
    int open;             /* open balls: dist < r; closed: dist <= r */
} exact_ctx;

static int count_inside(const float *d2, int j0, int j1, const float *lo, float lo_add, const float *hi, float hi_add,
                        int q_row, int r0, const exact_ctx *x) {
    int sure = 0, maybe = 0;
    for (int j = j0; j < j1; j++) {
        sure += d2[j] < lo[j] + lo_add;
        maybe += d2[j] <= hi[j] + hi_add;
    }
    if (maybe > sure) { /* borderline entries: exactly */
        const float *qr = x->q + (size_t)q_row * x->dim;
        for (int j = j0; j < j1; j++)
            if (!(d2[j] < lo[j] + lo_add) && d2[j] <= hi[j] + hi_add) {
                float d = gt_dist_exact(qr, x->ref + (size_t)(r0 + j) * x->dim, x->dim);
                float r = x->radius ? x->radius[j] : x->r;
                sure += x->open ? d < r : d <= r;
            }
    }
    return sure;
}

/* per tile column j with radius[j] and moved squared norm rn[j]: r^2 -+ (coef rn + 2^-22 r^2) */
static void column_bounds(float *lo, float *hi, const float *radius, const float *rn, int nr, float coef) {
    for (int j = 0; j < nr; j++) {
        float r2 = radius[j] * radius[j];
        float e = coef * rn[j] + 0x1p-22f * r2;
        lo[j] = r2 - e;
        hi[j] = r2 + e;
    }
}

#define ANY_BLOCK 256 /* "inside any ball" stops after the first block with a hit */
#define BOUNDS (GT_EVAL_TILE_R > GT_EVAL_TILE_S ? GT_EVAL_TILE_R : GT_EVAL_TILE_S)

/* fake queries against real balls */
typedef struct {
    const float *fake, *real, *radius_pr, *radius_dc;
    int dim, first;
    unsigned char *in_pr;            /* [rows] */
    int64_t *balls_dc;               /* [rows] */
    float *lo_pr, *hi_pr, *lo_dc, *hi_dc; /* [BOUNDS] per tile column */
} fake_state;

static void fake_tile(const gt_dist_tile *t, void *ctx) {
    fake_state *s = ctx;
    float coef = gt_dist2_slack_coef(s->dim);
    column_bounds(s->lo_pr, s->hi_pr, s->radius_pr + t->r0, t->r_norm2, t->nr, coef);
    column_bounds(s->lo_dc, s->hi_dc, s->radius_dc + t->r0, t->r_norm2, t->nr, coef);
    exact_ctx x_pr = {s->fake, s->real, s->dim, s->radius_pr + t->r0, 0, 0};
    exact_ctx x_dc = {s->fake, s->real, s->dim, s->radius_dc + t->r0, 0, 1};
    for (int i = 0; i < t->nq; i++) {
        int row = t->q0 + i, r = row - s->first;
        const float *d = t->d2 + (size_t)i * t->ld;
        float cq = coef * t->q_norm2[i];
        s->balls_dc[r] += count_inside(d, 0, t->nr, s->lo_dc, -cq, s->hi_dc, cq, row, t->r0, &x_dc);
        for (int j0 = 0; j0 < t->nr && !s->in_pr[r]; j0 += ANY_BLOCK) {
            int j1 = t->nr - j0 < ANY_BLOCK ? t->nr : j0 + ANY_BLOCK;
            s->in_pr[r] = count_inside(d, j0, j1, s->lo_pr, -cq, s->hi_pr, cq, row, t->r0, &x_pr) > 0;
        }
    }
}

void gt_prdc_count_fake(gt_prdc_counts *c, const float *fake, int first, int last, const float *real, int n_real,
                        const float *real_radius_pr, const float *real_radius_dc, int dim) {
    int rows = last - first;
    if (rows <= 0) return;
    float *bounds = gt_alloc_floats(4 * BOUNDS);
    fake_state s = {fake, real, real_radius_pr, real_radius_dc, dim, first, gt_alloc((size_t)rows),
                    gt_alloc((size_t)rows * sizeof(int64_t)), bounds, bounds + BOUNDS, bounds + 2 * BOUNDS,
                    bounds + 3 * BOUNDS};
    gt_dist_tiles(fake, first, last, real, n_real, dim, fake_tile, &s);
    for (int r = 0; r < rows; r++) {
        c->fake_in_real += s.in_pr[r];
        c->fake_real_balls += s.balls_dc[r];
    }
    c->n_fake += rows;
    gt_free(bounds);
    gt_free(s.balls_dc);
    gt_free(s.in_pr);
}

/* real queries against fake balls (recall) and own balls holding fakes (coverage) */
typedef struct {
    const float *real, *fake, *real_radius_dc, *fake_radius_pr;
    int dim, first;
    unsigned char *in_fake, *covered; /* [rows] */
    float *lo_pr, *hi_pr;             /* [BOUNDS] per tile column: fake balls */
    float *minus_crn, *plus_crn;      /* [BOUNDS] per tile column: -+ its share of the slack */
} real_state;

static void real_tile(const gt_dist_tile *t, void *ctx) {
    real_state *s = ctx;
    float coef = gt_dist2_slack_coef(s->dim);
    column_bounds(s->lo_pr, s->hi_pr, s->fake_radius_pr + t->r0, t->r_norm2, t->nr, coef);
    for (int j = 0; j < t->nr; j++) {
        s->plus_crn[j] = coef * t->r_norm2[j];
        s->minus_crn[j] = -s->plus_crn[j];
    }
    exact_ctx x_pr = {s->real, s->fake, s->dim, s->fake_radius_pr + t->r0, 0, 0};
    for (int i = 0; i < t->nq; i++) {
        int row = t->q0 + i, r = row - s->first;
        const float *d = t->d2 + (size_t)i * t->ld;
        float cq = coef * t->q_norm2[i];
        float own = s->real_radius_dc[row], own2 = own * own, e = cq + 0x1p-22f * own2;
        exact_ctx x_own = {s->real, s->fake, s->dim, NULL, own, 1};
        for (int j0 = 0; j0 < t->nr && !(s->in_fake[r] && s->covered[r]); j0 += ANY_BLOCK) {
            int j1 = t->nr - j0 < ANY_BLOCK ? t->nr : j0 + ANY_BLOCK;
            if (!s->in_fake[r])
                s->in_fake[r] = count_inside(d, j0, j1, s->lo_pr, -cq, s->hi_pr, cq, row, t->r0, &x_pr) > 0;
            if (!s->covered[r])
                s->covered[r] =
                    count_inside(d, j0, j1, s->minus_crn, own2 - e, s->plus_crn, own2 + e, row, t->r0, &x_own) > 0;
        }
    }
}

void gt_prdc_count_real(gt_prdc_counts *c, const float *real, int first, int last, const float *real_radius_dc,
                        const float *fake, int n_fake, const float *fake_radius_pr, int dim) {
    int rows = last - first;
    if (rows <= 0) return;
    float *bounds = gt_alloc_floats(4 * BOUNDS);
    real_state s = {real, fake, real_radius_dc, fake_radius_pr, dim, first, gt_alloc((size_t)rows),
                    gt_alloc((size_t)rows), bounds, bounds + BOUNDS, bounds + 2 * BOUNDS, bounds + 3 * BOUNDS};
    gt_dist_tiles(real, first, last, fake, n_fake, dim, real_tile, &s);
    for (int r = 0; r < rows; r++) {
        c->real_in_fake += s.in_fake[r];
        c->real_covered += s.covered[r];
    }
    c->n_real += rows;
    gt_free(bounds);
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
