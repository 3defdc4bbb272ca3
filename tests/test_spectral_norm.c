/* Spectral normalization (sn=true on dense, conv2d, convt2d; src/nn/spectral.c):
 *  - tensors named and shaped as torch.nn.utils.spectral_norm's state_dict
 *    (weight_orig; weight_u [out], weight_v [in*K*K], unit vectors; dim 1 for
 *    ConvTranspose2d);
 *  - a training forward does exactly one power iteration (against a double
 *    reference) and computes with weight_orig / sigma; an evaluation forward
 *    leaves u and v alone;
 *  - repeated training forwards drive sigma to the largest singular value;
 *  - finite-difference gradients (input, weight_orig, bias) through sigma,
 *    in evaluation mode, where the function does not move between calls,
 *    and the training backward equals it for the same u and v.
 * PyTorch parity of a whole step: tests/parity.sh (dcgan-sn). */
#include "check.h"
#include "gradcheck.h"

typedef struct {
    const char *line;
    gt_shape in;
    int outer, rows, inner; /* the matrix */
} sn_case;

/* W as the matrix [rows, outer*inner]: element (r, o*inner + i) */
static double w_at(const float *W, const sn_case *c, int r, int col) {
    int o = col / c->inner, i = col % c->inner;
    return W[((size_t)o * c->rows + r) * c->inner + i];
}

/* One power iteration from u in double: v = norm(W^T u), u' = norm(W v), sigma = u'.W v */
static double reference(const float *W, const sn_case *c, const float *u, double *u2, double *v2) {
    int cols = c->outer * c->inner;
    double ss = 0;
    for (int j = 0; j < cols; j++) {
        double s = 0;
        for (int r = 0; r < c->rows; r++) s += w_at(W, c, r, j) * u[r];
        v2[j] = s;
        ss += s * s;
    }
    for (int j = 0; j < cols; j++) v2[j] /= sqrt(ss);
    ss = 0;
    for (int r = 0; r < c->rows; r++) {
        double s = 0;
        for (int j = 0; j < cols; j++) s += w_at(W, c, r, j) * v2[j];
        u2[r] = s;
        ss += s * s;
    }
    double sigma = 0;
    for (int r = 0; r < c->rows; r++) {
        sigma += u2[r] * u2[r] / sqrt(ss);
        u2[r] /= sqrt(ss);
    }
    return sigma;
}

static void run_case(const sn_case *c) {
    const int B = 3;
    gt_net net, plain;
    gt_net_init(&net, "sn", c->in);
    add(&net, "%s sn=true", c->line);
    gt_net_finalize(&net, B, 5, 0);
    gt_layer *L = &net.layers[0];
    int cols = c->outer * c->inner;
    size_t nW = (size_t)c->rows * cols;

    /* tensors */
    gt_tensor_ref r[8];
    int n = gt_net_tensors(&net, r, 8);
    char name[64];
    snprintf(name, sizeof name, "00_%s/weight_orig", L->kind->name);
    CHECK(n == 4 && !strcmp(r[0].name, name) && r[0].trainable && !strcmp(r[1].name + 3 + strlen(L->kind->name), "/bias"),
          "%s: tensors weight_orig, bias, ... (got %s, %s)", c->line, r[0].name, r[1].name);
    CHECK(!r[2].trainable && !r[3].trainable && r[2].rank == 1 && r[2].dims[0] == c->rows && r[3].rank == 1 &&
              r[3].dims[0] == cols && strstr(r[2].name, "/weight_u") && strstr(r[3].name, "/weight_v"),
          "%s: weight_u [%d] and weight_v [%d] in state (got [%d], [%d])", c->line, c->rows, cols, r[2].dims[0],
          r[3].dims[0]);
    double nu = 0, nv = 0;
    for (int i = 0; i < c->rows; i++) nu += (double)r[2].data[i] * r[2].data[i];
    for (int i = 0; i < cols; i++) nv += (double)r[3].data[i] * r[3].data[i];
    CHECK(fabs(nu - 1) < 1e-6 && fabs(nv - 1) < 1e-6, "%s: u and v start as unit vectors (%g, %g)", c->line, nu, nv);

    /* one training forward = one power iteration, then the layer with W / sigma */
    float *x = gt_alloc_floats((size_t)B * gt_shape_size(c->in));
    fill_uniform(x, (size_t)B * gt_shape_size(c->in), 1.0f);
    double *u2 = gt_alloc(sizeof(double) * (size_t)c->rows), *v2 = gt_alloc(sizeof(double) * (size_t)cols);
    float u0[4096];
    memcpy(u0, r[2].data, sizeof(float) * (size_t)c->rows);
    double sigma = reference(net.params, c, u0, u2, v2);
    size_t ny = (size_t)B * gt_shape_size(net.out);
    float *y = gt_alloc_floats(ny);
    memcpy(y, gt_net_forward(&net, x, B, 1, rng_ctx(1, 0, 0, 1, 0)), sizeof(float) * ny);
    double du = 0, dv = 0;
    for (int i = 0; i < c->rows; i++) du = fmax(du, fabs(r[2].data[i] - u2[i]));
    for (int i = 0; i < cols; i++) dv = fmax(dv, fabs(r[3].data[i] - v2[i]));
    CHECK(du < 1e-5 && dv < 1e-5, "%s: the training forward does one power iteration (u off by %g, v by %g)", c->line,
          du, dv);
    gt_net_init(&plain, "plain", c->in);
    add(&plain, "%s", c->line);
    gt_net_finalize(&plain, B, 5, 0);
    for (size_t i = 0; i < nW; i++) plain.params[i] = (float)(net.params[i] / sigma);
    memcpy(plain.params + nW, net.params + nW, sizeof(float) * (net.n_params - nW));
    const float *yp = gt_net_forward(&plain, x, B, 1, rng_ctx(1, 0, 0, 1, 0));
    double dy = 0, ymax = 0;
    for (size_t i = 0; i < ny; i++) dy = fmax(dy, fabs(y[i] - yp[i])), ymax = fmax(ymax, fabs(yp[i]));
    CHECK(dy <= 1e-5 * ymax, "%s: output = the layer with weight_orig / sigma (off by %g of %g)", c->line, dy, ymax);

    /* evaluation: u and v stay */
    memcpy(u0, r[2].data, sizeof(float) * (size_t)c->rows);
    gt_net_forward(&net, x, B, 0, rng_ctx(1, 0, 0, 1, 0));
    CHECK(memcmp(u0, r[2].data, sizeof(float) * (size_t)c->rows) == 0, "%s: eval forward leaves u alone", c->line);

    /* many training forwards: sigma -> the largest singular value, which the
     * reference power iteration (from the converged u) reproduces */
    for (int it = 0; it < 300; it++) gt_net_forward(&net, x, 1, 1, rng_ctx(1, 0, 0, 1, 0));
    memcpy(u0, r[2].data, sizeof(float) * (size_t)c->rows);
    double s1 = reference(net.params, c, u0, u2, v2);
    for (int it = 0; it < 500; it++) {
        for (int i = 0; i < c->rows; i++) u0[i] = (float)u2[i];
        reference(net.params, c, u0, u2, v2);
    }
    for (int i = 0; i < c->rows; i++) u0[i] = (float)u2[i];
    double s2 = reference(net.params, c, u0, u2, v2);
    CHECK(fabs(s1 - s2) <= 1e-4 * s2, "%s: sigma converges to the largest singular value (%g vs %g)", c->line, s1, s2);

    /* gradients through sigma: finite differences in eval mode */
    jitter_params(&net, 0.05f);
    char label[128];
    snprintf(label, sizeof label, "%s sn=true", c->line);
    fd_net(&net, x, B, 0, rng_ctx(1, 0, 0, 1, 0), FD_STRICT, label);

    /* the training backward is the same function of the same u and v: run a
     * training forward, put u and v back as they were before it, and compare
     * the eval gradient with the training one */
    float *g_train = gt_alloc_floats(net.n_params), *r_y = gt_alloc_floats(ny);
    fill_normal(r_y, ny);
    gt_net_forward(&net, x, B, 1, rng_ctx(1, 0, 0, 1, 0));
    gt_net_zero_grads(&net);
    gt_net_backward(&net, r_y, GT_BACKWARD_PARAMS, NO_HOOK);
    memcpy(g_train, net.grads, sizeof(float) * net.n_params);
    gt_net_forward(&net, x, B, 0, rng_ctx(1, 0, 0, 1, 0)); /* same u, v: the training forward's */
    gt_net_zero_grads(&net);
    gt_net_backward(&net, r_y, GT_BACKWARD_PARAMS, NO_HOOK);
    CHECK(memcmp(g_train, net.grads, sizeof(float) * net.n_params) == 0,
          "%s: training and eval backward agree for the same u, v", c->line);
    gt_free(g_train);
    gt_free(r_y);
    gt_free(y);
    gt_free(u2);
    gt_free(v2);
    gt_free(x);
    gt_net_free(&plain);
    gt_net_free(&net);
}

int main(void) {
    gt_set_threads(1);
    const sn_case cases[] = {
        {"dense out=7", {11, 1, 1}, 1, 7, 11},
        {"conv2d out=5 kernel=3 stride=2 pad=1", {3, 6, 6}, 1, 5, 27},
        {"convt2d out=4 kernel=4 stride=2 pad=1", {6, 3, 3}, 6, 4, 16},
        {"convt2d out=3 kernel=3 stride=1 pad=0 bias=false", {2, 4, 4}, 2, 3, 9},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (strstr(cases[i].line, "bias=false")) {
            /* without a bias: weight_orig, weight_u, weight_v */
            gt_net net;
            gt_net_init(&net, "sn", cases[i].in);
            add(&net, "%s sn=true", cases[i].line);
            gt_tensor_ref r[8];
            int n = gt_net_tensors(&net, r, 8);
            CHECK(n == 3 && strstr(r[1].name, "/weight_u") && strstr(r[2].name, "/weight_v"),
                  "bias=false sn=true: weight_orig, weight_u, weight_v");
            gt_net_free(&net);
            continue;
        }
        run_case(&cases[i]);
    }
    /* two sn layers in one network */
    gt_net net;
    gt_net_init(&net, "mixed", (gt_shape){2, 4, 4});
    add(&net, "conv2d out=3 kernel=3 pad=1 sn=true");
    add(&net, "tanh");
    add(&net, "flatten");
    add(&net, "dense out=2 sn=true");
    gt_net_finalize(&net, 4, 9, 1);
    float x[4 * 32];
    fill_uniform(x, 4 * 32, 1.0f);
    jitter_params(&net, 0.05f);
    gt_net_forward(&net, x, 4, 1, rng_ctx(1, 0, 0, 1, 0));
    fd_net(&net, x, 4, 0, rng_ctx(1, 0, 0, 1, 0), FD_STRICT, "conv2d sn + tanh + dense sn");
    gt_net_free(&net);
    return check_report("test_spectral_norm");
}
