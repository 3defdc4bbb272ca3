/* Data: IDX loading of the real Fashion-MNIST files and rejection of bad
 * files (each an error naming the file), train and test sets that must agree
 * (gt_data_load), dynamic binarization, 2-D toy mixtures. The sampler's tests
 * are in test_sampler.c. */
#include "gentrain/core.h"
#include "gentrain/data.h"

#include "check.h"

#include <errno.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define FMNIST "/usr/share/datasets/fashion-mnist/"
static const char *train_images = FMNIST "train-images-idx3-ubyte.gz";
static const char *train_labels = FMNIST "train-labels-idx1-ubyte.gz";
static const char *test_images = FMNIST "t10k-images-idx3-ubyte.gz";
static const char *test_labels = FMNIST "t10k-labels-idx1-ubyte.gz";

/* Loading that must fail: its status. */
static gt_status load(const char *images, const char *labels, int64_t limit) {
    gt_dataset ds;
    gt_status st = gt_idx_load(&ds, images, labels, limit);
    if (!st) gt_dataset_free(&ds);
    return st;
}

static void must_load(gt_dataset *ds, const char *images, const char *labels, int64_t limit) {
    CHECK_OK(gt_idx_load(ds, images, labels, limit));
}

/* ---- temporary files ----------------------------------------------------- */

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) gt_panic("%s: cannot open: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) gt_panic("%s: cannot seek: %s", path, strerror(errno));
    long size = ftell(f);
    if (size < 0) gt_panic("%s: cannot tell size: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_SET) != 0) gt_panic("%s: cannot seek: %s", path, strerror(errno));
    unsigned char *buf = gt_alloc((size_t)size);
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) gt_panic("%s: short read", path);
    if (fclose(f) != 0) gt_panic("%s: close: %s", path, strerror(errno));
    *len = (size_t)size;
    return buf;
}

/* Writes bytes to a new mkstemp file; returns its path in `path`. */
static void write_temp(char *path, size_t cap, const char *tag, const void *data, size_t len) {
    snprintf(path, cap, "/tmp/gentrain-test-%s-XXXXXX", tag);
    int fd = mkstemp(path);
    if (fd < 0) gt_panic("mkstemp %s: %s", path, strerror(errno));
    const unsigned char *p = data;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) gt_panic("%s: write: %s", path, strerror(errno));
        done += (size_t)w;
    }
    if (close(fd) != 0) gt_panic("%s: close: %s", path, strerror(errno));
}

static void put_be32(unsigned char *b, uint32_t v) {
    b[0] = (unsigned char)(v >> 24);
    b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);
    b[3] = (unsigned char)v;
}

/* ---- IDX ----------------------------------------------------------------- */

static void test_idx(void) {
    if (access(train_images, R_OK) != 0 || access(train_labels, R_OK) != 0 || access(test_images, R_OK) != 0 ||
        access(test_labels, R_OK) != 0) {
        CHECK(0, "Fashion-MNIST is missing from " FMNIST ": install dataset-fashion-mnist "
                 "(apt-get install -y dataset-fashion-mnist)");
        return;
    }
    gt_dataset tr, te;
    must_load(&tr, train_images, train_labels, 0);
    must_load(&te, test_images, test_labels, 0);
    CHECK(tr.n == 60000, "train set has %lld examples, expected 60000", (long long)tr.n);
    CHECK(te.n == 10000, "test set has %lld examples, expected 10000", (long long)te.n);
    CHECK(tr.shape.c == 1 && tr.shape.h == 28 && tr.shape.w == 28, "train shape %dx%dx%d, expected 1x28x28",
          tr.shape.c, tr.shape.h, tr.shape.w);
    CHECK(te.shape.c == 1 && te.shape.h == 28 && te.shape.w == 28, "test shape %dx%dx%d", te.shape.c, te.shape.h,
          te.shape.w);
    CHECK(tr.n_classes == 10 && te.n_classes == 10, "n_classes %d / %d, expected 10", tr.n_classes, te.n_classes);
    CHECK(tr.pixels && !tr.values && tr.labels, "train set holds pixels and labels");
    CHECK(strstr(tr.source, "train-images") != NULL, "source names the file: %s", tr.source);
    long counts[10] = {0}, bad = 0;
    for (int64_t i = 0; i < tr.n; i++) {
        if (tr.labels[i] < 0 || tr.labels[i] > 9) bad++;
        else counts[tr.labels[i]]++;
    }
    CHECK(bad == 0, "%ld train labels outside 0..9", bad);
    for (int k = 0; k < 10; k++) CHECK(counts[k] == 6000, "class %d has %ld train examples, expected 6000", k, counts[k]);
    bad = 0;
    for (int64_t i = 0; i < te.n; i++) bad += te.labels[i] < 0 || te.labels[i] > 9;
    CHECK(bad == 0, "%ld test labels outside 0..9", bad);

    const size_t size = 28 * 28;
    double sum = 0;
    int mx = 0;
    for (size_t i = 0; i < (size_t)tr.n * size; i++) {
        sum += tr.pixels[i];
        if (tr.pixels[i] > mx) mx = tr.pixels[i];
    }
    double mean = sum / ((double)tr.n * size);
    CHECK(fabs(mean - 72.94) < 0.5, "mean train pixel %.3f, expected about 72.94 (= 0.286 * 255)", mean);
    CHECK(mx == 255, "max train pixel %d, expected 255", mx);
    printf("  train: %lld x %dx%dx%d, mean pixel %.3f; test: %lld\n", (long long)tr.n, tr.shape.c, tr.shape.h,
           tr.shape.w, mean, (long long)te.n);

    /* limit keeps the first examples */
    gt_dataset lim;
    must_load(&lim, train_images, train_labels, 100);
    CHECK(lim.n == 100, "limit 100 gives %lld examples", (long long)lim.n);
    CHECK(memcmp(lim.pixels, tr.pixels, 100 * size) == 0, "limited load has the same first pixels");
    CHECK(memcmp(lim.labels, tr.labels, 100 * sizeof(int)) == 0, "limited load has the same first labels");
    gt_dataset_free(&lim);
    must_load(&lim, test_images, NULL, 10000); /* limit = n: all, no labels */
    CHECK(lim.n == 10000 && lim.labels == NULL && lim.n_classes == 0, "no labels file: n %lld, labels %p, classes %d",
          (long long)lim.n, (void *)lim.labels, lim.n_classes);
    CHECK_ERROR(load(test_images, NULL, 20000), "limit above n", "t10k-images", "holds 10000 images, fewer than the 20000");
    gt_dataset_free(&lim);
    CHECK(lim.pixels == NULL && lim.labels == NULL, "gt_dataset_free clears the pointers");

    /* batches: scaling and labels */
    int64_t idx[3] = {0, 59999, 12345};
    float *x = gt_alloc_floats(3 * size);
    int lab[3];
    gt_dataset_batch(&tr, idx, 3, GT_SCALE_UNIT, x, lab);
    int ok = 1;
    for (int b = 0; b < 3; b++) {
        ok &= lab[b] == tr.labels[idx[b]];
        for (size_t k = 0; k < size; k++) ok &= fabsf(x[b * size + k] - tr.pixels[idx[b] * size + k] / 255.0f) < 1e-7f;
    }
    CHECK(ok, "UNIT batch is p/255 with matching labels");
    gt_dataset_batch(&tr, idx, 3, GT_SCALE_SIGNED, x, NULL);
    ok = 1;
    float lo = 1, hi = -1;
    for (int b = 0; b < 3; b++)
        for (size_t k = 0; k < size; k++) {
            float v = x[b * size + k];
            ok &= fabsf(v - (tr.pixels[idx[b] * size + k] / 127.5f - 1.0f)) < 1e-6f;
            lo = fminf(lo, v);
            hi = fmaxf(hi, v);
        }
    CHECK(ok && lo >= -1.0f && hi <= 1.0f, "SIGNED batch is p/127.5 - 1 in [-1, 1] (%g..%g)", (double)lo, (double)hi);
    gt_free(x);

    /* ---- bad files */
    char path[128], path2[128];
    size_t len;
    unsigned char *gz = read_all(test_images, &len);
    write_temp(path, sizeof path, "truncated-gz", gz, len * 6 / 10);
    CHECK_ERROR(load(path, NULL, 0), "truncated .gz", path, "truncated");
    write_temp(path2, sizeof path2, "stub-gz", gz, 20);
    CHECK_ERROR(load(path2, NULL, 0), "gz stub of 20 bytes", path2);
    gt_free(gz);
    if (unlink(path) != 0 || unlink(path2) != 0) CHECK(0, "unlink temp files: %s", strerror(errno));

    /* plain IDX claiming 5 images of 28x28 with 3 present */
    size_t plen = 16 + 3 * size;
    unsigned char *plain = gt_alloc(plen);
    put_be32(plain, 0x803);
    put_be32(plain + 4, 5);
    put_be32(plain + 8, 28);
    put_be32(plain + 12, 28);
    write_temp(path, sizeof path, "truncated-idx", plain, plen);
    CHECK_ERROR(load(path, NULL, 0), "truncated plain IDX", path, "truncated");
    if (unlink(path) != 0) CHECK(0, "unlink: %s", strerror(errno));
    /* the same, complete, loads (plain, uncompressed) */
    gt_free(plain);
    plen = 16 + 5 * size;
    plain = gt_alloc(plen);
    put_be32(plain, 0x803);
    put_be32(plain + 4, 5);
    put_be32(plain + 8, 28);
    put_be32(plain + 12, 28);
    plain[16 + 4 * size + 7] = 200;
    write_temp(path, sizeof path, "plain-idx", plain, plen);
    gt_dataset pl;
    must_load(&pl, path, NULL, 0);
    CHECK(pl.n == 5 && pl.pixels[4 * size + 7] == 200, "uncompressed IDX loads (n %lld)", (long long)pl.n);
    gt_dataset_free(&pl);
    if (unlink(path) != 0) CHECK(0, "unlink: %s", strerror(errno));
    /* trailing bytes after the data the header announces */
    unsigned char *longer = gt_alloc(plen + 3);
    memcpy(longer, plain, plen);
    write_temp(path, sizeof path, "trailing-idx", longer, plen + 3);
    CHECK_ERROR(load(path, NULL, 0), "trailing bytes", path, "3 bytes follow the data");
    CHECK_OK(load(path, NULL, 4)); /* with a limit the rest of the file is not read */
    if (unlink(path) != 0) CHECK(0, "unlink: %s", strerror(errno));
    gt_free(longer);
    /* wrong magic: a labels file given as images */
    put_be32(plain, 0x801);
    write_temp(path, sizeof path, "wrong-magic", plain, plen);
    CHECK_ERROR(load(path, NULL, 0), "wrong magic", path, "not an IDX image file (magic 0x00000801, expected 0x00000803)");
    if (unlink(path) != 0) CHECK(0, "unlink: %s", strerror(errno));
    gt_free(plain);
    /* images and labels of different sets */
    CHECK_ERROR(load(test_images, train_labels, 0), "label count mismatch", train_labels, "60000 labels");
    /* labels file given as images */
    CHECK_ERROR(load(test_labels, NULL, 0), "labels as images", test_labels, "magic 0x00000801");
    CHECK_ERROR(load("/nonexistent/images.gz", NULL, 0), "missing file", "/nonexistent/images.gz", "cannot open");

    gt_dataset_free(&tr);
    gt_dataset_free(&te);
}

/* ---- train and test sets together ------------------------------------------- */

/* An IDX images file of n images of h x w (pixels = index), and a labels file. */
static void write_idx(char *images, char *labels, size_t cap, int n, int h, int w, int max_label) {
    size_t plen = 16 + (size_t)n * h * w;
    unsigned char *p = gt_alloc(plen);
    put_be32(p, 0x803);
    put_be32(p + 4, (uint32_t)n);
    put_be32(p + 8, (uint32_t)h);
    put_be32(p + 12, (uint32_t)w);
    for (size_t i = 16; i < plen; i++) p[i] = (unsigned char)i;
    write_temp(images, cap, "set-images", p, plen);
    gt_free(p);
    unsigned char *l = gt_alloc(8 + (size_t)n);
    put_be32(l, 0x801);
    put_be32(l + 4, (uint32_t)n);
    for (int i = 0; i < n; i++) l[8 + i] = (unsigned char)(i % (max_label + 1));
    write_temp(labels, cap, "set-labels", l, 8 + (size_t)n);
    gt_free(l);
}

static void test_sets(void) {
    char ti[128], tl[128], vi[128], vl[128], si[128], sl[128], bi[128], bl[128];
    write_idx(ti, tl, sizeof ti, 40, 28, 28, 9);
    write_idx(vi, vl, sizeof vi, 10, 28, 28, 9);
    write_idx(si, sl, sizeof si, 10, 14, 14, 9);  /* another shape */
    write_idx(bi, bl, sizeof bi, 20, 28, 28, 12); /* labels up to 12 */
    gt_data_opts o = {.kind = GT_DATA_IDX, .train_images = ti, .train_labels = tl, .test_images = vi, .test_labels = vl};
    gt_dataset tr, te;
    CHECK_OK(gt_data_load(&o, 1, &tr, &te));
    CHECK(tr.n == 40 && te.n == 10 && tr.toy == GT_TOY_NONE, "sets load");
    gt_dataset_free(&tr);
    gt_dataset_free(&te);
    o.test_images = si, o.test_labels = sl;
    CHECK_ERROR(gt_data_load(&o, 1, &tr, &te), "test images of another shape", si, "are 1x14x14", "1x28x28",
                "one shape");
    CHECK(!tr.pixels && !te.pixels, "nothing is left loaded after an error");
    o.test_images = bi, o.test_labels = bl;
    CHECK_ERROR(gt_data_load(&o, 1, &tr, &te), "test labels out of range", bl, "labels up to 12", "only up to 9");
    o.test_images = vi, o.test_labels = NULL;
    CHECK_ERROR(gt_data_load(&o, 1, &tr, &te), "labels on one side", "has labels but", "does not");
    o.test_labels = vl;
    o.limit = 41;
    CHECK_ERROR(gt_data_load(&o, 1, &tr, &te), "limit above the set", ti, "fewer than the 41");
    const char *files[] = {ti, tl, vi, vl, si, sl, bi, bl};
    for (int i = 0; i < 8; i++) unlink(files[i]);
    gt_data_opts toy = {.kind = GT_DATA_TOY, .toy = GT_TOY_GRID25, .n = 500, .n_test = 100, .std = 0.05f};
    CHECK_OK(gt_data_load(&toy, 3, &tr, &te));
    CHECK(tr.n == 500 && te.n == 100 && tr.toy == GT_TOY_GRID25 && te.toy_std == 0.05f &&
              memcmp(tr.values, te.values, 100 * 2 * sizeof(float)) != 0,
          "toy sets from two streams");
    gt_dataset_free(&tr);
    gt_dataset_free(&te);
}

/* ---- binarization -------------------------------------------------------- */

static void test_binarize(void) {
    enum { D = 37 };
    float x[4 * D], one[4 * D], r0[2 * D], r1[2 * D];
    gt_rand_uniform(x, 4 * D, 5, GT_PURPOSE(GT_RNG_TEST, 20), 0, 0);
    memcpy(one, x, sizeof x);
    gt_binarize(one, 4, D, 11, 3, 0, 1);
    /* two ranks: rank r holds global examples r, r+2 */
    for (int i = 0; i < 2; i++) {
        memcpy(r0 + i * D, x + (2 * i) * D, D * sizeof(float));
        memcpy(r1 + i * D, x + (2 * i + 1) * D, D * sizeof(float));
    }
    gt_binarize(r0, 2, D, 11, 3, 0, 2);
    gt_binarize(r1, 2, D, 11, 3, 1, 2);
    int same = 1, binary = 1;
    for (int i = 0; i < 2; i++) {
        same &= memcmp(r0 + i * D, one + (2 * i) * D, D * sizeof(float)) == 0;
        same &= memcmp(r1 + i * D, one + (2 * i + 1) * D, D * sizeof(float)) == 0;
    }
    for (int i = 0; i < 4 * D; i++) binary &= one[i] == 0.0f || one[i] == 1.0f;
    CHECK(same, "binarize: 1 rank x 4 == 2 ranks x 2 (example0 0/1, stride 2)");
    CHECK(binary, "binarize gives 0/1 values");
    float other[4 * D];
    memcpy(other, x, sizeof x);
    gt_binarize(other, 4, D, 11, 4, 0, 1);
    CHECK(memcmp(other, one, sizeof one) != 0, "another step gives other draws");

    /* probability: x = 0.3 gives about 30% ones; 0 and 1 stay */
    enum { M = 20000 };
    float *p = gt_alloc_floats(M);
    for (int i = 0; i < M; i++) p[i] = i < 2 ? (float)i : 0.3f;
    gt_binarize(p, 1, M, 1, 0, 0, 1);
    double s = 0;
    for (int i = 2; i < M; i++) s += p[i];
    s /= M - 2;
    CHECK(p[0] == 0.0f && p[1] == 1.0f, "binarize keeps 0 and 1 (%g %g)", (double)p[0], (double)p[1]);
    CHECK(fabs(s - 0.3) < 0.015, "binarize of 0.3 gives %.4f ones", s);
    gt_free(p);
}

/* ---- toy mixtures -------------------------------------------------------- */

static void test_toy_kind(gt_toy_kind kind, const char *name, int expect_count, float std) {
    float c[2 * 25];
    int count = gt_toy_centres(kind, c, 25);
    CHECK(count == expect_count, "%s has %d centres, expected %d", name, count, expect_count);
    const int64_t n = 10000;
    gt_dataset ds;
    gt_toy_make(&ds, kind, n, std, 17);
    CHECK(ds.n == n && ds.shape.c == 2 && ds.shape.h == 1 && ds.shape.w == 1 && ds.values && !ds.pixels,
          "%s: n %lld shape %dx%dx%d", name, (long long)ds.n, ds.shape.c, ds.shape.h, ds.shape.w);
    CHECK(ds.labels && ds.n_classes == count, "%s: labels are centre indices (%d classes)", name, ds.n_classes);
    int used[25] = {0}, far = 0, wrong = 0;
    for (int64_t i = 0; i < n; i++) {
        float x = ds.values[2 * i], y = ds.values[2 * i + 1];
        int best = 0;
        double bd = 1e30;
        for (int k = 0; k < count; k++) {
            double d = hypot(x - c[2 * k], y - c[2 * k + 1]);
            if (d < bd) {
                bd = d;
                best = k;
            }
        }
        if (bd > 6 * std) far++;
        used[best]++;
        if (ds.labels[i] != best) wrong++;
    }
    CHECK(far == 0, "%s: %d points farther than 6 std from every centre", name, far);
    CHECK(wrong == 0, "%s: %d points nearest to a centre other than their label", name, wrong);
    for (int k = 0; k < count; k++)
        CHECK(abs(used[k] - (int)(n / count)) < (int)(n / count) / 4, "%s: centre %d has %d points (expected ~%lld)",
              name, k, used[k], (long long)(n / count));
    /* deterministic from the seed */
    gt_dataset again;
    gt_toy_make(&again, kind, n, std, 17);
    CHECK(memcmp(again.values, ds.values, (size_t)n * 2 * sizeof(float)) == 0, "%s: same seed, same points", name);
    gt_dataset_free(&again);
    /* batches copy values as they are */
    int64_t idx[2] = {5, 9999};
    float xb[4];
    int lb[2];
    gt_dataset_batch(&ds, idx, 2, GT_SCALE_SIGNED, xb, lb);
    CHECK(xb[0] == ds.values[10] && xb[3] == ds.values[2 * 9999 + 1] && lb[1] == ds.labels[9999],
          "%s: batch copies float values and labels", name);
    gt_dataset_free(&ds);
}

static void test_toy(void) {
    float c[2 * 25];
    gt_toy_centres(GT_TOY_RING8, c, 25);
    CHECK(check_close(c[0], 1, 0, 1e-7) && check_close(c[1], 0, 0, 1e-7) && check_close(c[4], 0, 0, 1e-7) &&
              check_close(c[5], 1, 0, 1e-7) && check_close(c[2], sqrt(0.5), 1e-6, 0),
          "ring8 centres on the unit circle at 2*pi*k/8");
    gt_toy_centres(GT_TOY_GRID25, c, 25);
    CHECK(c[0] == -4 && c[1] == -4 && c[48] == 4 && c[49] == 4 && c[2] == -4 && c[3] == -2,
          "grid25 centres (2i-4, 2j-4)");
    float small[4] = {99, 99, 99, 99};
    CHECK(gt_toy_centres(GT_TOY_GRID25, small, 1) == 25 && small[2] == 99, "gt_toy_centres honours cap");
    test_toy_kind(GT_TOY_RING8, "ring8", 8, 0.02f);
    test_toy_kind(GT_TOY_GRID25, "grid25", 25, 0.05f);
}

int main(void) {
    test_idx();
    test_sets();
    test_binarize();
    test_toy();
    return check_report("test_data");
}
