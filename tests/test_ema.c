/* Generator EMA: the update over a known parameter sequence equals the closed form
 * d^(t-s) G_s + (1-d) Σ_{k=s+1..t} d^(t-k) G_k (and plain copies before the start);
 * BatchNorm state is copied; swapping the averaged weights in and out is bitwise
 * neutral; config errors. Training with train.ema: 40 steps straight and 20 + stop +
 * resume 20 end with bitwise identical G, D and EMA (so the EMA round-trips through the
 * checkpoint), the EMA differs from G, and the final checkpoint's /G_ema equals the
 * trainer's EMA. The sample grids written during training show the EMA generator: the
 * last one equals `mpigan sample --ema` of the final checkpoint byte for byte (and not
 * the plain G's). `--ema` on a checkpoint without EMA is a clear error.
 * mpirun-np: 1 2 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_cfg_override.h"
#include "mg_checkpoint.h"
#include "mg_dist.h"
#include "mg_ema.h"
#include "mg_png_grid.h"
#include "mg_sample.h"
#include "mg_test.h"
#include "mg_testenv.h"
#include "mg_train.h"

static const char net_yaml[] = "g:\n"
                               "  input: [3]\n"
                               "  layers:\n"
                               "    - {kind: linear, out: 5}\n"
                               "    - {kind: batchnorm}\n"
                               "    - {kind: linear, out: 2}\n";

static void build_net(mg_net *net, mg_cfg **cfg)
{
    *cfg = mg_cfg_parse(net_yaml, "ema test net");
    mg_net_from_cfg(net, "G", mg_cfg_require(mg_cfg_root(*cfg), "g"), (mg_shape){0, 0, 0}, 4);
}

/* G's parameter i after k updates: an arbitrary known sequence */
static double seq(long k, size_t i) { return sin(0.37 * (double)k + 0.11 * (double)i) + 0.01 * (double)k; }

static void check_closed_form(float decay, long start, long steps)
{
    mg_cfg *cfg;
    mg_net net;
    build_net(&net, &cfg);
    for (size_t i = 0; i < net.n_param; i++)
        net.param[i] = (float)seq(0, i);
    mg_ema e;
    mg_ema_cfg ec = {.on = true, .decay = decay, .start = start};
    mg_ema_init(&e, &ec, &net);
    for (long k = 1; k <= steps; k++) {
        for (size_t i = 0; i < net.n_param; i++)
            net.param[i] = (float)seq(k, i);
        for (size_t i = 0; i < net.n_state; i++)
            net.state[i] = (float)(k * 100 + (long)i);
        mg_ema_update(&e, &net, k);
        /* state is copied, every update */
        assert_memory_equal(e.state, net.state, net.n_state * sizeof(float));
        if (k <= start)
            assert_memory_equal(e.param, net.param, net.n_param * sizeof(float));
    }
    const double d = decay;
    const long s = start < steps ? start : steps;
    for (size_t i = 0; i < net.n_param; i++) {
        /* the values EMA saw are the float-rounded ones */
        double want = pow(d, (double)(steps - s)) * (double)(float)seq(s, i);
        for (long k = s + 1; k <= steps; k++)
            want += (1 - d) * pow(d, (double)(steps - k)) * (double)(float)seq(k, i);
        MG_ASSERT_CLOSE(e.param[i], want, 2e-6, 2e-5, "EMA vs closed form");
    }
    mg_ema_free(&e);
    mg_net_free(&net);
    mg_cfg_free(cfg);
}

static void test_closed_form(void **state)
{
    (void)state;
    check_closed_form(0.9f, 0, 50);
    check_closed_form(0.99f, 7, 200);
    check_closed_form(0.5f, 3, 3);   /* never averaged: a copy of G */
    check_closed_form(0.999f, 0, 30);
}

static void test_constant_parameter_stays_exact_and_swap_is_neutral(void **state)
{
    (void)state;
    mg_cfg *cfg;
    mg_net net;
    build_net(&net, &cfg);
    for (size_t i = 0; i < net.n_param; i++)
        net.param[i] = 0.1f * (float)i - 0.7f;
    mg_ema e;
    mg_ema_cfg ec = {.on = true, .decay = 0.999f, .start = 0};
    mg_ema_init(&e, &ec, &net);
    for (long k = 1; k <= 100; k++)
        mg_ema_update(&e, &net, k);
    assert_memory_equal(e.param, net.param, net.n_param * sizeof(float));

    net.param[0] += 1.0f;
    mg_ema_update(&e, &net, 101);
    float *g = malloc(net.n_param * sizeof(float)), *a = malloc(net.n_param * sizeof(float));
    memcpy(g, net.param, net.n_param * sizeof(float));
    memcpy(a, e.param, net.n_param * sizeof(float));
    mg_ema_swap(&e, &net);
    assert_memory_equal(net.param, a, net.n_param * sizeof(float));
    assert_memory_equal(e.param, g, net.n_param * sizeof(float));
    mg_ema_swap(&e, &net);
    assert_memory_equal(net.param, g, net.n_param * sizeof(float));
    assert_memory_equal(e.param, a, net.n_param * sizeof(float));
    free(g);
    free(a);
    mg_ema_free(&e);
    mg_net_free(&net);
    mg_cfg_free(cfg);
}

static void expect_cfg_error(const char *yaml, const char *substring)
{
    mg_cfg *cfg = mg_cfg_parse(yaml, "ema.yaml");
    MG_EXPECT_FATAL(mg_ema_cfg_from(mg_cfg_get(mg_cfg_root(cfg), "ema")), substring);
    mg_cfg_free(cfg);
}

static void test_cfg(void **state)
{
    (void)state;
    mg_cfg *cfg = mg_cfg_parse("ema: {decay: 0.99, start: 10}\n", "ema.yaml");
    mg_ema_cfg c = mg_ema_cfg_from(mg_cfg_get(mg_cfg_root(cfg), "ema"));
    assert_true(c.on);
    assert_true(c.decay == 0.99f);
    assert_int_equal(c.start, 10);
    mg_cfg_free(cfg);
    cfg = mg_cfg_parse("other: 1\n", "ema.yaml");
    c = mg_ema_cfg_from(mg_cfg_get(mg_cfg_root(cfg), "ema"));
    assert_false(c.on);
    mg_cfg_free(cfg);
    expect_cfg_error("ema: {decay: 1.0}\n", "strictly between 0 and 1");
    expect_cfg_error("ema: {decay: 0}\n", "strictly between 0 and 1");
    expect_cfg_error("ema: {decay: 0.99999999999}\n", "strictly between 0 and 1");
    expect_cfg_error("ema: 0.999\n", "must be a mapping");
    expect_cfg_error("ema: {start: -1}\n", "ema.start");
}

/* ---- training ---- */


/* the suite's temporary directory (mg_test_dir_make); each test runs in a folder of it */
static char base[256];

static int setup(void **state)
{
    (void)state;
    mg_test_dir_make(base, sizeof base, "ema");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mg_test_dir_remove(base);
    return 0;
}

static mg_cfg *config(const char *run_dir, const char *extra, bool ema)
{
    mg_cfg *cfg = mg_test_tiny_cfg(run_dir, NULL, "train.steps=40", "train.n_critic=2", "train.g_step_noise=fresh",
                                   "train.noise_streams=per_rank", "checkpoint.interval=7", NULL);
    if (ema) {
        mg_cfg_override(cfg, "train.ema.decay=0.9");
        mg_cfg_override(cfg, "train.ema.start=5");
    }
    if (extra)
        mg_cfg_override(cfg, extra);
    return cfg;
}

static uint64_t bytes(const float *p, size_t n) { return mg_checksum(p, n * sizeof(float)); }

static uint64_t run_checksum(const mg_trainer *t)
{
    const mg_net *G = mg_trainer_G(t), *D = mg_trainer_D(t);
    const mg_ema *e = mg_trainer_ema(t);
    uint64_t parts[6] = {bytes(G->param, G->n_param), bytes(G->state, G->n_state), bytes(D->param, D->n_param),
                         bytes(D->state, D->n_state), bytes(e->param, e->n_param), bytes(e->state, e->n_state)};
    return mg_checksum(parts, sizeof parts);
}

static void test_resume_with_ema_is_bitwise_identical(void **state)
{
    (void)state;
    char dir_a[300], dir_b[300];
    snprintf(dir_a, sizeof dir_a, "%s/ema_a", base);
    snprintf(dir_b, sizeof dir_b, "%s/ema_b", base);
    mg_test_clean_dir(dir_a);
    mg_test_clean_dir(dir_b);

    mg_cfg *cfg = config(dir_a, NULL, true);
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    mg_train_result r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_DONE);
    assert_true(r.replicas_equal);
    uint64_t straight = run_checksum(t);
    const mg_net *G = mg_trainer_G(t);
    const mg_ema *e = mg_trainer_ema(t);
    assert_non_null(e);
    /* the average lags G: it must differ */
    assert_true(memcmp(e->param, G->param, G->n_param * sizeof(float)) != 0);
    /* every rank holds the same average */
    assert_true(mg_dist_all_equal_u64(bytes(e->param, e->n_param)));
    /* the final checkpoint's /G_ema is the trainer's EMA, bit for bit (the file is
     * complete once the run returns; every rank reads it, so a failure is everyone's) */
    {
        char ckdir[400], path[600];
        snprintf(ckdir, sizeof ckdir, "%s/checkpoints", dir_a);
        mg_dist_barrier();
        assert_true(mg_ckpt_latest(ckdir, path, sizeof path));
        assert_true(mg_ckpt_has_net(path, "G_ema"));
        mg_net copy;
        mg_net_from_cfg(&copy, "G", mg_cfg_require(mg_cfg_root(cfg), "generator"), (mg_shape){0, 0, 0}, 1);
        mg_ckpt_read_net(path, "G_ema", &copy);
        assert_memory_equal(copy.param, e->param, e->n_param * sizeof(float));
        assert_memory_equal(copy.state, e->state, e->n_state * sizeof(float));
        mg_net_free(&copy);
    }
    mg_trainer_free(t);
    mg_cfg_free(cfg);

    cfg = config(dir_b, "debug.stop_at_step=20", true);
    t = mg_trainer_create(cfg, false, false);
    r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_STOPPED);
    mg_trainer_free(t);
    mg_cfg_free(cfg);

    cfg = config(dir_b, NULL, true);
    t = mg_trainer_create(cfg, true, false);
    r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_DONE);
    assert_int_equal(r.step, 40);
    int differ = run_checksum(t) != straight;
    mg_trainer_free(t);
    mg_cfg_free(cfg);
    if (mg_dist_any(differ))
        fail_msg("resumed run with EMA differs from the uninterrupted run");
}

/* Off by default: no /G_ema; --ema (sample) on such a checkpoint is a clear error. */
static void test_no_ema_checkpoint(void **state)
{
    (void)state;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/ema_off", base);
    mg_test_clean_dir(dir);
    mg_cfg *cfg = config(dir, "train.steps=3", false);
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    assert_null(mg_trainer_ema(t));
    assert_int_equal(mg_trainer_run(t).status, MG_TRAIN_DONE);
    mg_trainer_free(t);
    mg_cfg_free(cfg);
    char ckdir[400], path[600];
    snprintf(ckdir, sizeof ckdir, "%s/checkpoints", dir);
    assert_true(mg_ckpt_latest(ckdir, path, sizeof path));
    assert_false(mg_ckpt_has_net(path, "G_ema"));
    mg_shape shape;
    MG_EXPECT_FATAL(mg_sample_generate_from(path, "G_ema", 4, 1, &shape), "no EMA generator");
    float *x = mg_sample_generate_from(path, "G", 4, 1, &shape);
    assert_int_equal(shape.c, 2);
    mg_free(x);
    mg_dist_barrier();
}

/* A run resumed with train.ema from a checkpoint without one starts the EMA from G. */
static void test_ema_turned_on_at_resume(void **state)
{
    (void)state;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/ema_late", base);
    mg_test_clean_dir(dir);
    mg_cfg *cfg = config(dir, "train.steps=5", false);
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    assert_int_equal(mg_trainer_run(t).status, MG_TRAIN_DONE);
    mg_trainer_free(t);
    mg_cfg_free(cfg);
    cfg = config(dir, "train.steps=6", true);
    t = mg_trainer_create(cfg, true, false);
    const mg_ema *e = mg_trainer_ema(t);
    const mg_net *G = mg_trainer_G(t);
    assert_memory_equal(e->param, G->param, G->n_param * sizeof(float));
    assert_int_equal(mg_trainer_run(t).status, MG_TRAIN_DONE);
    mg_trainer_free(t);
    mg_cfg_free(cfg);
}

static const char image_config[] =
    "generator:\n"
    "  input: [8]\n"
    "  init: {kind: normal, std: 0.2, bn_std: 0.02}\n"
    "  layers:\n"
    "    - {kind: linear, out: 72, bias: false}\n"
    "    - {kind: batchnorm}\n"
    "    - {kind: relu}\n"
    "    - {kind: reshape, shape: [8, 3, 3]}\n"
    "    - {kind: conv_transpose2d, out: 4, kernel: 4, stride: 2, padding: 1, activation: relu}\n"
    "    - {kind: conv_transpose2d, out: 1, kernel: 4, stride: 2, padding: 1, activation: tanh}\n"
    "discriminator:\n"
    "  input: [1, 12, 12]\n"
    "  layers:\n"
    "    - {kind: conv2d, out: 4, kernel: 4, stride: 2, padding: 1, activation: leaky_relu}\n"
    "    - {kind: flatten}\n"
    "    - {kind: linear, out: 1}\n"
    "train: {loss: non_saturating, batch: 8, steps: 12, seed: 5, log_interval: 6, sample_interval: 6,\n"
    "        ema: {decay: 0.8, start: 2}}\n"
    "optimizer_g: {kind: adam, lr: 1.0e-2, beta1: 0.5}\n"
    "optimizer_d: {kind: adam, lr: 1.0e-2, beta1: 0.5}\n"
    "data: {source: synthetic}\n"
    "checkpoint: {interval: 0}\n";

static char *slurp(const char *path, long *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot read %s", path);
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)*size + 1);
    assert_int_equal(fread(buf, 1, (size_t)*size, f), (size_t)*size);
    fclose(f);
    return buf;
}

static bool same_file(const char *a, const char *b)
{
    long na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    bool same = na == nb && !memcmp(x, y, (size_t)na);
    free(x);
    free(y);
    return same;
}

static void test_training_grid_shows_the_ema(void **state)
{
    (void)state;
    char dir[300], set[400];
    snprintf(dir, sizeof dir, "%s/ema_grid", base);
    mg_test_clean_dir(dir);
    mg_cfg *cfg = mg_cfg_parse(image_config, "ema image config");
    snprintf(set, sizeof set, "run_dir=%s", dir);
    mg_cfg_override(cfg, set);
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    assert_int_equal(mg_trainer_run(t).status, MG_TRAIN_DONE);
    mg_trainer_free(t);
    mg_cfg_free(cfg);
    bool shows_ema = true;
    if (mg_dist_rank() == 0) {
        char ckpt[300], grid[300], redrawn[300], plain[300];
        snprintf(ckpt, sizeof ckpt, "%s/checkpoints/ckpt_000000012.h5", dir);
        snprintf(grid, sizeof grid, "%s/samples/step_12.png", dir);
        snprintf(redrawn, sizeof redrawn, "%s/redrawn_ema.png", dir);
        snprintf(plain, sizeof plain, "%s/redrawn_g.png", dir);
        mg_shape shape;
        float *x = mg_sample_generate_from(ckpt, "G_ema", 64, 5, &shape);
        mg_png_grid_write(redrawn, x, 64, shape.c, shape.h, shape.w);
        mg_free(x);
        x = mg_sample_generate_from(ckpt, "G", 64, 5, &shape);
        mg_png_grid_write(plain, x, 64, shape.c, shape.h, shape.w);
        mg_free(x);
        shows_ema = same_file(grid, redrawn) && !same_file(grid, plain);
    }
    /* one verdict for all ranks: a failure on rank 0 alone must not leave the others waiting */
    if (mg_dist_any(!shows_ema))
        fail_msg("the training grid is not the EMA generator's (sample --ema of the final checkpoint)");
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_closed_form),
        cmocka_unit_test(test_constant_parameter_stays_exact_and_swap_is_neutral),
        cmocka_unit_test(test_cfg),
        cmocka_unit_test(test_resume_with_ema_is_bitwise_identical),
        cmocka_unit_test(test_no_ema_checkpoint),
        cmocka_unit_test(test_ema_turned_on_at_resume),
        cmocka_unit_test(test_training_grid_shows_the_ema),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    failed = mg_dist_any(failed != 0) ? 1 : 0;
    mg_dist_finalize();
    return failed;
}
