/* Gradient penalties (mg_penalty.h): the parameter gradient from the Hessian-vector
 * product by central differences against central differences of the penalty VALUE itself
 * w.r.t. each parameter (the value summed in double here, independently of the module),
 * for R1's 1/2 ||g||^2 and GP's (||g|| - 1)^2, on small networks holding each layer kind D
 * may contain, class-conditional ones too (a one-hot input map, conditional BatchNorm and a
 * projection head, with sn on its embedding or not, at fixed labels: given its class a
 * sample's D is an ordinary function of its input). Also: D's running statistics are left untouched, a layer kind without a
 * checked penalty gradient is refused naming the layer, and the penalty/accumulation
 * config errors name their key.
 *
 * Tolerance: the reference differences move one parameter by eps in float forward and
 * backward passes: truncation O(eps^2) and rounding ~1e-7 |P| / eps; eps 3e-3 for smooth
 * layers (at 1e-2 the reference's own truncation was the larger error, up to 4e-3 of the
 * largest element with BatchNorm). Agreement seen: within 1e-5..7e-4 of the largest
 * gradient element (the test prints it); required: 2e-3 of it + 2% relative. Piecewise-linear
 * layers (ReLU, LeakyReLU, maxout) use eps 1e-3 so that a parameter step rarely moves a
 * unit across its kink (the seeds are fixed; a straddled kink would show as a mismatch).
 * No MPI needed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_cfg_override.h"
#include "mg_penalty.h"
#include "mg_test.h"
#include "mg_train.h"

/* P = w mean_i phi(g_i), g = dS/dX, S = sum_i D(x_i): summed in double. */
static double penalty_value(mg_net *D, mg_penalty_kind kind, const float *x, int n)
{
    mg_net_forward(D, x, n, MG_TRAIN);
    float ones[64];
    for (int i = 0; i < n; i++)
        ones[i] = 1.0f;
    const float *g = mg_net_backward(D, ones, false, true);
    const size_t d = mg_shape_size(D->in);
    double sum = 0;
    for (int i = 0; i < n; i++) {
        double gn2 = 0;
        for (size_t k = 0; k < d; k++)
            gn2 += (double)g[(size_t)i * d + k] * g[(size_t)i * d + k];
        sum += kind == MG_PENALTY_SQ ? 0.5 * gn2 : (sqrt(gn2) - 1.0) * (sqrt(gn2) - 1.0);
    }
    return sum / n;
}

/* Checks every parameter (or 40 random ones per layer) of D at batch n. */
static void check_penalty(mg_net *D, int n, mg_penalty_kind kind, float eps, const char *what, unsigned seed)
{
    mg_rng rng;
    mg_rng_init(&rng, seed, MG_STREAM_TEST);
    mg_rng_fill_normal(&rng, D->param, D->n_param, 0.0f, 0.5f);
    const size_t nx = mg_shape_size(D->in) * (size_t)n;
    float *x = mg_alloc_floats(nx, "x");
    mg_rng_fill_normal(&rng, x, nx, 0.0f, 1.0f);
    /* spectral norm's u, v brought to the drawn weights by training passes (u, v unit
     * vectors first; a converged u, v barely moves in the passes the check makes) */
    for (int li = 0; li < D->n_layers; li++)
        for (size_t k = 0; k < D->layers[li].n_state; k++)
            D->layers[li].state[k] = 1.0f;
    for (int it = 0; it < 50; it++)
        mg_net_forward(D, x, n, MG_TRAIN);
    float *ana = mg_alloc_floats(D->n_param, "analytic");
    float *state0 = mg_alloc_floats(D->n_state + 1, "state");
    memcpy(state0, D->state, D->n_state * sizeof(float));

    mg_penalty p;
    mg_penalty_init(&p, D);
    mg_net_zero_grad(D);
    const double value = mg_penalty_apply(&p, kind, x, n, 1.0, 1.0);
    memcpy(ana, D->grad, D->n_param * sizeof(float));
    if (memcmp(state0, D->state, D->n_state * sizeof(float)))
        fail_msg("%s: the penalty changed D's running statistics", what);
    MG_ASSERT_CLOSE(value, penalty_value(D, kind, x, n), 1e-6, 1e-4, "penalty value");

    double scale = 0;
    for (size_t i = 0; i < D->n_param; i++)
        scale = fmax(scale, fabs(ana[i]));
    if (!(scale > 0))
        fail_msg("%s: the penalty gradient is zero", what);
    double worst = 0, worst_abs = 0;
    for (int li = 0; li < D->n_layers; li++) {
        mg_layer *l = &D->layers[li];
        for (int k = 0; k < 40 && (size_t)k < l->n_param; k++) {
            size_t i = l->n_param <= 40 ? (size_t)k : (size_t)mg_rng_below(&rng, l->n_param);
            const float saved = l->param[i];
            l->param[i] = saved + eps;
            const double pp = penalty_value(D, kind, x, n);
            l->param[i] = saved - eps;
            const double pm = penalty_value(D, kind, x, n);
            l->param[i] = saved;
            const double num = (pp - pm) / (2.0 * (double)eps);
            const double an = ana[(size_t)(l->grad - D->grad) + i];
            const double err = fabs(num - an) / (1e-3 * scale + fmax(fabs(num), fabs(an)));
            worst = fmax(worst, err);
            worst_abs = fmax(worst_abs, fabs(num - an) / scale);
            if (!(fabs(num - an) <= 2e-3 * scale + 2e-2 * fmax(fabs(num), fabs(an))))
                fail_msg("%s %s: %s dP/dparam[%zu]: finite differences %.7g vs HVP %.7g (largest %.3g)", what,
                         kind == MG_PENALTY_SQ ? "R1" : "GP", l->name, i, num, an, scale);
        }
    }
    printf("  %-24s %s: largest difference %.1e of the largest gradient element, %.1e relative\n", what,
           kind == MG_PENALTY_SQ ? "R1" : "GP", worst_abs, worst);
    mg_penalty_free(&p);
    mg_free(x);
    mg_free(ana);
    mg_free(state0);
}

typedef void (*build_fn)(mg_net *D);

static void run_both(build_fn build, int n, float eps, const char *what, unsigned seed)
{
    mg_net D;
    build(&D);
    check_penalty(&D, n, MG_PENALTY_SQ, eps, what, seed);
    check_penalty(&D, n, MG_PENALTY_GP, eps, what, seed + 100);
    mg_net_free(&D);
}

static mg_layer *push(mg_net *D) { return mg_net_push(D); }
static void end_linear(mg_net *D)
{
    mg_flatten_make(push(D), mg_net_tail_shape(D));
    mg_linear_make(push(D), mg_net_tail_shape(D), 1, true);
    mg_net_finish(D, 8);
}

static void b_linear(mg_net *D)
{
    mg_net_begin(D, "L", (mg_shape){6, 1, 1});
    mg_linear_make(push(D), D->in, 5, true);
    mg_tanh_make(push(D), mg_net_tail_shape(D));
    end_linear(D);
}
static void b_sigmoid(mg_net *D)
{
    mg_net_begin(D, "S", (mg_shape){6, 1, 1});
    mg_linear_make(push(D), D->in, 5, false);
    mg_sigmoid_make(push(D), mg_net_tail_shape(D));
    end_linear(D);
}
static void b_relu(mg_net *D)
{
    mg_net_begin(D, "R", (mg_shape){6, 1, 1});
    mg_linear_make(push(D), D->in, 5, true);
    mg_relu_make(push(D), mg_net_tail_shape(D));
    end_linear(D);
}
static void b_leaky(mg_net *D)
{
    mg_net_begin(D, "K", (mg_shape){6, 1, 1});
    mg_linear_make(push(D), D->in, 5, true);
    mg_leaky_relu_make(push(D), mg_net_tail_shape(D), 0.2f);
    mg_linear_make(push(D), mg_net_tail_shape(D), 4, true);
    mg_leaky_relu_make(push(D), mg_net_tail_shape(D), 0.2f);
    end_linear(D);
}
static void b_maxout(mg_net *D)
{
    mg_net_begin(D, "M", (mg_shape){6, 1, 1});
    mg_maxout_make(push(D), D->in, 4, 3, true);
    mg_tanh_make(push(D), mg_net_tail_shape(D));
    end_linear(D);
}
static void b_conv(mg_net *D)
{
    mg_net_begin(D, "C", (mg_shape){2, 6, 6});
    mg_conv2d_make(push(D), D->in, 3, 4, 2, 1, true);
    mg_tanh_make(push(D), mg_net_tail_shape(D));
    mg_conv2d_make(push(D), mg_net_tail_shape(D), 2, 3, 1, 1, false);
    mg_tanh_make(push(D), mg_net_tail_shape(D));
    end_linear(D);
}
static void b_convt(mg_net *D)
{
    mg_net_begin(D, "T", (mg_shape){2, 3, 3});
    mg_conv_transpose2d_make(push(D), D->in, 2, 4, 2, 1, 0, true);
    mg_tanh_make(push(D), mg_net_tail_shape(D));
    end_linear(D);
}
static void b_reshape(mg_net *D)
{
    mg_net_begin(D, "P", (mg_shape){5, 1, 1});
    mg_linear_make(push(D), D->in, 12, true);
    mg_reshape_make(push(D), mg_net_tail_shape(D), (mg_shape){3, 2, 2});
    mg_conv2d_make(push(D), mg_net_tail_shape(D), 2, 2, 1, 0, true);
    mg_tanh_make(push(D), mg_net_tail_shape(D));
    end_linear(D);
}
static void b_bn1d(mg_net *D)
{
    mg_net_begin(D, "B", (mg_shape){6, 1, 1});
    mg_linear_make(push(D), D->in, 5, false);
    mg_batchnorm_make(push(D), mg_net_tail_shape(D), 0.1f, 1e-5f);
    mg_tanh_make(push(D), mg_net_tail_shape(D));
    end_linear(D);
}
/* DCGAN-28's D in small: conv, LeakyReLU, conv, BatchNorm 2-d, LeakyReLU, linear */
static void b_dcgan(mg_net *D)
{
    mg_net_begin(D, "G", (mg_shape){1, 8, 8});
    mg_conv2d_make(push(D), D->in, 3, 4, 2, 1, true);
    mg_leaky_relu_make(push(D), mg_net_tail_shape(D), 0.2f);
    mg_conv2d_make(push(D), mg_net_tail_shape(D), 4, 4, 2, 1, false);
    mg_batchnorm_make(push(D), mg_net_tail_shape(D), 0.1f, 1e-5f);
    mg_leaky_relu_make(push(D), mg_net_tail_shape(D), 0.2f);
    end_linear(D);
}
static void b_mbstd(mg_net *D)
{
    mg_net_begin(D, "Q", (mg_shape){2, 4, 4});
    mg_conv2d_make(push(D), D->in, 2, 3, 1, 1, true);
    mg_tanh_make(push(D), mg_net_tail_shape(D));
    mg_mbstd_make(push(D), mg_net_tail_shape(D), 4, 1e-8f);
    mg_conv2d_make(push(D), mg_net_tail_shape(D), 2, 3, 1, 1, true);
    mg_tanh_make(push(D), mg_net_tail_shape(D));
    end_linear(D);
}
/* class-conditional: labels (i + 1) % 3 of 3 classes for every batch the checks run */
static const int cond_labels[8] = {1, 2, 0, 1, 2, 0, 1, 2};
static void cond_begin(mg_net *D, const char *name, mg_shape in)
{
    mg_net_begin(D, name, in);
    mg_net_set_classes(D, 3);
}
static void cond_end(mg_net *D)
{
    mg_net_finish(D, 8);
    mg_net_set_labels(D, cond_labels);
}
static void b_onehot_proj(mg_net *D)
{
    cond_begin(D, "Y", (mg_shape){2, 3, 3});
    mg_onehot_concat_make(push(D), D->in);
    mg_conv2d_make(push(D), mg_net_tail_shape(D), 3, 3, 2, 1, true);
    mg_tanh_make(push(D), mg_net_tail_shape(D));
    mg_projection_make(push(D), mg_net_tail_shape(D));
    cond_end(D);
}
static void b_cbn_proj_sn(mg_net *D)
{
    cond_begin(D, "Z", (mg_shape){6, 1, 1});
    mg_linear_make(push(D), D->in, 5, false);
    mg_batchnorm_make_conditional(push(D), mg_net_tail_shape(D), 0.1f, 1e-5f);
    mg_tanh_make(push(D), mg_net_tail_shape(D));
    const mg_shape features = mg_net_tail_shape(D);
    mg_layer *proj = push(D);
    mg_projection_make(proj, features);
    mg_projection_sn(proj, 1);
    cond_end(D);
}

/* smooth layers: eps 3e-3 */
static void test_linear_tanh(void **s) { (void)s; run_both(b_linear, 5, 3e-3f, "linear+tanh", 1); }
static void test_sigmoid(void **s) { (void)s; run_both(b_sigmoid, 5, 3e-3f, "sigmoid", 2); }
static void test_conv2d_flatten(void **s) { (void)s; run_both(b_conv, 3, 3e-3f, "conv2d+flatten", 3); }
static void test_conv_transpose2d(void **s) { (void)s; run_both(b_convt, 3, 3e-3f, "conv_transpose2d", 4); }
static void test_reshape(void **s) { (void)s; run_both(b_reshape, 4, 3e-3f, "reshape", 5); }
static void test_batchnorm(void **s) { (void)s; run_both(b_bn1d, 6, 3e-3f, "batchnorm (1-d)", 6); }
static void test_mbstd(void **s) { (void)s; run_both(b_mbstd, 8, 3e-3f, "mbstd", 7); }
static void test_conditional(void **s)
{
    (void)s;
    run_both(b_onehot_proj, 5, 3e-3f, "onehot_concat+projection", 12);
    run_both(b_cbn_proj_sn, 6, 3e-3f, "cond. BN+projection (sn)", 13);
}
/* piecewise linear: eps 1e-3 */
static void test_relu(void **s) { (void)s; run_both(b_relu, 5, 1e-3f, "relu", 8); }
static void test_leaky_relu(void **s) { (void)s; run_both(b_leaky, 5, 1e-3f, "leaky_relu", 9); }
static void test_maxout(void **s) { (void)s; run_both(b_maxout, 5, 1e-3f, "maxout", 10); }
static void test_dcgan_like(void **s) { (void)s; run_both(b_dcgan, 4, 1e-3f, "conv+bn2d+leaky (DCGAN)", 11); }

/* A layer kind the penalty has not been checked with: refused, naming the layer. */
static void id_forward(mg_layer *l, const float *x, float *y, int n, mg_mode mode)
{
    (void)mode;
    memcpy(y, x, mg_shape_size(l->in) * (size_t)n * sizeof(float));
}
static void id_backward(mg_layer *l, const float *x, const float *y, const float *dy, float *dx, int n, bool pg)
{
    (void)x, (void)y, (void)pg;
    if (dx)
        memcpy(dx, dy, mg_shape_size(l->in) * (size_t)n * sizeof(float));
}
static const mg_layer_ops id_ops = {"unchecked_kind", id_forward, id_backward, NULL, NULL};

static void test_unchecked_kind_refused(void **state)
{
    (void)state;
    mg_net D;
    mg_net_begin(&D, "D", (mg_shape){3, 1, 1});
    mg_linear_make(push(&D), D.in, 3, true);
    mg_layer *l = push(&D);
    mg_layer_setup(l, &id_ops, mg_net_tail_shape(&D), mg_net_tail_shape(&D), NULL);
    mg_linear_make(push(&D), mg_net_tail_shape(&D), 1, true);
    mg_net_finish(&D, 2);
    mg_cfg *cfg = mg_cfg_parse("train: {r1_gamma: 10}\n", "pen.yaml");
    mg_cfg_node key = mg_cfg_get(mg_cfg_get(mg_cfg_root(cfg), "train"), "r1_gamma");
    MG_EXPECT_FATAL(mg_penalty_check_net(&D, key, "r1_gamma"), "D.1 (kind unchecked_kind)");
    MG_EXPECT_FATAL(mg_penalty_check_net(&D, key, "r1_gamma"), "pen.yaml");
    mg_cfg_free(cfg);
    mg_net_free(&D);
}

/* configs/tiny.yaml with one line replaced. */
static mg_cfg *tiny_with(const char *old, const char *replacement)
{
    FILE *f = fopen("configs/tiny.yaml", "rb");
    assert_non_null(f);
    static char base[8192], text[8192];
    size_t n = fread(base, 1, sizeof base - 1, f);
    fclose(f);
    base[n] = 0;
    const char *at = strstr(base, old);
    assert_non_null(at);
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - base), base, replacement, at + strlen(old));
    return mg_cfg_parse(text, "bad.yaml");
}

static void expect_cfg_error(const char *old, const char *replacement, int ranks, const char *message)
{
    mg_cfg *cfg = tiny_with(old, replacement);
    mg_train_cfg tc;
    MG_EXPECT_FATAL(mg_train_cfg_read(&tc, cfg, ranks), message);
    mg_cfg_free(cfg);
}

static void test_config_errors(void **state)
{
    (void)state;
    expect_cfg_error("  loss: non_saturating\n", "  loss: wasserstein\n  clip: 0.01\n  gp_lambda: 10\n", 1,
                     "(train.clip): clip 0.01 with gp_lambda 10");
    expect_cfg_error("  n_critic: 1\n", "  n_critic: 1\n  r1_every: 16\n", 1,
                     "(train.r1_every): r1_every without r1_gamma");
    { /* r1_gamma: 0 beside r1_every is R1 turned off, not an error */
        mg_cfg *cfg = tiny_with("  n_critic: 1\n", "  n_critic: 1\n  r1_gamma: 0\n  r1_every: 4\n");
        mg_train_cfg tc;
        mg_train_cfg_read(&tc, cfg, 1);
        assert_true(tc.penalty.r1_gamma == 0.0f);
        mg_cfg_free(cfg);
    }
    expect_cfg_error("  n_critic: 1\n", "  n_critic: 1\n  accumulate: 3\n", 2,
                     "(train.accumulate): train.accumulate 3 does not divide the per-rank batch 8");
    expect_cfg_error("  n_critic: 1\n", "  n_critic: 1\n  r2_gamma: -1\n", 1, "(train.r2_gamma): value -1 out of range");
    /* wasserstein with gp_lambda needs no clip; the resolved config reads back */
    mg_cfg *cfg = tiny_with("  loss: non_saturating\n", "  loss: wasserstein\n  gp_lambda: 10\n  r1_gamma: 1\n  "
                                                       "r1_every: 4\n  r2_gamma: 0.5\n  accumulate: 2\n");
    mg_train_cfg tc, back;
    mg_train_cfg_read(&tc, cfg, 2);
    assert_true(tc.penalty.gp_lambda == 10.0f && tc.penalty.r1_every == 4 && tc.accumulate == 2);
    char *text = mg_train_cfg_resolved(&tc, cfg);
    mg_cfg *again = mg_cfg_parse(text, "resolved.yaml");
    mg_train_cfg_read(&back, again, 2);
    assert_true(back.penalty.gp_lambda == 10.0f && back.penalty.r1_gamma == 1.0f && back.penalty.r1_every == 4 &&
                back.penalty.r2_gamma == 0.5f && back.accumulate == 2 && back.clip == 0.0f);
    mg_free(text);
    mg_cfg_free(again);
    mg_cfg_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_tanh),     cmocka_unit_test(test_sigmoid),
        cmocka_unit_test(test_conv2d_flatten),  cmocka_unit_test(test_conv_transpose2d),
        cmocka_unit_test(test_reshape),         cmocka_unit_test(test_batchnorm),
        cmocka_unit_test(test_mbstd),           cmocka_unit_test(test_relu),
        cmocka_unit_test(test_leaky_relu),      cmocka_unit_test(test_maxout),
        cmocka_unit_test(test_dcgan_like),      cmocka_unit_test(test_conditional),
        cmocka_unit_test(test_unchecked_kind_refused),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
