/* The counter-based RNG (src/core/rng.c): Philox4x32-10 against the known
 * answers published with Random123 (Salmon et al., kat_vectors), and the
 * uniforms that gt_rand_uniform computes 16 blocks side by side (vector
 * integer multiplies: generic x86-64-v2, AVX2 and AVX-512, each path the CPU
 * has) against one block at a time through gt_philox4x32: the same bits for
 * every path, length, offset and stream. */
#include "check.h"

#include <inttypes.h>

/* a stream's block blk, as src/core/rng.c documents it: counter {blk, index
 * low, step low, purpose}, the high words folded into the key's upper word */
static void reference_block(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t index, uint64_t blk,
                            uint32_t out[4]) {
    uint64_t key = seed ^ ((step >> 32) * 0x9E3779B97F4A7C15ull) ^ ((index >> 32) * 0xC2B2AE3D27D4EB4Full) ^
                   ((blk >> 32) * 0x165667B19E3779F9ull);
    uint32_t ctr[4] = {(uint32_t)blk, (uint32_t)index, (uint32_t)step, purpose};
    gt_philox4x32(ctr, key, out);
}

static float reference_uniform(uint32_t x) { return ((float)(x >> 8) + 0.5f) * (1.0f / 16777216.0f); }

int main(void) {
    /* Random123 kat_vectors: philox4x32 10, counter words, key words, result words */
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e, 0xa20bc7c6,
         0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb, 0x5001e420,
         0x24126ea1},
    };
    for (int k = 0; k < 3; k++) {
        uint32_t out[4];
        gt_philox4x32(kat[k], (uint64_t)kat[k][5] << 32 | kat[k][4], out);
        CHECK(!memcmp(out, kat[k] + 6, sizeof out), "Philox4x32-10 known answer %d: %08" PRIx32 " %08" PRIx32
              " %08" PRIx32 " %08" PRIx32, k, out[0], out[1], out[2], out[3]);
    }

    /* every length around the 64-float runs, streams with high words set */
    static const size_t lengths[] = {1, 3, 4, 5, 63, 64, 65, 127, 128, 129, 1000, 4099, 100000};
    static const uint64_t streams[][3] = {/* seed, step, index */
                                          {42, 0, 0},
                                          {7, 3, 12345},
                                          {0xdeadbeefcafef00dull, 0x300000007ull, 0x100000005ull},
                                          {~0ull, ~0ull, ~0ull}};
    const uint32_t purpose = GT_PURPOSE(GT_RNG_TEST, 99);
    float *got = gt_alloc(sizeof(float) * 100000);
    /* every vector path this CPU has (the default is the widest) */
    static const char *isa_name[] = {"generic", "AVX2", "AVX-512"};
    CHECK(gt_rand_set_isa(GT_RNG_ISA_GENERIC) == GT_RNG_ISA_GENERIC, "the generic path cannot be chosen");
    for (int cap = GT_RNG_ISA_GENERIC; cap <= GT_RNG_ISA_AVX512; cap++) {
        int isa = gt_rand_set_isa(cap);
        if (isa != cap) {
            printf("test_rng: this CPU has no %s: its path is not tested here\n", isa_name[cap]);
            continue;
        }
        for (size_t s = 0; s < sizeof streams / sizeof streams[0]; s++)
            for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
                size_t n = lengths[li], bad = n;
                gt_rand_uniform(got, n, streams[s][0], purpose, streams[s][1], streams[s][2]);
                for (size_t i = 0; i < n && bad == n; i += 4) {
                    uint32_t r[4];
                    reference_block(streams[s][0], purpose, streams[s][1], streams[s][2], i / 4, r);
                    for (size_t j = 0; j < 4 && i + j < n; j++)
                        if (memcmp(&got[i + j], &(float){reference_uniform(r[j])}, sizeof(float))) bad = i + j;
                }
                CHECK(bad == n, "%s path, stream %zu, n %zu: uniform %zu differs from the one-block-at-a-time value",
                      isa_name[isa], s, n, bad);
            }
    }
    /* the range (0, 1), never an end */
    gt_rand_uniform(got, 100000, 1, purpose, 0, 0);
    float lo = 1, hi = 0;
    for (size_t i = 0; i < 100000; i++) lo = fminf(lo, got[i]), hi = fmaxf(hi, got[i]);
    CHECK(lo > 0.0f && hi < 1.0f && lo < 1e-3f && hi > 1 - 1e-3f, "uniforms in [%g, %g]", lo, hi);
    gt_free(got);
    return check_report("test_rng");
}
