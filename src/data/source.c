/* Sources of examples by global index (include/gentrain/data.h): an
 * in-memory dataset as a source, and the shard cache (a source's contiguous
 * range of examples held in memory as 8-bit pixels). File-backed sources
 * live where their file format does (src/io/dataset.c). */
#include "gentrain/core.h"
#include "gentrain/data.h"

#include <stdio.h>
#include <string.h>

static void check_batch(const gt_source *s, const int64_t *idx, int B) {
    GT_ASSERT(B >= 0, "%s: negative batch size %d", s->name, B);
    for (int b = 0; b < B; b++)
        if (idx[b] < 0 || idx[b] >= s->n)
            gt_panic("%s: example index %lld (batch position %d) is outside [0, %lld)", s->name, (long long)idx[b], b,
                     (long long)s->n);
}

gt_status gt_source_read(gt_source *s, const int64_t *idx, int B, gt_pixel_scale scale, float *x, int *labels) {
    GT_ASSERT(s != NULL && s->ops != NULL, "gt_source_read: source is closed");
    check_batch(s, idx, B);
    return s->ops->read(s, idx, B, scale, x, labels);
}

void gt_source_close(gt_source *s) {
    if (!s) return;
    if (s->ops && s->ops->close) s->ops->close(s);
    gt_free(s);
}

/* ---- an in-memory dataset ---------------------------------------------- */

static gt_status mem_read(gt_source *s, const int64_t *idx, int B, gt_pixel_scale scale, float *x, int *labels) {
    gt_dataset_batch(s->impl, idx, B, scale, x, labels);
    s->rows_read += B;
    return GT_OK;
}

static gt_status mem_read_range(gt_source *s, int64_t first, int64_t count, uint8_t *px, int *labels) {
    const gt_dataset *ds = s->impl;
    size_t size = gt_shape_size(ds->shape);
    memcpy(px, ds->pixels + (size_t)first * size, (size_t)count * size);
    for (int64_t i = 0; labels && i < count; i++) labels[i] = ds->labels ? ds->labels[first + i] : -1;
    s->rows_read += count;
    return GT_OK;
}

static void mem_close(gt_source *s) {
    gt_dataset_free(s->impl);
    gt_free(s->impl);
}

static const gt_source_ops mem_ops = {mem_read, mem_read_range, mem_close};
static const gt_source_ops mem_points_ops = {mem_read, NULL, mem_close};

gt_source *gt_source_memory(gt_dataset *ds) {
    GT_ASSERT(ds != NULL && (ds->pixels || ds->values), "gt_source_memory: empty dataset");
    gt_source *s = gt_alloc(sizeof *s);
    gt_dataset *own = gt_alloc(sizeof *own);
    *own = *ds;
    memset(ds, 0, sizeof *ds);
    s->ops = own->pixels ? &mem_ops : &mem_points_ops;
    s->impl = own;
    s->n = own->n;
    s->shape = own->shape;
    s->has_labels = own->labels != NULL;
    s->n_classes = own->n_classes;
    s->points = own->values != NULL;
    s->toy = own->toy;
    s->resident = (int64_t)((size_t)own->n * gt_shape_size(own->shape) * (own->pixels ? 1 : sizeof(float)) +
                            (own->labels ? (size_t)own->n * sizeof(int) : 0));
    snprintf(s->name, sizeof s->name, "%s", own->source);
    return s;
}

/* ---- the shard cache --------------------------------------------------- */

typedef struct {
    int64_t first, count;
    uint8_t *pixels; /* [count, size] */
    int *labels;     /* [count] or NULL */
} cache_t;

static gt_status cache_read(gt_source *s, const int64_t *idx, int B, gt_pixel_scale scale, float *x, int *labels) {
    const cache_t *c = s->impl;
    size_t size = gt_shape_size(s->shape);
    for (int b = 0; b < B; b++) {
        int64_t e = idx[b] - c->first;
        if (e < 0 || e >= c->count)
            gt_panic("%s: example %lld is not in this rank's cached shard [%lld, %lld)", s->name, (long long)idx[b],
                     (long long)c->first, (long long)(c->first + c->count));
        gt_pixels_to_floats(c->pixels + (size_t)e * size, size, scale, x + (size_t)b * size);
        if (labels) labels[b] = c->labels ? c->labels[e] : -1;
    }
    return GT_OK;
}

static void cache_close(gt_source *s) {
    cache_t *c = s->impl;
    gt_free(c->pixels);
    gt_free(c->labels);
    gt_free(c);
}

static const gt_source_ops cache_ops = {cache_read, NULL, cache_close};

gt_status gt_source_cache(gt_source **sp, int64_t first, int64_t count, size_t piece_bytes) {
    gt_source *in = *sp;
    GT_ASSERT(in->ops->read_range != NULL, "%s: this source cannot be cached (no pixels)", in->name);
    GT_ASSERT(first >= 0 && count > 0 && first + count <= in->n, "%s: cache range [%lld, %lld) outside [0, %lld)",
              in->name, (long long)first, (long long)(first + count), (long long)in->n);
    size_t size = gt_shape_size(in->shape);
    cache_t *c = gt_alloc(sizeof *c);
    c->first = first;
    c->count = count;
    c->pixels = gt_alloc((size_t)count * size);
    if (in->has_labels) c->labels = gt_alloc((size_t)count * sizeof(int));
    int64_t piece = (int64_t)(piece_bytes / size);
    if (piece < 1) piece = 1;
    gt_status st = GT_OK;
    for (int64_t done = 0; done < count && !st; done += piece) {
        int64_t k = count - done < piece ? count - done : piece;
        st = in->ops->read_range(in, first + done, k, c->pixels + (size_t)done * size,
                                 c->labels ? c->labels + done : NULL);
    }
    if (st) {
        gt_free(c->pixels);
        gt_free(c->labels);
        gt_free(c);
        return gt_error_trace(__FILE__, __LINE__, st);
    }
    gt_source *out = gt_alloc(sizeof *out);
    *out = *in;
    out->ops = &cache_ops;
    out->impl = c;
    out->resident = (int64_t)((size_t)count * size + (c->labels ? (size_t)count * sizeof(int) : 0));
    in->ops->close(in);
    gt_free(in);
    *sp = out;
    return GT_OK;
}
