/* The distributed sampler (include/gentrain/data.h).
 *
 * Epoch e's permutation of [0, n): start from the identity and, for
 * i = n-1 down to 1, swap perm[i] with perm[j], j uniform in [0, i]
 * (Fisher-Yates). The draw for position i is gt_rand_u64(seed, SHUFFLE/0,
 * epoch, 0, i), made unbiased by rejection: words below 2^64 mod (i+1) are
 * rejected and redrawn from index 1, 2, ... (element i), which happens with
 * probability < n / 2^64. Every rank computes the same permutation.
 *
 * Local mode (gt_sampler_init_shard): the same shuffle of the rank's shard
 * [lo, lo + n_shard) alone, position i drawing with index lo + i; with one
 * rank (lo 0, the whole set) it is the global permutation itself. */
#include "gentrain/core.h"
#include "gentrain/data.h"

#include <string.h>

/* Uniform integer in [0, bound) for Fisher-Yates position i. */
static uint64_t bounded_draw(uint64_t seed, uint64_t epoch, uint64_t i, uint64_t bound) {
    const uint32_t purpose = GT_PURPOSE(GT_RNG_SHUFFLE, 0);
    const uint64_t threshold = (0 - bound) % bound; /* = 2^64 mod bound */
    for (uint64_t attempt = 0;; attempt++) {
        uint64_t x = gt_rand_u64(seed, purpose, epoch, attempt, i);
        if (x >= threshold) return x % bound;
    }
}

/* The epoch's permutation of the n_shard examples from lo (global mode: lo 0,
 * n_shard n): the draw for position i is keyed by the global index lo + i. */
static void make_perm(gt_sampler *s) {
    uint32_t *p = s->perm;
    for (int64_t i = 0; i < s->n_shard; i++) p[i] = (uint32_t)i;
    for (int64_t i = s->n_shard - 1; i > 0; i--) {
        int64_t j = (int64_t)bounded_draw(s->seed, (uint64_t)s->epoch, (uint64_t)(s->lo + i), (uint64_t)i + 1);
        uint32_t t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
}

void gt_sampler_shard(int64_t n, int rank, int world, int64_t *lo, int64_t *count) {
    GT_ASSERT(n >= 0 && world > 0 && rank >= 0 && rank < world, "gt_sampler_shard: rank %d of %d, n %lld", rank,
              world, (long long)n);
    /* r*n/world without overflow for any n < 2^62 and world < 2^31 */
    int64_t q = n / world, rem = n % world;
    int64_t a = (int64_t)rank * q + (int64_t)rank * rem / world;
    int64_t b = (int64_t)(rank + 1) * q + (int64_t)(rank + 1) * rem / world;
    *lo = a;
    *count = b - a;
}

static void init(gt_sampler *s, int64_t n, int batch, int rank, int world, uint64_t seed, int local) {
    GT_ASSERT(s != NULL, "gt_sampler_init: NULL sampler");
    GT_ASSERT(n > 0, "sampler: the dataset is empty (n = %lld)", (long long)n);
    GT_ASSERT(batch > 0, "sampler: batch size must be positive (batch = %d)", batch);
    GT_ASSERT(world > 0, "sampler: world size must be positive (world = %d)", world);
    GT_ASSERT(rank >= 0 && rank < world, "sampler: rank %d is outside [0, %d)", rank, world);
    int64_t global = (int64_t)world * batch;
    /* local: the smallest shard has floor(n / world) examples */
    s->steps_per_epoch = local ? n / world / batch : n / global;
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
    s->local = local;
    if (local) gt_sampler_shard(n, rank, world, &s->lo, &s->n_shard);
    else s->lo = 0, s->n_shard = n;
    GT_ASSERT(s->n_shard <= (int64_t)UINT32_MAX + 1,
              "sampler: %lld examples in one shuffle; at most 2^32 (%lld) fit its 4-byte positions%s", (long long)s->n_shard,
              (long long)UINT32_MAX + 1, local ? "" : " (data.shuffle = local shuffles each rank's shard alone)");
    s->perm = gt_alloc((size_t)s->n_shard * sizeof *s->perm);
    make_perm(s);
}

void gt_sampler_init(gt_sampler *s, int64_t n, int batch, int rank, int world, uint64_t seed) {
    init(s, n, batch, rank, world, seed, 0);
}

void gt_sampler_init_shard(gt_sampler *s, int64_t n, int batch, int rank, int world, uint64_t seed) {
    init(s, n, batch, rank, world, seed, 1);
}

void gt_sampler_copy(gt_sampler *dst, const gt_sampler *src) {
    GT_ASSERT(src != NULL && src->perm != NULL, "gt_sampler_copy: sampler not initialized");
    *dst = *src;
    dst->perm = gt_alloc((size_t)src->n_shard * sizeof *src->perm);
    memcpy(dst->perm, src->perm, (size_t)src->n_shard * sizeof *src->perm);
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

/* idx: [batch]; idx[j] = perm[cursor*world*batch + rank + j*world]
 * (local mode: lo + perm[cursor*batch + j], perm being the shard's) */
void gt_sampler_next(gt_sampler *s, int64_t *idx) {
    GT_ASSERT(s != NULL && s->perm != NULL, "gt_sampler_next: sampler not initialized");
    if (s->cursor >= s->steps_per_epoch) {
        s->epoch++;
        s->cursor = 0;
        make_perm(s);
    }
    if (s->local) {
        const int64_t base = s->cursor * (int64_t)s->batch;
        for (int j = 0; j < s->batch; j++) idx[j] = s->lo + s->perm[base + j];
    } else {
        const int64_t base = s->cursor * (int64_t)s->world * s->batch + s->rank;
        for (int j = 0; j < s->batch; j++) idx[j] = s->perm[base + (int64_t)j * s->world];
    }
    s->cursor++;
}

void gt_sampler_free(gt_sampler *s) {
    if (!s) return;
    gt_free(s->perm);
    s->perm = NULL;
}
