/* PNG pictures through libpng: sample grids and 2-D scatter plots. The only
 * code that includes <png.h>. */
#include "gentrain/io.h"

#include "gentrain/core.h"

#include <png.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* libpng's messages: kept for our own one-line error instead of printed. */
static char png_msg[256];
static void png_on_error(png_structp png, png_const_charp msg) {
    snprintf(png_msg, sizeof png_msg, "%s", msg ? msg : "?");
    png_longjmp(png, 1);
}
static void png_on_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

/* Writes the PNG to fp; 0 or -1 (libpng failed: an I/O error; png_msg says what). */
static int write_png(FILE *fp, const uint8_t *pixels, int w, int h, int channels) {
    png_msg[0] = '\0';
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, NULL);
        return -1;
    }
    /* volatile: read after a longjmp from libpng */
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        gt_free(rows);
        return -1;
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    rows = gt_alloc(sizeof(png_bytep) * (size_t)h);
    for (int y = 0; y < h; y++) rows[y] = (png_bytep)(pixels + (size_t)y * w * channels);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    gt_free(rows);
    return 0;
}

gt_status gt_png_write(const char *path, const uint8_t *pixels, int w, int h, int channels) {
    if (w < 1 || h < 1 || (channels != 1 && channels != 3))
        return GT_ERROR("%s: cannot write a %dx%d PNG with %d channels", path, w, h, channels);
    char tmp[4200];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp) return GT_ERROR("PNG path too long: %s", path);
    FILE *fp = fopen(tmp, "wb");
    if (!fp) return GT_ERROR("cannot create %s: %s", tmp, strerror(errno));
    int failed = write_png(fp, pixels, w, h, channels) != 0;
    int e = errno;
    if (!failed && (fflush(fp) != 0 || ferror(fp))) failed = 1, e = errno;
    if (fclose(fp) != 0 && !failed) failed = 1, e = errno;
    if (!failed && rename(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        return GT_ERROR("cannot rename %s to %s: %s", tmp, path, strerror(e));
    }
    if (failed) {
        unlink(tmp);
        return GT_ERROR("cannot write %s: %s (disk full or an I/O error?); the earlier file, if any, is unchanged",
                        path, e ? strerror(e) : png_msg[0] ? png_msg : "libpng failed");
    }
    return GT_OK;
}

static uint8_t to_byte(float v, float lo, float hi) {
    float t = (v - lo) / (hi - lo) * 255.0f;
    if (!(t > 0)) return 0; /* also NaN */
    if (t >= 255) return 255;
    return (uint8_t)lrintf(t);
}

gt_status gt_png_write_grid(const char *path, const float *images, int n, int c, int h, int w, float lo, float hi,
                            int cols) {
    if (n < 1 || (c != 1 && c != 3) || h < 1 || w < 1 || !(hi > lo))
        return GT_ERROR("%s: cannot draw a grid of %d images of %dx%dx%d in [%g, %g] (1 or 3 channels)", path, n, c,
                        h, w, lo, hi);
    if (cols <= 0) cols = (int)ceil(sqrt((double)n));
    if (cols > n) cols = n;
    int rows = (n + cols - 1) / cols, gap = 2;
    int W = cols * w + (cols + 1) * gap, H = rows * h + (rows + 1) * gap;
    uint8_t *pix = gt_alloc((size_t)W * H * c);
    memset(pix, 40, (size_t)W * H * c); /* dark gray gaps */
    for (int k = 0; k < n; k++) {
        int x0 = gap + (k % cols) * (w + gap), y0 = gap + (k / cols) * (h + gap);
        const float *img = images + (size_t)k * c * h * w;
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    pix[((size_t)(y0 + y) * W + x0 + x) * c + ch] = to_byte(img[((size_t)ch * h + y) * w + x], lo, hi);
    }
    gt_status st = gt_png_write(path, pix, W, H, c);
    gt_free(pix);
    return st;
}

static void dot(uint8_t *pix, int size, float x, float y, float extent, int r, const uint8_t rgb[3]) {
    int cx = (int)lrintf((x / extent + 1) * 0.5f * (float)(size - 1));
    int cy = (int)lrintf((1 - (y / extent + 1) * 0.5f) * (float)(size - 1));
    for (int dy = -r; dy <= r; dy++)
        for (int dx = -r; dx <= r; dx++) {
            int px = cx + dx, py = cy + dy;
            if (px < 0 || py < 0 || px >= size || py >= size || dx * dx + dy * dy > r * r) continue;
            memcpy(pix + ((size_t)py * size + px) * 3, rgb, 3);
        }
}

gt_status gt_png_write_scatter(const char *path, const float *xy, int n, const float *ref, int n_ref, float extent,
                               int size) {
    GT_ASSERT(n >= 0 && size >= 16 && extent > 0, "%s: bad scatter plot request", path);
    uint8_t *pix = gt_alloc((size_t)size * size * 3);
    memset(pix, 255, (size_t)size * size * 3);
    static const uint8_t axis[3] = {220, 220, 220}, red[3] = {220, 40, 40}, blue[3] = {30, 60, 160};
    for (int i = 0; i < size; i++) {
        memcpy(pix + ((size_t)(size / 2) * size + i) * 3, axis, 3);
        memcpy(pix + ((size_t)i * size + size / 2) * 3, axis, 3);
    }
    for (int i = 0; i < n_ref && ref; i++) dot(pix, size, ref[2 * i], ref[2 * i + 1], extent, 5, red);
    for (int i = 0; i < n; i++) dot(pix, size, xy[2 * i], xy[2 * i + 1], extent, 1, blue);
    gt_status st = gt_png_write(path, pix, size, size, 3);
    gt_free(pix);
    return st;
}
