/* Private to the evaluation files of src/app (reference.c, evaluate.c): the
 * evaluator's fields. */
#ifndef GENTRAIN_APP_EVAL_INTERNAL_H
#define GENTRAIN_APP_EVAL_INTERNAL_H

#include "gentrain/app.h"
#include "gentrain/eval.h"

struct gt_evaluator {
    const gt_dataset *train, *test;
    int points;               /* 2-D data: the features are the points themselves */
    uint64_t seed;            /* of the reference's own draws (k-means seeding) */
    int dim;                  /* feature width */
    int classes;              /* the classifier's classes (0 for points) */
    gt_model *classifier;     /* images; NULL for points */
    char classifier_path[4200];
    char classifier_hash[17];
    double accuracy;          /* the classifier's on the test set; NaN without labels or classifier */
    char features_path[4400]; /* the cache file of the features below ("" for points) */
    float *train_feat, *test_feat;   /* [n_train, dim], [n_test, dim] */
    int64_t *train_hist, *test_hist; /* [classes]: the classifier's predicted classes of the data */
    gt_gauss_stats train_stats, test_stats;
    /* memorization's reference, made on first use (gt_evaluator_memorization) */
    int have_memorization;
    float *train_pixels;       /* [n_train, data] in [0,1] (images) */
    float *test_nn_feature;    /* [n_test]: distance of each test point to its nearest training point */
    float *test_nn_pixel;      /* [n_test] (images) */
    float *centroids;          /* [GT_CT_CELLS, dim]: k-means cells of the training features */
    int *train_cell, *test_cell;
    float *test_cell_dist;     /* [n_test]: to the nearest training point of the same cell */
};

/* Rows [first, last) of x [*, dim] -> this rank's chunk range of n rows. */
void gt_eval_my_rows(int64_t n, int64_t chunk, int64_t *first, int64_t *last);
/* The data set's examples [first, last) as floats [last-first, data] in [0,1] (images) or as they are (points). */
void gt_eval_data_rows(const gt_dataset *ds, int64_t first, int64_t last, gt_pixel_scale scale, float *out);

#endif
