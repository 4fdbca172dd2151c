/* Colour images at sizes other than 28x28, end to end: on small 3x32x32 and 3x64x64 data
 * files made here (4 classes told apart by colour alone), the feature classifier trains on
 * 3 channels; a convolutional GAN with DiffAugment (colour, translation, cutout) trains,
 * evaluates (FID, IS, KID finite) and writes RGB sample grids of the right size;
 * `mpigan sample` and `mpigan eval` work on its checkpoint; resume is bitwise at 3
 * channels; a generator whose output does not fit the data is refused naming the
 * generator's config place and both shapes.
 * mpirun-np: 2 */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_cfg.h"
#include "mg_cfg_override.h"
#include "mg_classifier.h"
#include "mg_dist.h"
#include "mg_eval.h"
#include "mg_h5schema.h"
#include "mg_rng.h"
#include "mg_sample.h"
#include "mg_test.h"
#include "mg_testenv.h"
#include "mg_train.h"
#include "mg_util.h"

#define N_IMAGES 160

static char dir[256], data32[320], data64[320], model32[320], model64[320];

/* Class y of 4: a block of colour y (red, green, blue, yellow) at a random place over dim
 * noise in every channel, so only the channels tell the classes apart. */
static void make_rgb(const char *path, int side, int64_t n, uint64_t seed)
{
    static const unsigned char colours[4][3] = {{230, 30, 30}, {30, 230, 30}, {30, 30, 230}, {230, 230, 30}};
    const size_t plane = (size_t)side * side, size = 3 * plane;
    unsigned char *x = malloc((size_t)n * size);
    int32_t *y = malloc(sizeof(int32_t) * (size_t)n);
    assert_non_null(x);
    assert_non_null(y);
    mg_rng r;
    mg_rng_init(&r, seed, mg_rng_stream_id(MG_STREAM_TEST, 0));
    const int b = side / 4;
    for (int64_t i = 0; i < n; i++) {
        y[i] = (int32_t)(i % 4);
        unsigned char *img = x + (size_t)i * size;
        for (size_t p = 0; p < size; p++)
            img[p] = (unsigned char)mg_rng_below(&r, 60);
        const int oy = (int)mg_rng_below(&r, (uint64_t)(side - b)), ox = (int)mg_rng_below(&r, (uint64_t)(side - b));
        for (int ch = 0; ch < 3; ch++)
            for (int a = 0; a < b; a++)
                for (int c = 0; c < b; c++)
                    img[(size_t)ch * plane + (size_t)(oy + a) * side + ox + c] = colours[y[i]][ch];
    }
    mg_test_write_images(path, 3, side, n, x, y, "test_rgb synthetic");
    free(x);
    free(y);
}

/* conv 3 -> 8 (stride 2), then stride 2 again down to 8x8, features, 4 classes */
static const char *classifier_yaml =
    "classifier: {test_data: %s, epochs: 6, batch: 32, seed: 1, log_interval: 5, hflip: true, out: %s,\n"
    "  optimizer: {kind: adam, lr: 0.01}}\n"
    "data: {path: %s, prefetch: false}\n"
    "model:\n"
    "  input: [3, %d, %d]\n"
    "  init: {kind: kaiming_normal}\n"
    "  layers:\n"
    "    - {kind: conv2d, out: 8, kernel: 4, stride: %d, padding: 1, bias: false}\n"
    "    - {kind: batchnorm}\n"
    "    - {kind: relu}\n"
    "    - {kind: conv2d, out: 8, kernel: 4, stride: 2, padding: 1, bias: false}\n"
    "    - {kind: batchnorm}\n"
    "    - {kind: relu}\n"
    "    - {kind: flatten}\n"
    "    - {kind: linear, out: 12, bias: false}\n"
    "    - {kind: batchnorm}\n"
    "    - {kind: relu, name: features}\n"
    "    - {kind: linear, out: 4}\n";

static mg_classifier_result train_classifier(int side, const char *data, const char *out)
{
    return mg_test_classifier_train("rgb_classifier.yaml", classifier_yaml, data, out, data, side, side, side / 16);
}

/* A small DCGAN-shaped GAN: z -> 16x4x4 -> transposed convolutions doubling the side up to
 * 3 x side x side (tanh); D mirrored. ups transposed convolutions give side = 4 << ups. */
static mg_cfg *dcgan(int ups, const char *data, const char *run)
{
    const int side = 4 << ups;
    char text[4096];
    size_t n = 0;
    n += (size_t)snprintf(text + n, sizeof text - n,
                          "generator:\n  input: [8]\n  init: {kind: normal, std: 0.02, bn_std: 0.02}\n  layers:\n"
                          "    - {kind: linear, out: 256, bias: false}\n    - {kind: batchnorm}\n"
                          "    - {kind: relu}\n    - {kind: reshape, shape: [16, 4, 4]}\n");
    for (int u = 0; u < ups - 1; u++)
        n += (size_t)snprintf(text + n, sizeof text - n,
                              "    - {kind: conv_transpose2d, out: 8, kernel: 4, stride: 2, padding: 1, bias: false}\n"
                              "    - {kind: batchnorm}\n    - {kind: relu}\n");
    n += (size_t)snprintf(text + n, sizeof text - n,
                          "    - {kind: conv_transpose2d, out: 3, kernel: 4, stride: 2, padding: 1}\n"
                          "    - {kind: tanh}\n"
                          "discriminator:\n  input: [3, %d, %d]\n  init: {kind: normal, std: 0.02, bn_std: 0.02}\n"
                          "  layers:\n"
                          "    - {kind: conv2d, out: 8, kernel: 4, stride: 4, padding: 0, activation: leaky_relu}\n"
                          "    - {kind: conv2d, out: 8, kernel: 4, stride: 2, padding: 1, bias: false}\n"
                          "    - {kind: batchnorm}\n    - {kind: leaky_relu, slope: 0.2}\n"
                          "    - {kind: flatten}\n    - {kind: linear, out: 1}\n"
                          "train: {loss: non_saturating, batch: 16, steps: 4, seed: 7, log_interval: 2,\n"
                          "  sample_interval: 2, augment: {policy: [color, translation, cutout]}}\n"
                          "optimizer_g: {kind: adam, lr: 2.0e-4, beta1: 0.5}\n"
                          "optimizer_d: {kind: adam, lr: 2.0e-4, beta1: 0.5}\n"
                          "data: {path: %s}\n"
                          "checkpoint: {interval: 2}\n"
                          "run_dir: %s/%s\n",
                          side, side, data, dir, run);
    assert_true(n < sizeof text);
    return mg_cfg_parse(text, "rgb_dcgan.yaml");
}

/* Rank 0: width, height and colour type of a PNG file. */
static void png_header(const char *path, unsigned *w, unsigned *h, int *colour)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("no PNG %s", path);
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_non_null(png);
    assert_non_null(info);
    if (setjmp(png_jmpbuf(png)))
        fail_msg("%s is not a readable PNG", path);
    png_init_io(png, f);
    png_read_info(png, info);
    *w = png_get_image_width(png, info);
    *h = png_get_image_height(png, info);
    *colour = png_get_color_type(png, info);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
}

/* A grid of n tiles of side x side (mg_png_grid.h: cols = ceil(sqrt(n)), 2-pixel borders)
 * in path is an RGB PNG of the expected size. */
static void assert_rgb_grid(const char *path, int n, int side)
{
    if (mg_dist_rank() != 0)
        return;
    const int cols = (int)ceil(sqrt((double)n)), rows = (n + cols - 1) / cols;
    unsigned w, h;
    int colour;
    png_header(path, &w, &h, &colour);
    assert_int_equal(colour, PNG_COLOR_TYPE_RGB);
    assert_int_equal(w, (unsigned)(cols * (side + 2) + 2));
    assert_int_equal(h, (unsigned)(rows * (side + 2) + 2));
}

/* Rank 0: the number value of "key": in the last line of file holding it (NAN if none). */
static double last_value(const char *file, const char *key)
{
    char line[16384], k[80];
    snprintf(k, sizeof k, "\"%s\": ", key);
    FILE *f = fopen(file, "r");
    if (!f)
        fail_msg("cannot read %s", file);
    double v = NAN;
    while (fgets(line, sizeof line, f)) {
        const char *at = strstr(line, k);
        if (at)
            v = strtod(at + strlen(k), NULL);
    }
    fclose(f);
    return v;
}

static int setup(void **state)
{
    (void)state;
    mg_test_dir_make(dir, sizeof dir, "rgb");
    snprintf(data32, sizeof data32, "%s/rgb32.h5", dir);
    snprintf(data64, sizeof data64, "%s/rgb64.h5", dir);
    snprintf(model32, sizeof model32, "%s/c32/classifier.h5", dir);
    snprintf(model64, sizeof model64, "%s/c64/classifier.h5", dir);
    if (mg_dist_rank() == 0) {
        make_rgb(data32, 32, N_IMAGES, 1);
        make_rgb(data64, 64, N_IMAGES, 2);
    }
    mg_dist_barrier();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mg_test_dir_remove(dir);
    return 0;
}

/* The classifier on 3 channels at both sizes; classes differ only in colour, so beating
 * chance (0.25) by a margin needs the channels read apart. */
static void test_classifier_on_colour(void **state)
{
    (void)state;
    const int sides[2] = {32, 64};
    const char *data[2] = {data32, data64}, *out[2] = {model32, model64};
    for (int s = 0; s < 2; s++) {
        mg_classifier_result r = train_classifier(sides[s], data[s], out[s]);
        assert_true(r.replicas_equal);
        assert_int_equal(r.n_classes, 4);
        assert_int_equal(r.feature_dim, 12);
        assert_int_equal(r.steps, 6 * (N_IMAGES / 32));
        if (!(r.test_accuracy >= 0.6))
            fail_msg("3x%dx%d classifier: accuracy %.3f on colour-coded classes", sides[s], sides[s], r.test_accuracy);
    }
}

/* Trains 4 steps with evaluation at the end; FID, IS, KID finite, grids RGB. */
static void train_and_evaluate(int ups, const char *data, const char *model, const char *run)
{
    const int side = 4 << ups;
    mg_cfg *cfg = dcgan(ups, data, run);
    char set[400];
    snprintf(set, sizeof set, "eval.extractor=%s", model);
    mg_cfg_override(cfg, set);
    static const char *const small[] = {"eval.interval=4", "eval.samples=100", "eval.batch=25", "eval.splits=2",
                                        "eval.kid_subsets=2", "eval.kid_subset_size=20", NULL};
    for (const char *const *o = small; *o; o++)
        mg_cfg_override(cfg, *o);
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    mg_train_result r = mg_trainer_run(t);
    mg_trainer_free(t);
    mg_cfg_free(cfg);
    assert_int_equal(r.status, MG_TRAIN_DONE);
    assert_int_equal(r.step, 4);
    assert_true(r.losses_finite);
    assert_true(r.replicas_equal);
    if (mg_dist_rank() == 0) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s/metrics.jsonl", dir, run);
        static const char *const keys[] = {"fid", "is_mean", "kid_mean"};
        for (int k = 0; k < 3; k++) {
            double v = last_value(path, keys[k]);
            if (!isfinite(v))
                fail_msg("3x%dx%d: %s is %g in %s", side, side, keys[k], v, path);
        }
        snprintf(path, sizeof path, "%s/%s/samples/step_2.png", dir, run);
        assert_rgb_grid(path, 64, side);
    }
    mg_dist_barrier();
}

static void test_train_and_evaluate_32(void **state)
{
    (void)state;
    train_and_evaluate(3, data32, model32, "gan32");
}

/* at 64x64 also `mpigan sample` (an RGB PNG grid of 10) and `mpigan eval` on the
 * checkpoint */
static void test_train_evaluate_sample_64(void **state)
{
    (void)state;
    train_and_evaluate(4, data64, model64, "gan64");
    char ckpt[500], png[500], json[500];
    snprintf(ckpt, sizeof ckpt, "%s/gan64/checkpoints/ckpt_000000004.h5", dir);
    snprintf(png, sizeof png, "%s/sample64.png", dir);
    snprintf(json, sizeof json, "%s/eval64.json", dir);
    char *sample_argv[] = {"sample", "--checkpoint", ckpt, "-n", "10", "-o", png, NULL};
    assert_int_equal(mg_cmd_sample(7, sample_argv), 0);
    mg_dist_barrier();
    assert_rgb_grid(png, 10, 64);

    char *eval_argv[] = {"eval", ckpt, "--extractor", model64, "-n", "100", "--batch", "25", "--splits", "2",
                         "--kid-subsets", "2", "--kid-subset-size", "20", "-o", json, NULL};
    assert_int_equal(mg_cmd_eval(16, eval_argv), 0);
    if (mg_dist_rank() == 0) {
        const double fid = last_value(json, "fid");
        if (!isfinite(fid) || fid <= 0)
            fail_msg("mpigan eval on 3x64x64 samples: fid %g", fid);
    }
    mg_dist_barrier();

    /* the same samples through a samples file, and the real data scored against itself */
    char h5[500], json2[500], json3[500];
    snprintf(h5, sizeof h5, "%s/samples64.h5", dir);
    snprintf(json2, sizeof json2, "%s/eval64_samples.json", dir);
    snprintf(json3, sizeof json3, "%s/eval64_real.json", dir);
    char *sample_h5_argv[] = {"sample", "--checkpoint", ckpt, "-n", "100", "-o", h5, NULL};
    assert_int_equal(mg_cmd_sample(7, sample_h5_argv), 0);
    mg_dist_barrier();
    char *eval_samples_argv[] = {"eval", "--samples", h5, "--extractor", model64, "--batch", "25", "--splits", "2",
                                 "--kid-subsets", "2", "--kid-subset-size", "20", "-o", json2, NULL};
    assert_int_equal(mg_cmd_eval(15, eval_samples_argv), 0);
    char *eval_real_argv[] = {"eval", "--real", data64, "--extractor", model64, "--batch", "25", "--splits", "2",
                              "--kid-subsets", "2", "--kid-subset-size", "20", "-o", json3, NULL};
    assert_int_equal(mg_cmd_eval(15, eval_real_argv), 0);
    if (mg_dist_rank() == 0) {
        /* seed 1 both times: the file holds the checkpoint's samples, so the FID is the same */
        const double a = last_value(json, "fid"), b = last_value(json2, "fid"), real = last_value(json3, "fid");
        if (!(fabs(a - b) <= 1e-3 * a))
            fail_msg("FID of the checkpoint %g, of its samples file %g", a, b);
        if (!(isfinite(real) && real < a))
            fail_msg("real data's FID against itself %g, not below the generator's %g", real, a);
    }
    mg_dist_barrier();
}

static uint64_t net_checksum(const mg_net *n)
{
    uint64_t parts[2] = {mg_checksum(n->param, n->n_param * sizeof(float)),
                         mg_checksum(n->state, n->n_state * sizeof(float))};
    return mg_checksum(parts, sizeof parts);
}

/* 4 steps straight and 2 + stop + resume 2 end bitwise equal at 3x32x32 (DiffAugment on). */
static void test_resume_is_bitwise_at_three_channels(void **state)
{
    (void)state;
    mg_cfg *cfg = dcgan(3, data32, "resume_a");
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    mg_train_result r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_DONE);
    const uint64_t g = net_checksum(mg_trainer_G(t)), d = net_checksum(mg_trainer_D(t));
    mg_trainer_free(t);
    mg_cfg_free(cfg);

    cfg = dcgan(3, data32, "resume_b");
    mg_cfg_override(cfg, "debug.stop_at_step=2");
    t = mg_trainer_create(cfg, false, false);
    r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_STOPPED);
    mg_trainer_free(t);
    mg_cfg_free(cfg);

    cfg = dcgan(3, data32, "resume_b");
    t = mg_trainer_create(cfg, true, false);
    r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_DONE);
    assert_int_equal(r.step, 4);
    const int differ = net_checksum(mg_trainer_G(t)) != g || net_checksum(mg_trainer_D(t)) != d;
    mg_trainer_free(t);
    mg_cfg_free(cfg);
    if (mg_dist_any(differ))
        fail_msg("the resumed 3x32x32 run differs from the uninterrupted one");
}

/* A 3x32x32 generator on 3x64x64 data, and a 3x32x32 classifier on it: refused, naming
 * the config place and both shapes. */
static void test_shape_mismatch_is_refused(void **state)
{
    (void)state;
    mg_cfg *cfg = dcgan(3, data64, "mismatch");
    MG_EXPECT_FATAL(mg_trainer_create(cfg, false, false), "generator");
    assert_non_null(strstr(mg_last_error(), "(3, 64, 64)"));
    assert_non_null(strstr(mg_last_error(), "(3, 32, 32)"));
    assert_non_null(strstr(mg_last_error(), "rgb_dcgan.yaml"));
    mg_error_set_context(NULL);
    mg_cfg_free(cfg);

    char text[2048], out[400];
    snprintf(out, sizeof out, "%s/c_bad/classifier.h5", dir);
    snprintf(text, sizeof text, classifier_yaml, data64, out, data64, 32, 32, 2);
    cfg = mg_cfg_parse(text, "rgb_classifier.yaml");
    MG_EXPECT_FATAL(mg_classifier_train(cfg, text, "", false), "model.input");
    assert_non_null(strstr(mg_last_error(), "(3, 64, 64)"));
    assert_non_null(strstr(mg_last_error(), "(3, 32, 32)"));
    mg_error_set_context(NULL);
    mg_cfg_free(cfg);
    mg_dist_barrier();
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classifier_on_colour),
        cmocka_unit_test(test_train_and_evaluate_32),
        cmocka_unit_test(test_train_evaluate_sample_64),
        cmocka_unit_test(test_resume_is_bitwise_at_three_channels),
        cmocka_unit_test(test_shape_mismatch_is_refused),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    failed = mg_dist_any(failed != 0) ? 1 : 0;
    mg_dist_finalize();
    return failed;
}
