/* 2-D toy mixtures of Gaussians (the GAN mode-collapse benchmarks):
 * ring8 = 8 centres on the unit circle at angles 2*pi*k/8;
 * grid25 = 25 centres (2i-4, 2j-4), i, j in 0..4 (centre k = 5i + j).
 * Point i: centre c = gt_rand_u64(seed, TOY/0, 0, i, 0) % count, then
 * centre + std * (two normals from the stream (seed, TOY/1, 0, i)).
 * Labels are the centre indices (n_classes = count), for mode-coverage metrics. */
#include "gentrain/core.h"
#include "gentrain/data.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *const gt_toy_names[] = {"ring8", "grid25", NULL};

static int toy_count(gt_toy_kind kind) {
    switch (kind) {
    case GT_TOY_RING8: return 8;
    case GT_TOY_GRID25: return 25;
    default: gt_panic("toy data: unknown mixture kind %d (expected ring8 or grid25)", (int)kind);
    }
}

/* xy: [min(cap, count), 2] */
int gt_toy_centres(gt_toy_kind kind, float *xy, int cap) {
    int count = toy_count(kind);
    for (int k = 0; k < count && k < cap; k++) {
        if (kind == GT_TOY_RING8) {
            double a = 2.0 * GT_PI * k / 8.0;
            xy[2 * k] = (float)cos(a);
            xy[2 * k + 1] = (float)sin(a);
        } else {
            int i = k / 5, j = k % 5;
            xy[2 * k] = (float)(2 * i - 4);
            xy[2 * k + 1] = (float)(2 * j - 4);
        }
    }
    return count;
}

void gt_toy_make(gt_dataset *ds, gt_toy_kind kind, int64_t n, float std, uint64_t seed) {
    GT_ASSERT(ds != NULL, "gt_toy_make: NULL dataset");
    GT_ASSERT(n > 0, "toy data: number of points must be positive (n = %lld)", (long long)n);
    GT_ASSERT(isfinite(std) && std >= 0.0f, "toy data: std = %g must be finite and >= 0", (double)std);
    float centres[2 * 25];
    int count = gt_toy_centres(kind, centres, 25);
    memset(ds, 0, sizeof *ds);
    ds->values = gt_alloc_floats((size_t)n * 2);
    ds->labels = gt_alloc((size_t)n * sizeof(int));
    const uint32_t pc = GT_PURPOSE(GT_RNG_TOY, 0), pn = GT_PURPOSE(GT_RNG_TOY, 1);
    for (int64_t i = 0; i < n; i++) {
        int c = (int)(gt_rand_u64(seed, pc, 0, (uint64_t)i, 0) % (uint64_t)count);
        float e[2];
        gt_rand_normal(e, 2, seed, pn, 0, (uint64_t)i);
        ds->values[2 * i] = centres[2 * c] + std * e[0];
        ds->values[2 * i + 1] = centres[2 * c + 1] + std * e[1];
        ds->labels[i] = c;
    }
    ds->n = n;
    ds->shape.c = 2;
    ds->shape.h = 1;
    ds->shape.w = 1;
    ds->pixels = NULL;
    ds->n_classes = count;
    ds->toy = kind;
    ds->toy_std = std;
    snprintf(ds->source, sizeof ds->source, "toy:%s(n=%lld,std=%g,seed=%llu)",
             kind == GT_TOY_RING8 ? "ring8" : "grid25", (long long)n, (double)std, (unsigned long long)seed);
}
