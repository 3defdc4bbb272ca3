/* The conv lowering (src/nn/lowering.c): gt_nn_im2col_batch and
 * gt_nn_col2im_batch against the plain definitions, bit for bit, over many
 * geometries (kernel 1-5, stride 1-3, padding, odd and non-square images,
 * sizes whose last rows the kernel never reaches), with 1 and 2 threads.
 * At stride 2 with an even kernel, col2im sums each output row's taps in
 * registers (and im2col splits tap pairs from one pass): the reference adds
 * tap after tap in the order (ki, kj), which the fast path must keep. The
 * columns hold -0.0, Inf, NaN and values whose sums round, so a changed order
 * or a zero added for a tap outside the image shows. */
#include "check.h"
#include "gentrain/layers.h"

/* conv output size (floor) */
static int out_size(int n, int K, int S, int P) { return (n + 2 * P - K) / S + 1; }

/* col [C*K*K, B*OH*OW]: row (c, ki, kj), column (b, oh, ow) */
static void ref_im2col(const float *x, int B, int C, int H, int W, int K, int S, int P, int OH, int OW, float *col) {
    size_t ld = (size_t)B * OH * OW;
    for (int c = 0; c < C; c++)
        for (int ki = 0; ki < K; ki++)
            for (int kj = 0; kj < K; kj++)
                for (int b = 0; b < B; b++)
                    for (int oh = 0; oh < OH; oh++)
                        for (int ow = 0; ow < OW; ow++) {
                            int ih = oh * S - P + ki, iw = ow * S - P + kj;
                            float v = ih >= 0 && ih < H && iw >= 0 && iw < W
                                          ? x[(((size_t)b * C + c) * H + ih) * W + iw]
                                          : 0.0f;
                            col[((size_t)(c * K + ki) * K + kj) * ld + ((size_t)b * OH + oh) * OW + ow] = v;
                        }
}

static void ref_col2im(const float *col, int B, int C, int H, int W, int K, int S, int P, int OH, int OW, float *x) {
    size_t ld = (size_t)B * OH * OW;
    memset(x, 0, sizeof(float) * (size_t)B * C * H * W);
    for (int c = 0; c < C; c++)
        for (int b = 0; b < B; b++)
            for (int ki = 0; ki < K; ki++)
                for (int kj = 0; kj < K; kj++)
                    for (int oh = 0; oh < OH; oh++)
                        for (int ow = 0; ow < OW; ow++) {
                            int ih = oh * S - P + ki, iw = ow * S - P + kj;
                            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                            x[(((size_t)b * C + c) * H + ih) * W + iw] +=
                                col[((size_t)(c * K + ki) * K + kj) * ld + ((size_t)b * OH + oh) * OW + ow];
                        }
}

/* values that round when summed, with -0.0, +-Inf and NaN sprinkled in */
static void fill(float *v, size_t n, uint32_t seed, int specials) {
    uint32_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        v[i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * (float)(1 + (s & 7)) / 3.0f;
        if (specials && (s >> 5) % 97 == 0) v[i] = -0.0f;
        if (specials && (s >> 5) % 997 == 1) v[i] = (s & 1) ? INFINITY : -INFINITY;
        if (specials && (s >> 5) % 1999 == 2) v[i] = NAN;
    }
}

/* bit for bit, except that any NaN equals any NaN (which NaN a sum of two
 * NaNs keeps depends on the operands' order, which the compiler may swap) */
static int same_bits(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(isnan(a[i]) && isnan(b[i])) && memcmp(&a[i], &b[i], sizeof(float))) return 0;
    return 1;
}

static int geometries, fast_path;

static void check_geometry(int B, int C, int H, int W, int K, int S, int P) {
    int OH = out_size(H, K, S, P), OW = out_size(W, K, S, P);
    if (OH < 1 || OW < 1) return;
    geometries++;
    fast_path += S == 2 && K % 2 == 0;
    size_t nx = (size_t)B * C * H * W, nc = (size_t)C * K * K * B * OH * OW;
    float *x = gt_alloc_floats(nx), *col = gt_alloc_floats(nc), *want_col = gt_alloc_floats(nc);
    float *got_col = gt_alloc_floats(nc);
    float *back = gt_alloc_floats(nx), *want_back = gt_alloc_floats(nx);
    for (int pass = 0; pass < 2; pass++) { /* plain values, then with specials */
        fill(x, nx, (uint32_t)(H * 131 + W * 7 + K + pass), pass);
        fill(col, nc, (uint32_t)(C * 977 + K * 31 + S * 3 + P + pass), pass);
        ref_col2im(col, B, C, H, W, K, S, P, OH, OW, want_back);
        ref_im2col(x, B, C, H, W, K, S, P, OH, OW, want_col);
        for (int threads = 1; threads <= 2; threads++) {
            gt_set_threads(threads);
            fill(back, nx, 99, 0); /* col2im overwrites whatever was there */
            gt_nn_col2im_batch(col, B, C, H, W, K, S, P, OH, OW, back);
            CHECK(same_bits(back, want_back, nx),
                  "col2im differs from the tap-by-tap sums: B %d C %d %dx%d K %d S %d P %d, %d thread(s)%s", B, C, H,
                  W, K, S, P, threads, pass ? ", with -0/Inf/NaN" : "");
            fill(got_col, nc, 7, 0); /* im2col writes every column */
            gt_nn_im2col_batch(x, B, C, H, W, K, S, P, OH, OW, got_col);
            CHECK(same_bits(got_col, want_col, nc),
                  "im2col differs from its definition: B %d C %d %dx%d K %d S %d P %d, %d thread(s)", B, C, H, W, K,
                  S, P, threads);
        }
    }
    gt_free(x);
    gt_free(col);
    gt_free(want_col);
    gt_free(got_col);
    gt_free(back);
    gt_free(want_back);
}

int main(void) {
    static const int sizes[][2] = {{1, 1}, {2, 3}, {5, 5}, {7, 7}, {8, 6}, {9, 4}, {14, 14}, {15, 11}, {28, 28}};
    for (int k = 1; k <= 5; k++)
        for (int s = 1; s <= 3; s++)
            for (int p = 0; p < k && p <= 2; p++)
                for (int z = 0; z < 9; z++)
                    check_geometry(1 + (z + k) % 3, 1 + (z + s) % 2, sizes[z][0], sizes[z][1], k, s, p);
    /* the reference networks' shapes, large enough for the threaded loops */
    check_geometry(8, 64, 14, 14, 4, 2, 1);  /* dcgan: 128 -> 64 channels, 7x7 -> 14x14 */
    check_geometry(8, 32, 28, 28, 4, 2, 1);  /* vae: 32 channels at 28x28 */
    check_geometry(4, 3, 64, 64, 4, 2, 1);   /* 64x64 images */
    check_geometry(4, 16, 32, 32, 6, 2, 2);  /* larger even kernels */
    check_geometry(2, 2, 19, 23, 8, 2, 3);
    check_geometry(2, 2, 40, 36, 16, 2, 7);
    CHECK(geometries > 250 && fast_path > 40, "only %d geometries (%d on the stride-2 fast path)", geometries,
          fast_path);
    printf("%d geometries, %d of them stride 2 with an even kernel\n", geometries, fast_path);
    return check_report("test_lowering");
}
