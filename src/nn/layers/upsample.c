/* Nearest-neighbour upsampling (nn.Upsample(scale_factor=S, mode="nearest")):
 * x [B,C,H,W] -> y [B,C,S*H,S*W], y[c][oy][ox] = x[c][oy/S][ox/S]. The
 * upsample + conv2d of resize-convolution generators (Odena et al.,
 * "Deconvolution and Checkerboard Artifacts", Distill 2016). A vector {N,1,1}
 * is a 1x1 image (as for conv2d): N x S x S.
 *
 * dy [B,C,S*H,S*W] -> dx [B,C,H,W]: each input element gets the sum of its
 * SxS block of dy, in float, row by row and left to right within a row (the
 * order of PyTorch's CPU upsample_nearest2d_backward). Both loops run over
 * fixed ranges of input rows, each written by one thread: results do not
 * depend on the thread count. No parameters, no buffers. */
#include "gentrain/layers.h"

enum { SCALE, N_OPTS };
static const gt_layer_opt opts[N_OPTS] = {
    [SCALE] = {"scale", GT_OPT_INT, "2", 1, 16, 0, 0, "scale factor of height and width"},
};

static gt_status shape(const gt_layer *L, gt_shape *out) {
    long S = gt_opt_int(L, SCALE), oh = (long)L->in.h * S, ow = (long)L->in.w * S;
    if (oh > (1L << 24) || ow > (1L << 24))
        return GT_ERROR("output would be %ldx%ld (scale %ld of %dx%d): too large", oh, ow, S, L->in.h, L->in.w);
    *out = (gt_shape){L->in.c, (int)oh, (int)ow};
    return GT_OK;
}

/* One input row per iteration: the rows r = (b*C + c)*H + iy of x. */
static void forward(gt_layer *L, const float *x, float *y, const gt_pass *p) {
    int S = (int)gt_opt_int(L, SCALE), W = L->in.w, OW = S * W;
    size_t rows = (size_t)p->B * L->in.c * L->in.h;
#pragma omp parallel for schedule(static) if (rows * W * S * S >= GT_PAR_MIN)
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * W;
        float *yr = y + r * S * OW;
        for (int ix = 0; ix < W; ix++)
            for (int b = 0; b < S; b++) yr[ix * S + b] = xr[ix];
        for (int a = 1; a < S; a++) memcpy(yr + (size_t)a * OW, yr, sizeof(float) * OW);
    }
}

static void backward(gt_layer *L, const float *x, const float *y, const float *dy, float *dx, int param_grads,
                     const gt_pass *p) {
    (void)x;
    (void)y;
    (void)param_grads;
    if (!dx) return;
    int S = (int)gt_opt_int(L, SCALE), W = L->in.w, OW = S * W;
    size_t rows = (size_t)p->B * L->in.c * L->in.h;
#pragma omp parallel for schedule(static) if (rows * W * S * S >= GT_PAR_MIN)
    for (size_t r = 0; r < rows; r++) {
        const float *dyr = dy + r * S * OW;
        float *dxr = dx + r * W;
        for (int ix = 0; ix < W; ix++) dxr[ix] = 0.0f;
        for (int a = 0; a < S; a++, dyr += OW)
            for (int ix = 0; ix < W; ix++)
                for (int b = 0; b < S; b++) dxr[ix] += dyr[ix * S + b];
    }
}

const gt_layer_kind gt_layer_upsample = {
    .name = "upsample",
    .torch = "nn.Upsample(scale_factor=S, mode=\"nearest\")",
    .help = "nearest-neighbour upsampling: CxHxW to Cx(S*H)x(S*W), each value repeated in an SxS block "
            "(upsample + conv2d: resize-convolution)",
    .opts = opts,
    .n_opts = N_OPTS,
    .shape = shape,
    .forward = forward,
    .backward = backward,
};
