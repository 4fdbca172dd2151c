/* NaN policy: a NaN injected into D's gradient (on the last rank) is seen by every rank
 * after the reduction. skip: the update is skipped and training goes on with finite
 * parameters; stop: the run ends with MG_TRAIN_NAN, `mpigan train` exits 3, and the last
 * good checkpoint stays intact.
 * mpirun-np: 2 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_cfg_override.h"
#include "mg_checkpoint.h"
#include "mg_dist.h"
#include "mg_test.h"
#include "mg_testenv.h"
#include "mg_train.h"

/* the suite's temporary directory (mg_test_dir_make); each test runs in a folder of it */
static char base[256];

static int setup(void **state)
{
    (void)state;
    mg_test_dir_make(base, sizeof base, "nan");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mg_test_dir_remove(base);
    return 0;
}

/* tiny.yaml in base/name with NaN policy policy and a NaN injected at step 5 */
static mg_cfg *config(const char *name, const char *policy)
{
    char run_dir[300], set[300];
    snprintf(run_dir, sizeof run_dir, "%s/%s", base, name);
    snprintf(set, sizeof set, "train.nan_policy=%s", policy);
    return mg_test_tiny_cfg(run_dir, NULL, set, "train.steps=10", "checkpoint.interval=2",
                            "debug.inject_nan_at_step=5", NULL);
}

static bool all_finite(const mg_net *n)
{
    for (size_t i = 0; i < n->n_param; i++)
        if (!isfinite(n->param[i]))
            return false;
    return true;
}

static void test_skip(void **state)
{
    (void)state;
    mg_cfg *cfg = config("nan_skip", "skip");
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    mg_train_result r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_DONE);
    assert_int_equal(r.step, 10);
    assert_int_equal(r.skipped_d, 1);
    assert_int_equal(r.skipped_g, 0);
    assert_true(all_finite(mg_trainer_G(t)) && all_finite(mg_trainer_D(t)));
    assert_true(r.replicas_equal);
    mg_trainer_free(t);
    mg_cfg_free(cfg);
}

static void test_stop(void **state)
{
    (void)state;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/nan_stop", base);
    mg_test_clean_dir(dir);
    mg_cfg *cfg = config("nan_stop", "stop");
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    mg_train_result r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_NAN);
    assert_int_equal(r.step, 5); /* steps 1..5 done; the 6th (index 5) went bad */
    assert_true(all_finite(mg_trainer_D(t)));
    mg_trainer_free(t);
    mg_cfg_free(cfg);
    if (mg_dist_rank() == 0) {
        char path[400], ckdir[400], expected[500];
        snprintf(ckdir, sizeof ckdir, "%s/checkpoints", dir);
        snprintf(expected, sizeof expected, "%s/ckpt_000000004.h5", ckdir);
        assert_true(mg_ckpt_latest(ckdir, path, sizeof path));
        assert_string_equal(path, expected);
        long step = 0;
        char *text = mg_ckpt_read_config(path, &step);
        assert_int_equal(step, 4);
        mg_free(text);
    }
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_skip),
        cmocka_unit_test(test_stop),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    failed = mg_dist_any(failed != 0) ? 1 : 0;
    mg_dist_finalize();
    return failed;
}
