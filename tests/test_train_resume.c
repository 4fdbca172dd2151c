/* Checkpoint and resume: 40 steps straight and 20 steps + stop + resume 20 end with
 * bitwise identical parameters and BatchNorm state on the same number of ranks (with
 * n_critic 2, fresh G-step noise and per-rank noise streams, so optimizer moments, step
 * counts, item counters and every rank's RNG state must all survive the checkpoint).
 * The same on HDF5 data (a ring mixture file, 300 samples: batches straddle epochs),
 * with the global and the shard sampler and prefetching on: the loader's position must
 * survive too.
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
#include "mg_test.h"
#include "mg_train.h"


#define RING_FILE "/tmp/mpigan_resume_ring.h5"

/* configs/tiny.yaml with its data line replaced by data (NULL: kept, ring8 in memory). */
static mg_cfg *load_tiny(const char *data)
{
    FILE *f = fopen("configs/tiny.yaml", "rb");
    assert_non_null(f);
    static char text[8192], edited[8400];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    if (!data)
        return mg_cfg_parse(text, "configs/tiny.yaml");
    const char *old = "data: {source: ring8}";
    const char *at = strstr(text, old);
    assert_non_null(at);
    snprintf(edited, sizeof edited, "%.*s%s%s", (int)(at - text), text, data, at + strlen(old));
    return mg_cfg_parse(edited, "tiny.yaml (HDF5 data)");
}

static mg_cfg *config_on(const char *run_dir, const char *extra, const char *data)
{
    mg_cfg *cfg = load_tiny(data);
    char set[300];
    snprintf(set, sizeof set, "run_dir=%s", run_dir);
    mg_cfg_override(cfg, set);
    mg_cfg_override(cfg, "train.steps=40");
    mg_cfg_override(cfg, "train.n_critic=2");
    mg_cfg_override(cfg, "train.g_step_noise=fresh");
    mg_cfg_override(cfg, "train.noise_streams=per_rank");
    mg_cfg_override(cfg, "checkpoint.interval=7");
    if (extra)
        mg_cfg_override(cfg, extra);
    return cfg;
}

static mg_cfg *config(const char *run_dir, const char *extra) { return config_on(run_dir, extra, NULL); }

static uint64_t net_bytes_checksum(const mg_net *n)
{
    uint64_t parts[2] = {mg_checksum(n->param, n->n_param * sizeof(float)),
                         mg_checksum(n->state, n->n_state * sizeof(float))};
    return mg_checksum(parts, sizeof parts);
}

/* 40 steps straight vs 20 + stop + resume 20 on data (NULL: in memory); run dirs named by tag. */
static void check_resume(const char *tag, const char *data)
{
    char dir_a[128], dir_b[128];
    snprintf(dir_a, sizeof dir_a, "/tmp/mpigan_resume_%s_a_np%d", tag, mg_dist_size());
    snprintf(dir_b, sizeof dir_b, "/tmp/mpigan_resume_%s_b_np%d", tag, mg_dist_size());
    mg_test_clean_dir(dir_a);
    mg_test_clean_dir(dir_b);

    mg_cfg *cfg = config_on(dir_a, NULL, data);
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    mg_train_result r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_DONE);
    uint64_t straight_g = net_bytes_checksum(mg_trainer_G(t)), straight_d = net_bytes_checksum(mg_trainer_D(t));
    mg_trainer_free(t);
    mg_cfg_free(cfg);

    cfg = config_on(dir_b, "debug.stop_at_step=20", data);
    t = mg_trainer_create(cfg, false, false);
    r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_STOPPED);
    assert_int_equal(r.step, 20);
    mg_trainer_free(t);
    mg_cfg_free(cfg);

    cfg = config_on(dir_b, NULL, data);
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
        mg_convert_mixture(RING_FILE, MG_MIXTURE_RING, 300, 11, 0);
    mg_dist_barrier();
    check_resume("global", "data: {path: " RING_FILE ", sampler: global}");
    check_resume("shard", "data: {path: " RING_FILE ", sampler: shard}");
}

static void test_signal_stops_with_checkpoint(void **state)
{
    (void)state;
    char dir[128];
    snprintf(dir, sizeof dir, "/tmp/mpigan_signal_np%d", mg_dist_size());
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
        char ckdir[200], path[400];
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
        cmocka_unit_test(test_signal_stops_with_checkpoint),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    failed = mg_dist_any(failed != 0) ? 1 : 0;
    mg_dist_finalize();
    return failed;
}
