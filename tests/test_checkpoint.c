/* Checkpoint files: keep_last pruning and the `latest` pointer; a truncated file, a
 * non-HDF5 file, a foreign HDF5 file and a checkpoint of other networks are refused
 * with a clear error. One process, no MPI. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "mg_cfg_override.h"
#include "mg_checkpoint.h"
#include "mg_convert.h"
#include "mg_dist.h"
#include "mg_png_grid.h"
#include "mg_sample.h"
#include "mg_test.h"
#include "mg_train.h"

#define DIR "/tmp/mpigan_ckpt_test"
#define CKDIR DIR "/checkpoints"

static mg_cfg *config(void)
{
    mg_cfg *cfg = mg_cfg_load_file("configs/tiny.yaml");
    mg_cfg_override(cfg, "run_dir=" DIR);
    mg_cfg_override(cfg, "train.steps=5");
    mg_cfg_override(cfg, "checkpoint.interval=1");
    mg_cfg_override(cfg, "checkpoint.keep_last=2");
    return cfg;
}

static int setup(void **state)
{
    (void)state;
    if (system("rm -rf " DIR) != 0)
        return 1;
    mg_cfg *cfg = config();
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    mg_train_result r = mg_trainer_run(t);
    mg_trainer_free(t);
    mg_cfg_free(cfg);
    return r.status != MG_TRAIN_DONE;
}

static void copy_prefix(const char *from, const char *to, long bytes)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[4096];
    long left = bytes;
    size_t n;
    while (left > 0 && (n = fread(buf, 1, left < 4096 ? (size_t)left : 4096, in)) > 0) {
        assert_int_equal(fwrite(buf, 1, n, out), n);
        left -= (long)n;
    }
    fclose(in);
    fclose(out);
}

/* Builds a trainer whose nets and optimizers receive the file's contents. */
static void read_into_fresh_trainer(const char *path)
{
    mg_cfg *cfg = config();
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    mg_optim og, od;
    mg_opt_cfg oc = mg_opt_cfg_default(MG_OPT_ADAM);
    mg_optim_init(&og, &oc, mg_trainer_G(t)->n_param);
    mg_optim_init(&od, &oc, mg_trainer_D(t)->n_param);
    mg_ckpt c = {.G = (mg_net *)mg_trainer_G(t), .D = (mg_net *)mg_trainer_D(t), .opt_g = &og, .opt_d = &od};
    mg_ckpt_read(path, &c);
    assert_int_equal(c.step, 5);
    mg_free(c.rng_words);
    mg_free(c.config_text);
    mg_optim_free(&og);
    mg_optim_free(&od);
    mg_trainer_free(t);
    mg_cfg_free(cfg);
}

static void test_latest_and_keep_last(void **state)
{
    (void)state;
    char path[400];
    assert_true(mg_ckpt_latest(CKDIR, path, sizeof path));
    assert_string_equal(path, CKDIR "/ckpt_000000005.h5");
    struct stat st;
    assert_int_equal(stat(CKDIR "/ckpt_000000004.h5", &st), 0);
    assert_int_not_equal(stat(CKDIR "/ckpt_000000003.h5", &st), 0); /* pruned: keep_last 2 */
    read_into_fresh_trainer(path);
}

static void test_truncated_refused(void **state)
{
    (void)state;
    struct stat st;
    assert_int_equal(stat(CKDIR "/ckpt_000000005.h5", &st), 0);
    copy_prefix(CKDIR "/ckpt_000000005.h5", DIR "/truncated.h5", st.st_size / 2);
    MG_EXPECT_FATAL(read_into_fresh_trainer(DIR "/truncated.h5"), "not a readable checkpoint");
}

static void test_foreign_refused(void **state)
{
    (void)state;
    FILE *f = fopen(DIR "/text.h5", "w");
    fputs("generator: not a checkpoint\n", f);
    fclose(f);
    MG_EXPECT_FATAL(read_into_fresh_trainer(DIR "/text.h5"), "not a readable checkpoint");
    hid_t h = H5Fcreate(DIR "/other.h5", H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(h >= 0);
    H5Fclose(h);
    MG_EXPECT_FATAL(read_into_fresh_trainer(DIR "/other.h5"), "not an mpigan checkpoint");
}

static void test_other_networks_refused(void **state)
{
    (void)state;
    mg_cfg *cfg = config();
    mg_cfg_override(cfg, "generator.layers[0].out=8");
    MG_EXPECT_FATAL(mg_trainer_create(cfg, true, false), "dataset G/param holds");
    mg_cfg_free(cfg);
}

/* tiny.yaml on the ring mixture file DIR/ring.h5 (HDF5 data), run_dir run_dir. */
static mg_cfg *hdf5_config(const char *run_dir)
{
    FILE *f = fopen("configs/tiny.yaml", "rb");
    assert_non_null(f);
    static char text[8192], edited[8400];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    const char *old = "data: {source: ring8}", *at = strstr(text, old);
    assert_non_null(at);
    snprintf(edited, sizeof edited, "%.*sdata: {path: " DIR "/ring.h5, sampler: global, prefetch: false}%s",
             (int)(at - text), text, at + strlen(old));
    mg_cfg *cfg = mg_cfg_parse(edited, "tiny-hdf5.yaml");
    char set[300];
    snprintf(set, sizeof set, "run_dir=%s", run_dir);
    mg_cfg_override(cfg, set);
    mg_cfg_override(cfg, "train.steps=5");
    mg_cfg_override(cfg, "checkpoint.interval=0");
    return cfg;
}

/* HDF5 data: the checkpoint holds /loader/state (the loader's position, sampler named);
 * a wrong-sized state, resuming it on in-memory data or with another sampler, or resuming
 * an in-memory checkpoint on HDF5 data, is refused naming the file and the dataset. */
static void test_loader_state(void **state)
{
    (void)state;
    mg_convert_mixture(DIR "/ring.h5", MG_MIXTURE_RING, 100, 3, 0);
    mg_cfg *cfg = hdf5_config(DIR "/h5");
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    assert_int_equal(mg_trainer_run(t).status, MG_TRAIN_DONE);

    const char *path = DIR "/h5/checkpoints/ckpt_000000005.h5";
    mg_optim og, od;
    mg_opt_cfg oc = mg_opt_cfg_default(MG_OPT_ADAM);
    mg_optim_init(&og, &oc, mg_trainer_G(t)->n_param);
    mg_optim_init(&od, &oc, mg_trainer_D(t)->n_param);
    mg_ckpt c = {.G = (mg_net *)mg_trainer_G(t), .D = (mg_net *)mg_trainer_D(t), .opt_g = &og, .opt_d = &od};
    mg_ckpt_read(path, &c);
    assert_true(c.has_loader_state);
    assert_string_equal(c.loader_sampler, "global");
    mg_loader_state st;
    memcpy(&st, c.loader_state, sizeof st);
    assert_int_equal(st.version, MG_LOADER_STATE_VERSION);
    assert_int_equal(st.step, 5);
    assert_int_equal(st.global_batch, 16);
    assert_int_equal(st.n_samples, 100);
    assert_int_equal(st.seed, 3);
    mg_free(c.rng_words);
    mg_free(c.config_text);

    /* a state of another size (another mpigan version) */
    assert_int_equal(system("cp " DIR "/h5/checkpoints/ckpt_000000005.h5 " DIR "/short_state.h5"), 0);
    hid_t f = H5Fopen(DIR "/short_state.h5", H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    assert_true(H5Ldelete(f, "loader/state", H5P_DEFAULT) >= 0);
    hsize_t five = 5;
    hid_t space = H5Screate_simple(1, &five, NULL);
    hid_t set = H5Dcreate2(f, "loader/state", H5T_STD_U64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(set >= 0);
    H5Dclose(set);
    H5Sclose(space);
    H5Fclose(f);
    c.rng_words = NULL;
    MG_EXPECT_FATAL(mg_ckpt_read(DIR "/short_state.h5", &c), "/loader/state holds 5 words");
    mg_optim_free(&og);
    mg_optim_free(&od);
    mg_trainer_free(t);
    mg_cfg_free(cfg);

    /* HDF5 checkpoint, in-memory config */
    cfg = config();
    mg_cfg_override(cfg, "run_dir=" DIR "/h5");
    mg_cfg_override(cfg, "train.steps=10");
    MG_EXPECT_FATAL(mg_trainer_create(cfg, true, false), "/loader/state: the checkpoint was trained on HDF5 data");
    mg_cfg_free(cfg);
    /* another sampler */
    cfg = hdf5_config(DIR "/h5");
    mg_cfg_override(cfg, "train.steps=10");
    mg_cfg_override(cfg, "data.sampler=shard");
    MG_EXPECT_FATAL(mg_trainer_create(cfg, true, false),
                    "the checkpoint's sampler is global, this config's data.sampler is shard");
    mg_cfg_free(cfg);
    /* in-memory checkpoint (setup's run), HDF5 config */
    cfg = hdf5_config(DIR);
    mg_cfg_override(cfg, "train.steps=10");
    MG_EXPECT_FATAL(mg_trainer_create(cfg, true, false), "no /loader/state");
    mg_cfg_free(cfg);
}

/* The command line's contract: NaN with nan_policy: stop exits non-zero (3). */
static void test_cli_nan_stop_exit_status(void **state)
{
    (void)state;
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    char cmd[600];
    snprintf(cmd, sizeof cmd,
             "%s/mpigan train configs/tiny.yaml --set run_dir=" DIR "/cli --set debug.inject_nan_at_step=3 "
             ">/dev/null 2>&1",
             build);
    int rc = system(cmd);
    assert_true(WIFEXITED(rc));
    assert_int_equal(WEXITSTATUS(rc), 3);
}

/* `mpigan sample`'s pieces: G rebuilt from a checkpoint, HDF5 and PNG output. */
static void test_sample_outputs(void **state)
{
    (void)state;
    mg_shape shape;
    float *x = mg_sample_generate(CKDIR "/ckpt_000000005.h5", 10, 1, &shape);
    assert_int_equal(shape.c, 2);
    for (int i = 0; i < 20; i++)
        assert_true(isfinite(x[i]));
    mg_sample_write_h5(DIR "/samples.h5", x, 10, shape, CKDIR "/ckpt_000000005.h5");
    hid_t f = H5Fopen(DIR "/samples.h5", H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    float back[20];
    hid_t set = H5Dopen2(f, "x", H5P_DEFAULT);
    assert_true(set >= 0);
    assert_true(H5Dread(set, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
    assert_memory_equal(back, x, sizeof back);
    H5Dclose(set);
    H5Fclose(f);
    mg_free(x);

    float img[4 * 3 * 5 * 6];
    for (int i = 0; i < 360; i++)
        img[i] = (float)(i % 7) / 3.0f - 1.0f;
    mg_png_grid_write(DIR "/grid.png", img, 4, 3, 5, 6);
    FILE *png = fopen(DIR "/grid.png", "rb");
    assert_non_null(png);
    unsigned char sig[8];
    assert_int_equal(fread(sig, 1, 8, png), 8);
    fclose(png);
    assert_memory_equal(sig, "\x89PNG\r\n\x1a\n", 8);
    MG_EXPECT_FATAL(mg_png_grid_write(DIR "/bad.png", img, 4, 2, 5, 6), "PNG grids need grey or RGB images");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_latest_and_keep_last),
        cmocka_unit_test(test_truncated_refused),
        cmocka_unit_test(test_foreign_refused),
        cmocka_unit_test(test_other_networks_refused),
        cmocka_unit_test(test_loader_state),
        cmocka_unit_test(test_cli_nan_stop_exit_status),
        cmocka_unit_test(test_sample_outputs),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
