/* Checkpoints: write atomically, list, prune, verify, load. Layout in
 * include/gentrain/checkpoint.h. */
#include "gentrain/checkpoint.h"

#include "gentrain/core.h"
#include "gentrain/io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
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
        GT_CHECK(n_ >= 0 && (size_t)n_ < sizeof(buf), "name too long: %s", (buf));                          \
    } while (0)
/* snprintf of a message that may be cut short. */
#define MSG(buf, cap, ...)                                                                                   \
    do {                                                                                                     \
        int n_ = snprintf((buf), (cap), __VA_ARGS__);                                                        \
        (void)n_;                                                                                            \
    } while (0)

static const char rng_scheme[] =
    "Philox4x32-10, counter-based: every random number is keyed by (seed, purpose, step, global example index); "
    "seed and step are the whole RNG state";

void gt_ckpt_path(const char *dir, int64_t step, char *out, size_t cap) {
    int n = snprintf(out, cap, "%s/step-%08" PRId64 ".h5", dir, step);
    GT_CHECK(n > 0 && (size_t)n < cap, "checkpoint path too long: %s/step-%08" PRId64 ".h5", dir, step);
}

static uint64_t text_hash(const char *model, const char *config) {
    uint64_t h = gt_hash_bytes(model, strlen(model), GT_HASH_INIT);
    h = gt_hash_bytes("\n", 1, h);
    return gt_hash_bytes(config, strlen(config), h);
}

static void write_one(gt_h5 *f, const char *name, int64_t v) {
    int one = 1;
    gt_h5_write_int64(f, name, &v, 1, &one);
}

static int64_t read_one(gt_h5 *f, const char *name) {
    int one = 1;
    int64_t v = 0;
    gt_h5_read_int64(f, name, &v, 1, &one);
    return v;
}

/* The trainable tensors must tile the parameter buffer for per-tensor moments. */
static int net_refs(const gt_net *net, gt_tensor_ref *refs) {
    int n = gt_net_tensors(net, refs, MAX_TENSORS);
    GT_CHECK(n <= MAX_TENSORS, "network %s has %d tensors, more than %d", net->name, n, MAX_TENSORS);
    size_t covered = 0;
    for (int i = 0; i < n; i++) {
        if (!refs[i].trainable) continue;
        size_t numel = 1;
        for (int d = 0; d < refs[i].rank; d++) numel *= (size_t)refs[i].dims[d];
        covered += numel;
    }
    GT_CHECK(covered == net->n_params, "network %s: its tensors cover %zu of %zu parameters", net->name, covered,
             net->n_params);
    return n;
}

static void write_model(gt_h5 *f, const gt_model *m) {
    gt_tensor_ref refs[MAX_TENSORS];
    char name[512];
    for (int k = 0; k < m->n_nets; k++) {
        const gt_net *net = &m->net[k];
        const gt_optim *opt = &m->opt[k];
        int n = net_refs(net, refs);
        for (int i = 0; i < n; i++) {
            FMT(name, "/params/%s/%s", net->name, refs[i].name);
            gt_h5_write_floats(f, name, refs[i].data, refs[i].rank, refs[i].dims);
            if (!refs[i].trainable) continue;
            size_t off = (size_t)(refs[i].data - net->params);
            FMT(name, "/optim/%s/m/%s", net->name, refs[i].name);
            gt_h5_write_floats(f, name, opt->m + off, refs[i].rank, refs[i].dims);
            if (opt->v) {
                FMT(name, "/optim/%s/v/%s", net->name, refs[i].name);
                gt_h5_write_floats(f, name, opt->v + off, refs[i].rank, refs[i].dims);
            }
        }
        FMT(name, "/optim/%s/t", net->name);
        write_one(f, name, opt->t);
        FMT(name, "/optim/%s", net->name);
        gt_h5_set_attr_str_fixed(f, name, "kind", opt->kind == GT_OPT_ADAM ? "adam" : "sgd");
        gt_h5_set_attr_double(f, name, "lr", opt->lr);
        gt_h5_set_attr_double(f, name, "beta1", opt->beta1);
        gt_h5_set_attr_double(f, name, "beta2", opt->beta2);
        gt_h5_set_attr_double(f, name, "eps", opt->eps);
        gt_h5_set_attr_double(f, name, "weight_decay", opt->weight_decay);
    }
}

static void write_file(gt_h5 *volatile *fp, const char *path, const gt_model *m, const gt_ckpt_info *info,
                       const char *config_text) {
    gt_h5 *f = *fp = gt_h5_create(path);
    const char *model = gt_model_kind_name(m->kind);
    gt_h5_set_attr_str_fixed(f, NULL, "format", GT_CKPT_FORMAT);
    gt_h5_set_attr_int64(f, NULL, "version", GT_CKPT_VERSION);
    gt_h5_set_attr_int64(f, NULL, "step", info->step);
    gt_h5_set_attr_int64(f, NULL, "epoch", info->epoch);
    gt_h5_set_attr_int64(f, NULL, "world_size", info->world_size);
    gt_h5_set_attr_int64(f, NULL, "batch_size", info->batch_size);
    gt_h5_set_attr_int64(f, NULL, "seed", (int64_t)info->seed);
    gt_h5_set_attr_str_fixed(f, NULL, "model", model);
    gt_h5_set_attr_str_fixed(f, NULL, "config", config_text);
    gt_h5_set_attr_int64(f, NULL, "text_hash", (int64_t)text_hash(model, config_text));
    write_model(f, m);
    write_one(f, "/rng/seed", (int64_t)info->seed);
    write_one(f, "/rng/step", info->step);
    gt_h5_set_attr_str_fixed(f, "/rng", "scheme", rng_scheme);
    write_one(f, "/data/epoch", info->epoch);
    write_one(f, "/data/cursor", info->cursor);
    write_one(f, "/data/batch_size", info->batch_size);
    write_one(f, "/data/world_size", info->world_size);
    write_one(f, "/data/n_train", info->n_train);
    write_one(f, "/data/n_classes", info->n_classes);
    int three = 3;
    int64_t shape[3] = {info->data_shape.c, info->data_shape.h, info->data_shape.w};
    gt_h5_write_int64(f, "/data/shape", shape, 1, &three);
    gt_h5_close(f);
    *fp = NULL;
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

void gt_ckpt_save(const char *dir, const gt_model *m, const gt_ckpt_info *info, const char *config_text) {
    char final[4096], tmp[4096], why[9000], prev[4096] = "";
    gt_ckpt_path(dir, info->step, final, sizeof final);
    int n = snprintf(tmp, sizeof tmp, "%s/.step-%08" PRId64 ".h5.tmp", dir, info->step);
    GT_CHECK(n > 0 && (size_t)n < sizeof tmp, "checkpoint path too long in %s", dir);
    {
        char **paths;
        int64_t *steps;
        int np = gt_ckpt_list(dir, &paths, &steps);
        for (int i = 0; i < np && !prev[0]; i++)
            if (steps[i] != info->step) snprintf(prev, sizeof prev, "%s", paths[i]);
        gt_ckpt_free_list(paths, steps, np);
    }
    double t0 = gt_now();
    gt_h5_catch c;
    gt_h5 *volatile f = NULL;
    gt_h5_catch_push(&c);
    if (setjmp(c.jb) == 0) {
        write_file(&f, tmp, m, info, config_text);
        gt_h5_catch_pop(&c);
        why[0] = '\0';
        if (sync_path(tmp, 0) != 0)
            MSG(why, sizeof why, "cannot fsync %s: %s", tmp, strerror(errno));
        else if (rename(tmp, final) != 0)
            MSG(why, sizeof why, "cannot rename %s to %s: %s", tmp, final, strerror(errno));
        else if (sync_path(dir, 1) != 0)
            MSG(why, sizeof why, "cannot fsync directory %s: %s", dir, strerror(errno));
    } else {
        gt_h5_discard(f);
        MSG(why, sizeof why, "%s", c.msg);
    }
    if (why[0]) {
        unlink(tmp); /* may already be gone */
        gt_fatal("checkpoint of step %" PRId64 " could not be written: %s. %s%s%s; stopping. Free space (or lift the "
                 "limit) and run the same command again to resume",
                 info->step, why, prev[0] ? "The previous checkpoint " : "There is no previous checkpoint",
                 prev[0] ? prev : "", prev[0] ? " is intact" : "");
    }
    gt_info("checkpoint: step %" PRId64 " -> %s (%.2f s)", info->step, final, gt_now() - t0);
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

int gt_ckpt_list(const char *dir, char ***paths, int64_t **steps) {
    *paths = NULL;
    *steps = NULL;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return 0;
        gt_fatal("cannot list checkpoint directory %s: %s", dir, strerror(errno));
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
    if (closedir(d) != 0) gt_fatal("cannot list checkpoint directory %s: %s", dir, strerror(errno));
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
    return n;
}

void gt_ckpt_free_list(char **paths, int64_t *steps, int n) {
    for (int i = 0; i < n; i++) gt_free(paths[i]);
    gt_free(paths);
    gt_free(steps);
}

void gt_ckpt_prune(const char *dir, int keep) {
    char **paths;
    int64_t *steps;
    int n = gt_ckpt_list(dir, &paths, &steps);
    for (int i = keep; keep > 0 && i < n; i++) {
        if (unlink(paths[i]) != 0) gt_warn("cannot delete old checkpoint %s: %s", paths[i], strerror(errno));
    }
    gt_ckpt_free_list(paths, steps, n);
    DIR *d = opendir(dir);
    if (!d) return;
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
}

/* ---- verification ------------------------------------------------------- */

static const char *const required[] = {"/rng/seed", "/rng/step", "/data/epoch", "/data/cursor", "/data/batch_size",
                                       "/data/world_size", "/data/n_train", "/data/shape", "/data/n_classes", NULL};
static const char *const root_ints[] = {"version", "step", "epoch", "world_size", "batch_size", "seed", "text_hash",
                                        NULL};

int gt_ckpt_verify(const char *path, char *why, size_t cap) {
    why[0] = '\0';
    struct stat sb;
    if (stat(path, &sb) != 0) {
        snprintf(why, cap, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    if (!gt_h5_is_hdf5(path)) {
        snprintf(why, cap, "%s is not an HDF5 file (truncated or damaged header?)", path);
        return -1;
    }
    gt_h5_catch c;
    gt_h5 *volatile f = NULL;
    char **volatile names = NULL;
    volatile int n_names = 0;
    char *volatile s1 = NULL, *volatile s2 = NULL;
    gt_h5_catch_push(&c);
    if (setjmp(c.jb) == 0) {
        f = gt_h5_open(path, 0);
        if (!gt_h5_has_attr(f, NULL, "format")) {
            snprintf(why, cap, "%s is not a gentrain checkpoint (no 'format' attribute)", path);
        } else {
            s1 = gt_h5_get_attr_str(f, NULL, "format");
            if (strcmp(s1, GT_CKPT_FORMAT) != 0)
                snprintf(why, cap, "%s is not a gentrain checkpoint (format is '%s', not '%s')", path, s1,
                         GT_CKPT_FORMAT);
        }
        for (int i = 0; !why[0] && root_ints[i]; i++)
            if (!gt_h5_has_attr(f, NULL, root_ints[i]) || gt_h5_attr_type(f, NULL, root_ints[i]) != 'i')
                snprintf(why, cap, "%s: root attribute '%s' is missing or not an integer", path, root_ints[i]);
        if (!why[0]) {
            int64_t v = gt_h5_get_attr_int64(f, NULL, "version");
            if (v < 1 || v > GT_CKPT_VERSION)
                snprintf(why, cap, "%s: checkpoint format version %" PRId64 " (this gentrain reads 1..%d)", path, v,
                         GT_CKPT_VERSION);
        }
        if (!why[0]) {
            gt_free(s1);
            s1 = gt_h5_get_attr_str(f, NULL, "model");
            s2 = gt_h5_get_attr_str(f, NULL, "config");
            if ((uint64_t)gt_h5_get_attr_int64(f, NULL, "text_hash") != text_hash(s1, s2))
                snprintf(why, cap, "%s: the model/config attributes do not match their hash (damaged file)", path);
        }
        for (int i = 0; !why[0] && required[i]; i++)
            if (!gt_h5_is_dataset(f, required[i])) snprintf(why, cap, "%s: dataset %s is missing", path, required[i]);
        if (!why[0] && !gt_h5_exists(f, "/params")) snprintf(why, cap, "%s: group /params is missing", path);
        if (!why[0]) {
            char **nm;
            n_names = gt_h5_list(f, NULL, 1, &nm);
            names = nm;
            for (int i = 0; !why[0] && i < n_names; i++) {
                char r[900];
                if (gt_h5_verify(f, names[i], r, sizeof r) != 0)
                    snprintf(why, cap, "%s: %s", path, r);
                else if (!gt_h5_checksummed(f, names[i]))
                    snprintf(why, cap, "%s: dataset /%s has no checksum", path, names[i]);
            }
        }
        if (!why[0]) {
            int64_t step = gt_h5_get_attr_int64(f, NULL, "step");
            if (read_one(f, "/rng/step") != step)
                snprintf(why, cap, "%s: /rng/step disagrees with the step attribute %" PRId64, path, step);
            const char *base = strrchr(path, '/');
            int64_t named = parse_name(base ? base + 1 : path);
            if (!why[0] && named >= 0 && named != step)
                snprintf(why, cap, "%s: the file name says step %" PRId64 " but the file holds step %" PRId64, path,
                         named, step);
        }
        gt_h5_close(f);
        f = NULL;
        gt_h5_catch_pop(&c);
    } else {
        gt_h5_discard(f);
        snprintf(why, cap, "%s", c.msg);
    }
    gt_h5_free_names(names, n_names);
    gt_free(s1);
    gt_free(s2);
    return why[0] ? -1 : 0;
}

/* ---- reading ------------------------------------------------------------- */

void gt_ckpt_read_info(const char *path, gt_ckpt_info *info, char **config_text, char **model_kind) {
    gt_h5 *f = gt_h5_open(path, 0);
    memset(info, 0, sizeof *info);
    info->step = gt_h5_get_attr_int64(f, NULL, "step");
    info->epoch = read_one(f, "/data/epoch");
    info->cursor = read_one(f, "/data/cursor");
    info->world_size = read_one(f, "/data/world_size");
    info->batch_size = read_one(f, "/data/batch_size");
    info->n_train = read_one(f, "/data/n_train");
    info->n_classes = (int)read_one(f, "/data/n_classes");
    info->seed = (uint64_t)read_one(f, "/rng/seed");
    int three = 3;
    int64_t shape[3];
    gt_h5_read_int64(f, "/data/shape", shape, 1, &three);
    info->data_shape = (gt_shape){(int)shape[0], (int)shape[1], (int)shape[2]};
    if (config_text) *config_text = gt_h5_get_attr_str(f, NULL, "config");
    if (model_kind) *model_kind = gt_h5_get_attr_str(f, NULL, "model");
    gt_h5_close(f);
}

/* Datasets under group must be exactly the expected names. */
static void expect_names(gt_h5 *f, const char *group, const gt_tensor_ref *refs, int n, int trainable_only) {
    char **names;
    int have = gt_h5_list(f, group, 1, &names);
    int want = 0;
    for (int i = 0; i < n; i++) {
        if (trainable_only && !refs[i].trainable) continue;
        want++;
        int found = 0;
        for (int j = 0; j < have && !found; j++) found = !strcmp(names[j], refs[i].name);
        if (!found)
            gt_fatal("checkpoint %s has no tensor %s/%s: it was written for another architecture", gt_h5_path(f), group,
                     refs[i].name);
    }
    if (have != want) {
        for (int j = 0; j < have; j++) {
            int found = 0;
            for (int i = 0; i < n && !found; i++)
                found = (!trainable_only || refs[i].trainable) && !strcmp(names[j], refs[i].name);
            if (!found)
                gt_fatal("checkpoint %s has a tensor %s/%s that this model does not: it was written for another "
                         "architecture",
                         gt_h5_path(f), group, names[j]);
        }
    }
    gt_h5_free_names(names, have);
}

void gt_ckpt_load(const char *path, gt_model *m) {
    gt_h5 *f = gt_h5_open(path, 0);
    gt_tensor_ref refs[MAX_TENSORS];
    char name[512];
    for (int k = 0; k < m->n_nets; k++) {
        gt_net *net = &m->net[k];
        gt_optim *opt = &m->opt[k];
        int n = net_refs(net, refs);
        FMT(name, "/params/%s", net->name);
        if (!gt_h5_exists(f, name))
            gt_fatal("checkpoint %s has no network '%s' (%s model): it was written for another model", path, net->name,
                     gt_model_kind_name(m->kind));
        expect_names(f, name, refs, n, 0);
        for (int i = 0; i < n; i++) {
            FMT(name, "/params/%s/%s", net->name, refs[i].name);
            gt_h5_read_floats(f, name, refs[i].data, refs[i].rank, refs[i].dims);
            if (!refs[i].trainable) continue;
            size_t off = (size_t)(refs[i].data - net->params);
            FMT(name, "/optim/%s/m/%s", net->name, refs[i].name);
            gt_h5_read_floats(f, name, opt->m + off, refs[i].rank, refs[i].dims);
            if (opt->v) {
                FMT(name, "/optim/%s/v/%s", net->name, refs[i].name);
                if (!gt_h5_exists(f, name))
                    gt_fatal("checkpoint %s has no Adam second moments (%s): it was written with another [optim] kind",
                             path, name);
                gt_h5_read_floats(f, name, opt->v + off, refs[i].rank, refs[i].dims);
            }
        }
        FMT(name, "/optim/%s/t", net->name);
        opt->t = read_one(f, name);
    }
    gt_h5_close(f);
}
