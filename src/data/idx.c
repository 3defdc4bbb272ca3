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

static idx_file idx_open(const char *path) {
    GT_CHECK(path != NULL && path[0] != '\0', "IDX: empty file name");
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) gt_fatal("%s: cannot open: %s", path, errno ? strerror(errno) : "zlib could not allocate its state");
    idx_file r = {f, path};
    return r;
}

/* zlib's message for the last error, without the file name gzerror puts first. */
static const char *zlib_message(idx_file *r, int *zerr) {
    const char *msg = gzerror(r->f, zerr);
    size_t pl = strlen(r->path);
    if (strncmp(msg, r->path, pl) == 0 && msg[pl] == ':' && msg[pl + 1] == ' ') msg += pl + 2;
    return msg;
}

/* Reads exactly `len` bytes of `what`; a short read is a truncated file. */
static void idx_read(idx_file *r, void *buf, uint64_t len, const char *what) {
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
                gt_fatal("%s: file is truncated: %s needs %llu bytes, the compressed data ends after %llu (zlib: %s)",
                         r->path, what, (unsigned long long)len, (unsigned long long)done, msg);
            gt_fatal("%s: read error in %s after %llu of %llu bytes: %s", r->path, what, (unsigned long long)done,
                     (unsigned long long)len, msg);
        }
        if (got == 0) {
            const char *msg = zlib_message(r, &zerr);
            if (zerr != Z_OK && zerr != Z_STREAM_END)
                gt_fatal("%s: file is truncated: %s needs %llu bytes, only %llu present (zlib: %s)", r->path, what,
                         (unsigned long long)len, (unsigned long long)done, msg);
            gt_fatal("%s: file is truncated: %s needs %llu bytes, only %llu present", r->path, what,
                     (unsigned long long)len, (unsigned long long)done);
        }
        done += (uint64_t)got;
    }
    /* A damaged gzip stream can deliver every byte asked for while zlib has
     * already noticed the damage; report that too. */
    const char *msg = zlib_message(r, &zerr);
    if (zerr != Z_OK && zerr != Z_STREAM_END)
        gt_fatal("%s: damaged or truncated file while reading %s (zlib: %s)", r->path, what, msg);
}

static void idx_close(idx_file *r) {
    int rc = gzclose(r->f);
    r->f = NULL;
    if (rc != Z_OK) gt_fatal("%s: error closing file (zlib code %d)", r->path, rc);
}

static uint32_t be32(const unsigned char *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

static uint32_t read_magic(idx_file *r, uint32_t expected, const char *kind) {
    unsigned char b[4];
    idx_read(r, b, 4, "the IDX header");
    uint32_t magic = be32(b);
    if (magic != expected)
        gt_fatal("%s: not an IDX %s file (magic 0x%08x, expected 0x%08x)", r->path, kind, (unsigned)magic,
                 (unsigned)expected);
    return magic;
}

static void *checked_malloc(uint64_t bytes, const char *path, const char *what) {
    void *p = malloc(bytes ? (size_t)bytes : 1);
    if (!p)
        gt_fatal("%s: out of memory allocating %llu bytes for %s", path, (unsigned long long)bytes, what);
    return p;
}

void gt_idx_load(gt_dataset *ds, const char *images_path, const char *labels_path, int64_t limit) {
    GT_CHECK(ds != NULL, "gt_idx_load: NULL dataset");
    memset(ds, 0, sizeof *ds);

    /* ---- images: [n, rows, cols] uint8 */
    idx_file im = idx_open(images_path);
    read_magic(&im, IDX_IMAGES_MAGIC, "image");
    unsigned char hdr[12];
    idx_read(&im, hdr, 12, "the image dimensions");
    uint32_t n = be32(hdr), rows = be32(hdr + 4), cols = be32(hdr + 8);
    if (rows == 0 || cols == 0 || rows > IDX_MAX_SIDE || cols > IDX_MAX_SIDE)
        gt_fatal("%s: bad image size %ux%u in the IDX header (expected 1..%u on each side)", images_path,
                 (unsigned)rows, (unsigned)cols, (unsigned)IDX_MAX_SIDE);
    uint64_t size = (uint64_t)rows * cols;
    uint64_t keep = n;
    if (limit > 0 && (uint64_t)limit < keep) keep = (uint64_t)limit;
    if (keep * size > IDX_MAX_BYTES)
        gt_fatal("%s: header claims %u images of %ux%u (%llu bytes), more than the %llu bytes allowed", images_path,
                 (unsigned)n, (unsigned)rows, (unsigned)cols, (unsigned long long)(keep * size),
                 (unsigned long long)IDX_MAX_BYTES);
    uint8_t *pixels = checked_malloc(keep * size, images_path, "the pixels");
    char what[128];
    snprintf(what, sizeof what, "%llu images of %ux%u pixels", (unsigned long long)keep, (unsigned)rows,
             (unsigned)cols);
    idx_read(&im, pixels, keep * size, what);
    idx_close(&im);

    /* ---- labels: [n] uint8, as many as images */
    int *labels = NULL;
    int n_classes = 0;
    if (labels_path) {
        idx_file lb = idx_open(labels_path);
        read_magic(&lb, IDX_LABELS_MAGIC, "label");
        unsigned char b[4];
        idx_read(&lb, b, 4, "the label count");
        uint32_t nl = be32(b);
        if (nl != n)
            gt_fatal("%s: has %u labels but %s has %u images", labels_path, (unsigned)nl, images_path, (unsigned)n);
        uint8_t *raw = checked_malloc(keep, labels_path, "the labels");
        snprintf(what, sizeof what, "%llu labels", (unsigned long long)keep);
        idx_read(&lb, raw, keep, what);
        idx_close(&lb);
        labels = checked_malloc(keep * sizeof(int), labels_path, "the labels");
        for (uint64_t i = 0; i < keep; i++) {
            labels[i] = raw[i];
            if (raw[i] + 1 > n_classes) n_classes = raw[i] + 1;
        }
        free(raw);
    }

    ds->n = (int64_t)keep;
    ds->shape.c = 1;
    ds->shape.h = (int)rows;
    ds->shape.w = (int)cols;
    ds->pixels = pixels;
    ds->values = NULL;
    ds->labels = labels;
    ds->n_classes = n_classes;
    snprintf(ds->source, sizeof ds->source, "%s", images_path);
}
