/* Shared by src/eval only: pairwise squared distances in tiles. */
#ifndef GENTRAIN_EVAL_INTERNAL_H
#define GENTRAIN_EVAL_INTERNAL_H

#include <math.h>
#include <stddef.h>

/* Tile sizes: a query block of TILE_Q rows against a reference block of
 * TILE_R rows, i.e. a TILE_Q x TILE_R float tile (2 MB). */
#define GT_EVAL_TILE_Q 256
#define GT_EVAL_TILE_R 2048

/* One tile of approximate squared distances (float GEMM on the rows moved
 * by a common centre c): d2[i*ld + j] = ||q-c||^2 + ||r-c||^2 - 2 (q-c).(r-c),
 * clamped at 0; q_norm2, r_norm2 are the squared norms of the moved rows. */
typedef struct {
    const float *d2;
    int ld;
    int q0, nq;           /* global query rows q0 .. q0+nq-1 */
    int r0, nr;           /* reference rows r0 .. r0+nr-1 */
    const float *q_norm2; /* [nq] */
    const float *r_norm2; /* [nr] */
    float r_norm2_max;    /* the largest squared norm of all reference rows */
} gt_dist_tile;
typedef void (*gt_dist_tile_fn)(const gt_dist_tile *tile, void *ctx);

/* Calls fn on every tile of query rows [first,last) of q [*,dim] against all
 * rows of ref [n_ref,dim]: query blocks in order, within a block the
 * reference blocks in order. */
void gt_dist_tiles(const float *q, int first, int last, const float *ref, int n_ref, int dim, gt_dist_tile_fn fn,
                   void *ctx);

/* Exact squared distance (double) and the distance as the metrics use it:
 * float(sqrt(exact)), the same function for radii and for queries, so that
 * a point at exactly the radius is inside. */
double gt_dist2_exact(const float *a, const float *b, int dim);
static inline float gt_dist_exact(const float *a, const float *b, int dim) {
    double d2 = gt_dist2_exact(a, b, dim);
    return (float)sqrt(d2);
}

/* A bound on |approximate - exact| squared distance of a pair with squared
 * norms qn, rn: float dot products of length dim have a relative error of
 * at most about dim * 2^-24 of ||q|| ||r|| <= (qn + rn) / 2; a few more
 * roundings for the sums. Comparisons closer than this are redone exactly. */
static inline float gt_dist2_slack(float qn, float rn, int dim) {
    return (float)(dim + 8) * 0x1p-24f * (qn + rn);
}

/* Is the query at tile entry (i, j) within distance r of the reference?
 * Decided on the approximate value unless it is within the slack of r^2. */
static inline int gt_tile_within(const gt_dist_tile *t, int i, int j, float r, const float *q, const float *ref,
                                 int dim) {
    float d2 = t->d2[(size_t)i * t->ld + j];
    float r2 = r * r;
    float slack = gt_dist2_slack(t->q_norm2[i], t->r_norm2[j], dim) + 0x1p-22f * r2;
    if (d2 < r2 - slack) return 1;
    if (d2 > r2 + slack) return 0;
    return gt_dist_exact(q + (size_t)(t->q0 + i) * dim, ref + (size_t)(t->r0 + j) * dim, dim) <= r;
}

#endif
