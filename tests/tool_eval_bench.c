/* Times the sample-quality metrics on one core: FID, KID, precision/recall,
 * density/coverage (and C_T, closer-to-train share) for generated features
 * against the training features, random normal data.
 *   tool_eval_bench [N_GEN [N_REAL [DIM]]]     defaults 10000 60000 128 */
#include "gentrain/core.h"
#include "gentrain/eval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    int n_gen = argc > 1 ? atoi(argv[1]) : 10000;
    int n_real = argc > 2 ? atoi(argv[2]) : 60000;
    int dim = argc > 3 ? atoi(argv[3]) : 128;
    gt_set_threads(1);
    float *real = gt_alloc_floats((size_t)n_real * dim), *gen = gt_alloc_floats((size_t)n_gen * dim);
    float *test = gt_alloc_floats((size_t)n_gen * dim);
    gt_rand_normal(real, (size_t)n_real * dim, 1, GT_PURPOSE(GT_RNG_TEST, 60), 0, 0);
    gt_rand_normal(gen, (size_t)n_gen * dim, 1, GT_PURPOSE(GT_RNG_TEST, 60), 0, 1);
    gt_rand_normal(test, (size_t)n_gen * dim, 1, GT_PURPOSE(GT_RNG_TEST, 60), 0, 2);
    for (size_t i = 0; i < (size_t)n_gen * dim; i++) gen[i] = 1.1f * gen[i] + 0.05f;
    printf("generated %d x real %d, dim %d, 1 BLAS thread\n", n_gen, n_real, dim);

    double t0 = gt_now(), total = 0;
    gt_gauss_stats a, b;
    gt_gauss_stats_init(&a, dim);
    gt_gauss_stats_init(&b, dim);
    gt_gauss_stats_add(&a, real, n_real);
    gt_gauss_stats_add(&b, gen, n_gen);
    double fid = gt_fid(&a, &b), t = gt_now() - t0;
    total += t;
    printf("FID                 %10.4f   %6.2f s\n", fid, t);

    t0 = gt_now();
    gt_kid_result kid = gt_kid(real, n_real, gen, n_gen, dim, GT_KID_SUBSETS, GT_KID_SUBSET_SIZE, 1);
    t = gt_now() - t0;
    total += t;
    printf("KID                 %10.6f   %6.2f s   (std %.6f, %d subsets of %d)\n", kid.mean, t, kid.std, kid.subsets,
           kid.subset_size);

    t0 = gt_now();
    float *real_pr = gt_alloc_floats(n_real), *real_dc = gt_alloc_floats(n_real), *gen_pr = gt_alloc_floats(n_gen);
    gt_prdc_radii(real_pr, real_dc, GT_PR_K, GT_DC_K, real, n_real, dim, 0, n_real);
    double t_rr = gt_now() - t0;
    gt_prdc_radii(gen_pr, NULL, GT_PR_K, GT_PR_K, gen, n_gen, dim, 0, n_gen);
    double t_rg = gt_now() - t0 - t_rr;
    gt_prdc_counts c;
    memset(&c, 0, sizeof c);
    gt_prdc_count_fake(&c, gen, 0, n_gen, real, n_real, real_pr, real_dc, dim);
    double t_cf = gt_now() - t0 - t_rr - t_rg;
    gt_prdc_count_real(&c, real, 0, n_real, real_dc, gen, n_gen, gen_pr, dim);
    double t_cr = gt_now() - t0 - t_rr - t_rg - t_cf;
    gt_prdc p = gt_prdc_finish(&c, GT_DC_K);
    t = gt_now() - t0;
    total += t;
    printf("precision/recall    %6.4f %6.4f\ndensity/coverage    %6.4f %6.4f   %6.2f s   (radii real %.2f s, radii gen "
           "%.2f s, gen queries %.2f s, real queries %.2f s)\n",
           p.precision, p.recall, p.density, p.coverage, t, t_rr, t_rg, t_cf, t_cr);
    printf("FID+KID+PR+DC                    %6.2f s\n", total);

    t0 = gt_now();
    gt_ct_result ct = gt_data_copying_ct(real, n_real, test, n_gen, gen, n_gen, dim, GT_CT_CELLS, GT_CT_MIN_GEN, 1);
    printf("C_T                 %10.4f   %6.2f s   (%d of %d cells)\n", ct.c_t, gt_now() - t0, ct.cells_used,
           ct.cells);
    t0 = gt_now();
    double share = gt_closer_to_train_share(gen, n_gen, real, n_real, test, n_gen, dim, 1);
    printf("closer-to-train     %10.4f   %6.2f s\n", share, gt_now() - t0);

    gt_free(gen_pr);
    gt_free(real_dc);
    gt_free(real_pr);
    gt_gauss_stats_free(&b);
    gt_gauss_stats_free(&a);
    gt_free(test);
    gt_free(gen);
    gt_free(real);
    return 0;
}
