/* gentrain inspect FILE.h5: what a checkpoint, samples or metrics file (or
 * any HDF5 file) holds: root attributes, every dataset with its type, shape
 * and checksum, and whether it reads back (checksums verified); for a
 * checkpoint also whether it verifies and holds every tensor its model needs. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "gentrain/app.h"
#include "gentrain/checkpoint.h"

static const char inspect_usage[] =
    "usage: gentrain inspect FILE.h5\n"
    "\n"
    "Prints what an HDF5 file holds: its root attributes (a checkpoint's step, epoch,\n"
    "world_size, seed, model and config), then every dataset with its type, shape and\n"
    "checksum, reading each back to verify its Fletcher32 checksum. Works on gentrain\n"
    "checkpoints, samples.h5, metrics.h5 and any other HDF5 file; a checkpoint is also\n"
    "checked to hold exactly the tensors of the model its config describes.\n"
    "Exit status: 0 everything reads back (and a checkpoint verifies), 1 otherwise.\n";

static gt_status print_attrs(gt_h5 *f, const char *obj, const char *indent, int inline_list) {
    char **names;
    int n;
    GT_TRY(gt_h5_attr_names(f, obj, &names, &n));
    gt_status st = GT_OK;
    for (int i = 0; i < n && !st; i++) {
        char t;
        if ((st = gt_h5_attr_type(f, obj, names[i], &t))) break;
        if (inline_list) printf(" %s=", names[i]);
        else printf("%s%s = ", indent, names[i]);
        int64_t iv;
        double dv;
        char *s = NULL;
        if (t == 'i' && !(st = gt_h5_get_attr_int64(f, obj, names[i], &iv))) {
            printf("%" PRId64, iv);
        } else if (t == 'f' && !(st = gt_h5_get_attr_double(f, obj, names[i], &dv))) {
            printf("%.9g", dv);
        } else if (t == 's' && !(st = gt_h5_get_attr_str(f, obj, names[i], &s))) {
            if (strchr(s, '\n') && !inline_list) {
                size_t lines = 1;
                for (const char *q = s; *q; q++) lines += *q == '\n' && q[1];
                printf("(%zu lines)\n", lines);
                for (char *line = s, *nl; *line; line = nl + 1) {
                    nl = strchr(line, '\n');
                    if (!nl) {
                        printf("%s    | %s\n", indent, line);
                        break;
                    }
                    printf("%s    | %.*s\n", indent, (int)(nl - line), line);
                }
                gt_free(s);
                continue;
            }
            printf("\"%s\"", s);
            gt_free(s);
        } else if (t == '?') {
            printf("(not a single number or string)");
        }
        if (!inline_list) printf("\n");
    }
    gt_h5_free_names(names, n);
    return st;
}

/* Prints the file; *damaged counts datasets that do not read back. */
static gt_status print_file(gt_h5 *f, const char *path, char **format, int *damaged) {
    int yes;
    GT_TRY(gt_h5_attr_is_string(f, NULL, "format", &yes));
    if (yes) GT_TRY(gt_h5_get_attr_str(f, NULL, "format", format));
    const char *fmt = *format;
    const char *what = !fmt                                 ? "an HDF5 file not written by gentrain"
                       : !strcmp(fmt, GT_CKPT_FORMAT)       ? "a gentrain checkpoint"
                       : !strcmp(fmt, "gentrain-samples")   ? "gentrain samples"
                       : !strcmp(fmt, "gentrain-metrics")   ? "gentrain metrics"
                       : !strcmp(fmt, "gentrain-eval-features") ? "gentrain evaluation features (a cache)"
                       : !strcmp(fmt, "gentrain-dataset")   ? "a gentrain dataset (`tools/make-dataset verify` checks its SHA-256)"
                                                            : "an HDF5 file of an unknown format";
    printf("%s: %s\n", path, what);
    printf("attributes:\n");
    GT_TRY(print_attrs(f, NULL, "  ", 0));
    char **names;
    int n;
    GT_TRY(gt_h5_list(f, NULL, 1, &names, &n));
    printf("datasets (%d):\n", n);
    gt_status st = GT_OK;
    for (int i = 0; i < n && !st; i++) {
        char type[512], shape[256] = "[";
        int rank, dims[GT_H5_MAX_RANK], sum;
        if ((st = gt_h5_shape(f, names[i], &rank, dims)) || (st = gt_h5_dtype(f, names[i], type, sizeof type)) ||
            (st = gt_h5_checksummed(f, names[i], &sum)))
            break;
        size_t used = 1;
        for (int d = 0; d < rank; d++) used += (size_t)snprintf(shape + used, sizeof shape - used, "%s%d", d ? "," : "", dims[d]);
        snprintf(shape + used, sizeof shape - used, "]");
        double numel = 1;
        for (int d = 0; d < rank; d++) numel *= dims[d];
        if (numel > (double)(1 << 28)) { /* a dataset's images: not read whole into memory */
            printf("  /%-44s %-8s %-16s %s", names[i], type, shape, "not read back (over 2^28 values)");
            if ((st = print_attrs(f, names[i], "", 1))) break;
            printf("\n");
            continue;
        }
        int ok = gt_h5_verify(f, names[i]) == GT_OK;
        printf("  /%-44s %-8s %-16s %s", names[i], type, shape,
               ok ? (sum ? "checksum ok" : "read ok (no checksum)") : "DAMAGED");
        if ((st = print_attrs(f, names[i], "", 1))) break;
        printf("\n");
        if (!ok) {
            printf("    %s\n", gt_error_message());
            gt_error_clear();
            (*damaged)++;
        }
    }
    gt_h5_free_names(names, n);
    return st;
}

/* A checkpoint's model, built from its own config, against its tensors. */
static gt_status check_structure(const char *path) {
    gt_ckpt_info info;
    char *text = NULL;
    GT_TRY(gt_ckpt_read_info(path, &info, &text, NULL));
    gt_config *cfg = NULL;
    gt_options o;
    memset(&o, 0, sizeof o);
    gt_model *m = NULL;
    gt_status st = gt_config_parse(text, path, &cfg);
    if (!st) st = gt_options_from_config(cfg, path, &o);
    if (!st)
        st = gt_model_build(&o.model, info.data_shape, info.n_classes > 0 ? info.n_classes : 1, 1, info.seed, &m);
    if (!st) st = gt_ckpt_check_model(path, m);
    gt_model_free(m);
    gt_options_free(&o);
    gt_config_free(cfg);
    gt_free(text);
    return st;
}

gt_status gt_cmd_inspect(int argc, char **argv) {
    if (argc != 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        int help = argc == 2;
        fputs(inspect_usage, help ? stdout : stderr);
        return help ? GT_OK : GT_USAGE_ERROR("gentrain inspect: expected one FILE.h5");
    }
    const char *path = argv[1];
    if (path[0] == '-' && path[1])
        return GT_USAGE_ERROR("gentrain inspect: unknown option '%s' (gentrain inspect --help)", path);
    struct stat sb;
    if (stat(path, &sb) != 0) return GT_ERROR("cannot inspect %s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) return GT_ERROR("cannot inspect %s: not a regular file", path);
    if (!gt_h5_is_hdf5(path)) return GT_ERROR("%s is not a readable HDF5 file (truncated or damaged header)", path);
    gt_h5 *f;
    GT_TRY(gt_h5_open(path, 0, &f));
    char *format = NULL;
    int damaged = 0;
    gt_status st = print_file(f, path, &format, &damaged);
    if (st) gt_h5_discard(f);
    else st = gt_h5_close(f);
    int is_ckpt = format && !strcmp(format, GT_CKPT_FORMAT);
    gt_free(format);
    GT_TRY(st);
    if (is_ckpt) {
        if (gt_ckpt_verify(path) == GT_OK && check_structure(path) == GT_OK) {
            printf("checkpoint verifies: all datasets checksummed and intact, attributes consistent, every tensor of "
                   "its model present with its shape\n");
        } else {
            printf("checkpoint does NOT verify: %s\n", gt_error_message());
            gt_error_clear();
            damaged++;
        }
    }
    if (damaged) return GT_ERROR("%s is damaged (%d problem%s above)", path, damaged, damaged > 1 ? "s" : "");
    return GT_OK;
}
