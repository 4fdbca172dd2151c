/* PNG grids of images (see mg_png_grid.h). libpng reports errors through a callback,
 * which here goes straight to the error path (it never returns into libpng). */
#include "mg_png_grid.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <string.h>

#include "mg_error.h"

static char current_path[1024];

static void png_error_fn(png_structp png, png_const_charp msg)
{
    (void)png;
    MG_FAIL(current_path, "check the disk and the path", "libpng: %s", msg);
}

static void png_warning_fn(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

void mg_png_grid_write(const char *path, const float *images, int n, int c, int h, int w)
{
    MG_CHECK(n > 0 && (c == 1 || c == 3) && h > 0 && w > 0, path, "PNG grids need grey or RGB images",
             "cannot draw %d samples of shape %dx%dx%d as images", n, c, h, w);
    const int border = 2;
    int cols = (int)ceil(sqrt((double)n)), rows = (n + cols - 1) / cols;
    int width = cols * (w + border) + border, height = rows * (h + border) + border;
    size_t row_bytes = (size_t)width * (size_t)c;
    unsigned char *pixels = mg_alloc(row_bytes * (size_t)height, "PNG grid");
    for (int k = 0; k < n; k++) {
        int y0 = border + (k / cols) * (h + border), x0 = border + (k % cols) * (w + border);
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    float v = images[(((size_t)k * c + ch) * h + y) * w + x];
                    v = fminf(fmaxf(v, -1.0f), 1.0f);
                    pixels[(size_t)(y0 + y) * row_bytes + (size_t)(x0 + x) * c + ch] =
                        (unsigned char)lrintf((v + 1.0f) * 127.5f);
                }
    }

    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(current_path, sizeof current_path, "%s", tmp);
    FILE *f = fopen(tmp, "wb");
    MG_CHECK(f, tmp, "check the path", "cannot write: %s", strerror(errno));
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, png_error_fn, png_warning_fn);
    MG_CHECK(png, tmp, NULL, "libpng could not start a writer");
    png_infop info = png_create_info_struct(png);
    MG_CHECK(info, tmp, NULL, "libpng could not allocate image info");
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < height; y++)
        png_write_row(png, pixels + (size_t)y * row_bytes);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    MG_CHECK(fclose(f) == 0, tmp, "check the disk", "close failed: %s", strerror(errno));
    MG_CHECK(rename(tmp, path) == 0, path, NULL, "rename failed: %s", strerror(errno));
    mg_free(pixels);
}
