/* samples.h5 and samples.png of a run (include/gentrain/app.h): the model's
 * images of a fixed latent batch (/noise) every samples.every steps, as
 * /step-XXXXXXXX [N,C,H,W] in the data range (a GAN with an EMA generator:
 * the EMA's, and the live generator's as /live/step-XXXXXXXX); VAEs also
 * reconstruct a fixed test batch (/test_batch, /recon/step-XXXXXXXX). Written by rank 0; the file
 * is opened only for each write (a killed run leaves it closed). */
#include "gentrain/app.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SAMPLES_FORMAT "gentrain-samples"

struct gt_samples {
    char h5[4200], png[4200], png_live[4200];
    int n, n_test;
    float *noise;      /* [n, z_dim] */
    float *test_batch; /* [n_test, data] (VAE) */
    gt_shape shape;
    gt_pixel_scale scale;
    int points;
    gt_toy_kind toy;
};

void gt_samples_noise(uint64_t seed, int n, int z_dim, float *out) {
    for (int i = 0; i < n; i++)
        gt_rand_normal(out + (size_t)i * z_dim, (size_t)z_dim, seed, GT_PURPOSE(GT_RNG_FIXED_NOISE, 0), 0,
                       (uint64_t)i);
}

gt_status gt_samples_png(const char *path, const float *x, int n, gt_shape shape, gt_pixel_scale scale, int points,
                         gt_toy_kind toy) {
    if (points) {
        if (gt_shape_size(shape) != 2)
            return GT_ERROR("%s: samples of shape %dx%dx%d are neither images nor 2-D points", path, shape.c, shape.h,
                            shape.w);
        float ref[2 * 64];
        int n_ref = toy != GT_TOY_NONE ? gt_toy_centres(toy, ref, 64) : 0;
        if (n_ref > 64) n_ref = 64;
        float extent = 1.0f;
        for (int i = 0; i < 2 * n_ref; i++) extent = fmaxf(extent, fabsf(ref[i]) * 1.3f);
        for (int i = 0; i < 2 * n; i++)
            if (isfinite(x[i])) extent = fmaxf(extent, fminf(fabsf(x[i]) * 1.05f, 100.0f));
        return gt_png_write_scatter(path, x, n, ref, n_ref, extent, 512);
    }
    if (shape.c != 1 && shape.c != 3)
        return GT_ERROR("%s: images with %d channels cannot be drawn (1 or 3)", path, shape.c);
    return gt_png_write_grid(path, x, n, shape.c, shape.h, shape.w, scale == GT_SCALE_SIGNED ? -1.0f : 0.0f, 1.0f, 0);
}

/* /noise must be this run's; /test_batch is written once; a resumed run
 * drops the steps after resumed_step. */
static gt_status prepare(gt_samples *sm, gt_h5 *f, gt_model *m, uint64_t seed, int64_t resumed_step) {
    int n = sm->n, nd[2] = {n, m->z_dim}, e;
    GT_TRY(gt_h5_exists(f, "noise", &e));
    if (e) {
        int rank, dims[GT_H5_MAX_RANK];
        GT_TRY(gt_h5_shape(f, "noise", &rank, dims));
        if (rank != 2 || dims[0] != n || dims[1] != m->z_dim)
            return GT_ERROR("%s holds /noise of another shape than samples.n = %d x z_dim = %d (it was made with "
                            "other settings): move it away",
                            sm->h5, n, m->z_dim);
        float *old = gt_alloc_floats((size_t)n * m->z_dim);
        gt_status st = gt_h5_read_floats(f, "noise", old, 2, nd);
        if (!st && memcmp(old, sm->noise, sizeof(float) * (size_t)n * m->z_dim) != 0)
            st = GT_ERROR("%s holds another /noise than this run's (made with another run.seed?): move it away", sm->h5);
        gt_free(old);
        GT_TRY(st);
    } else {
        GT_TRY(gt_h5_write_floats(f, "noise", sm->noise, 2, nd));
        GT_TRY(gt_h5_set_attr_int64(f, NULL, "seed", (int64_t)seed));
        GT_TRY(gt_h5_set_attr_str(f, NULL, "model", gt_model_kind_name(m->kind)));
        GT_TRY(gt_h5_set_attr_str(f, NULL, "noise_rng",
                                  "row i = Philox normal(seed, purpose FIXED_NOISE, step 0, index i)"));
        if (!sm->points) {
            GT_TRY(gt_h5_set_attr_double(f, NULL, "range_min", sm->scale == GT_SCALE_SIGNED ? -1.0 : 0.0));
            GT_TRY(gt_h5_set_attr_double(f, NULL, "range_max", 1.0));
        }
    }
    if (sm->test_batch) {
        int td[4] = {sm->n_test, sm->shape.c, sm->shape.h, sm->shape.w};
        GT_TRY(gt_h5_exists(f, "test_batch", &e));
        if (!e) GT_TRY(gt_h5_write_floats(f, "test_batch", sm->test_batch, 4, td));
    }
    char **names;
    int nn;
    GT_TRY(gt_h5_list(f, NULL, 1, &names, &nn));
    gt_status st = GT_OK;
    for (int i = 0; i < nn && !st; i++) {
        const char *p = strstr(names[i], "step-");
        if (p && strtoll(p + 5, NULL, 10) > (resumed_step >= 0 ? resumed_step : 0)) st = gt_h5_delete(f, names[i]);
    }
    gt_h5_free_names(names, nn);
    return st;
}

gt_status gt_samples_open(const char *run_dir, gt_model *m, int n, uint64_t seed, gt_source *test,
                          int64_t resumed_step, gt_samples **out) {
    *out = NULL;
    gt_samples *sm = gt_alloc(sizeof *sm);
    snprintf(sm->h5, sizeof sm->h5, "%s/samples.h5", run_dir);
    snprintf(sm->png, sizeof sm->png, "%s/samples.png", run_dir);
    snprintf(sm->png_live, sizeof sm->png_live, "%s/samples-live.png", run_dir);
    sm->n = n;
    sm->shape = m->data_shape;
    sm->scale = gt_model_pixel_scale(m);
    sm->points = test->points;
    sm->toy = test->toy;
    sm->noise = gt_alloc_floats((size_t)n * m->z_dim);
    gt_samples_noise(seed, n, m->z_dim, sm->noise);
    if (m->info->reconstruct) {
        sm->n_test = n < test->n ? n : (int)test->n;
        sm->test_batch = gt_alloc_floats((size_t)sm->n_test * gt_shape_size(sm->shape));
        int64_t *idx = gt_alloc(sizeof(int64_t) * (size_t)sm->n_test);
        for (int i = 0; i < sm->n_test; i++) idx[i] = i;
        gt_status rst = gt_source_read(test, idx, sm->n_test, sm->scale, sm->test_batch, NULL);
        gt_free(idx);
        if (rst) {
            gt_samples_close(sm);
            return gt_error_trace(__FILE__, __LINE__, rst);
        }
    }
    gt_h5 *f = NULL;
    int damaged = 0;
    gt_status st = gt_run_file_open(sm->h5, SAMPLES_FORMAT, &f, &damaged);
    if (st && damaged) {
        /* the samples are pictures of the past; a file that cannot be opened
         * (left open by a killed run, truncated) is set aside, not fatal */
        st = gt_run_file_set_aside(run_dir, sm->h5, gt_error_message(),
                                   "started a new samples.h5 (the earlier samples are in the moved file)");
        if (!st) st = gt_run_file_open(sm->h5, SAMPLES_FORMAT, &f, &damaged);
    }
    if (!st) st = prepare(sm, f, m, seed, resumed_step);
    if (!st) st = gt_h5_close(f);
    else gt_h5_discard(f);
    if (st) {
        gt_samples_close(sm);
        return st;
    }
    *out = sm;
    return GT_OK;
}

static gt_status write_images(gt_h5 *f, const char *name, const float *x, const int *dims, int64_t step) {
    GT_TRY(gt_h5_write_floats(f, name, x, 4, dims));
    return gt_h5_set_attr_int64(f, name, "step", step);
}

/* With an EMA generator, /step-X and samples.png are its samples and
 * /live/step-X and samples-live.png the live generator's. */
gt_status gt_samples_write(gt_samples *sm, gt_model *m, int64_t step) {
    int n = sm->n, ema = gt_model_has_ema(m);
    size_t size = gt_shape_size(sm->shape);
    float *img = gt_alloc_floats((size_t)n * size), *live = ema ? gt_alloc_floats((size_t)n * size) : NULL;
    float *rec = sm->test_batch ? gt_alloc_floats((size_t)sm->n_test * size) : NULL;
    gt_model_generate(m, sm->noise, n, ema ? live : img);
    if (ema) {
        gt_model_swap_ema(m);
        gt_model_generate(m, sm->noise, n, img);
        gt_model_swap_ema(m);
    }
    if (rec) gt_model_reconstruct(m, sm->test_batch, sm->n_test, rec);
    char name[64];
    int dims[4] = {n, sm->shape.c, sm->shape.h, sm->shape.w}, td[4] = {sm->n_test, sm->shape.c, sm->shape.h, sm->shape.w};
    gt_h5 *f;
    gt_status st = gt_h5_open(sm->h5, 1, &f);
    if (!st) {
        snprintf(name, sizeof name, "step-%08" PRId64, step);
        st = write_images(f, name, img, dims, step);
        if (!st && ema) st = gt_h5_set_attr_str(f, name, "generator", "ema");
        snprintf(name, sizeof name, "live/step-%08" PRId64, step);
        if (!st && live) st = write_images(f, name, live, dims, step);
        if (!st && live) st = gt_h5_set_attr_str(f, name, "generator", "live");
        snprintf(name, sizeof name, "recon/step-%08" PRId64, step);
        if (!st && rec) st = write_images(f, name, rec, td, step);
        if (!st) st = gt_h5_close(f);
        else gt_h5_discard(f);
    }
    if (!st) st = gt_samples_png(sm->png, img, n, sm->shape, sm->scale, sm->points, sm->toy);
    if (!st && live) st = gt_samples_png(sm->png_live, live, n, sm->shape, sm->scale, sm->points, sm->toy);
    gt_free(img);
    gt_free(live);
    gt_free(rec);
    return st;
}

void gt_samples_close(gt_samples *sm) {
    if (!sm) return;
    gt_free(sm->noise);
    gt_free(sm->test_batch);
    gt_free(sm);
}
