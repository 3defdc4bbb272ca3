/* gentrain eval: the evaluation metrics of checkpoints (or of given samples)
 * on every rank of an MPI job (src/app/evaluate.c computes them; the
 * classifier and the data's features come from src/app/reference.c).
 *
 * Output: a table on stdout, or with --json one JSON object per line and
 * checkpoint (the progress lines then go to stderr); rank 0 also writes each
 * checkpoint's results into its run's metrics.h5 as /eval/step-XXXXXXXX. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gentrain/app.h"
#include "gentrain/checkpoint.h"

static const char eval_usage[] =
    "usage: gentrain eval CHECKPOINT|RUN_DIR ... [--metrics LIST] [--n N] [--json] [--seed S] [--h5 FILE|none]\n"
    "                     [data.KEY=VALUE] [eval.KEY=VALUE] ...\n"
    "       gentrain eval --samples FILE.h5[:DATASET] ... [--metrics LIST] [--n N] [--json] [--seed S] [data.KEY=VALUE]\n"
    "       gentrain eval --prepare [data.KEY=VALUE] [eval.KEY=VALUE] ...\n"
    "       mpirun -np N gentrain eval ...   (the work is split over the ranks; the numbers do not change)\n"
    "\n"
    "Evaluates the generator (GAN; with [model] g_ema its EMA generator, then the live one,\n"
    "both reported) or decoder (VAE) of each checkpoint (a RUN_DIR means every\n"
    "checkpoint in RUN_DIR/checkpoints, oldest first) on N samples against the training and the\n"
    "test set of the checkpoint's own [data]. Images are compared in the feature space of a\n"
    "Fashion-MNIST classifier that gentrain trains itself (configs/classifier.ini, built in):\n"
    "[eval] classifier = PATH, or the one in the cache directory ([eval] cache, $GENTRAIN_CACHE,\n"
    "$XDG_CACHE_HOME/gentrain or ~/.cache/gentrain), trained there once on first use (a few\n"
    "minutes on one process). Every output names the classifier's hash and test accuracy: numbers\n"
    "are comparable only when they come from the same classifier. 2-D data (data.kind = toy) are\n"
    "compared as points, without a classifier.\n"
    "\n"
    "  --metrics LIST  comma-separated [all that apply]:\n"
    "      fid           Frechet distance of the features' Gaussian fits, vs train and vs test\n"
    "      kid           kernel inception distance (100 subsets of 1000), vs train and vs test\n"
    "      pr            improved precision and recall (k = 3), vs train and vs test\n"
    "      dc            density and coverage (k = 5), vs train and vs test\n"
    "      classes       the classifier's class histogram of the samples: classes covered, entropy,\n"
    "                    KL to the data's histogram, classifier score (images)\n"
    "      modes         2-D mixtures: modes covered, high-quality share, reverse KL to uniform\n"
    "      memorization  nearest training neighbours of the samples and of the test set (features\n"
    "                    and pixels), closer-to-train share, the data-copying statistic C_T\n"
    "      elbo          VAE: negative ELBO on the first eval.likelihood_n training and test examples\n"
    "      iwae          VAE: IWAE bound (k = eval.iwae_k) on the same examples, and its gap\n"
    "      discriminator GAN: mean sigmoid D(x) on training vs test images, and on the samples\n"
    "  --n N           samples [10000; --samples: all in the file]\n"
    "  --json          one JSON object per checkpoint on stdout instead of the table\n"
    "  --seed S        seed of the latents and subsets [eval.seed, 1]\n"
    "  --h5 FILE|none  where rank 0 appends /eval/step-XXXXXXXX [the run's metrics.h5, next to the\n"
    "                  checkpoints/ directory the checkpoint is in; none elsewhere]\n"
    "  --samples F     (repeatable) evaluate the images of the HDF5 dataset F:DATASET [samples] ([N,C,H,W] or\n"
    "                  [N,D]; attributes range_min/range_max on it or on the root give its range\n"
    "                  [0, 1]) against the data of data.* (default Fashion-MNIST)\n"
    "  --prepare       only make the classifier (training it if needed), the data's features and\n"
    "                  the memorization reference, and print the classifier's hash and accuracy\n"
    "  data.KEY=VALUE, eval.KEY=VALUE  override the checkpoint's configuration, e.g.\n"
    "                  eval.classifier=PATH eval.iwae_k=100 eval.likelihood_n=200 data.limit=10000\n"
    "\n"
    "Definitions, references and file formats: README.md, section Evaluation.\n";

/* ---- command line ------------------------------------------------------------------ */

typedef struct {
    const char **inputs; /* checkpoints or run directories */
    int n_inputs;
    const char **samples; /* --samples FILE[:DATASET], each evaluated in turn */
    int n_samples;
    const char *metrics, *h5;
    long n;              /* -1: default */
    long seed;           /* -1: eval.seed */
    int json, prepare;
    const char **sets;   /* section.key=value */
    int n_sets;
} eval_args;

static gt_status parse_args(int argc, char **argv, eval_args *a) {
    memset(a, 0, sizeof *a);
    a->n = -1;
    a->seed = -1;
    a->inputs = gt_alloc(sizeof(char *) * (size_t)argc);
    a->sets = gt_alloc(sizeof(char *) * (size_t)argc);
    a->samples = gt_alloc(sizeof(char *) * (size_t)argc);
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes_value = !strcmp(s, "--metrics") || !strcmp(s, "--n") || !strcmp(s, "--seed") ||
                          !strcmp(s, "--h5") || !strcmp(s, "--samples");
        if (takes_value && !v) return GT_USAGE_ERROR("gentrain eval: %s needs a value", s);
        if (!strcmp(s, "--metrics")) a->metrics = v, i++;
        else if (!strcmp(s, "--h5")) a->h5 = v, i++;
        else if (!strcmp(s, "--samples")) a->samples[a->n_samples++] = v, i++;
        else if (!strcmp(s, "--n")) {
            if (!gt_parse_long(v, &a->n) || a->n < 2 || a->n > 16777216)
                return GT_USAGE_ERROR("gentrain eval: --n needs an integer in 2..16777216, got '%s'", v);
            i++;
        } else if (!strcmp(s, "--seed")) {
            if (!gt_parse_long(v, &a->seed) || a->seed < 0)
                return GT_USAGE_ERROR("gentrain eval: --seed needs a non-negative integer, got '%s'", v);
            i++;
        } else if (!strcmp(s, "--json")) a->json = 1;
        else if (!strcmp(s, "--prepare")) a->prepare = 1;
        else if (s[0] == '-') return GT_USAGE_ERROR("gentrain eval: unknown option '%s' (gentrain eval --help)", s);
        else if (strchr(s, '=')) {
            if (strncmp(s, "data.", 5) && strncmp(s, "eval.", 5) && strncmp(s, "run.threads=", 12))
                return GT_USAGE_ERROR("gentrain eval: '%s': only data.*, eval.* and run.threads can be set here (the "
                                      "model is the checkpoint's)",
                                      s);
            a->sets[a->n_sets++] = s;
        } else
            a->inputs[a->n_inputs++] = s;
    }
    int modes = (a->n_inputs > 0) + (a->n_samples > 0) + a->prepare;
    if (modes != 1)
        return GT_USAGE_ERROR("gentrain eval: give checkpoints (or run directories), or --samples FILE, or --prepare%s",
                              modes ? " (only one of them)" : "");
    if (a->h5 && !a->n_inputs) return GT_USAGE_ERROR("gentrain eval: --h5 applies to checkpoints only");
    return GT_OK;
}

static void free_args(eval_args *a) {
    gt_free(a->inputs);
    gt_free(a->samples);
    gt_free(a->sets);
}

static gt_status apply_sets(gt_config *cfg, const eval_args *a) {
    for (int i = 0; i < a->n_sets; i++) GT_TRY(gt_config_override(cfg, a->sets[i]));
    return GT_OK;
}

/* Checkpoints of the inputs: files as given, directories as their checkpoints/ (oldest first). */
static gt_status list_checkpoints(const eval_args *a, char ***out, int *n_out) {
    int cap = 16, n = 0;
    char **list = gt_alloc(sizeof(char *) * (size_t)cap);
    gt_status st = GT_OK;
    for (int i = 0; i < a->n_inputs && !st; i++) {
        struct stat sb;
        const char *in = a->inputs[i];
        if (stat(in, &sb) != 0) {
            st = GT_ERROR("cannot evaluate %s: %s", in, strerror(errno));
            break;
        }
        char **paths = NULL;
        int64_t *steps = NULL;
        int k = 0;
        if (S_ISDIR(sb.st_mode)) {
            char dir[4200];
            snprintf(dir, sizeof dir, "%s/checkpoints", in);
            st = gt_ckpt_list(stat(dir, &sb) == 0 ? dir : in, &paths, &steps, &k);
            if (!st && k == 0) st = GT_ERROR("%s holds no checkpoints (step-XXXXXXXX.h5, in it or in checkpoints/)", in);
        } else {
            paths = gt_alloc(sizeof(char *));
            paths[0] = gt_strdup(in);
            steps = gt_alloc(sizeof(int64_t));
            k = 1;
        }
        for (int j = k - 1; j >= 0 && !st; j--) { /* oldest first */
            if (n == cap) {
                char **more = gt_alloc(sizeof(char *) * (size_t)cap * 2);
                memcpy(more, list, sizeof(char *) * (size_t)n);
                gt_free(list);
                list = more;
                cap *= 2;
            }
            list[n++] = gt_strdup(paths[j]);
        }
        gt_ckpt_free_list(paths, steps, k);
    }
    *out = list;
    *n_out = n;
    return st;
}

/* ---- output ------------------------------------------------------------------------ */

static void json_number(double v) {
    if (isfinite(v)) printf("%.9g", v);
    else printf("null");
}

static void json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
        else putchar(*s);
    }
    putchar('"');
}

/* "metrics", "arrays" and "seconds" of a result, their names with a suffix. */
static void json_parts(const gt_eval_result *r, const char *suffix) {
    printf(", \"metrics%s\": {", suffix);
    for (int k = 0; k < r->nv; k++) {
        printf("%s\"%s\": ", k ? ", " : "", r->name[k]);
        json_number(r->value[k]);
    }
    printf("}, \"arrays%s\": {", suffix);
    int first = 1;
    for (int k = 0; k < r->na; k++) {
        const gt_eval_array *a = &r->array[k];
        if (!a->is_int) continue; /* per-sample distances are in metrics.h5 */
        printf("%s\"%s\": [", first ? "" : ", ", a->name);
        for (int64_t i = 0; i < a->len; i++) printf("%s%" PRId64, i ? ", " : "", ((const int64_t *)a->data)[i]);
        printf("]");
        first = 0;
    }
    printf("}, \"seconds%s\": {", suffix);
    for (int k = 0; k < r->nt; k++) printf("%s\"%s\": %.3f", k ? ", " : "", r->time_name[k], r->seconds[k]);
    printf("}");
}

static void print_json(const char *what, int64_t step, const char *kind, uint64_t seed, const gt_evaluator *ev,
                       const gt_eval_result *r) {
    printf("{\"checkpoint\": ");
    json_string(what);
    printf(", \"step\": %" PRId64 ", \"model\": ", step);
    json_string(kind);
    printf(", \"n\": %ld, \"seed\": %" PRIu64 ", \"world_size\": %d, \"classifier\": {\"path\": ", r->n, seed,
           gt_dist_size());
    json_string(gt_evaluator_classifier_path(ev));
    printf(", \"hash\": ");
    json_string(gt_evaluator_classifier_hash(ev));
    printf(", \"accuracy\": ");
    json_number(gt_evaluator_classifier_accuracy(ev));
    printf("}");
    if (r->live) printf(", \"generator\": \"ema\"");
    json_parts(r, "");
    if (r->live) json_parts(r->live, "_live");
    printf("}\n");
    fflush(stdout);
}

static void cell(char *buf, size_t cap, double v) {
    if (isnan(v)) snprintf(buf, cap, "-");
    else if (v == floor(v) && fabs(v) < 1e7) snprintf(buf, cap, "%.0f", v);
    else if (v != 0 && (fabs(v) >= 1e5 || fabs(v) < 1e-3)) snprintf(buf, cap, "%.4g", v);
    else snprintf(buf, cap, "%.4f", v);
}

/* A row of the table: label, the value against train, against test, and a note. */
static void row(const char *label, double train, double test, const char *note) {
    char a[32], b[32];
    cell(a, sizeof a, train);
    cell(b, sizeof b, test);
    printf("  %-36s %12s %12s  %s\n", label, a, b, note ? note : "");
}

/* A row with one value (in the first column). */
static void row1(const char *label, double v, const char *note) {
    char a[32];
    cell(a, sizeof a, v);
    printf("  %-36s %12s %12s  %s\n", label, a, "", note ? note : "");
}

static void print_rows(const gt_eval_result *r);

static void print_table(const char *what, int64_t step, const char *kind, uint64_t seed, const gt_evaluator *ev,
                        const gt_eval_result *r) {
    printf("\n%s", what);
    if (step >= 0) printf(" (%s, step %" PRId64 ")", kind, step);
    printf(": %ld samples, seed %" PRIu64 ", %d rank%s\n", r->n, seed, gt_dist_size(), gt_dist_size() > 1 ? "s" : "");
    double acc = gt_evaluator_classifier_accuracy(ev);
    if (strcmp(gt_evaluator_classifier_hash(ev), "none"))
        printf("classifier %s, test accuracy %.2f%% (%s)\n", gt_evaluator_classifier_hash(ev), 100 * acc,
               gt_evaluator_classifier_path(ev));
    else
        printf("classifier: none (2-D points are their own features; elbo, iwae and discriminator need none)\n");
    if (r->live) {
        printf("EMA generator (model.g_ema; the main numbers):\n");
        print_rows(r);
        printf("live generator (the one training updates):\n");
        print_rows(r->live);
    } else
        print_rows(r);
}

/* The rows of a result, then the seconds its parts took. */
static void print_rows(const gt_eval_result *r) {
#define V(name) gt_eval_value(r, name)
    char note[256];
    printf("  %-36s %12s %12s\n", "metric", "vs train", "vs test");
    unsigned m = r->metrics;
    if (m & GT_METRIC_FID) row("FID", V("fid_train"), V("fid_test"), "lower is better");
    if (m & GT_METRIC_KID) {
        snprintf(note, sizeof note, "+- %.2g / %.2g (std over subsets)", V("kid_train_std"), V("kid_test_std"));
        row("KID", V("kid_train"), V("kid_test"), note);
    }
    if (m & GT_METRIC_PR) {
        row("precision (k=3)", V("precision_train"), V("precision_test"), "fidelity");
        row("recall (k=3)", V("recall_train"), V("recall_test"), "diversity");
    }
    if (m & GT_METRIC_DC) {
        row("density (k=5)", V("density_train"), V("density_test"), "");
        row("coverage (k=5)", V("coverage_train"), V("coverage_test"), "");
    }
    if (m & GT_METRIC_CLASSES) {
        snprintf(note, sizeof note, "of %.0f", V("classes"));
        row1("classes covered", V("classes_covered"), note);
        snprintf(note, sizeof note, "nats; uniform: %.4f", log(V("classes")));
        row1("class entropy", V("class_entropy"), note);
        row1("KL(gen || data) classes", V("class_kl"), "nats; data: the classifier on the training set");
        row1("KL(data || gen) classes", V("class_kl_reverse"), "nats");
        row1("classifier score", V("classifier_score"), "Inception Score with our classifier");
    }
    if (m & GT_METRIC_MODES) {
        snprintf(note, sizeof note, "of %.0f", V("modes"));
        row1("modes covered", V("modes_covered"), note);
        row1("high-quality share", V("high_quality_share"), "within 3 std of the nearest centre");
        row1("reverse KL of modes to uniform", V("mode_reverse_kl"), "nats");
    }
    if (m & GT_METRIC_MEMORIZATION) {
        row1("nearest train, features: samples", V("nn_feature_gen"), "mean distance");
        row1("nearest train, features: test set", V("nn_feature_test"), "mean distance");
        if (!isnan(V("nn_pixel_gen"))) {
            row1("nearest train, pixels: samples", V("nn_pixel_gen"), "mean distance");
            row1("nearest train, pixels: test set", V("nn_pixel_test"), "mean distance");
        }
        row1("closer to train than to test", V("closer_to_train"), "share; about 0.5 without memorization");
        snprintf(note, sizeof note, "%s (%.0f cells)",
                 V("data_copying") > 0 ? "DATA COPYING (C_T < -3)" : "no data copying (C_T >= -3)",
                 V("ct_cells_used"));
        row1("data-copying C_T", V("ct"), note);
    }
    if (m & GT_METRIC_ELBO) {
        snprintf(note, sizeof note, "nats; gap %.4g; first %.0f examples", V("neg_elbo_gap"), V("likelihood_n"));
        row("negative ELBO", V("neg_elbo_train"), V("neg_elbo_test"), note);
    }
    if (m & GT_METRIC_IWAE) {
        snprintf(note, sizeof note, "nats, k = %.0f; gap %.4g", V("iwae_k"), V("iwae_nll_gap"));
        row("-log p(x), IWAE bound", V("iwae_nll_train"), V("iwae_nll_test"), note);
    }
    if (m & GT_METRIC_DISCRIMINATOR) {
        snprintf(note, sizeof note, "gap %.4g; on the samples %.4f", V("d_gap"), V("d_gen"));
        row("D(x), mean sigmoid", V("d_train"), V("d_test"), note);
    }
    double total = 0;
    printf("  seconds:");
    for (int k = 0; k < r->nt; k++) printf(" %s %.1f", r->time_name[k], r->seconds[k]), total += r->seconds[k];
    printf(" (total %.1f)\n", total);
    fflush(stdout);
#undef V
}

/* ---- the evaluation of checkpoints ---------------------------------------------------- */

/* Where rank 0 writes a checkpoint's results: --h5, or RUN/metrics.h5 for RUN/checkpoints/step-*.h5. */
static int h5_target(const char *ckpt, const char *h5_arg, char *out, size_t cap) {
    if (h5_arg) {
        if (!strcmp(h5_arg, "none")) return 0;
        snprintf(out, cap, "%s", h5_arg);
        return 1;
    }
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", ckpt);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else *slash = 0;
    const char *base = strrchr(dir, '/');
    if (strcmp(base ? base + 1 : dir, "checkpoints") != 0) return 0;
    if (base) snprintf(out, cap, "%.*s/metrics.h5", (int)(base - dir), dir);
    else snprintf(out, cap, "metrics.h5");
    return 1;
}

/* The data and evaluator of the current [data] and [eval] settings, reused while they stay the same. */
typedef struct {
    char key[8192];
    gt_dataset train, test;
    gt_evaluator *ev;
} eval_state;

static void state_free(eval_state *s) {
    gt_evaluator_free(s->ev);
    gt_dataset_free(&s->train);
    gt_dataset_free(&s->test);
    memset(s, 0, sizeof *s);
}

/* The part of a resolved config that decides the data and the feature space,
 * and whether features are needed. */
static void state_key(const gt_options *o, unsigned metrics, char *out, size_t cap) {
    const gt_data_opts *d = &o->data;
    snprintf(out, cap, "%d|%d|%s|%s|%s|%s|%" PRId64 "|%d|%" PRId64 "|%" PRId64 "|%g|%s|%s|%" PRIu64,
             (metrics & GT_METRICS_FEATURES) != 0, (int)d->kind, d->train_images ? d->train_images : "",
             d->train_labels ? d->train_labels : "", d->test_images ? d->test_images : "",
             d->test_labels ? d->test_labels : "", d->limit, (int)d->toy, d->n, d->n_test, (double)d->std,
             o->eval_classifier ? o->eval_classifier : "", o->eval_cache ? o->eval_cache : "",
             d->kind == GT_DATA_TOY ? o->seed : 0);
}

static gt_status state_for(eval_state *s, const gt_options *o, unsigned metrics) {
    char key[8192];
    state_key(o, metrics, key, sizeof key);
    if (s->ev && !strcmp(key, s->key)) return GT_OK;
    state_free(s);
    GT_TRY(gt_data_load(&o->data, o->seed, &s->train, &s->test));
    GT_TRY(gt_evaluator_open(o, &s->train, &s->test, metrics, 1, &s->ev));
    snprintf(s->key, sizeof s->key, "%s", key);
    return GT_OK;
}

static gt_status eval_checkpoint(const char *path, const eval_args *a, eval_state *state) {
    if (gt_ckpt_verify(path)) return GT_ERROR("cannot evaluate %s: %s", path, gt_error_message());
    gt_ckpt_info info;
    char *text = NULL, *kind = NULL;
    GT_TRY(gt_ckpt_read_info(path, &info, &text, &kind));
    gt_config *cfg = NULL;
    gt_options o;
    memset(&o, 0, sizeof o);
    gt_model *m = NULL;
    gt_status st = GT_OK;
    if (!strcmp(kind, "classifier"))
        st = GT_ERROR("%s holds a classifier: it has no generator or decoder to evaluate (evaluate a gan or vae "
                      "checkpoint)",
                      path);
    if (!st) st = gt_config_parse(text, path, &cfg);
    if (!st) st = apply_sets(cfg, a);
    if (!st) st = gt_options_from_config(cfg, path, &o);
    if (!st) gt_set_threads(o.threads);
    if (!st) st = gt_model_build(&o.model, info.data_shape, info.n_classes > 0 ? info.n_classes : 1, GT_EVAL_CHUNK,
                                 info.seed, &m);
    if (!st) st = gt_ckpt_load(path, m);
    if (!st && !gt_model_generates(m))
        st = GT_ERROR("%s holds a %s: it has no generator or decoder to evaluate", path, kind);
    unsigned metrics = 0;
    int points = o.data.kind == GT_DATA_TOY;
    if (!st)
        st = gt_metrics_parse(a->metrics ? a->metrics : "all", gt_metrics_applicable(m->kind, points),
                              a->metrics ? "--metrics" : "all metrics", &metrics);
    if (!st) st = state_for(state, &o, metrics);
    if (!st && !gt_shape_eq(state->train.shape, info.data_shape))
        st = GT_ERROR("%s was trained on data of shape %dx%dx%d, but its [data] (%s) is %dx%dx%d", path,
                      info.data_shape.c, info.data_shape.h, info.data_shape.w, state->train.source,
                      state->train.shape.c, state->train.shape.h, state->train.shape.w);
    if (!st && metrics & (GT_METRIC_ELBO | GT_METRIC_IWAE) &&
        (o.likelihood_n > state->train.n || o.likelihood_n > state->test.n))
        st = GT_ERROR("eval.likelihood_n = %ld is more than the data has (%" PRId64 " training, %" PRId64
                      " test examples): lower it",
                      o.likelihood_n, state->train.n, state->test.n);
    uint64_t seed = a->seed >= 0 ? (uint64_t)a->seed : o.eval_seed;
    long n = a->n > 0 ? a->n : 10000;
    gt_eval_result r;
    memset(&r, 0, sizeof r);
    if (!st) {
        gt_info("evaluating %s (%s, step %" PRId64 "): %ld samples ...", path, kind, info.step, n);
        st = gt_evaluate_model(state->ev, m, n, metrics, seed, &o, &r);
    }
    if (!st && gt_dist_rank() == 0) {
        if (a->json) print_json(path, info.step, kind, seed, state->ev, &r);
        else print_table(path, info.step, kind, seed, state->ev, &r);
    }
    char h5[4300];
    int failed = 0;
    if (!st && gt_dist_rank() == 0 && h5_target(path, a->h5, h5, sizeof h5)) {
        failed = gt_metrics_h5_eval_group(h5, info.step, path, state->ev, &r, seed) != GT_OK;
        if (!failed) gt_info("results in %s /eval/step-%08" PRId64, h5, info.step);
    }
    if (!st && gt_dist_any(failed)) st = failed ? GT_ERR : GT_ERROR_ALL("rank 0 failed");
    gt_eval_result_free(&r);
    gt_model_free(m);
    gt_options_free(&o);
    gt_config_free(cfg);
    gt_free(text);
    gt_free(kind);
    return st;
}

/* ---- given samples ---------------------------------------------------------------------- */

/* Reads FILE[:DATASET] (every rank) as [n, data] in [0,1] (images) or as it is (points). */
static gt_status read_samples(const char *spec, const gt_dataset *train, float **out, long *n_out) {
    char file[4200], name[256] = "samples";
    snprintf(file, sizeof file, "%s", spec);
    char *colon = strrchr(file, ':');
    if (colon && colon[1] && !strchr(colon, '/')) {
        snprintf(name, sizeof name, "%s", colon + 1);
        *colon = 0;
    }
    *out = NULL;
    gt_h5 *f;
    GT_TRY(gt_h5_open(file, 0, &f));
    int rank = 0, dims[GT_H5_MAX_RANK], yes = 0;
    gt_status st = gt_h5_exists(f, name, &yes);
    if (!st && !yes) st = GT_ERROR("%s has no dataset '%s' (give FILE.h5:DATASET)", file, name);
    if (!st) st = gt_h5_shape(f, name, &rank, dims);
    size_t size = gt_shape_size(train->shape);
    if (!st) {
        size_t per = 1;
        for (int d = 1; d < rank; d++) per *= (size_t)dims[d];
        int fits = rank == 2 ? per == size
                             : rank == 4 && dims[1] == train->shape.c && dims[2] == train->shape.h &&
                                   dims[3] == train->shape.w;
        if (!fits || dims[0] < 1)
            st = GT_ERROR("%s:%s has shape of rank %d (%d x %zu values), but the data are %dx%dx%d: give [N,%d,%d,%d] "
                          "or [N,%zu]",
                          file, name, rank, rank ? dims[0] : 0, per, train->shape.c, train->shape.h, train->shape.w,
                          train->shape.c, train->shape.h, train->shape.w, size);
    }
    double lo = 0, hi = 1;
    const char *on[2] = {name, NULL};
    for (int k = 0; k < 2 && !st; k++) {
        if (!st) st = gt_h5_has_attr(f, on[k], "range_min", &yes);
        if (!st && yes) {
            st = gt_h5_get_attr_double(f, on[k], "range_min", &lo);
            if (!st) st = gt_h5_get_attr_double(f, on[k], "range_max", &hi);
            break;
        }
    }
    if (!st && !(hi > lo)) st = GT_ERROR("%s:%s: range_max %g is not above range_min %g", file, name, hi, lo);
    float *x = NULL;
    if (!st) {
        x = gt_alloc_floats((size_t)dims[0] * size);
        st = gt_h5_read_floats(f, name, x, rank, dims);
    }
    gt_h5_discard(f);
    if (st) {
        gt_free(x);
        return st;
    }
    if (!train->values && (lo != 0 || hi != 1))
        for (size_t i = 0; i < (size_t)dims[0] * size; i++) x[i] = (float)((x[i] - lo) / (hi - lo));
    *out = x;
    *n_out = dims[0];
    return GT_OK;
}

/* The data and evaluation options of the command line's KEY=V settings
 * (no checkpoint: --samples, --prepare), and the threads they ask for. */
static gt_status data_options(gt_config *cfg, const eval_args *a, gt_options *o) {
    GT_TRY(apply_sets(cfg, a));
    GT_TRY(gt_options_data_eval(cfg, o));
    gt_set_threads(o->threads > 0 ? o->threads : 1);
    return GT_OK;
}

static gt_status eval_samples(const eval_args *a) {
    gt_config *cfg = gt_config_new();
    gt_options o;
    memset(&o, 0, sizeof o);
    eval_state state;
    memset(&state, 0, sizeof state);
    unsigned metrics = 0;
    gt_status st = data_options(cfg, a, &o);
    if (!st) st = gt_data_load(&o.data, o.seed, &state.train, &state.test);
    if (!st)
        st = gt_metrics_parse(a->metrics ? a->metrics : "all", gt_metrics_applicable(-1, state.train.values != NULL),
                              a->metrics ? "--metrics" : "all metrics", &metrics);
    /* every file is read and checked before the (longer) evaluation starts */
    float **x = gt_alloc(sizeof(float *) * (size_t)a->n_samples);
    long *have = gt_alloc(sizeof(long) * (size_t)a->n_samples);
    for (int i = 0; i < a->n_samples && !st; i++) {
        st = read_samples(a->samples[i], &state.train, &x[i], &have[i]);
        if (!st && a->n > have[i])
            st = GT_ERROR("--n %ld: %s holds only %ld samples (evaluate at most that many)", a->n, a->samples[i],
                          have[i]);
    }
    if (!st) st = gt_evaluator_open(&o, &state.train, &state.test, metrics, 1, &state.ev);
    uint64_t seed = a->seed >= 0 ? (uint64_t)a->seed : o.eval_seed;
    for (int i = 0; i < a->n_samples && !st; i++) {
        gt_eval_result r;
        gt_info("evaluating %s ...", a->samples[i]);
        st = gt_evaluate_samples(state.ev, x[i], a->n > 0 ? a->n : have[i], metrics, seed, &r);
        if (!st && gt_dist_rank() == 0) {
            if (a->json) print_json(a->samples[i], -1, "samples", seed, state.ev, &r);
            else print_table(a->samples[i], -1, "samples", seed, state.ev, &r);
        }
        if (!st) gt_eval_result_free(&r);
    }
    for (int i = 0; i < a->n_samples; i++) gt_free(x[i]);
    gt_free(x);
    gt_free(have);
    state_free(&state);
    gt_options_free(&o);
    gt_config_free(cfg);
    return st;
}

static gt_status eval_prepare(const eval_args *a) {
    gt_config *cfg = gt_config_new();
    gt_options o;
    memset(&o, 0, sizeof o);
    eval_state state;
    memset(&state, 0, sizeof state);
    gt_status st = data_options(cfg, a, &o);
    if (!st) st = state_for(&state, &o, GT_METRICS_FEATURES);
    if (!st) st = gt_evaluator_memorization(state.ev);
    if (!st && gt_dist_rank() == 0) {
        if (a->json) {
            printf("{\"classifier\": {\"path\": ");
            json_string(gt_evaluator_classifier_path(state.ev));
            printf(", \"hash\": ");
            json_string(gt_evaluator_classifier_hash(state.ev));
            printf(", \"accuracy\": ");
            json_number(gt_evaluator_classifier_accuracy(state.ev));
            printf("}}\n");
        } else {
            printf("classifier %s: hash %s, test accuracy %.4f\n", gt_evaluator_classifier_path(state.ev),
                   gt_evaluator_classifier_hash(state.ev), gt_evaluator_classifier_accuracy(state.ev));
        }
    }
    state_free(&state);
    gt_options_free(&o);
    gt_config_free(cfg);
    return st;
}

gt_status gt_cmd_eval(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            if (gt_dist_rank() == 0) fputs(eval_usage, stdout);
            return GT_OK;
        }
    if (argc < 2) {
        if (gt_dist_rank() == 0) fputs(eval_usage, stderr);
        return GT_USAGE_ERROR("gentrain eval: nothing to evaluate");
    }
    eval_args a;
    gt_status st = parse_args(argc, argv, &a);
    if (st) {
        free_args(&a);
        return st;
    }
    if (a.json) gt_set_info_stderr(1);
    if (a.prepare) st = eval_prepare(&a);
    else if (a.n_samples) st = eval_samples(&a);
    else {
        char **paths = NULL;
        int n = 0;
        st = list_checkpoints(&a, &paths, &n);
        eval_state state;
        memset(&state, 0, sizeof state);
        for (int i = 0; i < n && !st; i++) st = eval_checkpoint(paths[i], &a, &state);
        state_free(&state);
        for (int i = 0; i < n; i++) gt_free(paths[i]);
        gt_free(paths);
    }
    free_args(&a);
    return st;
}
