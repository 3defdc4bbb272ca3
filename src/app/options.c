/* Options: a config resolved into the structs the modules take
 * (include/gentrain/app.h). The one place that reads configs.
 *
 * Every key is described once, in the table `keys` below: section, name,
 * type, default, range, when it applies and what it means. Parsing walks the
 * table in order (a key's `applies` may look at keys read before it), and
 * `gentrain train --help` and `gentrain help keys` print the same table, so
 * the documented defaults are the ones used. Networks come from their
 * sections' layer lines (layer1, layer2, ...; parsed by src/nn/spec.c). */
#include "gentrain/app.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef enum { K_INT, K_FLOAT, K_POSITIVE, K_BOOL, K_CHOICE, K_STRING } key_type;

typedef struct key_desc {
    const char *section, *key;
    key_type type;
    const char *def;       /* the default as text; NULL = required */
    double min, max;       /* K_INT, K_FLOAT (K_POSITIVE: (0, max]) */
    const char *const *choices;
    size_t offset;         /* of the field in gt_options (long, double, int, int index, const char *) */
    int field;             /* the field's C type: see store() */
    int (*applies)(const gt_options *o);
    /* A default that depends on keys read before (NULL: def). */
    void (*computed)(const gt_options *o, char *buf, size_t cap);
    int only_if_given;     /* [debug]: not listed in resolved configs unless given */
    const char *help;
} key_desc;

enum { F_LONG, F_INT, F_INT64, F_U64, F_DOUBLE, F_FLOAT, F_STR, F_CHOICE };

static const char *const data_kinds[] = {"fashion-mnist", "toy", "hdf5", NULL};
static const char *const shuffles[] = {"global", "local", NULL};
static const char *const caches[] = {"none", "shard", NULL};
static const char *const model_types[] = {"gan", "vae", "classifier", NULL};
static const char *const gan_losses[] = {"nonsaturating", "minimax", "hinge", "wasserstein", NULL};
static const char *const recons[] = {"bernoulli", "gaussian", NULL};
static const char *const optimizers[] = {"adam", "sgd", NULL};
static const char *const resume_modes[] = {"auto", "never", NULL};
static const char *const init_schemes[] = {"pytorch", "normal", "xavier", "kaiming", NULL};
static const char *const divergence_modes[] = {"stop", "rollback", NULL};
static const char *const compressions[] = {"none", "bf16", NULL};

static int is_idx(const gt_options *o) { return o->data.kind == GT_DATA_IDX; }
static int is_toy(const gt_options *o) { return o->data.kind == GT_DATA_TOY; }
static int is_hdf5(const gt_options *o) { return o->data.kind == GT_DATA_HDF5; }
static int has_images(const gt_options *o) { return o->data.kind != GT_DATA_TOY; }
static int is_gan(const gt_options *o) { return o->model.kind == GT_MODEL_GAN; }
static int is_vae(const gt_options *o) { return o->model.kind == GT_MODEL_VAE; }
static int generates(const gt_options *o) { return o->model.kind != GT_MODEL_CLASSIFIER; }
static int is_classifier(const gt_options *o) { return o->model.kind == GT_MODEL_CLASSIFIER; }

static int gan_bce(const gt_options *o) {
    return is_gan(o) && (o->model.gan_loss == GT_GAN_NONSATURATING || o->model.gan_loss == GT_GAN_MINIMAX);
}
static int gan_wasserstein(const gt_options *o) { return is_gan(o) && o->model.gan_loss == GT_GAN_WASSERSTEIN; }
static int gan_noise(const gt_options *o) { return is_gan(o) && o->model.gan.noise > 0; }
static int rolls_back(const gt_options *o) { return o->rollback; }

/* init_std applies to a network initialized with init = normal */
static int normal0(const gt_options *o) { return o->model.net[0].init.scheme == GT_INIT_NORMAL; }
static int normal1(const gt_options *o) { return o->model.net[1].init.scheme == GT_INIT_NORMAL; }
static int gan_normal0(const gt_options *o) { return is_gan(o) && normal0(o); }
static int gan_normal1(const gt_options *o) { return is_gan(o) && normal1(o); }
static int vae_normal0(const gt_options *o) { return is_vae(o) && normal0(o); }
static int vae_normal1(const gt_options *o) { return is_vae(o) && normal1(o); }
static int classifier_normal0(const gt_options *o) { return is_classifier(o) && normal0(o); }

static void def_dir(const gt_options *o, char *buf, size_t cap) { snprintf(buf, cap, "%s", o->dir_default); }
static void def_z(const gt_options *o, char *buf, size_t cap) { snprintf(buf, cap, "%d", is_gan(o) ? 100 : 20); }
static void def_beta1(const gt_options *o, char *buf, size_t cap) {
    snprintf(buf, cap, "%s", o->model.net[0].optim.kind == GT_OPT_ADAM ? "0.9" : "0");
}
static void def_lr(const gt_options *o, char *buf, size_t cap) { gt_format_double(buf, cap, o->lr); }

#define FASHION "/usr/share/datasets/fashion-mnist/"
#define OFF(field) offsetof(gt_options, field)
#define OPT0(field) offsetof(gt_options, model.net[0].optim.field)

/* The initialization keys of a network section (k: the network's index). */
#define INIT_KEYS(section, k, applies, applies_std)                                                          \
    {section, "init", K_CHOICE, "pytorch", 0, 0, init_schemes, OFF(model.net[k].init.scheme), F_CHOICE, applies,    \
     NULL, 0,                                                                                                \
     "weight initialization: pytorch (PyTorch's defaults); normal (weights N(0, init_std), norm scales N(1, "   \
     "init_std): DCGAN's); xavier (xavier_uniform_); kaiming (kaiming_normal_, ReLU, fan_in); biases 0 but "    \
     "for pytorch"},                                                                                           \
    {section, "init_std", K_POSITIVE, "0.02", 0, 10, NULL, OFF(model.net[k].init.std), F_DOUBLE, applies_std, NULL, 0, \
     "init = normal: the standard deviation of the weights (and of the norm scales around 1)"}

static const key_desc keys[] = {
    {"run", "dir", K_STRING, "runs/<config name>", 0, 0, NULL, OFF(dir), F_STR, NULL, def_dir, 0,
     "the run directory: checkpoints, samples, metrics, config.ini"},
    {"run", "seed", K_INT, "1", 0, 4611686018427387903.0, NULL, OFF(seed), F_U64, NULL, NULL, 0,
     "seed of every random number (weights, latents, dropout, data order)"},
    {"run", "threads", K_INT, "1", 1, 1024, NULL, OFF(threads), F_INT, NULL, NULL, 0, "threads per rank (OpenMP: GEMMs in fixed panels, the conv lowering, batch norm, element-wise layers, the optimizer); results are bitwise the same for any number"},
    {"run", "resume", K_CHOICE, "auto", 0, 0, resume_modes, OFF(resume_never), F_CHOICE, NULL, NULL, 0,
     "auto: continue from run.dir's newest checkpoint that verifies (damaged ones are moved to "
     "checkpoints/damaged/); never: start over, moving the earlier run into run.dir/previous-<date-time>/"},
    {"data", "kind", K_CHOICE, "fashion-mnist", 0, 0, data_kinds, OFF(data.kind), F_CHOICE, NULL, NULL, 0,
     "fashion-mnist (IDX files, loaded whole), toy (2-D mixtures) or hdf5 (a gentrain-dataset file, read on demand: "
     "README, Datasets)"},
    {"data", "train_images", K_STRING, FASHION "train-images-idx3-ubyte.gz", 0, 0, NULL, OFF(data.train_images),
     F_STR, is_idx, NULL, 0, "IDX images (gzipped or plain)"},
    {"data", "train_labels", K_STRING, FASHION "train-labels-idx1-ubyte.gz", 0, 0, NULL, OFF(data.train_labels),
     F_STR, is_idx, NULL, 0, "IDX labels"},
    {"data", "test_images", K_STRING, FASHION "t10k-images-idx3-ubyte.gz", 0, 0, NULL, OFF(data.test_images), F_STR,
     is_idx, NULL, 0, "IDX images of the held-out set (same shape as the training images)"},
    {"data", "test_labels", K_STRING, FASHION "t10k-labels-idx1-ubyte.gz", 0, 0, NULL, OFF(data.test_labels), F_STR,
     is_idx, NULL, 0, "IDX labels of the held-out set"},
    {"data", "path", K_STRING, NULL, 0, 0, NULL, OFF(data.path), F_STR, is_hdf5, NULL, 0,
     "the dataset file (required; tools/make-dataset makes one from IDX files, image folders or NumPy arrays)"},
    {"data", "limit", K_INT, "0", 0, 1099511627776.0, NULL, OFF(data.limit), F_INT64, has_images, NULL, 0,
     "use the first N training examples (0 = all; more than the file holds is an error)"},
    {"data", "shuffle", K_CHOICE, "global", 0, 0, shuffles, OFF(data.shuffle_local), F_CHOICE, is_hdf5, NULL, 0,
     "global: one permutation of the whole set per epoch, each rank reading the rows of its batches (any number of "
     "ranks trains the same run); local: each rank shuffles only its own contiguous 1/ranks of the file (runs "
     "depend on the number of ranks; at 1 rank the same as global)"},
    {"data", "cache", K_CHOICE, "none", 0, 0, caches, OFF(data.cache), F_CHOICE, is_hdf5, NULL, 0,
     "none: read every batch from the file; shard: read the rank's shard once at the start and keep it in memory "
     "(needs shuffle = local)"},
    {"data", "readahead", K_INT, "2", 0, 64, NULL, OFF(data.readahead), F_INT, NULL, NULL, 0,
     "batches a reader thread reads ahead while the step computes (0 = read each batch when it is needed)"},
    {"data", "toy", K_CHOICE, "ring8", 0, 0, gt_toy_names, OFF(data.toy), F_CHOICE, is_toy, NULL, 0,
     "ring8: 8 Gaussians on the unit circle; grid25: 5x5 grid, spacing 2"},
    {"data", "n", K_INT, "100000", 1, 4294967296.0, NULL, OFF(data.n), F_INT64, is_toy, NULL, 0, "training points"},
    {"data", "n_test", K_INT, "10000", 1, 4294967296.0, NULL, OFF(data.n_test), F_INT64, is_toy, NULL, 0,
     "held-out points (another random stream)"},
    {"data", "std", K_FLOAT, "0.05", 0, 100, NULL, OFF(data.std), F_FLOAT, is_toy, NULL, 0,
     "standard deviation of each mixture component"},
    {"model", "type", K_CHOICE, NULL, 0, 0, model_types, OFF(model.kind), F_CHOICE, NULL, NULL, 0,
     "gan, vae or classifier (required)"},
    {"model", "z_dim", K_INT, "100 (GAN), 20 (VAE)", 1, 65536, NULL, OFF(model.z_dim), F_INT, generates, def_z, 0,
     "latent dimensions"},
    {"model", "loss", K_CHOICE, "nonsaturating", 0, 0, gan_losses, OFF(model.gan_loss), F_CHOICE, is_gan, NULL, 0,
     "GAN loss (README, \"Training step and losses\"); wasserstein: WGAN's critic loss with weight clipping (clip)"},
    {"model", "label_smoothing", K_FLOAT, "0", 0, 0.5, NULL, OFF(model.gan.label_smoothing), F_FLOAT, gan_bce, NULL, 0,
     "GAN, BCE losses: one-sided label smoothing, D's target for real examples is 1 - a (0 = off; 0.1 is common)"},
    {"model", "instance_noise", K_FLOAT, "0", 0, 100, NULL, OFF(model.gan.noise), F_FLOAT, is_gan, NULL, 0,
     "GAN: instance noise, N(0, s^2) added to every input of D in training (real and generated), s decaying "
     "linearly from this value to 0 at instance_noise_steps (0 = off)"},
    {"model", "instance_noise_steps", K_INT, "0", 0, 1099511627776.0, NULL, OFF(model.gan.noise_steps), F_LONG,
     gan_noise, NULL, 0,
     "GAN: instance noise decays linearly to 0 at this step (0 = no decay: constant; set it, e.g. to about "
     "train.steps: a fixed number, so that a resumed or extended run keeps its schedule)"},
    {"model", "pack", K_INT, "1", 1, 64, NULL, OFF(model.gan.pack), F_INT, is_gan, NULL, 0,
     "GAN: PacGAN packing, D judges this many samples of a rank's batch concatenated along channels (1 = off; "
     "must divide batch_size)"},
    {"model", "clip", K_POSITIVE, "0.01", 0, 100, NULL, OFF(model.gan.clip), F_FLOAT, gan_wasserstein, NULL, 0,
     "GAN, loss = wasserstein: D's parameters are clipped to [-clip, clip] after each D step (WGAN)"},
    {"model", "g_ema", K_FLOAT, "0", 0, 0.99999999, NULL, OFF(model.gan.g_ema), F_FLOAT, is_gan, NULL, 0,
     "GAN: decay of an exponential moving average of the generator's weights, kept in checkpoints and used for "
     "samples and evaluation, the live generator reported beside it (0 = off; 0.999 is common)"},
    {"model", "recon", K_CHOICE, "bernoulli", 0, 0, recons, OFF(model.recon), F_CHOICE, is_vae, NULL, 0,
     "VAE likelihood: bernoulli (decoder gives logits) or gaussian (decoder gives the mean, unit variance)"},
    {"model", "binarize", K_BOOL, "false", 0, 0, NULL, OFF(model.binarize), F_INT, is_vae, NULL, 0,
     "VAE: dynamic binarization of the inputs (needs recon = bernoulli)"},
    {"model", "kl_weight", K_FLOAT, "1", 0, 1e6, NULL, OFF(model.kl_weight), F_FLOAT, is_vae, NULL, 0,
     "VAE: the weight of the KL term (beta)"},
    INIT_KEYS("generator", 0, is_gan, gan_normal0),
    INIT_KEYS("discriminator", 1, is_gan, gan_normal1),
    INIT_KEYS("encoder", 0, is_vae, vae_normal0),
    INIT_KEYS("decoder", 1, is_vae, vae_normal1),
    INIT_KEYS("classifier", 0, is_classifier, classifier_normal0),
    {"train", "steps", K_INT, "0", 0, 1099511627776.0, NULL, OFF(steps), F_LONG, NULL, NULL, 0,
     "optimizer steps (0 = use epochs)"},
    {"train", "epochs", K_INT, "0", 0, 1048576, NULL, OFF(epochs), F_LONG, NULL, NULL, 0,
     "epochs (0 = use steps); set exactly one of steps and epochs"},
    {"train", "batch_size", K_INT, "64", 1, 65536, NULL, OFF(batch), F_INT, NULL, NULL, 0,
     "examples per rank and step (the global batch is ranks x batch_size)"},
    {"train", "on_divergence", K_CHOICE, "stop", 0, 0, divergence_modes, OFF(rollback), F_CHOICE, NULL, NULL, 0,
     "when a loss or gradient norm is not finite on any rank, a parameter is not finite, or a loss exceeds "
     "loss_bound: stop (exit 1 naming the step, network and value) or rollback (reload the newest checkpoint, "
     "multiply the learning rates by rollback_lr_factor, go on)"},
    {"train", "loss_bound", K_FLOAT, "0", 0, 1e30, NULL, OFF(loss_bound), F_DOUBLE, NULL, NULL, 0,
     "a loss (a statistic named *loss) whose absolute value exceeds this counts as divergence (0 = off)"},
    {"train", "rollback_lr_factor", K_POSITIVE, "0.5", 0, 1, NULL, OFF(rollback_lr_factor), F_DOUBLE, rolls_back, NULL,
     0, "rollback: every learning rate is multiplied by this at each rollback"},
    {"train", "max_rollbacks", K_INT, "3", 1, 1000000, NULL, OFF(max_rollbacks), F_LONG, rolls_back, NULL, 0,
     "rollback: the run gives up (exit 1) at the divergence after this many rollbacks"},
    {"optim", "kind", K_CHOICE, "adam", 0, 0, optimizers, OPT0(kind), F_CHOICE, NULL, NULL, 0,
     "adam (torch.optim.Adam) or sgd (torch.optim.SGD with momentum)"},
    {"optim", "lr", K_POSITIVE, "1e-3", 0, 10, NULL, OFF(lr), F_DOUBLE, NULL, NULL, 0,
     "learning rate (not scaled with the number of ranks)"},
    {"optim", "lr_generator", K_POSITIVE, "lr", 0, 10, NULL, OFF(model.net[0].optim.lr), F_DOUBLE, is_gan, def_lr, 0,
     "the generator's learning rate (TTUR: two time-scale update rule)"},
    {"optim", "lr_discriminator", K_POSITIVE, "lr", 0, 10, NULL, OFF(model.net[1].optim.lr), F_DOUBLE, is_gan, def_lr,
     0, "the discriminator's learning rate (TTUR)"},
    {"optim", "lr_encoder", K_POSITIVE, "lr", 0, 10, NULL, OFF(model.net[0].optim.lr), F_DOUBLE, is_vae, def_lr, 0,
     "the encoder's learning rate"},
    {"optim", "lr_decoder", K_POSITIVE, "lr", 0, 10, NULL, OFF(model.net[1].optim.lr), F_DOUBLE, is_vae, def_lr, 0,
     "the decoder's learning rate"},
    {"optim", "lr_classifier", K_POSITIVE, "lr", 0, 10, NULL, OFF(model.net[0].optim.lr), F_DOUBLE, is_classifier,
     def_lr, 0, "the classifier's learning rate"},
    {"optim", "beta1", K_FLOAT, "0.9 (Adam), 0 (SGD)", 0, 0.999999, NULL, OPT0(beta1), F_DOUBLE, NULL, def_beta1, 0,
     "Adam's first-moment decay; SGD's momentum"},
    {"optim", "beta2", K_FLOAT, "0.999", 0, 0.99999999, NULL, OPT0(beta2), F_DOUBLE, NULL, NULL, 0,
     "Adam's second-moment decay"},
    {"optim", "eps", K_POSITIVE, "1e-8", 0, 1, NULL, OPT0(eps), F_DOUBLE, NULL, NULL, 0,
     "Adam's denominator term"},
    {"optim", "weight_decay", K_FLOAT, "0", 0, 1, NULL, OPT0(weight_decay), F_DOUBLE, NULL, NULL, 0,
     "L2 penalty added to the gradient (PyTorch's weight_decay)"},
    {"log", "every", K_INT, "50", 0, 1099511627776.0, NULL, OFF(log_every), F_LONG, NULL, NULL, 0,
     "steps between progress lines and metrics rows (0 = off)"},
    {"eval", "at_end", K_BOOL, "true", 0, 0, NULL, OFF(eval_at_end), F_INT, NULL, NULL, 0,
     "test-set losses at the end"},
    {"eval", "n", K_INT, "0", 0, 1099511627776.0, NULL, OFF(eval_n), F_LONG, NULL, NULL, 0,
     "test examples evaluated (0 = all)"},
    {"eval", "every", K_INT, "0", 0, 1099511627776.0, NULL, OFF(eval_every), F_LONG, generates, NULL, 0,
     "steps between evaluations of [eval] metrics during training, and one at the end, logged with \"split\": "
     "\"eval\" in metrics.jsonl and in metrics.h5 /eval/training (0 = off)"},
    {"eval", "metrics", K_STRING, "default", 0, 0, NULL, OFF(eval_metrics), F_STR, generates, NULL, 0,
     "the metrics evaluated during training, comma-separated (gentrain eval --help lists them); default: fid and "
     "classes (2-D data: modes), plus discriminator (GAN) or elbo (VAE)"},
    {"eval", "samples", K_INT, "2000", 2, 1048576, NULL, OFF(eval_samples), F_LONG, generates, NULL, 0,
     "generated samples per evaluation during training (gentrain eval: --n)"},
    {"eval", "classifier", K_STRING, "", 0, 0, NULL, OFF(eval_classifier), F_STR, generates, NULL, 0,
     "the checkpoint of the classifier whose features image metrics use (empty: the one in [eval] cache; gentrain "
     "eval trains it there from configs/classifier.ini on first use, training runs expect it there)"},
    {"eval", "cache", K_STRING, "", 0, 0, NULL, OFF(eval_cache), F_STR, generates, NULL, 0,
     "directory of the trained classifier and the data's features (empty: $GENTRAIN_CACHE, else "
     "$XDG_CACHE_HOME/gentrain, else ~/.cache/gentrain)"},
    {"eval", "iwae_k", K_INT, "5000", 1, 1048576, NULL, OFF(iwae_k), F_LONG, generates, NULL, 0,
     "VAE: importance samples per example of the IWAE bound (metric iwae)"},
    {"eval", "likelihood_n", K_INT, "1000", 1, 1099511627776.0, NULL, OFF(likelihood_n), F_LONG, generates, NULL, 0,
     "VAE: training and test examples (the first N of each) for the metrics elbo and iwae"},
    {"eval", "likelihood_train", K_BOOL, "true", 0, 0, NULL, OFF(likelihood_train), F_INT, generates, NULL, 0,
     "VAE: elbo and iwae also on the training examples, for the train-test gap (false: the test set only, half the cost)"},
    {"eval", "seed", K_INT, "1", 0, 4611686018427387903.0, NULL, OFF(eval_seed), F_U64, generates, NULL, 0,
     "seed of the evaluation's draws (latents, subsets, IWAE noise): fixed, so that models are compared on the same "
     "draws"},
    {"checkpoint", "every", K_INT, "1000", 0, 1099511627776.0, NULL, OFF(ckpt_every), F_LONG, NULL, NULL, 0,
     "steps between checkpoints, and one at the end (0 = off)"},
    {"checkpoint", "keep", K_INT, "3", 0, 1048576, NULL, OFF(ckpt_keep), F_LONG, NULL, NULL, 0,
     "the newest N checkpoints are kept (0 = all)"},
    {"samples", "every", K_INT, "500", 0, 1099511627776.0, NULL, OFF(samples_every), F_LONG, NULL, NULL, 0,
     "steps between samples, and at the end (0 = off)"},
    {"samples", "n", K_INT, "64", 1, 4096, NULL, OFF(samples_n), F_INT, generates, NULL, 0,
     "samples of the fixed latent batch"},
    {"dist", "overlap", K_BOOL, "false", 0, 0, NULL, OFF(dist.overlap), F_INT, NULL, NULL, 0,
     "allreduce gradient buckets while backward runs, and a GAN whose D has no batch norm or spectral norm computes "
     "the next step's D(x) while G's gradients travel (false: one call after backward)"},
    {"dist", "bucket_mb", K_FLOAT, "1", 0, 1e6, NULL, OFF(dist.bucket_mb), F_DOUBLE, NULL, NULL, 0,
     "bucket size of the overlapped allreduce (whole layers, reverse layer order)"},
    {"dist", "compress", K_CHOICE, "none", 0, 0, compressions, OFF(dist.compress), F_CHOICE, NULL, NULL, 0,
     "gradient sums on the wire: none (floats) or bf16 (bfloat16, added in float and rounded once per sum: half the "
     "bytes, 8 significant bits: 2-3 decimal digits; for slow links)"},
    {"dist", "sync_bn", K_BOOL, "false", 0, 0, NULL, OFF(dist.sync_bn), F_INT, NULL, NULL, 0,
     "batch-norm statistics over the global batch (false: local batches, rank 0's running statistics broadcast)"},
    {"dist", "check_every", K_INT, "100", 0, 1099511627776.0, NULL, OFF(dist.check_every), F_LONG, NULL, NULL, 0,
     "steps between replica parameter-hash checks (0 = off)"},
    {"dist", "step_timeout", K_FLOAT, "0", 0, 1e7, NULL, OFF(dist.step_timeout), F_DOUBLE, NULL, NULL, 0,
     "the step watchdog: seconds one training step may take (its collectives included) before every live rank says "
     "which ranks it waits for and the job ends with exit code 1; 0 = automatic: 10 x the slowest step so far, at "
     "least 300 s (a step that ends in a checkpoint gets at least 30 minutes more)"},
    {"debug", "fail_rank", K_INT, "-1", -1, 1073741824, NULL, OFF(dist.fail_rank), F_INT, NULL, NULL, 1,
     "test hook: this rank fails at fail_step"},
    {"debug", "fail_step", K_INT, "1", 1, 1099511627776.0, NULL, OFF(dist.fail_step), F_LONG, NULL, NULL, 1,
     "test hook: the step fail_rank fails at"},
    {"debug", "perturb_rank", K_INT, "-1", -1, 1073741824, NULL, OFF(dist.perturb_rank), F_INT, NULL, NULL, 1,
     "test hook: this rank moves every parameter by one ulp after perturb_step"},
    {"debug", "perturb_step", K_INT, "1", 1, 1099511627776.0, NULL, OFF(dist.perturb_step), F_LONG, NULL, NULL, 1,
     "test hook: the step after which perturb_rank perturbs"},
    {"debug", "nan_rank", K_INT, "-1", -1, 1073741824, NULL, OFF(nan_rank), F_INT, NULL, NULL, 1,
     "test hook: this rank puts a NaN into its batch at nan_step (divergence handling)"},
    {"debug", "nan_step", K_INT, "1", 1, 1099511627776.0, NULL, OFF(nan_step), F_LONG, NULL, NULL, 1,
     "test hook: the step at which nan_rank injects the NaN"},
    {"debug", "nan_times", K_INT, "1", 1, 1000000, NULL, OFF(nan_times), F_LONG, NULL, NULL, 1,
     "test hook: inject the NaN the first this many times the run reaches nan_step (after rollbacks)"},
    {"debug", "dump_params", K_STRING, "", 0, 0, NULL, OFF(dist.dump_params), F_STR, NULL, NULL, 1,
     "test hook: every rank writes its final parameters to PATH.rank<R>"},
    {"debug", "dump_reads", K_STRING, "", 0, 0, NULL, OFF(data.dump_reads), F_STR, is_hdf5, NULL, 1,
     "test hook: every rank writes the index of every training example it reads from the file (int64) to "
     "PATH.rank<R>"},
};
#define N_KEYS ((int)(sizeof keys / sizeof keys[0]))

/* Stores a parsed value into its field. */
static void store(gt_options *o, const key_desc *k, long iv, double dv, const char *sv) {
    char *p = (char *)o + k->offset;
    switch (k->field) {
    case F_LONG: *(long *)p = iv; break;
    case F_INT: *(int *)p = (int)iv; break;
    case F_INT64: *(int64_t *)p = iv; break;
    case F_U64: *(uint64_t *)p = (uint64_t)iv; break;
    case F_DOUBLE: *(double *)p = dv; break;
    case F_FLOAT: *(float *)p = (float)dv; break;
    case F_STR: *(const char **)p = sv; break;
    case F_CHOICE: *(int *)p = (int)iv; break;
    }
}

static gt_status read_key(gt_config *cfg, gt_options *o, const key_desc *k) {
    if (k->only_if_given && !gt_config_has(cfg, k->section, k->key)) return GT_OK;
    char buf[256];
    const char *def = k->def;
    if (k->computed) {
        k->computed(o, buf, sizeof buf);
        def = buf;
    }
    long iv = 0;
    double dv = 0;
    const char *sv = NULL;
    int choice = 0, b = 0;
    switch (k->type) {
    case K_INT: {
        double d;
        GT_ASSERT(gt_parse_double(def, &d), "[%s] %s: bad default %s", k->section, k->key, def);
        GT_TRY(gt_config_int(cfg, k->section, k->key, (long)d, (long)k->min, (long)k->max, &iv));
        break;
    }
    case K_FLOAT: {
        double d;
        GT_ASSERT(gt_parse_double(def, &d), "[%s] %s: bad default %s", k->section, k->key, def);
        GT_TRY(gt_config_float(cfg, k->section, k->key, d, k->min, k->max, &dv));
        break;
    }
    case K_POSITIVE: {
        double d;
        GT_ASSERT(gt_parse_double(def, &d), "[%s] %s: bad default %s", k->section, k->key, def);
        GT_TRY(gt_config_positive(cfg, k->section, k->key, d, k->max, &dv));
        break;
    }
    case K_BOOL:
        GT_TRY(gt_config_bool(cfg, k->section, k->key, gt_parse_bool(def) == 1, &b));
        iv = b;
        break;
    case K_CHOICE:
        GT_TRY(gt_config_choice(cfg, k->section, k->key, def, k->choices, &choice));
        iv = choice;
        break;
    case K_STRING:
        GT_TRY(gt_config_str(cfg, k->section, k->key, def, &sv));
        break;
    }
    store(o, k, iv, dv, sv);
    return GT_OK;
}

/* ---- networks ---------------------------------------------------------------- */

typedef struct {
    long num;
    const char *key;
} layer_key;

static int cmp_layer_key(const void *a, const void *b) {
    long x = ((const layer_key *)a)->num, y = ((const layer_key *)b)->num;
    return (x > y) - (x < y);
}

/* Network section `section`: its keys layer1, layer2, ... in number order
 * (gaps allowed), each a layer line. Other keys are left to the unknown-key
 * check. */
static gt_status read_net(gt_config *cfg, const char *section, gt_net_opts *n) {
    int nk = gt_config_keys(cfg, section, NULL, 0);
    const char **names = gt_alloc((size_t)(nk + 1) * sizeof *names);
    gt_config_keys(cfg, section, names, nk);
    layer_key *lk = gt_alloc((size_t)(nk + 1) * sizeof *lk);
    int nl = 0;
    gt_status st = GT_OK;
    for (int i = 0; i < nk && !st; i++) {
        const char *k = names[i];
        if (strncmp(k, "layer", 5) != 0 || !k[5] || strspn(k + 5, "0123456789") != strlen(k + 5)) continue;
        errno = 0;
        long num = strtol(k + 5, NULL, 10);
        if (errno || num < 1 || num > 1000000)
            st = GT_ERROR("%s: [%s] %s: layer numbers are positive integers: layer1, layer2, ...",
                          gt_config_where(cfg, section, k), section, k);
        for (int j = 0; j < nl && !st; j++)
            if (lk[j].num == num)
                st = GT_ERROR("%s: [%s] %s: layer number %ld is already given by %s (%s)",
                              gt_config_where(cfg, section, k), section, k, num, lk[j].key,
                              gt_config_where(cfg, section, lk[j].key));
        lk[nl].num = num;
        lk[nl++].key = k;
    }
    if (!st && nl == 0)
        st = GT_ERROR("%s: config section [%s] has no layers: expected keys layer1, layer2, ... such as \"layer1 = "
                      "dense out=256\"",
                      gt_config_origin(cfg), section);
    if (!st) {
        qsort(lk, (size_t)nl, sizeof *lk, cmp_layer_key);
        n->n_layers = nl;
        n->layers = gt_alloc(sizeof *n->layers * (size_t)nl);
        n->where = gt_alloc(sizeof *n->where * (size_t)nl);
    }
    for (int i = 0; i < nl && !st; i++) {
        const char *value;
        st = gt_config_str(cfg, section, lk[i].key, NULL, &value);
        if (st) break;
        char where[2048];
        snprintf(where, sizeof where, "%s: [%s] %s = \"%s\"", gt_config_where(cfg, section, lk[i].key), section,
                 lk[i].key, value);
        n->where[i] = gt_strdup(where);
        if (gt_layer_spec_parse(value, &n->layers[i]) != GT_OK)
            st = gt_error_at(__FILE__, __LINE__,
                             gt_config_from_command_line(cfg, section, lk[i].key) ? GT_ERR_USAGE : GT_ERR, "%s: %s",
                             where, gt_error_message());
    }
    gt_free(lk);
    gt_free(names);
    return st;
}

/* ---- the whole config ------------------------------------------------------------ */

static gt_status resolve(gt_config *cfg, const char *config_path, gt_options *o) {
    const char *base = strrchr(config_path, '/');
    base = base ? base + 1 : config_path;
    snprintf(o->dir_default, sizeof o->dir_default, "runs/%.*s", (int)strcspn(base, "."), base);
    o->dist.fail_rank = o->dist.perturb_rank = o->nan_rank = -1;
    o->nan_step = o->nan_times = 1;
    o->rollback_lr_factor = 0.5;
    o->max_rollbacks = 3;
    o->data.toy = GT_TOY_NONE;
    for (int i = 0; i < N_KEYS; i++) {
        const key_desc *k = &keys[i];
        if (k->applies && !k->applies(o)) continue;
        GT_TRY(read_key(cfg, o, k));
    }
    if (!o->dir[0])
        return gt_error_at(__FILE__, __LINE__, gt_config_from_command_line(cfg, "run", "dir") ? GT_ERR_USAGE : GT_ERR,
                           "%s: [run] dir is empty: give a directory", gt_config_where(cfg, "run", "dir"));
    /* Linux's PATH_MAX (4096 with the NUL) less room for the run's own files
     * (checkpoints/damaged/step-XXXXXXXX.h5, temporary names) */
    size_t dir_len = strlen(o->dir);
    if (dir_len > GT_RUN_DIR_MAX)
        return gt_error_at(__FILE__, __LINE__, gt_config_from_command_line(cfg, "run", "dir") ? GT_ERR_USAGE : GT_ERR,
                           "%s: [run] dir has %zu characters; at most %d are supported (the paths of the files in it "
                           "must stay under the system's limit of 4096): '%.60s...%s'",
                           gt_config_where(cfg, "run", "dir"), dir_len, GT_RUN_DIR_MAX, o->dir,
                           o->dir + dir_len - 60);
    if (o->steps == 0 && o->epochs == 0)
        return GT_ERROR("%s: set [train] steps or [train] epochs (both are 0)", gt_config_origin(cfg));
    if (o->steps > 0 && o->epochs > 0)
        return GT_ERROR("%s: set only one of [train] steps (%s) and [train] epochs (%s)", gt_config_origin(cfg),
                        gt_config_where(cfg, "train", "steps"), gt_config_where(cfg, "train", "epochs"));
    if (o->model.kind == GT_MODEL_GAN && o->batch % o->model.gan.pack != 0)
        return GT_ERROR("%s: [model] pack = %d must divide [train] batch_size = %d (%s): D judges packs of a rank's "
                        "batch",
                        gt_config_where(cfg, "model", "pack"), o->model.gan.pack, o->batch,
                        gt_config_where(cfg, "train", "batch_size"));
    if (o->rollback && o->ckpt_every == 0)
        return GT_ERROR("%s: [train] on_divergence = rollback needs checkpoints to go back to, but [checkpoint] every "
                        "= 0 (%s)",
                        gt_config_where(cfg, "train", "on_divergence"), gt_config_where(cfg, "checkpoint", "every"));
    if (o->data.cache == GT_CACHE_SHARD && !o->data.shuffle_local)
        return GT_ERROR("%s: [data] cache = shard needs shuffle = local: with the global shuffle a rank's examples "
                        "change every epoch, so over a run its shard is the whole file",
                        gt_config_where(cfg, "data", "cache"));
    if (o->eval_every > 0 && o->data.kind == GT_DATA_HDF5)
        return GT_ERROR("%s: [eval] every = %ld needs the data in memory, but [data] kind = hdf5 (%s) is read on "
                        "demand: set eval.every = 0 (evaluation during training works with fashion-mnist and toy data)",
                        gt_config_where(cfg, "eval", "every"), o->eval_every, gt_config_where(cfg, "data", "kind"));
    if (o->model.binarize && o->model.recon != GT_RECON_BERNOULLI)
        return GT_ERROR("%s: [model] binarize = true needs recon = bernoulli", gt_config_where(cfg, "model", "binarize"));
    /* every network shares [optim] but its own learning rate */
    const gt_model_kind_info *info = gt_model_kind_get(o->model.kind);
    for (int n = 1; n < info->n_nets; n++) {
        double lr = o->model.net[n].optim.lr;
        o->model.net[n].optim = o->model.net[0].optim;
        o->model.net[n].optim.lr = lr;
    }
    for (int n = 0; n < info->n_nets; n++) GT_TRY(read_net(cfg, info->net_names[n], &o->model.net[n]));
    GT_TRY(gt_config_check_unused(cfg));
    o->text = gt_config_text(cfg);
    return GT_OK;
}

gt_status gt_options_from_config(gt_config *cfg, const char *config_path, gt_options *o) {
    memset(o, 0, sizeof *o);
    gt_status st = resolve(cfg, config_path, o);
    if (st) {
        gt_options_free(o);
        return st;
    }
    return GT_OK;
}

gt_status gt_options_data_eval(gt_config *cfg, gt_options *o) {
    static const char *const eval_keys[] = {"eval.classifier", "eval.cache", "eval.seed", "run.threads", NULL};
    memset(o, 0, sizeof *o);
    o->data.toy = GT_TOY_NONE;
    o->model.kind = GT_MODEL_CLASSIFIER; /* no model: nothing model-specific applies */
    gt_status st = GT_OK;
    for (int i = 0; i < N_KEYS && !st; i++) {
        const key_desc *k = &keys[i];
        char full[128];
        snprintf(full, sizeof full, "%s.%s", k->section, k->key);
        int wanted = !strcmp(k->section, "data");
        for (int j = 0; eval_keys[j] && !wanted; j++) wanted = !strcmp(full, eval_keys[j]);
        if (!wanted || (k->applies && k->applies(o) == 0 && strcmp(k->section, "eval"))) continue;
        st = read_key(cfg, o, k);
    }
    if (!st) st = gt_config_check_unused(cfg);
    if (!st) o->text = gt_config_text(cfg);
    if (st) gt_options_free(o);
    return st;
}

void gt_options_free(gt_options *o) {
    gt_model_opts_free(&o->model);
    gt_free(o->text);
    o->text = NULL;
}

/* ---- documentation from the tables ------------------------------------------------ */

/* Text for a markdown table cell: | escaped, < and > as entities. */
static void md_text(FILE *out, const char *s) {
    for (; *s; s++) {
        if (*s == '|') fputs("\\|", out);
        else if (*s == '<') fputs("&lt;", out);
        else if (*s == '>') fputs("&gt;", out);
        else fputc(*s, out);
    }
}

void gt_options_print_keys(FILE *out, int markdown) {
    if (markdown) fprintf(out, "| section | key | default | meaning |\n| --- | --- | --- | --- |\n");
    const char *section = "";
    for (int i = 0; i < N_KEYS; i++) {
        const key_desc *k = &keys[i];
        char def[512] = "";
        if (k->type == K_CHOICE) {
            size_t n = 0;
            for (int c = 0; k->choices[c]; c++)
                n += (size_t)snprintf(def + n, sizeof def - n, "%s%s", c ? " \\| " : "", k->choices[c]);
            if (!markdown)
                for (char *p = def; (p = strstr(p, "\\|")); p++) memmove(p, p + 1, strlen(p));
        }
        char dflt[256];
        snprintf(dflt, sizeof dflt, "%s", k->def ? (k->def[0] ? k->def : "(none)") : "(required)");
        if (markdown) {
            fprintf(out, "| `[%s]` | `%s` | `%s` | ", k->section, k->key, dflt);
            md_text(out, k->help);
            fprintf(out, "%s%s |\n", def[0] ? ": " : "", def);
            continue;
        }
        if (strcmp(section, k->section)) fprintf(out, "  [%s]\n", section = k->section);
        fprintf(out, "    %-16s [%s] %s%s%s\n", k->key, dflt, k->help, def[0] ? ": " : "", def);
    }
    if (markdown)
        fprintf(out, "| `[generator]` `[discriminator]` `[encoder]` `[decoder]` `[classifier]` | `layer1`, `layer2`, ... "
                     "| (required) | one layer per key, `KIND opt=value ...`, in key-number order (gentrain help layers) |\n");
    else
        fprintf(out, "  [generator] [discriminator] | [encoder] [decoder] | [classifier]\n"
                     "    layer1, layer2, ...  one layer per key, \"KIND opt=value ...\" (gentrain help layers)\n");
}

static void opt_range(const gt_layer_opt *o, char *buf, size_t cap) {
    switch (o->type) {
    case GT_OPT_BOOL: snprintf(buf, cap, "true\\|false"); break;
    case GT_OPT_SHAPE: snprintf(buf, cap, "CxHxW or N"); break;
    case GT_OPT_INT: snprintf(buf, cap, "integer in [%.0f, %.0f]", o->min, o->max); break;
    case GT_OPT_FLOAT:
        snprintf(buf, cap, "%s%g, %g%s", o->min_open ? "(" : "[", o->min, o->max, o->max_open ? ")" : "]");
        break;
    }
}

void gt_options_print_layers(FILE *out, int markdown) {
    if (markdown) fprintf(out, "| kind | options [default] | PyTorch equivalent | what it does |\n| --- | --- | --- | --- |\n");
    for (int i = 0; gt_layer_kinds[i]; i++) {
        const gt_layer_kind *k = gt_layer_kinds[i];
        char opts[1024] = "";
        size_t n = 0;
        for (int j = 0; j < k->n_opts; j++) {
            const gt_layer_opt *o = &k->opts[j];
            char range[96];
            opt_range(o, range, sizeof range);
            if (!markdown)
                for (char *p = range; (p = strstr(p, "\\|")); p++) memmove(p, p + 1, strlen(p));
            n += (size_t)snprintf(opts + n, sizeof opts - n, "%s%s%s [%s]", j ? (markdown ? "; " : "\n      ") : "",
                                  markdown ? "`" : "", o->name, o->def ? o->def : "required");
            if (markdown) n += (size_t)snprintf(opts + n, sizeof opts - n, "` %s: %s", range, o->help);
            else n += (size_t)snprintf(opts + n, sizeof opts - n, " %s: %s", range, o->help);
        }
        if (markdown)
            fprintf(out, "| `%s` | %s | %s | %s |\n", k->name, n ? opts : "", k->torch, k->help);
        else
            fprintf(out, "  %-10s %s (%s)\n      %s\n", k->name, k->help, k->torch, n ? opts : "(no options)");
    }
}

/* {"kind": {"option": {"type": "int", "default": "1" or null}, ...}, ...} */
static void print_layers_json(FILE *out) {
    static const char *const types[] = {"int", "bool", "float", "shape"};
    fprintf(out, "{");
    for (int i = 0; gt_layer_kinds[i]; i++) {
        const gt_layer_kind *k = gt_layer_kinds[i];
        fprintf(out, "%s\n  \"%s\": {", i ? "," : "", k->name);
        for (int j = 0; j < k->n_opts; j++) {
            const gt_layer_opt *o = &k->opts[j];
            fprintf(out, "%s\"%s\": {\"type\": \"%s\", \"default\": ", j ? ", " : "", o->name, types[o->type]);
            if (o->def) fprintf(out, "\"%s\"}", o->def);
            else fprintf(out, "null}");
        }
        fprintf(out, "}");
    }
    fprintf(out, "\n}\n");
}

static const char help_usage[] =
    "usage: gentrain help keys|layers [--markdown|--json]\n"
    "\n"
    "  keys     every config key: section, name, default and meaning\n"
    "  layers   every layer kind with its options (the registry of src/nn/layers/)\n"
    "  --markdown  as the README's tables\n"
    "  --json      (layers) kinds and options as JSON, for tools\n";

gt_status gt_cmd_help(int argc, char **argv) {
    int markdown = argc == 3 && !strcmp(argv[2], "--markdown"), json = argc == 3 && !strcmp(argv[2], "--json");
    if (argc < 2 || argc > 3 || (argc == 3 && !markdown && !json) || (json && strcmp(argv[1], "layers"))) {
        fputs(help_usage, stderr);
        return GT_USAGE_ERROR("gentrain help: expected keys or layers");
    }
    if (!strcmp(argv[1], "keys"))
        gt_options_print_keys(stdout, markdown);
    else if (!strcmp(argv[1], "layers") && json)
        print_layers_json(stdout);
    else if (!strcmp(argv[1], "layers"))
        gt_options_print_layers(stdout, markdown);
    else {
        fputs(help_usage, stderr);
        return GT_USAGE_ERROR("gentrain help: unknown topic '%s' (keys or layers)", argv[1]);
    }
    return GT_OK;
}
