/* layers: the plain forward/backward functions underneath the layer kinds of
 * src/nn/layers/ (each file's descriptor calls them), for the reference
 * layers and the tests. A new layer kind need not add anything here.
 *
 * Plain functions over pointers and sizes; shapes in the comments, NCHW,
 * PyTorch weight layouts. Conventions for every backward:
 *   - dx is OVERWRITTEN (dx may be NULL: input delta not needed);
 *   - parameter gradients are ADDED into dW/db (dW/db may be NULL: skipped);
 *   - dy is never written.
 * Buffers must not overlap unless stated. */
#ifndef GENTRAIN_LAYERS_H
#define GENTRAIN_LAYERS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gentrain/nn.h"

/* Loops over at least this many floats run on the process's threads
 * (OpenMP; gt_set_threads): each thread writes its own outputs and every
 * sum keeps one order, so results do not depend on the thread count. */
#define GT_PAR_MIN 32768

/* Branch-free select of a where c else b, on the bits, so that the loops
 * vectorize (GCC does not if-convert the float forms under -ftrapping-math). */
static inline float gt_select_bits(int c, float a, float b) {
    uint32_t ua, ub, m = -(uint32_t)(c != 0);
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    ua = (ua & m) | (ub & ~m);
    memcpy(&a, &ua, sizeof a);
    return a;
}

/* ---- dense (src/nn/layers/dense.c) --------------------------------------------- */

/* x [B,in], W [out,in], b [out] or NULL -> y [B,out] */
void gt_dense_forward(float *y, const float *x, const float *W, const float *b, int B, int in, int out);
/* dy [B,out] -> dx [B,in]; dW [out,in] += dy^T x; db [out] += sum_B dy */
void gt_dense_backward(float *dx, float *dW, float *db, const float *dy, const float *x, const float *W,
                       int B, int in, int out);

/* ---- conv2d (src/nn/layers/conv2d.c; lowering helpers in src/nn/lowering.c) */

/* Output size of a convolution along one axis: (n + 2P - K)/S + 1. */
int gt_conv_out_size(int n, int K, int S, int P);
/* Floats of scratch the conv2d forward/backward need for batch B. */
size_t gt_conv2d_scratch(int B, int C, int H, int W, int OC, int K, int S, int OH, int OW);
/* x [B,C,H,W], weight [OC,C,K,K], bias [OC] or NULL -> y [B,OC,OH,OW],
 * OH = (H+2P-K)/S+1 (zero padding). GEMMs over chunks of the batch. The
 * forward leaves the im2col columns of x in scratch, for the backward. */
void gt_conv2d_forward(float *y, const float *x, const float *weight, const float *bias, int B, int C, int H,
                       int W, int OC, int K, int S, int P, float *scratch);
/* dy [B,OC,OH,OW] -> dx [B,C,H,W]; dweight [OC,C,K,K] +=; dbias [OC] +=.
 * cols_ready = 1: scratch is the forward's, untouched since the forward of
 * this x, so its columns are reused instead of recomputed (they are
 * overwritten here). */
void gt_conv2d_backward(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                        const float *weight, int B, int C, int H, int W, int OC, int K, int S, int P,
                        float *scratch, int cols_ready);

/* The output positions o in [*lo, *hi) of a convolution axis of on outputs
 * whose input position o*S - P + k lies in [0, n). */
void gt_nn_valid_range(int k, int S, int P, int n, int on, int *lo, int *hi);
/* Batched lowering used by conv2d and convt2d:
 * x [B,C,H,W] -> col [C*K*K, B*OH*OW], column b*OH*OW + oh*OW + ow (overwrites col). */
void gt_nn_im2col_batch(const float *x, int B, int C, int H, int W, int K, int S, int P, int OH, int OW,
                        float *col);
/* col [C*K*K, B*OH*OW] -> x [B,C,H,W], the overlapping columns summed (overwrites x). */
void gt_nn_col2im_batch(const float *col, int B, int C, int H, int W, int K, int S, int P, int OH, int OW,
                        float *x);
/* Conv layers lower the batch in chunks of gt_nn_batch_chunk(B, col floats per
 * example) examples, so that a chunk's columns (about GT_NN_CHUNK_FLOATS) stay
 * in cache; parameter gradients accumulate over the chunks. */
#define GT_NN_CHUNK_FLOATS ((size_t)1 << 21)
int gt_nn_batch_chunk(int B, size_t col_per_example);
/* x [B,C,L] -> t [C, B*L] */
void gt_nn_nchw_to_cbl(float *t, const float *x, int B, int C, size_t L);
/* t [C, B*L] (+ bias [C] or NULL) -> y [B,C,L] */
void gt_nn_cbl_to_nchw(float *y, const float *t, const float *bias, int B, int C, size_t L);
/* db [C] += sum over b, l of dy [B,C,L] */
void gt_nn_bias_grad_nchw(float *db, const float *dy, int B, int C, size_t L);

/* ---- convt2d, ConvTranspose2d (src/nn/layers/convt2d.c) ------------------------ */

/* OH = (H-1)*S - 2P + K + output_pad (requires output_pad < S). */
int gt_convt_out_size(int n, int K, int S, int P, int output_pad);
size_t gt_convt2d_scratch(int B, int IC, int OC, int K, int H, int W);
/* x [B,IC,H,W], weight [IC,OC,K,K], bias [OC] or NULL -> y [B,OC,OH,OW] */
void gt_convt2d_forward(float *y, const float *x, const float *weight, const float *bias, int B, int IC, int H,
                        int W, int OC, int K, int S, int P, int output_pad, float *scratch);
/* dy [B,OC,OH,OW] -> dx [B,IC,H,W]; dweight [IC,OC,K,K] +=; dbias [OC] += */
void gt_convt2d_backward(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                         const float *weight, int B, int IC, int H, int W, int OC, int K, int S, int P,
                         int output_pad, float *scratch);

/* ---- spectral normalization (src/nn/spectral.c): option sn of dense, conv2d, convt2d */

/* A weight as the matrix torch.nn.utils.spectral_norm normalizes: W is
 * [outer, rows, inner] and its matrix [rows, outer*inner] has row r, column
 * o*inner + i. dense [out,in] and conv2d [out,in,K,K] (dim 0): outer 1, rows
 * out; convt2d [in,out,K,K] (dim 1): outer in, rows out, inner K*K.
 * u [rows] and v [outer*inner] are the layer's weight_u and weight_v. */
typedef struct {
    int outer, rows, inner;
} gt_sn_matrix;
/* Floats of a layer's aux that the sn option uses, at an 8-byte aligned
 * (even) offset, and where its parts are: t (rows doubles of scratch),
 * W_sn [n], G = dL/dW_sn [n], sigma [1]; n = outer*rows*inner. */
size_t gt_sn_aux_floats(gt_sn_matrix m);
typedef struct {
    double *t;
    float *W_sn, *G, *sigma;
} gt_sn_aux;
gt_sn_aux gt_sn_aux_at(float *block, gt_sn_matrix m);
/* W_sn [n] = W / sigma, sigma = u^T W v (returned); power = 1 (training)
 * first does one power iteration: v = normalize(W^T u), u = normalize(W v)
 * (u and v updated). t: scratch of m.rows doubles. */
float gt_sn_forward(float *W_sn, const float *W, float *u, float *v, gt_sn_matrix m, int power, double *t);
/* G = dL/dW_sn [n] -> dW [n] += (G - <G, W_sn> u v^T) / sigma (u, v as in the forward). */
void gt_sn_backward(float *dW, const float *G, const float *W_sn, const float *u, const float *v, float sigma,
                    gt_sn_matrix m);

/* For a layer kind with sn=true, whose weight is tensor 0 (weight_orig) and
 * whose weight_u, weight_v are state tensors u_tensor, u_tensor + 1; block:
 * its sn block of aux (gt_sn_aux_floats, even offset).
 *   forward:  W = gt_sn_weight(L, block, m, u_tensor, p->train), then compute with W;
 *   backward: G = gt_sn_grad_begin(block, m) (zeroed), add the weight gradient
 *             into G instead of L->grad, then gt_sn_grad_end(L, block, m, u_tensor). */
const float *gt_sn_weight(gt_layer *L, float *block, gt_sn_matrix m, int u_tensor, int train);
float *gt_sn_grad_begin(float *block, gt_sn_matrix m);
void gt_sn_grad_end(gt_layer *L, float *block, gt_sn_matrix m, int u_tensor);

/* ---- batchnorm (src/nn/layers/batchnorm.c) ------------------------------------- */

/* Floats of aux one batch-norm call keeps: x-hat [B,C,HW], mean [C], invstd [C], sums [2C]. */
size_t gt_batchnorm_aux_size(int B, int C, int HW);
/* x [B,C,HW], gamma/beta [C] -> y [B,C,HW]; aux as above (written).
 * train = 1: batch statistics (biased variance), running_mean/var [C] updated with
 * momentum (running_var with the unbiased variance); sync != NULL && sync->sum:
 * statistics over all replicas (count B*HW*world). train = 0: running statistics. */
void gt_batchnorm_forward(float *y, float *aux, float *running_mean, float *running_var, const float *x,
                          const float *gamma, const float *beta, int B, int C, int HW, float eps,
                          float momentum, int train, const gt_bn_sync *sync);
/* dy [B,C,HW] -> dx [B,C,HW]; dgamma/dbeta [C] += (local sums). aux from the
 * forward (its sums part is used as scratch). train/sync as in the forward. */
void gt_batchnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy, float *aux,
                           const float *gamma, int B, int C, int HW, int train, const gt_bn_sync *sync);

/* ---- activations, elementwise over n floats (src/nn/layers/relu.c, leakyrelu.c, tanh.c, sigmoid.c) ------ */

void gt_relu_forward(float *y, const float *x, size_t n);
void gt_relu_backward(float *dx, const float *dy, const float *y, size_t n);
void gt_leakyrelu_forward(float *y, const float *x, size_t n, float slope);
void gt_leakyrelu_backward(float *dx, const float *dy, const float *x, size_t n, float slope);
void gt_tanh_forward(float *y, const float *x, size_t n);
void gt_tanh_backward(float *dx, const float *dy, const float *y, size_t n);
void gt_sigmoid_forward(float *y, const float *x, size_t n);
void gt_sigmoid_backward(float *dx, const float *dy, const float *y, size_t n);

/* ---- dropout (src/nn/layers/dropout.c) ----------------------------------------- */

/* x [B,n] -> y [B,n]. train = 1: mask [B,n] (written) holds 0 or 1/(1-p); example i
 * draws n uniforms u from (rng->seed, GT_PURPOSE(GT_RNG_DROPOUT, rng->call << 8 | layer),
 * rng->step, rng->example0 + i*rng->stride) and keeps element j when u[j] >= p.
 * A stride of 0 is taken as 1. train = 0: y = x (mask untouched). */
void gt_dropout_forward(float *y, float *mask, const float *x, int B, size_t n, float p, int train,
                        const gt_rng_ctx *rng, int layer);
/* dy [B,n] -> dx = dy * mask (train) or dy (eval); total = B*n */
void gt_dropout_backward(float *dx, const float *dy, const float *mask, size_t total, int train);

#endif
