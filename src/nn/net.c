/* The sequential network (include/gentrain/nn.h): shape inference, one flat
 * parameter buffer, one flat gradient buffer of the same layout, one flat
 * state buffer, initialization, and the forward and backward loops over the
 * layers' descriptors. Nothing here names a layer kind.
 *
 * Layout: layer by layer, each layer's tensors in its descriptor's order;
 * trainable tensors in params (and grads), the others in state. Alias layers
 * (reshape, flatten) have no output buffer: y is their input. */
#include "gentrain/nn.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void gt_net_init(gt_net *net, const char *name, gt_shape in) {
    memset(net, 0, sizeof *net);
    snprintf(net->name, sizeof net->name, "%s", name ? name : "net");
    GT_ASSERT(in.c >= 1 && in.h >= 1 && in.w >= 1, "net %s: bad input shape %dx%dx%d", net->name, in.c, in.h, in.w);
    net->in = in;
    net->out = in;
}

gt_status gt_net_add(gt_net *net, gt_layer_spec spec) {
    GT_ASSERT(!net->params, "net %s: gt_net_add after gt_net_finalize", net->name);
    GT_ASSERT(spec.kind, "net %s: layer spec without a kind", net->name);
    gt_layer L;
    memset(&L, 0, sizeof L);
    L.spec = spec;
    L.kind = spec.kind;
    L.index = net->n_layers;
    L.in = net->out;
    gt_status st = L.kind->shape(&L, &L.out);
    if (st)
        return GT_ERROR("net %s, layer %d (%s, input %dx%dx%d): %s", net->name, L.index, L.kind->name, L.in.c,
                        L.in.h, L.in.w, gt_error_message());
    if (L.out.c < 1 || L.out.h < 1 || L.out.w < 1 || gt_shape_size(L.out) > ((size_t)1 << 32))
        return GT_ERROR("net %s, layer %d (%s, input %dx%dx%d): output shape %dx%dx%d is empty or too large",
                        net->name, L.index, L.kind->name, L.in.c, L.in.h, L.in.w, L.out.c, L.out.h, L.out.w);
    L.n_tensors = L.kind->tensors ? L.kind->tensors(&L, L.tensor) : 0;
    GT_ASSERT(L.n_tensors <= GT_LAYER_MAX_TENSORS, "layer kind %s: too many tensors", L.kind->name);
    for (int t = 0; t < L.n_tensors; t++) {
        size_t numel = 1;
        for (int d = 0; d < L.tensor[t].rank; d++) numel *= (size_t)L.tensor[t].dims[d];
        size_t *count = L.tensor[t].trainable ? &L.n_params : &L.n_state;
        L.toff[t] = *count;
        *count += numel;
    }
    if (net->n_layers == net->cap_layers) {
        int cap = net->cap_layers ? 2 * net->cap_layers : 16;
        gt_layer *nl = gt_alloc(sizeof(gt_layer) * (size_t)cap);
        if (net->n_layers) memcpy(nl, net->layers, sizeof(gt_layer) * (size_t)net->n_layers);
        gt_free(net->layers);
        net->layers = nl;
        net->cap_layers = cap;
    }
    net->layers[net->n_layers++] = L;
    net->out = L.out;
    return GT_OK;
}

/* Floats of each buffer for batches up to B. */
typedef struct {
    size_t params, state, outputs, aux, scratch, dx;
} net_sizes;

static net_sizes sizes(const gt_net *net, int B) {
    net_sizes s = {0};
    s.dx = gt_shape_size(net->in);
    for (int i = 0; i < net->n_layers; i++) {
        const gt_layer *L = &net->layers[i];
        s.params += L->n_params;
        s.state += L->n_state;
        size_t nin = gt_shape_size(L->in);
        if (nin > s.dx) s.dx = nin;
        if (!L->kind->alias) s.outputs += (size_t)B * gt_shape_size(L->out);
        if (L->kind->aux_floats) s.aux += L->kind->aux_floats(L, B);
        size_t sc = L->kind->scratch_floats ? L->kind->scratch_floats(L, B) : 0;
        if (sc > s.scratch) s.scratch = sc;
    }
    s.dx *= 2 * (size_t)B;
    return s;
}

size_t gt_net_floats_needed(const gt_net *net, int max_batch) {
    net_sizes s = sizes(net, max_batch);
    return 2 * s.params + s.state + s.outputs + s.aux + s.scratch + s.dx;
}

/* Initialization by the tensor's role and the network's scheme (nn.h:
 * gt_init). PyTorch's defaults: a linear map's weight and bias uniform in
 * +-1/sqrt(fan_in) (kaiming_uniform with a = sqrt(5) comes to that),
 * normalization gain 1, shift 0, running mean 0, running variance 1. The
 * draws of tensor t of layer i come from the stream (seed, INIT / net_id << 8
 * | i, step 0, index t), whatever the scheme. */
static void init_tensor(const gt_tensor_desc *t, float *data, size_t n, gt_init init, uint64_t seed,
                        uint32_t purpose, int index) {
    int fan_in = t->fan_in > 0 ? t->fan_in : 1, fan_out = t->fan_out > 0 ? t->fan_out : 1;
    switch (t->role) {
    case GT_T_WEIGHT:
    case GT_T_BIAS: {
        if (init.scheme != GT_INIT_PYTORCH && t->role == GT_T_BIAS) {
            memset(data, 0, sizeof(float) * n);
            break;
        }
        if (init.scheme == GT_INIT_NORMAL || init.scheme == GT_INIT_KAIMING) {
            float std = init.scheme == GT_INIT_NORMAL ? (float)init.std : (float)(sqrt(2.0) / sqrt((double)fan_in));
            gt_rand_normal(data, n, seed, purpose, 0, (uint64_t)index);
            for (size_t k = 0; k < n; k++) data[k] *= std;
            break;
        }
        float bnd = init.scheme == GT_INIT_XAVIER ? (float)sqrt(6.0 / ((double)fan_in + fan_out))
                                                  : (float)(1.0 / sqrt((double)fan_in));
        gt_rand_uniform(data, n, seed, purpose, 0, (uint64_t)index);
        for (size_t k = 0; k < n; k++) data[k] = (2.0f * data[k] - 1.0f) * bnd;
        break;
    }
    case GT_T_SCALE:
        if (init.scheme == GT_INIT_NORMAL) {
            gt_rand_normal(data, n, seed, purpose, 0, (uint64_t)index);
            for (size_t k = 0; k < n; k++) data[k] = 1.0f + (float)init.std * data[k];
            break;
        }
        for (size_t k = 0; k < n; k++) data[k] = 1.0f;
        break;
    case GT_T_VAR:
        for (size_t k = 0; k < n; k++) data[k] = 1.0f;
        break;
    case GT_T_SHIFT:
    case GT_T_MEAN: memset(data, 0, sizeof(float) * n); break;
    case GT_T_UNIT: {
        gt_rand_normal(data, n, seed, purpose, 0, (uint64_t)index);
        double ss = 0;
        for (size_t k = 0; k < n; k++) ss += (double)data[k] * data[k];
        float inv = (float)(1.0 / fmax(sqrt(ss), 1e-12));
        for (size_t k = 0; k < n; k++) data[k] *= inv;
        break;
    }
    }
}

/* n floats, their bytes added to *bytes (net->bytes: the memory account). */
static float *alloc_counted(size_t *bytes, size_t n) {
    *bytes += n * sizeof(float);
    return gt_alloc_floats(n);
}

void gt_net_finalize(gt_net *net, int max_batch, uint64_t seed, uint32_t net_id) {
    GT_ASSERT(!net->params, "net %s: gt_net_finalize called twice", net->name);
    GT_ASSERT(max_batch >= 1, "net %s: max_batch must be >= 1 (got %d)", net->name, max_batch);
    GT_ASSERT(net->init.scheme != GT_INIT_NORMAL || (net->init.std > 0 && isfinite(net->init.std)),
              "net %s: normal initialization needs a positive std (got %g)", net->name, net->init.std);
    net->max_batch = max_batch;
    net_sizes s = sizes(net, max_batch);
    gt_net_bytes *b = &net->bytes;
    net->n_params = s.params;
    net->params = alloc_counted(&b->params, s.params);
    net->grads = alloc_counted(&b->grads, s.params);
    net->n_state = s.state;
    net->state = alloc_counted(&b->state, s.state);
    net->n_scratch = s.scratch;
    net->scratch = alloc_counted(&b->workspaces, s.scratch);
    net->dx[0] = alloc_counted(&b->activations, s.dx / 2);
    net->dx[1] = alloc_counted(&b->activations, s.dx / 2);
    size_t np = 0, ns = 0;
    for (int i = 0; i < net->n_layers; i++) {
        gt_layer *L = &net->layers[i];
        L->param_offset = np;
        L->state_offset = ns;
        L->param = net->params + np;
        L->grad = net->grads + np;
        L->state = net->state + ns;
        np += L->n_params;
        ns += L->n_state;
        if (!L->kind->alias) L->y = alloc_counted(&b->activations, (size_t)max_batch * gt_shape_size(L->out));
        if (L->kind->aux_floats)
            L->aux = alloc_counted(L->kind->aux_is_workspace ? &b->workspaces : &b->activations,
                                   L->kind->aux_floats(L, max_batch));
        uint32_t purpose = GT_PURPOSE(GT_RNG_INIT, (net_id << 8) | ((uint32_t)i & 0xffu));
        for (int t = 0; t < L->n_tensors; t++) {
            const gt_tensor_desc *td = &L->tensor[t];
            size_t numel = 1;
            for (int d = 0; d < td->rank; d++) numel *= (size_t)td->dims[d];
            init_tensor(td, gt_layer_tensor(L, td->trainable ? L->param : L->state, t), numel, net->init, seed,
                        purpose, t);
        }
    }
}

void gt_net_free(gt_net *net) {
    for (int i = 0; i < net->n_layers; i++) {
        gt_layer *L = &net->layers[i];
        if (!L->kind->alias) gt_free(L->y);
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
    GT_ASSERT(net->params, "net %s: forward before gt_net_finalize", net->name);
    GT_ASSERT(B >= 1 && B <= net->max_batch, "net %s: batch %d outside 1..%d (max_batch)", net->name, B,
              net->max_batch);
    GT_ASSERT(x, "net %s: forward with a NULL input", net->name);
    net->x = x;
    net->batch = B;
    net->train = train ? 1 : 0;
    net->rng = rng;
    gt_pass p = {B, net->train, rng, train && net->bn_sync.sum ? &net->bn_sync : NULL, net->scratch};
    const float *cur = x;
    for (int i = 0; i < net->n_layers; i++) {
        gt_layer *L = &net->layers[i];
        if (L->kind->alias)
            L->y = (float *)cur; /* never written through */
        else
            L->kind->forward(L, cur, L->y, &p);
        cur = L->y;
        if (net->progress.fn) net->progress.fn(net->progress.arg);
    }
    return cur;
}

const float *gt_net_backward(gt_net *net, const float *dy, int what, gt_grads_ready ready) {
    GT_ASSERT(net->x, "net %s: backward before forward", net->name);
    GT_ASSERT(dy, "net %s: backward with a NULL dy", net->name);
    int param_grads = (what & GT_BACKWARD_PARAMS) != 0, input = (what & GT_BACKWARD_INPUT) != 0;
    gt_pass p = {net->batch, net->train, net->rng, net->train && net->bn_sync.sum ? &net->bn_sync : NULL,
                 net->scratch};
    /* Without the input delta, layers below the first one with parameters
     * have nothing to do, and that one computes no dx. */
    int first = 0;
    if (!input) {
        if (!param_grads) return NULL;
        while (first < net->n_layers && net->layers[first].n_params == 0) first++;
    }
    const float *cur = dy;
    for (int i = net->n_layers - 1; i >= first; i--) {
        gt_layer *L = &net->layers[i];
        const float *x = i ? net->layers[i - 1].y : net->x;
        float *dx = cur == net->dx[0] ? net->dx[1] : net->dx[0];
        if (i == first && !input) dx = NULL;
        if (L->kind->alias)
            dx = (float *)cur; /* the delta passes through unchanged */
        else
            L->kind->backward(L, x, L->y, cur, dx, param_grads, &p);
        if (param_grads && ready.fn && L->n_params) ready.fn(net, L->param_offset, ready.arg);
        if (net->progress.fn) net->progress.fn(net->progress.arg);
        cur = dx;
    }
    return input ? cur : NULL;
}

void gt_net_zero_grads(gt_net *net) {
    if (!net->grads) return;
    /* in blocks over the threads: megabytes of gradients every step */
    const size_t block = 1 << 16;
    size_t n = net->n_params, n_blocks = (n + block - 1) / block;
#pragma omp parallel for schedule(static) if (n_blocks > 1)
    for (size_t i = 0; i < n_blocks; i++) {
        size_t lo = i * block, len = n - lo < block ? n - lo : block;
        memset(net->grads + lo, 0, sizeof(float) * len);
    }
}

int gt_net_tensors(const gt_net *net, gt_tensor_ref *refs, int cap) {
    int n = 0;
    for (int i = 0; i < net->n_layers; i++) {
        const gt_layer *L = &net->layers[i];
        for (int t = 0; t < L->n_tensors; t++, n++) {
            if (n >= cap || !refs) continue;
            const gt_tensor_desc *td = &L->tensor[t];
            gt_tensor_ref *r = &refs[n];
            memset(r, 0, sizeof *r);
            snprintf(r->name, sizeof r->name, "%02d_%s/%s", i, L->kind->name, td->name);
            float *base = td->trainable ? net->params : net->state;
            r->data = base ? base + (td->trainable ? L->param_offset : L->state_offset) + L->toff[t] : NULL;
            r->trainable = td->trainable;
            r->rank = td->rank;
            memcpy(r->dims, td->dims, sizeof r->dims);
        }
    }
    return n;
}

void gt_net_swap_buffers(gt_net *net, float **params, float **state) {
    float *p = net->params, *s = net->state;
    net->params = *params;
    net->state = *state;
    *params = p;
    *state = s;
    for (int i = 0; i < net->n_layers; i++) {
        gt_layer *L = &net->layers[i];
        L->param = net->params + L->param_offset;
        L->state = net->state + L->state_offset;
    }
}

void gt_net_print(const gt_net *net) {
    gt_info("network %s: input %dx%dx%d, %d layers, %zu parameters", net->name, net->in.c, net->in.h, net->in.w,
            net->n_layers, net->n_params);
    gt_info("  %-3s %-10s %-14s %10s", "#", "kind", "output CxHxW", "params");
    for (int i = 0; i < net->n_layers; i++) {
        const gt_layer *L = &net->layers[i];
        char shape[48];
        snprintf(shape, sizeof shape, "%dx%dx%d", L->out.c, L->out.h, L->out.w);
        gt_info("  %02d  %-10s %-14s %10zu", i, L->kind->name, shape, L->n_params);
    }
}
