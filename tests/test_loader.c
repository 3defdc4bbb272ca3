/* Sources and the loader (src/data/source.c, src/data/loader.c), without
 * files: an in-memory dataset as a source gives gt_dataset_batch's floats;
 * the shard cache holds exactly its range; the loader, at every read-ahead
 * depth, gives the batches of the sampler's indices in order (across epoch
 * ends), reads no batch beyond the count it was given, pauses (no read runs
 * while paused) and resumes, passes a read error on with its message, and
 * stops cleanly with batches still in flight, and follows a rewound sampler
 * after gt_loader_reseek (a divergence rollback); with 2 threads per rank,
 * the reader thread starts no threads of its own. Run under ASan/UBSan too. */
#include <dirent.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "gentrain/core.h"
#include "gentrain/data.h"

#define N 200
#define SIZE 12 /* 3x2x2 */

/* A dataset of N examples 3x2x2: pixel k of example e is (e*7 + k*31) % 256, label e % 5. */
static void make_dataset(gt_dataset *ds) {
    memset(ds, 0, sizeof *ds);
    ds->n = N;
    ds->shape = (gt_shape){3, 2, 2};
    ds->pixels = gt_alloc(N * SIZE);
    ds->labels = gt_alloc(N * sizeof(int));
    for (int e = 0; e < N; e++) {
        for (int k = 0; k < SIZE; k++) ds->pixels[e * SIZE + k] = (uint8_t)((e * 7 + k * 31) % 256);
        ds->labels[e] = e % 5;
    }
    ds->n_classes = 5;
    ds->toy = GT_TOY_NONE;
    snprintf(ds->source, sizeof ds->source, "test-dataset");
}

static void test_memory_source(void) {
    gt_dataset ref, ds;
    make_dataset(&ref);
    make_dataset(&ds);
    gt_source *s = gt_source_memory(&ds);
    CHECK(ds.pixels == NULL && s->n == N && s->has_labels && s->n_classes == 5 && !s->points &&
              gt_shape_eq(s->shape, ref.shape),
          "the memory source takes the dataset over and describes it");
    int64_t idx[5] = {3, 199, 0, 3, 57};
    float a[5 * SIZE], b[5 * SIZE];
    int la[5], lb[5];
    CHECK_OK(gt_source_read(s, idx, 5, GT_SCALE_SIGNED, a, la));
    gt_dataset_batch(&ref, idx, 5, GT_SCALE_SIGNED, b, lb);
    CHECK(!memcmp(a, b, sizeof a) && !memcmp(la, lb, sizeof la), "memory source = gt_dataset_batch, bit for bit");
    CHECK(s->rows_read == 5, "rows_read counts the examples read: %lld", (long long)s->rows_read);
    /* gt_pixels_to_floats is the same scaling */
    float c[SIZE];
    gt_pixels_to_floats(ref.pixels + 57 * SIZE, SIZE, GT_SCALE_UNIT, c);
    gt_dataset_batch(&ref, &idx[4], 1, GT_SCALE_UNIT, b, NULL);
    CHECK(!memcmp(c, b, sizeof c), "gt_pixels_to_floats scales as gt_dataset_batch");

    /* the shard cache: [50, 130) */
    CHECK_OK(gt_source_cache(&s, 50, 80, 5 * SIZE));
    CHECK(s->resident == 80 * (SIZE + (int64_t)sizeof(int)), "the cache holds its 80 examples: %lld bytes",
          (long long)s->resident);
    int64_t in[4] = {129, 50, 77, 77};
    CHECK_OK(gt_source_read(s, in, 4, GT_SCALE_UNIT, a, la));
    gt_dataset_batch(&ref, in, 4, GT_SCALE_UNIT, b, lb);
    CHECK(!memcmp(a, b, 4 * SIZE * sizeof(float)) && !memcmp(la, lb, 4 * sizeof(int)),
          "the cached shard reads as the dataset");
    CHECK(s->rows_read == 5 + 80, "rows_read: the cache read its 80 examples once (%lld)", (long long)s->rows_read);
    gt_source_close(s);
    gt_dataset_free(&ref);
}

static void read_outside_cache(const void *arg) {
    (void)arg;
    gt_dataset ds;
    make_dataset(&ds);
    gt_source *s = gt_source_memory(&ds);
    if (gt_source_cache(&s, 10, 10, 1 << 20)) return;
    int64_t idx = 25;
    float x[SIZE];
    gt_source_read(s, &idx, 1, GT_SCALE_UNIT, x, NULL);
}

/* ---- the loader -------------------------------------------------------- */

/* A source that counts its reads, can be slow, checks that no read runs while
 * the loader is paused, and fails at one given read. */
typedef struct {
    gt_dataset ds;
    atomic_int reads, in_read, paused, read_while_paused;
    int fail_at; /* read number (1-based) that fails, 0 = none */
    long sleep_ns;
} fake_t;

static gt_status fake_read(gt_source *s, const int64_t *idx, int B, gt_pixel_scale scale, float *x, int *labels) {
    fake_t *f = s->impl;
    atomic_store(&f->in_read, 1);
    if (atomic_load(&f->paused)) atomic_store(&f->read_while_paused, 1);
    int r = atomic_fetch_add(&f->reads, 1) + 1;
    if (f->sleep_ns) {
        struct timespec ts = {0, f->sleep_ns};
        nanosleep(&ts, NULL);
    }
    gt_dataset_batch(&f->ds, idx, B, scale, x, labels);
    s->rows_read += B;
    atomic_store(&f->in_read, 0);
    if (r == f->fail_at) return GT_ERROR("fake: read %d fails (the disk is on fire)", r);
    return GT_OK;
}

static void fake_close(gt_source *s) {
    fake_t *f = s->impl;
    gt_dataset_free(&f->ds);
    gt_free(f);
}

static const gt_source_ops fake_ops = {fake_read, NULL, fake_close};

static gt_source *fake_source(int fail_at, long sleep_ns) {
    gt_source *s = gt_alloc(sizeof *s);
    fake_t *f = gt_alloc(sizeof *f);
    make_dataset(&f->ds);
    f->fail_at = fail_at;
    f->sleep_ns = sleep_ns;
    s->ops = &fake_ops;
    s->impl = f;
    s->n = N;
    s->shape = f->ds.shape;
    s->has_labels = 1;
    s->n_classes = 5;
    snprintf(s->name, sizeof s->name, "fake");
    return s;
}

/* count batches of batch 16 from 1 rank of 2 (12 steps of 6 per epoch: crosses epoch ends). */
static void loader_run(int depth, int local, long sleep_ns) {
    gt_dataset ref;
    make_dataset(&ref);
    gt_source *src = fake_source(0, sleep_ns);
    fake_t *f = src->impl;
    gt_sampler s;
    if (local) gt_sampler_init_shard(&s, N, 16, 1, 2, 3);
    else gt_sampler_init(&s, N, 16, 1, 2, 3);
    gt_sampler_seek(&s, 1, 2); /* as after a resume */
    const int count = 17;
    gt_loader *l;
    gt_loader_new(src, &s, count, depth, GT_SCALE_SIGNED, 1, &l);
    int64_t idx[16];
    float want[16 * SIZE];
    int wl[16], same = 1, paused_ok = 1, peek_ok = 1;
    float *peeked = NULL, peeked_copy[16 * SIZE];
    for (int k = 0; k < count; k++) {
        gt_sampler_next(&s, idx);
        float *x;
        int *labels;
        CHECK_OK(gt_loader_next(l, idx, &x, &labels));
        gt_dataset_batch(&ref, idx, 16, GT_SCALE_SIGNED, want, wl);
        same &= labels && !memcmp(x, want, sizeof want) && !memcmp(labels, wl, sizeof wl);
        /* the batch lent out by the last peek is this one, unchanged */
        if (peeked) peek_ok &= peeked == x && !memcmp(peeked_copy, want, sizeof want);
        peeked = gt_loader_peek(l);
        peek_ok &= (peeked != NULL) == (depth > 0 && k + 1 < count);
        if (peeked) memcpy(peeked_copy, peeked, sizeof peeked_copy);
        gt_loader_pause(l);
        atomic_store(&f->paused, 1);
        paused_ok &= !atomic_load(&f->in_read);
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL); /* a paused reader must not start a read meanwhile */
        atomic_store(&f->paused, 0);
        gt_loader_resume(l);
    }
    gt_loader_free(l);
    CHECK(same, "depth %d%s: the loader's batches are the sampler's, in order, across epoch ends", depth,
          local ? " (local shards)" : "");
    CHECK(paused_ok && !atomic_load(&f->read_while_paused), "depth %d: no read runs while the loader is paused",
          depth);
    CHECK(peek_ok, "depth %d: gt_loader_peek lends out the next batch (none at depth 0 or after the last)", depth);
    CHECK(atomic_load(&f->reads) == count && src->rows_read == count * 16,
          "depth %d: exactly %d reads (%d), none beyond the announced count", depth, count, atomic_load(&f->reads));
    gt_sampler_free(&s);
    gt_source_close(src);
    gt_dataset_free(&ref);
}

static void loader_error(int depth) {
    gt_source *src = fake_source(3, 0);
    gt_sampler s;
    gt_sampler_init(&s, N, 10, 0, 1, 1);
    gt_loader *l;
    gt_loader_new(src, &s, 10, depth, GT_SCALE_UNIT, 0, &l);
    int64_t idx[10];
    float *x;
    int *labels;
    for (int k = 0; k < 2; k++) {
        gt_sampler_next(&s, idx);
        CHECK_OK(gt_loader_next(l, idx, &x, &labels));
        CHECK(labels == NULL, "labels not asked for: none given");
    }
    CHECK(gt_loader_peek(l) == NULL, "depth %d: no peek at a batch whose read failed", depth);
    gt_sampler_next(&s, idx);
    CHECK_ERROR(gt_loader_next(l, idx, &x, &labels), "a failing read", "read 3 fails (the disk is on fire)");
    gt_loader_free(l); /* with batches in flight (depth > 0) */
    gt_sampler_free(&s);
    gt_source_close(src);
}

/* Stopping while the reader thread is busy with slow reads. */
static void loader_early_free(void) {
    gt_source *src = fake_source(0, 2000000);
    gt_sampler s;
    gt_sampler_init(&s, N, 8, 0, 1, 1);
    gt_loader *l;
    gt_loader_new(src, &s, 1000, 4, GT_SCALE_UNIT, 1, &l);
    int64_t idx[8];
    float *x;
    int *labels;
    gt_sampler_next(&s, idx);
    CHECK_OK(gt_loader_next(l, idx, &x, &labels));
    gt_loader_free(l);
    fake_t *f = src->impl;
    CHECK(atomic_load(&f->reads) <= 6, "freed early: the reader stopped after at most depth + 1 reads (%d)",
          atomic_load(&f->reads));
    gt_sampler_free(&s);
    gt_source_close(src);
}

/* A divergence rollback: after 7 batches the training sampler goes back to
 * (epoch 0, step 3) and the loader is reseeked to it (paused or not, as rank
 * 0 and the others are), with batches read ahead and one held; from then on
 * its batches are the rewound sampler's, and it reads none beyond the new
 * count. The caller may write into the batch it holds (the NaN test hook). */
static void loader_reseek(int depth, int paused) {
    gt_dataset ref;
    make_dataset(&ref);
    gt_source *src = fake_source(0, 0);
    fake_t *f = src->impl;
    gt_sampler s;
    gt_sampler_init(&s, N, 16, 0, 2, 5);
    gt_loader *l;
    gt_loader_new(src, &s, 20, depth, GT_SCALE_SIGNED, 1, &l);
    int64_t idx[16];
    float want[16 * SIZE], *x;
    int wl[16], *labels, same = 1;
    for (int k = 0; k < 7; k++) {
        gt_sampler_next(&s, idx);
        CHECK_OK(gt_loader_next(l, idx, &x, &labels));
        x[0] = 1e30f; /* the held batch is the caller's to write */
    }
    struct timespec ts = {0, 1000000};
    for (int w = 0; w < 2000 && atomic_load(&f->reads) < 7 + depth; w++)
        nanosleep(&ts, NULL); /* the reader thread fills its ring: depth batches ahead of the held one */
    int before = atomic_load(&f->reads);
    if (paused) gt_loader_pause(l);
    gt_sampler_seek(&s, 0, 3);
    const int left = 9;
    gt_loader_reseek(l, &s, left);
    if (paused) gt_loader_resume(l);
    for (int k = 0; k < left; k++) {
        gt_sampler_next(&s, idx);
        CHECK_OK(gt_loader_next(l, idx, &x, &labels));
        gt_dataset_batch(&ref, idx, 16, GT_SCALE_SIGNED, want, wl);
        same &= labels && !memcmp(x, want, sizeof want) && !memcmp(labels, wl, sizeof wl);
    }
    nanosleep(&ts, NULL);
    int after = atomic_load(&f->reads);
    gt_loader_free(l);
    CHECK(same, "depth %d%s: after a reseek the loader's batches are the rewound sampler's", depth,
          paused ? " (paused)" : "");
    CHECK(after - before == left && before == 7 + depth, "depth %d%s: %d reads after the reseek (%d), %d before (%d)",
          depth, paused ? " (paused)" : "", left, after - before, before, 7 + depth);
    gt_sampler_free(&s);
    gt_source_close(src);
    gt_dataset_free(&ref);
}

static void loader_wrong_indices(const void *arg) {
    (void)arg;
    gt_source *src = fake_source(0, 0);
    gt_sampler s;
    gt_sampler_init(&s, N, 8, 0, 1, 1);
    gt_loader *l;
    gt_loader_new(src, &s, 4, 1, GT_SCALE_UNIT, 1, &l);
    int64_t idx[8] = {0};
    float *x;
    int *labels;
    gt_loader_next(l, idx, &x, &labels);
}

/* The threads of this process: the entries of /proc/self/task. */
static int count_threads(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* With run.threads = 2 the training thread's OpenMP team is the only one:
 * a second team on the reader thread would give libgomp more threads than
 * cores, and it then sleeps at every barrier of the step instead of spinning.
 * Batches of 64 Fashion-MNIST-sized examples are large enough that an OpenMP
 * loop over them would run in parallel. */
static void loader_starts_no_threads(void) {
    gt_dataset ds;
    memset(&ds, 0, sizeof ds);
    const int n = 256, size = 28 * 28;
    ds.n = n;
    ds.shape = (gt_shape){1, 28, 28};
    ds.pixels = gt_alloc((size_t)n * size);
    for (int k = 0; k < n * size; k++) ds.pixels[k] = (uint8_t)(k % 251);
    ds.toy = GT_TOY_NONE;
    snprintf(ds.source, sizeof ds.source, "threads-dataset");
    gt_set_threads(2);
    int before = count_threads();
    gt_source *src = gt_source_memory(&ds);
    gt_sampler s;
    gt_sampler_init(&s, n, 64, 0, 1, 5);
    gt_loader *l;
    gt_loader_new(src, &s, 8, 3, GT_SCALE_SIGNED, 0, &l);
    int64_t idx[64];
    for (int k = 0; k < 8; k++) {
        gt_sampler_next(&s, idx);
        float *x;
        int *labels;
        CHECK_OK(gt_loader_next(l, idx, &x, &labels));
    }
    int during = count_threads();
    gt_loader_free(l);
    CHECK(before >= 1 && during == before + 1,
          "2 threads: the loader adds its reader thread and nothing else (%d threads before, %d while reading)",
          before, during);
    gt_set_threads(1);
    gt_sampler_free(&s);
    gt_source_close(src);
}

int main(void) {
    test_memory_source();
    CHECK_PANICS("an index outside the cached shard", read_outside_cache, NULL, "example 25",
                 "cached shard [10, 20)");
    for (int depth = 0; depth <= 3; depth++) loader_run(depth, 0, 0);
    loader_run(2, 1, 0);
    loader_run(1, 0, 300000); /* a slow source: the training thread waits for batches */
    loader_error(0);
    loader_error(2);
    loader_early_free();
    for (int depth = 0; depth <= 3; depth++) {
        loader_reseek(depth, 0);
        loader_reseek(depth, 1);
    }
    loader_starts_no_threads();
    CHECK_PANICS("indices that are not the loader's (a bug)", loader_wrong_indices, NULL, "the sampler gave");
    return check_report("test_loader");
}
