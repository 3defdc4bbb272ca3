/* Unit tests of src/nn: every layer kind against finite differences (input
 * and parameter gradients), conv2d/convt2d forward against direct loops,
 * batch-norm running statistics and eval mode, dropout mask determinism
 * across batch splits, synchronized batch norm over two simulated replicas
 * (threads), a whole-network gradient check, the network bookkeeping
 * (shape errors, tensor names, init) and its memory account (gt_net_bytes). */
#include "gentrain/core.h"
#include "gentrain/layers.h"
#include "gentrain/nn.h"

#include "check.h"
#include "gradcheck.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- naive references ------------------------------------------------- */

static void naive_conv2d(float *y, const float *x, const float *w, const float *b, int B, int C, int H, int W,
                         int OC, int K, int S, int P) {
    int OH = (H + 2 * P - K) / S + 1, OW = (W + 2 * P - K) / S + 1;
    for (int n = 0; n < B; n++)
        for (int o = 0; o < OC; o++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double s = b ? b[o] : 0.0;
                    for (int c = 0; c < C; c++)
                        for (int ki = 0; ki < K; ki++)
                            for (int kj = 0; kj < K; kj++) {
                                int ih = oh * S - P + ki, iw = ow * S - P + kj;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                s += (double)x[((n * C + c) * H + ih) * W + iw] * w[((o * C + c) * K + ki) * K + kj];
                            }
                    y[((n * OC + o) * OH + oh) * OW + ow] = (float)s;
                }
}

static void naive_convt2d(float *y, const float *x, const float *w, const float *b, int B, int IC, int H, int W,
                          int OC, int K, int S, int P, int OP) {
    int OH = (H - 1) * S - 2 * P + K + OP, OW = (W - 1) * S - 2 * P + K + OP;
    double *acc = calloc((size_t)B * OC * OH * OW, sizeof(double));
    for (int n = 0; n < B; n++)
        for (int i = 0; i < IC; i++)
            for (int ih = 0; ih < H; ih++)
                for (int iw = 0; iw < W; iw++)
                    for (int o = 0; o < OC; o++)
                        for (int ki = 0; ki < K; ki++)
                            for (int kj = 0; kj < K; kj++) {
                                int oh = ih * S - P + ki, ow = iw * S - P + kj;
                                if (oh < 0 || oh >= OH || ow < 0 || ow >= OW) continue;
                                acc[((n * OC + o) * OH + oh) * OW + ow] +=
                                    (double)x[((n * IC + i) * H + ih) * W + iw] * w[((i * OC + o) * K + ki) * K + kj];
                            }
    for (int n = 0; n < B; n++)
        for (int o = 0; o < OC; o++)
            for (int k = 0; k < OH * OW; k++) {
                size_t idx = ((size_t)n * OC + o) * OH * OW + k;
                y[idx] = (float)(acc[idx] + (b ? b[o] : 0.0));
            }
    free(acc);
}

static double max_rel_diff(const float *a, const float *b, size_t n) {
    double m = 0.0, s = 1e-6;
    for (size_t i = 0; i < n; i++) s = fmax(s, fabs(b[i]));
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m / s;
}

/* ---- conv2d / convt2d ---------------------------------------------------- */

typedef struct {
    int C, H, W, OC, K, S, P, OP, bias, B;
} conv_cfg;

static const conv_cfg conv_cfgs[] = {
    {2, 5, 7, 3, 1, 1, 0, 0, 1, 2}, {2, 6, 5, 3, 3, 1, 1, 0, 1, 2}, {3, 7, 9, 2, 3, 2, 1, 0, 0, 3},
    {1, 8, 6, 4, 4, 2, 1, 0, 1, 2}, {2, 9, 7, 3, 5, 1, 2, 0, 1, 2}, {2, 10, 8, 2, 5, 3, 2, 0, 1, 2},
    {3, 7, 8, 2, 4, 3, 0, 0, 1, 2}, {2, 6, 9, 3, 3, 3, 2, 0, 1, 2}, {1, 5, 5, 2, 5, 2, 0, 0, 1, 3},
    {2, 4, 6, 2, 1, 2, 1, 0, 1, 2}, {2, 3, 4, 2, 4, 1, 2, 0, 1, 2},
};
static const conv_cfg convt_cfgs[] = {
    {2, 3, 4, 3, 1, 1, 0, 0, 1, 2}, {2, 3, 5, 3, 3, 1, 1, 0, 1, 2}, {3, 4, 3, 2, 4, 2, 1, 0, 0, 2},
    {2, 3, 4, 2, 4, 2, 1, 1, 1, 2}, {2, 3, 2, 3, 5, 3, 2, 2, 1, 2}, {1, 4, 3, 2, 3, 2, 0, 1, 1, 3},
    {2, 2, 3, 2, 5, 1, 2, 0, 1, 2}, {2, 3, 3, 2, 3, 3, 1, 2, 1, 2}, {2, 4, 5, 2, 1, 2, 0, 1, 1, 2},
    {2, 3, 4, 2, 4, 3, 0, 1, 1, 2},
};

static void test_conv_direct(void) {
    for (size_t t = 0; t < sizeof conv_cfgs / sizeof conv_cfgs[0]; t++) {
        conv_cfg c = conv_cfgs[t];
        int OH = gt_conv_out_size(c.H, c.K, c.S, c.P), OW = gt_conv_out_size(c.W, c.K, c.S, c.P);
        size_t nx = (size_t)c.B * c.C * c.H * c.W, ny = (size_t)c.B * c.OC * OH * OW, nw = (size_t)c.OC * c.C * c.K * c.K;
        float *x = gt_alloc_floats(nx), *w = gt_alloc_floats(nw), *b = gt_alloc_floats(c.OC);
        float *y = gt_alloc_floats(ny), *yr = gt_alloc_floats(ny);
        float *scr = gt_alloc_floats(gt_conv2d_scratch(c.B, c.C, c.H, c.W, c.OC, c.K, c.S, OH, OW));
        fill_uniform(x, nx, 1.0f);
        fill_uniform(w, nw, 1.0f);
        fill_uniform(b, c.OC, 1.0f);
        gt_conv2d_forward(y, x, w, c.bias ? b : NULL, c.B, c.C, c.H, c.W, c.OC, c.K, c.S, c.P, scr);
        naive_conv2d(yr, x, w, c.bias ? b : NULL, c.B, c.C, c.H, c.W, c.OC, c.K, c.S, c.P);
        double d = max_rel_diff(y, yr, ny);
        CHECK(d < 1e-5, "conv2d direct cfg %zu (C%d %dx%d OC%d K%d S%d P%d): max rel diff %g", t, c.C, c.H, c.W,
              c.OC, c.K, c.S, c.P, d);
        gt_free(x), gt_free(w), gt_free(b), gt_free(y), gt_free(yr), gt_free(scr);
    }
    for (size_t t = 0; t < sizeof convt_cfgs / sizeof convt_cfgs[0]; t++) {
        conv_cfg c = convt_cfgs[t];
        int OH = gt_convt_out_size(c.H, c.K, c.S, c.P, c.OP), OW = gt_convt_out_size(c.W, c.K, c.S, c.P, c.OP);
        size_t nx = (size_t)c.B * c.C * c.H * c.W, ny = (size_t)c.B * c.OC * OH * OW, nw = (size_t)c.OC * c.C * c.K * c.K;
        float *x = gt_alloc_floats(nx), *w = gt_alloc_floats(nw), *b = gt_alloc_floats(c.OC);
        float *y = gt_alloc_floats(ny), *yr = gt_alloc_floats(ny);
        float *scr = gt_alloc_floats(gt_convt2d_scratch(c.B, c.C, c.OC, c.K, c.H, c.W));
        fill_uniform(x, nx, 1.0f);
        fill_uniform(w, nw, 1.0f);
        fill_uniform(b, c.OC, 1.0f);
        gt_convt2d_forward(y, x, w, c.bias ? b : NULL, c.B, c.C, c.H, c.W, c.OC, c.K, c.S, c.P, c.OP, scr);
        naive_convt2d(yr, x, w, c.bias ? b : NULL, c.B, c.C, c.H, c.W, c.OC, c.K, c.S, c.P, c.OP);
        double d = max_rel_diff(y, yr, ny);
        CHECK(d < 1e-5, "convt2d direct cfg %zu (IC%d %dx%d OC%d K%d S%d P%d OP%d): max rel diff %g", t, c.C, c.H,
              c.W, c.OC, c.K, c.S, c.P, c.OP, d);
        gt_free(x), gt_free(w), gt_free(b), gt_free(y), gt_free(yr), gt_free(scr);
    }
}

static void test_conv_fd(void) {
    char label[128];
    for (int kind = 0; kind < 2; kind++) {
        const conv_cfg *cfgs = kind ? convt_cfgs : conv_cfgs;
        size_t n = kind ? sizeof convt_cfgs / sizeof convt_cfgs[0] : sizeof conv_cfgs / sizeof conv_cfgs[0];
        for (size_t t = 0; t < n; t++) {
            conv_cfg c = cfgs[t];
            gt_net net;
            gt_net_init(&net, "conv", (gt_shape){c.C, c.H, c.W});
            if (kind)
                add(&net, "convt2d out=%d kernel=%d stride=%d pad=%d output_pad=%d bias=%d", c.OC, c.K, c.S, c.P, c.OP,
                    c.bias);
            else
                add(&net, "conv2d out=%d kernel=%d stride=%d pad=%d bias=%d", c.OC, c.K, c.S, c.P, c.bias);
            gt_net_finalize(&net, c.B, 7, 1);
            jitter_params(&net, 0.3f);
            size_t nx = (size_t)c.B * gt_shape_size(net.in);
            float *x = gt_alloc_floats(nx);
            fill_uniform(x, nx, 1.0f);
            snprintf(label, sizeof label, "%s cfg %zu (C%d %dx%d OC%d K%d S%d P%d OP%d bias%d B%d)",
                     kind ? "convt2d" : "conv2d", t, c.C, c.H, c.W, c.OC, c.K, c.S, c.P, c.OP, c.bias, c.B);
            fd_opts o = FD_STRICT;
            o.h = 0.1; /* linear: no truncation error, larger steps mean less rounding noise */
            fd_net(&net, x, c.B, 1, rng_ctx(1, 0, 0, 1, 0), o, label);
            gt_free(x);
            gt_net_free(&net);
        }
    }
}

/* ---- dense ---------------------------------------------------------------- */

static void test_dense(void) {
    for (int bias = 0; bias < 2; bias++) {
        gt_net net;
        gt_net_init(&net, "dense", (gt_shape){7, 1, 1});
        add(&net, "dense out=5 bias=%d", bias);
        gt_net_finalize(&net, 4, 3, 2);
        jitter_params(&net, 0.2f);
        float x[28];
        fill_uniform(x, 28, 1.0f);
        /* forward against the definition y = x W^T + b */
        const float *y = gt_net_forward(&net, x, 4, 1, rng_ctx(1, 0, 0, 1, 0));
        double md = 0.0;
        for (int b = 0; b < 4; b++)
            for (int o = 0; o < 5; o++) {
                double s2 = bias ? gt_layer_tensor(&net.layers[0], net.layers[0].param, 1)[o] : 0.0;
                for (int i = 0; i < 7; i++) s2 += (double)x[b * 7 + i] * net.params[o * 7 + i];
                md = fmax(md, fabs(s2 - y[b * 5 + o]));
            }
        CHECK(md < 1e-5, "dense forward (bias %d) off by %g", bias, md);
        fd_opts o = FD_STRICT;
        o.h = 0.1;
        fd_net(&net, x, 4, 1, rng_ctx(1, 0, 0, 1, 0), o, bias ? "dense bias" : "dense nobias");
        gt_net_free(&net);
    }
}

/* ---- batchnorm ------------------------------------------------------------ */

static void test_batchnorm(void) {
    gt_shape shapes[2] = {{4, 1, 1}, {3, 3, 4}};
    int Bs[2] = {5, 3};
    for (int k = 0; k < 2; k++) {
        gt_shape sh = shapes[k];
        int B = Bs[k], C = sh.c, HW = sh.h * sh.w;
        gt_net net;
        gt_net_init(&net, "bn", sh);
        add(&net, "batchnorm momentum=0.25");
        gt_net_finalize(&net, B, 5, 3);
        size_t nx = (size_t)B * gt_shape_size(sh);
        float *x = gt_alloc_floats(nx);
        fill_uniform(x, nx, 2.0f);
        for (size_t i = 0; i < nx; i++) x[i] += 0.5f;
        gt_layer *L = &net.layers[0];
        const float *gamma = gt_layer_tensor(L, L->param, 0), *beta = gt_layer_tensor(L, L->param, 1);
        const float *rmean = gt_layer_tensor(L, L->state, 2), *rvar = gt_layer_tensor(L, L->state, 3);
        for (int c = 0; c < C; c++) {
            CHECK(gamma[c] == 1.0f && beta[c] == 0.0f, "bn init gamma 1 beta 0");
            CHECK(rmean[c] == 0.0f && rvar[c] == 1.0f, "bn init running mean 0 var 1");
        }
        jitter_params(&net, 0.5f);
        /* one train step: y by hand and the running statistics by hand */
        const float *y = gt_net_forward(&net, x, B, 1, rng_ctx(1, 0, 0, 1, 0));
        double n = (double)B * HW, maxd = 0.0, maxr = 0.0;
        for (int c = 0; c < C; c++) {
            double m = 0.0, v = 0.0;
            for (int b = 0; b < B; b++)
                for (int l = 0; l < HW; l++) m += x[(b * C + c) * HW + l];
            m /= n;
            for (int b = 0; b < B; b++)
                for (int l = 0; l < HW; l++) v += pow(x[(b * C + c) * HW + l] - m, 2);
            double vb = v / n, vu = v / (n - 1);
            for (int b = 0; b < B; b++)
                for (int l = 0; l < HW; l++) {
                    size_t i = (size_t)(b * C + c) * HW + l;
                    double e = gamma[c] * (x[i] - m) / sqrt(vb + 1e-5) + beta[c];
                    maxd = fmax(maxd, fabs(e - y[i]));
                }
            maxr = fmax(maxr, fabs(rmean[c] - 0.25 * m));
            maxr = fmax(maxr, fabs(rvar[c] - (0.75 + 0.25 * vu)));
        }
        CHECK(maxd < 1e-5, "bn %s train forward off by %g", k ? "2d" : "1d", maxd);
        CHECK(maxr < 1e-6, "bn %s running statistics off by %g", k ? "2d" : "1d", maxr);
        /* eval forward uses the running statistics */
        y = gt_net_forward(&net, x, B, 0, rng_ctx(1, 0, 0, 1, 0));
        maxd = 0.0;
        for (int b = 0; b < B; b++)
            for (int c = 0; c < C; c++)
                for (int l = 0; l < HW; l++) {
                    size_t i = (size_t)(b * C + c) * HW + l;
                    double e = gamma[c] * (x[i] - rmean[c]) /
                                   sqrt(rvar[c] + 1e-5) +
                               beta[c];
                    maxd = fmax(maxd, fabs(e - y[i]));
                }
        CHECK(maxd < 1e-5, "bn %s eval forward off by %g", k ? "2d" : "1d", maxd);
        fd_net(&net, x, B, 1, rng_ctx(1, 0, 0, 1, 0), FD_STRICT, k ? "bn2d train" : "bn1d train");
        fd_net(&net, x, B, 0, rng_ctx(1, 0, 0, 1, 0), FD_STRICT, k ? "bn2d eval" : "bn1d eval");
        gt_free(x);
        gt_net_free(&net);
    }
}

/* ---- activations ---------------------------------------------------------- */

static void test_activations(void) {
    static const char *const lines[4] = {"relu", "leakyrelu slope=0.2", "tanh", "sigmoid"};
    for (int k = 0; k < 4; k++) {
        gt_net net;
        gt_net_init(&net, "act", (gt_shape){2, 3, 4});
        add(&net, "%s", lines[k]);
        gt_net_finalize(&net, 3, 1, 1);
        float x[72];
        fill_away_from_zero(x, 72, 0.05f, 2.5f);
        const float *y = gt_net_forward(&net, x, 3, 1, rng_ctx(1, 0, 0, 1, 0));
        double md = 0.0;
        for (int i = 0; i < 72; i++) {
            double e = k == 0 ? fmax(x[i], 0.0)
                     : k == 1 ? (x[i] > 0 ? x[i] : 0.2 * x[i])
                     : k == 2 ? tanh(x[i])
                              : 1.0 / (1.0 + exp(-x[i]));
            md = fmax(md, fabs(e - y[i]));
        }
        CHECK(md < 1e-6, "%s forward off by %g", lines[k], md);
        fd_net(&net, x, 3, 1, rng_ctx(1, 0, 0, 1, 0), FD_STRICT, lines[k]);
        gt_net_free(&net);
    }
}

/* ---- dropout -------------------------------------------------------------- */

static void test_dropout(void) {
    gt_shape sh = {3, 4, 5};
    int n = 60;
    gt_net net;
    gt_net_init(&net, "drop", sh);
    add(&net, "dropout p=0.3");
    add(&net, "tanh"); /* so that the loss is not linear in the mask alone */
    gt_net_finalize(&net, 4, 1, 1);
    float x[240], y4[240];
    fill_uniform(x, 240, 1.5f);
    gt_rng_ctx r = rng_ctx(99, 17, 0, 1, 2);
    /* values are 0 or x/(1-p); the kept fraction is near 1-p */
    gt_net_forward(&net, x, 4, 1, r);
    const float *m = net.layers[0].y;
    int kept = 0, bad = 0;
    for (int i = 0; i < 240; i++) {
        if (m[i] != 0.0f) {
            kept++;
            if (fabsf(m[i] - x[i] / 0.7f) > 1e-6f * (1 + fabsf(x[i]))) bad++;
        }
    }
    CHECK(bad == 0, "dropout kept values must be x/(1-p) (%d bad)", bad);
    CHECK(kept > 0.55 * 240 && kept < 0.85 * 240, "dropout kept %d of 240 with p 0.3", kept);
    memcpy(y4, m, sizeof y4);
    /* the same masks when the batch is split into two strided halves (as over two ranks) */
    float xa[120], xb[120];
    for (int i = 0; i < 2; i++) {
        memcpy(xa + i * n, x + (2 * i) * n, sizeof(float) * n);     /* positions 0, 2 */
        memcpy(xb + i * n, x + (2 * i + 1) * n, sizeof(float) * n); /* positions 1, 3 */
    }
    gt_net_forward(&net, xa, 2, 1, rng_ctx(99, 17, 0, 2, 2));
    int diff = 0;
    for (int i = 0; i < 2; i++) diff += memcmp(net.layers[0].y + i * n, y4 + (2 * i) * n, sizeof(float) * n) != 0;
    gt_net_forward(&net, xb, 2, 1, rng_ctx(99, 17, 1, 2, 2));
    for (int i = 0; i < 2; i++) diff += memcmp(net.layers[0].y + i * n, y4 + (2 * i + 1) * n, sizeof(float) * n) != 0;
    CHECK(diff == 0, "dropout masks differ between one B=4 call and two strided B=2 calls (%d rows)", diff);
    /* another step, call or seed gives another mask */
    gt_rng_ctx others[3] = {rng_ctx(99, 18, 0, 1, 2), rng_ctx(99, 17, 0, 1, 3), rng_ctx(98, 17, 0, 1, 2)};
    for (int k = 0; k < 3; k++) {
        gt_net_forward(&net, x, 4, 1, others[k]);
        CHECK(memcmp(net.layers[0].y, y4, sizeof y4) != 0, "dropout mask did not change with rng variant %d", k);
    }
    /* eval: identity (and backward passes dy through) */
    const float *ye = gt_net_forward(&net, x, 4, 0, r);
    int same = 1;
    for (int i = 0; i < 240; i++) same &= net.layers[0].y[i] == x[i] && fabsf(ye[i] - tanhf(x[i])) < 1e-6f;
    CHECK(same, "dropout in eval mode must be the identity");
    fd_net(&net, x, 4, 1, r, FD_STRICT, "dropout train");
    fd_net(&net, x, 4, 0, r, FD_STRICT, "dropout eval");
    gt_net_free(&net);

    /* p = 0 keeps everything, p = 1 drops everything (as PyTorch) */
    for (int k = 0; k < 2; k++) {
        gt_net d;
        gt_net_init(&d, "drop01", (gt_shape){10, 1, 1});
        if (k)
            CHECK_ERROR(gt_layer_spec_parse("dropout p=1", &(gt_layer_spec){0}), "dropout p=1", "p=1", "[0, 1)");
        add(&d, "dropout p=%s", k ? "0.99999994" : "0");
        gt_net_finalize(&d, 2, 1, 1);
        const float *yy = gt_net_forward(&d, x, 2, 1, r);
        int ok = 1;
        int kept = 0;
        for (int i = 0; i < 20; i++) ok &= k ? (kept += yy[i] != 0.0f, 1) : yy[i] == x[i];
        CHECK(ok && kept <= 1, "dropout p=%s", k ? "0.99999994 drops (almost) everything" : "0 keeps everything");
        gt_net_free(&d);
    }
}

/* ---- reshape ---------------------------------------------------------------- */

static void test_reshape(void) {
    gt_net net;
    gt_net_init(&net, "reshape", (gt_shape){2, 4, 3});
    add(&net, "conv2d out=3 kernel=3 pad=1");
    add(&net, "flatten"); /* 36 */
    CHECK(net.out.c == 36 && net.out.h == 1 && net.out.w == 1, "flatten gives 36x1x1");
    add(&net, "dense out=12");
    add(&net, "reshape shape=3x2x2");
    add(&net, "sigmoid");
    gt_net_finalize(&net, 3, 11, 4);
    float x[72];
    fill_uniform(x, 72, 1.0f);
    fd_net(&net, x, 3, 1, rng_ctx(1, 0, 0, 1, 0), FD_STRICT, "conv-flatten-dense-reshape-sigmoid");
    gt_net_free(&net);

    /* a reshape as the very first layer (aliases the caller's input) */
    gt_net_init(&net, "reshape0", (gt_shape){12, 1, 1});
    add(&net, "reshape shape=3x2x2");
    add(&net, "convt2d out=2 kernel=3 stride=2 pad=1 output_pad=1");
    CHECK(net.out.c == 2 && net.out.h == 4 && net.out.w == 4, "convt 2x2 k3 s2 p1 op1 gives 4x4");
    gt_net_finalize(&net, 2, 11, 5);
    fill_uniform(x, 24, 1.0f);
    fd_net(&net, x, 2, 1, rng_ctx(1, 0, 0, 1, 0), FD_STRICT, "reshape-first");
    gt_net_free(&net);
}

/* ---- whole network ----------------------------------------------------------- */

/* A grads-ready hook that records its calls. */
typedef struct {
    int n;
    size_t offset[32];
    const gt_net *net;
} hook_log;
static void log_ready(const gt_net *net, size_t offset, void *arg) {
    hook_log *l = arg;
    if (l->n < 32) l->offset[l->n] = offset;
    l->n++;
    l->net = net;
}

static void build_whole(gt_net *net, int max_batch) {
    gt_net_init(net, "whole", (gt_shape){6, 1, 1});
    add(net, "dense out=18");
    add(net, "batchnorm");
    add(net, "leakyrelu slope=0.2");
    add(net, "reshape shape=2x3x3");
    add(net, "convt2d out=3 kernel=4 stride=2 pad=1 bias=false");
    add(net, "batchnorm");
    add(net, "relu");
    add(net, "conv2d out=2 kernel=3 pad=1");
    add(net, "tanh");
    gt_net_finalize(net, max_batch, 21, 6);
}

static void test_whole_net(void) {
    gt_net net;
    build_whole(&net, 4);
    CHECK(net.out.c == 2 && net.out.h == 6 && net.out.w == 6, "whole net output 2x6x6 (got %dx%dx%d)", net.out.c,
          net.out.h, net.out.w);
    jitter_params(&net, 0.1f);
    float x[24];
    fill_uniform(x, 24, 1.0f);
    fd_opts o = {2e-3, 1e-2, 2e-3, 0.02, 600, 1};
    fd_net(&net, x, 4, 1, rng_ctx(1, 0, 0, 1, 0), o, "whole net train");
    fd_net(&net, x, 4, 0, rng_ctx(1, 0, 0, 1, 0), o, "whole net eval");

    /* GT_BACKWARD_INPUT alone: the same dx, gradients untouched */
    float dy[288], dx1[24];
    fill_normal(dy, 288);
    gt_net_forward(&net, x, 4, 1, rng_ctx(1, 0, 0, 1, 0));
    gt_net_zero_grads(&net);
    memcpy(dx1, gt_net_backward(&net, dy, GT_BACKWARD_ALL, NO_HOOK), sizeof dx1);
    gt_net_forward(&net, x, 4, 1, rng_ctx(1, 0, 0, 1, 0));
    float *g = gt_alloc_floats(net.n_params);
    memcpy(g, net.grads, sizeof(float) * net.n_params);
    hook_log log = {0};
    const float *dx2 = gt_net_backward(&net, dy, GT_BACKWARD_INPUT, (gt_grads_ready){log_ready, &log});
    CHECK(memcmp(dx1, dx2, sizeof dx1) == 0, "GT_BACKWARD_INPUT changes dx");
    CHECK(memcmp(g, net.grads, sizeof(float) * net.n_params) == 0, "GT_BACKWARD_INPUT touched the gradients");
    CHECK(log.n == 0, "the grads-ready hook ran %d times without parameter gradients", log.n);
    /* GT_BACKWARD_PARAMS alone: the same gradients, no dx; the hook reports
     * every layer with parameters once, in decreasing offset order */
    gt_net_zero_grads(&net);
    gt_net_forward(&net, x, 4, 1, rng_ctx(1, 0, 0, 1, 0));
    CHECK(gt_net_backward(&net, dy, GT_BACKWARD_PARAMS, (gt_grads_ready){log_ready, &log}) == NULL,
          "no dx without GT_BACKWARD_INPUT");
    CHECK(memcmp(g, net.grads, sizeof(float) * net.n_params) == 0, "GT_BACKWARD_PARAMS gives other gradients");
    int with_params = 0, ordered = 1;
    for (int i = net.n_layers - 1; i >= 0; i--)
        if (net.layers[i].n_params) {
            ordered &= with_params < log.n && log.offset[with_params] == net.layers[i].param_offset;
            with_params++;
        }
    CHECK(log.n == with_params && ordered && log.net == &net,
          "grads-ready hook: %d calls for %d layers with parameters (in decreasing offset order: %d)", log.n,
          with_params, ordered);
    /* grads accumulate: a second backward doubles them */
    gt_net_zero_grads(&net);
    gt_net_forward(&net, x, 4, 1, rng_ctx(1, 0, 0, 1, 0));
    gt_net_backward(&net, dy, GT_BACKWARD_ALL, NO_HOOK);
    memcpy(g, net.grads, sizeof(float) * net.n_params);
    gt_net_backward(&net, dy, GT_BACKWARD_ALL, NO_HOOK);
    double md = 0.0;
    for (size_t i = 0; i < net.n_params; i++) md = fmax(md, fabs(net.grads[i] - 2.0 * g[i]));
    CHECK(md < 1e-5, "gradients must accumulate over backward calls (off by %g)", md);
    gt_free(g);
    gt_net_free(&net);

    /* a dropout network too */
    gt_net_init(&net, "dropnet", (gt_shape){5, 1, 1});
    add(&net, "dense out=8");
    add(&net, "dropout p=0.4");
    add(&net, "sigmoid");
    add(&net, "dense out=3");
    gt_net_finalize(&net, 3, 2, 2);
    fill_uniform(x, 15, 1.0f);
    fd_net(&net, x, 3, 1, rng_ctx(5, 6, 7, 3, 1), FD_STRICT, "dense-dropout-sigmoid-dense");
    gt_net_free(&net);
}

/* ---- synchronized batch norm -------------------------------------------------- */

static int hook_calls;
static void double_hook(float *buf, int n, void *arg) {
    (void)arg;
    hook_calls++;
    for (int i = 0; i < n; i++) buf[i] *= 2.0f;
}

typedef struct {
    pthread_barrier_t bar;
    float *slot[2];
} sync_shared;
typedef struct {
    sync_shared *sh;
    int id;
    gt_net *net;
    const float *x, *dy, *dx;
    int B;
} replica;

/* An allreduce between two threads: both post their buffer, both read the sum
 * (in the same order, so both get identical floats), then both write. */
static void thread_sum_hook(float *buf, int n, void *arg) {
    replica *r = arg;
    r->sh->slot[r->id] = buf;
    pthread_barrier_wait(&r->sh->bar);
    float *tmp = malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < n; i++) tmp[i] = r->sh->slot[0][i] + r->sh->slot[1][i];
    pthread_barrier_wait(&r->sh->bar);
    memcpy(buf, tmp, sizeof(float) * (size_t)n);
    free(tmp);
}

static void *replica_main(void *arg) {
    replica *r = arg;
    gt_net_forward(r->net, r->x, r->B, 1, rng_ctx(1, 0, (uint64_t)r->id * r->B, 1, 0));
    gt_net_zero_grads(r->net);
    r->dx = gt_net_backward(r->net, r->dy, GT_BACKWARD_ALL, NO_HOOK);
    return NULL;
}

static void build_bn_net(gt_net *net, int max_batch) {
    gt_net_init(net, "sync", (gt_shape){2, 4, 5});
    add(net, "conv2d out=3 kernel=3 pad=1");
    add(net, "batchnorm");
    add(net, "tanh");
    add(net, "flatten");
    add(net, "dense out=4");
    add(net, "batchnorm");
    gt_net_finalize(net, max_batch, 77, 1);
}

static void test_sync_bn(void) {
    enum { B = 4, NX = 40, NY = 4 };
    float x[B * NX], dy[B * NY];
    fill_uniform(x, B * NX, 1.0f);
    fill_normal(dy, B * NY);

    /* world = 2 with identical replicas equals local batch norm */
    gt_net loc, dbl;
    build_bn_net(&loc, B);
    build_bn_net(&dbl, B);
    dbl.bn_sync = (gt_bn_sync){double_hook, NULL, 2};
    const float *y1 = gt_net_forward(&loc, x, B, 1, rng_ctx(1, 0, 0, 1, 0));
    const float *y2 = gt_net_forward(&dbl, x, B, 1, rng_ctx(1, 0, 0, 1, 0));
    CHECK(max_rel_diff(y2, y1, B * NY) < 1e-5, "sync BN with a doubling hook differs from local BN (forward)");
    gt_net_zero_grads(&loc), gt_net_zero_grads(&dbl);
    const float *d1 = gt_net_backward(&loc, dy, GT_BACKWARD_ALL, NO_HOOK);
    const float *d2 = gt_net_backward(&dbl, dy, GT_BACKWARD_ALL, NO_HOOK);
    CHECK(max_rel_diff(d2, d1, B * NX) < 1e-4, "sync BN with a doubling hook differs from local BN (dx)");
    CHECK(max_rel_diff(dbl.grads, loc.grads, loc.n_params) < 1e-4, "sync BN doubling hook: param grads differ");
    CHECK(hook_calls == 6, "train mode: the hook sums twice per BN layer forward and once backward (%d calls)",
          hook_calls);
    /* eval mode never calls the hook (running statistics, nothing to sum) */
    hook_calls = 0;
    y2 = gt_net_forward(&dbl, x, B, 0, rng_ctx(1, 0, 0, 1, 0));
    gt_net_backward(&dbl, dy, GT_BACKWARD_ALL, NO_HOOK);
    CHECK(hook_calls == 0, "eval mode called the sync-BN hook %d times", hook_calls);

    /* two replicas of B/2 each (threads) equal one net with the whole batch */
    gt_net rep[2];
    build_bn_net(&rep[0], B / 2);
    build_bn_net(&rep[1], B / 2);
    sync_shared sh;
    pthread_barrier_init(&sh.bar, NULL, 2);
    replica ra[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        ra[i] = (replica){&sh, i, &rep[i], x + i * (B / 2) * NX, dy + i * (B / 2) * NY, NULL, B / 2};
        rep[i].bn_sync = (gt_bn_sync){thread_sum_hook, &ra[i], 2};
        pthread_create(&th[i], NULL, replica_main, &ra[i]);
    }
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&sh.bar);
    gt_net glob;
    build_bn_net(&glob, B);
    gt_net_forward(&glob, x, B, 1, rng_ctx(1, 0, 0, 1, 0));
    gt_net_zero_grads(&glob);
    const float *dg = gt_net_backward(&glob, dy, GT_BACKWARD_ALL, NO_HOOK);
    const float *yg = glob.layers[glob.n_layers - 1].y;
    for (int i = 0; i < 2; i++) {
        const float *yr = rep[i].layers[rep[i].n_layers - 1].y;
        CHECK(max_rel_diff(yr, yg + i * (B / 2) * NY, (B / 2) * NY) < 1e-5, "sync BN replica %d forward", i);
        CHECK(max_rel_diff(ra[i].dx, dg + i * (B / 2) * NX, (B / 2) * NX) < 1e-4, "sync BN replica %d dx", i);
        CHECK(max_rel_diff(rep[i].state, glob.state, glob.n_state) < 1e-5, "sync BN replica %d running stats", i);
    }
    float *gs = gt_alloc_floats(glob.n_params);
    for (size_t i = 0; i < glob.n_params; i++) gs[i] = rep[0].grads[i] + rep[1].grads[i];
    CHECK(max_rel_diff(gs, glob.grads, glob.n_params) < 1e-4, "sync BN: replica grads do not sum to the global grads");
    gt_free(gs);
    gt_net_free(&glob);
    gt_net_free(&loc);
    gt_net_free(&dbl);
    gt_net_free(&rep[0]);
    gt_net_free(&rep[1]);
}

/* ---- network bookkeeping ------------------------------------------------------ */

static void test_bookkeeping(void) {
    for (int k = 0; gt_layer_kinds[k]; k++)
        CHECK(gt_layer_kind_find(gt_layer_kinds[k]->name) == gt_layer_kinds[k], "kind name round trip %d", k);
    CHECK(gt_layer_kind_find("nonsense") == NULL, "unknown kind name");

    gt_net net;
    gt_net_init(&net, "errs", (gt_shape){2, 5, 6});
    CHECK_ERROR(gt_net_add(&net, spec_of("dense out=3")), "dense after a non-flat input", "net errs, layer 0 (dense",
                "flat");
    CHECK_ERROR(gt_net_add(&net, spec_of("conv2d out=2 kernel=6")), "kernel larger than the input", "kernel 6",
                "larger than the padded input 5x6");
    add(&net, "conv2d out=2 kernel=6 pad=1"); /* fits the padded 7x8 */
    CHECK(net.out.c == 2 && net.out.h == 2 && net.out.w == 3, "conv k6 p1 on 5x6 gives 2x3");
    CHECK_ERROR(gt_net_add(&net, spec_of("reshape shape=5")), "reshape of 12 to 5", "cannot reshape 12");
    CHECK_ERROR(gt_net_add(&net, spec_of("convt2d out=2 kernel=3 stride=2 output_pad=2")), "output_pad >= stride",
                "output_pad");
    CHECK_ERROR(gt_layer_spec_parse("dropout p=1.5", &(gt_layer_spec){0}), "dropout p 1.5", "p=1.5", "[0, 1)");
    CHECK(net.n_layers == 1, "failed adds must not add layers (have %d)", net.n_layers);
    gt_net_free(&net);

    /* tensors, layout, init */
    gt_net a, b;
    build_whole(&a, 2);
    build_whole(&b, 2);
    gt_tensor_ref refs[32];
    int n = gt_net_tensors(&a, refs, 32);
    const char *names[] = {"00_dense/weight",        "00_dense/bias",          "01_batchnorm/weight",
                           "01_batchnorm/bias",      "01_batchnorm/running_mean", "01_batchnorm/running_var",
                           "04_convt2d/weight",      "05_batchnorm/weight",    "05_batchnorm/bias",
                           "05_batchnorm/running_mean", "05_batchnorm/running_var", "07_conv2d/weight",
                           "07_conv2d/bias"};
    CHECK(n == 13, "whole net has 13 tensors (got %d)", n);
    for (int i = 0; i < n && i < 13; i++) CHECK(strcmp(refs[i].name, names[i]) == 0, "tensor %d named %s", i, refs[i].name);
    CHECK(refs[0].rank == 2 && refs[0].dims[0] == 18 && refs[0].dims[1] == 6, "dense weight dims [18,6]");
    CHECK(refs[6].rank == 4 && refs[6].dims[0] == 2 && refs[6].dims[1] == 3 && refs[6].dims[2] == 4 &&
              refs[6].dims[3] == 4, "convt weight dims [in 2, out 3, 4, 4]");
    CHECK(refs[11].dims[0] == 2 && refs[11].dims[1] == 3 && refs[11].dims[2] == 3, "conv weight dims [2,3,3,3]");
    CHECK(!refs[4].trainable && refs[4].data == a.state, "running_mean is state");
    CHECK(gt_net_floats_needed(&a, 2) > 2 * a.n_params, "floats needed counts params and gradients and more");
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        size_t cnt = 1;
        for (int k = 0; k < refs[i].rank; k++) cnt *= (size_t)refs[i].dims[k];
        if (refs[i].trainable) {
            CHECK(refs[i].data == a.params + total, "tensor %s not contiguous in params", refs[i].name);
            total += cnt;
        }
    }
    CHECK(total == a.n_params, "tensors cover all %zu params (got %zu)", a.n_params, total);
    CHECK(gt_net_tensors(&a, NULL, 0) == 13, "count without refs");
    CHECK(memcmp(a.params, b.params, sizeof(float) * a.n_params) == 0, "init is deterministic");
    /* bounds: dense 1/sqrt(6), convt 1/sqrt(out*K*K = 48), conv 1/sqrt(3*9) */
    struct { int t; double bound; } bd[] = {{0, 1 / sqrt(6.0)}, {1, 1 / sqrt(6.0)}, {6, 1 / sqrt(48.0)},
                                            {11, 1 / sqrt(27.0)}, {12, 1 / sqrt(27.0)}};
    for (size_t k = 0; k < sizeof bd / sizeof bd[0]; k++) {
        gt_tensor_ref *tr = &refs[bd[k].t];
        size_t cnt = 1;
        for (int q = 0; q < tr->rank; q++) cnt *= (size_t)tr->dims[q];
        double mx = 0;
        for (size_t i = 0; i < cnt; i++) mx = fmax(mx, fabs(tr->data[i]));
        CHECK(mx <= bd[k].bound && (cnt < 50 || mx > 0.9 * bd[k].bound), "%s init max %g, bound %g", tr->name, mx, bd[k].bound);
    }
    /* weight stream is (seed, INIT, net_id << 8 | layer, step 0, index 0) */
    float u[3];
    gt_rand_uniform(u, 3, 21, GT_PURPOSE(GT_RNG_INIT, 6u << 8 | 7u), 0, 0);
    double bnd = 1 / sqrt(27.0);
    CHECK(fabs(refs[11].data[2] - (2 * u[2] - 1) * bnd) < 1e-6, "conv weight init from the documented stream");
    gt_net_print(&a);
    gt_net_free(&a);
    gt_net_free(&b);
}

/* ---- the memory account (gt_net_bytes) -------------------------------------- */

/* A small network's bytes by what they hold, against a count by hand from its
 * shapes (batch 2, input 3x8x8). */
static void test_memory(void) {
    gt_net net;
    gt_net_init(&net, "mem", (gt_shape){3, 8, 8});
    add(&net, "conv2d out=4 kernel=3 pad=1"); /* 4x8x8 */
    add(&net, "batchnorm");
    add(&net, "relu");
    add(&net, "dropout p=0.5");
    add(&net, "flatten"); /* an alias: no buffer */
    add(&net, "dense out=5");
    add(&net, "convt2d out=2 kernel=2 stride=2"); /* never run here: only its shape and scratch */
    const int B = 2;
    gt_net_finalize(&net, B, 1, 1);
    /* trainable: conv 4*3*3*3 + 4, batch norm 4 + 4, dense 256*5 + 5, convt [5,2,2,2] + 2 */
    size_t params = (108 + 4) + (4 + 4) + (1280 + 5) + (40 + 2);
    /* state: batch norm's running mean and variance */
    size_t state = 4 + 4;
    /* activations: outputs of conv, batchnorm, relu, dropout (B*256 each), dense (B*5), convt (B*2*2*2);
     * batch norm's aux: x-hat B*256 + mean, invstd 4 + 4, sums 8, coef 12, acc 2*4 doubles (8 floats) */
    size_t bn_aux = 512 + 4 + 4 + 8 + 12 + 8 * 2, dropout_aux = (size_t)B * 256;
    /* the two delta buffers: B times the largest layer input (256) each */
    size_t dx = 2 * (size_t)B * 256;
    size_t activations = 4 * (size_t)B * 256 + (size_t)B * 5 + (size_t)B * 8 + bn_aux + dropout_aux + dx;
    /* workspaces: conv2d's columns [C*K*K, B*L] and t [OC, B*L] (L = 64) in its aux; the shared scratch is the
     * largest layer's: convt2d's columns [OC*K*K, B*H*W] and its input rows [IC, B*H*W] (H = W = 1) */
    size_t workspaces = 27 * (size_t)B * 64 + 4 * (size_t)B * 64 + (8 * (size_t)B + 5 * (size_t)B);
    const gt_net_bytes *b = &net.bytes;
    CHECK(net.n_params == params, "memory net: %zu parameters, by hand %zu", net.n_params, params);
    CHECK(b->params == 4 * params && b->grads == 4 * params, "parameter and gradient bytes %zu, %zu, by hand %zu",
          b->params, b->grads, 4 * params);
    CHECK(b->state == 4 * state, "state bytes %zu, by hand %zu", b->state, 4 * state);
    CHECK(b->activations == 4 * activations, "activation bytes %zu, by hand %zu", b->activations, 4 * activations);
    CHECK(b->workspaces == 4 * workspaces, "workspace bytes %zu, by hand %zu", b->workspaces, 4 * workspaces);
    CHECK(b->params + b->grads + b->state + b->activations + b->workspaces == 4 * gt_net_floats_needed(&net, B),
          "the account adds up to gt_net_floats_needed");
    gt_net_free(&net);

    /* spectral norm's block is a workspace: 2 u doubles (2*rows floats) + W_sn and its gradient + 2 */
    gt_net_init(&net, "sn", (gt_shape){6, 1, 1});
    add(&net, "dense out=3 sn=true");
    gt_net_finalize(&net, 4, 1, 1);
    CHECK(net.bytes.workspaces == 4 * (2 * 3 + 2 * 18 + 2), "sn block bytes %zu, by hand %d", net.bytes.workspaces,
          4 * (2 * 3 + 2 * 18 + 2));
    CHECK(net.bytes.state == 4 * (3 + 6), "sn's u and v are state (%zu bytes)", net.bytes.state);
    gt_net_free(&net);

    /* a conv2d that takes the taps lowering (stride 1, OC*H*W <= C*OH*OW) holds only its T [OC*K*K, B*H*W] */
    gt_net_init(&net, "taps", (gt_shape){4, 5, 5});
    add(&net, "conv2d out=1 kernel=3 pad=1");
    gt_net_finalize(&net, 3, 1, 1);
    CHECK(net.bytes.workspaces == 4 * (9 * 3 * 25), "taps conv2d: workspace bytes %zu, by hand %d",
          net.bytes.workspaces, 4 * (9 * 3 * 25));
    gt_net_free(&net);
}

int main(void) {
    gt_set_threads(1);
    test_conv_direct();
    test_conv_fd();
    test_dense();
    test_batchnorm();
    test_activations();
    test_dropout();
    test_reshape();
    test_whole_net();
    test_sync_bn();
    test_bookkeeping();
    test_memory();
    return check_report("test_layers");
}
