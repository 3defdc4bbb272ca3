/* The upsample layer kind (src/nn/layers/upsample.c): a known answer, the
 * forward against the definition y[c][oy][ox] = x[c][oy/S][ox/S] for
 * several shapes and scales (vectors as 1x1 images, scale 1 the identity),
 * the backward bitwise equal to each SxS block of dy summed in float row by
 * row (PyTorch's order), eval equal to train, finite-difference gradients
 * alone and between convolutions, and the errors of bad scales and outputs
 * too large. Thread invariance: tests/test_threads.c; PyTorch parity:
 * tests/parity.sh (configs/dcgan-resize.ini). */
#include "check.h"
#include "gradcheck.h"

static void check(gt_shape in, int B, int S) {
    char label[96];
    snprintf(label, sizeof label, "upsample %dx%dx%d B=%d scale=%d", in.c, in.h, in.w, B, S);
    gt_net net;
    gt_net_init(&net, "up", in);
    add(&net, "upsample scale=%d", S);
    gt_net_finalize(&net, B, 1, 0);
    int OH = S * in.h, OW = S * in.w;
    CHECK(net.out.c == in.c && net.out.h == OH && net.out.w == OW && net.n_params == 0 && net.n_state == 0,
          "%s: shape -> %dx%dx%d", label, net.out.c, net.out.h, net.out.w);
    size_t rows = (size_t)B * in.c, nx = rows * in.h * in.w, ny = rows * OH * OW;
    float *x = gt_alloc_floats(nx), *dy = gt_alloc_floats(ny), *y = gt_alloc_floats(ny);
    fill_uniform(x, nx, 1.0f);
    fill_normal(dy, ny);
    memcpy(y, gt_net_forward(&net, x, B, 1, rng_ctx(1, 0, 0, 1, 0)), sizeof(float) * ny);
    int fwd = 1;
    for (size_t r = 0; r < rows; r++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++)
                fwd &= y[(r * OH + oy) * OW + ox] == x[(r * in.h + oy / S) * in.w + ox / S];
    CHECK(fwd, "%s: forward is not x[c][y/S][x/S]", label);
    CHECK(memcmp(gt_net_forward(&net, x, B, 0, rng_ctx(1, 0, 0, 1, 0)), y, sizeof(float) * ny) == 0,
          "%s: eval equals train", label);
    const float *dx = gt_net_backward(&net, dy, GT_BACKWARD_ALL, NO_HOOK);
    int bwd = 1;
    for (size_t r = 0; r < rows; r++)
        for (int iy = 0; iy < in.h; iy++)
            for (int ix = 0; ix < in.w; ix++) {
                float s = 0.0f;
                for (int a = 0; a < S; a++)
                    for (int b = 0; b < S; b++) s += dy[(r * OH + iy * S + a) * OW + ix * S + b];
                bwd &= dx[(r * in.h + iy) * in.w + ix] == s;
            }
    CHECK(bwd, "%s: backward is not the SxS block sums of dy (row by row, in float)", label);
    fd_net(&net, x, B, 1, rng_ctx(1, 0, 0, 1, 0), FD_STRICT, label);
    gt_free(x);
    gt_free(dy);
    gt_free(y);
    gt_net_free(&net);
}

int main(void) {
    gt_set_threads(1);
    /* a known answer: 1x2x3, scale 2 */
    gt_net net;
    gt_net_init(&net, "up", (gt_shape){1, 2, 3});
    add(&net, "upsample");
    gt_net_finalize(&net, 1, 1, 0);
    static const float x0[6] = {1, 2, 3, 4, 5, 6};
    static const float want[24] = {1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 4, 4, 5, 5, 6, 6};
    CHECK(net.out.c == 1 && net.out.h == 4 && net.out.w == 6, "upsample default scale 2: 1x2x3 -> 1x4x6");
    CHECK(memcmp(gt_net_forward(&net, x0, 1, 1, rng_ctx(1, 0, 0, 1, 0)), want, sizeof want) == 0,
          "upsample 1x2x3 known answer");
    float dy0[24];
    for (int i = 0; i < 24; i++) dy0[i] = (float)i;
    static const float dx0[6] = {0 + 1 + 6 + 7, 2 + 3 + 8 + 9, 4 + 5 + 10 + 11, 12 + 13 + 18 + 19, 14 + 15 + 20 + 21,
                                 16 + 17 + 22 + 23};
    CHECK(memcmp(gt_net_backward(&net, dy0, GT_BACKWARD_ALL, NO_HOOK), dx0, sizeof dx0) == 0,
          "upsample 1x2x3 known answer of the backward");
    gt_net_free(&net);

    check((gt_shape){3, 4, 5}, 2, 2);
    check((gt_shape){2, 3, 2}, 3, 3);
    check((gt_shape){1, 1, 7}, 2, 4);
    check((gt_shape){4, 2, 3}, 2, 1);   /* the identity */
    check((gt_shape){5, 1, 1}, 3, 3);   /* a vector: a 1x1 image */
    check((gt_shape){8, 16, 16}, 64, 2); /* 2^20 outputs: the threaded loops (one thread here) */

    /* resize-convolution: conv, upsample, conv (gradients through both convolutions) */
    gt_net_init(&net, "g", (gt_shape){3, 4, 4});
    add(&net, "conv2d out=4 kernel=3 stride=1 pad=1");
    add(&net, "tanh");
    add(&net, "upsample scale=2");
    add(&net, "conv2d out=2 kernel=3 stride=1 pad=1");
    gt_net_finalize(&net, 3, 3, 1);
    CHECK(net.out.c == 2 && net.out.h == 8 && net.out.w == 8, "conv + upsample + conv: 2x8x8");
    float x[3 * 48];
    fill_uniform(x, 3 * 48, 1.0f);
    fd_net(&net, x, 3, 1, rng_ctx(1, 0, 0, 1, 0), FD_STRICT, "conv + tanh + upsample + conv");
    gt_net_free(&net);

    /* bad scales and outputs */
    gt_layer_spec s;
    CHECK_ERROR(gt_layer_spec_parse("upsample scale=0", &s), "scale=0", "scale", "[1, 16]");
    CHECK_ERROR(gt_layer_spec_parse("upsample scale=17", &s), "scale=17", "scale", "[1, 16]");
    CHECK_ERROR(gt_layer_spec_parse("upsample scale=1.5", &s), "scale=1.5", "scale");
    gt_net_init(&net, "big", (gt_shape){1, 1 << 21, 1});
    CHECK_ERROR(gt_net_add(&net, spec_of("upsample scale=16")), "output too large", "33554432x16", "too large");
    gt_net_free(&net);
    return check_report("test_layer_upsample");
}
