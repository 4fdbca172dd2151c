/* Speed of the convolution layers of DCGAN-28 at batch 64, against large-square sgemm
 * measured in the same run (a benchmark, not a test).
 *
 *   D1  conv2d            1 -> 64,  k4 s2 p1, 1x28x28   -> 64x14x14  (K = 16: tiny-K GEMM)
 *   D2  conv2d           64 -> 128, k4 s2 p1, no bias   -> 128x7x7   (M=128 K=1024 N=3136)
 *   G1  conv_transpose2d 128 -> 64, k4 s2 p1, no bias   -> 64x14x14  (M=1024 K=128 N=3136)
 *   G2  conv_transpose2d 64 -> 1,   k4 s2 p1            -> 1x28x28   (M = 16: tiny-M GEMM)
 *
 * For each: forward, backward with input and weight gradients (2x the forward FLOPs) and
 * backward with weight gradients only (1x; what the first layer of a network does), as
 * median milliseconds and GFLOP/s = 2 MACs batch / time, and the ratio to square sgemm.
 * Next to each, the same layer's sgemm calls alone (same shapes, same chunking, measured in
 * the same run), so "overhead" is what im2col, col2im, gathers, scatters and bias cost on
 * top of the GEMMs, a ratio that is robust to a noisy machine.
 * OpenBLAS runs on one thread unless OPENBLAS_NUM_THREADS is set.
 *   build/tools/bench/bench_layers [batch] [seconds per measurement] [chunk budget in floats, 0:
 *                            default] [wall|cpu]
 * Times are wall-clock by default; "cpu" times the calling thread's CPU time instead, which
 * keeps the numbers meaningful when other jobs share the cores (cache and memory
 * contention still shows). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mg_blas.h"
#include "mg_error.h"
#include "mg_im2col.h"
#include "mg_layers.h"
#include "mg_net.h"
#include "mg_rng.h"
#include "mg_util.h"

static clockid_t clock_used = CLOCK_MONOTONIC;

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define MAX_REPS 400
#define MIN_REPS 7
static double budget_seconds = 0.4; /* per measurement, after warm-up */

typedef void (*bench_fn)(void *ctx);

/* Median seconds of fn: 3 warm-up calls, then as many as fit the budget (7..400). */
static double median_seconds(bench_fn fn, void *ctx)
{
    double t0 = mg_clock_seconds(clock_used);
    for (int i = 0; i < 3; i++)
        fn(ctx);
    double estimate = (mg_clock_seconds(clock_used) - t0) / 3;
    int reps = estimate > 0 ? (int)(budget_seconds / estimate) : MAX_REPS;
    reps = reps < MIN_REPS ? MIN_REPS : reps > MAX_REPS ? MAX_REPS : reps;
    static double t[MAX_REPS];
    for (int r = 0; r < reps; r++) {
        double start = mg_clock_seconds(clock_used);
        fn(ctx);
        t[r] = mg_clock_seconds(clock_used) - start;
    }
    qsort(t, (size_t)reps, sizeof t[0], by_value);
    return reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
}

/* Medians of a and b timed alternately (a, b, a, b, ...), so that both see the same machine:
 * on a shared machine their ratio is far steadier than that of two separate medians. */
static void median_pair(bench_fn a, void *ctx_a, bench_fn b, void *ctx_b, double *ta, double *tb)
{
    double t0 = mg_clock_seconds(clock_used);
    for (int i = 0; i < 3; i++)
        a(ctx_a), b(ctx_b);
    double estimate = (mg_clock_seconds(clock_used) - t0) / 3;
    int reps = estimate > 0 ? (int)(2 * budget_seconds / estimate) : MAX_REPS;
    reps = reps < MIN_REPS ? MIN_REPS : reps > MAX_REPS ? MAX_REPS : reps;
    static double t[2][MAX_REPS];
    for (int r = 0; r < reps; r++) {
        double start = mg_clock_seconds(clock_used);
        a(ctx_a);
        double mid = mg_clock_seconds(clock_used);
        b(ctx_b);
        t[0][r] = mid - start;
        t[1][r] = mg_clock_seconds(clock_used) - mid;
    }
    for (int k = 0; k < 2; k++)
        qsort(t[k], (size_t)reps, sizeof t[k][0], by_value);
    *ta = reps % 2 ? t[0][reps / 2] : 0.5 * (t[0][reps / 2 - 1] + t[0][reps / 2]);
    *tb = reps % 2 ? t[1][reps / 2] : 0.5 * (t[1][reps / 2 - 1] + t[1][reps / 2]);
}

typedef struct { int n; float *a, *b, *c; } square_ctx;

static void run_square(void *ctx)
{
    square_ctx *s = ctx;
    mg_sgemm_checked("bench_layers", "square", CblasNoTrans, CblasNoTrans, s->n, s->n, s->n, 1.0f, s->a, s->n, s->b,
                     s->n, 0.0f, s->c, s->n);
}

/* GFLOP/s of an n x n x n sgemm. */
static double square_gflops(int n, mg_rng *rng)
{
    size_t count = (size_t)n * n;
    square_ctx s = {n, mg_alloc_floats(count, "a"), mg_alloc_floats(count, "b"), mg_alloc_floats(count, "c")};
    mg_rng_fill_normal(rng, s.a, count, 0.0f, 1.0f);
    mg_rng_fill_normal(rng, s.b, count, 0.0f, 1.0f);
    double t = median_seconds(run_square, &s);
    mg_free(s.a), mg_free(s.b), mg_free(s.c);
    return 2e-9 * (double)n * n * n / t;
}

typedef struct {
    mg_layer *l;
    const float *x, *dy;
    float *y, *dx;
    int n;
} layer_ctx;

static void run_forward(void *ctx)
{
    layer_ctx *c = ctx;
    c->l->ops->forward(c->l, c->x, c->y, c->n, MG_TRAIN);
}
static void run_backward(void *ctx)
{
    layer_ctx *c = ctx;
    c->l->ops->backward(c->l, c->x, c->y, c->dy, c->dx, c->n, true);
}
static void run_backward_no_dx(void *ctx)
{
    layer_ctx *c = ctx;
    c->l->ops->backward(c->l, c->x, c->y, c->dy, NULL, c->n, true);
}

/* The sgemm calls of one pass of a layer, as conv2d.c / conv_transpose2d.c make them, per
 * chunk of m samples (K = column rows, P = column positions per sample, col is K x mP):
 *   conv2d: forward W col: NN (cout, mP, K); dW: NT (cout, K, mP); dcol: TN (K, mP, cout)
 *   convT:  forward W^T x: TN (K, mP, cin); dW: NT (cin, K, mP); dx:  NN (cin, mP, K)
 * In place, each is m calls with P in place of mP, col's slices keeping leading dimension mP. */
typedef struct {
    bool transposed, in_place, forward, dw, dx;
    int cin, cout, K, P, batch, chunk;
    float *a, *b, *c; /* big enough for any operand */
} gemm_pass;

/* C (m x n) = op(A) op(B) + beta C, with the given leading dimensions */
static void sgemm_ld(bool ta, bool tb, int m, int n, int k, int lda, int ldb, float beta, int ldc, const gemm_pass *g)
{
    mg_sgemm_checked("bench_layers", "layer GEMM alone", ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                     m, n, k, 1.0f, g->a, lda, g->b, ldb, beta, g->c, ldc);
}

static void run_gemms(void *ctx)
{
    const gemm_pass *g = ctx;
    const int K = g->K, P = g->P, cin = g->cin, cout = g->cout;
    for (int first = 0; first < g->batch; first += g->chunk) {
        const int m = g->batch - first < g->chunk ? g->batch - first : g->chunk, mP = m * P;
        const int calls = g->in_place ? m : 1, N = g->in_place ? P : mP; /* columns per call */
        const int ld_nchw = N; /* the NCHW side: P per sample in place, mP channel-major */
        for (int i = 0; i < calls; i++) {
            if (g->forward)
                g->transposed ? sgemm_ld(true, false, K, N, cin, K, ld_nchw, 0.0f, mP, g)
                              : sgemm_ld(false, false, cout, N, K, K, mP, 0.0f, ld_nchw, g);
            if (g->dw)
                g->transposed ? sgemm_ld(false, true, cin, K, N, ld_nchw, mP, 1.0f, K, g)
                              : sgemm_ld(false, true, cout, K, N, ld_nchw, mP, 1.0f, K, g);
            if (g->dx)
                g->transposed ? sgemm_ld(false, false, cin, N, K, K, mP, 0.0f, ld_nchw, g)
                              : sgemm_ld(true, false, K, N, cout, K, ld_nchw, 0.0f, mP, g);
        }
    }
}

typedef struct {
    const char *label;
    bool transposed;
    mg_shape in;
    int cout;
    bool bias;
} layer_spec;

/* Totals over all layers, for the summary line. */
static double total_flop, total_seconds, total_gemm_seconds;

static void print_pass(const char *pass, double flop, double t, double t_gemm, double peak)
{
    printf("    %-10s %8.3f ms %6.1f GF/s %4.0f%% of sgemm | its sgemms alone %8.3f ms %6.1f GF/s | overhead %5.1f%%\n",
           pass, 1e3 * t, 1e-9 * flop / t, 100 * 1e-9 * flop / t / peak, 1e3 * t_gemm, 1e-9 * flop / t_gemm,
           100 * (t / t_gemm - 1));
}

static void bench_layer(const layer_spec *spec, int batch, double peak, mg_rng *rng)
{
    mg_net net;
    mg_net_begin(&net, "B", spec->in);
    mg_layer *l = mg_net_push(&net);
    if (spec->transposed)
        mg_conv_transpose2d_make(l, spec->in, spec->cout, 4, 2, 1, 0, spec->bias);
    else
        mg_conv2d_make(l, spec->in, spec->cout, 4, 2, 1, spec->bias);
    mg_net_finish(&net, batch);
    l = &net.layers[0];
    mg_rng_fill_normal(rng, net.param, net.n_param, 0.0f, 0.02f);
    size_t nx = mg_shape_size(l->in) * (size_t)batch, ny = mg_shape_size(l->out) * (size_t)batch;
    float *x = mg_alloc_floats(nx, "x"), *dy = mg_alloc_floats(ny, "dy");
    mg_rng_fill_normal(rng, x, nx, 0.0f, 1.0f);
    mg_rng_fill_normal(rng, dy, ny, 0.0f, 1.0f);
    layer_ctx ctx = {l, x, dy, net.act[0], net.delta[0], batch};

    /* the layer's GEMM layout, decided as the layer decides it */
    const int cin = l->in.c, cout = l->out.c;
    const int K = spec->transposed ? cout * 16 : cin * 16;
    const int P = spec->transposed ? l->in.h * l->in.w : l->out.h * l->out.w;
    const size_t weights = (size_t)cin * cout * 16, operand = (size_t)(spec->transposed ? cin : cout) * P;
    const bool in_place = mg_conv_in_place(weights, operand, (size_t)P);
    const int chunk = mg_conv_chunk((size_t)K * P, batch);
    const size_t big = (size_t)(K + cin + cout) * P * chunk + weights; /* covers every operand */
    gemm_pass fwd = {spec->transposed, in_place, true, false, false, cin, cout, K, P, batch, chunk,
                     mg_alloc_floats(big, "a"), mg_alloc_floats(big, "b"), mg_alloc_floats(big, "c")};
    gemm_pass bwd = fwd, bwd_w = fwd;
    bwd.forward = bwd_w.forward = false;
    bwd.dw = bwd_w.dw = true;
    bwd.dx = true;

    double flop = 2.0 * l->macs * batch; /* one forward pass */
    printf("%-3s %-17s %4d->%-4d %2dx%-2d  (%s GEMMs, chunks of %d sample%s)\n", spec->label, l->ops->kind, cin, cout,
           l->out.h, l->out.w, in_place ? "in place" : "channel-major", chunk, chunk > 1 ? "s" : "");
    double tf, gf, tb, gb, tw, gw;
    median_pair(run_forward, &ctx, run_gemms, &fwd, &tf, &gf);
    print_pass("forward", flop, tf, gf, peak);
    median_pair(run_backward, &ctx, run_gemms, &bwd, &tb, &gb);
    print_pass("backward", 2 * flop, tb, gb, peak);
    median_pair(run_backward_no_dx, &ctx, run_gemms, &bwd_w, &tw, &gw);
    print_pass("bwd no dx", flop, tw, gw, peak);
    total_flop += 3 * flop;
    total_seconds += tf + tb;
    total_gemm_seconds += gf + gb;
    mg_free(fwd.a), mg_free(fwd.b), mg_free(fwd.c);
    mg_free(x), mg_free(dy);
    mg_net_free(&net);
}

int main(int argc, char **argv)
{
    const int batch = argc > 1 ? atoi(argv[1]) : 64;
    if (argc > 2)
        budget_seconds = atof(argv[2]);
    if (argc > 3)
        mg_conv_set_chunk_floats((size_t)atol(argv[3]));
    if (argc > 4 && !strcmp(argv[4], "cpu"))
        clock_used = CLOCK_THREAD_CPUTIME_ID;
    MG_CHECK(batch >= 1 && budget_seconds > 0 && (argc <= 4 || !strcmp(argv[4], "cpu") || !strcmp(argv[4], "wall")),
             "bench_layers", "usage: bench_layers [batch] [seconds] [chunk floats, 0: default] [wall|cpu]",
             "batch %d and seconds %g must be positive, the clock wall or cpu", batch, budget_seconds);
    if (!getenv("OPENBLAS_NUM_THREADS"))
        openblas_set_num_threads(1);
    const char *coretype = getenv("OPENBLAS_CORETYPE"), *l2 = getenv("OPENBLAS_L2_SIZE");
    printf("OpenBLAS core %s, %d thread(s); OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s; batch %d; %s time\n",
           openblas_get_corename(), openblas_get_num_threads(), coretype ? coretype : "(unset)",
           l2 ? l2 : "(unset)", batch, clock_used == CLOCK_MONOTONIC ? "wall-clock" : "thread CPU");
    mg_rng rng;
    mg_rng_init(&rng, 7, MG_STREAM_TEST);
    double g1024 = square_gflops(1024, &rng), g2048 = square_gflops(2048, &rng);
    double peak = g1024 > g2048 ? g1024 : g2048;
    printf("sgemm 1024^3: %.1f GFLOP/s, 2048^3: %.1f GFLOP/s; percentages below are of %.1f\n", g1024, g2048,
           peak);

    const layer_spec specs[] = {
        {"D1", false, {1, 28, 28}, 64, true},
        {"D2", false, {64, 14, 14}, 128, false},
        {"G1", true, {128, 7, 7}, 64, false},
        {"G2", true, {64, 14, 14}, 1, true},
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        bench_layer(&specs[i], batch, peak, &rng);
    printf("all four, forward + full backward: %.3f ms, %.1f GFLOP/s (%.0f%% of sgemm); their sgemms alone %.3f ms "
           "(overhead %.1f%%)\n", 1e3 * total_seconds, 1e-9 * total_flop / total_seconds,
           100 * 1e-9 * total_flop / total_seconds / peak, 1e3 * total_gemm_seconds,
           100 * (total_seconds / total_gemm_seconds - 1));
    return 0;
}
