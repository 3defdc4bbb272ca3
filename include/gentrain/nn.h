/* nn: layers and the sequential network.
 *
 * A network is a list of layers with ONE flat parameter buffer and ONE flat
 * gradient buffer of the same layout (so the optimizer and the gradient
 * allreduce are one loop and one call), plus one flat buffer of non-trained
 * state (batch-norm running statistics). Tensors are NCHW, and parameter
 * layouts follow PyTorch: dense weight [out,in]; conv weight [out,in,K,K];
 * conv-transpose weight [in,out,K,K]; batch-norm weight/bias [C].
 *
 * Each layer kind lives in its own file (src/nn/<kind>.c) as plain forward and
 * backward functions over pointers and sizes, with the shapes in a comment;
 * src/nn/net.c only dispatches. nn knows nothing of MPI or HDF5. */
#ifndef GENTRAIN_NN_H
#define GENTRAIN_NN_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    GT_DENSE,
    GT_CONV2D,
    GT_CONVT2D,
    GT_BATCHNORM,   /* 1-d on [B,C] (h = w = 1) or 2-d on [B,C,H,W] */
    GT_RELU,
    GT_LEAKYRELU,
    GT_TANH,
    GT_SIGMOID,
    GT_DROPOUT,
    GT_RESHAPE,     /* also flatten: only the per-example shape changes */
    GT_LAYER_KINDS
} gt_layer_kind;

/* Name in configs and checkpoints ("dense", "conv2d", ...), and back. */
const char *gt_layer_kind_name(gt_layer_kind kind);
int gt_layer_kind_from_name(const char *name); /* -1 if unknown */

/* Per-example shape; a vector of n features is {n, 1, 1}. */
typedef struct {
    int c, h, w;
} gt_shape;
static inline size_t gt_shape_size(gt_shape s) { return (size_t)s.c * s.h * s.w; }

/* What a layer is, as a config describes it. Fields a kind does not use are ignored. */
typedef struct {
    gt_layer_kind kind;
    int out;          /* dense: output features; conv/convt: output channels */
    int kernel, stride, pad, output_pad; /* conv2d, convt2d (square kernels) */
    int bias;         /* dense, conv2d, convt2d: 1 = has a bias */
    float slope;      /* leakyrelu negative slope */
    float p;          /* dropout probability */
    float eps, momentum; /* batchnorm (PyTorch meaning of momentum) */
    gt_shape reshape; /* reshape target; {0,0,0} = flatten to {n,1,1} */
} gt_layer_spec;

/* Defaults: bias 1, slope 0.01, p 0.5, eps 1e-5, momentum 0.1, stride 1, pad 0. */
gt_layer_spec gt_layer_spec_default(gt_layer_kind kind);

typedef struct {
    gt_layer_spec spec;
    gt_shape in, out;
    /* offsets into the network's flat parameter/gradient buffer (weight, bias)
     * and flat state buffer (running_mean, running_var); counts in floats. */
    size_t weight, n_weight, bias, n_bias;
    size_t running_mean, running_var, n_state;
    float *y;   /* output of the last forward, [batch, out] */
    float *aux; /* what backward needs besides x and y: BN x-hat, mean, inverse std; dropout mask;
                 * conv2d: its scratch, which keeps the forward's im2col columns */
} gt_layer;

/* Synchronized batch norm: a hook that sums n floats over all replicas and
 * says how many examples those sums cover. NULL = local batch statistics. */
typedef struct {
    void (*sum)(float *buf, int n, void *arg);
    void *arg;
    int world; /* the global batch is world * local batch */
} gt_bn_sync;

/* Where per-example randomness (dropout) comes from in one forward call:
 * example i of the local batch has position example0 + i*stride in the
 * global batch (see the sampler in data.h). `call` tells different forward
 * calls of one step apart (e.g. D on real, D on fake). */
typedef struct {
    uint64_t seed, step, example0, stride;
    uint32_t call;
} gt_rng_ctx;

typedef struct {
    char name[32];
    int n_layers, cap_layers;
    gt_layer *layers;
    gt_shape in, out;
    int max_batch;
    size_t n_params;
    float *params, *grads; /* both n_params floats, one allocation each */
    size_t n_state;
    float *state;          /* BN running statistics */
    float *scratch;        /* im2col columns and other per-call scratch */
    size_t n_scratch;
    float *dx[2];          /* ping-pong buffers for deltas in backward */
    const float *x;        /* input of the last forward */
    int batch, train;
    gt_rng_ctx rng;
    gt_bn_sync bn_sync;
    int skip_param_grads;  /* 1: backward computes only the input delta (e.g. D in the G phase) */
    int need_input_grad;   /* 1 (the default): backward returns dx; 0: it stops at the first layer
                            * with parameters and returns NULL (e.g. G, an encoder, D in the D phase) */
    /* Called during backward (when parameter gradients are computed) each time
     * grads[offset, n_params) have become final, in decreasing offset order
     * (layers run in reverse): lets the gradient allreduce of finished buckets
     * overlap the rest of backward. NULL = not called. */
    void (*grads_ready)(size_t offset, void *arg);
    void *grads_ready_arg;
} gt_net;

/* Build: init with the input shape, add layers (shapes are inferred; a layer
 * that does not fit gt_fatal()s naming it), then finalize to allocate every
 * buffer for batches up to max_batch and initialize parameters like PyTorch's
 * defaults from (seed, net_id). */
void gt_net_init(gt_net *net, const char *name, gt_shape in);
/* Returns NULL on success, else a message saying why the layer does not fit. */
const char *gt_net_add(gt_net *net, gt_layer_spec spec);
void gt_net_finalize(gt_net *net, int max_batch, uint64_t seed, uint32_t net_id);
void gt_net_free(gt_net *net);

/* x [B, in] -> returns y [B, out] (owned by the net, valid until the next forward).
 * train = 1: batch statistics for BN (and running averages updated), dropout on. */
const float *gt_net_forward(gt_net *net, const float *x, int B, int train, gt_rng_ctx rng);
/* dy [B, out] of the last forward -> adds parameter gradients into net->grads
 * (unless skip_param_grads) and returns dx [B, in] (owned by the net), or
 * NULL when need_input_grad is 0. */
const float *gt_net_backward(gt_net *net, const float *dy);
void gt_net_zero_grads(gt_net *net);

/* The tensors of a network in checkpoint order, named like PyTorch's
 * state_dict: "<NN>_<kind>/<tensor>" e.g. "00_dense/weight". */
typedef struct {
    char name[64];
    float *data;       /* into params or state */
    int trainable;     /* 1 = in params (has a gradient), 0 = in state */
    int rank;          /* number of dims */
    int dims[4];       /* PyTorch shape */
} gt_tensor_ref;
/* Fills up to cap refs, returns how many the network has. */
int gt_net_tensors(const gt_net *net, gt_tensor_ref *refs, int cap);

/* Print the layer table (kind, output shape, parameter count) via gt_info. */
void gt_net_print(const gt_net *net);

#endif
