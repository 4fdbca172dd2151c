/* Evaluation during training (mg_train_eval.h): eval lines in metrics.jsonl at every
 * eval.interval steps and at the end, for 2-D mixtures (mode counting) and for images
 * with a tiny extractor trained here; training bitwise identical with the evaluation on
 * and off; a missing extractor, or one whose input shape differs from G's output, fails
 * trainer creation on every rank with a message naming the file.
 * mpirun-np: 1 2 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_batch_streams.h"
#include "mg_cfg.h"
#include "mg_cfg_override.h"
#include "mg_classifier.h"
#include "mg_dist.h"
#include "mg_h5schema.h"
#include "mg_test.h"
#include "mg_testenv.h"
#include "mg_train.h"

static char dir[256], data8[320], data16[320], model_path[320];

static const char *classifier_yaml =
    "classifier: {test_data: %s, epochs: 2, batch: 40, seed: 1, log_interval: 10, hflip: false, out: %s,\n"
    "  optimizer: {kind: adam, lr: 0.01}}\n"
    "data: {path: %s, prefetch: false}\n"
    "model:\n"
    "  input: [1, 8, 8]\n"
    "  init: {kind: kaiming_normal}\n"
    "  layers:\n"
    "    - {kind: conv2d, out: 6, kernel: 3, stride: 2, padding: 1, bias: false}\n"
    "    - {kind: batchnorm}\n"
    "    - {kind: relu}\n"
    "    - {kind: flatten}\n"
    "    - {kind: linear, out: 12, bias: false}\n"
    "    - {kind: batchnorm}\n"
    "    - {kind: relu, name: features}\n"
    "    - {kind: linear, out: 4}\n";

/* A small image GAN on side x side data; BatchNorm in G, so evaluation mode matters. */
static const char *image_gan_yaml =
    "generator:\n"
    "  input: [4]\n"
    "  init: {kind: normal, std: 0.2, bn_std: 0.02}\n"
    "  layers:\n"
    "    - {kind: linear, out: 16, bias: false}\n"
    "    - {kind: batchnorm}\n"
    "    - {kind: relu}\n"
    "    - {kind: linear, out: %d}\n"
    "    - {kind: reshape, shape: [1, %d, %d]}\n"
    "    - {kind: tanh}\n"
    "discriminator:\n"
    "  input: [1, %d, %d]\n"
    "  init: {kind: normal, std: 0.2}\n"
    "  layers:\n"
    "    - {kind: flatten}\n"
    "    - {kind: linear, out: 16, activation: leaky_relu}\n"
    "    - {kind: linear, out: 1}\n"
    "train: {loss: non_saturating, batch: 16, steps: 12, seed: 5, log_interval: 4, sample_interval: 0}\n"
    "optimizer_g: {kind: adam, lr: 1.0e-3, beta1: 0.5}\n"
    "optimizer_d: {kind: adam, lr: 1.0e-3, beta1: 0.5}\n"
    "data: {path: %s}\n"
    "checkpoint: {interval: 0}\n"
    "run_dir: %s/%s\n";

static mg_cfg *image_gan(int side, const char *data, const char *run)
{
    char text[3000];
    snprintf(text, sizeof text, image_gan_yaml, side * side, side, side, side, side, data, dir, run);
    return mg_cfg_parse(text, "image_gan.yaml");
}

/* The same with a class-conditional G (4 classes, a class embedding concatenated to z). */
static mg_cfg *cond_image_gan(const char *run)
{
    char text[3000], cond[3200];
    snprintf(text, sizeof text, image_gan_yaml, 64, 8, 8, 8, 8, data8, dir, run);
    const char *at = strstr(text, "generator:\n") + strlen("generator:\n");
    snprintf(cond, sizeof cond, "%.*s  classes: 4\n  condition: {kind: concat, dim: 2}\n%s", (int)(at - text), text, at);
    return mg_cfg_parse(cond, "cond_image_gan.yaml");
}

/* Rank 0: whether any line of run's metrics.jsonl holds `field`. */
static bool metrics_have(const char *run, const char *field)
{
    char path[512], line[8192], key[64];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", dir, run);
    snprintf(key, sizeof key, "\"%s\": ", field);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    bool found = false;
    while (fgets(line, sizeof line, f))
        found = found || strstr(line, key) != NULL;
    fclose(f);
    return found;
}

static mg_cfg *ring_gan(const char *run)
{
    char run_dir[400];
    snprintf(run_dir, sizeof run_dir, "%s/%s", dir, run);
    return mg_test_tiny_cfg(run_dir, NULL, NULL);
}

static int setup(void **state)
{
    (void)state;
    mg_test_dir_make(dir, sizeof dir, "train_eval");
    snprintf(data8, sizeof data8, "%s/train8.h5", dir);
    snprintf(data16, sizeof data16, "%s/train16.h5", dir);
    snprintf(model_path, sizeof model_path, "%s/model/classifier.h5", dir);
    if (mg_dist_rank() == 0) {
        /* class y of 4: a bright 3x3 block in quadrant y of a dim noisy image */
        mg_test_write_quadrant_images(data8, 8, 400, 1, "test_train_eval synthetic");
        mg_test_write_quadrant_images(data16, 16, 64, 2, "test_train_eval synthetic");
    }
    mg_dist_barrier();
    mg_test_classifier_train("classifier.yaml", classifier_yaml, data8, model_path, data8);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mg_test_dir_remove(dir);
    return 0;
}

/* Trains cfg to the end; copies of G's and D's parameters and statistics. */
typedef struct {
    float *g, *d;
    size_t ng, nd;
} weights;

static weights train(mg_cfg *cfg)
{
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    mg_train_result r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_DONE);
    assert_true(r.replicas_equal);
    const mg_net *G = mg_trainer_G(t), *D = mg_trainer_D(t);
    weights w;
    w.ng = G->n_param + G->n_state, w.nd = D->n_param + D->n_state;
    w.g = malloc(w.ng * sizeof(float));
    w.d = malloc(w.nd * sizeof(float));
    memcpy(w.g, G->param, G->n_param * sizeof(float));
    memcpy(w.g + G->n_param, G->state, G->n_state * sizeof(float));
    memcpy(w.d, D->param, D->n_param * sizeof(float));
    memcpy(w.d + D->n_param, D->state, D->n_state * sizeof(float));
    mg_trainer_free(t);
    mg_cfg_free(cfg);
    return w;
}

static void assert_same_weights(weights a, weights b)
{
    assert_int_equal(a.ng, b.ng);
    assert_int_equal(a.nd, b.nd);
    if (memcmp(a.g, b.g, a.ng * sizeof(float)) || memcmp(a.d, b.d, a.nd * sizeof(float)))
        fail_msg("training with the evaluation on differs from training with it off");
    free(a.g), free(a.d), free(b.g), free(b.d);
}

/* Rank 0: the steps of the eval lines of run's metrics.jsonl, each holding `field`. */
static int eval_steps(const char *run, const char *field, long *steps, int max)
{
    char path[512], line[8192], key[64];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", dir, run);
    snprintf(key, sizeof key, "\"%s\": ", field);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strstr(line, "\"eval\": {"))
            continue;
        if (!strstr(line, key))
            fail_msg("eval line without %s: %s", field, line);
        assert_true(n < max);
        steps[n++] = strtol(line + strlen("{\"step\": "), NULL, 10);
    }
    fclose(f);
    return n;
}

static void test_mixture_eval_lines_and_bitwise_training(void **state)
{
    (void)state;
    weights off = train(ring_gan("ring_off"));
    mg_cfg *cfg = ring_gan("ring_on");
    mg_cfg_override(cfg, "eval.interval=7");
    mg_cfg_override(cfg, "eval.samples=300");
    assert_same_weights(off, train(cfg));
    if (mg_dist_rank() == 0) {
        long steps[8];
        assert_int_equal(eval_steps("ring_on", "modes_covered", steps, 8), 3);
        assert_int_equal(steps[0], 7);
        assert_int_equal(steps[1], 14);
        assert_int_equal(steps[2], 20); /* the end of the run */
        char png[512];
        snprintf(png, sizeof png, "%s/ring_on/eval/modes_step_14.png", dir);
        FILE *f = fopen(png, "rb");
        assert_non_null(f);
        fclose(f);
    }
}

static void test_image_eval_lines_and_bitwise_training(void **state)
{
    (void)state;
    weights off = train(image_gan(8, data8, "img_off"));
    mg_cfg *cfg = image_gan(8, data8, "img_on");
    char set[400];
    snprintf(set, sizeof set, "eval.extractor=%s", model_path);
    mg_cfg_override(cfg, set);
    mg_cfg_override(cfg, "eval.interval=5");
    mg_cfg_override(cfg, "eval.samples=100");
    mg_cfg_override(cfg, "eval.batch=24");
    mg_cfg_override(cfg, "eval.kid_subsets=3");
    assert_same_weights(off, train(cfg));
    if (mg_dist_rank() == 0) {
        long steps[8];
        assert_int_equal(eval_steps("img_on", "fid", steps, 8), 3);
        assert_int_equal(steps[0], 5);
        assert_int_equal(steps[1], 10);
        assert_int_equal(steps[2], 12);
        assert_int_equal(eval_steps("img_on", "classes_over_1pct", steps, 8), 3);
        assert_int_equal(eval_steps("img_on", "kid_mean", steps, 8), 3);
        /* an unconditional G: no conditional metrics */
        assert_false(metrics_have("img_on", "class_accuracy"));
        assert_false(metrics_have("img_on", "intra_fid"));
    }
}

/* A conditional G: class accuracy and intra-FID in every eval line (headline and report). */
static void test_conditional_eval_lines(void **state)
{
    (void)state;
    mg_cfg *cfg = cond_image_gan("cond_on");
    char set[400];
    snprintf(set, sizeof set, "eval.extractor=%s", model_path);
    mg_cfg_override(cfg, set);
    mg_cfg_override(cfg, "eval.interval=6");
    mg_cfg_override(cfg, "eval.samples=240");
    mg_cfg_override(cfg, "eval.batch=24");
    mg_cfg_override(cfg, "eval.kid_subsets=3");
    weights w = train(cfg); /* not compared here */
    free(w.g), free(w.d);
    if (mg_dist_rank() == 0) {
        long steps[8];
        assert_int_equal(eval_steps("cond_on", "class_accuracy", steps, 8), 2);
        assert_int_equal(eval_steps("cond_on", "intra_fid", steps, 8), 2);
        assert_int_equal(eval_steps("cond_on", "class_fid", steps, 8), 2);
        assert_int_equal(steps[1], 12);
        assert_false(metrics_have("cond_on", "conditional_note"));
    }
}

static void test_bad_extractor_fails_at_start(void **state)
{
    (void)state;
    mg_cfg *cfg = image_gan(8, data8, "img_missing");
    char set[400];
    snprintf(set, sizeof set, "eval.extractor=%s/no/such/classifier.h5", dir);
    mg_cfg_override(cfg, set);
    mg_cfg_override(cfg, "eval.interval=5");
    /* every rank loads the extractor before any collective call: each fails on its own */
    MG_EXPECT_FATAL(mg_trainer_create(cfg, false, false), "no/such/classifier.h5");
    assert_non_null(strstr(mg_last_error(), "eval"));
    mg_error_set_context(NULL);
    mg_cfg_free(cfg);

    /* 16x16 samples for an 8x8 extractor */
    cfg = image_gan(16, data16, "img_shape");
    snprintf(set, sizeof set, "eval.extractor=%s", model_path);
    mg_cfg_override(cfg, set);
    mg_cfg_override(cfg, "eval.interval=5");
    MG_EXPECT_FATAL(mg_trainer_create(cfg, false, false), "the extractor takes 1x8x8 images");
    assert_non_null(strstr(mg_last_error(), "1x16x16"));
    mg_error_set_context(NULL);
    mg_cfg_free(cfg);

    /* fewer samples than feature dimensions (12): refused at the start, not at step 5 */
    cfg = image_gan(8, data8, "img_few");
    snprintf(set, sizeof set, "eval.extractor=%s", model_path);
    mg_cfg_override(cfg, set);
    mg_cfg_override(cfg, "eval.interval=5");
    mg_cfg_override(cfg, "eval.samples=12");
    MG_EXPECT_FATAL(mg_trainer_create(cfg, false, false), "eval.samples");
    mg_error_set_context(NULL);
    mg_cfg_free(cfg);
    mg_dist_barrier();
}

static void test_config_errors(void **state)
{
    (void)state;
    mg_cfg *cfg = ring_gan("bad");
    mg_cfg_override(cfg, "eval.intreval=5");
    MG_EXPECT_FATAL(mg_trainer_create(cfg, false, false), "intreval");
    mg_cfg_free(cfg);
    cfg = ring_gan("bad");
    mg_cfg_override(cfg, "eval.interval=-1");
    MG_EXPECT_FATAL(mg_trainer_create(cfg, false, false), "eval.interval");
    mg_cfg_free(cfg);
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mixture_eval_lines_and_bitwise_training),
        cmocka_unit_test(test_image_eval_lines_and_bitwise_training),
        cmocka_unit_test(test_conditional_eval_lines),
        cmocka_unit_test(test_bad_extractor_fails_at_start),
        cmocka_unit_test(test_config_errors),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    failed = mg_dist_any(failed != 0) ? 1 : 0;
    mg_dist_finalize();
    return failed;
}
