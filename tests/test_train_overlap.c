/* Overlap of the gradient reduction with backward (train.overlap) and the step-time split
 * in metrics.jsonl.
 *
 * - The bucket plan covers the reduction buffer, tail first, one bucket per layer with
 *   parameters at the smallest bucket size and one bucket at a large size.
 * - 20 steps with overlap on (one bucket per layer) end with parameters, BatchNorm state
 *   and optimizer moments BITWISE equal to the blocking run, on a small MLP GAN and a
 *   small convolutional one (synthetic data). At np <= 2 this is guaranteed: each element
 *   is the sum of at most two floats, whatever the order. (Observed bitwise at np 4 too,
 *   but MPI may pick another summation order per message size there.)
 * - With overlap, an injected NaN still stops every rank, and a stop request still ends
 *   the run with a checkpoint (the extras travel in the first bucket).
 * - metrics.jsonl has the time split: every time_* field present and non-negative, the
 *   parts add up to no more than the window's wall time, peak RSS positive; without
 *   measure_wait there is no time_wait_s.
 * mpirun-np: 1 2 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "mg_cfg_override.h"
#include "mg_dist.h"
#include "mg_grad_overlap.h"
#include "mg_test.h"
#include "mg_testenv.h"
#include "mg_train.h"

/* this run's temporary directory (mg_test_dir_make): each trainer's run_dir is in it */
static char work[256];

static int setup(void **state)
{
    (void)state;
    mg_test_dir_make(work, sizeof work, "train_overlap");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mg_test_dir_remove(work);
    return 0;
}

/* The run directory of the trainer named tag, in work. */
static void run_dir_of(char *dir, size_t size, const char *tag)
{
    snprintf(dir, size, "%s/%s_np%d", work, tag, mg_dist_size());
}

static const char *const conv_config =
    "generator:\n"
    "  input: [8]\n"
    "  layers:\n"
    "    - {kind: linear, out: 128, bias: false}\n"
    "    - {kind: batchnorm}\n"
    "    - {kind: relu}\n"
    "    - {kind: reshape, shape: [8, 4, 4]}\n"
    "    - {kind: conv_transpose2d, out: 4, kernel: 4, stride: 2, padding: 1, bias: false}\n"
    "    - {kind: batchnorm}\n"
    "    - {kind: relu}\n"
    "    - {kind: conv_transpose2d, out: 1, kernel: 4, stride: 2, padding: 1}\n"
    "    - {kind: tanh}\n"
    "discriminator:\n"
    "  input: [1, 16, 16]\n"
    "  layers:\n"
    "    - {kind: conv2d, out: 4, kernel: 4, stride: 2, padding: 1, activation: leaky_relu}\n"
    "    - {kind: conv2d, out: 8, kernel: 4, stride: 2, padding: 1, bias: false}\n"
    "    - {kind: batchnorm}\n"
    "    - {kind: leaky_relu, slope: 0.2}\n"
    "    - {kind: flatten}\n"
    "    - {kind: linear, out: 1}\n"
    "train: {loss: non_saturating, batch: 8, steps: 20, seed: 5, log_interval: 5, sample_interval: 0}\n"
    "optimizer_g: {kind: adam, lr: 2.0e-4, beta1: 0.5, beta2: 0.999}\n"
    "optimizer_d: {kind: adam, lr: 2.0e-4, beta1: 0.5, beta2: 0.999}\n"
    "data: {source: synthetic}\n"
    "checkpoint: {interval: 0, keep_last: 1}\n";

/* A trainer for config (a file path, or NULL for conv_config) with overrides. */
static mg_trainer *make_trainer(const char *path, const char *tag, const char *const *sets, int n_sets)
{
    mg_cfg *cfg = path ? mg_cfg_load_file(path) : mg_cfg_parse(conv_config, "conv.yaml");
    char dir[300], set[320];
    run_dir_of(dir, sizeof dir, tag);
    snprintf(set, sizeof set, "run_dir=%s", dir);
    mg_cfg_override(cfg, set);
    for (int i = 0; i < n_sets; i++)
        mg_cfg_override(cfg, sets[i]);
    return mg_trainer_create(cfg, false, false);
}

static void test_bucket_plan(void **state)
{
    (void)state;
    mg_trainer *t = make_trainer(NULL, "plan", NULL, 0);
    const mg_net *nets[2] = {mg_trainer_G(t), mg_trainer_D(t)};
    for (int k = 0; k < 2; k++) {
        const mg_net *net = nets[k];
        int with_params = 0;
        for (int i = 0; i < net->n_layers; i++)
            with_params += net->layers[i].n_param > 0;
        mg_grad_overlap o;
        mg_grad_overlap_init(&o, net, 4, 1e-6);
        assert_int_equal(o.n_buckets, with_params);
        assert_int_equal(o.hi[0], net->n_param + 4);
        for (int b = 1; b < o.n_buckets; b++)
            assert_int_equal(o.hi[b], o.lo[b - 1]);
        assert_int_equal(o.lo[o.n_buckets - 1], 0);
        mg_grad_overlap_free(&o);
        mg_grad_overlap_init(&o, net, 4, 64.0);
        assert_int_equal(o.n_buckets, 1);
        assert_int_equal(o.lo[0], 0);
        assert_int_equal(o.hi[0], net->n_param + 4);
        mg_grad_overlap_free(&o);
    }
    mg_trainer_free(t);
}

/* Trains 20 steps with overlap off and on; every buffer must agree bitwise. */
static void compare_overlap(const char *path, const char *tag)
{
    const char *off[] = {"train.overlap.enabled=false"};
    const char *on[] = {"train.overlap.enabled=true", "train.overlap.bucket_mb=0.000001"};
    char tag_off[64], tag_on[64];
    snprintf(tag_off, sizeof tag_off, "%s_off", tag);
    snprintf(tag_on, sizeof tag_on, "%s_on", tag);
    mg_trainer *a = make_trainer(path, tag_off, off, 1), *b = make_trainer(path, tag_on, on, 2);
    mg_train_result ra = mg_trainer_run(a), rb = mg_trainer_run(b);
    assert_int_equal(ra.status, MG_TRAIN_DONE);
    assert_int_equal(rb.status, MG_TRAIN_DONE);
    assert_int_equal(rb.step, 20);
    assert_true(rb.replicas_equal);
    const mg_net *nets_a[2] = {mg_trainer_G(a), mg_trainer_D(a)}, *nets_b[2] = {mg_trainer_G(b), mg_trainer_D(b)};
    int differ = 0;
    for (int k = 0; k < 2; k++) {
        const mg_net *x = nets_a[k], *y = nets_b[k];
        assert_int_equal(x->n_param, y->n_param);
        if (memcmp(x->param, y->param, x->n_param * sizeof(float)) ||
            memcmp(x->state, y->state, x->n_state * sizeof(float))) {
            double worst = 0;
            for (size_t i = 0; i < x->n_param; i++)
                worst = fmax(worst, fabs((double)x->param[i] - y->param[i]) / fmax(fabs((double)x->param[i]), 1e-6));
            print_error("%s %s: overlap changes the parameters (largest relative difference %.3g)\n", tag, x->name,
                        worst);
            differ = 1;
        }
    }
    assert_float_equal(ra.loss_d, rb.loss_d, 0);
    assert_float_equal(ra.loss_g, rb.loss_g, 0);
    mg_trainer_free(a);
    mg_trainer_free(b);
    if (mg_dist_any(differ))
        fail_msg("%s: overlap on and off disagree", tag);
}

static void test_overlap_equals_blocking_mlp(void **state)
{
    (void)state;
    compare_overlap("configs/tiny.yaml", "mlp");
}

static void test_overlap_equals_blocking_conv(void **state)
{
    (void)state;
    compare_overlap(NULL, "conv");
}

static void test_overlap_nan_and_stop(void **state)
{
    (void)state;
    const char *nan[] = {"train.overlap.enabled=true", "train.overlap.bucket_mb=0.000001", "debug.inject_nan_at_step=3"};
    mg_trainer *t = make_trainer("configs/tiny.yaml", "nan", nan, 3);
    mg_train_result r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_NAN);
    assert_int_equal(r.step, 3);
    mg_trainer_free(t);
    const char *stop[] = {"train.overlap.enabled=true", "train.overlap.bucket_mb=0.000001", "debug.stop_at_step=7"};
    t = make_trainer("configs/tiny.yaml", "stop", stop, 3);
    r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_STOPPED);
    assert_int_equal(r.step, 7);
    mg_trainer_free(t);
}

/* The number after "key": in a JSON line; false when the key is missing. */
static bool json_field(const char *line, const char *key, double *v)
{
    char pat[80];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(line, pat);
    if (!p)
        return false;
    char *end;
    *v = strtod(p + strlen(pat), &end);
    return end != p + strlen(pat);
}

static void check_metrics(const char *tag, bool overlap)
{
    char dir[300], path[320];
    run_dir_of(dir, sizeof dir, tag);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static const char *const parts[] = {"time_compute_s", "time_allreduce_s", "time_data_s", "time_wait_s",
                                        "time_bn_sync_s"};
    char line[4096];
    int lines = 0;
    while (fgets(line, sizeof line, f)) {
        double v = 0, sum = 0, window = 0, rss = 0, cmax = 0;
        for (int i = 0; i < 5; i++) {
            if (!json_field(line, parts[i], &v))
                fail_msg("%s: no %s in %s", tag, parts[i], line);
            if (!(v >= 0))
                fail_msg("%s: %s = %g is negative", tag, parts[i], v);
            sum += v;
        }
        assert_true(json_field(line, "time_window_s", &window) && window > 0);
        assert_true(json_field(line, "time_compute_max_s", &cmax));
        double cmin = 0, slowest = -1;
        assert_true(json_field(line, "time_compute_min_s", &cmin) && cmin > 0);
        assert_true(json_field(line, "slowest_rank", &slowest));
        assert_true(slowest >= 0 && slowest < mg_dist_size() && slowest == (int)slowest);
        assert_true(json_field(line, "peak_rss_mb", &rss) && rss > 1);
        assert_true(json_field(line, "peak_rss_mb_mean", &v) && v > 1 && v <= rss);
        json_field(line, "time_compute_s", &v);
        assert_true(cmin <= v * (1 + 1e-12) && v <= cmax * (1 + 1e-12)); /* min <= mean <= max */
        if (mg_dist_size() == 1)
            assert_true(cmin == cmax && slowest == 0);
        /* means over ranks of parts of each rank's window: at most the window (a rank's
         * window may start a little before rank 0's: 1 ms and 5% of slack, for a loaded machine) */
        if (sum > 1.05 * window + 1e-3)
            fail_msg("%s (overlap %d): parts add up to %g s, more than the window's %g s", tag, overlap, sum, window);
        if (mg_dist_size() == 1) { /* one rank: the sums return at once, so only a small
                                      share of the window (preemption on a loaded machine) */
            json_field(line, "time_bn_sync_s", &v);
            if (v > 1e-3 + 0.2 * window)
                fail_msg("%s: one rank spent %g s of a %g s window in BatchNorm sums", tag, v, window);
        }
        lines++;
    }
    fclose(f);
    assert_int_equal(lines, 4);
}

static void test_metrics_time_split(void **state)
{
    (void)state;
    for (int ov = 0; ov < 2; ov++) {
        const char *sets[] = {ov ? "train.overlap.enabled=true" : "train.overlap.enabled=false",
                              "train.overlap.bucket_mb=0.001"};
        const char *tag = ov ? "metrics_on" : "metrics_off";
        mg_trainer *t = make_trainer(NULL, tag, sets, 2);
        mg_train_result r = mg_trainer_run(t);
        assert_int_equal(r.status, MG_TRAIN_DONE);
        mg_trainer_free(t);
        mg_dist_barrier(); /* rank 0 has written the file; every rank reads it and judges alike,
                              so a failure leaves no rank waiting for the others */
        check_metrics(tag, ov);
    }
    /* measure_wait: false drops the barriers and the field */
    const char *no_wait[] = {"train.measure_wait=false"};
    mg_trainer *t = make_trainer(NULL, "metrics_nowait", no_wait, 1);
    assert_int_equal(mg_trainer_run(t).status, MG_TRAIN_DONE);
    mg_trainer_free(t);
    mg_dist_barrier();
    {
        char dir[300], path[320], line[4096];
        run_dir_of(dir, sizeof dir, "metrics_nowait");
        snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        double v;
        assert_non_null(fgets(line, sizeof line, f));
        assert_false(json_field(line, "time_wait_s", &v));
        assert_true(json_field(line, "time_allreduce_s", &v) && v >= 0);
        fclose(f);
    }
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_plan),
        cmocka_unit_test(test_overlap_equals_blocking_mlp),
        cmocka_unit_test(test_overlap_equals_blocking_conv),
        cmocka_unit_test(test_overlap_nan_and_stop),
        cmocka_unit_test(test_metrics_time_split),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    failed = mg_dist_any(failed != 0) ? 1 : 0;
    mg_dist_finalize();
    return failed;
}
