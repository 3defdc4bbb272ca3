/* Checkpoints: write atomically, list, prune, verify, load. Layout in
 * include/gentrain/checkpoint.h. */
#include "gentrain/checkpoint.h"

#include "gentrain/core.h"
#include "gentrain/io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_TENSORS 256

/* snprintf into a char array; a name or message that does not fit is an error. */
#define FMT(buf, ...)                                                                                        \
    do {                                                                                                     \
        int n_ = snprintf((buf), sizeof(buf), __VA_ARGS__);                                                  \
        GT_ENSURE(n_ >= 0 && (size_t)n_ < sizeof(buf), "name too long: %s", (buf));                         \
    } while (0)

static const char rng_scheme[] =
    "Philox4x32-10, counter-based: every random number is keyed by (seed, purpose, step, global example index); "
    "seed and step are the whole RNG state";

gt_status gt_ckpt_path(const char *dir, int64_t step, char *out, size_t cap) {
    int n = snprintf(out, cap, "%s/step-%08" PRId64 ".h5", dir, step);
    GT_ENSURE(n > 0 && (size_t)n < cap, "checkpoint path too long: %s/step-%08" PRId64 ".h5", dir, step);
    return GT_OK;
}

static uint64_t text_hash(const char *model, const char *config) {
    uint64_t h = gt_hash_bytes(model, strlen(model), GT_HASH_INIT);
    h = gt_hash_bytes("\n", 1, h);
    return gt_hash_bytes(config, strlen(config), h);
}

static gt_status write_one(gt_h5 *f, const char *name, int64_t v) {
    int one = 1;
    return gt_h5_write_int64(f, name, &v, 1, &one);
}

static gt_status read_one(gt_h5 *f, const char *name, int64_t *v) {
    int one = 1;
    return gt_h5_read_int64(f, name, v, 1, &one);
}

/* The trainable tensors must tile the parameter buffer for per-tensor moments. */
static int net_refs(const gt_net *net, gt_tensor_ref *refs) {
    int n = gt_net_tensors(net, refs, MAX_TENSORS);
    GT_ASSERT(n <= MAX_TENSORS, "network %s has %d tensors, more than %d", net->name, n, MAX_TENSORS);
    size_t covered = 0;
    for (int i = 0; i < n; i++) {
        if (!refs[i].trainable) continue;
        size_t numel = 1;
        for (int d = 0; d < refs[i].rank; d++) numel *= (size_t)refs[i].dims[d];
        covered += numel;
    }
    GT_ASSERT(covered == net->n_params, "network %s: its tensors cover %zu of %zu parameters", net->name, covered,
              net->n_params);
    return n;
}

/* The EMA generator's copy of tensor r of net[0] (params or state). */
static float *ema_tensor(const gt_model *m, const gt_tensor_ref *r) {
    const gt_net *G = &m->net[0];
    return r->trainable ? m->ema_params + (r->data - G->params) : m->ema_state + (r->data - G->state);
}

static gt_status write_model(gt_h5 *f, const gt_model *m) {
    gt_tensor_ref refs[MAX_TENSORS];
    char name[512];
    if (gt_model_has_ema(m)) {
        int n = net_refs(&m->net[0], refs);
        for (int i = 0; i < n; i++) {
            FMT(name, "/ema/%s/%s", m->net[0].name, refs[i].name);
            GT_TRY(gt_h5_write_floats(f, name, ema_tensor(m, &refs[i]), refs[i].rank, refs[i].dims));
        }
        FMT(name, "/ema/%s", m->net[0].name);
        GT_TRY(gt_h5_set_attr_double(f, name, "decay", m->gan.g_ema));
    }
    for (int k = 0; k < m->n_nets; k++) {
        const gt_net *net = &m->net[k];
        const gt_optim *opt = &m->opt[k];
        int n = net_refs(net, refs);
        for (int i = 0; i < n; i++) {
            FMT(name, "/params/%s/%s", net->name, refs[i].name);
            GT_TRY(gt_h5_write_floats(f, name, refs[i].data, refs[i].rank, refs[i].dims));
            if (!refs[i].trainable) continue;
            size_t off = (size_t)(refs[i].data - net->params);
            FMT(name, "/optim/%s/m/%s", net->name, refs[i].name);
            GT_TRY(gt_h5_write_floats(f, name, opt->m + off, refs[i].rank, refs[i].dims));
            if (opt->v) {
                FMT(name, "/optim/%s/v/%s", net->name, refs[i].name);
                GT_TRY(gt_h5_write_floats(f, name, opt->v + off, refs[i].rank, refs[i].dims));
            }
        }
        FMT(name, "/optim/%s/t", net->name);
        GT_TRY(write_one(f, name, opt->t));
        FMT(name, "/optim/%s", net->name);
        GT_TRY(gt_h5_set_attr_str_fixed(f, name, "kind", opt->kind == GT_OPT_ADAM ? "adam" : "sgd"));
        GT_TRY(gt_h5_set_attr_double(f, name, "lr", opt->lr));
        GT_TRY(gt_h5_set_attr_double(f, name, "beta1", opt->beta1));
        GT_TRY(gt_h5_set_attr_double(f, name, "beta2", opt->beta2));
        GT_TRY(gt_h5_set_attr_double(f, name, "eps", opt->eps));
        GT_TRY(gt_h5_set_attr_double(f, name, "weight_decay", opt->weight_decay));
    }
    return GT_OK;
}

static gt_status write_contents(gt_h5 *f, const gt_model *m, const gt_ckpt_info *info, const char *config_text) {
    const char *model = gt_model_kind_name(m->kind);
    GT_TRY(gt_h5_set_attr_str_fixed(f, NULL, "format", GT_CKPT_FORMAT));
    GT_TRY(gt_h5_set_attr_int64(f, NULL, "version", GT_CKPT_VERSION));
    GT_TRY(gt_h5_set_attr_str_fixed(f, NULL, "gentrain_version", gt_version()));
    GT_TRY(gt_h5_set_attr_int64(f, NULL, "step", info->step));
    GT_TRY(gt_h5_set_attr_int64(f, NULL, "epoch", info->epoch));
    GT_TRY(gt_h5_set_attr_int64(f, NULL, "world_size", info->world_size));
    GT_TRY(gt_h5_set_attr_int64(f, NULL, "batch_size", info->batch_size));
    GT_TRY(gt_h5_set_attr_int64(f, NULL, "seed", (int64_t)info->seed));
    GT_TRY(gt_h5_set_attr_str_fixed(f, NULL, "model", model));
    GT_TRY(gt_h5_set_attr_str_fixed(f, NULL, "config", config_text));
    GT_TRY(gt_h5_set_attr_int64(f, NULL, "text_hash", (int64_t)text_hash(model, config_text)));
    if (info->rollbacks > 0) {
        GT_TRY(gt_h5_set_attr_int64(f, NULL, "rollbacks", info->rollbacks));
        GT_TRY(gt_h5_set_attr_double(f, NULL, "lr_scale", info->lr_scale));
    }
    GT_TRY(write_model(f, m));
    GT_TRY(write_one(f, "/rng/seed", (int64_t)info->seed));
    GT_TRY(write_one(f, "/rng/step", info->step));
    GT_TRY(gt_h5_set_attr_str_fixed(f, "/rng", "scheme", rng_scheme));
    GT_TRY(write_one(f, "/data/epoch", info->epoch));
    GT_TRY(write_one(f, "/data/cursor", info->cursor));
    GT_TRY(write_one(f, "/data/batch_size", info->batch_size));
    GT_TRY(write_one(f, "/data/world_size", info->world_size));
    GT_TRY(write_one(f, "/data/n_train", info->n_train));
    GT_TRY(write_one(f, "/data/n_classes", info->n_classes));
    int three = 3;
    int64_t shape[3] = {info->data_shape.c, info->data_shape.h, info->data_shape.w};
    GT_TRY(gt_h5_write_int64(f, "/data/shape", shape, 1, &three));
    return GT_OK;
}

static gt_status write_file(const char *path, const gt_model *m, const gt_ckpt_info *info, const char *config_text) {
    gt_h5 *f;
    GT_TRY(gt_h5_create(path, &f));
    gt_status st = write_contents(f, m, info, config_text);
    if (st) {
        gt_h5_discard(f);
        return st;
    }
    return gt_h5_close(f);
}

/* fsync a file or directory; 0 or -1 with errno. */
static int sync_path(const char *path, int dir) {
    int fd = open(path, dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    if (close(fd) != 0 && rc == 0) return -1;
    errno = e;
    return rc;
}

gt_status gt_ckpt_save(const char *dir, const gt_model *m, const gt_ckpt_info *info, const char *config_text) {
    char final[4096], tmp[4096], prev[4096] = "", bad[256];
    if (!gt_model_finite(m, bad, sizeof bad))
        return GT_ERROR("refusing to write the checkpoint of step %" PRId64 ": %s is not finite (training diverged; "
                        "a checkpoint with non-finite parameters is never written)",
                        info->step, bad);
    GT_TRY(gt_ckpt_path(dir, info->step, final, sizeof final));
    int n = snprintf(tmp, sizeof tmp, "%s/.step-%08" PRId64 ".h5.tmp", dir, info->step);
    GT_ENSURE(n > 0 && (size_t)n < sizeof tmp, "checkpoint path too long in %s", dir);
    {
        char **paths;
        int64_t *steps;
        int np;
        GT_TRY(gt_ckpt_list(dir, &paths, &steps, &np));
        for (int i = 0; i < np && !prev[0]; i++)
            if (steps[i] != info->step) snprintf(prev, sizeof prev, "%s", paths[i]);
        gt_ckpt_free_list(paths, steps, np);
    }
    double t0 = gt_now();
    gt_status st = write_file(tmp, m, info, config_text);
    if (!st && sync_path(tmp, 0) != 0)
        st = GT_ERROR("cannot fsync %s: %s", tmp, strerror(errno));
    else if (!st && rename(tmp, final) != 0)
        st = GT_ERROR("cannot rename %s to %s: %s", tmp, final, strerror(errno));
    else if (!st && sync_path(dir, 1) != 0)
        st = GT_ERROR("cannot fsync directory %s: %s", dir, strerror(errno));
    if (st) {
        unlink(tmp); /* may already be gone */
        return GT_ERROR("checkpoint of step %" PRId64 " could not be written: %s. %s%s%s; stopping. Free space (or "
                        "lift the limit) and run the same command again %s",
                        info->step, gt_error_message(), prev[0] ? "The previous checkpoint " : "There is no previous checkpoint",
                        prev[0] ? prev : "", prev[0] ? " is intact" : "",
                        prev[0] ? "to resume from it" : "to start over (the files of this attempt are moved aside)");
    }
    gt_info("checkpoint: step %" PRId64 " -> %s (%.2f s)", info->step, final, gt_now() - t0);
    return GT_OK;
}

/* ---- listing and pruning ------------------------------------------------ */

/* step of "step-XXXXXXXX.h5", -1 if the name is not one. */
static int64_t parse_name(const char *name) {
    if (strncmp(name, "step-", 5) != 0) return -1;
    const char *p = name + 5;
    int64_t v = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 18) v = v * 10 + (*p++ - '0'), digits++;
    if (digits < 8 || strcmp(p, ".h5") != 0) return -1;
    return v;
}

gt_status gt_ckpt_list(const char *dir, char ***paths, int64_t **steps, int *count) {
    *paths = NULL;
    *steps = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return GT_OK;
        return GT_ERROR("cannot list checkpoint directory %s: %s", dir, strerror(errno));
    }
    int n = 0, cap = 0;
    char **p = NULL;
    int64_t *s = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t step = parse_name(e->d_name);
        if (step < 0) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **np = gt_alloc(sizeof(char *) * (size_t)cap);
            int64_t *ns = gt_alloc(sizeof(int64_t) * (size_t)cap);
            if (n) {
                memcpy(np, p, sizeof(char *) * (size_t)n);
                memcpy(ns, s, sizeof(int64_t) * (size_t)n);
            }
            gt_free(p);
            gt_free(s);
            p = np;
            s = ns;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        p[n] = gt_alloc(len);
        snprintf(p[n], len, "%s/%s", dir, e->d_name);
        s[n++] = step;
    }
    if (closedir(d) != 0) {
        gt_ckpt_free_list(p, s, n);
        return GT_ERROR("cannot list checkpoint directory %s: %s", dir, strerror(errno));
    }
    /* newest first (insertion sort: a handful of files) */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && s[j] > s[j - 1]; j--) {
            int64_t ts = s[j];
            s[j] = s[j - 1];
            s[j - 1] = ts;
            char *tp = p[j];
            p[j] = p[j - 1];
            p[j - 1] = tp;
        }
    *paths = p;
    *steps = s;
    *count = n;
    return GT_OK;
}

void gt_ckpt_free_list(char **paths, int64_t *steps, int n) {
    for (int i = 0; i < n; i++) gt_free(paths[i]);
    gt_free(paths);
    gt_free(steps);
}

gt_status gt_ckpt_prune(const char *dir, int keep) {
    char **paths;
    int64_t *steps;
    int n;
    GT_TRY(gt_ckpt_list(dir, &paths, &steps, &n));
    for (int i = keep; keep > 0 && i < n; i++) {
        if (unlink(paths[i]) != 0) gt_warn("cannot delete old checkpoint %s: %s", paths[i], strerror(errno));
    }
    gt_ckpt_free_list(paths, steps, n);
    DIR *d = opendir(dir);
    if (!d) return GT_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' && len > 4 && !strcmp(e->d_name + len - 4, ".tmp") && !strncmp(e->d_name, ".step-", 6)) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (unlink(path) == 0) gt_warn("removed %s, left by an interrupted checkpoint write", path);
        }
    }
    closedir(d);
    return GT_OK;
}

gt_status gt_ckpt_set_aside(const char *dir, const char *path, char *moved_to, size_t cap) {
    char aside[4200];
    int n = snprintf(aside, sizeof aside, "%s/damaged", dir);
    GT_ENSURE(n > 0 && (size_t)n < sizeof aside, "path too long: %s/damaged", dir);
    if (mkdir(aside, 0775) != 0 && errno != EEXIST) return GT_ERROR("cannot create %s: %s", aside, strerror(errno));
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    n = snprintf(moved_to, cap, "%s/%s", aside, base);
    GT_ENSURE(n > 0 && (size_t)n < cap, "path too long: %s/%s", aside, base);
    for (int k = 1; access(moved_to, F_OK) == 0 && k < 1000; k++) /* never overwrite an earlier one */
        snprintf(moved_to, cap, "%s/%s.%d", aside, base, k);
    if (rename(path, moved_to) != 0) return GT_ERROR("cannot move %s to %s: %s", path, moved_to, strerror(errno));
    return GT_OK;
}

/* ---- verification ------------------------------------------------------- */

static const char *const required[] = {"/rng/seed", "/rng/step", "/data/epoch", "/data/cursor", "/data/batch_size",
                                       "/data/world_size", "/data/n_train", "/data/shape", "/data/n_classes", NULL};
static const char *const root_ints[] = {"version", "step", "epoch", "world_size", "batch_size", "seed", "text_hash",
                                        NULL};

/* The checks of gt_ckpt_verify on an open file; an error says what is wrong. */
static gt_status verify_open(gt_h5 *f, const char *path) {
    int yes;
    GT_TRY(gt_h5_attr_is_string(f, NULL, "format", &yes));
    if (!yes) return GT_ERROR("%s is not a gentrain checkpoint (no 'format' attribute)", path);
    char *s1 = NULL, *s2 = NULL;
    GT_TRY(gt_h5_get_attr_str(f, NULL, "format", &s1));
    int ours = !strcmp(s1, GT_CKPT_FORMAT);
    gt_status st = ours ? GT_OK
                        : GT_ERROR("%s is not a gentrain checkpoint (format is '%s', not '%s')", path, s1,
                                   GT_CKPT_FORMAT);
    gt_free(s1);
    if (st) return st;
    for (int i = 0; root_ints[i]; i++) {
        char t = '?';
        GT_TRY(gt_h5_has_attr(f, NULL, root_ints[i], &yes));
        if (yes) GT_TRY(gt_h5_attr_type(f, NULL, root_ints[i], &t));
        if (t != 'i') return GT_ERROR("%s: root attribute '%s' is missing or not an integer", path, root_ints[i]);
    }
    int64_t v, hash, step, rng_step;
    GT_TRY(gt_h5_get_attr_int64(f, NULL, "version", &v));
    if (v < 1 || v > GT_CKPT_VERSION)
        return GT_ERROR("%s: checkpoint format version %" PRId64 " (this gentrain reads 1..%d)", path, v,
                        GT_CKPT_VERSION);
    GT_TRY(gt_h5_get_attr_str(f, NULL, "model", &s1));
    st = gt_h5_get_attr_str(f, NULL, "config", &s2);
    if (!st) st = gt_h5_get_attr_int64(f, NULL, "text_hash", &hash);
    if (!st && (uint64_t)hash != text_hash(s1, s2))
        st = GT_ERROR("%s: the model/config attributes do not match their hash (damaged file)", path);
    gt_free(s1);
    gt_free(s2);
    if (st) return st;
    for (int i = 0; required[i]; i++) {
        GT_TRY(gt_h5_is_dataset(f, required[i], &yes));
        if (!yes) return GT_ERROR("%s: dataset %s is missing", path, required[i]);
    }
    GT_TRY(gt_h5_exists(f, "/params", &yes));
    if (!yes) return GT_ERROR("%s: group /params is missing", path);
    char **names;
    int n;
    GT_TRY(gt_h5_list(f, NULL, 1, &names, &n));
    for (int i = 0; i < n && !st; i++) {
        st = gt_h5_verify(f, names[i]);
        if (st)
            st = GT_ERROR("%s: %s", path, gt_error_message());
        else if ((st = gt_h5_checksummed(f, names[i], &yes)) == GT_OK && !yes)
            st = GT_ERROR("%s: dataset /%s has no checksum", path, names[i]);
    }
    gt_h5_free_names(names, n);
    if (st) return st;
    GT_TRY(gt_h5_get_attr_int64(f, NULL, "step", &step));
    GT_TRY(read_one(f, "/rng/step", &rng_step));
    if (rng_step != step) return GT_ERROR("%s: /rng/step disagrees with the step attribute %" PRId64, path, step);
    const char *base = strrchr(path, '/');
    int64_t named = parse_name(base ? base + 1 : path);
    if (named >= 0 && named != step)
        return GT_ERROR("%s: the file name says step %" PRId64 " but the file holds step %" PRId64, path, named, step);
    return GT_OK;
}

gt_status gt_ckpt_verify(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0) return GT_ERROR("cannot read %s: %s", path, strerror(errno));
    if (!gt_h5_is_hdf5(path)) return GT_ERROR("%s is not an HDF5 file (truncated or damaged header?)", path);
    gt_h5 *f;
    GT_TRY(gt_h5_open(path, 0, &f));
    gt_status st = verify_open(f, path);
    if (st) {
        gt_h5_discard(f);
        return st;
    }
    return gt_h5_close(f);
}

/* ---- reading ------------------------------------------------------------- */

static gt_status read_info(gt_h5 *f, gt_ckpt_info *info, char **config_text, char **model_kind) {
    memset(info, 0, sizeof *info);
    int64_t v, shape[3];
    int three = 3;
    GT_TRY(gt_h5_get_attr_int64(f, NULL, "step", &info->step));
    GT_TRY(read_one(f, "/data/epoch", &info->epoch));
    GT_TRY(read_one(f, "/data/cursor", &info->cursor));
    GT_TRY(read_one(f, "/data/world_size", &info->world_size));
    GT_TRY(read_one(f, "/data/batch_size", &info->batch_size));
    GT_TRY(read_one(f, "/data/n_train", &info->n_train));
    GT_TRY(read_one(f, "/data/n_classes", &v));
    info->n_classes = (int)v;
    GT_TRY(read_one(f, "/rng/seed", &v));
    info->seed = (uint64_t)v;
    GT_TRY(gt_h5_read_int64(f, "/data/shape", shape, 1, &three));
    info->data_shape = (gt_shape){(int)shape[0], (int)shape[1], (int)shape[2]};
    int yes;
    info->lr_scale = 1.0;
    GT_TRY(gt_h5_has_attr(f, NULL, "rollbacks", &yes));
    if (yes) {
        GT_TRY(gt_h5_get_attr_int64(f, NULL, "rollbacks", &info->rollbacks));
        GT_TRY(gt_h5_get_attr_double(f, NULL, "lr_scale", &info->lr_scale));
        if (info->rollbacks < 0 || !(info->lr_scale > 0 && info->lr_scale <= 1))
            return GT_ERROR("%s: rollbacks %" PRId64 " or lr_scale %g out of range (damaged file?)", gt_h5_path(f),
                            info->rollbacks, info->lr_scale);
    }
    if (config_text) GT_TRY(gt_h5_get_attr_str(f, NULL, "config", config_text));
    if (model_kind) GT_TRY(gt_h5_get_attr_str(f, NULL, "model", model_kind));
    return GT_OK;
}

gt_status gt_ckpt_read_info(const char *path, gt_ckpt_info *info, char **config_text, char **model_kind) {
    gt_h5 *f;
    if (config_text) *config_text = NULL;
    if (model_kind) *model_kind = NULL;
    GT_TRY(gt_h5_open(path, 0, &f));
    gt_status st = read_info(f, info, config_text, model_kind);
    if (st) {
        gt_h5_discard(f);
        if (config_text) gt_free(*config_text), *config_text = NULL;
        if (model_kind) gt_free(*model_kind), *model_kind = NULL;
        return st;
    }
    return gt_h5_close(f);
}

/* Datasets under group must be exactly the expected names, with the expected shapes. */
static gt_status expect_tensors(gt_h5 *f, const char *group, const gt_tensor_ref *refs, int n, int trainable_only) {
    char **names;
    int have;
    GT_TRY(gt_h5_list(f, group, 1, &names, &have));
    gt_status st = GT_OK;
    int want = 0;
    for (int i = 0; i < n && !st; i++) {
        if (trainable_only && !refs[i].trainable) continue;
        want++;
        int found = 0;
        for (int j = 0; j < have && !found; j++) found = !strcmp(names[j], refs[i].name);
        if (!found) {
            st = GT_ERROR("checkpoint %s has no tensor %s/%s: it was written for another architecture or is damaged",
                          gt_h5_path(f), group, refs[i].name);
            break;
        }
        char path[512];
        int rank, dims[GT_H5_MAX_RANK];
        FMT(path, "%s/%s", group, refs[i].name);
        st = gt_h5_shape(f, path, &rank, dims);
        int same = !st && rank == refs[i].rank;
        for (int d = 0; same && d < rank; d++) same = dims[d] == refs[i].dims[d];
        if (!st && !same)
            st = GT_ERROR("checkpoint %s: tensor %s has another shape than this model's (rank %d, first dimension %d "
                          "vs rank %d, %d)",
                          gt_h5_path(f), path, rank, rank ? dims[0] : 0, refs[i].rank, refs[i].dims[0]);
    }
    for (int j = 0; j < have && !st && have != want; j++) {
        int found = 0;
        for (int i = 0; i < n && !found; i++)
            found = (!trainable_only || refs[i].trainable) && !strcmp(names[j], refs[i].name);
        if (!found)
            st = GT_ERROR("checkpoint %s has a tensor %s/%s that this model does not: it was written for another "
                          "architecture",
                          gt_h5_path(f), group, names[j]);
    }
    gt_h5_free_names(names, have);
    return st;
}

/* Every tensor group the model needs, with its names and shapes. */
static gt_status check_open(gt_h5 *f, const gt_model *m) {
    gt_tensor_ref refs[MAX_TENSORS];
    char name[512];
    for (int k = 0; k < m->n_nets; k++) {
        const gt_net *net = &m->net[k];
        int n = net_refs(net, refs), yes;
        FMT(name, "/params/%s", net->name);
        GT_TRY(gt_h5_exists(f, name, &yes));
        if (!yes)
            return GT_ERROR("checkpoint %s has no network '%s' (%s model): it was written for another model",
                            gt_h5_path(f), net->name, gt_model_kind_name(m->kind));
        GT_TRY(expect_tensors(f, name, refs, n, 0));
        FMT(name, "/optim/%s/m", net->name);
        GT_TRY(expect_tensors(f, name, refs, n, 1));
        if (m->opt[k].v) {
            FMT(name, "/optim/%s/v", net->name);
            GT_TRY(gt_h5_exists(f, name, &yes));
            if (!yes)
                return GT_ERROR("checkpoint %s has no Adam second moments (%s): it was written with another [optim] "
                                "kind, or is damaged",
                                gt_h5_path(f), name);
            GT_TRY(expect_tensors(f, name, refs, n, 1));
        }
        FMT(name, "/optim/%s/t", net->name);
        GT_TRY(gt_h5_is_dataset(f, name, &yes));
        if (!yes) return GT_ERROR("checkpoint %s has no %s", gt_h5_path(f), name);
    }
    if (gt_model_has_ema(m)) {
        int n = net_refs(&m->net[0], refs), yes;
        FMT(name, "/ema/%s", m->net[0].name);
        GT_TRY(gt_h5_exists(f, name, &yes));
        if (!yes)
            return GT_ERROR("checkpoint %s has no EMA generator (%s) but [model] g_ema = %g asks for one: it was "
                            "written without g_ema, or is damaged",
                            gt_h5_path(f), name, m->gan.g_ema);
        GT_TRY(expect_tensors(f, name, refs, n, 0));
    }
    return GT_OK;
}

gt_status gt_ckpt_check_model(const char *path, const gt_model *m) {
    gt_h5 *f;
    GT_TRY(gt_h5_open(path, 0, &f));
    gt_status st = check_open(f, m);
    if (st) {
        gt_h5_discard(f);
        return st;
    }
    return gt_h5_close(f);
}

static gt_status load_open(gt_h5 *f, gt_model *m) {
    GT_TRY(check_open(f, m));
    gt_tensor_ref refs[MAX_TENSORS];
    char name[512];
    for (int k = 0; k < m->n_nets; k++) {
        gt_net *net = &m->net[k];
        gt_optim *opt = &m->opt[k];
        int n = net_refs(net, refs);
        for (int i = 0; i < n; i++) {
            FMT(name, "/params/%s/%s", net->name, refs[i].name);
            GT_TRY(gt_h5_read_floats(f, name, refs[i].data, refs[i].rank, refs[i].dims));
            if (!refs[i].trainable) continue;
            size_t off = (size_t)(refs[i].data - net->params);
            FMT(name, "/optim/%s/m/%s", net->name, refs[i].name);
            GT_TRY(gt_h5_read_floats(f, name, opt->m + off, refs[i].rank, refs[i].dims));
            if (opt->v) {
                FMT(name, "/optim/%s/v/%s", net->name, refs[i].name);
                GT_TRY(gt_h5_read_floats(f, name, opt->v + off, refs[i].rank, refs[i].dims));
            }
        }
        FMT(name, "/optim/%s/t", net->name);
        GT_TRY(read_one(f, name, &opt->t));
    }
    if (gt_model_has_ema(m)) {
        int n = net_refs(&m->net[0], refs);
        for (int i = 0; i < n; i++) {
            FMT(name, "/ema/%s/%s", m->net[0].name, refs[i].name);
            GT_TRY(gt_h5_read_floats(f, name, ema_tensor(m, &refs[i]), refs[i].rank, refs[i].dims));
        }
    }
    return GT_OK;
}

gt_status gt_ckpt_load(const char *path, gt_model *m) {
    gt_h5 *f;
    GT_TRY(gt_h5_open(path, 0, &f));
    gt_status st = load_open(f, m);
    if (st) {
        gt_h5_discard(f);
        return st;
    }
    return gt_h5_close(f);
}
