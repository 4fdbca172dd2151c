/* PacGAN packing (train.pack): packing m consecutive NCHW samples along channels is the
 * same memory read with another shape; the G step's gradient flows through a packed D
 * back to G (finite differences on G's parameters, images and vectors); config errors
 * name train.pack and the layer whose group the per-rank batch does not fit; a packed
 * run builds D for m x the sample's channels and trains.
 * mpirun-np: 1 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "mg_cfg_override.h"
#include "mg_dist.h"
#include "mg_loss.h"
#include "mg_test.h"
#include "mg_testenv.h"
#include "mg_train.h"

/* (n, c, h, w) read as (n/m, m*c, h, w): packed input p, channel j*c + ch is sample
 * p*m + j, channel ch, element for element. So D needs no gather. */
static void test_pack_is_a_view(void **state)
{
    (void)state;
    enum { N = 6, C = 2, H = 3, W = 2, M = 3 };
    float x[N * C * H * W], packed[N * C * H * W];
    for (int i = 0; i < N * C * H * W; i++)
        x[i] = (float)i;
    for (int p = 0; p < N / M; p++)
        for (int j = 0; j < M; j++)
            for (int ch = 0; ch < C; ch++)
                for (int k = 0; k < H * W; k++)
                    packed[((p * M * C) + j * C + ch) * H * W + k] = x[((p * M + j) * C + ch) * H * W + k];
    assert_memory_equal(packed, x, sizeof x);
}

static mg_cfg *parse(const char *text) { return mg_cfg_parse(text, "pack.yaml"); }

/* The G step's loss for fixed noise z: non-saturating loss of D over n/pack packed fakes. */
static double g_step_loss(mg_net *G, mg_net *D, const float *z, int n, int pack)
{
    const float *fake = mg_net_forward(G, z, n, MG_TRAIN);
    const float *out = mg_net_forward(D, fake, n / pack, MG_TRAIN);
    return mg_g_loss(MG_LOSS_NONSATURATING, out, n / pack, NULL);
}

/* The trainer's G step (src/train/train.c g_update): D's input gradient over the packed batch
 * is G's output gradient, unchanged. Checked against central differences of the loss. */
static void check_g_gradient(const char *g_yaml, const char *d_yaml, int n, int pack)
{
    mg_cfg *gc = parse(g_yaml), *dc = parse(d_yaml);
    mg_net G, D;
    mg_net_from_cfg(&G, "G", mg_cfg_root(gc), (mg_shape){0, 0, 0}, n);
    mg_net_from_cfg_packed(&D, "D", mg_cfg_root(dc), G.out, pack, n / pack);
    assert_int_equal(D.in.c, pack * G.out.c);
    mg_rng rng;
    mg_rng_init(&rng, 11, MG_STREAM_TEST);
    mg_rng_fill_normal(&rng, G.param, G.n_param, 0.0f, 0.4f);
    mg_rng_fill_normal(&rng, D.param, D.n_param, 0.0f, 0.4f);
    float *z = mg_alloc_floats((size_t)n * mg_shape_size(G.in), "z");
    mg_rng_fill_normal(&rng, z, (size_t)n * mg_shape_size(G.in), 0.0f, 1.0f);
    float dlogit[64];

    mg_net_zero_grad(&G);
    mg_net_zero_grad(&D);
    const float *fake = mg_net_forward(&G, z, n, MG_TRAIN);
    const float *out = mg_net_forward(&D, fake, n / pack, MG_TRAIN);
    mg_g_loss(MG_LOSS_NONSATURATING, out, n / pack, dlogit);
    const float *dfake = mg_net_backward(&D, dlogit, false, true);
    mg_net_backward(&G, dfake, true, false);
    for (size_t i = 0; i < D.n_param; i++)
        assert_true(D.grad[i] == 0.0f); /* D frozen in the G step */

    const float step = 1e-2f;
    for (size_t i = 0; i < G.n_param; i += 1 + G.n_param / 40) {
        float saved = G.param[i];
        G.param[i] = saved + step;
        double lp = g_step_loss(&G, &D, z, n, pack);
        G.param[i] = saved - step;
        double lm = g_step_loss(&G, &D, z, n, pack);
        G.param[i] = saved;
        double num = (lp - lm) / (2.0 * step);
        MG_ASSERT_CLOSE(G.grad[i], num, 1e-4, 2e-2, "G gradient through a packed D");
    }
    mg_free(z);
    mg_net_free(&G);
    mg_net_free(&D);
    mg_cfg_free(gc);
    mg_cfg_free(dc);
}

static void test_g_gradient_through_pack(void **state)
{
    (void)state;
    const char *g_img = "input: [3]\nlayers:\n  - {kind: linear, out: 32, activation: tanh}\n"
                        "  - {kind: reshape, shape: [2, 4, 4]}\n";
    const char *d_img = "input: [2, 4, 4]\nlayers:\n"
                        "  - {kind: conv2d, out: 3, kernel: 3, stride: 1, padding: 1, activation: tanh}\n"
                        "  - {kind: flatten}\n  - {kind: linear, out: 1}\n";
    check_g_gradient(g_img, d_img, 8, 2);
    check_g_gradient(g_img, d_img, 9, 3);
    const char *g_vec = "input: [4]\nlayers:\n  - {kind: linear, out: 8, activation: tanh}\n"
                        "  - {kind: linear, out: 2}\n";
    const char *d_vec = "input: [2]\nlayers:\n  - {kind: linear, out: 8, activation: tanh}\n"
                        "  - {kind: mbstd, group: 2}\n  - {kind: linear, out: 1}\n";
    check_g_gradient(g_vec, d_vec, 8, 2);
}

static void read_cfg(mg_cfg *cfg, int n_ranks)
{
    mg_train_cfg tc;
    mg_train_cfg_read(&tc, cfg, n_ranks);
}

static void test_pack_config(void **state)
{
    (void)state;
    mg_cfg *cfg = mg_cfg_load_file("configs/tiny.yaml");
    mg_cfg_override(cfg, "train.pack=3");
    MG_EXPECT_FATAL(read_cfg(cfg, 1), "--set (train.pack): train.pack 3 does not divide the per-rank batch 16 "
                                      "(train.batch 16 / 1 ranks)");
    mg_cfg_override(cfg, "train.pack=16");
    read_cfg(cfg, 1);
    MG_EXPECT_FATAL(read_cfg(cfg, 2), "train.pack 16 does not divide the per-rank batch 8");
    mg_cfg_override(cfg, "train.pack=0");
    MG_EXPECT_FATAL(read_cfg(cfg, 1), "(train.pack): value 0 out of range");
    mg_cfg_override(cfg, "train.pack=2");
    mg_train_cfg tc;
    mg_train_cfg_read(&tc, cfg, 2);
    assert_int_equal(tc.pack, 2);
    char *text = mg_train_cfg_resolved(&tc, cfg);
    assert_non_null(strstr(text, "  pack: 2\n"));
    mg_free(text);
    mg_cfg_free(cfg);
    /* absent: 1 */
    cfg = mg_cfg_load_file("configs/tiny.yaml");
    mg_train_cfg_read(&tc, cfg, 1);
    assert_int_equal(tc.pack, 1);
    mg_cfg_free(cfg);
}

static void create_trainer(mg_cfg *cfg) { mg_trainer_create(cfg, false, false); }

/* the suite's temporary directory (mg_test_dir_make); each test runs in a folder of it */
static char base[256];

static int setup(void **state)
{
    (void)state;
    mg_test_dir_make(base, sizeof base, "pack");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mg_test_dir_remove(base);
    return 0;
}

/* At build time, before any step: a minibatch-stddev group that does not divide D's
 * per-rank batch (after packing) names the layer and where the batch comes from. */
static void test_trainer_checks_groups(void **state)
{
    (void)state;
    char run_dir[300];
    snprintf(run_dir, sizeof run_dir, "%s/err", base);
    mg_cfg *cfg = mg_test_tiny_cfg(run_dir, NULL, "train.pack=2", "discriminator.layers[2].kind=mbstd",
                                   "discriminator.layers[2].group=3", NULL);
    MG_EXPECT_FATAL(create_trainer(cfg), "D.3.mbstd: needs batches in multiples of 3 (its group), but gets 8 "
                                         "(train.batch 16 / 1 ranks / train.pack 2 = 8 D inputs per rank)");
    mg_cfg_free(cfg);
}

/* A packed run: D is built for pack x 2 features, its parameters and losses stay finite. */
static void test_packed_run(void **state)
{
    (void)state;
    char run_dir[300];
    snprintf(run_dir, sizeof run_dir, "%s/run", base);
    mg_cfg *cfg = mg_test_tiny_cfg(run_dir, NULL, "train.pack=4", "train.steps=30", NULL);
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    const mg_net *D = mg_trainer_D(t);
    assert_int_equal(D->in.c, 8);
    assert_int_equal(D->layers[0].n_param, 16 * 8 + 16);
    mg_train_result r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_DONE);
    assert_true(r.losses_finite);
    assert_true(r.replicas_equal);
    mg_trainer_free(t);
    mg_cfg_free(cfg);
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_is_a_view),      cmocka_unit_test(test_g_gradient_through_pack),
        cmocka_unit_test(test_pack_config),         cmocka_unit_test(test_trainer_checks_groups),
        cmocka_unit_test(test_packed_run),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    failed = mg_dist_any(failed != 0) ? 1 : 0;
    mg_dist_finalize();
    return failed;
}
