/* gentrain sample CHECKPOINT: a PNG grid of samples from a checkpoint's
 * generator (GAN) or decoder (VAE), from the same fixed latent batch that
 * training stores in samples.h5 (/noise) unless another seed is given. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gentrain/app.h"
#include "gentrain/checkpoint.h"
#include "gentrain/config.h"
#include "gentrain/core.h"
#include "gentrain/model.h"
#include "gentrain/run_io.h"

static const char sample_usage[] =
    "usage: gentrain sample CHECKPOINT [--n 64] [--out grid.png] [--seed S]\n"
    "\n"
    "Writes a PNG of samples from a checkpoint (run.dir/checkpoints/step-XXXXXXXX.h5):\n"
    "G(z) for a GAN, the decoder's mean for a VAE, in eval mode, on n latent vectors.\n"
    "The checkpoint is verified first (checksums); a damaged one is an error.\n"
    "\n"
    "  --n N       how many samples (1..4096) [64]\n"
    "  --out FILE  the PNG to write [grid.png]: images in a grid, mapped from the\n"
    "              data range (GAN [-1,1], VAE [0,1]) to 0..255; 2-D toy data as a\n"
    "              scatter plot over the mixture's centres (red)\n"
    "  --seed S    seed of the latent batch [the run's seed: the same latents as\n"
    "              samples.h5 /noise, so the grid matches training's samples]\n"
    "\n"
    "The latent row i is Philox normal(seed, FIXED_NOISE, step 0, index i): the first\n"
    "rows do not depend on --n.\n";

static long parse_long(const char *opt, const char *v, long lo, long hi) {
    char *end;
    errno = 0;
    long x = strtol(v ? v : "", &end, 10);
    if (!v || !*v || *end || errno || x < lo || x > hi) {
        fprintf(stderr, "gentrain sample: error: %s needs an integer in %ld..%ld, got '%s'\n", opt, lo, hi,
                v ? v : "(nothing)");
        exit(GT_EXIT_USAGE);
    }
    return x;
}

int gt_cmd_sample(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(sample_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? GT_EXIT_USAGE : 0;
    }
    const char *path = NULL, *out = "grid.png";
    long n = 64;
    int have_seed = 0;
    uint64_t seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(sample_usage, stdout);
            return 0;
        } else if (!strcmp(a, "--n")) {
            n = parse_long("--n", i + 1 < argc ? argv[++i] : NULL, 1, 4096);
        } else if (!strcmp(a, "--out")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "gentrain sample: error: --out needs a file name\n");
                return GT_EXIT_USAGE;
            }
            out = argv[++i];
        } else if (!strcmp(a, "--seed")) {
            seed = (uint64_t)parse_long("--seed", i + 1 < argc ? argv[++i] : NULL, 0, (long)(~0ul >> 1));
            have_seed = 1;
        } else if (a[0] == '-' || path) {
            fprintf(stderr, "gentrain sample: error: unexpected argument '%s'\n\n%s", a, sample_usage);
            return GT_EXIT_USAGE;
        } else {
            path = a;
        }
    }
    if (!path) {
        fprintf(stderr, "gentrain sample: error: no CHECKPOINT given\n\n%s", sample_usage);
        return GT_EXIT_USAGE;
    }
    char why[2048];
    if (gt_ckpt_verify(path, why, sizeof why) != 0) gt_fatal("cannot sample from %s: %s", path, why);
    gt_ckpt_info info;
    char *text, *kind;
    gt_ckpt_read_info(path, &info, &text, &kind);
    gt_config *cfg = gt_config_parse(text, path);
    int max_batch = n < 256 ? (int)n : 256;
    gt_model *m = gt_model_build(cfg, info.data_shape, info.n_classes > 0 ? info.n_classes : 1, max_batch, info.seed);
    if (m->kind == GT_MODEL_CLASSIFIER) gt_fatal("%s holds a classifier: it has no generator to sample from", path);
    gt_ckpt_load(path, m);
    if (!have_seed) seed = info.seed;
    float *z = gt_alloc_floats((size_t)n * m->z_dim);
    gt_samples_noise(seed, (int)n, m->z_dim, z);
    size_t size = gt_shape_size(info.data_shape);
    float *x = gt_alloc_floats((size_t)n * size);
    gt_model_generate(m, z, (int)n, x);
    int points = 0, toy = -1;
    if (gt_config_has(cfg, "data", "kind") && !strcmp(gt_config_str(cfg, "data", "kind", NULL), "toy")) {
        points = 1;
        static const char *const toys[] = {"ring8", "grid25", NULL};
        if (gt_config_has(cfg, "data", "toy")) toy = gt_config_choice(cfg, "data", "toy", "ring8", toys);
    }
    if (gt_samples_png(out, x, (int)n, info.data_shape, gt_model_pixel_scale(m), points, toy, why, sizeof why) != 0)
        gt_fatal("%s", why);
    printf("%s: %ld samples of the %s at step %" PRId64 " (latent seed %" PRIu64 ") -> %s\n", path, n, kind, info.step,
           seed, out);
    gt_free(z);
    gt_free(x);
    gt_free(text);
    gt_free(kind);
    gt_model_free(m);
    gt_config_free(cfg);
    return 0;
}
