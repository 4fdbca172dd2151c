/* THE equivalence test of data-parallel training: the tiny config (sync BatchNorm,
 * global noise streams, rank-count-independent data order) trained 20 steps at the same
 * global batch on 1, 2 and 4 ranks ends with the same G and D parameters within 1e-4
 * relative. The np=1 run writes its final buffers to /tmp/mpigan_equiv_<case>_np1.bin;
 * the np=2 and np=4 runs (run.sh runs the rank counts in the order listed) compare
 * against that file and fail when it is missing.
 * A second case adds the anti-collapse options, whose groups live inside each rank's
 * batch: PacGAN packs of 2 (train.pack) and a minibatch-stddev layer (groups of 2) in
 * place of D's BatchNorm. Packs and groups are consecutive samples of a contiguous slice,
 * so they are the same on any number of ranks.
 * mpirun-np: 1 2 4 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "mg_cfg_override.h"
#include "mg_dist.h"
#include "mg_test.h"
#include "mg_train.h"


typedef struct {
    const float *data;
    size_t n;
    const char *what;
} buffer_ref;

static void check_equivalence(const char *name, const char *const *sets)
{
    const int size = mg_dist_size(), rank = mg_dist_rank();
    char reference[256];
    snprintf(reference, sizeof reference, "/tmp/mpigan_equiv_%s_np1.bin", name);
    mg_cfg *cfg = mg_cfg_load_file("configs/tiny.yaml");
    char set[256];
    snprintf(set, sizeof set, "run_dir=/tmp/mpigan_equiv_%s_run_np%d", name, size);
    mg_cfg_override(cfg, set);
    mg_cfg_override(cfg, "train.steps=20");
    mg_cfg_override(cfg, "train.batch=16");
    for (; sets && *sets; sets++)
        mg_cfg_override(cfg, *sets);
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    mg_train_result r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_DONE);
    assert_int_equal(r.step, 20);
    assert_true(r.replicas_equal);
    assert_true(r.losses_finite);

    const mg_net *G = mg_trainer_G(t), *D = mg_trainer_D(t);
    buffer_ref bufs[4] = {{G->param, G->n_param, "G param"},
                          {G->state, G->n_state, "G state"},
                          {D->param, D->n_param, "D param"},
                          {D->state, D->n_state, "D state"}};
    int failed = 0;
    if (rank == 0 && size == 1) {
        FILE *f = fopen(reference, "wb");
        assert_non_null(f);
        for (int b = 0; b < 4; b++) {
            uint64_t n = bufs[b].n;
            assert_int_equal(fwrite(&n, sizeof n, 1, f), 1);
            assert_int_equal(fwrite(bufs[b].data, sizeof(float), bufs[b].n, f), bufs[b].n);
        }
        assert_int_equal(fclose(f), 0);
    } else if (rank == 0) {
        FILE *f = fopen(reference, "rb");
        if (!f)
            fail_msg("no np=1 reference at %s: run this test with np 1 first (run.sh does)", reference);
        double worst = 0;
        for (int b = 0; b < 4; b++) {
            uint64_t n = 0;
            assert_int_equal(fread(&n, sizeof n, 1, f), 1);
            assert_int_equal(n, bufs[b].n);
            float *ref = malloc(sizeof(float) * (n ? n : 1));
            assert_int_equal(fread(ref, sizeof(float), n, f), n);
            for (size_t i = 0; i < n; i++) {
                double diff = fabs((double)bufs[b].data[i] - ref[i]);
                double rel = diff / fmax(fabs((double)ref[i]), 1e-3);
                if (rel > worst)
                    worst = rel;
                if (rel > 1e-4 && !failed) {
                    print_error("%s[%zu]: np=%d %.9g vs np=1 %.9g (relative %.3g)\n", bufs[b].what, i, size,
                                bufs[b].data[i], ref[i], rel);
                    failed = 1;
                }
            }
            free(ref);
        }
        fclose(f);
        print_message("%s: np=%d vs np=1: largest relative difference %.3g\n", name, size, worst);
    }
    mg_trainer_free(t);
    mg_cfg_free(cfg);
    if (mg_dist_any(failed))
        fail_msg("%s: parameters differ from the one-rank run by more than 1e-4 relative", name);
}

static void test_equivalence(void **state)
{
    (void)state;
    check_equivalence("plain", NULL);
}

static void test_equivalence_pack_mbstd(void **state)
{
    (void)state;
    static const char *const sets[] = {"train.pack=2", "discriminator.layers[2].kind=mbstd",
                                       "discriminator.layers[2].group=2", NULL};
    check_equivalence("pack_mbstd", sets);
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equivalence),
        cmocka_unit_test(test_equivalence_pack_mbstd),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    failed = mg_dist_any(failed != 0) ? 1 : 0;
    mg_dist_finalize();
    return failed;
}
