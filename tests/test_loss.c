/* Losses: values against hand-computed references and every gradient
 * against central finite differences. */
#include "gentrain/core.h"
#include "gentrain/loss.h"

#include "check.h"

#include <string.h>

#define MAXN 64

/* A loss as a function of one float input vector (the others held fixed). */
typedef float (*loss_fn)(float *x, float *grad, void *ctx);

/* Central differences in double around the float evaluation: step h on each
 * element, compare with the analytic gradient. */
static void check_grad(const char *name, loss_fn f, float *x, size_t n, void *ctx, double h, double rtol,
                       double atol) {
    float g[MAXN], scratch[MAXN];
    f(x, g, ctx);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        float keep = x[i];
        x[i] = (float)(keep + h);
        double hp = (double)x[i] - keep;
        double lp = f(x, scratch, ctx);
        x[i] = (float)(keep - h);
        double hm = keep - (double)x[i];
        double lm = f(x, scratch, ctx);
        x[i] = keep;
        double fd = (lp - lm) / (hp + hm);
        if (!check_close(g[i], fd, rtol, atol)) {
            if (bad++ < 5)
                fprintf(stderr, "  %s: d/dx[%zu]: analytic %.8g, finite difference %.8g\n", name, i, (double)g[i],
                        fd);
        }
    }
    CHECK(bad == 0, "%s: %d of %zu gradient entries differ from finite differences", name, bad, n);
}

/* ---- wrappers: x is the argument being differentiated */
typedef struct {
    const float *a, *b;
    const int *labels;
    int B, K;
    size_t n;
    gt_gan_loss kind;
    float smooth; /* one-sided label smoothing of the D loss */
    int which; /* 0: first argument, 1: second */
} ctx_t;

static float f_bce_mean(float *x, float *g, void *c) {
    ctx_t *k = c;
    float term[MAXN];
    return gt_bce_logits_mean(x, k->a, k->n, g, term);
}
static float f_bce_sum(float *x, float *g, void *c) {
    ctx_t *k = c;
    float term[MAXN];
    return gt_bce_logits_sum(x, k->a, k->B, (size_t)k->K, g, term);
}
static float f_mse(float *x, float *g, void *c) {
    ctx_t *k = c;
    return gt_mse_sum(x, k->a, k->B, (size_t)k->K, g);
}
static float f_ce(float *x, float *g, void *c) {
    ctx_t *k = c;
    return gt_cross_entropy(x, k->labels, k->B, k->K, g);
}
static float f_d(float *x, float *g, void *c) {
    ctx_t *k = c;
    float other[MAXN];
    if (k->which == 0) return gt_gan_d_loss(k->kind, x, k->a, k->B, k->smooth, g, other);
    return gt_gan_d_loss(k->kind, k->a, x, k->B, k->smooth, other, g);
}
static float f_g(float *x, float *g, void *c) {
    ctx_t *k = c;
    return gt_gan_g_loss(k->kind, x, k->B, g);
}
/* KL through its "added" gradients: start from zero. */
static float f_kl(float *x, float *g, void *c) {
    ctx_t *k = c;
    float other[MAXN];
    memset(g, 0, sizeof(float) * k->n);
    memset(other, 0, sizeof other);
    if (k->which == 0) return gt_kl_normal(x, k->a, k->B, k->K, g, other);
    return gt_kl_normal(k->a, x, k->B, k->K, other, g);
}
/* A scalar of z = reparam(mu, logvar, eps): L = sum w * z, so dz = w. */
static float f_reparam(float *x, float *g, void *c) {
    ctx_t *k = c; /* a = eps, b = weights w; which: 0 -> x = mu (other = fixed logvar) */
    static float fixed[MAXN];
    static int init;
    if (!init) {
        for (int i = 0; i < MAXN; i++) fixed[i] = 0.3f * (float)((i % 7) - 3);
        init = 1;
    }
    const float *mu = k->which == 0 ? x : fixed;
    const float *lv = k->which == 0 ? fixed : x;
    float z[MAXN], dmu[MAXN], dlv[MAXN];
    gt_reparam_forward(mu, lv, k->a, k->n, z);
    double s = 0.0;
    for (size_t i = 0; i < k->n; i++) s += (double)k->b[i] * z[i];
    gt_reparam_backward(k->b, lv, k->a, k->n, dmu, dlv);
    memcpy(g, k->which == 0 ? dmu : dlv, sizeof(float) * k->n);
    return (float)s;
}

static void fill(float *x, size_t n, uint32_t sub, float scale) {
    gt_rand_normal(x, n, 1234, GT_PURPOSE(GT_RNG_TEST, sub), 0, 0);
    for (size_t i = 0; i < n; i++) x[i] *= scale;
}

static double softplus_ref(double l) { return l > 0 ? l + log1p(exp(-l)) : log1p(exp(l)); }

int main(void) {
    const double h = 1e-2, rtol = 2e-3, atol = 2e-5;
    float l[MAXN], t[MAXN], g[MAXN], g2[MAXN];

    /* ---- BCE with logits: values */
    {
        float z[4] = {0, 0, 0, 0}, t0[4] = {0, 1, 0.5f, 0.25f};
        float v = gt_bce_logits_mean(z, t0, 4, g, g2);
        CHECK(check_close(v, log(2.0), 1e-6, 0), "BCE(l=0) = %.9g, expected log 2", (double)v);
        for (int i = 0; i < 4; i++)
            CHECK(check_close(g[i], (0.5 - t0[i]) / 4, 1e-6, 1e-9), "BCE(l=0) grad[%d] = %g", i, (double)g[i]);
        /* large logits stay finite and exact */
        float big[4] = {100, -100, 100, -100}, tb[4] = {1, 0, 0, 1};
        v = gt_bce_logits_mean(big, tb, 4, g, g2);
        CHECK(isfinite(v) && check_close(v, 50.0, 1e-6, 0), "BCE(|l|=100) = %g, expected 50", (double)v);
        CHECK(check_close(g[0], 0, 0, 1e-12) && check_close(g[1], 0, 0, 1e-12) && check_close(g[2], 0.25, 1e-6, 0) &&
                  check_close(g[3], -0.25, 1e-6, 0),
              "BCE(|l|=100) grads %g %g %g %g", (double)g[0], (double)g[1], (double)g[2], (double)g[3]);
        float big2[2] = {1000, -1000}, tb2[2] = {0.3f, 0.7f};
        v = gt_bce_logits_mean(big2, tb2, 2, g, g2);
        CHECK(isfinite(v) && isfinite(g[0]) && isfinite(g[1]), "BCE(|l|=1000) finite: %g", (double)v);
        /* one generic value against a direct formula */
        float l1 = 1.7f, t1 = 0.2f;
        double ref = -(t1 * log(1 / (1 + exp(-l1))) + (1 - t1) * log(1 - 1 / (1 + exp(-l1))));
        v = gt_bce_logits_mean(&l1, &t1, 1, NULL, g2);
        CHECK(check_close(v, ref, 1e-6, 0), "BCE(1.7, 0.2) = %.9g, expected %.9g", (double)v, ref);
    }
    /* ---- BCE sum: sum over D, mean over B */
    {
        int B = 3, D = 5;
        fill(l, 15, 1, 2.0f);
        for (int i = 0; i < 15; i++) t[i] = (float)((i * 7) % 11) / 10.0f;
        float vm = gt_bce_logits_mean(l, t, 15, NULL, g2);
        float vs = gt_bce_logits_sum(l, t, B, (size_t)D, NULL, g2);
        CHECK(check_close(vs, vm * D, 1e-6, 0), "BCE sum %.9g != D * BCE mean %.9g", (double)vs, (double)vm * D);
    }
    /* ---- MSE: values */
    {
        float p[4] = {1, 2, 3, 4}, q[4] = {0, 2, 5, 1};
        float v = gt_mse_sum(p, q, 2, 2, g);
        CHECK(check_close(v, (1 + 0 + 4 + 9) / 2.0, 1e-7, 0), "MSE = %g, expected 7", (double)v);
        CHECK(check_close(g[2], 2 * (3 - 5) / 2.0, 1e-7, 0), "MSE grad[2] = %g, expected -2", (double)g[2]);
    }
    /* ---- cross-entropy against a direct log-sum-exp */
    {
        int B = 4, K = 5, lab[4] = {0, 3, 4, 2};
        fill(l, 20, 2, 3.0f);
        double ref = 0;
        for (int b = 0; b < B; b++) {
            double se = 0;
            for (int k = 0; k < K; k++) se += exp((double)l[b * K + k]);
            ref += log(se) - l[b * K + lab[b]];
        }
        ref /= B;
        float v = gt_cross_entropy(l, lab, B, K, g);
        CHECK(check_close(v, ref, 1e-6, 0), "CE = %.9g, expected %.9g", (double)v, ref);
        for (int b = 0; b < B; b++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += g[b * K + k];
            CHECK(fabs(s) < 1e-7, "CE gradient row %d sums to %g, expected 0", b, s);
        }
        /* uniform logits: log K */
        float u[5] = {7, 7, 7, 7, 7};
        int y = 1;
        v = gt_cross_entropy(u, &y, 1, 5, NULL);
        CHECK(check_close(v, log(5.0), 1e-6, 0), "CE(uniform) = %g, expected log 5", (double)v);
        /* large logits */
        float bl[3] = {100, -100, 0};
        int yb = 1;
        v = gt_cross_entropy(bl, &yb, 1, 3, g);
        CHECK(isfinite(v) && check_close(v, 200.0, 1e-6, 0), "CE(large) = %g, expected 200", (double)v);
        CHECK(isfinite(g[0]) && isfinite(g[1]) && isfinite(g[2]), "CE(large) grads finite");
    }
    /* ---- GAN losses: values */
    {
        float r[2] = {0, 0}, f[2] = {0, 0};
        float v = gt_gan_d_loss(GT_GAN_NONSATURATING, r, f, 2, 0, g, g2);
        CHECK(check_close(v, 2 * log(2.0), 1e-6, 0), "D loss at 0 = %g, expected 2 log 2", (double)v);
        CHECK(check_close(g[0], -0.25, 1e-6, 0) && check_close(g2[0], 0.25, 1e-6, 0), "D grads at 0: %g %g",
              (double)g[0], (double)g2[0]);
        float fk[3] = {-2.0f, 0.5f, 3.0f};
        double ns = 0, mm = 0;
        for (int i = 0; i < 3; i++) {
            ns += softplus_ref(-fk[i]);
            mm += softplus_ref(fk[i]);
        }
        v = gt_gan_g_loss(GT_GAN_NONSATURATING, fk, 3, NULL);
        CHECK(check_close(v, ns / 3, 1e-6, 0), "G nonsaturating = %g, expected %g", (double)v, ns / 3);
        v = gt_gan_g_loss(GT_GAN_MINIMAX, fk, 3, g);
        CHECK(v < 0 && check_close(v, -mm / 3, 1e-6, 0), "G minimax = %g, expected %g (negative)", (double)v,
              -mm / 3);
        for (int i = 0; i < 3; i++)
            CHECK(g[i] < 0, "G minimax grad[%d] = %g must be negative (G raises D's logit)", i, (double)g[i]);
        v = gt_gan_g_loss(GT_GAN_HINGE, fk, 3, g);
        CHECK(check_close(v, -(fk[0] + fk[1] + fk[2]) / 3.0, 1e-6, 0), "G hinge = %g", (double)v);
        /* hinge D: real 2 (beyond margin: 0), real 0.5 (inside: 0.5); fake -3 (0), fake 0.25 (1.25) */
        float hr[2] = {2.0f, 0.5f}, hf[2] = {-3.0f, 0.25f};
        v = gt_gan_d_loss(GT_GAN_HINGE, hr, hf, 2, 0, g, g2);
        CHECK(check_close(v, (0.5 + 1.25) / 2, 1e-6, 0), "D hinge = %g, expected 0.875", (double)v);
        CHECK(g[0] == 0 && check_close(g[1], -0.5, 1e-7, 0), "D hinge real grads %g %g", (double)g[0], (double)g[1]);
        CHECK(g2[0] == 0 && check_close(g2[1], 0.5, 1e-7, 0), "D hinge fake grads %g %g", (double)g2[0],
              (double)g2[1]);
        /* large logits */
        float lr[2] = {100, -100}, lf[2] = {-100, 100};
        v = gt_gan_d_loss(GT_GAN_NONSATURATING, lr, lf, 2, 0, g, g2);
        CHECK(isfinite(v) && check_close(v, 100.0, 1e-6, 0), "D loss large = %g, expected 100", (double)v);
        v = gt_gan_g_loss(GT_GAN_MINIMAX, lf, 2, g);
        CHECK(isfinite(v) && check_close(v, -50.0, 1e-6, 0), "G minimax large = %g, expected -50", (double)v);
        /* one-sided label smoothing: BCE(real, 0.9); the fake half unchanged */
        float sr[2] = {0.0f, 2.0f}, sf[2] = {0.0f, -1.0f};
        v = gt_gan_d_loss(GT_GAN_NONSATURATING, sr, sf, 2, 0.1f, g, g2);
        double ref = 0;
        for (int i = 0; i < 2; i++) ref += 0.9 * softplus_ref(-sr[i]) + 0.1 * softplus_ref(sr[i]) + softplus_ref(sf[i]);
        CHECK(check_close(v, ref / 2, 1e-6, 0), "D loss smoothed = %g, expected %g", (double)v, ref / 2);
        CHECK(check_close(g[0], (0.5 - 0.9) / 2, 1e-6, 0), "D smoothed real grad at 0: %g, expected -0.2", (double)g[0]);
        float g3[2];
        gt_gan_d_loss(GT_GAN_NONSATURATING, sr, sf, 2, 0.0f, NULL, g3);
        CHECK(g3[0] == g2[0] && g3[1] == g2[1], "label smoothing leaves the fake half alone");
        /* wasserstein: D = mean fake - mean real, G = -mean fake, any magnitude */
        float wr[3] = {3.0f, -1.0f, 100.0f}, wf[3] = {0.5f, -7.0f, 2.0f};
        v = gt_gan_d_loss(GT_GAN_WASSERSTEIN, wr, wf, 3, 0, g, g2);
        CHECK(check_close(v, (-4.5 - 102.0) / 3, 1e-6, 0), "D wasserstein = %g, expected %g", (double)v, -106.5 / 3);
        CHECK(check_close(g[2], -1.0 / 3, 1e-7, 0) && check_close(g2[0], 1.0 / 3, 1e-7, 0), "D wasserstein grads %g %g",
              (double)g[2], (double)g2[0]);
        v = gt_gan_g_loss(GT_GAN_WASSERSTEIN, wf, 3, g);
        CHECK(check_close(v, 4.5 / 3, 1e-6, 0) && check_close(g[1], -1.0 / 3, 1e-7, 0), "G wasserstein = %g", (double)v);
    }
    /* ---- KL: values */
    {
        float mu[6] = {0}, lv[6] = {0};
        memset(g, 0, sizeof g);
        memset(g2, 0, sizeof g2);
        float v = gt_kl_normal(mu, lv, 2, 3, g, g2);
        CHECK(v == 0.0f, "KL(mu=0, logvar=0) = %g, expected 0", (double)v);
        for (int i = 0; i < 6; i++) CHECK(g[i] == 0 && g2[i] == 0, "KL grads at 0 must be 0 (%d)", i);
        /* mu = 1, logvar = log 2: -0.5 (1 + log 2 - 1 - 2) = 1 - 0.5 log 2 per element */
        for (int i = 0; i < 6; i++) {
            mu[i] = 1.0f;
            lv[i] = (float)log(2.0);
            g[i] = 10.0f; /* gradients are ADDED */
            g2[i] = 0.0f;
        }
        v = gt_kl_normal(mu, lv, 2, 3, g, g2);
        double ref = 3 * (1 - 0.5 * log(2.0));
        CHECK(check_close(v, ref, 1e-6, 0), "KL = %.9g, expected %.9g", (double)v, ref);
        CHECK(check_close(g[0], 10.0 + 0.5, 1e-6, 0), "KL dmu added: %g, expected 10.5", (double)g[0]);
        CHECK(check_close(g2[0], 0.5 * (2 - 1) / 2.0, 1e-6, 0), "KL dlogvar: %g, expected 0.25", (double)g2[0]);
    }
    /* ---- reparameterization: values */
    {
        float mu[2] = {1.0f, -2.0f}, lv[2] = {0.0f, (float)log(4.0)}, e[2] = {0.5f, -1.0f}, z[2];
        gt_reparam_forward(mu, lv, e, 2, z);
        CHECK(check_close(z[0], 1.5, 1e-6, 0) && check_close(z[1], -4.0, 1e-6, 0), "reparam z = %g %g", (double)z[0],
              (double)z[1]);
    }

    /* ---- finite-difference gradient checks */
    {
        ctx_t c = {0};
        c.n = 24;
        fill(l, 24, 3, 2.0f);
        gt_rand_uniform(t, 24, 1234, GT_PURPOSE(GT_RNG_TEST, 4), 0, 0);
        c.a = t;
        check_grad("bce_logits_mean", f_bce_mean, l, 24, &c, h, rtol, atol);
        c.B = 4;
        c.K = 6;
        check_grad("bce_logits_sum", f_bce_sum, l, 24, &c, h, rtol, atol);
        float q[24];
        fill(q, 24, 5, 1.0f);
        c.a = q;
        check_grad("mse_sum", f_mse, l, 24, &c, h, rtol, atol);
        int lab[4] = {5, 0, 2, 2};
        c.labels = lab;
        check_grad("cross_entropy", f_ce, l, 24, &c, h, rtol, atol);
    }
    {
        /* the four losses, and the BCE ones with one-sided label smoothing 0.2 */
        const gt_gan_loss kinds[6] = {GT_GAN_NONSATURATING, GT_GAN_MINIMAX, GT_GAN_HINGE, GT_GAN_WASSERSTEIN,
                                      GT_GAN_NONSATURATING, GT_GAN_MINIMAX};
        const char *names[6] = {"nonsaturating", "minimax", "hinge", "wasserstein", "nonsaturating, smooth 0.2",
                                "minimax, smooth 0.2"};
        for (int k = 0; k < 6; k++) {
            ctx_t c = {0};
            c.B = 16;
            c.kind = kinds[k];
            c.smooth = k >= 4 ? 0.2f : 0.0f;
            float x[16], other[16];
            fill(x, 16, 6, 2.5f);
            fill(other, 16, 7, 2.5f);
            /* keep hinge points away from its kinks at +-1 */
            for (int i = 0; i < 16; i++) {
                if (fabsf(fabsf(x[i]) - 1.0f) < 0.1f) x[i] += 0.3f;
                if (fabsf(fabsf(other[i]) - 1.0f) < 0.1f) other[i] += 0.3f;
            }
            c.a = other;
            char nm[64];
            c.which = 0;
            snprintf(nm, sizeof nm, "gan_d_loss(%s) d/dreal", names[k]);
            check_grad(nm, f_d, x, 16, &c, h, rtol, atol);
            c.which = 1;
            snprintf(nm, sizeof nm, "gan_d_loss(%s) d/dfake", names[k]);
            check_grad(nm, f_d, x, 16, &c, h, rtol, atol);
            snprintf(nm, sizeof nm, "gan_g_loss(%s)", names[k]);
            check_grad(nm, f_g, x, 16, &c, h, rtol, atol);
        }
    }
    {
        ctx_t c = {0};
        c.B = 3;
        c.K = 5;
        c.n = 15;
        float mu[15], lv[15];
        fill(mu, 15, 8, 1.0f);
        fill(lv, 15, 9, 1.0f);
        c.a = lv;
        c.which = 0;
        check_grad("kl_normal d/dmu", f_kl, mu, 15, &c, h, rtol, atol);
        c.a = mu;
        c.which = 1;
        check_grad("kl_normal d/dlogvar", f_kl, lv, 15, &c, h, rtol, atol);
        float eps[15], w[15];
        fill(eps, 15, 10, 1.0f);
        fill(w, 15, 11, 1.0f);
        c.a = eps;
        c.b = w;
        c.which = 0;
        check_grad("reparam d/dmu", f_reparam, mu, 15, &c, h, rtol, atol);
        c.which = 1;
        check_grad("reparam d/dlogvar", f_reparam, lv, 15, &c, h, rtol, atol);
    }
    return check_report("test_loss");
}
