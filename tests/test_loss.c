/* Losses: values against hand-computed numbers, gradients against central finite
 * differences (in double, on random inputs kept away from the hinge kinks), numerical
 * stability of the logit forms, NaN propagation, and the saturation that motivates the
 * non-saturating generator loss. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "mg_test.h"

#include "mg_error.h"
#include "mg_loss.h"
#include "mg_rng.h"

typedef float (*gan_loss_fn)(mg_gan_loss k, const float *d_out, int n, float *grad);

static const mg_gan_loss all_losses[MG_GAN_LOSS_COUNT] = {MG_LOSS_MINIMAX, MG_LOSS_NONSATURATING,
                                                          MG_LOSS_WASSERSTEIN, MG_LOSS_HINGE,
                                                          MG_LOSS_LEAST_SQUARES};
static const gan_loss_fn all_roles[3] = {mg_d_loss_real, mg_d_loss_fake, mg_g_loss};
static const char *const role_names[3] = {"D real", "D fake", "G"};

/* ---- values by hand ----
 * Inputs x = (-2, 0.5, 2.5), n = 3, mean x = 1/3. softplus(v) = log(1 + e^v):
 *   softplus(2) = 2.1269280, softplus(-0.5) = 0.4740770, softplus(-2.5) = 0.0788897
 *     → mean softplus(-x) = 2.6798947/3 = 0.8932982
 *   softplus(-2) = 0.1269280, softplus(0.5) = 0.9740770, softplus(2.5) = 2.5788897
 *     → mean softplus(x) = 3.6798947/3 = 1.2266316  (= 0.8932982 + mean x, as it must)
 *   hinge real: relu(1-x) = 3, 0.5, 0 → 3.5/3 = 1.1666667;  fake: relu(1+x) = 0, 1.5, 3.5 → 5/3
 *   LS real: (9 + 0.25 + 2.25)/6 = 1.9166667;               fake: (4 + 0.25 + 6.25)/6 = 1.75
 *   BCE with target 0.3: mean softplus(x) - 0.3 mean x = 1.2266316 - 0.1 = 1.1266316
 *   mean sigmoid: (0.1192029 + 0.6224593 + 0.9241418)/3 = 0.5552680 */
static const float hand_x[3] = {-2.0f, 0.5f, 2.5f};

static void test_loss_names(void **state)
{
    (void)state;
    assert_string_equal(mg_gan_loss_name(MG_LOSS_MINIMAX), "minimax");
    assert_string_equal(mg_gan_loss_name(MG_LOSS_NONSATURATING), "non_saturating");
    assert_string_equal(mg_gan_loss_name(MG_LOSS_WASSERSTEIN), "wasserstein");
    assert_string_equal(mg_gan_loss_name(MG_LOSS_HINGE), "hinge");
    assert_string_equal(mg_gan_loss_name(MG_LOSS_LEAST_SQUARES), "least_squares");
    assert_string_equal(mg_gan_loss_name((mg_gan_loss)42), "unknown");
}

static void test_loss_values_by_hand(void **state)
{
    (void)state;
    const double softplus_neg = 0.8932982432, softplus_pos = 1.2266315765;
    /* want[role][loss], in the order of all_roles and all_losses */
    const double want[3][MG_GAN_LOSS_COUNT] = {
        {softplus_neg, softplus_neg, -1.0 / 3, 3.5 / 3, 11.5 / 6},
        {softplus_pos, softplus_pos, 1.0 / 3, 5.0 / 3, 10.5 / 6},
        {-softplus_pos, softplus_neg, -1.0 / 3, -1.0 / 3, 11.5 / 6},
    };
    char what[64];
    for (int r = 0; r < 3; r++)
        for (int k = 0; k < MG_GAN_LOSS_COUNT; k++) {
            snprintf(what, sizeof what, "%s %s loss", role_names[r], mg_gan_loss_name(all_losses[k]));
            MG_ASSERT_CLOSE(all_roles[r](all_losses[k], hand_x, 3, NULL), want[r][k], 1e-6, 1e-6, what);
        }
    MG_ASSERT_CLOSE(mg_bce_logits(hand_x, 1.0f, 3, NULL), softplus_neg, 1e-6, 1e-6, "BCE target 1");
    MG_ASSERT_CLOSE(mg_bce_logits(hand_x, 0.0f, 3, NULL), softplus_pos, 1e-6, 1e-6, "BCE target 0");
    MG_ASSERT_CLOSE(mg_bce_logits(hand_x, 0.3f, 3, NULL), 1.1266315765, 1e-6, 1e-6, "BCE target 0.3");
    MG_ASSERT_CLOSE(mg_mean_sigmoid(hand_x, 3), 0.5552680244, 1e-7, 1e-6, "mean sigmoid");
}

/* A few gradients by hand, and that the gradient is written, not added. */
static void test_loss_gradients_by_hand(void **state)
{
    (void)state;
    float g[3];
    /* hinge real: d relu(1-x)/dx / 3 = -1/3 where x < 1, else 0 */
    g[0] = g[1] = g[2] = 1000.0f;
    mg_d_loss_real(MG_LOSS_HINGE, hand_x, 3, g);
    MG_ASSERT_CLOSE(g[0], -1.0 / 3, 1e-7, 0, "hinge real grad x=-2");
    MG_ASSERT_CLOSE(g[1], -1.0 / 3, 1e-7, 0, "hinge real grad x=0.5");
    MG_ASSERT_CLOSE(g[2], 0.0, 0, 0, "hinge real grad x=2.5");
    /* hinge fake: [1 + x > 0] / 3 */
    mg_d_loss_fake(MG_LOSS_HINGE, hand_x, 3, g);
    MG_ASSERT_CLOSE(g[0], 0.0, 0, 0, "hinge fake grad x=-2");
    MG_ASSERT_CLOSE(g[2], 1.0 / 3, 1e-7, 0, "hinge fake grad x=2.5");
    /* least squares real and G: (x - 1)/3 = -1, -1/6, 0.5 */
    mg_g_loss(MG_LOSS_LEAST_SQUARES, hand_x, 3, g);
    MG_ASSERT_CLOSE(g[0], -1.0, 1e-7, 0, "LS grad x=-2");
    MG_ASSERT_CLOSE(g[1], -1.0 / 6, 1e-7, 0, "LS grad x=0.5");
    MG_ASSERT_CLOSE(g[2], 0.5, 1e-7, 0, "LS grad x=2.5");
    /* wasserstein critic: real -1/3, fake +1/3 everywhere */
    mg_d_loss_real(MG_LOSS_WASSERSTEIN, hand_x, 3, g);
    for (int i = 0; i < 3; i++)
        MG_ASSERT_CLOSE(g[i], -1.0 / 3, 1e-7, 0, "wasserstein real grad");
    /* BCE target 1 on x = 0.5: (sigmoid(0.5) - 1)/3 = (0.6224593 - 1)/3 = -0.1258469 */
    mg_bce_logits(hand_x, 1.0f, 3, g);
    MG_ASSERT_CLOSE(g[1], -0.1258468965, 1e-7, 0, "BCE grad x=0.5");
    /* written twice in a row: same result (not accumulated) */
    float again[3];
    mg_bce_logits(hand_x, 1.0f, 3, again);
    assert_memory_equal(g, again, sizeof g);
    /* at the hinge kink x = 1 the gradient is 0 */
    const float kink = 1.0f;
    mg_d_loss_real(MG_LOSS_HINGE, &kink, 1, g);
    assert_true(g[0] == 0.0f);
}

/* ---- finite differences ---- */

/* Central difference in double of a loss as the function actually computes it: the
 * perturbed inputs are floats, so the step is taken as their exact difference. */
static double central_difference(float (*eval)(const float *x, int n, const void *ctx), const void *ctx,
                                 float *x, int n, int i, float h)
{
    float saved = x[i];
    x[i] = saved + h;
    double up_x = x[i], up = eval(x, n, ctx);
    x[i] = saved - h;
    double down_x = x[i], down = eval(x, n, ctx);
    x[i] = saved;
    return (up - down) / (up_x - down_x);
}

typedef struct { gan_loss_fn fn; mg_gan_loss kind; } gan_ctx;
static float eval_gan(const float *x, int n, const void *ctx)
{
    const gan_ctx *c = ctx;
    return c->fn(c->kind, x, n, NULL);
}
static float eval_bce(const float *x, int n, const void *ctx) { return mg_bce_logits(x, *(const float *)ctx, n, NULL); }

/* Random logits N(0, 2²), pushed at least margin away from the hinge kinks ±1. */
static void random_logits(mg_rng *rng, float *x, int n, float margin)
{
    mg_rng_fill_normal(rng, x, n, 0.0f, 2.0f);
    for (int i = 0; i < n; i++)
        for (float kink = -1.0f; kink <= 1.0f; kink += 2.0f)
            if (fabsf(x[i] - kink) < margin)
                x[i] = x[i] < kink ? kink - margin : kink + margin;
}

static void test_gan_loss_gradients_fd(void **state)
{
    (void)state;
    enum { N = 7 };
    const float h = 1e-2f;
    mg_rng rng;
    mg_rng_init(&rng, 77, mg_rng_stream_id(MG_STREAM_TEST, 0));
    float x[N], grad[N];
    char what[80];
    for (int trial = 0; trial < 4; trial++) {
        random_logits(&rng, x, N, 0.05f);
        for (int r = 0; r < 3; r++)
            for (int k = 0; k < MG_GAN_LOSS_COUNT; k++) {
                gan_ctx ctx = {all_roles[r], all_losses[k]};
                for (int i = 0; i < N; i++)
                    grad[i] = NAN; /* every entry must be written */
                all_roles[r](all_losses[k], x, N, grad);
                for (int i = 0; i < N; i++) {
                    snprintf(what, sizeof what, "%s %s dL/dx[%d] at x=%g", role_names[r],
                             mg_gan_loss_name(all_losses[k]), i, x[i]);
                    MG_ASSERT_CLOSE(grad[i], central_difference(eval_gan, &ctx, x, N, i, h), 2e-5, 1e-3, what);
                }
            }
        const float targets[3] = {0.0f, 1.0f, 0.9f};
        for (int t = 0; t < 3; t++) {
            mg_bce_logits(x, targets[t], N, grad);
            for (int i = 0; i < N; i++) {
                snprintf(what, sizeof what, "BCE(t=%g) dL/dz[%d] at z=%g", targets[t], i, x[i]);
                MG_ASSERT_CLOSE(grad[i], central_difference(eval_bce, &targets[t], x, N, i, h), 2e-5, 1e-3, what);
            }
        }
    }
}

/* ---- stability and saturation ---- */

static void test_bce_stable_at_large_logits(void **state)
{
    (void)state;
    const float z[4] = {1000.0f, -1000.0f, 1e4f, -1e4f};
    float g[4];
    /* target 1: loss softplus(-z) = 0, 1000, 0, 1e4; grad (sigmoid(z) - 1)/4 = 0, -1/4, 0, -1/4 */
    float l1 = mg_bce_logits(z, 1.0f, 4, g);
    assert_true(isfinite(l1));
    MG_ASSERT_CLOSE(l1, 11000.0 / 4, 0, 1e-7, "BCE(t=1) at ±1000, ±1e4");
    const double want1[4] = {0.0, -0.25, 0.0, -0.25};
    for (int i = 0; i < 4; i++) {
        assert_true(isfinite(g[i]));
        MG_ASSERT_CLOSE(g[i], want1[i], 1e-12, 0, "BCE(t=1) grad at large |z|");
    }
    /* target 0: loss softplus(z) = 1000, 0, 1e4, 0; grad sigmoid(z)/4 = 1/4, 0, 1/4, 0 */
    float l0 = mg_bce_logits(z, 0.0f, 4, g);
    MG_ASSERT_CLOSE(l0, 11000.0 / 4, 0, 1e-7, "BCE(t=0) at ±1000, ±1e4");
    const double want0[4] = {0.25, 0.0, 0.25, 0.0};
    for (int i = 0; i < 4; i++)
        MG_ASSERT_CLOSE(g[i], want0[i], 1e-12, 0, "BCE(t=0) grad at large |z|");
    /* single ±1000 as the D and G losses see them */
    const float big = 1000.0f, small = -1000.0f;
    MG_ASSERT_CLOSE(mg_d_loss_real(MG_LOSS_MINIMAX, &small, 1, g), 1000.0, 0, 1e-7, "D real at -1000");
    MG_ASSERT_CLOSE(g[0], -1.0, 0, 1e-7, "D real grad at -1000");
    MG_ASSERT_CLOSE(mg_d_loss_fake(MG_LOSS_NONSATURATING, &big, 1, g), 1000.0, 0, 1e-7, "D fake at 1000");
    MG_ASSERT_CLOSE(g[0], 1.0, 0, 1e-7, "D fake grad at 1000");
    MG_ASSERT_CLOSE(mg_g_loss(MG_LOSS_MINIMAX, &big, 1, g), -1000.0, 0, 1e-7, "G minimax at 1000");
    MG_ASSERT_CLOSE(mg_mean_sigmoid(&small, 1), 0.0, 1e-30, 0, "mean sigmoid at -1000");
    MG_ASSERT_CLOSE(mg_mean_sigmoid(&big, 1), 1.0, 0, 0, "mean sigmoid at 1000");
}

/* D confidently rejects a fake: x = -10, D(G(z)) = sigmoid(-10) = 4.54e-5.
 *   minimax G:        dL/dx = -sigmoid(-10) = -4.54e-5   (vanishes: G learns nothing)
 *   non-saturating G: dL/dx = sigmoid(-10) - 1 = -0.99995 (full-strength signal) */
static void test_minimax_saturates_nonsaturating_does_not(void **state)
{
    (void)state;
    const float x = -10.0f;
    float g_minimax, g_nonsat;
    mg_g_loss(MG_LOSS_MINIMAX, &x, 1, &g_minimax);
    mg_g_loss(MG_LOSS_NONSATURATING, &x, 1, &g_nonsat);
    MG_ASSERT_CLOSE(g_minimax, -4.5397868702e-5, 1e-12, 1e-5, "minimax G grad at -10");
    MG_ASSERT_CLOSE(g_nonsat, -0.9999546021, 1e-7, 0, "non-saturating G grad at -10");
    assert_true(fabsf(g_minimax) < 1e-4f);
    assert_true(fabsf(g_nonsat) > 0.999f);
    assert_true(fabsf(g_nonsat) / fabsf(g_minimax) > 2e4f);
    /* both push D(G(z)) up: the gradient of the loss in x is negative */
    assert_true(g_minimax < 0.0f && g_nonsat < 0.0f);
}

/* ---- softmax cross-entropy ----
 * logits ((1, 2, 3), (0, 0, 0)), labels (2, 1):
 *   row 0: logsumexp = 3 + log(1 + e^-1 + e^-2) = 3.4076059, l0 = 0.4076059,
 *          p = (0.0900306, 0.2447285, 0.6652410)
 *   row 1: l1 = log 3 = 1.0986123, p = 1/3 each
 *   mean = 0.7531091; dlogits row 0 = (p - (0, 0, 1))/2 = (0.0450153, 0.1223642, -0.1673795),
 *   row 1 = (1/6, -1/3, 1/6) */
static void test_softmax_xent_by_hand(void **state)
{
    (void)state;
    const float logits[6] = {1.0f, 2.0f, 3.0f, 0.0f, 0.0f, 0.0f};
    const int labels[2] = {2, 1};
    float d[6], p[6];
    float loss = mg_softmax_xent(logits, labels, 2, 3, d, p);
    MG_ASSERT_CLOSE(loss, 0.7531091266, 1e-7, 1e-6, "softmax xent");
    const double want_p[6] = {0.0900305732, 0.2447284711, 0.6652409558, 1.0 / 3, 1.0 / 3, 1.0 / 3};
    const double want_d[6] = {0.0450152866, 0.1223642355, -0.1673795221, 1.0 / 6, -1.0 / 3, 1.0 / 6};
    for (int j = 0; j < 6; j++) {
        MG_ASSERT_CLOSE(p[j], want_p[j], 1e-7, 1e-6, "softmax probs");
        MG_ASSERT_CLOSE(d[j], want_d[j], 1e-7, 1e-6, "softmax xent grad");
    }
    MG_ASSERT_CLOSE(mg_softmax_xent(logits, labels, 2, 3, NULL, NULL), 0.7531091266, 1e-7, 1e-6,
                    "softmax xent without outputs");
    /* stable at huge logits: row (1000, 0, -1000) */
    const float huge[3] = {1000.0f, 0.0f, -1000.0f};
    const int right = 0, wrong = 2;
    MG_ASSERT_CLOSE(mg_softmax_xent(huge, &right, 1, 3, d, p), 0.0, 1e-30, 0, "xent confident right");
    MG_ASSERT_CLOSE(mg_softmax_xent(huge, &wrong, 1, 3, d, p), 2000.0, 0, 1e-7, "xent confident wrong");
    MG_ASSERT_CLOSE(d[0], 1.0, 0, 1e-7, "xent grad confident wrong");
    MG_ASSERT_CLOSE(d[2], -1.0, 0, 1e-7, "xent grad at label");
}

typedef struct { const int *labels; int k; } xent_ctx;
static float eval_xent(const float *x, int n, const void *ctx)
{
    const xent_ctx *c = ctx;
    return mg_softmax_xent(x, c->labels, n / c->k, c->k, NULL, NULL);
}

static void test_softmax_xent_gradient_fd(void **state)
{
    (void)state;
    enum { N = 4, K = 5 };
    mg_rng rng;
    mg_rng_init(&rng, 99, mg_rng_stream_id(MG_STREAM_TEST, 1));
    float logits[N * K], d[N * K], p[N * K];
    const int labels[N] = {0, 3, 4, 3};
    xent_ctx ctx = {labels, K};
    mg_rng_fill_normal(&rng, logits, N * K, 0.0f, 2.0f);
    mg_softmax_xent(logits, labels, N, K, d, p);
    char what[64];
    for (int i = 0; i < N; i++) {
        double row_sum = 0;
        for (int j = 0; j < K; j++)
            row_sum += p[i * K + j];
        MG_ASSERT_CLOSE(row_sum, 1.0, 1e-6, 0, "softmax row sums to 1");
    }
    for (int i = 0; i < N * K; i++) {
        snprintf(what, sizeof what, "softmax xent dL/dz[%d]", i);
        MG_ASSERT_CLOSE(d[i], central_difference(eval_xent, &ctx, logits, N * K, i, 1e-2f), 2e-5, 1e-3, what);
    }
}

/* ---- NaN and errors ---- */

static void test_nan_propagates(void **state)
{
    (void)state;
    const float x[2] = {0.3f, NAN};
    float g[2];
    char what[64];
    for (int r = 0; r < 3; r++)
        for (int k = 0; k < MG_GAN_LOSS_COUNT; k++) {
            snprintf(what, sizeof what, "%s %s", role_names[r], mg_gan_loss_name(all_losses[k]));
            float loss = all_roles[r](all_losses[k], x, 2, g);
            if (!isnan(loss) || !isnan(g[1]) || isnan(g[0]))
                fail_msg("%s: NaN input gave loss %g, grad (%g, %g)", what, loss, g[0], g[1]);
        }
    assert_true(isnan(mg_bce_logits(x, 1.0f, 2, g)) && isnan(g[1]) && !isnan(g[0]));
    assert_true(isnan(mg_mean_sigmoid(x, 2)));
    const float logits[4] = {NAN, 1.0f, 0.0f, 2.0f};
    const int labels[2] = {1, 0};
    float dlogits[4];
    assert_true(isnan(mg_softmax_xent(logits, labels, 2, 2, dlogits, NULL)));
    assert_true(isnan(dlogits[0]) && isnan(dlogits[1]));   /* the row with the NaN */
    assert_true(!isnan(dlogits[2]) && !isnan(dlogits[3])); /* the other row is untouched by it */
}

static void test_loss_errors(void **state)
{
    (void)state;
    float g[3];
    MG_EXPECT_FATAL(mg_d_loss_real((mg_gan_loss)9, hand_x, 3, g), "unknown GAN loss");
    MG_EXPECT_FATAL(mg_g_loss(MG_LOSS_HINGE, hand_x, 0, g), "batch of 0");
    const float logits[6] = {0};
    const int labels[2] = {1, 3};
    MG_EXPECT_FATAL(mg_softmax_xent(logits, labels, 2, 3, NULL, NULL), "sample 1 has label 3");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_names),
        cmocka_unit_test(test_loss_values_by_hand),
        cmocka_unit_test(test_loss_gradients_by_hand),
        cmocka_unit_test(test_gan_loss_gradients_fd),
        cmocka_unit_test(test_bce_stable_at_large_logits),
        cmocka_unit_test(test_minimax_saturates_nonsaturating_does_not),
        cmocka_unit_test(test_softmax_xent_by_hand),
        cmocka_unit_test(test_softmax_xent_gradient_fd),
        cmocka_unit_test(test_nan_propagates),
        cmocka_unit_test(test_loss_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
