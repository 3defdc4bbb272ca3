/* The training loop's side of data parallelism (include/gentrain/dist.h):
 * the start-up agreement check, per-step replica checks, batch-norm buffers,
 * the communication clock and the [debug] test hooks.
 *
 * Checks whose outcome every rank knows (agreement at start, replica hashes)
 * return a collective error: only rank 0 prints it, and the ranks meet before
 * the job ends, so that the message is out. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gentrain/core.h"
#include "gentrain/dist.h"
#include "internal.h"

/* Appends "r1, r2" of the ranks whose value at all[r*stride + k] differs from rank 0's. */
static int differing_ranks(const uint64_t *all, int stride, int k, char *out, size_t cap) {
    int world = gt_dist_size(), n = 0;
    size_t used = strlen(out);
    for (int r = 1; r < world; r++)
        if (all[(size_t)r * stride + k] != all[k]) {
            if (used < cap) used += (size_t)snprintf(out + used, cap - used, "%s%d", n ? ", " : "", r);
            n++;
        }
    return n;
}

/* On every rank whose config text differs from rank 0's: a warning with the first differing line. */
static void explain_config(const char *mine) {
    size_t len = strlen(mine) + 1;
    uint64_t len0 = len;
    gt_dist_bcast(&len0, sizeof len0);
    char *text0 = gt_alloc((size_t)len0);
    if (gt_dist_rank() == 0) memcpy(text0, mine, len);
    gt_dist_bcast(text0, (size_t)len0);
    if (gt_dist_rank() != 0 && strcmp(mine, text0) != 0) {
        const char *a = mine, *b = text0;
        int line = 1;
        while (*a && *a == *b) {
            if (*a == '\n') line++;
            a++, b++;
        }
        while (a > mine && a[-1] != '\n') a--, b--;
        gt_warn("my resolved config differs from rank 0's at line %d: mine '%.*s', rank 0's '%.*s'", line,
                (int)strcspn(a, "\n"), a, (int)strcspn(b, "\n"), b);
    }
    gt_free(text0);
}

static uint64_t layout_hash(const gt_model *m) {
    uint64_t h = GT_HASH_INIT;
    h = gt_hash_bytes(&m->n_nets, sizeof m->n_nets, h);
    for (int k = 0; k < m->n_nets; k++) {
        const gt_net *net = &m->net[k];
        uint64_t v[3] = {(uint64_t)net->n_layers, (uint64_t)net->n_params, (uint64_t)net->n_state};
        h = gt_hash_bytes(v, sizeof v, h);
        for (int i = 0; i < net->n_layers; i++) {
            const gt_layer *L = &net->layers[i];
            h = gt_hash_bytes(L->kind->name, strlen(L->kind->name), h);
            uint64_t o[2] = {(uint64_t)L->param_offset, (uint64_t)L->n_params};
            h = gt_hash_bytes(o, sizeof o, h);
        }
    }
    return h;
}

gt_status gt_dist_run_attach(gt_dist_run *run, const gt_dist_opts *o, gt_model *m, const char *config_text,
                             int64_t n_train) {
    memset(run, 0, sizeof *run);
    run->o = *o;
    int world = gt_dist_size();
    /* Collective arguments must agree: the resolved config (batch size, steps,
     * seed, [dist] settings, ...), the model's layout (buffer sizes decide the
     * gradient buckets) and the dataset size (steps per epoch). */
    enum { K_CONFIG, K_MODEL, K_DATA, K_N };
    static const char *const what[K_N] = {"the resolved configuration", "the model's layer and buffer layout",
                                          "the training-set size"};
    uint64_t mine[K_N] = {gt_hash_bytes(config_text, strlen(config_text), GT_HASH_INIT), layout_hash(m),
                          (uint64_t)n_train};
    uint64_t *all = gt_alloc(sizeof(uint64_t) * K_N * (size_t)world);
    gt_dist_allgather_u64(mine, K_N, all);
    char ranks[K_N][512], msg[2048] = "";
    int bad = 0;
    for (int k = 0; k < K_N; k++) {
        ranks[k][0] = 0;
        if (!differing_ranks(all, K_N, k, ranks[k], sizeof ranks[k])) continue;
        size_t n = strlen(msg);
        snprintf(msg + n, sizeof msg - n, "%s%s (rank(s) %s differ from rank 0)", bad++ ? "; " : "", what[k], ranks[k]);
    }
    gt_free(all);
    if (bad) {
        if (ranks[K_CONFIG][0]) explain_config(config_text);
        return GT_ERROR_ALL("ranks disagree on %s: all ranks must run the same config with the same command-line "
                            "settings and see the same data; stopping",
                            msg);
    }
    run->reducer = gt_dist_reducer_new(o->overlap, o->bucket_mb, o->compress);
    int has_bn = 0;
    for (int k = 0; k < m->n_nets; k++) {
        gt_dist_reducer_attach(run->reducer, &m->net[k]);
        gt_dist_sync_bn(&m->net[k], o->sync_bn);
        has_bn |= m->net[k].n_state > 0;
    }
    if (world > 1) {
        char red[192];
        if (o->overlap)
            snprintf(red, sizeof red, "in buckets of %g MB overlapped with backward", o->bucket_mb);
        else
            snprintf(red, sizeof red, "in one call after backward");
        if (o->compress)
            snprintf(red + strlen(red), sizeof red - strlen(red), ", as bfloat16 (dist.compress; copies: %.1f MB)",
                     gt_dist_reducer_bytes(run->reducer) / 1e6);
        gt_info("dist: %d ranks; gradients summed and divided by %d %s; batch norm %s; replica check %s%ld steps",
                world, world, red,
                !has_bn ? "(none in this model)"
                : o->sync_bn ? "synchronized over ranks"
                             : "on local batches (rank 0's running statistics are broadcast each step)",
                o->check_every ? "every " : "off", o->check_every ? o->check_every : 0L);
    }
    return GT_OK;
}

void gt_dist_run_step_ctx(gt_dist_run *run, gt_step_ctx *ctx) {
    ctx->ready = gt_dist_reducer_hook(run->reducer);
    ctx->progress = gt_dist_reducer_progress(run->reducer);
    ctx->reduce_grads = gt_dist_reduce_grads;
    ctx->reduce_arg = run->reducer;
}

gt_status gt_dist_run_step_begin(gt_dist_run *run, long step) {
    if (run->o.fail_rank == gt_dist_rank() && step + 1 == run->o.fail_step)
        return GT_ERROR("[debug] fail_rank = %d, fail_step = %ld: failing on purpose at step %ld (a test hook)",
                        run->o.fail_rank, run->o.fail_step, step + 1);
    gt_dist_watch_step(step + 1, run->o.step_timeout);
    run->t_begin = gt_now();
    run->comm_begin = gt_dist_comm_clock;
    return GT_OK;
}

static uint64_t net_hash(const gt_net *net) {
    uint64_t h = gt_hash_bytes(net->params, sizeof(float) * net->n_params, GT_HASH_INIT);
    return gt_hash_bytes(net->state, sizeof(float) * net->n_state, h);
}

/* Every rank hashes each network's parameters and state; all hashes are
 * gathered to all, so every rank knows whether and where the replicas differ. */
static gt_status check_replicas(const gt_model *m, long done) {
    int world = gt_dist_size();
    uint64_t mine[GT_MAX_NETS], *all = gt_alloc(sizeof(uint64_t) * GT_MAX_NETS * (size_t)world);
    for (int k = 0; k < m->n_nets; k++) mine[k] = net_hash(&m->net[k]);
    if (gt_model_has_ema(m)) { /* the EMA generator counts as the generator's */
        mine[0] = gt_hash_bytes(m->ema_params, sizeof(float) * m->net[0].n_params, mine[0]);
        mine[0] = gt_hash_bytes(m->ema_state, sizeof(float) * m->net[0].n_state, mine[0]);
    }
    COMM_TIMED(gt_dist_allgather_u64(mine, m->n_nets, all));
    char msg[2048] = "";
    for (int k = 0; k < m->n_nets; k++) {
        char ranks[512] = "";
        if (!differing_ranks(all, m->n_nets, k, ranks, sizeof ranks)) continue;
        size_t n = strlen(msg);
        snprintf(msg + n, sizeof msg - n, "%snetwork %s: rank(s) %s hold parameters or batch-norm statistics that "
                 "differ from rank 0's", n ? "; " : "", m->net[k].name, ranks);
    }
    gt_free(all);
    if (msg[0]) return GT_ERROR_ALL("replicas diverged after step %ld: %s", done, msg);
    return GT_OK;
}

gt_status gt_dist_run_step_end(gt_dist_run *run, gt_model *m, long step, long steps) {
    int world = gt_dist_size(), rank = gt_dist_rank();
    if (world > 1 && !run->o.sync_bn) {
        for (int k = 0; k < m->n_nets; k++)
            if (m->net[k].n_state)
                COMM_TIMED(gt_dist_bcast_what(m->net[k].state, sizeof(float) * m->net[k].n_state,
                                              "the broadcast of rank 0's batch-norm statistics"));
        /* the EMA generator's state is a copy of the generator's local one */
        if (gt_model_has_ema(m) && m->net[0].n_state)
            COMM_TIMED(gt_dist_bcast(m->ema_state, sizeof(float) * m->net[0].n_state));
    }
    if (run->o.perturb_rank == rank && step + 1 == run->o.perturb_step) {
        /* every parameter one ulp up or down (alternating): rounding-sized noise */
        for (int k = 0; k < m->n_nets; k++)
            for (size_t i = 0; i < m->net[k].n_params; i++)
                m->net[k].params[i] = nextafterf(m->net[k].params[i], (i & 1) ? INFINITY : -INFINITY);
        gt_warn("[debug] perturb_rank = %d, perturb_step = %ld: moved every parameter by one ulp (a test hook)", rank,
                step + 1);
    }
    if (world > 1 && run->o.check_every > 0 && ((step + 1) % run->o.check_every == 0 || step + 1 == steps))
        GT_TRY(check_replicas(m, step + 1));
    run->step_s += gt_now() - run->t_begin;
    run->comm_s += gt_dist_comm_clock - run->comm_begin;
    return GT_OK;
}

double gt_dist_run_comm_frac(gt_dist_run *run) {
    double f = run->step_s > 0 ? run->comm_s / run->step_s : 0.0;
    run->step_s = run->comm_s = 0;
    return f;
}

/* Format: per network, name (32 bytes, NUL-padded), n_params and n_state
 * (uint64 little-endian), params and state (float32); a GAN with g_ema adds
 * a record "ema_generator" of the EMA generator. */
static gt_status dump_params(const gt_model *m, const char *prefix) {
    char path[4200];
    int n = snprintf(path, sizeof path, "%s.rank%d", prefix, gt_dist_rank());
    GT_ENSURE(n > 0 && (size_t)n < sizeof path, "[debug] dump_params: path too long");
    FILE *f = fopen(path, "wb");
    if (!f) return GT_ERROR("[debug] dump_params: cannot open %s for writing: %s", path, strerror(errno));
    int ok = 1;
    for (int k = 0; k < m->n_nets && ok; k++) {
        const gt_net *net = &m->net[k];
        char name[32] = {0};
        snprintf(name, sizeof name, "%s", net->name);
        uint64_t counts[2] = {net->n_params, net->n_state};
        ok = fwrite(name, 1, sizeof name, f) == sizeof name && fwrite(counts, 1, sizeof counts, f) == sizeof counts &&
             fwrite(net->params, sizeof(float), net->n_params, f) == net->n_params &&
             fwrite(net->state, sizeof(float), net->n_state, f) == net->n_state;
    }
    if (ok && gt_model_has_ema(m)) { /* one more record, "ema_<generator>" */
        const gt_net *G = &m->net[0];
        char name[32] = {0};
        snprintf(name, sizeof name, "ema_%.27s", G->name);
        uint64_t counts[2] = {G->n_params, G->n_state};
        ok = fwrite(name, 1, sizeof name, f) == sizeof name && fwrite(counts, 1, sizeof counts, f) == sizeof counts &&
             fwrite(m->ema_params, sizeof(float), G->n_params, f) == G->n_params &&
             fwrite(m->ema_state, sizeof(float), G->n_state, f) == G->n_state;
    }
    int e = errno;
    if (fclose(f) != 0 && ok) ok = 0, e = errno;
    if (!ok) return GT_ERROR("[debug] dump_params: cannot write %s: %s", path, strerror(e));
    return GT_OK;
}

gt_status gt_dist_run_finish(gt_dist_run *run, gt_model *m) {
    gt_status st = run->o.dump_params && run->o.dump_params[0] ? dump_params(m, run->o.dump_params) : GT_OK;
    if (gt_dist_size() > 1) {
        char ahead[128] = "";
        if (m->ahead_count)
            snprintf(ahead, sizeof ahead, "; %" PRId64 " steps computed the next step's D(x) while G's gradients travelled",
                     m->ahead_count);
        gt_info("dist: %ld gradient allreduce calls in all (%s%s)", gt_dist_reducer_buckets(run->reducer),
                run->o.overlap ? "buckets overlapped with backward" : "one call per network and phase", ahead);
    }
    gt_dist_reducer_free(run->reducer);
    run->reducer = NULL;
    return st;
}
