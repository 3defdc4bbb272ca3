/* The distributed sampler (include/gentrain/data.h).
 *
 * Epoch e's permutation of [0, n): start from the identity and, for
 * i = n-1 down to 1, swap perm[i] with perm[j], j uniform in [0, i]
 * (Fisher-Yates). The draw for position i is gt_rand_u64(seed, SHUFFLE/0,
 * epoch, 0, i), made unbiased by rejection: words below 2^64 mod (i+1) are
 * rejected and redrawn from index 1, 2, ... (element i), which happens with
 * probability < n / 2^64. Every rank computes the same permutation. */
#include "gentrain/core.h"
#include "gentrain/data.h"

/* Uniform integer in [0, bound) for Fisher-Yates position i. */
static uint64_t bounded_draw(uint64_t seed, uint64_t epoch, uint64_t i, uint64_t bound) {
    const uint32_t purpose = GT_PURPOSE(GT_RNG_SHUFFLE, 0);
    const uint64_t threshold = (0 - bound) % bound; /* = 2^64 mod bound */
    for (uint64_t attempt = 0;; attempt++) {
        uint64_t x = gt_rand_u64(seed, purpose, epoch, attempt, i);
        if (x >= threshold) return x % bound;
    }
}

static void make_perm(gt_sampler *s) {
    int64_t *p = s->perm;
    for (int64_t i = 0; i < s->n; i++) p[i] = i;
    for (int64_t i = s->n - 1; i > 0; i--) {
        int64_t j = (int64_t)bounded_draw(s->seed, (uint64_t)s->epoch, (uint64_t)i, (uint64_t)i + 1);
        int64_t t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
}

void gt_sampler_init(gt_sampler *s, int64_t n, int batch, int rank, int world, uint64_t seed) {
    GT_ASSERT(s != NULL, "gt_sampler_init: NULL sampler");
    GT_ASSERT(n > 0, "sampler: the dataset is empty (n = %lld)", (long long)n);
    GT_ASSERT(batch > 0, "sampler: batch size must be positive (batch = %d)", batch);
    GT_ASSERT(world > 0, "sampler: world size must be positive (world = %d)", world);
    GT_ASSERT(rank >= 0 && rank < world, "sampler: rank %d is outside [0, %d)", rank, world);
    int64_t global = (int64_t)world * batch;
    s->steps_per_epoch = n / global;
    GT_ASSERT(s->steps_per_epoch > 0,
             "sampler: dataset of %lld examples is smaller than one global batch (world %d x batch %d = %lld)",
             (long long)n, world, batch, (long long)global);
    s->n = n;
    s->batch = batch;
    s->rank = rank;
    s->world = world;
    s->seed = seed;
    s->epoch = 0;
    s->cursor = 0;
    s->perm = gt_alloc((size_t)n * sizeof(int64_t));
    make_perm(s);
}

void gt_sampler_seek(gt_sampler *s, int64_t epoch, int64_t cursor) {
    GT_ASSERT(s != NULL && s->perm != NULL, "gt_sampler_seek: sampler not initialized");
    GT_ASSERT(epoch >= 0, "sampler: cannot seek to negative epoch %lld", (long long)epoch);
    GT_ASSERT(cursor >= 0 && cursor <= s->steps_per_epoch,
             "sampler: cannot seek to step %lld of epoch %lld: an epoch has %lld steps (n %lld, world %d, batch %d)",
             (long long)cursor, (long long)epoch, (long long)s->steps_per_epoch, (long long)s->n, s->world,
             s->batch);
    s->epoch = epoch;
    s->cursor = cursor;
    make_perm(s);
}

/* idx: [batch]; idx[j] = perm[cursor*world*batch + rank + j*world] */
void gt_sampler_next(gt_sampler *s, int64_t *idx) {
    GT_ASSERT(s != NULL && s->perm != NULL, "gt_sampler_next: sampler not initialized");
    if (s->cursor >= s->steps_per_epoch) {
        s->epoch++;
        s->cursor = 0;
        make_perm(s);
    }
    const int64_t base = s->cursor * (int64_t)s->world * s->batch + s->rank;
    for (int j = 0; j < s->batch; j++) idx[j] = s->perm[base + (int64_t)j * s->world];
    s->cursor++;
}

void gt_sampler_free(gt_sampler *s) {
    if (!s) return;
    gt_free(s->perm);
    s->perm = NULL;
}
