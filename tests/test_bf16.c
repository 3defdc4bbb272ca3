/* bfloat16 conversion (include/gentrain/core.h): known answers (ties to even, NaN,
 * infinities, overflow, subnormals, signed zero) and, for 200000 random
 * floats of every magnitude, the property that defines the rounding: the
 * result is a bfloat16 nearest to x, and of two equally near the one with an
 * even last bit. */
#include "gentrain/core.h"

#include "check.h"

#include <float.h>
#include <math.h>
#include <string.h>

static uint32_t bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float from_bits(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

int main(void) {
    CHECK(gt_bf16_from_float(1.0f) == 0x3f80 && gt_bf16_to_float(0x3f80) == 1.0f, "1.0 is exact");
    CHECK(gt_bf16_from_float(-2.5f) == 0xc020, "-2.5 is exact");
    /* 1 + 2^-8 lies halfway between 1 (even) and 1 + 2^-7 (odd): ties to even gives 1 */
    CHECK(gt_bf16_from_float(1.0f + 0x1p-8f) == 0x3f80, "a tie rounds to the even neighbour (down)");
    /* 1 + 3 * 2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): up */
    CHECK(gt_bf16_from_float(1.0f + 3 * 0x1p-8f) == 0x3f82, "a tie rounds to the even neighbour (up)");
    CHECK(gt_bf16_from_float(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81, "just above a tie rounds up");
    CHECK(gt_bf16_from_float(INFINITY) == 0x7f80 && gt_bf16_from_float(-INFINITY) == 0xff80, "infinities stay");
    CHECK(isnan(gt_bf16_to_float(gt_bf16_from_float(NAN))), "NaN stays NaN");
    CHECK(isnan(gt_bf16_to_float(gt_bf16_from_float(from_bits(0x7f800001u)))),
          "a NaN whose payload is only in the low bits stays NaN (not infinity)");
    CHECK(gt_bf16_from_float(FLT_MAX) == 0x7f80, "FLT_MAX rounds to infinity (it is above the largest bfloat16's halfway point)");
    CHECK(gt_bf16_from_float(-0.0f) == 0x8000 && gt_bf16_from_float(0.0f) == 0x0000, "signed zeros");
    CHECK(gt_bf16_from_float(from_bits(0x00010000u)) == 0x0001, "the smallest bfloat16 subnormal is exact");
    float in[4] = {1.0f, -3.0f, 0.1f, 1e-30f};
    uint16_t h[4];
    gt_bf16_from_floats(h, in, 4);
    int arrays = 1;
    for (int i = 0; i < 4; i++) arrays &= h[i] == gt_bf16_from_float(in[i]);
    CHECK(arrays && gt_bf16_to_float(h[2]) == 0.10009765625f,
          "the array form agrees with the scalar one (0.1 -> 0.10009765625)");

    /* the defining property on random floats: nearest, ties to even */
    float r[1000];
    int nearest = 1, even = 1, n = 0;
    for (int round = 0; round < 200; round++) {
        gt_rand_normal(r, 1000, 7, GT_PURPOSE(GT_RNG_TEST, 2), (uint64_t)round, 0);
        for (int i = 0; i < 1000; i++, n++) {
            float x = ldexpf(r[i], (round % 60) - 30); /* magnitudes 2^-30 .. 2^29 */
            if (i % 7 == 0) x = from_bits((bits(x) & 0xffff0000u) | 0x8000u); /* an exact tie */
            uint16_t b = gt_bf16_from_float(x);
            double y = gt_bf16_to_float(b), lo = gt_bf16_to_float((uint16_t)(b - 1)), hi = gt_bf16_to_float((uint16_t)(b + 1));
            double d = fabs((double)x - y);
            nearest &= d <= fabs((double)x - lo) && d <= fabs((double)x - hi);
            if (d == fabs((double)x - lo) || d == fabs((double)x - hi)) even &= (b & 1) == 0;
        }
    }
    CHECK(nearest, "every one of %d random floats became a nearest bfloat16", n);
    CHECK(even, "every tie among them went to the even neighbour");
    return check_report("test_bf16");
}
