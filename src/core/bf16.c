/* bfloat16 (include/gentrain/core.h): the upper 16 bits of an IEEE-754
 * float (sign, 8 exponent bits, 7 mantissa bits), for the compressed gradient
 * allreduce ([dist] compress = bf16, src/dist/reduce.c). Rounding is to
 * nearest, ties to even, as torch's float -> bfloat16 conversion; NaN stays
 * a (quiet) NaN, infinities stay infinite, and a float whose rounding
 * overflows becomes an infinity. */
#include "gentrain/core.h"

#include <string.h>

uint16_t gt_bf16_from_float(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u); /* NaN: keep it quiet */
    u += 0x7fffu + ((u >> 16) & 1u);                                             /* to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

float gt_bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

void gt_bf16_from_floats(uint16_t *out, const float *in, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = gt_bf16_from_float(in[i]);
}

void gt_bf16_to_floats(float *out, const uint16_t *in, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = gt_bf16_to_float(in[i]);
}
