/* data: datasets in memory, the distributed sampler, batches as floats. */
#ifndef GENTRAIN_DATA_H
#define GENTRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "gentrain/core.h"

/* 2-D toy mixtures: n points, point i drawn from (seed, i):
 * ring8: 8 Gaussians evenly on a circle of radius 1;
 * grid25: 25 Gaussians on a 5x5 grid with spacing 2, centred on 0. */
typedef enum { GT_TOY_NONE = -1, GT_TOY_RING8, GT_TOY_GRID25 } gt_toy_kind;
extern const char *const gt_toy_names[]; /* "ring8", "grid25", NULL */

/* A dataset: n examples of one shape, either 8-bit pixels (IDX images) or
 * float values (2-D toy points), with optional integer labels. */
typedef struct {
    int64_t n;
    gt_shape shape;
    uint8_t *pixels;  /* n * size, or NULL */
    float *values;    /* n * size, or NULL */
    int *labels;      /* n, or NULL */
    int n_classes;
    gt_toy_kind toy;  /* the mixture the points come from, GT_TOY_NONE for images */
    float toy_std;
    char source[256]; /* file or generator it came from, for messages */
} gt_dataset;

/* Where the data comes from ([data] in a config). */
typedef enum { GT_DATA_IDX, GT_DATA_TOY } gt_data_kind;
typedef struct {
    gt_data_kind kind;
    const char *train_images, *train_labels, *test_images, *test_labels; /* IDX */
    int64_t limit;                                                       /* IDX: first N training examples, 0 = all */
    gt_toy_kind toy;                                                     /* toy */
    int64_t n, n_test;
    float std;
} gt_data_opts;

/* The training and test sets; they must agree in shape and in their labels'
 * range (an error names the files). */
gt_status gt_data_load(const gt_data_opts *o, uint64_t seed, gt_dataset *train, gt_dataset *test);

/* IDX (gzipped or plain) images [n, rows, cols] of uint8, and optionally the
 * matching labels file (NULL = none). limit > 0 keeps the first `limit` (more
 * than the file holds is an error). Errors name the file and what is wrong. */
gt_status gt_idx_load(gt_dataset *ds, const char *images_path, const char *labels_path, int64_t limit);

void gt_toy_make(gt_dataset *ds, gt_toy_kind kind, int64_t n, float std, uint64_t seed);
/* Mixture centres: writes up to cap (x,y) pairs, returns the count. */
int gt_toy_centres(gt_toy_kind kind, float *xy, int cap);

void gt_dataset_free(gt_dataset *ds);

/* Pixel scaling for images: [-1,1] (GAN, tanh output) or [0,1] (VAE). */
typedef enum { GT_SCALE_SIGNED, GT_SCALE_UNIT } gt_pixel_scale;

/* Gather examples idx[0..B) into x [B, size] as floats (values copied as they
 * are for float datasets) and their labels (if labels != NULL). */
void gt_dataset_batch(const gt_dataset *ds, const int64_t *idx, int B, gt_pixel_scale scale, float *x, int *labels);

/* Dynamic binarization: x[i] in [0,1] becomes 1 with probability x[i]; the
 * draw for local example i is keyed by (seed, step, example0 + i*stride). */
void gt_binarize(float *x, int B, size_t size, uint64_t seed, uint64_t step, uint64_t example0, uint64_t stride);

/* The distributed sampler. The epoch's permutation of [0, n) comes from
 * (seed, epoch). Each step consumes world*batch consecutive entries of it;
 * rank r takes entries r, r+world, r+2*world, ... of those (a strided slice),
 * so local example i has position r + i*world in the global batch.
 * steps_per_epoch = floor(n / (world*batch)); the remainder of each epoch's
 * permutation is skipped (it differs from epoch to epoch). */
typedef struct {
    int64_t n, steps_per_epoch;
    int batch, rank, world;
    uint64_t seed;
    int64_t epoch, cursor; /* cursor = steps taken in this epoch */
    int64_t *perm;         /* permutation of the current epoch */
} gt_sampler;

void gt_sampler_init(gt_sampler *s, int64_t n, int batch, int rank, int world, uint64_t seed);
/* Position the sampler at (epoch, cursor), e.g. on resume. */
void gt_sampler_seek(gt_sampler *s, int64_t epoch, int64_t cursor);
/* Writes this rank's next batch of dataset indices into idx[batch] and advances
 * (to the next epoch when this one is used up). */
void gt_sampler_next(gt_sampler *s, int64_t *idx);
void gt_sampler_free(gt_sampler *s);

#endif
