/* The trainer's config: unknown keys, wrong types, out-of-range values and a batch that
 * does not split over the ranks are errors naming file:line:col and the key; --set
 * overrides; the resolved config reads back to the same settings; the HDF5 data section
 * is parsed by the loader's strict reader. No MPI needed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_cfg_override.h"
#include "mg_test.h"
#include "mg_train.h"

static char *tiny_text(void)
{
    FILE *f = fopen("configs/tiny.yaml", "rb");
    assert_non_null(f);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

/* tiny.yaml with one line replaced (old must occur once). */
static mg_cfg *edited(const char *old, const char *replacement)
{
    static char text[8192];
    const char *base = tiny_text();
    const char *at = strstr(base, old);
    assert_non_null(at);
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - base), base, replacement, at + strlen(old));
    return mg_cfg_parse(text, "bad.yaml");
}

/* Reads everything a training run reads, then rejects unread keys. */
static void read_all(mg_cfg *cfg, int n_ranks)
{
    mg_train_cfg tc;
    mg_train_cfg_read(&tc, cfg, n_ranks);
    mg_net G, D;
    mg_net_from_cfg(&G, "G", mg_cfg_get(mg_cfg_root(cfg), "generator"), (mg_shape){0, 0, 0}, 1);
    mg_net_from_cfg(&D, "D", mg_cfg_get(mg_cfg_root(cfg), "discriminator"), G.out, 1);
    mg_net_free(&G);
    mg_net_free(&D);
    mg_cfg_check_unused(cfg);
}

static void test_unknown_key(void **state)
{
    (void)state;
    mg_cfg *cfg = edited("  n_critic: 1\n", "  n_critics: 1\n");
    MG_EXPECT_FATAL(read_all(cfg, 1), "bad.yaml: unknown key 'n_critics' at line 22, column 3");
    mg_cfg_free(cfg);
}

static void test_wrong_type(void **state)
{
    (void)state;
    mg_cfg *cfg = edited("  batch: 16\n", "  batch: sixteen\n");
    MG_EXPECT_FATAL(read_all(cfg, 1), "bad.yaml:23:10 (train.batch): expected an integer, found 'sixteen'");
    mg_cfg_free(cfg);
    cfg = edited("  loss: non_saturating\n", "  loss: nonsaturating\n");
    MG_EXPECT_FATAL(read_all(cfg, 1), "bad.yaml:21:9 (train.loss): unknown value 'nonsaturating'");
    mg_cfg_free(cfg);
}

static void test_out_of_range(void **state)
{
    (void)state;
    mg_cfg *cfg = edited("  n_critic: 1\n", "  n_critic: 0\n");
    MG_EXPECT_FATAL(read_all(cfg, 1), "bad.yaml:22:13 (train.n_critic): value 0 out of range");
    mg_cfg_free(cfg);
}

static void test_batch_must_split(void **state)
{
    (void)state;
    mg_cfg *cfg = mg_cfg_parse(tiny_text(), "tiny.yaml");
    MG_EXPECT_FATAL(read_all(cfg, 3), "tiny.yaml:23:10 (train.batch): global batch 16 does not split over 3 ranks");
    mg_cfg_free(cfg);
}

static void test_wasserstein_needs_clip(void **state)
{
    (void)state;
    mg_cfg *cfg = edited("  loss: non_saturating\n", "  loss: wasserstein\n");
    MG_EXPECT_FATAL(read_all(cfg, 1), "loss wasserstein needs an explicit 'clip'");
    mg_cfg_free(cfg);
    cfg = edited("  n_critic: 1\n", "  n_critic: 1\n  clip: 0.01\n");
    MG_EXPECT_FATAL(read_all(cfg, 1), "weight clipping belongs to loss: wasserstein");
    mg_cfg_free(cfg);
}

/* data.path selects the HDF5 loader, whose keys are parsed strictly; loader keys without
 * a path, and source with path, are errors naming the key. */
static void test_hdf5_data_section(void **state)
{
    (void)state;
    mg_cfg *cfg =
        edited("data: {source: ring8}", "data: {path: data/x.h5, sampler: shard, memory_mb: 64, prefetch: false}");
    mg_train_cfg tc;
    mg_train_cfg_read(&tc, cfg, 2);
    assert_int_equal(tc.source, MG_DATA_HDF5);
    assert_string_equal(tc.loader.path, "data/x.h5");
    assert_int_equal(tc.loader.sampler, MG_SAMPLER_SHARD);
    assert_int_equal(tc.loader.memory_bytes, (size_t)64 << 20);
    assert_false(tc.loader.prefetch);
    assert_int_equal(tc.loader.seed, 3); /* the run's seed */
    char *text = mg_train_cfg_resolved(&tc, cfg);
    assert_non_null(strstr(text, "data: {path: data/x.h5, sampler: shard, memory_mb: 64, prefetch: false, seed: 3}"));
    mg_cfg *again = mg_cfg_parse(text, "resolved.yaml");
    mg_train_cfg second;
    mg_train_cfg_read(&second, again, 2);
    assert_memory_equal(&second.loader, &tc.loader, sizeof tc.loader);
    mg_cfg_free(again);
    mg_free(text);
    mg_cfg_free(cfg);

    cfg = edited("data: {source: ring8}", "data: {path: data/x.h5, sampler: globl}");
    MG_EXPECT_FATAL(read_all(cfg, 1), "bad.yaml:33:34 (data.sampler): unknown value 'globl'");
    mg_cfg_free(cfg);
    cfg = edited("data: {source: ring8}", "data: {path: data/x.h5, shuffle: true}");
    MG_EXPECT_FATAL(read_all(cfg, 1), "unknown key 'shuffle'");
    mg_cfg_free(cfg);
    cfg = edited("data: {source: ring8}", "data: {source: ring8, path: data/x.h5}");
    MG_EXPECT_FATAL(read_all(cfg, 1), "both source and path");
    mg_cfg_free(cfg);
    cfg = edited("data: {source: ring8}", "data: {source: ring8, sampler: shard}");
    MG_EXPECT_FATAL(read_all(cfg, 1), "(data.sampler): sampler applies to HDF5 data only");
    mg_cfg_free(cfg);
}

/* train.sample_interval and train.threads: defaults, ranges, resolved config. */
static void test_samples_and_threads(void **state)
{
    (void)state;
    mg_cfg *cfg = mg_cfg_parse(tiny_text(), "tiny.yaml");
    mg_train_cfg tc;
    mg_train_cfg_read(&tc, cfg, 1);
    assert_int_equal(tc.sample_interval, 500);
    assert_int_equal(tc.threads, 0);
    mg_cfg_override(cfg, "train.threads=-1");
    MG_EXPECT_FATAL(mg_train_cfg_read(&tc, cfg, 1), "(train.threads): value -1 out of range");
    mg_cfg_override(cfg, "train.threads=3");
    mg_cfg_override(cfg, "train.sample_interval=0");
    mg_train_cfg_read(&tc, cfg, 1);
    char *text = mg_train_cfg_resolved(&tc, cfg);
    assert_non_null(strstr(text, "  sample_interval: 0\n  threads: 3\n"));
    mg_free(text);
    mg_cfg_free(cfg);
}

/* train.backend: onednn by default, blas when asked, written back; any other name is an
 * error naming the key and the value */
static void test_backend(void **state)
{
    (void)state;
    mg_cfg *cfg = mg_cfg_parse(tiny_text(), "tiny.yaml");
    mg_train_cfg tc;
    mg_train_cfg_read(&tc, cfg, 1);
    assert_int_equal(tc.backend, MG_BACKEND_ONEDNN);
    mg_cfg_override(cfg, "train.backend=blas");
    mg_train_cfg_read(&tc, cfg, 1);
    assert_int_equal(tc.backend, MG_BACKEND_BLAS);
    char *text = mg_train_cfg_resolved(&tc, cfg);
    assert_non_null(strstr(text, "  backend: blas\n"));
    mg_free(text);
    mg_cfg_free(cfg);
    cfg = edited("  n_critic: 1\n", "  n_critic: 1\n  backend: mkldnn\n");
    MG_EXPECT_FATAL(read_all(cfg, 1), "bad.yaml:23:12 (train.backend): unknown value 'mkldnn'");
    mg_cfg_free(cfg);
    cfg = edited("  n_critic: 1\n", "  n_critic: 1\n  backend: 2\n");
    MG_EXPECT_FATAL(read_all(cfg, 1), "(train.backend): unknown value '2'");
    mg_cfg_free(cfg);
}

/* train.precision: fp32 by default, bf16 on oneDNN (this machine has bf16 instructions;
 * tests/test_onednn_cli.sh simulates one without), bf16 on BLAS and unknown names refused
 * at the key */
static void test_precision(void **state)
{
    (void)state;
    mg_cfg *cfg = mg_cfg_parse(tiny_text(), "tiny.yaml");
    mg_train_cfg tc;
    mg_train_cfg_read(&tc, cfg, 1);
    assert_int_equal(tc.precision, MG_PRECISION_FP32);
    mg_cfg_free(cfg);
    cfg = edited("  n_critic: 1\n", "  n_critic: 1\n  backend: blas\n  precision: bf16\n");
    MG_EXPECT_FATAL(read_all(cfg, 1), "bad.yaml:24:14 (train.precision): precision bf16 runs on the oneDNN backend only");
    mg_cfg_free(cfg);
    cfg = edited("  n_critic: 1\n", "  n_critic: 1\n  backend: onednn\n  precision: half\n");
    MG_EXPECT_FATAL(read_all(cfg, 1), "(train.precision): unknown value 'half'");
    mg_cfg_free(cfg);
    if (!mg_onednn_bf16_supported())
        MG_SKIP("this CPU has no bfloat16 instructions");
    cfg = edited("  n_critic: 1\n", "  n_critic: 1\n  backend: onednn\n  precision: bf16\n");
    mg_train_cfg_read(&tc, cfg, 1);
    assert_int_equal(tc.precision, MG_PRECISION_BF16);
    char *text = mg_train_cfg_resolved(&tc, cfg);
    assert_non_null(strstr(text, "  backend: onednn\n  precision: bf16\n"));
    mg_free(text);
    mg_cfg_free(cfg);
}

static void test_overrides(void **state)
{
    (void)state;
    mg_cfg *cfg = mg_cfg_parse(tiny_text(), "tiny.yaml");
    mg_cfg_override(cfg, "train.batch=32");
    mg_cfg_override(cfg, "train.g_step_noise=fresh");
    mg_cfg_override(cfg, "debug.check_replicas=5");   /* a new section */
    mg_cfg_override(cfg, "generator.layers[0].out=8"); /* a list item */
    mg_train_cfg tc;
    mg_train_cfg_read(&tc, cfg, 4);
    assert_int_equal(tc.batch, 32);
    assert_false(tc.g_reuse_fakes);
    assert_int_equal(tc.check_replicas, 5);
    mg_cfg_node out = mg_cfg_get(mg_cfg_seq_at(mg_cfg_get(mg_cfg_get(mg_cfg_root(cfg), "generator"), "layers"), 0), "out");
    assert_int_equal(mg_cfg_as_int(out, 1, 100), 8);
    /* a bad value given on the command line is blamed on --set, not on the file */
    mg_cfg_override(cfg, "train.steps=-3");
    MG_EXPECT_FATAL(mg_train_cfg_read(&tc, cfg, 1), "--set (train.steps): value -3 out of range");
    MG_EXPECT_FATAL(mg_cfg_override(cfg, "train=3"), "--set replaces single values only");
    MG_EXPECT_FATAL(mg_cfg_override(cfg, "generator.layers[9].out=3"), "has 4 items, no index 9");
    MG_EXPECT_FATAL(mg_cfg_override(cfg, "train.batch"), "malformed override");
    mg_cfg_free(cfg);
}

static void test_resolved_reads_back(void **state)
{
    (void)state;
    /* with eval.coverage's list (factor coverage), names that need quoting included */
    char text_in[9000];
    snprintf(text_in, sizeof text_in, "%seval: {coverage: [runs/a/classifier.h5, \"b: c.h5\"]}\n", tiny_text());
    mg_cfg *cfg = mg_cfg_parse(text_in, "tiny.yaml");
    mg_cfg_override(cfg, "schedule_d.kind=cosine");
    mg_train_cfg first, second;
    mg_train_cfg_read(&first, cfg, 1);
    char *text = mg_train_cfg_resolved(&first, cfg);
    mg_cfg *again = mg_cfg_parse(text, "resolved.yaml");
    mg_train_cfg_read(&second, again, 1);
    char *text_again = mg_train_cfg_resolved(&second, again);
    assert_string_equal(text, text_again);
    assert_int_equal(second.sched_d.kind, MG_SCHED_COSINE);
    assert_true(second.opt_g.lr == first.opt_g.lr && second.opt_g.beta1 == first.opt_g.beta1);
    mg_free(text_again);
    assert_non_null(strstr(text, "generator:\n  input: [4]\n"));
    assert_non_null(strstr(text, "schedule_d: {kind: cosine, warmup: 0, final_factor: 0}"));
    assert_non_null(strstr(text, "coverage: [\"runs/a/classifier.h5\", \"b: c.h5\"]}"));
    assert_int_equal(second.eval.n_coverage, 2);
    assert_string_equal(second.eval.coverage[1], "b: c.h5");
    mg_free(text);
    mg_cfg_free(again);
    mg_cfg_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_key),        cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_out_of_range),       cmocka_unit_test(test_batch_must_split),
        cmocka_unit_test(test_wasserstein_needs_clip), cmocka_unit_test(test_hdf5_data_section),
        cmocka_unit_test(test_samples_and_threads), cmocka_unit_test(test_backend), cmocka_unit_test(test_precision),
        cmocka_unit_test(test_overrides),          cmocka_unit_test(test_resolved_reads_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
