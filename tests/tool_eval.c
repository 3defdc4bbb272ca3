/* The metrics of src/eval on feature sets from files, for the NumPy/SciPy
 * parity test (tests/eval_parity.py):
 *   tool_eval DIR N_TRAIN N_GEN N_TEST DIM
 * reads DIR/{train,gen,test}.f32 (raw float32 [n,DIM], little-endian),
 * writes the intermediate arrays the Python side needs (subset rows, radii,
 * neighbours, cells) as raw files into DIR and prints the metrics as JSON.
 * "real" is train, "fake" is gen. */
#include "gentrain/core.h"
#include "gentrain/eval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KID_SUBSETS 10
#define KID_SIZE 500
#define CELLS 8
#define SEED 5

static const char *dir;

static void *read_file(const char *name, size_t bytes) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    GT_ASSERT(f, "cannot open %s", path);
    void *p = gt_alloc(bytes);
    size_t got = fread(p, 1, bytes, f);
    GT_ASSERT(got == bytes && fgetc(f) == EOF, "%s: expected %zu bytes", path, bytes);
    fclose(f);
    return p;
}

static void write_file(const char *name, const void *p, size_t bytes) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    GT_ASSERT(f, "cannot create %s", path);
    GT_ASSERT(fwrite(p, 1, bytes, f) == bytes && fclose(f) == 0, "cannot write %s", path);
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: tool_eval DIR N_TRAIN N_GEN N_TEST DIM\n");
        return 2;
    }
    dir = argv[1];
    int n_train = atoi(argv[2]), n_gen = atoi(argv[3]), n_test = atoi(argv[4]), dim = atoi(argv[5]);
    size_t row = (size_t)dim * sizeof(float);
    float *train = read_file("train.f32", n_train * row), *gen = read_file("gen.f32", n_gen * row),
          *test = read_file("test.f32", n_test * row);

    /* FID: train statistics in two pieces merged, gen in one */
    gt_gauss_stats st, sg, part;
    gt_gauss_stats_init(&st, dim);
    gt_gauss_stats_init(&sg, dim);
    gt_gauss_stats_init(&part, dim);
    gt_gauss_stats_add(&st, train, n_train / 3);
    gt_gauss_stats_add(&part, train + (size_t)(n_train / 3) * dim, n_train - n_train / 3);
    gt_gauss_stats_merge(&st, &part);
    gt_gauss_stats_add(&sg, gen, n_gen);
    double fid = gt_fid(&st, &sg);

    /* KID with its subset rows */
    int m = gt_kid_subset_size(n_train, n_gen, KID_SIZE);
    int *ka = gt_alloc((size_t)KID_SUBSETS * m * sizeof(int)), *kb = gt_alloc((size_t)KID_SUBSETS * m * sizeof(int));
    for (int s = 0; s < KID_SUBSETS; s++) gt_kid_subset_rows(ka + (size_t)s * m, kb + (size_t)s * m, n_train, n_gen, m, SEED, s);
    write_file("kid_rows_a.i32", ka, (size_t)KID_SUBSETS * m * sizeof(int));
    write_file("kid_rows_b.i32", kb, (size_t)KID_SUBSETS * m * sizeof(int));
    double mmd2[KID_SUBSETS];
    gt_kid_subsets(mmd2, train, n_train, gen, n_gen, dim, KID_SIZE, SEED, 0, KID_SUBSETS);
    gt_kid_result kid = gt_kid_summary(mmd2, KID_SUBSETS, m);

    /* precision, recall, density, coverage with their radii */
    float *rpr = gt_alloc_floats(n_train), *rdc = gt_alloc_floats(n_train), *fpr = gt_alloc_floats(n_gen);
    gt_prdc_radii(rpr, rdc, GT_PR_K, GT_DC_K, train, n_train, dim, 0, n_train);
    gt_prdc_radii(fpr, NULL, GT_PR_K, GT_PR_K, gen, n_gen, dim, 0, n_gen);
    write_file("real_radius_pr.f32", rpr, n_train * sizeof(float));
    write_file("real_radius_dc.f32", rdc, n_train * sizeof(float));
    write_file("fake_radius_pr.f32", fpr, n_gen * sizeof(float));
    gt_prdc prdc = gt_prdc_compute(train, n_train, gen, n_gen, dim, GT_PR_K, GT_DC_K);

    /* neighbours of gen in train */
    float *nd = gt_alloc_floats((size_t)n_gen * 3);
    int *ni = gt_alloc((size_t)n_gen * 3 * sizeof(int));
    gt_knn(nd, ni, 3, gen, 0, n_gen, train, n_train, dim, 0);
    write_file("knn_dist.f32", nd, (size_t)n_gen * 3 * sizeof(float));
    write_file("knn_index.i32", ni, (size_t)n_gen * 3 * sizeof(int));

    /* closer-to-train share with its references */
    int s_ref, *tr_idx = gt_alloc((size_t)n_train * sizeof(int)), *te_idx = gt_alloc((size_t)n_test * sizeof(int));
    gt_memorization_refs(tr_idx, te_idx, &s_ref, n_train, n_test, SEED);
    write_file("mem_train_rows.i32", tr_idx, (size_t)s_ref * sizeof(int));
    write_file("mem_test_rows.i32", te_idx, (size_t)s_ref * sizeof(int));
    double share = gt_closer_to_train_share(gen, n_gen, train, n_train, test, n_test, dim, SEED);

    /* C_T with its cells */
    float *cent = gt_alloc_floats((size_t)CELLS * dim);
    int iters = gt_kmeans(cent, train, n_train, dim, CELLS, GT_CT_MAX_ITER, SEED);
    write_file("centroids.f32", cent, (size_t)CELLS * row);
    int *c_train = gt_alloc((size_t)n_train * sizeof(int)), *c_test = gt_alloc((size_t)n_test * sizeof(int)),
        *c_gen = gt_alloc((size_t)n_gen * sizeof(int));
    gt_nearest_cell(c_train, train, 0, n_train, cent, CELLS, dim);
    gt_nearest_cell(c_test, test, 0, n_test, cent, CELLS, dim);
    gt_nearest_cell(c_gen, gen, 0, n_gen, cent, CELLS, dim);
    write_file("cell_train.i32", c_train, (size_t)n_train * sizeof(int));
    write_file("cell_test.i32", c_test, (size_t)n_test * sizeof(int));
    write_file("cell_gen.i32", c_gen, (size_t)n_gen * sizeof(int));
    float *d_test = gt_alloc_floats(n_test), *d_gen = gt_alloc_floats(n_gen);
    gt_cell_nn_dist(d_test, test, c_test, 0, n_test, train, c_train, n_train, dim, CELLS);
    gt_cell_nn_dist(d_gen, gen, c_gen, 0, n_gen, train, c_train, n_train, dim, CELLS);
    double z[CELLS];
    gt_ct_result ct = gt_ct_from_dists(d_test, c_test, n_test, d_gen, c_gen, n_gen, CELLS, GT_CT_MIN_GEN, z);
    gt_ct_result ct_all = gt_data_copying_ct(train, n_train, test, n_test, gen, n_gen, dim, CELLS, GT_CT_MIN_GEN, SEED);
    GT_ASSERT(ct.c_t == ct_all.c_t, "C_T from pieces %.17g differs from gt_data_copying_ct %.17g", ct.c_t, ct_all.c_t);

    printf("{\"fid\": %.17g,\n \"kid_subset_size\": %d, \"kid_mmd2\": [", fid, m);
    for (int s = 0; s < KID_SUBSETS; s++) printf("%s%.17g", s ? ", " : "", mmd2[s]);
    printf("], \"kid_mean\": %.17g, \"kid_std\": %.17g,\n", kid.mean, kid.std);
    printf(" \"precision\": %.17g, \"recall\": %.17g, \"density\": %.17g, \"coverage\": %.17g,\n", prdc.precision,
           prdc.recall, prdc.density, prdc.coverage);
    printf(" \"memorization_ref_size\": %d, \"closer_to_train_share\": %.17g,\n", s_ref, share);
    printf(" \"cells\": %d, \"kmeans_iterations\": %d, \"min_gen\": %d, \"c_t\": %.17g, \"cells_used\": %d, \"z\": [",
           CELLS, iters, GT_CT_MIN_GEN, ct.c_t, ct.cells_used);
    for (int c = 0; c < CELLS; c++) {
        if (z[c] != z[c]) printf("%snull", c ? ", " : "");
        else printf("%s%.17g", c ? ", " : "", z[c]);
    }
    printf("]}\n");

    gt_free(d_gen);
    gt_free(d_test);
    gt_free(c_gen);
    gt_free(c_test);
    gt_free(c_train);
    gt_free(cent);
    gt_free(te_idx);
    gt_free(tr_idx);
    gt_free(ni);
    gt_free(nd);
    gt_free(fpr);
    gt_free(rdc);
    gt_free(rpr);
    gt_free(kb);
    gt_free(ka);
    gt_gauss_stats_free(&part);
    gt_gauss_stats_free(&sg);
    gt_gauss_stats_free(&st);
    gt_free(test);
    gt_free(gen);
    gt_free(train);
    return 0;
}
