/* gentrain train: the training loop. Every rank runs the same loop on its
 * shard; gradients are reduced through dist/; only rank 0 prints and writes. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gentrain/app.h"
#include "gentrain/config.h"
#include "gentrain/core.h"
#include "gentrain/data.h"
#include "gentrain/dist.h"
#include "gentrain/model.h"
#include "gentrain/run_io.h"

static const char train_usage[] =
    "usage: gentrain train CONFIG [section.key=value ...]\n"
    "       mpirun -np N gentrain train CONFIG [section.key=value ...]\n"
    "\n"
    "Trains the model that the INI file CONFIG describes. Any key can be set on\n"
    "the command line as section.key=value, e.g. train.steps=100 run.dir=runs/a.\n"
    "Unknown keys and bad values are errors naming the file, line and key.\n"
    "\n"
    "Keys (defaults in brackets):\n"
    "  [run]    dir [runs/<config name>]   seed [1]   threads (BLAS threads per rank) [1]\n"
    "  [data]   kind = fashion-mnist | toy [fashion-mnist]\n"
    "           train_images, train_labels, test_images, test_labels\n"
    "                 [/usr/share/datasets/fashion-mnist/*-ubyte.gz]\n"
    "           limit (use the first N training examples; 0 = all) [0]\n"
    "           toy = ring8 | grid25 [ring8]   n [100000]   n_test [10000]   std [0.05]\n"
    "  [model]  type = gan | vae | classifier;  z_dim;  loss = nonsaturating | minimax | hinge (GAN);\n"
    "           recon = bernoulli | gaussian, binarize, kl_weight (VAE)\n"
    "  [generator] [discriminator] | [encoder] [decoder] | [classifier]\n"
    "           layer1 = KIND opt=value ..., layer2 = ...  (see README: layers)\n"
    "  [train]  steps (0 = use epochs)   epochs   batch_size (per rank) [64]\n"
    "  [optim]  kind = adam | sgd [adam]   lr [1e-3]   beta1 [0.9; SGD momentum 0]   beta2 [0.999]\n"
    "           eps [1e-8]   weight_decay [0]   lr_<net> (per-network learning rate) [lr]\n"
    "  [log]    every (steps between progress lines and metrics; 0 = off) [50]\n"
    "  [eval]   at_end (test-set losses at the end) [true]   n (test examples; 0 = all) [0]\n"
    "  [checkpoint] every (steps between checkpoints, and one at the end; 0 = off) [1000]\n"
    "           keep (the newest N are kept; 0 = all) [3]\n"
    "  [samples] every (steps between samples, and at the end; 0 = off) [500]   n [64]\n"
    "  [run]    resume = auto | never [auto]: auto continues from the newest checkpoint of\n"
    "           run.dir that verifies (skipping damaged ones with a warning); never starts\n"
    "           over, moving run.dir's earlier checkpoints, metrics and samples into\n"
    "           run.dir/previous-<date-time>/\n"
    "  [dist]   overlap (allreduce gradient buckets during backward; false = one call after it) [false]\n"
    "           bucket_mb (bucket size; whole layers, reverse layer order) [1]\n"
    "           sync_bn (batch-norm statistics over the global batch; false = local batches,\n"
    "                    rank 0's running statistics broadcast every step) [false]\n"
    "           check_every (steps between replica parameter-hash checks; 0 = off) [100]\n"
    "  [debug]  test hooks, not for production: fail_rank, fail_step (that rank fails at that\n"
    "           step); perturb_rank, perturb_step (that rank moves every parameter by one ulp);\n"
    "           dump_params = PATH (every rank writes its final parameters to PATH.rank<R>)\n"
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
    "SIGTERM or SIGUSR1 (mpirun forwards SIGUSR1 to every rank) on any rank: all ranks\n"
    "stop at the next step boundary, rank 0 writes a checkpoint, and the exit code is\n"
    "75 (requeue me); running the same command again resumes.\n";

typedef struct {
    gt_dataset train, test;
    gt_pixel_scale scale;
} data_t;

static void load_data(gt_config *cfg, data_t *d, uint64_t seed) {
    static const char *const kinds[] = {"fashion-mnist", "toy", NULL};
    int kind = gt_config_choice(cfg, "data", "kind", "fashion-mnist", kinds);
    if (kind == 0) {
        const char *dir = "/usr/share/datasets/fashion-mnist/";
        char def[4][512];
        snprintf(def[0], sizeof def[0], "%strain-images-idx3-ubyte.gz", dir);
        snprintf(def[1], sizeof def[1], "%strain-labels-idx1-ubyte.gz", dir);
        snprintf(def[2], sizeof def[2], "%st10k-images-idx3-ubyte.gz", dir);
        snprintf(def[3], sizeof def[3], "%st10k-labels-idx1-ubyte.gz", dir);
        const char *ti = gt_config_str(cfg, "data", "train_images", def[0]);
        const char *tl = gt_config_str(cfg, "data", "train_labels", def[1]);
        const char *vi = gt_config_str(cfg, "data", "test_images", def[2]);
        const char *vl = gt_config_str(cfg, "data", "test_labels", def[3]);
        long limit = gt_config_int(cfg, "data", "limit", 0, 0, 1L << 40);
        gt_idx_load(&d->train, ti, tl, limit);
        gt_idx_load(&d->test, vi, vl, 0);
    } else {
        static const char *const toys[] = {"ring8", "grid25", NULL};
        int toy = gt_config_choice(cfg, "data", "toy", "ring8", toys);
        long n = gt_config_int(cfg, "data", "n", 100000, 1, 1L << 32);
        long n_test = gt_config_int(cfg, "data", "n_test", 10000, 1, 1L << 32);
        double std = gt_config_float(cfg, "data", "std", 0.05, 0.0, 100.0);
        gt_toy_make(&d->train, (gt_toy_kind)toy, n, (float)std, seed);
        /* the test points come from another stream of the same mixture */
        gt_toy_make(&d->test, (gt_toy_kind)toy, n_test, (float)std, seed ^ 0x5eed7e57ull);
    }
}

static void broadcast_model(gt_model *m) {
    for (int k = 0; k < m->n_nets; k++) {
        gt_dist_bcast(m->net[k].params, m->net[k].n_params * sizeof(float));
        gt_dist_bcast(m->net[k].state, m->net[k].n_state * sizeof(float));
    }
}

static void format_eta(double seconds, char *out, size_t cap) {
    if (!(seconds >= 0) || seconds > 1e8) seconds = 0;
    long s = (long)(seconds + 0.5);
    snprintf(out, cap, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
}

/* Test-set losses: rank r evaluates batches r, r+world, ...; the means are
 * weighted by batch size and reduced over ranks. */
static void evaluate(gt_model *m, const data_t *d, long n_eval, int batch, uint64_t seed, uint64_t step,
                     gt_stats *out) {
    int rank = gt_dist_rank(), world = gt_dist_size();
    int64_t n = n_eval > 0 && n_eval < d->test.n ? n_eval : d->test.n;
    size_t size = gt_shape_size(d->test.shape);
    float *x = gt_alloc_floats((size_t)batch * size);
    int *labels = gt_alloc((size_t)batch * sizeof(int));
    int64_t *idx = gt_alloc((size_t)batch * sizeof(int64_t));
    double sums[GT_MAX_STATS + 1] = {0};
    gt_stats st = {0};
    for (int64_t start = (int64_t)rank * batch; start < n; start += (int64_t)world * batch) {
        int B = (int)(n - start < batch ? n - start : batch);
        for (int i = 0; i < B; i++) idx[i] = start + i;
        gt_dataset_batch(&d->test, idx, B, d->scale, x, d->test.labels ? labels : NULL);
        gt_step_ctx ctx = {seed, step, (uint64_t)start, 1, NULL, NULL};
        gt_model_eval_batch(m, x, d->test.labels ? labels : NULL, B, &ctx, &st);
        for (int k = 0; k < st.n; k++) sums[k] += st.value[k] * B;
        sums[GT_MAX_STATS] += B;
    }
    if (st.n == 0) { /* a small test set left this rank no batch: one example gives the
                        * names of the statistics, counted with weight 0 */
        idx[0] = 0;
        gt_dataset_batch(&d->test, idx, 1, d->scale, x, d->test.labels ? labels : NULL);
        gt_step_ctx ctx = {seed, step, 0, 1, NULL, NULL};
        gt_model_eval_batch(m, x, d->test.labels ? labels : NULL, 1, &ctx, &st);
        for (int k = 0; k < st.n; k++) st.value[k] = 0;
    }
    gt_dist_allreduce_mean_f64(sums, GT_MAX_STATS + 1);
    *out = st;
    for (int k = 0; k < st.n; k++) out->value[k] = sums[k] / sums[GT_MAX_STATS];
    gt_free(x);
    gt_free(labels);
    gt_free(idx);
}

static void print_stats(char *line, size_t cap, const gt_stats *st) {
    size_t used = strlen(line);
    for (int k = 0; k < st->n && used < cap; k++) {
        if (strstr(st->name[k], "grad_norm")) continue; /* in metrics.jsonl, not on the console */
        used += (size_t)snprintf(line + used, cap - used, "  %s %.4f", st->name[k], st->value[k]);
    }
}

int gt_cmd_train(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        if (gt_dist_rank() == 0) fputs(train_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *config_path = argv[1];
    gt_config *cfg = gt_config_load(config_path);
    for (int i = 2; i < argc; i++) {
        if (argv[i][0] == '-') gt_fatal("unknown option '%s' (settings are section.key=value)", argv[i]);
        gt_config_override(cfg, argv[i]);
    }
    int rank = gt_dist_rank(), world = gt_dist_size();

    /* [run] */
    char def_dir[512];
    const char *base = strrchr(config_path, '/');
    base = base ? base + 1 : config_path;
    snprintf(def_dir, sizeof def_dir, "runs/%.*s", (int)(strcspn(base, ".")), base);
    const char *run_dir = gt_config_str(cfg, "run", "dir", def_dir);
    uint64_t seed = (uint64_t)gt_config_int(cfg, "run", "seed", 1, 0, (long)(~0ul >> 1));
    int threads = (int)gt_config_int(cfg, "run", "threads", 1, 1, 1024);
    gt_blas_set_threads(threads);

    /* [train] [log] [eval] */
    long steps = gt_config_int(cfg, "train", "steps", 0, 0, 1L << 40);
    long epochs = gt_config_int(cfg, "train", "epochs", 0, 0, 1L << 20);
    int batch = (int)gt_config_int(cfg, "train", "batch_size", 64, 1, 1 << 16);
    long log_every = gt_config_int(cfg, "log", "every", 50, 0, 1L << 40);
    int eval_at_end = gt_config_bool(cfg, "eval", "at_end", 1);
    long eval_n = gt_config_int(cfg, "eval", "n", 0, 0, 1L << 40);
    if (steps == 0 && epochs == 0)
        gt_fatal("%s: set [train] steps or [train] epochs (both are 0)", config_path);
    if (steps > 0 && epochs > 0)
        gt_fatal("%s: set only one of [train] steps (%s) and [train] epochs (%s)", config_path,
                 gt_config_where(cfg, "train", "steps"), gt_config_where(cfg, "train", "epochs"));

    data_t data = {0};
    load_data(cfg, &data, seed);
    gt_model *m = gt_model_build(cfg, data.train.shape, data.train.n_classes > 0 ? data.train.n_classes : 1,
                                 batch, seed);
    data.scale = gt_model_pixel_scale(m);
    gt_dist_run dist;
    gt_dist_run_config(&dist, cfg);
    gt_run_io *io = gt_run_io_new(cfg, run_dir); /* [checkpoint] [samples] [run] resume; signal handlers */
    gt_config_check_unused(cfg);
    gt_dist_run_attach(&dist, m, cfg, data.train.n); /* all ranks agree, or all stop */
    broadcast_model(m);

    gt_sampler sampler;
    gt_sampler_init(&sampler, data.train.n, batch, rank, world, seed);
    if (epochs > 0) steps = epochs * sampler.steps_per_epoch;

    /* The run directory (rank 0): a new run, or resume from its newest valid checkpoint. */
    long start = (long)gt_run_io_start(io, cfg, m, &sampler, &data.train, &data.test, data.scale, steps);
    int stopped = 0;

    gt_info("gentrain: %s model, %d rank%s x batch %d = global batch %d; %lld train / %lld test examples "
            "of %dx%dx%d; %lld steps per epoch, %ld steps; seed %llu; run dir %s",
            gt_model_kind_name(m->kind), world, world > 1 ? "s" : "", batch, batch * world,
            (long long)data.train.n, (long long)data.test.n, data.train.shape.c, data.train.shape.h,
            data.train.shape.w, (long long)sampler.steps_per_epoch, steps, (unsigned long long)seed, run_dir);
    for (int k = 0; k < m->n_nets; k++) gt_net_print(&m->net[k]);

    size_t size = gt_shape_size(data.train.shape);
    float *x = gt_alloc_floats((size_t)batch * size);
    int *labels = gt_alloc((size_t)batch * sizeof(int));
    int64_t *idx = gt_alloc((size_t)batch * sizeof(int64_t));
    gt_stats st = {0}, acc = {0};
    int acc_steps = 0;
    double t_start = gt_now(), t_log = t_start;
    int64_t epoch_of_step = 0;

    for (long step = start; step < steps; step++) {
        epoch_of_step = sampler.epoch;
        if (sampler.cursor == sampler.steps_per_epoch) epoch_of_step++;
        gt_sampler_next(&sampler, idx);
        gt_dataset_batch(&data.train, idx, batch, data.scale, x, data.train.labels ? labels : NULL);
        gt_step_ctx ctx = {seed, (uint64_t)step, (uint64_t)rank, (uint64_t)world, gt_dist_reduce_grads,
                           dist.reducer};
        gt_dist_run_step_begin(&dist, step);
        gt_model_train_step(m, x, data.train.labels ? labels : NULL, batch, &ctx, &st);
        gt_dist_run_step_end(&dist, m, step, steps);
        for (int k = 0; k < st.n; k++) {
            if (!isfinite(st.value[k]))
                gt_fatal("step %ld: %s is %g: training diverged (lower [optim] lr or check the data)", step,
                         st.name[k], st.value[k]);
            acc.name[k] = st.name[k];
            acc.value[k] += st.value[k];
        }
        acc.n = st.n;
        acc_steps++;
        int last = step + 1 == steps;
        if (log_every > 0 && ((step + 1) % log_every == 0 || last)) {
            for (int k = 0; k < acc.n; k++) acc.value[k] /= acc_steps;
            if (world > 1) gt_stats_add(&acc, "comm_wait_frac", gt_dist_run_comm_frac(&dist));
            gt_dist_allreduce_mean_f64(acc.value, acc.n);
            double now = gt_now();
            double ips = (double)acc_steps * batch * world / (now - t_log);
            char eta[32], line[1024];
            format_eta((now - t_start) / (step + 1 - start) * (steps - step - 1), eta, sizeof eta);
            snprintf(line, sizeof line, "step %6ld/%ld  epoch %lld", step + 1, steps, (long long)epoch_of_step);
            print_stats(line, sizeof line, &acc);
            gt_info("%s  | %.1f img/s  ETA %s", line, ips, eta);
            gt_run_io_metrics(io, step + 1, epoch_of_step, NULL, &acc, ips, now - t_start);
            memset(&acc, 0, sizeof acc);
            acc_steps = 0;
            t_log = gt_now();
        }
        /* samples, checkpoints, and a stop signal on any rank (all ranks agree) */
        if (gt_run_io_step_end(io, m, &sampler, step + 1, steps)) {
            stopped = 1;
            break;
        }
    }
    if (eval_at_end && !stopped && start < steps) {
        gt_stats test;
        evaluate(m, &data, eval_n, batch, seed, (uint64_t)steps, &test);
        char line[1024] = "test set:";
        print_stats(line, sizeof line, &test);
        gt_info("%s", line);
        gt_run_io_metrics(io, steps, epoch_of_step, "test", &test, 0, 0);
    }
    if (!stopped) gt_info("done: %ld steps in %.1f s", steps - start, gt_now() - t_start);
    /* No rank leaves before rank 0's last checkpoint is on disk (a launcher
     * may tear the job down as soon as the first rank exits). */
    gt_dist_barrier();
    gt_run_io_free(io);
    gt_free(x);
    gt_free(labels);
    gt_free(idx);
    gt_sampler_free(&sampler);
    gt_dist_run_finish(&dist, m);
    gt_model_free(m);
    gt_dataset_free(&data.train);
    gt_dataset_free(&data.test);
    gt_config_free(cfg);
    return stopped ? GT_EXIT_REQUEUE : 0;
}
