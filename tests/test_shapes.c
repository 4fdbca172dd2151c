/* The shapes benchmark's renderer and the data format's factors column, single process:
 * the set is a function of (seed, split, item) only; each image shows what its factors
 * say (position from the coverage centroid, colour, area against the shape's exact area,
 * a different image for every rotation step, the background in the corners); edges are
 * antialiased; and the factors dataset round-trips through the schema, with bad factors
 * datasets refused naming the file and what is wrong. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_test.h"
#include "mg_testenv.h"

#include "mg_h5schema.h"
#include "mg_shapes.h"

#define S MG_SHAPES_SIZE
#define PLANE (S * S)
#define F MG_SHAPES_N_FACTORS

static char tmp[256];

static int setup(void **state)
{
    (void)state;
    mg_test_dir_make(tmp, sizeof tmp, "shapes");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mg_test_dir_remove(tmp);
    return 0;
}

/* Per pixel coverage of the shape, recovered from the image: (v - bg) / (fg - bg) on the
 * channel where the shape's colour and the background differ most in that row. */
static void coverage(const uint8_t *img, const int32_t *f, float *cov)
{
    uint8_t fg[3];
    mg_shapes_colour(f[MG_SHAPES_F_COLOUR], fg);
    for (int y = 0; y < S; y++) {
        uint8_t bg[3];
        mg_shapes_background(f[MG_SHAPES_F_BACKGROUND], y, bg);
        int best = 0;
        for (int c = 1; c < 3; c++)
            if (abs(fg[c] - bg[c]) > abs(fg[best] - bg[best]))
                best = c;
        const float span = (float)fg[best] - (float)bg[best];
        for (int x = 0; x < S; x++)
            cov[y * S + x] = ((float)img[best * PLANE + y * S + x] - (float)bg[best]) / span;
    }
}

static void test_deterministic(void **state)
{
    (void)state;
    const int n = 64;
    const size_t bytes = (size_t)n * MG_SHAPES_IMAGE_BYTES;
    uint8_t *a = malloc(bytes), *b = malloc(bytes);
    int32_t fa[64 * F], fb[64 * F], la[64], lb[64];
    mg_shapes_make(a, la, fa, 7, MG_SHAPES_TRAIN, 100, n);
    /* the same items made in two pieces, as two ranks would */
    mg_shapes_make(b, lb, fb, 7, MG_SHAPES_TRAIN, 100, 23);
    mg_shapes_make(b + 23 * MG_SHAPES_IMAGE_BYTES, lb + 23, fb + 23 * F, 7, MG_SHAPES_TRAIN, 123, n - 23);
    assert_memory_equal(a, b, bytes);
    assert_memory_equal(fa, fb, sizeof fa);
    assert_memory_equal(la, lb, sizeof la);
    for (int i = 0; i < n; i++)
        assert_int_equal(la[i], fa[i * F + MG_SHAPES_F_SHAPE]);
    /* another seed, and the test split, give other images */
    mg_shapes_make(b, NULL, fb, 8, MG_SHAPES_TRAIN, 100, n);
    assert_true(memcmp(a, b, bytes) != 0);
    mg_shapes_make(b, NULL, fb, 7, MG_SHAPES_TEST, 100, n);
    assert_true(memcmp(fa, fb, sizeof fa) != 0);
    free(a);
    free(b);
}

/* Every factor value is drawn, about uniformly. */
static void test_factor_draws(void **state)
{
    (void)state;
    const int n = 20000;
    int counts[F][8] = {{0}};
    for (int i = 0; i < n; i++) {
        int32_t f[F];
        mg_shapes_draw(f, 3, MG_SHAPES_TRAIN, i);
        for (int j = 0; j < F; j++) {
            assert_in_range(f[j], 0, mg_shapes_factor_sizes[j] - 1);
            counts[j][f[j]]++;
        }
    }
    for (int j = 0; j < F; j++)
        for (int v = 0; v < mg_shapes_factor_sizes[j]; v++) {
            const double expect = (double)n / mg_shapes_factor_sizes[j];
            if (fabs(counts[j][v] - expect) > 6 * sqrt(expect))
                fail_msg("factor %s value %d drawn %d times of %d (expected about %.0f)", mg_shapes_factor_names[j],
                         v, counts[j][v], n, expect);
        }
    assert_int_equal(mg_shapes_combinations(), 4 * 8 * 6 * 8 * 8 * 8 * 4);
}

/* Position, colour, background and antialiasing of a sample of items. */
static void test_image_follows_factors(void **state)
{
    (void)state;
    const int n = 300;
    uint8_t *img = malloc((size_t)n * MG_SHAPES_IMAGE_BYTES);
    int32_t *fac = malloc((size_t)n * F * sizeof(int32_t));
    float cov[PLANE];
    mg_shapes_make(img, NULL, fac, 11, MG_SHAPES_TRAIN, 0, n);
    for (int i = 0; i < n; i++) {
        const uint8_t *im = img + (size_t)i * MG_SHAPES_IMAGE_BYTES;
        const int32_t *f = fac + i * F;
        const int shape = f[MG_SHAPES_F_SHAPE];
        coverage(im, f, cov);
        double mass = 0, mx = 0, my = 0;
        int partial = 0, full = 0;
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                const float c = cov[y * S + x];
                assert_true(c > -0.01f && c < 1.01f);
                mass += c;
                mx += c * (x + 0.5);
                my += c * (y + 0.5);
                partial += c > 0.02f && c < 0.98f;
                full += c >= 0.98f;
            }
        const double R = mg_shapes_radius(f[MG_SHAPES_F_SCALE]);
        const double cx = mg_shapes_position(f[MG_SHAPES_F_X]), cy = mg_shapes_position(f[MG_SHAPES_F_Y]);
        mx /= mass;
        my /= mass;
        /* every shape is centred on its centre of mass */
        const double tol = 0.25;
        if (fabs(mx - cx) > tol || fabs(my - cy) > tol)
            fail_msg("item %d (%s, scale %d, rotation %d): centroid (%.2f, %.2f), factors say (%.1f, %.1f)", i,
                     mg_shapes_shape_names[shape], f[MG_SHAPES_F_SCALE], f[MG_SHAPES_F_ROTATION], mx, my, cx, cy);
        /* antialiased: a ring of pixels strictly between background and shape */
        if (partial < (int)(2 * R) || full < 1)
            fail_msg("item %d: %d edge pixels and %d inside pixels for circumradius %.0f", i, partial, full, R);
        /* the inside has the colour factor's colour exactly; the corners are background */
        uint8_t fg[3], bg[3];
        mg_shapes_colour(f[MG_SHAPES_F_COLOUR], fg);
        const int in = (int)cy * S + (int)cx;
        for (int c = 0; c < 3; c++)
            assert_int_equal(im[c * PLANE + in], fg[c]);
        mg_shapes_background(f[MG_SHAPES_F_BACKGROUND], 0, bg);
        for (int c = 0; c < 3; c++)
            assert_int_equal(im[c * PLANE], bg[c]);
        mg_shapes_background(f[MG_SHAPES_F_BACKGROUND], S - 1, bg);
        for (int c = 0; c < 3; c++)
            assert_int_equal(im[c * PLANE + PLANE - 1], bg[c]);
    }
    free(img);
    free(fac);
}

/* Area against each shape's exact area, growing with scale; rotations all differ. */
static void test_geometry(void **state)
{
    (void)state;
    const double a = 1.07;
    /* unit-circumradius areas: square of half side 0.7, ellipse 1 x 0.55, heart = diamond of
     * side a plus two half discs of diameter a, equilateral triangle of circumradius 1 */
    const double unit_area[MG_SHAPES_N_SHAPES] = {4 * 0.49, M_PI * 0.55, a * a + M_PI * a * a / 4,
                                                  3 * sqrt(3.0) / 4};
    uint8_t img[MG_SHAPES_IMAGE_BYTES], other[8][MG_SHAPES_IMAGE_BYTES];
    float cov[PLANE];
    for (int shape = 0; shape < MG_SHAPES_N_SHAPES; shape++) {
        double last = 0;
        for (int scale = 0; scale < 6; scale++) {
            int32_t f[F] = {shape, 4, scale, 3, 4, 4, 1};
            mg_shapes_render(img, f);
            coverage(img, f, cov);
            double area = 0;
            for (int p = 0; p < PLANE; p++)
                area += cov[p];
            const double R = mg_shapes_radius(scale), want = unit_area[shape] * R * R;
            if (fabs(area - want) > 0.03 * want + 1.5)
                fail_msg("%s at scale %d: area %.1f pixels, exact %.1f", mg_shapes_shape_names[shape], scale, area,
                         want);
            assert_true(area > last);
            last = area;
        }
        for (int r = 0; r < 8; r++) {
            int32_t f[F] = {shape, 0, 5, r, 3, 4, 0};
            mg_shapes_render(other[r], f);
            for (int q = 0; q < r; q++)
                if (memcmp(other[q], other[r], sizeof img) == 0)
                    fail_msg("%s: rotation steps %d and %d give the same image", mg_shapes_shape_names[shape], q, r);
        }
    }
    /* factors out of range are refused, naming the factor */
    int32_t bad[F] = {0, 8, 0, 0, 0, 0, 0};
    MG_EXPECT_FATAL(mg_shapes_render(img, bad), "colour");
}

/* ------------------------------------------------------------------ the factors column */

static void write_shapes_file(const char *path, int64_t n, bool factors)
{
    mg_data_info info = {0};
    info.kind = MG_DATA_IMAGES;
    info.n = n;
    info.c = 3;
    info.h = info.w = S;
    info.has_labels = true;
    info.value_range[1] = 255;
    mg_data_info_set_classes(&info, MG_SHAPES_N_SHAPES, mg_shapes_shape_names);
    mg_h5_writer *w = mg_h5_create(path, &info, NULL);
    if (factors)
        mg_h5_add_factors(w, F, mg_shapes_factor_names, mg_shapes_factor_sizes);
    uint8_t *img = malloc((size_t)n * MG_SHAPES_IMAGE_BYTES);
    int32_t *lab = malloc((size_t)n * sizeof(int32_t)), *fac = malloc((size_t)n * F * sizeof(int32_t));
    mg_shapes_make(img, lab, fac, 5, MG_SHAPES_TRAIN, 0, n);
    mg_h5_write_rows(w, 0, n, img, lab);
    if (factors)
        mg_h5_write_factors(w, 0, n, fac);
    mg_h5_writer_close(w);
    mg_data_info_free(&info);
    free(img);
    free(lab);
    free(fac);
}

static void test_factors_round_trip(void **state)
{
    (void)state;
    char path[512], plain[512], err[1024];
    snprintf(path, sizeof path, "%s/f.h5", tmp);
    snprintf(plain, sizeof plain, "%s/plain.h5", tmp);
    const int64_t n = 300;
    write_shapes_file(path, n, true);
    write_shapes_file(plain, 10, false);

    mg_data_info info;
    mg_h5_file *f = mg_h5_open(path, &info, err, sizeof err);
    if (!f)
        fail_msg("%s", err);
    assert_int_equal(info.n_factors, F);
    for (int j = 0; j < F; j++) {
        assert_string_equal(info.factor_names[j], mg_shapes_factor_names[j]);
        assert_int_equal(info.factor_sizes[j], mg_shapes_factor_sizes[j]);
    }
    char what[160];
    assert_non_null(strstr(mg_data_describe(&info, what, sizeof what), "+ 7 factors"));
    int32_t *got = malloc((size_t)n * F * sizeof(int32_t)), *want = malloc((size_t)n * F * sizeof(int32_t));
    int32_t *lab = malloc((size_t)n * sizeof(int32_t));
    uint8_t *img = malloc((size_t)n * MG_SHAPES_IMAGE_BYTES);
    mg_shapes_make(img, NULL, want, 5, MG_SHAPES_TRAIN, 0, n);
    mg_h5_read_factors(f, 0, n, got);
    assert_memory_equal(got, want, (size_t)n * F * sizeof(int32_t));
    mg_h5_read_labels(f, 0, n, lab);
    for (int i = 0; i < n; i++)
        assert_int_equal(lab[i], want[i * F]);
    /* the loader's raw view still works with the extra dataset */
    mg_h5_raw x, y;
    assert_true(mg_h5_raw_layout(f, &x, &y, err, sizeof err));
    mg_h5_raw_free(&x);
    mg_h5_raw_free(&y);
    mg_h5_close(f);
    mg_data_info_free(&info);

    /* a file without factors: still valid, none listed, reading them is an error */
    f = mg_h5_open(plain, &info, err, sizeof err);
    if (!f)
        fail_msg("%s", err);
    assert_int_equal(info.n_factors, 0);
    MG_EXPECT_FATAL(mg_h5_read_factors(f, 0, 1, got), "no dataset 'factors'");
    mg_h5_close(f);
    mg_data_info_free(&info);
    free(got);
    free(want);
    free(lab);
    free(img);
}

/* Damages the factors dataset of a fresh file with HDF5 directly. */
static void damage(const char *path, int how)
{
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(file >= 0);
    if (how == 0) { /* sizes for three columns of seven */
        hid_t d = H5Dopen2(file, "factors", H5P_DEFAULT);
        assert_true(H5Adelete(d, "factor_sizes") >= 0);
        hsize_t three = 3;
        int32_t sizes[3] = {4, 8, 6};
        hid_t sp = H5Screate_simple(1, &three, NULL);
        hid_t a = H5Acreate2(d, "factor_sizes", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(a >= 0 && H5Awrite(a, H5T_NATIVE_INT32, sizes) >= 0);
        H5Aclose(a);
        H5Sclose(sp);
        H5Dclose(d);
    } else if (how == 1) { /* one row short */
        assert_true(H5Ldelete(file, "factors", H5P_DEFAULT) >= 0);
        hsize_t dims[2] = {9, F};
        hid_t sp = H5Screate_simple(2, dims, NULL);
        hid_t d = H5Dcreate2(file, "factors", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Dclose(d);
        H5Sclose(sp);
    } else { /* a value past its factor's size */
        hid_t d = H5Dopen2(file, "factors", H5P_DEFAULT);
        int32_t row[F] = {0, 0, 0, 0, 0, 0, 0};
        row[MG_SHAPES_F_SCALE] = 6;
        hsize_t start[2] = {4, 0}, count[2] = {1, F};
        hid_t fs = H5Dget_space(d), ms = H5Screate_simple(2, count, NULL);
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
        assert_true(H5Dwrite(d, H5T_NATIVE_INT32, ms, fs, H5P_DEFAULT, row) >= 0);
        H5Sclose(ms);
        H5Sclose(fs);
        H5Dclose(d);
    }
    H5Fclose(file);
}

static void test_factors_damaged(void **state)
{
    (void)state;
    char path[512], err[1024];
    mg_data_info info;
    static const char *const expect[2] = {"'factor_sizes' of dataset 'factors' must be 7 integers", "has 9 rows but the file has 10 samples"};
    for (int how = 0; how < 2; how++) {
        snprintf(path, sizeof path, "%s/bad%d.h5", tmp, how);
        write_shapes_file(path, 10, true);
        damage(path, how);
        mg_h5_file *f = mg_h5_open(path, &info, err, sizeof err);
        assert_null(f);
        if (!strstr(err, expect[how]) || !strstr(err, path))
            fail_msg("message '%s' lacks '%s' or the path", err, expect[how]);
    }
    snprintf(path, sizeof path, "%s/bad2.h5", tmp);
    write_shapes_file(path, 10, true);
    damage(path, 2);
    mg_h5_file *f = mg_h5_open(path, &info, err, sizeof err);
    if (!f)
        fail_msg("%s", err);
    int32_t rows[10 * F];
    MG_EXPECT_FATAL(mg_h5_read_factors(f, 0, 10, rows), "sample 4: factor 'scale' is 6, outside 0..5");
    mg_h5_close(f);
    mg_data_info_free(&info);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_factor_draws),
        cmocka_unit_test(test_image_follows_factors),
        cmocka_unit_test(test_geometry),
        cmocka_unit_test(test_factors_round_trip),
        cmocka_unit_test(test_factors_damaged),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
