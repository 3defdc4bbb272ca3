/* gentrain inspect FILE.h5: what a checkpoint, samples or metrics file (or
 * any HDF5 file) holds: root attributes, every dataset with its type, shape
 * and checksum, and whether it reads back (checksums verified). */
#include <inttypes.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include "gentrain/app.h"
#include "gentrain/checkpoint.h"
#include "gentrain/core.h"
#include "gentrain/io.h"

static const char inspect_usage[] =
    "usage: gentrain inspect FILE.h5\n"
    "\n"
    "Prints what an HDF5 file holds: its root attributes (a checkpoint's step, epoch,\n"
    "world_size, seed, model and config), then every dataset with its type, shape and\n"
    "checksum, reading each back to verify its Fletcher32 checksum. Works on gentrain\n"
    "checkpoints, samples.h5, metrics.h5 and any other HDF5 file.\n"
    "Exit status: 0 everything reads back (and a checkpoint verifies), 1 otherwise.\n";

static void print_attrs(gt_h5 *f, const char *obj, const char *indent, int inline_list) {
    char **names;
    int n = gt_h5_attr_names(f, obj, &names);
    for (int i = 0; i < n; i++) {
        char t = gt_h5_attr_type(f, obj, names[i]);
        if (inline_list) printf(" %s=", names[i]);
        else printf("%s%s = ", indent, names[i]);
        if (t == 'i') {
            printf("%" PRId64, gt_h5_get_attr_int64(f, obj, names[i]));
        } else if (t == 'f') {
            printf("%.9g", gt_h5_get_attr_double(f, obj, names[i]));
        } else if (t == 's') {
            char *s = gt_h5_get_attr_str(f, obj, names[i]);
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
        } else {
            printf("(not a single number or string)");
        }
        if (!inline_list) printf("\n");
    }
    gt_h5_free_names(names, n);
}

int gt_cmd_inspect(int argc, char **argv) {
    if (argc != 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        int help = argc == 2;
        fputs(inspect_usage, help ? stdout : stderr);
        return help ? 0 : GT_EXIT_USAGE;
    }
    const char *path = argv[1];
    if (!gt_h5_is_hdf5(path)) gt_fatal("%s is not a readable HDF5 file (missing, truncated or damaged header)", path);
    int bad = 0;
    gt_h5_catch c;
    gt_h5 *volatile f = NULL;
    char *volatile format = NULL;
    gt_h5_catch_push(&c);
    if (setjmp(c.jb) == 0) {
        f = gt_h5_open(path, 0);
        if (gt_h5_has_attr(f, NULL, "format") && gt_h5_attr_type(f, NULL, "format") == 's')
            format = gt_h5_get_attr_str(f, NULL, "format");
        const char *what = !format                                 ? "an HDF5 file not written by gentrain"
                           : !strcmp(format, GT_CKPT_FORMAT)       ? "a gentrain checkpoint"
                           : !strcmp(format, "gentrain-samples")   ? "gentrain samples"
                           : !strcmp(format, "gentrain-metrics")   ? "gentrain metrics"
                                                                   : "an HDF5 file of an unknown format";
        printf("%s: %s\n", path, what);
        printf("attributes:\n");
        print_attrs(f, NULL, "  ", 0);
        char **names;
        int n = gt_h5_list(f, NULL, 1, &names);
        printf("datasets (%d):\n", n);
        for (int i = 0; i < n; i++) {
            char type[512], shape[256] = "[", why[1024];
            int dims[GT_H5_MAX_RANK];
            int rank = gt_h5_shape(f, names[i], dims);
            size_t used = 1;
            for (int d = 0; d < rank; d++)
                used += (size_t)snprintf(shape + used, sizeof shape - used, "%s%d", d ? "," : "", dims[d]);
            snprintf(shape + used, sizeof shape - used, "]");
            gt_h5_dtype(f, names[i], type, sizeof type);
            int sum = gt_h5_checksummed(f, names[i]);
            int ok = gt_h5_verify(f, names[i], why, sizeof why) == 0;
            printf("  /%-44s %-8s %-16s %s", names[i], type, shape,
                   ok ? (sum ? "checksum ok" : "read ok (no checksum)") : "DAMAGED");
            print_attrs(f, names[i], "", 1);
            printf("\n");
            if (!ok) {
                printf("    %s\n", why);
                bad++;
            }
        }
        gt_h5_free_names(names, n);
        gt_h5_close(f);
        f = NULL;
        gt_h5_catch_pop(&c);
    } else {
        gt_h5_discard(f);
        fprintf(stderr, "gentrain: error: %s\n", c.msg);
        gt_free(format);
        return GT_EXIT_ERROR;
    }
    if (format && !strcmp(format, GT_CKPT_FORMAT)) {
        char why[2048];
        if (gt_ckpt_verify(path, why, sizeof why) == 0) {
            printf("checkpoint verifies: all datasets checksummed and intact, attributes consistent\n");
        } else {
            printf("checkpoint does NOT verify: %s\n", why);
            bad++;
        }
    }
    gt_free(format);
    if (bad) fprintf(stderr, "gentrain: error: %s is damaged (%d problem%s above)\n", path, bad, bad > 1 ? "s" : "");
    return bad ? GT_EXIT_ERROR : 0;
}
