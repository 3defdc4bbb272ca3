/* The evaluation metrics of a generative model over MPI ranks
 * (include/gentrain/app.h; the metrics themselves are src/eval's).
 *
 * Samples: row i of n comes from the latent Philox normal(seed, EVAL/LATENT,
 * 0, i) (or from the given samples). Rank r generates the chunks of
 * GT_EVAL_CHUNK rows that gt_dist_rows gives it and computes their features;
 * the features (n x dim floats) are gathered, so that every rank holds all
 * of them. The costly searches are split the same way and their per-row
 * results gathered: PR/DC radii and ball counts, nearest neighbours, C_T's
 * cells and distances, KID's subsets, D's outputs, the IWAE of each example.
 * Every per-row or per-subset number is computed in the same chunk whatever
 * the number of ranks, counts are summed as integers and sums of doubles are
 * taken over the gathered rows in row order, so the results are the same on
 * any number of ranks (tests/eval_dist.sh).
 *
 * Reference subsets: PR/DC compare the n samples with s = min(n, n_set)
 * rows of the set drawn without replacement (EVAL/SUBSET, step 0: train,
 * 1: test; all rows when s = n_set), so that both sides have the same size;
 * FID uses every row of the set and KID draws its own subsets. */
#include "eval_internal.h"

#include "gentrain/dist.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const gt_metric_names[GT_METRIC_COUNT] = {"fid",  "kid",          "pr",   "dc",   "classes",
                                                      "modes", "memorization", "elbo", "iwae", "discriminator"};

unsigned gt_metrics_applicable(int kind, int points) {
    unsigned m = GT_METRIC_FID | GT_METRIC_KID | GT_METRIC_PR | GT_METRIC_DC | GT_METRIC_MEMORIZATION;
    m |= points ? GT_METRIC_MODES : GT_METRIC_CLASSES;
    if (kind == GT_MODEL_VAE) m |= GT_METRIC_ELBO | GT_METRIC_IWAE;
    if (kind == GT_MODEL_GAN) m |= GT_METRIC_DISCRIMINATOR;
    return m;
}

static void metric_list(unsigned bits, char *out, size_t cap) {
    size_t used = 0;
    out[0] = 0;
    for (int i = 0; i < GT_METRIC_COUNT; i++)
        if (bits & (1u << i) && used < cap)
            used += (size_t)snprintf(out + used, cap - used, "%s%s", used ? ", " : "", gt_metric_names[i]);
}

gt_status gt_metrics_parse(const char *list, unsigned applicable, const char *where, unsigned *out) {
    *out = 0;
    char buf[1024], allowed[512];
    metric_list(applicable, allowed, sizeof allowed);
    GT_ENSURE(strlen(list) < sizeof buf, "%s: metric list too long", where);
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *name = strtok_r(buf, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        while (*name == ' ') name++;
        name[strcspn(name, " ")] = 0;
        if (!strcmp(name, "all")) {
            *out |= applicable;
            continue;
        }
        if (!strcmp(name, "default")) {
            *out |= applicable & (GT_METRIC_FID | GT_METRIC_CLASSES | GT_METRIC_MODES | GT_METRIC_DISCRIMINATOR |
                                  GT_METRIC_ELBO);
            continue;
        }
        int found = -1;
        for (int i = 0; i < GT_METRIC_COUNT && found < 0; i++)
            if (!strcmp(name, gt_metric_names[i])) found = i;
        if (found < 0)
            return GT_ERROR("%s: unknown metric '%s'; metrics: %s (or all, default)", where, name, allowed);
        if (!(applicable & (1u << found)))
            return GT_ERROR("%s: metric '%s' does not apply here (it needs %s); these do: %s", where, name,
                            found == 4   ? "image data and a classifier"
                            : found == 5 ? "2-D mixture data (data.kind = toy)"
                            : found == 9 ? "a GAN"
                                         : "a VAE",
                            allowed);
        *out |= 1u << found;
    }
    if (!*out) return GT_ERROR("%s: no metric given; metrics: %s", where, allowed);
    return GT_OK;
}

/* ---- results ------------------------------------------------------------------- */

static void put(gt_eval_result *r, const char *name, double v) {
    GT_ASSERT(r->nv < GT_EVAL_MAX_VALUES, "too many evaluation values (%s)", name);
    r->name[r->nv] = name;
    r->value[r->nv++] = v;
}

/* Takes ownership of data. */
static void put_array(gt_eval_result *r, const char *name, void *data, int64_t len, int is_int) {
    GT_ASSERT(r->na < GT_EVAL_MAX_ARRAYS, "too many evaluation arrays (%s)", name);
    r->array[r->na++] = (gt_eval_array){name, len, is_int, data};
}

static void put_time(gt_eval_result *r, const char *name, double t0) {
    GT_ASSERT(r->nt < GT_EVAL_MAX_TIMES, "too many evaluation timings (%s)", name);
    r->time_name[r->nt] = name;
    r->seconds[r->nt++] = gt_now() - t0;
}

void gt_eval_result_free(gt_eval_result *r) {
    if (r->live) {
        gt_eval_result_free(r->live);
        gt_free(r->live);
    }
    for (int i = 0; i < r->na; i++) gt_free(r->array[i].data);
    memset(r, 0, sizeof *r);
}

double gt_eval_value(const gt_eval_result *r, const char *name) {
    for (int i = 0; i < r->nv; i++)
        if (!strcmp(r->name[i], name)) return r->value[i];
    return NAN;
}

/* ---- what is evaluated ------------------------------------------------------------ */

typedef struct {
    gt_evaluator *ev;
    gt_model *m;         /* generates the samples, or NULL */
    const float *given;  /* [n, data] given samples, or NULL */
    int64_t n;
    uint64_t seed;
    int64_t first, last; /* this rank's rows */
    size_t size;         /* floats per sample */
    float *x;            /* [last-first, size]: this rank's samples, in [0,1] (images) or as they are (points) */
    float *feat;         /* [n, dim] every sample's features (gathered) */
    float *logits;       /* [n, classes] (images) */
} samples_t;

/* This rank's samples and every sample's features. */
static void make_samples(samples_t *s) {
    gt_evaluator *ev = s->ev;
    int F = ev->dim, K = ev->classes;
    gt_eval_my_rows(s->n, GT_EVAL_CHUNK, &s->first, &s->last);
    int64_t rows = s->last - s->first;
    s->x = gt_alloc_floats((size_t)(rows > 0 ? rows : 1) * s->size);
    s->feat = F ? gt_alloc_floats((size_t)s->n * F) : NULL;
    if (ev->classifier) s->logits = gt_alloc_floats((size_t)s->n * K);
    float *z = s->m ? gt_alloc_floats((size_t)GT_EVAL_CHUNK * s->m->z_dim) : NULL;
    for (int64_t r = s->first; r < s->last; r += GT_EVAL_CHUNK) {
        int B = (int)(s->last - r < GT_EVAL_CHUNK ? s->last - r : GT_EVAL_CHUNK);
        float *x = s->x + (size_t)(r - s->first) * s->size;
        if (s->m) {
            int Z = s->m->z_dim;
            for (int b = 0; b < B; b++)
                gt_rand_normal(z + (size_t)b * Z, (size_t)Z, s->seed, GT_PURPOSE(GT_RNG_EVAL, GT_EVAL_RNG_LATENT), 0,
                               (uint64_t)(r + b));
            gt_model_generate(s->m, z, B, x);
            if (!ev->points && gt_model_pixel_scale(s->m) == GT_SCALE_SIGNED)
                for (size_t j = 0; j < (size_t)B * s->size; j++) x[j] = 0.5f * (x[j] + 1.0f);
        } else {
            memcpy(x, s->given + (size_t)r * s->size, sizeof(float) * (size_t)B * s->size);
        }
        if (ev->points) memcpy(s->feat + (size_t)r * F, x, sizeof(float) * (size_t)B * F);
        else if (ev->classifier) gt_model_features(ev->classifier, x, B, s->feat + (size_t)r * F, s->logits + (size_t)r * K);
    }
    gt_free(z);
    if (s->feat) gt_dist_allgather_rows(s->feat, s->n, GT_EVAL_CHUNK, sizeof(float) * (size_t)F);
    if (s->logits) gt_dist_allgather_rows(s->logits, s->n, GT_EVAL_CHUNK, sizeof(float) * (size_t)K);
}

/* ---- feature-space metrics --------------------------------------------------------- */

static void fid(samples_t *s, gt_eval_result *r) {
    gt_gauss_stats g;
    gt_gauss_stats_init(&g, s->ev->dim);
    gt_gauss_stats_add(&g, s->feat, (int)s->n);
    put(r, "fid_train", gt_fid(&g, &s->ev->train_stats));
    put(r, "fid_test", gt_fid(&g, &s->ev->test_stats));
    gt_gauss_stats_free(&g);
}

static void kid_against(samples_t *s, const float *ref, int64_t n_ref, const char *mean_name, const char *std_name,
                        gt_eval_result *r) {
    int size = gt_kid_subset_size((int)s->n, (int)n_ref, GT_KID_SUBSET_SIZE);
    double mmd2[GT_KID_SUBSETS] = {0};
    int64_t first, last;
    gt_eval_my_rows(GT_KID_SUBSETS, 1, &first, &last);
    if (last > first)
        gt_kid_subsets(mmd2 + first, s->feat, (int)s->n, ref, (int)n_ref, s->ev->dim, size, s->seed, (int)first,
                       (int)last);
    gt_dist_allreduce_sum_f64(mmd2, GT_KID_SUBSETS); /* each subset on one rank, zeros elsewhere: exact */
    gt_kid_result k = gt_kid_summary(mmd2, GT_KID_SUBSETS, size);
    put(r, mean_name, k.mean);
    put(r, std_name, k.std);
}

/* k-th nearest-other-row radii of x [n, dim] (k = 3 and 5), split and gathered. */
static void radii(float *r_pr, float *r_dc, const float *x, int64_t n, int dim) {
    int64_t first, last;
    gt_eval_my_rows(n, GT_EVAL_CHUNK, &first, &last);
    for (int64_t c = first; c < last; c += GT_EVAL_CHUNK) {
        int64_t e = last - c < GT_EVAL_CHUNK ? last : c + GT_EVAL_CHUNK;
        gt_prdc_radii(r_pr + c, r_dc + c, GT_PR_K, GT_DC_K, x, (int)n, dim, (int)c, (int)e);
    }
    gt_dist_allgather_rows(r_pr, n, GT_EVAL_CHUNK, sizeof(float));
    gt_dist_allgather_rows(r_dc, n, GT_EVAL_CHUNK, sizeof(float));
}

/* PR/DC against s = min(n, n_set) rows of a set (subset `which`). */
static void prdc_against(samples_t *s, const float *set, int64_t n_set, int which, const float *fake_pr,
                         unsigned metrics, gt_eval_result *r) {
    static const char *const names[2][4] = {{"precision_train", "recall_train", "density_train", "coverage_train"},
                                            {"precision_test", "recall_test", "density_test", "coverage_test"}};
    int dim = s->ev->dim;
    int64_t m = s->n < n_set ? s->n : n_set;
    int *idx = gt_alloc(sizeof(int) * (size_t)m);
    if (m == n_set)
        for (int64_t i = 0; i < m; i++) idx[i] = (int)i;
    else
        gt_draw_subset(idx, (int)n_set, (int)m, s->seed, GT_PURPOSE(GT_RNG_EVAL, GT_EVAL_RNG_SUBSET), (uint64_t)which, 0);
    float *real = gt_alloc_floats((size_t)m * dim), *real_pr = gt_alloc_floats((size_t)m),
          *real_dc = gt_alloc_floats((size_t)m);
    gt_gather_rows(real, set, idx, (int)m, dim);
    radii(real_pr, real_dc, real, m, dim);
    gt_prdc_counts c = {0};
    int64_t first, last;
    gt_eval_my_rows(s->n, GT_EVAL_CHUNK, &first, &last);
    gt_prdc_count_fake(&c, s->feat, (int)first, (int)last, real, (int)m, real_pr, real_dc, dim);
    gt_eval_my_rows(m, GT_EVAL_CHUNK, &first, &last);
    gt_prdc_count_real(&c, real, (int)first, (int)last, real_dc, s->feat, (int)s->n, fake_pr, dim);
    int64_t sums[6] = {c.n_fake, c.fake_in_real, c.fake_real_balls, c.n_real, c.real_in_fake, c.real_covered};
    gt_dist_allreduce_sum_i64(sums, 6);
    c = (gt_prdc_counts){sums[0], sums[1], sums[2], sums[3], sums[4], sums[5]};
    gt_prdc p = gt_prdc_finish(&c, GT_DC_K);
    if (metrics & GT_METRIC_PR) {
        put(r, names[which][0], p.precision);
        put(r, names[which][1], p.recall);
    }
    if (metrics & GT_METRIC_DC) {
        put(r, names[which][2], p.density);
        put(r, names[which][3], p.coverage);
    }
    gt_free(idx);
    gt_free(real);
    gt_free(real_pr);
    gt_free(real_dc);
}

static void classes(samples_t *s, gt_eval_result *r) {
    gt_evaluator *ev = s->ev;
    int K = ev->classes;
    int64_t *hist = gt_alloc(sizeof(int64_t) * K), *data = gt_alloc(sizeof(int64_t) * K);
    gt_class_hist_add(hist, s->logits, (int)s->n, K);
    memcpy(data, ev->train_hist, sizeof(int64_t) * K);
    gt_class_stats c = gt_class_hist_compare(hist, data, K);
    double *acc = gt_alloc(sizeof(double) * GT_CLASS_SCORE_LEN(K));
    gt_class_score_add(acc, s->logits, (int)s->n, K);
    put(r, "classes_covered", c.covered);
    put(r, "classes", K);
    put(r, "class_entropy", c.entropy);
    put(r, "class_kl", c.kl_gen_data);
    put(r, "class_kl_reverse", c.kl_data_gen);
    put(r, "class_tv", c.tv);
    put(r, "classifier_score", gt_class_score(acc, K));
    put_array(r, "class_hist", hist, K, 1);
    put_array(r, "data_class_hist", data, K, 1);
    gt_free(acc);
}

static void modes(samples_t *s, gt_eval_result *r) {
    const gt_dataset *train = s->ev->train;
    float centres[2 * 64];
    int k = gt_toy_centres(train->toy, centres, 64);
    GT_ASSERT(k >= 1 && k <= 64 && s->ev->dim == 2, "modes of toy data %d with %d centres", (int)train->toy, k);
    int64_t *counts = gt_alloc(sizeof(int64_t) * GT_MIXTURE_COUNTS_LEN(k));
    gt_mixture_count(counts, s->feat, (int)s->n, centres, k, train->toy_std);
    gt_mixture_stats m = gt_mixture_summary(counts, k, 1);
    put(r, "modes_covered", m.modes_covered);
    put(r, "modes", k);
    put(r, "high_quality_share", m.high_quality_share);
    put(r, "mode_reverse_kl", m.reverse_kl);
    int64_t *hist = gt_alloc(sizeof(int64_t) * k);
    memcpy(hist, counts + 2, sizeof(int64_t) * k);
    put_array(r, "mode_hist", hist, k, 1);
    gt_free(counts);
}

static double mean_of(const float *x, int64_t n) {
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += x[i];
    return n ? sum / (double)n : NAN;
}

static gt_status memorization(samples_t *s, gt_eval_result *r) {
    gt_evaluator *ev = s->ev;
    GT_TRY(gt_evaluator_memorization(ev));
    int64_t n = s->n, n_train = ev->train->n, n_test = ev->test->n;
    int dim = ev->dim;
    /* nearest training points of the samples, in feature space and (images) pixel space */
    float *nn_feat = gt_alloc_floats((size_t)n);
    float *nn_pix = ev->points ? NULL : gt_alloc_floats((size_t)n);
    for (int64_t c = s->first; c < s->last; c += GT_EVAL_CHUNK) {
        int64_t e = s->last - c < GT_EVAL_CHUNK ? s->last : c + GT_EVAL_CHUNK;
        gt_knn(nn_feat + c, NULL, 1, s->feat, (int)c, (int)e, ev->train_feat, (int)n_train, dim, 0);
        if (nn_pix)
            gt_knn(nn_pix + c, NULL, 1, s->x, (int)(c - s->first), (int)(e - s->first), ev->train_pixels, (int)n_train,
                   (int)s->size, 0);
    }
    gt_dist_allgather_rows(nn_feat, n, GT_EVAL_CHUNK, sizeof(float));
    if (nn_pix) gt_dist_allgather_rows(nn_pix, n, GT_EVAL_CHUNK, sizeof(float));
    put(r, "nn_feature_gen", mean_of(nn_feat, n));
    put(r, "nn_feature_test", mean_of(ev->test_nn_feature, n_test));
    if (nn_pix) {
        put(r, "nn_pixel_gen", mean_of(nn_pix, n));
        put(r, "nn_pixel_test", mean_of(ev->test_nn_pixel, n_test));
    }
    /* closer to a training point than to a test point (equal-size references) */
    int *train_idx = gt_alloc(sizeof(int) * (size_t)n_train), *test_idx = gt_alloc(sizeof(int) * (size_t)n_test), size;
    gt_memorization_refs(train_idx, test_idx, &size, (int)n_train, (int)n_test, s->seed);
    float *train_ref = gt_alloc_floats((size_t)size * dim), *test_ref = gt_alloc_floats((size_t)size * dim);
    gt_gather_rows(train_ref, ev->train_feat, train_idx, size, dim);
    gt_gather_rows(test_ref, ev->test_feat, test_idx, size, dim);
    double closer[1] = {gt_closer_to_train_count(s->feat, (int)s->first, (int)s->last, train_ref, test_ref, size, dim)};
    gt_dist_allreduce_sum_f64(closer, 1); /* sums of halves: exact */
    put(r, "closer_to_train", closer[0] / (double)n);
    /* the data-copying test C_T on the training features' k-means cells */
    int *cell = gt_alloc(sizeof(int) * (size_t)n);
    float *cell_dist = gt_alloc_floats((size_t)n);
    gt_nearest_cell(cell + s->first, s->feat, (int)s->first, (int)s->last, ev->centroids, GT_CT_CELLS, dim);
    gt_dist_allgather_rows(cell, n, GT_EVAL_CHUNK, sizeof(int));
    gt_cell_nn_dist(cell_dist + s->first, s->feat, cell, (int)s->first, (int)s->last, ev->train_feat, ev->train_cell,
                    (int)n_train, dim, GT_CT_CELLS);
    gt_dist_allgather_rows(cell_dist, n, GT_EVAL_CHUNK, sizeof(float));
    gt_ct_result ct = gt_ct_from_dists(ev->test_cell_dist, ev->test_cell, (int)n_test, cell_dist, cell, (int)n,
                                       GT_CT_CELLS, GT_CT_MIN_GEN, NULL);
    put(r, "ct", ct.c_t);
    put(r, "ct_cells_used", ct.cells_used);
    put(r, "data_copying", ct.c_t < -3.0 ? 1.0 : 0.0);
    put_array(r, "nn_feature_gen", nn_feat, n, 0);
    if (nn_pix) put_array(r, "nn_pixel_gen", nn_pix, n, 0);
    gt_free(train_idx);
    gt_free(test_idx);
    gt_free(train_ref);
    gt_free(test_ref);
    gt_free(cell);
    gt_free(cell_dist);
    return GT_OK;
}

/* ---- model-specific metrics ------------------------------------------------------------ */

/* Per-example bounds of the first n examples of ds (examples keyed by base + i). */
static void likelihood_of(gt_model *m, const gt_dataset *ds, int64_t n, int k, uint64_t seed, uint64_t base,
                          double *iwae, double *elbo) {
    size_t size = gt_shape_size(ds->shape);
    double *rows = gt_alloc(sizeof(double) * 2 * (size_t)n); /* [n, 2] = (iwae, elbo) */
    float *x = gt_alloc_floats(size);
    int64_t first, last;
    gt_eval_my_rows(n, 1, &first, &last);
    for (int64_t i = first; i < last; i++) {
        gt_eval_data_rows(ds, i, i + 1, GT_SCALE_UNIT, x);
        gt_iwae_result res;
        gt_model_iwae(m, x, 1, k, seed, base + (uint64_t)i, &res);
        rows[2 * i] = res.iwae;
        rows[2 * i + 1] = res.elbo;
    }
    gt_dist_allgather_rows(rows, n, 1, 2 * sizeof(double));
    for (int64_t i = 0; i < n; i++) iwae[i] = rows[2 * i], elbo[i] = rows[2 * i + 1];
    gt_free(rows);
    gt_free(x);
}

static double mean_d(const double *x, int64_t n) {
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += x[i];
    return sum / (double)n;
}

static gt_status likelihood(samples_t *s, const gt_options *o, unsigned metrics, gt_eval_result *r) {
    gt_evaluator *ev = s->ev;
    int64_t n = o->likelihood_n;
    if (n > ev->test->n || n > ev->train->n)
        return GT_ERROR("[eval] likelihood_n = %" PRId64 " is more than the data has (%" PRId64 " training, %" PRId64
                        " test examples): lower it",
                        n, ev->train->n, ev->test->n);
    int k = metrics & GT_METRIC_IWAE ? (int)o->iwae_k : 1;
    double *iwae = gt_alloc(sizeof(double) * (size_t)n), *elbo = gt_alloc(sizeof(double) * (size_t)n);
    double v[2][2] = {{NAN, NAN}, {NAN, NAN}};
    for (int set = o->likelihood_train ? 0 : 1; set < 2; set++) {
        double t0 = gt_now();
        likelihood_of(s->m, set ? ev->test : ev->train, n, k, s->seed, set ? 0 : (uint64_t)1 << 40, iwae, elbo);
        v[set][0] = -mean_d(iwae, n);
        v[set][1] = -mean_d(elbo, n);
        put_time(r, set ? "likelihood_test" : "likelihood_train", t0);
    }
    if (metrics & GT_METRIC_ELBO) {
        put(r, "neg_elbo_train", v[0][1]);
        put(r, "neg_elbo_test", v[1][1]);
        put(r, "neg_elbo_gap", v[1][1] - v[0][1]);
    }
    if (metrics & GT_METRIC_IWAE) {
        put(r, "iwae_nll_train", v[0][0]);
        put(r, "iwae_nll_test", v[1][0]);
        put(r, "iwae_nll_gap", v[1][0] - v[0][0]);
        put(r, "iwae_k", k);
    }
    put(r, "likelihood_n", (double)n);
    gt_free(iwae);
    gt_free(elbo);
    return GT_OK;
}

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* Mean sigmoid D(x) over rows of ds given by idx [n] (split, gathered, summed in order). */
static double d_mean(gt_model *m, const gt_dataset *ds, const int *idx, int64_t n) {
    size_t size = gt_shape_size(ds->shape);
    float *x = gt_alloc_floats((size_t)GT_EVAL_CHUNK * size), *logit = gt_alloc_floats((size_t)n);
    int64_t rows[GT_EVAL_CHUNK];
    int64_t first, last;
    gt_eval_my_rows(n, GT_EVAL_CHUNK, &first, &last);
    for (int64_t c = first; c < last; c += GT_EVAL_CHUNK) {
        int B = (int)(last - c < GT_EVAL_CHUNK ? last - c : GT_EVAL_CHUNK);
        for (int b = 0; b < B; b++) rows[b] = idx[c + b];
        gt_dataset_batch(ds, rows, B, GT_SCALE_SIGNED, x, NULL);
        gt_model_discriminate(m, x, B, logit + c);
    }
    gt_dist_allgather_rows(logit, n, GT_EVAL_CHUNK, sizeof(float));
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += sigmoid(logit[i]);
    gt_free(x);
    gt_free(logit);
    return sum / (double)n;
}

static void discriminator(samples_t *s, gt_eval_result *r) {
    gt_evaluator *ev = s->ev;
    int64_t n = ev->train->n < ev->test->n ? ev->train->n : ev->test->n;
    int *train_idx = gt_alloc(sizeof(int) * (size_t)n), *test_idx = gt_alloc(sizeof(int) * (size_t)n);
    if (n == ev->train->n)
        for (int64_t i = 0; i < n; i++) train_idx[i] = (int)i;
    else
        gt_draw_subset(train_idx, (int)ev->train->n, (int)n, s->seed, GT_PURPOSE(GT_RNG_EVAL, GT_EVAL_RNG_SUBSET), 2, 0);
    if (n == ev->test->n)
        for (int64_t i = 0; i < n; i++) test_idx[i] = (int)i;
    else
        gt_draw_subset(test_idx, (int)ev->test->n, (int)n, s->seed, GT_PURPOSE(GT_RNG_EVAL, GT_EVAL_RNG_SUBSET), 3, 0);
    double d_train = d_mean(s->m, ev->train, train_idx, n), d_test = d_mean(s->m, ev->test, test_idx, n);
    /* D on this rank's generated samples (back in D's range) */
    float *logit = gt_alloc_floats((size_t)s->n), *x = gt_alloc_floats((size_t)GT_EVAL_CHUNK * s->size);
    for (int64_t c = s->first; c < s->last; c += GT_EVAL_CHUNK) {
        int B = (int)(s->last - c < GT_EVAL_CHUNK ? s->last - c : GT_EVAL_CHUNK);
        const float *g = s->x + (size_t)(c - s->first) * s->size;
        if (ev->points) memcpy(x, g, sizeof(float) * (size_t)B * s->size);
        else
            for (size_t j = 0; j < (size_t)B * s->size; j++) x[j] = 2.0f * g[j] - 1.0f;
        gt_model_discriminate(s->m, x, B, logit + c);
    }
    gt_dist_allgather_rows(logit, s->n, GT_EVAL_CHUNK, sizeof(float));
    double sum = 0;
    for (int64_t i = 0; i < s->n; i++) sum += sigmoid(logit[i]);
    put(r, "d_train", d_train);
    put(r, "d_test", d_test);
    put(r, "d_gap", d_train - d_test);
    put(r, "d_gen", sum / (double)s->n);
    gt_free(logit);
    gt_free(x);
    gt_free(train_idx);
    gt_free(test_idx);
}

/* ---- the evaluation ------------------------------------------------------------------------ */

static gt_status evaluate(samples_t *s, unsigned metrics, const gt_options *o, gt_eval_result *r) {
    gt_evaluator *ev = s->ev;
    memset(r, 0, sizeof *r);
    r->metrics = metrics;
    r->n = (long)s->n;
    GT_ENSURE(s->n >= 2, "an evaluation needs at least 2 samples, not %" PRId64, s->n);
    GT_ENSURE(s->n <= 16777216, "at most 16777216 samples per evaluation, not %" PRId64, s->n);
    s->size = gt_shape_size(ev->train->shape);
    GT_ASSERT(!(metrics & GT_METRICS_FEATURES) || ev->dim, "metrics 0x%x need features, the evaluator has none",
              metrics);
    if ((metrics & (GT_METRIC_PR | GT_METRIC_DC)) && s->n <= GT_DC_K)
        return GT_ERROR("precision/recall and density/coverage need more than %d samples, not %" PRId64, GT_DC_K, s->n);
    double t0 = gt_now();
    if (metrics & (GT_METRICS_FEATURES | GT_METRIC_DISCRIMINATOR)) make_samples(s);
    put_time(r, "samples", t0);
    gt_status st = GT_OK;
    if (metrics & GT_METRIC_FID) {
        t0 = gt_now();
        fid(s, r);
        put_time(r, "fid", t0);
    }
    if (metrics & GT_METRIC_KID) {
        t0 = gt_now();
        kid_against(s, ev->train_feat, ev->train->n, "kid_train", "kid_train_std", r);
        kid_against(s, ev->test_feat, ev->test->n, "kid_test", "kid_test_std", r);
        put_time(r, "kid", t0);
    }
    if (metrics & (GT_METRIC_PR | GT_METRIC_DC)) {
        t0 = gt_now();
        float *fake_pr = gt_alloc_floats((size_t)s->n), *fake_dc = gt_alloc_floats((size_t)s->n);
        radii(fake_pr, fake_dc, s->feat, s->n, ev->dim);
        prdc_against(s, ev->train_feat, ev->train->n, 0, fake_pr, metrics, r);
        prdc_against(s, ev->test_feat, ev->test->n, 1, fake_pr, metrics, r);
        gt_free(fake_pr);
        gt_free(fake_dc);
        put_time(r, "pr_dc", t0);
    }
    if (metrics & GT_METRIC_CLASSES) {
        t0 = gt_now();
        classes(s, r);
        put_time(r, "classes", t0);
    }
    if (metrics & GT_METRIC_MODES) {
        t0 = gt_now();
        modes(s, r);
        put_time(r, "modes", t0);
    }
    if (!st && (metrics & GT_METRIC_MEMORIZATION)) {
        t0 = gt_now();
        st = memorization(s, r);
        put_time(r, "memorization", t0);
    }
    if (!st && (metrics & (GT_METRIC_ELBO | GT_METRIC_IWAE))) st = likelihood(s, o, metrics, r);
    if (!st && (metrics & GT_METRIC_DISCRIMINATOR)) {
        t0 = gt_now();
        discriminator(s, r);
        put_time(r, "discriminator", t0);
    }
    gt_free(s->x);
    gt_free(s->feat);
    gt_free(s->logits);
    if (st) gt_eval_result_free(r);
    return st;
}

gt_status gt_evaluate_model(gt_evaluator *ev, gt_model *m, long n, unsigned metrics, uint64_t seed,
                            const gt_options *o, gt_eval_result *r) {
    GT_ASSERT(gt_model_generates(m), "gt_evaluate_model: a %s model does not generate", gt_model_kind_name(m->kind));
    GT_ASSERT(!(metrics & ~gt_metrics_applicable(m->kind, ev->points)), "metrics 0x%x do not apply", metrics);
    samples_t s = {.ev = ev, .m = m, .n = n, .seed = seed};
    if (!gt_model_has_ema(m)) return evaluate(&s, metrics, o, r);
    /* the EMA generator (the main numbers), then the live one, on the same latents */
    gt_model_swap_ema(m);
    gt_status st = evaluate(&s, metrics, o, r);
    gt_model_swap_ema(m);
    if (st) return st;
    r->ema = 1;
    gt_eval_result *live = gt_alloc(sizeof *live);
    samples_t l = {.ev = ev, .m = m, .n = n, .seed = seed};
    st = evaluate(&l, metrics, o, live);
    if (st) {
        gt_free(live);
        gt_eval_result_free(r);
        return st;
    }
    r->live = live;
    return GT_OK;
}

gt_status gt_evaluate_samples(gt_evaluator *ev, const float *x, long n, unsigned metrics, uint64_t seed,
                              gt_eval_result *r) {
    GT_ASSERT(!(metrics & ~gt_metrics_applicable(-1, ev->points)), "metrics 0x%x do not apply", metrics);
    samples_t s = {.ev = ev, .given = x, .n = n, .seed = seed};
    return evaluate(&s, metrics, NULL, r);
}
