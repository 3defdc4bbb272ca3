/* The layernorm layer kind (src/nn/layers/layernorm.c): forward against the
 * definition in double, examples independent of each other, the same in
 * training and evaluation, tensor names and shapes as nn.LayerNorm's, and
 * finite-difference gradients on vectors and images. PyTorch parity:
 * tests/parity.sh (vae with a layernorm in the encoder). */
#include "check.h"
#include "gradcheck.h"

static void check_forward(gt_shape sh, int B) {
    gt_net net;
    gt_net_init(&net, "ln", sh);
    add(&net, "layernorm eps=1e-3");
    gt_net_finalize(&net, B, 3, 1);
    jitter_params(&net, 0.5f);
    size_t N = gt_shape_size(sh);
    float *x = gt_alloc_floats((size_t)B * N);
    fill_uniform(x, (size_t)B * N, 2.0f);
    for (size_t i = 0; i < (size_t)B * N; i++) x[i] += 3.0f; /* a mean far from 0 */
    const float *w = net.params, *b = net.params + N;
    const float *y = gt_net_forward(&net, x, B, 1, rng_ctx(1, 0, 0, 1, 0));
    double md = 0;
    for (int i = 0; i < B; i++) {
        double m = 0, v = 0;
        for (size_t k = 0; k < N; k++) m += x[i * N + k];
        m /= N;
        for (size_t k = 0; k < N; k++) v += pow(x[i * N + k] - m, 2);
        v /= N;
        for (size_t k = 0; k < N; k++)
            md = fmax(md, fabs(w[k] * (x[i * N + k] - m) / sqrt(v + 1e-3) + b[k] - y[i * N + k]));
    }
    CHECK(md < 1e-5, "layernorm %dx%dx%d forward off by %g", sh.c, sh.h, sh.w, md);
    /* example 0 alone gives the same row; eval mode is the same function */
    float *y0 = gt_alloc_floats(N);
    memcpy(y0, y, sizeof(float) * N);
    const float *ya = gt_net_forward(&net, x, 1, 1, rng_ctx(1, 0, 0, 1, 0));
    CHECK(memcmp(ya, y0, sizeof(float) * N) == 0, "layernorm: an example does not depend on the others");
    const float *ye = gt_net_forward(&net, x, 1, 0, rng_ctx(1, 0, 0, 1, 0));
    CHECK(memcmp(ye, y0, sizeof(float) * N) == 0, "layernorm: eval mode equals train mode");
    fd_net(&net, x, B, 1, rng_ctx(1, 0, 0, 1, 0), FD_STRICT, sh.h == 1 ? "layernorm vector" : "layernorm image");
    gt_free(y0);
    gt_free(x);
    gt_net_free(&net);
}

int main(void) {
    gt_set_threads(1);
    check_forward((gt_shape){9, 1, 1}, 4);
    check_forward((gt_shape){3, 4, 5}, 3);

    /* tensors as nn.LayerNorm's: weight 1 and bias 0 of the per-example shape */
    gt_net net;
    gt_net_init(&net, "ln", (gt_shape){2, 3, 4});
    add(&net, "layernorm");
    gt_net_finalize(&net, 2, 1, 0);
    gt_tensor_ref refs[4];
    int n = gt_net_tensors(&net, refs, 4);
    CHECK(n == 2 && !strcmp(refs[0].name, "00_layernorm/weight") && !strcmp(refs[1].name, "00_layernorm/bias"),
          "layernorm tensor names");
    CHECK(refs[0].rank == 3 && refs[0].dims[0] == 2 && refs[0].dims[1] == 3 && refs[0].dims[2] == 4 &&
              refs[0].trainable && net.n_params == 48 && net.n_state == 0,
          "layernorm weight [2,3,4], no state");
    int init = 1;
    for (int i = 0; i < 24; i++) init &= net.params[i] == 1.0f && net.params[24 + i] == 0.0f;
    CHECK(init, "layernorm init: weight 1, bias 0");
    gt_net_free(&net);
    gt_net_init(&net, "ln", (gt_shape){7, 1, 1});
    add(&net, "layernorm");
    n = gt_net_tensors(&net, refs, 4);
    CHECK(n == 2 && refs[0].rank == 1 && refs[0].dims[0] == 7, "layernorm on a vector: weight [7]");
    gt_net_free(&net);
    CHECK_ERROR(gt_layer_spec_parse("layernorm eps=0", &(gt_layer_spec){0}), "eps = 0", "eps=0", "(0, 1]");
    return check_report("test_layer_layernorm");
}
