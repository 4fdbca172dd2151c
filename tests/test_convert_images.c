/* `data images` and `data cifar10` (mg_convert_images.h) on small inputs the test writes
 * itself (PNGs with libpng, JPEGs with libjpeg's compressor, CIFAR batches by hand): known
 * pixels through area and bilinear resizing, centred crop against none, grey and colour
 * mixed, every PNG colour type, labels from subfolders, and each kind of bad input ending
 * every rank with a message naming the file and leaving no file behind. The expected
 * values do not depend on the rank count, so runs at 1 and 2 ranks also show that both
 * write the same samples.
 * mpirun-np: 1 2 */
#include <dirent.h>
#include <stdio.h> /* before jpeglib.h */
#include <jpeglib.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "mg_test.h"
#include "mg_testenv.h"

#include "mg_convert_images.h"
#include "mg_dist.h"
#include "mg_h5schema.h"

/* ------------------------------------------------------------------ writing inputs */

/* A PNG of w x h pixels given as interleaved 8-bit values with c channels (1 grey, 2 grey +
 * alpha, 3 RGB, 4 RGBA); depth 16 stores each value v as v * 257; palette: c must be 3 and
 * the image is stored as a palette of its distinct colours (up to 256). */
static void write_png(const char *path, int w, int h, int c, int depth, bool palette, const uint8_t *px)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_non_null(info);
    if (setjmp(png_jmpbuf(png)))
        fail_msg("libpng could not write %s", path);
    png_init_io(png, f);
    static const int types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                 PNG_COLOR_TYPE_RGB_ALPHA};
    png_color pal[256];
    int n_pal = 0;
    uint8_t *idx = NULL;
    if (palette) {
        idx = malloc((size_t)w * h);
        for (int i = 0; i < w * h; i++) {
            int k = 0;
            while (k < n_pal && !(pal[k].red == px[3 * i] && pal[k].green == px[3 * i + 1] &&
                                  pal[k].blue == px[3 * i + 2]))
                k++;
            if (k == n_pal) {
                assert_true(n_pal < 256);
                pal[n_pal++] = (png_color){px[3 * i], px[3 * i + 1], px[3 * i + 2]};
            }
            idx[i] = (uint8_t)k;
        }
        png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_set_PLTE(png, info, pal, n_pal);
    } else {
        png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, types[c], PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    }
    png_write_info(png, info);
    int bpp = palette ? 1 : c * depth / 8;
    uint8_t *row = malloc((size_t)w * bpp);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            if (palette) {
                row[x] = idx[y * w + x];
                continue;
            }
            for (int ch = 0; ch < c; ch++) {
                uint8_t v = px[((size_t)y * w + x) * c + ch];
                if (depth == 16)
                    row[(x * c + ch) * 2] = row[(x * c + ch) * 2 + 1] = v; /* v * 257, big-endian */
                else
                    row[x * c + ch] = v;
            }
        }
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
    free(row);
    free(idx);
}

static void write_jpeg(const char *path, int w, int h, int c, const uint8_t *px)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr jerr;
    cinfo.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = (JDIMENSION)w;
    cinfo.image_height = (JDIMENSION)h;
    cinfo.input_components = c;
    cinfo.in_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, 95, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)cinfo.next_scanline * w * c);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    fclose(f);
}

static uint8_t *constant(int w, int h, int c, const uint8_t *value)
{
    uint8_t *px = malloc((size_t)w * h * c);
    for (int i = 0; i < w * h; i++)
        memcpy(px + (size_t)i * c, value, (size_t)c);
    return px;
}

/* Grey, value 4x along each row (0..252 for w = 64). */
static uint8_t *gradient(int w, int h)
{
    uint8_t *px = malloc((size_t)w * h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            px[y * w + x] = (uint8_t)(4 * x);
    return px;
}

static void path_in(char *out, const char *dir, const char *name) { snprintf(out, 512, "%s/%s", dir, name); }

static void make_dir(const char *dir, const char *name)
{
    char p[512];
    path_in(p, dir, name);
    assert_int_equal(mkdir(p, 0777), 0);
}

/* Copies the first `keep` bytes of src to dst (a truncated file). */
static void truncated_copy(const char *src, const char *dst, long keep)
{
    FILE *a = fopen(src, "rb"), *b = fopen(dst, "wb");
    assert_true(a && b);
    for (long i = 0; i < keep; i++) {
        int ch = fgetc(a);
        assert_true(ch != EOF);
        fputc(ch, b);
    }
    fclose(a);
    fclose(b);
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* ------------------------------------------------------------------ reading outputs */

typedef struct {
    mg_data_info info;
    uint8_t *px;
    int32_t *labels;
} loaded;

static void load(const char *path, loaded *l)
{
    char err[1024];
    mg_h5_file *f = mg_h5_open(path, &l->info, err, sizeof err);
    if (!f)
        fail_msg("%s", err);
    mg_h5_raw x, y;
    if (!mg_h5_raw_layout(f, &x, &y, err, sizeof err))
        fail_msg("%s", err);
    mg_h5_raw_free(&x);
    mg_h5_raw_free(&y);
    l->px = malloc((size_t)(l->info.n * mg_data_sample_bytes(&l->info)));
    mg_h5_read_samples(f, 0, l->info.n, l->px);
    l->labels = NULL;
    if (l->info.has_labels) {
        l->labels = malloc((size_t)l->info.n * 4);
        mg_h5_read_labels(f, 0, l->info.n, l->labels);
    }
    mg_h5_close(f);
}

static void unload(loaded *l)
{
    free(l->px);
    free(l->labels);
    mg_data_info_free(&l->info);
}

/* Sample i, channel ch, row y, column x. */
static int at(const loaded *l, int64_t i, int ch, int y, int x)
{
    const mg_data_info *d = &l->info;
    return l->px[(size_t)i * d->c * d->h * d->w + ((size_t)ch * d->h + y) * d->w + x];
}

static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static mg_images_opts opts_of(int size, bool crop, mg_resize_kind kind)
{
    mg_images_opts o = {.size = size, .crop_center = crop, .resize = kind, .quiet = true};
    return o;
}

/* ------------------------------------------------------------------ tests */

/* A grey gradient and a constant colour image: C = 3 (the grey one promoted), and the area
 * and bilinear filters give the known values. */
static void test_resize_known_pixels(void **state)
{
    (void)state;
    char dir[256], in[512], out[512], p[512];
    mg_test_dir_make(dir, sizeof dir, "convimg");
    path_in(in, dir, "flat");
    path_in(out, dir, "out");
    if (mg_dist_rank() == 0) {
        make_dir(dir, "flat");
        uint8_t *g = gradient(64, 64);
        path_in(p, in, "a_gradient.png");
        write_png(p, 64, 64, 1, 8, false, g);
        free(g);
        const uint8_t rgb[3] = {200, 100, 50};
        uint8_t *k = constant(48, 32, 3, rgb);
        path_in(p, in, "b_constant.png");
        write_png(p, 48, 32, 3, 8, false, k);
        free(k);
    }
    mg_dist_barrier();
    for (int kind = 0; kind < 2; kind++) {
        mg_images_opts o = opts_of(16, false, kind ? MG_RESIZE_BILINEAR : MG_RESIZE_AREA);
        mg_images_result r;
        mg_convert_images(in, out, &o, &r);
        assert_int_equal(r.n_written, 2);
        assert_int_equal(r.channels, 3);
        assert_int_equal(r.n_classes, 0);
        char want[512];
        snprintf(want, sizeof want, "%s/flat.h5", out);
        assert_string_equal(r.out_path, want);
        if (mg_dist_rank() == 0) {
            loaded l;
            load(r.out_path, &l);
            assert_int_equal(l.info.n, 2);
            assert_int_equal(l.info.c, 3);
            assert_int_equal(l.info.h, 16);
            assert_false(l.info.has_labels);
            /* area: the mean of 4 source columns 4x..4x+3 = 16x + 6; bilinear samples
             * the source at 4x + 1.5, the same value */
            for (int ch = 0; ch < 3; ch++)
                for (int y = 0; y < 16; y++)
                    for (int x = 0; x < 16; x++) {
                        MG_ASSERT_CLOSE(at(&l, 0, ch, y, x), 16 * x + 6, 1, 0, "gradient");
                        assert_int_equal(at(&l, 1, ch, y, x), ch == 0 ? 200 : ch == 1 ? 100 : 50);
                    }
            unload(&l);
        }
        mg_dist_barrier();
    }
    mg_test_dir_remove(dir);
}

/* 60 x 20, three bands of 20 columns (0, 100, 200): the centred square is the middle band;
 * the whole image squeezed to 4 x 4 averages 15 columns per output column. */
static void test_crop_center_and_none(void **state)
{
    (void)state;
    char dir[256], in[512], out[512], p[512];
    mg_test_dir_make(dir, sizeof dir, "convimg");
    path_in(in, dir, "bands");
    path_in(out, dir, "out");
    if (mg_dist_rank() == 0) {
        make_dir(dir, "bands");
        uint8_t px[60 * 20];
        for (int y = 0; y < 20; y++)
            for (int x = 0; x < 60; x++)
                px[y * 60 + x] = (uint8_t)(100 * (x / 20));
        path_in(p, in, "bands.png");
        write_png(p, 60, 20, 1, 8, false, px);
    }
    mg_dist_barrier();
    static const int squeezed[4] = {0, 67, 133, 200}; /* 0; (5*0 + 10*100)/15; (10*100 + 5*200)/15; 200 */
    for (int crop = 0; crop < 2; crop++) {
        mg_images_opts o = opts_of(4, crop, MG_RESIZE_AREA);
        mg_images_result r;
        mg_convert_images(in, out, &o, &r);
        assert_int_equal(r.channels, 1);
        if (mg_dist_rank() == 0) {
            loaded l;
            load(r.out_path, &l);
            for (int y = 0; y < 4; y++)
                for (int x = 0; x < 4; x++)
                    assert_int_equal(at(&l, 0, 0, y, x), crop ? 100 : squeezed[x]);
            unload(&l);
        }
        mg_dist_barrier();
    }
    mg_test_dir_remove(dir);
}

/* Subfolders are classes (sorted; an empty one is not a class); every PNG colour type and
 * grey and colour JPEGs decode to the values written; --grey takes the luma. */
static void test_classes_and_formats(void **state)
{
    (void)state;
    char dir[256], in[512], out[512], p[512];
    mg_test_dir_make(dir, sizeof dir, "convimg");
    path_in(in, dir, "set");
    path_in(out, dir, "out");
    const uint8_t rgb[3] = {200, 100, 50}, grey[1] = {77}, grey_a[2] = {90, 10}, rgba[4] = {10, 20, 30, 0};
    if (mg_dist_rank() == 0) {
        make_dir(dir, "set");
        make_dir(in, "zebra");
        make_dir(in, "apple");
        make_dir(in, "empty");
        uint8_t *a = constant(8, 8, 2, grey_a), *b = constant(8, 8, 4, rgba), *c = constant(8, 8, 3, rgb),
                *d = constant(8, 8, 1, grey);
        char sub[512];
        path_in(sub, in, "apple");
        path_in(p, sub, "1_grey_alpha.png");
        write_png(p, 8, 8, 2, 8, false, a);
        path_in(p, sub, "2_rgba.png");
        write_png(p, 8, 8, 4, 8, false, b);
        path_in(p, sub, "3_palette.png");
        write_png(p, 8, 8, 3, 8, true, c);
        path_in(p, sub, "readme.txt");
        write_bytes(p, "not an image", 12);
        path_in(sub, in, "zebra");
        path_in(p, sub, "1_rgb16.png");
        write_png(p, 8, 8, 3, 16, false, c);
        path_in(p, sub, "2_grey.jpg");
        write_jpeg(p, 8, 8, 1, d);
        path_in(p, sub, "3_colour.JPEG");
        write_jpeg(p, 8, 8, 3, c);
        free(a), free(b), free(c), free(d);
    }
    mg_dist_barrier();
    /* samples in order: apple/1..3, zebra/1..3 */
    const uint8_t *want[6] = {(const uint8_t[]){90, 90, 90}, (const uint8_t[]){10, 20, 30}, rgb, rgb,
                              (const uint8_t[]){77, 77, 77}, rgb};
    for (int g = 0; g < 2; g++) {
        mg_images_opts o = opts_of(8, true, MG_RESIZE_AREA);
        o.grey = g;
        mg_images_result r;
        mg_convert_images(in, out, &o, &r);
        assert_int_equal(r.n_written, 6);
        assert_int_equal(r.n_classes, 2);
        assert_int_equal(r.n_ignored, 1);
        assert_int_equal(r.channels, g ? 1 : 3);
        if (mg_dist_rank() == 0) {
            loaded l;
            load(r.out_path, &l);
            assert_int_equal(l.info.n_classes, 2);
            assert_string_equal(l.info.class_names[0], "apple");
            assert_string_equal(l.info.class_names[1], "zebra");
            for (int i = 0; i < 6; i++) {
                assert_int_equal(l.labels[i], i / 3);
                double luma = 0.299 * want[i][0] + 0.587 * want[i][1] + 0.114 * want[i][2];
                for (int ch = 0; ch < l.info.c; ch++) {
                    double v = g ? luma : want[i][ch];
                    /* JPEG is lossy: a flat image comes back within a few levels */
                    double tol = i >= 4 ? 3 : 0.5;
                    MG_ASSERT_CLOSE(at(&l, i, ch, 3, 5), v, tol, 0, "decoded value");
                }
            }
            unload(&l);
        }
        mg_dist_barrier();
    }
    mg_test_dir_remove(dir);
}

/* Rewrites a PNG's IHDR colour type (byte 25) and the chunk's CRC. */
static void set_png_colour_type(const char *path, uint8_t type)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    uint8_t head[33];
    assert_int_equal(fread(head, 1, 33, f), 33);
    head[25] = type;
    uint32_t crc = (uint32_t)crc32(0, head + 12, 17);
    uint8_t be[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc};
    fseek(f, 25, SEEK_SET);
    fputc(type, f);
    fseek(f, 29, SEEK_SET);
    fwrite(be, 1, 4, f);
    fclose(f);
}

/* One folder of test_bad_inputs: fatal without skip_bad (the message holds expect, and the
 * folder's path when named), nothing left in the output folder; with skip_bad (when the
 * folder has good files) the two good ones are written and the bad one counted. A function
 * of its own, so that no loop variable lives across the error path's longjmp. */
static void bad_input_case(const char *dir, const char *name, const char *expect, bool crop_none, bool has_good)
{
    char in[512], out[512];
    path_in(in, dir, name);
    snprintf(out, sizeof out, "%s/out_%s", dir, name);
    mg_images_opts o = opts_of(16, !crop_none, MG_RESIZE_AREA);
    mg_images_result r;
    MG_EXPECT_FATAL(mg_convert_images(in, out, &o, &r), expect);
    if (has_good)
        assert_non_null(strstr(mg_last_error(), in));
    mg_dist_barrier();
    assert_true(entries(out) <= 0); /* no output file, no temporary file */
    if (!has_good)
        return;
    o.skip_bad = true;
    mg_convert_images(in, out, &o, &r);
    assert_int_equal(r.n_written, 2);
    assert_int_equal(r.n_bad, 1);
    assert_non_null(strstr(r.first_bad, expect));
    assert_int_equal(entries(out), 1);
}

/* Each bad input ends every rank with a message naming the file, and leaves the output
 * folder empty; with skip_bad, the bad files are counted and the rest written. */
static void test_bad_inputs(void **state)
{
    (void)state;
    char dir[256], p[512], q[512];
    mg_test_dir_make(dir, sizeof dir, "convimg");
    const uint8_t rgb[3] = {200, 100, 50};
    static const char *const cases[5] = {"truncated", "notimage", "oddpng", "small", "empty"};
    static const char *const expect[5] = {"bad.jpg: damaged JPEG", "bad.png: not a JPEG or PNG file",
                                          "bad.png: damaged or unsupported PNG", "smaller than --size 16",
                                          "no JPEG or PNG images"};
    if (mg_dist_rank() == 0) {
        uint8_t *c = constant(24, 20, 3, rgb);
        for (int k = 0; k < 5; k++) {
            char in[512];
            path_in(in, dir, cases[k]);
            assert_int_equal(mkdir(in, 0777), 0);
            if (k == 4)
                continue;
            path_in(p, in, "a_good.jpg");
            write_jpeg(p, 24, 20, 3, c);
            path_in(p, in, "z_good.png");
            write_png(p, 24, 20, 3, 8, false, c);
            if (k == 0) {
                /* the end marker cut off: libjpeg only warns ("premature end of JPEG file") */
                struct stat st;
                path_in(p, in, "a_good.jpg");
                assert_int_equal(stat(p, &st), 0);
                path_in(q, in, "bad.jpg");
                truncated_copy(p, q, (long)st.st_size - 2);
            } else if (k == 1) {
                path_in(q, in, "bad.png");
                write_bytes(q, "hello, not a png\n", 17);
            } else if (k == 2) {
                path_in(q, in, "bad.png");
                write_png(q, 24, 20, 3, 8, false, c);
                set_png_colour_type(q, 1);
            } else {
                uint8_t *s = constant(40, 10, 3, rgb);
                path_in(q, in, "bad.png");
                write_png(q, 40, 10, 3, 8, false, s);
                free(s);
            }
        }
        free(c);
    }
    mg_dist_barrier();
    for (int k = 0; k < 5; k++)
        bad_input_case(dir, cases[k], expect[k], k == 3, k < 4);
    mg_test_dir_remove(dir);
}

/* ------------------------------------------------------------------ CIFAR-10 */

static void cifar_record(uint8_t *rec, int label, int batch, int i)
{
    rec[0] = (uint8_t)label;
    for (int k = 0; k < 3072; k++)
        rec[1 + k] = (uint8_t)(k * 7 + batch * 31 + i * 3);
}

/* Batches of 3 records (test: 2); record i of batch b has label (b + i) % 10. */
static void write_cifar(const char *dir, int bad_kind)
{
    static const char *const names[6] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                         "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
    uint8_t rec[3 * 3073 + 1];
    for (int b = 0; b < 6; b++) {
        if (bad_kind == 3 && b == 5)
            continue; /* missing test batch */
        int n = b < 5 ? 3 : 2;
        for (int i = 0; i < n; i++)
            cifar_record(rec + i * 3073, (b + i) % 10, b, i);
        if (bad_kind == 2 && b == 3)
            rec[3073] = 10; /* label of record 1 of data_batch_4 */
        char p[512];
        path_in(p, dir, names[b]);
        write_bytes(p, rec, (size_t)n * 3073 + (bad_kind == 1 && b == 2 ? 1 : 0));
    }
}

static void test_cifar10(void **state)
{
    (void)state;
    char dir[256], in[512], out[512], p[512];
    mg_test_dir_make(dir, sizeof dir, "convcifar");
    path_in(in, dir, "cifar");
    path_in(out, dir, "out");
    if (mg_dist_rank() == 0) {
        assert_int_equal(mkdir(in, 0777), 0);
        write_cifar(in, 0);
        path_in(p, in, "batches.meta.txt");
        write_bytes(p, "c0\nc1\nc2\nc3\nc4\nc5\nc6\nc7\nc8\nc9\n\n", 31);
    }
    mg_dist_barrier();
    int64_t n_train = 0, n_test = 0;
    mg_convert_cifar10(in, out, &n_train, &n_test);
    assert_int_equal(n_train, 15);
    assert_int_equal(n_test, 2);
    if (mg_dist_rank() == 0) {
        for (int split = 0; split < 2; split++) {
            loaded l;
            path_in(p, out, split ? MG_CIFAR10_TEST_FILE : MG_CIFAR10_TRAIN_FILE);
            load(p, &l);
            assert_int_equal(l.info.n, split ? 2 : 15);
            assert_int_equal(l.info.c, 3);
            assert_int_equal(l.info.h, 32);
            assert_int_equal(l.info.w, 32);
            assert_string_equal(l.info.split, split ? "test" : "train");
            assert_int_equal(l.info.n_classes, 10);
            assert_string_equal(l.info.class_names[9], "c9");
            uint8_t rec[3073];
            for (int64_t j = 0; j < l.info.n; j++) {
                int b = split ? 5 : (int)(j / 3), i = split ? (int)j : (int)(j % 3);
                cifar_record(rec, (b + i) % 10, b, i);
                assert_int_equal(l.labels[j], rec[0]);
                assert_memory_equal(l.px + j * 3072, rec + 1, 3072);
            }
            unload(&l);
        }
    }
    mg_test_dir_remove(dir);
}

/* One bad CIFAR-10 folder (write_cifar's bad_kind): fatal with expect, no output left. */
static void cifar_bad_case(int bad_kind, const char *expect)
{
    char dir[256], out[512];
    mg_test_dir_make(dir, sizeof dir, "convcifar");
    path_in(out, dir, "out");
    if (mg_dist_rank() == 0)
        write_cifar(dir, bad_kind);
    mg_dist_barrier();
    MG_EXPECT_FATAL(mg_convert_cifar10(dir, out, NULL, NULL), expect);
    mg_dist_barrier();
    assert_true(entries(out) <= 0);
    mg_test_dir_remove(dir);
}

static void test_cifar10_bad(void **state)
{
    (void)state;
    static const char *const expect[4] = {"", "data_batch_3.bin: is 9220 bytes, not a positive multiple of 3073",
                                          "data_batch_4.bin: record 1 has label 10",
                                          "test_batch.bin: cannot open"};
    for (int k = 1; k < 4; k++)
        cifar_bad_case(k, expect[k]);
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resize_known_pixels),
        cmocka_unit_test(test_crop_center_and_none),
        cmocka_unit_test(test_classes_and_formats),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_cifar10),
        cmocka_unit_test(test_cifar10_bad),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    failed = mg_dist_any(failed != 0) ? 1 : 0;
    mg_dist_finalize();
    return failed;
}
