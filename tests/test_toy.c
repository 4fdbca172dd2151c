/* End to end: a small network learns a toy task (loss falls below a threshold, test
 * accuracy is high) data-parallel, and the replicas end bit-identical.
 * mpirun-np: 1 2 */
#include "mg_dist.h"
#include "mg_test.h"
#include "mg_toy.h"

static const char *toy_yaml =
    "toy:\n"
    "  steps: 300\n"
    "  batch: 64\n"
    "  seed: 7\n"
    "  log_every: 50\n"
    "  optimizer: {kind: adam, lr: 0.01}\n"
    "  schedule: {kind: cosine, final_factor: 0.05}\n"
    "model:\n"
    "  input: [2]\n"
    "  init: {kind: kaiming_normal}\n"
    "  layers:\n"
    "    - {kind: linear, out: 64, activation: relu}\n"
    "    - {kind: linear, out: 64, bias: false}\n"
    "    - {kind: batchnorm}\n"
    "    - {kind: relu}\n"
    "    - {kind: linear, out: 3}\n";

static void test_toy_learns(void **state)
{
    (void)state;
    mg_cfg *cfg = mg_cfg_parse(toy_yaml, "toy.yaml");
    mg_toy_result r = mg_toy_train(cfg, false);
    mg_cfg_free(cfg);
    /* chance level is log(3) = 1.10 loss and ~0.4 accuracy (class 0 covers 28%) */
    if (!(r.first_loss > 0.15f && r.final_loss < 0.15f))
        fail_msg("loss went from %.4f to %.4f; expected to fall below 0.15", r.first_loss, r.final_loss);
    if (!(r.accuracy > 0.95f))
        fail_msg("test accuracy %.3f, expected > 0.95", r.accuracy);
    assert_true(r.replicas_equal);
}

static void test_toy_config_errors(void **state)
{
    (void)state;
    mg_cfg *cfg = mg_cfg_parse("toy:\n  steps: 10\n  optimizer: {kind: adam, lr: 0.01, betta1: 0.5}\n"
                               "model:\n  input: [2]\n  layers: [{kind: linear, out: 3}]\n",
                               "typo.yaml");
    MG_EXPECT_FATAL(mg_toy_train(cfg, false), "betta1");
    mg_cfg_free(cfg);
    cfg = mg_cfg_parse("toy:\n  optimizer: {kind: adam}\nmodel:\n  input: [2]\n  layers: [{kind: linear, out: 4}]\n",
                       "wrong_out.yaml");
    MG_EXPECT_FATAL(mg_toy_train(cfg, false), "expected 3 logits");
    mg_cfg_free(cfg);
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_toy_learns),
        cmocka_unit_test(test_toy_config_errors),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    failed = mg_dist_any(failed != 0) ? 1 : 0;
    mg_dist_finalize();
    return failed;
}
