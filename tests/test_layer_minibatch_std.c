/* The minibatch_std layer kind (src/nn/layers/minibatch_std.c): forward
 * against the definition in double (groups n mod M, as StyleGAN2's reshape
 * when the group divides the batch; batches smaller than the group; groups
 * of unequal size), several features, the coupling of an example to its
 * group and to no other, the same in training and evaluation, and
 * finite-difference gradients. PyTorch parity: tests/parity.sh (dcgan with a
 * minibatch_std in D, tools/torch_ref.py MinibatchStd). */
#include "check.h"
#include "gradcheck.h"

/* y of example n, appended channel f, from the definition */
static double reference(const float *x, int B, int C, int HW, int G, int F, int n, int f) {
    if (G > B) G = B;
    int M = (B + G - 1) / G, m = n % M, Cf = C / F;
    double acc = 0;
    for (int c = f * Cf; c < (f + 1) * Cf; c++)
        for (int q = 0; q < HW; q++) {
            double mu = 0, v = 0;
            int g = 0;
            for (int k = m; k < B; k += M) mu += x[((size_t)k * C + c) * HW + q], g++;
            mu /= g;
            for (int k = m; k < B; k += M) v += pow(x[((size_t)k * C + c) * HW + q] - mu, 2);
            acc += sqrt(v / g + 1e-8);
        }
    return acc / (Cf * HW);
}

static void check(gt_shape in, int B, int G, int F) {
    gt_net net;
    gt_net_init(&net, "mbstd", in);
    add(&net, "minibatch_std group=%d features=%d", G, F);
    gt_net_finalize(&net, B, 1, 0);
    CHECK(net.out.c == in.c + F && net.out.h == in.h && net.out.w == in.w && net.n_params == 0 && net.n_state == 0,
          "shape %dx%dx%d -> %dx%dx%d", in.c, in.h, in.w, net.out.c, net.out.h, net.out.w);
    int HW = in.h * in.w, N = in.c * HW, NO = net.out.c * HW;
    float *x = gt_alloc_floats((size_t)B * N);
    fill_uniform(x, (size_t)B * N, 1.0f);
    float *y = gt_alloc_floats((size_t)B * NO);
    memcpy(y, gt_net_forward(&net, x, B, 1, rng_ctx(1, 0, 0, 1, 0)), sizeof(float) * B * NO);
    double worst = 0;
    int pass = 1;
    for (int n = 0; n < B; n++) {
        pass &= memcmp(y + (size_t)n * NO, x + (size_t)n * N, sizeof(float) * N) == 0;
        for (int f = 0; f < F; f++) {
            double r = reference(x, B, in.c, HW, G, F, n, f);
            for (int q = 0; q < HW; q++) worst = fmax(worst, fabs(y[(size_t)n * NO + N + f * HW + q] - r));
        }
    }
    char label[96];
    snprintf(label, sizeof label, "minibatch_std %dx%dx%d B=%d group=%d features=%d", in.c, in.h, in.w, B, G, F);
    CHECK(pass, "%s: the input channels pass through", label);
    CHECK(worst < 1e-6, "%s: appended channels off by %g", label, worst);
    /* eval = train */
    const float *ye = gt_net_forward(&net, x, B, 0, rng_ctx(1, 0, 0, 1, 0));
    CHECK(memcmp(ye, y, sizeof(float) * B * NO) == 0, "%s: eval equals train", label);
    /* coupling: changing example 0 changes the appended channels of its group only */
    if (B > 1) {
        int Gc = G > B ? B : G, M = (B + Gc - 1) / Gc;
        x[0] += 0.5f;
        const float *y2 = gt_net_forward(&net, x, B, 1, rng_ctx(1, 0, 0, 1, 0));
        int ok = 1;
        for (int n = 1; n < B; n++) {
            int same = memcmp(y2 + (size_t)n * NO, y + (size_t)n * NO, sizeof(float) * NO) == 0;
            ok &= (n % M == 0) ? !same : same;
        }
        CHECK(ok, "%s: example 0 moves the appended channels of examples n = 0 mod %d only", label, M);
        x[0] -= 0.5f;
    }
    fd_net(&net, x, B, 1, rng_ctx(1, 0, 0, 1, 0), FD_STRICT, label);
    gt_free(x);
    gt_free(y);
    gt_net_free(&net);
}

int main(void) {
    gt_set_threads(1);
    check((gt_shape){3, 4, 5}, 8, 4, 1);  /* 2 groups of 4, as StyleGAN2 */
    check((gt_shape){4, 3, 3}, 10, 4, 2); /* 3 groups of 4, 3, 3; 2 features */
    check((gt_shape){6, 1, 1}, 3, 4, 3);  /* a vector, batch smaller than the group */
    check((gt_shape){2, 2, 2}, 1, 4, 1);  /* one example: std sqrt(1e-8) */
    /* in a network: conv, minibatch_std, conv (gradients through both convolutions) */
    gt_net net;
    gt_net_init(&net, "d", (gt_shape){2, 6, 6});
    add(&net, "conv2d out=4 kernel=3 stride=1 pad=1");
    add(&net, "tanh");
    add(&net, "minibatch_std group=2");
    add(&net, "conv2d out=3 kernel=3 stride=2 pad=1");
    gt_net_finalize(&net, 6, 3, 1);
    float x[6 * 72];
    fill_uniform(x, 6 * 72, 1.0f);
    fd_net(&net, x, 6, 1, rng_ctx(1, 0, 0, 1, 0), FD_STRICT, "conv + tanh + minibatch_std + conv");
    gt_net_free(&net);
    /* features must divide the channels */
    gt_net_init(&net, "bad", (gt_shape){3, 2, 2});
    CHECK_ERROR(gt_net_add(&net, spec_of("minibatch_std features=2")), "features=2 on 3 channels", "features=2",
                "3 channels");
    gt_net_free(&net);
    return check_report("test_layer_minibatch_std");
}
