/* gentrain train: the training loop. Every rank runs the same loop on its
 * shard; gradients are reduced through dist/; only rank 0 prints and writes.
 *
 * One step: the sampler gives this rank's indices, the batch is gathered,
 * the model's step runs (forward, backward, gradient allreduce through the
 * step context's hooks, optimizer), then dist's step end (batch-norm buffers,
 * replica checks), the log line, samples and checkpoints when due, and the
 * ranks agree whether a stop signal arrived. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gentrain/app.h"

static const char train_usage_head[] =
    "usage: gentrain train CONFIG [section.key=value ...]\n"
    "       mpirun -np N gentrain train CONFIG [section.key=value ...]\n"
    "\n"
    "Trains the model that the INI file CONFIG describes. Any key can be set on\n"
    "the command line as section.key=value, e.g. train.steps=100 run.dir=runs/a.\n"
    "Unknown keys and bad values are errors naming the file, line and key.\n"
    "\n"
    "Keys [defaults]:\n";

static const char train_usage_tail[] =
    "\n"
    "Data parallelism: every rank trains a replica on its own strided shard; the global\n"
    "batch is ranks x batch_size and gradients are averaged over ranks. The learning rate\n"
    "is used as given: it is NOT scaled with the number of ranks. An epoch has\n"
    "floor(n / global batch) steps; the rest of each epoch's shuffle is skipped.\n"
    "\n"
    "Writes into run.dir: config.ini (the resolved configuration), metrics.jsonl (one\n"
    "JSON object per logged step; the test-set line has \"split\":\"test\") and the same\n"
    "in metrics.h5 (/train/<column>, /test/<column>), checkpoints/step-XXXXXXXX.h5,\n"
    "samples.h5 (/noise, /step-XXXXXXXX; VAE also /test_batch, /recon/step-XXXXXXXX)\n"
    "and samples.png (a grid of the latest samples). See the README for the layouts.\n"
    "\n"
    "Resume: the same command on a run.dir with checkpoints continues from the newest\n"
    "valid one, bit-exactly at the same number of ranks; metrics lines after its step\n"
    "are dropped and rewritten. With another number of ranks the per-rank batch_size\n"
    "stays as configured (the global batch changes; a warning says so). Architecture\n"
    "keys ([model], the network sections, optim.kind) must match the checkpoint's.\n"
    "\n"
    "SIGTERM, SIGUSR1, SIGINT or SIGHUP on any rank: all ranks stop at the next step\n"
    "boundary, rank 0 writes a checkpoint, and the exit code is 75 (requeue me);\n"
    "running the same command again resumes.\n"
    "\n"
    "Divergence: a loss or gradient norm that is not finite on any rank, a non-finite\n"
    "parameter, or a loss beyond train.loss_bound stops the run with a message naming\n"
    "the step, network and value (train.on_divergence = stop), or rolls it back to the\n"
    "newest checkpoint with the learning rates times train.rollback_lr_factor\n"
    "(on_divergence = rollback; at most train.max_rollbacks times). A checkpoint with\n"
    "non-finite parameters is never written.\n";

static void format_eta(double seconds, char *out, size_t cap) {
    if (!(seconds >= 0) || seconds > 1e8) seconds = 0;
    long s = (long)(seconds + 0.5);
    snprintf(out, cap, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
}

/* Test-set losses: rank r evaluates batches r, r+world, ...; the means are
 * weighted by batch size and reduced over ranks. */
static gt_status evaluate(gt_model *m, gt_source *test, long n_eval, int batch, uint64_t seed, uint64_t step,
                          gt_stats *out) {
    int rank = gt_dist_rank(), world = gt_dist_size();
    int64_t n = n_eval > 0 && n_eval < test->n ? n_eval : test->n;
    gt_pixel_scale scale = gt_model_pixel_scale(m);
    float *x = gt_alloc_floats((size_t)batch * gt_shape_size(test->shape));
    int *labels = gt_alloc((size_t)batch * sizeof(int));
    int64_t *idx = gt_alloc((size_t)batch * sizeof(int64_t));
    double sums[GT_MAX_STATS + 1] = {0};
    gt_stats st = {0};
    gt_status status = GT_OK;
    for (int64_t start = (int64_t)rank * batch; start < n && !status; start += (int64_t)world * batch) {
        int B = (int)(n - start < batch ? n - start : batch);
        for (int i = 0; i < B; i++) idx[i] = start + i;
        if ((status = gt_source_read(test, idx, B, scale, x, test->has_labels ? labels : NULL))) break;
        gt_step_ctx ctx = {.seed = seed, .step = step, .example0 = (uint64_t)start, .stride = 1};
        gt_model_eval_batch(m, x, test->has_labels ? labels : NULL, B, &ctx, &st);
        for (int k = 0; k < st.n; k++) sums[k] += st.value[k] * B;
        sums[GT_MAX_STATS] += B;
    }
    if (!status && st.n == 0) { /* a small test set left this rank no batch: one example gives the
                                   * names of the statistics, counted with weight 0 */
        idx[0] = 0;
        status = gt_source_read(test, idx, 1, scale, x, test->has_labels ? labels : NULL);
        gt_step_ctx ctx = {.seed = seed, .step = step, .stride = 1};
        if (!status) gt_model_eval_batch(m, x, test->has_labels ? labels : NULL, 1, &ctx, &st);
        for (int k = 0; k < st.n; k++) st.value[k] = 0;
    }
    gt_free(x);
    gt_free(labels);
    gt_free(idx);
    if (gt_dist_any(status != GT_OK))
        return status ? gt_error_trace(__FILE__, __LINE__, status) : GT_ERROR_ALL("another rank failed to read the test set");
    gt_dist_allreduce_mean_f64(sums, GT_MAX_STATS + 1);
    *out = st;
    for (int k = 0; k < st.n; k++) out->value[k] = sums[k] / sums[GT_MAX_STATS];
    return GT_OK;
}

static void print_stats(char *line, size_t cap, const gt_stats *st) {
    size_t used = strlen(line);
    for (int k = 0; k < st->n && used < cap; k++) {
        if (strstr(st->name[k], "grad_norm")) continue; /* in metrics.jsonl, not on the console */
        used += (size_t)snprintf(line + used, cap - used, "  %s %.4f", st->name[k], st->value[k]);
    }
}

/* What a run holds besides the options: data, model, sampler, outputs. */
typedef struct {
    gt_options o;
    gt_config *cfg;       /* the run's config (a rollback checks checkpoints against it) */
    gt_source *train, *test;
    gt_dataset eval_train, eval_test; /* eval.every > 0: the evaluator's in-memory copies of the data */
    gt_model *m;
    gt_sampler sampler;
    gt_dist_run dist;
    gt_metrics *metrics;  /* rank 0 */
    gt_samples *samples;  /* rank 0, models that generate, samples.every > 0 */
    gt_evaluator *ev;     /* eval.every > 0 */
    unsigned eval_metrics;
    gt_loader *loader;    /* during train_loop: paused before this thread writes HDF5 */
    double data_wait, loop_seconds; /* train_loop's time waiting for batches, and in all */
    int64_t last_ckpt;
    int64_t rollbacks;    /* divergence rollbacks so far (from the checkpoint on resume) */
    double lr_scale;      /* every learning rate is the configured one times this */
    long nan_hits;        /* [debug] nan_*: times the NaN was injected */
    long nan_step_hit;    /* [debug] nan_*: the step whose batch has it now (-1: none; the batch may be peeked) */
} run_t;

/* [debug] nan_rank, nan_step: a NaN into this rank's batch x of step `step`
 * (0-based), once per reading of that batch: the loop sees the next step's
 * batch already when it lends it to the step (gt_loader_peek). */
static void inject_nan(run_t *r, long step, float *x) {
    if (gt_dist_rank() != r->o.nan_rank || step + 1 != r->o.nan_step || r->nan_hits >= r->o.nan_times ||
        r->nan_step_hit == step)
        return;
    x[0] = NAN; /* the loader's buffer of a batch this thread holds: the reader thread leaves it alone */
    r->nan_hits++;
    r->nan_step_hit = step;
    gt_warn("[debug] nan_rank = %d, nan_step = %ld: a NaN in this rank's batch (a test hook, %ld of %ld)",
            r->o.nan_rank, step + 1, r->nan_hits, r->o.nan_times);
}

/* The model's memory account (gt_model_memory) as root attributes of
 * metrics.h5, for tools (tools/bench): bytes per rank, and the batch. */
static gt_status write_memory(run_t *r) {
    gt_memory mem;
    gt_model_memory(r->m, &mem);
    const char *names[] = {"memory_batch",          "memory_parameters_bytes",  "memory_gradients_bytes",
                           "memory_optimizer_bytes", "memory_ema_bytes",         "memory_activations_bytes",
                           "memory_workspaces_bytes", "memory_total_bytes"};
    int64_t values[] = {mem.batch,           (int64_t)mem.params,      (int64_t)mem.grads,
                        (int64_t)mem.optim,  (int64_t)mem.ema,         (int64_t)mem.activations,
                        (int64_t)mem.workspaces, (int64_t)mem.total};
    return gt_metrics_set_attrs(r->metrics, (int)(sizeof names / sizeof names[0]), names, values);
}

/* The log line of the memory account: what this rank's model allocated. */
static void print_memory(const gt_model *m) {
    gt_memory mem;
    gt_model_memory(m, &mem);
    char p[32], g[32], o[32], e[32] = "", a[32], w[32], t[32], ema[64] = "";
    gt_human_bytes((double)mem.params, p, sizeof p);
    gt_human_bytes((double)mem.grads, g, sizeof g);
    gt_human_bytes((double)mem.optim, o, sizeof o);
    gt_human_bytes((double)mem.activations, a, sizeof a);
    gt_human_bytes((double)mem.workspaces, w, sizeof w);
    gt_human_bytes((double)mem.total, t, sizeof t);
    if (mem.ema) {
        gt_human_bytes((double)mem.ema, e, sizeof e);
        snprintf(ema, sizeof ema, ", EMA generator %s", e);
    }
    gt_info("memory per rank: parameters %s, gradients %s, optimizer state %s%s, activations (batch %d) %s, "
            "workspaces %s; total %s",
            p, g, o, ema, mem.batch, a, w, t);
}

/* Rank 0's outputs; every rank learns whether they opened. */
static gt_status open_outputs(run_t *r, int64_t resumed_step) {
    gt_status st = GT_OK;
    if (gt_dist_rank() == 0) {
        st = gt_metrics_open(r->o.dir, resumed_step, &r->metrics);
        if (!st) st = write_memory(r);
        if (!st && r->o.samples_every > 0 && gt_model_generates(r->m))
            st = gt_samples_open(r->o.dir, r->m, r->o.samples_n, r->o.seed, r->test, resumed_step, &r->samples);
    }
    if (gt_dist_any(st != GT_OK)) return st ? gt_error_trace(__FILE__, __LINE__, st) : GT_ERROR_ALL("rank 0 failed");
    return GT_OK;
}

/* Every optimizer's rate: the configured one times the rollbacks' factor. */
static void apply_lr(run_t *r) {
    for (int k = 0; k < r->m->n_nets; k++) r->m->opt[k].lr = (float)(r->o.model.net[k].optim.lr * r->lr_scale);
}

/* The sampler at a checkpoint's place; with another world size or batch the
 * same place in the epoch's shuffle (rounded down), with a warning. */
static void seek_sampler(run_t *r, const gt_resume_point *rp) {
    int world = gt_dist_size();
    int64_t epoch = rp->epoch, cursor = rp->cursor;
    int64_t old_global = rp->world * rp->batch, new_global = (int64_t)world * r->o.batch;
    if (rp->world != world || rp->batch != r->o.batch || rp->n_train != r->train->n) {
        if (old_global != new_global || rp->n_train != r->train->n)
            cursor = cursor * old_global / new_global; /* the same place in the epoch's shuffle, rounded down */
        if (cursor > r->sampler.steps_per_epoch) cursor = r->sampler.steps_per_epoch;
        gt_warn("resuming a checkpoint written by %" PRId64 " rank%s x batch %" PRId64 " (global %" PRId64
                ") with %d rank%s x batch %d (global %" PRId64 "): the per-rank batch_size is kept as configured, "
                "so the global batch %s; the sampler continues at step %" PRId64 " of epoch %" PRId64
                ". The run is no longer bitwise reproducible",
                rp->world, rp->world > 1 ? "s" : "", rp->batch, old_global, world, world > 1 ? "s" : "", r->o.batch,
                new_global, old_global == new_global ? "is unchanged" : "changes", cursor, epoch);
    }
    gt_sampler_seek(&r->sampler, epoch, cursor);
}

/* ---- divergence ------------------------------------------------------------
 * After every step each rank looks at its own statistics (losses, D(x),
 * gradient norms: the first one that is not finite, or a *loss whose absolute
 * value exceeds train.loss_bound) and at the model's parameters and state
 * (replicated, so the same on every rank); one allgather of a few words per
 * rank, which also carries the stop-signal flag, lets every rank know the
 * first bad value (the earliest statistic of the step, on the lowest rank)
 * and so take the same decision. */

enum { BAD_NONE, BAD_NON_FINITE, BAD_BOUND, BAD_PARAM };
enum { H_SIG, H_KIND, H_STAT, H_VALUE, H_WORDS };

static int is_loss(const char *name) {
    size_t n = strlen(name);
    return n >= 4 && !strcmp(name + n - 4, "loss");
}

/* One rank's health words; the first bad parameter (rank 0's words say where) in param. */
static void health_words(const run_t *r, const gt_stats *st, int sig, uint64_t *w, char *param, size_t cap) {
    w[H_SIG] = sig != 0;
    w[H_KIND] = BAD_NONE;
    for (int k = 0; k < st->n && w[H_KIND] == BAD_NONE; k++) {
        double v = st->value[k];
        int kind = !isfinite(v) ? BAD_NON_FINITE
                   : r->o.loss_bound > 0 && is_loss(st->name[k]) && fabs(v) > r->o.loss_bound ? BAD_BOUND
                                                                                                : BAD_NONE;
        if (kind == BAD_NONE) continue;
        w[H_KIND] = (uint64_t)kind;
        w[H_STAT] = (uint64_t)k;
        memcpy(&w[H_VALUE], &v, sizeof v);
    }
    if (w[H_KIND] == BAD_NONE && !gt_model_finite(r->m, param, cap)) w[H_KIND] = BAD_PARAM;
}

/* What went wrong, from the gathered words (world x H_WORDS); "" if nothing. */
static void describe(const run_t *r, const gt_stats *st, const uint64_t *all, const char *param, char *out, size_t cap) {
    int world = gt_dist_size(), best = -1, nbad = 0;
    long best_order = 0;
    for (int q = 0; q < world; q++) {
        const uint64_t *w = all + (size_t)q * H_WORDS;
        if (w[H_KIND] == BAD_NONE) continue;
        nbad++;
        long order = w[H_KIND] == BAD_PARAM ? GT_MAX_STATS : (long)w[H_STAT];
        if (best < 0 || order < best_order) best = q, best_order = order;
    }
    out[0] = 0;
    if (best < 0) return;
    const uint64_t *w = all + (size_t)best * H_WORDS;
    char ranks[128] = "";
    if (world > 1) snprintf(ranks, sizeof ranks, " on rank %d (%d of %d ranks saw a bad value)", best, nbad, world);
    if (w[H_KIND] == BAD_PARAM) {
        if (param[0]) snprintf(out, cap, "the parameter %s is not finite", param);
        else snprintf(out, cap, "a parameter is not finite%s", ranks);
        return;
    }
    double v;
    memcpy(&v, &w[H_VALUE], sizeof v);
    int k = (int)w[H_STAT], net = k < st->n ? st->net[k] : -1;
    const char *name = k < st->n ? st->name[k] : "?";
    char where[64];
    snprintf(where, sizeof where, "%s", net >= 0 && net < r->m->n_nets ? r->m->net[net].name : "the model");
    if (w[H_KIND] == BAD_NON_FINITE)
        snprintf(out, cap, "%s (%s) is %g%s", name, where, v, ranks);
    else
        snprintf(out, cap, "%s (%s) is %.6g, beyond [train] loss_bound = %g%s", name, where, v, r->o.loss_bound, ranks);
}

/* Divergence at step `done`: stop (an error), or roll back to the newest
 * checkpoint with lower learning rates; *step is set so that the loop goes
 * on after the checkpoint's step. */
static gt_status handle_divergence(run_t *r, long done, long steps, const char *what, long *step) {
    if (!r->o.rollback)
        return GT_ERROR_ALL("training diverged at step %ld: %s ([train] on_divergence = stop; lower the learning rates, "
                            "or set on_divergence = rollback)",
                            done, what);
    if (r->rollbacks >= r->o.max_rollbacks)
        return GT_ERROR_ALL("training diverged at step %ld: %s, after %" PRId64 " rollback%s ([train] max_rollbacks = "
                            "%ld): giving up; the newest checkpoint is the last good state",
                            done, what, r->rollbacks, r->rollbacks == 1 ? "" : "s", r->o.max_rollbacks);
    if (gt_dist_rank() == 0) gt_warn("training diverged at step %ld: %s; rolling back", done, what);
    /* rank 0 reads the checkpoint and rewrites metrics and samples: the reader thread waits (train_loop
     * resumes it), and then follows the sampler from the checkpoint's place */
    if (gt_dist_rank() == 0) gt_loader_pause(r->loader);
    gt_resume_point rp;
    GT_TRY(gt_rollback(&r->o, r->cfg, r->m, r->train, &rp));
    r->m->ahead_step = -1; /* computed with the abandoned parameters */
    r->nan_step_hit = -1;  /* the batches are read again */
    r->rollbacks = (rp.rollbacks > r->rollbacks ? rp.rollbacks : r->rollbacks) + 1;
    r->lr_scale *= r->o.rollback_lr_factor;
    apply_lr(r);
    seek_sampler(r, &rp);
    gt_loader_reseek(r->loader, &r->sampler, steps > rp.step ? steps - rp.step : 0);
    r->last_ckpt = rp.step;
    *step = (long)rp.step - 1; /* the loop's step++ makes it rp.step */
    char lrs[256] = "";
    for (int k = 0, n = 0; k < r->m->n_nets; k++)
        n += snprintf(lrs + n, sizeof lrs - (size_t)n, "%s%s %g", k ? ", " : "", r->m->net[k].name,
                      (double)r->m->opt[k].lr);
    gt_info("rollback %" PRId64 " of at most %ld: back to step %" PRId64 ", learning rates x %g (now x %g of the "
            "configured: %s)",
            r->rollbacks, r->o.max_rollbacks, rp.step, r->o.rollback_lr_factor, r->lr_scale, lrs);
    /* rank 0: the files forget the steps after the checkpoint; metrics.jsonl says why */
    gt_status st = GT_OK;
    if (gt_dist_rank() == 0) {
        char fields[1024], esc[512];
        size_t e = 0;
        for (const char *p = what; *p && e + 2 < sizeof esc; p++) {
            if (*p == '"' || *p == '\\') esc[e++] = '\\';
            esc[e++] = *p;
        }
        esc[e] = 0;
        snprintf(fields, sizeof fields,
                 "\"diverged_step\": %ld, \"reason\": \"%s\", \"rollbacks\": %" PRId64 ", \"lr_factor\": %g, "
                 "\"lr_scale\": %.9g",
                 done, esc, r->rollbacks, r->o.rollback_lr_factor, r->lr_scale);
        if (r->metrics) st = gt_metrics_rewind(r->metrics, rp.step);
        if (!st && r->metrics) st = gt_metrics_event(r->metrics, rp.step, "rollback", fields);
        if (!st && r->samples) {
            gt_samples_close(r->samples);
            r->samples = NULL;
            st = gt_samples_open(r->o.dir, r->m, r->o.samples_n, r->o.seed, r->test, rp.step, &r->samples);
        }
    }
    if (gt_dist_any(st != GT_OK)) return st ? gt_error_trace(__FILE__, __LINE__, st) : GT_ERROR_ALL("rank 0 failed");
    return GT_OK;
}

/* The evaluation metrics of [eval] after step `done` (every rank): a line
 * on the console, a row in metrics.jsonl and metrics.h5 (rank 0; *failed = 1
 * if that write fails). */
static gt_status eval_step(run_t *r, int64_t done, int *failed) {
    gt_eval_result res;
    double t0 = gt_now();
    GT_TRY(gt_evaluate_model(r->ev, r->m, r->o.eval_samples, r->eval_metrics, r->o.eval_seed, &r->o, &res));
    char line[2048];
    size_t used = (size_t)snprintf(line, sizeof line, "eval at step %" PRId64 " (%ld samples):", done, res.n);
    if (res.live && used < sizeof line) used += (size_t)snprintf(line + used, sizeof line - used, " EMA generator:");
    for (int k = 0; k < res.nv && used < sizeof line; k++)
        used += (size_t)snprintf(line + used, sizeof line - used, "  %s %.4g", res.name[k], res.value[k]);
    if (res.live && used < sizeof line) used += (size_t)snprintf(line + used, sizeof line - used, "  | live:");
    for (int k = 0; res.live && k < res.live->nv && used < sizeof line; k++)
        used += (size_t)snprintf(line + used, sizeof line - used, "  %s %.4g", res.live->name[k], res.live->value[k]);
    gt_info("%s  | classifier %s, %.1f s", line, gt_evaluator_classifier_hash(r->ev), gt_now() - t0);
    if (r->metrics && gt_metrics_write_eval(r->metrics, done, r->sampler.epoch, r->ev, &res) != GT_OK) *failed = 1;
    gt_eval_result_free(&res);
    return GT_OK;
}

/* After step `done` of `steps` (healthy): evaluation, samples and checkpoints when due
 * (rank 0), then, if anything was written, all ranks learn whether rank 0
 * failed; a stop signal seen now or at the health check (sig) makes every
 * rank stop with a checkpoint (unless one was just written): *stop = 1. */
static gt_status step_end(run_t *r, int64_t done, long steps, int sig, int *stop) {
    int last = done >= steps, failed = 0;
    int due_samples = r->o.samples_every > 0 && gt_model_generates(r->m) && (done % r->o.samples_every == 0 || last);
    int due_ckpt = r->o.ckpt_every > 0 && (done % r->o.ckpt_every == 0 || last);
    int due_eval = r->ev && (done % r->o.eval_every == 0 || last);
    /* every rank: the others wait for rank 0's checkpoint below, and an evaluation takes many steps' time */
    if (due_ckpt || due_eval) gt_dist_watch_io();
    /* the loader's reader thread waits while this thread is in HDF5: every rank during an evaluation (its
     * caches), rank 0 for samples and checkpoints; train_loop resumes it after the step */
    if (due_eval) gt_loader_pause(r->loader);
    if (due_eval) GT_TRY(eval_step(r, done, &failed));
    if (!failed && due_samples && r->samples) {
        gt_loader_pause(r->loader);
        failed = gt_samples_write(r->samples, r->m, done) != GT_OK;
    }
    if (!failed && due_ckpt) {
        if (gt_dist_rank() == 0) gt_loader_pause(r->loader);
        failed = gt_checkpoint_write(&r->o, r->m, &r->sampler, r->train, done, r->rollbacks, r->lr_scale) != GT_OK;
        r->last_ckpt = done;
    }
    int flags = sig ? 1 : 0;
    if (due_samples || due_ckpt || due_eval) {
        /* one collective: whether rank 0 failed (2), and whether a signal arrived anywhere since (1) */
        flags = gt_dist_or((failed ? 2 : 0) | (sig || gt_signal_received() ? 1 : 0));
        if (flags & 2) return failed ? gt_error_trace(__FILE__, __LINE__, GT_ERR) : GT_ERROR_ALL("rank 0 failed");
    }
    *stop = (flags & 1) && !last;
    if (!*stop) return GT_OK;
    int caught = gt_signal_received();
    if (gt_dist_rank() == 0) gt_loader_pause(r->loader);
    if (r->last_ckpt != done) {
        gt_dist_watch_io();
        GT_TRY(gt_checkpoint_write(&r->o, r->m, &r->sampler, r->train, done, r->rollbacks, r->lr_scale));
    }
    gt_dist_barrier(); /* the checkpoint is on disk before anyone says so */
    if (gt_dist_rank() == 0) gt_run_mark_stopped(r->o.dir, done, gt_signal_name(caught));
    gt_info("stopping at step %" PRId64 " on %s: checkpoint written; exit code %d asks to be requeued (run the same "
            "command again to resume)",
            done, gt_signal_name(caught), GT_STOPPED);
    return GT_OK;
}

/* The batches come from the loader, whose reader thread reads ahead while a
 * step computes; it is paused before this thread writes HDF5 files (metrics,
 * samples, checkpoints: rank 0, when due) and resumed at the end of the step,
 * so that only one thread is in HDF5 at a time. */
static gt_status train_loop(run_t *r, long start, long steps, int *stopped) {
    int rank = gt_dist_rank(), world = gt_dist_size(), batch = r->o.batch;
    gt_pixel_scale scale = gt_model_pixel_scale(r->m);
    int64_t *idx = gt_alloc((size_t)batch * sizeof(int64_t));
    uint64_t *all = gt_alloc(sizeof(uint64_t) * H_WORDS * (size_t)world);
    gt_loader *loader;
    gt_loader_new(r->train, &r->sampler, steps > start ? steps - start : 0, r->o.data.readahead, scale, 1, &loader);
    r->loader = loader;
    gt_stats st = {0}, acc = {0};
    int acc_steps = 0;
    double t_start = gt_now(), t_log = t_start;
    long done_steps = 0;
    gt_status status = GT_OK;
    for (long step = start; step < steps && !status && !*stopped; step++) {
        int64_t epoch_of_step = r->sampler.epoch + (r->sampler.cursor == r->sampler.steps_per_epoch);
        gt_sampler_next(&r->sampler, idx);
        float *x;
        int *labels;
        if ((status = gt_loader_next(loader, idx, &x, &labels))) break;
        inject_nan(r, step, x);
        gt_step_ctx ctx = {.seed = r->o.seed, .step = (uint64_t)step, .example0 = (uint64_t)rank, .stride = (uint64_t)world};
        gt_dist_run_step_ctx(&r->dist, &ctx);
        /* the next batch, for a step that computes part of the next one while its reduction travels */
        if (ctx.progress.fn && step + 1 < steps && (ctx.next_x = gt_loader_peek(loader)))
            inject_nan(r, step + 1, (float *)ctx.next_x);
        if ((status = gt_dist_run_step_begin(&r->dist, step))) break;
        gt_model_train_step(r->m, x, labels, batch, &ctx, &st);
        if ((status = gt_dist_run_step_end(&r->dist, r->m, step, steps))) break;
        done_steps++;

        /* the step's health, and stop signals, from every rank: one collective */
        uint64_t mine[H_WORDS];
        char param[256] = "", what[1024];
        health_words(r, &st, gt_signal_received(), mine, param, sizeof param);
        gt_dist_allgather_u64(mine, H_WORDS, all);
        describe(r, &st, all, param, what, sizeof what);
        int sig = 0;
        for (int q = 0; q < world; q++) sig |= all[(size_t)q * H_WORDS + H_SIG] != 0;
        if (what[0]) {
            if ((status = handle_divergence(r, step + 1, steps, what, &step))) break;
            gt_loader_resume(loader);
            memset(&acc, 0, sizeof acc);
            acc_steps = 0;
            t_log = gt_now();
            continue;
        }

        for (int k = 0; k < st.n; k++) {
            acc.name[k] = st.name[k];
            acc.value[k] += st.value[k];
        }
        acc.n = st.n;
        acc_steps++;
        if (r->o.log_every > 0 && ((step + 1) % r->o.log_every == 0 || step + 1 == steps)) {
            for (int k = 0; k < acc.n; k++) acc.value[k] /= acc_steps;
            if (world > 1) gt_stats_add(&acc, "comm_wait_frac", gt_dist_run_comm_frac(&r->dist));
            gt_dist_allreduce_mean_f64(acc.value, acc.n);
            double now = gt_now();
            double ips = (double)acc_steps * batch * world / (now - t_log);
            char eta[32], line[1024];
            format_eta((now - t_start) / done_steps * (steps - step - 1), eta, sizeof eta);
            snprintf(line, sizeof line, "step %6ld/%ld  epoch %" PRId64, step + 1, steps, epoch_of_step);
            print_stats(line, sizeof line, &acc);
            gt_info("%s  | %.1f img/s  ETA %s", line, ips, eta);
            if (r->metrics) gt_loader_pause(loader);
            if (r->metrics && (status = gt_metrics_write(r->metrics, step + 1, epoch_of_step, NULL, &acc, ips, now - t_start)))
                break;
            memset(&acc, 0, sizeof acc);
            acc_steps = 0;
            t_log = gt_now();
        }
        status = step_end(r, step + 1, steps, sig, stopped);
        gt_loader_resume(loader);
    }
    gt_dist_watch_off();
    r->data_wait = gt_loader_wait_seconds(loader);
    r->loop_seconds = gt_now() - t_start;
    gt_loader_free(loader);
    r->loader = NULL;
    gt_free(idx);
    gt_free(all);
    if (!status && !*stopped && steps > start)
        gt_info("done: %ld steps in %.1f s%s", steps - start, gt_now() - t_start,
                r->rollbacks ? " (with rollbacks: see metrics.jsonl)" : "");
    return status;
}

static gt_status run(run_t *r, gt_config *cfg, const char *config_path, int *stopped) {
    GT_TRY(gt_options_from_config(cfg, config_path, &r->o));
    r->cfg = cfg;
    gt_options *o = &r->o;
    int rank = gt_dist_rank(), world = gt_dist_size();
    gt_set_threads(o->threads);
    GT_TRY(gt_signals_install());
    GT_TRY(gt_run_data_open(o, rank, world, &r->train, &r->test));
    if (o->model.kind == GT_MODEL_CLASSIFIER && !r->train->has_labels)
        return GT_ERROR("a classifier needs labels: %s has none", r->train->name);
    GT_TRY(gt_model_build(&o->model, r->train->shape, r->train->n_classes > 0 ? r->train->n_classes : 1, o->batch,
                          o->seed, &r->m));
    GT_TRY(gt_dist_run_attach(&r->dist, &o->dist, r->m, o->text, r->train->n)); /* all ranks agree, or all stop */
    gt_dist_bcast_model(r->m);
    if (o->eval_every > 0) { /* before the run directory exists: a missing classifier leaves nothing behind */
        GT_TRY(gt_metrics_parse(o->eval_metrics, gt_metrics_applicable(r->m->kind, r->train->points),
                                gt_config_where(cfg, "eval", "metrics"), &r->eval_metrics));
        if (r->eval_metrics & (GT_METRIC_ELBO | GT_METRIC_IWAE) &&
            (o->likelihood_n > r->train->n || o->likelihood_n > r->test->n))
            return GT_ERROR("%s: [eval] likelihood_n = %ld is more than the data has (%" PRId64 " training, %" PRId64
                            " test examples)",
                            gt_config_where(cfg, "eval", "likelihood_n"), o->likelihood_n, r->train->n, r->test->n);
        /* the evaluator works on the data in memory (IDX, toy; options.c refuses eval.every with an HDF5 file):
         * its own copy, loaded as the sources were */
        GT_TRY(gt_data_load(&o->data, o->seed, &r->eval_train, &r->eval_test));
        GT_TRY(gt_evaluator_open(o, &r->eval_train, &r->eval_test, r->eval_metrics, 0, &r->ev));
    }
    if ((int64_t)world * o->batch > r->train->n)
        return GT_ERROR("the training set has %" PRId64 " examples, fewer than one global batch of %d ranks x %d",
                        r->train->n, world, o->batch);
    if (o->data.shuffle_local) gt_sampler_init_shard(&r->sampler, r->train->n, o->batch, rank, world, o->seed);
    else gt_sampler_init(&r->sampler, r->train->n, o->batch, rank, world, o->seed);
    long steps = o->epochs > 0 ? o->epochs * (long)r->sampler.steps_per_epoch : o->steps;

    /* The run directory (rank 0): a new run, or resume from its newest valid checkpoint. */
    gt_resume_point rp;
    GT_TRY(gt_resume(o, cfg, r->m, r->train, &rp));
    r->last_ckpt = -1;
    r->lr_scale = 1.0;
    r->nan_step_hit = -1;
    long start = 0;
    if (rp.found) {
        seek_sampler(r, &rp);
        r->last_ckpt = rp.step;
        start = (long)rp.step;
        r->rollbacks = rp.rollbacks;
        r->lr_scale = rp.lr_scale;
        apply_lr(r);
        if (rp.rollbacks)
            gt_info("the run rolled back %" PRId64 " time%s before: learning rates x %g", rp.rollbacks,
                    rp.rollbacks == 1 ? "" : "s", rp.lr_scale);
        if (start > steps) { /* train.steps was lowered: the run is finished at its checkpoint's step */
            gt_warn("the checkpoint's step %ld is past train.steps = %ld: nothing to train (raise train.steps to go "
                    "on); the run counts as finished at step %ld",
                    start, steps, start);
            steps = start;
        }
    } else {
        gt_info("starting a new run in %s", o->dir);
    }
    GT_TRY(open_outputs(r, rp.found ? rp.step : -1));
    /* a run that may roll back always has a checkpoint to go back to */
    if (o->rollback && !rp.found && o->ckpt_every > 0 && steps > 0) {
        int failed = gt_checkpoint_write(o, r->m, &r->sampler, r->train, 0, 0, 1.0) != GT_OK;
        if (gt_dist_any(failed)) return failed ? gt_error_trace(__FILE__, __LINE__, GT_ERR) : GT_ERROR_ALL("rank 0 failed");
        r->last_ckpt = 0;
    }

    gt_info("gentrain %s: %s model, %d rank%s x batch %d = global batch %d; %" PRId64 " train / %" PRId64
            " test examples of %dx%dx%d; %" PRId64 " steps per epoch, %ld steps; seed %" PRIu64 "; run dir %s",
            gt_version(), gt_model_kind_name(r->m->kind), world, world > 1 ? "s" : "", o->batch, o->batch * world,
            r->train->n, r->test->n, r->train->shape.c, r->train->shape.h, r->train->shape.w, r->sampler.steps_per_epoch,
            steps, o->seed, o->dir);
    for (int k = 0; k < r->m->n_nets; k++) gt_net_print(&r->m->net[k]);
    print_memory(r->m);
    /* the overlapped GAN step's D(x) ahead: say whether it happens, and why not */
    if (world > 1 && o->dist.overlap && r->m->kind == GT_MODEL_GAN && steps > start)
        gt_info("dist: the next step's D(x) %s",
                !gt_model_can_compute_ahead(r->m)
                    ? "is not computed while G's gradients travel: D keeps state (batch norm or spectral norm) that "
                      "it would update out of order"
                : o->data.readahead == 0 ? "is not computed while G's gradients travel: data.readahead = 0 leaves no "
                                           "next batch at hand (set it to 1 or more)"
                                         : "is computed while G's gradients travel");

    GT_TRY(train_loop(r, start, steps, stopped));
    gt_run_data_report(r->train, (int64_t)(steps > start ? steps - start : 0) * o->batch, r->data_wait,
                       r->loop_seconds);
    int test_done = r->metrics && gt_metrics_has_test(r->metrics, steps);
    if (o->eval_at_end && !*stopped && !gt_dist_any(test_done)) {
        if (start >= steps)
            gt_info("%s is finished (step %ld), but its metrics.jsonl has no test-set line of step %ld: "
                    "evaluating the test set",
                    o->dir, steps, steps);
        gt_stats test;
        GT_TRY(evaluate(r->m, r->test, o->eval_n, o->batch, o->seed, (uint64_t)steps, &test));
        char line[1024] = "test set:";
        print_stats(line, sizeof line, &test);
        gt_info("%s", line);
        if (r->metrics) GT_TRY(gt_metrics_write(r->metrics, steps, r->sampler.epoch, "test", &test, 0, 0));
    } else if (start >= steps && !*stopped) {
        gt_info("%s is finished (step %ld): nothing to do", o->dir, steps);
    }
    /* No rank leaves before rank 0's last checkpoint is on disk (a launcher
     * may tear the job down as soon as the first rank exits). */
    gt_dist_barrier();
    return gt_dist_run_finish(&r->dist, r->m);
}

gt_status gt_train_config(gt_config *cfg, const char *config_path, int *stopped) {
    run_t r;
    memset(&r, 0, sizeof r);
    *stopped = 0;
    gt_status st = run(&r, cfg, config_path, stopped);
    if (r.metrics) {
        gt_status c = gt_metrics_close(r.metrics);
        if (!st) st = c;
    }
    gt_samples_close(r.samples);
    gt_evaluator_free(r.ev);
    gt_sampler_free(&r.sampler);
    gt_model_free(r.m);
    gt_source_close(r.train);
    gt_source_close(r.test);
    gt_dataset_free(&r.eval_train);
    gt_dataset_free(&r.eval_test);
    gt_options_free(&r.o);
    return st;
}

gt_status gt_cmd_train(int argc, char **argv) {
    int help = 0;
    for (int i = 1; i < argc; i++) help |= !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h");
    if (argc < 2 || help) {
        FILE *out = argc < 2 ? stderr : stdout;
        if (gt_dist_rank() == 0) {
            fputs(train_usage_head, out);
            gt_options_print_keys(out, 0);
            fputs(train_usage_tail, out);
        }
        return argc < 2 ? GT_USAGE_ERROR("gentrain train: no CONFIG given") : GT_OK;
    }
    const char *config_path = argv[1];
    if (config_path[0] == '-')
        return GT_USAGE_ERROR("gentrain train: unknown option '%s': the first argument is the CONFIG file "
                              "(gentrain train --help)",
                              config_path);
    gt_config *cfg;
    GT_TRY(gt_config_load(config_path, &cfg));
    gt_status st = GT_OK;
    for (int i = 2; i < argc && !st; i++)
        st = argv[i][0] == '-' ? GT_USAGE_ERROR("unknown option '%s' (settings are section.key=value)", argv[i])
                               : gt_config_override(cfg, argv[i]);
    int stopped = 0;
    if (!st) st = gt_train_config(cfg, config_path, &stopped);
    gt_config_free(cfg);
    if (!st && stopped) return GT_STOPPED;
    return st;
}
