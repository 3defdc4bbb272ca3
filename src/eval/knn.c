/* Nearest neighbours through GEMM: squared distances
 * ||q||^2 + ||r||^2 - 2 q.r in tiles of GT_EVAL_TILE_Q x GT_EVAL_TILE_R
 * floats (2 MB), so memory stays bounded whatever the set sizes; the
 * candidates' distances are then recomputed exactly in double. */
#include "gentrain/core.h"
#include "gentrain/eval.h"
#include "internal.h"

#include <math.h>
#include <string.h>

double gt_dist2_exact(const float *a, const float *b, int dim) {
    double s = 0.0;
    for (int k = 0; k < dim; k++) {
        double t = (double)a[k] - (double)b[k];
        s += t * t;
    }
    return s;
}

/* The GEMM form loses precision when the points are far from the origin
 * compared with their distances (its error scales with ||q||^2 + ||r||^2),
 * so both sides are first moved by the mean of the reference rows, tile by
 * tile (copies of one query tile and one reference tile at a time). */
void gt_dist_tiles(const float *q, int first, int last, const float *ref, int n_ref, int dim, gt_dist_tile_fn fn,
                   void *ctx) {
    GT_ASSERT(0 <= first && first <= last && n_ref >= 0 && dim > 0, "gt_dist_tiles: bad range [%d,%d) n_ref %d dim %d",
              first, last, n_ref, dim);
    if (first == last || n_ref == 0) return;
    float *centre = gt_alloc_floats(dim);
    double *acc = gt_alloc((size_t)dim * sizeof(double));
    for (int j = 0; j < n_ref; j++)
        for (int k = 0; k < dim; k++) acc[k] += ref[(size_t)j * dim + k];
    for (int k = 0; k < dim; k++) centre[k] = (float)(acc[k] / n_ref);
    gt_free(acc);
    float *r_norm2 = gt_alloc_floats(n_ref);
    float *q_norm2 = gt_alloc_floats(GT_EVAL_TILE_Q);
    float *q_tile = gt_alloc_floats((size_t)GT_EVAL_TILE_Q * dim);
    float *r_tile = gt_alloc_floats((size_t)GT_EVAL_TILE_R * dim);
    float *d2 = gt_alloc_floats((size_t)GT_EVAL_TILE_Q * GT_EVAL_TILE_R);
    float r_norm2_max = 0.0f;
    for (int j = 0; j < n_ref; j++) {
        double s = 0.0;
        for (int k = 0; k < dim; k++) {
            float c = ref[(size_t)j * dim + k] - centre[k];
            s += (double)c * c;
        }
        r_norm2[j] = (float)s;
        r_norm2_max = r_norm2[j] > r_norm2_max ? r_norm2[j] : r_norm2_max;
    }
    for (int q0 = first; q0 < last; q0 += GT_EVAL_TILE_Q) {
        int nq = last - q0 < GT_EVAL_TILE_Q ? last - q0 : GT_EVAL_TILE_Q;
        for (int i = 0; i < nq; i++) {
            const float *qi = q + (size_t)(q0 + i) * dim;
            float *ci = q_tile + (size_t)i * dim;
            double s = 0.0;
            for (int k = 0; k < dim; k++) {
                ci[k] = qi[k] - centre[k];
                s += (double)ci[k] * ci[k];
            }
            q_norm2[i] = (float)s;
        }
        for (int r0 = 0; r0 < n_ref; r0 += GT_EVAL_TILE_R) {
            int nr = n_ref - r0 < GT_EVAL_TILE_R ? n_ref - r0 : GT_EVAL_TILE_R;
            for (int j = 0; j < nr; j++) {
                const float *rj = ref + (size_t)(r0 + j) * dim;
                float *cj = r_tile + (size_t)j * dim;
                for (int k = 0; k < dim; k++) cj[k] = rj[k] - centre[k];
            }
            /* d2 [nq,nr] = -2 q r^T, then + ||q||^2 + ||r||^2 */
            gt_sgemm(0, 1, nq, nr, dim, -2.0f, q_tile, dim, r_tile, dim, 0.0f, d2, nr);
            const float *rn = r_norm2 + r0;
            for (int i = 0; i < nq; i++) {
                float *row = d2 + (size_t)i * nr;
                float qn = q_norm2[i];
                for (int j = 0; j < nr; j++) {
                    float v = row[j] + qn + rn[j];
                    row[j] = v > 0.0f ? v : 0.0f;
                }
            }
            gt_dist_tile t = {d2, nr, q0, nq, r0, nr, q_norm2, rn, r_norm2_max};
            fn(&t, ctx);
        }
    }
    gt_free(d2);
    gt_free(r_tile);
    gt_free(q_tile);
    gt_free(q_norm2);
    gt_free(r_norm2);
    gt_free(centre);
}

/* ---- k nearest. Per query, a sorted list of candidates (approximate d2,
 * index): every reference whose approximate d2 is within a margin of the
 * current k-th smallest. The margin is twice the largest error bound of the
 * query's pairs, so the true k nearest are always among the candidates
 * (a true neighbour's approximate value is at most E_k + s, and the k-th
 * smallest approximate value at least E_k - s, E_k the true k-th distance).
 * Their exact distances then decide. Usually the list holds k entries; if
 * near-ties overflow it, that query is searched again exactly. */
#define KNN_EXTRA 24

typedef struct {
    int k, cap, first, exclude_self, dim;
    float *cand_d2;          /* [rows,cap] ascending */
    int *cand_idx;           /* [rows,cap] */
    int *count;              /* [rows] */
    unsigned char *overflow; /* [rows] */
} knn_state;

static void knn_tile(const gt_dist_tile *t, void *ctx) {
    knn_state *s = ctx;
    int k = s->k, cap = s->cap;
    for (int i = 0; i < t->nq; i++) {
        int row = t->q0 + i, r = row - s->first;
        float *cd = s->cand_d2 + (size_t)r * cap;
        int *ci = s->cand_idx + (size_t)r * cap;
        int n = s->count[r];
        float margin = 2.0f * gt_dist2_slack(t->q_norm2[i], t->r_norm2_max, s->dim);
        float limit = n >= k ? cd[k - 1] + margin : INFINITY;
        const float *d = t->d2 + (size_t)i * t->ld;
        int self = s->exclude_self ? row - t->r0 : -1; /* tile column of the query itself, if any */
        for (int j0 = 0; j0 < t->nr; j0 += 64) {
            int j1 = t->nr - j0 < 64 ? t->nr : j0 + 64;
            /* most blocks hold no candidate: count them branch-free first */
            int hits = 0;
            for (int j = j0; j < j1; j++) hits += d[j] <= limit;
            if (!hits) continue;
            for (int j = j0; j < j1; j++) {
                float v = d[j];
                if (!(v <= limit) || j == self) continue;
                if (n == cap) { /* full: the largest goes, and this query is redone exactly */
                    s->overflow[r] = 1;
                    if (v >= cd[cap - 1]) continue;
                    n--;
                }
                int p = n;
                while (p > 0 && cd[p - 1] > v) {
                    cd[p] = cd[p - 1];
                    ci[p] = ci[p - 1];
                    p--;
                }
                cd[p] = v;
                ci[p] = t->r0 + j;
                n++;
                if (n >= k) {
                    limit = cd[k - 1] + margin;
                    while (n > k && cd[n - 1] > limit) n--;
                }
            }
        }
        s->count[r] = n;
    }
}

/* keep the k best of (d2, idx) pairs in sorted arrays bd/bi of length *n (ties: lower index first) */
static void keep_best(double *bd, int *bi, int *n, int k, double d2, int idx) {
    if (*n == k && (d2 > bd[k - 1] || (d2 == bd[k - 1] && idx > bi[k - 1]))) return;
    int p = *n < k ? (*n)++ : k - 1;
    while (p > 0 && (bd[p - 1] > d2 || (bd[p - 1] == d2 && bi[p - 1] > idx))) {
        bd[p] = bd[p - 1];
        bi[p] = bi[p - 1];
        p--;
    }
    bd[p] = d2;
    bi[p] = idx;
}

void gt_knn(float *dist, int *index, int k, const float *q, int first, int last, const float *ref, int n_ref,
            int dim, int exclude_self) {
    GT_ASSERT(k >= 1 && k <= n_ref - (exclude_self ? 1 : 0), "gt_knn: k = %d neighbours of %d reference rows%s", k,
              n_ref, exclude_self ? " (excluding self)" : "");
    GT_ASSERT(!exclude_self || last <= n_ref, "gt_knn: exclude_self with query rows beyond the reference");
    int rows = last - first;
    if (rows <= 0) return;
    int cap = k + KNN_EXTRA;
    knn_state s = {k, cap, first, exclude_self, dim, gt_alloc_floats((size_t)rows * cap),
                   gt_alloc((size_t)rows * cap * sizeof(int)), gt_alloc((size_t)rows * sizeof(int)),
                   gt_alloc((size_t)rows)};
    gt_dist_tiles(q, first, last, ref, n_ref, dim, knn_tile, &s);
    double *bd = gt_alloc((size_t)k * sizeof(double));
    int *bi = gt_alloc((size_t)k * sizeof(int));
    for (int r = 0; r < rows; r++) {
        int row = first + r, n = 0;
        const float *qr = q + (size_t)row * dim;
        if (s.overflow[r]) { /* exact search over every reference row */
            for (int j = 0; j < n_ref; j++)
                if (!(exclude_self && j == row)) keep_best(bd, bi, &n, k, gt_dist2_exact(qr, ref + (size_t)j * dim, dim), j);
        } else {
            const int *ci = s.cand_idx + (size_t)r * cap;
            for (int c = 0; c < s.count[r]; c++) keep_best(bd, bi, &n, k, gt_dist2_exact(qr, ref + (size_t)ci[c] * dim, dim), ci[c]);
        }
        GT_ASSERT(n == k, "gt_knn: row %d has %d of %d neighbours", row, n, k);
        for (int j = 0; j < k; j++) {
            dist[(size_t)r * k + j] = (float)sqrt(bd[j]);
            if (index) index[(size_t)r * k + j] = bi[j];
        }
    }
    gt_free(bi);
    gt_free(bd);
    gt_free(s.overflow);
    gt_free(s.count);
    gt_free(s.cand_idx);
    gt_free(s.cand_d2);
}
