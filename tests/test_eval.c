/* The evaluation end to end on tiny data: a small classifier trained here,
 * its model file (round trip, checksum, corruption), the reference-statistics cache
 * (reuse, and recomputation when the extractor or the data file changes), FID/IS/KID/
 * coverage of real data, a generator and a samples file computed over the ranks equal to
 * one process's computation, --save-features, mode counting on a real mixture, and the
 * conditional metrics (class accuracy, per-class FID, intra-FID) of a class-conditional
 * generator and of labelled real data, against one process's computation; a generator
 * that ignores labels, or has other classes than the extractor, gets none.
 * mpirun-np: 1 2 */
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mg_batch_streams.h"
#include "mg_cfg.h"
#include "mg_classifier.h"
#include "mg_convert.h"
#include "mg_dist.h"
#include "mg_eval.h"
#include "mg_eval_files.h"
#include "mg_extractor.h"
#include "mg_h5schema.h"
#include "mg_metrics.h"
#include "mg_test.h"
#include "mg_testenv.h"

#define SIDE 8
#define CLASSES 4

static char dir[256], train_path[320], test_path[320], model_path[320], model2_path[320], ring_path[320],
    cache_dir[320];

static const char *classifier_yaml =
    "classifier:\n"
    "  test_data: %s\n"
    "  epochs: 3\n"
    "  batch: 40\n"
    "  seed: %d\n"
    "  log_interval: 10\n"
    "  hflip: false\n"
    "  out: %s\n"
    "  optimizer: {kind: adam, lr: 0.01}\n"
    "  schedule: {kind: cosine, final_factor: 0.1}\n"
    "data: {path: %s, prefetch: false}\n"
    "model:\n"
    "  input: [1, 8, 8]\n"
    "  init: {kind: kaiming_normal}\n"
    "  layers:\n"
    "    - {kind: conv2d, out: 6, kernel: 3, stride: 2, padding: 1, bias: false}\n"
    "    - {kind: batchnorm}\n"
    "    - {kind: relu}\n"
    "    - {kind: flatten}\n"
    "    - {kind: linear, out: 12, bias: false}\n"
    "    - {kind: batchnorm}\n"
    "    - {kind: relu, name: features}\n"
    "    - {kind: linear, out: 4}\n";

static mg_classifier_result train(const char *out, int seed)
{
    return mg_test_classifier_train("classifier.yaml", classifier_yaml, test_path, seed, out, train_path);
}

static int setup(void **state)
{
    (void)state;
    mg_test_dir_make(dir, sizeof dir, "eval");
    snprintf(train_path, sizeof train_path, "%s/train.h5", dir);
    snprintf(test_path, sizeof test_path, "%s/test.h5", dir);
    snprintf(model_path, sizeof model_path, "%s/model/classifier.h5", dir);
    snprintf(model2_path, sizeof model2_path, "%s/model/other.h5", dir);
    snprintf(ring_path, sizeof ring_path, "%s/ring.h5", dir);
    snprintf(cache_dir, sizeof cache_dir, "%s/cache", dir);
    if (mg_dist_rank() == 0) {
        /* class y: a bright 3x3 block in quadrant y of a dim noisy 8x8 image */
        mg_test_write_quadrant_images(train_path, SIDE, 800, 1, "test_eval synthetic");
        mg_test_write_quadrant_images(test_path, SIDE, 300, 2, "test_eval synthetic");
        mg_convert_mixture(ring_path, MG_MIXTURE_RING, 4000, 5, 0);
    }
    mg_dist_barrier();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mg_test_dir_remove(dir);
    return 0;
}

static void test_classifier_trains_and_saves(void **state)
{
    (void)state;
    mg_classifier_result r = train(model_path, 3);
    if (!(r.test_accuracy > 0.9))
        fail_msg("test accuracy %.3f, expected > 0.9", r.test_accuracy);
    assert_true(r.final_loss < r.first_loss);
    assert_true(r.replicas_equal);
    assert_int_equal(r.feature_dim, 12);
    assert_int_equal(r.n_classes, CLASSES);
    /* the file rebuilds the same network: same checksum, same accuracy */
    mg_extractor ex;
    mg_extractor_load(&ex, model_path, 64);
    assert_true(ex.checksum == r.checksum);
    assert_int_equal(ex.dim, 12);
    assert_int_equal(ex.n_classes, CLASSES);
    MG_ASSERT_CLOSE(mg_classifier_accuracy(&ex.net, test_path), r.test_accuracy, 0, 1e-12, "reloaded accuracy");
    mg_extractor_free(&ex);
    /* a second extractor for the cache tests */
    mg_classifier_result r2 = train(model2_path, 4);
    assert_true(r2.checksum != r.checksum);
}

static void test_model_corruption(void **state)
{
    (void)state;
    if (mg_dist_rank() != 0)
        return;
    char bad[400];
    snprintf(bad, sizeof bad, "%s/corrupt.h5", dir);
    char cmd[900];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", model_path, bad);
    assert_int_equal(system(cmd), 0);
    /* change one parameter, as bit rot or a hand edit would */
    hid_t f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t set = H5Dopen2(f, "param", H5P_DEFAULT);
    hsize_t one = 1, at = 5;
    hid_t fs = H5Dget_space(set), ms = H5Screate_simple(1, &one, NULL);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &at, NULL, &one, NULL);
    float v = 0.123f;
    assert_true(H5Dwrite(set, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, &v) >= 0);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(set);
    H5Fclose(f);
    mg_extractor ex;
    MG_EXPECT_FATAL(mg_extractor_load(&ex, bad, 8), "checksum mismatch");
    /* a data file is not a model (a copy: the failed read leaves its HDF5 handle open) */
    snprintf(cmd, sizeof cmd, "cp '%s' '%s/data_copy.h5'", train_path, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(bad, sizeof bad, "%s/data_copy.h5", dir);
    MG_EXPECT_FATAL(mg_extractor_load(&ex, bad, 8), "format");
}

static mg_eval_cfg eval_cfg(const char *extractor)
{
    mg_eval_cfg c;
    mg_eval_cfg_default(&c);
    snprintf(c.extractor, sizeof c.extractor, "%s", extractor);
    snprintf(c.cache_dir, sizeof c.cache_dir, "%s", cache_dir);
    c.batch = 64;
    c.kid_subsets = 6;
    c.kid_subset_size = 100;
    return c;
}

static void test_reference_cache(void **state)
{
    (void)state;
    mg_eval_cfg c = eval_cfg(model_path);
    /* default reference: the extractor's training data; first time computed */
    mg_evaluator *e = mg_evaluator_create(&c);
    mg_eval_result r = mg_evaluator_run_file(e, test_path, true, 0, 1);
    mg_evaluator_free(e);
    assert_true(r.reference_recomputed);
    assert_string_equal(r.reference, train_path);
    assert_int_equal(r.reference_n, 800);
    /* then reused, with the same numbers */
    e = mg_evaluator_create(&c);
    mg_eval_result again = mg_evaluator_run_file(e, test_path, true, 0, 1);
    mg_evaluator_free(e);
    assert_false(again.reference_recomputed);
    if (mg_dist_rank() == 0) {
        MG_ASSERT_CLOSE(again.fid.fid, r.fid.fid, 0, 1e-12, "FID from the cache");
        MG_ASSERT_CLOSE(again.kid_mean, r.kid_mean, 0, 1e-12, "KID from the cache");
    }
    /* another extractor: stale, recomputed; and back to the first one */
    mg_eval_cfg c2 = eval_cfg(model2_path);
    e = mg_evaluator_create(&c2);
    assert_true(mg_evaluator_run_file(e, test_path, true, 0, 1).reference_recomputed);
    mg_evaluator_free(e);
    e = mg_evaluator_create(&c);
    assert_true(mg_evaluator_run_file(e, test_path, true, 0, 1).reference_recomputed);
    mg_evaluator_free(e);
    /* the data file changes (another modification time): stale, recomputed */
    mg_dist_barrier();
    if (mg_dist_rank() == 0) {
        struct timespec times[2] = {{.tv_sec = 1000000000, .tv_nsec = 0}, {.tv_sec = 1000000000, .tv_nsec = 0}};
        assert_int_equal(utimensat(AT_FDCWD, train_path, times, 0), 0);
    }
    mg_dist_barrier();
    e = mg_evaluator_create(&c);
    assert_true(mg_evaluator_run_file(e, test_path, true, 0, 1).reference_recomputed);
    mg_evaluator_free(e);
    e = mg_evaluator_create(&c);
    assert_false(mg_evaluator_run_file(e, test_path, true, 0, 1).reference_recomputed);
    mg_evaluator_free(e);
}

/* One process's answer: extractor over all n samples in batches of `batch` from 0, sums,
 * metrics; KID over all subsets. What `mpigan eval` computes on one rank. */
static void serial_metrics(const mg_eval_cfg *c, const float *x, int64_t n, uint64_t seed, mg_eval_result *out)
{
    mg_extractor ex;
    mg_extractor_load(&ex, c->extractor, c->batch);
    mg_data_info info;
    mg_h5_file *f = mg_h5_open_or_fail(train_path, &info);
    const int64_t nr = info.n, sz = SIDE * SIDE;
    unsigned char *raw = malloc((size_t)nr * sz);
    float *rx = malloc(sizeof(float) * (size_t)(nr * sz));
    mg_h5_read_samples(f, 0, nr, raw);
    for (int64_t i = 0; i < nr * sz; i++)
        rx[i] = (float)raw[i] / 127.5f - 1.0f;
    mg_h5_close(f);
    mg_data_info_free(&info);
    const int d = ex.dim, k = ex.n_classes;
    float *rf = malloc(sizeof(float) * (size_t)(nr * d)), *rp = malloc(sizeof(float) * (size_t)(nr * k));
    float *sf = malloc(sizeof(float) * (size_t)(n * d)), *sp = malloc(sizeof(float) * (size_t)(n * k));
    for (int64_t s = 0; s < nr; s += c->batch)
        mg_extractor_run(&ex, rx + s * sz, nr - s < c->batch ? nr - s : c->batch, rf + s * d, rp + s * k);
    for (int64_t s = 0; s < n; s += c->batch)
        mg_extractor_run(&ex, x + s * sz, n - s < c->batch ? n - s : c->batch, sf + s * d, sp + s * k);
    mg_eval_sums ref, smp;
    mg_eval_sums_init(&ref, d, k, c->splits, 0);
    mg_eval_sums_init(&smp, d, k, c->splits, 0);
    int *split = malloc(sizeof(int) * (size_t)(n > nr ? n : nr));
    mg_split_assignment(split, nr, c->splits, 0);
    mg_eval_sums_add(&ref, rf, rp, split, nr, "ref");
    mg_split_assignment(split, n, c->splits, seed);
    mg_eval_sums_add(&smp, sf, sp, split, n, "samples");
    double mu_r[64], cov_r[64 * 64], mu_s[64], cov_s[64 * 64];
    mg_gaussian_from_sums(ref.count[0], ref.feat_sum, ref.feat_outer, d, mu_r, cov_r, "ref");
    mg_gaussian_from_sums(smp.count[0], smp.feat_sum, smp.feat_outer, d, mu_s, cov_s, "samples");
    out->fid = mg_fid(mu_s, cov_s, mu_r, cov_r, d);
    mg_inception_score(&smp, &out->is_mean, &out->is_std);
    out->coverage = mg_class_coverage(&smp);
    double est[64] = {0};
    const int m = (int)(c->kid_subset_size < n ? c->kid_subset_size : n);
    mg_kid_subsets(sf, n, rf, nr, d, m, c->kid_subsets, seed, 0, 1, est);
    mg_kid_finish(est, c->kid_subsets, &out->kid_mean, &out->kid_std);
    mg_eval_sums_free(&ref);
    mg_eval_sums_free(&smp);
    mg_extractor_free(&ex);
    free(split);
    free(raw);
    free(rx);
    free(rf);
    free(rp);
    free(sf);
    free(sp);
}

static void expect_same(const mg_eval_result *a, const mg_eval_result *b, const char *what)
{
    char msg[160];
    snprintf(msg, sizeof msg, "%s: FID", what);
    MG_ASSERT_CLOSE(a->fid.fid, b->fid.fid, 1e-12, 1e-9, msg);
    snprintf(msg, sizeof msg, "%s: IS", what);
    MG_ASSERT_CLOSE(a->is_mean, b->is_mean, 0, 1e-9, msg);
    MG_ASSERT_CLOSE(a->is_std, b->is_std, 1e-12, 1e-9, msg);
    snprintf(msg, sizeof msg, "%s: KID", what);
    MG_ASSERT_CLOSE(a->kid_mean, b->kid_mean, 1e-12, 1e-9, msg);
    MG_ASSERT_CLOSE(a->kid_std, b->kid_std, 1e-12, 1e-9, msg);
    snprintf(msg, sizeof msg, "%s: coverage entropy", what);
    MG_ASSERT_CLOSE(a->coverage.entropy, b->coverage.entropy, 1e-12, 1e-9, msg);
    assert_int_equal(a->coverage.classes_over_1pct, b->coverage.classes_over_1pct);
}

static void test_real_data_and_features_file(void **state)
{
    (void)state;
    mg_eval_cfg c = eval_cfg(model_path);
    mg_evaluator *e = mg_evaluator_create(&c);
    char feats[400];
    snprintf(feats, sizeof feats, "%s/features.h5", dir);
    mg_evaluator_save_features(e, feats);
    mg_eval_result r = mg_evaluator_run_file(e, test_path, true, 0, 7);
    mg_evaluator_free(e);
    mg_extractor ex; /* the classifier's test accuracy (collective: counts summed over ranks) */
    mg_extractor_load(&ex, model_path, 64);
    const double accuracy = mg_classifier_accuracy(&ex.net, test_path);
    mg_extractor_free(&ex);
    if (mg_dist_rank() != 0)
        return;
    /* real test data against real training data: a small FID, a confident classifier's IS
     * near the class count, every class covered */
    assert_int_equal(r.n, 300);
    assert_true(r.fid.fid >= 0 && r.fid.fid < 1.0 * r.fid.trace_sqrt);
    assert_true(r.is_mean > 2.5 && r.is_mean <= CLASSES + 1e-9);
    assert_int_equal(r.coverage.classes_over_1pct, CLASSES);
    /* the same as one process computing it alone */
    mg_data_info info;
    mg_h5_file *f = mg_h5_open_or_fail(test_path, &info);
    unsigned char *raw = malloc(300 * SIDE * SIDE);
    float *x = malloc(sizeof(float) * 300 * SIDE * SIDE);
    mg_h5_read_samples(f, 0, 300, raw);
    for (int i = 0; i < 300 * SIDE * SIDE; i++)
        x[i] = (float)raw[i] / 127.5f - 1.0f;
    mg_h5_close(f);
    mg_data_info_free(&info);
    mg_eval_result s;
    serial_metrics(&c, x, 300, 7, &s);
    expect_same(&r, &s, "real test data");
    /* the test file's labels: the class accuracy is the classifier's test accuracy, and
     * real against real data per class gives a small intra-FID */
    assert_true(r.labelled && r.class_fid_done);
    MG_ASSERT_CLOSE(r.class_accuracy, accuracy, 0, 1e-12, "real class accuracy");
    double mean = 0;
    for (int y = 0; y < CLASSES; y++)
        mean += r.class_fid[y] / CLASSES;
    MG_ASSERT_CLOSE(r.intra_fid, mean, 1e-12, 1e-12, "intra-FID of real data");
    assert_true(isfinite(r.intra_fid) && r.intra_fid >= 0);
    /* the features file holds what FID was computed from */
    hid_t h = H5Fopen(feats, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(h >= 0);
    float *ff = malloc(sizeof(float) * 300 * 12), *pp = malloc(sizeof(float) * 300 * CLASSES);
    hid_t d1 = H5Dopen2(h, "features", H5P_DEFAULT), d2 = H5Dopen2(h, "probs", H5P_DEFAULT);
    assert_true(H5Dread(d1, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, ff) >= 0);
    assert_true(H5Dread(d2, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, pp) >= 0);
    H5Dclose(d1);
    H5Dclose(d2);
    H5Fclose(h);
    mg_eval_sums sums;
    mg_eval_sums_init(&sums, 12, CLASSES, 10, 0);
    int split[300];
    mg_split_assignment(split, 300, 10, 7);
    mg_eval_sums_add(&sums, ff, pp, split, 300, "features file");
    double is_mean, is_std;
    mg_inception_score(&sums, &is_mean, &is_std);
    MG_ASSERT_CLOSE(is_mean, r.is_mean, 0, 1e-9, "IS recomputed from the features file");
    mg_eval_sums_free(&sums);
    free(ff);
    free(pp);
    free(raw);
    free(x);
}

static void test_generator_and_samples_file(void **state)
{
    (void)state;
    /* an untrained generator: noise (8) -> 64 -> tanh -> (1, 8, 8) */
    mg_cfg *gcfg = mg_cfg_parse("generator:\n  input: [8]\n  layers:\n"
                                "    - {kind: linear, out: 64, activation: tanh}\n"
                                "    - {kind: reshape, shape: [1, 8, 8]}\n",
                                "g.yaml");
    mg_net G;
    mg_net_from_cfg(&G, "G", mg_cfg_require(mg_cfg_root(gcfg), "generator"), (mg_shape){0, 0, 0}, 64);
    mg_rng rng;
    mg_rng_init(&rng, 9, mg_rng_stream_id(MG_STREAM_INIT, 0));
    mg_net_init_params(&G, &rng);
    mg_eval_cfg c = eval_cfg(model_path);
    mg_evaluator *e = mg_evaluator_create(&c);
    const int64_t n = 257;
    mg_eval_result r = mg_evaluator_run_generator(e, &G, n, 11);
    /* its samples, as `mpigan sample -o x.h5` would write them, score the same */
    float *x = malloc(sizeof(float) * (size_t)n * 64), *z = malloc(sizeof(float) * (size_t)n * 8);
    mg_batch_streams_normals(z, (int)n, 8, 11, MG_STREAM_EVAL, 0);
    for (int64_t s = 0; s < n; s += 64) {
        const int m = (int)(n - s < 64 ? n - s : 64);
        memcpy(x + s * 64, mg_net_forward(&G, z + s * 8, m, MG_EVAL), sizeof(float) * (size_t)m * 64);
    }
    char samples[400];
    snprintf(samples, sizeof samples, "%s/samples_%d.h5", dir, mg_dist_rank());
    hid_t h = H5Fcreate(samples, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[4] = {(hsize_t)n, 1, SIDE, SIDE};
    hid_t sp = H5Screate_simple(4, dims, NULL);
    hid_t ds = H5Dcreate2(h, "images", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Fclose(h);
    mg_eval_result rf = mg_evaluator_run_file(e, samples, false, 0, 11);
    mg_evaluator_free(e);
    if (mg_dist_rank() == 0) {
        expect_same(&rf, &r, "generator vs its samples file");
        mg_eval_result s;
        serial_metrics(&c, x, n, 11, &s);
        expect_same(&r, &s, "generator, ranks vs one process");
        /* noise is far from the data: a large FID */
        assert_true(r.fid.fid > 0);
    }
    free(x);
    free(z);
    mg_net_free(&G);
    mg_cfg_free(gcfg);
}

/* A tiny generator of 8x8 images: noise (8) -> 64 -> tanh; `extra` adds lines to its
 * config (classes, condition). */
static void make_generator(mg_net *G, mg_cfg **cfg, const char *extra)
{
    char text[600];
    snprintf(text, sizeof text,
             "generator:\n  input: [8]\n%s  layers:\n"
             "    - {kind: linear, out: 64, activation: tanh}\n"
             "    - {kind: reshape, shape: [1, 8, 8]}\n",
             extra);
    *cfg = mg_cfg_parse(text, "g.yaml");
    mg_net_from_cfg(G, "G", mg_cfg_require(mg_cfg_root(*cfg), "generator"), (mg_shape){0, 0, 0}, 64);
    mg_rng rng;
    mg_rng_init(&rng, 9, mg_rng_stream_id(MG_STREAM_INIT, 0));
    mg_net_init_params(G, &rng);
}

/* Features, probabilities and labels of all of a labelled data file, by one process. */
static int64_t extract_file(mg_extractor *ex, const char *path, float **feats, float **probs, int **labels)
{
    mg_data_info info;
    mg_h5_file *f = mg_h5_open_or_fail(path, &info);
    const int64_t n = info.n, sz = SIDE * SIDE;
    unsigned char *raw = malloc((size_t)(n * sz));
    float *x = malloc(sizeof(float) * (size_t)(n * sz));
    int32_t *y32 = malloc(sizeof(int32_t) * (size_t)n);
    mg_h5_read_samples(f, 0, n, raw);
    mg_h5_read_labels(f, 0, n, y32);
    mg_h5_close(f);
    mg_data_info_free(&info);
    for (int64_t i = 0; i < n * sz; i++)
        x[i] = (float)raw[i] / 127.5f - 1.0f;
    *feats = malloc(sizeof(float) * (size_t)(n * ex->dim));
    *probs = malloc(sizeof(float) * (size_t)(n * ex->n_classes));
    *labels = malloc(sizeof(int) * (size_t)n);
    mg_extractor_run(ex, x, n, *feats, *probs);
    for (int64_t i = 0; i < n; i++)
        (*labels)[i] = y32[i];
    free(raw);
    free(x);
    free(y32);
    return n;
}

/* A class-conditional generator: its labels drawn per item as `mpigan eval` draws them;
 * class accuracy, per-class FID and intra-FID over the ranks equal one process's, and
 * the fields are in the JSON report. */
static void test_conditional_generator(void **state)
{
    (void)state;
    mg_net G;
    mg_cfg *gcfg;
    make_generator(&G, &gcfg, "  classes: 4\n  condition: {kind: concat, dim: 3}\n");
    assert_true(G.conditional);
    mg_eval_cfg c = eval_cfg(model_path);
    mg_evaluator *e = mg_evaluator_create(&c);
    const int64_t n = 601;
    const uint64_t seed = 13;
    mg_eval_result r = mg_evaluator_run_generator(e, &G, n, seed);
    mg_evaluator_free(e);
    if (mg_dist_rank() == 0) {
        assert_true(r.labelled && r.class_fid_done);
        assert_true(r.class_accuracy >= 0 && r.class_accuracy <= 1);
        assert_true(isfinite(r.intra_fid));
        double mean = 0, count = 0;
        for (int y = 0; y < CLASSES; y++)
            mean += r.class_fid[y] / CLASSES, count += r.class_count[y];
        MG_ASSERT_CLOSE(r.intra_fid, mean, 1e-12, 1e-12, "intra-FID = mean of the per-class FIDs");
        MG_ASSERT_CLOSE(count, (double)n, 0, 0, "labelled samples");
        /* one process: the same noise and labels, the extractor, the labelled sums */
        float *z = malloc(sizeof(float) * (size_t)n * 8), *x = malloc(sizeof(float) * (size_t)n * 64);
        int *y = malloc(sizeof(int) * (size_t)n);
        mg_batch_streams_normals(z, (int)n, 8, seed, MG_STREAM_EVAL, 0);
        mg_batch_streams_labels(y, (int)n, CLASSES, NULL, seed, MG_STREAM_LABELS, 0);
        for (int64_t s = 0; s < n; s += 64) {
            const int m = (int)(n - s < 64 ? n - s : 64);
            mg_net_set_labels(&G, y + s);
            memcpy(x + s * 64, mg_net_forward(&G, z + s * 8, m, MG_EVAL), sizeof(float) * (size_t)m * 64);
        }
        mg_net_set_labels(&G, NULL);
        mg_extractor ex;
        mg_extractor_load(&ex, model_path, 64);
        const int d = ex.dim;
        float *sf = malloc(sizeof(float) * (size_t)n * d), *sp = malloc(sizeof(float) * (size_t)n * CLASSES);
        mg_extractor_run(&ex, x, n, sf, sp);
        float *rf, *rp;
        int *ry;
        const int64_t nr = extract_file(&ex, train_path, &rf, &rp, &ry);
        mg_eval_sums smp, ref;
        mg_eval_sums_init_labelled(&smp, d, CLASSES, 0, 0, CLASSES);
        mg_eval_sums_init_labelled(&ref, d, CLASSES, 0, 0, CLASSES);
        mg_eval_sums_add_labels(&smp, sf, sp, y, n, "samples");
        mg_eval_sums_add_labels(&ref, rf, rp, ry, nr, "reference");
        double ref_mu[CLASSES * 12], ref_cov[CLASSES * 144], fid[CLASSES];
        for (int k = 0; k < CLASSES; k++)
            mg_gaussian_from_sums(ref.label_count[k], ref.label_feat_sum + k * d, ref.label_feat_outer + k * d * d, d,
                                  ref_mu + k * d, ref_cov + k * d * d, "reference class");
        const double intra = mg_class_fids(&smp, ref.label_count, ref_mu, ref_cov, fid);
        MG_ASSERT_CLOSE(r.intra_fid, intra, 1e-12, 1e-9, "intra-FID, ranks vs one process");
        for (int k = 0; k < CLASSES; k++)
            MG_ASSERT_CLOSE(r.class_fid[k], fid[k], 1e-12, 1e-9, "per-class FID, ranks vs one process");
        MG_ASSERT_CLOSE(r.class_accuracy, mg_label_accuracy(&smp, NULL), 0, 0, "class accuracy, ranks vs one process");
        char *json = mg_eval_result_json(&r);
        assert_non_null(strstr(json, "\"class_accuracy\": "));
        assert_non_null(strstr(json, "\"intra_fid\": "));
        assert_non_null(strstr(json, "\"class_fid\": ["));
        assert_non_null(strstr(json, "\"class_accuracy_per_class\": ["));
        assert_null(strstr(json, "conditional_note"));
        mg_free(json);
        char *text = mg_eval_result_text(&r);
        assert_non_null(strstr(text, "intra-FID"));
        mg_free(text);
        mg_eval_sums_free(&smp);
        mg_eval_sums_free(&ref);
        mg_extractor_free(&ex);
        free(z), free(x), free(y), free(sf), free(sp), free(rf), free(rp), free(ry);
    }
    mg_net_free(&G);
    mg_cfg_free(gcfg);
}

/* No conditional fields for a generator that ignores labels (classes declared, no layer
 * reads them), and a skip with the reason for one with other classes than the extractor. */
static void test_generator_without_usable_labels(void **state)
{
    (void)state;
    mg_eval_cfg c = eval_cfg(model_path);
    mg_evaluator *e = mg_evaluator_create(&c);
    mg_net G;
    mg_cfg *gcfg;
    make_generator(&G, &gcfg, "  classes: 4\n");
    assert_false(G.conditional);
    mg_eval_result r = mg_evaluator_run_generator(e, &G, 200, 3);
    mg_net_free(&G);
    mg_cfg_free(gcfg);
    if (mg_dist_rank() == 0) {
        assert_false(r.labelled);
        char *json = mg_eval_result_json(&r);
        assert_null(strstr(json, "class_accuracy"));
        assert_null(strstr(json, "intra_fid"));
        assert_null(strstr(json, "class_fid"));
        assert_null(strstr(json, "conditional_note"));
        mg_free(json);
    }
    make_generator(&G, &gcfg, "  classes: 3\n  condition: {kind: concat, dim: 2}\n");
    r = mg_evaluator_run_generator(e, &G, 200, 3);
    mg_net_free(&G);
    mg_cfg_free(gcfg);
    mg_evaluator_free(e);
    if (mg_dist_rank() == 0) {
        assert_false(r.labelled);
        assert_non_null(strstr(r.conditional_note, "the generator has 3 classes"));
        assert_non_null(strstr(r.conditional_note, "classifies into 4"));
        char *json = mg_eval_result_json(&r);
        assert_null(strstr(json, "intra_fid"));
        assert_non_null(strstr(json, "\"conditional_note\": "));
        mg_free(json);
    }
}

static void test_mixture_modes(void **state)
{
    (void)state;
    mg_data_info info;
    mg_h5_file *f = mg_h5_open_or_fail(ring_path, &info);
    mg_mixture_info mix;
    assert_true(mg_h5_read_mixture(f, &mix));
    mg_h5_close(f);
    mg_data_info_free(&info);
    char png[400];
    snprintf(png, sizeof png, "%s/ring_%d.png", dir, mg_dist_rank());
    mg_eval_result r = mg_eval_mixture_file(ring_path, true, 2500, &mix, 100, png);
    if (mg_dist_rank() != 0)
        return;
    assert_true(r.mixture);
    assert_int_equal(r.modes.n_modes, 8);
    assert_int_equal(r.modes.modes_covered, 8);
    /* real data: P(|x - mu| <= 3 sigma) in 2-D is 1 - exp(-9/2) = 0.9889 */
    MG_ASSERT_CLOSE(r.modes.high_quality_fraction, 1 - exp(-4.5), 0.006, 0, "high-quality fraction of real data");
    assert_true(r.modes.kl_uniform < 0.01);
    struct stat st;
    assert_int_equal(stat(png, &st), 0);
    assert_true(st.st_size > 1000);
    char *json = mg_eval_result_json(&r);
    assert_non_null(strstr(json, "\"modes_covered\": 8"));
    mg_free(json);
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classifier_trains_and_saves),
        cmocka_unit_test(test_model_corruption),
        cmocka_unit_test(test_reference_cache),
        cmocka_unit_test(test_real_data_and_features_file),
        cmocka_unit_test(test_generator_and_samples_file),
        cmocka_unit_test(test_conditional_generator),
        cmocka_unit_test(test_generator_without_usable_labels),
        cmocka_unit_test(test_mixture_modes),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    mg_dist_finalize();
    return failed ? 1 : 0;
}
