/* Layers other than convolution: finite-difference gradients, BatchNorm modes and
 * running statistics, network building from YAML and its errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "mg_gradcheck.h"
#include "mg_layers.h"
#include "mg_testenv.h"

/* Float32 forward passes with eps = 1e-2 give central differences good to ~1e-4
 * relative on these smooth layers (truncation O(eps^2), rounding ~1e-7/eps). */
static const mg_gradcheck_opts smooth = {.eps = 1e-2f, .atol = 2e-3, .rtol = 1e-2, .max_checks = 60, .mode = MG_TRAIN};

typedef void (*make_fn)(mg_layer *l, mg_shape in);

static void finish(mg_net *net, int batch)
{
    mg_net_finish(net, batch);
    mg_net_set_backend(net, mg_gradcheck_backend, MG_PRECISION_FP32);
    int weighted = 0;
    for (int i = 0; i < net->n_layers; i++)
        weighted += !strcmp(net->layers[i].ops->kind, "linear");
    assert_int_equal(mg_net_onednn_layers(net), mg_gradcheck_backend == MG_BACKEND_ONEDNN ? weighted : 0);
}

static void check_one(mg_shape in, make_fn make, int batch, const mg_gradcheck_opts *o, unsigned seed)
{
    mg_rng rng;
    mg_rng_init(&rng, seed, MG_STREAM_TEST);
    mg_net net;
    mg_net_begin(&net, "T", in);
    make(mg_net_push(&net), in);
    finish(&net, batch);
    mg_gradcheck_randomize(&net, 0.5f, &rng);
    mg_gradcheck_net(&net, batch, o, &rng);
    mg_net_free(&net);
}

static void make_linear_bias(mg_layer *l, mg_shape in) { mg_linear_make(l, in, 7, true); }
static void make_linear_nobias(mg_layer *l, mg_shape in) { mg_linear_make(l, in, 5, false); }
static void make_relu(mg_layer *l, mg_shape in) { mg_relu_make(l, in); }
static void make_leaky(mg_layer *l, mg_shape in) { mg_leaky_relu_make(l, in, 0.2f); }
static void make_tanh(mg_layer *l, mg_shape in) { mg_tanh_make(l, in); }
static void make_sigmoid(mg_layer *l, mg_shape in) { mg_sigmoid_make(l, in); }
static void make_bn(mg_layer *l, mg_shape in) { mg_batchnorm_make(l, in, 0.1f, 1e-5f); }
static void make_flatten(mg_layer *l, mg_shape in) { mg_flatten_make(l, in); }
static void make_reshape(mg_layer *l, mg_shape in) { mg_reshape_make(l, in, (mg_shape){(int)mg_shape_size(in), 1, 1}); }

static void test_linear_gradients(void **state)
{
    (void)state;
    check_one((mg_shape){11, 1, 1}, make_linear_bias, 3, &smooth, 1);
    check_one((mg_shape){2, 3, 3}, make_linear_nobias, 4, &smooth, 2); /* image input flattened */
    check_one((mg_shape){1, 1, 1}, make_linear_bias, 1, &smooth, 3);
}

/* Maxout's max has a kink where two pieces tie. eps 1e-3 moves a piece by ~1e-3, while
 * the pieces of a unit (spread ~1 at these scales) come that close with probability ~1e-3;
 * the seeds are fixed, and a straddled tie would show as a mismatch, not pass silently. */
static void make_maxout_bias(mg_layer *l, mg_shape in) { mg_maxout_make(l, in, 4, 3, true); }
static void make_maxout_nobias(mg_layer *l, mg_shape in) { mg_maxout_make(l, in, 3, 5, false); }

static void test_maxout_gradients(void **state)
{
    (void)state;
    mg_gradcheck_opts tie_safe = smooth;
    tie_safe.eps = 1e-3f;
    tie_safe.max_checks = 200;
    check_one((mg_shape){6, 1, 1}, make_maxout_bias, 5, &tie_safe, 21);
    check_one((mg_shape){2, 2, 2}, make_maxout_nobias, 3, &tie_safe, 22); /* image input flattened */
    check_one((mg_shape){1, 1, 1}, make_maxout_bias, 1, &tie_safe, 23);
}

/* maxout(out, pieces) is linear(out * pieces) with the same parameter block, then the max
 * over consecutive groups of pieces: checked against that definition directly. */
static void test_maxout_is_max_of_linear(void **state)
{
    (void)state;
    enum { IN = 5, OUT = 3, PIECES = 4, N = 6 };
    mg_rng rng;
    mg_rng_init(&rng, 31, MG_STREAM_TEST);
    mg_net mo, lin;
    mg_net_begin(&mo, "M", (mg_shape){IN, 1, 1});
    mg_maxout_make(mg_net_push(&mo), mo.in, OUT, PIECES, true);
    mg_net_finish(&mo, N);
    mg_net_begin(&lin, "L", (mg_shape){IN, 1, 1});
    mg_linear_make(mg_net_push(&lin), lin.in, OUT * PIECES, true);
    mg_net_finish(&lin, N);
    assert_int_equal(mo.n_param, lin.n_param);
    mg_gradcheck_randomize(&mo, 0.5f, &rng);
    memcpy(lin.param, mo.param, mo.n_param * sizeof(float));
    float x[N * IN];
    mg_rng_fill_normal(&rng, x, N * IN, 0.0f, 1.0f);
    const float *y = mg_net_forward(&mo, x, N, MG_TRAIN);
    const float *z = mg_net_forward(&lin, x, N, MG_TRAIN);
    int winners[PIECES] = {0};
    for (int i = 0; i < N; i++)
        for (int o = 0; o < OUT; o++) {
            const float *zo = z + (size_t)i * OUT * PIECES + (size_t)o * PIECES;
            int best = 0;
            for (int k = 1; k < PIECES; k++)
                if (zo[k] > zo[best])
                    best = k;
            winners[best]++;
            assert_float_equal(y[i * OUT + o], zo[best], 1e-5f);
        }
    for (int k = 0; k < PIECES; k++) /* every piece wins somewhere: the routing is exercised */
        assert_true(winners[k] > 0);
    mg_net_free(&mo);
    mg_net_free(&lin);
}

static void test_activation_gradients(void **state)
{
    (void)state;
    /* ReLU and LeakyReLU have a kink at 0: inputs are kept at least 0.05 away from it,
     * more than eps, so the difference quotient never straddles the kink. */
    mg_gradcheck_opts kinked = smooth;
    kinked.kink_margin = 0.05f;
    check_one((mg_shape){3, 5, 7}, make_relu, 2, &kinked, 4);
    check_one((mg_shape){3, 5, 7}, make_leaky, 2, &kinked, 5);
    check_one((mg_shape){13, 1, 1}, make_tanh, 3, &smooth, 6);
    check_one((mg_shape){13, 1, 1}, make_sigmoid, 3, &smooth, 7);
    check_one((mg_shape){2, 3, 5}, make_flatten, 2, &smooth, 8);
    check_one((mg_shape){2, 3, 5}, make_reshape, 2, &smooth, 9);
}

static void test_relu_kink_convention(void **state)
{
    (void)state;
    /* At exactly 0 the gradient is taken as 0 (PyTorch's choice), for ReLU; LeakyReLU takes slope. */
    mg_net net;
    mg_net_begin(&net, "K", (mg_shape){2, 1, 1});
    mg_relu_make(mg_net_push(&net), net.in);
    mg_leaky_relu_make(mg_net_push(&net), (mg_shape){2, 1, 1}, 0.25f);
    mg_net_finish(&net, 1);
    float x[2] = {0.0f, 1.0f}, dy[2] = {1.0f, 1.0f};
    mg_net_forward(&net, x, 1, MG_TRAIN);
    float *dx = mg_net_backward(&net, dy, true, true);
    assert_true(dx[0] == 0.0f);
    assert_true(dx[1] == 1.0f);
    mg_net_free(&net);
}

/* The vectorised tanh against tanh in double: relative error under 1e-6 over a log-spread
 * of magnitudes (both sides of the 0.55 switch between its two formulas, and saturation),
 * exact sign and zero, +-inf -> +-1, NaN stays NaN; a length that is not a multiple of 8. */
static void test_tanh_accuracy(void **state)
{
    (void)state;
    enum { M = 1003 };
    mg_layer l = {0};
    snprintf(l.name, sizeof l.name, "T.0.tanh");
    mg_tanh_make(&l, (mg_shape){M, 1, 1});
    static float x[M], y[M];
    const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 0.55f, 0.54999995f, -0.55f, 20.0f, -20.0f,
                             9.0f, 100.0f, -1e30f, 1e-30f, 1e-40f, -1e-40f};
    const int n_special = (int)(sizeof special / sizeof *special);
    unsigned seed = 12345;
    for (int rep = 0; rep < 50; rep++) {
        for (int i = 0; i < M; i++) {
            seed = seed * 1103515245u + 12345u;
            const double u = (double)((seed >> 8) & 0xffff) / 65536.0 + 1.0 / 131072.0; /* (0, 1) */
            const int e = (int)((seed >> 24) % 40) - 32;                                   /* 2^-32 .. 2^7 */
            x[i] = (float)((seed & 1 ? -1 : 1) * ldexp(u, e));
        }
        if (rep == 0)
            for (int i = 0; i < n_special; i++)
                x[M - 1 - i] = special[i]; /* in the tail, which takes the padded path */
        l.ops->forward(&l, x, y, 1, MG_TRAIN);
        for (int i = 0; i < M; i++) {
            if (isnan(x[i])) {
                assert_true(isnan(y[i]));
                continue;
            }
            const double want = tanh((double)x[i]);
            assert_true(!signbit(y[i]) == !signbit(want));
            if (want == 0)
                assert_true(y[i] == 0.0f);
            else if (fabs(y[i] - want) > 1e-6 * fabs(want)) {
                fprintf(stderr, "tanh(%.9g) = %.9g, want %.9g\n", (double)x[i], (double)y[i], want);
                fail();
            }
        }
    }
    mg_layer_destroy(&l);
}

static void test_batchnorm_gradients(void **state)
{
    (void)state;
    /* Training mode: the gradient flows through the batch statistics too. */
    check_one((mg_shape){6, 1, 1}, make_bn, 5, &smooth, 10);  /* 1-d */
    check_one((mg_shape){3, 4, 5}, make_bn, 3, &smooth, 11);  /* 2-d, odd sizes */
    check_one((mg_shape){2, 1, 1}, make_bn, 2, &smooth, 12);  /* smallest batch */
    mg_gradcheck_opts eval = smooth;
    eval.mode = MG_EVAL;
    check_one((mg_shape){3, 4, 5}, make_bn, 3, &eval, 13);
}

static void test_batchnorm_modes(void **state)
{
    (void)state;
    const int n = 4, C = 2, P = 3;
    mg_net net;
    mg_test_bn_net(&net, "B", (mg_shape){C, 1, P}, n);
    mg_rng rng;
    mg_rng_init(&rng, 5, MG_STREAM_TEST);
    mg_net_init_params(&net, &rng); /* gamma 1, beta 0, running mean 0, var 1 */
    float x[24];
    for (int i = 0; i < 24; i++)
        x[i] = (float)(i % 7) + 0.5f * (float)i;
    const float *y = mg_net_forward(&net, x, n, MG_TRAIN);
    /* training output: per channel mean 0 and biased variance 1 (up to eps) */
    for (int c = 0; c < C; c++) {
        double s = 0, s2 = 0, xs = 0, xs2 = 0;
        for (int i = 0; i < n; i++)
            for (int q = 0; q < P; q++) {
                size_t k = ((size_t)i * C + c) * P + q;
                s += y[k];
                s2 += (double)y[k] * y[k];
                xs += x[k];
                xs2 += (double)x[k] * x[k];
            }
        double m = n * P;
        MG_ASSERT_CLOSE(s / m, 0.0, 1e-5, 0, "batch mean");
        MG_ASSERT_CLOSE(s2 / m, 1.0, 1e-3, 0, "batch variance");
        double xmean = xs / m, xvar = xs2 / m - xmean * xmean;
        /* running = 0.9 running + 0.1 batch, with the unbiased variance */
        MG_ASSERT_CLOSE(net.state[c], 0.1 * xmean, 1e-5, 1e-5, "running mean");
        MG_ASSERT_CLOSE(net.state[C + c], 0.9 + 0.1 * xvar * m / (m - 1), 1e-4, 1e-5, "running var");
    }
    /* evaluation: y = (x - running_mean) / sqrt(running_var + eps) */
    y = mg_net_forward(&net, x, n, MG_EVAL);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++)
            for (int q = 0; q < P; q++) {
                size_t k = ((size_t)i * C + c) * P + q;
                double expect = (x[k] - net.state[c]) / sqrt(net.state[C + c] + 1e-5);
                MG_ASSERT_CLOSE(y[k], expect, 1e-5, 1e-5, "eval output");
            }
    /* evaluation does not move the running statistics */
    float before = net.state[0];
    mg_net_forward(&net, x, n, MG_EVAL);
    assert_true(net.state[0] == before);
    mg_net_free(&net);
}

/* The one-pass statistics about the running mean (src/nn/layers/batchnorm.c): exact enough
 * when the running mean is near the batch mean, and retaken from centred squares (a second
 * pass, counted through a do-nothing reduce callback) when it is far. Data: mean
 * 1000 + 10 c, standard deviation 1 + c/2, so that plain float sums of squares would lose
 * everything; the reference is computed in double. */
static int bn_passes;

static void count_passes(double *buf, int n, void *ctx)
{
    (void)buf, (void)n, (void)ctx;
    bn_passes++;
}

static void test_batchnorm_shifted_statistics(void **state)
{
    (void)state;
    static const mg_shape shapes[] = {{5, 1, 1}, {5, 3, 3}};
    for (int sh = 0; sh < 2; sh++) {
        const mg_shape in = shapes[sh];
        const int n = 16, C = in.c, P = in.h * in.w;
        mg_net net;
        mg_test_bn_net(&net, "B", in, n);
        mg_net_set_reduce(&net, count_passes, NULL);
        mg_rng rng;
        mg_rng_init(&rng, 21, MG_STREAM_TEST);
        mg_net_init_params(&net, &rng); /* gamma 1, beta 0 */
        float x[16 * 5 * 9];
        mg_rng_fill_normal(&rng, x, (size_t)n * C * P, 0, 1);
        double mean[5] = {0}, var[5] = {0};
        for (int i = 0; i < n; i++)
            for (int c = 0; c < C; c++)
                for (int q = 0; q < P; q++) {
                    float *v = &x[((size_t)i * C + c) * P + q];
                    *v = 1000.0f + 10.0f * c + (1.0f + 0.5f * c) * *v;
                    mean[c] += *v;
                }
        for (int c = 0; c < C; c++)
            mean[c] /= n * P;
        for (int i = 0; i < n; i++)
            for (int c = 0; c < C; c++)
                for (int q = 0; q < P; q++) {
                    double d = x[((size_t)i * C + c) * P + q] - mean[c];
                    var[c] += d * d / (n * P);
                }
        /* running mean 0 (far: two passes), then the batch mean itself (near: one) */
        for (int round = 0; round < 2; round++) {
            if (round == 1)
                for (int c = 0; c < C; c++)
                    net.state[c] = (float)mean[c] + 0.3f; /* a fraction of a std off */
            bn_passes = 0;
            const float *y = mg_net_forward(&net, x, n, MG_TRAIN);
            assert_int_equal(bn_passes, round == 0 ? 2 : 1);
            for (int i = 0; i < n; i++)
                for (int c = 0; c < C; c++)
                    for (int q = 0; q < P; q++) {
                        size_t k = ((size_t)i * C + c) * P + q;
                        double expect = (x[k] - mean[c]) / sqrt(var[c] + 1e-5);
                        /* x itself is rounded to 6e-5 of a std at 1000 */
                        MG_ASSERT_CLOSE(y[k], expect, 2e-4, 1e-4, "normalised output");
                    }
        }
        mg_net_free(&net);
    }
}

static void test_backward_accumulates(void **state)
{
    (void)state;
    mg_net net;
    mg_net_begin(&net, "A", (mg_shape){4, 1, 1});
    mg_linear_make(mg_net_push(&net), net.in, 3, true);
    finish(&net, 2);
    mg_rng rng;
    mg_rng_init(&rng, 9, MG_STREAM_TEST);
    mg_net_init_params(&net, &rng);
    float x[8], dy[6];
    mg_rng_fill_normal(&rng, x, 8, 0, 1);
    mg_rng_fill_normal(&rng, dy, 6, 0, 1);
    mg_net_zero_grad(&net);
    mg_net_forward(&net, x, 2, MG_TRAIN);
    mg_net_backward(&net, dy, true, false);
    float once[15];
    memcpy(once, net.grad, sizeof once);
    mg_net_backward(&net, dy, true, false);
    for (int i = 0; i < 15; i++)
        MG_ASSERT_CLOSE(net.grad[i], 2.0 * once[i], 1e-6, 1e-6, "accumulated gradient");
    /* param_grads = false leaves gradients alone (frozen network) */
    mg_net_backward(&net, dy, false, true);
    for (int i = 0; i < 15; i++)
        MG_ASSERT_CLOSE(net.grad[i], 2.0 * once[i], 1e-6, 1e-6, "frozen gradient");
    mg_net_free(&net);
}

static const char *mlp_yaml =
    "net:\n"
    "  input: [2]\n"
    "  init: {kind: kaiming_normal}\n"
    "  layers:\n"
    "    - {kind: linear, out: 16, activation: tanh}\n"
    "    - {kind: linear, out: 16, activation: sigmoid}\n"
    "    - {kind: batchnorm, momentum: 0.2}\n"
    "    - {kind: linear, out: 1, bias: false, name: head}\n";

static void test_net_from_yaml(void **state)
{
    (void)state;
    mg_cfg *cfg = mg_cfg_parse(mlp_yaml, "mlp.yaml");
    mg_net net;
    mg_net_from_cfg(&net, "D", mg_cfg_get(mg_cfg_root(cfg), "net"), (mg_shape){0, 0, 0}, 8);
    mg_cfg_check_unused(cfg);
    assert_int_equal(net.n_layers, 6);
    assert_string_equal(net.layers[0].name, "D.0.linear");
    assert_string_equal(net.layers[1].name, "D.1.tanh");
    assert_string_equal(net.layers[5].name, "head");
    assert_int_equal(net.out.c, 1);
    /* parameters: 2*16+16 + 16*16+16 + 2*16 + 16 */
    size_t expect = (48 + 272 + 32 + 16);
    size_t used = 0;
    for (int i = 0; i < net.n_layers; i++)
        used += net.layers[i].n_param;
    assert_int_equal(used, expect);
    mg_rng rng;
    mg_rng_init(&rng, 1, MG_STREAM_INIT);
    mg_net_init_params(&net, &rng);
    mg_gradcheck_opts o = smooth;
    /* smooth activations here: a hidden ReLU's pre-activation can sit within eps of its
     * kink, which the layer-level checks above handle by moving inputs away from it */
    o.max_checks = 30;
    o.atol = 5e-3;
    mg_gradcheck_net(&net, 5, &o, &rng);
    mg_net_free(&net);
    mg_cfg_free(cfg);
}

/* Builds the network at "net" of text (bad.yaml, network G), expected to fail. */
static void build_text(const char *text) { mg_test_net_from_text(text, "bad.yaml", "G"); }

static void test_net_yaml_errors(void **state)
{
    (void)state;
    MG_EXPECT_FATAL(build_text("net:\n  input: [4]\n  layers:\n    - {kind: linear, out: 3, biass: true}\n"),
                    "unknown key 'biass' at line 4");
    MG_EXPECT_FATAL(build_text("net:\n  input: [4]\n  layers:\n    - {kind: lienar, out: 3}\n"),
                    "unknown layer kind 'lienar'");
    MG_EXPECT_FATAL(build_text("net:\n  input: [4]\n  layers:\n    - {kind: linear, out: three}\n"),
                    "net.layers[0].out");
    MG_EXPECT_FATAL(build_text("net:\n  input: [4]\n  layers:\n    - {kind: linear, out: -3}\n"),
                    "out of range");
    MG_EXPECT_FATAL(build_text("net:\n  input: [4]\n  layers:\n    - {kind: linear}\n"),
                    "missing required key 'out'");
    /* a shape that does not chain names the layer and the config place */
    MG_EXPECT_FATAL(build_text("net:\n  input: [4]\n  layers:\n    - {kind: linear, out: 6}\n"
                               "    - {kind: reshape, shape: [2, 2, 2]}\n"),
                    "G.1.reshape: cannot reshape 6x1x1");
    MG_EXPECT_FATAL(build_text("net:\n  input: [4]\n  layers:\n    - {kind: linear, out: 6}\n"
                               "    - {kind: reshape, shape: [2, 2, 2]}\n"),
                    "bad.yaml:5:7 (net.layers[1])");
    MG_EXPECT_FATAL(build_text("net:\n  input: [4]\n  layers:\n    - {kind: leaky_relu, slope: 2}\n"), "slope");
    MG_EXPECT_FATAL(build_text("net:\n  input: [4]\n  layers:\n    - {kind: maxout, out: 3, pieces: 1}\n"),
                    "net.layers[0].pieces");
    MG_EXPECT_FATAL(build_text("net:\n  input: [4]\n  layers:\n    - {kind: maxout, out: 3, pieces: 1}\n"),
                    "out of range");
    MG_EXPECT_FATAL(build_text("net:\n  input: [4]\n  layers:\n    - {kind: maxout, out: 3}\n"),
                    "missing required key 'pieces'");
    MG_EXPECT_FATAL(build_text("net:\n  input: [4]\n  layers:\n    - {kind: maxout, out: 0, pieces: 5}\n"),
                    "net.layers[0].out");
    MG_EXPECT_FATAL(build_text("net:\n  input: [4]\n  layers: []\n"), "empty");
    MG_EXPECT_FATAL(build_text("net:\n  input: [4\n"), "YAML syntax error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_gradients),
        cmocka_unit_test(test_maxout_gradients),
        cmocka_unit_test(test_maxout_is_max_of_linear),
        cmocka_unit_test(test_activation_gradients),
        cmocka_unit_test(test_relu_kink_convention),
        cmocka_unit_test(test_tanh_accuracy),
        cmocka_unit_test(test_batchnorm_gradients),
        cmocka_unit_test(test_batchnorm_modes),
        cmocka_unit_test(test_batchnorm_shifted_statistics),
        cmocka_unit_test(test_backward_accumulates),
        cmocka_unit_test(test_net_from_yaml),
        cmocka_unit_test(test_net_yaml_errors),
        cmocka_unit_test_setup_teardown(test_linear_gradients, mg_gradcheck_use_onednn, mg_gradcheck_use_blas),
        cmocka_unit_test_setup_teardown(test_backward_accumulates, mg_gradcheck_use_onednn, mg_gradcheck_use_blas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
