/* The sequential network: shape inference, one flat parameter buffer, one
 * flat gradient buffer of the same layout, one flat state buffer (batch-norm
 * running statistics), and dispatch to the per-layer functions (layers.h).
 *
 * Parameter layout: layer by layer, weight then bias. State layout: layer by
 * layer, running_mean then running_var. Reshape layers alias their input
 * (y points at the previous activation; backward passes dy through). */
#include "gentrain/nn.h"

#include "gentrain/core.h"
#include "gentrain/layers.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const kind_names[GT_LAYER_KINDS] = {
    [GT_DENSE] = "dense",         [GT_CONV2D] = "conv2d", [GT_CONVT2D] = "convt2d",
    [GT_BATCHNORM] = "batchnorm", [GT_RELU] = "relu",     [GT_LEAKYRELU] = "leakyrelu",
    [GT_TANH] = "tanh",           [GT_SIGMOID] = "sigmoid", [GT_DROPOUT] = "dropout",
    [GT_RESHAPE] = "reshape",
};

const char *gt_layer_kind_name(gt_layer_kind kind) {
    if ((int)kind < 0 || kind >= GT_LAYER_KINDS) return "unknown";
    return kind_names[kind];
}

int gt_layer_kind_from_name(const char *name) {
    if (!name) return -1;
    for (int k = 0; k < GT_LAYER_KINDS; k++)
        if (strcmp(name, kind_names[k]) == 0) return k;
    return -1;
}

gt_layer_spec gt_layer_spec_default(gt_layer_kind kind) {
    gt_layer_spec s;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    s.bias = 1;
    s.slope = 0.01f;
    s.p = 0.5f;
    s.eps = 1e-5f;
    s.momentum = 0.1f;
    s.stride = 1;
    s.pad = 0;
    return s;
}

void gt_net_init(gt_net *net, const char *name, gt_shape in) {
    memset(net, 0, sizeof *net);
    snprintf(net->name, sizeof net->name, "%s", name ? name : "net");
    GT_CHECK(in.c >= 1 && in.h >= 1 && in.w >= 1, "net %s: bad input shape %dx%dx%d", net->name, in.c, in.h,
             in.w);
    net->in = in;
    net->out = in;
    net->need_input_grad = 1;
}

static _Thread_local char add_msg[256];

#define ADD_FAIL(...)                                                                                          \
    do {                                                                                                       \
        int n_ = snprintf(add_msg, sizeof add_msg, "net %s, layer %d (%s, input %dx%dx%d): ", net->name,      \
                          net->n_layers, gt_layer_kind_name(spec.kind), in.c, in.h, in.w);                     \
        if (n_ < 0 || (size_t)n_ >= sizeof add_msg) n_ = 0;                                                    \
        snprintf(add_msg + n_, sizeof add_msg - (size_t)n_, __VA_ARGS__);                                      \
        return add_msg;                                                                                        \
    } while (0)

/* Returns NULL or a message (valid until the next gt_net_add in this thread). */
const char *gt_net_add(gt_net *net, gt_layer_spec spec) {
    gt_shape in = net->out, out = in;
    size_t n_weight = 0, n_bias = 0, n_state = 0;
    if (net->params) ADD_FAIL("the network is already finalized");
    if ((int)spec.kind < 0 || spec.kind >= GT_LAYER_KINDS) ADD_FAIL("unknown layer kind %d", (int)spec.kind);
    switch (spec.kind) {
    case GT_DENSE:
        if (in.h != 1 || in.w != 1)
            ADD_FAIL("dense needs a flat input; add a reshape (flatten) layer before it");
        if (spec.out < 1) ADD_FAIL("dense needs out >= 1 (got %d)", spec.out);
        out = (gt_shape){spec.out, 1, 1};
        n_weight = (size_t)spec.out * in.c;
        n_bias = spec.bias ? (size_t)spec.out : 0;
        break;
    case GT_CONV2D:
    case GT_CONVT2D: {
        const char *k = gt_layer_kind_name(spec.kind);
        if (spec.out < 1) ADD_FAIL("%s needs out (channels) >= 1 (got %d)", k, spec.out);
        if (spec.kernel < 1) ADD_FAIL("%s needs kernel >= 1 (got %d)", k, spec.kernel);
        if (spec.stride < 1) ADD_FAIL("%s needs stride >= 1 (got %d)", k, spec.stride);
        if (spec.pad < 0) ADD_FAIL("%s needs pad >= 0 (got %d)", k, spec.pad);
        if (spec.kind == GT_CONV2D) {
            if (spec.output_pad != 0) ADD_FAIL("conv2d has no output_pad (got %d)", spec.output_pad);
            if (in.h + 2 * spec.pad < spec.kernel || in.w + 2 * spec.pad < spec.kernel)
                ADD_FAIL("kernel %d is larger than the padded input %dx%d", spec.kernel, in.h + 2 * spec.pad,
                         in.w + 2 * spec.pad);
            out = (gt_shape){spec.out, gt_conv_out_size(in.h, spec.kernel, spec.stride, spec.pad),
                             gt_conv_out_size(in.w, spec.kernel, spec.stride, spec.pad)};
        } else {
            if (spec.output_pad < 0 || spec.output_pad >= spec.stride)
                ADD_FAIL("convt2d needs 0 <= output_pad < stride (got output_pad %d, stride %d)", spec.output_pad,
                         spec.stride);
            out = (gt_shape){spec.out, gt_convt_out_size(in.h, spec.kernel, spec.stride, spec.pad, spec.output_pad),
                             gt_convt_out_size(in.w, spec.kernel, spec.stride, spec.pad, spec.output_pad)};
            if (out.h < 1 || out.w < 1)
                ADD_FAIL("output would be %dx%d (padding %d too large)", out.h, out.w, spec.pad);
        }
        n_weight = (size_t)spec.out * in.c * spec.kernel * spec.kernel;
        n_bias = spec.bias ? (size_t)spec.out : 0;
        break;
    }
    case GT_BATCHNORM:
        if (!(spec.eps > 0.0f)) ADD_FAIL("batchnorm needs eps > 0 (got %g)", spec.eps);
        if (!(spec.momentum >= 0.0f && spec.momentum <= 1.0f))
            ADD_FAIL("batchnorm needs 0 <= momentum <= 1 (got %g)", spec.momentum);
        n_weight = n_bias = (size_t)in.c;
        n_state = 2 * (size_t)in.c;
        break;
    case GT_RELU:
    case GT_TANH:
    case GT_SIGMOID:
        break;
    case GT_LEAKYRELU:
        if (!isfinite(spec.slope)) ADD_FAIL("leakyrelu slope must be finite");
        break;
    case GT_DROPOUT:
        if (!(spec.p >= 0.0f && spec.p <= 1.0f)) ADD_FAIL("dropout needs 0 <= p <= 1 (got %g)", spec.p);
        break;
    case GT_RESHAPE: {
        gt_shape r = spec.reshape;
        if (r.c == 0 && r.h == 0 && r.w == 0) {
            out = (gt_shape){(int)gt_shape_size(in), 1, 1};
        } else {
            if (r.c < 1 || r.h < 1 || r.w < 1) ADD_FAIL("bad reshape target %dx%dx%d", r.c, r.h, r.w);
            if (gt_shape_size(r) != gt_shape_size(in))
                ADD_FAIL("cannot reshape %zu features to %dx%dx%d = %zu", gt_shape_size(in), r.c, r.h, r.w,
                         gt_shape_size(r));
            out = r;
        }
        break;
    }
    default:
        ADD_FAIL("unknown layer kind %d", (int)spec.kind);
    }
    if (net->n_layers == net->cap_layers) {
        int cap = net->cap_layers ? 2 * net->cap_layers : 16;
        gt_layer *nl = gt_alloc(sizeof(gt_layer) * (size_t)cap);
        if (net->n_layers) memcpy(nl, net->layers, sizeof(gt_layer) * (size_t)net->n_layers);
        gt_free(net->layers);
        net->layers = nl;
        net->cap_layers = cap;
    }
    gt_layer *L = &net->layers[net->n_layers++];
    memset(L, 0, sizeof *L);
    L->spec = spec;
    L->in = in;
    L->out = out;
    L->n_weight = n_weight;
    L->n_bias = n_bias;
    L->n_state = n_state;
    net->out = out;
    return NULL;
}

static float bound_for(const gt_layer *L) {
    int K = L->spec.kernel;
    size_t fan_in = 1;
    switch (L->spec.kind) {
    case GT_DENSE: fan_in = (size_t)L->in.c; break;
    case GT_CONV2D: fan_in = (size_t)L->in.c * K * K; break;
    case GT_CONVT2D: fan_in = (size_t)L->spec.out * K * K; break; /* PyTorch: weight.size(1) * K * K */
    default: break;
    }
    return (float)(1.0 / sqrt((double)fan_in));
}

void gt_net_finalize(gt_net *net, int max_batch, uint64_t seed, uint32_t net_id) {
    GT_CHECK(!net->params, "net %s: gt_net_finalize called twice", net->name);
    GT_CHECK(max_batch >= 1, "net %s: max_batch must be >= 1 (got %d)", net->name, max_batch);
    net->max_batch = max_batch;
    size_t np = 0, ns = 0, scratch = 0, dxn = gt_shape_size(net->in);
    for (int i = 0; i < net->n_layers; i++) {
        gt_layer *L = &net->layers[i];
        L->weight = np;
        np += L->n_weight;
        L->bias = np;
        np += L->n_bias;
        L->running_mean = ns;
        L->running_var = ns + L->n_state / 2;
        ns += L->n_state;
        size_t nin = gt_shape_size(L->in), nout = gt_shape_size(L->out);
        if (nin > dxn) dxn = nin;
        if (L->spec.kind != GT_RESHAPE) L->y = gt_alloc_floats((size_t)max_batch * nout);
        size_t s = 0;
        if (L->spec.kind == GT_CONV2D) /* its own scratch: it keeps the forward's columns for the backward */
            L->aux = gt_alloc_floats(
                gt_conv2d_scratch(max_batch, L->in.c, L->out.c, L->spec.kernel, L->out.h, L->out.w));
        else if (L->spec.kind == GT_CONVT2D)
            s = gt_convt2d_scratch(max_batch, L->in.c, L->out.c, L->spec.kernel, L->in.h, L->in.w);
        else if (L->spec.kind == GT_BATCHNORM)
            L->aux = gt_alloc_floats(gt_batchnorm_aux_size(max_batch, L->in.c, L->in.h * L->in.w));
        else if (L->spec.kind == GT_DROPOUT)
            L->aux = gt_alloc_floats((size_t)max_batch * nin);
        if (s > scratch) scratch = s;
    }
    net->n_params = np;
    net->params = gt_alloc_floats(np);
    net->grads = gt_alloc_floats(np);
    net->n_state = ns;
    net->state = gt_alloc_floats(ns);
    net->n_scratch = scratch;
    net->scratch = gt_alloc_floats(scratch);
    net->dx[0] = gt_alloc_floats((size_t)max_batch * dxn);
    net->dx[1] = gt_alloc_floats((size_t)max_batch * dxn);
    for (int i = 0; i < net->n_layers; i++) {
        gt_layer *L = &net->layers[i];
        uint32_t purpose = GT_PURPOSE(GT_RNG_INIT, (net_id << 8) | ((uint32_t)i & 0xffu));
        if (L->spec.kind == GT_BATCHNORM) {
            for (size_t k = 0; k < L->n_weight; k++) net->params[L->weight + k] = 1.0f;
            for (size_t k = 0; k < L->n_state / 2; k++) net->state[L->running_var + k] = 1.0f;
            continue;
        }
        float bnd = bound_for(L);
        float *w = net->params + L->weight, *b = net->params + L->bias;
        gt_rand_uniform(w, L->n_weight, seed, purpose, 0, 0);
        for (size_t k = 0; k < L->n_weight; k++) w[k] = (2.0f * w[k] - 1.0f) * bnd;
        gt_rand_uniform(b, L->n_bias, seed, purpose, 0, 1);
        for (size_t k = 0; k < L->n_bias; k++) b[k] = (2.0f * b[k] - 1.0f) * bnd;
    }
}

void gt_net_free(gt_net *net) {
    for (int i = 0; i < net->n_layers; i++) {
        gt_layer *L = &net->layers[i];
        if (L->spec.kind != GT_RESHAPE) gt_free(L->y);
        gt_free(L->aux);
    }
    gt_free(net->layers);
    gt_free(net->params);
    gt_free(net->grads);
    gt_free(net->state);
    gt_free(net->scratch);
    gt_free(net->dx[0]);
    gt_free(net->dx[1]);
    memset(net, 0, sizeof *net);
}

const float *gt_net_forward(gt_net *net, const float *x, int B, int train, gt_rng_ctx rng) {
    GT_CHECK(net->params, "net %s: forward before gt_net_finalize", net->name);
    GT_CHECK(B >= 1 && B <= net->max_batch, "net %s: batch %d outside 1..%d (max_batch)", net->name, B,
             net->max_batch);
    GT_CHECK(x, "net %s: forward with a NULL input", net->name);
    net->x = x;
    net->batch = B;
    net->train = train ? 1 : 0;
    net->rng = rng;
    const gt_bn_sync *sync = train && net->bn_sync.sum ? &net->bn_sync : NULL;
    const float *cur = x;
    for (int i = 0; i < net->n_layers; i++) {
        gt_layer *L = &net->layers[i];
        const gt_layer_spec *s = &L->spec;
        const float *W = net->params + L->weight, *b = L->n_bias ? net->params + L->bias : NULL;
        size_t nin = (size_t)B * gt_shape_size(L->in);
        switch (s->kind) {
        case GT_DENSE: gt_dense_forward(L->y, cur, W, b, B, L->in.c, L->out.c); break;
        case GT_CONV2D:
            gt_conv2d_forward(L->y, cur, W, b, B, L->in.c, L->in.h, L->in.w, L->out.c, s->kernel, s->stride, s->pad,
                              L->aux);
            break;
        case GT_CONVT2D:
            gt_convt2d_forward(L->y, cur, W, b, B, L->in.c, L->in.h, L->in.w, L->out.c, s->kernel, s->stride,
                               s->pad, s->output_pad, net->scratch);
            break;
        case GT_BATCHNORM:
            gt_batchnorm_forward(L->y, L->aux, net->state + L->running_mean, net->state + L->running_var, cur, W,
                                 net->params + L->bias, B, L->in.c, L->in.h * L->in.w, s->eps, s->momentum,
                                 net->train, sync);
            break;
        case GT_RELU: gt_relu_forward(L->y, cur, nin); break;
        case GT_LEAKYRELU: gt_leakyrelu_forward(L->y, cur, nin, s->slope); break;
        case GT_TANH: gt_tanh_forward(L->y, cur, nin); break;
        case GT_SIGMOID: gt_sigmoid_forward(L->y, cur, nin); break;
        case GT_DROPOUT:
            gt_dropout_forward(L->y, L->aux, cur, B, gt_shape_size(L->in), s->p, net->train, &net->rng, i);
            break;
        case GT_RESHAPE: L->y = (float *)cur; break; /* alias: never written through */
        default: gt_fatal("net %s: layer %d has unknown kind %d", net->name, i, (int)s->kind);
        }
        cur = L->y;
    }
    return cur;
}

const float *gt_net_backward(gt_net *net, const float *dy) {
    GT_CHECK(net->x, "net %s: backward before forward", net->name);
    GT_CHECK(dy, "net %s: backward with a NULL dy", net->name);
    int B = net->batch;
    const gt_bn_sync *sync = net->train && net->bn_sync.sum ? &net->bn_sync : NULL;
    int pg = !net->skip_param_grads;
    /* Without the input delta, layers below the first one with parameters
     * have nothing to do, and that one computes no dx. */
    int first = 0;
    if (!net->need_input_grad) {
        if (!pg) return NULL;
        while (first < net->n_layers && net->layers[first].n_weight + net->layers[first].n_bias == 0) first++;
    }
    const float *cur = dy;
    for (int i = net->n_layers - 1; i >= first; i--) {
        gt_layer *L = &net->layers[i];
        const gt_layer_spec *s = &L->spec;
        const float *x = i ? net->layers[i - 1].y : net->x;
        const float *W = net->params + L->weight;
        float *dW = pg && L->n_weight ? net->grads + L->weight : NULL;
        float *db = pg && L->n_bias ? net->grads + L->bias : NULL;
        float *dx = cur == net->dx[0] ? net->dx[1] : net->dx[0];
        if (i == first && !net->need_input_grad) dx = NULL;
        size_t nin = (size_t)B * gt_shape_size(L->in);
        switch (s->kind) {
        case GT_DENSE: gt_dense_backward(dx, dW, db, cur, x, W, B, L->in.c, L->out.c); break;
        case GT_CONV2D:
            gt_conv2d_backward(dx, dW, db, cur, x, W, B, L->in.c, L->in.h, L->in.w, L->out.c, s->kernel, s->stride,
                               s->pad, L->aux, 1);
            break;
        case GT_CONVT2D:
            gt_convt2d_backward(dx, dW, db, cur, x, W, B, L->in.c, L->in.h, L->in.w, L->out.c, s->kernel,
                                s->stride, s->pad, s->output_pad, net->scratch);
            break;
        case GT_BATCHNORM:
            gt_batchnorm_backward(dx, dW, db, cur, L->aux, W, B, L->in.c, L->in.h * L->in.w, net->train, sync);
            break;
        case GT_RELU: gt_relu_backward(dx, cur, L->y, nin); break;
        case GT_LEAKYRELU: gt_leakyrelu_backward(dx, cur, x, nin, s->slope); break;
        case GT_TANH: gt_tanh_backward(dx, cur, L->y, nin); break;
        case GT_SIGMOID: gt_sigmoid_backward(dx, cur, L->y, nin); break;
        case GT_DROPOUT: gt_dropout_backward(dx, cur, L->aux, nin, net->train); break;
        case GT_RESHAPE: dx = (float *)cur; break; /* alias: the delta passes through unchanged */
        default: gt_fatal("net %s: layer %d has unknown kind %d", net->name, i, (int)s->kind);
        }
        if (pg && net->grads_ready && L->n_weight + L->n_bias) net->grads_ready(L->weight, net->grads_ready_arg);
        cur = dx;
    }
    return net->need_input_grad ? cur : NULL;
}

void gt_net_zero_grads(gt_net *net) {
    if (net->grads) memset(net->grads, 0, sizeof(float) * net->n_params);
}

typedef struct {
    const char *name;
    float *data;
    int trainable, rank, d[4];
} tensor_desc;

int gt_net_tensors(const gt_net *net, gt_tensor_ref *refs, int cap) {
    int n = 0;
    for (int i = 0; i < net->n_layers; i++) {
        const gt_layer *L = &net->layers[i];
        const char *kn = gt_layer_kind_name(L->spec.kind);
        int K = L->spec.kernel, C = L->in.c, O = L->out.c;
        tensor_desc t[4];
        int nt = 0;
        float *P = net->params, *S = net->state;
        switch (L->spec.kind) {
        case GT_DENSE:
            t[nt++] = (tensor_desc){"weight", P ? P + L->weight : NULL, 1, 2, {O, C, 0, 0}};
            break;
        case GT_CONV2D:
            t[nt++] = (tensor_desc){"weight", P ? P + L->weight : NULL, 1, 4, {O, C, K, K}};
            break;
        case GT_CONVT2D:
            t[nt++] = (tensor_desc){"weight", P ? P + L->weight : NULL, 1, 4, {C, O, K, K}};
            break;
        case GT_BATCHNORM:
            t[nt++] = (tensor_desc){"weight", P ? P + L->weight : NULL, 1, 1, {C, 0, 0, 0}};
            break;
        default: break;
        }
        if (L->n_bias) t[nt++] = (tensor_desc){"bias", P ? P + L->bias : NULL, 1, 1, {O, 0, 0, 0}};
        if (L->spec.kind == GT_BATCHNORM) {
            t[nt++] = (tensor_desc){"running_mean", S ? S + L->running_mean : NULL, 0, 1, {C, 0, 0, 0}};
            t[nt++] = (tensor_desc){"running_var", S ? S + L->running_var : NULL, 0, 1, {C, 0, 0, 0}};
        }
        for (int k = 0; k < nt; k++, n++) {
            if (n >= cap || !refs) continue;
            gt_tensor_ref *r = &refs[n];
            memset(r, 0, sizeof *r);
            snprintf(r->name, sizeof r->name, "%02d_%s/%s", i, kn, t[k].name);
            r->data = t[k].data;
            r->trainable = t[k].trainable;
            r->rank = t[k].rank;
            memcpy(r->dims, t[k].d, sizeof r->dims);
        }
    }
    return n;
}

void gt_net_print(const gt_net *net) {
    gt_info("network %s: input %dx%dx%d, %d layers, %zu parameters", net->name, net->in.c, net->in.h, net->in.w,
            net->n_layers, net->n_params);
    gt_info("  %-3s %-10s %-14s %10s", "#", "kind", "output CxHxW", "params");
    for (int i = 0; i < net->n_layers; i++) {
        const gt_layer *L = &net->layers[i];
        char shape[48];
        snprintf(shape, sizeof shape, "%dx%dx%d", L->out.c, L->out.h, L->out.w);
        gt_info("  %02d  %-10s %-14s %10zu", i, gt_layer_kind_name(L->spec.kind), shape, L->n_weight + L->n_bias);
    }
}
