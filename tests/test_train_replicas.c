/* Keeping the replicas one model, and moving a run between rank counts.
 *
 * - bn: local: every rank normalises with its own batch statistics, and the running
 *   statistics are averaged over the ranks in each update's gradient reduction, so the
 *   replicas stay identical (checked at every step) and a stopped and resumed run is
 *   bitwise the uninterrupted one.
 * - A replica that drifts (debug.diverge_at_step moves one parameter on the last rank) is
 *   caught at the next check: the run stops at once with MG_TRAIN_DIVERGED, writes no
 *   checkpoint of the differing replicas, and the ones written before stay.
 * - Resume on another number of ranks: the one-rank run trains 20 steps on an HDF5 file
 *   (global sampler, global noise streams) and leaves its step-10 checkpoint; the 2-rank
 *   run resumes from that checkpoint and ends within 1e-4 relative of the one-rank run's
 *   step 20 (the equivalence tolerance of tests/test_train_equiv.c).
 * - The two reduction paths (train.reduce: node, the ranks of a node sharing their
 *   buffers; mpi, one MPI_Allreduce) train bitwise the same model at one and two ranks.
 * - Gradient penalties (R1, R2, WGAN-GP; also with class-conditional G and D) give the
 *   one-rank run's first D gradient on two
 *   ranks, to their central differences' rounding.
 * mpirun-np: 1 2 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_checkpoint.h"
#include "mg_convert.h"
#include "mg_dist.h"
#include "mg_test.h"
#include "mg_testenv.h"
#include "mg_train.h"

/* work: this run's runs (mg_test_dir_make), removed at the end. shared: what the one-rank
 * run leaves for the 2-rank run (mg_test_shared_dir): the ring file both train on, the
 * one-rank run's directory (ref_dir, its step-10 checkpoint), its step-20 parameters
 * (ref_params) and its penalty gradients. */
static char work[256], shared[256], ring_file[320], ref_dir[320], ref_params[320];

static int setup(void **state)
{
    (void)state;
    mg_test_dir_make(work, sizeof work, "train_replicas");
    mg_test_shared_dir(shared, sizeof shared, "train_replicas");
    snprintf(ring_file, sizeof ring_file, "%s/ring.h5", shared);
    snprintf(ref_dir, sizeof ref_dir, "%s/np1_run", shared);
    snprintf(ref_params, sizeof ref_params, "%s/np1_step20.bin", shared);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mg_test_dir_remove(work);
    return 0;
}

/* The run directory work/<name>_np<ranks>: each run of a test its own. */
static void run_dir(char *dir, size_t size, const char *name)
{
    snprintf(dir, size, "%s/%s_np%d", work, name, mg_dist_size());
}

static uint64_t nets_checksum(const mg_trainer *t)
{
    const mg_net *G = mg_trainer_G(t), *D = mg_trainer_D(t);
    uint64_t parts[4] = {mg_checksum(G->param, G->n_param * sizeof(float)),
                         mg_checksum(G->state, G->n_state * sizeof(float)),
                         mg_checksum(D->param, D->n_param * sizeof(float)),
                         mg_checksum(D->state, D->n_state * sizeof(float))};
    return mg_checksum(parts, sizeof parts);
}

static mg_train_result run(mg_cfg *cfg, bool resume, uint64_t *checksum)
{
    mg_trainer *t = mg_trainer_create(cfg, resume, false);
    mg_train_result r = mg_trainer_run(t);
    if (checksum)
        *checksum = nets_checksum(t);
    mg_trainer_free(t);
    mg_cfg_free(cfg);
    return r;
}

static void test_bn_local_keeps_replicas_and_resumes(void **state)
{
    (void)state;
    char dir_a[320], dir_b[320];
    run_dir(dir_a, sizeof dir_a, "local_a");
    run_dir(dir_b, sizeof dir_b, "local_b");
    static const char *const local[] = {"train.bn=local", "train.steps=30", "debug.check_replicas=1",
                                        "checkpoint.interval=0", NULL};
    static const char *const local_stop[] = {"train.bn=local", "train.steps=30", "debug.check_replicas=1",
                                             "checkpoint.interval=0", "debug.stop_at_step=15", NULL};
    uint64_t straight = 0, resumed = 0;
    mg_train_result r = run(mg_test_tiny_cfg_sets(dir_a, NULL, local), false, &straight);
    assert_int_equal(r.status, MG_TRAIN_DONE);
    assert_true(r.replicas_equal);
    r = run(mg_test_tiny_cfg_sets(dir_b, NULL, local_stop), false, NULL);
    assert_int_equal(r.status, MG_TRAIN_STOPPED);
    assert_int_equal(r.step, 15);
    r = run(mg_test_tiny_cfg_sets(dir_b, NULL, local), true, &resumed);
    assert_int_equal(r.status, MG_TRAIN_DONE);
    assert_int_equal(r.step, 30);
    assert_true(r.replicas_equal);
    if (mg_dist_any(straight != resumed))
        fail_msg("bn: local: the resumed run differs from the uninterrupted one");
}

static void test_reduce_paths_agree(void **state)
{
    (void)state;
    char dir_node[320], dir_mpi[320];
    run_dir(dir_node, sizeof dir_node, "reduce_node");
    run_dir(dir_mpi, sizeof dir_mpi, "reduce_mpi");
    static const char *const node[] = {"train.reduce=node", "train.steps=20", "checkpoint.interval=0", NULL};
    static const char *const mpi[] = {"train.reduce=mpi", "train.steps=20", "checkpoint.interval=0", NULL};
    uint64_t via_node = 0, via_mpi = 0;
    assert_int_equal(run(mg_test_tiny_cfg_sets(dir_node, NULL, node), false, &via_node).status, MG_TRAIN_DONE);
    assert_int_equal(run(mg_test_tiny_cfg_sets(dir_mpi, NULL, mpi), false, &via_mpi).status, MG_TRAIN_DONE);
    if (mg_dist_any(via_node != via_mpi))
        fail_msg("train.reduce: node and mpi trained different models");
}

static void test_diverged_replicas_stop_the_run(void **state)
{
    (void)state;
    char dir[320], ckdir[340], path[400];
    run_dir(dir, sizeof dir, "diverge");
    snprintf(ckdir, sizeof ckdir, "%s/checkpoints", dir);
    static const char *const sets[] = {"train.steps=30", "debug.check_replicas=5", "checkpoint.interval=5",
                                       "debug.diverge_at_step=7", NULL};
    mg_train_result r = run(mg_test_tiny_cfg_sets(dir, NULL, sets), false, NULL);
    if (mg_dist_size() == 1) { /* one replica cannot differ from itself: the run goes on */
        assert_int_equal(r.status, MG_TRAIN_DONE);
        assert_true(r.replicas_equal);
        return;
    }
    assert_int_equal(r.status, MG_TRAIN_DIVERGED);
    assert_int_equal(r.step, 10); /* the first check after step 7 */
    assert_false(r.replicas_equal);
    if (mg_dist_rank() == 0) { /* step 5's checkpoint stays the newest; none of step 10 */
        assert_true(mg_ckpt_latest(ckdir, path, sizeof path));
        assert_non_null(strstr(path, "ckpt_000000005.h5"));
    }
    mg_dist_barrier();
}

static void save_params(const char *path, const mg_trainer *t)
{
    const mg_net *nets[2] = {mg_trainer_G(t), mg_trainer_D(t)};
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (int k = 0; k < 2; k++)
        assert_int_equal(fwrite(nets[k]->param, sizeof(float), nets[k]->n_param, f), nets[k]->n_param);
    assert_int_equal(fclose(f), 0);
}

/* Rank 0: the largest relative difference of t's parameters from those in path (-1 when
 * the file is missing or short). */
static double params_difference(const char *path, const mg_trainer *t)
{
    const mg_net *nets[2] = {mg_trainer_G(t), mg_trainer_D(t)};
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    double worst = 0;
    for (int k = 0; k < 2 && worst >= 0; k++) {
        float *ref = malloc(nets[k]->n_param * sizeof(float));
        if (fread(ref, sizeof(float), nets[k]->n_param, f) != nets[k]->n_param)
            worst = -1;
        for (size_t i = 0; worst >= 0 && i < nets[k]->n_param; i++)
            worst = fmax(worst, fabs((double)nets[k]->param[i] - ref[i]) / fmax(fabs((double)ref[i]), 1e-3));
        free(ref);
    }
    fclose(f);
    return worst;
}

static void test_resume_on_another_rank_count(void **state)
{
    (void)state;
    const int size = mg_dist_size();
    static const char *const sets[] = {"train.steps=20", "checkpoint.interval=10", "checkpoint.keep_last=5", NULL};
    char data[400];
    snprintf(data, sizeof data, "data: {path: %s, sampler: global}", ring_file);
    if (size == 1) {
        mg_test_clean_dir(ref_dir); /* a one-rank run's directory from an earlier run by hand */
        mg_convert_mixture(ring_file, MG_MIXTURE_RING, 300, 11, 0);
        mg_cfg *cfg = mg_test_tiny_cfg_sets(ref_dir, data, sets);
        mg_trainer *t = mg_trainer_create(cfg, false, false);
        assert_int_equal(mg_trainer_run(t).status, MG_TRAIN_DONE);
        save_params(ref_params, t);
        mg_trainer_free(t);
        mg_cfg_free(cfg);
        return;
    }
    /* the one-rank run's step-10 checkpoint, alone in this run's checkpoint folder */
    char dir[320], cmd[1400];
    run_dir(dir, sizeof dir, "resumed");
    if (mg_dist_rank() == 0) {
        snprintf(cmd, sizeof cmd,
                 "mkdir -p %s/checkpoints && cp %s/checkpoints/ckpt_000000010.h5 %s/checkpoints/ && "
                 "echo ckpt_000000010.h5 > %s/checkpoints/latest",
                 dir, ref_dir, dir, dir);
        if (system(cmd) != 0)
            fail_msg("no step-10 checkpoint of the one-rank run in %s: run this test at np 1 first", ref_dir);
    }
    mg_dist_barrier();
    mg_cfg *cfg = mg_test_tiny_cfg_sets(dir, data, sets);
    mg_trainer *t = mg_trainer_create(cfg, true, false);
    mg_train_result r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_DONE);
    assert_int_equal(r.step, 20);
    assert_true(r.replicas_equal);
    double worst = mg_dist_rank() == 0 ? params_difference(ref_params, t) : 0;
    mg_trainer_free(t);
    mg_cfg_free(cfg);
    if (mg_dist_rank() == 0)
        print_message("resumed at np=%d from the np=1 checkpoint: largest relative difference %.3g at step 20\n",
                      size, worst);
    if (mg_dist_any(worst < 0 || worst > 1e-4))
        fail_msg("resumed on %d ranks: parameters at step 20 differ from the one-rank run by %.3g relative "
                 "(-1: no reference %s)", size, worst, ref_params);
}

/* Gradient penalties on another rank count: the first step's D gradient (D's Adam with
 * eps 1, so that its update is smooth in the gradient) agrees with the one-rank run's
 * within 1e-3 of its largest element. The penalties' second-order term is a central
 * difference whose rounding, ~1e-4 of the gradient (docs/training.md), depends on the
 * split like every sum; a scaling error over the ranks would be of order 1. */
static void check_penalty_gradient(const char *tag, const char *const *sets)
{
    char name[100], dir[320], ref[400];
    const int size = mg_dist_size();
    snprintf(name, sizeof name, "penalty_%s", tag);
    run_dir(dir, sizeof dir, name);
    snprintf(ref, sizeof ref, "%s/penalty_%s_np1.bin", shared, tag);
    mg_cfg *cfg = mg_test_tiny_cfg_sets(dir, NULL, sets);
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    assert_int_equal(mg_trainer_run(t).status, MG_TRAIN_DONE);
    const mg_net *D = mg_trainer_D(t);
    const float *g = mg_trainer_last_gradient(t, D);
    double worst = 0, scale = 0;
    int missing = 0;
    if (mg_dist_rank() == 0) {
        if (size == 1) {
            FILE *f = fopen(ref, "wb");
            assert_non_null(f);
            assert_int_equal(fwrite(g, sizeof(float), D->n_param, f), D->n_param);
            assert_int_equal(fclose(f), 0);
        } else {
            FILE *f = fopen(ref, "rb");
            float *r = malloc(D->n_param * sizeof(float));
            missing = !f || fread(r, sizeof(float), D->n_param, f) != D->n_param;
            for (size_t i = 0; !missing && i < D->n_param; i++)
                scale = fmax(scale, fabs((double)r[i]));
            for (size_t i = 0; !missing && i < D->n_param; i++)
                worst = fmax(worst, fabs((double)g[i] - r[i]) / scale);
            if (f)
                fclose(f);
            free(r);
            print_message("%s: np=%d step-1 D gradient within %.2g of its largest element\n", tag, size, worst);
        }
    }
    mg_trainer_free(t);
    mg_cfg_free(cfg);
    if (mg_dist_any(missing || worst > 1e-3))
        fail_msg("%s: np=%d step-1 D gradient differs from the one-rank run by %.3g of its largest element "
                 "(or no reference %s: run np 1 first)", tag, size, worst, ref);
}

static void test_penalties_on_another_rank_count(void **state)
{
    (void)state;
    static const char *const r1[] = {"train.steps=1", "optimizer_d.eps=1", "train.r1_gamma=1", NULL};
    static const char *const r2[] = {"train.steps=1", "optimizer_d.eps=1", "train.r2_gamma=1", NULL};
    static const char *const gp[] = {"train.steps=1", "optimizer_d.eps=1", "train.loss=wasserstein",
                                     "train.gp_lambda=1", NULL};
    check_penalty_gradient("r1", r1);
    check_penalty_gradient("r2", r2);
    check_penalty_gradient("gp", gp);
    /* class-conditional G and D (conditional BatchNorm in D): the penalties judge reals
     * with their labels, fakes with theirs, interpolates with the real ones */
    static const char *const cond_r[] = {"train.steps=1", "optimizer_d.eps=1", "generator.classes=8",
                                         "generator.condition.kind=concat", "generator.condition.dim=3",
                                         "discriminator.classes=8", "discriminator.layers[2].conditional=true",
                                         "train.r1_gamma=1", "train.r2_gamma=1", NULL};
    static const char *const cond_gp[] = {"train.steps=1", "optimizer_d.eps=1", "generator.classes=8",
                                          "generator.condition.kind=concat", "generator.condition.dim=3",
                                          "discriminator.classes=8", "discriminator.layers[2].conditional=true",
                                          "train.loss=wasserstein", "train.gp_lambda=1", NULL};
    check_penalty_gradient("cond_r1_r2", cond_r);
    check_penalty_gradient("cond_gp", cond_gp);
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_on_another_rank_count),
        cmocka_unit_test(test_bn_local_keeps_replicas_and_resumes),
        cmocka_unit_test(test_reduce_paths_agree),
        cmocka_unit_test(test_diverged_replicas_stop_the_run),
        cmocka_unit_test(test_penalties_on_another_rank_count),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    failed = mg_dist_any(failed != 0) ? 1 : 0;
    mg_dist_finalize();
    return failed;
}
