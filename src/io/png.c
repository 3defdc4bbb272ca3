/* PNG pictures through libpng: sample grids and 2-D scatter plots. The only
 * code that includes <png.h>. Nothing here is fatal: failures come back as
 * -1 with a message (file and reason), so the caller decides. */
#include "gentrain/io.h"

#include "gentrain/core.h"

#include <png.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

int gt_png_write(const char *path, const uint8_t *pixels, int w, int h, int channels, char *why, size_t cap) {
    if (w < 1 || h < 1 || (channels != 1 && channels != 3)) {
        snprintf(why, cap, "%s: cannot write a %dx%d PNG with %d channels", path, w, h, channels);
        return -1;
    }
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        snprintf(why, cap, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, NULL);
        fclose(fp);
        snprintf(why, cap, "%s: libpng cannot allocate its state", path);
        return -1;
    }
    /* volatile: read after a longjmp from libpng */
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(fp);
        gt_free(rows);
        snprintf(why, cap, "cannot write %s: libpng failed (disk full or an I/O error?)", path);
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
    if (fflush(fp) != 0 || ferror(fp)) {
        snprintf(why, cap, "cannot write %s: %s", path, strerror(errno));
        fclose(fp);
        return -1;
    }
    if (fclose(fp) != 0) {
        snprintf(why, cap, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static uint8_t to_byte(float v, float lo, float hi) {
    float t = (v - lo) / (hi - lo) * 255.0f;
    if (!(t > 0)) return 0; /* also NaN */
    if (t >= 255) return 255;
    return (uint8_t)lrintf(t);
}

int gt_png_write_grid(const char *path, const float *images, int n, int c, int h, int w, float lo, float hi, int cols,
                      char *why, size_t cap) {
    if (n < 1 || (c != 1 && c != 3) || h < 1 || w < 1 || !(hi > lo)) {
        snprintf(why, cap, "%s: cannot draw a grid of %d images of %dx%dx%d in [%g, %g] (1 or 3 channels)", path, n, c,
                 h, w, lo, hi);
        return -1;
    }
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
    int rc = gt_png_write(path, pix, W, H, c, why, cap);
    gt_free(pix);
    return rc;
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

int gt_png_write_scatter(const char *path, const float *xy, int n, const float *ref, int n_ref, float extent, int size,
                         char *why, size_t cap) {
    if (n < 0 || size < 16 || !(extent > 0)) {
        snprintf(why, cap, "%s: bad scatter plot request", path);
        return -1;
    }
    uint8_t *pix = gt_alloc((size_t)size * size * 3);
    memset(pix, 255, (size_t)size * size * 3);
    static const uint8_t axis[3] = {220, 220, 220}, red[3] = {220, 40, 40}, blue[3] = {30, 60, 160};
    for (int i = 0; i < size; i++) {
        memcpy(pix + ((size_t)(size / 2) * size + i) * 3, axis, 3);
        memcpy(pix + ((size_t)i * size + size / 2) * 3, axis, 3);
    }
    for (int i = 0; i < n_ref && ref; i++) dot(pix, size, ref[2 * i], ref[2 * i + 1], extent, 5, red);
    for (int i = 0; i < n; i++) dot(pix, size, xy[2 * i], xy[2 * i + 1], extent, 1, blue);
    int rc = gt_png_write(path, pix, size, size, 3, why, cap);
    gt_free(pix);
    return rc;
}
