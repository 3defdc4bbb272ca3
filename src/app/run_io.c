/* run_io: the run directory of `gentrain train` (include/gentrain/run_io.h):
 * checkpoints and resume, samples.h5 + samples.png, metrics.jsonl +
 * metrics.h5, and the stop-on-signal protocol. Rank 0 does all file I/O;
 * every function is called by every rank in the same order. */
#include "gentrain/run_io.h"

#include "gentrain/checkpoint.h"
#include "gentrain/core.h"
#include "gentrain/dist.h"
#include "gentrain/io.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SAMPLES_FORMAT "gentrain-samples"
#define METRICS_FORMAT "gentrain-metrics"
#define FILES_VERSION 1

#define FMT(buf, ...)                                                                                        \
    do {                                                                                                     \
        int n_ = snprintf((buf), sizeof(buf), __VA_ARGS__);                                                  \
        GT_CHECK(n_ >= 0 && (size_t)n_ < sizeof(buf), "path too long: %s", (buf));                          \
    } while (0)

struct gt_run_io {
    char dir[4096], ckpt_dir[4200], jsonl[4200], metrics_h5[4200], samples_h5[4200], samples_png[4200];
    long ckpt_every, ckpt_keep, samples_every;
    int samples_n, resume_never;
    int rank, world, batch;
    uint64_t seed;
    char *config_text;
    FILE *metrics;
    /* samples (rank 0) */
    int z_dim, points, toy;
    gt_pixel_scale scale;
    float *noise, *test_batch; /* [n, z_dim]; VAE: [n, data] */
    gt_shape shape;
    int64_t n_train;
    int n_classes;
    int64_t last_ckpt;
};

/* ---- signals --------------------------------------------------------------- */

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) { stop_signal = sig; } /* no I/O here */

int gt_run_io_signal(void) { return (int)stop_signal; }

static void install_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGUSR1, &sa, NULL) != 0)
        gt_fatal("cannot install the SIGTERM/SIGUSR1 handlers: %s", strerror(errno));
    /* A write over RLIMIT_FSIZE then fails with EFBIG (and is reported) instead of killing us. */
    if (signal(SIGXFSZ, SIG_IGN) == SIG_ERR) gt_fatal("cannot ignore SIGXFSZ: %s", strerror(errno));
}

/* ---- small file helpers ------------------------------------------------------ */

static void make_dir(const char *path) {
    char buf[4200];
    FMT(buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0775) != 0 && errno != EEXIST)
                gt_fatal("run directory %s cannot be created: %s: %s", path, buf, strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        gt_fatal("run directory %s is not a directory", path);
}

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static void write_text_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) gt_fatal("run directory is not writable: cannot create %s: %s", path, strerror(errno));
    if (fputs(text, f) < 0 || fflush(f) != 0 || ferror(f)) {
        int e = errno;
        fclose(f);
        gt_fatal("cannot write %s: %s", path, strerror(e));
    }
    if (fclose(f) != 0) gt_fatal("cannot write %s: %s", path, strerror(errno));
}

/* run.resume=never: nothing is deleted; what the run dir holds of an earlier
 * run moves into <dir>/previous-<YYYYmmdd-HHMMSS>/. */
static void move_previous_run(gt_run_io *io) {
    char **paths;
    int64_t *steps;
    int n = gt_ckpt_list(io->ckpt_dir, &paths, &steps);
    gt_ckpt_free_list(paths, steps, n);
    const char *files[] = {io->jsonl, io->metrics_h5, io->samples_h5, io->samples_png};
    int any = n > 0;
    for (int i = 0; i < 4; i++) any |= access(files[i], F_OK) == 0;
    if (!any) return;
    char prev[4300], dst[4400];
    time_t now = time(NULL);
    struct tm tm;
    GT_CHECK(localtime_r(&now, &tm), "localtime_r failed");
    char stamp[32];
    GT_CHECK(strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm) > 0, "strftime failed");
    FMT(prev, "%s/previous-%s", io->dir, stamp);
    if (mkdir(prev, 0775) != 0) gt_fatal("cannot create %s: %s", prev, strerror(errno));
    FMT(dst, "%s/checkpoints", prev);
    if (rename(io->ckpt_dir, dst) != 0) gt_fatal("cannot move %s to %s: %s", io->ckpt_dir, dst, strerror(errno));
    make_dir(io->ckpt_dir);
    for (int i = 0; i < 4; i++) {
        const char *base = strrchr(files[i], '/') + 1;
        FMT(dst, "%s/%s", prev, base);
        if (rename(files[i], dst) != 0 && errno != ENOENT)
            gt_fatal("cannot move %s to %s: %s", files[i], dst, strerror(errno));
    }
    gt_warn("run.resume=never: starting over in %s; the earlier run (%d checkpoint%s, metrics, samples) moved to %s",
            io->dir, n, n == 1 ? "" : "s", prev);
}

/* ---- configuration -------------------------------------------------------------- */

gt_run_io *gt_run_io_new(gt_config *cfg, const char *run_dir) {
    gt_run_io *io = gt_alloc(sizeof *io);
    io->rank = gt_dist_rank();
    io->world = gt_dist_size();
    io->last_ckpt = -1;
    FMT(io->dir, "%s", run_dir);
    FMT(io->ckpt_dir, "%s/checkpoints", run_dir);
    FMT(io->jsonl, "%s/metrics.jsonl", run_dir);
    FMT(io->metrics_h5, "%s/metrics.h5", run_dir);
    FMT(io->samples_h5, "%s/samples.h5", run_dir);
    FMT(io->samples_png, "%s/samples.png", run_dir);
    io->ckpt_every = gt_config_int(cfg, "checkpoint", "every", 1000, 0, 1L << 40);
    io->ckpt_keep = gt_config_int(cfg, "checkpoint", "keep", 3, 0, 1L << 20);
    io->samples_every = gt_config_int(cfg, "samples", "every", 500, 0, 1L << 40);
    io->samples_n = (int)gt_config_int(cfg, "samples", "n", 64, 1, 4096);
    static const char *const modes[] = {"auto", "never", NULL};
    io->resume_never = gt_config_choice(cfg, "run", "resume", "auto", modes) == 1;
    install_handlers();
    return io;
}

/* Sections named in INI text ("[name]" lines), appended to names (deduplicated). */
static int text_sections(const char *text, char names[][64], int n, int cap) {
    for (const char *p = text; p && *p;) {
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '[') {
            const char *e = strchr(p, ']');
            const char *nl = strchr(p, '\n');
            if (e && (!nl || e < nl) && e - p - 1 < 63) {
                char s[64];
                memcpy(s, p + 1, (size_t)(e - p - 1));
                s[e - p - 1] = 0;
                int dup = 0;
                for (int i = 0; i < n && !dup; i++) dup = !strcmp(names[i], s);
                if (!dup && n < cap) snprintf(names[n++], 64, "%s", s);
            }
        }
        p = strchr(p, '\n');
        if (p) p++;
    }
    return n;
}

static int in_list(const char *s, const char *const *list) {
    for (int i = 0; list[i]; i++)
        if (!strcmp(s, list[i])) return 1;
    return 0;
}

/* The run's resolved config against the checkpoint's: architecture keys must
 * be equal (else a fatal error naming the key); other differences (bar the
 * ones that cannot change results) are listed in a warning. */
static void compare_configs(gt_config *live, const char *live_text, const char *stored_text, const char *ckpt) {
    static const char *const arch[] = {"model", "generator", "discriminator", "encoder", "decoder", "classifier",
                                       NULL};
    static const char *const harmless[] = {"run.dir",       "run.resume",       "run.threads",    "train.steps",
                                           "train.epochs",  "log.every",        "eval.at_end",    "eval.n",
                                           "checkpoint.every", "checkpoint.keep", "samples.every", "samples.n",
                                           "dist.overlap",  "dist.bucket_mb",   "dist.check_every", NULL};
    gt_config *stored = gt_config_parse(stored_text, ckpt);
    char sections[64][64];
    int ns = text_sections(stored_text, sections, 0, 64);
    ns = text_sections(live_text, sections, ns, 64);
    char changed[2048] = "";
    size_t used = 0;
    for (int s = 0; s < ns; s++) {
        const char *sec = sections[s];
        if (!strcmp(sec, "debug")) continue;
        const char *keys[512];
        int nk = gt_config_keys(stored, sec, keys, 256);
        if (nk > 256) nk = 256;
        int nl = gt_config_keys(live, sec, keys + nk, 256);
        if (nl > 256) nl = 256;
        for (int i = 0; i < nk + nl; i++) {
            const char *key = keys[i];
            int dup = 0;
            for (int j = 0; j < i && !dup; j++) dup = !strcmp(keys[j], key);
            if (dup) continue;
            const char *a = gt_config_has(stored, sec, key) ? gt_config_str(stored, sec, key, NULL) : NULL;
            const char *b = gt_config_has(live, sec, key) ? gt_config_str(live, sec, key, NULL) : NULL;
            if (a && b && !strcmp(a, b)) continue;
            char full[200];
            int nf = snprintf(full, sizeof full, "%.63s.%.127s", sec, key);
            (void)nf;
            if (in_list(sec, arch) || !strcmp(full, "optim.kind"))
                gt_fatal("%s was written by another architecture: [%s] %s = %s%s%s there, but %s%s%s in this run%s%s%s. "
                         "A checkpoint resumes only the model it was made from: use another run.dir, or "
                         "run.resume=never to start over in this one",
                         ckpt, sec, key, a ? "'" : "", a ? a : "(not set)", a ? "'" : "", b ? "'" : "",
                         b ? b : "(not set)", b ? "'" : "", b ? " (" : "", b ? gt_config_where(live, sec, key) : "",
                         b ? ")" : "");
            if (in_list(full, harmless)) continue;
            if (used < sizeof changed)
                used += (size_t)snprintf(changed + used, sizeof changed - used, "%s%s: %s -> %s", used ? ", " : "",
                                         full, a ? a : "(not set)", b ? b : "(not set)");
        }
    }
    if (used)
        gt_warn("settings differ from those of %s: %s; the run continues with the new values and is no longer the "
                "same as an uninterrupted one",
                ckpt, changed);
    gt_config_free(stored);
}

/* ---- resume -------------------------------------------------------------------------- */

typedef struct {
    int64_t found, step, epoch, cursor, world, batch, n_train;
} resume_hdr;

/* Rank 0: the newest checkpoint that verifies, loaded into m; 0 if none. */
static int find_checkpoint(gt_run_io *io, gt_config *cfg, gt_model *m, resume_hdr *h, char *chosen, size_t cap) {
    char **paths;
    int64_t *steps;
    int n = gt_ckpt_list(io->ckpt_dir, &paths, &steps);
    int bad = 0;
    for (int i = 0; i < n && !h->found; i++) {
        char why[2048];
        if (gt_ckpt_verify(paths[i], why, sizeof why) != 0) {
            gt_warn("skipping checkpoint %s: %s", paths[i], why);
            bad++;
            continue;
        }
        snprintf(chosen, cap, "%s", paths[i]);
        h->found = 1;
    }
    gt_ckpt_free_list(paths, steps, n);
    if (!h->found) {
        if (bad || exists(io->jsonl))
            gt_fatal("%s already holds a run (%s) but no valid checkpoint to resume from%s; start over with "
                     "run.resume=never (which moves it aside) or choose another run.dir",
                     io->dir, bad ? "its checkpoints fail verification" : "metrics.jsonl exists",
                     bad ? " (see the warnings above)" : "");
        return 0;
    }
    gt_ckpt_info info;
    char *text, *kind;
    gt_ckpt_read_info(chosen, &info, &text, &kind);
    if (strcmp(kind, gt_model_kind_name(m->kind)) != 0)
        gt_fatal("%s holds a %s model but this run trains a %s model ([model] type): use another run.dir, or "
                 "run.resume=never to start over in this one",
                 chosen, kind, gt_model_kind_name(m->kind));
    compare_configs(cfg, io->config_text, text, chosen);
    if (info.data_shape.c != io->shape.c || info.data_shape.h != io->shape.h || info.data_shape.w != io->shape.w)
        gt_fatal("%s was trained on data of shape %dx%dx%d, this run's data is %dx%dx%d", chosen, info.data_shape.c,
                 info.data_shape.h, info.data_shape.w, io->shape.c, io->shape.h, io->shape.w);
    gt_ckpt_load(chosen, m);
    h->step = info.step;
    h->epoch = info.epoch;
    h->cursor = info.cursor;
    h->world = info.world_size;
    h->batch = info.batch_size;
    h->n_train = info.n_train;
    if (info.seed != io->seed)
        gt_warn("%s was made with run.seed %" PRIu64 ", this run has %" PRIu64 ": the rest of the run draws other "
                "random numbers",
                chosen, info.seed, io->seed);
    gt_free(text);
    gt_free(kind);
    return 1;
}

static void broadcast_state(gt_model *m) {
    for (int k = 0; k < m->n_nets; k++) {
        gt_net *net = &m->net[k];
        gt_optim *opt = &m->opt[k];
        gt_dist_bcast(net->params, net->n_params * sizeof(float));
        if (net->n_state) gt_dist_bcast(net->state, net->n_state * sizeof(float));
        gt_dist_bcast(opt->m, opt->n * sizeof(float));
        if (opt->v) gt_dist_bcast(opt->v, opt->n * sizeof(float));
        gt_dist_bcast(&opt->t, sizeof opt->t);
    }
}

/* metrics.jsonl without the lines of steps after `step`. */
static void truncate_jsonl(const char *path, int64_t step) {
    FILE *in = fopen(path, "r");
    if (!in) {
        if (errno == ENOENT) return;
        gt_fatal("cannot read %s: %s", path, strerror(errno));
    }
    char tmp[4300];
    FMT(tmp, "%s.tmp", path);
    FILE *out = fopen(tmp, "w");
    if (!out) gt_fatal("cannot create %s: %s", tmp, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    long dropped = 0;
    while (getline(&line, &cap, in) > 0) {
        const char *p = strstr(line, "\"step\":");
        long long s = p ? strtoll(p + 7, NULL, 10) : 0;
        if (!p || s > step) {
            dropped++;
            continue;
        }
        if (fputs(line, out) < 0) gt_fatal("cannot write %s: %s", tmp, strerror(errno));
    }
    free(line);
    if (ferror(in)) gt_fatal("cannot read %s: %s", path, strerror(errno));
    fclose(in);
    if (fflush(out) != 0 || ferror(out) || fsync(fileno(out)) != 0 || fclose(out) != 0)
        gt_fatal("cannot write %s: %s", tmp, strerror(errno));
    if (rename(tmp, path) != 0) gt_fatal("cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (dropped)
        gt_info("resume: dropped %ld line%s of steps after %" PRId64 " from %s", dropped, dropped > 1 ? "s" : "", step,
                path);
}

/* Opens one of our HDF5 files for writing, creating it with its format
 * attribute; a file that is not ours stops the run without touching it. */
static gt_h5 *open_ours(const char *path, const char *format) {
    if (!exists(path)) {
        gt_h5 *f = gt_h5_create(path);
        gt_h5_set_attr_str(f, NULL, "format", format);
        gt_h5_set_attr_int64(f, NULL, "version", FILES_VERSION);
        return f;
    }
    if (!gt_h5_is_hdf5(path))
        gt_fatal("%s exists but is not an HDF5 file: not a gentrain %s file; move it away (it is left as it is)", path,
                 format);
    /* checked read-only first: a file that is not ours is not even opened for writing */
    gt_h5 *f = gt_h5_open(path, 0);
    char *fmt = gt_h5_has_attr(f, NULL, "format") && gt_h5_attr_type(f, NULL, "format") == 's'
                    ? gt_h5_get_attr_str(f, NULL, "format")
                    : gt_strdup("(none)");
    gt_h5_close(f);
    if (strcmp(fmt, format) != 0)
        gt_fatal("%s is not a %s file (its format attribute is %s); move it away (it is left as it is)", path, format,
                 fmt);
    gt_free(fmt);
    return gt_h5_open(path, 1);
}

/* Drops rows after `step` from a metrics table. */
static void truncate_table(gt_h5 *f, const char *group, int64_t step) {
    int64_t rows = gt_h5_exists(f, group) ? gt_h5_table_rows(f, group, "step") : 0;
    if (!rows) return;
    double *s = gt_alloc(sizeof(double) * (size_t)rows);
    gt_h5_table_column(f, group, "step", s);
    int64_t keep = 0;
    while (keep < rows && s[keep] <= (double)step) keep++;
    gt_free(s);
    if (keep < rows) gt_h5_table_truncate(f, group, keep);
}

static void samples_setup(gt_run_io *io, gt_model *m, const gt_dataset *test, int64_t start) {
    int n = io->samples_n;
    io->z_dim = m->z_dim;
    io->noise = gt_alloc_floats((size_t)n * m->z_dim);
    gt_samples_noise(io->seed, n, m->z_dim, io->noise);
    size_t size = gt_shape_size(io->shape);
    gt_h5 *f = open_ours(io->samples_h5, SAMPLES_FORMAT);
    int nd[2] = {n, m->z_dim};
    if (gt_h5_exists(f, "noise")) {
        int dims[GT_H5_MAX_RANK];
        int rank = gt_h5_shape(f, "noise", dims);
        float *old = gt_alloc_floats((size_t)n * m->z_dim);
        if (rank != 2 || dims[0] != n || dims[1] != m->z_dim)
            gt_fatal("%s holds /noise of another shape than samples.n = %d x z_dim = %d (it was made with other "
                     "settings): move it away",
                     io->samples_h5, n, m->z_dim);
        gt_h5_read_floats(f, "noise", old, 2, nd);
        if (memcmp(old, io->noise, sizeof(float) * (size_t)n * m->z_dim) != 0)
            gt_fatal("%s holds another /noise than this run's (made with another run.seed?): move it away",
                     io->samples_h5);
        gt_free(old);
    } else {
        gt_h5_write_floats(f, "noise", io->noise, 2, nd);
        gt_h5_set_attr_int64(f, NULL, "seed", (int64_t)io->seed);
        gt_h5_set_attr_str(f, NULL, "model", gt_model_kind_name(m->kind));
        gt_h5_set_attr_str(f, NULL, "noise_rng", "row i = Philox normal(seed, purpose FIXED_NOISE, step 0, index i)");
        if (!io->points) {
            gt_h5_set_attr_double(f, NULL, "range_min", io->scale == GT_SCALE_SIGNED ? -1.0 : 0.0);
            gt_h5_set_attr_double(f, NULL, "range_max", 1.0);
        }
    }
    if (m->kind == GT_MODEL_VAE) {
        int nt = n < test->n ? n : (int)test->n;
        io->test_batch = gt_alloc_floats((size_t)nt * size);
        int64_t *idx = gt_alloc(sizeof(int64_t) * (size_t)nt);
        for (int i = 0; i < nt; i++) idx[i] = i;
        gt_dataset_batch(test, idx, nt, io->scale, io->test_batch, NULL);
        gt_free(idx);
        int td[4] = {nt, io->shape.c, io->shape.h, io->shape.w};
        if (!gt_h5_exists(f, "test_batch")) gt_h5_write_floats(f, "test_batch", io->test_batch, 4, td);
    }
    /* a resumed run rewrites the steps after its checkpoint */
    char **names;
    int nn = gt_h5_list(f, NULL, 1, &names);
    for (int i = 0; i < nn; i++) {
        const char *p = strstr(names[i], "step-");
        if (p && strtoll(p + 5, NULL, 10) > start) gt_h5_delete(f, names[i]);
    }
    gt_h5_free_names(names, nn);
    gt_h5_close(f);
}

int64_t gt_run_io_start(gt_run_io *io, gt_config *cfg, gt_model *m, gt_sampler *s, const gt_dataset *train,
                        const gt_dataset *test, gt_pixel_scale scale, long steps) {
    io->seed = s->seed;
    io->batch = s->batch;
    io->shape = train->shape;
    io->scale = scale;
    io->points = train->values != NULL;
    io->toy = -1;
    if (io->points && gt_config_has(cfg, "data", "toy")) {
        static const char *const toys[] = {"ring8", "grid25", NULL};
        io->toy = gt_config_choice(cfg, "data", "toy", "ring8", toys);
    }
    io->n_train = train->n;
    io->n_classes = train->n_classes;
    io->config_text = gt_config_text(cfg);
    resume_hdr h = {0};
    char chosen[4300] = "";
    if (io->rank == 0) {
        make_dir(io->dir);
        make_dir(io->ckpt_dir);
        gt_ckpt_prune(io->ckpt_dir, 0); /* stale temporary files */
        if (io->resume_never)
            move_previous_run(io);
        else
            find_checkpoint(io, cfg, m, &h, chosen, sizeof chosen);
        /* only now, once the checkpoint (if any) was accepted */
        char path[4300];
        FMT(path, "%s/config.ini", io->dir);
        write_text_file(path, io->config_text);
    }
    gt_dist_bcast(&h, sizeof h);
    if (!h.found) {
        if (io->rank == 0) gt_info("starting a new run in %s", io->dir);
    } else {
        broadcast_state(m);
        int64_t epoch = h.epoch, cursor = h.cursor;
        int64_t old_global = h.world * h.batch, new_global = (int64_t)io->world * io->batch;
        if (h.world != io->world || h.batch != io->batch || h.n_train != io->n_train) {
            if (old_global != new_global || h.n_train != io->n_train)
                cursor = cursor * old_global / new_global; /* the same place in the epoch's shuffle, rounded down */
            if (cursor > s->steps_per_epoch) cursor = s->steps_per_epoch;
            gt_warn("resuming a checkpoint written by %" PRId64 " rank%s x batch %" PRId64 " (global %" PRId64
                    ") with %d rank%s x batch %d (global %" PRId64 "): the per-rank batch_size is kept as configured, "
                    "so the global batch %s; the sampler continues at step %" PRId64 " of epoch %" PRId64
                    ". The run is no longer bitwise reproducible",
                    h.world, h.world > 1 ? "s" : "", h.batch, old_global, io->world, io->world > 1 ? "s" : "",
                    io->batch, new_global, old_global == new_global ? "is unchanged" : "changes", cursor, epoch);
        }
        gt_sampler_seek(s, epoch, cursor);
        io->last_ckpt = h.step;
        if (io->rank == 0)
            gt_info("resuming from %s: step %" PRId64 ", epoch %" PRId64 " (written by %" PRId64 " rank%s)%s", chosen,
                    h.step, h.epoch, h.world, h.world > 1 ? "s" : "",
                    h.step >= steps ? "; it has reached train.steps already: nothing to do" : "");
    }
    if (io->rank == 0) {
        if (h.found) truncate_jsonl(io->jsonl, h.step);
        io->metrics = fopen(io->jsonl, h.found ? "a" : "w");
        if (!io->metrics) gt_fatal("run directory is not writable: cannot open %s: %s", io->jsonl, strerror(errno));
        gt_h5 *f = open_ours(io->metrics_h5, METRICS_FORMAT);
        truncate_table(f, "train", h.found ? h.step : 0);
        truncate_table(f, "test", h.found ? h.step : 0);
        gt_h5_close(f);
        if (io->samples_every > 0 && m->kind != GT_MODEL_CLASSIFIER) samples_setup(io, m, test, h.found ? h.step : 0);
    }
    return h.found ? h.step : 0;
}

/* ---- metrics ------------------------------------------------------------------------- */

void gt_run_io_metrics(gt_run_io *io, int64_t step, int64_t epoch, const char *split, const gt_stats *st,
                       double img_per_s, double elapsed) {
    if (io->rank != 0) return;
    FILE *f = io->metrics;
    fprintf(f, "{\"step\": %" PRId64 ", \"epoch\": %" PRId64, step, epoch);
    if (split) fprintf(f, ", \"split\": \"%s\"", split);
    for (int k = 0; k < st->n; k++) fprintf(f, ", \"%s\": %.9g", st->name[k], st->value[k]);
    if (img_per_s > 0) fprintf(f, ", \"img_per_s\": %.1f, \"elapsed_s\": %.3f", img_per_s, elapsed);
    fputs("}\n", f);
    if (fflush(f) != 0 || ferror(f)) gt_fatal("cannot write %s: %s", io->jsonl, strerror(errno));

    const char *cols[GT_MAX_STATS + 4];
    double vals[GT_MAX_STATS + 4];
    int n = 0;
    cols[n] = "step", vals[n++] = (double)step;
    cols[n] = "epoch", vals[n++] = (double)epoch;
    for (int k = 0; k < st->n; k++) cols[n] = st->name[k], vals[n++] = st->value[k];
    if (img_per_s > 0) {
        cols[n] = "img_per_s", vals[n++] = img_per_s;
        cols[n] = "elapsed_s", vals[n++] = elapsed;
    }
    gt_h5 *h = gt_h5_open(io->metrics_h5, 1);
    gt_h5_table_append(h, split ? split : "train", n, cols, 2, vals);
    gt_h5_close(h);
}

/* ---- samples ---------------------------------------------------------------------------- */

void gt_samples_noise(uint64_t seed, int n, int z_dim, float *out) {
    for (int i = 0; i < n; i++)
        gt_rand_normal(out + (size_t)i * z_dim, (size_t)z_dim, seed, GT_PURPOSE(GT_RNG_FIXED_NOISE, 0), 0,
                       (uint64_t)i);
}

int gt_samples_png(const char *path, const float *x, int n, gt_shape shape, gt_pixel_scale scale, int points, int toy,
                   char *why, size_t cap) {
    if (points) {
        if (gt_shape_size(shape) != 2) {
            snprintf(why, cap, "%s: samples of shape %dx%dx%d are neither images nor 2-D points", path, shape.c,
                     shape.h, shape.w);
            return -1;
        }
        float ref[2 * 64];
        int n_ref = toy >= 0 ? gt_toy_centres((gt_toy_kind)toy, ref, 64) : 0;
        if (n_ref > 64) n_ref = 64;
        float extent = 1.0f;
        for (int i = 0; i < 2 * n_ref; i++) extent = fmaxf(extent, fabsf(ref[i]) * 1.3f);
        for (int i = 0; i < 2 * n; i++)
            if (isfinite(x[i])) extent = fmaxf(extent, fminf(fabsf(x[i]) * 1.05f, 100.0f));
        return gt_png_write_scatter(path, x, n, ref, n_ref, extent, 512, why, cap);
    }
    if (shape.c != 1 && shape.c != 3) {
        snprintf(why, cap, "%s: images with %d channels cannot be drawn (1 or 3)", path, shape.c);
        return -1;
    }
    return gt_png_write_grid(path, x, n, shape.c, shape.h, shape.w, scale == GT_SCALE_SIGNED ? -1.0f : 0.0f, 1.0f, 0,
                             why, cap);
}

/* Encoder means of x [n, data] -> decoder images [n, data] (eval mode). */
static void vae_reconstruct(gt_model *m, const float *x, int n, float *out) {
    size_t size = gt_shape_size(m->data_shape);
    float *mu = gt_alloc_floats((size_t)n * m->z_dim);
    gt_rng_ctx rng = {0, 0, 0, 1, 0};
    for (int i = 0; i < n; i += m->max_batch) {
        int B = n - i < m->max_batch ? n - i : m->max_batch;
        const float *h = gt_net_forward(&m->net[0], x + (size_t)i * size, B, 0, rng);
        for (int b = 0; b < B; b++)
            memcpy(mu + (size_t)(i + b) * m->z_dim, h + (size_t)b * 2 * m->z_dim, sizeof(float) * m->z_dim);
    }
    gt_model_generate(m, mu, n, out);
    gt_free(mu);
}

static void write_samples(gt_run_io *io, gt_model *m, int64_t step) {
    int n = io->samples_n;
    size_t size = gt_shape_size(io->shape);
    float *img = gt_alloc_floats((size_t)n * size);
    gt_model_generate(m, io->noise, n, img);
    gt_h5 *f = gt_h5_open(io->samples_h5, 1);
    char name[64];
    snprintf(name, sizeof name, "step-%08" PRId64, step);
    int dims[4] = {n, io->shape.c, io->shape.h, io->shape.w};
    gt_h5_write_floats(f, name, img, 4, dims);
    gt_h5_set_attr_int64(f, name, "step", step);
    if (io->test_batch) {
        int nt = gt_h5_shape(f, "test_batch", dims);
        (void)nt;
        float *rec = gt_alloc_floats((size_t)dims[0] * size);
        vae_reconstruct(m, io->test_batch, dims[0], rec);
        snprintf(name, sizeof name, "recon/step-%08" PRId64, step);
        gt_h5_write_floats(f, name, rec, 4, dims);
        gt_h5_set_attr_int64(f, name, "step", step);
        gt_free(rec);
    }
    gt_h5_close(f);
    char why[1024];
    if (gt_samples_png(io->samples_png, img, n, io->shape, io->scale, io->points, io->toy, why, sizeof why) != 0)
        gt_fatal("%s", why);
    gt_free(img);
}

/* ---- the step boundary ------------------------------------------------------------------------- */

static void checkpoint(gt_run_io *io, gt_model *m, const gt_sampler *s, int64_t step) {
    if (io->rank == 0) {
        gt_ckpt_info info = {.step = step,
                             .epoch = s->epoch,
                             .cursor = s->cursor,
                             .world_size = io->world,
                             .batch_size = io->batch,
                             .n_train = io->n_train,
                             .seed = io->seed,
                             .data_shape = io->shape,
                             .n_classes = io->n_classes};
        gt_ckpt_save(io->ckpt_dir, m, &info, io->config_text);
        gt_ckpt_prune(io->ckpt_dir, (int)io->ckpt_keep);
    }
    io->last_ckpt = step;
}

int gt_run_io_step_end(gt_run_io *io, gt_model *m, const gt_sampler *s, int64_t done, long steps) {
    int last = done >= steps;
    if (io->rank == 0 && io->noise && (done % io->samples_every == 0 || last)) write_samples(io, m, done);
    if (io->ckpt_every > 0 && (done % io->ckpt_every == 0 || last)) checkpoint(io, m, s, done);
    int stop = gt_dist_any(stop_signal != 0);
    if (!stop || last) return 0;
    if (io->last_ckpt != done) checkpoint(io, m, s, done);
    gt_info("stopping at step %" PRId64 " on %s: checkpoint written; exit code %d asks to be requeued (run the same "
            "command again to resume)",
            done, stop_signal == SIGUSR1 ? "SIGUSR1" : stop_signal == SIGTERM ? "SIGTERM" : "a signal on another rank",
            GT_EXIT_REQUEUE);
    return 1;
}

void gt_run_io_free(gt_run_io *io) {
    if (!io) return;
    if (io->metrics && (fflush(io->metrics) != 0 || ferror(io->metrics) || fclose(io->metrics) != 0))
        gt_fatal("cannot write %s: %s", io->jsonl, strerror(errno));
    gt_free(io->config_text);
    gt_free(io->noise);
    gt_free(io->test_batch);
    gt_free(io);
}
