/* Checkpoint and resume: 40 steps straight and 20 steps + stop + resume 20 end with
 * bitwise identical parameters and BatchNorm state on the same number of ranks (with
 * n_critic 2, fresh G-step noise and per-rank noise streams, so optimizer moments, step
 * counts, item counters and every rank's RNG state must all survive the checkpoint).
 * Also: SIGUSR1 makes the run finish its step, write a checkpoint and stop cleanly.
 * mpirun-np: 1 2 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_cfg_override.h"
#include "mg_checkpoint.h"
#include "mg_dist.h"
#include "mg_test.h"
#include "mg_train.h"

static void clean_dir(const char *dir)
{
    if (mg_dist_rank() == 0) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
    }
    mg_dist_barrier();
}

static mg_cfg *config(const char *run_dir, const char *extra)
{
    mg_cfg *cfg = mg_cfg_load_file("configs/tiny.yaml");
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

static uint64_t net_bytes_checksum(const mg_net *n)
{
    uint64_t parts[2] = {mg_checksum(n->param, n->n_param * sizeof(float)),
                         mg_checksum(n->state, n->n_state * sizeof(float))};
    return mg_checksum(parts, sizeof parts);
}

static void test_resume_is_bitwise_identical(void **state)
{
    (void)state;
    char dir_a[128], dir_b[128];
    snprintf(dir_a, sizeof dir_a, "/tmp/mpigan_resume_a_np%d", mg_dist_size());
    snprintf(dir_b, sizeof dir_b, "/tmp/mpigan_resume_b_np%d", mg_dist_size());
    clean_dir(dir_a);
    clean_dir(dir_b);

    mg_cfg *cfg = config(dir_a, NULL);
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    mg_train_result r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_DONE);
    uint64_t straight_g = net_bytes_checksum(mg_trainer_G(t)), straight_d = net_bytes_checksum(mg_trainer_D(t));
    mg_trainer_free(t);
    mg_cfg_free(cfg);

    cfg = config(dir_b, "debug.stop_at_step=20");
    t = mg_trainer_create(cfg, false, false);
    r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_STOPPED);
    assert_int_equal(r.step, 20);
    mg_trainer_free(t);
    mg_cfg_free(cfg);

    cfg = config(dir_b, NULL);
    t = mg_trainer_create(cfg, true, false);
    r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_DONE);
    assert_int_equal(r.step, 40);
    assert_true(r.replicas_equal);
    int differ = net_bytes_checksum(mg_trainer_G(t)) != straight_g || net_bytes_checksum(mg_trainer_D(t)) != straight_d;
    mg_trainer_free(t);
    mg_cfg_free(cfg);
    if (mg_dist_any(differ))
        fail_msg("resumed run differs from the uninterrupted run");
}

static void test_signal_stops_with_checkpoint(void **state)
{
    (void)state;
    char dir[128];
    snprintf(dir, sizeof dir, "/tmp/mpigan_signal_np%d", mg_dist_size());
    clean_dir(dir);
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
        cmocka_unit_test(test_signal_stops_with_checkpoint),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    failed = mg_dist_any(failed != 0) ? 1 : 0;
    mg_dist_finalize();
    return failed;
}
