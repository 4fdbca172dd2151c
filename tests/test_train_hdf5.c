/* Training on HDF5 data end to end: a tiny set of 12x12 grey images is written as PNG
 * files and converted with the converter API (mg_convert_png_dir); a tiny convolutional
 * GAN (sync BatchNorm, global noise streams, the loader's global sampler, prefetch on)
 * trains 12 steps on it. The one-rank run stores its final parameters (in the test's shared
 * directory, mg_test_shared_dir); the 2- and 4-rank runs must end within 1e-4 relative of them (global batch t holds the same samples whatever
 * the number of ranks). 44 samples at batch 8: batches straddle epoch boundaries.
 * Also: the run writes PNG sample grids every train.sample_interval steps on rank 0, and
 * metrics.jsonl carries the loader's numbers.
 * mpirun-np: 1 2 4 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mg_cfg_override.h"
#include "mg_convert.h"
#include "mg_dist.h"
#include "mg_png_grid.h"
#include "mg_test.h"
#include "mg_testenv.h"
#include "mg_train.h"

#define N_IMAGES 44

/* work: this run's files (the PNG folder, the data file, the run), removed at the end;
 * reference: the one-rank run's final parameters, which the runs at other rank counts read */
static char work[256], data[320], shared[256], reference[320];

/* the config, with the data file's path for %s */
static const char config_format[] =
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
    "  init: {kind: normal, std: 0.2, bn_std: 0.02}\n"
    "  layers:\n"
    "    - {kind: conv2d, out: 4, kernel: 4, stride: 2, padding: 1, activation: leaky_relu}\n"
    "    - {kind: conv2d, out: 8, kernel: 4, stride: 2, padding: 1, bias: false}\n"
    "    - {kind: batchnorm}\n"
    "    - {kind: leaky_relu, slope: 0.2}\n"
    "    - {kind: flatten}\n"
    "    - {kind: linear, out: 1}\n"
    "train: {loss: non_saturating, batch: 8, steps: 12, seed: 5, log_interval: 4, sample_interval: 6}\n"
    "optimizer_g: {kind: adam, lr: 2.0e-3, beta1: 0.5, beta2: 0.999}\n"
    "optimizer_d: {kind: adam, lr: 2.0e-3, beta1: 0.5, beta2: 0.999}\n"
    "data: {path: %s, sampler: global}\n"
    "checkpoint: {interval: 0}\n";

/* Rank 0: N_IMAGES PNG files of 8x8 patterns (a 2-pixel border makes them 12x12) in
 * work/png, then the converter turns the folder into data. */
static void make_data(void)
{
    if (mg_dist_rank() == 0) {
        char png_dir[300];
        snprintf(png_dir, sizeof png_dir, "%s/png", work);
        if (mkdir(png_dir, 0777) != 0)
            fail_msg("cannot make %s", png_dir);
        float img[64];
        for (int i = 0; i < N_IMAGES; i++) {
            for (int y = 0; y < 8; y++)
                for (int x = 0; x < 8; x++)
                    img[y * 8 + x] = sinf(0.3f * (float)(i + 1) * (float)x + 0.7f * (float)(i % 5) * (float)y);
            char path[400];
            snprintf(path, sizeof path, "%s/img_%03d.png", png_dir, i);
            mg_png_grid_write(path, img, 1, 1, 8, 8);
        }
        mg_convert_png_dir(png_dir, data);
    }
    mg_dist_barrier();
}

static int setup(void **state)
{
    (void)state;
    mg_test_dir_make(work, sizeof work, "train_hdf5");
    snprintf(data, sizeof data, "%s/tiny_images.h5", work);
    mg_test_shared_dir(shared, sizeof shared, "train_hdf5");
    snprintf(reference, sizeof reference, "%s/np1_params.bin", shared);
    make_data();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mg_test_dir_remove(work);
    return 0;
}

static bool file_starts_with(const char *path, const char *magic, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    char buf[16] = {0};
    bool ok = fread(buf, 1, n, f) == n && !memcmp(buf, magic, n);
    fclose(f);
    return ok;
}

static bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    return strstr(text, needle) != NULL;
}

static void test_equivalence_on_hdf5(void **state)
{
    (void)state;
    const int size = mg_dist_size(), rank = mg_dist_rank();
    char run_dir[300], set[400], config_text[sizeof config_format + 320];
    snprintf(run_dir, sizeof run_dir, "%s/run_np%d", work, size);
    snprintf(config_text, sizeof config_text, config_format, data);
    mg_cfg *cfg = mg_cfg_parse(config_text, "tiny_conv.yaml");
    snprintf(set, sizeof set, "run_dir=%s", run_dir);
    mg_cfg_override(cfg, set);
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    mg_train_result r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_DONE);
    assert_int_equal(r.step, 12);
    assert_true(r.replicas_equal);
    assert_true(r.losses_finite);

    const mg_net *G = mg_trainer_G(t), *D = mg_trainer_D(t);
    const float *bufs[4] = {G->param, G->state, D->param, D->state};
    const size_t lens[4] = {G->n_param, G->n_state, D->n_param, D->n_state};
    static const char *const names[4] = {"G param", "G state", "D param", "D state"};
    int failed = 0;
    if (rank == 0 && size == 1) {
        FILE *f = fopen(reference, "wb");
        assert_non_null(f);
        for (int b = 0; b < 4; b++)
            assert_int_equal(fwrite(bufs[b], sizeof(float), lens[b], f), lens[b]);
        assert_int_equal(fclose(f), 0);
    } else if (rank == 0) {
        FILE *f = fopen(reference, "rb");
        if (!f)
            fail_msg("no np=1 reference at %s: run this test with np 1 first (run.sh does)", reference);
        double worst = 0;
        for (int b = 0; b < 4; b++) {
            float *ref = malloc(sizeof(float) * (lens[b] + 1));
            assert_int_equal(fread(ref, sizeof(float), lens[b], f), lens[b]);
            for (size_t i = 0; i < lens[b]; i++) {
                double rel = fabs((double)bufs[b][i] - ref[i]) / fmax(fabs((double)ref[i]), 1e-3);
                worst = fmax(worst, rel);
                if (rel > 1e-4 && !failed) {
                    print_error("%s[%zu]: np=%d %.9g vs np=1 %.9g (relative %.3g)\n", names[b], i, size, bufs[b][i],
                                ref[i], rel);
                    failed = 1;
                }
            }
            free(ref);
        }
        fclose(f);
        print_message("HDF5 data, np=%d vs np=1: largest relative difference %.3g\n", size, worst);
    }
    mg_trainer_free(t);
    mg_cfg_free(cfg);

    if (rank == 0) {
        char path[400];
        const char *png = "\x89PNG\r\n\x1a\n";
        snprintf(path, sizeof path, "%s/samples/step_6.png", run_dir);
        failed |= !file_starts_with(path, png, 8);
        snprintf(path, sizeof path, "%s/samples/step_12.png", run_dir);
        failed |= !file_starts_with(path, png, 8);
        snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
        failed |= !file_contains(path, "\"epoch\": 2, \"data_read_s\": ");
        if (failed)
            print_error("sample grids or loader metrics missing in %s\n", run_dir);
    }
    if (mg_dist_any(failed))
        fail_msg("HDF5 training differs from the one-rank run, or its outputs are missing");
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equivalence_on_hdf5),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    failed = mg_dist_any(failed != 0) ? 1 : 0;
    mg_dist_finalize();
    return failed;
}
