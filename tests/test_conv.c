/* Convolution and transposed convolution: forward against a direct 7-loop reference,
 * finite-difference gradients, accumulation semantics, the adjoint identity between the
 * two kinds, batches split into several GEMM chunks, im2col/col2im against each other,
 * shape errors, and construction from YAML (with unknown and invalid keys).
 * The vector paths of im2col differ with and without AVX-512: run this test in both kinds
 * of build (e.g. also with OPTFLAGS="-O2 -march=x86-64-v3", the build valgrind can run).
 * The forward reference, gradient and accumulation checks run again under the oneDNN
 * backend (the *_onednn tests), where every layer oneDNN can run must run on it. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "mg_cfg.h"
#include "mg_gradcheck.h"
#include "mg_im2col.h"
#include "mg_layers.h"
#include "mg_net.h"
#include "mg_rng.h"
#include "mg_test.h"

/* One geometry: input (cin, h, w), cout, kernel, stride, padding, output_padding (convT). */
typedef struct { int cin, h, w, cout, k, s, p, op, n; bool bias; } conv_case;

/* Fixed cases cover stride 1, 2 and 3, padding 0..2, odd and non-square images, kernels
 * 1, 2, 3, 4, 5, batch 1 and 3, with and without bias, rows shorter and longer than the
 * 8- and 16-wide vector moves of im2col/col2im (ow = 1..19, 16 included), stride above the
 * kernel, and DCGAN's first layer (1x28x28, k4 s2 p1). Layers whose weights are no larger
 * than one sample's output (conv2d) or input (convT), with P >= 64, run per-sample GEMMs in
 * place (e.g. 1x12x19 k3, 1x28x28 k4, 2x17x16 k4), the others channel-major GEMMs; these
 * small batches are one chunk each, and test_chunked_batches shrinks the chunk budget. */
static const conv_case fixed_cases[] = {
    {2, 5, 7, 3, 3, 1, 1, 0, 3, true},  {3, 5, 7, 4, 1, 1, 0, 0, 1, false}, {1, 9, 6, 2, 4, 2, 1, 1, 3, true},
    {2, 8, 7, 3, 5, 2, 2, 1, 1, false}, {3, 7, 5, 2, 3, 2, 0, 0, 3, true},  {2, 6, 6, 3, 4, 1, 2, 0, 1, true},
    {1, 7, 8, 2, 4, 3, 1, 2, 3, false}, {2, 7, 9, 2, 5, 1, 0, 0, 3, false}, {4, 3, 3, 5, 3, 2, 1, 1, 1, true},
    {3, 1, 1, 2, 1, 1, 0, 0, 3, true},  {2, 7, 9, 3, 4, 2, 1, 1, 3, true},  {1, 8, 5, 2, 3, 3, 0, 2, 3, false},
    {1, 12, 19, 2, 3, 1, 1, 0, 3, true}, {2, 17, 16, 2, 4, 2, 1, 1, 1, false}, {2, 5, 5, 3, 1, 2, 0, 1, 3, true},
    {2, 2, 9, 3, 2, 1, 0, 0, 3, false}, {1, 28, 28, 3, 4, 2, 1, 0, 3, true},  {1, 5, 16, 2, 3, 1, 1, 0, 3, true},
    {2, 3, 13, 2, 2, 1, 0, 0, 3, false}, {2, 6, 10, 2, 5, 2, 2, 1, 3, true},  {1, 9, 12, 2, 4, 2, 0, 1, 3, false},
};
#define N_FIXED ((int)(sizeof fixed_cases / sizeof fixed_cases[0]))
#define N_RANDOM 12

static int rand_in(mg_rng *rng, int lo, int hi) { return lo + (int)mg_rng_below(rng, (uint64_t)(hi - lo + 1)); }

/* A random case for which both kinds are valid (conv2d output >= 1, convT output >= 1). */
static conv_case random_case(mg_rng *rng)
{
    static const int kernels[] = {1, 3, 4, 5};
    conv_case c;
    c.k = kernels[mg_rng_below(rng, 4)];
    c.s = rand_in(rng, 1, 3);
    c.p = rand_in(rng, 0, c.k - 1 < 2 ? c.k - 1 : 2);
    c.op = rand_in(rng, 0, c.s - 1);
    int min_size = c.k - 2 * c.p > 1 ? c.k - 2 * c.p : 1;
    c.h = rand_in(rng, min_size, 12);
    c.w = rand_in(rng, min_size, 20);
    c.cin = rand_in(rng, 1, 4);
    c.cout = rand_in(rng, 1, 4);
    c.n = mg_rng_below(rng, 2) ? 3 : 1;
    c.bias = mg_rng_below(rng, 2);
    if ((c.h - 1) * c.s - 2 * c.p + c.k + c.op < 1 || (c.w - 1) * c.s - 2 * c.p + c.k + c.op < 1)
        return random_case(rng); /* no convT output: draw again */
    return c;
}

static conv_case case_at(int i, mg_rng *rng) { return i < N_FIXED ? fixed_cases[i] : random_case(rng); }

static void build_conv(mg_net *net, const conv_case *c)
{
    mg_shape in = {c->cin, c->h, c->w};
    mg_net_begin(net, "T", in);
    mg_conv2d_make(mg_net_push(net), in, c->cout, c->k, c->s, c->p, c->bias);
    mg_net_finish(net, c->n);
    mg_net_set_backend(net, mg_gradcheck_backend, MG_PRECISION_FP32);
    assert_int_equal(mg_net_onednn_layers(net), mg_gradcheck_backend == MG_BACKEND_ONEDNN);
}

/* oneDNN takes no output_padding beyond the padding (its right padding p - op would be
 * negative): such a layer keeps the BLAS path */
static void build_convt(mg_net *net, const conv_case *c)
{
    mg_shape in = {c->cin, c->h, c->w};
    mg_net_begin(net, "T", in);
    mg_conv_transpose2d_make(mg_net_push(net), in, c->cout, c->k, c->s, c->p, c->op, c->bias);
    mg_net_finish(net, c->n);
    mg_net_set_backend(net, mg_gradcheck_backend, MG_PRECISION_FP32);
    assert_int_equal(mg_net_onednn_layers(net), mg_gradcheck_backend == MG_BACKEND_ONEDNN && c->p >= c->op);
}

/* conv_transpose2d when transposed, else conv2d, of case c. */
static void build_layer(mg_net *net, bool transposed, const conv_case *c)
{
    if (transposed)
        build_convt(net, c);
    else
        build_conv(net, c);
}

/* Direct conv2d, double accumulation:
 * y[s][o][oy][ox] = b[o] + sum_{c,ki,kj} W[o][c][ki][kj] x[s][c][oy s - p + ki][ox s - p + kj] */
static void ref_conv(double *y, const float *x, const float *w, const float *b, const conv_case *c, int oh, int ow)
{
    for (int s = 0; s < c->n; s++)
        for (int o = 0; o < c->cout; o++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    double acc = b ? b[o] : 0.0;
                    for (int ci = 0; ci < c->cin; ci++)
                        for (int ki = 0; ki < c->k; ki++)
                            for (int kj = 0; kj < c->k; kj++) {
                                int iy = oy * c->s - c->p + ki, ix = ox * c->s - c->p + kj;
                                if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w)
                                    continue;
                                acc += (double)w[((o * c->cin + ci) * c->k + ki) * c->k + kj] *
                                       x[((s * c->cin + ci) * c->h + iy) * c->w + ix];
                            }
                    y[((s * c->cout + o) * oh + oy) * ow + ox] = acc;
                }
}

/* Direct transposed conv (W is cin x cout x k x k), double accumulation:
 * y[s][o][iy s - p + ki][ix s - p + kj] += W[c][o][ki][kj] x[s][c][iy][ix]; y starts at b[o] */
static void ref_convt(double *y, const float *x, const float *w, const float *b, const conv_case *c, int oh, int ow)
{
    for (int s = 0; s < c->n; s++)
        for (int o = 0; o < c->cout; o++)
            for (int i = 0; i < oh * ow; i++)
                y[(s * c->cout + o) * oh * ow + i] = b ? b[o] : 0.0;
    for (int s = 0; s < c->n; s++)
        for (int ci = 0; ci < c->cin; ci++)
            for (int iy = 0; iy < c->h; iy++)
                for (int ix = 0; ix < c->w; ix++)
                    for (int o = 0; o < c->cout; o++)
                        for (int ki = 0; ki < c->k; ki++)
                            for (int kj = 0; kj < c->k; kj++) {
                                int oy = iy * c->s - c->p + ki, ox = ix * c->s - c->p + kj;
                                if (oy < 0 || oy >= oh || ox < 0 || ox >= ow)
                                    continue;
                                y[((s * c->cout + o) * oh + oy) * ow + ox] +=
                                    (double)w[((ci * c->cout + o) * c->k + ki) * c->k + kj] *
                                    x[((s * c->cin + ci) * c->h + iy) * c->w + ix];
                            }
}

static float *nan_filled(size_t count)
{
    float *p = mg_alloc_floats(count, "test buffer");
    for (size_t i = 0; i < count; i++)
        p[i] = NAN;
    return p;
}

static void describe(char *buf, size_t size, const char *kind, const conv_case *c)
{
    snprintf(buf, size, "%s %dx%dx%d->%d k%d s%d p%d op%d n%d bias%d", kind, c->cin, c->h, c->w, c->cout, c->k,
             c->s, c->p, c->op, c->n, c->bias);
}

/* Forward of one layer (written into a NaN-filled y, so every output must be written)
 * against the reference. Sums have at most 4 * 25 terms of O(1) values: float32 GEMM
 * error is ~1e-6, so 1e-4 absolute + relative leaves wide margin while catching any
 * wrong index (which gives O(1) errors). */
static void check_forward(bool transposed, const conv_case *c, mg_rng *rng)
{
    mg_net net;
    build_layer(&net, transposed, c);
    mg_layer *l = &net.layers[0];
    mg_gradcheck_randomize(&net, 1.0f, rng);
    size_t nx = mg_shape_size(l->in) * (size_t)c->n, ny = mg_shape_size(l->out) * (size_t)c->n;
    float *x = mg_alloc_floats(nx, "x");
    mg_rng_fill_normal(rng, x, nx, 0.0f, 1.0f);
    float *y = nan_filled(ny);
    double *ref = mg_alloc(sizeof(double) * ny, "reference");
    size_t n_weights = (size_t)c->cin * c->cout * c->k * c->k;
    const float *b = c->bias ? l->param + n_weights : NULL;
    if (transposed) {
        ref_convt(ref, x, l->param, b, c, l->out.h, l->out.w);
        assert_int_equal(l->out.h, (c->h - 1) * c->s - 2 * c->p + c->k + c->op);
    } else {
        ref_conv(ref, x, l->param, b, c, l->out.h, l->out.w);
        assert_int_equal(l->out.h, (c->h + 2 * c->p - c->k) / c->s + 1);
    }
    l->ops->forward(l, x, y, c->n, MG_TRAIN);
    char what[128];
    describe(what, sizeof what, transposed ? "convT forward" : "conv forward", c);
    for (size_t i = 0; i < ny; i++)
        MG_ASSERT_CLOSE(y[i], ref[i], 1e-4, 1e-4, what);
    mg_free(x);
    mg_free(y);
    mg_free(ref);
    mg_net_free(&net);
}

static void test_forward_matches_reference(void **state)
{
    (void)state;
    mg_rng rng;
    mg_rng_init(&rng, 11, MG_STREAM_TEST);
    for (int i = 0; i < N_FIXED + N_RANDOM; i++) {
        conv_case c = case_at(i, &rng);
        check_forward(false, &c, &rng);
        check_forward(true, &c, &rng);
    }
}

/* Gradient checks. Both kinds are linear in x and linear in W, so the central difference
 * has no truncation error at any step; the only error is float32 rounding of the outputs
 * that the step changes, ~1e-7 |y| each, divided by 2 eps. eps = 0.05 keeps that noise
 * near 1e-5 against gradients of size 1..10, so atol = rtol = 2e-3 has a wide margin and
 * still catches a wrong tap (an O(1) error). */
static void test_gradients(void **state)
{
    (void)state;
    mg_rng rng;
    mg_rng_init(&rng, 12, MG_STREAM_TEST);
    mg_gradcheck_opts opts = {.eps = 0.05f, .atol = 2e-3, .rtol = 2e-3, .kink_margin = 0, .max_checks = 40,
                              .mode = MG_TRAIN};
    for (int i = 0; i < N_FIXED + N_RANDOM / 2; i++) {
        conv_case c = case_at(i, &rng);
        for (int transposed = 0; transposed < 2; transposed++) {
            mg_net net;
            build_layer(&net, transposed, &c);
            mg_gradcheck_randomize(&net, 1.0f, &rng);
            mg_gradcheck_net(&net, c.n, &opts, &rng);
            mg_net_free(&net);
        }
    }
}

/* Backward adds into the gradient (two calls give twice one call), writes all of dx
 * (a NaN-filled dx comes out equal to a zero-filled one), leaves grad alone without
 * param_grads, and gives the same dW whether or not dx is requested. */
static void check_accumulation(bool transposed, const conv_case *c, mg_rng *rng)
{
    mg_net net;
    build_layer(&net, transposed, c);
    mg_layer *l = &net.layers[0];
    mg_gradcheck_randomize(&net, 1.0f, rng);
    size_t nx = mg_shape_size(l->in) * (size_t)c->n, ny = mg_shape_size(l->out) * (size_t)c->n;
    float *x = mg_alloc_floats(nx, "x"), *y = mg_alloc_floats(ny, "y"), *dy = mg_alloc_floats(ny, "dy");
    float *dx_zero = mg_alloc_floats(nx, "dx"), *dx_nan = nan_filled(nx);
    float *once = mg_alloc_floats(l->n_param, "grad once");
    mg_rng_fill_normal(rng, x, nx, 0.0f, 1.0f);
    mg_rng_fill_normal(rng, dy, ny, 0.0f, 1.0f);
    l->ops->forward(l, x, y, c->n, MG_TRAIN);

    mg_net_zero_grad(&net);
    l->ops->backward(l, x, y, dy, dx_zero, c->n, true);
    memcpy(once, l->grad, sizeof(float) * l->n_param);
    l->ops->backward(l, x, y, dy, dx_nan, c->n, true);
    char what[128];
    describe(what, sizeof what, transposed ? "convT" : "conv", c);
    /* equal up to float rounding: a chunked batch adds its chunks one by one on top */
    double largest = 0;
    for (size_t i = 0; i < l->n_param; i++)
        largest = fmax(largest, fabs(once[i]));
    for (size_t i = 0; i < l->n_param; i++)
        MG_ASSERT_CLOSE(l->grad[i], 2.0 * once[i], 1e-6 * largest, 1e-6, what);
    for (size_t i = 0; i < nx; i++)
        MG_ASSERT_CLOSE(dx_nan[i], dx_zero[i], 0.0, 0.0, what);

    mg_net_zero_grad(&net);
    l->ops->backward(l, x, y, dy, NULL, c->n, true);
    for (size_t i = 0; i < l->n_param; i++)
        MG_ASSERT_CLOSE(l->grad[i], once[i], 1e-6, 1e-6, what);

    mg_net_zero_grad(&net);
    l->ops->backward(l, x, y, dy, dx_nan, c->n, false);
    for (size_t i = 0; i < l->n_param; i++)
        assert_true(l->grad[i] == 0.0f);
    for (size_t i = 0; i < nx; i++)
        MG_ASSERT_CLOSE(dx_nan[i], dx_zero[i], 0.0, 0.0, what);

    mg_free(x), mg_free(y), mg_free(dy), mg_free(dx_zero), mg_free(dx_nan), mg_free(once);
    mg_net_free(&net);
}

static void test_backward_accumulates(void **state)
{
    (void)state;
    mg_rng rng;
    mg_rng_init(&rng, 13, MG_STREAM_TEST);
    for (int i = 0; i < N_FIXED + N_RANDOM / 2; i++) {
        conv_case c = case_at(i, &rng);
        check_accumulation(false, &c, &rng);
        check_accumulation(true, &c, &rng);
    }
}

/* <conv(x), y> = <x, convT(y)> when convT (cout -> cin) has conv's (k, s, p), the weights
 * are shared (both layouts are cout x cin x k x k here) and output_padding restores the
 * input size: op = (h + 2p - k) mod s, which needs h = w mod s. */
static void test_adjoint_identity(void **state)
{
    (void)state;
    mg_rng rng;
    mg_rng_init(&rng, 14, MG_STREAM_TEST);
    for (int i = 0; i < N_FIXED + N_RANDOM; i++) {
        conv_case c = case_at(i, &rng);
        if ((c.h + 2 * c.p - c.k) % c.s != (c.w + 2 * c.p - c.k) % c.s || c.h + 2 * c.p < c.k ||
            c.w + 2 * c.p < c.k)
            continue;
        mg_net conv, convt;
        c.bias = false;
        build_conv(&conv, &c);
        mg_layer *a = &conv.layers[0];
        conv_case t = {a->out.c, a->out.h, a->out.w, c.cin, c.k, c.s, c.p, (c.h + 2 * c.p - c.k) % c.s, c.n, false};
        build_convt(&convt, &t);
        mg_layer *b = &convt.layers[0];
        assert_int_equal(b->out.c, c.cin);
        assert_int_equal(b->out.h, c.h);
        assert_int_equal(b->out.w, c.w);
        assert_int_equal(a->n_param, b->n_param);
        mg_gradcheck_randomize(&conv, 1.0f, &rng);
        memcpy(b->param, a->param, sizeof(float) * a->n_param);

        size_t nx = mg_shape_size(a->in) * (size_t)c.n, ny = mg_shape_size(a->out) * (size_t)c.n;
        float *x = mg_alloc_floats(nx, "x"), *y = mg_alloc_floats(ny, "y");
        mg_rng_fill_normal(&rng, x, nx, 0.0f, 1.0f);
        mg_rng_fill_normal(&rng, y, ny, 0.0f, 1.0f);
        const float *conv_x = mg_net_forward(&conv, x, c.n, MG_TRAIN);
        const float *convt_y = mg_net_forward(&convt, y, c.n, MG_TRAIN);
        double lhs = 0, rhs = 0, scale = 0;
        for (size_t j = 0; j < ny; j++)
            lhs += (double)conv_x[j] * y[j], scale += fabs((double)conv_x[j] * y[j]);
        for (size_t j = 0; j < nx; j++)
            rhs += (double)x[j] * convt_y[j];
        char what[128];
        describe(what, sizeof what, "adjoint", &c);
        MG_ASSERT_CLOSE(rhs, lhs, 1e-5 * scale, 0.0, what);
        mg_free(x), mg_free(y);
        mg_net_free(&conv);
        mg_net_free(&convt);
    }
}

/* The chunked path with several chunks per batch, including a short last one: the chunk
 * budget (about 2 MB of col normally) is shrunk so that batches of 3 and 5 split into chunks
 * of 1 and of 2, and forward, gradients and accumulation are checked again. */
static void test_chunked_batches(void **state)
{
    (void)state;
    mg_rng rng;
    mg_rng_init(&rng, 16, MG_STREAM_TEST);
    mg_gradcheck_opts opts = {.eps = 0.05f, .atol = 2e-3, .rtol = 2e-3, .kink_margin = 0, .max_checks = 30,
                              .mode = MG_TRAIN};
    const conv_case cases[] = {{2, 7, 9, 3, 4, 2, 1, 1, 3, true}, {3, 6, 5, 2, 3, 1, 1, 0, 5, false},
                               {2, 5, 7, 4, 3, 2, 0, 1, 5, true}};
    for (int budget = 0; budget < 2; budget++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            conv_case c = cases[i];
            for (int transposed = 0; transposed < 2; transposed++) {
                /* one sample's col: K P = (cin or cout) k k times the positions of the window sweep */
                const int col_channels = transposed ? c.cout : c.cin;
                const int oh = (c.h + 2 * c.p - c.k) / c.s + 1, ow = (c.w + 2 * c.p - c.k) / c.s + 1;
                const int positions = transposed ? c.h * c.w : oh * ow;
                const size_t per_sample = (size_t)col_channels * c.k * c.k * positions;
                mg_conv_set_chunk_floats(budget == 0 ? 1 : 2 * per_sample); /* chunks of 1, or of 2 */
                assert_int_equal(mg_conv_chunk(per_sample, c.n), budget == 0 ? 1 : 2);
                check_forward(transposed, &c, &rng);
                check_accumulation(transposed, &c, &rng);
                mg_net net;
                if (transposed)
                    build_convt(&net, &c);
                else
                    build_conv(&net, &c);
                mg_gradcheck_randomize(&net, 1.0f, &rng);
                mg_gradcheck_net(&net, c.n, &opts, &rng);
                mg_net_free(&net);
            }
        }
    mg_conv_set_chunk_floats(0);
}

/* im2col followed by col2im multiplies each pixel by the number of windows covering it:
 * checks the two kernels against each other on a case where that count is known. */
static void test_im2col_col2im_counts(void **state)
{
    (void)state;
    mg_conv_geom g = mg_conv_geom_make(2, 5, 6, 3, 1, 1); /* every pixel covered by 9 windows minus the border */
    assert_int_equal(g.oh, 5);
    assert_int_equal(g.ow, 6);
    size_t img_n = 2 * 2 * 5 * 6, col_n = mg_conv_geom_rows(&g) * mg_conv_geom_cols(&g) * 2;
    float *ones = mg_alloc_floats(img_n, "ones"), *col = mg_alloc_floats(col_n, "col");
    float *back = mg_alloc_floats(img_n, "back"), *scratch = mg_alloc_floats(mg_im2col_scratch_floats(&g, 2), "scr");
    for (size_t i = 0; i < img_n; i++)
        ones[i] = 1.0f;
    mg_im2col(col, ones, 2, &g, scratch);
    mg_col2im_add(back, col, 2, &g, scratch);
    for (int s = 0; s < 2 * 2; s++)
        for (int y = 0; y < 5; y++)
            for (int x = 0; x < 6; x++) {
                int rows = 3 - (y == 0) - (y == 4), cols = 3 - (x == 0) - (x == 5);
                assert_int_equal((int)back[(s * 5 + y) * 6 + x], rows * cols);
            }
    mg_free(ones), mg_free(col), mg_free(back), mg_free(scratch);
}

/* Invalid geometries fail through mg_error naming the layer and the numbers. */
static void test_shape_errors(void **state)
{
    (void)state;
    mg_layer l;
    mg_shape in = {3, 5, 5};
#define BAD(stmt, detail)                                                  \
    do {                                                                   \
        memset(&l, 0, sizeof l);                                           \
        snprintf(l.name, sizeof l.name, "G.7.bad");                        \
        MG_EXPECT_FATAL(stmt, "G.7.bad");                                  \
        if (!strstr(mg_last_error(), (detail)))                            \
            fail_msg("'%s' lacks '%s'", mg_last_error(), (detail));        \
    } while (0)
    BAD(mg_conv2d_make(&l, in, 4, 7, 1, 0, true), "output 0x0");
    BAD(mg_conv2d_make(&l, (mg_shape){3, 1, 9}, 4, 4, 3, 1, true), "input 1x9 with kernel 4, stride 3, padding 1");
    BAD(mg_conv2d_make(&l, in, 4, 0, 1, 0, true), "kernel 0");
    BAD(mg_conv2d_make(&l, in, 4, 3, 0, 0, true), "stride 0");
    BAD(mg_conv2d_make(&l, in, 4, 3, 1, -1, true), "padding -1");
    BAD(mg_conv2d_make(&l, in, 4, 3, 1, 3, true), "padding 3 must be in [0, kernel 3)");
    BAD(mg_conv2d_make(&l, in, 0, 3, 1, 1, true), "output channels 0");
    BAD(mg_conv_transpose2d_make(&l, in, 4, 3, 2, 1, 2, true), "output_padding 2");
    BAD(mg_conv_transpose2d_make(&l, (mg_shape){3, 1, 1}, 4, 3, 1, 2, 0, true), "output -1x-1");
    BAD(mg_conv_transpose2d_make(&l, in, 4, 2, 1, 2, 0, true), "padding 2");
    BAD(mg_conv_transpose2d_make(&l, in, 4, 0, 1, 0, 0, true), "kernel 0");
    BAD(mg_conv_transpose2d_make(&l, in, 4, 3, 0, 0, 0, true), "stride 0");
#undef BAD
}

static const char *good_yaml = "input: [2, 9, 7]\n"
                               "layers:\n"
                               "  - {kind: conv2d, out: 4, kernel: 3, stride: 2, padding: 1}\n"
                               "  - kind: conv_transpose2d\n"
                               "    out: 2\n"
                               "    kernel: 4\n"
                               "    stride: 2\n"
                               "    padding: 1\n"
                               "    output_padding: 1\n"
                               "    bias: false\n"
                               "  - {kind: conv2d, out: 3, kernel: 1}\n";

/* Builds from YAML, compares shapes and the forward pass with the same net built in C. */
static void test_from_yaml(void **state)
{
    (void)state;
    mg_cfg *cfg = mg_cfg_parse(good_yaml, "conv.yaml");
    mg_net net;
    mg_net_from_cfg(&net, "D", mg_cfg_root(cfg), (mg_shape){0, 0, 0}, 2);
    mg_cfg_check_unused(cfg);
    assert_int_equal(net.n_layers, 3);
    assert_string_equal(net.layers[0].name, "D.0.conv2d");
    assert_string_equal(net.layers[1].name, "D.1.conv_transpose2d");
    assert_int_equal(net.layers[0].out.c, 4);
    assert_int_equal(net.layers[0].out.h, 5);
    assert_int_equal(net.layers[0].out.w, 4);
    /* (5 - 1) 2 - 2 + 4 + 1 = 11, (4 - 1) 2 - 2 + 4 + 1 = 9 */
    assert_int_equal(net.layers[1].out.h, 11);
    assert_int_equal(net.layers[1].out.w, 9);
    assert_int_equal(net.layers[2].out.c, 3);
    assert_int_equal(net.layers[0].n_param, 4 * 2 * 9 + 4);
    assert_int_equal(net.layers[1].n_param, 4 * 2 * 16);
    assert_int_equal(net.layers[2].n_param, 3 * 2 + 3);

    mg_net c_net;
    mg_net_begin(&c_net, "C", (mg_shape){2, 9, 7});
    mg_conv2d_make(mg_net_push(&c_net), (mg_shape){2, 9, 7}, 4, 3, 2, 1, true);
    mg_conv_transpose2d_make(mg_net_push(&c_net), mg_net_tail_shape(&c_net), 2, 4, 2, 1, 1, false);
    mg_conv2d_make(mg_net_push(&c_net), mg_net_tail_shape(&c_net), 3, 1, 1, 0, true);
    mg_net_finish(&c_net, 2);
    assert_int_equal(c_net.n_param, net.n_param);
    mg_rng rng;
    mg_rng_init(&rng, 15, MG_STREAM_TEST);
    mg_gradcheck_randomize(&net, 1.0f, &rng);
    memcpy(c_net.param, net.param, sizeof(float) * net.n_param);
    float x[2 * 2 * 9 * 7];
    mg_rng_fill_normal(&rng, x, sizeof x / sizeof x[0], 0.0f, 1.0f);
    const float *a = mg_net_forward(&net, x, 2, MG_TRAIN), *b = mg_net_forward(&c_net, x, 2, MG_TRAIN);
    for (size_t i = 0; i < mg_shape_size(net.out) * 2; i++)
        assert_true(a[i] == b[i]);
    mg_net_free(&c_net);
    mg_net_free(&net);
    mg_cfg_free(cfg);
}

/* Parses text and builds a net, expecting a fatal error mentioning detail. */
static void expect_yaml_error(const char *layer_line, const char *detail)
{
    char text[512];
    snprintf(text, sizeof text, "input: [2, 9, 7]\nlayers:\n  - %s\n", layer_line);
    mg_cfg *cfg = mg_cfg_parse(text, "bad.yaml");
    static mg_net net; /* static: it changes between setjmp and longjmp */
    memset(&net, 0, sizeof net);
    MG_EXPECT_FATAL(mg_net_from_cfg(&net, "D", mg_cfg_root(cfg), (mg_shape){0, 0, 0}, 2);
                    mg_cfg_check_unused(cfg), detail);
    mg_error_set_context(NULL);
    mg_net_free(&net);
    mg_cfg_free(cfg);
}

static void test_yaml_errors(void **state)
{
    (void)state;
    expect_yaml_error("{kind: conv2d, out: 4, kernel: 3, strid: 2}", "unknown key 'strid'");
    expect_yaml_error("{kind: conv_transpose2d, out: 4, kernel: 3, output_pad: 1}", "unknown key 'output_pad'");
    expect_yaml_error("{kind: conv2d, kernel: 3}", "missing required key 'out'");
    expect_yaml_error("{kind: conv_transpose2d, out: 4}", "missing required key 'kernel'");
    expect_yaml_error("{kind: conv2d, out: 4, kernel: 3, stride: 0}", "layers[0].stride");
    expect_yaml_error("{kind: conv2d, out: 4, kernel: 3, padding: 3}", "D.0.conv2d: padding 3");
    expect_yaml_error("{kind: conv2d, out: 4, kernel: 11}", "D.0.conv2d");
    expect_yaml_error("{kind: conv_transpose2d, out: 4, kernel: 4, stride: 2, output_padding: 2}",
                      "output_padding 2");
    expect_yaml_error("{kind: conv2d, out: 4, kernel: 3, bias: maybe}", "expected true or false");
    expect_yaml_error("{kind: conv2d, out: four, kernel: 3}", "expected an integer");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_matches_reference),
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_backward_accumulates),
        cmocka_unit_test(test_adjoint_identity),
        cmocka_unit_test(test_chunked_batches),
        cmocka_unit_test(test_im2col_col2im_counts),
        cmocka_unit_test(test_shape_errors),
        cmocka_unit_test(test_from_yaml),
        cmocka_unit_test(test_yaml_errors),
        cmocka_unit_test_setup_teardown(test_forward_matches_reference, mg_gradcheck_use_onednn, mg_gradcheck_use_blas),
        cmocka_unit_test_setup_teardown(test_gradients, mg_gradcheck_use_onednn, mg_gradcheck_use_blas),
        cmocka_unit_test_setup_teardown(test_backward_accumulates, mg_gradcheck_use_onednn, mg_gradcheck_use_blas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
