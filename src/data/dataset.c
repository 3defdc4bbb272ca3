/* Batches of a dataset as floats, dynamic binarization, freeing. */
#include "gentrain/core.h"
#include "gentrain/data.h"

#include <stdlib.h>
#include <string.h>

/* Pixels p become p/127.5 - 1 (SIGNED) or p/255 (UNIT), through a table of
 * the 256 values. */
void gt_pixels_to_floats(const uint8_t *px, size_t n, gt_pixel_scale scale, float *x) {
    GT_ASSERT(scale == GT_SCALE_SIGNED || scale == GT_SCALE_UNIT, "gt_pixels_to_floats: unknown pixel scale %d",
              (int)scale);
    float lut[256];
    for (int p = 0; p < 256; p++) lut[p] = scale == GT_SCALE_SIGNED ? (float)p / 127.5f - 1.0f : (float)p / 255.0f;
    for (size_t k = 0; k < n; k++) x[k] = lut[px[k]];
}

/* idx: [B] dataset indices; x: [B, size]; labels: [B] or NULL.
 * Pixels p become p/127.5 - 1 (SIGNED) or p/255 (UNIT); float values are
 * copied as they are. Labels of an unlabelled dataset are -1. */
void gt_dataset_batch(const gt_dataset *ds, const int64_t *idx, int B, gt_pixel_scale scale, float *x, int *labels) {
    GT_ASSERT(ds != NULL && (ds->pixels || ds->values), "gt_dataset_batch: dataset is empty or freed");
    GT_ASSERT(B >= 0, "gt_dataset_batch: negative batch size %d", B);
    GT_ASSERT(scale == GT_SCALE_SIGNED || scale == GT_SCALE_UNIT, "gt_dataset_batch: unknown pixel scale %d",
             (int)scale);
    const size_t size = gt_shape_size(ds->shape);
/* One thread on purpose: the loader calls this on its reader thread, and an
 * OpenMP team there would be a second pool of threads beside the training
 * thread's. libgomp then has more threads than cores and stops spinning at
 * its barriers: every parallel region of the step would put its threads to
 * sleep and wake them with system calls (32670 context switches against 1951
 * in 80 steps of dcgan with 2 threads). A batch is a copy of a few hundred KB. */
    for (int b = 0; b < B; b++) {
        int64_t e = idx[b];
        if (e < 0 || e >= ds->n)
            gt_panic("%s: example index %lld (batch position %d) is outside [0, %lld)", ds->source, (long long)e, b,
                     (long long)ds->n);
        float *dst = x + (size_t)b * size;
        if (ds->pixels) {
            gt_pixels_to_floats(ds->pixels + (size_t)e * size, size, scale, dst);
        } else {
            const float *src = ds->values + (size_t)e * size;
            for (size_t k = 0; k < size; k++) dst[k] = src[k];
        }
        if (labels) labels[b] = ds->labels ? ds->labels[e] : -1;
    }
}

/* x: [B, size] in [0,1], replaced by 0/1 samples; local example i draws
 * `size` uniforms from (seed, BINARIZE/0, step, example0 + i*stride). */
void gt_binarize(float *x, int B, size_t size, uint64_t seed, uint64_t step, uint64_t example0, uint64_t stride) {
    if (B <= 0 || size == 0) return;
    float *u = gt_alloc_floats(size);
    const uint32_t purpose = GT_PURPOSE(GT_RNG_BINARIZE, 0);
    for (int i = 0; i < B; i++) {
        gt_rand_uniform(u, size, seed, purpose, step, example0 + (uint64_t)i * stride);
        float *xi = x + (size_t)i * size;
        for (size_t k = 0; k < size; k++) xi[k] = u[k] < xi[k] ? 1.0f : 0.0f;
    }
    gt_free(u);
}

/* The training set, then the test set; they must agree (the test set is
 * read whole, so that a bad test file stops the run before any training). */
gt_status gt_data_load(const gt_data_opts *o, uint64_t seed, gt_dataset *train, gt_dataset *test) {
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (o->kind == GT_DATA_TOY) {
        gt_toy_make(train, o->toy, o->n, o->std, seed);
        /* the test points come from another stream of the same mixture */
        gt_toy_make(test, o->toy, o->n_test, o->std, seed ^ 0x5eed7e57ull);
        return GT_OK;
    }
    if (o->kind == GT_DATA_HDF5)
        return GT_ERROR("%s: an HDF5 dataset ([data] kind = hdf5) is read on demand, not loaded whole into memory "
                        "(gt_dataset_file_open, io.h), and evaluation (gentrain eval, eval.every) needs the data in "
                        "memory: it works with fashion-mnist and toy data",
                        o->path ? o->path : "[data] path");
    GT_TRY(gt_idx_load(train, o->train_images, o->train_labels, o->limit));
    gt_status st = gt_idx_load(test, o->test_images, o->test_labels, 0);
    if (!st && !gt_shape_eq(train->shape, test->shape))
        st = GT_ERROR("the test images %s are %dx%dx%d but the training images %s are %dx%dx%d: both sets must have "
                      "one shape",
                      o->test_images, test->shape.c, test->shape.h, test->shape.w, o->train_images, train->shape.c,
                      train->shape.h, train->shape.w);
    if (!st && (train->labels != NULL) != (test->labels != NULL))
        st = GT_ERROR("%s has labels but %s does not: give labels for both sets or for neither",
                      train->labels ? o->train_images : o->test_images, train->labels ? o->test_images : o->train_images);
    if (!st && test->n_classes > train->n_classes)
        st = GT_ERROR("%s has labels up to %d but the training labels %s go only up to %d", o->test_labels,
                      test->n_classes - 1, o->train_labels, train->n_classes - 1);
    if (st) {
        gt_dataset_free(train);
        gt_dataset_free(test);
        return gt_error_trace(__FILE__, __LINE__, st);
    }
    return GT_OK;
}

void gt_dataset_free(gt_dataset *ds) {
    if (!ds) return;
    gt_free(ds->pixels);
    gt_free(ds->values);
    gt_free(ds->labels);
    ds->pixels = NULL;
    ds->values = NULL;
    ds->labels = NULL;
    ds->n = 0;
}
