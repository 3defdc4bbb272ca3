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

#include "gentrain/checkpoint.h"
#include "gentrain/io.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define METRICS_FORMAT "gentrain-metrics"
#define FILES_VERSION 1

struct gt_metrics {
    char dir[4200], jsonl[4200], h5[4200];
    FILE *f;
    int64_t test_step; /* step of the last test-set line kept on resume, -1 if none */
};

/* metrics.jsonl without the lines of steps after `step`. */
static gt_status truncate_jsonl(const char *path, int64_t step, int64_t *test_step, const char *why) {
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) /* a FIFO would block */
        return GT_ERROR("%s is not a regular file: move it away", path);
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
    ssize_t len;
    while (!failed && (len = getline(&line, &cap, in)) > 0) {
        const char *p = strstr(line, "\"step\":");
        long long s = p ? strtoll(p + 7, NULL, 10) : 0;
        /* a line cut short (a write that a kill or a full disk interrupted) goes too */
        int whole = len >= 3 && line[0] == '{' && line[len - 1] == '\n' && line[len - 2] == '}';
        if (!p || s > step || !whole) {
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
 * attribute; a file that is not ours is an error that leaves it untouched.
 * *damaged = 1 when the error is that the file cannot be opened or read
 * (truncated, damaged, or marked open by a killed writer) rather than that
 * it belongs to someone else. */
gt_status gt_run_file_open(const char *path, const char *format, gt_h5 **out, int *damaged) {
    *out = NULL;
    *damaged = 0;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        GT_TRY(gt_h5_create(path, out));
        gt_status st = gt_h5_set_attr_str(*out, NULL, "format", format);
        if (!st) st = gt_h5_set_attr_int64(*out, NULL, "version", FILES_VERSION);
        if (st) gt_h5_discard(*out), *out = NULL;
        return st;
    }
    if (S_ISREG(sb.st_mode) && sb.st_size == 0) { /* a writer killed while creating it */
        *damaged = 1;
        return GT_ERROR("%s is empty (its writer was killed while creating it)", path);
    }
    if (!gt_h5_is_hdf5(path))
        return GT_ERROR("%s exists but is not an HDF5 file: not a gentrain %s file; move it away (it is left as it is)",
                        path, format);
    /* checked read-only first: a file that is not ours is not even opened for writing */
    gt_h5 *f;
    gt_status st = open_retrying(path, 0, &f);
    if (st) {
        *damaged = 1;
        return st;
    }
    int yes;
    char *fmt = NULL;
    st = gt_h5_attr_is_string(f, NULL, "format", &yes);
    if (!st && yes) st = gt_h5_get_attr_str(f, NULL, "format", &fmt);
    if (!st) st = gt_h5_close(f);
    else gt_h5_discard(f);
    if (st) {
        *damaged = 1;
        return st;
    }
    int ours = fmt && !strcmp(fmt, format);
    st = ours ? GT_OK
              : GT_ERROR("%s is not a %s file (its format attribute is %s); move it away (it is left as it is)", path,
                         format, fmt ? fmt : "(none)");
    gt_free(fmt);
    GT_TRY(st);
    st = open_retrying(path, 1, out);
    if (st) *damaged = 1;
    return st;
}

gt_status gt_run_file_set_aside(const char *run_dir, const char *path, const char *why, const char *then) {
    char moved[4400], reason[1024];
    snprintf(reason, sizeof reason, "%s", why);
    gt_error_clear();
    GT_TRY(gt_ckpt_set_aside(run_dir, path, moved, sizeof moved));
    gt_warn("%s cannot be used: %s; moved it to %s and %s", path, reason, moved, then);
    return GT_OK;
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

/* The value of a JSON number or string after `"key": ` at p; *end after it.
 * Returns 'n' (number in *v), 's' (string copied to str), 0 on a syntax error. */
static int json_value(const char *p, const char **end, double *v, char *str, size_t cap) {
    while (*p == ' ') p++;
    if (*p == '"') {
        const char *q = strchr(p + 1, '"');
        if (!q || (size_t)(q - p - 1) >= cap) return 0;
        memcpy(str, p + 1, (size_t)(q - p - 1));
        str[q - p - 1] = '\0';
        *end = q + 1;
        return 's';
    }
    if (!strncmp(p, "null", 4)) { /* an undefined evaluation metric */
        *v = NAN;
        *end = p + 4;
        return 'n';
    }
    char *e;
    *v = strtod(p, &e); /* also nan and inf, which %.9g writes */
    if (e == p) return 0;
    *end = e;
    return 'n';
}

/* One line of metrics.jsonl as a table row: *split (NULL: "train"), the
 * columns and values in the line's order, step and epoch first. 0 if the
 * line is not one gentrain wrote. */
static int parse_row(const char *line, char split[32], char names[][64], double *vals, int cap, int *n) {
    const char *p = line;
    *n = 0;
    split[0] = '\0';
    if (*p++ != '{') return 0;
    while (*p && *p != '}') {
        while (*p == ' ' || *p == ',') p++;
        if (*p != '"') return 0;
        const char *k = p + 1, *q = strchr(k, '"');
        if (!q || q - k >= 64 || q[1] != ':') return 0;
        char key[64];
        memcpy(key, k, (size_t)(q - k));
        key[q - k] = '\0';
        double v = 0;
        char str[32];
        int t = json_value(q + 2, &p, &v, str, sizeof str);
        if (t == 's' && !strcmp(key, "event")) return 0; /* a rollback's line: not a row */
        if (t == 's' && !strcmp(key, "split")) {
            if (strspn(str, "abcdefghijklmnopqrstuvwxyz_") != strlen(str) || !str[0]) return 0;
            snprintf(split, 32, "%s", str);
        } else if (t == 's') {
            /* a string column (an evaluation's classifier_hash): an attribute in metrics.h5, not a column */
        } else if (t == 'n' && *n < cap) {
            snprintf(names[*n], 64, "%s", key);
            vals[(*n)++] = v;
        } else {
            return 0;
        }
        while (*p == ' ') p++;
    }
    return *p == '}' && *n >= 2 && !strcmp(names[0], "step") && !strcmp(names[1], "epoch");
}

/* The tables metrics.jsonl's lines make: the lines of split split_names[t]
 * are the rows of table_names[t]. */
static const char *const split_names[] = {"train", "test", "eval"};
static const char *const table_names[] = {"train", "test", "eval/training"};
#define N_TABLES 3

/* Reads metrics.jsonl's rows: appends each to f (if not NULL) and counts
 * them per table (rows[N_TABLES], if not NULL; other splits are not counted). */
static gt_status jsonl_rows(gt_metrics *mt, gt_h5 *f, long *rows) {
    if (rows)
        for (int t = 0; t < N_TABLES; t++) rows[t] = 0;
    FILE *in = fopen(mt->jsonl, "r");
    if (!in) return errno == ENOENT ? GT_OK : GT_ERROR("cannot read %s: %s", mt->jsonl, strerror(errno));
    char *line = NULL, names[GT_MAX_STATS + 8][64], split[32];
    const char *cols[GT_MAX_STATS + 8];
    double vals[GT_MAX_STATS + 8];
    size_t cap = 0;
    int n;
    gt_status st = GT_OK;
    for (int i = 0; i < GT_MAX_STATS + 8; i++) cols[i] = names[i];
    while (!st && getline(&line, &cap, in) > 0) {
        if (!parse_row(line, split, names, vals, GT_MAX_STATS + 8, &n)) continue;
        const char *table = split[0] ? split : "train";
        for (int t = 0; t < N_TABLES; t++) {
            if (strcmp(table, split_names[t]) != 0) continue;
            table = table_names[t];
            if (rows) rows[t]++;
            break;
        }
        if (f) st = gt_h5_table_append(f, table, n, cols, 2, vals);
    }
    free(line);
    fclose(in);
    return st;
}

/* metrics.h5's tables made again from the rows of metrics.jsonl (already cut
 * at the resumed step); the file is created if it is missing, and what else
 * it holds (gentrain eval's /eval/step-* groups) is kept. */
static gt_status rebuild_h5(gt_metrics *mt, long *rows) {
    gt_h5 *f;
    int damaged;
    GT_TRY(gt_run_file_open(mt->h5, METRICS_FORMAT, &f, &damaged));
    gt_status st = GT_OK;
    for (int t = 0; t < N_TABLES && !st; t++) {
        int e = 0;
        st = gt_h5_exists(f, table_names[t], &e);
        if (!st && e) st = gt_h5_delete(f, table_names[t]);
    }
    long per_table[N_TABLES];
    if (!st) st = jsonl_rows(mt, f, per_table);
    if (st) {
        gt_h5_discard(f);
        return st;
    }
    *rows = per_table[0] + per_table[1] + per_table[2];
    return gt_h5_close(f);
}

/* Drops gentrain eval's results (/eval/step-XXXXXXXX) of steps after `keep`,
 * which the resumed run writes again. */
static gt_status drop_later_evals(gt_h5 *f, int64_t keep) {
    int e = 0;
    GT_TRY(gt_h5_exists(f, "eval", &e));
    if (!e) return GT_OK;
    char **names = NULL;
    int nn = 0;
    GT_TRY(gt_h5_list(f, "eval", 1, &names, &nn));
    gt_status st = GT_OK;
    for (int i = 0; i < nn && !st; i++) {
        if (strncmp(names[i], "step-", 5) != 0) continue;
        char group[64];
        snprintf(group, sizeof group, "eval/%.*s", (int)strcspn(names[i], "/"), names[i]);
        if (strtoll(names[i] + 5, NULL, 10) > keep) st = gt_h5_delete(f, group);
    }
    gt_h5_free_names(names, nn);
    return st;
}

/* metrics.h5, cut at the resumed step like metrics.jsonl. metrics.jsonl is
 * the record (written first, line by line): a metrics.h5 that cannot be
 * opened is set aside and rebuilt from it, and tables that hold other rows
 * (a run stopped between writing the two) are rebuilt. */
static gt_status open_tables(gt_metrics *mt, int64_t resumed_step) {
    gt_h5 *f;
    int damaged;
    long in_h5[N_TABLES] = {0}, in_jsonl[N_TABLES];
    gt_status st = gt_run_file_open(mt->h5, METRICS_FORMAT, &f, &damaged);
    if (!st) {
        int64_t keep = resumed_step >= 0 ? resumed_step : 0;
        for (int t = 0; t < N_TABLES && !st; t++) {
            int e = 0;
            int64_t rows = 0;
            st = truncate_table(f, table_names[t], keep);
            if (!st) st = gt_h5_exists(f, table_names[t], &e);
            if (!st && e) st = gt_h5_table_rows(f, table_names[t], "step", &rows);
            in_h5[t] = (long)rows;
        }
        if (!st) st = drop_later_evals(f, keep);
        if (st) damaged = 1, gt_h5_discard(f);
        else st = gt_h5_close(f);
    }
    if (st && !damaged) return st;
    if (st) {
        /* the damaged file is set aside */
        GT_TRY(gt_run_file_set_aside(mt->dir, mt->h5, gt_error_message(), "rebuilt it from metrics.jsonl"));
    } else {
        GT_TRY(jsonl_rows(mt, NULL, in_jsonl));
        if (!memcmp(in_h5, in_jsonl, sizeof in_h5)) return GT_OK;
        gt_info("metrics: %s holds %ld/%ld/%ld train/test/eval rows, %s %ld/%ld/%ld (the run was stopped between "
                "writing the two): rebuilding its tables",
                mt->h5, in_h5[0], in_h5[1], in_h5[2], mt->jsonl, in_jsonl[0], in_jsonl[1], in_jsonl[2]);
    }
    long rows = 0;
    GT_TRY(rebuild_h5(mt, &rows));
    gt_info("metrics: rebuilt the tables of %s from %s (%ld rows)", mt->h5, mt->jsonl, rows);
    return GT_OK;
}

gt_status gt_metrics_open(const char *run_dir, int64_t resumed_step, gt_metrics **out) {
    gt_metrics *mt = gt_alloc(sizeof *mt);
    *out = NULL;
    mt->test_step = -1;
    int n1 = snprintf(mt->jsonl, sizeof mt->jsonl, "%s/metrics.jsonl", run_dir);
    int n2 = snprintf(mt->h5, sizeof mt->h5, "%s/metrics.h5", run_dir);
    int n3 = snprintf(mt->dir, sizeof mt->dir, "%s", run_dir);
    gt_status st = n1 < 0 || n2 < 0 || n3 < 0 || (size_t)n1 >= sizeof mt->jsonl || (size_t)n2 >= sizeof mt->h5 ||
                           (size_t)n3 >= sizeof mt->dir
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

gt_status gt_metrics_set_attrs(gt_metrics *mt, int n, const char *const *names, const int64_t *values) {
    gt_h5 *h;
    GT_TRY(open_retrying(mt->h5, 1, &h));
    gt_status st = GT_OK;
    for (int i = 0; i < n && !st; i++) st = gt_h5_set_attr_int64(h, NULL, names[i], values[i]);
    if (st) {
        gt_h5_discard(h);
        return st;
    }
    return gt_h5_close(h);
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
    int damaged; /* a damaged metrics.h5 is an error here: the training run that owns it repairs it */
    GT_TRY(gt_run_file_open(h5_path, METRICS_FORMAT, &h, &damaged));
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
