/* libFuzzer target: the IDX reader on arbitrary bytes (tests/fuzz.sh,
 * tools/fuzz). Byte 0 chooses what the rest is: bit 0 clear, an images file;
 * set, an images file and a labels file, split at the offset in bytes 1-2
 * (little-endian, modulo the rest's length); bit 1 set, [data] limit = byte 3
 * (0 = all). The files go to a temporary directory and are read with
 * gt_idx_load, plain or gzipped (gzread reads both). Errors are values and
 * are cleared; a crash, a sanitizer report, a leak, a hang, a panic or an
 * allocation beyond the fuzzer's malloc limit is a finding. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gentrain/core.h"
#include "gentrain/data.h"

static char images[64], labels[64], dir_made[64];

/* the temporary directory goes when the fuzzer exits normally (a crash
 * leaves it, with the input that crashed) */
static void remove_dir(void) {
    unlink(images);
    unlink(labels);
    rmdir(dir_made);
}

static int put(const char *path, const uint8_t *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(p, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    /* in memory if it can be: the files are written for every input */
    char dir[] = "/dev/shm/gentrain-fuzz-idx.XXXXXX", alt[] = "/tmp/gentrain-fuzz-idx.XXXXXX";
    char *d = mkdtemp(dir) ? dir : mkdtemp(alt);
    if (!d) abort();
    snprintf(images, sizeof images, "%s/images", d);
    snprintf(labels, sizeof labels, "%s/labels", d);
    snprintf(dir_made, sizeof dir_made, "%s", d);
    atexit(remove_dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    int with_labels = data[0] & 1;
    int64_t limit = (data[0] & 2) ? data[3] : 0;
    size_t split = (size_t)(data[1] | data[2] << 8);
    data += 4, size -= 4;
    split = size ? split % (size + 1) : 0;
    if (!with_labels) split = size;
    if (put(images, data, split) || (with_labels && put(labels, data + split, size - split))) abort();
    gt_dataset ds;
    if (gt_idx_load(&ds, images, with_labels ? labels : NULL, limit) == GT_OK) {
        /* what a loaded dataset promises */
        if (ds.n < 1 || (limit && ds.n != limit) || gt_shape_size(ds.shape) < 1 || !ds.pixels) abort();
        for (int64_t i = 0; ds.labels && i < ds.n; i++)
            if (ds.labels[i] < 0 || ds.labels[i] >= ds.n_classes) abort();
        gt_dataset_free(&ds);
    }
    gt_error_clear();
    return 0;
}
