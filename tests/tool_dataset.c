/* Reads examples of a gentrain-dataset file the way training does, for
 * tests/dataset.sh to compare with h5py:
 *
 *   tool_dataset FILE train|test INDEX...          gt_source_read of the indices, one batch
 *   tool_dataset FILE cache FIRST COUNT INDEX...   the shard cache of [FIRST, FIRST+COUNT), then a batch
 *   tool_dataset FILE check                        open (every check) and describe
 *
 * Writes the batch to stdout as float32 pixels scaled to [-1, 1]
 * ([B, C, H, W]) then int32 labels [B]; on stderr one line
 * "n=N test=M shape=CxHxW classes=K rows_read=R". An error: its message on
 * stderr, exit 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gentrain/core.h"
#include "gentrain/data.h"
#include "gentrain/io.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: tool_dataset FILE train|test|cache|check ...\n");
        return 2;
    }
    gt_source *train, *test;
    gt_status st = gt_dataset_file_open(argv[1], 0, NULL, &train, &test);
    if (st) gt_exit_error(st);
    const char *mode = argv[2];
    int first_idx = 3;
    gt_source *s = !strcmp(mode, "test") ? test : train;
    if (!strcmp(mode, "cache")) {
        if (argc < 5) return 2;
        st = gt_source_cache(&train, atoll(argv[3]), atoll(argv[4]), 4096);
        if (st) gt_exit_error(st);
        s = train;
        first_idx = 5;
    }
    int B = argc - first_idx;
    if (strcmp(mode, "check") != 0 && B > 0) {
        int64_t *idx = gt_alloc(sizeof(int64_t) * (size_t)B);
        for (int i = 0; i < B; i++) idx[i] = atoll(argv[first_idx + i]);
        size_t size = gt_shape_size(s->shape);
        float *x = gt_alloc_floats((size_t)B * size);
        int *labels = gt_alloc(sizeof(int) * (size_t)B);
        st = gt_source_read(s, idx, B, GT_SCALE_SIGNED, x, labels);
        if (st) gt_exit_error(st);
        fwrite(x, sizeof(float), (size_t)B * size, stdout);
        fwrite(labels, sizeof(int), (size_t)B, stdout);
        gt_free(idx);
        gt_free(x);
        gt_free(labels);
    }
    fprintf(stderr, "n=%lld test=%lld shape=%dx%dx%d classes=%d rows_read=%lld layout=%s\n", (long long)train->n,
            (long long)test->n, s->shape.c, s->shape.h, s->shape.w, s->n_classes, (long long)s->rows_read,
            gt_dataset_file_layout(s));
    gt_source_close(train);
    gt_source_close(test);
    gt_h5_library_close();
    return 0;
}
