/* Shared by src/eval only: pairwise squared distances in tiles. */
#ifndef GENTRAIN_EVAL_INTERNAL_H
#define GENTRAIN_EVAL_INTERNAL_H

#include <math.h>
#include <stddef.h>

/* Tile sizes: a query block of TILE_Q rows against a reference block of
 * TILE_R rows, i.e. a TILE_Q x TILE_R float tile (2 MB); a set against
 * itself uses square TILE_S x TILE_S tiles (4 MB, and 4 MB more for the
 * transposed tile). */
#define GT_EVAL_TILE_Q 256
#define GT_EVAL_TILE_R 2048
#define GT_EVAL_TILE_S 1024

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

/* Calls fn on tiles that together hold every pair (query row in
 * [first,last) of q [*,dim], row of ref [n_ref,dim]) exactly once. The
 * order of the tiles is unspecified: consumers must not depend on it. */
void gt_dist_tiles(const float *q, int first, int last, const float *ref, int n_ref, int dim, gt_dist_tile_fn fn,
                   void *ctx);
/* The same for a set against itself (query rows [first,last) of x [n,dim]
 * against all of x): pairs with both rows in the range are computed once
 * and handed over twice, as a tile and as its transpose. */
void gt_dist_tiles_self(const float *x, int first, int last, int n, int dim, gt_dist_tile_fn fn, void *ctx);

/* Exact squared distance (double) and the distance as the metrics use it:
 * float(sqrt(exact)), the same function for radii and for queries, so that
 * a point at exactly the radius is inside. */
double gt_dist2_exact(const float *a, const float *b, int dim);
static inline float gt_dist_exact(const float *a, const float *b, int dim) {
    double d2 = gt_dist2_exact(a, b, dim);
    return (float)sqrt(d2);
}

/* A bound on |approximate - exact| squared distance of a pair with squared
 * (moved) norms qn, rn is gt_dist2_slack_coef(dim) * (qn + rn): float dot
 * products of length dim err by at most about dim * 2^-24 ||q|| ||r|| <=
 * dim * 2^-24 (qn + rn) / 2; moving the rows and the sums add a few more
 * roundings. Comparisons closer than this are redone exactly. */
static inline float gt_dist2_slack_coef(int dim) { return (float)(dim + 8) * 0x1p-24f; }

#endif
