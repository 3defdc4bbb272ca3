/* IDX files (the (Fashion-)MNIST format), gzipped or plain: zlib's gzread
 * reads both. Format: a big-endian magic 0x0000TTDD (TT = 0x08 for unsigned
 * bytes, DD = number of dimensions), DD big-endian uint32 sizes, then the
 * data, row-major. Images are 0x00000803 [n, rows, cols]; labels are
 * 0x00000801 [n]. */
#include "gentrain/core.h"
#include "gentrain/data.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u
/* Sanity limits on what a header may claim, so that a corrupt header gives a
 * clear message instead of a huge allocation. */
#define IDX_MAX_SIDE 65536u
#define IDX_MAX_BYTES ((uint64_t)1 << 36)

typedef struct {
    gzFile f;
    const char *path;
} idx_file;

static gt_status idx_open(const char *path, idx_file *r) {
    if (!path || !path[0]) return GT_ERROR("IDX: empty file name");
    struct stat sb; /* a FIFO would block the open until someone writes it */
    if (stat(path, &sb) != 0) return GT_ERROR("%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return GT_ERROR("%s: not a regular file (a %s): give an IDX file", path,
                        S_ISDIR(sb.st_mode) ? "directory" : S_ISFIFO(sb.st_mode) ? "FIFO or pipe" : "device or socket");
    errno = 0;
    r->f = gzopen(path, "rb");
    r->path = path;
    if (!r->f) return GT_ERROR("%s: cannot open: %s", path, errno ? strerror(errno) : "zlib could not allocate its state");
    return GT_OK;
}

/* zlib's message for the last error, without the file name gzerror puts first. */
static const char *zlib_message(idx_file *r, int *zerr) {
    const char *msg = gzerror(r->f, zerr);
    size_t pl = strlen(r->path);
    if (strncmp(msg, r->path, pl) == 0 && msg[pl] == ':' && msg[pl + 1] == ' ') msg += pl + 2;
    return msg;
}

/* Reads exactly `len` bytes of `what`, of which `base` were read before and
 * which has `total` bytes in all (messages count in the whole); a short read
 * is a truncated file. */
static gt_status idx_read_part(idx_file *r, void *buf, uint64_t len, const char *what, uint64_t base, uint64_t total) {
    unsigned char *p = buf;
    uint64_t done = 0;
    int zerr = Z_OK;
    while (done < len) {
        uint64_t want = len - done;
        if (want > (1u << 30)) want = 1u << 30;
        int got = gzread(r->f, p + done, (unsigned)want);
        if (got < 0) {
            const char *msg = zlib_message(r, &zerr);
            if (zerr == Z_ERRNO) msg = strerror(errno);
            if (zerr == Z_BUF_ERROR) /* "unexpected end of file": a cut-off gzip stream */
                return GT_ERROR("%s: file is truncated: %s needs %llu bytes, the compressed data ends after %llu "
                                "(zlib: %s)",
                                r->path, what, (unsigned long long)total, (unsigned long long)(base + done), msg);
            return GT_ERROR("%s: read error in %s after %llu of %llu bytes: %s", r->path, what,
                            (unsigned long long)(base + done), (unsigned long long)total, msg);
        }
        if (got == 0) {
            const char *msg = zlib_message(r, &zerr);
            if (zerr != Z_OK && zerr != Z_STREAM_END)
                return GT_ERROR("%s: file is truncated: %s needs %llu bytes, only %llu present (zlib: %s)", r->path,
                                what, (unsigned long long)total, (unsigned long long)(base + done), msg);
            return GT_ERROR("%s: file is truncated: %s needs %llu bytes, only %llu present", r->path, what,
                            (unsigned long long)total, (unsigned long long)(base + done));
        }
        done += (uint64_t)got;
    }
    /* A damaged gzip stream can deliver every byte asked for while zlib has
     * already noticed the damage; report that too. */
    const char *msg = zlib_message(r, &zerr);
    if (zerr != Z_OK && zerr != Z_STREAM_END)
        return GT_ERROR("%s: damaged or truncated file while reading %s (zlib: %s)", r->path, what, msg);
    return GT_OK;
}

static gt_status idx_read(idx_file *r, void *buf, uint64_t len, const char *what) {
    return idx_read_part(r, buf, len, what, 0, len);
}

/* Reads `total` bytes of `what` into a buffer that grows as the data come
 * (*out, gt_free it): a header that claims more than the file holds (up to
 * IDX_MAX_BYTES) costs the memory of what is there, not of the claim. The
 * buffer grows with realloc, which glibc does for large blocks by remapping
 * pages, not by copying: the peak is the data's size, not 1.5 times it. */
static gt_status idx_read_all(idx_file *r, uint64_t total, const char *what, uint8_t **out) {
    uint64_t cap = total < ((uint64_t)1 << 16) ? total : (uint64_t)1 << 16, got = 0;
    uint8_t *buf = gt_alloc(cap ? cap : 1);
    gt_status st = GT_OK;
    while (!st && got < total) {
        if (got == cap) { /* full and more to come: twice the room */
            uint64_t ncap = cap * 2 < total ? cap * 2 : total;
            uint8_t *nb = realloc(buf, ncap); /* gt_free (free) takes it; only bytes are read from it */
            if (!nb) gt_panic("%s: out of memory growing the buffer for %s to %llu bytes", r->path, what,
                              (unsigned long long)ncap);
            buf = nb;
            cap = ncap;
        }
        st = idx_read_part(r, buf + got, cap - got, what, got, total);
        if (!st) got = cap;
    }
    if (st) {
        gt_free(buf);
        return st;
    }
    *out = buf;
    return GT_OK;
}

/* After the last example: nothing may follow (a file with trailing bytes is
 * not what its header says). */
static gt_status idx_expect_end(idx_file *r) {
    unsigned char extra[64];
    int got = gzread(r->f, extra, sizeof extra);
    if (got < 0) {
        int zerr;
        return GT_ERROR("%s: damaged file after its data (zlib: %s)", r->path, zlib_message(r, &zerr));
    }
    if (got > 0)
        return GT_ERROR("%s: %s%d bytes follow the data that the IDX header announces: the file is damaged or its "
                        "header is wrong",
                        r->path, got == (int)sizeof extra ? "at least " : "", got);
    return GT_OK;
}

static gt_status idx_close(idx_file *r) {
    if (!r->f) return GT_OK;
    int rc = gzclose(r->f);
    r->f = NULL;
    if (rc != Z_OK) return GT_ERROR("%s: error closing file (zlib code %d)", r->path, rc);
    return GT_OK;
}

static uint32_t be32(const unsigned char *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

static gt_status read_magic(idx_file *r, uint32_t expected, const char *kind) {
    unsigned char b[4];
    GT_TRY(idx_read(r, b, 4, "the IDX header"));
    uint32_t magic = be32(b);
    if (magic != expected)
        return GT_ERROR("%s: not an IDX %s file (magic 0x%08x, expected 0x%08x)", r->path, kind, (unsigned)magic,
                        (unsigned)expected);
    return GT_OK;
}

/* The images file: header checks, then keep * rows * cols pixels. */
static gt_status load_images(idx_file *im, int64_t limit, gt_dataset *ds, uint32_t *in_file) {
    GT_TRY(read_magic(im, IDX_IMAGES_MAGIC, "image"));
    unsigned char hdr[12];
    GT_TRY(idx_read(im, hdr, 12, "the image dimensions"));
    uint32_t n = be32(hdr), rows = be32(hdr + 4), cols = be32(hdr + 8);
    *in_file = n;
    if (rows == 0 || cols == 0 || rows > IDX_MAX_SIDE || cols > IDX_MAX_SIDE)
        return GT_ERROR("%s: bad image size %ux%u in the IDX header (expected 1..%u on each side)", im->path,
                        (unsigned)rows, (unsigned)cols, (unsigned)IDX_MAX_SIDE);
    if (n == 0) return GT_ERROR("%s: the IDX header says the file holds no images", im->path);
    if (limit > (int64_t)n)
        return GT_ERROR("%s holds %u images, fewer than the %lld asked for ([data] limit)", im->path, (unsigned)n,
                        (long long)limit);
    uint64_t size = (uint64_t)rows * cols, keep = limit > 0 ? (uint64_t)limit : n;
    if (keep * size > IDX_MAX_BYTES)
        return GT_ERROR("%s: header claims %llu images of %ux%u (%llu bytes), more than the %llu bytes allowed",
                        im->path, (unsigned long long)keep, (unsigned)rows, (unsigned)cols,
                        (unsigned long long)(keep * size), (unsigned long long)IDX_MAX_BYTES);
    char what[128];
    snprintf(what, sizeof what, "%llu images of %ux%u pixels", (unsigned long long)keep, (unsigned)rows,
             (unsigned)cols);
    GT_TRY(idx_read_all(im, keep * size, what, &ds->pixels));
    if (keep == n) GT_TRY(idx_expect_end(im));
    ds->n = (int64_t)keep;
    ds->shape = (gt_shape){1, (int)rows, (int)cols};
    return GT_OK;
}

/* The labels file: as many labels as the images file has images. */
static gt_status load_labels(idx_file *lb, uint32_t n_images, const char *images_path, gt_dataset *ds) {
    GT_TRY(read_magic(lb, IDX_LABELS_MAGIC, "label"));
    unsigned char b[4];
    GT_TRY(idx_read(lb, b, 4, "the label count"));
    uint32_t nl = be32(b);
    if (nl != n_images)
        return GT_ERROR("%s: has %u labels but %s has %u images", lb->path, (unsigned)nl, images_path,
                        (unsigned)n_images);
    uint64_t keep = (uint64_t)ds->n;
    uint8_t *raw = gt_alloc(keep);
    char what[64];
    snprintf(what, sizeof what, "%llu labels", (unsigned long long)keep);
    gt_status st = idx_read(lb, raw, keep, what);
    if (!st && keep == nl) st = idx_expect_end(lb);
    if (!st) {
        ds->labels = gt_alloc(keep * sizeof(int));
        for (uint64_t i = 0; i < keep; i++) {
            ds->labels[i] = raw[i];
            if (raw[i] + 1 > ds->n_classes) ds->n_classes = raw[i] + 1;
        }
    }
    gt_free(raw);
    return st;
}

gt_status gt_idx_load(gt_dataset *ds, const char *images_path, const char *labels_path, int64_t limit) {
    GT_ASSERT(ds != NULL, "gt_idx_load: NULL dataset");
    memset(ds, 0, sizeof *ds);
    ds->toy = GT_TOY_NONE;
    snprintf(ds->source, sizeof ds->source, "%s", images_path ? images_path : "");
    idx_file im = {0}, lb = {0};
    uint32_t n_images = 0;
    gt_status st = idx_open(images_path, &im);
    if (!st) st = load_images(&im, limit, ds, &n_images);
    gt_status close_st = idx_close(&im);
    if (!st) st = close_st;
    if (!st && labels_path) {
        st = idx_open(labels_path, &lb);
        if (!st) st = load_labels(&lb, n_images, images_path, ds);
        close_st = idx_close(&lb);
        if (!st) st = close_st;
    }
    if (st) {
        gt_dataset_free(ds);
        return gt_error_trace(__FILE__, __LINE__, st);
    }
    return GT_OK;
}
