/* tool_mixture RUN_DIR [--step N] [--min-count K]
 *
 * Mode coverage of a 2-D toy GAN or VAE run (src/eval/mixture.c, the GAN
 * literature's measures): reads RUN_DIR/config.ini (the mixture and its
 * standard deviation) and the samples of step N (default: the last one) from
 * RUN_DIR/samples.h5, and prints for them (and for the live generator's, if
 * the run has an EMA generator) one line
 *   step S [generator]: N samples, modes covered M of K (>= MIN high-quality samples each),
 *   high-quality share H, reverse KL R
 * A sample is high quality within 3 standard deviations of its nearest
 * centre. Exit status 2 on bad usage, 1 if the files do not fit. */
#include "gentrain/app.h"
#include "gentrain/config.h"
#include "gentrain/eval.h"
#include "gentrain/io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void must(gt_status st) {
    if (st) gt_exit_error(st);
}

static void report(gt_h5 *f, const char *name, const char *label, const float *centres, int modes, double std,
                   long min_count) {
    int rank, dims[GT_H5_MAX_RANK];
    must(gt_h5_shape(f, name, &rank, dims));
    if (rank != 4 || dims[1] * dims[2] * dims[3] != 2) {
        fprintf(stderr, "tool_mixture: %s is not a set of 2-D points\n", name);
        exit(1);
    }
    float *x = gt_alloc_floats((size_t)dims[0] * 2);
    must(gt_h5_read_floats(f, name, x, 4, dims));
    int64_t *counts = gt_alloc(sizeof(int64_t) * GT_MIXTURE_COUNTS_LEN(modes));
    gt_mixture_count(counts, x, dims[0], centres, modes, std);
    gt_mixture_stats st = gt_mixture_summary(counts, modes, min_count);
    printf("%s%s: %d samples, modes covered %d of %d (>= %ld high-quality samples each), high-quality share %.3f, "
           "reverse KL %.3f\n",
           name, label, dims[0], st.modes_covered, st.modes, min_count, st.high_quality_share, st.reverse_kl);
    gt_free(counts);
    gt_free(x);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: tool_mixture RUN_DIR [--step N] [--min-count K]\n");
        return 2;
    }
    long step = -1, min_count = 1;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--step")) step = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--min-count")) min_count = atol(argv[i + 1]);
        else {
            fprintf(stderr, "tool_mixture: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/config.ini", argv[1]);
    gt_config *cfg;
    gt_options o;
    must(gt_config_load(path, &cfg));
    must(gt_options_from_config(cfg, path, &o));
    if (o.data.kind != GT_DATA_TOY) {
        fprintf(stderr, "tool_mixture: %s is not a toy-data run\n", argv[1]);
        return 1;
    }
    float centres[2 * 64];
    int modes = gt_toy_centres(o.data.toy, centres, 64);
    snprintf(path, sizeof path, "%s/samples.h5", argv[1]);
    gt_h5 *f;
    must(gt_h5_open(path, 0, &f));
    char name[64];
    if (step < 0) { /* the last step */
        char **names;
        int n;
        must(gt_h5_list(f, NULL, 0, &names, &n));
        for (int i = 0; i < n; i++)
            if (!strncmp(names[i], "step-", 5) && atol(names[i] + 5) > step) step = atol(names[i] + 5);
        gt_h5_free_names(names, n);
    }
    snprintf(name, sizeof name, "step-%08ld", step);
    int yes;
    must(gt_h5_exists(f, name, &yes));
    if (!yes) {
        fprintf(stderr, "tool_mixture: %s has no /%s\n", path, name);
        return 1;
    }
    must(gt_h5_exists(f, "live", &yes));
    report(f, name, yes ? " (EMA generator)" : "", centres, modes, o.data.std, min_count);
    if (yes) {
        snprintf(name, sizeof name, "live/step-%08ld", step);
        report(f, name, "", centres, modes, o.data.std, min_count);
    }
    must(gt_h5_close(f));
    gt_options_free(&o);
    gt_config_free(cfg);
    gt_h5_library_close();
    return 0;
}
