/* Evaluation metrics (src/eval): known answers, closed forms, brute-force
 * references, statistical properties (unbiasedness, convergence) and
 * splitting invariance. NumPy/SciPy parity is tests/eval_parity.sh. */
#include "gentrain/core.h"
#include "gentrain/eval.h"

#include "check.h"

#include <lapacke.h>
#include <string.h>

static uint64_t stream = 0;

/* x [n,dim] standard normal (a fresh stream per call) */
static void fill_normal(float *x, size_t n) { gt_rand_normal(x, n, 7, GT_PURPOSE(GT_RNG_TEST, 50), 0, stream++); }

/* x [n,dim] = z A + shift, z standard normal, A [dim,dim] given: correlated features */
static void correlated(float *x, int n, int dim, const double *A, double shift) {
    float *z = gt_alloc_floats((size_t)n * dim);
    fill_normal(z, (size_t)n * dim);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < dim; j++) {
            double s = shift;
            for (int k = 0; k < dim; k++) s += (double)z[(size_t)i * dim + k] * A[(size_t)k * dim + j];
            x[(size_t)i * dim + j] = (float)s;
        }
    gt_free(z);
}

static void random_matrix(double *A, int dim, double diag, double off) {
    float *r = gt_alloc_floats((size_t)dim * dim);
    fill_normal(r, (size_t)dim * dim);
    for (int i = 0; i < dim * dim; i++) A[i] = off * r[i];
    for (int i = 0; i < dim; i++) A[i * dim + i] += diag;
    gt_free(r);
}

/* Q [dim,dim] orthogonal: Gram-Schmidt (twice) on random rows */
static void random_orthogonal(double *Q, int dim) {
    random_matrix(Q, dim, 0.0, 1.0);
    for (int i = 0; i < dim; i++)
        for (int pass = 0; pass < 2; pass++) {
            double *qi = Q + (size_t)i * dim;
            for (int j = 0; j < i; j++) {
                double *qj = Q + (size_t)j * dim, dot = 0;
                for (int k = 0; k < dim; k++) dot += qi[k] * qj[k];
                for (int k = 0; k < dim; k++) qi[k] -= dot * qj[k];
            }
            double nrm = 0;
            for (int k = 0; k < dim; k++) nrm += qi[k] * qi[k];
            for (int k = 0; k < dim; k++) qi[k] /= sqrt(nrm);
        }
}

/* ---- FID ---------------------------------------------------------------- */

static void test_fid(void) {
    enum { D = 16, N = 3000 };
    double A[D * D];
    random_matrix(A, D, 1.0, 0.4);
    float *x = gt_alloc_floats((size_t)N * D);
    correlated(x, N, D, A, 0.5);

    gt_gauss_stats s, t;
    gt_gauss_stats_init(&s, D);
    gt_gauss_stats_add(&s, x, N);
    double mean[D], cov[D * D], tr = 0;
    gt_gauss_stats_moments(&s, mean, cov);
    for (int i = 0; i < D; i++) tr += cov[i * D + i];
    double self = gt_fid(&s, &s);
    CHECK(fabs(self) < 1e-9 * tr, "FID of a set with itself: %g (trace %g)", self, tr);

    /* moments against a direct two-pass computation */
    double ref_mean[D] = {0}, max_err = 0;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < D; k++) ref_mean[k] += x[(size_t)i * D + k];
    for (int k = 0; k < D; k++) ref_mean[k] /= N;
    for (int a = 0; a < D; a++)
        for (int b = 0; b < D; b++) {
            double c = 0;
            for (int i = 0; i < N; i++)
                c += (x[(size_t)i * D + a] - ref_mean[a]) * (x[(size_t)i * D + b] - ref_mean[b]);
            c /= N - 1;
            max_err = fmax(max_err, fabs(c - cov[a * D + b]));
        }
    for (int k = 0; k < D; k++) max_err = fmax(max_err, fabs(mean[k] - ref_mean[k]));
    CHECK(max_err < 1e-10, "Gaussian moments differ from a two-pass computation by %g", max_err);

    /* splitting: rows added in 3 pieces to 2 stats, then merged */
    gt_gauss_stats_init(&t, D);
    gt_gauss_stats_add(&t, x, 1000);
    gt_gauss_stats_add(&t, x + (size_t)1000 * D, 7);
    gt_gauss_stats u;
    gt_gauss_stats_init(&u, D);
    gt_gauss_stats_add(&u, x + (size_t)1007 * D, N - 1007);
    gt_gauss_stats_merge(&t, &u);
    CHECK(gt_gauss_stats_count(&t) == N, "merged count %g", gt_gauss_stats_count(&t));
    double err = 0;
    for (size_t i = 0; i < s.len; i++) err = fmax(err, fabs(s.buf[i] - t.buf[i]) / fmax(1.0, fabs(s.buf[i])));
    CHECK(err < 1e-12, "split statistics differ from one piece by %g (relative)", err);

    /* against a second set: one piece vs pieces */
    double B[D * D];
    random_matrix(B, D, 0.8, 0.5);
    float *y = gt_alloc_floats((size_t)N * D);
    correlated(y, N, D, B, 0.0);
    gt_gauss_stats v, w;
    gt_gauss_stats_init(&v, D);
    gt_gauss_stats_init(&w, D);
    gt_gauss_stats_add(&v, y, N);
    for (int r = 0; r < N; r += 512) gt_gauss_stats_add(&w, y + (size_t)r * D, N - r < 512 ? N - r : 512);
    double f1 = gt_fid(&s, &v), f2 = gt_fid(&t, &w), f3 = gt_fid(&v, &s);
    CHECK(f1 > 1.0, "FID of different distributions should be clearly positive: %g", f1);
    CHECK(check_close(f1, f2, 1e-10, 0), "FID one piece %.12g vs pieces %.12g", f1, f2);
    CHECK(check_close(f1, f3, 1e-9, 0), "FID not symmetric: %.12g vs %.12g", f1, f3);

    /* closed forms: diagonal covariances, sqrt elementwise */
    double m1[D], m2[D], c1[D * D] = {0}, c2[D * D] = {0}, expect = 0;
    for (int k = 0; k < D; k++) {
        m1[k] = 0.1 * k;
        m2[k] = 0.3 - 0.05 * k;
        double a = 0.2 + 0.3 * k, b = 2.0 / (1 + k);
        c1[k * D + k] = a;
        c2[k * D + k] = b;
        expect += (m1[k] - m2[k]) * (m1[k] - m2[k]) + (sqrt(a) - sqrt(b)) * (sqrt(a) - sqrt(b));
    }
    double got = gt_fid_moments(m1, c1, m2, c2, D);
    CHECK(check_close(got, expect, 1e-10, 1e-12), "FID diagonal: %.12g, closed form %.12g", got, expect);

    /* commuting non-diagonal: S1 = Q D1 Q^T, S2 = Q D2 Q^T */
    double Q[D * D];
    random_orthogonal(Q, D);
    expect = 0;
    double d1[D], d2[D];
    for (int k = 0; k < D; k++) {
        d1[k] = 0.05 + k * k * 0.1;
        d2[k] = 3.0 / (k + 1) + (k == 3 ? 0 : 0.01);
        expect += (sqrt(d1[k]) - sqrt(d2[k])) * (sqrt(d1[k]) - sqrt(d2[k]));
    }
    for (int a = 0; a < D; a++)
        for (int b = 0; b < D; b++) {
            double s1 = 0, s2 = 0;
            for (int k = 0; k < D; k++) {
                s1 += Q[k * D + a] * d1[k] * Q[k * D + b];
                s2 += Q[k * D + a] * d2[k] * Q[k * D + b];
            }
            c1[a * D + b] = s1;
            c2[a * D + b] = s2;
        }
    got = gt_fid_moments(m1, c1, m1, c2, D);
    CHECK(check_close(got, expect, 1e-9, 1e-10), "FID commuting covariances: %.12g, closed form %.12g", got, expect);
    /* a singular covariance (rank 1): tr sqrt(S1 S2) still finite and right */
    memset(c1, 0, sizeof c1);
    memset(c2, 0, sizeof c2);
    for (int a = 0; a < D; a++)
        for (int b = 0; b < D; b++) c1[a * D + b] = Q[a] * Q[b] * 4.0; /* 4 q q^T, q = first column */
    for (int k = 0; k < D; k++) c2[k * D + k] = 9.0;
    double trs = gt_trace_sqrt_product(c1, c2, D); /* sqrt(4 * 9) = 6 */
    CHECK(check_close(trs, 6.0, 1e-12, 0), "tr sqrt of a rank-1 product: %.12g, expected 6", trs);

    gt_gauss_stats_free(&s);
    gt_gauss_stats_free(&t);
    gt_gauss_stats_free(&u);
    gt_gauss_stats_free(&v);
    gt_gauss_stats_free(&w);
    gt_free(y);
    gt_free(x);
}

/* ---- KID ---------------------------------------------------------------- */

static double naive_mmd2(const float *x, const float *y, int m, int dim) {
    double sxx = 0, syy = 0, sxy = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < m; j++) {
            double dxx = 0, dyy = 0, dxy = 0;
            for (int k = 0; k < dim; k++) {
                dxx += (double)x[i * dim + k] * x[j * dim + k];
                dyy += (double)y[i * dim + k] * y[j * dim + k];
                dxy += (double)x[i * dim + k] * y[j * dim + k];
            }
            if (i != j) {
                sxx += pow(dxx / dim + 1, 3);
                syy += pow(dyy / dim + 1, 3);
            }
            sxy += pow(dxy / dim + 1, 3);
        }
    return (sxx + syy) / ((double)m * (m - 1)) - 2 * sxy / ((double)m * m);
}

static void test_kid(void) {
    enum { D = 8, M = 60 };
    float x[M * D], y[M * D];
    fill_normal(x, M * D);
    fill_normal(y, M * D);
    for (int i = 0; i < M * D; i++) y[i] = 0.8f * y[i] + 0.2f;
    double got = gt_mmd2_poly3(x, y, M, D), ref = naive_mmd2(x, y, M, D);
    CHECK(check_close(got, ref, 1e-10, 1e-13), "MMD^2: %.15g, naive %.15g", got, ref);

    /* Unbiasedness: over many independent pairs of samples of one
     * distribution, the mean MMD^2_u is within a few standard errors of 0.
     * (The biased V-statistic would sit about 2 E k(x,x)/m above 0.) */
    enum { DRAWS = 400, MS = 40, DS = 6 };
    float a[MS * DS], b[MS * DS];
    double sum = 0, sum2 = 0, biased_gap = 0;
    for (int r = 0; r < DRAWS; r++) {
        fill_normal(a, MS * DS);
        fill_normal(b, MS * DS);
        double v = gt_mmd2_poly3(a, b, MS, DS);
        sum += v;
        sum2 += v * v;
        for (int i = 0; i < MS; i++) { /* diagonal terms the biased version would add */
            double da = 0, db = 0;
            for (int k = 0; k < DS; k++) {
                da += (double)a[i * DS + k] * a[i * DS + k];
                db += (double)b[i * DS + k] * b[i * DS + k];
            }
            biased_gap += (pow(da / DS + 1, 3) + pow(db / DS + 1, 3)) / ((double)MS * MS) / DRAWS;
        }
    }
    double mean = sum / DRAWS, se = sqrt((sum2 / DRAWS - mean * mean) / (DRAWS - 1));
    CHECK(fabs(mean) < 3.5 * se, "KID unbiased: mean %.3g over %d draws, standard error %.3g", mean, DRAWS, se);
    CHECK(biased_gap > 10 * se, "the test can tell: the biased estimate would be off by %.3g (se %.3g)", biased_gap,
          se);

    /* different distributions: clearly positive; same: near 0 */
    enum { NA = 1500, NB = 1200, DK = 16 };
    float *p = gt_alloc_floats((size_t)NA * DK), *q = gt_alloc_floats((size_t)NB * DK),
          *q2 = gt_alloc_floats((size_t)NB * DK);
    fill_normal(p, (size_t)NA * DK);
    fill_normal(q, (size_t)NB * DK);
    fill_normal(q2, (size_t)NB * DK);
    for (int i = 0; i < NB * DK; i++) q2[i] = 1.3f * q2[i] + 0.2f;
    gt_kid_result same = gt_kid(p, NA, q, NB, DK, 20, 400, 11);
    gt_kid_result diff = gt_kid(p, NA, q2, NB, DK, 20, 400, 11);
    CHECK(same.subset_size == 400 && same.subsets == 20, "KID subsets %d of %d", same.subsets, same.subset_size);
    CHECK(diff.mean > 20 * diff.std / sqrt(20.0) && diff.mean > 20 * fabs(same.mean),
          "KID of different distributions %.4g (std %.3g) vs same %.4g", diff.mean, diff.std, same.mean);
    CHECK(fabs(same.mean) < 4 * same.std, "KID of one distribution %.4g, std over subsets %.4g", same.mean, same.std);

    /* subsets: clipped size, distinct rows, reproducible, seed matters */
    CHECK(gt_kid_subset_size(300, 5000, 1000) == 300 && gt_kid_subset_size(5000, 5000, 1000) == 1000,
          "subset size clipping");
    int ia[400], ib[400], ja[400], jb[400];
    gt_kid_subset_rows(ia, ib, NA, NB, 400, 11, 3);
    gt_kid_subset_rows(ja, jb, NA, NB, 400, 11, 3);
    CHECK(!memcmp(ia, ja, sizeof ia) && !memcmp(ib, jb, sizeof ib), "subset rows not reproducible");
    int distinct = 1;
    unsigned char seen[NA] = {0};
    for (int i = 0; i < 400; i++) {
        if (ia[i] < 0 || ia[i] >= NA || seen[ia[i]]) distinct = 0;
        else seen[ia[i]] = 1;
    }
    CHECK(distinct, "subset rows repeat or leave the set");
    gt_kid_subset_rows(ja, jb, NA, NB, 400, 12, 3);
    CHECK(memcmp(ia, ja, sizeof ia) != 0, "another seed draws the same subset");
    /* all rows when the subset is the whole set */
    int all[NB], cnt[NB] = {0}, ok = 1;
    gt_draw_subset(all, NB, NB, 5, 1, 0, 0);
    for (int i = 0; i < NB; i++) cnt[all[i]]++;
    for (int i = 0; i < NB; i++) ok &= cnt[i] == 1;
    CHECK(ok, "a full-size subset is not a permutation");

    /* splitting: subsets [0,7) + [7,13) + [13,20) equal [0,20) exactly */
    double whole[20], parts[20];
    gt_kid_subsets(whole, p, NA, q2, NB, DK, 400, 11, 0, 20);
    gt_kid_subsets(parts, p, NA, q2, NB, DK, 400, 11, 0, 7);
    gt_kid_subsets(parts + 7, p, NA, q2, NB, DK, 400, 11, 7, 13);
    gt_kid_subsets(parts + 13, p, NA, q2, NB, DK, 400, 11, 13, 20);
    CHECK(!memcmp(whole, parts, sizeof whole), "KID subsets computed in pieces differ");
    gt_kid_result sum_r = gt_kid_summary(parts, 20, 400);
    CHECK(sum_r.mean == diff.mean && sum_r.std == diff.std, "KID summary of pieces differs");
    /* a subset equals gt_mmd2_poly3 on its gathered rows */
    int sa[400], sb[400];
    gt_kid_subset_rows(sa, sb, NA, NB, 400, 11, 5);
    float *ga = gt_alloc_floats(400 * DK), *gb = gt_alloc_floats(400 * DK);
    gt_gather_rows(ga, p, sa, 400, DK);
    gt_gather_rows(gb, q2, sb, 400, DK);
    CHECK(gt_mmd2_poly3(ga, gb, 400, DK) == whole[5], "subset 5 is not the MMD of its rows");
    gt_free(gb);
    gt_free(ga);
    gt_free(q2);
    gt_free(q);
    gt_free(p);
}

/* ---- nearest neighbours, precision/recall/density/coverage -------------- */

static float exact_dist(const float *a, const float *b, int dim) {
    double s = 0;
    for (int k = 0; k < dim; k++) s += ((double)a[k] - b[k]) * ((double)a[k] - b[k]);
    return (float)sqrt(s);
}

/* k-th nearest distance of row i among ref (brute force, sorting) */
static float naive_kth(const float *q, const float *ref, int n_ref, int dim, int k, int skip) {
    float *d = gt_alloc_floats(n_ref);
    int m = 0;
    for (int j = 0; j < n_ref; j++)
        if (j != skip) d[m++] = exact_dist(q, ref + (size_t)j * dim, dim);
    for (int a = 0; a < k; a++) /* partial selection sort */
        for (int b = a + 1; b < m; b++)
            if (d[b] < d[a]) {
                float t = d[a];
                d[a] = d[b];
                d[b] = t;
            }
    float r = d[k - 1];
    gt_free(d);
    return r;
}

static gt_prdc naive_prdc(const float *real, int nr, const float *fake, int nf, int dim, int kpr, int kdc) {
    float *rpr = gt_alloc_floats(nr), *rdc = gt_alloc_floats(nr), *fpr = gt_alloc_floats(nf);
    for (int i = 0; i < nr; i++) {
        rpr[i] = naive_kth(real + (size_t)i * dim, real, nr, dim, kpr, i);
        rdc[i] = naive_kth(real + (size_t)i * dim, real, nr, dim, kdc, i);
    }
    for (int j = 0; j < nf; j++) fpr[j] = naive_kth(fake + (size_t)j * dim, fake, nf, dim, kpr, j);
    double prec = 0, dens = 0, rec = 0, cov = 0;
    for (int j = 0; j < nf; j++) {
        int in = 0;
        for (int i = 0; i < nr; i++) {
            float d = exact_dist(fake + (size_t)j * dim, real + (size_t)i * dim, dim);
            in |= d <= rpr[i];
            dens += d < rdc[i];
        }
        prec += in;
    }
    for (int i = 0; i < nr; i++) {
        int in = 0, c = 0;
        for (int j = 0; j < nf; j++) {
            float d = exact_dist(fake + (size_t)j * dim, real + (size_t)i * dim, dim);
            in |= d <= fpr[j];
            c |= d < rdc[i];
        }
        rec += in;
        cov += c;
    }
    gt_free(fpr);
    gt_free(rdc);
    gt_free(rpr);
    return (gt_prdc){prec / nf, rec / nr, dens / ((double)kdc * nf), cov / nr};
}

static int prdc_equal(gt_prdc a, gt_prdc b) {
    return a.precision == b.precision && a.recall == b.recall && a.density == b.density && a.coverage == b.coverage;
}

static void test_knn(void) {
    enum { N = 700, M = 300, D = 5, K = 4 };
    float *ref = gt_alloc_floats(N * D), *q = gt_alloc_floats(M * D);
    fill_normal(ref, N * D);
    fill_normal(q, M * D);
    memcpy(ref + 10 * D, ref + 20 * D, D * sizeof(float)); /* a duplicate pair */
    memcpy(q + 5 * D, ref + 33 * D, D * sizeof(float));    /* a query that is a reference row */
    float dist[M * K];
    int idx[M * K], bad = 0;
    gt_knn(dist, idx, K, q, 0, M, ref, N, D, 0);
    for (int i = 0; i < M; i++) {
        for (int k = 0; k < K; k++) {
            float want = naive_kth(q + i * D, ref, N, D, k + 1, -1);
            if (dist[i * K + k] != want) bad++;
            if (exact_dist(q + i * D, ref + (size_t)idx[i * K + k] * D, D) != dist[i * K + k]) bad++;
        }
    }
    CHECK(bad == 0, "gt_knn: %d of %d distances/indices differ from brute force", bad, M * K);
    CHECK(idx[5 * K] == 33 && dist[5 * K] == 0.0f, "a query equal to reference 33: nearest %d at %g", idx[5 * K],
          dist[5 * K]);
    /* self-exclusion: the duplicate is a neighbour at 0, the row itself is not */
    float sd[N * 2];
    int si[N * 2];
    gt_knn(sd, si, 2, ref, 0, N, ref, N, D, 1);
    bad = 0;
    for (int i = 0; i < N; i++) bad += si[i * 2] == i || si[i * 2 + 1] == i;
    CHECK(bad == 0, "exclude_self: %d rows are their own neighbour", bad);
    CHECK(si[10 * 2] == 20 && sd[10 * 2] == 0.0f && si[20 * 2] == 10, "duplicates 10/20: %d, %d", si[20], si[40]);
    /* ranges give the same rows */
    float pd[N * 2];
    int pi[N * 2];
    gt_knn(pd, pi, 2, ref, 0, 123, ref, N, D, 1);
    gt_knn(pd + 123 * 2, pi + 123 * 2, 2, ref, 123, 300, ref, N, D, 1);
    gt_knn(pd + 300 * 2, pi + 300 * 2, 2, ref, 300, N, ref, N, D, 1);
    CHECK(!memcmp(pd, sd, sizeof sd) && !memcmp(pi, si, sizeof si), "gt_knn in pieces differs");

    /* a set against itself larger than one square tile (pairs computed once,
     * used both ways), whole and in pieces, against brute force */
    enum { NB = 2600, DB = 3, KB = 3 };
    float *xb = gt_alloc_floats(NB * DB), *db = gt_alloc_floats(NB * KB), *dp = gt_alloc_floats(NB * KB);
    int *ib = gt_alloc(NB * KB * sizeof(int)), *ip = gt_alloc(NB * KB * sizeof(int));
    fill_normal(xb, NB * DB);
    gt_knn(db, ib, KB, xb, 0, NB, xb, NB, DB, 1);
    gt_knn(dp, ip, KB, xb, 0, 1100, xb, NB, DB, 1);
    gt_knn(dp + 1100 * KB, ip + 1100 * KB, KB, xb, 1100, 2599, xb, NB, DB, 1);
    gt_knn(dp + 2599 * KB, ip + 2599 * KB, KB, xb, 2599, NB, xb, NB, DB, 1);
    bad = 0;
    for (int i = 0; i < NB; i += 7)
        for (int k = 0; k < KB; k++) bad += db[i * KB + k] != naive_kth(xb + i * DB, xb, NB, DB, k + 1, i);
    CHECK(bad == 0, "self k-NN over several tiles: %d distances differ from brute force", bad);
    CHECK(!memcmp(db, dp, NB * KB * sizeof(float)) && !memcmp(ib, ip, NB * KB * sizeof(int)),
          "self k-NN over several tiles differs when computed in pieces");

    /* many exact ties (60 copies of one point): more candidates than the
     * list holds, so the query is searched again exactly; ties go to the
     * lower index */
    for (int i = 100; i < 160; i++) memcpy(xb + i * DB, xb + 5 * DB, DB * sizeof(float));
    gt_knn(db, ib, KB, xb, 0, NB, xb, NB, DB, 1);
    CHECK(db[120 * KB + 2] == 0 && ib[120 * KB] == 5 && ib[120 * KB + 1] == 100 && ib[120 * KB + 2] == 101 &&
              ib[5 * KB] == 100 && ib[5 * KB + 2] == 102,
          "ties among 61 copies: row 120 -> %d %d %d, row 5 -> %d %d %d", ib[360], ib[361], ib[362], ib[15], ib[16],
          ib[17]);

    /* raw pixels: 784-d in [0, 1], far from the origin compared with the
     * differences; near-copies are found with their exact distances */
    enum { NP = 400, DP = 784 };
    float *img = gt_alloc_floats(NP * DP), *cp = gt_alloc_floats(10 * DP), pd1[10];
    int pi1[10];
    gt_rand_uniform(img, NP * DP, 7, GT_PURPOSE(GT_RNG_TEST, 52), 0, stream++);
    for (int i = 0; i < NP * DP; i++) img[i] = img[i] < 0.7f ? 0.0f : img[i];
    for (int c = 0; c < 10; c++) {
        memcpy(cp + c * DP, img + (37 * c + 3) * DP, DP * sizeof(float));
        cp[c * DP + 100 + c] += 1e-3f * (c + 1); /* one pixel moved a little */
    }
    gt_knn(pd1, pi1, 1, cp, 0, 10, img, NP, DP, 0);
    bad = 0;
    for (int c = 0; c < 10; c++)
        bad += pi1[c] != 37 * c + 3 || pd1[c] != exact_dist(cp + c * DP, img + (37 * c + 3) * DP, DP) ||
               fabsf(pd1[c] - 1e-3f * (c + 1)) > 1e-6f;
    CHECK(bad == 0, "784-d near-copies: %d of 10 nearest neighbours wrong", bad);
    gt_free(cp);
    gt_free(img);
    gt_free(ip);
    gt_free(ib);
    gt_free(dp);
    gt_free(db);
    gt_free(xb);
    gt_free(q);
    gt_free(ref);
}

static void test_prdc(void) {
    /* hand-built: real on a line at 0,1,2,3; fake at 0.5 and 10; k = 1
     * radii of real: 1; of fake: 9.5. precision 1/2, density (2 + 0) / 2 = 1,
     * recall 1 (all real within 9.5 of 0.5), coverage 1/2 (balls of 0 and 1 hold 0.5). */
    float real[4 * 2] = {0, 0, 1, 0, 2, 0, 3, 0}, fake[2 * 2] = {0.5f, 0, 10, 0};
    gt_prdc h = gt_prdc_compute(real, 4, fake, 2, 2, 1, 1);
    CHECK(h.precision == 0.5 && h.density == 1.0 && h.recall == 1.0 && h.coverage == 0.5,
          "hand-built line: P %g R %g D %g C %g, expected 0.5 1 1 0.5", h.precision, h.recall, h.density, h.coverage);
    /* on the boundary: real {0, 1} (radii 1), fake {2, 7} (radii 5): fake 2 is
     * at distance 1 from real 1, inside its closed ball (precision) and
     * outside its open ball (density, coverage) */
    float real2[2 * 2] = {0, 0, 1, 0}, fake2[2 * 2] = {2, 0, 7, 0};
    h = gt_prdc_compute(real2, 2, fake2, 2, 2, 1, 1);
    CHECK(h.precision == 0.5 && h.density == 0.0 && h.coverage == 0.0 && h.recall == 1.0,
          "boundary: P %g R %g D %g C %g, expected 0.5 1 0 0", h.precision, h.recall, h.density, h.coverage);

    enum { N = 400, D = 8 };
    float *x = gt_alloc_floats(N * D), *far = gt_alloc_floats(N * D);
    fill_normal(x, N * D);
    for (int i = 0; i < N * D; i++) far[i] = x[i] + 1000.0f;
    gt_prdc same = gt_prdc_compute(x, N, x, N, D, GT_PR_K, GT_DC_K);
    CHECK(same.precision == 1 && same.recall == 1 && same.coverage == 1,
          "identical sets: precision %g recall %g coverage %g, expected 1", same.precision, same.recall,
          same.coverage);
    /* each open ball holds its centre and k - 1 others (the k-th is on the boundary) */
    CHECK(same.density == 1.0, "identical sets: density %.17g, expected 1", same.density);
    gt_prdc apart = gt_prdc_compute(x, N, far, N, D, GT_PR_K, GT_DC_K);
    CHECK(apart.precision == 0 && apart.recall == 0 && apart.density == 0 && apart.coverage == 0,
          "far-apart sets: P %g R %g D %g C %g, expected 0", apart.precision, apart.recall, apart.density,
          apart.coverage);

    /* half: real = clusters A and B far apart, fake = exactly A's points:
     * precision 1, recall 1/2, coverage 1/2, density = that of identical sets A */
    float *ab = gt_alloc_floats(2 * N * D);
    memcpy(ab, x, N * D * sizeof(float));
    memcpy(ab + N * D, far, N * D * sizeof(float));
    gt_prdc half = gt_prdc_compute(ab, 2 * N, x, N, D, GT_PR_K, GT_DC_K);
    CHECK(half.precision == 1 && half.recall == 0.5 && half.coverage == 0.5 && half.density == same.density,
          "fake = half of real: P %g R %g D %g C %g, expected 1 0.5 %g 0.5", half.precision, half.recall,
          half.density, half.coverage, same.density);

    /* random sets against the brute-force definition, exactly */
    enum { NR = 300, NF = 250, DR = 6 };
    float *r = gt_alloc_floats(NR * DR), *f = gt_alloc_floats(NF * DR);
    fill_normal(r, NR * DR);
    fill_normal(f, NF * DR);
    for (int i = 0; i < NF * DR; i++) f[i] = 1.2f * f[i] + 0.3f;
    gt_prdc got = gt_prdc_compute(r, NR, f, NF, DR, GT_PR_K, GT_DC_K);
    gt_prdc ref = naive_prdc(r, NR, f, NF, DR, GT_PR_K, GT_DC_K);
    CHECK(prdc_equal(got, ref), "PRDC %g %g %g %g vs brute force %g %g %g %g", got.precision, got.recall,
          got.density, got.coverage, ref.precision, ref.recall, ref.density, ref.coverage);
    CHECK(got.precision > 0.2 && got.precision < 1 && got.recall > 0.2 && got.recall < 1,
          "random sets should be partly inside: P %g R %g", got.precision, got.recall);

    /* splitting: radii and counts in 3 pieces (as 3 ranks would) */
    float rpr[NR], rdc[NR], fpr[NF];
    gt_prdc_radii(rpr, rdc, GT_PR_K, GT_DC_K, r, NR, DR, 0, 100);
    gt_prdc_radii(rpr + 100, rdc + 100, GT_PR_K, GT_DC_K, r, NR, DR, 100, 101);
    gt_prdc_radii(rpr + 101, rdc + 101, GT_PR_K, GT_DC_K, r, NR, DR, 101, NR);
    gt_prdc_radii(fpr, NULL, GT_PR_K, GT_PR_K, f, NF, DR, 0, 77);
    gt_prdc_radii(fpr + 77, NULL, GT_PR_K, GT_PR_K, f, NF, DR, 77, NF);
    gt_prdc_counts rank[3], total;
    memset(rank, 0, sizeof rank);
    int fcut[4] = {0, 80, 81, NF}, rcut[4] = {0, 150, 299, NR};
    for (int k = 0; k < 3; k++) {
        gt_prdc_count_fake(&rank[k], f, fcut[k], fcut[k + 1], r, NR, rpr, rdc, DR);
        gt_prdc_count_real(&rank[k], r, rcut[k], rcut[k + 1], rdc, f, NF, fpr, DR);
    }
    int64_t *t = (int64_t *)&total;
    memset(&total, 0, sizeof total);
    for (int k = 0; k < 3; k++)
        for (size_t j = 0; j < sizeof total / sizeof(int64_t); j++) t[j] += ((int64_t *)&rank[k])[j];
    gt_prdc split = gt_prdc_finish(&total, GT_DC_K);
    CHECK(prdc_equal(split, got), "PRDC from 3 pieces %g %g %g %g vs one %g %g %g %g", split.precision,
          split.recall, split.density, split.coverage, got.precision, got.recall, got.density, got.coverage);

    /* large norms, small distances: the exact re-check decides borderline cases */
    float *shifted_r = gt_alloc_floats(NR * DR), *shifted_f = gt_alloc_floats(NF * DR);
    for (int i = 0; i < NR * DR; i++) shifted_r[i] = r[i] * 0.01f + 50.0f;
    for (int i = 0; i < NF * DR; i++) shifted_f[i] = f[i] * 0.01f + 50.0f;
    got = gt_prdc_compute(shifted_r, NR, shifted_f, NF, DR, GT_PR_K, GT_DC_K);
    ref = naive_prdc(shifted_r, NR, shifted_f, NF, DR, GT_PR_K, GT_DC_K);
    CHECK(prdc_equal(got, ref), "PRDC far from the origin %g %g %g %g vs brute force %g %g %g %g", got.precision,
          got.recall, got.density, got.coverage, ref.precision, ref.recall, ref.density, ref.coverage);
    gt_free(shifted_f);
    gt_free(shifted_r);
    gt_free(f);
    gt_free(r);
    gt_free(ab);
    gt_free(far);
    gt_free(x);
}

/* ---- classes and 2-D mixtures --------------------------------------------- */

static void test_classes(void) {
    enum { K = 4, N = 100 };
    float logits[N * K];
    for (int i = 0; i < N; i++)
        for (int c = 0; c < K; c++) logits[i * K + c] = c == 2 ? 5.0f : (float)(c * 0.1);
    int64_t gen[K] = {0}, data[K] = {25, 25, 25, 25};
    gt_class_hist_add(gen, logits, 60, K);
    gt_class_hist_add(gen, logits + 60 * K, N - 60, K);
    CHECK(gen[2] == N && gen[0] == 0, "argmax histogram: %lld %lld %lld %lld", (long long)gen[0], (long long)gen[1],
          (long long)gen[2], (long long)gen[3]);
    gt_class_stats s = gt_class_hist_compare(gen, data, K);
    CHECK(s.covered == 1 && s.entropy == 0.0, "one class: covered %d entropy %g", s.covered, s.entropy);
    CHECK(check_close(s.kl_gen_data, log(4.0), 1e-12, 0), "one class: KL(gen||data) %g, expected log(1/p) = %g",
          s.kl_gen_data, log(4.0));
    CHECK(isinf(s.kl_data_gen) && check_close(s.tv, 0.75, 1e-12, 0), "one class: KL(data||gen) %g, TV %g",
          s.kl_data_gen, s.tv);
    s = gt_class_hist_compare(data, data, K);
    CHECK(s.covered == K && check_close(s.entropy, log(K), 1e-12, 0) && s.kl_gen_data == 0 && s.tv == 0,
          "same histogram: covered %d entropy %g KL %g TV %g", s.covered, s.entropy, s.kl_gen_data, s.tv);
    int64_t skew[K] = {10, 30, 0, 60}, dat2[K] = {40, 20, 20, 20};
    s = gt_class_hist_compare(skew, dat2, K);
    double kl = 0.1 * log(0.1 / 0.4) + 0.3 * log(0.3 / 0.2) + 0.6 * log(0.6 / 0.2);
    double h = -(0.1 * log(0.1) + 0.3 * log(0.3) + 0.6 * log(0.6));
    CHECK(s.covered == 3 && check_close(s.kl_gen_data, kl, 1e-12, 0) && check_close(s.entropy, h, 1e-12, 0),
          "skewed: covered %d KL %g (expected %g) entropy %g (expected %g)", s.covered, s.kl_gen_data, kl, s.entropy,
          h);

    /* classifier score: confident and spread over K classes -> K; all one class -> 1 */
    double acc[GT_CLASS_SCORE_LEN(K)] = {0}, one[GT_CLASS_SCORE_LEN(K)] = {0};
    float conf[N * K];
    for (int i = 0; i < N; i++)
        for (int c = 0; c < K; c++) conf[i * K + c] = c == i % K ? 40.0f : 0.0f;
    gt_class_score_add(acc, conf, 50, K);
    gt_class_score_add(acc, conf + 50 * K, N - 50, K);
    gt_class_score_add(one, logits, N, K);
    double spread = gt_class_score(acc, K), single = gt_class_score(one, K);
    CHECK(check_close(spread, K, 1e-9, 0), "classifier score of confident, balanced samples %g, expected %d", spread,
          K);
    CHECK(check_close(single, 1.0, 1e-12, 0), "classifier score of one class %g, expected 1", single);
}

static void test_mixture(void) {
    enum { K = 8, PER = 30 };
    float centres[K * 2], x[K * PER * 2];
    double std = 0.05;
    for (int m = 0; m < K; m++) {
        centres[2 * m] = (float)cos(2 * GT_PI * m / K);
        centres[2 * m + 1] = (float)sin(2 * GT_PI * m / K);
    }
    for (int i = 0; i < K * PER; i++) {
        x[2 * i] = centres[2 * (i % K)];
        x[2 * i + 1] = centres[2 * (i % K) + 1];
    }
    int64_t counts[GT_MIXTURE_COUNTS_LEN(K)] = {0};
    gt_mixture_count(counts, x, 100, centres, K, std);
    gt_mixture_count(counts, x + 200, K * PER - 100, centres, K, std);
    gt_mixture_stats s = gt_mixture_summary(counts, K, 1);
    CHECK(s.modes_covered == K && s.high_quality_share == 1.0 && s.reverse_kl == 0.0,
          "samples at the centres: modes %d quality %g reverse KL %g", s.modes_covered, s.high_quality_share,
          s.reverse_kl);
    /* within 3 std of the centre still counts, a little further does not */
    float near[4] = {centres[0] + (float)(2.9 * std), centres[1], centres[0] + (float)(3.1 * std), centres[1]};
    int64_t c2[GT_MIXTURE_COUNTS_LEN(K)] = {0};
    gt_mixture_count(c2, near, 2, centres, K, std);
    CHECK(c2[0] == 2 && c2[1] == 1 && c2[2] == 1, "2.9 and 3.1 std: %lld samples, %lld high quality",
          (long long)c2[0], (long long)c2[1]);
    /* all in one mode */
    for (int i = 0; i < K * PER; i++) {
        x[2 * i] = centres[6] + 0.01f;
        x[2 * i + 1] = centres[7];
    }
    memset(counts, 0, sizeof counts);
    gt_mixture_count(counts, x, K * PER, centres, K, std);
    s = gt_mixture_summary(counts, K, 1);
    CHECK(s.modes_covered == 1 && s.high_quality_share == 1.0 && check_close(s.reverse_kl, log(K), 1e-12, 0),
          "one mode: modes %d quality %g reverse KL %g (log K = %g)", s.modes_covered, s.high_quality_share,
          s.reverse_kl, log(K));
    /* between modes */
    for (int i = 0; i < K * PER; i++) {
        int m = i % K, n = (m + 1) % K;
        x[2 * i] = 0.5f * (centres[2 * m] + centres[2 * n]);
        x[2 * i + 1] = 0.5f * (centres[2 * m + 1] + centres[2 * n + 1]);
    }
    memset(counts, 0, sizeof counts);
    gt_mixture_count(counts, x, K * PER, centres, K, std);
    s = gt_mixture_summary(counts, K, 1);
    CHECK(s.modes_covered == 0 && s.high_quality_share == 0.0 && isnan(s.reverse_kl),
          "between modes: modes %d quality %g reverse KL %g", s.modes_covered, s.high_quality_share, s.reverse_kl);
    /* thresholds: 25 samples in mode 0, 19 in each other mode */
    int64_t th[GT_MIXTURE_COUNTS_LEN(K)] = {25 + 7 * 19, 25 + 7 * 19, 25, 19, 19, 19, 19, 19, 19, 19};
    CHECK(gt_mixture_summary(th, K, 20).modes_covered == 1 && gt_mixture_summary(th, K, 1).modes_covered == K,
          "min_count 20 vs 1");
}

/* ---- memorization and data-copying -------------------------------------- */

/* n points of a mixture of 10 Gaussians in dim dims (centres ~ N(0, 3^2 I)) */
static void mixture16(float *x, int n, int dim, const float *centres) {
    fill_normal(x, (size_t)n * dim);
    for (int i = 0; i < n; i++) {
        int c = (int)(gt_rand_u64(7, GT_PURPOSE(GT_RNG_TEST, 51), 0, stream, (uint64_t)i) % 10);
        for (int k = 0; k < dim; k++) x[(size_t)i * dim + k] += centres[c * dim + k];
    }
    stream++;
}

static void test_memorization(void) {
    /* Mann-Whitney U by hand: x = {1,2,3}, y = {1.5,2,10}: pairs x > y are
     * (2,1.5), (3,1.5), (3,2), plus the tie (2,2) as 1/2 -> U = 3.5 */
    float mx[3] = {1, 2, 3}, my[3] = {1.5f, 2, 10};
    double u = gt_mann_whitney_u(mx, 3, my, 3);
    CHECK(u == 3.5, "Mann-Whitney U %g, expected 3.5", u);
    CHECK(check_close(gt_mann_whitney_z(u, 3, 3), (3.5 - 4.5) / sqrt(9 * 7 / 12.0), 1e-12, 0), "Z score");

    enum { D = 16, NT = 2000, NG = 2000 };
    float centres[10 * D];
    fill_normal(centres, 10 * D);
    for (int i = 0; i < 10 * D; i++) centres[i] *= 3.0f;
    float *train = gt_alloc_floats(2 * NT * D), *test = gt_alloc_floats(NT * D), *fresh = gt_alloc_floats(NG * D);
    mixture16(train, 2 * NT, D, centres);
    mixture16(test, NT, D, centres);
    mixture16(fresh, NG, D, centres);

    double share_copy = gt_closer_to_train_share(train, NT, train, NT, test, NT, D, 3);
    double share_fresh = gt_closer_to_train_share(fresh, NG, train, NT, test, NT, D, 3);
    CHECK(share_copy == 1.0, "closer-to-train share of a copier %g, expected 1", share_copy);
    CHECK(fabs(share_fresh - 0.5) < 0.05, "closer-to-train share of fresh samples %g, expected about 0.5",
          share_fresh);
    /* twice as many training points: a copier of the whole training set scores 1/2 + s/(2 n_train) = 3/4 */
    double share_diluted = gt_closer_to_train_share(train, 2 * NT, train, 2 * NT, test, NT, D, 3);
    CHECK(fabs(share_diluted - 0.75) < 0.04, "copier of a training set twice the test set: %g, expected about 0.75",
          share_diluted);
    /* splitting the generated rows */
    int s, tri[NT], tei[NT];
    gt_memorization_refs(tri, tei, &s, NT, NT, 3);
    double c3 = gt_closer_to_train_count(fresh, 0, 700, train, test, s, D) +
                gt_closer_to_train_count(fresh, 700, 1500, train, test, s, D) +
                gt_closer_to_train_count(fresh, 1500, NG, train, test, s, D);
    CHECK(c3 / NG == share_fresh, "closer-to-train share in pieces %g vs %g", c3 / NG, share_fresh);

    /* nearest training point of copies: distance 0 and the index copied */
    float dist[5];
    int idx[5];
    gt_knn(dist, idx, 1, train, 100, 105, train, NT, D, 0);
    CHECK(dist[0] == 0 && idx[0] == 100 && idx[4] == 104, "copies' nearest training points");

    /* k-means: deterministic, a fixed point of Lloyd's update */
    enum { CELLS = 20 };
    float cent[CELLS * D], cent2[CELLS * D];
    int it = gt_kmeans(cent, train, NT, D, CELLS, 200, 9);
    gt_kmeans(cent2, train, NT, D, CELLS, 200, 9);
    CHECK(!memcmp(cent, cent2, sizeof cent), "k-means not deterministic");
    CHECK(it > 0 && it < 200, "k-means converged in %d iterations", it);
    int *cell = gt_alloc(NT * sizeof(int));
    gt_nearest_cell(cell, train, 0, NT, cent, CELLS, D);
    double worst = 0;
    for (int c = 0; c < CELLS; c++) {
        double m[D] = {0};
        int n = 0;
        for (int i = 0; i < NT; i++)
            if (cell[i] == c) {
                n++;
                for (int k = 0; k < D; k++) m[k] += train[i * D + k];
            }
        for (int k = 0; k < D; k++) worst = fmax(worst, n ? fabs(m[k] / n - cent[c * D + k]) : 0);
    }
    CHECK(worst < 1e-5, "k-means centroids are not the means of their cells (off by %g)", worst);

    /* C_T: copier strongly negative, fresh samples near 0 */
    gt_ct_result copy = gt_data_copying_ct(train, NT, test, NT, train, NT, D, CELLS, GT_CT_MIN_GEN, 9);
    gt_ct_result ok = gt_data_copying_ct(train, NT, test, NT, fresh, NG, D, CELLS, GT_CT_MIN_GEN, 9);
    CHECK(copy.c_t < -10, "C_T of a copier %g (cells used %d), expected << 0", copy.c_t, copy.cells_used);
    CHECK(fabs(ok.c_t) < 2.5, "C_T of fresh samples %g (cells used %d), expected about 0", ok.c_t, ok.cells_used);
    CHECK(ok.cells_used >= CELLS / 2 && ok.cells == CELLS, "C_T used %d of %d cells", ok.cells_used, ok.cells);
    /* a generator that adds a little noise to training points still copies;
     * a much coarser one is underfitting (C_T > 0) */
    float *noisy = gt_alloc_floats(NG * D), *blurry = gt_alloc_floats(NG * D);
    fill_normal(noisy, NG * D);
    for (int i = 0; i < NG * D; i++) {
        blurry[i] = fresh[i] + 0.8f * noisy[i];
        noisy[i] = train[i] + 0.05f * noisy[i];
    }
    gt_ct_result near = gt_data_copying_ct(train, NT, test, NT, noisy, NG, D, CELLS, GT_CT_MIN_GEN, 9);
    gt_ct_result under = gt_data_copying_ct(train, NT, test, NT, blurry, NG, D, CELLS, GT_CT_MIN_GEN, 9);
    CHECK(near.c_t < -10, "C_T of near copies %g, expected << 0", near.c_t);
    CHECK(under.c_t > 3, "C_T of noisier samples %g, expected > 0", under.c_t);
    /* too few generated samples: no cell qualifies */
    gt_ct_result few = gt_data_copying_ct(train, NT, test, NT, fresh, 50, D, CELLS, GT_CT_MIN_GEN, 9);
    CHECK(isnan(few.c_t) && few.cells_used == 0, "50 generated samples in %d cells: C_T %g from %d cells", CELLS,
          few.c_t, few.cells_used);

    /* the pieces of C_T as ranks would compute them */
    int *tcell = gt_alloc(NT * sizeof(int)), *gcell = gt_alloc(NG * sizeof(int));
    float *tdist = gt_alloc_floats(NT), *gdist = gt_alloc_floats(NG), *gdist2 = gt_alloc_floats(NG);
    gt_kmeans(cent, train, NT, D, CELLS, GT_CT_MAX_ITER, 9);
    gt_nearest_cell(cell, train, 0, NT, cent, CELLS, D);
    gt_nearest_cell(tcell, test, 0, 1000, cent, CELLS, D);
    gt_nearest_cell(tcell + 1000, test, 1000, NT, cent, CELLS, D);
    gt_nearest_cell(gcell, fresh, 0, NG, cent, CELLS, D);
    gt_cell_nn_dist(tdist, test, tcell, 0, NT, train, cell, NT, D, CELLS);
    gt_cell_nn_dist(gdist, fresh, gcell, 0, NG, train, cell, NT, D, CELLS);
    gt_cell_nn_dist(gdist2, fresh, gcell, 0, 333, train, cell, NT, D, CELLS);
    gt_cell_nn_dist(gdist2 + 333, fresh, gcell, 333, NG, train, cell, NT, D, CELLS);
    CHECK(!memcmp(gdist, gdist2, NG * sizeof(float)), "cell distances in pieces differ");
    double z[CELLS];
    gt_ct_result pieces = gt_ct_from_dists(tdist, tcell, NT, gdist2, gcell, NG, CELLS, GT_CT_MIN_GEN, z);
    CHECK(pieces.c_t == ok.c_t, "C_T from pieces %.12g vs %.12g", pieces.c_t, ok.c_t);
    /* cell distances against a brute-force search within the cell */
    int bad = 0;
    for (int i = 0; i < 200; i++) {
        float best = INFINITY;
        for (int j = 0; j < NT; j++)
            if (cell[j] == gcell[i]) best = fminf(best, exact_dist(fresh + i * D, train + j * D, D));
        bad += best != gdist[i];
    }
    CHECK(bad == 0, "%d cell nearest-neighbour distances differ from brute force", bad);
    /* Z of a used cell by the definition */
    int c0 = -1;
    for (int c = 0; c < CELLS && c0 < 0; c++)
        if (!isnan(z[c])) c0 = c;
    double U = 0;
    int m = 0, n = 0;
    for (int i = 0; i < NG; i++)
        if (gcell[i] == c0) {
            m++;
            for (int j = 0; j < NT; j++)
                if (tcell[j] == c0) U += gdist[i] > tdist[j] ? 1.0 : gdist[i] == tdist[j] ? 0.5 : 0.0;
        }
    for (int j = 0; j < NT; j++) n += tcell[j] == c0;
    double zref = (U - m * (double)n / 2) / sqrt(m * (double)n * (m + n + 1) / 12);
    CHECK(c0 >= 0 && check_close(z[c0], zref, 1e-12, 1e-12), "cell %d: Z %g, by definition %g", c0, z[c0], zref);

    gt_free(gdist2);
    gt_free(gdist);
    gt_free(tdist);
    gt_free(gcell);
    gt_free(tcell);
    gt_free(blurry);
    gt_free(noisy);
    gt_free(cell);
    gt_free(fresh);
    gt_free(test);
    gt_free(train);
}

/* ---- IWAE on a linear-Gaussian VAE -------------------------------------- */

enum { XD = 6, ZD = 3 };
typedef struct {
    double W[XD * ZD], b[XD], sigma;
    const float *x;
} lingauss;

/* log N(x; W z + b, sigma^2 I) for each row of z */
static void lingauss_loglik(double *out, const float *z, int n, int z_dim, void *ctx) {
    const lingauss *g = ctx;
    for (int r = 0; r < n; r++) {
        double s = 0;
        for (int i = 0; i < XD; i++) {
            double m = g->b[i];
            for (int j = 0; j < z_dim; j++) m += g->W[i * ZD + j] * z[r * z_dim + j];
            double d = g->x[i] - m;
            s += d * d;
        }
        out[r] = -0.5 * s / (g->sigma * g->sigma) - XD * log(g->sigma) - 0.5 * XD * log(2 * GT_PI);
    }
}

/* log N(x; b, W W^T + sigma^2 I) by Cholesky */
static double lingauss_logpx(const lingauss *g) {
    double C[XD * XD], d[XD];
    for (int i = 0; i < XD; i++) {
        d[i] = g->x[i] - g->b[i];
        for (int j = 0; j < XD; j++) {
            double s = i == j ? g->sigma * g->sigma : 0;
            for (int k = 0; k < ZD; k++) s += g->W[i * ZD + k] * g->W[j * ZD + k];
            C[i * XD + j] = s;
        }
    }
    int info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', XD, C, XD);
    if (info) return NAN;
    double logdet = 0, y[XD], q = 0; /* solve L y = d */
    for (int i = 0; i < XD; i++) {
        double s = d[i];
        for (int k = 0; k < i; k++) s -= C[i * XD + k] * y[k];
        y[i] = s / C[i * XD + i];
        q += y[i] * y[i];
        logdet += 2 * log(C[i * XD + i]);
    }
    return -0.5 * (q + logdet + XD * log(2 * GT_PI));
}

static void test_iwae(void) {
    double v[4] = {1000, 1000, 1000, 1000};
    CHECK(gt_log_mean_exp(v, 4) == 1000, "log-mean-exp of equal large values %g", gt_log_mean_exp(v, 4));
    double w[2] = {0, -1e4};
    CHECK(check_close(gt_log_mean_exp(w, 2), log(0.5), 1e-15, 0), "log-mean-exp {0, -1e4}");
    double ninf[2] = {-INFINITY, -INFINITY};
    CHECK(gt_log_mean_exp(ninf, 2) == -INFINITY, "log-mean-exp of zeros");
    double small[3] = {-800, -801, -802}; /* exp underflows in a naive sum */
    double lme = -800 + log((1 + exp(-1) + exp(-2)) / 3);
    CHECK(check_close(gt_log_mean_exp(small, 3), lme, 1e-14, 0), "log-mean-exp of tiny weights %.17g vs %.17g",
          gt_log_mean_exp(small, 3), lme);
    float x3[3] = {0.5f, -1, 2}, mu3[3] = {0, 0.5f, 1}, lv3[3] = {0, -1, 0.5f};
    double ln = 0;
    for (int i = 0; i < 3; i++)
        ln += -0.5 * log(2 * GT_PI) - 0.5 * lv3[i] - 0.5 * pow(x3[i] - mu3[i], 2) / exp(lv3[i]);
    CHECK(check_close(gt_log_normal_diag(x3, mu3, lv3, 3), ln, 1e-14, 0), "diagonal Gaussian log density");
    float zero[3] = {0, 0, 0};
    CHECK(check_close(gt_log_std_normal(x3, 3), gt_log_normal_diag(x3, zero, zero, 3), 1e-15, 0),
          "standard normal log density");

    /* W with orthogonal columns (scales 2, 1, 0.5): the posterior covariance
     * is diagonal, so a diagonal q of the wrong scale and a shifted mean is
     * imperfect but has bounded importance weights */
    lingauss g;
    double Q[XD * XD], scale[ZD] = {2.0, 1.0, 0.5};
    float bx[XD];
    random_orthogonal(Q, XD);
    fill_normal(bx, XD);
    for (int i = 0; i < XD; i++)
        for (int j = 0; j < ZD; j++) g.W[i * ZD + j] = Q[j * XD + i] * scale[j];
    for (int i = 0; i < XD; i++) g.b[i] = bx[i];
    g.sigma = 0.7;
    /* exact posterior: Sigma = (I + W^T W / s^2)^-1, mean = Sigma W^T (x - b) / s^2 */
    double P[ZD * ZD];
    for (int a = 0; a < ZD; a++)
        for (int c = 0; c < ZD; c++) {
            double s = a == c;
            for (int i = 0; i < XD; i++) s += g.W[i * ZD + a] * g.W[i * ZD + c] / (g.sigma * g.sigma);
            P[a * ZD + c] = s;
        }
    int info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', ZD, P, ZD);
    info |= LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', ZD, P, ZD);
    CHECK(info == 0, "posterior covariance");
    for (int a = 0; a < ZD; a++)
        for (int c = a + 1; c < ZD; c++) P[a * ZD + c] = P[c * ZD + a];

    enum { EX = 200 };
    int ks[5] = {1, 10, 100, 1000, GT_IWAE_K};
    double mean_iwae[5] = {0}, mean_logpx = 0, mean_elbo = 0, mean_elbo_exact = 0, worst = 0;
    int below = 1, jensen = 1, chunk_same = 1;
    for (int e = 0; e < EX; e++) {
        float z[ZD], eps[XD], x[XD];
        fill_normal(z, ZD);
        fill_normal(eps, XD);
        for (int i = 0; i < XD; i++) {
            double m = g.b[i];
            for (int j = 0; j < ZD; j++) m += g.W[i * ZD + j] * z[j];
            x[i] = (float)(m + g.sigma * eps[i]);
        }
        g.x = x;
        double logpx = lingauss_logpx(&g);
        /* an imperfect q: the posterior mean, shifted, and variances too wide */
        float mu[ZD], lv[ZD];
        for (int a = 0; a < ZD; a++) {
            double s = 0;
            for (int c = 0; c < ZD; c++) {
                double t = 0;
                for (int i = 0; i < XD; i++) t += g.W[i * ZD + c] * (x[i] - g.b[i]);
                s += P[a * ZD + c] * t / (g.sigma * g.sigma);
            }
            mu[a] = (float)(s + 0.2);
            lv[a] = (float)log(1.5 * P[a * ZD + a]);
        }
        /* closed-form ELBO: E_q log p(x|z) - KL(q || p) */
        double r2 = 0;
        for (int i = 0; i < XD; i++) {
            double m = g.b[i], var = 0;
            for (int j = 0; j < ZD; j++) {
                m += g.W[i * ZD + j] * mu[j];
                var += g.W[i * ZD + j] * g.W[i * ZD + j] * exp(lv[j]);
            }
            r2 += (x[i] - m) * (x[i] - m) + var;
        }
        double elbo_exact = -0.5 * r2 / (g.sigma * g.sigma) - XD * log(g.sigma) - 0.5 * XD * log(2 * GT_PI) -
                            gt_kl_diag_std_normal(mu, lv, ZD);
        for (int t = 0; t < 5; t++) {
            gt_iwae_result r = gt_iwae(mu, lv, ZD, ks[t], 256, 21, (uint64_t)e, lingauss_loglik, &g);
            mean_iwae[t] += r.iwae / EX;
            jensen &= r.iwae >= r.elbo;
            if (ks[t] == 1) jensen &= r.iwae == r.elbo;
            if (ks[t] == GT_IWAE_K) {
                mean_elbo += r.elbo / EX;
                worst = fmax(worst, fabs(r.iwae - logpx));
                below &= r.iwae < logpx + 0.05;
                gt_iwae_result r1 = gt_iwae(mu, lv, ZD, ks[t], 1, 21, (uint64_t)e, lingauss_loglik, &g);
                gt_iwae_result r7 = gt_iwae(mu, lv, ZD, ks[t], 7, 21, (uint64_t)e, lingauss_loglik, &g);
                chunk_same &= r1.iwae == r.iwae && r7.iwae == r.iwae && r7.elbo == r.elbo;
            }
        }
        mean_logpx += logpx / EX;
        mean_elbo_exact += elbo_exact / EX;
    }
    CHECK(jensen, "IWAE below its own samples' mean log weight (or k = 1 differs from the ELBO)");
    CHECK(chunk_same, "IWAE depends on the chunk size");
    /* E[L_k] increases with k; beyond k = 100 the steps are below the noise of 200 examples */
    CHECK(mean_iwae[0] < mean_iwae[1] && mean_iwae[1] < mean_iwae[2] && mean_iwae[2] < mean_iwae[4] + 2e-3,
          "mean IWAE over k = 1, 10, 100, 1000, 5000: %.4f %.4f %.4f %.4f %.4f", mean_iwae[0], mean_iwae[1],
          mean_iwae[2], mean_iwae[3], mean_iwae[4]);
    CHECK(fabs(mean_iwae[3] - mean_logpx) < 0.01 && fabs(mean_iwae[4] - mean_logpx) < 0.005 && worst < 0.05 && below,
          "IWAE(k=1000) %.5f, IWAE(k=5000) %.5f vs log p(x) %.5f (worst example off by %.4f)", mean_iwae[3],
          mean_iwae[4], mean_logpx, worst);
    CHECK(mean_logpx - mean_elbo_exact > 0.05, "the test q should be imperfect: gap %.4f",
          mean_logpx - mean_elbo_exact);
    CHECK(fabs(mean_elbo - mean_elbo_exact) < 0.02, "Monte Carlo ELBO %.4f vs closed form %.4f", mean_elbo,
          mean_elbo_exact);
    CHECK(check_close(mean_iwae[0], mean_elbo_exact, 0, 0.3) && mean_iwae[0] < mean_logpx,
          "IWAE(k=1) %.4f is a one-sample ELBO (closed form %.4f)", mean_iwae[0], mean_elbo_exact);
}

int main(void) {
    test_fid();
    test_kid();
    test_knn();
    test_prdc();
    test_classes();
    test_mixture();
    test_memorization();
    test_iwae();
    return check_report("test_eval");
}
