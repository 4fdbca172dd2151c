/* Checkpoint and resume: 40 steps straight and 20 steps + stop + resume 20 end with
 * bitwise identical parameters and BatchNorm state on the same number of ranks (with
 * n_critic 2, fresh G-step noise and per-rank noise streams, so optimizer moments, step
 * counts, item counters and every rank's RNG state must all survive the checkpoint).
 * The same on HDF5 data (a ring mixture file, 300 samples: batches straddle epochs),
 * with the global and the shard sampler and prefetching on: the loader's position must
 * survive too. And with spectral normalisation in D and G: its u, v vectors are layer state
 * that the checkpoint must carry.
 * Both again with class-conditional networks (G: a class embedding and conditional BN; D:
 * conditional BN; fake labels from the data's frequencies), whose real labels come with the
 * loader's samples and whose fake labels come from the per-rank noise streams.
 * Also: SIGUSR1 makes the run finish its step, write a checkpoint and stop cleanly.
 * mpirun-np: 1 2 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_cfg_override.h"
#include "mg_checkpoint.h"
#include "mg_convert.h"
#include "mg_dist.h"
#include "mg_h5schema.h"
#include "mg_sample.h"
#include "mg_test.h"
#include "mg_testenv.h"
#include "mg_train.h"


/* the suite's temporary directory (mg_test_dir_make); each test runs in a folder of it */
static char base[256], ring_file[300];

static int setup(void **state)
{
    (void)state;
    mg_test_dir_make(base, sizeof base, "resume");
    snprintf(ring_file, sizeof ring_file, "%s/ring.h5", base);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mg_test_dir_remove(base);
    return 0;
}

/* Overrides making tiny.yaml class-conditional on ring8's 8 modes; applied when set. */
static const char *const conditional_sets[] = {
    "generator.classes=8", "generator.condition.kind=concat", "generator.condition.dim=3",
    "generator.layers[1].conditional=true", "discriminator.classes=8", "discriminator.layers[2].conditional=true",
    "train.fake_labels=data", NULL};
static bool conditional;

/* tiny.yaml as the resume tests run it, on data (a data line; NULL: ring8 in memory),
 * with the overrides of sets (NULL-terminated; NULL: none) */
static mg_cfg *config_with(const char *run_dir, const char *extra, const char *data, const char *const *sets)
{
    mg_cfg *cfg = mg_test_tiny_cfg(run_dir, data, "train.steps=40", "train.n_critic=2", "train.g_step_noise=fresh",
                                   "train.noise_streams=per_rank", "checkpoint.interval=7", NULL);
    for (const char *const *set = conditional_sets; conditional && *set; set++)
        mg_cfg_override(cfg, *set);
    if (extra)
        mg_cfg_override(cfg, extra);
    for (; sets && *sets; sets++)
        mg_cfg_override(cfg, *sets);
    return cfg;
}

static mg_cfg *config_on(const char *run_dir, const char *extra, const char *data)
{
    return config_with(run_dir, extra, data, NULL);
}

static mg_cfg *config(const char *run_dir, const char *extra) { return config_on(run_dir, extra, NULL); }

/* the overrides of the current check_resume (NULL: none) */
static const char *const *resume_sets;

static uint64_t net_bytes_checksum(const mg_net *n)
{
    uint64_t parts[2] = {mg_checksum(n->param, n->n_param * sizeof(float)),
                         mg_checksum(n->state, n->n_state * sizeof(float))};
    return mg_checksum(parts, sizeof parts);
}

/* 40 steps straight vs 20 + stop + resume 20 on data (NULL: in memory); run dirs named by tag. */
static void check_resume(const char *tag, const char *data)
{
    char dir_a[300], dir_b[300];
    snprintf(dir_a, sizeof dir_a, "%s/resume_%s_a", base, tag);
    snprintf(dir_b, sizeof dir_b, "%s/resume_%s_b", base, tag);
    mg_test_clean_dir(dir_a);
    mg_test_clean_dir(dir_b);

    mg_cfg *cfg = config_with(dir_a, NULL, data, resume_sets);
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    mg_train_result r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_DONE);
    uint64_t straight_g = net_bytes_checksum(mg_trainer_G(t)), straight_d = net_bytes_checksum(mg_trainer_D(t));
    mg_trainer_free(t);
    mg_cfg_free(cfg);

    cfg = config_with(dir_b, "debug.stop_at_step=20", data, resume_sets);
    t = mg_trainer_create(cfg, false, false);
    r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_STOPPED);
    assert_int_equal(r.step, 20);
    mg_trainer_free(t);
    mg_cfg_free(cfg);

    cfg = config_with(dir_b, NULL, data, resume_sets);
    t = mg_trainer_create(cfg, true, false);
    r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_DONE);
    assert_int_equal(r.step, 40);
    assert_true(r.replicas_equal);
    int differ = net_bytes_checksum(mg_trainer_G(t)) != straight_g || net_bytes_checksum(mg_trainer_D(t)) != straight_d;
    mg_trainer_free(t);
    mg_cfg_free(cfg);
    if (mg_dist_any(differ))
        fail_msg("resumed run (%s data) differs from the uninterrupted run", tag);
}

static void test_resume_is_bitwise_identical(void **state)
{
    (void)state;
    check_resume("memory", NULL);
}

static void test_resume_on_hdf5_is_bitwise_identical(void **state)
{
    (void)state;
    if (mg_dist_rank() == 0)
        mg_convert_mixture(ring_file, MG_MIXTURE_RING, 300, 11, 0);
    mg_dist_barrier();
    char data[400];
    snprintf(data, sizeof data, "data: {path: %s, sampler: global}", ring_file);
    check_resume("global", data);
    snprintf(data, sizeof data, "data: {path: %s, sampler: shard}", ring_file);
    check_resume("shard", data);
}

static void test_resume_with_spectral_norm_is_bitwise_identical(void **state)
{
    (void)state;
    static const char *const sets[] = {"discriminator.layers[0].sn=true", "discriminator.layers[1].sn=true",
                                       "discriminator.layers[4].sn=true", "discriminator.layers[4].sn_iters=3",
                                       "generator.layers[3].sn=true", NULL};
    resume_sets = sets;
    check_resume("sn", NULL);
    resume_sets = NULL;
}

static void test_resume_conditional_is_bitwise_identical(void **state)
{
    (void)state;
    conditional = true;
    check_resume("cond_memory", NULL);
    if (mg_dist_rank() == 0) { /* sampling by class from the conditional checkpoint */
        char ckpt[400];
        snprintf(ckpt, sizeof ckpt, "%s/resume_cond_memory_a/checkpoints/ckpt_000000040.h5", base);
        assert_int_equal(mg_sample_classes(ckpt), 8);
        mg_shape shape;
        float *x = mg_sample_generate_class(ckpt, "G", 5, 1, 7, &shape);
        assert_int_equal(shape.c, 2);
        mg_free(x);
        MG_EXPECT_FATAL(mg_sample_generate_class(ckpt, "G", 5, 1, 8, &shape),
                        "--class 8, but the generator has 8 classes (0 .. 7)");
        snprintf(ckpt, sizeof ckpt, "%s/resume_memory_a/checkpoints/ckpt_000000040.h5", base);
        assert_int_equal(mg_sample_classes(ckpt), 0);
        MG_EXPECT_FATAL(mg_sample_generate_class(ckpt, "G", 5, 1, 0, &shape), "a generator without classes");
    }
    if (mg_dist_rank() == 0)
        mg_convert_mixture(ring_file, MG_MIXTURE_RING, 300, 11, 0); /* labels: the mode indices */
    mg_dist_barrier();
    char data[400];
    snprintf(data, sizeof data, "data: {path: %s, sampler: global}", ring_file);
    check_resume("cond_global", data);
    snprintf(data, sizeof data, "data: {path: %s, sampler: shard}", ring_file);
    check_resume("cond_shard", data);
    conditional = false;
}

/* Conditional networks on data without labels, or with another class count, or with
 * PacGAN packs: clear errors naming the file or key, on every rank alike. */
static void test_conditional_bad_input(void **state)
{
    (void)state;
    char dir[300], plain[320], data[400];
    snprintf(dir, sizeof dir, "%s/cond_errors", base);
    snprintf(plain, sizeof plain, "%s/unlabelled.h5", base);
    if (mg_dist_rank() == 0) { /* 2-D vectors without a labels dataset */
        mg_data_info info = {.kind = MG_DATA_VECTORS, .n = 64, .c = 2, .h = 1, .w = 1, .has_labels = false};
        mg_h5_writer *w = mg_h5_create(plain, &info, NULL);
        float x[128];
        for (int i = 0; i < 128; i++)
            x[i] = (float)(i % 7) / 7.0f - 0.5f;
        mg_h5_write_rows(w, 0, 64, x, NULL);
        mg_h5_writer_close(w);
    }
    mg_dist_barrier();
    conditional = true;
    snprintf(data, sizeof data, "data: {path: %s}", plain);
    mg_cfg *cfg = config_on(dir, NULL, data);
    MG_EXPECT_FATAL(mg_trainer_create(cfg, false, false), "unlabelled.h5: the data file has no labels");
    mg_cfg_free(cfg);
    cfg = config_on(dir, "data.source=synthetic", NULL);
    MG_EXPECT_FATAL(mg_trainer_create(cfg, false, false), "this source has no labels");
    mg_cfg_free(cfg);
    cfg = config_on(dir, "generator.classes=10", NULL);
    MG_EXPECT_FATAL(mg_trainer_create(cfg, false, false), "G has 10 classes, the in-memory source has 8");
    mg_cfg_free(cfg);
    cfg = config_on(dir, "train.pack=2", NULL);
    MG_EXPECT_FATAL(mg_trainer_create(cfg, false, false), "a class-conditional D cannot judge packs");
    mg_cfg_free(cfg);
    cfg = config_on(dir, "train.fake_labels=balanced", NULL);
    MG_EXPECT_FATAL(mg_trainer_create(cfg, false, false), "train.fake_labels");
    mg_cfg_free(cfg);
    conditional = false;
}

static void test_signal_stops_with_checkpoint(void **state)
{
    (void)state;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/signal", base);
    mg_test_clean_dir(dir);
    mg_train_install_signal_handlers();
    if (mg_dist_rank() == 0)
        raise(SIGUSR1); /* only one rank gets it: the others learn through the reduction */
    mg_cfg *cfg = config(dir, NULL);
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    mg_train_result r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_STOPPED);
    assert_int_equal(r.step, 1);
    mg_trainer_free(t);
    mg_cfg_free(cfg);
    if (mg_dist_rank() == 0) {
        char ckdir[400], path[600];
        snprintf(ckdir, sizeof ckdir, "%s/checkpoints", dir);
        assert_true(mg_ckpt_latest(ckdir, path, sizeof path));
        assert_non_null(strstr(path, "ckpt_000000001.h5"));
    }
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_is_bitwise_identical),
        cmocka_unit_test(test_resume_on_hdf5_is_bitwise_identical),
        cmocka_unit_test(test_resume_with_spectral_norm_is_bitwise_identical),
        cmocka_unit_test(test_resume_conditional_is_bitwise_identical),
        cmocka_unit_test(test_conditional_bad_input),
        cmocka_unit_test(test_signal_stops_with_checkpoint),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    failed = mg_dist_any(failed != 0) ? 1 : 0;
    mg_dist_finalize();
    return failed;
}
