/* gentrain sample CHECKPOINT: a PNG grid of samples from a checkpoint's
 * generator (GAN; its EMA generator if it has one, unless --live) or decoder
 * (VAE), from the same fixed latent batch that training stores in samples.h5
 * (/noise) unless another seed is given. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gentrain/app.h"
#include "gentrain/checkpoint.h"

static const char sample_usage[] =
    "usage: gentrain sample CHECKPOINT [--n 64] [--out grid.png] [--seed S] [--live]\n"
    "\n"
    "Writes a PNG of samples from a checkpoint (run.dir/checkpoints/step-XXXXXXXX.h5):\n"
    "G(z) for a GAN, the decoder's mean for a VAE, in eval mode, on n latent vectors.\n"
    "The checkpoint is verified first (checksums); a damaged one is an error.\n"
    "\n"
    "  --n N       how many samples (1..4096) [64]\n"
    "  --out FILE  the PNG to write [grid.png] (written atomically; never over the\n"
    "              checkpoint or any file that is not a PNG): images in a grid,\n"
    "              mapped from the data range (GAN [-1,1], VAE [0,1]) to 0..255;\n"
    "              2-D toy data as a scatter plot over the mixture's centres (red)\n"
    "  --seed S    seed of the latent batch [the run's seed: the same latents as\n"
    "              samples.h5 /noise, so the grid matches training's samples]\n"
    "  --live      a GAN trained with [model] g_ema: the live generator instead of\n"
    "              the EMA generator (which is the default, as in samples.h5)\n"
    "\n"
    "The latent row i is Philox normal(seed, FIXED_NOISE, step 0, index i): the first\n"
    "rows do not depend on --n.\n";

static gt_status parse_long(const char *opt, const char *v, long lo, long hi, long *out) {
    if (!v || !gt_parse_long(v, out) || *out < lo || *out > hi)
        return GT_USAGE_ERROR("gentrain sample: %s needs an integer in %ld..%ld, got '%s'", opt, lo, hi,
                              v ? v : "(nothing)");
    return GT_OK;
}

/* 1 if a and b name the same existing file. */
static int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* 1 if path exists and is something a PNG must not replace: a directory,
 * or a non-empty file that is not a PNG (a checkpoint, a config, ...). */
static int not_a_png(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0) return 0;
    if (!S_ISREG(sb.st_mode)) return 1;
    if (sb.st_size == 0) return 0;
    unsigned char sig[8] = {0};
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(sig, 1, sizeof sig, f) : 0;
    if (f) fclose(f);
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    return got != sizeof sig || memcmp(sig, png_sig, sizeof sig) != 0;
}

/* The model of a checkpoint, loaded; its resolved options in *o (free both). */
static gt_status load_model(const char *path, int max_batch, gt_config **cfg, gt_options *o, gt_ckpt_info *info,
                            gt_model **m) {
    char *text = NULL;
    if (gt_ckpt_verify(path)) return GT_ERROR("cannot sample from %s: %s", path, gt_error_message());
    GT_TRY(gt_ckpt_read_info(path, info, &text, NULL));
    gt_status st = gt_config_parse(text, path, cfg);
    gt_free(text);
    GT_TRY(st);
    GT_TRY(gt_options_from_config(*cfg, path, o));
    GT_TRY(gt_model_build(&o->model, info->data_shape, info->n_classes > 0 ? info->n_classes : 1, max_batch, info->seed,
                          m));
    return gt_ckpt_load(path, *m);
}

gt_status gt_cmd_sample(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(sample_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? GT_USAGE_ERROR("gentrain sample: no CHECKPOINT given") : GT_OK;
    }
    const char *path = NULL, *out = "grid.png";
    long n = 64, seed_arg = -1;
    int live = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(sample_usage, stdout);
            return GT_OK;
        } else if (!strcmp(a, "--n")) {
            GT_TRY(parse_long("--n", i + 1 < argc ? argv[++i] : NULL, 1, 4096, &n));
        } else if (!strcmp(a, "--out")) {
            if (i + 1 >= argc) return GT_USAGE_ERROR("gentrain sample: --out needs a file name");
            out = argv[++i];
        } else if (!strcmp(a, "--live")) {
            live = 1;
        } else if (!strcmp(a, "--seed")) {
            GT_TRY(parse_long("--seed", i + 1 < argc ? argv[++i] : NULL, 0, (long)(~0ul >> 1), &seed_arg));
        } else if (a[0] == '-' || path) {
            fprintf(stderr, "%s", sample_usage);
            return GT_USAGE_ERROR("gentrain sample: unexpected argument '%s'", a);
        } else {
            path = a;
        }
    }
    if (!path) {
        fprintf(stderr, "%s", sample_usage);
        return GT_USAGE_ERROR("gentrain sample: no CHECKPOINT given");
    }
    if (!strcmp(path, out) || same_file(path, out))
        return GT_USAGE_ERROR("gentrain sample: --out %s is the checkpoint itself: choose another file", out);
    if (not_a_png(out))
        return GT_USAGE_ERROR("gentrain sample: --out %s exists and is not a PNG picture: it is left as it is; choose "
                              "another file",
                              out);
    gt_config *cfg = NULL;
    gt_options o;
    memset(&o, 0, sizeof o);
    gt_ckpt_info info;
    gt_model *m = NULL;
    gt_status st = load_model(path, n < 256 ? (int)n : 256, &cfg, &o, &info, &m);
    if (!st && !gt_model_generates(m))
        st = GT_ERROR("%s holds a %s: it has no generator to sample from", path, gt_model_kind_name(m->kind));
    if (!st) {
        uint64_t seed = seed_arg >= 0 ? (uint64_t)seed_arg : info.seed;
        float *z = gt_alloc_floats((size_t)n * m->z_dim);
        gt_samples_noise(seed, (int)n, m->z_dim, z);
        float *x = gt_alloc_floats((size_t)n * gt_shape_size(info.data_shape));
        int ema = gt_model_has_ema(m) && !live;
        if (ema) gt_model_swap_ema(m);
        gt_model_generate(m, z, (int)n, x);
        if (ema) gt_model_swap_ema(m);
        int points = o.data.kind == GT_DATA_TOY;
        st = gt_samples_png(out, x, (int)n, info.data_shape, gt_model_pixel_scale(m), points, o.data.toy);
        if (!st)
            printf("%s: %ld samples of the %s%s at step %" PRId64 " (latent seed %" PRIu64 ") -> %s\n", path, n,
                   gt_model_kind_name(m->kind),
                   ema ? " (EMA generator)" : gt_model_has_ema(m) ? " (live generator)" : "", info.step, seed, out);
        gt_free(z);
        gt_free(x);
    }
    gt_model_free(m);
    gt_options_free(&o);
    gt_config_free(cfg);
    return st;
}
