/* Unit test of src/io/h5.c: datasets, groups, attributes, listing, the
 * Fletcher32 checksum catching a flipped byte, and the one-line errors. */
#include "gentrain/core.h"
#include "gentrain/io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;
#define EXPECT(cond)                                                                                        \
    do {                                                                                                    \
        if (!(cond)) {                                                                                      \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                                 \
            failures++;                                                                                     \
        }                                                                                                   \
    } while (0)

/* Runs fn(arg) in a child that must fail with a message containing `want`. */
static void expect_fatal(void (*fn)(const char *), const char *arg, const char *want) {
    int pipefd[2];
    if (pipe(pipefd) != 0) gt_fatal("pipe failed");
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) gt_fatal("fork failed");
    if (pid == 0) {
        close(pipefd[0]);
        dup2(pipefd[1], 2);
        fn(arg);
        _exit(0);
    }
    close(pipefd[1]);
    char buf[4096];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(pipefd[0], buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)r;
    buf[n] = '\0';
    close(pipefd[0]);
    int status;
    if (waitpid(pid, &status, 0) != pid) gt_fatal("waitpid failed");
    int ok = WIFEXITED(status) && WEXITSTATUS(status) == GT_EXIT_ERROR && strstr(buf, want) &&
             strchr(buf, '\n') == buf + n - 1; /* exactly one line */
    if (!ok) {
        fprintf(stderr, "FAIL: expected one fatal line containing '%s', got status %d and:\n%s", want, status, buf);
        failures++;
    } else {
        printf("  ok, fatal: %s", buf);
    }
}

static void read_wrong_shape(const char *path) {
    gt_h5 *f = gt_h5_open(path, 0);
    float x[6];
    gt_h5_read_floats(f, "a/b/w", x, 2, (int[]){2, 3});
}
static void read_missing(const char *path) {
    gt_h5 *f = gt_h5_open(path, 0);
    float x[6];
    gt_h5_read_floats(f, "a/nothing", x, 1, (int[]){6});
}
static void read_ints_as_floats(const char *path) {
    gt_h5 *f = gt_h5_open(path, 0);
    float x[3];
    gt_h5_read_floats(f, "counts", x, 1, (int[]){3});
}
static void read_big(const char *path) {
    gt_h5 *f = gt_h5_open(path, 0);
    float *x = gt_alloc_floats(4096);
    gt_h5_read_floats(f, "big", x, 2, (int[]){64, 64});
}
static void open_missing(const char *path) { gt_h5_open(path, 0); }
static void write_readonly(const char *path) {
    gt_h5 *f = gt_h5_open(path, 0);
    gt_h5_write_floats(f, "x", (float[]){1}, 1, (int[]){1});
}

int main(void) {
    char dir[] = "/tmp/gt_test_h5_XXXXXX";
    if (!mkdtemp(dir)) gt_fatal("mkdtemp failed");
    char path[256], bad[256];
    snprintf(path, sizeof path, "%s/t.h5", dir);
    snprintf(bad, sizeof bad, "%s/corrupt.h5", dir);

    float w[6] = {1, 2, 3, 4, 5, 6}, s = 3.5f;
    int64_t counts[3] = {-1, 0, 1LL << 40};
    float *big = gt_alloc_floats(4096);
    for (int i = 0; i < 4096; i++) big[i] = 1000.0f + (float)i;
    /* A chunked dataset larger than one 4 MiB chunk. */
    size_t nhuge = (size_t)3 << 20;
    float *huge = gt_alloc_floats(nhuge);
    for (size_t i = 0; i < nhuge; i++) huge[i] = (float)i;

    gt_h5 *f = gt_h5_create(path);
    gt_h5_write_floats(f, "a/b/w", w, 2, (int[]){2, 3});
    gt_h5_write_floats(f, "/a/c/scalar", &s, 0, NULL);
    gt_h5_write_floats(f, "a/empty", NULL, 2, (int[]){0, 5});
    gt_h5_write_int64(f, "counts", counts, 1, (int[]){3});
    gt_h5_write_floats(f, "big", big, 2, (int[]){64, 64});
    gt_h5_write_floats(f, "huge", huge, 3, (int[]){3, 1024, 1024});
    gt_h5_write_floats(f, "a/b/w", w, 2, (int[]){3, 2}); /* replaced */
    gt_h5_make_group(f, "g/h");
    gt_h5_set_attr_str(f, NULL, "format", "gentrain-test");
    gt_h5_set_attr_int64(f, "/", "step", 42);
    gt_h5_set_attr_int64(f, "/", "step", 43); /* replaced */
    gt_h5_set_attr_double(f, "a/b/w", "scale", 0.25);
    gt_h5_set_attr_str(f, "a", "config", "[run]\nseed = 1\n");
    gt_h5_close(f);

    f = gt_h5_open(path, 0);
    EXPECT(gt_h5_exists(f, "/"));
    EXPECT(gt_h5_exists(f, "a/b"));
    EXPECT(gt_h5_exists(f, "a/b/w"));
    EXPECT(!gt_h5_exists(f, "a/x/w"));
    EXPECT(!gt_h5_exists(f, "a/b/w/deeper"));
    EXPECT(gt_h5_is_dataset(f, "a/b/w") && !gt_h5_is_dataset(f, "a/b"));
    int dims[GT_H5_MAX_RANK];
    EXPECT(gt_h5_shape(f, "a/b/w", dims) == 2 && dims[0] == 3 && dims[1] == 2);
    EXPECT(gt_h5_shape(f, "a/c/scalar", dims) == 0);
    EXPECT(gt_h5_numel(f, "a/empty") == 0);
    EXPECT(gt_h5_checksummed(f, "a/b/w") && gt_h5_checksummed(f, "huge") && !gt_h5_checksummed(f, "a/empty"));
    float r[6] = {0};
    gt_h5_read_floats(f, "a/b/w", r, 2, (int[]){3, 2});
    EXPECT(memcmp(r, w, sizeof w) == 0);
    float rs = 0;
    gt_h5_read_floats(f, "a/c/scalar", &rs, 0, NULL);
    EXPECT(rs == 3.5f);
    gt_h5_read_floats(f, "a/empty", NULL, 2, (int[]){0, 5});
    int64_t rc[3];
    gt_h5_read_int64(f, "counts", rc, 1, (int[]){3});
    EXPECT(memcmp(rc, counts, sizeof counts) == 0);
    float *rh = gt_alloc_floats(nhuge);
    gt_h5_read_floats(f, "huge", rh, 3, (int[]){3, 1024, 1024});
    EXPECT(memcmp(rh, huge, nhuge * sizeof(float)) == 0);
    char *fmt = gt_h5_get_attr_str(f, NULL, "format");
    EXPECT(strcmp(fmt, "gentrain-test") == 0);
    gt_free(fmt);
    char *cfg = gt_h5_get_attr_str(f, "a", "config");
    EXPECT(strcmp(cfg, "[run]\nseed = 1\n") == 0);
    gt_free(cfg);
    EXPECT(gt_h5_get_attr_int64(f, "", "step") == 43);
    EXPECT(gt_h5_get_attr_double(f, "a/b/w", "scale") == 0.25);
    EXPECT(gt_h5_get_attr_double(f, "/", "step") == 43.0);
    EXPECT(gt_h5_has_attr(f, "/", "format") && !gt_h5_has_attr(f, "/", "nope") && !gt_h5_has_attr(f, "zz", "x"));
    char **names;
    int n = gt_h5_list(f, "/", 1, &names);
    const char *want[] = {"a/b/w", "a/c/scalar", "a/empty", "big", "counts", "huge"};
    EXPECT(n == 6);
    for (int i = 0; i < n && i < 6; i++) EXPECT(strcmp(names[i], want[i]) == 0);
    gt_h5_free_names(names, n);
    n = gt_h5_list(f, "a", 0, &names);
    EXPECT(n == 1 && strcmp(names[0], "empty") == 0);
    gt_h5_free_names(names, n);
    n = gt_h5_list(f, "g", 1, &names);
    EXPECT(n == 0);
    gt_h5_free_names(names, n);
    gt_h5_close(f);
    EXPECT(gt_h5_is_hdf5(path));
    EXPECT(!gt_h5_is_hdf5("/nonexistent/x.h5"));

    printf("expected failures:\n");
    expect_fatal(read_wrong_shape, path, "dataset 'a/b/w' has shape [3,2] but [2,3] was expected");
    expect_fatal(read_missing, path, "no dataset 'a/nothing'");
    expect_fatal(read_ints_as_floats, path, "does not hold floating-point values");
    expect_fatal(open_missing, "/nonexistent/x.h5", "/nonexistent/x.h5");
    expect_fatal(open_missing, "/proc/self/status", "is not an HDF5 file");
    expect_fatal(write_readonly, path, "read-only");

    /* Flip one byte of the "big" dataset's data in a copy: the checksum must catch it. */
    FILE *in = fopen(path, "rb");
    if (!in) gt_fatal("cannot read %s", path);
    if (fseek(in, 0, SEEK_END) != 0) gt_fatal("seek failed");
    long size = ftell(in);
    if (size <= 0 || fseek(in, 0, SEEK_SET) != 0) gt_fatal("seek failed");
    unsigned char *bytes = gt_alloc((size_t)size);
    if (fread(bytes, 1, (size_t)size, in) != (size_t)size) gt_fatal("short read of %s", path);
    fclose(in);
    long at = -1;
    for (long i = 0; i + (long)sizeof(float) * 2 <= size; i++)
        if (memcmp(bytes + i, big + 100, sizeof(float) * 2) == 0) {
            at = i;
            break;
        }
    EXPECT(at >= 0);
    if (at >= 0) {
        bytes[at] ^= 0x01;
        FILE *out = fopen(bad, "wb");
        if (!out || fwrite(bytes, 1, (size_t)size, out) != (size_t)size || fclose(out) != 0)
            gt_fatal("cannot write %s", bad);
        expect_fatal(read_big, bad, "checksum");
    }
    gt_free(bytes);
    gt_free(big);
    gt_free(huge);
    gt_free(rh);
    unlink(path);
    unlink(bad);
    rmdir(dir);
    if (failures) {
        printf("test_h5: %d failures\n", failures);
        return 1;
    }
    printf("test_h5: ok\n");
    return 0;
}
