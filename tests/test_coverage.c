/* Factor coverage end to end on a tiny shapes set (`mpigan data shapes`' writer, 512 + 256
 * items): a classifier trained on one factor column (classifier.label: {factor: colour})
 * scores well above chance and records the factor and its test histograms; the real test
 * set scored as samples covers every value of each factor with a small TV to the real
 * histogram, and one image repeated covers one value; a generator's and a file's coverage
 * counts over the ranks equal one process's, exactly; and the bad inputs (a factor the file
 * lacks, a file without factors, a model of the wrong size, a coverage extractor of another
 * input shape or trained on labels, two for one factor, eval.coverage in a training config)
 * fail on every rank with a message naming the file and the key.
 * mpirun-np: 1 2 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_batch_streams.h"
#include "mg_cfg.h"
#include "mg_cfg_override.h"
#include "mg_classifier.h"
#include "mg_coverage.h"
#include "mg_dist.h"
#include "mg_eval.h"
#include "mg_eval_files.h"
#include "mg_extractor.h"
#include "mg_h5schema.h"
#include "mg_shapes.h"
#include "mg_test.h"
#include "mg_testenv.h"
#include "mg_train.h"

#define N_TRAIN 512
#define N_TEST 256
#define BATCH 64 /* evaluation batch: also the extractors' piece, so one process can redo it */

static char dir[256], train_path[320], test_path[320], grey_path[320], cache_dir[320];
static char colour_model[320], background_model[320], labels_model[320], grey_model[320];

/* A tiny classifier of 64x64 RGB images: two 4x4 stride-4 convolutions, 24 features. */
static const char *shapes_classifier_yaml =
    "classifier:\n"
    "  test_data: %s\n"
    "  label: %s\n"
    "  epochs: %d\n"
    "  batch: 32\n"
    "  seed: 2\n"
    "  log_interval: 100\n"
    "  hflip: false\n"
    "  out: %s\n"
    "  optimizer: {kind: adam, lr: 0.01}\n"
    "  schedule: {kind: cosine, final_factor: 0.1}\n"
    "data: {path: %s, prefetch: false}\n"
    "model:\n"
    "  input: [3, 64, 64]\n"
    "  init: {kind: kaiming_normal}\n"
    "  layers:\n"
    "    - {kind: conv2d, out: 8, kernel: 4, stride: 4, padding: 0, bias: false}\n"
    "    - {kind: batchnorm}\n"
    "    - {kind: relu}\n"
    "    - {kind: conv2d, out: 16, kernel: 4, stride: 4, padding: 0, bias: false}\n"
    "    - {kind: batchnorm}\n"
    "    - {kind: relu}\n"
    "    - {kind: flatten}\n"
    "    - {kind: linear, out: 24, bias: false}\n"
    "    - {kind: batchnorm}\n"
    "    - {kind: relu, name: features}\n"
    "    - {kind: linear, out: %d}\n";

/* The same kind of model for 1x8x8 grey images. */
static const char *grey_classifier_yaml =
    "classifier: {test_data: %s, label: %s, epochs: 1, batch: 32, seed: 1, hflip: false, out: %s,\n"
    "  optimizer: {kind: adam, lr: 0.01}}\n"
    "data: {path: %s, prefetch: false}\n"
    "model:\n"
    "  input: [1, 8, 8]\n"
    "  layers:\n"
    "    - {kind: flatten}\n"
    "    - {kind: linear, out: 12, bias: false}\n"
    "    - {kind: batchnorm}\n"
    "    - {kind: relu, name: features}\n"
    "    - {kind: linear, out: 4}\n";

static mg_classifier_result train_shapes(const char *label, int classes, int epochs, const char *out)
{
    return mg_test_classifier_train("factor_classifier.yaml", shapes_classifier_yaml, test_path, label, epochs, out,
                                    train_path, classes);
}

static mg_classifier_result train_grey(const char *label, const char *out)
{
    return mg_test_classifier_train("grey_classifier.yaml", grey_classifier_yaml, grey_path, label, out, grey_path);
}

static int setup(void **state)
{
    (void)state;
    mg_test_dir_make(dir, sizeof dir, "coverage");
    snprintf(train_path, sizeof train_path, "%s/shapes-train.h5", dir);
    snprintf(test_path, sizeof test_path, "%s/shapes-test.h5", dir);
    snprintf(grey_path, sizeof grey_path, "%s/grey.h5", dir);
    snprintf(cache_dir, sizeof cache_dir, "%s/cache", dir);
    snprintf(colour_model, sizeof colour_model, "%s/colour/classifier.h5", dir);
    snprintf(background_model, sizeof background_model, "%s/background/classifier.h5", dir);
    snprintf(labels_model, sizeof labels_model, "%s/labels/classifier.h5", dir);
    snprintf(grey_model, sizeof grey_model, "%s/grey/classifier.h5", dir);
    mg_shapes_write(train_path, N_TRAIN, 3, MG_SHAPES_TRAIN); /* collective */
    mg_shapes_write(test_path, N_TEST, 3, MG_SHAPES_TEST);
    if (mg_dist_rank() == 0) { /* 1x8x8 grey images with labels and no factors */
        unsigned char x[128 * 64];
        int32_t y[128];
        for (int i = 0; i < 128; i++) {
            y[i] = i % 4;
            for (int p = 0; p < 64; p++)
                x[i * 64 + p] = (unsigned char)(p / 16 == y[i] ? 200 : 30 + (i * 7 + p) % 20);
        }
        mg_test_write_images(grey_path, 1, 8, 128, x, y, "test_coverage grey");
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

/* The test file's factor column `col` counted per value (one process). */
static void true_histogram(int col, double *hist)
{
    int32_t *f = malloc(sizeof(int32_t) * N_TEST * MG_SHAPES_N_FACTORS);
    mg_data_info info;
    mg_h5_file *h = mg_h5_open_or_fail(test_path, &info);
    mg_h5_read_factors(h, 0, N_TEST, f);
    mg_h5_close(h);
    mg_data_info_free(&info);
    for (int v = 0; v < mg_shapes_factor_sizes[col]; v++)
        hist[v] = 0;
    for (int i = 0; i < N_TEST; i++)
        hist[f[i * MG_SHAPES_N_FACTORS + col]] += 1;
    free(f);
}

static void test_factor_classifier(void **state)
{
    (void)state;
    /* colour (8 values, chance 1/8) and background (4 values) from the factors column */
    mg_classifier_result r = train_shapes("{factor: colour}", 8, 6, colour_model);
    if (mg_dist_rank() == 0)
        printf("colour classifier: test accuracy %.3f\n", r.test_accuracy);
    if (!(r.test_accuracy > 0.5))
        fail_msg("colour classifier: test accuracy %.3f, chance is 0.125", r.test_accuracy);
    assert_int_equal(r.n_classes, 8);
    assert_true(r.replicas_equal);
    r = train_shapes("{factor: background}", 4, 6, background_model);
    if (mg_dist_rank() == 0)
        printf("background classifier: test accuracy %.3f\n", r.test_accuracy);
    if (!(r.test_accuracy > 0.5))
        fail_msg("background classifier: test accuracy %.3f, chance is 0.25", r.test_accuracy);
    r = train_shapes("labels", 4, 2, labels_model); /* the shape, from `labels`: the FID extractor here */
    assert_int_equal(r.n_classes, 4);
    train_grey("labels", grey_model);
    /* the model file says which factor, and holds the test set's true and predicted counts */
    mg_model_file m;
    mg_model_file_read(colour_model, &m);
    assert_string_equal(m.label_factor, "colour");
    assert_non_null(m.test_label_hist);
    assert_non_null(m.test_pred_hist);
    double truth[8], pred = 0;
    true_histogram(MG_SHAPES_F_COLOUR, truth);
    for (int v = 0; v < 8; v++) {
        MG_ASSERT_CLOSE(m.test_label_hist[v], truth[v], 0, 0, "test_label_hist = the test file's colours");
        pred += m.test_pred_hist[v];
    }
    MG_ASSERT_CLOSE(pred, N_TEST, 0, 0, "test_pred_hist counts every test image");
    mg_model_file_free(&m);
    mg_model_file_read(labels_model, &m);
    assert_string_equal(m.label_factor, "");
    mg_model_file_free(&m);
}

static mg_eval_cfg coverage_cfg(void)
{
    mg_eval_cfg c;
    mg_eval_cfg_default(&c);
    snprintf(c.extractor, sizeof c.extractor, "%s", labels_model);
    snprintf(c.cache_dir, sizeof c.cache_dir, "%s", cache_dir);
    c.batch = BATCH;
    c.kid_subsets = 4;
    c.kid_subset_size = 50;
    c.n_coverage = 2;
    snprintf(c.coverage[0], sizeof c.coverage[0], "%s", colour_model);
    snprintf(c.coverage[1], sizeof c.coverage[1], "%s", background_model);
    return c;
}

/* One process's coverage counts of n samples x (n, 3, 64, 64): each coverage extractor's
 * predictions counted per value. */
static void serial_counts(const float *x, int64_t n, const char *model, double *hist)
{
    mg_extractor ex;
    mg_extractor_load(&ex, model, BATCH);
    int *classes = malloc(sizeof(int) * (size_t)n);
    mg_extractor_classify(&ex, x, n, classes);
    memset(hist, 0, sizeof(double) * (size_t)ex.n_classes);
    for (int64_t i = 0; i < n; i++)
        hist[classes[i]] += 1;
    free(classes);
    mg_extractor_free(&ex);
}

/* The test file's images as the loader maps them. */
static float *test_images(void)
{
    unsigned char *raw = malloc((size_t)N_TEST * MG_SHAPES_IMAGE_BYTES);
    float *x = malloc(sizeof(float) * (size_t)N_TEST * MG_SHAPES_IMAGE_BYTES);
    mg_data_info info;
    mg_h5_file *h = mg_h5_open_or_fail(test_path, &info);
    mg_h5_read_samples(h, 0, N_TEST, raw);
    mg_h5_close(h);
    mg_data_info_free(&info);
    for (size_t i = 0; i < (size_t)N_TEST * MG_SHAPES_IMAGE_BYTES; i++)
        x[i] = (float)raw[i] / 127.5f - 1.0f;
    free(raw);
    return x;
}

static void expect_counts(const mg_factor_coverage *f, const double *want, const char *what)
{
    for (int v = 0; v < f->n_values; v++)
        if (f->hist[v] != want[v])
            fail_msg("%s, factor %s value %d: %g samples, one process counts %g", what, f->factor, v, f->hist[v],
                     want[v]);
}

/* The real test set as samples: every value of both factors, a small TV (the stored real
 * histogram is of these very images); counts equal to one process's. */
static void test_real_data_covers_every_value(void **state)
{
    (void)state;
    mg_eval_cfg c = coverage_cfg();
    mg_evaluator *e = mg_evaluator_create(&c);
    mg_eval_result r = mg_evaluator_run_file(e, test_path, true, 0, 1);
    mg_evaluator_free(e);
    if (mg_dist_rank() != 0)
        return;
    assert_int_equal(r.n_factors, 2);
    assert_string_equal(r.factors[0].factor, "colour");
    assert_string_equal(r.factors[1].factor, "background");
    assert_int_equal(r.factors[0].values_over_1pct, 8);
    assert_int_equal(r.factors[1].values_over_1pct, 4);
    for (int j = 0; j < 2; j++) {
        MG_ASSERT_CLOSE(r.factors[j].real_n, N_TEST, 0, 0, "real test images");
        if (!(r.factors[j].tv < 0.02))
            fail_msg("factor %s: TV %.4f of the real test set against itself", r.factors[j].factor, r.factors[j].tv);
        assert_true(r.factors[j].accuracy > 0.5);
    }
    float *x = test_images();
    double want[8];
    serial_counts(x, N_TEST, colour_model, want);
    expect_counts(&r.factors[0], want, "real test set");
    serial_counts(x, N_TEST, background_model, want);
    expect_counts(&r.factors[1], want, "real test set");
    free(x);
    /* the report: per factor in the JSON, one line of text */
    char *json = mg_eval_result_json(&r);
    assert_non_null(
        strstr(json, "\"factor_coverage\": [{\"factor\": \"colour\", \"values\": 8, \"values_over_1pct\": 8"));
    assert_non_null(strstr(json, "\"tv_to_real\": "));
    assert_non_null(strstr(json, "\"extractor_accuracy\": "));
    assert_non_null(strstr(json, "\"real_histogram\": ["));
    mg_free(json);
    char *text = mg_eval_result_text(&r);
    assert_non_null(strstr(text, "colour 8/8 TV"));
    mg_free(text);
}

/* One image repeated: one value of each factor, far from the real histogram. */
static void test_one_image_covers_one_value(void **state)
{
    (void)state;
    char samples[400];
    snprintf(samples, sizeof samples, "%s/same.h5", dir);
    if (mg_dist_rank() == 0) {
        float *x = test_images();
        const int n = 200;
        float *same = malloc(sizeof(float) * (size_t)n * MG_SHAPES_IMAGE_BYTES);
        for (int i = 0; i < n; i++)
            memcpy(same + (size_t)i * MG_SHAPES_IMAGE_BYTES, x, sizeof(float) * MG_SHAPES_IMAGE_BYTES);
        mg_samples_file_write(samples, same, n, 3, 64, 64, NULL, 0, "test_coverage: image 0 repeated");
        free(same);
        free(x);
    }
    mg_dist_barrier();
    mg_eval_cfg c = coverage_cfg();
    mg_evaluator *e = mg_evaluator_create(&c);
    mg_eval_result r = mg_evaluator_run_file(e, samples, false, 0, 1);
    mg_evaluator_free(e);
    if (mg_dist_rank() != 0)
        return;
    for (int j = 0; j < 2; j++) {
        assert_int_equal(r.factors[j].values_over_1pct, 1);
        assert_int_equal(r.factors[j].values_seen, 1);
        if (!(r.factors[j].tv > 0.5))
            fail_msg("factor %s: TV %.3f for one repeated image", r.factors[j].factor, r.factors[j].tv);
    }
}

/* A generator's samples (an untrained one: noise -> 3x64x64): the counts over the ranks
 * are one process's, exactly, so np 1 and np 2 report the same numbers. */
static void test_generator_counts_equal_one_process(void **state)
{
    (void)state;
    mg_cfg *gcfg = mg_cfg_parse("generator:\n  input: [8]\n  layers:\n"
                                "    - {kind: linear, out: 12288, activation: tanh}\n"
                                "    - {kind: reshape, shape: [3, 64, 64]}\n",
                                "g.yaml");
    mg_net G;
    mg_net_from_cfg(&G, "G", mg_cfg_require(mg_cfg_root(gcfg), "generator"), (mg_shape){0, 0, 0}, BATCH);
    mg_rng rng;
    mg_rng_init(&rng, 4, mg_rng_stream_id(MG_STREAM_INIT, 0));
    mg_net_init_params(&G, &rng);
    mg_eval_cfg c = coverage_cfg();
    c.samples_shape = G.out;
    mg_evaluator *e = mg_evaluator_create(&c);
    const int64_t n = 301; /* a short last batch */
    mg_eval_result r = mg_evaluator_run_generator(e, &G, n, 6);
    mg_evaluator_free(e);
    if (mg_dist_rank() == 0) {
        float *z = malloc(sizeof(float) * (size_t)n * 8), *x = malloc(sizeof(float) * (size_t)n * 12288);
        mg_batch_streams_normals(z, (int)n, 8, 6, MG_STREAM_EVAL, 0);
        for (int64_t s = 0; s < n; s += BATCH) {
            const int m = (int)(n - s < BATCH ? n - s : BATCH);
            memcpy(x + s * 12288, mg_net_forward(&G, z + s * 8, m, MG_EVAL), sizeof(float) * (size_t)m * 12288);
        }
        double want[8], total = 0;
        serial_counts(x, n, colour_model, want);
        expect_counts(&r.factors[0], want, "generator");
        serial_counts(x, n, background_model, want);
        expect_counts(&r.factors[1], want, "generator");
        for (int v = 0; v < 4; v++)
            total += r.factors[1].hist[v];
        MG_ASSERT_CLOSE(total, (double)n, 0, 0, "every sample counted once");
        free(z);
        free(x);
    }
    mg_net_free(&G);
    mg_cfg_free(gcfg);
}

/* A classifier asked for a factor its files lack, on a file without factors, or with a
 * model of the wrong size: refused on every rank before any collective call, naming the
 * file and classifier.label (or the last layer). */
static void test_classifier_factor_errors(void **state)
{
    (void)state;
    char out[400];
    snprintf(out, sizeof out, "%s/bad/classifier.h5", dir);
    MG_EXPECT_FATAL(train_shapes("{factor: hue}", 8, 1, out), "has no factor 'hue' (its factors: shape, colour,");
    assert_non_null(strstr(mg_last_error(), "(classifier.label)"));
    assert_non_null(strstr(mg_last_error(), train_path));
    MG_EXPECT_FATAL(train_grey("{factor: colour}", out), "has no factors dataset, so no factor 'colour'");
    assert_non_null(strstr(mg_last_error(), grey_path));
    MG_EXPECT_FATAL(train_shapes("{factor: scale}", 8, 1, out), "factor 'scale' (classifier.label)");
    assert_non_null(strstr(mg_last_error(), "takes 6 values"));
    assert_non_null(strstr(mg_last_error(), "model.layers[10].out=6"));
    MG_EXPECT_FATAL(train_shapes("colour", 8, 1, out), "a factor is given as {factor: colour}");
    mg_dist_barrier();
}

/* Coverage extractors that cannot judge the samples: refused when the evaluator is made,
 * on every rank (each loads its own copies), naming the file. */
static void test_coverage_extractor_errors(void **state)
{
    (void)state;
    mg_eval_cfg c = coverage_cfg();
    snprintf(c.coverage[1], sizeof c.coverage[1], "%s", grey_model);
    MG_EXPECT_FATAL(mg_evaluator_create(&c),
                    "the coverage extractor takes 1x8x8 images, the samples to score are 3x64x64");
    assert_non_null(strstr(mg_last_error(), grey_model));
    c = coverage_cfg();
    snprintf(c.coverage[0], sizeof c.coverage[0], "%s", labels_model);
    MG_EXPECT_FATAL(mg_evaluator_create(&c), "trained on its data file's labels, not on a factor");
    assert_non_null(strstr(mg_last_error(), labels_model));
    c = coverage_cfg();
    snprintf(c.coverage[1], sizeof c.coverage[1], "%s", colour_model);
    MG_EXPECT_FATAL(mg_evaluator_create(&c), "judges factor 'colour', as");
    c = coverage_cfg();
    snprintf(c.coverage[1], sizeof c.coverage[1], "%s/no/such/classifier.h5", dir);
    MG_EXPECT_FATAL(mg_evaluator_create(&c), "no/such/classifier.h5");
    mg_dist_barrier();
}

/* eval.coverage in a training config: a bad entry stops trainer creation on every rank,
 * naming the file and the config place of eval.coverage. */
static void test_training_config_errors(void **state)
{
    (void)state;
    static const char *gan_yaml =
        "generator:\n  input: [8]\n  layers:\n"
        "    - {kind: linear, out: 12288, activation: tanh}\n"
        "    - {kind: reshape, shape: [3, 64, 64]}\n"
        "discriminator:\n  input: [3, 64, 64]\n  layers:\n"
        "    - {kind: flatten}\n    - {kind: linear, out: 1}\n"
        "train: {loss: non_saturating, batch: 16, steps: 2, seed: 1}\n"
        "optimizer_g: {kind: adam, lr: 1.0e-3}\n"
        "optimizer_d: {kind: adam, lr: 1.0e-3}\n"
        "data: {path: %s}\n"
        "checkpoint: {interval: 0}\n"
        "run_dir: %s/run\n"
        "eval: {interval: 1, samples: 200, batch: 50, extractor: %s, cache_dir: %s,\n"
        "       coverage: %s}\n";
    char text[3000], list[800];
    snprintf(list, sizeof list, "[%s, %s]", colour_model, labels_model);
    snprintf(text, sizeof text, gan_yaml, train_path, dir, labels_model, cache_dir, list);
    mg_cfg *cfg = mg_cfg_parse(text, "gan.yaml");
    MG_EXPECT_FATAL(mg_trainer_create(cfg, false, false), "not on a factor");
    assert_non_null(strstr(mg_last_error(), labels_model));
    if (!strstr(mg_last_error(), "gan.yaml:18:18 (eval.coverage)"))
        fail_msg("the message does not name eval.coverage's place: %s", mg_last_error());
    mg_error_set_context(NULL);
    mg_cfg_free(cfg);
    /* not a list */
    snprintf(text, sizeof text, gan_yaml, train_path, dir, labels_model, cache_dir, colour_model);
    cfg = mg_cfg_parse(text, "gan.yaml");
    MG_EXPECT_FATAL(mg_trainer_create(cfg, false, false), "(eval.coverage): not a list");
    mg_error_set_context(NULL);
    mg_cfg_free(cfg);
    mg_dist_barrier();
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_factor_classifier),
        cmocka_unit_test(test_real_data_covers_every_value),
        cmocka_unit_test(test_one_image_covers_one_value),
        cmocka_unit_test(test_generator_counts_equal_one_process),
        cmocka_unit_test(test_classifier_factor_errors),
        cmocka_unit_test(test_coverage_extractor_errors),
        cmocka_unit_test(test_training_config_errors),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    failed = mg_dist_any(failed != 0) ? 1 : 0;
    mg_dist_finalize();
    return failed;
}
