/* The Philox generator: known-answer vectors, streams, state save/restore, moments. */
#include <math.h>
#include <stdlib.h>

#include "mg_rng.h"
#include "mg_test.h"

static void test_known_answers(void **state)
{
    (void)state;
    /* Philox4x32-10 vectors published with Random123 (kat_vectors): counter, key -> output.
     * Our counter words are (block counter lo, hi, stream lo, hi), key = seed (lo, hi). */
    mg_rng r;
    mg_rng_init(&r, 0, 0);
    uint32_t expect0[4] = {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u};
    for (int i = 0; i < 4; i++)
        assert_int_equal(mg_rng_u32(&r), expect0[i]);

    mg_rng_init(&r, 0x299f31d0a4093822ull, 0x0370734413198a2eull);
    r.ctr[0] = 0x243f6a88u;
    r.ctr[1] = 0x85a308d3u;
    uint32_t expect_pi[4] = {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u};
    for (int i = 0; i < 4; i++)
        assert_int_equal(mg_rng_u32(&r), expect_pi[i]);
}

static void test_streams_and_state(void **state)
{
    (void)state;
    mg_rng a, b;
    mg_rng_init(&a, 42, mg_rng_stream_id(MG_STREAM_NOISE, 0));
    mg_rng_init(&b, 42, mg_rng_stream_id(MG_STREAM_NOISE, 1));
    int same = 0;
    for (int i = 0; i < 1000; i++)
        same += mg_rng_u32(&a) == mg_rng_u32(&b);
    assert_true(same < 3);

    /* saving the struct mid-stream (with a spare normal pending) and restoring it replays */
    mg_rng_init(&a, 7, 3);
    for (int i = 0; i < 5; i++)
        mg_rng_normal(&a);
    mg_rng saved = a;
    float first[64];
    for (int i = 0; i < 64; i++)
        first[i] = i % 3 ? mg_rng_normal(&a) : mg_rng_uniform(&a);
    a = saved;
    for (int i = 0; i < 64; i++)
        assert_true(first[i] == (i % 3 ? mg_rng_normal(&a) : mg_rng_uniform(&a)));
}

static void test_moments(void **state)
{
    (void)state;
    mg_rng r;
    mg_rng_init(&r, 123, 9);
    const int n = 200000;
    double s = 0, s2 = 0, s4 = 0, u = 0;
    for (int i = 0; i < n; i++) {
        double x = mg_rng_normal(&r);
        s += x;
        s2 += x * x;
        s4 += x * x * x * x;
        float v = mg_rng_uniform(&r);
        assert_true(v >= 0.0f && v < 1.0f);
        u += v;
    }
    /* bounds are ~5 standard errors */
    MG_ASSERT_CLOSE(s / n, 0.0, 0.012, 0, "normal mean");
    MG_ASSERT_CLOSE(s2 / n, 1.0, 0.016, 0, "normal variance");
    MG_ASSERT_CLOSE(s4 / n, 3.0, 0.1, 0, "normal fourth moment");
    MG_ASSERT_CLOSE(u / n, 0.5, 0.004, 0, "uniform mean");
}

static void test_below_and_shuffle(void **state)
{
    (void)state;
    mg_rng r;
    mg_rng_init(&r, 5, 5);
    int hist[7] = {0};
    for (int i = 0; i < 70000; i++)
        hist[mg_rng_below(&r, 7)]++;
    for (int k = 0; k < 7; k++)
        assert_true(abs(hist[k] - 10000) < 500);
    uint64_t idx[100];
    for (int i = 0; i < 100; i++)
        idx[i] = (uint64_t)i;
    mg_rng_shuffle(&r, idx, 100);
    int seen[100] = {0}, moved = 0;
    for (int i = 0; i < 100; i++) {
        seen[idx[i]]++;
        moved += idx[i] != (uint64_t)i;
    }
    for (int i = 0; i < 100; i++)
        assert_int_equal(seen[i], 1);
    assert_true(moved > 80);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_streams_and_state),
        cmocka_unit_test(test_moments),
        cmocka_unit_test(test_below_and_shuffle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
