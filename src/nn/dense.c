/* Dense (nn.Linear): y = x W^T + b, weight [out,in] as PyTorch. */
#include "gentrain/core.h"
#include "gentrain/layers.h"

/* x [B,in], W [out,in], b [out] or NULL -> y [B,out] */
void gt_dense_forward(float *y, const float *x, const float *W, const float *b, int B, int in, int out) {
    gt_sgemm(0, 1, B, out, in, 1.0f, x, in, W, in, 0.0f, y, out);
    if (b)
        for (int i = 0; i < B; i++) {
            float *yi = y + (size_t)i * out;
            for (int o = 0; o < out; o++) yi[o] += b[o];
        }
}

/* dy [B,out] -> dx [B,in] = dy W; dW [out,in] += dy^T x; db [out] += sum_B dy */
void gt_dense_backward(float *dx, float *dW, float *db, const float *dy, const float *x, const float *W,
                       int B, int in, int out) {
    if (dx) gt_sgemm(0, 0, B, in, out, 1.0f, dy, out, W, in, 0.0f, dx, in);
    if (dW) gt_sgemm(1, 0, out, in, B, 1.0f, dy, out, x, in, 1.0f, dW, in);
    if (db)
        for (int i = 0; i < B; i++) {
            const float *dyi = dy + (size_t)i * out;
            for (int o = 0; o < out; o++) db[o] += dyi[o];
        }
}
