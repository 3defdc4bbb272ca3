/* Gradient checks of networks for the C tests: deterministic fills,
 * finite differences of a random projection of the output against every
 * analytic gradient (input and each parameter tensor), and small helpers to
 * build a network from layer lines. Include after check.h. */
#ifndef GENTRAIN_TEST_GRADCHECK_H
#define GENTRAIN_TEST_GRADCHECK_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gentrain/core.h"
#include "gentrain/nn.h"

/* not every test uses every helper */
#pragma GCC diagnostic ignored "-Wunused-function"

static uint64_t test_stream;
static const gt_grads_ready NO_HOOK = {0};

/* uniform in [-a, a] */
static void fill_uniform(float *p, size_t n, float a) {
    gt_rand_uniform(p, n, 1234, GT_PURPOSE(GT_RNG_TEST, 1), 0, test_stream++);
    for (size_t i = 0; i < n; i++) p[i] = (2.0f * p[i] - 1.0f) * a;
}
static void fill_normal(float *p, size_t n) { gt_rand_normal(p, n, 1234, GT_PURPOSE(GT_RNG_TEST, 2), 0, test_stream++); }
/* uniform with |x| in [lo, hi], random sign: keeps activations off their kinks */
static void fill_away_from_zero(float *p, size_t n, float lo, float hi) {
    fill_uniform(p, n, 1.0f);
    for (size_t i = 0; i < n; i++) {
        float m = lo + (hi - lo) * fabsf(p[i]);
        p[i] = p[i] < 0 ? -m : m;
    }
}

static gt_rng_ctx rng_ctx(uint64_t seed, uint64_t step, uint64_t example0, uint64_t stride, uint32_t call) {
    gt_rng_ctx r = {seed, step, example0, stride, call};
    return r;
}

static double net_loss(gt_net *net, const float *x, int B, int train, gt_rng_ctx rng, const float *r) {
    const float *y = gt_net_forward(net, x, B, train, rng);
    size_t n = (size_t)B * gt_shape_size(net->out);
    double L = 0.0;
    for (size_t i = 0; i < n; i++) L += (double)y[i] * r[i];
    return L;
}

typedef struct {
    double h;            /* finite-difference step */
    double rtol, atol;   /* atol relative to the group's largest analytic gradient */
    double allow_fail;   /* fraction of entries allowed to miss */
    int max_checks;      /* per group; entries are sampled evenly beyond that */
    int skip_kinks;      /* 1: skip entries whose one-sided differences disagree (a ReLU kink was crossed) */
} fd_opts;

static const fd_opts FD_STRICT = {1e-2, 1e-2, 2e-3, 0.0, 600, 0};
static double fd_scale; /* largest analytic gradient of the network under test */

/* Compares one group of analytic gradients with central differences of L
 * with respect to the floats at p (inputs or parameters). */
static void fd_group(gt_net *net, float *x, int B, int train, gt_rng_ctx rng, const float *r, float *p,
                     const float *an, size_t n, fd_opts o, const char *label, const char *group) {
    if (n == 0) return;
    double amax = 0.0;
    for (size_t i = 0; i < n; i++) amax = fmax(amax, fabs(an[i]));
    double atol = o.atol * fmax(fmax(amax, 0.05 * fd_scale), 1e-3);
    size_t step = n > (size_t)o.max_checks ? (n + o.max_checks - 1) / o.max_checks : 1;
    int checked = 0, failed = 0, skipped = 0;
    double worst = 0.0;
    size_t worst_i = 0;
    double worst_fd = 0, worst_an = 0;
    for (size_t i = 0; i < n; i += step) {
        float v = p[i];
        float vp = (float)(v + o.h), vm = (float)(v - o.h);
        p[i] = vp;
        double Lp = net_loss(net, x, B, train, rng, r);
        p[i] = vm;
        double Lm = net_loss(net, x, B, train, rng, r);
        p[i] = v;
        double fd = (Lp - Lm) / ((double)vp - (double)vm);
        if (o.skip_kinks) {
            double L0 = net_loss(net, x, B, train, rng, r);
            double f1 = (Lp - L0) / ((double)vp - v), f2 = (L0 - Lm) / ((double)v - vm);
            if (fabs(f1 - f2) > atol + o.rtol * fmax(fabs(f1), fabs(f2))) {
                skipped++;
                continue;
            }
        }
        double err = fabs(fd - an[i]) / (atol + o.rtol * fmax(fabs(fd), fabs(an[i])));
        checked++;
        if (err > 1.0) failed++;
        if (err > worst) {
            worst = err;
            worst_i = i;
            worst_fd = fd;
            worst_an = an[i];
        }
    }
    if (skipped || failed)
        printf("  %s: %s: %d checked, %d off, %d skipped at kinks\n", label, group, checked, failed, skipped);
    int ok = failed <= (int)(o.allow_fail * checked) && skipped <= (checked + skipped) / 4;
    CHECK(ok, "%s: %s gradient: %d of %d entries off, %d skipped at kinks (worst [%zu] fd %.6g analytic %.6g, %.2f x tolerance)",
          label, group, failed, checked, skipped, worst_i, worst_fd, worst_an, worst);
}

/* Full check of a network: input gradient and every parameter tensor. */
static void fd_net(gt_net *net, float *x, int B, int train, gt_rng_ctx rng, fd_opts o, const char *label) {
    size_t ny = (size_t)B * gt_shape_size(net->out), nx = (size_t)B * gt_shape_size(net->in);
    float *r = gt_alloc_floats(ny), *dxa = gt_alloc_floats(nx), *ga = gt_alloc_floats(net->n_params + 1);
    fill_normal(r, ny);
    gt_net_forward(net, x, B, train, rng);
    gt_net_zero_grads(net);
    const float *dx = gt_net_backward(net, r, GT_BACKWARD_ALL, NO_HOOK);
    memcpy(dxa, dx, sizeof(float) * nx);
    memcpy(ga, net->grads, sizeof(float) * net->n_params);
    fd_scale = 0.0;
    for (size_t i = 0; i < nx; i++) fd_scale = fmax(fd_scale, fabs(dxa[i]));
    for (size_t i = 0; i < net->n_params; i++) fd_scale = fmax(fd_scale, fabs(ga[i]));
    fd_group(net, x, B, train, rng, r, x, dxa, nx, o, label, "input");
    gt_tensor_ref refs[64];
    int nt = gt_net_tensors(net, refs, 64);
    for (int t = 0; t < nt && t < 64; t++) {
        if (!refs[t].trainable) continue;
        size_t cnt = 1;
        for (int d = 0; d < refs[t].rank; d++) cnt *= (size_t)refs[t].dims[d];
        size_t off = (size_t)(refs[t].data - net->params);
        fd_group(net, x, B, train, rng, r, refs[t].data, ga + off, cnt, o, label, refs[t].name);
    }
    gt_free(r);
    gt_free(dxa);
    gt_free(ga);
}

/* The spec of a layer line (printf-style); the test fails if it does not parse. */
static gt_layer_spec spec_of(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static gt_layer_spec spec_of(const char *fmt, ...) {
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    gt_layer_spec s;
    memset(&s, 0, sizeof s);
    gt_status st = gt_layer_spec_parse(line, &s);
    if (st) gt_panic("test: layer line \"%s\" does not parse: %s", line, gt_error_message());
    return s;
}
/* Adds the layer of a layer line; the test fails if it does not fit. */
#define add(net, ...) CHECK_OK(gt_net_add((net), spec_of(__VA_ARGS__)))

/* Perturb all parameters a little so biases and BN affine params are not trivial. */
static void jitter_params(gt_net *net, float a) {
    float *j = gt_alloc_floats(net->n_params + 1);
    fill_uniform(j, net->n_params, a);
    for (size_t i = 0; i < net->n_params; i++) net->params[i] += j[i];
    gt_free(j);
}


#endif
