/* Converters into the HDF5 data format, single process: Fashion-MNIST round trip on the
 * real Debian files (checked against an independent reading of the .gz files here), 2-D
 * mixtures (statistics and attributes), PNG folders (images written here with libpng),
 * and bad input (missing file, wrong magic, truncated gzip, PNGs of different sizes),
 * which must fail with a clear message and leave no output file behind. */
#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "mg_test.h"
#include "mg_testenv.h"

#include "mg_cmd.h"
#include "mg_convert.h"
#include "mg_dist.h"
#include "mg_h5schema.h"

static char tmp[256];

static void path_in(char *out, size_t size, const char *name) { snprintf(out, size, "%s/%s", tmp, name); }

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* Number of entries of a folder (to see that failed conversions left nothing). */
static int count_entries(const char *d)
{
    DIR *dd = opendir(d);
    if (!dd)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dd)) != NULL)
        n += e->d_name[0] != '.';
    closedir(dd);
    return n;
}

static int setup(void **state)
{
    (void)state;
    mg_test_dir_make(tmp, sizeof tmp, "data");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mg_test_dir_remove(tmp);
    return 0;
}

/* ------------------------------------------------------------------ Fashion-MNIST */

/* The whole decompressed content of a .gz file, read independently of convert.c. */
static unsigned char *gunzip_all(const char *path, size_t *len)
{
    gzFile g = gzopen(path, "rb");
    if (!g)
        fail_msg("cannot open %s (install Debian's dataset-fashion-mnist)", path);
    size_t cap = 1 << 20, n = 0;
    unsigned char *buf = malloc(cap);
    int got;
    while ((got = gzread(g, buf + n, (unsigned)(cap - n))) > 0) {
        n += (size_t)got;
        if (n == cap)
            buf = realloc(buf, cap *= 2);
    }
    assert_true(got == 0);
    gzclose(g);
    *len = n;
    return buf;
}

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

static void check_fmnist_split(const char *h5, const char *images_gz, const char *labels_gz, int64_t n,
                               const int *first_labels, const char *split, uint64_t known_pixel_sum)
{
    size_t ilen, llen;
    unsigned char *img = gunzip_all(images_gz, &ilen), *lab = gunzip_all(labels_gz, &llen);
    assert_int_equal(be32(img), 0x803);
    assert_int_equal(be32(img + 4), n);
    assert_int_equal(be32(img + 8), 28);
    assert_int_equal(be32(img + 12), 28);
    assert_int_equal(ilen, 16 + (size_t)n * 784);
    assert_int_equal(be32(lab), 0x801);
    assert_int_equal(llen, 8 + (size_t)n);

    mg_data_info info;
    mg_h5_file *f = mg_h5_open_or_fail(h5, &info);
    assert_int_equal(info.kind, MG_DATA_IMAGES);
    assert_int_equal(info.n, n);
    assert_int_equal(info.c, 1);
    assert_int_equal(info.h, 28);
    assert_int_equal(info.w, 28);
    assert_true(info.has_labels);
    assert_string_equal(info.split, split);
    assert_int_equal(info.n_classes, 10);
    assert_string_equal(info.class_names[0], "T-shirt/top");
    assert_string_equal(info.class_names[9], "Ankle boot");
    assert_true(info.chunk_rows >= 100 && info.chunk_rows <= 1000);
    assert_true(info.value_range[0] == 0 && info.value_range[1] == 255);

    unsigned char *pix = malloc((size_t)n * 784);
    int32_t *labels = malloc(sizeof(int32_t) * (size_t)n);
    mg_h5_read_samples(f, 0, n, pix);
    mg_h5_read_labels(f, 0, n, labels);
    /* Pixel checksums: the converted file against the .gz read here. */
    uint64_t sum_h5 = 0, sum_gz = 0;
    for (size_t i = 0; i < (size_t)n * 784; i++) {
        sum_h5 += pix[i];
        sum_gz += img[16 + i];
    }
    assert_int_equal(sum_h5, sum_gz);
    assert_int_equal(sum_h5, known_pixel_sum); /* the published data set, not some other file */
    assert_int_equal(mg_checksum(pix, (size_t)n * 784), mg_checksum(img + 16, (size_t)n * 784));
    /* Labels: the first ones as published, 10 balanced classes. */
    int per_class[10] = {0};
    for (int64_t i = 0; i < n; i++) {
        assert_int_equal(labels[i], lab[8 + i]);
        assert_true(labels[i] >= 0 && labels[i] <= 9);
        per_class[labels[i]]++;
    }
    for (int k = 0; k < 10; k++) {
        assert_int_equal(first_labels[k], labels[k]);
        assert_int_equal(per_class[k], n / 10);
    }
    printf("  %s: %lld samples, pixel sum %llu, checksum %016llx\n", split, (long long)n,
           (unsigned long long)sum_h5, (unsigned long long)mg_checksum(pix, (size_t)n * 784));
    free(pix);
    free(labels);
    free(img);
    free(lab);
    mg_h5_close(f);
    mg_data_info_free(&info);
}

static void test_fmnist_round_trip(void **state)
{
    (void)state;
    char out[300];
    path_in(out, sizeof out, "fmnist");
    mg_convert_fmnist(MG_FMNIST_DEFAULT_DIR, out);
    char train[400], test[400];
    snprintf(train, sizeof train, "%s/%s", out, MG_FMNIST_TRAIN_FILE);
    snprintf(test, sizeof test, "%s/%s", out, MG_FMNIST_TEST_FILE);
    assert_int_equal(count_entries(out), 2); /* no temporary file left */
    static const int train_first[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
    static const int test_first[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
    check_fmnist_split(train, MG_FMNIST_DEFAULT_DIR "/train-images-idx3-ubyte.gz",
                       MG_FMNIST_DEFAULT_DIR "/train-labels-idx1-ubyte.gz", 60000, train_first, "train",
                       3431114169u);
    check_fmnist_split(test, MG_FMNIST_DEFAULT_DIR "/t10k-images-idx3-ubyte.gz",
                       MG_FMNIST_DEFAULT_DIR "/t10k-labels-idx1-ubyte.gz", 10000, test_first, "test",
                       573469082u);

    /* The schema's names as a user sees them with h5py or h5dump, read with plain HDF5. */
    hid_t f = H5Fopen(test, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t d = H5Dopen2(f, "images", H5P_DEFAULT);
    assert_true(d >= 0);
    hid_t s = H5Dget_space(d);
    hsize_t dims[4];
    assert_int_equal(H5Sget_simple_extent_dims(s, dims, NULL), 4);
    assert_true(dims[0] == 10000 && dims[1] == 1 && dims[2] == 28 && dims[3] == 28);
    hid_t t = H5Dget_type(d);
    assert_true(H5Tequal(t, H5T_STD_U8LE) > 0);
    H5Tclose(t);
    H5Sclose(s);
    H5Dclose(d);
    assert_true(H5Aexists(f, "class_names") > 0 && H5Aexists(f, "source") > 0 && H5Aexists(f, "mpigan_format") > 0);
    hid_t l = H5Dopen2(f, "labels", H5P_DEFAULT);
    t = H5Dget_type(l);
    assert_true(H5Tequal(t, H5T_STD_I32LE) > 0);
    H5Tclose(t);
    H5Dclose(l);
    H5Fclose(f);
}

/* ------------------------------------------------------------------ mixtures */

static void check_mixture(mg_mixture_kind kind, int64_t n, uint64_t seed, const char *name)
{
    char path[300];
    path_in(path, sizeof path, name);
    mg_convert_mixture(path, kind, n, seed, 0);
    mg_data_info info;
    mg_h5_file *f = mg_h5_open_or_fail(path, &info);
    assert_int_equal(info.kind, MG_DATA_VECTORS);
    assert_int_equal(info.n, n);
    assert_int_equal(info.c, 2);
    mg_mixture_info mix, want;
    assert_true(mg_h5_read_mixture(f, &mix));
    mg_mixture_params(&want, kind, 0);
    assert_string_equal(mix.generator, kind == MG_MIXTURE_RING ? "ring" : "grid");
    assert_int_equal(mix.n_modes, kind == MG_MIXTURE_RING ? 8 : 25);
    assert_true(mix.sigma == (kind == MG_MIXTURE_RING ? 0.01 : 0.05));
    assert_int_equal(mix.seed, seed);
    for (int k = 0; k < mix.n_modes; k++)
        assert_true(mix.means[k][0] == want.means[k][0] && mix.means[k][1] == want.means[k][1]);
    if (kind == MG_MIXTURE_RING) { /* unit circle, 45 degrees apart */
        MG_ASSERT_CLOSE(mix.means[2][0], 0.0, 1e-12, 0, "ring mean 2 x");
        MG_ASSERT_CLOSE(mix.means[2][1], 1.0, 1e-12, 0, "ring mean 2 y");
    } else {
        assert_true(mix.means[0][0] == -4 && mix.means[0][1] == -4 && mix.means[24][0] == 4 && mix.means[12][0] == 0);
    }

    float *x = malloc(sizeof(float) * 2 * (size_t)n);
    int32_t *y = malloc(sizeof(int32_t) * (size_t)n);
    mg_h5_read_samples(f, 0, n, x);
    mg_h5_read_labels(f, 0, n, y);
    int K = mix.n_modes;
    double cnt[64] = {0}, sx[64][2] = {{0}}, sxx[64] = {0};
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        int k = y[i];
        assert_true(k >= 0 && k < K);
        double dx = x[2 * i] - mix.means[k][0], dy = x[2 * i + 1] - mix.means[k][1];
        /* Every sample near its own mode (7 sigma), so evaluation can count modes. */
        assert_true(dx * dx + dy * dy < 49 * mix.sigma * mix.sigma);
        cnt[k]++;
        sx[k][0] += dx;
        sx[k][1] += dy;
        sxx[k] += dx * dx + dy * dy;
        for (int j = 0; j < 2; j++) {
            lo = fmin(lo, x[2 * i + j]);
            hi = fmax(hi, x[2 * i + j]);
        }
    }
    for (int k = 0; k < K; k++) {
        double p = 1.0 / K, sd = sqrt(n * p * (1 - p));
        MG_ASSERT_CLOSE(cnt[k], n * p, 5 * sd, 0, "samples per mode");
        MG_ASSERT_CLOSE(sx[k][0] / cnt[k], 0.0, 5 * mix.sigma / sqrt(cnt[k]), 0, "mode mean x");
        MG_ASSERT_CLOSE(sx[k][1] / cnt[k], 0.0, 5 * mix.sigma / sqrt(cnt[k]), 0, "mode mean y");
        MG_ASSERT_CLOSE(sqrt(sxx[k] / (2 * cnt[k])), mix.sigma, 0, 0.1, "mode sigma");
    }
    MG_ASSERT_CLOSE(info.value_range[0], lo, 0, 0, "value_range low");
    MG_ASSERT_CLOSE(info.value_range[1], hi, 0, 0, "value_range high");
    free(x);
    free(y);
    mg_h5_close(f);
    mg_data_info_free(&info);
}

static void test_mixtures(void **state)
{
    (void)state;
    check_mixture(MG_MIXTURE_RING, 40000, 3, "ring.h5");
    check_mixture(MG_MIXTURE_GRID, 50000, 4, "grid.h5");

    /* The same seed gives the same file content, another seed other samples. */
    char a[300], b[300], c[300];
    path_in(a, sizeof a, "r1.h5");
    path_in(b, sizeof b, "r2.h5");
    path_in(c, sizeof c, "r3.h5");
    mg_convert_mixture(a, MG_MIXTURE_RING, 1000, 9, 0);
    mg_convert_mixture(b, MG_MIXTURE_RING, 1000, 9, 0);
    mg_convert_mixture(c, MG_MIXTURE_RING, 1000, 10, 0.2);
    float xa[2000], xb[2000], xc[2000];
    mg_data_info info;
    mg_h5_file *f = mg_h5_open_or_fail(a, &info);
    mg_h5_read_samples(f, 0, 1000, xa);
    mg_h5_close(f);
    mg_data_info_free(&info);
    f = mg_h5_open_or_fail(b, &info);
    mg_h5_read_samples(f, 0, 1000, xb);
    mg_h5_close(f);
    mg_data_info_free(&info);
    f = mg_h5_open_or_fail(c, &info);
    mg_h5_read_samples(f, 0, 1000, xc);
    mg_mixture_info mix;
    assert_true(mg_h5_read_mixture(f, &mix));
    assert_true(mix.sigma == 0.2);
    mg_h5_close(f);
    mg_data_info_free(&info);
    assert_memory_equal(xa, xb, sizeof xa);
    assert_memory_not_equal(xa, xc, sizeof xa);
}

/* ------------------------------------------------------------------ PNG folders */

/* A w x h PNG of `channels` (1 grey, 3 RGB, 4 RGBA) whose pixels are a function of seed. */
static void write_png(const char *path, int w, int h, int channels, int seed)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png)))
        fail_msg("libpng failed writing %s", path);
    png_init_io(png, fp);
    int type = channels == 1 ? PNG_COLOR_TYPE_GRAY : channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_RGBA;
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    unsigned char *row = malloc((size_t)w * channels);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++)
            for (int c = 0; c < channels; c++)
                row[x * channels + c] = (unsigned char)(seed * 31 + y * 7 + x * 3 + c * 50);
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    fclose(fp);
}

static void check_png_sample(const unsigned char *chw, int w, int h, int c, int seed)
{
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                assert_int_equal(chw[(ch * h + y) * w + x], (unsigned char)(seed * 31 + y * 7 + x * 3 + ch * 50));
}

static void test_png_folder(void **state)
{
    (void)state;
    char d[300], p[400], out[300];
    /* Flat folder of RGBA images (alpha dropped): unlabelled, name order. */
    path_in(d, sizeof d, "png_flat");
    mkdir(d, 0777);
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/img_%02d.png", d, 4 - i); /* written out of order */
        write_png(p, 6, 4, 4, 4 - i);
    }
    snprintf(p, sizeof p, "%s/notes.txt", d);
    FILE *t = fopen(p, "w");
    fputs("not an image\n", t);
    fclose(t);
    path_in(out, sizeof out, "png_flat.h5");
    mg_convert_png_dir(d, out);
    mg_data_info info;
    mg_h5_file *f = mg_h5_open_or_fail(out, &info);
    assert_int_equal(info.n, 5);
    assert_int_equal(info.c, 3);
    assert_int_equal(info.h, 4);
    assert_int_equal(info.w, 6);
    assert_false(info.has_labels);
    unsigned char pix[5 * 72];
    mg_h5_read_samples(f, 0, 5, pix);
    for (int i = 0; i < 5; i++)
        check_png_sample(pix + i * 72, 6, 4, 3, i);
    mg_h5_close(f);
    mg_data_info_free(&info);

    /* One subfolder per class of grey images: labels and class names. */
    path_in(d, sizeof d, "png_classes");
    mkdir(d, 0777);
    const char *classes[] = {"cats", "dogs"};
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "%s/%s", d, classes[k]);
        mkdir(p, 0777);
        for (int i = 0; i < 3 + k; i++) {
            snprintf(p, sizeof p, "%s/%s/%d.PNG", d, classes[k], i);
            write_png(p, 5, 5, 1, 10 * k + i);
        }
    }
    path_in(out, sizeof out, "png_classes.h5");
    mg_convert_png_dir(d, out);
    f = mg_h5_open_or_fail(out, &info);
    assert_int_equal(info.n, 7);
    assert_int_equal(info.c, 1);
    assert_true(info.has_labels);
    assert_int_equal(info.n_classes, 2);
    assert_string_equal(info.class_names[0], "cats");
    assert_string_equal(info.class_names[1], "dogs");
    unsigned char g[7 * 25];
    int32_t lab[7];
    mg_h5_read_samples(f, 0, 7, g);
    mg_h5_read_labels(f, 0, 7, lab);
    int expect_label[7] = {0, 0, 0, 1, 1, 1, 1}, expect_seed[7] = {0, 1, 2, 10, 11, 12, 13};
    for (int i = 0; i < 7; i++) {
        assert_int_equal(lab[i], expect_label[i]);
        check_png_sample(g + i * 25, 5, 5, 1, expect_seed[i]);
    }
    mg_h5_close(f);
    mg_data_info_free(&info);
}

/* ------------------------------------------------------------------ bad input */

static void write_bytes(const char *path, const void *data, size_t n, int gz)
{
    if (gz) {
        gzFile g = gzopen(path, "wb");
        assert_non_null(g);
        assert_int_equal(gzwrite(g, data, (unsigned)n), (int)n);
        gzclose(g);
    } else {
        FILE *f = fopen(path, "wb");
        assert_int_equal(fwrite(data, 1, n, f), n);
        fclose(f);
    }
}

static void copy_file(const char *from, const char *to, double fraction)
{
    FILE *a = fopen(from, "rb");
    assert_non_null(a);
    fseek(a, 0, SEEK_END);
    long n = ftell(a);
    fseek(a, 0, SEEK_SET);
    char *buf = malloc((size_t)n);
    assert_int_equal(fread(buf, 1, (size_t)n, a), n);
    fclose(a);
    write_bytes(to, buf, (size_t)(n * fraction), 0);
    free(buf);
}

/* A Fashion-MNIST folder whose training images are replaced by `bad` (raw bytes, gzipped
 * or not); the other three files are the real ones. */
static void make_idx_dir(const char *d, const void *bad, size_t n, int gz)
{
    static const char *const names[] = {"train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                                        "t10k-labels-idx1-ubyte.gz"};
    char p[400], s[400];
    mkdir(d, 0777);
    for (int i = 0; i < 3; i++) {
        snprintf(s, sizeof s, "%s/%s", MG_FMNIST_DEFAULT_DIR, names[i]);
        snprintf(p, sizeof p, "%s/%s", d, names[i]);
        copy_file(s, p, 1.0);
    }
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", d);
    if (bad)
        write_bytes(p, bad, n, gz);
    else
        copy_file(MG_FMNIST_DEFAULT_DIR "/train-images-idx3-ubyte.gz", p, 0.5);
}

static void test_bad_input(void **state)
{
    (void)state;
    char in[300], out[300], file[400];
    path_in(out, sizeof out, "bad_out");
    mkdir(out, 0777);

    /* Missing input files. */
    path_in(in, sizeof in, "no_such_dir");
    MG_EXPECT_FATAL(mg_convert_fmnist(in, out), "No such file");
    assert_int_equal(count_entries(out), 0);

    /* Wrong magic number (an IDX file of 4 dimensions). */
    unsigned char hdr[16 + 32] = {0, 0, 8, 4, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28};
    path_in(in, sizeof in, "idx_magic");
    make_idx_dir(in, hdr, sizeof hdr, 1);
    MG_EXPECT_FATAL(mg_convert_fmnist(in, out), "wrong magic number 0x00000804");
    assert_int_equal(count_entries(out), 0);

    /* Not gzip at all: zlib reads it as plain bytes, so the magic number is wrong. */
    path_in(in, sizeof in, "idx_plain");
    make_idx_dir(in, "hello world, this is not an IDX file", 36, 0);
    MG_EXPECT_FATAL(mg_convert_fmnist(in, out), "wrong magic number");
    assert_int_equal(count_entries(out), 0);

    /* Truncated gzip: the first half of the real file. */
    path_in(in, sizeof in, "idx_truncated");
    make_idx_dir(in, NULL, 0, 0);
    MG_EXPECT_FATAL(mg_convert_fmnist(in, out), "truncated");
    assert_int_equal(count_entries(out), 0);

    /* PNGs of different sizes, and a damaged PNG. */
    path_in(in, sizeof in, "png_mixed");
    mkdir(in, 0777);
    snprintf(file, sizeof file, "%s/a.png", in);
    write_png(file, 8, 8, 1, 0);
    snprintf(file, sizeof file, "%s/b.png", in);
    write_png(file, 8, 9, 1, 1);
    snprintf(file, sizeof file, "%s/out.h5", out);
    MG_EXPECT_FATAL(mg_convert_png_dir(in, file), "is 8 x 9 with 1 channel but");
    assert_int_equal(count_entries(out), 0);
    snprintf(file, sizeof file, "%s/b.png", in);
    write_png(file, 8, 8, 3, 1);
    snprintf(file, sizeof file, "%s/out.h5", out);
    MG_EXPECT_FATAL(mg_convert_png_dir(in, file), "with 3 channels but");
    assert_int_equal(count_entries(out), 0);
    snprintf(file, sizeof file, "%s/b.png", in);
    write_png(file, 8, 8, 1, 1);
    char c[400];
    snprintf(c, sizeof c, "%s/c.png", in);
    copy_file(file, c, 0.6);
    snprintf(file, sizeof file, "%s/out.h5", out);
    MG_EXPECT_FATAL(mg_convert_png_dir(in, file), "c.png");
    assert_int_equal(count_entries(out), 0);

    /* An empty folder, a missing folder. */
    path_in(in, sizeof in, "png_empty");
    mkdir(in, 0777);
    MG_EXPECT_FATAL(mg_convert_png_dir(in, file), "no PNG files");
    path_in(in, sizeof in, "png_missing");
    MG_EXPECT_FATAL(mg_convert_png_dir(in, file), "cannot open the folder");
    assert_int_equal(count_entries(out), 0);

    /* A failed conversion leaves an existing good file untouched. */
    path_in(file, sizeof file, "keep.h5");
    mg_convert_mixture(file, MG_MIXTURE_GRID, 100, 1, 0);
    path_in(in, sizeof in, "png_mixed");
    MG_EXPECT_FATAL(mg_convert_png_dir(in, file), "c.png");
    mg_data_info info;
    mg_h5_close(mg_h5_open_or_fail(file, &info));
    assert_int_equal(info.n, 100);
    mg_data_info_free(&info);

    /* Validation of files that are not data files. */
    path_in(file, sizeof file, "garbage.h5");
    write_bytes(file, "garbage garbage garbage", 23, 0);
    MG_EXPECT_FATAL(mg_h5_open_or_fail(file, &info), "not an HDF5 file");
}

/* ------------------------------------------------------------------ command line */

static void test_command_line(void **state)
{
    (void)state;
    char out[300];
    path_in(out, sizeof out, "cli_ring.h5");
    char *ok[] = {"data", "mixture", "ring", "--out", out, "--n", "500", "--seed", "2", NULL};
    assert_int_equal(mg_cmd_data(9, ok), 0);
    assert_true(exists(out));
    char *info[] = {"data", "info", out, NULL};
    assert_int_equal(mg_cmd_data(3, info), 0);
    char *help[] = {"data", "png", "--help", NULL};
    assert_int_equal(mg_cmd_data(3, help), 0);
    char *bad_n[] = {"data", "mixture", "ring", "--out", out, "--n", "-5", NULL};
    assert_int_equal(mg_cmd_data(7, bad_n), 2);
    char *bad_kind[] = {"data", "mixture", "spiral", "--out", out, NULL};
    assert_int_equal(mg_cmd_data(5, bad_kind), 2);
    char *no_out[] = {"data", "fmnist", NULL};
    assert_int_equal(mg_cmd_data(2, no_out), 2);
    char *unknown[] = {"data", "mnist", NULL};
    assert_int_equal(mg_cmd_data(2, unknown), 2);
    char *extra[] = {"data", "png", "--in", "x", "--out", "y", "--colour", NULL};
    assert_int_equal(mg_cmd_data(7, extra), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fmnist_round_trip),
        cmocka_unit_test(test_mixtures),
        cmocka_unit_test(test_png_folder),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_command_line),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
