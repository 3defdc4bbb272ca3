/* The distributed sampler (src/data/sampler.c), without MPI: every rank's
 * sampler is simulated in one process.
 *  - one epoch of 3 ranks: a permutation, strided slices, seeds and epochs,
 *    seek reproducing next, an unbiased shuffle;
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gentrain/core.h"
#include "gentrain/data.h"

/* ---- sampler ------------------------------------------------------------- */

#define SN 100
#define SW 3
#define SB 7

/* One epoch of all ranks: out[step][rank*SB + j]. Returns 1 if the indices
 * are distinct, in range, and as many as steps*world*batch. */
static int run_epoch(gt_sampler *s, int64_t (*out)[SW * SB], int64_t spe) {
    int seen[SN] = {0}, ok = 1;
    for (int64_t k = 0; k < spe; k++)
        for (int r = 0; r < SW; r++) {
            gt_sampler_next(&s[r], &out[k][r * SB]);
            for (int j = 0; j < SB; j++) {
                int64_t e = out[k][r * SB + j];
                if (e < 0 || e >= SN || seen[e]++) ok = 0;
            }
        }
    int distinct = 0;
    for (int i = 0; i < SN; i++) distinct += seen[i] > 0;
    return ok && distinct == spe * SW * SB;
}

static void small_sampler(const void *arg) {
    (void)arg;
    gt_sampler s;
    gt_sampler_init(&s, 20, 7, 0, 3, 1);
}

static void test_sampler(void) {
    gt_sampler s[SW], t[SW];
    for (int r = 0; r < SW; r++) gt_sampler_init(&s[r], SN, SB, r, SW, 42);
    const int64_t spe = s[0].steps_per_epoch;
    CHECK(spe == SN / (SW * SB) && spe == 4, "steps_per_epoch = %lld, expected 4", (long long)spe);
    int perm_ok = 1, seen[SN] = {0};
    for (int i = 0; i < SN; i++)
        if (s[0].perm[i] >= SN || seen[s[0].perm[i]]++) perm_ok = 0;
    CHECK(perm_ok, "epoch 0 order is a permutation of [0, %d)", SN);

    int64_t e0[4][SW * SB], e1[4][SW * SB], again[4][SW * SB];
    CHECK(run_epoch(s, e0, spe), "epoch 0: all ranks' indices cover %lld distinct examples, no duplicates",
          (long long)(spe * SW * SB));
    /* rank r takes entries r, r+world, ... of each step's world*batch slice */
    int slice_ok = 1;
    for (int k = 0; k < spe; k++)
        for (int r = 0; r < SW; r++)
            for (int j = 0; j < SB; j++) slice_ok &= e0[k][r * SB + j] == s[r].perm[k * SW * SB + r + j * SW];
    CHECK(slice_ok, "rank r's batch is the strided slice perm[k*world*batch + r + j*world]");
    CHECK(s[0].epoch == 0 && s[0].cursor == spe, "after one epoch: (epoch %lld, cursor %lld), expected (0, %lld)",
          (long long)s[0].epoch, (long long)s[0].cursor, (long long)spe);
    CHECK(run_epoch(s, e1, spe), "epoch 1: distinct and complete");
    CHECK(s[0].epoch == 1, "second epoch is epoch %lld", (long long)s[0].epoch);
    CHECK(memcmp(e0, e1, sizeof e0) != 0, "epochs 0 and 1 give different orders");

    /* same seed: same order; another seed: another order */
    for (int r = 0; r < SW; r++) gt_sampler_init(&t[r], SN, SB, r, SW, 42);
    run_epoch(t, again, spe);
    CHECK(memcmp(e0, again, sizeof e0) == 0, "the same seed gives the same order");
    for (int r = 0; r < SW; r++) {
        gt_sampler_free(&t[r]);
        gt_sampler_init(&t[r], SN, SB, r, SW, 43);
    }
    run_epoch(t, again, spe);
    CHECK(memcmp(e0, again, sizeof e0) != 0, "another seed gives another order");
    for (int r = 0; r < SW; r++) gt_sampler_free(&t[r]);

    /* seek(epoch, cursor) reproduces next(), including at epoch ends */
    gt_sampler a, b;
    gt_sampler_init(&a, SN, SB, 1, SW, 7);
    gt_sampler_init(&b, SN, SB, 1, SW, 7);
    int seek_ok = 1;
    for (int step = 0; step < 23; step++) {
        int64_t ep = a.epoch, cur = a.cursor, ia[SB], ib[SB];
        gt_sampler_next(&a, ia);
        gt_sampler_seek(&b, ep, cur);
        gt_sampler_next(&b, ib);
        if (memcmp(ia, ib, sizeof ia) != 0 || a.epoch != b.epoch || a.cursor != b.cursor) {
            seek_ok = 0;
            fprintf(stderr, "  seek(%lld, %lld) differs at step %d\n", (long long)ep, (long long)cur, step);
        }
    }
    CHECK(seek_ok, "seek(epoch, cursor) then next() reproduces next()");
    CHECK(a.epoch == 5 && a.cursor == 3, "23 steps of 4 per epoch end at (epoch 5, cursor 3), got (%lld, %lld)",
          (long long)a.epoch, (long long)a.cursor);
    gt_sampler_free(&a);
    gt_sampler_free(&b);

    /* the shuffle is unbiased enough: first element over many epochs */
    gt_sampler_init(&a, 4, 1, 0, 1, 3);
    int first[4] = {0};
    for (int e = 0; e < 8000; e++) {
        gt_sampler_seek(&a, e, 0);
        first[a.perm[0]]++;
    }
    for (int k = 0; k < 4; k++) CHECK(abs(first[k] - 2000) < 200, "perm[0] == %d in %d of 8000 epochs", k, first[k]);
    gt_sampler_free(&a);

    for (int r = 0; r < SW; r++) gt_sampler_free(&s[r]);

    CHECK_PANICS("dataset smaller than a global batch (a bug: train.c says so first)", small_sampler, NULL,
                 "20 examples", "world 3 x batch 7");
}

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

/* Local mode: shards are contiguous, disjoint and cover [0, n); each rank
 * takes only its shard's examples, each once per epoch; 1 rank is the
 * global sampler exactly; seek and copy reproduce next. */
static void local_shards(int64_t n, int world, int batch) {
    gt_sampler s[8], g;
    int64_t lo_next = 0;
    int cover = 1;
    for (int r = 0; r < world; r++) {
        gt_sampler_init_shard(&s[r], n, batch, r, world, 9);
        cover &= s[r].lo == lo_next && s[r].n_shard >= n / world && s[r].n_shard <= n / world + 1;
        lo_next = s[r].lo + s[r].n_shard;
    }
    CHECK(cover && lo_next == n, "n %lld world %d: shards are contiguous, balanced, disjoint and cover [0, n)",
          (long long)n, world);
    int64_t spe = n / world / batch;
    int same = 1;
    for (int r = 0; r < world; r++) same &= s[r].steps_per_epoch == spe;
    CHECK(same, "n %lld world %d batch %d: every rank has floor(floor(n/world)/batch) = %lld steps per epoch",
          (long long)n, world, batch, (long long)spe);
    int *seen = gt_alloc(sizeof(int) * (size_t)n);
    int64_t idx[64];
    for (int e = 0; e < 2; e++) {
        memset(seen, 0, sizeof(int) * (size_t)n);
        int inside = 1, twice = 0;
        for (int64_t k = 0; k < spe; k++)
            for (int r = 0; r < world; r++) {
                gt_sampler_next(&s[r], idx);
                for (int j = 0; j < batch; j++) {
                    inside &= idx[j] >= s[r].lo && idx[j] < s[r].lo + s[r].n_shard;
                    twice += seen[idx[j]]++ > 0;
                }
            }
        CHECK(inside && twice == 0, "n %lld world %d epoch %d: each rank's examples come from its shard, each once",
              (long long)n, world, e);
    }
    gt_free(seen);
    /* seek and copy */
    gt_sampler a, b;
    gt_sampler_init_shard(&a, n, batch, world - 1, world, 4);
    gt_sampler_init_shard(&b, n, batch, world - 1, world, 4);
    int ok = 1;
    for (int step = 0; step < 3 * (int)spe + 2; step++) {
        int64_t ep = a.epoch, cur = a.cursor, ia[64], ib[64], ic[64];
        gt_sampler c;
        gt_sampler_copy(&c, &a);
        gt_sampler_next(&a, ia);
        gt_sampler_seek(&b, ep, cur);
        gt_sampler_next(&b, ib);
        gt_sampler_next(&c, ic);
        ok &= !memcmp(ia, ib, sizeof(int64_t) * (size_t)batch) && !memcmp(ia, ic, sizeof(int64_t) * (size_t)batch);
        gt_sampler_free(&c);
    }
    CHECK(ok, "local mode: seek(epoch, cursor) and a copy reproduce next()");
    gt_sampler_free(&a);
    gt_sampler_free(&b);
    /* one rank: the global sampler */
    gt_sampler_init_shard(&a, n, batch, 0, 1, 5);
    gt_sampler_init(&g, n, batch, 0, 1, 5);
    ok = a.steps_per_epoch == g.steps_per_epoch;
    for (int step = 0; step < 2 * (int)g.steps_per_epoch + 1; step++) {
        int64_t ia[64], ig[64];
        gt_sampler_next(&a, ia);
        gt_sampler_next(&g, ig);
        ok &= !memcmp(ia, ig, sizeof(int64_t) * (size_t)batch);
    }
    CHECK(ok, "n %lld: the local sampler on one rank is the global one", (long long)n);
    gt_sampler_free(&a);
    gt_sampler_free(&g);
    for (int r = 0; r < world; r++) gt_sampler_free(&s[r]);
}

int main(void) {
    test_sampler();
    local_shards(1000, 3, 16);
    local_shards(997, 4, 7);
    local_shards(64, 2, 32);
    coverage(1000, 3, 16); /* remainder 40 */
    coverage(1000, 2, 16); /* remainder 8 */
    coverage(997, 4, 7);   /* remainder 17 */
    coverage(960, 3, 16);  /* divides evenly */
    coverage(50, 1, 50);   /* one step per epoch, nothing left out */
    epochs_differ();
    split_matches_single(1000, 2, 6);
    split_matches_single(1000, 3, 4);
    split_matches_single(101, 4, 5);
    return check_report("test_sampler");
}
