/* Gradient accumulation (train.accumulate) and gradient penalties inside the trainer.
 *
 * - On a BatchNorm-free GAN (an MLP and a small convolutional one), accumulate: 4 at
 *   global batch 16 computes the same step as accumulate: 1 at batch 16: the first step's
 *   reduced G and D gradients agree within 1e-5 of their largest element, and after 5
 *   steps every parameter within 1e-4 (float rounding only: the micro-batches are
 *   contiguous parts of the rank's slice, so their union is the same global batch).
 *   Also with the penalties (R1 + R2, and WGAN-GP), whose per-sample steps make them
 *   independent of how the batch is cut up to the difference quotient's rounding, about
 *   u / MG_PENALTY_DELTA (u = 6e-8) times the sums' lengths: seen 6e-4 of D's largest
 *   gradient element, allowed 2e-3. Their parameters after 5 steps are not compared: Adam
 *   turns that rounding, in elements whose gradient is near zero, into whole steps of
 *   either sign (docs/training.md, rank-count equivalence).
 * - A run with penalties logs penalty_d in metrics.jsonl, finite and positive.
 * mpirun-np: 1 2 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_cfg_override.h"
#include "mg_dist.h"
#include "mg_test.h"
#include "mg_testenv.h"
#include "mg_train.h"

static const char *const mlp_config =
    "generator:\n"
    "  input: [4]\n"
    "  init: {kind: normal, std: 0.3}\n"
    "  layers:\n"
    "    - {kind: linear, out: 16, activation: tanh}\n"
    "    - {kind: linear, out: 2}\n"
    "discriminator:\n"
    "  input: [2]\n"
    "  init: {kind: normal, std: 0.3}\n"
    "  layers:\n"
    "    - {kind: linear, out: 16, activation: tanh}\n"
    "    - {kind: linear, out: 16, activation: sigmoid}\n"
    "    - {kind: linear, out: 1}\n"
    "train: {loss: non_saturating, batch: 16, steps: 5, seed: 4, log_interval: 1, sample_interval: 0}\n"
    "optimizer_g: {kind: adam, lr: 1.0e-3, beta1: 0.5, beta2: 0.999}\n"
    "optimizer_d: {kind: adam, lr: 1.0e-3, beta1: 0.5, beta2: 0.999}\n"
    "data: {source: ring8}\n"
    "checkpoint: {interval: 0, keep_last: 1}\n";

static const char *const conv_config =
    "generator:\n"
    "  input: [8]\n"
    "  layers:\n"
    "    - {kind: linear, out: 64, activation: tanh}\n"
    "    - {kind: reshape, shape: [4, 4, 4]}\n"
    "    - {kind: conv_transpose2d, out: 1, kernel: 4, stride: 2, padding: 1}\n"
    "    - {kind: tanh}\n"
    "discriminator:\n"
    "  input: [1, 8, 8]\n"
    "  layers:\n"
    "    - {kind: conv2d, out: 4, kernel: 4, stride: 2, padding: 1, activation: tanh}\n"
    "    - {kind: flatten}\n"
    "    - {kind: linear, out: 1}\n"
    "train: {loss: non_saturating, batch: 16, steps: 5, seed: 6, log_interval: 1, sample_interval: 0}\n"
    "optimizer_g: {kind: adam, lr: 2.0e-4, beta1: 0.5, beta2: 0.999}\n"
    "optimizer_d: {kind: adam, lr: 2.0e-4, beta1: 0.5, beta2: 0.999}\n"
    "data: {source: synthetic}\n"
    "checkpoint: {interval: 0, keep_last: 1}\n";

static char base[256];

static int setup(void **state)
{
    (void)state;
    mg_test_dir_make(base, sizeof base, "accumulate");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mg_test_dir_remove(base);
    return 0;
}

typedef struct {
    float *grad_g, *grad_d, *param_g, *param_d;
    size_t ng, nd;
} run_out;

/* Runs text with the "key=value" overrides (NULL-terminated) for `steps` steps; keeps the
 * first step's reduced gradients and the final parameters. */
static run_out run(const char *text, const char *tag, ...)
{
    char set[400];
    mg_cfg *cfg = mg_cfg_parse(text, tag);
    snprintf(set, sizeof set, "run_dir=%s/%s", base, tag);
    mg_cfg_override(cfg, set);
    va_list ap;
    va_start(ap, tag);
    for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *))
        mg_cfg_override(cfg, s);
    va_end(ap);
    run_out o = {0};
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    const mg_net *G = mg_trainer_G(t), *D = mg_trainer_D(t);
    o.ng = G->n_param;
    o.nd = D->n_param;
    o.grad_g = mg_alloc_floats(o.ng, "g");
    o.grad_d = mg_alloc_floats(o.nd, "d");
    o.param_g = mg_alloc_floats(o.ng, "pg");
    o.param_d = mg_alloc_floats(o.nd, "pd");
    mg_train_result r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_DONE);
    assert_true(r.losses_finite && r.replicas_equal);
    memcpy(o.param_g, G->param, o.ng * sizeof(float));
    memcpy(o.param_d, D->param, o.nd * sizeof(float));
    memcpy(o.grad_g, mg_trainer_last_gradient(t, G), o.ng * sizeof(float));
    memcpy(o.grad_d, mg_trainer_last_gradient(t, D), o.nd * sizeof(float));
    mg_trainer_free(t);
    mg_cfg_free(cfg);
    return o;
}

static void free_out(run_out *o)
{
    mg_free(o->grad_g);
    mg_free(o->grad_d);
    mg_free(o->param_g);
    mg_free(o->param_d);
}

static void compare(const float *a, const float *b, size_t n, double tol, const char *what)
{
    double scale = 0, worst = 0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(a[i]));
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs((double)a[i] - b[i]));
    if (mg_dist_rank() == 0)
        printf("  %-40s largest difference %.2e (largest element %.2e)\n", what, worst, scale);
    if (!(worst <= tol * fmax(scale, 1e-30)))
        fail_msg("%s: accumulate 4 differs from accumulate 1 by %.3g (largest element %.3g)", what, worst, scale);
}

/* One step: its reduced gradients; five steps: the parameters after them. */
static void check_equal(const char *text, const char *name, double tol, const char *extra1, const char *extra2)
{
    char tag1[100], tag4[100];
    snprintf(tag1, sizeof tag1, "%s_k1", name);
    snprintf(tag4, sizeof tag4, "%s_k4", name);
    run_out a = run(text, tag1, "train.steps=1", extra1, extra2, NULL);
    run_out b = run(text, tag4, "train.steps=1", "train.accumulate=4", extra1, extra2, NULL);
    char what[120];
    snprintf(what, sizeof what, "%s: step 1 gradient of G", name);
    compare(a.grad_g, b.grad_g, a.ng, 1e-5, what);
    snprintf(what, sizeof what, "%s: step 1 gradient of D", name);
    compare(a.grad_d, b.grad_d, a.nd, tol, what);
    free_out(&a);
    free_out(&b);
    if (tol > 1e-5) /* penalties: Adam turns their rounding in near-zero gradients into whole steps */
        return;
    a = run(text, tag1, "train.steps=5", extra1, extra2, NULL);
    b = run(text, tag4, "train.steps=5", "train.accumulate=4", extra1, extra2, NULL);
    snprintf(what, sizeof what, "%s: G after 5 steps", name);
    compare(a.param_g, b.param_g, a.ng, 1e-4, what);
    snprintf(what, sizeof what, "%s: D after 5 steps", name);
    compare(a.param_d, b.param_d, a.nd, 1e-4, what);
    free_out(&a);
    free_out(&b);
}

static void test_mlp(void **state) { (void)state; check_equal(mlp_config, "mlp", 1e-5, "train.n_critic=1", NULL); }
static void test_conv(void **state) { (void)state; check_equal(conv_config, "conv", 1e-5, "train.n_critic=2", NULL); }
static void test_mlp_r1_r2(void **state)
{
    (void)state;
    check_equal(mlp_config, "mlp_r1r2", 2e-3, "train.r1_gamma=1", "train.r2_gamma=0.5");
}
static void test_conv_gp(void **state)
{
    (void)state;
    check_equal(conv_config, "conv_gp", 2e-3, "train.loss=wasserstein", "train.gp_lambda=10");
}

/* penalty_d in metrics.jsonl: present, finite, positive */
static void test_penalty_logged(void **state)
{
    (void)state;
    run_out o = run(mlp_config, "logged", "train.r1_gamma=10", "train.r1_every=2", NULL);
    free_out(&o);
    if (mg_dist_rank() == 0) {
        char path[400], line[4096];
        snprintf(path, sizeof path, "%s/logged/metrics.jsonl", base);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        int lines = 0;
        while (fgets(line, sizeof line, f)) {
            const char *p = strstr(line, "\"penalty_d\": ");
            assert_non_null(p);
            const double v = strtod(p + 13, NULL);
            assert_true(isfinite(v) && v > 0);
            lines++;
        }
        fclose(f);
        assert_int_equal(lines, 5);
    }
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mlp),       cmocka_unit_test(test_conv),           cmocka_unit_test(test_mlp_r1_r2),
        cmocka_unit_test(test_conv_gp),   cmocka_unit_test(test_penalty_logged),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    failed = mg_dist_any(failed != 0) ? 1 : 0;
    mg_dist_finalize();
    return failed;
}
