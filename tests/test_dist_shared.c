/* Node-shared reduction buffers (mg_dist_shared): the mean over ranks on every rank, the
 * same bits everywhere, equal to MPI_Allreduce's mean (bitwise at two ranks, where the
 * sum a + b has one rounding either way). At 4 ranks MPIGAN_REDUCE_GROUP=2 splits the
 * node in two groups, so the path between nodes (leaders' allreduce) runs too; at 3 ranks
 * one group of 3 has uneven slices. The trainer's replicas on both paths are compared by
 * test_train_replicas.
 * mpirun-np: 1 2 3 4 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mg_dist.h"
#include "mg_rng.h"
#include "mg_test.h"
#include "mg_util.h"

/* Fills, averages and compares one buffer of n floats, `rounds` times over. */
static void check_mean(size_t n, int rounds, bool node_shared)
{
    const int rank = mg_dist_rank(), size = mg_dist_size();
    mg_dist_shared *s = mg_dist_shared_new(n, node_shared, "test buffer");
    float *buf = mg_dist_shared_buf(s);
    for (size_t i = 0; i < n; i++)
        assert_true(buf[i] == 0.0f); /* starts zeroed */
    float *ref = mg_alloc_floats(n, "reference");
    mg_rng rng;
    mg_rng_init(&rng, 7, mg_rng_stream_id(MG_STREAM_TEST, (uint32_t)rank));
    for (int round = 0; round < rounds; round++) {
        mg_rng_fill_normal(&rng, buf, n, (float)round, 1);
        memcpy(ref, buf, n * sizeof(float));
        mg_dist_shared_mean(s);
        mg_dist_allreduce_mean(ref, n);
        assert_true(mg_dist_all_equal_u64(mg_checksum(buf, n * sizeof(float))));
        /* judged on every rank before any assertion, so a failing rank leaves none waiting */
        bool off = size <= 2 && memcmp(buf, ref, n * sizeof(float)) != 0;
        for (size_t i = 0; i < n; i++)
            off |= !(fabsf(buf[i] - ref[i]) <= 1e-6f + 1e-5f * fabsf(ref[i]));
        assert_false(mg_dist_any(off));
    }
    mg_free(ref);
    mg_dist_shared_free(s);
}

static void test_mean_large(void **state)
{
    (void)state;
    check_mean(100003, 3, true); /* slices of whole cache lines and a ragged end */
    check_mean(100003, 2, false); /* the MPI path (train.reduce: mpi): the same bits at two ranks */
}

static void test_mean_small(void **state)
{
    (void)state;
    check_mean(5, 2, true); /* fewer values than one slice's cache line: most slices are empty */
    check_mean(1, 1, true);
}

/* Two buffers live side by side (the trainer's D and G) and do not disturb each other. */
static void test_two_buffers(void **state)
{
    (void)state;
    const int rank = mg_dist_rank(), size = mg_dist_size();
    mg_dist_shared *a = mg_dist_shared_new(1000, true, "buffer a"), *b = mg_dist_shared_new(77, true, "buffer b");
    float *pa = mg_dist_shared_buf(a), *pb = mg_dist_shared_buf(b);
    for (int i = 0; i < 1000; i++)
        pa[i] = (float)(rank + 1) * (float)i;
    for (int i = 0; i < 77; i++)
        pb[i] = -(float)rank;
    mg_dist_shared_mean(a);
    bool off = false;
    for (int i = 0; i < 77; i++)
        off |= pb[i] != -(float)rank; /* b untouched by a's mean */
    mg_dist_shared_mean(b);
    const float mean_factor = (float)(size + 1) / 2.0f; /* mean of 1..size */
    for (int i = 0; i < 1000; i++)
        off |= !(fabsf(pa[i] - mean_factor * (float)i) <= 1e-3f + 1e-6f * mean_factor * (float)i);
    for (int i = 0; i < 77; i++)
        off |= !(fabsf(pb[i] + (float)(size - 1) / 2.0f) <= 1e-6f);
    assert_false(mg_dist_any(off));
    mg_dist_shared_free(b);
    mg_dist_shared_free(a);
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    if (mg_dist_size() == 4)
        setenv("MPIGAN_REDUCE_GROUP", "2", 1); /* two "nodes" of two ranks */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mean_large),
        cmocka_unit_test(test_mean_small),
        cmocka_unit_test(test_two_buffers),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    failed = mg_dist_any(failed != 0) ? 1 : 0;
    mg_dist_finalize();
    return failed;
}
