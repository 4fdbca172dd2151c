/* Class-conditional layers (embed_concat, onehot_concat, conditional BatchNorm, the
 * projection head): finite-difference gradients with fixed labels, into the embedding
 * tables too; conditional BatchNorm with one class equals BatchNorm; the YAML keys and
 * their errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "mg_gradcheck.h"
#include "mg_layers.h"
#include "mg_testenv.h"

static const mg_gradcheck_opts smooth = {.eps = 1e-2f, .atol = 2e-3, .rtol = 1e-2, .max_checks = 80, .mode = MG_TRAIN};

typedef void (*make_fn)(mg_layer *l, mg_shape in);

/* A one-layer network of K classes checked at batch n with labels i % K (every class
 * that fits appears; with n > K some appear twice, so table rows collect two samples). */
static void check_cond(mg_shape in, int K, make_fn make, int n, const mg_gradcheck_opts *o, unsigned seed)
{
    mg_rng rng;
    mg_rng_init(&rng, seed, MG_STREAM_TEST);
    mg_net net;
    mg_net_begin(&net, "T", in);
    mg_net_set_classes(&net, K);
    make(mg_net_push(&net), in);
    mg_net_finish(&net, n);
    assert_true(net.conditional);
    int labels[64];
    for (int i = 0; i < n; i++)
        labels[i] = (i * 3 + 1) % K;
    mg_net_set_labels(&net, labels);
    mg_gradcheck_randomize(&net, 0.5f, &rng);
    mg_gradcheck_net(&net, n, o, &rng);
    mg_net_free(&net);
}

static void make_embed(mg_layer *l, mg_shape in) { mg_embed_concat_make(l, in, 3); }
static void make_onehot(mg_layer *l, mg_shape in) { mg_onehot_concat_make(l, in); }
static void make_proj(mg_layer *l, mg_shape in) { mg_projection_make(l, in); }
static void make_cbn(mg_layer *l, mg_shape in) { mg_batchnorm_make_conditional(l, in, 0.1f, 1e-5f); }

static void test_concat_gradients(void **state)
{
    (void)state;
    check_cond((mg_shape){5, 1, 1}, 4, make_embed, 6, &smooth, 1);  /* vectors: z ++ E[y] */
    check_cond((mg_shape){2, 3, 3}, 3, make_embed, 4, &smooth, 2);  /* spread over positions */
    check_cond((mg_shape){2, 3, 2}, 5, make_onehot, 3, &smooth, 3);
}

static void test_projection_gradients(void **state)
{
    (void)state;
    check_cond((mg_shape){7, 1, 1}, 4, make_proj, 6, &smooth, 4);
    check_cond((mg_shape){2, 2, 2}, 3, make_proj, 5, &smooth, 5); /* image features taken flat */
}

static void test_cbn_gradients(void **state)
{
    (void)state;
    check_cond((mg_shape){6, 1, 1}, 3, make_cbn, 5, &smooth, 6);  /* 1-d */
    check_cond((mg_shape){3, 4, 5}, 2, make_cbn, 4, &smooth, 7);  /* 2-d */
    mg_gradcheck_opts eval = smooth;
    eval.mode = MG_EVAL;
    check_cond((mg_shape){3, 4, 5}, 4, make_cbn, 3, &eval, 8);
}

/* Conditional BN whose classes all hold gamma and beta of plain BN gives plain BN's output
 * and input gradient bitwise (the same arithmetic per sample). */
static void test_cbn_equals_bn(void **state)
{
    (void)state;
    const mg_shape in = {3, 2, 5};
    const int n = 4, K = 3, C = 3;
    mg_net bn, cbn;
    mg_net_begin(&bn, "B", in);
    mg_batchnorm_make(mg_net_push(&bn), in, 0.1f, 1e-5f);
    mg_net_finish(&bn, n);
    mg_net_begin(&cbn, "C", in);
    mg_net_set_classes(&cbn, K);
    mg_batchnorm_make_conditional(mg_net_push(&cbn), in, 0.1f, 1e-5f);
    mg_net_finish(&cbn, n);
    assert_int_equal(cbn.layers[0].n_param, 2 * K * C);
    mg_rng rng;
    mg_rng_init(&rng, 9, MG_STREAM_TEST);
    mg_net_init_params(&cbn, &rng);
    for (int k = 0; k < 2 * K * C; k++) /* initialised to gain 1, bias 0 */
        assert_true(cbn.param[k] == (k < K * C ? 1.0f : 0.0f));
    mg_rng_fill_normal(&rng, bn.param, 2 * C, 0.5f, 0.3f);
    for (int k = 0; k < K; k++)
        for (int c = 0; c < C; c++) {
            cbn.param[k * C + c] = bn.param[c];
            cbn.param[K * C + k * C + c] = bn.param[C + c];
        }
    memset(bn.state, 0, 2 * C * sizeof(float));
    memset(cbn.state, 0, 2 * C * sizeof(float));
    float x[120], dy[120];
    mg_rng_fill_normal(&rng, x, 120, 0.3f, 1.0f);
    mg_rng_fill_normal(&rng, dy, 120, 0.0f, 1.0f);
    const int labels[4] = {2, 0, 1, 2};
    mg_net_set_labels(&cbn, labels);
    const float *y1 = mg_net_forward(&bn, x, n, MG_TRAIN), *y2 = mg_net_forward(&cbn, x, n, MG_TRAIN);
    assert_memory_equal(y1, y2, 120 * sizeof(float));
    const float *dx1 = mg_net_backward(&bn, dy, false, true), *dx2 = mg_net_backward(&cbn, dy, false, true);
    for (int i = 0; i < 120; i++)
        assert_true(fabsf(dx1[i] - dx2[i]) <= 1e-6f * (1 + fabsf(dx1[i])));
    assert_memory_equal(bn.state, cbn.state, 2 * C * sizeof(float));
    mg_net_free(&bn);
    mg_net_free(&cbn);
}

static const char *cond_yaml = "net:\n"
                               "  input: [4]\n"
                               "  classes: 3\n"
                               "  condition: {kind: concat, dim: 2}\n"
                               "  layers:\n"
                               "    - {kind: linear, out: 5}\n"
                               "    - {kind: batchnorm, conditional: true}\n"
                               "    - {kind: onehot_concat}\n"
                               "    - {kind: projection}\n";

static void test_cond_yaml(void **state)
{
    (void)state;
    mg_cfg *cfg = mg_cfg_parse(cond_yaml, "cond.yaml");
    mg_net net;
    mg_net_from_cfg(&net, "D", mg_cfg_get(mg_cfg_root(cfg), "net"), (mg_shape){0, 0, 0}, 6);
    mg_cfg_check_unused(cfg);
    assert_int_equal(net.n_layers, 5);
    assert_string_equal(net.layers[0].name, "D.0.embed_concat");
    assert_int_equal(net.layers[0].out.c, 6);
    assert_int_equal(net.layers[0].n_param, 3 * 2);
    assert_int_equal(net.layers[2].n_param, 2 * 3 * 5);
    assert_int_equal(net.layers[3].out.c, 8);
    assert_int_equal(net.layers[4].n_param, 8 + 1 + 3 * 8);
    assert_true(net.conditional && net.n_classes == 3);
    mg_rng rng;
    mg_rng_init(&rng, 1, MG_STREAM_INIT);
    mg_net_init_params(&net, &rng);
    float x[24] = {0};
    MG_EXPECT_FATAL(mg_net_forward(&net, x, 6, MG_TRAIN), "has no labels");
    const int bad[6] = {0, 1, 2, 3, 0, 1};
    mg_net_set_labels(&net, bad);
    MG_EXPECT_FATAL(mg_net_forward(&net, x, 6, MG_TRAIN), "label 3 of sample 3 is outside its 3 classes");
    const int good[6] = {0, 1, 2, 2, 0, 1};
    mg_net_set_labels(&net, good);
    mg_gradcheck_randomize(&net, 0.5f, &rng); /* not the init's tiny weights: BN well away from eps */
    mg_gradcheck_opts o = smooth;
    o.max_checks = 30;
    mg_gradcheck_net(&net, 6, &o, &rng);
    mg_net_free(&net);
    mg_cfg_free(cfg);
}

/* Builds the network at "net" of text (bad.yaml, network G), expected to fail. */
static void build_text(const char *text) { mg_test_net_from_text(text, "bad.yaml", "G"); }

static void test_cond_yaml_errors(void **state)
{
    (void)state;
    MG_EXPECT_FATAL(build_text("net:\n  input: [4]\n  layers:\n    - {kind: batchnorm, conditional: true}\n"),
                    "conditional BatchNorm needs the network's 'classes'");
    MG_EXPECT_FATAL(build_text("net:\n  input: [4]\n  layers:\n    - {kind: projection}\n"),
                    "without 'classes'");
    MG_EXPECT_FATAL(build_text("net:\n  input: [4]\n  condition: {kind: concat, dim: 2}\n  layers:\n"
                               "    - {kind: linear, out: 1}\n"),
                    "a condition needs the network's 'classes'");
    MG_EXPECT_FATAL(build_text("net:\n  input: [4]\n  classes: 3\n  condition: {kind: add, dim: 2}\n  layers:\n"
                               "    - {kind: linear, out: 1}\n"),
                    "net.condition.kind");
    MG_EXPECT_FATAL(build_text("net:\n  input: [4]\n  classes: 3\n  condition: {kind: concat}\n  layers:\n"
                               "    - {kind: linear, out: 1}\n"),
                    "missing required key 'dim'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concat_gradients), cmocka_unit_test(test_projection_gradients),
        cmocka_unit_test(test_cbn_gradients),    cmocka_unit_test(test_cbn_equals_bn),
        cmocka_unit_test(test_cond_yaml),        cmocka_unit_test(test_cond_yaml_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
