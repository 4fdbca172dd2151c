/* The moves between plain tensors and oneDNN's blocked layouts (mg_channel_blocks.h:
 * nChw16c both ways, and the fp32 and bf16 weights layouts) against oneDNN's own reorders
 * between the same memory descriptors: every byte of the result equal, in fp32 and bf16
 * (the same round-to-nearest-even, ties included), for NCHW tensors and views with the
 * first two axes swapped, sizes below, at and past multiples of 16 (the padding lanes
 * zero), and planes shorter and longer than the 16 positions moved at a time. Unpacking writes the c channels and nothing else of
 * the plain buffer. The builds without AVX-512 (the valgrind build) have no moves; there
 * the test says so and is skipped. */
#include <oneapi/dnnl/dnnl.h>
#include <stdlib.h>

#include "mg_channel_blocks.h"
#include "mg_rng.h"
#include "mg_test.h"

static dnnl_engine_t engine;
static dnnl_stream_t stream;

#define DNNL_OK(call) assert_int_equal((call), dnnl_success)

/* A plain 4-D fp32 descriptor of dims (d0, d1, h, w); swapped: over an NCHW buffer of
 * (d1, d0, h, w), the first two axes exchanged. */
static dnnl_memory_desc_t plain_md(int d0, int d1, int h, int w, bool swapped)
{
    dnnl_memory_desc_t md;
    const dnnl_dims_t dims = {d0, d1, h, w};
    const dnnl_dim_t hw = (dnnl_dim_t)h * w;
    const dnnl_dims_t strides = {swapped ? hw : d1 * hw, swapped ? d0 * hw : hw, w, 1};
    DNNL_OK(dnnl_memory_desc_init_by_strides(&md, 4, dims, dnnl_f32, strides));
    return md;
}

/* to = oneDNN's reorder of from (memory descriptors and buffers). */
static void onednn_reorder(const dnnl_memory_desc_t *from_md, void *from, const dnnl_memory_desc_t *to_md, void *to)
{
    dnnl_memory_t a, b;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    DNNL_OK(dnnl_memory_create(&a, from_md, engine, from));
    DNNL_OK(dnnl_memory_create(&b, to_md, engine, to));
    DNNL_OK(dnnl_reorder_primitive_desc_create(&pd, from_md, engine, to_md, engine, NULL));
    DNNL_OK(dnnl_primitive_create(&prim, pd));
    const dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, a}, {DNNL_ARG_TO, b}};
    DNNL_OK(dnnl_primitive_execute(prim, stream, 2, args));
    DNNL_OK(dnnl_stream_wait(stream));
    dnnl_primitive_destroy(prim);
    dnnl_primitive_desc_destroy(pd);
    dnnl_memory_destroy(a);
    dnnl_memory_destroy(b);
}

/* n floats: normal values, some exactly halfway between two bfloat16 (ties), signed zeros
 * and tiny values. */
static void fill(float *x, size_t n, mg_rng *rng)
{
    mg_rng_fill_normal(rng, x, n, 0.0f, 3.0f);
    for (size_t i = 0; i < n; i += 7) { /* the low 16 bits exactly 0x8000: a tie */
        uint32_t bits;
        memcpy(&bits, &x[i], sizeof bits);
        bits = (bits & 0xffff0000u) | 0x8000u;
        memcpy(&x[i], &bits, sizeof bits);
    }
    for (size_t i = 3; i < n; i += 29)
        x[i] = i % 2 ? -0.0f : 1e-40f;
}

typedef struct { int d0, d1, h, w; } shape4;

/* dims (n, c, h, w) or, for weights, (a, b, h, w) */
static const shape4 shapes[] = {
    {1, 1, 1, 1},  {3, 5, 2, 3},   {2, 16, 4, 4}, {4, 17, 5, 7},  {1, 33, 7, 5},
    {5, 64, 14, 14}, {17, 20, 7, 7}, {2, 48, 1, 16}, {3, 31, 3, 11}, {16, 16, 6, 6},
};
#define N_SHAPES ((int)(sizeof shapes / sizeof *shapes))

/* skips the test in builds without the moves */
#define REQUIRE_MOVES(bf16)                                                                              \
    do {                                                                                                 \
        if (!mg_channel_blocks_available(bf16))                                                          \
            MG_SKIP("this build has no %s channel-block moves (needs AVX-512%s)", (bf16) ? "bf16" : "fp32", \
                    (bf16) ? " with BF16" : "");                                                         \
    } while (0)

/* Packs every shape, NCHW and swapped, in fp32 and bf16, into nChw16c (weights: false) or
 * the weights layout of the type (weights: true), and compares the bytes with oneDNN's. */
static void check_packs(bool weights, uint64_t seed)
{
    mg_rng rng;
    mg_rng_init(&rng, seed, MG_STREAM_TEST);
    for (int bf16 = 0; bf16 < 2; bf16++) {
        REQUIRE_MOVES(bf16);
        const dnnl_format_tag_t tag = !weights ? dnnl_aBcd16b : bf16 ? dnnl_ABcd8b16a2b : dnnl_ABcd16b16a;
        for (int i = 0; i < N_SHAPES; i++)
            for (int swapped = 0; swapped < 2; swapped++) {
                const shape4 s = shapes[i];
                const dnnl_memory_desc_t from = plain_md(s.d0, s.d1, s.h, s.w, swapped);
                dnnl_memory_desc_t to;
                const dnnl_dims_t dims = {s.d0, s.d1, s.h, s.w};
                DNNL_OK(dnnl_memory_desc_init_by_tag(&to, 4, dims, bf16 ? dnnl_bf16 : dnnl_f32, tag));
                const size_t n = (size_t)s.d0 * s.d1 * s.h * s.w, bytes = dnnl_memory_desc_get_size(&to);
                float *x = mg_alloc_floats(n, "x");
                unsigned char *want = mg_alloc(bytes, "oneDNN's"), *got = mg_alloc(bytes, "ours");
                fill(x, n, &rng);
                memset(want, 0xA5, bytes); /* padding lanes must be written, as zeros */
                memset(got, 0x5A, bytes);
                onednn_reorder(&from, x, &to, want);
                const size_t hw = (size_t)s.h * s.w, s0 = swapped ? hw : (size_t)s.d1 * hw,
                             s1 = swapped ? (size_t)s.d0 * hw : hw;
                if (weights)
                    mg_channel_blocks_pack_weights(got, bf16, x, s.d0, s.d1, hw, s0, s1);
                else
                    mg_channel_blocks_pack(got, bf16, x, s.d0, s.d1, hw, s0, s1);
                if (memcmp(got, want, bytes))
                    fail_msg("%s %s %dx%dx%dx%d%s differs from oneDNN's reorder", weights ? "weights pack" : "pack",
                             bf16 ? "bf16" : "fp32", s.d0, s.d1, s.h, s.w, swapped ? " (swapped)" : "");
                mg_free(x), mg_free(want), mg_free(got);
            }
    }
}

static void test_pack_matches_onednn(void **state)
{
    (void)state;
    check_packs(false, 5);
}

static void test_unpack_matches_onednn(void **state)
{
    (void)state;
    REQUIRE_MOVES(false);
    mg_rng rng;
    mg_rng_init(&rng, 6, MG_STREAM_TEST);
    for (int i = 0; i < N_SHAPES; i++)
        for (int swapped = 0; swapped < 2; swapped++) {
            const shape4 s = shapes[i];
            dnnl_memory_desc_t from;
            const dnnl_dims_t dims = {s.d0, s.d1, s.h, s.w};
            DNNL_OK(dnnl_memory_desc_init_by_tag(&from, 4, dims, dnnl_f32, dnnl_aBcd16b));
            const dnnl_memory_desc_t to = plain_md(s.d0, s.d1, s.h, s.w, swapped);
            const size_t n = (size_t)s.d0 * s.d1 * s.h * s.w, blocked = dnnl_memory_desc_get_size(&from) / 4;
            float *x = mg_alloc_floats(blocked, "blocked"), *want = mg_alloc_floats(n, "oneDNN's"),
                  *got = mg_alloc_floats(n, "ours");
            fill(x, blocked, &rng); /* padding lanes too: they must not reach the output */
            onednn_reorder(&from, x, &to, want);
            const size_t hw = (size_t)s.h * s.w, sn = swapped ? hw : (size_t)s.d1 * hw,
                         sc = swapped ? (size_t)s.d0 * hw : hw;
            mg_channel_blocks_unpack(got, sn, sc, x, s.d0, s.d1, hw);
            if (memcmp(got, want, n * sizeof *got))
                fail_msg("unpack %dx%dx%dx%d%s differs from oneDNN's reorder", s.d0, s.d1, s.h, s.w,
                         swapped ? " (swapped)" : "");
            mg_free(x), mg_free(want), mg_free(got);
        }
}

/* unpacking into a wider buffer: the floats around and between the tensor's stay as they were */
static void test_unpack_writes_only_the_tensor(void **state)
{
    (void)state;
    REQUIRE_MOVES(false);
    const int n = 3, c = 20, hw = 19;
    const size_t sn = 2 * (size_t)c * hw, sc = 2 * (size_t)hw; /* every other plane, every other sample slot */
    const int blocks = (c + 15) / 16;
    float *x = mg_alloc_floats((size_t)n * blocks * 16 * hw, "blocked");
    float *y = mg_alloc_floats((size_t)n * sn, "plain");
    for (size_t i = 0; i < (size_t)n * blocks * 16 * hw; i++)
        x[i] = (float)i;
    for (size_t i = 0; i < (size_t)n * sn; i++)
        y[i] = -1.0f;
    mg_channel_blocks_unpack(y, sn, sc, x, n, c, (size_t)hw);
    for (int s = 0; s < n; s++)
        for (size_t at = 0; at < sn; at++) {
            const size_t ch = at / sc, p = at % sc;
            const bool inside = at % sc < (size_t)hw && ch < (size_t)c;
            const float want = inside ? x[(((size_t)s * blocks + ch / 16) * hw + p) * 16 + ch % 16] : -1.0f;
            if (y[(size_t)s * sn + at] != want)
                fail_msg("sample %d offset %zu: %g, want %g", s, at, y[(size_t)s * sn + at], want);
        }
    mg_free(x), mg_free(y);
}

static void test_weights_pack_matches_onednn(void **state)
{
    (void)state;
    check_packs(true, 7);
}

static int setup(void **state)
{
    (void)state;
    return dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success ||
           dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success;
}

static int teardown(void **state)
{
    (void)state;
    dnnl_stream_destroy(stream);
    dnnl_engine_destroy(engine);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_matches_onednn),
        cmocka_unit_test(test_unpack_matches_onednn),
        cmocka_unit_test(test_unpack_writes_only_the_tensor),
        cmocka_unit_test(test_weights_pack_matches_onednn),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
