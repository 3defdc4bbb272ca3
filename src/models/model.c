/* Models (include/gentrain/model.h): building one from its options, the
 * dispatch to its kind (gan.c, vae.c, classifier.c), and what the kinds share. */
#include "gentrain/model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

void gt_stats_add_net(gt_stats *s, const char *name, double value, int net) {
    GT_ASSERT(s->n < GT_MAX_STATS, "too many statistics (adding %s)", name);
    s->name[s->n] = name;
    s->value[s->n] = value;
    s->net[s->n] = net;
    s->n++;
}

void gt_stats_add(gt_stats *s, const char *name, double value) { gt_stats_add_net(s, name, value, -1); }

const gt_model_kind_info *gt_model_kind_get(gt_model_kind kind) {
    switch (kind) {
    case GT_MODEL_GAN: return &gt_model_gan;
    case GT_MODEL_VAE: return &gt_model_vae;
    case GT_MODEL_CLASSIFIER: return &gt_model_classifier;
    }
    gt_panic("unknown model kind %d", (int)kind);
}

const char *gt_model_kind_name(gt_model_kind kind) { return gt_model_kind_get(kind)->name; }

gt_pixel_scale gt_model_pixel_scale(const gt_model *m) { return m->info->scale; }

void gt_model_opts_free(gt_model_opts *o) {
    for (int k = 0; k < GT_MAX_NETS; k++) {
        gt_net_opts *n = &o->net[k];
        for (int i = 0; i < n->n_layers && n->where; i++) gt_free(n->where[i]);
        gt_free(n->where);
        gt_free(n->layers);
        memset(n, 0, sizeof *n);
    }
}

/* The memory this process may use, in bytes (0 if unknown), and what sets
 * it: the machine's physical memory, or less: the address-space or data
 * limit (ulimit -v / -d), or the memory limit of its cgroup (v2 memory.max,
 * v1 memory.limit_in_bytes; e.g. a Slurm job's). */
static double memory_limit(const char **what) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    double have = pages > 0 && page > 0 ? (double)pages * (double)page : 0.0;
    *what = "this machine's memory";
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (have == 0 || (double)rl.rlim_cur < have))
        have = (double)rl.rlim_cur, *what = "this process's address-space limit (ulimit -v)";
    if (getrlimit(RLIMIT_DATA, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (have == 0 || (double)rl.rlim_cur < have))
        have = (double)rl.rlim_cur, *what = "this process's data-size limit (ulimit -d)";
    FILE *f = fopen("/proc/self/cgroup", "r"); /* "0::/path" (v2), "N:memory:/path" (v1) */
    char line[1024], path[1200];
    if (f) {
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\n")] = '\0';
            const char *file = NULL, *rest = NULL;
            if (!strncmp(line, "0::", 3))
                rest = line + 3, file = "memory.max";
            else if ((rest = strstr(line, ":memory:")))
                rest += 8, file = "memory/%s/memory.limit_in_bytes";
            if (!file) continue;
            if (!strcmp(file, "memory.max"))
                snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.max", rest);
            else
                snprintf(path, sizeof path, "/sys/fs/cgroup/memory%s/memory.limit_in_bytes", rest);
            FILE *m = fopen(path, "r");
            double v; /* "max" (v2) or a huge number (v1) when there is no limit */
            if (m && fscanf(m, "%lf", &v) == 1 && v > 0 && (have == 0 || v < have))
                have = v, *what = "this process's cgroup memory limit";
            if (m) fclose(m);
        }
        fclose(f);
    }
    return have;
}

/* Network k from its options; an error names the layer line that does not
 * fit, or the last one when the network ends in the wrong shape. */
static gt_status build_net(gt_model *m, const gt_net_opts *o, int k) {
    gt_shape in, out;
    const char *what;
    m->info->net_shapes(m, k, &in, &out, &what);
    gt_net *net = &m->net[k];
    gt_net_init(net, m->info->net_names[k], in);
    GT_ENSURE(o->n_layers > 0, "network %s has no layers", net->name);
    for (int i = 0; i < o->n_layers; i++)
        if (gt_net_add(net, o->layers[i]) != GT_OK)
            return GT_ERROR("%s: %s", o->where ? o->where[i] : net->name, gt_error_message());
    if (!gt_shape_eq(net->out, out))
        return GT_ERROR("%s: network %s ends with shape %dx%dx%d but %s is %dx%dx%d: change its last layers",
                        o->where ? o->where[o->n_layers - 1] : net->name, net->name, net->out.c, net->out.h,
                        net->out.w, what, out.c, out.h, out.w);
    return GT_OK;
}

gt_status gt_model_build(const gt_model_opts *o, gt_shape data_shape, int n_classes, int max_batch, uint64_t seed,
                         gt_model **out) {
    *out = NULL;
    gt_model *m = gt_alloc(sizeof *m);
    m->kind = o->kind;
    m->info = gt_model_kind_get(o->kind);
    m->n_nets = m->info->n_nets;
    m->data_shape = data_shape;
    m->n_classes = n_classes;
    m->max_batch = max_batch;
    m->z_dim = o->z_dim;
    m->gan_loss = o->gan_loss;
    m->gan = o->gan;
    if (m->gan.pack < 1) m->gan.pack = 1;
    m->recon = o->recon;
    m->binarize = o->binarize;
    m->kl_weight = o->kl_weight;
    gt_status st = GT_OK;
    for (int k = 0; k < m->n_nets && !st; k++) st = build_net(m, &o->net[k], k);
    if (!st) {
        /* what the networks need, before allocating it: a config typo (pad=10000)
         * must not make the run allocate until the kernel kills it */
        const char *limit;
        double need = 0, have = memory_limit(&limit);
        for (int k = 0; k < m->n_nets; k++)
            need += 4.0 * gt_net_floats_needed(&m->net[k], max_batch) + 3.0 * 4.0 * m->net[k].n_params;
        need += 4.0 * m->info->work_floats(m, max_batch);
        if (have > 0 && need > 0.9 * have)
            st = GT_ERROR("the model needs %.1f GB for batches of %d (networks %s%s%s: parameters, gradients, "
                          "optimizer state, activations, workspaces), more than %s of %.1f GB: check the layer sizes "
                          "(a large pad or out?) and batch_size",
                          need / 1e9, max_batch, m->net[0].name, m->n_nets > 1 ? " and " : "",
                          m->n_nets > 1 ? m->net[1].name : "", limit, have / 1e9);
    }
    if (st) {
        for (int k = 0; k < m->n_nets; k++) gt_net_free(&m->net[k]);
        gt_free(m);
        return gt_error_trace(__FILE__, __LINE__, st);
    }
    for (int k = 0; k < m->n_nets; k++) {
        m->net[k].init = o->net[k].init;
        gt_net_finalize(&m->net[k], max_batch, seed, (uint32_t)k);
        gt_optim_init(&m->opt[k], &o->net[k].optim, m->net[k].n_params);
    }
    m->ahead_step = -1;
    m->n_work = m->info->work_floats(m, max_batch);
    m->work = gt_alloc_floats(m->n_work);
    m->work_bytes = m->n_work * sizeof(float);
    if (m->kind == GT_MODEL_GAN && m->gan.g_ema > 0) {
        m->ema_params = gt_alloc_floats(m->net[0].n_params);
        m->ema_state = gt_alloc_floats(m->net[0].n_state);
        m->ema_bytes = (m->net[0].n_params + m->net[0].n_state) * sizeof(float);
        gt_model_reset_ema(m);
    }
    *out = m;
    return GT_OK;
}

void gt_model_memory(const gt_model *m, gt_memory *out) {
    memset(out, 0, sizeof *out);
    out->batch = m->max_batch;
    for (int k = 0; k < m->n_nets; k++) {
        const gt_net_bytes *b = &m->net[k].bytes;
        out->params += b->params + b->state;
        out->grads += b->grads;
        out->activations += b->activations;
        out->workspaces += b->workspaces;
        out->optim += m->opt[k].bytes;
    }
    out->ema = m->ema_bytes;
    out->workspaces += m->work_bytes;
    out->total = out->params + out->grads + out->optim + out->ema + out->activations + out->workspaces;
}

int gt_model_has_ema(const gt_model *m) { return m->ema_params != NULL; }

void gt_model_swap_ema(gt_model *m) {
    GT_ASSERT(m->ema_params, "gt_model_swap_ema: the model has no EMA generator");
    gt_net_swap_buffers(&m->net[0], &m->ema_params, &m->ema_state);
}

void gt_model_reset_ema(gt_model *m) {
    if (!m->ema_params) return;
    memcpy(m->ema_params, m->net[0].params, sizeof(float) * m->net[0].n_params);
    if (m->net[0].n_state) memcpy(m->ema_state, m->net[0].state, sizeof(float) * m->net[0].n_state);
}

double gt_model_noise_sigma(const gt_model *m, uint64_t step) {
    if (m->kind != GT_MODEL_GAN || !(m->gan.noise > 0)) return 0.0;
    if (m->gan.noise_steps <= 0) return m->gan.noise;
    double left = 1.0 - (double)step / (double)m->gan.noise_steps;
    return left > 0 ? m->gan.noise * left : 0.0;
}

void gt_model_free(gt_model *m) {
    if (!m) return;
    for (int k = 0; k < m->n_nets; k++) {
        gt_net_free(&m->net[k]);
        gt_optim_free(&m->opt[k]);
    }
    gt_free(m->work);
    gt_free(m->ema_params);
    gt_free(m->ema_state);
    gt_free(m);
}

static void check_batch(const gt_model *m, int B) {
    GT_ASSERT(B >= 1 && B <= m->max_batch, "batch of %d examples, the model was built for 1..%d", B, m->max_batch);
}

void gt_model_train_step(gt_model *m, const float *x, const int *labels, int B, const gt_step_ctx *ctx,
                         gt_stats *stats) {
    check_batch(m, B);
    stats->n = 0;
    for (int k = 0; k < m->n_nets; k++) m->net[k].progress = ctx->progress;
    m->info->train_step(m, x, labels, B, ctx, stats);
    for (int k = 0; k < m->n_nets; k++) m->net[k].progress = (gt_progress){0};
}

void gt_model_eval_batch(gt_model *m, const float *x, const int *labels, int B, const gt_step_ctx *ctx,
                         gt_stats *stats) {
    check_batch(m, B);
    stats->n = 0;
    m->info->evaluate(m, x, labels, B, ctx, stats);
}

int gt_model_generates(const gt_model *m) { return m->info->generate != NULL; }

/* a GAN's net[1] is D */
int gt_model_can_compute_ahead(const gt_model *m) { return m->kind == GT_MODEL_GAN && m->net[1].n_state == 0; }

void gt_model_generate(gt_model *m, const float *z, int n, float *images) {
    GT_ASSERT(m->info->generate, "a %s model does not generate images", m->info->name);
    m->info->generate(m, z, n, images);
}

void gt_model_reconstruct(gt_model *m, const float *x, int n, float *out) {
    GT_ASSERT(m->info->reconstruct, "a %s model does not reconstruct", m->info->name);
    m->info->reconstruct(m, x, n, out);
}

/* ---- what evaluation needs -------------------------------------------------- */

int gt_model_feature_dim(const gt_model *m) {
    GT_ASSERT(m->info->feature_dim, "a %s model has no features", m->info->name);
    return m->info->feature_dim(m);
}

void gt_model_features(gt_model *m, const float *x, int n, float *feat, float *logits) {
    GT_ASSERT(m->info->features, "a %s model has no features", m->info->name);
    m->info->features(m, x, n, feat, logits);
}

void gt_model_discriminate(gt_model *m, const float *x, int n, float *logits) {
    GT_ASSERT(m->info->discriminate, "a %s model has no discriminator", m->info->name);
    m->info->discriminate(m, x, n, logits);
}

void gt_model_iwae(gt_model *m, const float *x, int n, int k, uint64_t seed, uint64_t example0, gt_iwae_result *out) {
    GT_ASSERT(m->info->iwae, "a %s model has no likelihood", m->info->name);
    GT_ASSERT(k >= 1, "gt_model_iwae: k = %d", k);
    m->info->iwae(m, x, n, k, seed, example0, out);
}

/* The first non-finite float of x [n] (Inf or NaN: all exponent bits set), or n.
 * The test per block is an integer OR, which vectorizes (a float sum would
 * not: its order is fixed without -ffast-math). */
static size_t first_non_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i += 1024) {
        size_t end = n - i < 1024 ? n : i + 1024;
        uint32_t bad = 0;
        for (size_t k = i; k < end; k++) {
            uint32_t bits;
            memcpy(&bits, &x[k], sizeof bits);
            bad |= (uint32_t)((bits & 0x7f800000u) == 0x7f800000u);
        }
        if (!bad) continue;
        for (size_t k = i; k < end; k++)
            if (!isfinite(x[k])) return k;
    }
    return n;
}

/* No Inf or NaN in x [n]: blocks in parallel (the common case, every step). */
static int all_finite(const float *x, size_t n) {
    const size_t block = (size_t)1 << 14;
    size_t n_blocks = (n + block - 1) / block;
    int bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad) if (n_blocks > 1)
    for (size_t b = 0; b < n_blocks; b++) {
        size_t len = n - b * block < block ? n - b * block : block;
        bad |= first_non_finite(x + b * block, len) < len;
    }
    return !bad;
}

int gt_model_finite(const gt_model *m, char *where, size_t cap) {
    int ok = 1;
    for (int k = 0; k < m->n_nets && ok; k++)
        ok = all_finite(m->net[k].params, m->net[k].n_params) && all_finite(m->net[k].state, m->net[k].n_state);
    if (ok && m->ema_params)
        ok = all_finite(m->ema_params, m->net[0].n_params) && all_finite(m->ema_state, m->net[0].n_state);
    if (ok) return 1;
    /* name the first non-finite value, tensor by tensor */
    for (int k = 0; k <= m->n_nets; k++) {
        int ema = k == m->n_nets;
        if (ema && !m->ema_params) break;
        const gt_net *net = &m->net[ema ? 0 : k];
        const float *params = ema ? m->ema_params : net->params, *state = ema ? m->ema_state : net->state;
        for (int i = 0; i < net->n_layers; i++) {
            const gt_layer *L = &net->layers[i];
            for (int t = 0; t < L->n_tensors; t++) {
                const gt_tensor_desc *td = &L->tensor[t];
                size_t numel = 1;
                for (int d = 0; d < td->rank; d++) numel *= (size_t)td->dims[d];
                const float *data = td->trainable ? params + L->param_offset + L->toff[t]
                                                  : state + L->state_offset + L->toff[t];
                size_t j = first_non_finite(data, numel);
                if (j == numel) continue;
                snprintf(where, cap, "%s%s %02d_%s/%s[%zu] = %g", ema ? "EMA " : "", net->name, i, L->kind->name,
                         td->name, j, (double)data[j]);
                return 0;
            }
        }
    }
    return 1;
}

/* ---- shared by the kinds -------------------------------------------------- */

gt_rng_ctx gt_model_rng(const gt_step_ctx *ctx, uint32_t call) {
    return (gt_rng_ctx){ctx->seed, ctx->step, ctx->example0, ctx->stride, call};
}

void gt_model_normal_rows(float *out, int B, int D, const gt_step_ctx *ctx, uint32_t purpose) {
    for (int i = 0; i < B; i++)
        gt_rand_normal(out + (size_t)i * D, (size_t)D, ctx->seed, purpose, ctx->step,
                       ctx->example0 + (uint64_t)i * ctx->stride);
}

/* Fixed blocks (at most 64, at least 2^16 floats), each summed in 8 lanes,
 * the blocks' sums added in order: the same bits for any thread count. */
static double l2_norm(const float *v, size_t n) {
    enum { MAX_BLOCKS = 64 };
    size_t block = (n + MAX_BLOCKS - 1) / MAX_BLOCKS;
    if (block < ((size_t)1 << 16)) block = (size_t)1 << 16;
    size_t n_blocks = (n + block - 1) / block;
    double part[MAX_BLOCKS];
#pragma omp parallel for schedule(static) if (n_blocks > 1)
    for (size_t b = 0; b < n_blocks; b++) {
        const float *x = v + b * block;
        size_t len = n - b * block < block ? n - b * block : block, i = 0;
        double s[8] = {0}; /* independent partial sums, so that the loop vectorizes */
        for (; i + 8 <= len; i += 8)
            for (int j = 0; j < 8; j++) s[j] += (double)x[i + j] * x[i + j];
        for (; i < len; i++) s[0] += (double)x[i] * x[i];
        part[b] = 0;
        for (int j = 0; j < 8; j++) part[b] += s[j];
    }
    double t = 0;
    for (size_t b = 0; b < n_blocks; b++) t += part[b];
    return sqrt(t);
}

double gt_model_update(gt_net *net, gt_optim *opt, const gt_step_ctx *ctx) {
    if (ctx->reduce_grads) ctx->reduce_grads(net, ctx->reduce_arg);
    double norm = l2_norm(net->grads, net->n_params);
    gt_optim_step(opt, net->params, net->grads);
    return norm;
}
