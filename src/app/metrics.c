/* metrics.jsonl and metrics.h5 of a run (include/gentrain/app.h): one JSON
 * object per line and logged step, and the same as columns of the tables
 * /train and /test; evaluations during training as lines with "split":
 * "eval" and the table /eval/training; `gentrain eval` of a checkpoint as
 * the group /eval/step-XXXXXXXX. Written by rank 0. metrics.h5 is opened
 * only for each row and closed again, so that a process killed between rows
 * leaves it closed (HDF5 1.10 refuses to reopen a file a killed writer had
 * open); an open that finds the file locked by another process (a training
 * run and `gentrain eval` writing the same file) is retried for a few
 * seconds. */
#include "gentrain/app.h"

#include "gentrain/io.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define METRICS_FORMAT "gentrain-metrics"
#define FILES_VERSION 1

struct gt_metrics {
    char jsonl[4200], h5[4200];
    FILE *f;
    int64_t test_step; /* step of the last test-set line kept on resume, -1 if none */
};

/* metrics.jsonl without the lines of steps after `step`. */
static gt_status truncate_jsonl(const char *path, int64_t step, int64_t *test_step, const char *why) {
    FILE *in = fopen(path, "r");
    if (!in) {
        if (errno == ENOENT) return GT_OK;
        return GT_ERROR("cannot read %s: %s", path, strerror(errno));
    }
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *out = fopen(tmp, "w");
    if (!out) {
        fclose(in);
        return GT_ERROR("cannot create %s: %s", tmp, strerror(errno));
    }
    char *line = NULL;
    size_t cap = 0;
    long dropped = 0;
    int failed = 0;
    while (!failed && getline(&line, &cap, in) > 0) {
        const char *p = strstr(line, "\"step\":");
        long long s = p ? strtoll(p + 7, NULL, 10) : 0;
        if (!p || s > step) {
            dropped++;
            continue;
        }
        if (strstr(line, "\"split\": \"test\"")) *test_step = s;
        failed = fputs(line, out) < 0;
    }
    free(line);
    int read_failed = ferror(in);
    fclose(in);
    if (fflush(out) != 0 || ferror(out) || fsync(fileno(out)) != 0) failed = 1;
    if (fclose(out) != 0) failed = 1;
    if (read_failed || failed) {
        unlink(tmp);
        return GT_ERROR("cannot rewrite %s (through %s): %s", path, tmp, strerror(errno));
    }
    if (rename(tmp, path) != 0) return GT_ERROR("cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (dropped)
        gt_info("%s: dropped %ld line%s of steps after %" PRId64 " from %s", why, dropped, dropped > 1 ? "s" : "", step,
                path);
    return GT_OK;
}

/* gt_h5_open, retried for up to 5 s while another process holds the file's lock. */
static gt_status open_retrying(const char *path, int writable, gt_h5 **out) {
    for (int attempt = 0;; attempt++) {
        gt_status st = gt_h5_open(path, writable, out);
        if (!st || attempt >= 50 || !strstr(gt_error_message(), "locked by another process")) return st;
        gt_error_clear();
        struct timespec pause = {0, 100 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

/* Opens one of our HDF5 files for writing, creating it with its format
 * attribute; a file that is not ours is an error that leaves it untouched. */
gt_status gt_run_file_open(const char *path, const char *format, gt_h5 **out) {
    if (access(path, F_OK) != 0) {
        GT_TRY(gt_h5_create(path, out));
        gt_status st = gt_h5_set_attr_str(*out, NULL, "format", format);
        if (!st) st = gt_h5_set_attr_int64(*out, NULL, "version", FILES_VERSION);
        if (st) gt_h5_discard(*out), *out = NULL;
        return st;
    }
    if (!gt_h5_is_hdf5(path))
        return GT_ERROR("%s exists but is not an HDF5 file: not a gentrain %s file; move it away (it is left as it is)",
                        path, format);
    /* checked read-only first: a file that is not ours is not even opened for writing */
    gt_h5 *f;
    GT_TRY(open_retrying(path, 0, &f));
    int yes;
    char *fmt = NULL;
    gt_status st = gt_h5_attr_is_string(f, NULL, "format", &yes);
    if (!st && yes) st = gt_h5_get_attr_str(f, NULL, "format", &fmt);
    if (st) {
        gt_h5_discard(f);
        return st;
    }
    GT_TRY(gt_h5_close(f));
    int ours = fmt && !strcmp(fmt, format);
    st = ours ? GT_OK
              : GT_ERROR("%s is not a %s file (its format attribute is %s); move it away (it is left as it is)", path,
                         format, fmt ? fmt : "(none)");
    gt_free(fmt);
    GT_TRY(st);
    return open_retrying(path, 1, out);
}

/* Drops rows after `step` from a metrics table. */
static gt_status truncate_table(gt_h5 *f, const char *group, int64_t step) {
    int e;
    int64_t rows = 0;
    GT_TRY(gt_h5_exists(f, group, &e));
    if (e) GT_TRY(gt_h5_table_rows(f, group, "step", &rows));
    if (!rows) return GT_OK;
    double *s = gt_alloc(sizeof(double) * (size_t)rows);
    gt_status st = gt_h5_table_column(f, group, "step", s);
    int64_t keep = 0;
    while (!st && keep < rows && s[keep] <= (double)step) keep++;
    gt_free(s);
    if (!st && keep < rows) st = gt_h5_table_truncate(f, group, keep);
    return st;
}

static gt_status open_tables(gt_metrics *mt, int64_t resumed_step) {
    gt_h5 *f;
    GT_TRY(gt_run_file_open(mt->h5, METRICS_FORMAT, &f));
    int64_t keep = resumed_step >= 0 ? resumed_step : 0;
    gt_status st = truncate_table(f, "train", keep);
    if (!st) st = truncate_table(f, "test", keep);
    if (!st) st = truncate_table(f, "eval/training", keep);
    /* gentrain eval's results of checkpoints after the resumed one, which this run rewrites */
    int e = 0;
    if (!st) st = gt_h5_exists(f, "eval", &e);
    char **names = NULL;
    int nn = 0;
    if (!st && e) st = gt_h5_list(f, "eval", 1, &names, &nn);
    for (int i = 0; i < nn && !st; i++) {
        if (strncmp(names[i], "step-", 5) != 0) continue;
        char group[64];
        snprintf(group, sizeof group, "eval/%.*s", (int)strcspn(names[i], "/"), names[i]);
        if (strtoll(names[i] + 5, NULL, 10) > keep) st = gt_h5_delete(f, group);
    }
    gt_h5_free_names(names, nn);
    if (st) {
        gt_h5_discard(f);
        return st;
    }
    return gt_h5_close(f);
}

gt_status gt_metrics_open(const char *run_dir, int64_t resumed_step, gt_metrics **out) {
    gt_metrics *mt = gt_alloc(sizeof *mt);
    *out = NULL;
    mt->test_step = -1;
    int n1 = snprintf(mt->jsonl, sizeof mt->jsonl, "%s/metrics.jsonl", run_dir);
    int n2 = snprintf(mt->h5, sizeof mt->h5, "%s/metrics.h5", run_dir);
    gt_status st = n1 < 0 || n2 < 0 || (size_t)n1 >= sizeof mt->jsonl || (size_t)n2 >= sizeof mt->h5
                       ? GT_ERROR("run directory path too long: %s", run_dir)
                       : GT_OK;
    if (!st && resumed_step >= 0) st = truncate_jsonl(mt->jsonl, resumed_step, &mt->test_step, "resume");
    if (!st) {
        mt->f = fopen(mt->jsonl, resumed_step >= 0 ? "a" : "w");
        if (!mt->f) st = GT_ERROR("run directory is not writable: cannot open %s: %s", mt->jsonl, strerror(errno));
    }
    if (!st) st = open_tables(mt, resumed_step);
    if (st) {
        if (mt->f) fclose(mt->f);
        gt_free(mt);
        return st;
    }
    *out = mt;
    return GT_OK;
}

gt_status gt_metrics_write(gt_metrics *mt, int64_t step, int64_t epoch, const char *split, const gt_stats *st,
                           double img_per_s, double elapsed) {
    FILE *f = mt->f;
    fprintf(f, "{\"step\": %" PRId64 ", \"epoch\": %" PRId64, step, epoch);
    if (split) fprintf(f, ", \"split\": \"%s\"", split);
    for (int k = 0; k < st->n; k++) fprintf(f, ", \"%s\": %.9g", st->name[k], st->value[k]);
    if (img_per_s > 0) fprintf(f, ", \"img_per_s\": %.1f, \"elapsed_s\": %.3f", img_per_s, elapsed);
    fputs("}\n", f);
    if (fflush(f) != 0 || ferror(f)) return GT_ERROR("cannot write %s: %s", mt->jsonl, strerror(errno));

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
    gt_h5 *h;
    GT_TRY(open_retrying(mt->h5, 1, &h));
    gt_status s = gt_h5_table_append(h, split ? split : "train", n, cols, 2, vals);
    if (s) {
        gt_h5_discard(h);
        return s;
    }
    return gt_h5_close(h);
}

int gt_metrics_has_test(const gt_metrics *mt, int64_t step) { return mt->test_step == step; }

gt_status gt_metrics_rewind(gt_metrics *mt, int64_t step) {
    if (fclose(mt->f) != 0) {
        mt->f = NULL;
        return GT_ERROR("cannot write %s: %s", mt->jsonl, strerror(errno));
    }
    mt->f = NULL;
    GT_TRY(truncate_jsonl(mt->jsonl, step, &mt->test_step, "rollback"));
    mt->f = fopen(mt->jsonl, "a");
    if (!mt->f) return GT_ERROR("cannot open %s: %s", mt->jsonl, strerror(errno));
    return open_tables(mt, step);
}

gt_status gt_metrics_event(gt_metrics *mt, int64_t step, const char *event, const char *fields) {
    fprintf(mt->f, "{\"step\": %" PRId64 ", \"event\": \"%s\"%s%s}\n", step, event, fields[0] ? ", " : "", fields);
    if (fflush(mt->f) != 0 || ferror(mt->f)) return GT_ERROR("cannot write %s: %s", mt->jsonl, strerror(errno));
    return GT_OK;
}

gt_status gt_metrics_close(gt_metrics *mt) {
    if (!mt) return GT_OK;
    gt_status st = GT_OK;
    if (!mt->f) {
        gt_free(mt);
        return st;
    }
    if (fflush(mt->f) != 0 || ferror(mt->f)) st = GT_ERROR("cannot write %s: %s", mt->jsonl, strerror(errno));
    if (fclose(mt->f) != 0 && !st) st = GT_ERROR("cannot write %s: %s", mt->jsonl, strerror(errno));
    gt_free(mt);
    return st;
}

/* ---- evaluation results ----------------------------------------------------------- */

static void json_number(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.9g", v);
    else fputs("null", f);
}

gt_status gt_metrics_write_eval(gt_metrics *mt, int64_t step, int64_t epoch, const gt_evaluator *ev,
                                const gt_eval_result *r) {
    double total = 0;
    for (int i = 0; i < r->nt; i++) total += r->seconds[i];
    for (int i = 0; r->live && i < r->live->nt; i++) total += r->live->seconds[i];
    FILE *f = mt->f;
    fprintf(f, "{\"step\": %" PRId64 ", \"epoch\": %" PRId64 ", \"split\": \"eval\", \"n\": %ld", step, epoch, r->n);
    fprintf(f, ", \"classifier_hash\": \"%s\", \"classifier_accuracy\": ", gt_evaluator_classifier_hash(ev));
    json_number(f, gt_evaluator_classifier_accuracy(ev));
    if (r->live) fprintf(f, ", \"generator\": \"ema\"");
    for (int k = 0; k < r->nv; k++) {
        fprintf(f, ", \"%s\": ", r->name[k]);
        json_number(f, r->value[k]);
    }
    for (int k = 0; r->live && k < r->live->nv; k++) {
        fprintf(f, ", \"live_%s\": ", r->live->name[k]);
        json_number(f, r->live->value[k]);
    }
    fprintf(f, ", \"eval_s\": %.3f}\n", total);
    if (fflush(f) != 0 || ferror(f)) return GT_ERROR("cannot write %s: %s", mt->jsonl, strerror(errno));

    const char *cols[2 * GT_EVAL_MAX_VALUES + 5];
    double vals[2 * GT_EVAL_MAX_VALUES + 5];
    char live_names[GT_EVAL_MAX_VALUES][80];
    int n = 0;
    cols[n] = "step", vals[n++] = (double)step;
    cols[n] = "epoch", vals[n++] = (double)epoch;
    cols[n] = "n", vals[n++] = (double)r->n;
    cols[n] = "classifier_accuracy", vals[n++] = gt_evaluator_classifier_accuracy(ev);
    for (int k = 0; k < r->nv; k++) cols[n] = r->name[k], vals[n++] = r->value[k];
    for (int k = 0; r->live && k < r->live->nv; k++) {
        snprintf(live_names[k], sizeof live_names[k], "live_%s", r->live->name[k]);
        cols[n] = live_names[k], vals[n++] = r->live->value[k];
    }
    cols[n] = "eval_s", vals[n++] = total;
    gt_h5 *h;
    GT_TRY(open_retrying(mt->h5, 1, &h));
    gt_status s = gt_h5_table_append(h, "eval/training", n, cols, 3, vals);
    if (!s) s = gt_h5_set_attr_str(h, "eval/training", "classifier_hash", gt_evaluator_classifier_hash(ev));
    if (!s) s = gt_h5_set_attr_str(h, "eval/training", "classifier", gt_evaluator_classifier_path(ev));
    if (s) {
        gt_h5_discard(h);
        return s;
    }
    return gt_h5_close(h);
}

static gt_status write_group(gt_h5 *h, const char *group, int64_t step, const char *checkpoint, const gt_evaluator *ev,
                             const gt_eval_result *r, uint64_t seed) {
    char list[512] = "", name[160];
    size_t used = 0;
    for (int i = 0; i < GT_METRIC_COUNT; i++)
        if (r->metrics & (1u << i) && used < sizeof list)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", used ? "," : "", gt_metric_names[i]);
    GT_TRY(gt_h5_delete(h, group));
    GT_TRY(gt_h5_make_group(h, group));
    GT_TRY(gt_h5_set_attr_int64(h, group, "step", step));
    GT_TRY(gt_h5_set_attr_str(h, group, "checkpoint", checkpoint));
    GT_TRY(gt_h5_set_attr_int64(h, group, "n", r->n));
    GT_TRY(gt_h5_set_attr_int64(h, group, "seed", (int64_t)seed));
    GT_TRY(gt_h5_set_attr_str(h, group, "metrics", list));
    GT_TRY(gt_h5_set_attr_str(h, group, "classifier", gt_evaluator_classifier_path(ev)));
    GT_TRY(gt_h5_set_attr_str(h, group, "classifier_hash", gt_evaluator_classifier_hash(ev)));
    GT_TRY(gt_h5_set_attr_double(h, group, "classifier_accuracy", gt_evaluator_classifier_accuracy(ev)));
    GT_TRY(gt_h5_set_attr_str(h, group, "gentrain_version", gt_version()));
    if (r->ema || r->live) GT_TRY(gt_h5_set_attr_str(h, group, "generator", r->ema ? "ema" : "live"));
    for (int k = 0; k < r->nv; k++) GT_TRY(gt_h5_set_attr_double(h, group, r->name[k], r->value[k]));
    for (int k = 0; k < r->nt; k++) {
        snprintf(name, sizeof name, "seconds_%s", r->time_name[k]);
        GT_TRY(gt_h5_set_attr_double(h, group, name, r->seconds[k]));
    }
    for (int k = 0; k < r->na; k++) {
        const gt_eval_array *a = &r->array[k];
        int dims[1] = {(int)a->len};
        snprintf(name, sizeof name, "%s/%s", group, a->name);
        if (a->is_int) GT_TRY(gt_h5_write_int64(h, name, a->data, 1, dims));
        else GT_TRY(gt_h5_write_floats(h, name, a->data, 1, dims));
    }
    return GT_OK;
}

gt_status gt_metrics_h5_eval_group(const char *h5_path, int64_t step, const char *checkpoint, const gt_evaluator *ev,
                                   const gt_eval_result *r, uint64_t seed) {
    gt_h5 *h = NULL;
    GT_TRY(gt_run_file_open(h5_path, METRICS_FORMAT, &h));
    char group[64];
    snprintf(group, sizeof group, "eval/step-%08" PRId64, step);
    gt_status st = write_group(h, group, step, checkpoint, ev, r, seed);
    if (!st && r->live) { /* the EMA generator's in the group, the live one's in its subgroup live */
        char live[80];
        snprintf(live, sizeof live, "%s/live", group);
        st = write_group(h, live, step, checkpoint, ev, r->live, seed);
    }
    if (st) {
        gt_h5_discard(h);
        return st;
    }
    return gt_h5_close(h);
}
