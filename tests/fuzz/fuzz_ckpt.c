/* libFuzzer target: the checkpoint reader on arbitrary bytes (tests/fuzz.sh,
 * tools/fuzz). The bytes are written to a temporary file, which goes through
 * `gentrain inspect` (gt_cmd_inspect, which reads any HDF5 file, damaged or
 * not, and checks a checkpoint's structure against the model its stored
 * config describes; its output goes to /dev/null) and through what resume
 * and `gentrain sample` do with a checkpoint: gt_ckpt_verify,
 * gt_ckpt_read_info, gt_ckpt_check_model against a small fixed model (the one
 * of tests/fuzz/ckpt.ini, whose checkpoint seeds the corpus), and
 * gt_ckpt_load into it. Errors are values and are cleared; a crash, a
 * sanitizer report, a leak (libhdf5's own are suppressed, see
 * tests/lsan-hdf5.supp), a hang or a panic is a finding. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gentrain/app.h"
#include "gentrain/checkpoint.h"

/* tests/fuzz/ckpt.ini, the model of the seed checkpoint */
static const char config_text[] =
    "[run]\nseed = 7\n[data]\nkind = toy\nn = 256\nn_test = 64\n[model]\ntype = vae\nz_dim = 2\nrecon = gaussian\n"
    "[encoder]\nlayer1 = dense out=8\nlayer2 = relu\nlayer3 = dense out=4\n"
    "[decoder]\nlayer1 = dense out=8\nlayer2 = relu\nlayer3 = dense out=2\n"
    "[train]\nsteps = 1\nbatch_size = 8\n";

static char path[64], dir_made[64];
static gt_model *model;

/* the temporary directory goes when the fuzzer exits normally (a crash
 * leaves it, with the input that crashed) */
static void remove_dir(void) {
    unlink(path);
    rmdir(dir_made);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    /* in memory if it can be: the files are written for every input */
    char dir[] = "/dev/shm/gentrain-fuzz-ckpt.XXXXXX", alt[] = "/tmp/gentrain-fuzz-ckpt.XXXXXX";
    char *d = mkdtemp(dir) ? dir : mkdtemp(alt);
    if (!d) abort();
    snprintf(path, sizeof path, "%s/step-00000001.h5", d);
    snprintf(dir_made, sizeof dir_made, "%s", d);
    atexit(remove_dir);
    if (!freopen("/dev/null", "w", stdout)) abort(); /* inspect's listing */
    static gt_config *cfg;
    static gt_options o;
    if (gt_config_parse(config_text, "ckpt.ini", &cfg) || gt_options_from_config(cfg, "ckpt.ini", &o) ||
        gt_model_build(&o.model, (gt_shape){2, 1, 1}, 1, 8, o.seed, &model)) {
        fprintf(stderr, "fuzz_ckpt: the fixed model does not build: %s\n", gt_error_message());
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) abort();
    char cmd[] = "inspect", *argv[] = {cmd, path, NULL};
    (void)gt_cmd_inspect(2, argv);
    gt_error_clear();
    if (gt_ckpt_verify(path) == GT_OK) {
        gt_ckpt_info info;
        char *text = NULL, *kind = NULL;
        if (gt_ckpt_read_info(path, &info, &text, &kind) == GT_OK) {
            gt_free(text);
            gt_free(kind);
        }
        gt_error_clear();
        if (gt_ckpt_check_model(path, model) == GT_OK) (void)gt_ckpt_load(path, model);
    }
    gt_error_clear();
    return 0;
}
