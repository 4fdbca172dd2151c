/* Helper for tests/test_cli_images.sh (not a test by itself): writes small inputs for the
 * image converters into the folder given.
 *   photos/cats/{a.jpg,b.png}, photos/dogs/{c.jpg,d.png}   40 x 30 colour and grey images
 *   broken/{a.png,bad.jpg}      a good PNG and a JPEG whose end marker is cut off
 *   small/{a.png}               20 x 10, smaller than the test's --size 16 uncropped
 *   cifar/{data_batch_1..5,test_batch}.bin   two records each */
#include <stdio.h> /* before jpeglib.h */
#include <jpeglib.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void die(const char *what)
{
    fprintf(stderr, "prog_write_images: cannot write %s\n", what);
    exit(1);
}

static void write_png(const char *path, int w, int h, int c, int seed)
{
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!f || !info || setjmp(png_jmpbuf(png)))
        die(path);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    unsigned char row[3 * 256];
    for (int y = 0; y < h; y++) {
        for (int i = 0; i < w * c; i++)
            row[i] = (unsigned char)(seed * 40 + y * 3 + i);
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

/* A JPEG; cut > 0 drops that many bytes from its end. */
static void write_jpeg(const char *path, int w, int h, int c, int seed, int cut)
{
    unsigned char *buf = NULL, px[3 * 256];
    unsigned long size = 0;
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr je;
    ci.err = jpeg_std_error(&je);
    jpeg_create_compress(&ci);
    jpeg_mem_dest(&ci, &buf, &size);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = c;
    ci.in_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        for (int i = 0; i < w * c; i++)
            px[i] = (unsigned char)(seed * 50 + (int)ci.next_scanline * 2 + i);
        JSAMPROW r = px;
        jpeg_write_scanlines(&ci, &r, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, size - (unsigned long)cut, f) != size - (unsigned long)cut)
        die(path);
    fclose(f);
    free(buf);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: prog_write_images DIR\n");
        return 2;
    }
    char p[4096];
    const char *subdirs[] = {"photos", "photos/cats", "photos/dogs", "broken", "small", "cifar"};
    for (int i = 0; i < 6; i++) {
        snprintf(p, sizeof p, "%s/%s", argv[1], subdirs[i]);
        if (mkdir(p, 0777) != 0)
            die(p);
    }
#define AT(name) (snprintf(p, sizeof p, "%s/%s", argv[1], name), p)
    write_jpeg(AT("photos/cats/a.jpg"), 40, 30, 3, 1, 0);
    write_png(AT("photos/cats/b.png"), 40, 30, 1, 2);
    write_jpeg(AT("photos/dogs/c.jpg"), 40, 30, 1, 3, 0);
    write_png(AT("photos/dogs/d.png"), 40, 30, 3, 4);
    write_png(AT("broken/a.png"), 40, 30, 3, 5);
    write_jpeg(AT("broken/bad.jpg"), 40, 30, 3, 6, 2);
    write_png(AT("small/a.png"), 20, 10, 3, 7);
    static const char *const batches[6] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                           "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
    unsigned char rec[2 * 3073];
    for (int b = 0; b < 6; b++) {
        for (int i = 0; i < 2 * 3073; i++)
            rec[i] = (unsigned char)(i % 3073 == 0 ? (b + i / 3073) % 10 : (i * 7 + b) & 0xff);
        char name[64];
        snprintf(name, sizeof name, "cifar/%s", batches[b]);
        FILE *f = fopen(AT(name), "wb");
        if (!f || fwrite(rec, 1, sizeof rec, f) != sizeof rec)
            die(p);
        fclose(f);
    }
    return 0;
}
