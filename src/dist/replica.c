/* The training loop's side of data parallelism (include/gentrain/dist.h):
 * [dist] settings, the start-up agreement check, per-step replica checks,
 * batch-norm buffers, the communication clock and the [debug] test hooks.
 *
 * Failure policy: every error goes through gt_fatal, whose abort hook calls
 * MPI_Abort, so one failing rank ends the whole job at once. Checks whose
 * outcome every rank knows (agreement at start, replica hashes) let rank 0
 * print the message, meet at a barrier so that it is out, and then abort. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gentrain/core.h"
#include "gentrain/dist.h"
#include "internal.h"

void gt_dist_run_config(gt_dist_run *run, gt_config *cfg) {
    memset(run, 0, sizeof *run);
    run->overlap = gt_config_bool(cfg, "dist", "overlap", 0);
    run->bucket_mb = gt_config_float(cfg, "dist", "bucket_mb", 1.0, 0.0, 1e6);
    run->sync_bn = gt_config_bool(cfg, "dist", "sync_bn", 0);
    run->check_every = gt_config_int(cfg, "dist", "check_every", 100, 0, 1L << 40);
    /* [debug] keys are read only when given, so resolved configs do not list them. */
    run->fail_rank = run->perturb_rank = -1;
    if (gt_config_has(cfg, "debug", "fail_rank"))
        run->fail_rank = (int)gt_config_int(cfg, "debug", "fail_rank", -1, -1, 1 << 30);
    if (gt_config_has(cfg, "debug", "fail_step"))
        run->fail_step = gt_config_int(cfg, "debug", "fail_step", 1, 1, 1L << 40);
    if (gt_config_has(cfg, "debug", "perturb_rank"))
        run->perturb_rank = (int)gt_config_int(cfg, "debug", "perturb_rank", -1, -1, 1 << 30);
    if (gt_config_has(cfg, "debug", "perturb_step"))
        run->perturb_step = gt_config_int(cfg, "debug", "perturb_step", 1, 1, 1L << 40);
    if (gt_config_has(cfg, "debug", "dump_params")) {
        const char *p = gt_config_str(cfg, "debug", "dump_params", "");
        GT_CHECK(strlen(p) < sizeof run->dump_params - 16, "[debug] dump_params: path too long");
        snprintf(run->dump_params, sizeof run->dump_params, "%s", p);
    }
}

static void say_error(const char *fmt, const char *a, const char *b) {
    fflush(stdout);
    if (gt_dist_size() > 1)
        fprintf(stderr, "gentrain[rank %d]: error: ", gt_dist_rank());
    else
        fprintf(stderr, "gentrain: error: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    fflush(stderr);
}

/* Every rank knows the outcome: let the message out, then end all ranks. */
static _Noreturn void stop_all(void) {
    gt_dist_barrier();
    gt_dist_abort(GT_EXIT_ERROR);
}

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

/* The first line where a rank's config text differs from rank 0's. */
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
        char la[256], lb[256];
        snprintf(la, sizeof la, "%.*s", (int)strcspn(a, "\n"), a);
        snprintf(lb, sizeof lb, "%.*s", (int)strcspn(b, "\n"), b);
        char fmt[128];
        snprintf(fmt, sizeof fmt, "my resolved config differs from rank 0's at line %d: mine '%%s', rank 0's '%%s'",
                 line);
        say_error(fmt, la, lb);
    }
    gt_free(text0);
}

void gt_dist_run_attach(gt_dist_run *run, gt_model *m, gt_config *cfg, int64_t n_train) {
    int world = gt_dist_size(), rank = gt_dist_rank();
    /* Collective arguments must agree: the resolved config (batch size, steps,
     * seed, [dist] settings, ...), the model's layout (buffer sizes decide the
     * gradient buckets) and the dataset size (steps per epoch). */
    enum { K_CONFIG, K_MODEL, K_DATA, K_N };
    static const char *const what[K_N] = {"the resolved configuration", "the model's layer and buffer layout",
                                          "the training-set size"};
    char *text = gt_config_text(cfg);
    uint64_t mine[K_N];
    mine[K_CONFIG] = gt_hash_bytes(text, strlen(text), GT_HASH_INIT);
    uint64_t h = GT_HASH_INIT;
    h = gt_hash_bytes(&m->n_nets, sizeof m->n_nets, h);
    for (int k = 0; k < m->n_nets; k++) {
        const gt_net *net = &m->net[k];
        uint64_t v[3] = {(uint64_t)net->n_layers, (uint64_t)net->n_params, (uint64_t)net->n_state};
        h = gt_hash_bytes(v, sizeof v, h);
        for (int i = 0; i < net->n_layers; i++) {
            const gt_layer *L = &net->layers[i];
            uint64_t o[4] = {(uint64_t)L->spec.kind, (uint64_t)L->weight, (uint64_t)L->n_weight, (uint64_t)L->n_bias};
            h = gt_hash_bytes(o, sizeof o, h);
        }
    }
    mine[K_MODEL] = h;
    mine[K_DATA] = (uint64_t)n_train;
    uint64_t *all = gt_alloc(sizeof(uint64_t) * K_N * (size_t)world);
    gt_dist_allgather_u64(mine, K_N, all);
    int bad = 0;
    char ranks[K_N][512];
    for (int k = 0; k < K_N; k++) {
        ranks[k][0] = 0;
        bad += differing_ranks(all, K_N, k, ranks[k], sizeof ranks[k]) > 0;
    }
    if (bad) {
        for (int k = 0; k < K_N; k++)
            if (ranks[k][0] && rank == 0) say_error("ranks disagree on %s: rank(s) %s differ from rank 0", what[k], ranks[k]);
        if (ranks[K_CONFIG][0]) explain_config(text);
        if (rank == 0)
            say_error("%s%s", "all ranks must run the same config with the same command-line overrides "
                      "and see the same data; stopping",
                      "");
        stop_all();
    }
    gt_free(all);
    gt_free(text);

    run->reducer = gt_dist_reducer_new(run->overlap, run->bucket_mb);
    for (int k = 0; k < m->n_nets; k++) {
        gt_dist_reducer_attach(run->reducer, &m->net[k]);
        gt_dist_sync_bn(&m->net[k], run->sync_bn);
    }
    int has_bn = 0;
    for (int k = 0; k < m->n_nets; k++) has_bn |= m->net[k].n_state > 0;
    if (world > 1) {
        char red[96];
        if (run->overlap)
            snprintf(red, sizeof red, "in buckets of %g MB overlapped with backward", run->bucket_mb);
        else
            snprintf(red, sizeof red, "in one call after backward");
        gt_info("dist: %d ranks; gradients summed and divided by %d %s; batch norm %s; replica check %s%ld steps",
                world, world, red,
                !has_bn ? "(none in this model)"
                : run->sync_bn ? "synchronized over ranks"
                               : "on local batches (rank 0's running statistics are broadcast each step)",
                run->check_every ? "every " : "off", run->check_every ? run->check_every : 0L);
    }
}

void gt_dist_run_step_begin(gt_dist_run *run, long step) {
    if (run->fail_rank == gt_dist_rank() && step + 1 == run->fail_step)
        gt_fatal("[debug] fail_rank = %d, fail_step = %ld: failing on purpose at step %ld (a test hook)",
                 run->fail_rank, run->fail_step, step + 1);
    run->t_begin = gt_now();
    run->comm_begin = gt_dist_comm_clock;
}

static uint64_t net_hash(const gt_net *net) {
    uint64_t h = gt_hash_bytes(net->params, sizeof(float) * net->n_params, GT_HASH_INIT);
    return gt_hash_bytes(net->state, sizeof(float) * net->n_state, h);
}

/* Every rank hashes each network's parameters and state; all hashes are
 * gathered to all, so every rank knows whether and where the replicas differ. */
static void check_replicas(const gt_model *m, long done) {
    int world = gt_dist_size();
    uint64_t mine[GT_MAX_NETS], *all = gt_alloc(sizeof(uint64_t) * GT_MAX_NETS * (size_t)world);
    for (int k = 0; k < m->n_nets; k++) mine[k] = net_hash(&m->net[k]);
    COMM_TIMED(gt_dist_allgather_u64(mine, m->n_nets, all));
    int bad = 0;
    for (int k = 0; k < m->n_nets; k++) {
        char ranks[512] = "";
        if (!differing_ranks(all, m->n_nets, k, ranks, sizeof ranks)) continue;
        bad = 1;
        if (gt_dist_rank() == 0) {
            char head[128];
            snprintf(head, sizeof head, "replicas diverged after step %ld: network %s: rank(s)", done, m->net[k].name);
            say_error("%s %s hold parameters or batch-norm statistics that differ from rank 0's", head, ranks);
        }
    }
    gt_free(all);
    if (bad) stop_all();
}

void gt_dist_run_step_end(gt_dist_run *run, gt_model *m, long step, long steps) {
    int world = gt_dist_size(), rank = gt_dist_rank();
    if (world > 1 && !run->sync_bn)
        for (int k = 0; k < m->n_nets; k++)
            if (m->net[k].n_state)
                COMM_TIMED(gt_dist_bcast(m->net[k].state, sizeof(float) * m->net[k].n_state));
    if (run->perturb_rank == rank && step + 1 == run->perturb_step) {
        /* every parameter one ulp up or down (alternating): rounding-sized noise */
        for (int k = 0; k < m->n_nets; k++)
            for (size_t i = 0; i < m->net[k].n_params; i++)
                m->net[k].params[i] = nextafterf(m->net[k].params[i], (i & 1) ? INFINITY : -INFINITY);
        gt_warn("[debug] perturb_rank = %d, perturb_step = %ld: moved every parameter by one ulp (a test hook)", rank,
                step + 1);
    }
    if (world > 1 && run->check_every > 0 && ((step + 1) % run->check_every == 0 || step + 1 == steps))
        check_replicas(m, step + 1);
    run->step_s += gt_now() - run->t_begin;
    run->comm_s += gt_dist_comm_clock - run->comm_begin;
}

double gt_dist_run_comm_frac(gt_dist_run *run) {
    double f = run->step_s > 0 ? run->comm_s / run->step_s : 0.0;
    run->step_s = run->comm_s = 0;
    return f;
}

static void write_or_die(FILE *f, const void *p, size_t bytes, const char *path) {
    if (bytes && fwrite(p, 1, bytes, f) != bytes) gt_fatal("cannot write %s", path);
}

void gt_dist_run_finish(gt_dist_run *run, gt_model *m) {
    if (run->dump_params[0]) {
        /* Format: per network, name (32 bytes, NUL-padded), n_params and n_state
         * (uint64 little-endian), params and state (float32). */
        char path[1100];
        snprintf(path, sizeof path, "%s.rank%d", run->dump_params, gt_dist_rank());
        FILE *f = fopen(path, "wb");
        if (!f) gt_fatal("[debug] dump_params: cannot open %s for writing", path);
        for (int k = 0; k < m->n_nets; k++) {
            const gt_net *net = &m->net[k];
            char name[32] = {0};
            snprintf(name, sizeof name, "%s", net->name);
            uint64_t n[2] = {net->n_params, net->n_state};
            write_or_die(f, name, sizeof name, path);
            write_or_die(f, n, sizeof n, path);
            write_or_die(f, net->params, sizeof(float) * net->n_params, path);
            write_or_die(f, net->state, sizeof(float) * net->n_state, path);
        }
        if (fclose(f) != 0) gt_fatal("cannot write %s", path);
    }
    if (gt_dist_size() > 1)
        gt_info("dist: %ld gradient allreduce calls in all (%s)", gt_dist_reducer_buckets(run->reducer),
                run->overlap ? "buckets overlapped with backward" : "one call per network and phase");
    gt_dist_reducer_free(run->reducer);
    run->reducer = NULL;
}
