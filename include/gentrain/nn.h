/* nn: layer kinds and the sequential network.
 *
 * A network is a list of layers with ONE flat parameter buffer and ONE flat
 * gradient buffer of the same layout (so the optimizer and the gradient
 * allreduce are one loop and one call), plus one flat buffer of non-trained
 * state (batch-norm running statistics). Tensors are NCHW; parameter layouts
 * follow PyTorch (dense weight [out,in]; conv weight [out,in,K,K];
 * conv-transpose weight [in,out,K,K]).
 *
 * Every layer kind is one file, src/nn/layers/<name>.c, exporting one
 * descriptor `const gt_layer_kind gt_layer_<name>`: its options with defaults
 * and ranges, shape inference, its tensors in PyTorch order (which fix the
 * parameter layout and the initialization), its buffer needs, forward and
 * backward. The build collects src/nn/layers/ into the registry
 * (gt_layer_kinds), which the network (src/nn/net.c), the layer-line parser
 * (src/nn/spec.c) and the documentation (`gentrain help layers`) loop over.
 * nn knows nothing of MPI, HDF5 or config files. */
#ifndef GENTRAIN_NN_H
#define GENTRAIN_NN_H

#include <stddef.h>
#include <stdint.h>

#include "gentrain/core.h"

typedef struct gt_layer gt_layer;
typedef struct gt_layer_kind gt_layer_kind;

/* ---- layer options ------------------------------------------------------ */

typedef enum { GT_OPT_INT, GT_OPT_BOOL, GT_OPT_FLOAT, GT_OPT_SHAPE } gt_opt_type;
typedef union {
    long i; /* INT and BOOL (0/1) */
    double f;
    gt_shape shape;
} gt_opt_value;

typedef struct {
    const char *name;
    gt_opt_type type;
    const char *def;            /* the default as written in a layer line; NULL = required */
    double min, max;            /* INT and FLOAT: the allowed range */
    int min_open, max_open;     /* 1: that end is excluded */
    const char *help;
} gt_layer_opt;
#define GT_LAYER_MAX_OPTS 8

/* A layer as a layer line describes it: "conv2d out=64 kernel=4 stride=2". */
typedef struct {
    const gt_layer_kind *kind;
    gt_opt_value opt[GT_LAYER_MAX_OPTS]; /* indexed like kind->opts */
} gt_layer_spec;

/* ---- tensors ------------------------------------------------------------- */

/* What a tensor is, which decides its initialization (src/nn/net.c). */
typedef enum {
    GT_T_WEIGHT, /* a linear map's weight: fan_in, fan_out */
    GT_T_BIAS,   /* a linear map's bias: fan_in of its weight */
    GT_T_SCALE,  /* a normalization's gain: 1 */
    GT_T_SHIFT,  /* a normalization's bias: 0 */
    GT_T_MEAN,   /* a running mean (state): 0 */
    GT_T_VAR,    /* a running variance (state): 1 */
    GT_T_UNIT,   /* a random unit vector (state): N(0, I) normalized, whatever the scheme */
} gt_tensor_role;

/* How a network's weights are initialized (gt_net.init, set before
 * gt_net_finalize), by tensor role; fans are PyTorch's
 * (torch.nn.init._calculate_fan_in_and_fan_out):
 *   PYTORCH  PyTorch's defaults: WEIGHT and BIAS uniform in +-1/sqrt(fan_in), SCALE 1, SHIFT 0;
 *   NORMAL   WEIGHT ~ N(0, std), SCALE ~ N(1, std) (the DCGAN paper's scheme with std 0.02);
 *   XAVIER   WEIGHT ~ U(-a, a), a = sqrt(6 / (fan_in + fan_out)) (torch.nn.init.xavier_uniform_);
 *   KAIMING  WEIGHT ~ N(0, sqrt(2 / fan_in)) (kaiming_normal_, fan_in mode, ReLU gain);
 * every scheme but PYTORCH: BIAS 0, SHIFT 0, and SCALE 1 (bar NORMAL). Running
 * statistics are 0 and 1, GT_T_UNIT a random unit vector, in every scheme. */
typedef enum { GT_INIT_PYTORCH, GT_INIT_NORMAL, GT_INIT_XAVIER, GT_INIT_KAIMING } gt_init_scheme;
typedef struct {
    gt_init_scheme scheme;
    double std; /* NORMAL */
} gt_init;

typedef struct {
    const char *name;    /* PyTorch's: "weight", "bias", "running_mean", ... */
    gt_tensor_role role;
    int trainable;       /* 1: in params (has a gradient); 0: in state */
    int rank, dims[4];   /* PyTorch shape */
    int fan_in, fan_out; /* GT_T_WEIGHT and GT_T_BIAS (PyTorch's definitions) */
} gt_tensor_desc;
#define GT_LAYER_MAX_TENSORS 6

/* ---- one forward or backward call ----------------------------------------- */

/* Where per-example randomness (dropout) comes from in one forward call:
 * example i of the local batch has position example0 + i*stride in the
 * global batch (see the sampler in data.h). `call` tells different forward
 * calls of one step apart (e.g. D on real, D on fake). */
typedef struct {
    uint64_t seed, step, example0, stride;
    uint32_t call;
} gt_rng_ctx;

/* Synchronized batch norm: a hook that sums n floats over all replicas and
 * says how many examples those sums cover. sum == NULL: local statistics. */
typedef struct {
    void (*sum)(float *buf, int n, void *arg);
    void *arg;
    int world; /* the global batch is world * local batch */
} gt_bn_sync;

typedef struct {
    int B;                   /* examples in this call */
    int train;               /* 1: batch statistics, dropout on */
    gt_rng_ctx rng;
    const gt_bn_sync *sync;  /* NULL unless training with synchronized batch norm */
    float *scratch;          /* the network's shared scratch (kind->scratch_floats) */
} gt_pass;

/* ---- a layer kind ---------------------------------------------------------- */

struct gt_layer_kind {
    const char *name;  /* in layer lines, tensor names and checkpoints */
    const char *torch; /* its PyTorch equivalent, for the documentation */
    const char *help;
    const gt_layer_opt *opts;
    int n_opts;
    /* 1: the output is the input, reinterpreted (reshape, flatten): no buffer,
     * no forward or backward (the delta passes through). */
    int alias;
    /* The output shape for input L->in and L's options; an error says why the
     * layer does not fit (the caller adds where it was configured). */
    gt_status (*shape)(const gt_layer *L, gt_shape *out);
    /* The tensors, in PyTorch's state_dict order (may be NULL: none). */
    int (*tensors)(const gt_layer *L, gt_tensor_desc *t);
    /* Floats of the layer's own buffer L->aux (kept from forward to backward)
     * and of the network's shared scratch, for batches up to B (may be NULL: 0). */
    size_t (*aux_floats)(const gt_layer *L, int B);
    size_t (*scratch_floats)(const gt_layer *L, int B);
    /* 1: aux holds workspaces (lowering columns, spectral norm's block), not
     * what the layer keeps of the batch's activations; only the memory
     * account (gt_net_bytes) looks at it. */
    int aux_is_workspace;
    /* x [B, in] -> y [B, out] */
    void (*forward)(gt_layer *L, const float *x, float *y, const gt_pass *p);
    /* dy [B, out] -> dx [B, in] (overwritten; dx NULL: not needed); when
     * param_grads, parameter gradients are ADDED into L->grad. x and y are
     * this layer's input and output of the last forward. */
    void (*backward)(gt_layer *L, const float *x, const float *y, const float *dy, float *dx, int param_grads,
                     const gt_pass *p);
};

/* Every layer kind, from src/nn/layers/ (NULL-terminated; generated by the build). */
extern const gt_layer_kind *const gt_layer_kinds[];
const gt_layer_kind *gt_layer_kind_find(const char *name); /* NULL if unknown */
int gt_layer_opt_index(const gt_layer_kind *kind, const char *name); /* -1 if it has no such option */

/* A spec with every option at its default (required ones zero). */
gt_layer_spec gt_layer_spec_default(const gt_layer_kind *kind);
/* Parses a layer line "KIND opt=value ..."; the error says what is wrong
 * with it (the caller adds where the line came from). */
gt_status gt_layer_spec_parse(const char *line, gt_layer_spec *spec);

/* ---- a layer in a network --------------------------------------------------- */

struct gt_layer {
    gt_layer_spec spec;
    const gt_layer_kind *kind; /* = spec.kind */
    int index;                 /* position in its network */
    gt_shape in, out;
    int n_tensors;
    gt_tensor_desc tensor[GT_LAYER_MAX_TENSORS];
    size_t toff[GT_LAYER_MAX_TENSORS]; /* offset of tensor i in the layer's params (trainable) or state */
    size_t n_params, n_state;          /* floats */
    size_t param_offset, state_offset; /* where the layer's block starts in the network's buffers */
    float *param, *grad, *state;       /* the layer's block of params, grads and state */
    float *y;                          /* output of the last forward [B, out] (alias: the input) */
    float *aux;                        /* the layer's own buffer */
};

/* Option i of a layer (indexed like its kind's opts). */
static inline long gt_opt_int(const gt_layer *L, int i) { return L->spec.opt[i].i; }
static inline float gt_opt_float(const gt_layer *L, int i) { return (float)L->spec.opt[i].f; }
/* Tensor i of a layer in a buffer: base is L->param, L->grad or L->state. */
static inline float *gt_layer_tensor(const gt_layer *L, float *base, int i) { return base + L->toff[i]; }

/* ---- the network ------------------------------------------------------------ */

/* Called during a backward that computes parameter gradients, each time
 * grads[offset, n_params) have become final, in decreasing offset order
 * (layers run in reverse): lets the allreduce of finished buckets overlap
 * the rest of backward. fn NULL = not called. */
typedef struct gt_net gt_net;
typedef struct {
    void (*fn)(const gt_net *net, size_t offset, void *arg);
    void *arg;
} gt_grads_ready;

/* Called after every layer of a forward or backward pass (fn NULL = not
 * called): lets collectives in flight advance, for MPI libraries that move
 * data only inside MPI calls (Open MPI over TCP). */
typedef struct {
    void (*fn)(void *arg);
    void *arg;
} gt_progress;

/* The bytes of a network's buffers by what they hold, added up by
 * gt_net_finalize as it allocates them (the memory account that `gentrain
 * train` prints: src/models/model.c, gt_model_bytes). */
typedef struct {
    size_t params;      /* trainable parameters (params) */
    size_t grads;       /* their gradients (grads) */
    size_t state;       /* non-trained state (state): batch-norm running statistics, spectral norm's u and v */
    size_t activations; /* for max_batch: the layers' outputs, what they keep for backward (aux of the kinds
                         * whose aux is not a workspace: batch-norm's x-hat, dropout's mask, ...), the two
                         * delta buffers dx */
    size_t workspaces;  /* the shared scratch (convt2d's columns) and the aux of kinds whose aux is a
                         * workspace (conv2d's columns, spectral norm's blocks) */
} gt_net_bytes;

typedef struct gt_net {
    char name[32];
    int n_layers, cap_layers;
    gt_layer *layers;
    gt_shape in, out;
    int max_batch;
    size_t n_params;
    float *params, *grads; /* both n_params floats, one allocation each */
    size_t n_state;
    float *state;          /* batch-norm running statistics */
    float *scratch;        /* shared per-call scratch */
    size_t n_scratch;
    float *dx[2];          /* ping-pong buffers for deltas in backward */
    const float *x;        /* input of the last forward */
    int batch, train;
    gt_rng_ctx rng;
    gt_bn_sync bn_sync;
    gt_progress progress;  /* {0} = none; set around a training step (src/models/model.c) */
    gt_init init;          /* set before gt_net_finalize; {0} = PyTorch's defaults */
    gt_net_bytes bytes;    /* what gt_net_finalize allocated */
} gt_net;

/* Build: init with the input shape, add layers (shapes are inferred; an
 * error says why a layer does not fit), then finalize to allocate every
 * buffer for batches up to max_batch and initialize the parameters from
 * (seed, net_id) by net->init (PyTorch's defaults unless set). The draws of
 * tensor t of layer i come from the stream (seed, INIT / net_id << 8 | i,
 * step 0, index t). */
void gt_net_init(gt_net *net, const char *name, gt_shape in);
gt_status gt_net_add(gt_net *net, gt_layer_spec spec);
/* Floats the network needs (parameters, gradients, state, activations,
 * scratch) for batches up to max_batch: check it before finalizing. */
size_t gt_net_floats_needed(const gt_net *net, int max_batch);
void gt_net_finalize(gt_net *net, int max_batch, uint64_t seed, uint32_t net_id);
void gt_net_free(gt_net *net);

/* x [B, in] -> returns y [B, out] (owned by the net, valid until the next forward).
 * train = 1: batch statistics for BN (and running averages updated), dropout on. */
const float *gt_net_forward(gt_net *net, const float *x, int B, int train, gt_rng_ctx rng);

/* What a backward computes. */
enum {
    GT_BACKWARD_PARAMS = 1, /* add parameter gradients into net->grads */
    GT_BACKWARD_INPUT = 2,  /* return dx [B, in]; without it backward stops at the first layer with parameters */
    GT_BACKWARD_ALL = 3,
};
/* dy [B, out] of the last forward -> dx [B, in] (owned by the net) or NULL
 * without GT_BACKWARD_INPUT. ready: see gt_grads_ready ({NULL} = none). */
const float *gt_net_backward(gt_net *net, const float *dy, int what, gt_grads_ready ready);
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

/* Exchanges the network's parameter and state buffers with *params and
 * *state (arrays of n_params and n_state floats): a second call swaps back.
 * For an EMA copy of a network's weights (models). */
void gt_net_swap_buffers(gt_net *net, float **params, float **state);

/* Print the layer table (kind, output shape, parameter count) via gt_info. */
void gt_net_print(const gt_net *net);

#endif
