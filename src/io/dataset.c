/* gentrain-dataset files (include/gentrain/io.h; the format is in the
 * README, "Datasets"): their checks, and the file as two sources of
 * examples (data.h), the training and the test set, read row by row through
 * the HDF5 layer (gt_h5_rows). Nothing here includes <hdf5.h>.
 *
 *   root attributes  format = "gentrain-dataset", format_version = 1,
 *                    channels, height, width (optional; must match /images),
 *                    n_classes (optional: labels in [0, n_classes)),
 *                    test_split (optional: the last test_split rows of
 *                    /images are the test set; instead of /test)
 *   /images          uint8 [N, C, H, W], C = 1 or 3
 *   /labels          integers [N] (optional)
 *   /test/images     uint8 [M, C, H, W] (and /test/labels iff /labels) */
#include "gentrain/core.h"
#include "gentrain/data.h"
#include "gentrain/io.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORMAT "gentrain-dataset"
#define FORMAT_VERSION 1
#define MAX_CLASSES (1 << 20)
#define LABEL_PIECE ((int64_t)1 << 20) /* labels are checked this many at a time */
#define CACHE_CHUNKS 4                 /* filtered chunks kept per dataset (io.h) */

typedef struct {
    gt_h5 *f;
    int refs;
} shared_file;

typedef struct {
    shared_file *file;
    gt_h5_rows *images, *labels;
    gt_h5_rows_info info;
    int64_t offset;    /* the row of example 0 in its /images */
    int64_t *rows;     /* [cap] rows of a batch */
    uint8_t *px;       /* [cap, size] */
    int64_t *lab;      /* [cap] */
    int64_t cap;
    FILE *dump;        /* [debug] dump_reads */
    char *dump_path;
    char layout[256];
} file_source;

static void file_unref(shared_file *sf) {
    if (sf && --sf->refs == 0) {
        gt_h5_discard(sf->f); /* opened read-only: nothing to flush */
        gt_free(sf);
    }
}

static void ensure_cap(file_source *fs, int64_t n, size_t size) {
    if (n <= fs->cap) return;
    gt_free(fs->rows);
    gt_free(fs->px);
    gt_free(fs->lab);
    fs->rows = gt_alloc(sizeof(int64_t) * (size_t)n);
    fs->px = gt_alloc((size_t)n * size);
    fs->lab = gt_alloc(sizeof(int64_t) * (size_t)n);
    fs->cap = n;
}

static gt_status dump(gt_source *s, file_source *fs, const int64_t *idx, int64_t n, int64_t first) {
    if (!fs->dump) return GT_OK;
    int64_t buf[256];
    for (int64_t i = 0; i < n;) {
        int64_t k = 0;
        for (; k < 256 && i < n; k++, i++) buf[k] = idx ? idx[i] : first + i;
        if (fwrite(buf, sizeof(int64_t), (size_t)k, fs->dump) != (size_t)k)
            return GT_ERROR("%s: cannot write the read dump %s: %s", s->name, fs->dump_path, strerror(errno));
    }
    return GT_OK;
}

/* Labels rows[0..n) as ints: their range was checked when the file was opened. */
static void to_int(const int64_t *in, int64_t n, int *out) {
    for (int64_t i = 0; i < n; i++) out[i] = (int)in[i];
}

static gt_status fs_read(gt_source *s, const int64_t *idx, int B, gt_pixel_scale scale, float *x, int *labels) {
    file_source *fs = s->impl;
    size_t size = gt_shape_size(s->shape);
    ensure_cap(fs, B, size);
    for (int b = 0; b < B; b++) fs->rows[b] = fs->offset + idx[b];
    GT_TRY(gt_h5_rows_read_u8(fs->images, fs->rows, B, fs->px));
    gt_pixels_to_floats(fs->px, (size_t)B * size, scale, x);
    if (labels) {
        if (fs->labels) {
            GT_TRY(gt_h5_rows_read_i64(fs->labels, fs->rows, B, fs->lab));
            to_int(fs->lab, B, labels);
        } else {
            for (int b = 0; b < B; b++) labels[b] = -1;
        }
    }
    s->rows_read += B;
    return dump(s, fs, idx, B, 0);
}

static gt_status fs_read_range(gt_source *s, int64_t first, int64_t count, uint8_t *px, int *labels) {
    file_source *fs = s->impl;
    GT_TRY(gt_h5_rows_range_u8(fs->images, fs->offset + first, count, px));
    if (labels) {
        if (fs->labels) {
            int64_t *tmp = gt_alloc(sizeof(int64_t) * (size_t)count);
            gt_status st = gt_h5_rows_range_i64(fs->labels, fs->offset + first, count, tmp);
            if (!st) to_int(tmp, count, labels);
            gt_free(tmp);
            GT_TRY(st);
        } else {
            for (int64_t i = 0; i < count; i++) labels[i] = -1;
        }
    }
    s->rows_read += count;
    return dump(s, fs, NULL, count, first);
}

static void fs_close(gt_source *s) {
    file_source *fs = s->impl;
    gt_h5_rows_close(fs->images);
    gt_h5_rows_close(fs->labels);
    if (fs->dump && fclose(fs->dump) != 0) gt_warn("%s: closing the read dump %s: %s", s->name, fs->dump_path, strerror(errno));
    gt_free(fs->dump_path);
    file_unref(fs->file);
    gt_free(fs->rows);
    gt_free(fs->px);
    gt_free(fs->lab);
    gt_free(fs);
}

static const gt_source_ops file_ops = {fs_read, fs_read_range, fs_close};

const char *gt_dataset_file_layout(const gt_source *s) {
    if (!s || s->ops != &file_ops) return "";
    return ((const file_source *)s->impl)->layout;
}

/* ---- checks -------------------------------------------------------------- */

typedef struct {
    const char *path;
    gt_h5 *f;
} ctx_t;

/* /images or /test/images: uint8 [n, C, H, W], C in {1, 3}. */
static gt_status check_images(ctx_t *c, const char *name, int64_t dims[4]) {
    int yes;
    GT_TRY(gt_h5_is_dataset(c->f, name, &yes));
    if (!yes) return GT_ERROR("%s: the dataset file has no '%s' dataset (uint8 [N, C, H, W])", c->path, name);
    char dtype[64];
    int rank, d[GT_H5_MAX_RANK];
    GT_TRY(gt_h5_dtype(c->f, name, dtype, sizeof dtype));
    GT_TRY(gt_h5_shape(c->f, name, &rank, d));
    if (strcmp(dtype, "uint8") != 0)
        return GT_ERROR("%s: '%s' holds %s values; a gentrain dataset holds uint8 pixels (0..255)", c->path, name,
                        dtype);
    if (rank != 4)
        return GT_ERROR("%s: '%s' has %d dimensions; a gentrain dataset's images are [N, C, H, W]", c->path, name, rank);
    for (int i = 0; i < 4; i++) dims[i] = d[i];
    if (dims[1] != 1 && dims[1] != 3)
        return GT_ERROR("%s: '%s' has %d channels [N, C, H, W] = [%d, %d, %d, %d]; gentrain trains on 1 (grey) or 3 "
                        "(RGB) channels",
                        c->path, name, d[1], d[0], d[1], d[2], d[3]);
    if (dims[2] < 1 || dims[3] < 1) return GT_ERROR("%s: '%s' has images of %dx%d pixels", c->path, name, d[2], d[3]);
    return GT_OK;
}

static gt_status check_labels_shape(ctx_t *c, const char *name, int64_t n) {
    char dtype[64];
    int rank, d[GT_H5_MAX_RANK];
    GT_TRY(gt_h5_dtype(c->f, name, dtype, sizeof dtype));
    GT_TRY(gt_h5_shape(c->f, name, &rank, d));
    if (strstr(dtype, "int") != dtype && strstr(dtype, "uint") != dtype)
        return GT_ERROR("%s: '%s' holds %s values; labels are integers", c->path, name, dtype);
    if (rank != 1 || d[0] != n)
        return GT_ERROR("%s: '%s' has shape [%d%s] but there are %" PRId64 " images: one label per image", c->path,
                        name, d[0], rank == 1 ? "" : ", ...", n);
    return GT_OK;
}

/* Labels rows [first, first + n) of `name`: min and max. */
static gt_status label_range(ctx_t *c, const char *name, int64_t first, int64_t n, int64_t *lo, int64_t *hi,
                             int64_t *at_lo, int64_t *at_hi) {
    gt_h5_rows *r;
    gt_h5_rows_info info;
    GT_TRY(gt_h5_rows_open(c->f, name, CACHE_CHUNKS, &r, &info));
    int64_t piece = n < LABEL_PIECE ? n : LABEL_PIECE;
    int64_t *buf = gt_alloc(sizeof(int64_t) * (size_t)(piece > 0 ? piece : 1));
    *lo = INT64_MAX, *hi = INT64_MIN, *at_lo = *at_hi = -1;
    gt_status st = GT_OK;
    for (int64_t done = 0; done < n && !st; done += piece) {
        int64_t k = n - done < piece ? n - done : piece;
        st = gt_h5_rows_range_i64(r, first + done, k, buf);
        for (int64_t i = 0; i < k && !st; i++) {
            if (buf[i] < *lo) *lo = buf[i], *at_lo = first + done + i;
            if (buf[i] > *hi) *hi = buf[i], *at_hi = first + done + i;
        }
    }
    gt_free(buf);
    gt_h5_rows_close(r);
    return st;
}

static gt_status check_label_values(ctx_t *c, const char *name, int64_t first, int64_t n, int64_t n_classes,
                                    int from_attr, int64_t *hi_out) {
    int64_t lo = 0, hi = 0, at_lo = -1, at_hi = -1;
    GT_TRY(label_range(c, name, first, n, &lo, &hi, &at_lo, &at_hi));
    if (lo < 0)
        return GT_ERROR("%s: '%s'[%" PRId64 "] = %" PRId64 ": labels are class numbers 0, 1, ...", c->path, name, at_lo,
                        lo);
    if (from_attr && hi >= n_classes)
        return GT_ERROR("%s: '%s'[%" PRId64 "] = %" PRId64 " is outside [0, %" PRId64 ") (the file's n_classes "
                        "attribute)",
                        c->path, name, at_hi, hi, n_classes);
    if (hi >= MAX_CLASSES)
        return GT_ERROR("%s: '%s'[%" PRId64 "] = %" PRId64 ": more than %d classes", c->path, name, at_hi, hi,
                        MAX_CLASSES);
    *hi_out = hi;
    return GT_OK;
}

static gt_status get_int_attr(ctx_t *c, const char *key, int64_t *v, int *present) {
    GT_TRY(gt_h5_has_attr(c->f, "/", key, present));
    if (!*present) return GT_OK;
    char t;
    GT_TRY(gt_h5_attr_type(c->f, "/", key, &t));
    if (t != 'i') return GT_ERROR("%s: the attribute '%s' is not an integer", c->path, key);
    return gt_h5_get_attr_int64(c->f, "/", key, v);
}

static gt_status check_format(ctx_t *c) {
    int yes;
    GT_TRY(gt_h5_has_attr(c->f, "/", "format", &yes));
    if (!yes)
        return GT_ERROR("%s: not a gentrain dataset: the file has no 'format' attribute (expected '" FORMAT "'; "
                        "tools/make-dataset makes such files)",
                        c->path);
    GT_TRY(gt_h5_attr_is_string(c->f, "/", "format", &yes));
    if (!yes) return GT_ERROR("%s: not a gentrain dataset: its 'format' attribute is not a string", c->path);
    char *fmt;
    GT_TRY(gt_h5_get_attr_str(c->f, "/", "format", &fmt));
    gt_status st = GT_OK;
    if (strcmp(fmt, FORMAT) != 0)
        st = GT_ERROR("%s: not a gentrain dataset: its format attribute is '%s', expected '" FORMAT "' (%s)", c->path,
                      fmt,
                      !strcmp(fmt, "gentrain-checkpoint") || !strcmp(fmt, "gentrain-samples") ||
                              !strcmp(fmt, "gentrain-metrics")
                          ? "a file that gentrain train writes, not training data"
                          : "tools/make-dataset makes dataset files");
    gt_free(fmt);
    GT_TRY(st);
    int64_t version;
    GT_TRY(get_int_attr(c, "format_version", &version, &yes));
    if (yes && (version < 1 || version > FORMAT_VERSION))
        return GT_ERROR("%s: format_version %" PRId64 " is not one this gentrain reads (1..%d): it comes from a newer "
                        "tools/make-dataset",
                        c->path, version, FORMAT_VERSION);
    return GT_OK;
}

/* The channels/height/width attributes, where present, describe /images. */
static gt_status check_size_attrs(ctx_t *c, const int64_t dims[4]) {
    static const char *const keys[] = {"channels", "height", "width"};
    for (int i = 0; i < 3; i++) {
        int yes;
        int64_t v;
        GT_TRY(get_int_attr(c, keys[i], &v, &yes));
        if (yes && v != dims[i + 1])
            return GT_ERROR("%s: the attribute %s = %" PRId64 " does not match /images [N, C, H, W] = [%" PRId64
                            ", %" PRId64 ", %" PRId64 ", %" PRId64 "]",
                            c->path, keys[i], v, dims[0], dims[1], dims[2], dims[3]);
    }
    return GT_OK;
}

static gt_source *make_source(shared_file *sf, const char *path, const char *images, int64_t offset, int64_t n,
                              const int64_t dims[4], int labels, int n_classes) {
    gt_source *s = gt_alloc(sizeof *s);
    file_source *fs = gt_alloc(sizeof *fs);
    fs->file = sf;
    sf->refs++;
    fs->offset = offset;
    s->ops = &file_ops;
    s->impl = fs;
    s->n = n;
    s->shape = (gt_shape){(int)dims[1], (int)dims[2], (int)dims[3]};
    s->has_labels = labels;
    s->n_classes = labels ? n_classes : 0;
    s->points = 0;
    s->toy = GT_TOY_NONE;
    snprintf(s->name, sizeof s->name, "%s:%s", path, images);
    return s;
}

static gt_status open_rows(gt_source *s, const char *images, const char *labels) {
    file_source *fs = s->impl;
    GT_TRY(gt_h5_rows_open(fs->file->f, images, CACHE_CHUNKS, &fs->images, &fs->info));
    if (labels) {
        gt_h5_rows_info li;
        GT_TRY(gt_h5_rows_open(fs->file->f, labels, CACHE_CHUNKS, &fs->labels, &li));
    }
    const gt_h5_rows_info *in = &fs->info;
    if (in->chunk_rows > 0)
        snprintf(fs->layout, sizeof fs->layout, "chunks of %" PRId64 " examples (%.2f MiB), filters %s, chunk cache %.1f MiB",
                 in->chunk_rows, (double)in->chunk_bytes / 1048576.0, in->filters, (double)in->cache_bytes / 1048576.0);
    else
        snprintf(fs->layout, sizeof fs->layout, "contiguous (not chunked)");
    return GT_OK;
}

static gt_status open_all(ctx_t *c, shared_file *sf, int64_t limit, const char *dump_reads, gt_source **train,
                          gt_source **test) {
    GT_TRY(check_format(c));
    int64_t dims[4], tdims[4];
    GT_TRY(check_images(c, "/images", dims));
    GT_TRY(check_size_attrs(c, dims));
    int has_labels;
    GT_TRY(gt_h5_exists(c->f, "/labels", &has_labels));
    if (has_labels) GT_TRY(check_labels_shape(c, "/labels", dims[0]));

    /* the test set: /test, or the last test_split rows */
    int has_group, has_split;
    int64_t split = 0;
    GT_TRY(gt_h5_exists(c->f, "/test", &has_group));
    GT_TRY(get_int_attr(c, "test_split", &split, &has_split));
    if (has_group && has_split)
        return GT_ERROR("%s: both a /test group and a test_split attribute: give the test set one way", c->path);
    if (!has_group && !has_split)
        return GT_ERROR("%s: no test set: the file needs a /test group (/test/images) or a test_split attribute (the "
                        "last test_split examples; tools/make-dataset --test-fraction)",
                        c->path);
    int64_t n_train = dims[0], n_test, test_offset = 0;
    const char *test_images = "/images", *test_labels = has_labels ? "/labels" : NULL;
    if (has_split) {
        if (split < 1 || split >= dims[0])
            return GT_ERROR("%s: test_split = %" PRId64 " must leave both sets examples: /images holds %" PRId64,
                            c->path, split, dims[0]);
        n_train = dims[0] - split;
        n_test = split;
        test_offset = n_train;
    } else {
        GT_TRY(check_images(c, "/test/images", tdims));
        if (tdims[1] != dims[1] || tdims[2] != dims[2] || tdims[3] != dims[3])
            return GT_ERROR("%s: the test images /test/images are %" PRId64 "x%" PRId64 "x%" PRId64
                            " but the training images /images are %" PRId64 "x%" PRId64 "x%" PRId64
                            ": both sets must have one shape",
                            c->path, tdims[1], tdims[2], tdims[3], dims[1], dims[2], dims[3]);
        int tl;
        GT_TRY(gt_h5_exists(c->f, "/test/labels", &tl));
        if (tl != has_labels)
            return GT_ERROR("%s: %s has labels but %s does not: give labels for both sets or for neither", c->path,
                            has_labels ? "/images" : "/test/images", has_labels ? "/test/images" : "/images");
        if (tl) GT_TRY(check_labels_shape(c, "/test/labels", tdims[0]));
        n_test = tdims[0];
        test_images = "/test/images";
        test_labels = tl ? "/test/labels" : NULL;
    }
    if (n_train < 1 || n_test < 1)
        return GT_ERROR("%s: the %s set is empty", c->path, n_train < 1 ? "training" : "test");
    if (limit > n_train)
        return GT_ERROR("%s holds %" PRId64 " training examples, fewer than the %" PRId64 " asked for ([data] limit)",
                        c->path, n_train, limit);

    /* labels: every one in range before any training */
    int64_t n_classes = 0;
    if (has_labels) {
        int from_attr;
        GT_TRY(get_int_attr(c, "n_classes", &n_classes, &from_attr));
        if (from_attr && (n_classes < 1 || n_classes > MAX_CLASSES))
            return GT_ERROR("%s: n_classes = %" PRId64 " is not in 1..%d", c->path, n_classes, MAX_CLASSES);
        int64_t hi_train, hi_test;
        GT_TRY(check_label_values(c, "/labels", 0, n_train, n_classes, from_attr, &hi_train));
        GT_TRY(check_label_values(c, test_labels, test_offset, n_test, n_classes, from_attr, &hi_test));
        if (!from_attr && hi_test > hi_train)
            return GT_ERROR("%s: the test labels go up to %" PRId64 " but the training labels only up to %" PRId64
                            " (set the n_classes attribute if the training set lacks classes on purpose)",
                            c->path, hi_test, hi_train);
        if (!from_attr) n_classes = hi_train + 1;
    }

    *train = make_source(sf, c->path, "/images", 0, limit > 0 ? limit : n_train, dims, has_labels, (int)n_classes);
    GT_TRY(open_rows(*train, "/images", has_labels ? "/labels" : NULL));
    *test = make_source(sf, c->path, test_images, test_offset, n_test, dims, has_labels, (int)n_classes);
    GT_TRY(open_rows(*test, test_images, test_labels));
    if (dump_reads && dump_reads[0]) {
        file_source *fs = (*train)->impl;
        fs->dump_path = gt_strdup(dump_reads);
        fs->dump = fopen(dump_reads, "wb");
        if (!fs->dump) return GT_ERROR("[debug] dump_reads: cannot create %s: %s", dump_reads, strerror(errno));
    }
    return GT_OK;
}

gt_status gt_dataset_file_open(const char *path, int64_t limit, const char *dump_reads, gt_source **train,
                               gt_source **test) {
    *train = *test = NULL;
    if (!path || !path[0]) return GT_ERROR("[data] path: no dataset file given (kind = hdf5 needs one)");
    shared_file *sf = gt_alloc(sizeof *sf);
    ctx_t c = {path, NULL};
    gt_status st = gt_h5_open_shared(path, &sf->f);
    if (st) {
        gt_free(sf);
        return gt_error_trace(__FILE__, __LINE__, st);
    }
    sf->refs = 1; /* ours, until both sources hold it */
    c.f = sf->f;
    st = open_all(&c, sf, limit, dump_reads, train, test);
    if (st) {
        gt_source_close(*train);
        gt_source_close(*test);
        *train = *test = NULL;
    }
    file_unref(sf);
    return st ? gt_error_trace(__FILE__, __LINE__, st) : GT_OK;
}
