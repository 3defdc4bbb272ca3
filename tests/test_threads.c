/* Results do not depend on the number of threads (run.threads): GEMMs of
 * many shapes and both transposes, the forward and backward of networks
 * with every layer kind, an optimizer step with its gradient norm, and the
 * BCE loss give bitwise the same floats with 1, 2 and 3 threads. */
#include "check.h"
#include "gradcheck.h"
#include "gentrain/loss.h"
#include "gentrain/model.h"
#include "gentrain/optim.h"

static void check_gemm(int ta, int tb, int M, int N, int K) {
    float *A = gt_alloc_floats((size_t)M * K), *B = gt_alloc_floats((size_t)K * N);
    float *C[3];
    fill_uniform(A, (size_t)M * K, 1.0f);
    fill_uniform(B, (size_t)K * N, 1.0f);
    for (int t = 0; t < 3; t++) {
        gt_set_threads(t + 1);
        C[t] = gt_alloc_floats((size_t)M * N);
        fill_uniform(C[t], (size_t)M * N, 1.0f); /* beta = 1: the old C counts */
        test_stream -= 1;
        gt_sgemm(ta, tb, M, N, K, 0.5f, A, ta ? M : K, B, tb ? K : N, 1.0f, C[t], N);
    }
    CHECK(!memcmp(C[0], C[1], sizeof(float) * M * N) && !memcmp(C[0], C[2], sizeof(float) * M * N),
          "sgemm %c%c %dx%dx%d differs between 1, 2 and 3 threads", ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K);
    for (int t = 0; t < 3; t++) gt_free(C[t]);
    gt_free(A);
    gt_free(B);
}

/* forward + backward + Adam of a network with `threads`; returns the outputs. */
static void run_net(int threads, void (*build)(gt_net *), gt_shape in, int B, float **out, size_t *n_out) {
    gt_set_threads(threads);
    gt_net net;
    build(&net);
    gt_net_finalize(&net, B, 5, 1);
    size_t nx = (size_t)B * gt_shape_size(in), ny = (size_t)B * gt_shape_size(net.out);
    float *x = gt_alloc_floats(nx), *dy = gt_alloc_floats(ny);
    test_stream = 100;
    fill_uniform(x, nx, 1.0f);
    fill_normal(dy, ny);
    const float *y = gt_net_forward(&net, x, B, 1, rng_ctx(3, 1, 0, 1, 0));
    *n_out = ny + nx + 2 * net.n_params + net.n_state + 2; /* + the gradient norm's double */
    float *o = gt_alloc_floats(*n_out);
    memcpy(o, y, sizeof(float) * ny);
    gt_net_zero_grads(&net);
    const float *dx = gt_net_backward(&net, dy, GT_BACKWARD_ALL, (gt_grads_ready){0});
    memcpy(o + ny, dx, sizeof(float) * nx);
    memcpy(o + ny + nx, net.grads, sizeof(float) * net.n_params);
    gt_optim opt;
    gt_optim_init(&opt, &(gt_optim_opts){GT_OPT_ADAM, 1e-3, 0.9, 0.999, 1e-8, 0}, net.n_params);
    double norm = gt_model_update(&net, &opt, &(gt_step_ctx){0});
    memcpy(o + ny + nx + net.n_params, net.params, sizeof(float) * net.n_params);
    memcpy(o + ny + nx + 2 * net.n_params, net.state, sizeof(float) * net.n_state);
    memcpy(o + ny + nx + 2 * net.n_params + net.n_state, &norm, sizeof norm);
    gt_optim_free(&opt);
    *out = o;
    gt_free(x);
    gt_free(dy);
    gt_net_free(&net);
}

static void build_gen(gt_net *net) { /* a DCGAN generator's shapes, smaller */
    gt_net_init(net, "gen", (gt_shape){16, 1, 1});
    add(net, "dense out=2048 bias=false");
    add(net, "batchnorm");
    add(net, "leakyrelu slope=0.2");
    add(net, "reshape shape=128x4x4");
    add(net, "convt2d out=64 kernel=4 stride=2 pad=1 bias=false");
    add(net, "batchnorm");
    add(net, "relu");
    add(net, "convt2d out=32 kernel=4 stride=2 pad=1");
    add(net, "layernorm");
    add(net, "upsample"); /* 32x32x32: the threaded loops */
    add(net, "conv2d out=3 kernel=3 pad=1");
    add(net, "convt2d out=1 kernel=4 stride=2 pad=1"); /* one output channel: col2im by planes */
    add(net, "tanh");
}
static void build_disc(gt_net *net) {
    gt_net_init(net, "disc", (gt_shape){3, 16, 16});
    add(net, "conv2d out=32 kernel=4 stride=2 pad=1");
    add(net, "leakyrelu slope=0.2");
    add(net, "dropout p=0.3");
    add(net, "conv2d out=64 kernel=4 stride=2 pad=1");
    add(net, "sigmoid");
    add(net, "conv2d out=8 kernel=3 stride=1 pad=1"); /* the taps lowering */
    add(net, "flatten");
    add(net, "dense out=1");
}

static void check_net(const char *name, void (*build)(gt_net *), gt_shape in, int B) {
    float *o[3];
    size_t n[3];
    for (int t = 0; t < 3; t++) run_net(t + 1, build, in, B, &o[t], &n[t]);
    CHECK(n[0] == n[1] && n[0] == n[2] && !memcmp(o[0], o[1], sizeof(float) * n[0]) &&
              !memcmp(o[0], o[2], sizeof(float) * n[0]),
          "%s: forward, backward or the Adam step differs between 1, 2 and 3 threads", name);
    for (int t = 0; t < 3; t++) gt_free(o[t]);
}

/* The BCE loss of a VAE's decoder (summed over pixels, mean over the batch):
 * the value and the gradients with 1, 2 and 3 threads, and the value equal
 * to the terms summed in one thread, in order (each term computed alone). */
static void check_bce(int B, size_t D) {
    size_t n = (size_t)B * D;
    float *logits = gt_alloc_floats(n), *targets = gt_alloc_floats(n), *term = gt_alloc_floats(n), *grad[3], loss[3];
    test_stream = 7;
    fill_normal(logits, n);
    fill_uniform(targets, n, 1.0f);
    for (size_t i = 0; i < n; i++) targets[i] = (targets[i] + 1.0f) / 2.0f;
    for (int t = 0; t < 3; t++) {
        gt_set_threads(t + 1);
        grad[t] = gt_alloc_floats(n);
        loss[t] = gt_bce_logits_sum(logits, targets, B, D, grad[t], term);
    }
    gt_set_threads(1);
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += gt_bce_logits_sum(logits + i, targets + i, 1, 1, NULL, term);
    CHECK(!memcmp(&loss[0], &loss[1], sizeof(float)) && !memcmp(&loss[0], &loss[2], sizeof(float)) &&
              !memcmp(grad[0], grad[1], sizeof(float) * n) && !memcmp(grad[0], grad[2], sizeof(float) * n),
          "BCE [%d, %zu]: the loss or its gradients differ between 1, 2 and 3 threads", B, D);
    float serial = (float)(sum * (1.0 / (double)B));
    CHECK(!memcmp(&loss[0], &serial, sizeof(float)), "BCE [%d, %zu]: %.9g, the terms summed in order %.9g", B, D,
          (double)loss[0], (double)serial);
    for (int t = 0; t < 3; t++) gt_free(grad[t]);
    gt_free(term);
    gt_free(logits);
    gt_free(targets);
}

int main(void) {
    static const int shapes[][3] = {{64, 3136, 512}, {128, 784, 1024}, {2000, 300, 40}, {12544, 64, 100},
                                    {64, 12544, 100}, {7, 5, 3},      {513, 257, 1029}, {1, 4096, 256}};
    for (int s = 0; s < 8; s++)
        for (int t = 0; t < 4; t++) check_gemm(t & 1, t >> 1, shapes[s][0], shapes[s][1], shapes[s][2]);
    check_net("generator", build_gen, (gt_shape){16, 1, 1}, 64);
    check_net("discriminator", build_disc, (gt_shape){3, 16, 16}, 64);
    check_bce(64, 784);
    check_bce(3, 1000); /* a last block shorter than the others */
    gt_set_threads(1);
    return check_report("test_threads");
}
