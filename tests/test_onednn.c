/* The oneDNN backend against the BLAS backend, and training on it.
 *
 * Layers: conv2d, conv_transpose2d and linear (with and without bias, with spectral
 * normalisation, DCGAN-28's own shapes) built twice with the same parameters, one network
 * per backend (small channel counts run on plain layouts, 16 or more on oneDNN's blocked
 * ones behind reorders). Forward outputs, input gradients and weight gradients (added on
 * top of a non-zero gradient, as backward adds) agree within fp32 rounding: each element within
 * 1e-5 of the tensor's largest. Both backends sum the same products in different orders,
 * so they differ by a few ulps of the sums' largest terms (~1e-6 relative at these sizes);
 * a wrong tap or a missed accumulation is an O(1) error. Batches of six sizes go through
 * the same networks, more than an op keeps primitives for, so that primitives are remade
 * for a batch size they had dropped.
 * (The finite-difference checks run under both backends in test_conv, test_layers and
 * test_spectral.) The reference config's networks (fmnist_dcgan.yaml, batch 64) likewise, as whole
 * forward and backward passes.
 * bf16 (where it applies: linear layers and convolutions with 16 channels or more on both
 * sides; the others stay fp32) (the products' inputs rounded to bfloat16, 8 significant bits: each product off by up
 * to ~2^-8 relative, and sums of such errors with random signs stay well under 3e-2 of the
 * tensor's largest element at these sizes) the same comparisons within 3e-2, and each
 * tensor must differ from fp32 by more than 1e-6 of its largest (bf16 really ran); the
 * whole networks and the spectral-norm stack only in fp32 (errors grow layer by layer and
 * through BatchNorm beyond a single product's bound).
 * Training: a small convolutional GAN (all three kinds on 2-D points reshaped to 1x1
 * images) on oneDNN, fp32 and bf16, 16 steps straight and 8 + stop + resume 8, ends bitwise
 * identical on the same rank count; and the run's replicas stay identical.
 * Rank-count equivalence on oneDNN is in test_train_equiv (its *_onednn cases).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_cfg_override.h"
#include "mg_dist.h"
#include "mg_rng.h"
#include "mg_layers.h"
#include "mg_spectral.h"
#include "mg_test.h"
#include "mg_testenv.h"
#include "mg_train.h"

typedef void (*build_fn)(mg_net *net, int max_batch);

/* The precision the oneDNN networks run in (set per test by use_bf16 / use_fp32), and
 * whether the network being compared has a layer that really takes bf16 inputs (the
 * convolutions with fewer than 16 channels on a side stay fp32). */
static mg_precision precision = MG_PRECISION_FP32;
static bool some_bf16;

static int use_bf16(void **state)
{
    (void)state;
    precision = MG_PRECISION_BF16;
    return 0;
}

static int use_fp32(void **state)
{
    (void)state;
    precision = MG_PRECISION_FP32;
    return 0;
}

/* Each element of got within tol * (largest |want|) of want (tol: 1e-5 in fp32, 3e-2 in
 * bf16, where some element must also differ by more than 1e-6 of the largest). */
static void assert_close_to(const float *got, const float *want, size_t n, const char *what)
{
    const double tol = some_bf16 ? 3e-2 : 1e-5;
    double largest = 0, worst = 0;
    for (size_t i = 0; i < n; i++)
        largest = fmax(largest, fabs(want[i]));
    if (!(largest > 0))
        fail_msg("%s: all zero (or NaN): nothing to compare", what);
    for (size_t i = 0; i < n; i++) {
        const double diff = fabs((double)got[i] - want[i]);
        if (!(diff <= tol * largest))
            fail_msg("%s[%zu]: oneDNN %.9g vs BLAS %.9g (largest %.3g)", what, i, got[i], want[i], largest);
        worst = fmax(worst, diff);
    }
    if (some_bf16 && n > 1 && worst <= 1e-6 * largest)
        fail_msg("%s: bf16 equal to fp32 within %.3g of the largest: bf16 did not run", what, worst / largest);
}

/* Builds the network twice (BLAS, oneDNN) and compares one forward and backward pass at each
 * batch of batches; expect_onednn: how many layers must run on oneDNN. */
static void compare_backends(const char *what, build_fn build, int max_batch, const int *batches, int n_batches,
                             int expect_onednn, mg_mode mode)
{
    mg_net blas, dnn;
    build(&blas, max_batch);
    build(&dnn, max_batch);
    mg_net_set_backend(&dnn, MG_BACKEND_ONEDNN, precision);
    assert_int_equal(mg_net_onednn_layers(&blas), 0);
    assert_int_equal(mg_net_onednn_layers(&dnn), expect_onednn);
    some_bf16 = false;
    for (int i = 0; i < dnn.n_layers; i++)
        some_bf16 |= dnn.layers[i].onednn && mg_onednn_uses_bf16(dnn.layers[i].onednn);
    if (precision == MG_PRECISION_BF16) /* which layers take bf16: the kinds and channel counts */
        for (int i = 0; i < dnn.n_layers; i++)
            if (dnn.layers[i].onednn)
                assert_int_equal(mg_onednn_uses_bf16(dnn.layers[i].onednn),
                                 !strcmp(dnn.layers[i].ops->kind, "linear") ||
                                     (dnn.layers[i].in.c >= 16 && dnn.layers[i].out.c >= 16));
    mg_rng rng;
    mg_rng_init(&rng, 31, MG_STREAM_TEST);
    mg_net_init_params(&blas, &rng); /* spectral norm's u, v */
    mg_rng_fill_normal(&rng, blas.param, blas.n_param, 0.0f, 0.5f);
    memcpy(dnn.param, blas.param, sizeof(float) * blas.n_param);
    memcpy(dnn.state, blas.state, sizeof(float) * blas.n_state);
    const size_t in = mg_shape_size(blas.in), out = mg_shape_size(blas.out);
    float *x = mg_alloc_floats(in * (size_t)max_batch, "x"), *dy = mg_alloc_floats(out * (size_t)max_batch, "dy");
    float *start = mg_alloc_floats(blas.n_param, "starting gradient");
    float *own_blas = mg_alloc_floats(blas.n_param, "BLAS gradient"), *own_dnn = mg_alloc_floats(blas.n_param, "oneDNN gradient");
    char label[160];
    for (int b = 0; b < n_batches; b++) {
        const int n = batches[b];
        mg_rng_fill_normal(&rng, x, in * (size_t)n, 0.0f, 1.0f);
        mg_rng_fill_normal(&rng, dy, out * (size_t)n, 0.0f, 1.0f);
        mg_rng_fill_normal(&rng, start, blas.n_param, 0.0f, 0.1f);
        const float *y_blas = mg_net_forward(&blas, x, n, mode);
        const float *y_dnn = mg_net_forward(&dnn, x, n, mode);
        snprintf(label, sizeof label, "%s batch %d: output", what, n);
        assert_close_to(y_dnn, y_blas, out * (size_t)n, label);
        memcpy(blas.grad, start, sizeof(float) * blas.n_param);
        memcpy(dnn.grad, start, sizeof(float) * blas.n_param);
        const float *dx_blas = mg_net_backward(&blas, dy, true, true);
        const float *dx_dnn = mg_net_backward(&dnn, dy, true, true);
        snprintf(label, sizeof label, "%s batch %d: input gradient", what, n);
        assert_close_to(dx_dnn, dx_blas, in * (size_t)n, label);
        /* what the pass added, per layer (a backward that overwrote would lose start) */
        for (size_t k = 0; k < blas.n_param; k++) {
            own_blas[k] = blas.grad[k] - start[k];
            own_dnn[k] = dnn.grad[k] - start[k];
        }
        for (int i = 0; i < blas.n_layers; i++) {
            const mg_layer *l = &blas.layers[i];
            if (!l->n_param)
                continue;
            const size_t at = (size_t)(l->grad - blas.grad);
            snprintf(label, sizeof label, "%s batch %d: %s parameter gradient", what, n, l->name);
            assert_close_to(own_dnn + at, own_blas + at, l->n_param, label);
        }
    }
    mg_free(x), mg_free(dy), mg_free(start), mg_free(own_blas), mg_free(own_dnn);
    mg_net_free(&blas);
    mg_net_free(&dnn);
}

static const int batches[] = {5, 3, 1, 4, 2, 5, 3};
#define N_BATCHES ((int)(sizeof batches / sizeof *batches))

static void conv_a(mg_net *net, int b)
{
    mg_net_begin(net, "C", (mg_shape){3, 9, 7});
    mg_conv2d_make(mg_net_push(net), net->in, 4, 3, 2, 1, true);
    mg_net_finish(net, b);
}
static void conv_b(mg_net *net, int b)
{
    mg_net_begin(net, "C", (mg_shape){2, 6, 10});
    mg_conv2d_make(mg_net_push(net), net->in, 3, 5, 1, 2, false);
    mg_net_finish(net, b);
}
static void convt_a(mg_net *net, int b)
{
    mg_net_begin(net, "T", (mg_shape){3, 5, 4});
    mg_conv_transpose2d_make(mg_net_push(net), net->in, 2, 4, 2, 1, 1, true);
    mg_net_finish(net, b);
}
static void convt_b(mg_net *net, int b)
{
    mg_net_begin(net, "T", (mg_shape){2, 3, 6});
    mg_conv_transpose2d_make(mg_net_push(net), net->in, 3, 3, 3, 2, 0, false);
    mg_net_finish(net, b);
}
/* 16 channels or more on both sides: oneDNN's blocked layouts behind reorders */
static void conv_blocked(mg_net *net, int b)
{
    mg_net_begin(net, "C", (mg_shape){16, 7, 5});
    mg_conv2d_make(mg_net_push(net), net->in, 32, 3, 2, 1, true);
    mg_net_finish(net, b);
}
static void convt_blocked(mg_net *net, int b)
{
    mg_net_begin(net, "T", (mg_shape){32, 4, 3});
    mg_conv_transpose2d_make(mg_net_push(net), net->in, 17, 4, 2, 1, 1, true);
    mg_net_finish(net, b);
}
/* DCGAN-28's layers with weights, one at a time */
static void dcgan_g0(mg_net *net, int b)
{
    mg_net_begin(net, "G", (mg_shape){100, 1, 1});
    mg_linear_make(mg_net_push(net), net->in, 6272, false);
    mg_net_finish(net, b);
}
static void dcgan_g4(mg_net *net, int b)
{
    mg_net_begin(net, "G", (mg_shape){128, 7, 7});
    mg_conv_transpose2d_make(mg_net_push(net), net->in, 64, 4, 2, 1, 0, false);
    mg_net_finish(net, b);
}
static void dcgan_g7(mg_net *net, int b)
{
    mg_net_begin(net, "G", (mg_shape){64, 14, 14});
    mg_conv_transpose2d_make(mg_net_push(net), net->in, 1, 4, 2, 1, 0, true);
    mg_net_finish(net, b);
}
static void dcgan_d0(mg_net *net, int b)
{
    mg_net_begin(net, "D", (mg_shape){1, 28, 28});
    mg_conv2d_make(mg_net_push(net), net->in, 64, 4, 2, 1, true);
    mg_net_finish(net, b);
}
static void dcgan_d2(mg_net *net, int b)
{
    mg_net_begin(net, "D", (mg_shape){64, 14, 14});
    mg_conv2d_make(mg_net_push(net), net->in, 128, 4, 2, 1, false);
    mg_net_finish(net, b);
}
static void linear_a(mg_net *net, int b)
{
    mg_net_begin(net, "L", (mg_shape){2, 3, 3});
    mg_linear_make(mg_net_push(net), net->in, 7, true);
    mg_net_finish(net, b);
}
static void linear_b(mg_net *net, int b)
{
    mg_net_begin(net, "L", (mg_shape){11, 1, 1});
    mg_linear_make(mg_net_push(net), net->in, 5, false);
    mg_net_finish(net, b);
}
/* all three kinds with spectral normalisation, between activations */
static void sn_stack(mg_net *net, int b)
{
    mg_net_begin(net, "S", (mg_shape){2, 6, 6});
    mg_conv2d_make(mg_net_push(net), net->in, 3, 4, 2, 1, true);
    mg_conv2d_sn(&net->layers[0], 1);
    mg_tanh_make(mg_net_push(net), mg_net_tail_shape(net));
    mg_conv_transpose2d_make(mg_net_push(net), mg_net_tail_shape(net), 2, 4, 2, 1, 0, true);
    mg_conv_transpose2d_sn(&net->layers[2], 2);
    mg_tanh_make(mg_net_push(net), mg_net_tail_shape(net));
    mg_linear_make(mg_net_push(net), mg_net_tail_shape(net), 3, true);
    mg_linear_sn(&net->layers[4], 1);
    mg_net_finish(net, b);
}

static void test_layers_match_blas(void **state)
{
    (void)state;
    const struct { const char *what; build_fn build; } cases[] = {
        {"conv2d 3x9x7 k3 s2 p1", conv_a},          {"conv2d 2x6x10 k5 s1 p2", conv_b},
        {"conv_transpose2d 3x5x4 k4 s2 p1 op1", convt_a}, {"conv_transpose2d 2x3x6 k3 s3 p2", convt_b},
        {"conv2d 16x7x5->32 k3 s2 p1 (blocked)", conv_blocked},
        {"conv_transpose2d 32x4x3->17 k4 s2 p1 op1 (blocked)", convt_blocked},
        {"linear 18->7", linear_a},                 {"linear 11->5", linear_b},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        compare_backends(cases[i].what, cases[i].build, 5, batches, N_BATCHES, 1, MG_TRAIN);
    const struct { const char *what; build_fn build; } dcgan[] = {
        {"DCGAN-28 G.0 linear", dcgan_g0}, {"DCGAN-28 G.4 conv_transpose2d", dcgan_g4},
        {"DCGAN-28 G.7 conv_transpose2d", dcgan_g7}, {"DCGAN-28 D.0 conv2d", dcgan_d0},
        {"DCGAN-28 D.2 conv2d", dcgan_d2},
    };
    for (size_t i = 0; i < sizeof dcgan / sizeof *dcgan; i++)
        compare_backends(dcgan[i].what, dcgan[i].build, 8, batches, 2, 1, MG_TRAIN);
    /* batches of 16 and more: weight gradients as forward convolutions (test_weight_gradient_path) */
    const int large[] = {21, 16};
    const struct { const char *what; build_fn build; } wide[] = {
        {"conv2d 3x9x7 k3 s2 p1", conv_a},          {"conv2d 2x6x10 k5 s1 p2", conv_b},
        {"conv_transpose2d 3x5x4 k4 s2 p1 op1", convt_a}, {"conv_transpose2d 2x3x6 k3 s3 p2", convt_b},
        {"conv2d 16x7x5->32 k3 s2 p1 (blocked)", conv_blocked},
        {"conv_transpose2d 32x4x3->17 k4 s2 p1 op1 (blocked)", convt_blocked},
        {"DCGAN-28 G.4 conv_transpose2d", dcgan_g4}, {"DCGAN-28 D.2 conv2d", dcgan_d2},
        {"DCGAN-28 G.7 conv_transpose2d", dcgan_g7}, {"DCGAN-28 D.0 conv2d", dcgan_d0},
    };
    for (size_t i = 0; i < sizeof wide / sizeof *wide; i++)
        compare_backends(wide[i].what, wide[i].build, 21, large, 2, 1, MG_TRAIN);
    /* spectral norm: the same sigma on both (power iteration on equal W, u, v); three
     * layers deep, so only in fp32 (bf16's bound is a single product's) */
    if (precision == MG_PRECISION_FP32) {
        compare_backends("spectral norm stack", sn_stack, 5, batches, 3, 3, MG_TRAIN);
        compare_backends("spectral norm stack (eval)", sn_stack, 5, batches, 2, 3, MG_EVAL);
    }
}

/* Where the weight gradient runs as a forward convolution (onednn.c, wgrad_make): DCGAN's
 * 1-channel layers in either precision and its blocked layers in bf16, at 16 samples or
 * more (oneDNN's direct kernels take the batch as channels from 16 on), not below; the
 * blocked layers in fp32 keep the backward primitive. */
static void test_weight_gradient_path(void **state)
{
    (void)state;
    const struct { const char *what; build_fn build; bool blocked; } cases[] = {
        {"G.4", dcgan_g4, true}, {"G.7", dcgan_g7, false}, {"D.0", dcgan_d0, false}, {"D.2", dcgan_d2, true},
    };
    const int sizes[] = {64, 32, 16, 15, 8};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mg_net net;
        cases[i].build(&net, 64);
        mg_net_set_backend(&net, MG_BACKEND_ONEDNN, precision);
        assert_non_null(net.layers[0].onednn);
        for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
            char impl[256];
            mg_onednn_describe(net.layers[0].onednn, sizes[k], impl, sizeof impl);
            const bool want = sizes[k] >= 16 && (!cases[i].blocked || precision == MG_PRECISION_BF16);
            if ((strstr(impl, "as forward") != NULL) != want)
                fail_msg("DCGAN-28 %s %s batch %d: weight gradient by %s, want %s", cases[i].what,
                         mg_precision_names[precision], sizes[k], impl, want ? "a forward convolution" : "the backward primitive");
        }
        mg_net_free(&net);
    }
}

static mg_cfg *dcgan_cfg;

static void dcgan_net(mg_net *net, int b, const char *section)
{
    mg_cfg_node spec = mg_cfg_get(mg_cfg_root(dcgan_cfg), section);
    mg_net_from_cfg(net, section[0] == 'g' ? "G" : "D", spec, section[0] == 'g' ? (mg_shape){0, 0, 0}
                                                                               : (mg_shape){1, 28, 28}, b);
}
static void dcgan_g(mg_net *net, int b) { dcgan_net(net, b, "generator"); }
static void dcgan_d(mg_net *net, int b) { dcgan_net(net, b, "discriminator"); }

static void test_reference_networks_match_blas(void **state)
{
    (void)state;
    dcgan_cfg = mg_cfg_load_file("configs/fmnist_dcgan.yaml");
    const int b[] = {64, 32};
    compare_backends("DCGAN-28 G", dcgan_g, 64, b, 2, 3, MG_TRAIN);
    compare_backends("DCGAN-28 D", dcgan_d, 64, b, 2, 3, MG_TRAIN);
    mg_cfg_free(dcgan_cfg);
}

/* ---- training on oneDNN: bitwise resume ---- */

static const char conv_gan[] = "generator:\n"
                               "  input: [4]\n"
                               "  init: {kind: normal, std: 0.2, bn_std: 0.02}\n"
                               "  layers:\n"
                               "    - {kind: linear, out: 16, bias: false}\n"
                               "    - {kind: batchnorm}\n"
                               "    - {kind: leaky_relu, slope: 0.2}\n"
                               "    - {kind: reshape, shape: [4, 2, 2]}\n"
                               "    - {kind: conv2d, out: 2, kernel: 2}\n"
                               "discriminator:\n"
                               "  input: [2]\n"
                               "  init: {kind: normal, std: 0.2, bn_std: 0.02}\n"
                               "  layers:\n"
                               "    - {kind: reshape, shape: [2, 1, 1]}\n"
                               "    - {kind: conv_transpose2d, out: 8, kernel: 3, activation: leaky_relu}\n"
                               "    - {kind: conv2d, out: 8, kernel: 2, bias: false}\n"
                               "    - {kind: batchnorm}\n"
                               "    - {kind: leaky_relu, slope: 0.2}\n"
                               "    - {kind: flatten}\n"
                               "    - {kind: linear, out: 1}\n"
                               "train: {loss: non_saturating, batch: 16, steps: 16, seed: 3, log_interval: 100,\n"
                               "        n_critic: 2, g_step_noise: fresh, noise_streams: per_rank,\n"
                               "        backend: onednn}\n"
                               "optimizer_g: {kind: adam, lr: 1.0e-3, beta1: 0.5, beta2: 0.999}\n"
                               "optimizer_d: {kind: adam, lr: 1.0e-3, beta1: 0.5, beta2: 0.999}\n"
                               "data: {source: ring8}\n"
                               "checkpoint: {interval: 5, keep_last: 2}\n";

static uint64_t net_checksum(const mg_net *n)
{
    uint64_t parts[2] = {mg_checksum(n->param, n->n_param * sizeof(float)),
                         mg_checksum(n->state, n->n_state * sizeof(float))};
    return mg_checksum(parts, sizeof parts);
}

static mg_train_result train(const char *run_dir, const char *extra, bool resume, uint64_t sums[2])
{
    mg_cfg *cfg = mg_cfg_parse(conv_gan, "conv_gan.yaml");
    char set[400];
    snprintf(set, sizeof set, "run_dir=%s", run_dir);
    mg_cfg_override(cfg, set);
    if (extra)
        mg_cfg_override(cfg, extra);
    snprintf(set, sizeof set, "train.precision=%s", mg_precision_names[precision]);
    mg_cfg_override(cfg, set);
    mg_trainer *t = mg_trainer_create(cfg, resume, false);
    assert_int_equal(mg_net_onednn_layers(mg_trainer_G(t)), 2);
    assert_int_equal(mg_net_onednn_layers(mg_trainer_D(t)), 3);
    mg_train_result r = mg_trainer_run(t);
    sums[0] = net_checksum(mg_trainer_G(t));
    sums[1] = net_checksum(mg_trainer_D(t));
    mg_trainer_free(t);
    mg_cfg_free(cfg);
    return r;
}

static void test_resume_is_bitwise_identical(void **state)
{
    (void)state;
    char base[256], a[300], b[300];
    mg_test_dir_make(base, sizeof base, "onednn");
    snprintf(a, sizeof a, "%s/straight", base);
    snprintf(b, sizeof b, "%s/resumed", base);
    uint64_t straight[2], stopped[2], resumed[2];
    mg_train_result r = train(a, NULL, false, straight);
    assert_int_equal(r.status, MG_TRAIN_DONE);
    assert_true(r.replicas_equal);
    assert_true(r.losses_finite);
    r = train(b, "debug.stop_at_step=8", false, stopped);
    assert_int_equal(r.status, MG_TRAIN_STOPPED);
    assert_int_equal(r.step, 8);
    r = train(b, NULL, true, resumed);
    assert_int_equal(r.status, MG_TRAIN_DONE);
    assert_int_equal(r.step, 16);
    assert_true(r.replicas_equal);
    mg_test_dir_remove(base);
    if (mg_dist_any(resumed[0] != straight[0] || resumed[1] != straight[1]))
        fail_msg("the resumed oneDNN run differs from the uninterrupted one");
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layers_match_blas),
        cmocka_unit_test(test_weight_gradient_path),
        cmocka_unit_test(test_reference_networks_match_blas),
        cmocka_unit_test(test_resume_is_bitwise_identical),
        cmocka_unit_test_setup_teardown(test_layers_match_blas, use_bf16, use_fp32),
        cmocka_unit_test_setup_teardown(test_weight_gradient_path, use_bf16, use_fp32),
        cmocka_unit_test_setup_teardown(test_resume_is_bitwise_identical, use_bf16, use_fp32),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    failed = mg_dist_any(failed != 0) ? 1 : 0;
    mg_dist_finalize();
    return failed;
}
