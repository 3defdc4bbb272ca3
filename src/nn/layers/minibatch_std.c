/* Minibatch standard deviation (Karras et al., "Progressive Growing of
 * GANs", 2018, section 3; StyleGAN2's MinibatchStdLayer): appends to each
 * example `features` channels that hold how much the examples of its group
 * differ, so that a discriminator can see a batch's lack of variety.
 *
 * x [B,C,H,W] -> y [B,C+F,H,W]: y = x on the first C channels; the examples
 * are split into M = ceil(B/G) groups, G = min(group, B), example n in group
 * n mod M (StyleGAN2's x.reshape(G, -1, ...), which this equals when G
 * divides B; otherwise the groups differ in size by one); per group m,
 * channel c and pixel: s = sqrt(var + 1e-8), the variance over the group's
 * examples (biased); channel group f (channels f*C/F .. (f+1)*C/F - 1):
 * std_m(f) = the mean of s over its channels and pixels; channel C+f of every
 * example of group m is std_m(f) at every pixel.
 *
 * The layer couples the examples of a batch: an example's output depends on
 * the others of its group. Under data parallelism every rank forms its groups
 * from its own local batch (no communication), so the groups, and the
 * results, change with the number of ranks (as local batch norm's do).
 * The same in training and evaluation; no parameters.
 *
 * aux: mu [M, C*HW] | s [M, C*HW] (the group means and deviations). */
#include "gentrain/nn.h"

#include <math.h>
#include <string.h>

#define MBSTD_EPS 1e-8

enum { GROUP, FEATURES, N_OPTS };
static const gt_layer_opt opts[N_OPTS] = {
    [GROUP] = {"group", GT_OPT_INT, "4", 1, 1 << 20, 0, 0,
               "examples per group (the whole batch if it is smaller)"},
    [FEATURES] = {"features", GT_OPT_INT, "1", 1, 1 << 20, 0, 0,
                  "channels appended: the input's channels split into this many groups (must divide them)"},
};

static gt_status shape(const gt_layer *L, gt_shape *out) {
    int F = (int)gt_opt_int(L, FEATURES);
    if (L->in.c % F != 0)
        return GT_ERROR("features=%d must divide the input's %d channels", F, L->in.c);
    *out = (gt_shape){L->in.c + F, L->in.h, L->in.w};
    return GT_OK;
}

static size_t aux_floats(const gt_layer *L, int B) { return 2 * (size_t)B * gt_shape_size(L->in); }

/* Groups of a batch of B: M groups, example n in group n % M. */
static int n_groups(const gt_layer *L, int B) {
    int G = (int)gt_opt_int(L, GROUP);
    if (G > B) G = B;
    return (B + G - 1) / G;
}
static int group_size(int B, int M, int m) { return (B - m + M - 1) / M; }

/* x [B, C, HW] -> y [B, C+F, HW] */
static void forward(gt_layer *L, const float *x, float *y, const gt_pass *p) {
    int B = p->B, C = L->in.c, F = (int)gt_opt_int(L, FEATURES), M = n_groups(L, B);
    size_t HW = (size_t)L->in.h * L->in.w, N = (size_t)C * HW, Cf = (size_t)(C / F);
    float *mu = L->aux, *s = L->aux + (size_t)M * N;
    for (int m = 0; m < M; m++) {
        int Gm = group_size(B, M, m);
        float *mum = mu + (size_t)m * N, *sm = s + (size_t)m * N;
        for (size_t k = 0; k < N; k++) {
            double a = 0, v = 0;
            for (int n = m; n < B; n += M) a += x[(size_t)n * N + k];
            a /= Gm;
            for (int n = m; n < B; n += M) {
                double d = x[(size_t)n * N + k] - a;
                v += d * d;
            }
            mum[k] = (float)a;
            sm[k] = (float)sqrt(v / Gm + MBSTD_EPS);
        }
        for (int f = 0; f < F; f++) {
            double t = 0;
            for (size_t k = (size_t)f * Cf * HW; k < (size_t)(f + 1) * Cf * HW; k++) t += sm[k];
            float std = (float)(t / (double)(Cf * HW));
            for (int n = m; n < B; n += M) {
                float *yo = y + (size_t)n * (N + F * HW) + N + (size_t)f * HW;
                for (size_t q = 0; q < HW; q++) yo[q] = std;
            }
        }
    }
    for (int n = 0; n < B; n++) memcpy(y + (size_t)n * (N + F * HW), x + (size_t)n * N, sizeof(float) * N);
}

/* dy [B, C+F, HW] -> dx [B, C, HW]: the first C channels pass through; the
 * appended ones add, for example n of group m and channel c of channel
 * group f, D_m(f) / (C/F * HW) * (x_n - mu_m) / (G_m s_m), with D_m(f) the
 * sum of dy over group m's appended channel f and its pixels. */
static void backward(gt_layer *L, const float *x, const float *y, const float *dy, float *dx, int param_grads,
                     const gt_pass *p) {
    (void)y;
    (void)param_grads;
    if (!dx) return;
    int B = p->B, C = L->in.c, F = (int)gt_opt_int(L, FEATURES), M = n_groups(L, B);
    size_t HW = (size_t)L->in.h * L->in.w, N = (size_t)C * HW, Cf = (size_t)(C / F), NO = N + F * HW;
    const float *mu = L->aux, *s = L->aux + (size_t)M * N;
    for (int n = 0; n < B; n++) memcpy(dx + (size_t)n * N, dy + (size_t)n * NO, sizeof(float) * N);
    for (int m = 0; m < M; m++) {
        int Gm = group_size(B, M, m);
        const float *mum = mu + (size_t)m * N, *sm = s + (size_t)m * N;
        for (int f = 0; f < F; f++) {
            double D = 0;
            for (int n = m; n < B; n += M) {
                const float *d = dy + (size_t)n * NO + N + (size_t)f * HW;
                for (size_t q = 0; q < HW; q++) D += d[q];
            }
            double scale = D / ((double)(Cf * HW) * Gm);
            for (size_t k = (size_t)f * Cf * HW; k < (size_t)(f + 1) * Cf * HW; k++) {
                double c = scale / sm[k];
                for (int n = m; n < B; n += M)
                    dx[(size_t)n * N + k] += (float)(c * ((double)x[(size_t)n * N + k] - mum[k]));
            }
        }
    }
}

const gt_layer_kind gt_layer_minibatch_std = {
    .name = "minibatch_std",
    .torch = "MinibatchStd (tools/torch_ref.py; StyleGAN2's MinibatchStdLayer)",
    .help = "appends the mean standard deviation over groups of examples as extra channels (progressive GANs); "
            "couples the examples of a rank's batch",
    .opts = opts,
    .n_opts = N_OPTS,
    .shape = shape,
    .aux_floats = aux_floats,
    .forward = forward,
    .backward = backward,
};
