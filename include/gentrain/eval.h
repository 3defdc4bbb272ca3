/* eval: evaluation metrics of generative models, as plain functions over
 * feature arrays (features in, numbers out). No MPI, no files, no config.
 *
 * Arrays are row-major: x [n,dim] is n rows of dim floats. Randomness comes
 * from Philox streams GT_PURPOSE(GT_RNG_EVAL, GT_EVAL_RNG_*) keyed by the
 * seed argument, so every number is reproducible.
 *
 * Splitting. Every metric that is worth spreading over MPI ranks comes as
 * pieces that take a row range [first, last) of the queries (or a range of
 * subsets) and produce sums or counts, plus a finish that turns the summed
 * pieces into the metric. A distributed caller gives each rank a slice,
 * sums the pieces over ranks (MPI_Allreduce with MPI_SUM; the buffers are
 * flat arrays of double or int64_t) and finishes on any rank.
 * src/eval/README.md describes each metric, its formula and reference. */
#ifndef GENTRAIN_EVAL_H
#define GENTRAIN_EVAL_H

#include <stddef.h>
#include <stdint.h>

/* Sub-purposes of GT_RNG_EVAL. */
enum gt_eval_rng {
    GT_EVAL_RNG_KID = 1,     /* KID subsets: step = subset, index = 0 (set a) or 1 (set b) */
    GT_EVAL_RNG_KMEANS,      /* k-means++ seeding: step = centre */
    GT_EVAL_RNG_IWAE,        /* IWAE noise: step = example, index = sample */
    GT_EVAL_RNG_MEMORIZATION, /* equal-size reference subsets: index = 0 (train) or 1 (test) */
    GT_EVAL_RNG_LATENT,       /* gentrain eval: latent of generated sample i: index = i */
    GT_EVAL_RNG_SUBSET        /* gentrain eval: reference subsets of the data: step = which subset */
};

/* ---- helpers ------------------------------------------------------------ */

/* idx [m]: m distinct indices of [0, n), drawn without replacement (partial
 * Fisher-Yates over the stream (seed, purpose, step, index)), in draw order. */
void gt_draw_subset(int *idx, int n, int m, uint64_t seed, uint32_t purpose, uint64_t step, uint64_t index);
/* x [*,dim], idx [m] -> out [m,dim] = x[idx] */
void gt_gather_rows(float *out, const float *x, const int *idx, int m, int dim);

/* ---- FID: Fréchet distance of Gaussian fits (Heusel et al. 2017) ---------
 * Statistics are sums, so they can be accumulated in pieces and merged by
 * adding: buf = [count, sum [dim], sum of outer products x x^T [dim,dim]],
 * all double. A distributed caller sums buf over ranks (len doubles). */
typedef struct {
    int dim;
    size_t len;  /* 1 + dim + dim*dim */
    double *buf; /* [count | sum [dim] | outer [dim,dim] (full, symmetric)] */
} gt_gauss_stats;

void gt_gauss_stats_init(gt_gauss_stats *s, int dim); /* zeroed */
void gt_gauss_stats_free(gt_gauss_stats *s);
/* x [n,dim]: add n rows */
void gt_gauss_stats_add(gt_gauss_stats *s, const float *x, int n);
/* into += from (same dim) */
void gt_gauss_stats_merge(gt_gauss_stats *into, const gt_gauss_stats *from);
double gt_gauss_stats_count(const gt_gauss_stats *s);
/* -> mean [dim], cov [dim,dim]: the unbiased covariance (divides by count - 1, as np.cov) */
void gt_gauss_stats_moments(const gt_gauss_stats *s, double *mean, double *cov);
/* FID of the Gaussian fits of two sets (each count >= 2). */
double gt_fid(const gt_gauss_stats *a, const gt_gauss_stats *b);
/* ||mean_a - mean_b||^2 + tr cov_a + tr cov_b - 2 tr sqrt(cov_a cov_b); covariances symmetric PSD [dim,dim]. */
double gt_fid_moments(const double *mean_a, const double *cov_a, const double *mean_b, const double *cov_b, int dim);
/* tr sqrt(cov_a cov_b) = tr sqrt(sqrt(cov_a) cov_b sqrt(cov_a)), as TF-GAN's trace_sqrt_product. */
double gt_trace_sqrt_product(const double *cov_a, const double *cov_b, int dim);

/* ---- KID: kernel inception distance (Bińkowski et al. 2018) --------------
 * Unbiased MMD^2 with k(x,y) = (x.y/dim + 1)^3 over random subsets of equal
 * size (subset s draws its rows of a and of b without replacement). */
#define GT_KID_SUBSETS 100
#define GT_KID_SUBSET_SIZE 1000
/* the subset size used: min(subset_size, n_a, n_b) */
int gt_kid_subset_size(int n_a, int n_b, int subset_size);
/* idx_a, idx_b [size]: the rows of subset s (size = gt_kid_subset_size) */
void gt_kid_subset_rows(int *idx_a, int *idx_b, int n_a, int n_b, int size, uint64_t seed, int s);
/* x [m,dim], y [m,dim] (m >= 2) -> unbiased MMD^2 with the cubic kernel */
double gt_mmd2_poly3(const float *x, const float *y, int m, int dim);
/* a [n_a,dim], b [n_b,dim] -> mmd2 [last-first]: subsets s in [first, last).
 * Subset s is the same whichever range computes it: split subsets over ranks,
 * write each value at position s of a zeroed [subsets] array and sum it. */
void gt_kid_subsets(double *mmd2, const float *a, int n_a, const float *b, int n_b, int dim, int subset_size,
                    uint64_t seed, int first, int last);
typedef struct {
    double mean, std; /* over subsets; std divides by the number of subsets (np.std, as torch-fidelity) */
    int subsets, subset_size;
} gt_kid_result;
gt_kid_result gt_kid_summary(const double *mmd2, int subsets, int subset_size);
gt_kid_result gt_kid(const float *a, int n_a, const float *b, int n_b, int dim, int subsets, int subset_size,
                     uint64_t seed);

/* ---- nearest neighbours (GEMM in tiles of bounded memory) ---------------- */

/* For query rows i in [first, last) of q [*,dim]: the k nearest rows of
 * ref [n_ref,dim] by Euclidean distance, nearest first:
 * dist [last-first, k] (float) and index [last-first, k] (NULL: not wanted).
 * exclude_self: q and ref are the same set and row i is not its own
 * neighbour (duplicates of it are). Candidates come from float GEMM
 * distances (||q||^2 + ||r||^2 - 2 q.r, in tiles of a few MB) with a margin
 * for their rounding error, then their distances are recomputed exactly in
 * double: the result is that of an exact search, ties to the lower index.
 * Needs k <= n_ref (n_ref - 1 with exclude_self). */
void gt_knn(float *dist, int *index, int k, const float *q, int first, int last, const float *ref, int n_ref,
            int dim, int exclude_self);

/* ---- improved precision/recall (Kynkäänniemi et al. 2019, k = 3) and ------
 * density/coverage (Naeem et al. 2020, k = 5). The radius of a point is the
 * distance to its k-th nearest other point of its own set; precision/recall
 * use closed balls (dist <= r, as Kynkäänniemi et al.'s code), density/
 * coverage open balls (dist < r, as Naeem et al.'s code). */
#define GT_PR_K 3
#define GT_DC_K 5
/* rows [first,last) of x [n,dim] -> radius_pr, radius_dc [last-first]: k-th nearest-other-row distances (k_pr, k_dc) */
void gt_prdc_radii(float *radius_pr, float *radius_dc, int k_pr, int k_dc, const float *x, int n, int dim, int first,
                   int last);
/* Counts; a distributed caller sums them field by field (6 int64_t). */
typedef struct {
    int64_t n_fake;          /* fake queries counted */
    int64_t fake_in_real;    /* fake points inside at least one real k_pr ball: precision numerator */
    int64_t fake_real_balls; /* sum over fake points of the real k_dc balls containing them: density numerator */
    int64_t n_real;          /* real queries counted */
    int64_t real_in_fake;    /* real points inside at least one fake k_pr ball: recall numerator */
    int64_t real_covered;    /* real points whose k_dc ball holds a fake point: coverage numerator */
} gt_prdc_counts;
/* fake rows [first,last) of fake [*,dim] against all of real [n_real,dim] with its radii [n_real] */
void gt_prdc_count_fake(gt_prdc_counts *c, const float *fake, int first, int last, const float *real, int n_real,
                        const float *real_radius_pr, const float *real_radius_dc, int dim);
/* real rows [first,last) of real [*,dim] (its k_dc radii: real_radius_dc [*], indexed by row) against all of
 * fake [n_fake,dim] with its k_pr radii [n_fake] */
void gt_prdc_count_real(gt_prdc_counts *c, const float *real, int first, int last, const float *real_radius_dc,
                        const float *fake, int n_fake, const float *fake_radius_pr, int dim);
typedef struct {
    double precision, recall, density, coverage;
} gt_prdc;
gt_prdc gt_prdc_finish(const gt_prdc_counts *c, int k_dc);
/* everything in one process */
gt_prdc gt_prdc_compute(const float *real, int n_real, const float *fake, int n_fake, int dim, int k_pr, int k_dc);

/* ---- class histograms (from a classifier's logits) ---------------------- */

/* logits [n,classes] -> counts [classes] += histogram of the argmax (first maximum on ties) */
void gt_class_hist_add(int64_t *counts, const float *logits, int n, int classes);
typedef struct {
    int classes;
    int covered;         /* classes with at least one generated sample */
    double entropy;      /* H(p_gen) in nats; log(classes) is uniform */
    double kl_gen_data;  /* KL(p_gen || p_data) in nats; +inf if gen has a class data never has */
    double kl_data_gen;  /* KL(p_data || p_gen); +inf when a data class is missing from gen */
    double tv;           /* total variation 1/2 sum |p_gen - p_data| */
} gt_class_stats;
gt_class_stats gt_class_hist_compare(const int64_t *gen_counts, const int64_t *data_counts, int classes);
/* Classifier score (the Inception Score of Salimans et al. 2016 on our
 * classifier): exp(E_x KL(p(y|x) || p(y))). Sums: acc [2 + classes] =
 * [count, sum_x sum_y p log p, sum_x p(y|x) [classes]]; zero it, add, sum over ranks. */
#define GT_CLASS_SCORE_LEN(classes) (2 + (size_t)(classes))
void gt_class_score_add(double *acc, const float *logits, int n, int classes);
double gt_class_score(const double *acc, int classes);

/* ---- 2-D mixtures (toy data) --------------------------------------------
 * counts [GT_MIXTURE_COUNTS_LEN(modes)] = [samples, high-quality samples,
 * high-quality samples per nearest mode [modes]]; zero it, add, sum over ranks.
 * A sample is high quality when it lies within 3 std of its nearest centre. */
#define GT_MIXTURE_COUNTS_LEN(modes) (2 + (size_t)(modes))
#define GT_MIXTURE_QUALITY_STD 3.0
/* x [n,2], centres [modes,2] */
void gt_mixture_count(int64_t *counts, const float *x, int n, const float *centres, int modes, double std);
typedef struct {
    int modes;
    int modes_covered;         /* modes with at least min_count high-quality samples */
    double high_quality_share; /* high-quality samples / samples */
    double reverse_kl;         /* KL(p_hq || uniform) of the modes of the high-quality samples; NaN if there are none */
} gt_mixture_stats;
gt_mixture_stats gt_mixture_summary(const int64_t *counts, int modes, int64_t min_count);

/* ---- memorization --------------------------------------------------------
 * Nearest-neighbour distances of generated points to the training set are
 * gt_knn(dist, index, 1, gen, first, last, train, n_train, dim, 0).
 *
 * Closer-to-train share: the generated points whose nearest neighbour in
 * an equal-size reference of training points is closer than their nearest
 * neighbour in the same number of held-out test points (ties count 1/2).
 * Both references have size s = min(n_train, n_test): the larger set is
 * subsampled (Philox, seed). Fresh samples of the data distribution score
 * about 1/2; a generator that copies training points that are in the
 * reference scores 1. When n_train > s only a share s/n_train of the
 * training set is in the reference, so a copier of the whole training set
 * scores about 1/2 + s/(2 n_train): use the data-copying test C_T for that. */
void gt_memorization_refs(int *train_idx, int *test_idx, int *size, int n_train, int n_test, uint64_t seed);
/* generated rows [first,last) against train_ref [n_ref,dim] and test_ref [n_ref,dim] -> count (ties 1/2) */
double gt_closer_to_train_count(const float *gen, int first, int last, const float *train_ref,
                                const float *test_ref, int n_ref, int dim);
double gt_closer_to_train_share(const float *gen, int n_gen, const float *train, int n_train, const float *test,
                                int n_test, int dim, uint64_t seed);

/* Data-copying test C_T (Meehan, Chaudhuri, Dasgupta, AISTATS 2020).
 * Cells: k-means on the training features (k-means++ seeding from Philox,
 * then Lloyd's iterations until no assignment changes or max_iter). */
#define GT_CT_CELLS 50
#define GT_CT_MAX_ITER 20 /* Lloyd iterations: any fixed partition is valid for the test */
#define GT_CT_MIN_GEN 20 /* tau = 20/m: cells need more than 20 generated samples */
/* x [n,dim] -> centroid [cells,dim]; returns the Lloyd iterations done */
int gt_kmeans(float *centroid, const float *x, int n, int dim, int cells, int max_iter, uint64_t seed);
/* rows [first,last) of x -> cell [last-first]: index of the nearest centroid */
void gt_nearest_cell(int *cell, const float *x, int first, int last, const float *centroid, int cells, int dim);
/* rows [first,last) of q with their cells q_cell [*] (indexed by row) -> dist [last-first]:
 * distance to the nearest training point of the same cell (+inf if the cell has none) */
void gt_cell_nn_dist(float *dist, const float *q, const int *q_cell, int first, int last, const float *train,
                     const int *train_cell, int n_train, int dim, int cells);
typedef struct {
    double c_t;     /* sum_{cells used} P_n(cell) Z_U(cell) / sum_{cells used} P_n(cell); NaN if no cell is used */
    int cells;      /* cells of the partition */
    int cells_used; /* cells with more than min_gen generated samples and at least one test and one train point */
} gt_ct_result;
/* test distances/cells [n_test], generated distances/cells [n_gen] (from
 * gt_cell_nn_dist) -> C_T; z [cells] (or NULL): each cell's Z_U (NaN if unused) */
gt_ct_result gt_ct_from_dists(const float *test_dist, const int *test_cell, int n_test, const float *gen_dist,
                              const int *gen_cell, int n_gen, int cells, int min_gen, double *z);
/* everything in one process: k-means, cells, distances, C_T */
gt_ct_result gt_data_copying_ct(const float *train, int n_train, const float *test, int n_test, const float *gen,
                                int n_gen, int dim, int cells, int min_gen, uint64_t seed);
/* Mann-Whitney U of x [m] against y [n]: #{(i,j): x_i > y_j} + #ties/2; and
 * its Z score (U - mn/2) / sqrt(mn(m+n+1)/12) */
double gt_mann_whitney_u(const float *x, int m, const float *y, int n);
double gt_mann_whitney_z(double u, int m, int n);

/* ---- VAE likelihoods: IWAE (Burda et al. 2016) --------------------------- */

/* log (1/n) sum_i exp(x_i), stable (NaN-free for finite x; -inf for all -inf) */
double gt_log_mean_exp(const double *x, int n);
/* log N(x; mu, diag exp(logvar)), x/mu/logvar [n] */
double gt_log_normal_diag(const float *x, const float *mu, const float *logvar, int n);
/* log N(x; 0, I), x [n] */
double gt_log_std_normal(const float *x, int n);
/* KL(N(mu, diag exp(logvar)) || N(0, I)), closed form */
double gt_kl_diag_std_normal(const float *mu, const float *logvar, int n);
/* Caller's decoder: log_lik [n] = log p(x | z_i) for the rows z [n,z_dim]
 * (the example x is the caller's, in ctx). */
typedef void (*gt_log_lik_fn)(double *log_lik, const float *z, int n, int z_dim, void *ctx);
typedef struct {
    double iwae; /* log (1/k) sum_i w_i, w_i = p(x|z_i) p(z_i) / q(z_i|x): <= log p(x), -> log p(x) as k grows */
    double elbo; /* (1/k) sum_i log w_i over the same z_i: a Monte Carlo ELBO, <= iwae always (Jensen) */
} gt_iwae_result;
#define GT_IWAE_K 5000
/* For ONE example with q(z|x) = N(mu, diag exp(logvar)) [z_dim]: k samples
 * z_i = mu + exp(logvar/2) eps_i, eps_i from the stream (seed, example, i),
 * evaluated chunk rows at a time (the result does not depend on chunk). */
gt_iwae_result gt_iwae(const float *mu, const float *logvar, int z_dim, int k, int chunk, uint64_t seed,
                       uint64_t example, gt_log_lik_fn log_lik, void *ctx);

#endif
