/* Unit test of checkpoints (src/io/checkpoint.c): save/load round trip bit
 * for bit, listing, pruning, setting damaged files aside, verification of
 * checksums and of structure (a file that verifies but lacks a tensor or has
 * one of another shape), and a bit-flip sweep: a checkpoint with any one bit
 * flipped (at ~300 spread offsets) either fails verification or still loads
 * to exactly the same state: corruption is never silently accepted. */
#include "check.h"

#include "gentrain/app.h"
#include "gentrain/checkpoint.h"
#include "gentrain/config.h"
#include "gentrain/core.h"
#include "gentrain/io.h"
#include "gentrain/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char ini[] =
    "[model]\ntype = gan\nz_dim = 4\n[train]\nsteps = 1\n[data]\nkind = toy\n"
    "[generator]\nlayer1 = dense out=16\nlayer2 = batchnorm\nlayer3 = relu\nlayer4 = dense out=2\n"
    "[discriminator]\nlayer1 = dense out=16\nlayer2 = relu\nlayer3 = dense out=1\n"
    "[optim]\nkind = adam\nlr = 1e-3\n";

static gt_model *build_from(const char *text, uint64_t seed) {
    gt_config *cfg = NULL;
    gt_options o;
    gt_model *m = NULL;
    CHECK_OK(gt_config_parse(text, "test.ini", &cfg));
    CHECK_OK(gt_options_from_config(cfg, "test.ini", &o));
    CHECK_OK(gt_model_build(&o.model, (gt_shape){2, 1, 1}, 1, 8, seed, &m));
    if (!m) gt_panic("test: cannot build the model");
    gt_options_free(&o);
    gt_config_free(cfg);
    return m;
}
static gt_model *build(uint64_t seed) { return build_from(ini, seed); }

/* 1 if every buffer of a and b is bitwise equal */
static int same_model(const gt_model *a, const gt_model *b) {
    for (int k = 0; k < a->n_nets; k++) {
        size_t n = a->net[k].n_params;
        if (memcmp(a->net[k].params, b->net[k].params, n * 4) || memcmp(a->opt[k].m, b->opt[k].m, n * 4) ||
            memcmp(a->opt[k].v, b->opt[k].v, n * 4) || a->opt[k].t != b->opt[k].t ||
            memcmp(a->net[k].state, b->net[k].state, a->net[k].n_state * 4))
            return 0;
    }
    return 1;
}

static unsigned char *slurp(const char *path, long *size) {
    FILE *f = fopen(path, "rb");
    if (!f) gt_panic("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)*size);
    if (!buf || fread(buf, 1, (size_t)*size, f) != (size_t)*size) gt_panic("cannot read %s", path);
    fclose(f);
    return buf;
}

static void spill(const char *path, const unsigned char *buf, long size) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, (size_t)size, f) != (size_t)size || fclose(f) != 0) gt_panic("cannot write %s", path);
}

int main(void) {
    char dir[] = "/tmp/gentrain-test-ckpt.XXXXXX";
    if (!mkdtemp(dir)) gt_panic("mkdtemp failed");

    /* a model with non-trivial optimizer and BN state */
    gt_model *a = build(1);
    for (int k = 0; k < a->n_nets; k++) {
        for (size_t i = 0; i < a->net[k].n_params; i++) {
            a->opt[k].m[i] = (float)i * 1e-3f - 0.1f;
            a->opt[k].v[i] = (float)i * 1e-6f;
        }
        for (size_t i = 0; i < a->net[k].n_state; i++) a->net[k].state[i] = 0.5f + (float)i;
        a->opt[k].t = 7 + k;
    }
    gt_ckpt_info info = {.step = 12, .epoch = 3, .cursor = 2, .world_size = 2, .batch_size = 8, .n_train = 100,
                         .seed = 1, .data_shape = {2, 1, 1}, .n_classes = 1};
    CHECK_OK(gt_ckpt_save(dir, a, &info, ini));
    char path[512];
    CHECK_OK(gt_ckpt_path(dir, 12, path, sizeof path));
    CHECK_OK(gt_ckpt_verify(path));
    gt_model *b = build(2);
    CHECK(!same_model(a, b), "models of two seeds are equal");
    CHECK_OK(gt_ckpt_check_model(path, b));
    CHECK_OK(gt_ckpt_load(path, b));
    CHECK(same_model(a, b), "loaded state differs from the saved one");
    gt_ckpt_info back;
    char *text = NULL, *kind = NULL;
    CHECK_OK(gt_ckpt_read_info(path, &back, &text, &kind));
    CHECK(back.step == 12 && back.epoch == 3 && back.cursor == 2 && back.world_size == 2 && back.batch_size == 8 &&
              back.n_train == 100 && back.seed == 1 && back.data_shape.c == 2,
          "info round trip");
    CHECK(text && kind && !strcmp(text, ini) && !strcmp(kind, "gan"), "config/model round trip");
    gt_free(text);
    gt_free(kind);

    /* listing and pruning */
    info.step = 13;
    CHECK_OK(gt_ckpt_save(dir, a, &info, ini));
    info.step = 9;
    CHECK_OK(gt_ckpt_save(dir, a, &info, ini));
    char **paths;
    int64_t *steps;
    int n;
    CHECK_OK(gt_ckpt_list(dir, &paths, &steps, &n));
    CHECK(n == 3 && steps[0] == 13 && steps[1] == 12 && steps[2] == 9, "list newest first");
    gt_ckpt_free_list(paths, steps, n);
    CHECK_OK(gt_ckpt_prune(dir, 2));
    CHECK_OK(gt_ckpt_list(dir, &paths, &steps, &n));
    CHECK(n == 2 && steps[0] == 13 && steps[1] == 12, "prune keeps the 2 newest");
    gt_ckpt_free_list(paths, steps, n);

    /* structure: another architecture, a missing tensor, a wrong shape */
    gt_model *other = build_from("[model]\ntype = gan\nz_dim = 4\n[train]\nsteps = 1\n[data]\nkind = toy\n"
                                 "[generator]\nlayer1 = dense out=8\nlayer2 = relu\nlayer3 = dense out=2\n"
                                 "[discriminator]\nlayer1 = dense out=16\nlayer2 = relu\nlayer3 = dense out=1\n", 1);
    CHECK_ERROR(gt_ckpt_check_model(path, other), "another architecture", "step-00000012.h5", "00_dense/weight",
                "another shape");
    CHECK_ERROR(gt_ckpt_load(path, other), "load into another architecture", "another shape");
    gt_model_free(other);
    char damaged[600];
    snprintf(damaged, sizeof damaged, "%s/step-00000020.h5", dir);
    info.step = 20;
    CHECK_OK(gt_ckpt_save(dir, a, &info, ini));
    gt_h5 *f = NULL;
    CHECK_OK(gt_h5_open(damaged, 1, &f));
    CHECK_OK(gt_h5_delete(f, "/optim/discriminator/v"));
    CHECK_OK(gt_h5_close(f));
    CHECK_OK(gt_ckpt_verify(damaged)); /* the checksums are fine ... */
    CHECK_ERROR(gt_ckpt_check_model(damaged, b), "a missing /optim/v", "no Adam second moments"); /* ... the structure is not */
    char moved[700];
    CHECK_OK(gt_ckpt_set_aside(dir, damaged, moved, sizeof moved));
    CHECK(strstr(moved, "/damaged/step-00000020.h5") && access(moved, F_OK) == 0 && access(damaged, F_OK) != 0,
          "set aside into damaged/: %s", moved);
    CHECK_OK(gt_ckpt_save(dir, a, &info, ini));
    CHECK_OK(gt_ckpt_set_aside(dir, damaged, moved, sizeof moved));
    CHECK(strstr(moved, "/damaged/step-00000020.h5.1") != NULL, "a second one is not overwritten: %s", moved);
    CHECK_OK(gt_ckpt_list(dir, &paths, &steps, &n));
    CHECK(n == 2 && steps[0] == 13, "damaged/ is not listed");
    gt_ckpt_free_list(paths, steps, n);

    /* the bit-flip sweep */
    long size;
    unsigned char *orig = slurp(path, &size);
    char flipped[600];
    snprintf(flipped, sizeof flipped, "%s/step-00000012.h5", dir); /* the name must match the step */
    char copy[600];
    snprintf(copy, sizeof copy, "%s/orig.h5", dir);
    spill(copy, orig, size);
    int detected = 0, harmless = 0, silent = 0, trials = 0;
    long stride = size / 300 + 1;
    for (long off = 0; off < size; off += stride, trials++) {
        unsigned char *buf = malloc((size_t)size);
        memcpy(buf, orig, (size_t)size);
        buf[off] ^= (unsigned char)(1u << (trials % 8));
        spill(flipped, buf, size);
        free(buf);
        if (gt_ckpt_verify(flipped) != GT_OK) {
            gt_error_clear();
            detected++;
            continue;
        }
        gt_model *c = build(3);
        gt_ckpt_info ci;
        char *t2 = NULL, *k2 = NULL;
        gt_status st = gt_ckpt_load(flipped, c);
        if (!st) st = gt_ckpt_read_info(flipped, &ci, &t2, &k2);
        if (st) {
            detected++; /* verified, but the load noticed */
            gt_error_clear();
        } else if (same_model(a, c) && !memcmp(&ci, &back, sizeof ci) && !strcmp(t2, ini) && !strcmp(k2, "gan"))
            harmless++;
        else {
            silent++;
            fprintf(stderr, "bit flip at offset %ld of %ld went undetected and changed the state\n", off, size);
        }
        gt_free(t2);
        gt_free(k2);
        gt_model_free(c);
    }
    printf("bit-flip sweep: %d flips, %d detected, %d harmless (unused bytes), %d silent\n", trials, detected,
           harmless, silent);
    CHECK(silent == 0, "%d bit flips changed the state without being detected", silent);
    CHECK(detected > trials / 2, "only %d of %d flips detected", detected, trials);
    free(orig);

    /* truncation at several lengths: always detected */
    for (int i = 1; i <= 9; i++) {
        long cut = size * i / 10;
        unsigned char *buf = slurp(copy, &size);
        spill(flipped, buf, cut);
        free(buf);
        gt_status st = gt_ckpt_verify(flipped);
        CHECK(st != GT_OK, "checkpoint truncated to %ld of %ld bytes verifies", cut, size);
        gt_error_clear();
    }

    /* a model with a non-finite parameter (or state, or EMA value) is never written */
    {
        char sub[600];
        snprintf(sub, sizeof sub, "%s/nan", dir);
        info.step = 20;
        float keep = a->net[1].params[3];
        a->net[1].params[3] = NAN;
        CHECK_ERROR(gt_ckpt_save(sub, a, &info, ini), "NaN parameter", "refusing to write the checkpoint of step 20",
                    "discriminator 00_dense/weight[3] = nan", "never written");
        a->net[1].params[3] = keep;
        a->net[0].state[1] = INFINITY;
        CHECK_ERROR(gt_ckpt_save(sub, a, &info, ini), "Inf BN statistic", "generator 01_batchnorm/running_mean[1] = inf");
        a->net[0].state[1] = 0.5f;
        CHECK(access(sub, F_OK) != 0, "nothing was written for the refused checkpoints");
    }
    /* the EMA generator and the rollback attributes round trip */
    {
        char text2[2048];
        const char *z = strstr(ini, "z_dim = 4\n") + strlen("z_dim = 4\n");
        snprintf(text2, sizeof text2, "%.*sg_ema = 0.99\n%s", (int)(z - ini), ini, z);
        gt_model *e = build_from(text2, 3), *f = build_from(text2, 4);
        CHECK(gt_model_has_ema(e) && !memcmp(e->ema_params, e->net[0].params, sizeof(float) * e->net[0].n_params),
              "a new EMA generator starts as the generator");
        for (size_t i = 0; i < e->net[0].n_params; i++) e->ema_params[i] = (float)i * 1e-4f;
        for (size_t i = 0; i < e->net[0].n_state; i++) e->ema_state[i] = 2.0f + (float)i;
        info.step = 30;
        info.rollbacks = 2;
        info.lr_scale = 0.25;
        CHECK_OK(gt_ckpt_save(dir, e, &info, text2));
        CHECK_OK(gt_ckpt_path(dir, 30, path, sizeof path));
        CHECK_OK(gt_ckpt_verify(path));
        CHECK_OK(gt_ckpt_load(path, f));
        CHECK(!memcmp(e->ema_params, f->ema_params, sizeof(float) * e->net[0].n_params) &&
                  !memcmp(e->ema_state, f->ema_state, sizeof(float) * e->net[0].n_state),
              "the EMA generator round trip");
        gt_ckpt_info r2;
        CHECK_OK(gt_ckpt_read_info(path, &r2, NULL, NULL));
        CHECK(r2.rollbacks == 2 && r2.lr_scale == 0.25, "rollbacks %lld, lr_scale %g round trip", (long long)r2.rollbacks,
              r2.lr_scale);
        CHECK_OK(gt_ckpt_check_model(path, a)); /* a model without g_ema ignores /ema */
        info.step = 32;
        info.rollbacks = 0;
        CHECK_OK(gt_ckpt_save(dir, a, &info, ini));
        CHECK_OK(gt_ckpt_path(dir, 32, path, sizeof path));
        CHECK_ERROR(gt_ckpt_check_model(path, f), "a checkpoint without an EMA into a model with one",
                    "has no EMA generator", "g_ema = 0.99");
        e->ema_params[5] = NAN;
        info.step = 31;
        CHECK_ERROR(gt_ckpt_save(dir, e, &info, text2), "NaN in the EMA generator", "EMA generator 00_dense/weight[5]");
        gt_model_free(e);
        gt_model_free(f);
    }

    gt_model_free(a);
    gt_model_free(b);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    gt_h5_library_close();
    return check_report("test_ckpt");
}
