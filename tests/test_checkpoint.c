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
#include "mg_testenv.h"
#include "mg_train.h"

/* the suite's run directory (mg_test_dir_make) */
static char dir[256];

/* dir followed by rel ("/checkpoints/..."); the last 8 results stay valid */
static const char *at(const char *rel)
{
    static char buf[8][400];
    static int next;
    char *p = buf[next];
    next = (next + 1) % 8;
    snprintf(p, sizeof buf[0], "%s%s", dir, rel);
    return p;
}

static mg_cfg *config(void)
{
    return mg_test_tiny_cfg(dir, NULL, "train.steps=5", "checkpoint.interval=1", "checkpoint.keep_last=2", NULL);
}

static int setup(void **state)
{
    (void)state;
    mg_test_dir_make(dir, sizeof dir, "ckpt");
    mg_cfg *cfg = config();
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    mg_train_result r = mg_trainer_run(t);
    mg_trainer_free(t);
    mg_cfg_free(cfg);
    return r.status != MG_TRAIN_DONE;
}

static int teardown(void **state)
{
    (void)state;
    mg_test_dir_remove(dir);
    return 0;
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
    assert_true(mg_ckpt_latest(at("/checkpoints"), path, sizeof path));
    assert_string_equal(path, at("/checkpoints/ckpt_000000005.h5"));
    struct stat st;
    assert_int_equal(stat(at("/checkpoints/ckpt_000000004.h5"), &st), 0);
    assert_int_not_equal(stat(at("/checkpoints/ckpt_000000003.h5"), &st), 0); /* pruned: keep_last 2 */
    read_into_fresh_trainer(path);
}

static void test_truncated_refused(void **state)
{
    (void)state;
    struct stat st;
    assert_int_equal(stat(at("/checkpoints/ckpt_000000005.h5"), &st), 0);
    copy_prefix(at("/checkpoints/ckpt_000000005.h5"), at("/truncated.h5"), st.st_size / 2);
    MG_EXPECT_FATAL(read_into_fresh_trainer(at("/truncated.h5")), "not a readable checkpoint");
}

static void test_foreign_refused(void **state)
{
    (void)state;
    FILE *f = fopen(at("/text.h5"), "w");
    fputs("generator: not a checkpoint\n", f);
    fclose(f);
    MG_EXPECT_FATAL(read_into_fresh_trainer(at("/text.h5")), "not a readable checkpoint");
    hid_t h = H5Fcreate(at("/other.h5"), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(h >= 0);
    H5Fclose(h);
    MG_EXPECT_FATAL(read_into_fresh_trainer(at("/other.h5")), "not an mpigan checkpoint");
}

static void test_other_networks_refused(void **state)
{
    (void)state;
    mg_cfg *cfg = config();
    mg_cfg_override(cfg, "generator.layers[0].out=8");
    MG_EXPECT_FATAL(mg_trainer_create(cfg, true, false), "dataset G/param holds");
    mg_cfg_free(cfg);
}

/* tiny.yaml on the ring mixture file dir/ring.h5 (HDF5 data), run_dir run_dir. */
static mg_cfg *hdf5_config(const char *run_dir)
{
    char data[400];
    snprintf(data, sizeof data, "data: {path: %s/ring.h5, sampler: global, prefetch: false}", dir);
    return mg_test_tiny_cfg(run_dir, data, "train.steps=5", "checkpoint.interval=0", NULL);
}

/* HDF5 data: the checkpoint holds /loader/state (the loader's position, sampler named);
 * a wrong-sized state, resuming it on in-memory data or with another sampler, or resuming
 * an in-memory checkpoint on HDF5 data, is refused naming the file and the dataset. */
static void test_loader_state(void **state)
{
    (void)state;
    mg_convert_mixture(at("/ring.h5"), MG_MIXTURE_RING, 100, 3, 0);
    mg_cfg *cfg = hdf5_config(at("/h5"));
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    assert_int_equal(mg_trainer_run(t).status, MG_TRAIN_DONE);

    const char *path = at("/h5/checkpoints/ckpt_000000005.h5");
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
    char cp[900];
    snprintf(cp, sizeof cp, "cp %s %s", at("/h5/checkpoints/ckpt_000000005.h5"), at("/short_state.h5"));
    assert_int_equal(system(cp), 0);
    hid_t f = H5Fopen(at("/short_state.h5"), H5F_ACC_RDWR, H5P_DEFAULT);
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
    MG_EXPECT_FATAL(mg_ckpt_read(at("/short_state.h5"), &c), "/loader/state holds 5 words");
    mg_optim_free(&og);
    mg_optim_free(&od);
    mg_trainer_free(t);
    mg_cfg_free(cfg);

    /* HDF5 checkpoint, in-memory config */
    cfg = config();
    char run_set[400];
    snprintf(run_set, sizeof run_set, "run_dir=%s", at("/h5"));
    mg_cfg_override(cfg, run_set);
    mg_cfg_override(cfg, "train.steps=10");
    MG_EXPECT_FATAL(mg_trainer_create(cfg, true, false), "/loader/state: the checkpoint was trained on HDF5 data");
    mg_cfg_free(cfg);
    /* another sampler */
    cfg = hdf5_config(at("/h5"));
    mg_cfg_override(cfg, "train.steps=10");
    mg_cfg_override(cfg, "data.sampler=shard");
    MG_EXPECT_FATAL(mg_trainer_create(cfg, true, false),
                    "the checkpoint's sampler is global, this config's data.sampler is shard");
    mg_cfg_free(cfg);
    /* in-memory checkpoint (setup's run), HDF5 config */
    cfg = hdf5_config(dir);
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
             "%s/mpigan train configs/tiny.yaml --set run_dir=%s/cli --set debug.inject_nan_at_step=3 "
             ">/dev/null 2>&1",
             build, dir);
    int rc = system(cmd);
    assert_true(WIFEXITED(rc));
    assert_int_equal(WEXITSTATUS(rc), 3);
}

/* `mpigan sample`'s pieces: G rebuilt from a checkpoint, HDF5 and PNG output. */
static void test_sample_outputs(void **state)
{
    (void)state;
    mg_shape shape;
    float *x = mg_sample_generate(at("/checkpoints/ckpt_000000005.h5"), 10, 1, &shape);
    assert_int_equal(shape.c, 2);
    for (int i = 0; i < 20; i++)
        assert_true(isfinite(x[i]));
    mg_sample_write_h5(at("/samples.h5"), x, 10, shape, NULL, 0, at("/checkpoints/ckpt_000000005.h5"));
    hid_t f = H5Fopen(at("/samples.h5"), H5F_ACC_RDONLY, H5P_DEFAULT);
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
    mg_png_grid_write(at("/grid.png"), img, 4, 3, 5, 6);
    FILE *png = fopen(at("/grid.png"), "rb");
    assert_non_null(png);
    unsigned char sig[8];
    assert_int_equal(fread(sig, 1, 8, png), 8);
    fclose(png);
    assert_memory_equal(sig, "\x89PNG\r\n\x1a\n", 8);
    MG_EXPECT_FATAL(mg_png_grid_write(at("/bad.png"), img, 4, 2, 5, 6), "PNG grids need grey or RGB images");
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
    return cmocka_run_group_tests(tests, setup, teardown);
}
