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
    "running the same command again resumes.\n";

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
    gt_source *train, *test;
    gt_model *m;
    gt_sampler sampler;
    gt_dist_run dist;
    gt_metrics *metrics;  /* rank 0 */
    gt_samples *samples;  /* rank 0, models that generate, samples.every > 0 */
    gt_loader *loader;    /* during train_loop: paused before this thread writes HDF5 */
    double data_wait, loop_seconds; /* train_loop's time waiting for batches, and in all */
    int64_t last_ckpt;
} run_t;

/* Rank 0's outputs; every rank learns whether they opened. */
static gt_status open_outputs(run_t *r, int64_t resumed_step) {
    gt_status st = GT_OK;
    if (gt_dist_rank() == 0) {
        st = gt_metrics_open(r->o.dir, resumed_step, &r->metrics);
        if (!st && r->o.samples_every > 0 && gt_model_generates(r->m))
            st = gt_samples_open(r->o.dir, r->m, r->o.samples_n, r->o.seed, r->test, resumed_step, &r->samples);
    }
    if (gt_dist_any(st != GT_OK)) return st ? gt_error_trace(__FILE__, __LINE__, st) : GT_ERROR_ALL("rank 0 failed");
    return GT_OK;
}

/* After step `done` of `steps`: samples and checkpoints when due (rank 0),
 * then all ranks agree whether a stop signal arrived on any of them; if so,
 * a checkpoint is written (unless one was just written) and *stop = 1. */
static gt_status step_end(run_t *r, int64_t done, long steps, int *stop) {
    int last = done >= steps, failed = 0, rank0 = gt_dist_rank() == 0;
    if (r->samples && (done % r->o.samples_every == 0 || last)) {
        gt_loader_pause(r->loader);
        failed = gt_samples_write(r->samples, r->m, done) != GT_OK;
    }
    if (!failed && r->o.ckpt_every > 0 && (done % r->o.ckpt_every == 0 || last)) {
        if (rank0) gt_loader_pause(r->loader);
        failed = gt_checkpoint_write(&r->o, r->m, &r->sampler, r->train, done) != GT_OK;
        r->last_ckpt = done;
    }
    int sig = gt_signal_received();
    /* one collective: whether rank 0 failed (2), and whether a signal arrived anywhere (1) */
    int flags = gt_dist_or((failed ? 2 : 0) | (sig ? 1 : 0));
    if (flags & 2) return failed ? gt_error_trace(__FILE__, __LINE__, GT_ERR) : GT_ERROR_ALL("rank 0 failed");
    *stop = (flags & 1) && !last;
    if (!*stop) return GT_OK;
    if (rank0) gt_loader_pause(r->loader);
    if (r->last_ckpt != done) GT_TRY(gt_checkpoint_write(&r->o, r->m, &r->sampler, r->train, done));
    gt_dist_barrier(); /* the checkpoint is on disk before anyone says so */
    gt_info("stopping at step %" PRId64 " on %s: checkpoint written; exit code %d asks to be requeued (run the same "
            "command again to resume)",
            done, gt_signal_name(sig), GT_STOPPED);
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
    gt_loader *loader;
    gt_loader_new(r->train, &r->sampler, steps > start ? steps - start : 0, r->o.data.readahead, scale, 1, &loader);
    r->loader = loader;
    gt_stats st = {0}, acc = {0};
    int acc_steps = 0;
    double t_start = gt_now(), t_log = t_start;
    gt_status status = GT_OK;
    for (long step = start; step < steps && !status && !*stopped; step++) {
        int64_t epoch_of_step = r->sampler.epoch + (r->sampler.cursor == r->sampler.steps_per_epoch);
        gt_sampler_next(&r->sampler, idx);
        float *x;
        int *labels;
        if ((status = gt_loader_next(loader, idx, &x, &labels))) break;
        gt_step_ctx ctx = {.seed = r->o.seed, .step = (uint64_t)step, .example0 = (uint64_t)rank, .stride = (uint64_t)world};
        gt_dist_run_step_ctx(&r->dist, &ctx);
        if ((status = gt_dist_run_step_begin(&r->dist, step))) break;
        gt_model_train_step(r->m, x, labels, batch, &ctx, &st);
        if ((status = gt_dist_run_step_end(&r->dist, r->m, step, steps))) break;
        for (int k = 0; k < st.n && !status; k++) {
            if (!isfinite(st.value[k]))
                status = GT_ERROR("step %ld: %s is %g: training diverged (lower [optim] lr or check the data)", step + 1,
                                  st.name[k], st.value[k]);
            acc.name[k] = st.name[k];
            acc.value[k] += st.value[k];
        }
        if (status) break;
        acc.n = st.n;
        acc_steps++;
        if (r->o.log_every > 0 && ((step + 1) % r->o.log_every == 0 || step + 1 == steps)) {
            for (int k = 0; k < acc.n; k++) acc.value[k] /= acc_steps;
            if (world > 1) gt_stats_add(&acc, "comm_wait_frac", gt_dist_run_comm_frac(&r->dist));
            gt_dist_allreduce_mean_f64(acc.value, acc.n);
            double now = gt_now();
            double ips = (double)acc_steps * batch * world / (now - t_log);
            char eta[32], line[1024];
            format_eta((now - t_start) / (step + 1 - start) * (steps - step - 1), eta, sizeof eta);
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
        status = step_end(r, step + 1, steps, stopped);
        gt_loader_resume(loader);
    }
    r->data_wait = gt_loader_wait_seconds(loader);
    r->loop_seconds = gt_now() - t_start;
    gt_loader_free(loader);
    r->loader = NULL;
    gt_free(idx);
    if (!status && !*stopped) gt_info("done: %ld steps in %.1f s", steps - start, gt_now() - t_start);
    return status;
}

static gt_status run(run_t *r, gt_config *cfg, const char *config_path, int *stopped) {
    GT_TRY(gt_options_from_config(cfg, config_path, &r->o));
    gt_options *o = &r->o;
    int rank = gt_dist_rank(), world = gt_dist_size();
    gt_blas_set_threads(o->threads);
    GT_TRY(gt_signals_install());
    GT_TRY(gt_run_data_open(o, rank, world, &r->train, &r->test));
    if (o->model.kind == GT_MODEL_CLASSIFIER && !r->train->has_labels)
        return GT_ERROR("a classifier needs labels: %s has none", r->train->name);
    GT_TRY(gt_model_build(&o->model, r->train->shape, r->train->n_classes > 0 ? r->train->n_classes : 1, o->batch,
                          o->seed, &r->m));
    GT_TRY(gt_dist_run_attach(&r->dist, &o->dist, r->m, o->text, r->train->n)); /* all ranks agree, or all stop */
    gt_dist_bcast_model(r->m);
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
    long start = 0;
    if (rp.found) {
        int64_t epoch = rp.epoch, cursor = rp.cursor;
        int64_t old_global = rp.world * rp.batch, new_global = (int64_t)world * o->batch;
        if (rp.world != world || rp.batch != o->batch || rp.n_train != r->train->n) {
            if (old_global != new_global || rp.n_train != r->train->n)
                cursor = cursor * old_global / new_global; /* the same place in the epoch's shuffle, rounded down */
            if (cursor > r->sampler.steps_per_epoch) cursor = r->sampler.steps_per_epoch;
            gt_warn("resuming a checkpoint written by %" PRId64 " rank%s x batch %" PRId64 " (global %" PRId64
                    ") with %d rank%s x batch %d (global %" PRId64 "): the per-rank batch_size is kept as configured, "
                    "so the global batch %s; the sampler continues at step %" PRId64 " of epoch %" PRId64
                    ". The run is no longer bitwise reproducible",
                    rp.world, rp.world > 1 ? "s" : "", rp.batch, old_global, world, world > 1 ? "s" : "", o->batch,
                    new_global, old_global == new_global ? "is unchanged" : "changes", cursor, epoch);
        }
        gt_sampler_seek(&r->sampler, epoch, cursor);
        r->last_ckpt = rp.step;
        start = (long)rp.step;
    } else {
        gt_info("starting a new run in %s", o->dir);
    }
    GT_TRY(open_outputs(r, rp.found ? rp.step : -1));

    gt_info("gentrain %s: %s model, %d rank%s x batch %d = global batch %d; %" PRId64 " train / %" PRId64
            " test examples of %dx%dx%d; %" PRId64 " steps per epoch, %ld steps; seed %" PRIu64 "; run dir %s",
            gt_version(), gt_model_kind_name(r->m->kind), world, world > 1 ? "s" : "", o->batch, o->batch * world,
            r->train->n, r->test->n, r->train->shape.c, r->train->shape.h, r->train->shape.w, r->sampler.steps_per_epoch,
            steps, o->seed, o->dir);
    for (int k = 0; k < r->m->n_nets; k++) gt_net_print(&r->m->net[k]);

    GT_TRY(train_loop(r, start, steps, stopped));
    gt_run_data_report(r->train, (int64_t)(steps > start ? steps - start : 0) * o->batch, r->data_wait,
                       r->loop_seconds);
    int test_done = r->metrics && gt_metrics_has_test(r->metrics, steps);
    if (o->eval_at_end && !*stopped && !gt_dist_any(test_done)) {
        gt_stats test;
        GT_TRY(evaluate(r->m, r->test, o->eval_n, o->batch, o->seed, (uint64_t)steps, &test));
        char line[1024] = "test set:";
        print_stats(line, sizeof line, &test);
        gt_info("%s", line);
        if (r->metrics) GT_TRY(gt_metrics_write(r->metrics, steps, r->sampler.epoch, "test", &test, 0, 0));
    } else if (start >= steps && !*stopped) {
        gt_info("%s has reached train.steps = %ld already: nothing to do", o->dir, steps);
    }
    /* No rank leaves before rank 0's last checkpoint is on disk (a launcher
     * may tear the job down as soon as the first rank exits). */
    gt_dist_barrier();
    return gt_dist_run_finish(&r->dist, r->m);
}

gt_status gt_cmd_train(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        FILE *out = argc < 2 ? stderr : stdout;
        if (gt_dist_rank() == 0) {
            fputs(train_usage_head, out);
            gt_options_print_keys(out, 0);
            fputs(train_usage_tail, out);
        }
        return argc < 2 ? GT_USAGE_ERROR("gentrain train: no CONFIG given") : GT_OK;
    }
    const char *config_path = argv[1];
    gt_config *cfg;
    GT_TRY(gt_config_load(config_path, &cfg));
    gt_status st = GT_OK;
    for (int i = 2; i < argc && !st; i++)
        st = argv[i][0] == '-' ? GT_USAGE_ERROR("unknown option '%s' (settings are section.key=value)", argv[i])
                               : gt_config_override(cfg, argv[i]);
    run_t r;
    memset(&r, 0, sizeof r);
    int stopped = 0;
    if (!st) st = run(&r, cfg, config_path, &stopped);
    if (r.metrics) {
        gt_status c = gt_metrics_close(r.metrics);
        if (!st) st = c;
    }
    gt_samples_close(r.samples);
    gt_sampler_free(&r.sampler);
    gt_model_free(r.m);
    gt_source_close(r.train);
    gt_source_close(r.test);
    gt_options_free(&r.o);
    gt_config_free(cfg);
    if (!st && stopped) return GT_STOPPED;
    return st;
}
