/* The distributed sampler as data parallelism needs it (issue 3), without MPI:
 * every rank's sampler is simulated in one process.
 *  - across ranks, an epoch covers floor(n / (world*batch)) * world*batch
 *    distinct examples, each exactly once; the n mod (world*batch) left out
 *    (the documented remainder) are the last entries of that epoch's shuffle,
 *    and they differ from epoch to epoch; all ranks take the same number of
 *    steps per epoch;
 *  - epochs differ;
 *  - the premise of world-size invariance: N ranks x batch B hold exactly the
 *    examples of 1 rank x N*B, local example i of rank r being global position
 *    r + i*N (the example0/stride that per-example randomness is keyed by). */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "gentrain/core.h"
#include "gentrain/data.h"

/* One epoch of all `world` ranks. seen[e] counts how often example e came up;
 * returns 0 if some rank's sampler moved to another epoch mid-way. */
static int epoch_counts(gt_sampler *s, int world, int *seen, int64_t n) {
    int64_t spe = s[0].steps_per_epoch;
    int64_t epoch = s[0].cursor == spe ? s[0].epoch + 1 : s[0].epoch;
    int64_t *idx = gt_alloc(sizeof(int64_t) * (size_t)s[0].batch);
    memset(seen, 0, sizeof(int) * (size_t)n);
    int ok = 1;
    for (int64_t k = 0; k < spe; k++)
        for (int r = 0; r < world; r++) {
            gt_sampler_next(&s[r], idx);
            ok &= s[r].epoch == epoch;
            for (int j = 0; j < s[r].batch; j++) seen[idx[j]]++;
        }
    gt_free(idx);
    return ok;
}

static void coverage(int64_t n, int world, int batch) {
    gt_sampler s[8];
    for (int r = 0; r < world; r++) gt_sampler_init(&s[r], n, batch, r, world, 11);
    int64_t global = (int64_t)world * batch, spe = n / global, rem = n % global;
    int same_spe = 1;
    for (int r = 0; r < world; r++) same_spe &= s[r].steps_per_epoch == spe;
    CHECK(same_spe, "n %lld world %d batch %d: every rank has %lld steps per epoch", (long long)n, world, batch,
          (long long)spe);
    int *seen = gt_alloc(sizeof(int) * (size_t)n);
    int64_t *left[3];
    for (int e = 0; e < 3; e++) {
        int ok = epoch_counts(s, world, seen, n);
        int64_t once = 0, twice = 0, never = 0;
        for (int64_t i = 0; i < n; i++) {
            once += seen[i] == 1;
            twice += seen[i] > 1;
            never += seen[i] == 0;
        }
        CHECK(ok && once == spe * global && twice == 0 && never == rem,
              "n %lld world %d batch %d epoch %d: %lld seen once (want %lld), %lld more than once, %lld left out "
              "(want the remainder %lld)",
              (long long)n, world, batch, e, (long long)once, (long long)(spe * global), (long long)twice,
              (long long)never, (long long)rem);
        /* the left-out examples are the tail of this epoch's shuffle (perm is still this epoch's) */
        left[e] = gt_alloc(sizeof(int64_t) * (size_t)(rem + 1));
        int tail_ok = 1;
        for (int64_t i = 0; i < rem; i++) {
            left[e][i] = s[0].perm[n - rem + i];
            tail_ok &= seen[left[e][i]] == 0;
        }
        CHECK(tail_ok, "n %lld world %d batch %d epoch %d: the left-out examples are the last %lld of the shuffle",
              (long long)n, world, batch, e, (long long)rem);
    }
    if (rem > 1)
        CHECK(memcmp(left[0], left[1], sizeof(int64_t) * (size_t)rem) != 0 ||
                  memcmp(left[1], left[2], sizeof(int64_t) * (size_t)rem) != 0,
              "n %lld world %d batch %d: the left-out remainder changes from epoch to epoch", (long long)n, world,
              batch);
    for (int e = 0; e < 3; e++) gt_free(left[e]);
    gt_free(seen);
    for (int r = 0; r < world; r++) gt_sampler_free(&s[r]);
}

/* Epochs are different orders (the first global batch of epoch 0 vs 1 vs 2). */
static void epochs_differ(void) {
    gt_sampler s;
    gt_sampler_init(&s, 1000, 10, 0, 1, 5);
    int64_t first[3][10], idx[10];
    for (int e = 0; e < 3; e++)
        for (int64_t k = 0; k < s.steps_per_epoch; k++) {
            gt_sampler_next(&s, idx);
            if (k == 0) memcpy(first[e], idx, sizeof idx);
        }
    CHECK(memcmp(first[0], first[1], sizeof first[0]) && memcmp(first[1], first[2], sizeof first[0]),
          "epochs 0, 1, 2 start with different batches");
    gt_sampler_free(&s);
}

/* N ranks x B == 1 rank x N*B, position for position. */
static void split_matches_single(int64_t n, int world, int batch) {
    gt_sampler one, s[8];
    gt_sampler_init(&one, n, world * batch, 0, 1, 3);
    for (int r = 0; r < world; r++) gt_sampler_init(&s[r], n, batch, r, world, 3);
    int64_t all[256], loc[64];
    int ok = one.steps_per_epoch == s[0].steps_per_epoch;
    for (int step = 0; step < 2 * (int)one.steps_per_epoch + 3; step++) {
        gt_sampler_next(&one, all);
        for (int r = 0; r < world; r++) {
            gt_sampler_next(&s[r], loc);
            for (int i = 0; i < batch; i++) ok &= loc[i] == all[r + i * world];
        }
    }
    CHECK(ok, "n %lld: %d ranks x %d take the examples of 1 rank x %d, rank r's example i at position r + i*%d",
          (long long)n, world, batch, world * batch, world);
    gt_sampler_free(&one);
    for (int r = 0; r < world; r++) gt_sampler_free(&s[r]);
}

int main(void) {
    coverage(1000, 3, 16); /* remainder 40 */
    coverage(1000, 2, 16); /* remainder 8 */
    coverage(997, 4, 7);   /* remainder 17 */
    coverage(960, 3, 16);  /* divides evenly */
    coverage(50, 1, 50);   /* one step per epoch, nothing left out */
    epochs_differ();
    split_matches_single(1000, 2, 6);
    split_matches_single(1000, 3, 4);
    split_matches_single(101, 4, 5);
    return check_report("test_dist_sampler");
}
