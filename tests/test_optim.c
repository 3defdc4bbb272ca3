/* Optimizers: Adam and SGD (with momentum, weight decay) against a plain
 * double-precision reimplementation of torch.optim over several steps. */
#include "gentrain/core.h"
#include "gentrain/optim.h"

#include "check.h"

#include <string.h>

#define N 257

static void make_grads(float *g, int step, float scale) {
    gt_rand_normal(g, N, 99, GT_PURPOSE(GT_RNG_TEST, 1), (uint64_t)step, 0);
    for (int i = 0; i < N; i++) g[i] *= scale;
    g[3] = 0.0f; /* a zero gradient: only weight decay moves it */
}

/* Reference Adam, double precision (torch.optim.Adam, amsgrad off). */
static void ref_adam(double *p, double *m, double *v, const float *grad, int t, double lr, double b1, double b2,
                     double eps, double wd) {
    for (int i = 0; i < N; i++) {
        double g = grad[i] + wd * p[i];
        m[i] = b1 * m[i] + (1 - b1) * g;
        v[i] = b2 * v[i] + (1 - b2) * g * g;
        double mhat = m[i] / (1 - pow(b1, t));
        double vhat = v[i] / (1 - pow(b2, t));
        p[i] -= lr * mhat / (sqrt(vhat) + eps);
    }
}

/* Reference SGD (torch.optim.SGD, dampening 0, no Nesterov). */
static void ref_sgd(double *p, double *buf, const float *grad, int t, double lr, double mom, double wd) {
    for (int i = 0; i < N; i++) {
        double g = grad[i] + wd * p[i];
        if (mom != 0) {
            buf[i] = t == 1 ? g : mom * buf[i] + g;
            g = buf[i];
        }
        p[i] -= lr * g;
    }
}

static void init_params(float *p, double *pd) {
    gt_rand_normal(p, N, 99, GT_PURPOSE(GT_RNG_TEST, 0), 0, 0);
    for (int i = 0; i < N; i++) pd[i] = p[i];
}

static double max_abs_diff(const float *a, const double *b) {
    double d = 0;
    for (int i = 0; i < N; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

/* The hyperparameters are given as doubles, the way PyTorch receives them
 * from Python; the optimizer gets them as floats and must use the decimal
 * values (0.999, not 0.999f) for its scalar coefficients as PyTorch does. */
static void test_adam(double lr, double b1, double b2, double eps, double wd, float gscale, int steps) {
    float p[N], g[N];
    double pd[N], md[N] = {0}, vd[N] = {0};
    init_params(p, pd);
    gt_optim opt;
    gt_optim_init(&opt, &(gt_optim_opts){GT_OPT_ADAM, (float)lr, (float)b1, (float)b2, (float)eps, (float)wd}, N);
    CHECK(opt.t == 0 && opt.m && opt.v, "Adam init: t = %lld, moments allocated", (long long)opt.t);
    int zero = 1;
    for (int i = 0; i < N; i++) zero &= opt.m[i] == 0.0f && opt.v[i] == 0.0f;
    CHECK(zero, "Adam moments start at zero");
    for (int t = 1; t <= steps; t++) {
        make_grads(g, t, gscale);
        float before[N];
        memcpy(before, p, sizeof p);
        gt_optim_step(&opt, p, g);
        ref_adam(pd, md, vd, g, t, lr, b1, b2, eps, wd);
        if (t == 1 && wd == 0.0) {
            /* bias correction: the first step moves each parameter by ~lr*sign(g) */
            int bad = 0;
            for (int i = 0; i < N; i++) {
                double moved = (double)before[i] - p[i];
                double expect = g[i] > 0 ? lr : g[i] < 0 ? -lr : 0.0;
                if (fabs(g[i]) > 1e-3 * gscale && !check_close(moved, expect, 1e-3, 1e-7 + 1e-5 * lr)) bad++;
                if (g[i] == 0.0f && moved != 0.0) bad++;
            }
            CHECK(bad == 0, "Adam step 1 (lr %g): %d parameters did not move by lr*sign(g)", (double)lr, bad);
        }
        double d = max_abs_diff(p, pd);
        CHECK(d <= 1e-6 + 1e-5 * lr * t, "Adam (lr %g b1 %g b2 %g wd %g) step %d: max |p - ref| = %.3g", (double)lr,
              (double)b1, (double)b2, (double)wd, t, d);
        double dm = 0, dv = 0;
        for (int i = 0; i < N; i++) {
            /* relative to the gradient scale: m is a signed sum that can cancel */
            dm = fmax(dm, fabs(opt.m[i] - md[i]) / gscale);
            dv = fmax(dv, fabs(opt.v[i] - vd[i]) / (fabs(vd[i]) + 1e-6 * gscale * gscale));
        }
        CHECK(dm < 1e-6 && dv < 1e-6, "Adam step %d: moments differ from the reference (rel %.3g, %.3g)", t, dm, dv);
    }
    CHECK(opt.t == steps, "Adam counted %lld steps, expected %d", (long long)opt.t, steps);
    gt_optim_free(&opt);
    CHECK(opt.m == NULL && opt.v == NULL, "gt_optim_free clears the buffers");
}

static void test_sgd(double lr, double mom, double wd, int steps) {
    float p[N], g[N];
    double pd[N], bd[N] = {0};
    init_params(p, pd);
    gt_optim opt;
    gt_optim_init(&opt, &(gt_optim_opts){GT_OPT_SGD, (float)lr, (float)mom, 0.0f, 0.0f, (float)wd}, N);
    for (int t = 1; t <= steps; t++) {
        make_grads(g, t, 1.0f);
        gt_optim_step(&opt, p, g);
        ref_sgd(pd, bd, g, t, lr, mom, wd);
        double d = max_abs_diff(p, pd);
        CHECK(d <= 1e-6, "SGD (lr %g momentum %g wd %g) step %d: max |p - ref| = %.3g", (double)lr, (double)mom,
              (double)wd, t, d);
    }
    gt_optim_free(&opt);
}

int main(void) {
    test_adam(1e-3, 0.9, 0.999, 1e-8, 0.0, 1.0, 10);
    test_adam(2e-4, 0.5, 0.999, 1e-8, 0.0, 0.01, 10);   /* dcgan settings, small gradients */
    test_adam(1e-2, 0.9, 0.99, 1e-6, 0.01, 3.0, 20);    /* with weight decay */
    test_sgd(0.1, 0.0, 0.0, 5);                            /* plain */
    test_sgd(0.05, 0.9, 0.0, 10);                          /* momentum: first step buf = g */
    test_sgd(0.05, 0.9, 1e-3, 10);                         /* momentum + weight decay */

    /* plain SGD step by hand */
    {
        float p[2] = {1.0f, -2.0f}, g[2] = {0.5f, 0.25f};
        gt_optim opt;
        gt_optim_init(&opt, &(gt_optim_opts){GT_OPT_SGD, 0.1f, 0.0f, 0.0f, 0.0f, 0.0f}, 2);
        gt_optim_step(&opt, p, g);
        CHECK(check_close(p[0], 0.95, 1e-6, 0) && check_close(p[1], -2.025, 1e-6, 0), "SGD by hand: %g %g",
              (double)p[0], (double)p[1]);
        CHECK(opt.bytes == 2 * sizeof(float), "SGD's state: one momentum buffer (%zu bytes)", opt.bytes);
        gt_optim_free(&opt);
    }
    /* Adam's state: two moments */
    {
        gt_optim opt;
        gt_optim_init(&opt, &(gt_optim_opts){GT_OPT_ADAM, 1e-3, 0.9, 0.999, 1e-8, 0.0}, 5);
        CHECK(opt.bytes == 2 * 5 * sizeof(float), "Adam's state: two moments (%zu bytes)", opt.bytes);
        gt_optim_free(&opt);
    }
    return check_report("test_optim");
}
