/* configs/ring8.yaml, narrowed (64 units) and shortened (300 steps at batch 100) so it
 * runs in seconds: D and G losses stay finite throughout and end
 * in a sane range, and the replicas agree (checked every 50 steps).
 * mpirun-np: 2 */
#include <math.h>
#include <stdio.h>

#include "mg_cfg_override.h"
#include "mg_dist.h"
#include "mg_test.h"
#include "mg_testenv.h"
#include "mg_train.h"

/* the suite's temporary directory (mg_test_dir_make); each test runs in a folder of it */
static char base[256];

static int setup(void **state)
{
    (void)state;
    mg_test_dir_make(base, sizeof base, "ring8");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mg_test_dir_remove(base);
    return 0;
}

static void test_ring8_stays_finite(void **state)
{
    (void)state;
    mg_cfg *cfg = mg_cfg_load_file("configs/ring8.yaml");
    char set[300];
    for (int i = 0; i < 3; i++) {
        snprintf(set, sizeof set, "generator.layers[%d].out=64", i);
        mg_cfg_override(cfg, set);
        snprintf(set, sizeof set, "discriminator.layers[%d].out=64", i);
        mg_cfg_override(cfg, set);
    }
    mg_cfg_override(cfg, "train.steps=300");
    mg_cfg_override(cfg, "train.batch=100");
    mg_cfg_override(cfg, "train.log_interval=50");
    mg_cfg_override(cfg, "optimizer_g.lr=1e-3");
    mg_cfg_override(cfg, "optimizer_d.lr=1e-3");
    mg_cfg_override(cfg, "debug.check_replicas=50");
    snprintf(set, sizeof set, "run_dir=%s", base);
    mg_cfg_override(cfg, set);
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    mg_train_result r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_DONE);
    assert_int_equal(r.step, 300);
    assert_true(r.losses_finite);
    assert_int_equal(r.skipped_d + r.skipped_g, 0);
    assert_true(r.replicas_equal);
    if (!(r.loss_d > 0 && r.loss_d < 10 && r.loss_g > 0 && r.loss_g < 20))
        fail_msg("final losses D %g G %g out of a sane range", r.loss_d, r.loss_g);
    mg_trainer_free(t);
    mg_cfg_free(cfg);
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring8_stays_finite),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    failed = mg_dist_any(failed != 0) ? 1 : 0;
    mg_dist_finalize();
    return failed;
}
