/* The minibatch standard deviation layer (src/nn/layers/mbstd.c): values against a direct
 * computation, finite-difference input gradients for images and vectors with groups
 * smaller than and equal to the batch, groups that stay inside the batch they are given
 * (so never span ranks), the eps inside the square root, and its config and batch errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "mg_gradcheck.h"
#include "mg_layers.h"

/* Steps of 1e-3: a group's spread in one feature is a |x1 - x2|-like function whose kink
 * (all members equal) a larger step straddles more often; the layer is otherwise smooth
 * and float32 rounding over ~1e3 outputs stays near 1e-6 / 1e-3. */
static const mg_gradcheck_opts opts = {.eps = 1e-3f, .atol = 3e-3, .rtol = 1e-2, .max_checks = 80, .mode = MG_TRAIN};

static void build(mg_net *net, mg_shape in, int group, int max_batch)
{
    mg_net_begin(net, "T", in);
    mg_mbstd_make(mg_net_push(net), in, group, 1e-8f);
    mg_net_finish(net, max_batch);
}

static void check_gradients(mg_shape in, int group, int batch, unsigned seed)
{
    mg_rng rng;
    mg_rng_init(&rng, seed, MG_STREAM_TEST);
    mg_net net;
    build(&net, in, group, batch);
    mg_gradcheck_randomize(&net, 0.5f, &rng); /* no parameters: keeps the helper's use uniform */
    mg_gradcheck_net(&net, batch, &opts, &rng);
    mg_net_free(&net);
}

static void test_gradients(void **state)
{
    (void)state;
    check_gradients((mg_shape){3, 4, 4}, 4, 8, 1);  /* images, two groups */
    check_gradients((mg_shape){3, 4, 4}, 5, 5, 2);  /* images, group = batch */
    check_gradients((mg_shape){2, 3, 5}, 0, 6, 3);  /* group: all */
    check_gradients((mg_shape){7, 1, 1}, 2, 6, 4);  /* vectors, three groups of two */
    check_gradients((mg_shape){7, 1, 1}, 4, 4, 5);  /* vectors, group = batch */
}

/* Output = input followed by the group statistic, computed here the plain way in double. */
static void test_values(void **state)
{
    (void)state;
    const mg_shape in = {2, 2, 3};
    const int n = 6, G = 3, F = 12, plane = 6;
    mg_net net;
    build(&net, in, G, n);
    float x[6 * 12];
    mg_rng rng;
    mg_rng_init(&rng, 7, MG_STREAM_TEST);
    mg_rng_fill_normal(&rng, x, 72, 0.5f, 2.0f);
    const float *y = mg_net_forward(&net, x, n, MG_TRAIN);
    assert_int_equal(net.out.c, 3);
    for (int g = 0; g < n / G; g++) {
        double stat = 0;
        for (int f = 0; f < F; f++) {
            double mu = 0, var = 0;
            for (int i = 0; i < G; i++)
                mu += x[(g * G + i) * F + f] / (double)G;
            for (int i = 0; i < G; i++)
                var += pow(x[(g * G + i) * F + f] - mu, 2) / G;
            stat += sqrt(var + 1e-8) / F;
        }
        for (int i = g * G; i < (g + 1) * G; i++) {
            for (int f = 0; f < F; f++)
                assert_true(y[i * (F + plane) + f] == x[i * F + f]);
            for (int k = 0; k < plane; k++)
                MG_ASSERT_CLOSE(y[i * (F + plane) + F + k], stat, 1e-6, 1e-6, "group statistic");
        }
    }
    mg_net_free(&net);
}

/* Groups are consecutive samples inside the given batch: a batch of 8 gives what two
 * batches of 4 (two ranks' local batches) give, forward and backward. */
static void test_groups_stay_in_batch(void **state)
{
    (void)state;
    const mg_shape in = {5, 1, 1};
    mg_net whole, half;
    build(&whole, in, 2, 8);
    build(&half, in, 2, 4);
    float x[40], dy[48];
    mg_rng rng;
    mg_rng_init(&rng, 8, MG_STREAM_TEST);
    mg_rng_fill_normal(&rng, x, 40, 0, 1);
    mg_rng_fill_normal(&rng, dy, 48, 0, 1);
    const float *y = mg_net_forward(&whole, x, 8, MG_TRAIN);
    float y_whole[48], dx_whole[40];
    memcpy(y_whole, y, sizeof y_whole);
    memcpy(dx_whole, mg_net_backward(&whole, dy, true, true), sizeof dx_whole);
    for (int part = 0; part < 2; part++) {
        y = mg_net_forward(&half, x + 20 * part, 4, MG_TRAIN);
        for (int i = 0; i < 24; i++)
            assert_true(y[i] == y_whole[24 * part + i]);
        const float *dx = mg_net_backward(&half, dy + 24 * part, true, true);
        for (int i = 0; i < 20; i++)
            assert_true(dx[i] == dx_whole[20 * part + i]);
    }
    mg_net_free(&whole);
    mg_net_free(&half);
}

/* A group of identical samples (what a collapsed G makes) sits at sqrt's kink: eps keeps
 * the statistic at sqrt(eps) and the gradient finite (the centred values are exactly 0,
 * so dx = dy there). */
static void test_zero_spread(void **state)
{
    (void)state;
    mg_net net;
    build(&net, (mg_shape){3, 1, 1}, 4, 4);
    const float x[12] = {1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3};
    const float *y = mg_net_forward(&net, x, 4, MG_TRAIN);
    for (int i = 0; i < 4; i++)
        MG_ASSERT_CLOSE(y[i * 4 + 3], 1e-4, 1e-9, 1e-3, "sqrt(eps)");
    const float dy[16] = {1, 1, 1, 5, 1, 1, 1, 5, 1, 1, 1, 5, 1, 1, 1, 5};
    const float *dx = mg_net_backward(&net, dy, true, true);
    for (int i = 0; i < 12; i++)
        assert_true(dx[i] == 1.0f);
    mg_net_free(&net);
}

static void build_text(const char *text, int batch)
{
    mg_cfg *cfg = mg_cfg_parse(text, "mbstd.yaml");
    mg_net net;
    mg_net_from_cfg(&net, "D", mg_cfg_get(mg_cfg_root(cfg), "net"), (mg_shape){0, 0, 0}, batch);
    mg_cfg_check_unused(cfg);
    mg_net_check_batch(&net, batch, "test batch");
    assert_int_equal(net.out.c, 1);
    mg_net_free(&net);
    mg_cfg_free(cfg);
}

static void test_config(void **state)
{
    (void)state;
    /* conv features -> mbstd -> conv: the extra channel feeds the next layer */
    build_text("net:\n  input: [1, 8, 8]\n  layers:\n    - {kind: conv2d, out: 4, kernel: 4, stride: 2, padding: 1}\n"
               "    - {kind: mbstd, group: 4}\n    - {kind: conv2d, out: 1, kernel: 4, stride: 1, padding: 0}\n",
               8);
    build_text("net:\n  input: [3]\n  layers:\n    - {kind: mbstd, group: all, eps: 1.0e-6}\n"
               "    - {kind: linear, out: 1}\n",
               7);
    build_text("net:\n  input: [3]\n  layers:\n    - {kind: mbstd}\n    - {kind: linear, out: 1}\n", 12);
    MG_EXPECT_FATAL(build_text("net:\n  input: [3]\n  layers:\n    - {kind: mbstd, group: 1}\n", 4), "out of range");
    MG_EXPECT_FATAL(build_text("net:\n  input: [3]\n  layers:\n    - {kind: mbstd, group: some}\n", 4),
                    "net.layers[0].group");
    MG_EXPECT_FATAL(build_text("net:\n  input: [3]\n  layers:\n    - {kind: mbstd, size: 4}\n", 4),
                    "unknown key 'size'");
    /* the default group of 4 does not divide a batch of 6: the layer is named */
    MG_EXPECT_FATAL(build_text("net:\n  input: [3]\n  layers:\n    - {kind: mbstd}\n    - {kind: linear, out: 1}\n", 6),
                    "D.0.mbstd: needs batches in multiples of 4 (its group), but gets 6 (test batch)");
    /* and the forward pass refuses such a batch too */
    mg_net net;
    build(&net, (mg_shape){3, 1, 1}, 4, 8);
    float x[24] = {0};
    MG_EXPECT_FATAL(mg_net_forward(&net, x, 6, MG_TRAIN), "batch 6 does not split into groups of 4");
    mg_net_free(&net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradients),           cmocka_unit_test(test_values),
        cmocka_unit_test(test_groups_stay_in_batch), cmocka_unit_test(test_zero_spread),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
