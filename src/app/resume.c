/* The run directory's checkpoints (include/gentrain/app.h): preparing the
 * directory, resuming from the newest good checkpoint, and writing and
 * pruning checkpoints during the run. File I/O on rank 0 only. */
#include "gentrain/app.h"

#include "gentrain/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PATH_FMT(buf, ...)                                                                                   \
    do {                                                                                                     \
        int n_ = snprintf((buf), sizeof(buf), __VA_ARGS__);                                                  \
        GT_ENSURE(n_ >= 0 && (size_t)n_ < sizeof(buf), "path too long: %s", (buf));                         \
    } while (0)

gt_status gt_make_dirs(const char *path, const char *what) {
    char buf[4200];
    PATH_FMT(buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0775) != 0 && errno != EEXIST)
                return GT_ERROR("%s %s cannot be created: %s: %s", what, path, buf, strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) return GT_ERROR("%s %s is not a directory", what, path);
    return GT_OK;
}

static gt_status write_text_file(const char *path, const char *text) {
    char tmp[4300];
    PATH_FMT(tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return GT_ERROR("run directory is not writable: cannot create %s: %s", tmp, strerror(errno));
    int failed = fputs(text, f) < 0 || fflush(f) != 0 || ferror(f);
    int e = errno;
    if (fclose(f) != 0 && !failed) failed = 1, e = errno;
    if (!failed && rename(tmp, path) != 0) failed = 1, e = errno;
    if (failed) {
        unlink(tmp);
        return GT_ERROR("cannot write %s: %s", path, strerror(e));
    }
    return GT_OK;
}

/* The files of a run besides its checkpoints. */
static const char *const run_files[] = {"metrics.jsonl", "metrics.h5", "samples.h5", "samples.png", "samples-live.png",
                                        "config.ini"};
#define N_RUN_FILES ((int)(sizeof run_files / sizeof run_files[0]))

/* Moves what run.dir holds of an earlier run into run.dir/previous-<YYYYmmdd-HHMMSS>/
 * (nothing is deleted); says why in a warning. only_ours: only when the
 * directory shows a gentrain run (checkpoints, config.ini or metrics.jsonl),
 * so that files a user put there are left for the checks that name them. */
static gt_status move_previous_run(const char *dir, const char *why, int only_ours) {
    char ckpt[4200], prev[4300], src[4300], dst[4400];
    PATH_FMT(ckpt, "%s/checkpoints", dir);
    char **paths;
    int64_t *steps;
    int n;
    GT_TRY(gt_ckpt_list(ckpt, &paths, &steps, &n));
    gt_ckpt_free_list(paths, steps, n);
    int any = n > 0;
    for (int i = 0; i < N_RUN_FILES; i++) {
        PATH_FMT(src, "%s/%s", dir, run_files[i]);
        int ours = !strcmp(run_files[i], "config.ini") || !strcmp(run_files[i], "metrics.jsonl");
        if (!only_ours || ours) any |= access(src, F_OK) == 0;
    }
    if (!any) return GT_OK;
    time_t now = time(NULL);
    struct tm tm;
    char stamp[32];
    GT_ASSERT(localtime_r(&now, &tm) && strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm) > 0, "strftime failed");
    PATH_FMT(prev, "%s/previous-%s", dir, stamp);
    for (int k = 1; access(prev, F_OK) == 0 && k < 100; k++) PATH_FMT(prev, "%s/previous-%s-%d", dir, stamp, k);
    if (mkdir(prev, 0775) != 0) return GT_ERROR("cannot create %s: %s", prev, strerror(errno));
    PATH_FMT(dst, "%s/checkpoints", prev);
    if (rename(ckpt, dst) != 0 && errno != ENOENT)
        return GT_ERROR("cannot move %s to %s: %s", ckpt, dst, strerror(errno));
    GT_TRY(gt_make_dirs(ckpt, "run directory"));
    for (int i = 0; i < N_RUN_FILES; i++) {
        PATH_FMT(src, "%s/%s", dir, run_files[i]);
        PATH_FMT(dst, "%s/%s", prev, run_files[i]);
        if (rename(src, dst) != 0 && errno != ENOENT)
            return GT_ERROR("cannot move %s to %s: %s", src, dst, strerror(errno));
    }
    gt_warn("%s: starting over in %s; the earlier run (%d checkpoint%s, metrics, samples) moved to %s", why, dir, n,
            n == 1 ? "" : "s", prev);
    return GT_OK;
}

/* Temporary files of an earlier run that was killed while writing them
 * (config.ini.tmp, metrics.jsonl.tmp, samples.png.tmp<pid>): the lock says
 * no one writes them now. */
static void remove_stale_temporaries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    char path[4400];
    for (struct dirent *e; (e = readdir(d));) {
        const char *n = e->d_name;
        if (strcmp(n, "config.ini.tmp") && strcmp(n, "metrics.jsonl.tmp") && strncmp(n, "samples.png.tmp", 15)) continue;
        int len = snprintf(path, sizeof path, "%s/%s", dir, n);
        if (len > 0 && (size_t)len < sizeof path && unlink(path) == 0)
            gt_info("removed %s, left by an earlier run that was stopped while writing it", path);
    }
    closedir(d);
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

static const char *value_of(gt_config *c, const char *sec, const char *key) {
    const char *v = NULL;
    if (gt_config_has(c, sec, key) && gt_config_str(c, sec, key, NULL, &v) != GT_OK) v = NULL;
    return v;
}

/* The run's resolved config against the checkpoint's: architecture keys must
 * be equal (else an error naming the key); other differences (bar the ones
 * that cannot change results) are listed in a warning. */
static gt_status compare_configs(gt_config *live, const char *live_text, const char *stored_text, const char *ckpt) {
    static const char *const arch[] = {"model", "generator", "discriminator", "encoder", "decoder", "classifier",
                                       NULL};
    static const char *const harmless[] = {"run.dir",       "run.resume",       "run.threads",    "train.steps",
                                           "train.epochs",  "log.every",        "eval.at_end",    "eval.n",
                                           "checkpoint.every", "checkpoint.keep", "samples.every", "samples.n",
                                           "dist.overlap",  "dist.bucket_mb",   "dist.check_every", "dist.step_timeout",
                                           /* evaluation during training reads the model, never changes it */
                                           "eval.every",    "eval.metrics",     "eval.samples",   "eval.classifier",
                                           "eval.cache",    "eval.iwae_k",      "eval.likelihood_n", "eval.likelihood_train",
                                           "eval.seed",
                                           "train.on_divergence", "train.loss_bound", "train.rollback_lr_factor",
                                           "train.max_rollbacks", NULL};
    gt_config *stored;
    GT_TRY(gt_config_parse(stored_text, ckpt, &stored));
    char sections[64][64];
    int ns = text_sections(stored_text, sections, 0, 64);
    ns = text_sections(live_text, sections, ns, 64);
    char changed[2048] = "";
    size_t used = 0;
    gt_status st = GT_OK;
    for (int s = 0; s < ns && !st; s++) {
        const char *sec = sections[s];
        if (!strcmp(sec, "debug")) continue;
        const char *keys[512];
        int nk = gt_config_keys(stored, sec, keys, 256);
        if (nk > 256) nk = 256;
        int nl = gt_config_keys(live, sec, keys + nk, 256);
        if (nl > 256) nl = 256;
        for (int i = 0; i < nk + nl && !st; i++) {
            const char *key = keys[i];
            int dup = 0;
            for (int j = 0; j < i && !dup; j++) dup = !strcmp(keys[j], key);
            if (dup) continue;
            const char *a = value_of(stored, sec, key), *b = value_of(live, sec, key);
            if (a && b && !strcmp(a, b)) continue;
            /* a key this gentrain knows and an older one did not, left at its default */
            if (!a && b && !strcmp(gt_config_where(live, sec, key), "default")) continue;
            char full[200];
            snprintf(full, sizeof full, "%.63s.%.127s", sec, key);
            if (in_list(sec, arch) || !strcmp(full, "optim.kind")) {
                st = GT_ERROR("%s was written by another architecture: [%s] %s = %s%s%s there, but %s%s%s in this "
                              "run%s%s%s. A checkpoint resumes only the model it was made from: use another run.dir, "
                              "or run.resume=never to start over in this one",
                              ckpt, sec, key, a ? "'" : "", a ? a : "(not set)", a ? "'" : "", b ? "'" : "",
                              b ? b : "(not set)", b ? "'" : "", b ? " (" : "", b ? gt_config_where(live, sec, key) : "",
                              b ? ")" : "");
                break;
            }
            if (in_list(full, harmless)) continue;
            if (used < sizeof changed)
                used += (size_t)snprintf(changed + used, sizeof changed - used, "%s%s: %s -> %s", used ? ", " : "",
                                         full, a ? a : "(not set)", b ? b : "(not set)");
        }
    }
    gt_config_free(stored);
    GT_TRY(st);
    if (used)
        gt_warn("settings differ from those of %s: %s; the run continues with the new values and is no longer the "
                "same as an uninterrupted one",
                ckpt, changed);
    return GT_OK;
}

/* Why a checkpoint cannot be resumed from, when it is not the file's fault:
 * another model kind, another architecture, other data. */
static gt_status check_compatible(const gt_options *o, gt_config *cfg, const gt_model *m, const gt_source *train,
                                  const char *path, gt_ckpt_info *info) {
    char *text = NULL, *kind = NULL;
    GT_TRY(gt_ckpt_read_info(path, info, &text, &kind));
    gt_status st = GT_OK;
    if (strcmp(kind, gt_model_kind_name(m->kind)) != 0)
        st = GT_ERROR("%s holds a %s model but this run trains a %s model ([model] type): use another run.dir, or "
                      "run.resume=never to start over in this one",
                      path, kind, gt_model_kind_name(m->kind));
    if (!st) st = compare_configs(cfg, o->text, text, path);
    if (!st && !gt_shape_eq(info->data_shape, train->shape))
        st = GT_ERROR("%s was trained on data of shape %dx%dx%d, this run's data is %dx%dx%d", path, info->data_shape.c,
                      info->data_shape.h, info->data_shape.w, train->shape.c, train->shape.h, train->shape.w);
    if (!st && info->seed != o->seed)
        gt_warn("%s was made with run.seed %" PRIu64 ", this run has %" PRIu64 ": the rest of the run draws other "
                "random numbers",
                path, info->seed, o->seed);
    gt_free(text);
    gt_free(kind);
    return st;
}

/* Rank 0: the newest checkpoint that verifies and holds what the model
 * needs, loaded into m. Newer ones that do not are moved to damaged/. */
static gt_status find_checkpoint(const gt_options *o, gt_config *cfg, gt_model *m, const gt_source *train,
                                 const char *ckpt_dir, const char *verb, gt_resume_point *rp) {
    char **paths;
    int64_t *steps;
    int n, damaged = 0;
    GT_TRY(gt_ckpt_list(ckpt_dir, &paths, &steps, &n));
    gt_status st = GT_OK;
    for (int i = 0; i < n && !rp->found && !st; i++) {
        gt_status bad = gt_ckpt_verify(paths[i]);
        gt_ckpt_info info;
        if (!bad) {
            st = check_compatible(o, cfg, m, train, paths[i], &info);
            if (st) break;
            bad = gt_ckpt_check_model(paths[i], m);
        }
        if (bad) {
            char why[4096], moved[4400];
            snprintf(why, sizeof why, "%s", gt_error_message());
            gt_error_clear();
            st = gt_ckpt_set_aside(ckpt_dir, paths[i], moved, sizeof moved);
            if (!st) gt_warn("skipping checkpoint %s: %s; moved it to %s", paths[i], why, moved);
            damaged++;
            continue;
        }
        st = gt_ckpt_load(paths[i], m);
        if (st) break;
        gt_info("%s %s: step %" PRId64 ", epoch %" PRId64 " (written by %" PRId64 " rank%s)%s", verb, paths[i],
                info.step, info.epoch, info.world_size, info.world_size > 1 ? "s" : "",
                info.step >= o->steps && !strcmp(verb, "resuming from") ? "; it has reached train.steps already" : "");
        *rp = (gt_resume_point){1,         info.step,       info.epoch,         info.cursor, info.world_size,
                                info.batch_size, info.n_train, info.rollbacks, info.lr_scale};
    }
    gt_ckpt_free_list(paths, steps, n);
    GT_TRY(st);
    if (!rp->found && damaged)
        return GT_ERROR("%s holds a run but none of its checkpoints can be resumed from (%d moved to %s/damaged/, see "
                        "the warnings above); start over with run.resume=never (which moves the earlier run aside) or "
                        "choose another run.dir",
                        o->dir, damaged, ckpt_dir);
    return GT_OK;
}

/* Rank 0's part: the directory, and the checkpoint if there is one. */
static gt_status prepare(const gt_options *o, gt_config *cfg, gt_model *m, const gt_source *train,
                         gt_resume_point *rp) {
    char ckpt_dir[4200], path[4300];
    PATH_FMT(ckpt_dir, "%s/checkpoints", o->dir);
    GT_TRY(gt_make_dirs(o->dir, "run directory"));
    GT_TRY(gt_run_lock(o->dir)); /* before anything in run.dir is touched: one run per directory */
    GT_TRY(gt_make_dirs(ckpt_dir, "run directory"));
    GT_TRY(gt_ckpt_prune(ckpt_dir, 0)); /* stale temporary files */
    remove_stale_temporaries(o->dir);
    PATH_FMT(path, "%s/" GT_STOPPED_MARKER, o->dir); /* an earlier run's; this run writes its own */
    if (unlink(path) != 0 && errno != ENOENT) return GT_ERROR("cannot remove %s: %s", path, strerror(errno));
    if (o->resume_never) {
        GT_TRY(move_previous_run(o->dir, "run.resume=never", 0));
    } else {
        GT_TRY(find_checkpoint(o, cfg, m, train, ckpt_dir, "resuming from", rp));
        /* an earlier run that ended before its first checkpoint has nothing to resume */
        if (!rp->found) GT_TRY(move_previous_run(o->dir, "no checkpoint to resume from", 1));
    }
    /* only now, once the checkpoint (if any) was accepted */
    PATH_FMT(path, "%s/config.ini", o->dir);
    return write_text_file(path, o->text);
}

gt_status gt_resume(const gt_options *o, gt_config *cfg, gt_model *m, const gt_source *train, gt_resume_point *rp) {
    memset(rp, 0, sizeof *rp);
    rp->lr_scale = 1.0;
    int failed = 0;
    if (gt_dist_rank() == 0) failed = prepare(o, cfg, m, train, rp) != GT_OK;
    /* every rank learns whether rank 0 failed: the others then stop quietly */
    if (gt_dist_any(failed)) return failed ? gt_error_trace(__FILE__, __LINE__, GT_ERR) : GT_ERROR_ALL("rank 0 failed");
    gt_dist_bcast(rp, sizeof *rp);
    if (rp->found) gt_dist_bcast_model(m);
    return GT_OK;
}

gt_status gt_rollback(const gt_options *o, gt_config *cfg, gt_model *m, const gt_source *train, gt_resume_point *rp) {
    memset(rp, 0, sizeof *rp);
    rp->lr_scale = 1.0;
    int failed = 0;
    if (gt_dist_rank() == 0) {
        char ckpt_dir[4200];
        int n = snprintf(ckpt_dir, sizeof ckpt_dir, "%s/checkpoints", o->dir);
        failed = n < 0 || (size_t)n >= sizeof ckpt_dir ||
                 find_checkpoint(o, cfg, m, train, ckpt_dir, "rollback: reloading", rp) != GT_OK;
    }
    if (gt_dist_any(failed)) return failed ? gt_error_trace(__FILE__, __LINE__, GT_ERR) : GT_ERROR_ALL("rank 0 failed");
    gt_dist_bcast(rp, sizeof *rp);
    if (!rp->found) return GT_ERROR_ALL("no checkpoint in %s/checkpoints to roll back to", o->dir);
    gt_dist_bcast_model(m);
    return GT_OK;
}

void gt_run_mark_stopped(const char *dir, int64_t step, const char *signal) {
    char path[4300], text[256];
    int n = snprintf(path, sizeof path, "%s/" GT_STOPPED_MARKER, dir);
    snprintf(text, sizeof text, "step %" PRId64 "\nsignal %s\nexit %d\n", step, signal, GT_STOPPED);
    if (n < 0 || (size_t)n >= sizeof path || write_text_file(path, text) != GT_OK) {
        gt_warn("cannot write %s/" GT_STOPPED_MARKER " (job scripts read it when a launcher hides exit code %d): %s", dir,
                GT_STOPPED, gt_error_message());
        gt_error_clear();
    }
}

gt_status gt_checkpoint_write(const gt_options *o, const gt_model *m, const gt_sampler *s, const gt_source *train,
                              int64_t step, int64_t rollbacks, double lr_scale) {
    if (gt_dist_rank() != 0) return GT_OK;
    char ckpt_dir[4200];
    PATH_FMT(ckpt_dir, "%s/checkpoints", o->dir);
    gt_ckpt_info info = {.step = step,
                         .epoch = s->epoch,
                         .cursor = s->cursor,
                         .world_size = s->world,
                         .batch_size = s->batch,
                         .n_train = train->n,
                         .seed = o->seed,
                         .data_shape = train->shape,
                         .n_classes = train->n_classes,
                         .rollbacks = rollbacks,
                         .lr_scale = lr_scale};
    GT_TRY(gt_ckpt_save(ckpt_dir, m, &info, o->text));
    return gt_ckpt_prune(ckpt_dir, (int)o->ckpt_keep);
}
