/* JPEG and PNG decoding for the image converters (mg_image.h). Errors of both libraries
 * come back here by longjmp and turn into a reason string; nothing calls the error path,
 * so one damaged file among thousands is a bad item, not a dead rank. */
#include "mg_image.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <jpeglib.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mg_error.h"

/* Larger images are refused rather than allocated (a damaged header can claim anything). */
#define MAX_PIXELS ((int64_t)1 << 28)

static bool fail(char *why, size_t n, const char *path, const char *fmt, const char *detail)
{
    char msg[400];
    snprintf(msg, sizeof msg, fmt, detail);
    snprintf(why, n, "%s: %s", path, msg);
    return false;
}

static bool size_ok(int64_t w, int64_t h, char *why, size_t n, const char *path)
{
    if (w < 1 || h < 1 || w * h > MAX_PIXELS) {
        char d[96];
        snprintf(d, sizeof d, "%lld x %lld", (long long)w, (long long)h);
        return fail(why, n, path, "implausible image size %s (the header is damaged, or the image is too large)",
                    d);
    }
    return true;
}

/* ------------------------------------------------------------------ JPEG */

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} jpeg_trap;

static void jpeg_error_exit_trap(j_common_ptr cinfo)
{
    jpeg_trap *t = (jpeg_trap *)cinfo->err;
    cinfo->err->format_message(cinfo, t->message);
    longjmp(t->jump, 1);
}

/* Level -1 is a warning: corrupt data that libjpeg would paper over (a premature end of
 * the file is filled with grey). Such an image is damaged. Trace messages are ignored. */
static void jpeg_emit_trap(j_common_ptr cinfo, int level)
{
    if (level < 0)
        jpeg_error_exit_trap(cinfo);
}

static bool jpeg_decode(FILE *fp, const char *path, mg_image *img, bool header_only, char *why, size_t n)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_trap trap;
    cinfo.err = jpeg_std_error(&trap.pub);
    trap.pub.error_exit = jpeg_error_exit_trap;
    trap.pub.emit_message = jpeg_emit_trap;
    if (setjmp(trap.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return fail(why, n, path, "damaged JPEG: %s", trap.message);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, fp);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&cinfo);
        return fail(why, n, path, "%s JPEG: only grey and colour (YCbCr/RGB) JPEGs are read",
                    "a CMYK");
    }
    bool grey = cinfo.jpeg_color_space == JCS_GRAYSCALE;
    cinfo.out_color_space = grey ? JCS_GRAYSCALE : JCS_RGB;
    img->w = (int)cinfo.image_width;
    img->h = (int)cinfo.image_height;
    img->c = grey ? 1 : 3;
    if (!size_ok(cinfo.image_width, cinfo.image_height, why, n, path)) {
        jpeg_destroy_decompress(&cinfo);
        return false;
    }
    if (header_only) {
        jpeg_destroy_decompress(&cinfo);
        return true;
    }
    jpeg_start_decompress(&cinfo);
    if ((int)cinfo.output_width != img->w || (int)cinfo.output_height != img->h ||
        cinfo.output_components != img->c) {
        jpeg_destroy_decompress(&cinfo);
        return fail(why, n, path, "%s", "libjpeg decodes it to an unexpected shape");
    }
    img->px = mg_alloc((size_t)img->w * img->h * img->c, "JPEG pixels");
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = img->px + (size_t)cinfo.output_scanline * img->w * img->c;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return true;
}

/* ------------------------------------------------------------------ PNG */

typedef struct {
    jmp_buf jump;
    char message[256];
} png_trap;

static void png_error_trap(png_structp png, png_const_charp msg)
{
    png_trap *t = png_get_error_ptr(png);
    snprintf(t->message, sizeof t->message, "%s", msg);
    longjmp(t->jump, 1);
}

/* Warnings (colour profiles and the like) leave the pixels intact. */
static void png_warning_quiet(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

static bool png_decode(FILE *fp, const char *path, mg_image *img, bool header_only, char *why, size_t n)
{
    png_trap trap;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &trap, png_error_trap, png_warning_quiet);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        return fail(why, n, path, "%s", "libpng could not allocate its structures");
    }
    png_bytep *volatile rows = NULL;
    if (setjmp(trap.jump)) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rows);
        return fail(why, n, path, "damaged or unsupported PNG: %s", trap.message);
    }
    png_init_io(png, fp);
    png_read_info(png, info);
    int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if (color != PNG_COLOR_TYPE_GRAY && color != PNG_COLOR_TYPE_GRAY_ALPHA && color != PNG_COLOR_TYPE_RGB &&
        color != PNG_COLOR_TYPE_RGB_ALPHA && color != PNG_COLOR_TYPE_PALETTE) {
        char d[32];
        snprintf(d, sizeof d, "%d", color);
        png_destroy_read_struct(&png, &info, NULL);
        return fail(why, n, path, "PNG colour type %s is not one of grey, grey+alpha, RGB, RGBA, palette", d);
    }
    img->w = (int)w;
    img->h = (int)h;
    img->c = (color & PNG_COLOR_MASK_COLOR) ? 3 : 1;
    if (!size_ok(w, h, why, n, path)) {
        png_destroy_read_struct(&png, &info, NULL);
        return false;
    }
    if (header_only) {
        png_destroy_read_struct(&png, &info, NULL);
        return true;
    }
    if (color == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if ((color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16)
        png_set_strip_16(png);
    if (color & PNG_COLOR_MASK_ALPHA)
        png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != (size_t)img->w * img->c)
        png_error(png, "unexpected row size after conversion to 8 bits");
    img->px = mg_alloc((size_t)img->w * img->h * img->c, "PNG pixels");
    rows = malloc((size_t)img->h * sizeof(png_bytep));
    if (!rows)
        png_error(png, "out of memory for row pointers");
    for (int y = 0; y < img->h; y++)
        rows[y] = img->px + (size_t)y * img->w * img->c;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    return true;
}

/* ------------------------------------------------------------------ both */

static bool decode(const char *path, mg_image *img, bool header_only, char *why, size_t n)
{
    memset(img, 0, sizeof *img);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return fail(why, n, path, "cannot open: %s", strerror(errno));
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char head[8] = {0};
    size_t got = fread(head, 1, sizeof head, fp);
    rewind(fp);
    bool ok;
    if (got >= 3 && head[0] == 0xff && head[1] == 0xd8 && head[2] == 0xff)
        ok = jpeg_decode(fp, path, img, header_only, why, n);
    else if (got == 8 && memcmp(head, png_sig, 8) == 0)
        ok = png_decode(fp, path, img, header_only, why, n);
    else
        ok = fail(why, n, path, "%s", got == 0 ? "empty file, not an image" : "not a JPEG or PNG file");
    fclose(fp);
    if (!ok)
        mg_image_free(img);
    return ok;
}

bool mg_image_probe(const char *path, int *w, int *h, int *c, char *why, size_t why_size)
{
    mg_image img;
    bool ok = decode(path, &img, true, why, why_size);
    *w = img.w;
    *h = img.h;
    *c = img.c;
    return ok;
}

bool mg_image_load(const char *path, mg_image *img, char *why, size_t why_size)
{
    return decode(path, img, false, why, why_size);
}

void mg_image_free(mg_image *img)
{
    mg_free(img->px);
    memset(img, 0, sizeof *img);
}

bool mg_image_name_ok(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && dot != name &&
           (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 || strcasecmp(dot, ".png") == 0);
}
