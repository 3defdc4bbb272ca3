/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
 * SC'11). A stream is (seed, purpose, step, index); its counter is
 * {element block, index low, step low, purpose}, with the high halves of
 * index and step folded into the key's upper word. */
#include "gentrain/core.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

/* One Philox round on the counter c0..c3 with key words k0, k1. */
static inline __attribute__((always_inline)) void philox_round(uint32_t *c0, uint32_t *c1, uint32_t *c2,
                                                               uint32_t *c3, uint32_t k0, uint32_t k1) {
    uint64_t p0 = (uint64_t)PHILOX_M0 * *c0;
    uint64_t p1 = (uint64_t)PHILOX_M1 * *c2;
    *c0 = (uint32_t)(p1 >> 32) ^ *c1 ^ k0;
    *c1 = (uint32_t)p1;
    *c2 = (uint32_t)(p0 >> 32) ^ *c3 ^ k1;
    *c3 = (uint32_t)p0;
}

void gt_philox4x32(const uint32_t ctr[4], uint64_t key, uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int round = 0; round < 10; round++) {
        philox_round(&c0, &c1, &c2, &c3, k0, k1);
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* Mix the high words into the key so that every (seed, step, index) is its own stream. */
static inline uint64_t stream_key(uint64_t seed, uint64_t step, uint64_t index, uint64_t blk) {
    return seed ^ ((step >> 32) * 0x9E3779B97F4A7C15ull) ^ ((index >> 32) * 0xC2B2AE3D27D4EB4Full) ^
           ((blk >> 32) * 0x165667B19E3779F9ull);
}

static void block(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t index, uint64_t blk, uint32_t out[4]) {
    uint32_t ctr[4] = {(uint32_t)blk, (uint32_t)index, (uint32_t)step, purpose};
    gt_philox4x32(ctr, stream_key(seed, step, index, blk), out);
}

static inline float u32_to_open01(uint32_t x) {
    /* 24 random bits, centred in their interval: never 0, never 1. */
    return ((float)(x >> 8) + 0.5f) * (1.0f / 16777216.0f);
}

/* Uniforms come in runs of LANES blocks computed side by side: the same
 * Philox rounds over arrays, which the compiler turns into vector integer
 * multiplies (pmuludq), with AVX-512 or AVX2 where the CPU has them. Integer arithmetic:
 * every path gives the same bits as block() one at a time (test_rng). */
#define LANES 16
static inline __attribute__((always_inline)) void uniform_lanes_body(float *out, uint64_t seed, uint32_t purpose,
                                                                     uint64_t step, uint64_t index, uint64_t blk0) {
    uint32_t c0[LANES], c1[LANES], c2[LANES], c3[LANES], k0[LANES], k1[LANES];
    for (int l = 0; l < LANES; l++) { /* as block() */
        uint64_t blk = blk0 + (uint64_t)l, key = stream_key(seed, step, index, blk);
        c0[l] = (uint32_t)blk;
        c1[l] = (uint32_t)index;
        c2[l] = (uint32_t)step;
        c3[l] = purpose;
        k0[l] = (uint32_t)key;
        k1[l] = (uint32_t)(key >> 32);
    }
    for (int round = 0; round < 10; round++)
        for (int l = 0; l < LANES; l++) { /* as gt_philox4x32() */
            philox_round(&c0[l], &c1[l], &c2[l], &c3[l], k0[l], k1[l]);
            k0[l] += PHILOX_W0;
            k1[l] += PHILOX_W1;
        }
    for (int l = 0; l < LANES; l++) {
        out[4 * l + 0] = u32_to_open01(c0[l]);
        out[4 * l + 1] = u32_to_open01(c1[l]);
        out[4 * l + 2] = u32_to_open01(c2[l]);
        out[4 * l + 3] = u32_to_open01(c3[l]);
    }
}

static void uniform_lanes_generic(float *out, uint64_t seed, uint32_t purpose, uint64_t step, uint64_t index,
                                  uint64_t blk0) {
    uniform_lanes_body(out, seed, purpose, step, index, blk0);
}

#if defined(__GNUC__) && defined(__x86_64__)
__attribute__((target("avx2"))) static void uniform_lanes_avx2(float *out, uint64_t seed, uint32_t purpose,
                                                               uint64_t step, uint64_t index, uint64_t blk0) {
    uniform_lanes_body(out, seed, purpose, step, index, blk0);
}

/* 16 lanes of 32 bits: one 512-bit register per counter word */
__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw"))) static void
uniform_lanes_avx512(float *out, uint64_t seed, uint32_t purpose, uint64_t step, uint64_t index, uint64_t blk0) {
    uniform_lanes_body(out, seed, purpose, step, index, blk0);
}
#endif

static int isa_cap = GT_RNG_ISA_AVX512; /* gt_rand_set_isa (tests) */

/* The widest path up to cap that the CPU runs. */
static int usable_isa(int cap) {
    int isa = GT_RNG_ISA_GENERIC;
#if defined(__GNUC__) && defined(__x86_64__)
    __builtin_cpu_init();
    if (cap >= GT_RNG_ISA_AVX512 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw"))
        isa = GT_RNG_ISA_AVX512;
    else if (cap >= GT_RNG_ISA_AVX2 && __builtin_cpu_supports("avx2"))
        isa = GT_RNG_ISA_AVX2;
#endif
    return isa;
}

int gt_rand_set_isa(int cap) {
    isa_cap = cap;
    return usable_isa(cap);
}

typedef void (*uniform_lanes_fn)(float *, uint64_t, uint32_t, uint64_t, uint64_t, uint64_t);
static uniform_lanes_fn uniform_lanes(void) {
    switch (usable_isa(isa_cap)) { /* cheap after the first call */
#if defined(__GNUC__) && defined(__x86_64__)
    case GT_RNG_ISA_AVX512: return uniform_lanes_avx512;
    case GT_RNG_ISA_AVX2: return uniform_lanes_avx2;
#endif
    default: return uniform_lanes_generic;
    }
}

void gt_rand_uniform(float *out, size_t n, uint64_t seed, uint32_t purpose, uint64_t step, uint64_t index) {
    size_t i = 0;
    if (n >= 4 * LANES) {
        uniform_lanes_fn lanes = uniform_lanes();
        for (; i + 4 * LANES <= n; i += 4 * LANES) lanes(out + i, seed, purpose, step, index, i / 4);
    }
    uint32_t r[4];
    for (; i < n; i += 4) {
        block(seed, purpose, step, index, i / 4, r);
        for (size_t j = 0; j < 4 && i + j < n; j++) out[i + j] = u32_to_open01(r[j]);
    }
}

void gt_rand_normal(float *out, size_t n, uint64_t seed, uint32_t purpose, uint64_t step, uint64_t index) {
    /* Box-Muller in double, one block gives four normals. */
    uint32_t r[4];
    for (size_t i = 0; i < n; i += 4) {
        block(seed, purpose, step, index, i / 4, r);
        double z[4];
        for (int j = 0; j < 4; j += 2) {
            double u1 = ((double)r[j] + 0.5) * (1.0 / 4294967296.0);
            double u2 = ((double)r[j + 1] + 0.5) * (1.0 / 4294967296.0);
            double rad = sqrt(-2.0 * log(u1));
            z[j] = rad * cos(2.0 * GT_PI * u2);
            z[j + 1] = rad * sin(2.0 * GT_PI * u2);
        }
        for (size_t j = 0; j < 4 && i + j < n; j++) out[i + j] = (float)z[j];
    }
}

uint64_t gt_rand_u64(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t index, uint64_t i) {
    uint32_t r[4];
    block(seed, purpose, step, index, i / 2, r);
    return (i & 1) ? ((uint64_t)r[2] << 32 | r[3]) : ((uint64_t)r[0] << 32 | r[1]);
}
