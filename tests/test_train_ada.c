/* The adaptive augmentation probability (train.augment.adaptive, mg_ada.h) in training,
 * on a small image GAN whose data are 16 images, a set D soon tells from G's samples:
 * - p rises from 0 (D's real outputs turn positive), and metrics.jsonl carries augment_p
 *   and augment_rt at every logged step;
 * - the p trajectory (augment_p at every step) is the same on 1 and 2 ranks: np 1 writes
 *   it to trajectory_np1.txt in the test's shared directory (mg_test_shared_dir), np 2
 *   compares with it and fails without it (run.sh runs the rank counts in the order listed);
 * - 40 steps straight and 19 + stop + resume 21 end with bitwise identical G, D and p:
 *   the checkpoint carries p and the half-finished interval's sum.
 * mpirun-np: 1 2 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_batch_streams.h"
#include "mg_cfg.h"
#include "mg_cfg_override.h"
#include "mg_dist.h"
#include "mg_h5schema.h"
#include "mg_test.h"
#include "mg_testenv.h"
#include "mg_train.h"

#define STEPS 40

/* dir: this run's files; trajectory: the np 1 run's p trajectory, which the np 2 run reads */
static char dir[256], data[320], shared[256], trajectory[320];

/* n noisy 8x8 grey images with a bright block in one of four places */
static void make_images(const char *path, int64_t n)
{
    unsigned char *x = malloc((size_t)n * 64);
    mg_rng r;
    mg_rng_init(&r, 9, mg_rng_stream_id(MG_STREAM_TEST, 0));
    for (int64_t i = 0; i < n; i++) {
        unsigned char *img = x + i * 64;
        for (int p = 0; p < 64; p++)
            img[p] = (unsigned char)mg_rng_below(&r, 60);
        const int oy = (int)(i % 2) * 4, ox = (int)(i / 2 % 2) * 4;
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++)
                img[(oy + a) * 8 + ox + b] = 230;
    }
    mg_test_write_images(path, 1, 8, n, x, NULL, "test_train_ada synthetic");
    free(x);
}

static const char *gan_yaml =
    "generator:\n"
    "  input: [4]\n"
    "  init: {kind: normal, std: 0.2, bn_std: 0.02}\n"
    "  layers:\n"
    "    - {kind: linear, out: 16, bias: false}\n"
    "    - {kind: batchnorm}\n"
    "    - {kind: relu}\n"
    "    - {kind: linear, out: 64}\n"
    "    - {kind: reshape, shape: [1, 8, 8]}\n"
    "    - {kind: tanh}\n"
    "discriminator:\n"
    "  input: [1, 8, 8]\n"
    "  init: {kind: normal, std: 0.2}\n"
    "  layers:\n"
    "    - {kind: flatten}\n"
    "    - {kind: linear, out: 16, activation: leaky_relu}\n"
    "    - {kind: linear, out: 1}\n"
    "train:\n"
    "  loss: non_saturating\n"
    "  batch: 16\n"
    "  steps: %d\n"
    "  seed: 5\n"
    "  log_interval: 1\n"
    "  sample_interval: 0\n"
    "  augment: {policy: [translation, cutout, color], p: 0,\n"
    "            adaptive: {target: 0.6, interval: 2, speed: 960}}   # steps of 16*2/960 = 1/30\n"
    "optimizer_g: {kind: adam, lr: 1.0e-3, beta1: 0.5}\n"
    "optimizer_d: {kind: adam, lr: 2.0e-3, beta1: 0.5}\n"
    "data: {path: %s}\n"
    "checkpoint: {interval: 0}\n"
    "run_dir: %s/%s\n";

static mg_cfg *gan(const char *run)
{
    char text[3000];
    snprintf(text, sizeof text, gan_yaml, STEPS, data, dir, run);
    return mg_cfg_parse(text, "ada_gan.yaml");
}

static int setup(void **state)
{
    (void)state;
    mg_test_dir_make(dir, sizeof dir, "train_ada");
    snprintf(data, sizeof data, "%s/tiny16.h5", dir);
    mg_test_shared_dir(shared, sizeof shared, "train_ada");
    snprintf(trajectory, sizeof trajectory, "%s/trajectory_np1.txt", shared);
    if (mg_dist_rank() == 0)
        make_images(data, 16);
    mg_dist_barrier();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mg_test_dir_remove(dir);
    return 0;
}

/* Rank 0: the values of `field` in run's metrics.jsonl, one per line holding it. */
static int field_values(const char *run, const char *field, double *v, int max)
{
    char path[512], line[8192], key[64];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", dir, run);
    snprintf(key, sizeof key, "\"%s\": ", field);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int n = 0;
    while (fgets(line, sizeof line, f) && n < max) {
        const char *at = strstr(line, key);
        if (at)
            v[n++] = strtod(at + strlen(key), NULL);
    }
    fclose(f);
    return n;
}

/* Rank 0: the run "rise"'s logged p against its final p, its rise, and the np 1
 * trajectory (np 1 writes it); 1 on any failure, after saying what. */
static int check_trajectory(double p)
{
    double traj[STEPS], rt[STEPS];
    if (field_values("rise", "augment_p", traj, STEPS) != STEPS || field_values("rise", "augment_rt", rt, STEPS) != STEPS) {
        print_error("metrics.jsonl lacks augment_p or augment_rt on some of its %d lines\n", STEPS);
        return 1;
    }
    print_message("np %d: augment_p after %d steps %.3f (last r_t %.3f)\n", mg_dist_size(), STEPS, p, rt[STEPS - 1]);
    if (fabs(traj[STEPS - 1] - p) > 1e-6) { /* the log has 7 digits */
        print_error("the last logged augment_p %.9g is not the trainer's p %.9g\n", traj[STEPS - 1], p);
        return 1;
    }
    if (p < 0.3) {
        print_error("p stayed at %.3f: D overfitting 16 images should have raised it from 0\n", p);
        return 1;
    }
    if (mg_dist_size() == 1) {
        FILE *f = fopen(trajectory, "w");
        for (int i = 0; f && i < STEPS; i++)
            fprintf(f, "%.17g\n", traj[i]);
        if (!f || fclose(f) != 0) {
            print_error("cannot write %s\n", trajectory);
            return 1;
        }
        return 0;
    }
    FILE *f = fopen(trajectory, "r");
    if (!f) {
        print_error("no np 1 trajectory at %s: run this test with np 1 first (run.sh does)\n", trajectory);
        return 1;
    }
    int failed = 0;
    for (int i = 0; i < STEPS && !failed; i++) {
        double ref = -1;
        if (fscanf(f, "%lg", &ref) != 1 || ref != traj[i]) { /* p moves in steps of 1/30: 7 digits tell them apart */
            print_error("step %d: p %.9g on %d ranks, %.9g on one\n", i + 1, traj[i], mg_dist_size(), ref);
            failed = 1;
        }
    }
    fclose(f);
    return failed;
}

static void test_p_rises_and_is_rank_count_invariant(void **state)
{
    (void)state;
    mg_cfg *cfg = gan("rise");
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    mg_train_result r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_DONE);
    assert_true(r.replicas_equal);
    const double p = mg_trainer_augment_p(t);
    mg_trainer_free(t);
    mg_cfg_free(cfg);
    /* rank 0 reads the files; its verdict reaches every rank, so none is left waiting */
    int failed = mg_dist_rank() == 0 ? check_trajectory(p) : 0;
    if (mg_dist_any(failed))
        fail_msg("adaptive p: see the message above (rank 0)");
}

static uint64_t nets_checksum(const mg_trainer *t)
{
    const mg_net *G = mg_trainer_G(t), *D = mg_trainer_D(t);
    const uint64_t parts[4] = {mg_checksum(G->param, G->n_param * sizeof(float)),
                               mg_checksum(G->state, G->n_state * sizeof(float)),
                               mg_checksum(D->param, D->n_param * sizeof(float)),
                               mg_checksum(D->state, D->n_state * sizeof(float))};
    return mg_checksum(parts, sizeof parts);
}

static void test_resume_is_bitwise_identical(void **state)
{
    (void)state;
    mg_cfg *cfg = gan("straight");
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    assert_int_equal(mg_trainer_run(t).status, MG_TRAIN_DONE);
    const uint64_t straight = nets_checksum(t);
    const double straight_p = mg_trainer_augment_p(t);
    mg_trainer_free(t);
    mg_cfg_free(cfg);

    cfg = gan("resumed"); /* 19 steps: stopped inside an interval of 2 D updates */
    mg_cfg_override(cfg, "debug.stop_at_step=19");
    t = mg_trainer_create(cfg, false, false);
    mg_train_result r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_STOPPED);
    assert_int_equal(r.step, 19);
    mg_trainer_free(t);
    mg_cfg_free(cfg);

    cfg = gan("resumed");
    t = mg_trainer_create(cfg, true, false);
    r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_DONE);
    assert_int_equal(r.step, STEPS);
    const int differ = nets_checksum(t) != straight || mg_trainer_augment_p(t) != straight_p;
    assert_true(straight_p > 0); /* the test is one of adaptive p */
    mg_trainer_free(t);
    mg_cfg_free(cfg);
    if (mg_dist_any(differ))
        fail_msg("the resumed run differs from the uninterrupted one (networks or augment p)");
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_p_rises_and_is_rank_count_invariant),
        cmocka_unit_test(test_resume_is_bitwise_identical),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    failed = mg_dist_any(failed != 0) ? 1 : 0;
    mg_dist_finalize();
    return failed;
}
