/* Transfer learning (init: from/networks/freeze):
 *   - loading a checkpoint into the same networks (another seed) gives its parameters and
 *     BatchNorm state bit for bit at step 0;
 *   - a wider layer, and the layer after it, are reported and skipped while the others
 *     load; a network of which nothing matches is an error; init.networks limits the load;
 *   - frozen layers (init.freeze and per-layer frozen: true) keep their bytes through
 *     training with AdamW weight decay and SGD momentum + weight decay, while the others
 *     move; an unknown layer name is an error;
 *   - on --resume the run's own checkpoint wins over init.from;
 *   - a path unreadable on one rank stops every rank with a clear message.
 * mpirun-np: 1 2 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_checkpoint.h"
#include "mg_dist.h"
#include "mg_test.h"
#include "mg_testenv.h"
#include "mg_train.h"
#include "mg_transfer.h"

/* G: 4 -> 16 (BN) -> width -> 2; D as in configs/tiny.yaml. */
static mg_cfg *config(const char *run_dir, int width, int seed, int steps, const char *extra)
{
    static char text[4096];
    snprintf(text, sizeof text,
             "generator:\n"
             "  input: [4]\n"
             "  init: {kind: normal, std: 0.2, bn_std: 0.02}\n"
             "  layers:\n"
             "    - {kind: linear, out: 16, bias: false}\n"
             "    - {kind: batchnorm}\n"
             "    - {kind: leaky_relu, slope: 0.2}\n"
             "    - {kind: linear, out: %d}\n"
             "    - {kind: leaky_relu, slope: 0.2}\n"
             "    - {kind: linear, out: 2}\n"
             "discriminator:\n"
             "  input: [2]\n"
             "  init: {kind: normal, std: 0.2, bn_std: 0.02}\n"
             "  layers:\n"
             "    - {kind: linear, out: 16, activation: leaky_relu}\n"
             "    - {kind: linear, out: 16, bias: false}\n"
             "    - {kind: batchnorm}\n"
             "    - {kind: leaky_relu, slope: 0.2}\n"
             "    - {kind: linear, out: 1%s}\n"
             "train: {loss: non_saturating, batch: 16, steps: %d, seed: %d, log_interval: 100}\n"
             "optimizer_g: {kind: adam, lr: 1.0e-2, beta1: 0.5, weight_decay: 0.5}\n"
             "optimizer_d: {kind: sgd, lr: 1.0e-2, momentum: 0.9, weight_decay: 0.5}\n"
             "data: {source: ring8}\n"
             "checkpoint: {interval: 0, keep_last: 2}\n"
             "run_dir: %s\n"
             "%s",
             width, extra && strstr(extra, "#frozen") ? ", frozen: true" : "", steps, seed, run_dir,
             extra ? extra : "");
    return mg_cfg_parse(text, "transfer test config");
}


static char source_path[256];

/* the suite's temporary directory (mg_test_dir_make); each test runs in a folder of it */
static char base[256];

static int make_source(void);

static int setup(void **state)
{
    (void)state;
    mg_test_dir_make(base, sizeof base, "transfer");
    return make_source();
}

static int teardown(void **state)
{
    (void)state;
    mg_test_dir_remove(base);
    return 0;
}

/* The checkpoint every test loads from: width 8, seed 3, 5 steps. */
static int make_source(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/src", base);
    mg_test_clean_dir(dir);
    mg_cfg *cfg = config(dir, 8, 3, 5, NULL);
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    mg_train_result r = mg_trainer_run(t);
    mg_trainer_free(t);
    mg_cfg_free(cfg);
    snprintf(source_path, sizeof source_path, "%s/checkpoints/ckpt_000000005.h5", dir);
    mg_dist_barrier();
    return r.status != MG_TRAIN_DONE;
}

/* The source checkpoint's networks. */
static void read_source(mg_net *G, mg_net *D, mg_cfg **cfg)
{
    *cfg = config(base, 8, 3, 5, NULL);
    mg_cfg_node root = mg_cfg_root(*cfg);
    mg_net_from_cfg(G, "G", mg_cfg_require(root, "generator"), (mg_shape){0, 0, 0}, 1);
    mg_net_from_cfg(D, "D", mg_cfg_require(root, "discriminator"), (mg_shape){0, 0, 0}, 1);
    mg_ckpt_read_net(source_path, "G", G);
    mg_ckpt_read_net(source_path, "D", D);
}

static const mg_layer *layer(const mg_net *net, const char *name)
{
    for (int i = 0; i < net->n_layers; i++)
        if (!strcmp(net->layers[i].name, name))
            return &net->layers[i];
    fail_msg("no layer %s", name);
    return NULL;
}

static bool same_layer(const mg_net *a, const mg_net *b, const char *name)
{
    const mg_layer *x = layer(a, name), *y = layer(b, name);
    return x->n_param == y->n_param && x->n_state == y->n_state &&
           !memcmp(x->param, y->param, x->n_param * sizeof(float)) &&
           !memcmp(x->state, y->state, x->n_state * sizeof(float));
}

static mg_trainer *create_with(const char *tag, int width, const char *init, bool resume)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/%s", base, tag);
    if (!resume)
        mg_test_clean_dir(dir);
    char extra[600];
    snprintf(extra, sizeof extra, "%s\n", init);
    mg_cfg *cfg = config(dir, width, 11, 10, extra);
    mg_trainer *t = mg_trainer_create(cfg, resume, false);
    mg_cfg_free(cfg); /* the trainer reads its config only while it is created */
    return t;
}

static void test_identical_config_loads_bitwise(void **state)
{
    (void)state;
    char init[400];
    snprintf(init, sizeof init, "init: {from: %s}", source_path);
    mg_trainer *t = create_with("same", 8, init, false);
    mg_net G, D;
    mg_cfg *cfg;
    read_source(&G, &D, &cfg);
    const mg_net *tg = mg_trainer_G(t), *td = mg_trainer_D(t);
    assert_memory_equal(tg->param, G.param, G.n_param * sizeof(float));
    assert_memory_equal(tg->state, G.state, G.n_state * sizeof(float));
    assert_memory_equal(td->param, D.param, D.n_param * sizeof(float));
    assert_memory_equal(td->state, D.state, D.n_state * sizeof(float));
    mg_trainer_free(t);

    /* init.networks: [discriminator] leaves G at its own (seed 11) initialisation */
    snprintf(init, sizeof init, "init: {from: %s, networks: [discriminator]}", source_path);
    t = create_with("d_only", 8, init, false);
    assert_memory_equal(mg_trainer_D(t)->param, D.param, D.n_param * sizeof(float));
    assert_true(memcmp(mg_trainer_G(t)->param, G.param, G.n_param * sizeof(float)) != 0);
    mg_trainer_free(t);
    mg_net_free(&G);
    mg_net_free(&D);
    mg_cfg_free(cfg);
}

static void test_wider_layer_is_reported_and_skipped(void **state)
{
    (void)state;
    mg_net G, D;
    mg_cfg *cfg;
    read_source(&G, &D, &cfg);
    /* directly: the report names the skipped layers and why */
    mg_cfg *wide_cfg = config(base, 12, 11, 5, NULL);
    mg_net wide;
    mg_net_from_cfg(&wide, "G", mg_cfg_require(mg_cfg_root(wide_cfg), "generator"), (mg_shape){0, 0, 0}, 1);
    char *text = NULL;
    size_t size = 0;
    FILE *report = open_memstream(&text, &size);
    mg_transfer_stats s = mg_transfer_match(&wide, &G, report);
    fclose(report);
    assert_int_equal(s.loaded, 2);  /* G.0.linear, G.1.batchnorm */
    assert_int_equal(s.skipped, 2); /* G.3.linear (wider), G.5.linear (wider input) */
    assert_int_equal(s.unused, 0);
    assert_non_null(strstr(text, "G.3.linear"));
    assert_non_null(strstr(text, "G.5.linear"));
    assert_non_null(strstr(text, "shapes differ"));
    assert_non_null(strstr(text, "16x1x1 -> 12x1x1"));
    assert_null(strstr(text, "G.0.linear"));
    free(text);
    assert_true(same_layer(&wide, &G, "G.0.linear"));
    assert_true(same_layer(&wide, &G, "G.1.batchnorm"));
    mg_net_free(&wide);
    mg_cfg_free(wide_cfg);

    /* through the trainer: a run with the wider G starts from the matching layers */
    char init[400];
    snprintf(init, sizeof init, "init: {from: %s}", source_path);
    mg_trainer *t = create_with("wide", 12, init, false);
    const mg_net *tg = mg_trainer_G(t);
    assert_true(same_layer(tg, &G, "G.0.linear"));
    assert_true(same_layer(tg, &G, "G.1.batchnorm"));
    assert_false(same_layer(tg, &G, "G.3.linear"));
    assert_memory_equal(mg_trainer_D(t)->param, D.param, D.n_param * sizeof(float));
    assert_int_equal(mg_trainer_run(t).status, MG_TRAIN_DONE);
    mg_trainer_free(t);
    mg_net_free(&G);
    mg_net_free(&D);
    mg_cfg_free(cfg);
}

static void test_nothing_matched_is_an_error(void **state)
{
    (void)state;
    mg_cfg *cfg = mg_cfg_parse("generator:\n  input: [4]\n  layers:\n    - {kind: linear, out: 2, name: other}\n",
                               "other G");
    mg_net other;
    mg_net_from_cfg(&other, "G", mg_cfg_require(mg_cfg_root(cfg), "generator"), (mg_shape){0, 0, 0}, 1);
    mg_transfer_cfg tc = {.generator = true};
    snprintf(tc.from, sizeof tc.from, "%s", source_path);
    mg_net D;
    memset(&D, 0, sizeof D);
    MG_EXPECT_FATAL(mg_transfer_load(&tc, &other, &D, false), "no layer of G matched");
    mg_net_free(&other);
    mg_cfg_free(cfg);
}

static void test_frozen_layers_keep_their_bytes(void **state)
{
    (void)state;
    /* G.0.linear and D.2.linear by name, D.5.linear by its own frozen: true (#frozen) */
    mg_trainer *t = create_with("frozen", 8, "init: {freeze: [G.0.linear, G.1.batchnorm, D.2.linear]}  #frozen",
                                false);
    const mg_net *G = mg_trainer_G(t), *D = mg_trainer_D(t);
    float *g0 = malloc(G->n_param * sizeof(float)), *d0 = malloc(D->n_param * sizeof(float));
    memcpy(g0, G->param, G->n_param * sizeof(float));
    memcpy(d0, D->param, D->n_param * sizeof(float));
    mg_train_result r = mg_trainer_run(t);
    assert_int_equal(r.status, MG_TRAIN_DONE);
    assert_int_equal(r.step, 10);
    const char *frozen[] = {"G.0.linear", "G.1.batchnorm", "D.2.linear", "D.5.linear"};
    const char *moving[] = {"G.3.linear", "G.5.linear", "D.0.linear", "D.3.batchnorm"};
    for (int k = 0; k < 4; k++) {
        const mg_net *net = frozen[k][0] == 'G' ? G : D;
        const float *before = frozen[k][0] == 'G' ? g0 : d0;
        const mg_layer *l = layer(net, frozen[k]);
        assert_true(l->frozen);
        if (memcmp(l->param, before + (l->param - net->param), l->n_param * sizeof(float)))
            fail_msg("frozen layer %s changed", frozen[k]);
        net = moving[k][0] == 'G' ? G : D;
        before = moving[k][0] == 'G' ? g0 : d0;
        l = layer(net, moving[k]);
        if (!memcmp(l->param, before + (l->param - net->param), l->n_param * sizeof(float)))
            fail_msg("trainable layer %s did not change", moving[k]);
    }
    free(g0);
    free(d0);
    mg_trainer_free(t);
}

static void test_freeze_unknown_layer_is_an_error(void **state)
{
    (void)state;
    MG_EXPECT_FATAL(create_with("bad_freeze", 8, "init: {freeze: [G.9.linear]}", false), "no layer named 'G.9.linear'");
    MG_EXPECT_FATAL(create_with("bad_freeze", 8, "init: {freeze: [G.2.leaky_relu]}", false),
                    "no parameters to freeze");
    mg_dist_barrier();
}

/* --resume: the run's own checkpoint wins over init.from. */
static void test_resume_ignores_init(void **state)
{
    (void)state;
    char init[400];
    snprintf(init, sizeof init, "init: {from: %s}", source_path);
    /* a run of its own: stopped at step 4 */
    char dir[300];
    snprintf(dir, sizeof dir, "%s/resume", base);
    mg_test_clean_dir(dir);
    char extra[600];
    snprintf(extra, sizeof extra, "%s\ndebug: {stop_at_step: 4}\n", init);
    mg_cfg *cfg = config(dir, 8, 11, 10, extra);
    mg_trainer *t = mg_trainer_create(cfg, false, false);
    assert_int_equal(mg_trainer_run(t).status, MG_TRAIN_STOPPED);
    mg_net own;
    mg_net_from_cfg(&own, "G", mg_cfg_require(mg_cfg_root(cfg), "generator"), (mg_shape){0, 0, 0}, 1);
    memcpy(own.param, mg_trainer_G(t)->param, own.n_param * sizeof(float));
    mg_trainer_free(t);
    mg_cfg_free(cfg);

    t = create_with("resume", 8, init, true);
    assert_memory_equal(mg_trainer_G(t)->param, own.param, own.n_param * sizeof(float));
    mg_trainer_free(t);
    mg_net_free(&own);
}

/* A path that rank 0 can read but the others cannot (or that no rank can read): every
 * rank stops with a message naming the path. */
static void test_bad_path_fails_on_every_rank(void **state)
{
    (void)state;
    MG_EXPECT_FATAL(create_with("bad_path", 8, "init: {from: /nonexistent/ckpt.h5}", false),
                    "/nonexistent/ckpt.h5: init.from: cannot read the checkpoint");
    mg_dist_barrier();
    if (mg_dist_size() < 2)
        return;
    char init[400];
    snprintf(init, sizeof init, "init: {from: %s}", mg_dist_rank() == 0 ? source_path : "/nonexistent/ckpt.h5");
    MG_EXPECT_FATAL(create_with("bad_path", 8, init, false),
                    mg_dist_rank() == 0 ? "another rank cannot read the checkpoint" : "cannot read the checkpoint");
    mg_dist_barrier();
}

static void test_cfg_errors(void **state)
{
    (void)state;
    mg_cfg *cfg = mg_cfg_parse("init: {networks: [generator]}\n", "init.yaml");
    MG_EXPECT_FATAL(mg_transfer_cfg_from(mg_cfg_get(mg_cfg_root(cfg), "init")), "without init.from");
    mg_cfg_free(cfg);
    cfg = mg_cfg_parse("init: {from: x.h5, networks: [generator, generator]}\n", "init.yaml");
    MG_EXPECT_FATAL(mg_transfer_cfg_from(mg_cfg_get(mg_cfg_root(cfg), "init")), "listed twice");
    mg_cfg_free(cfg);
    cfg = mg_cfg_parse("init: {from: x.h5, networks: [critic]}\n", "init.yaml");
    MG_EXPECT_FATAL(mg_transfer_cfg_from(mg_cfg_get(mg_cfg_root(cfg), "init")), "critic");
    mg_cfg_free(cfg);
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identical_config_loads_bitwise),
        cmocka_unit_test(test_wider_layer_is_reported_and_skipped),
        cmocka_unit_test(test_nothing_matched_is_an_error),
        cmocka_unit_test(test_frozen_layers_keep_their_bytes),
        cmocka_unit_test(test_freeze_unknown_layer_is_an_error),
        cmocka_unit_test(test_resume_ignores_init),
        cmocka_unit_test(test_bad_path_fails_on_every_rank),
        cmocka_unit_test(test_cfg_errors),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    failed = mg_dist_any(failed != 0) ? 1 : 0;
    mg_dist_finalize();
    return failed;
}
