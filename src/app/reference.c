/* The fixed part of an evaluation (include/gentrain/app.h, gt_evaluator):
 * the feature space and the data's features.
 *
 * Images are compared in the feature space of a Fashion-MNIST classifier
 * that gentrain trains itself: [eval] classifier names its checkpoint, or
 * it is found in the cache directory, CACHE/classifier-<h>/ (h: a hash of
 * configs/classifier.ini, which is built into the program, and of the data
 * files), where `gentrain eval` trains it once, on rank 0 alone so that it
 * does not depend on the number of ranks, under a lock so that two processes
 * never train it together. Its identity is the hash of its parameters and
 * batch-norm statistics, printed with every number; its accuracy is measured
 * on the test set every time the features are made.
 *
 * The training and test sets' features (and the classifier's predicted
 * classes) are cached as CACHE/features-<classifier hash>-<data hash>.h5,
 * and so, once asked for, is the reference of the memorization metrics
 * (nearest training neighbours of the test set, k-means cells). 2-D points
 * are their own features: no classifier, no cache. */
#include "eval_internal.h"

#include "gentrain/checkpoint.h"
#include "gentrain/dist.h"
#include "gentrain/io.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FEATURES_FORMAT "gentrain-eval-features"
#define FEATURES_VERSION 1

#define PATH_FMT(buf, ...)                                                                                   \
    do {                                                                                                     \
        int n_ = snprintf((buf), sizeof(buf), __VA_ARGS__);                                                  \
        GT_ENSURE(n_ >= 0 && (size_t)n_ < sizeof(buf), "path too long: %s", (buf));                         \
    } while (0)

/* ---- small helpers shared with evaluate.c ------------------------------------ */

void gt_eval_my_rows(int64_t n, int64_t chunk, int64_t *first, int64_t *last) {
    gt_dist_rows(n, chunk, gt_dist_rank(), gt_dist_size(), first, last);
}

void gt_eval_data_rows(const gt_dataset *ds, int64_t first, int64_t last, gt_pixel_scale scale, float *out) {
    int64_t idx[GT_EVAL_CHUNK];
    size_t size = gt_shape_size(ds->shape);
    for (int64_t r = first; r < last; r += GT_EVAL_CHUNK) {
        int B = (int)(last - r < GT_EVAL_CHUNK ? last - r : GT_EVAL_CHUNK);
        for (int i = 0; i < B; i++) idx[i] = r + i;
        gt_dataset_batch(ds, idx, B, scale, out + (size_t)(r - first) * size, NULL);
    }
}

/* [eval] cache, else $GENTRAIN_CACHE, else $XDG_CACHE_HOME/gentrain, else ~/.cache/gentrain. */
static gt_status cache_dir(const gt_options *o, char *out, size_t cap) {
    const char *env;
    int n;
    if (o->eval_cache && o->eval_cache[0]) n = snprintf(out, cap, "%s", o->eval_cache);
    else if ((env = getenv("GENTRAIN_CACHE")) && env[0]) n = snprintf(out, cap, "%s", env);
    else if ((env = getenv("XDG_CACHE_HOME")) && env[0]) n = snprintf(out, cap, "%s/gentrain", env);
    else if ((env = getenv("HOME")) && env[0]) n = snprintf(out, cap, "%s/.cache/gentrain", env);
    else return GT_ERROR("no evaluation cache directory: set [eval] cache, GENTRAIN_CACHE or HOME");
    GT_ENSURE(n > 0 && (size_t)n < cap, "evaluation cache path too long");
    return GT_OK;
}

/* ---- the classifier ----------------------------------------------------------- */

/* FNV-1a-64 over the parameters, then the batch-norm statistics. */
static void model_hash(const gt_model *m, char out[17]) {
    uint64_t h = GT_HASH_INIT;
    for (int k = 0; k < m->n_nets; k++) {
        h = gt_hash_bytes(m->net[k].params, sizeof(float) * m->net[k].n_params, h);
        if (m->net[k].n_state) h = gt_hash_bytes(m->net[k].state, sizeof(float) * m->net[k].n_state, h);
    }
    snprintf(out, 17, "%016" PRIx64, h);
}

/* The classifier configuration for the data of o: configs/classifier.ini
 * with the data's IDX files (all of them: [data] limit does not apply) and
 * its run directory in the cache, named by a hash of both. */
static gt_status classifier_config(const gt_options *o, const char *cache, gt_config **cfg, char *run_dir,
                                   size_t cap) {
    const char *files[4][2] = {{"train_images", o->data.train_images},
                               {"train_labels", o->data.train_labels},
                               {"test_images", o->data.test_images},
                               {"test_labels", o->data.test_labels}};
    uint64_t h = gt_hash_bytes(gt_classifier_config, strlen(gt_classifier_config), GT_HASH_INIT);
    for (int i = 0; i < 4; i++) h = gt_hash_bytes(files[i][1], strlen(files[i][1]) + 1, h);
    int n = snprintf(run_dir, cap, "%s/classifier-%016" PRIx64, cache, h);
    GT_ENSURE(n > 0 && (size_t)n < cap, "evaluation cache path too long: %s", cache);
    GT_TRY(gt_config_parse(gt_classifier_config, "configs/classifier.ini (built into gentrain)", cfg));
    char set[4400];
    gt_status st = GT_OK;
    for (int i = 0; i < 4 && !st; i++) {
        snprintf(set, sizeof set, "data.%s=%s", files[i][0], files[i][1]);
        st = gt_config_override(*cfg, set);
    }
    if (!st) {
        snprintf(set, sizeof set, "run.dir=%s", run_dir);
        st = gt_config_override(*cfg, set);
    }
    if (!st) {
        /* rank 0 trains it while the other ranks sleep: threads on the free
         * cores (up to 8), which change the time, never the result */
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        int threads = cores < 1 ? 1 : cores > 8 ? 8 : (int)cores;
        if (o->threads > threads) threads = o->threads;
        snprintf(set, sizeof set, "run.threads=%d", threads);
        st = gt_config_override(*cfg, set);
    }
    if (st) {
        gt_config_free(*cfg);
        *cfg = NULL;
    }
    return st;
}

/* The finished classifier of a cache run directory: the checkpoint named in
 * DIR/classifier.done (written once training has ended); *found = 0 if none. */
static gt_status finished_classifier(const char *run_dir, char *path, size_t cap, int *found) {
    char done[4300];
    PATH_FMT(done, "%s/classifier.done", run_dir);
    *found = 0;
    FILE *f = fopen(done, "r");
    if (!f) return errno == ENOENT ? GT_OK : GT_ERROR("cannot read %s: %s", done, strerror(errno));
    char name[256] = "";
    int ok = fgets(name, sizeof name, f) != NULL;
    fclose(f);
    name[strcspn(name, "\n")] = 0;
    if (!ok || !name[0]) return GT_OK; /* unfinished write: train (resume) again */
    int n = snprintf(path, cap, "%s/checkpoints/%s", run_dir, name);
    GT_ENSURE(n > 0 && (size_t)n < cap, "path too long: %s", run_dir);
    *found = access(path, R_OK) == 0;
    return GT_OK;
}

typedef struct {
    const gt_options *o;
    const char *cache;
    char path[4200];
} train_job;

/* Rank 0 alone (gt_dist_solo): under an exclusive lock on DIR.lock, trains
 * the classifier into its cache run directory unless another process has
 * meanwhile, and names its last checkpoint in classifier.done. */
static gt_status train_classifier(void *arg) {
    train_job *job = arg;
    gt_config *cfg;
    char run_dir[4200], lock_path[4300], done[4300];
    GT_TRY(gt_make_dirs(job->cache, "the evaluation cache directory"));
    GT_TRY(classifier_config(job->o, job->cache, &cfg, run_dir, sizeof run_dir));
    gt_status st = GT_OK;
    int fd = -1, found = 0;
    if (snprintf(lock_path, sizeof lock_path, "%s.lock", run_dir) >= (int)sizeof lock_path ||
        snprintf(done, sizeof done, "%s/classifier.done", run_dir) >= (int)sizeof done)
        st = GT_ERROR("path too long: %s", run_dir);
    if (!st && (fd = open(lock_path, O_RDWR | O_CREAT, 0664)) < 0)
        st = GT_ERROR("cannot create the lock file %s: %s", lock_path, strerror(errno));
    struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (!st && fcntl(fd, F_SETLK, &lk) != 0) {
        gt_info("another process is training the evaluation classifier in %s: waiting for it", run_dir);
        if (fcntl(fd, F_SETLKW, &lk) != 0) st = GT_ERROR("cannot lock %s: %s", lock_path, strerror(errno));
    }
    if (!st) st = finished_classifier(run_dir, job->path, sizeof job->path, &found);
    if (!st && !found) {
        gt_info("evaluation: no trained classifier in %s yet; training it now, once, from configs/classifier.ini "
                "(built in) on one process (a few minutes; later evaluations reuse it)",
                run_dir);
        double t0 = gt_now();
        int stopped = 0;
        st = gt_train_config(cfg, "configs/classifier.ini", &stopped);
        if (!st && stopped) st = GT_ERROR("training the evaluation classifier was stopped by a signal; run again to "
                                          "resume it (%s)", run_dir);
        char ckpt_dir[4300], **paths = NULL;
        int64_t *steps = NULL;
        int n = 0;
        if (!st && snprintf(ckpt_dir, sizeof ckpt_dir, "%s/checkpoints", run_dir) >= (int)sizeof ckpt_dir)
            st = GT_ERROR("path too long: %s", run_dir);
        if (!st) st = gt_ckpt_list(ckpt_dir, &paths, &steps, &n);
        if (!st && n == 0) st = GT_ERROR("training the evaluation classifier in %s left no checkpoint", run_dir);
        if (!st) {
            const char *base = strrchr(paths[0], '/');
            base = base ? base + 1 : paths[0];
            char tmp[4400];
            snprintf(tmp, sizeof tmp, "%s.tmp", done);
            FILE *f = fopen(tmp, "w");
            if (!f || fprintf(f, "%s\n", base) < 0 || fclose(f) != 0 || rename(tmp, done) != 0)
                st = GT_ERROR("cannot write %s: %s", done, strerror(errno));
            int n_path = snprintf(job->path, sizeof job->path, "%s", paths[0]);
            if (!st && (n_path < 0 || (size_t)n_path >= sizeof job->path)) st = GT_ERROR("path too long: %s", paths[0]);
            if (!st) gt_info("evaluation classifier trained in %.0f s: %s", gt_now() - t0, job->path);
        }
        gt_ckpt_free_list(paths, steps, n);
    }
    if (fd >= 0) close(fd); /* releases the lock */
    gt_config_free(cfg);
    return st;
}

/* The classifier's checkpoint for o: [eval] classifier, or the cache's
 * (trained there when missing and may_train). Collective; path on every rank. */
static gt_status find_classifier(const gt_options *o, int may_train, char *path, size_t cap) {
    if (o->eval_classifier && o->eval_classifier[0]) {
        int n = snprintf(path, cap, "%s", o->eval_classifier);
        GT_ENSURE(n > 0 && (size_t)n < cap, "path too long: %s", o->eval_classifier);
        struct stat sb;
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            return GT_ERROR("[eval] classifier = %s: %s", path,
                            stat(path, &sb) != 0 ? strerror(errno) : "not a regular file");
        return GT_OK;
    }
    if (o->data.kind != GT_DATA_IDX)
        return GT_ERROR("image metrics need a classifier, and only IDX data (fashion-mnist) can train one: set [eval] "
                        "classifier");
    char cache[4096], run_dir[4200];
    GT_TRY(cache_dir(o, cache, sizeof cache));
    gt_config *cfg;
    GT_TRY(classifier_config(o, cache, &cfg, run_dir, sizeof run_dir));
    gt_config_free(cfg);
    int found = 0;
    gt_status st = gt_dist_rank() == 0 ? finished_classifier(run_dir, path, cap, &found) : GT_OK;
    if (gt_dist_any(st != GT_OK)) return st ? st : GT_ERROR_ALL("rank 0 failed");
    gt_dist_bcast(&found, sizeof found);
    if (!found) {
        if (!may_train)
            return GT_ERROR("the evaluation classifier is not in %s yet: run `gentrain eval --prepare` once (it trains "
                            "it there, a few minutes on one core), or set [eval] classifier = PATH or [eval] cache",
                            cache);
        train_job job = {o, cache, ""};
        GT_TRY(gt_dist_solo(train_classifier, &job));
        if (gt_dist_rank() == 0) snprintf(path, cap, "%s", job.path);
    }
    uint64_t len = strlen(path) + 1;
    gt_dist_bcast(&len, sizeof len);
    GT_ASSERT(len <= cap, "classifier path of %" PRIu64 " bytes", len);
    gt_dist_bcast(path, (size_t)len);
    return GT_OK;
}

/* Loads the classifier of path, checking that it is one and fits the data. */
static gt_status load_classifier(const char *path, const gt_dataset *train, gt_model **out) {
    *out = NULL;
    if (gt_ckpt_verify(path)) return GT_ERROR("[eval] classifier %s: %s", path, gt_error_message());
    gt_ckpt_info info;
    char *text = NULL, *kind = NULL;
    GT_TRY(gt_ckpt_read_info(path, &info, &text, &kind));
    gt_status st = GT_OK;
    if (strcmp(kind, "classifier") != 0)
        st = GT_ERROR("[eval] classifier %s holds a %s model, not a classifier", path, kind);
    else if (!gt_shape_eq(info.data_shape, train->shape))
        st = GT_ERROR("[eval] classifier %s takes inputs of shape %dx%dx%d, but the data (%s) are %dx%dx%d: use a "
                      "classifier trained on this data",
                      path, info.data_shape.c, info.data_shape.h, info.data_shape.w, train->source, train->shape.c,
                      train->shape.h, train->shape.w);
    gt_config *cfg = NULL;
    gt_options co;
    memset(&co, 0, sizeof co);
    if (!st) st = gt_config_parse(text, path, &cfg);
    if (!st) st = gt_options_from_config(cfg, path, &co);
    if (!st) st = gt_model_build(&co.model, info.data_shape, info.n_classes, GT_EVAL_CHUNK, info.seed, out);
    if (!st) st = gt_ckpt_load(path, *out);
    if (!st && gt_model_feature_dim(*out) < 2)
        st = GT_ERROR("[eval] classifier %s has features of width %d: its last layer needs an input of at least 2",
                      path, gt_model_feature_dim(*out));
    if (st) {
        gt_model_free(*out);
        *out = NULL;
    }
    gt_options_free(&co);
    gt_config_free(cfg);
    gt_free(text);
    gt_free(kind);
    return st;
}

/* ---- the data's features -------------------------------------------------------- */

static uint64_t dataset_hash(const gt_dataset *ds, uint64_t h) {
    int64_t head[4] = {ds->n, ds->shape.c, ds->shape.h, ds->shape.w};
    h = gt_hash_bytes(head, sizeof head, h);
    size_t size = (size_t)ds->n * gt_shape_size(ds->shape);
    if (ds->pixels) h = gt_hash_bytes(ds->pixels, size, h);
    if (ds->values) h = gt_hash_bytes(ds->values, size * sizeof(float), h);
    if (ds->labels) h = gt_hash_bytes(ds->labels, (size_t)ds->n * sizeof(int), h);
    return h;
}

/* Features and logits of the examples of ds, split over the ranks in chunks. */
static void features_of(gt_model *cls, const gt_dataset *ds, float *feat, float *logits) {
    int F = gt_model_feature_dim(cls), K = cls->n_classes;
    size_t size = gt_shape_size(ds->shape);
    int64_t first, last;
    gt_eval_my_rows(ds->n, GT_EVAL_CHUNK, &first, &last);
    float *x = gt_alloc_floats((size_t)GT_EVAL_CHUNK * size);
    for (int64_t r = first; r < last; r += GT_EVAL_CHUNK) {
        int B = (int)(last - r < GT_EVAL_CHUNK ? last - r : GT_EVAL_CHUNK);
        gt_eval_data_rows(ds, r, r + B, GT_SCALE_UNIT, x);
        gt_model_features(cls, x, B, feat + (size_t)r * F, logits + (size_t)r * K);
    }
    gt_free(x);
    gt_dist_allgather_rows(feat, ds->n, GT_EVAL_CHUNK, sizeof(float) * (size_t)F);
    gt_dist_allgather_rows(logits, ds->n, GT_EVAL_CHUNK, sizeof(float) * (size_t)K);
}

/* Histogram of the predicted classes; *accuracy against the labels (NaN without). */
static void predictions(const float *logits, const gt_dataset *ds, int K, int64_t *hist, double *accuracy) {
    int64_t right = 0;
    for (int64_t i = 0; i < ds->n; i++) {
        const float *l = logits + (size_t)i * K;
        int best = 0;
        for (int k = 1; k < K; k++)
            if (l[k] > l[best]) best = k;
        hist[best]++;
        if (ds->labels) right += best == ds->labels[i];
    }
    *accuracy = ds->labels && ds->n > 0 ? (double)right / (double)ds->n : NAN;
}

/* Reads the cached features (every rank); *found = 0 if the file is missing
 * or does not fit (then it is made again). */
static gt_status read_features(gt_evaluator *ev, int *found) {
    *found = 0;
    if (access(ev->features_path, R_OK) != 0 || !gt_h5_is_hdf5(ev->features_path)) return GT_OK;
    gt_h5 *f;
    GT_TRY(gt_h5_open(ev->features_path, 0, &f));
    char *fmt = NULL, *hash = NULL;
    int yes = 0, n_train = (int)ev->train->n, n_test = (int)ev->test->n;
    int dt[2] = {n_train, ev->dim}, ds[2] = {n_test, ev->dim}, dk[1] = {ev->classes};
    gt_status st = gt_h5_attr_is_string(f, NULL, "format", &yes);
    if (!st && yes) st = gt_h5_get_attr_str(f, NULL, "format", &fmt);
    if (!st && yes) st = gt_h5_get_attr_str(f, NULL, "classifier_hash", &hash);
    int ours = !st && fmt && !strcmp(fmt, FEATURES_FORMAT) && hash && !strcmp(hash, ev->classifier_hash);
    if (ours) {
        int rank, dims[GT_H5_MAX_RANK];
        st = gt_h5_shape(f, "train/features", &rank, dims);
        ours = !st && rank == 2 && dims[0] == n_train && dims[1] == ev->dim;
    }
    if (ours) {
        st = gt_h5_read_floats(f, "train/features", ev->train_feat, 2, dt);
        if (!st) st = gt_h5_read_floats(f, "test/features", ev->test_feat, 2, ds);
        if (!st) st = gt_h5_read_int64(f, "train/class_hist", ev->train_hist, 1, dk);
        if (!st) st = gt_h5_read_int64(f, "test/class_hist", ev->test_hist, 1, dk);
        if (!st) st = gt_h5_get_attr_double(f, NULL, "accuracy", &ev->accuracy);
    }
    gt_free(fmt);
    gt_free(hash);
    gt_h5_discard(f);
    if (st) { /* a damaged cache file is made again */
        gt_warn("evaluation cache %s does not read (%s): making it again", ev->features_path, gt_error_message());
        gt_error_clear();
        return GT_OK;
    }
    *found = ours;
    return GT_OK;
}

/* Rank 0: the features into a new cache file (a temporary file renamed over it). */
static gt_status write_features(const gt_evaluator *ev, double accuracy_train) {
    char tmp[4500];
    PATH_FMT(tmp, "%s.tmp.%d", ev->features_path, (int)getpid());
    gt_h5 *f;
    GT_TRY(gt_h5_create(tmp, &f));
    int dt[2] = {(int)ev->train->n, ev->dim}, ds[2] = {(int)ev->test->n, ev->dim}, dk[1] = {ev->classes};
    gt_status st = gt_h5_set_attr_str(f, NULL, "format", FEATURES_FORMAT);
    if (!st) st = gt_h5_set_attr_int64(f, NULL, "version", FEATURES_VERSION);
    if (!st) st = gt_h5_set_attr_str(f, NULL, "classifier_hash", ev->classifier_hash);
    if (!st) st = gt_h5_set_attr_str(f, NULL, "classifier", ev->classifier_path);
    if (!st) st = gt_h5_set_attr_str(f, NULL, "train_source", ev->train->source);
    if (!st) st = gt_h5_set_attr_str(f, NULL, "test_source", ev->test->source);
    if (!st) st = gt_h5_set_attr_double(f, NULL, "accuracy", ev->accuracy);
    if (!st) st = gt_h5_set_attr_double(f, NULL, "accuracy_train", accuracy_train);
    if (!st) st = gt_h5_write_floats(f, "train/features", ev->train_feat, 2, dt);
    if (!st) st = gt_h5_write_floats(f, "test/features", ev->test_feat, 2, ds);
    if (!st) st = gt_h5_write_int64(f, "train/class_hist", ev->train_hist, 1, dk);
    if (!st) st = gt_h5_write_int64(f, "test/class_hist", ev->test_hist, 1, dk);
    if (!st) st = gt_h5_close(f);
    else gt_h5_discard(f);
    if (!st && rename(tmp, ev->features_path) != 0)
        st = GT_ERROR("cannot rename %s to %s: %s", tmp, ev->features_path, strerror(errno));
    if (st) unlink(tmp);
    return st;
}

static gt_status make_features(gt_evaluator *ev) {
    size_t n_train = (size_t)ev->train->n, n_test = (size_t)ev->test->n;
    ev->train_feat = gt_alloc_floats(n_train * ev->dim);
    ev->test_feat = gt_alloc_floats(n_test * ev->dim);
    if (ev->points) { /* the points are the features */
        gt_eval_data_rows(ev->train, 0, ev->train->n, GT_SCALE_UNIT, ev->train_feat);
        gt_eval_data_rows(ev->test, 0, ev->test->n, GT_SCALE_UNIT, ev->test_feat);
        return GT_OK;
    }
    ev->train_hist = gt_alloc(sizeof(int64_t) * ev->classes);
    ev->test_hist = gt_alloc(sizeof(int64_t) * ev->classes);
    int found = 0;
    gt_status st = read_features(ev, &found);
    if (gt_dist_any(st != GT_OK)) return st ? st : GT_ERROR_ALL("another rank failed");
    if (gt_dist_or(!found)) { /* every rank makes them if any lacks them */
        double t0 = gt_now();
        gt_info("evaluation: features of %zu training and %zu test examples with classifier %s ...", n_train, n_test,
                ev->classifier_hash);
        float *logits = gt_alloc_floats((n_train > n_test ? n_train : n_test) * ev->classes);
        double accuracy_train;
        memset(ev->train_hist, 0, sizeof(int64_t) * ev->classes);
        memset(ev->test_hist, 0, sizeof(int64_t) * ev->classes);
        features_of(ev->classifier, ev->train, ev->train_feat, logits);
        predictions(logits, ev->train, ev->classes, ev->train_hist, &accuracy_train);
        features_of(ev->classifier, ev->test, ev->test_feat, logits);
        predictions(logits, ev->test, ev->classes, ev->test_hist, &ev->accuracy);
        gt_free(logits);
        st = gt_dist_rank() == 0 ? write_features(ev, accuracy_train) : GT_OK;
        if (st) { /* the cache is an optimization: say so and go on */
            gt_warn("evaluation cache not written: %s", gt_error_message());
            gt_error_clear();
        }
        gt_info("evaluation: features made in %.1f s (classifier accuracy: train %.4f, test %.4f)%s%s", gt_now() - t0,
                accuracy_train, ev->accuracy, st ? "" : "; cached in ", st ? "" : ev->features_path);
    }
    return GT_OK;
}

gt_status gt_evaluator_open(const gt_options *o, const gt_dataset *train, const gt_dataset *test, unsigned metrics,
                            int may_train, gt_evaluator **out) {
    *out = NULL;
    gt_evaluator *ev = gt_alloc(sizeof *ev);
    ev->train = train;
    ev->test = test;
    ev->points = train->values != NULL;
    ev->seed = o->eval_seed;
    ev->accuracy = NAN;
    gt_status st = GT_OK;
    if (ev->points || !(metrics & GT_METRICS_FEATURES)) {
        ev->dim = ev->points ? (int)gt_shape_size(train->shape) : 0;
        snprintf(ev->classifier_hash, sizeof ev->classifier_hash, "none");
    } else {
        st = find_classifier(o, may_train, ev->classifier_path, sizeof ev->classifier_path);
        if (!st) st = load_classifier(ev->classifier_path, train, &ev->classifier);
        if (gt_dist_any(st != GT_OK) && !st) st = GT_ERROR_ALL("another rank failed");
        if (!st) {
            model_hash(ev->classifier, ev->classifier_hash);
            ev->dim = gt_model_feature_dim(ev->classifier);
            ev->classes = ev->classifier->n_classes;
            char cache[4096];
            uint64_t dh = dataset_hash(test, dataset_hash(train, GT_HASH_INIT));
            st = cache_dir(o, cache, sizeof cache);
            if (!st) st = gt_make_dirs(cache, "the evaluation cache directory");
            if (!st && snprintf(ev->features_path, sizeof ev->features_path, "%s/features-%s-%016" PRIx64 ".h5", cache,
                                ev->classifier_hash, dh) >= (int)sizeof ev->features_path)
                st = GT_ERROR("path too long: %s", cache);
            if (gt_dist_any(st != GT_OK) && !st) st = GT_ERROR_ALL("another rank failed");
        }
    }
    if (!st && ev->dim) st = make_features(ev);
    if (st) {
        gt_evaluator_free(ev);
        return st;
    }
    if (!ev->dim) {
        *out = ev;
        return GT_OK;
    }
    gt_gauss_stats_init(&ev->train_stats, ev->dim);
    gt_gauss_stats_init(&ev->test_stats, ev->dim);
    gt_gauss_stats_add(&ev->train_stats, ev->train_feat, (int)train->n);
    gt_gauss_stats_add(&ev->test_stats, ev->test_feat, (int)test->n);
    *out = ev;
    return GT_OK;
}

void gt_evaluator_free(gt_evaluator *ev) {
    if (!ev) return;
    gt_model_free(ev->classifier);
    gt_free(ev->train_feat);
    gt_free(ev->test_feat);
    gt_free(ev->train_hist);
    gt_free(ev->test_hist);
    if (ev->train_stats.buf) gt_gauss_stats_free(&ev->train_stats);
    if (ev->test_stats.buf) gt_gauss_stats_free(&ev->test_stats);
    gt_free(ev->train_pixels);
    gt_free(ev->test_nn_feature);
    gt_free(ev->test_nn_pixel);
    gt_free(ev->centroids);
    gt_free(ev->train_cell);
    gt_free(ev->test_cell);
    gt_free(ev->test_cell_dist);
    gt_free(ev);
}

const char *gt_evaluator_classifier_path(const gt_evaluator *ev) { return ev->classifier_path; }
const char *gt_evaluator_classifier_hash(const gt_evaluator *ev) { return ev->classifier_hash; }
double gt_evaluator_classifier_accuracy(const gt_evaluator *ev) { return ev->accuracy; }

/* ---- the memorization reference ------------------------------------------------ */

/* Nearest-training-point distances of the rows of q [n, dim] (this rank's
 * chunks, then gathered). */
static void nearest_train(float *dist, const float *q, int64_t n, const float *train, int64_t n_train, int dim) {
    int64_t first, last;
    gt_eval_my_rows(n, GT_EVAL_CHUNK, &first, &last);
    for (int64_t r = first; r < last; r += GT_EVAL_CHUNK) {
        int64_t e = last - r < GT_EVAL_CHUNK ? last : r + GT_EVAL_CHUNK;
        gt_knn(dist + r, NULL, 1, q, (int)r, (int)e, train, (int)n_train, dim, 0);
    }
    gt_dist_allgather_rows(dist, n, GT_EVAL_CHUNK, sizeof(float));
}

static gt_status read_memorization(gt_evaluator *ev, int *found) {
    *found = 0;
    if (!ev->features_path[0] || access(ev->features_path, R_OK) != 0) return GT_OK;
    gt_h5 *f;
    GT_TRY(gt_h5_open(ev->features_path, 0, &f));
    int yes = 0, n_train = (int)ev->train->n, n_test = (int)ev->test->n;
    int dn[1] = {n_test}, dt[1] = {n_train}, dc[2] = {GT_CT_CELLS, ev->dim};
    gt_status st = gt_h5_exists(f, "memorization/test_cell_dist", &yes);
    int64_t *cells = yes ? gt_alloc(sizeof(int64_t) * (size_t)(n_train > n_test ? n_train : n_test)) : NULL;
    if (!st && yes) st = gt_h5_read_floats(f, "memorization/test_nn_feature", ev->test_nn_feature, 1, dn);
    if (!st && yes) st = gt_h5_read_floats(f, "memorization/test_nn_pixel", ev->test_nn_pixel, 1, dn);
    if (!st && yes) st = gt_h5_read_floats(f, "memorization/centroids", ev->centroids, 2, dc);
    if (!st && yes) st = gt_h5_read_floats(f, "memorization/test_cell_dist", ev->test_cell_dist, 1, dn);
    if (!st && yes) st = gt_h5_read_int64(f, "memorization/train_cell", cells, 1, dt);
    for (int i = 0; !st && yes && i < n_train; i++) ev->train_cell[i] = (int)cells[i];
    if (!st && yes) st = gt_h5_read_int64(f, "memorization/test_cell", cells, 1, dn);
    for (int i = 0; !st && yes && i < n_test; i++) ev->test_cell[i] = (int)cells[i];
    gt_free(cells);
    gt_h5_discard(f);
    if (st) {
        gt_warn("evaluation cache %s: the memorization reference does not read (%s): making it again",
                ev->features_path, gt_error_message());
        gt_error_clear();
        return GT_OK;
    }
    *found = yes;
    return GT_OK;
}

static gt_status write_memorization(const gt_evaluator *ev) {
    gt_h5 *f;
    GT_TRY(gt_h5_open(ev->features_path, 1, &f));
    int n_train = (int)ev->train->n, n_test = (int)ev->test->n;
    int dn[1] = {n_test}, dt[1] = {n_train}, dc[2] = {GT_CT_CELLS, ev->dim};
    int64_t *cells = gt_alloc(sizeof(int64_t) * (size_t)(n_train > n_test ? n_train : n_test));
    for (int i = 0; i < n_train; i++) cells[i] = ev->train_cell[i];
    gt_status st = gt_h5_write_int64(f, "memorization/train_cell", cells, 1, dt);
    for (int i = 0; i < n_test; i++) cells[i] = ev->test_cell[i];
    if (!st) st = gt_h5_write_int64(f, "memorization/test_cell", cells, 1, dn);
    if (!st) st = gt_h5_write_floats(f, "memorization/test_nn_feature", ev->test_nn_feature, 1, dn);
    if (!st) st = gt_h5_write_floats(f, "memorization/test_nn_pixel", ev->test_nn_pixel, 1, dn);
    if (!st) st = gt_h5_write_floats(f, "memorization/centroids", ev->centroids, 2, dc);
    /* written last: its presence says the others are complete */
    if (!st) st = gt_h5_write_floats(f, "memorization/test_cell_dist", ev->test_cell_dist, 1, dn);
    gt_free(cells);
    if (!st) return gt_h5_close(f);
    gt_h5_discard(f);
    return st;
}

gt_status gt_evaluator_memorization(gt_evaluator *ev) {
    if (ev->have_memorization) return GT_OK;
    GT_ASSERT(ev->dim > 0, "memorization without features");
    int64_t n_train = ev->train->n, n_test = ev->test->n;
    size_t size = gt_shape_size(ev->train->shape);
    ev->test_nn_feature = gt_alloc_floats((size_t)n_test);
    ev->centroids = gt_alloc_floats((size_t)GT_CT_CELLS * ev->dim);
    ev->train_cell = gt_alloc(sizeof(int) * (size_t)n_train);
    ev->test_cell = gt_alloc(sizeof(int) * (size_t)n_test);
    ev->test_cell_dist = gt_alloc_floats((size_t)n_test);
    if (!ev->points) {
        ev->test_nn_pixel = gt_alloc_floats((size_t)n_test);
        ev->train_pixels = gt_alloc_floats((size_t)n_train * size);
        gt_eval_data_rows(ev->train, 0, n_train, GT_SCALE_UNIT, ev->train_pixels);
    }
    GT_ENSURE(n_train >= GT_CT_CELLS, "memorization needs at least %d training examples (C_T's cells), the data has "
              "%" PRId64, GT_CT_CELLS, n_train);
    int found = 0;
    gt_status st = read_memorization(ev, &found);
    if (gt_dist_any(st != GT_OK)) return st ? st : GT_ERROR_ALL("another rank failed");
    if (!gt_dist_or(!found)) {
        ev->have_memorization = 1;
        return GT_OK;
    }
    double t0 = gt_now();
    gt_info("evaluation: memorization reference (nearest training neighbours of %" PRId64 " test examples%s, %d k-means "
            "cells) ...", n_test, ev->points ? "" : " in feature and pixel space", GT_CT_CELLS);
    nearest_train(ev->test_nn_feature, ev->test_feat, n_test, ev->train_feat, n_train, ev->dim);
    if (!ev->points) {
        float *test_pixels = gt_alloc_floats((size_t)n_test * size);
        gt_eval_data_rows(ev->test, 0, n_test, GT_SCALE_UNIT, test_pixels);
        nearest_train(ev->test_nn_pixel, test_pixels, n_test, ev->train_pixels, n_train, (int)size);
        gt_free(test_pixels);
    }
    /* cells: k-means of the training features, the same on every rank */
    gt_kmeans(ev->centroids, ev->train_feat, (int)n_train, ev->dim, GT_CT_CELLS, GT_CT_MAX_ITER, ev->seed);
    int64_t first, last;
    gt_eval_my_rows(n_train, GT_EVAL_CHUNK, &first, &last);
    gt_nearest_cell(ev->train_cell + first, ev->train_feat, (int)first, (int)last, ev->centroids, GT_CT_CELLS, ev->dim);
    gt_dist_allgather_rows(ev->train_cell, n_train, GT_EVAL_CHUNK, sizeof(int));
    gt_eval_my_rows(n_test, GT_EVAL_CHUNK, &first, &last);
    gt_nearest_cell(ev->test_cell + first, ev->test_feat, (int)first, (int)last, ev->centroids, GT_CT_CELLS, ev->dim);
    gt_dist_allgather_rows(ev->test_cell, n_test, GT_EVAL_CHUNK, sizeof(int));
    gt_cell_nn_dist(ev->test_cell_dist + first, ev->test_feat, ev->test_cell, (int)first, (int)last, ev->train_feat,
                    ev->train_cell, (int)n_train, ev->dim, GT_CT_CELLS);
    gt_dist_allgather_rows(ev->test_cell_dist, n_test, GT_EVAL_CHUNK, sizeof(float));
    if (gt_dist_rank() == 0 && ev->features_path[0] && (st = write_memorization(ev))) {
        gt_warn("evaluation cache not written: %s", gt_error_message());
        gt_error_clear();
    }
    gt_info("evaluation: memorization reference made in %.1f s", gt_now() - t0);
    ev->have_memorization = 1;
    return GT_OK;
}
