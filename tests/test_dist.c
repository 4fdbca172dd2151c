/* Distributed building blocks under mpirun: broadcast, flat-buffer allreduce, agreement,
 * synchronised BatchNorm, whose N ranks x B/N samples must match one rank x B, and the
 * OpenBLAS thread rule for ranks sharing a node.
 * mpirun-np: 2 3 */
#include <math.h>
#include <string.h>
#include <stdlib.h>

#include "mg_blas_threads.h"
#include "mg_dist.h"
#include "mg_net.h"
#include "mg_test.h"
#include "mg_layers.h"

static void test_broadcast_and_allreduce(void **state)
{
    (void)state;
    int rank = mg_dist_rank(), size = mg_dist_size();
    float buf[1000];
    mg_rng rng;
    mg_rng_init(&rng, 1, mg_rng_stream_id(MG_STREAM_TEST, (uint32_t)rank));
    mg_rng_fill_normal(&rng, buf, 1000, 0, 1);
    /* replicas differ until rank 0's copy is broadcast */
    assert_int_equal(mg_dist_all_equal_u64(mg_checksum(buf, sizeof buf)), size == 1);
    mg_dist_bcast(buf, sizeof buf);
    assert_true(mg_dist_all_equal_u64(mg_checksum(buf, sizeof buf)));

    for (int i = 0; i < 1000; i++)
        buf[i] = (float)(rank + 1) * (float)i;
    mg_dist_allreduce_mean(buf, 1000);
    float mean_factor = (float)(size + 1) / 2.0f; /* mean of 1..size */
    for (int i = 0; i < 1000; i++)
        MG_ASSERT_CLOSE(buf[i], mean_factor * i, 1e-3, 1e-6, "allreduce mean");
    assert_true(mg_dist_any(rank == size - 1));
    assert_false(mg_dist_any(false));
    assert_true(mg_dist_max(rank) == size - 1);
}

/* linear -> reshape -> BN2d -> tanh -> flatten -> linear -> BN1d */
static void build(mg_net *net, int batch)
{
    mg_net_begin(net, "S", (mg_shape){4, 1, 1});
    mg_linear_make(mg_net_push(net), mg_net_tail_shape(net), 18, true);
    mg_reshape_make(mg_net_push(net), mg_net_tail_shape(net), (mg_shape){2, 3, 3});
    mg_batchnorm_make(mg_net_push(net), mg_net_tail_shape(net), 0.1f, 1e-5f);
    mg_tanh_make(mg_net_push(net), mg_net_tail_shape(net));
    mg_flatten_make(mg_net_push(net), mg_net_tail_shape(net));
    mg_linear_make(mg_net_push(net), mg_net_tail_shape(net), 3, false);
    mg_batchnorm_make(mg_net_push(net), mg_net_tail_shape(net), 0.1f, 1e-5f);
    mg_net_finish(net, batch);
}

/* The decision table of mg_blas_threads.h, and its application here (all ranks of a
 * test run share one node). */
static void test_blas_threads(void **state)
{
    (void)state;
    char why[160];
    assert_int_equal(mg_blas_threads_choose(3, 4, "8", why, sizeof why), 3);   /* train.threads wins */
    assert_int_equal(mg_blas_threads_choose(0, 4, "8", why, sizeof why), 0);   /* environment stays */
    assert_int_equal(mg_blas_threads_choose(0, 4, "", why, sizeof why), 1);    /* empty = unset */
    assert_int_equal(mg_blas_threads_choose(0, 2, NULL, why, sizeof why), 1);  /* ranks share the node */
    assert_int_equal(mg_blas_threads_choose(0, 1, NULL, why, sizeof why), 0);  /* OpenBLAS default */
    assert_int_equal(mg_dist_node_size(), mg_dist_size());
    assert_int_equal(mg_blas_threads_apply(2, why, sizeof why), 2);
    const char *env = getenv("OPENBLAS_NUM_THREADS");
    if (!env && !getenv("GOTO_NUM_THREADS") && !getenv("OMP_NUM_THREADS") && mg_dist_size() > 1)
        assert_int_equal(mg_blas_threads_apply(0, why, sizeof why), 1);
}

static void test_sync_batchnorm(void **state)
{
    (void)state;
    int rank = mg_dist_rank(), size = mg_dist_size();
    const int global = 12, local = global / size;
    mg_net ref, sync;
    build(&ref, global);
    build(&sync, local);
    mg_net_set_reduce(&sync, mg_dist_reduce_sum_cb, NULL);
    mg_rng rng;
    mg_rng_init(&rng, 3, MG_STREAM_INIT); /* same stream on every rank: same data everywhere */
    mg_net_init_params(&ref, &rng);
    mg_rng_fill_normal(&rng, ref.param, ref.n_param, 0, 0.7f);
    memcpy(sync.param, ref.param, ref.n_param * sizeof(float));
    memcpy(sync.state, ref.state, ref.n_state * sizeof(float));
    float x[12 * 4], r[12 * 3];
    mg_rng_fill_normal(&rng, x, 48, 0, 1);
    mg_rng_fill_normal(&rng, r, 36, 0, 1);

    /* the reference: one replica with the whole batch */
    mg_net_zero_grad(&ref);
    const float *y_ref = mg_net_forward(&ref, x, global, MG_TRAIN);
    float *dx_ref = mg_net_backward(&ref, r, true, true);

    mg_net_zero_grad(&sync);
    const float *y = mg_net_forward(&sync, x + rank * local * 4, local, MG_TRAIN);
    float *dx = mg_net_backward(&sync, r + rank * local * 3, true, true);
    for (int i = 0; i < local * 3; i++)
        MG_ASSERT_CLOSE(y[i], y_ref[rank * local * 3 + i], 1e-5, 1e-4, "sync BN output");
    for (int i = 0; i < local * 4; i++)
        MG_ASSERT_CLOSE(dx[i], dx_ref[rank * local * 4 + i], 1e-5, 1e-4, "sync BN input gradient");
    /* replicas' parameter gradients sum to the whole batch's */
    mg_dist_allreduce_sum(sync.grad, sync.n_param);
    /* Some entries are sums that cancel to near zero (the next BatchNorm removes the mean),
     * so the tolerance is relative to the gradient's overall scale, not to each entry. */
    double scale = 0;
    for (size_t i = 0; i < ref.n_param; i++)
        scale = fmax(scale, fabs(ref.grad[i]));
    for (size_t i = 0; i < ref.n_param; i++)
        MG_ASSERT_CLOSE(sync.grad[i], ref.grad[i], 1e-5 * scale, 1e-4, "sync BN parameter gradient");
    for (size_t i = 0; i < ref.n_state; i++)
        MG_ASSERT_CLOSE(sync.state[i], ref.state[i], 1e-6, 1e-5, "running statistics");
    mg_net_free(&ref);
    mg_net_free(&sync);
}

/* Sync BN's forward statistics travel in one message while the running mean (the shift)
 * is near the batch mean, in two when it is far; both give the whole batch's statistics.
 * Data: 5 channels of 3x3, mean 1000 + 10 c, standard deviation 1 + c/2. */
static int messages;

static void counting_reduce(double *buf, int n, void *ctx)
{
    messages++;
    mg_dist_reduce_sum_cb(buf, n, ctx);
}

static void test_sync_batchnorm_messages(void **state)
{
    (void)state;
    const int rank = mg_dist_rank(), size = mg_dist_size();
    const int C = 5, P = 9, global = 12, local = global / size;
    const mg_shape shape = {C, 3, 3};
    mg_net ref, sync;
    mg_test_bn_net(&ref, "R", shape, global);
    mg_test_bn_net(&sync, "S", shape, local);
    mg_net_set_reduce(&sync, counting_reduce, NULL);
    mg_rng rng;
    mg_rng_init(&rng, 5, MG_STREAM_INIT);
    mg_net_init_params(&ref, &rng);
    mg_net_init_params(&sync, &rng);
    float x[12 * 5 * 9];
    mg_rng_fill_normal(&rng, x, sizeof x / sizeof *x, 0, 1);
    for (int i = 0; i < global; i++)
        for (int c = 0; c < C; c++)
            for (int q = 0; q < P; q++)
                x[(i * C + c) * P + q] = 1000.0f + 10.0f * c + (1.0f + 0.5f * c) * x[(i * C + c) * P + q];

    /* running means far off (0, then 10% of the way), then near: the last batch mean */
    static const int expected_messages[] = {2, 2, 1};
    for (int round = 0; round < 3; round++) {
        if (round == 2) /* the batch mean */
            for (int c = 0; c < C; c++) {
                double sum = 0;
                for (int i = 0; i < global; i++)
                    for (int q = 0; q < P; q++)
                        sum += x[(i * C + c) * P + q];
                sync.state[c] = (float)(sum / (global * P));
            }
        memcpy(ref.state, sync.state, ref.n_state * sizeof(float));
        const float *y_ref = mg_net_forward(&ref, x, global, MG_TRAIN);
        messages = 0;
        const float *y = mg_net_forward(&sync, x + rank * local * C * P, local, MG_TRAIN);
        assert_int_equal(messages, expected_messages[round]);
        /* y is centred to unit variance: 1e-4 absolute is 1e-4 of its spread, while the
         * float input rounds to 6e-5 of a standard deviation at 1000 */
        for (int i = 0; i < local * C * P; i++)
            MG_ASSERT_CLOSE(y[i], y_ref[rank * local * C * P + i], 2e-4, 1e-4, "sync BN output");
        for (int c = 0; c < 2 * C; c++)
            MG_ASSERT_CLOSE(sync.state[c], ref.state[c], 1e-5, 1e-5, "running statistics");
    }
    mg_net_free(&ref);
    mg_net_free(&sync);
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broadcast_and_allreduce),
        cmocka_unit_test(test_sync_batchnorm),
        cmocka_unit_test(test_sync_batchnorm_messages),
        cmocka_unit_test(test_blas_threads),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    /* every rank exits with the worst result, so mpirun reports a failure on any rank */
    failed = mg_dist_any(failed != 0) ? 1 : 0;
    mg_dist_finalize();
    return failed;
}
