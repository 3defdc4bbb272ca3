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
 * so both sides are first moved by the mean of the reference rows, block by
 * block (copies of one query block and one reference block at a time). */
typedef struct {
    float *centre;  /* [dim] mean of the reference rows */
    float *norm2;   /* [n_ref] squared norms of the moved reference rows */
    float norm2_max;
} ref_info;

static void ref_info_init(ref_info *ri, const float *ref, int n_ref, int dim) {
    ri->centre = gt_alloc_floats(dim);
    ri->norm2 = gt_alloc_floats(n_ref);
    double *acc = gt_alloc((size_t)dim * sizeof(double));
    for (int j = 0; j < n_ref; j++)
        for (int k = 0; k < dim; k++) acc[k] += ref[(size_t)j * dim + k];
    for (int k = 0; k < dim; k++) ri->centre[k] = (float)(acc[k] / n_ref);
    gt_free(acc);
    ri->norm2_max = 0.0f;
    for (int j = 0; j < n_ref; j++) {
        double s = 0.0;
        for (int k = 0; k < dim; k++) {
            float c = ref[(size_t)j * dim + k] - ri->centre[k];
            s += (double)c * c;
        }
        ri->norm2[j] = (float)s;
        ri->norm2_max = ri->norm2[j] > ri->norm2_max ? ri->norm2[j] : ri->norm2_max;
    }
}

static void ref_info_free(ref_info *ri) {
    gt_free(ri->norm2);
    gt_free(ri->centre);
}

/* rows r0..r0+n-1 of x, moved by centre -> out [n,dim]; their squared norms -> norm2 [n] (or NULL) */
static void moved_rows(float *out, float *norm2, const float *x, int r0, int n, const float *centre, int dim) {
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)(r0 + i) * dim;
        float *oi = out + (size_t)i * dim;
        double s = 0.0;
        for (int k = 0; k < dim; k++) {
            oi[k] = xi[k] - centre[k];
            s += (double)oi[k] * oi[k];
        }
        if (norm2) norm2[i] = (float)s;
    }
}

/* qm [nq,dim], rm [nr,dim] moved rows with squared norms qn, rn -> d2 [nq,nr] (row stride ld) */
static void tile_d2(float *d2, int ld, const float *qm, const float *qn, int nq, const float *rm, const float *rn,
                    int nr, int dim) {
    gt_sgemm(0, 1, nq, nr, dim, -2.0f, qm, dim, rm, dim, 0.0f, d2, ld);
    for (int i = 0; i < nq; i++) {
        float *row = d2 + (size_t)i * ld;
        float q = qn[i];
        for (int j = 0; j < nr; j++) {
            float v = row[j] + q + rn[j];
            row[j] = v > 0.0f ? v : 0.0f;
        }
    }
}

void gt_dist_tiles(const float *q, int first, int last, const float *ref, int n_ref, int dim, gt_dist_tile_fn fn,
                   void *ctx) {
    GT_ASSERT(0 <= first && first <= last && n_ref >= 0 && dim > 0, "gt_dist_tiles: bad range [%d,%d) n_ref %d dim %d",
              first, last, n_ref, dim);
    if (first == last || n_ref == 0) return;
    ref_info ri;
    ref_info_init(&ri, ref, n_ref, dim);
    float *q_norm2 = gt_alloc_floats(GT_EVAL_TILE_Q);
    float *q_rows = gt_alloc_floats((size_t)GT_EVAL_TILE_Q * dim);
    float *r_rows = gt_alloc_floats((size_t)GT_EVAL_TILE_R * dim);
    float *d2 = gt_alloc_floats((size_t)GT_EVAL_TILE_Q * GT_EVAL_TILE_R);
    for (int q0 = first; q0 < last; q0 += GT_EVAL_TILE_Q) {
        int nq = last - q0 < GT_EVAL_TILE_Q ? last - q0 : GT_EVAL_TILE_Q;
        moved_rows(q_rows, q_norm2, q, q0, nq, ri.centre, dim);
        for (int r0 = 0; r0 < n_ref; r0 += GT_EVAL_TILE_R) {
            int nr = n_ref - r0 < GT_EVAL_TILE_R ? n_ref - r0 : GT_EVAL_TILE_R;
            moved_rows(r_rows, NULL, ref, r0, nr, ri.centre, dim);
            tile_d2(d2, nr, q_rows, q_norm2, nq, r_rows, ri.norm2 + r0, nr, dim);
            gt_dist_tile t = {d2, nr, q0, nq, r0, nr, q_norm2, ri.norm2 + r0, ri.norm2_max};
            fn(&t, ctx);
        }
    }
    gt_free(d2);
    gt_free(r_rows);
    gt_free(q_rows);
    gt_free(q_norm2);
    ref_info_free(&ri);
}

/* a [n,m] (row stride lda) -> at [m,n] (row stride ldt), in 16 x 16 blocks */
static void transpose(float *at, int ldt, const float *a, int lda, int n, int m) {
    for (int i0 = 0; i0 < n; i0 += 16)
        for (int j0 = 0; j0 < m; j0 += 16)
            for (int i = i0; i < n && i < i0 + 16; i++)
                for (int j = j0; j < m && j < j0 + 16; j++) at[(size_t)j * ldt + i] = a[(size_t)i * lda + j];
}

void gt_dist_tiles_self(const float *x, int first, int last, int n, int dim, gt_dist_tile_fn fn, void *ctx) {
    GT_ASSERT(0 <= first && first <= last && last <= n && dim > 0, "gt_dist_tiles_self: bad range [%d,%d) of %d",
              first, last, n);
    if (first == last) return;
    /* tiles S x S with a row stride that is not a power of two (a
     * transpose with a 4 KB stride would thrash the cache's sets) */
    enum { S = GT_EVAL_TILE_S, LD = GT_EVAL_TILE_S + 16 };
    ref_info ri;
    ref_info_init(&ri, x, n, dim);
    const float *norm2 = ri.norm2;
    float *a = gt_alloc_floats((size_t)S * dim), *b = gt_alloc_floats((size_t)S * dim);
    float *d2 = gt_alloc_floats((size_t)S * LD), *d2t = gt_alloc_floats((size_t)S * LD);
    for (int i0 = first; i0 < last; i0 += S) {
        int ni = last - i0 < S ? last - i0 : S;
        moved_rows(a, NULL, x, i0, ni, ri.centre, dim);
        /* blocks of the range from this one on: each pair once, both ways */
        for (int j0 = i0; j0 < last; j0 += S) {
            int nj = last - j0 < S ? last - j0 : S;
            const float *rows = a;
            if (j0 != i0) {
                moved_rows(b, NULL, x, j0, nj, ri.centre, dim);
                rows = b;
            }
            tile_d2(d2, LD, a, norm2 + i0, ni, rows, norm2 + j0, nj, dim);
            gt_dist_tile t = {d2, LD, i0, ni, j0, nj, norm2 + i0, norm2 + j0, ri.norm2_max};
            fn(&t, ctx);
            if (j0 != i0) {
                transpose(d2t, LD, d2, LD, ni, nj);
                gt_dist_tile tt = {d2t, LD, j0, nj, i0, ni, norm2 + j0, norm2 + i0, ri.norm2_max};
                fn(&tt, ctx);
            }
        }
        /* rows outside the range: one way only */
        for (int part = 0; part < 2; part++) {
            int lo = part ? last : 0, hi = part ? n : first;
            for (int j0 = lo; j0 < hi; j0 += S) {
                int nj = hi - j0 < S ? hi - j0 : S;
                moved_rows(b, NULL, x, j0, nj, ri.centre, dim);
                tile_d2(d2, LD, a, norm2 + i0, ni, b, norm2 + j0, nj, dim);
                gt_dist_tile t = {d2, LD, i0, ni, j0, nj, norm2 + i0, norm2 + j0, ri.norm2_max};
                fn(&t, ctx);
            }
        }
    }
    gt_free(d2t);
    gt_free(d2);
    gt_free(b);
    gt_free(a);
    ref_info_free(&ri);
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
        float margin = 2.0f * gt_dist2_slack_coef(s->dim) * (t->q_norm2[i] + t->r_norm2_max);
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
    if (exclude_self && q == ref)
        gt_dist_tiles_self(q, first, last, n_ref, dim, knn_tile, &s);
    else
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
