/* Unit test of src/io/h5.c: datasets, groups, attributes, listing, tables,
 * the Fletcher32 checksum catching a flipped byte, and errors that name the
 * file and what was being done. */
#include "gentrain/core.h"
#include "gentrain/io.h"

#include "check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static gt_h5 *open_ro(const char *path) {
    gt_h5 *f = NULL;
    CHECK_OK(gt_h5_open(path, 0, &f));
    if (!f) gt_panic("test: cannot open %s", path);
    return f;
}
static int yes_of(gt_status st, int yes) {
    CHECK(st == GT_OK, "query failed: %s", gt_error_message());
    return st == GT_OK && yes;
}
/* exists/is_dataset/checksummed as an int (a failure counts as a failed check) */
static int exists(gt_h5 *f, const char *name) {
    int y = 0;
    gt_status st = gt_h5_exists(f, name, &y);
    return yes_of(st, y);
}
static int is_dataset(gt_h5 *f, const char *name) {
    int y = 0;
    gt_status st = gt_h5_is_dataset(f, name, &y);
    return yes_of(st, y);
}
static int checksummed(gt_h5 *f, const char *name) {
    int y = 0;
    gt_status st = gt_h5_checksummed(f, name, &y);
    return yes_of(st, y);
}
static int has_attr(gt_h5 *f, const char *obj, const char *key) {
    int y = 0;
    gt_status st = gt_h5_has_attr(f, obj, key, &y);
    return yes_of(st, y);
}

static void test_tables(const char *path) {
    gt_h5 *f = NULL;
    CHECK_OK(gt_h5_create(path, &f));
    const char *c1[] = {"step", "epoch", "loss"}, *c2[] = {"step", "epoch", "kl"};
    CHECK_OK(gt_h5_table_append(f, "train", 3, c1, 2, (double[]){10, 0, 1.5}));
    CHECK_OK(gt_h5_table_append(f, "train", 3, c2, 2, (double[]){20, 1, 0.25})); /* a new column, one missing */
    CHECK_OK(gt_h5_table_append(f, "train", 3, c1, 2, (double[]){30, 1, 0.5}));
    int64_t rows = 0;
    CHECK_OK(gt_h5_table_rows(f, "train", "step", &rows));
    CHECK(rows == 3, "table rows %lld", (long long)rows);
    double col[3];
    CHECK_OK(gt_h5_table_column(f, "train", "loss", col));
    CHECK(col[0] == 1.5 && isnan(col[1]) && col[2] == 0.5, "missing cells are NaN");
    CHECK_OK(gt_h5_table_column(f, "train", "kl", col));
    CHECK(isnan(col[0]) && col[1] == 0.25 && isnan(col[2]), "a late column is back-filled");
    CHECK_OK(gt_h5_table_truncate(f, "train", 1));
    CHECK_OK(gt_h5_table_rows(f, "train", "step", &rows));
    CHECK_OK(gt_h5_table_column(f, "train", "kl", col));
    CHECK(rows == 1, "truncated to 1 row");
    CHECK_OK(gt_h5_table_rows(f, "test", "step", &rows));
    CHECK(rows == 0, "a missing table has no rows");
    CHECK_OK(gt_h5_close(f));
}

int main(void) {
    char dir[] = "/tmp/gt_test_h5_XXXXXX";
    if (!mkdtemp(dir)) gt_panic("mkdtemp failed");
    char path[256], bad[256], tables[256];
    snprintf(path, sizeof path, "%s/t.h5", dir);
    snprintf(bad, sizeof bad, "%s/corrupt.h5", dir);
    snprintf(tables, sizeof tables, "%s/tables.h5", dir);

    float w[6] = {1, 2, 3, 4, 5, 6}, s = 3.5f;
    int64_t counts[3] = {-1, 0, 1LL << 40};
    float *big = gt_alloc_floats(4096);
    for (int i = 0; i < 4096; i++) big[i] = 1000.0f + (float)i;
    /* A chunked dataset larger than one 4 MiB chunk. */
    size_t nhuge = (size_t)3 << 20;
    float *huge = gt_alloc_floats(nhuge);
    for (size_t i = 0; i < nhuge; i++) huge[i] = (float)i;

    gt_h5 *f = NULL;
    CHECK_OK(gt_h5_create(path, &f));
    if (!f) return check_report("test_h5");
    CHECK_OK(gt_h5_write_floats(f, "a/b/w", w, 2, (int[]){2, 3}));
    CHECK_OK(gt_h5_write_floats(f, "/a/c/scalar", &s, 0, NULL));
    CHECK_OK(gt_h5_write_floats(f, "a/empty", NULL, 2, (int[]){0, 5}));
    CHECK_OK(gt_h5_write_int64(f, "counts", counts, 1, (int[]){3}));
    CHECK_OK(gt_h5_write_floats(f, "big", big, 2, (int[]){64, 64}));
    CHECK_OK(gt_h5_write_floats(f, "huge", huge, 3, (int[]){3, 1024, 1024}));
    CHECK_OK(gt_h5_write_floats(f, "a/b/w", w, 2, (int[]){3, 2})); /* replaced */
    CHECK_OK(gt_h5_make_group(f, "g/h"));
    CHECK_OK(gt_h5_set_attr_str(f, NULL, "format", "gentrain-test"));
    CHECK_OK(gt_h5_set_attr_int64(f, "/", "step", 42));
    CHECK_OK(gt_h5_set_attr_int64(f, "/", "step", 43)); /* replaced */
    CHECK_OK(gt_h5_set_attr_double(f, "a/b/w", "scale", 0.25));
    CHECK_OK(gt_h5_set_attr_str(f, "a", "config", "[run]\nseed = 1\n"));
    CHECK_OK(gt_h5_set_attr_str_fixed(f, "a", "fixed", "abc"));
    CHECK_ERROR(gt_h5_make_group(f, "a/b/w"), "a group over a dataset", "t.h5", "'a/b/w' exists and is not a group");
    CHECK_ERROR(gt_h5_write_floats(f, "a/b", w, 1, (int[]){6}), "a dataset over a group", "a group of that name");
    CHECK_OK(gt_h5_close(f));

    f = open_ro(path);
    CHECK(exists(f, "/"), "root exists");
    CHECK(exists(f, "a/b") && exists(f, "a/b/w"), "groups and datasets exist");
    CHECK(!exists(f, "a/x/w") && !exists(f, "a/b/w/deeper"), "missing paths do not");
    CHECK(is_dataset(f, "a/b/w") && !is_dataset(f, "a/b"), "is_dataset");
    int rank = -1, dims[GT_H5_MAX_RANK];
    CHECK_OK(gt_h5_shape(f, "a/b/w", &rank, dims));
    CHECK(rank == 2 && dims[0] == 3 && dims[1] == 2, "shape of the replaced dataset");
    CHECK_OK(gt_h5_shape(f, "a/c/scalar", &rank, dims));
    CHECK(rank == 0, "scalar rank");
    CHECK(checksummed(f, "a/b/w") && checksummed(f, "huge") && !checksummed(f, "a/empty"), "checksums");
    float r[6] = {0};
    CHECK_OK(gt_h5_read_floats(f, "a/b/w", r, 2, (int[]){3, 2}));
    CHECK(memcmp(r, w, sizeof w) == 0, "floats round trip");
    float rs = 0;
    CHECK_OK(gt_h5_read_floats(f, "a/c/scalar", &rs, 0, NULL));
    CHECK(rs == 3.5f, "scalar");
    CHECK_OK(gt_h5_read_floats(f, "a/empty", NULL, 2, (int[]){0, 5}));
    int64_t rc[3];
    CHECK_OK(gt_h5_read_int64(f, "counts", rc, 1, (int[]){3}));
    CHECK(memcmp(rc, counts, sizeof counts) == 0, "int64 round trip");
    float *rh = gt_alloc_floats(nhuge);
    CHECK_OK(gt_h5_read_floats(f, "huge", rh, 3, (int[]){3, 1024, 1024}));
    CHECK(memcmp(rh, huge, nhuge * sizeof(float)) == 0, "a multi-chunk dataset round trips");
    char *str = NULL;
    CHECK_OK(gt_h5_get_attr_str(f, NULL, "format", &str));
    CHECK(str && strcmp(str, "gentrain-test") == 0, "string attribute");
    gt_free(str);
    CHECK_OK(gt_h5_get_attr_str(f, "a", "config", &str));
    CHECK(str && strcmp(str, "[run]\nseed = 1\n") == 0, "multi-line string attribute");
    gt_free(str);
    CHECK_OK(gt_h5_get_attr_str(f, "a", "fixed", &str));
    CHECK(str && strcmp(str, "abc") == 0, "fixed-length string attribute");
    gt_free(str);
    int64_t step = 0;
    double d = 0;
    CHECK_OK(gt_h5_get_attr_int64(f, "", "step", &step));
    CHECK(step == 43, "int64 attribute replaced");
    CHECK_OK(gt_h5_get_attr_double(f, "a/b/w", "scale", &d));
    CHECK(d == 0.25, "double attribute");
    CHECK_OK(gt_h5_get_attr_double(f, "/", "step", &d));
    CHECK(d == 43.0, "an integer attribute reads as a double");
    CHECK(has_attr(f, "/", "format") && !has_attr(f, "/", "nope") && !has_attr(f, "zz", "x"), "has_attr");
    char t = 0;
    CHECK_OK(gt_h5_attr_type(f, NULL, "step", &t));
    CHECK(t == 'i', "attribute type");
    char **names;
    int n;
    CHECK_OK(gt_h5_list(f, "/", 1, &names, &n));
    const char *want[] = {"a/b/w", "a/c/scalar", "a/empty", "big", "counts", "huge"};
    CHECK(n == 6, "list: %d datasets", n);
    for (int i = 0; i < n && i < 6; i++) CHECK(strcmp(names[i], want[i]) == 0, "list[%d] = %s", i, names[i]);
    gt_h5_free_names(names, n);
    CHECK_OK(gt_h5_list(f, "a", 0, &names, &n));
    CHECK(n == 1 && strcmp(names[0], "empty") == 0, "non-recursive list");
    gt_h5_free_names(names, n);
    CHECK_OK(gt_h5_list(f, "g", 1, &names, &n));
    CHECK(n == 0, "an empty group");
    gt_h5_free_names(names, n);
    char type[64];
    CHECK_OK(gt_h5_dtype(f, "counts", type, sizeof type));
    CHECK(!strcmp(type, "int64"), "dtype %s", type);
    CHECK_OK(gt_h5_verify(f, "huge"));

    /* errors: one message naming the file and what was being done */
    float x[6];
    CHECK_ERROR(gt_h5_read_floats(f, "a/b/w", x, 2, (int[]){2, 3}), "wrong shape", "t.h5",
                "dataset 'a/b/w' has shape [3,2] but [2,3] was expected");
    CHECK_ERROR(gt_h5_read_floats(f, "a/nothing", x, 1, (int[]){6}), "missing dataset", "no dataset 'a/nothing'");
    CHECK_ERROR(gt_h5_read_floats(f, "counts", x, 1, (int[]){3}), "ints as floats", "does not hold floating-point values");
    CHECK_ERROR(gt_h5_write_floats(f, "x", (float[]){1}, 1, (int[]){1}), "write to a read-only file", "read-only");
    CHECK_ERROR(gt_h5_get_attr_int64(f, NULL, "format", &step), "string attribute as int", "is not an integer");
    CHECK_ERROR(gt_h5_get_attr_str(f, NULL, "nope", &str), "missing attribute", "has no attribute 'nope'");
    CHECK_OK(gt_h5_close(f));
    gt_h5 *g;
    CHECK_ERROR(gt_h5_open("/nonexistent/x.h5", 0, &g), "missing file", "/nonexistent/x.h5", "No such file");
    CHECK_ERROR(gt_h5_open("/proc/self/status", 0, &g), "not HDF5", "is not an HDF5 file");
    CHECK_ERROR(gt_h5_open("/tmp", 0, &g), "a directory", "not a regular file");
    CHECK_ERROR(gt_h5_create("/nonexistent/dir/x.h5", &g), "create in a missing directory", "/nonexistent/dir/x.h5",
                "cannot create");
    CHECK(gt_h5_is_hdf5(path) && !gt_h5_is_hdf5("/nonexistent/x.h5") && !gt_h5_is_hdf5("/tmp"), "is_hdf5");
    char fifo[256];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo");
    CHECK(!gt_h5_is_hdf5(fifo), "a FIFO is not an HDF5 file (and is not opened: that would block)");
    CHECK_ERROR(gt_h5_open(fifo, 0, &g), "open a FIFO", "not a regular file");
    unlink(fifo);

    /* Flip one byte of the "big" dataset's data in a copy: the checksum must catch it. */
    FILE *in = fopen(path, "rb");
    if (!in) gt_panic("cannot read %s", path);
    if (fseek(in, 0, SEEK_END) != 0) gt_panic("seek failed");
    long size = ftell(in);
    if (size <= 0 || fseek(in, 0, SEEK_SET) != 0) gt_panic("seek failed");
    unsigned char *bytes = gt_alloc((size_t)size);
    if (fread(bytes, 1, (size_t)size, in) != (size_t)size) gt_panic("short read of %s", path);
    fclose(in);
    long at = -1;
    for (long i = 0; i + (long)sizeof(float) * 2 <= size; i++)
        if (memcmp(bytes + i, big + 100, sizeof(float) * 2) == 0) {
            at = i;
            break;
        }
    CHECK(at >= 0, "found the data of 'big' in the file");
    if (at >= 0) {
        bytes[at] ^= 0x01;
        FILE *out = fopen(bad, "wb");
        if (!out || fwrite(bytes, 1, (size_t)size, out) != (size_t)size || fclose(out) != 0)
            gt_panic("cannot write %s", bad);
        f = open_ro(bad);
        float *x2 = gt_alloc_floats(4096);
        CHECK_ERROR(gt_h5_read_floats(f, "big", x2, 2, (int[]){64, 64}), "flipped byte", "corrupt.h5", "checksum");
        CHECK_ERROR(gt_h5_verify(f, "big"), "verify a flipped byte", "does not read back");
        gt_free(x2);
        gt_h5_discard(f);
    }
    test_tables(tables);
    gt_free(bytes);
    gt_free(big);
    gt_free(huge);
    gt_free(rh);
    unlink(path);
    unlink(bad);
    unlink(tables);
    rmdir(dir);
    gt_h5_library_close();
    return check_report("test_h5");
}
