/* Differentiable augmentation (src/train/augment.c):
 * - the backward pass is the adjoint of the forward's linear part: <A x, y> = <x, A^T y>
 *   for every policy alone and all together, on grey and RGB images (A x = aug(x) - aug(0),
 *   which removes brightness's constant);
 * - a batch augmented whole equals the same samples augmented in two slices with their
 *   item indices, bitwise: the rank count does not change what a sample gets;
 * - the identity where p = 0, zeros brought in by translation and cutout, and each
 *   policy actually changing images at p = 1;
 * - config errors name the key;
 * - the adaptive probability (mg_ada.h): p moves by batch * interval / speed once per
 *   interval, up while r_t is above the target, down below it, not at it, clamped to
 *   [0, 1]; the mean sign of D's outputs. */
#include <math.h>
#include <stdlib.h>

#include "mg_ada.h"
#include "mg_augment.h"
#include "mg_cfg.h"
#include "mg_test.h"

static mg_augment_cfg policy(bool translation, bool cutout, bool color, float p)
{
    return (mg_augment_cfg){.on = true, .translation = translation, .cutout = cutout, .color = color, .p = p};
}

static void fill(float *x, size_t n, unsigned seed)
{
    srand(seed);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
}

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

static void check_adjoint(mg_shape shape, mg_augment_cfg cfg)
{
    const int n = 6;
    const size_t size = mg_shape_size(shape) * n;
    float *x = malloc(size * sizeof(float)), *y = malloc(size * sizeof(float)), *ax = malloc(size * sizeof(float));
    float *a0 = malloc(size * sizeof(float)), *zero = calloc(size, sizeof(float)), *aty = malloc(size * sizeof(float));
    fill(x, size, 1);
    fill(y, size, 2);
    mg_augment a;
    mg_augment_init(&a, shape, n);
    mg_augment_forward(&a, &cfg, zero, a0, n, 7, 0, 100); /* the constant part b */
    mg_augment_forward(&a, &cfg, x, ax, n, 7, 0, 100);
    for (size_t i = 0; i < size; i++)
        ax[i] -= a0[i];
    mg_augment_backward(&a, y, aty);
    const double lhs = dot(ax, y, size), rhs = dot(x, aty, size);
    MG_ASSERT_CLOSE(lhs, rhs, 1e-5, 1e-5, "<A x, y> = <x, A^T y>");
    mg_augment_free(&a);
    free(x), free(y), free(ax), free(a0), free(zero), free(aty);
}

static void test_backward_is_the_adjoint(void **state)
{
    (void)state;
    const mg_shape shapes[2] = {{1, 12, 12}, {3, 8, 10}};
    for (int s = 0; s < 2; s++) {
        check_adjoint(shapes[s], policy(true, false, false, 1.0f));
        check_adjoint(shapes[s], policy(false, true, false, 1.0f));
        check_adjoint(shapes[s], policy(false, false, true, 1.0f));
        check_adjoint(shapes[s], policy(true, true, true, 1.0f));
        check_adjoint(shapes[s], policy(true, true, true, 0.5f));
    }
}

static void test_slices_equal_the_whole_batch(void **state)
{
    (void)state;
    const mg_shape shape = {3, 8, 8};
    const int n = 8;
    const size_t one = mg_shape_size(shape), size = one * n;
    float *x = malloc(size * sizeof(float)), *whole = malloc(size * sizeof(float)),
          *parts = malloc(size * sizeof(float));
    fill(x, size, 3);
    const mg_augment_cfg cfg = policy(true, true, true, 0.7f);
    mg_augment a;
    mg_augment_init(&a, shape, n);
    mg_augment_forward(&a, &cfg, x, whole, n, 11, 2, 5000);
    mg_augment_forward(&a, &cfg, x, parts, 3, 11, 2, 5000);
    mg_augment_forward(&a, &cfg, x + 3 * one, parts + 3 * one, 5, 11, 2, 5003);
    assert_memory_equal(whole, parts, size * sizeof(float));
    /* another use (the G step's fakes rather than the D step's) draws differently */
    mg_augment_forward(&a, &cfg, x, parts, n, 11, 1, 5000);
    assert_memory_not_equal(whole, parts, size * sizeof(float));
    mg_augment_free(&a);
    free(x), free(whole), free(parts);
}

static void test_identity_and_effects(void **state)
{
    (void)state;
    const mg_shape shape = {1, 16, 16};
    const int n = 16;
    const size_t one = mg_shape_size(shape), size = one * n;
    float *x = malloc(size * sizeof(float)), *y = malloc(size * sizeof(float));
    for (size_t i = 0; i < size; i++)
        x[i] = 0.5f; /* no zeros of its own: any zero is one the transform brought in */
    mg_augment a;
    mg_augment_init(&a, shape, n);
    mg_augment_cfg off = policy(true, true, true, 0.0f);
    mg_augment_forward(&a, &off, x, y, n, 1, 0, 0);
    assert_memory_equal(x, y, size * sizeof(float));

    mg_augment_cfg cut = policy(false, true, false, 1.0f);
    mg_augment_forward(&a, &cut, x, y, n, 1, 0, 0);
    for (int i = 0; i < n; i++) {
        int zeros = 0;
        for (size_t k = 0; k < one; k++)
            zeros += y[i * one + k] == 0.0f;
        assert_true(zeros > 0 && zeros <= 8 * 8); /* a square of half the side, clipped */
    }
    mg_augment_cfg shift = policy(true, false, false, 1.0f);
    mg_augment_forward(&a, &shift, x, y, n, 1, 0, 0);
    int shifted = 0;
    for (int i = 0; i < n; i++) {
        int zeros = 0;
        for (size_t k = 0; k < one; k++)
            zeros += y[i * one + k] == 0.0f;
        shifted += zeros > 0;
        assert_true(zeros <= 16 * 2 * 2 + 2 * 2 * 16); /* at most 2 rows and 2 columns */
    }
    assert_true(shifted >= n / 2); /* 24 of 25 shifts move the image */
    mg_augment_cfg color = policy(false, false, true, 1.0f);
    mg_augment_forward(&a, &color, x, y, n, 1, 0, 0);
    int changed = 0;
    for (int i = 0; i < n; i++)
        changed += y[i * one] != 0.5f;
    assert_int_equal(changed, n);
    mg_augment_free(&a);
    free(x), free(y);
}

static void test_config_errors(void **state)
{
    (void)state;
    mg_cfg *cfg = mg_cfg_parse("augment: {policy: [translation, blur]}\n", "aug.yaml");
    MG_EXPECT_FATAL(mg_augment_cfg_from(mg_cfg_get(mg_cfg_root(cfg), "augment")), "blur");
    mg_cfg_free(cfg);
    cfg = mg_cfg_parse("augment: {policy: []}\n", "aug.yaml");
    MG_EXPECT_FATAL(mg_augment_cfg_from(mg_cfg_get(mg_cfg_root(cfg), "augment")), "empty");
    mg_cfg_free(cfg);
    cfg = mg_cfg_parse("augment: {policy: [color], p: 1.5}\n", "aug.yaml");
    MG_EXPECT_FATAL(mg_augment_cfg_from(mg_cfg_get(mg_cfg_root(cfg), "augment")), "p");
    mg_cfg_free(cfg);
    cfg = mg_cfg_parse("augment: {policy: [color, cutout], p: 0.25}\n", "aug.yaml");
    mg_augment_cfg c = mg_augment_cfg_from(mg_cfg_get(mg_cfg_root(cfg), "augment"));
    assert_true(c.on && c.color && c.cutout && !c.translation);
    assert_true(c.p == 0.25f);
    assert_false(c.adaptive.on);
    mg_cfg_free(cfg);
    cfg = mg_cfg_parse("augment: {policy: [color], p: 0, adaptive: {target: 0.5, interval: 2, speed: 1000}}\n",
                       "aug.yaml");
    c = mg_augment_cfg_from(mg_cfg_get(mg_cfg_root(cfg), "augment"));
    assert_true(c.adaptive.on && c.adaptive.target == 0.5 && c.adaptive.interval == 2 && c.adaptive.speed == 1000);
    mg_cfg_free(cfg);
    cfg = mg_cfg_parse("augment: {policy: [color], adaptive: {}}\n", "aug.yaml");
    c = mg_augment_cfg_from(mg_cfg_get(mg_cfg_root(cfg), "augment"));
    assert_true(c.adaptive.on && c.adaptive.target == 0.6 && c.adaptive.interval == 4 && c.adaptive.speed == 500000);
    mg_cfg_free(cfg);
    static const char *const bad[][2] = {{"adaptive: {target: 1.5}", "target"},
                                         {"adaptive: {interval: 0}", "interval"},
                                         {"adaptive: {speed: 0}", "speed"},
                                         {"adaptive: {speed: fast}", "speed"},
                                         {"adaptive: 0.6", "adaptive"}};
    for (volatile size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char text[200];
        snprintf(text, sizeof text, "augment: {policy: [color], %s}\n", bad[i][0]);
        cfg = mg_cfg_parse(text, "aug.yaml");
        MG_EXPECT_FATAL(mg_augment_cfg_from(mg_cfg_get(mg_cfg_root(cfg), "augment")), bad[i][1]);
        mg_cfg_free(cfg);
    }
}

static void test_adaptive_probability(void **state)
{
    (void)state;
    const mg_ada_cfg cfg = {.on = true, .target = 0.6, .interval = 4, .speed = 640}; /* batch 16: steps of 0.1 */
    mg_ada a;
    mg_ada_init(&a, 0.05);
    for (int i = 0; i < 3; i++)
        assert_false(mg_ada_observe(&a, &cfg, 1.0, 16)); /* p moves once per interval */
    assert_true(a.p == 0.05);
    assert_true(mg_ada_observe(&a, &cfg, 0.2, 16)); /* r_t = 0.8 > 0.6: up */
    assert_true(fabs(a.p - 0.15) < 1e-12 && fabs(a.last_rt - 0.8) < 1e-12 && a.seen == 0 && a.sign_sum == 0);
    for (int i = 0; i < 4; i++)
        mg_ada_observe(&a, &cfg, 0.6, 16); /* at the target: no change */
    assert_true(fabs(a.p - 0.15) < 1e-12);
    for (int i = 0; i < 8; i++)
        mg_ada_observe(&a, &cfg, -0.5, 16); /* below: down twice, clamped at 0 */
    assert_true(a.p == 0.0);
    for (int i = 0; i < 4 * 12; i++)
        mg_ada_observe(&a, &cfg, 1.0, 16); /* up twelve times, clamped at 1 */
    assert_true(a.p == 1.0);
    const float out[6] = {2.0f, -1.0f, 0.5f, 0.0f, 3.0f, -0.25f};
    assert_true(mg_ada_mean_sign(out, 6) == 1.0f / 6.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backward_is_the_adjoint),
        cmocka_unit_test(test_slices_equal_the_whole_batch),
        cmocka_unit_test(test_identity_and_effects),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_adaptive_probability),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
