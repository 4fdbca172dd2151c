/* make bench: speed of the neural-network core on DCGAN-28 (configs/fmnist_dcgan.yaml).
 *
 * Prints, at batch 64 on one rank:
 *   - every layer's forward and backward GFLOP/s (backward = input and weight gradients),
 *   - a whole training iteration (D step on real and fake, then a G step through a frozen
 *     D reusing the D step's fakes, as ../shared/peer/peer_dcgan.py does) in images/s and
 *     GFLOP/s, FLOPs counted as the peer counts them (147.5 MFLOP per image),
 *   - cblas_sgemm's GFLOP/s on large square matrices in the same run, and the ratios,
 *   - the OpenBLAS kernel in use, and a check of sgemm against a double reference.
 * Times are medians of repeated runs after warm-up. The iteration's share of its ceiling
 * (oneDNN's GEMM rate in the same precision, or sgemm's for BLAS) is taken in five rounds,
 * each an iteration timing and a ceiling measurement side by side, and printed as the
 * median of the rounds' shares with each round's: on a shared machine both drift together.
 * Usage: bench_dcgan [CONFIG [BATCH [blas|onednn [fp32|bf16]]]]; with onednn the layers with
 * weights run on oneDNN (one OpenMP thread), in fp32 or with bfloat16 inputs, and the
 * implementation oneDNN chose for each is printed.
 * MPIGAN_BENCH_CLOCK=thread times with the calling thread's CPU time instead of the wall
 * clock: on a machine shared with other work a time-shared run then still gives one core's
 * rate (all work runs on the calling thread with one OpenBLAS and one OpenMP thread). */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mg_blas.h"
#include "mg_cfg.h"
#include "mg_error.h"
#include "mg_loss.h"
#include "mg_net.h"
#include "mg_onednn.h"
#include "mg_optim.h"
#include "mg_util.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#define REPS 15

/* Seconds on the chosen clock (wall, or this thread's CPU time; see the top). */
static double now_s(void)
{
    static int thread_clock = -1;
    if (thread_clock < 0) {
        const char *c = getenv("MPIGAN_BENCH_CLOCK");
        thread_clock = c && !strcmp(c, "thread");
    }
    if (!thread_clock)
        return mg_now();
    struct timespec ts;
    MG_CHECK(clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0, "bench_dcgan", NULL, "clock_gettime failed");
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Three n x n matrices for a timed product: a and b normal, c the output. */
static void square_operands(int n, float **a, float **b, float **c)
{
    *a = mg_alloc_floats((size_t)n * n, "a");
    *b = mg_alloc_floats((size_t)n * n, "b");
    *c = mg_alloc_floats((size_t)n * n, "c");
    mg_rng rng;
    mg_rng_init(&rng, 1, 1);
    mg_rng_fill_normal(&rng, *a, (size_t)n * n, 0, 1);
    mg_rng_fill_normal(&rng, *b, (size_t)n * n, 0, 1);
}

/* Median seconds of one square sgemm of size n. */
static double sgemm_seconds(int n)
{
    float *a, *b, *c;
    square_operands(n, &a, &b, &c);
    double t[REPS];
    for (int r = -2; r < REPS; r++) {
        double t0 = now_s();
        mg_sgemm_checked("bench_dcgan", "square", CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        if (r >= 0)
            t[r] = now_s() - t0;
    }
    mg_free(a);
    mg_free(b);
    mg_free(c);
    return median(t, REPS);
}

/* Median seconds of one square product of size n on oneDNN: an inner product (the linear
 * layer's forward, y = x W^T, fp32 in and out) with fp32 or bfloat16 products, so the rate
 * is the one the backend's layers can reach, conversions to bfloat16 included. */
static double onednn_gemm_seconds(int n, bool bf16)
{
    const mg_onednn_geom g = {.kind = MG_ONEDNN_LINEAR, .cin = n, .h = 1, .w = 1, .cout = n, .bf16 = bf16};
    mg_onednn_op *op = mg_onednn_op_make(bf16 ? "oneDNN bf16 GEMM" : "oneDNN fp32 GEMM", &g, n);
    MG_CHECK(op, "bench_dcgan", NULL, "oneDNN has no inner product for %d x %d", n, n);
    float *a, *b, *c;
    square_operands(n, &a, &b, &c);
    double t[REPS];
    for (int r = -2; r < REPS; r++) {
        double t0 = now_s();
        mg_onednn_forward(op, a, b, NULL, c, n);
        if (r >= 0)
            t[r] = now_s() - t0;
    }
    mg_free(a);
    mg_free(b);
    mg_free(c);
    mg_onednn_op_free(op);
    return median(t, REPS);
}

/* Largest relative error of sgemm against a double-precision product. */
static double sgemm_check(void)
{
    const int m = 96, k = 333, n = 71;
    float *a = mg_alloc_floats((size_t)m * k, "a"), *b = mg_alloc_floats((size_t)k * n, "b");
    float *c = mg_alloc_floats((size_t)m * n, "c");
    mg_rng rng;
    mg_rng_init(&rng, 2, 2);
    mg_rng_fill_normal(&rng, a, (size_t)m * k, 0, 1);
    mg_rng_fill_normal(&rng, b, (size_t)k * n, 0, 1);
    mg_sgemm_checked("bench_dcgan", "reference check", CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
    double worst = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0, mag = 0;
            for (int p = 0; p < k; p++) {
                s += (double)a[i * k + p] * b[p * n + j];
                mag += fabs((double)a[i * k + p] * b[p * n + j]);
            }
            worst = fmax(worst, fabs(c[i * n + j] - s) / mag);
        }
    mg_free(a);
    mg_free(b);
    mg_free(c);
    return worst;
}

/* Per-layer forward and backward times at batch n, using the net's own buffers. */
static void bench_layers(mg_net *net, const float *x, int n, double sgemm_gflops)
{
    mg_net_forward(net, x, n, MG_TRAIN);
    float *dy = net->delta[0], *dx = net->delta[1];
    for (int i = 0; i < net->n_layers; i++) {
        mg_layer *l = &net->layers[i];
        const float *in = i ? net->act[i - 1] : x;
        size_t out_n = mg_shape_size(l->out) * (size_t)n;
        for (size_t k = 0; k < out_n; k++)
            dy[k] = 1e-3f * (float)((k * 7919) % 1000) - 0.5f;
        double tf[REPS], tb[REPS];
        for (int r = -2; r < REPS; r++) {
            double t0 = now_s();
            l->ops->forward(l, in, net->act[i], n, MG_TRAIN);
            double t1 = now_s();
            l->ops->backward(l, in, net->act[i], dy, dx, n, true);
            double t2 = now_s();
            if (r >= 0) {
                tf[r] = t1 - t0;
                tb[r] = t2 - t1;
            }
        }
        double f = median(tf, REPS), b = median(tb, REPS);
        double flop = 2.0 * l->macs * n;
        if (flop > 0)
            printf("| %-22s | %8.3f | %7.1f | %8.3f | %7.1f | %5.0f%% |\n", l->name, 1e3 * f, 1e-9 * flop / f,
                   1e3 * b, 2e-9 * flop / b, 100.0 * (3e-9 * flop / (f + b)) / sgemm_gflops);
        else
            printf("| %-22s | %8.3f |       - | %8.3f |       - |     - |\n", l->name, 1e3 * f, 1e3 * b);
    }
}

int main(int argc, char **argv)
{
    const char *config = argc > 1 ? argv[1] : "configs/fmnist_dcgan.yaml";
    const int batch = argc > 2 ? atoi(argv[2]) : 64;
    const char *backend_name = argc > 3 ? argv[3] : "blas";
    mg_backend backend = MG_BACKEND_COUNT;
    for (int b = 0; b < MG_BACKEND_COUNT; b++)
        if (!strcmp(backend_name, mg_backend_names[b]))
            backend = (mg_backend)b;
    MG_CHECK(backend != MG_BACKEND_COUNT, backend_name, "the third argument is blas or onednn", "unknown backend");
    const char *precision_name = argc > 4 ? argv[4] : "fp32";
    mg_precision precision = MG_PRECISION_COUNT;
    for (int p = 0; p < MG_PRECISION_COUNT; p++)
        if (!strcmp(precision_name, mg_precision_names[p]))
            precision = (mg_precision)p;
    MG_CHECK(precision != MG_PRECISION_COUNT, precision_name, "the fourth argument is fp32 or bf16",
             "unknown precision");
    if (!getenv("OPENBLAS_NUM_THREADS"))
        openblas_set_num_threads(1);
    if (!getenv("OMP_NUM_THREADS"))
        omp_set_num_threads(1);
    const char *coretype = getenv("OPENBLAS_CORETYPE"), *l2 = getenv("OPENBLAS_L2_SIZE");
    printf("OpenBLAS core: %s, threads: %d  (OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s)\n",
           openblas_get_corename(), openblas_get_num_threads(), coretype ? coretype : "(unset)", l2 ? l2 : "(unset)");
    printf("sgemm vs double reference: max relative error %.2e\n", sgemm_check());

    double s1024 = sgemm_seconds(1024), s2048 = sgemm_seconds(2048);
    double peak1024 = 2e-9 * 1024.0 * 1024 * 1024 / s1024, peak = 2e-9 * 2048.0 * 2048 * 2048 / s2048;
    printf("sgemm square: 1024: %.1f GFLOP/s, 2048: %.1f GFLOP/s (peak used below: 2048)\n", peak1024, peak);
    /* oneDNN's own rates at the same sizes: the ceiling of the oneDNN backend in each precision */
    const double dnn_fp32 = 2e-9 * 2048.0 * 2048 * 2048 / onednn_gemm_seconds(2048, false);
    const bool bf16_ok = mg_onednn_bf16_supported();
    const double dnn_bf16 = bf16_ok ? 2e-9 * 2048.0 * 2048 * 2048 / onednn_gemm_seconds(2048, true) : 0;
    printf("oneDNN GEMM (inner product) square 2048: fp32 %.1f GFLOP/s, bf16 ", dnn_fp32);
    if (bf16_ok)
        printf("%.1f GFLOP/s (%.2fx sgemm, %.2fx oneDNN fp32)\n\n", dnn_bf16, dnn_bf16 / peak, dnn_bf16 / dnn_fp32);
    else
        printf("- (this CPU has no bfloat16 instructions)\n\n");

    mg_cfg *cfg = mg_cfg_load_file(config);
    mg_net G, D;
    mg_net_from_cfg(&G, "G", mg_cfg_require(mg_cfg_root(cfg), "generator"), (mg_shape){0, 0, 0}, batch);
    mg_net_from_cfg(&D, "D", mg_cfg_require(mg_cfg_root(cfg), "discriminator"), G.out, batch);
    mg_rng rng;
    mg_rng_init(&rng, 1, MG_STREAM_INIT);
    mg_net_init_params(&G, &rng);
    mg_net_init_params(&D, &rng);
    mg_net_set_backend(&G, backend, precision);
    mg_net_set_backend(&D, backend, precision);
    printf("backend: %s, precision %s, clock: %s\n", mg_backend_names[backend], mg_precision_names[precision],
           getenv("MPIGAN_BENCH_CLOCK") && !strcmp(getenv("MPIGAN_BENCH_CLOCK"), "thread") ? "thread CPU time" : "wall");
    const mg_net *nets[2] = {&G, &D};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < nets[k]->n_layers; i++)
            if (nets[k]->layers[i].onednn) {
                char impl[256];
                mg_onednn_describe(nets[k]->layers[i].onednn, batch, impl, sizeof impl);
                printf("  %-22s oneDNN forward / backward data / backward weights: %s\n", nets[k]->layers[i].name,
                       impl);
            }
    printf("\n");

    size_t nz = mg_shape_size(G.in) * batch, nx = mg_shape_size(D.in) * batch;
    float *z = mg_alloc_floats(nz, "noise"), *real = mg_alloc_floats(nx, "real batch");
    float *dlogit = mg_alloc_floats((size_t)batch, "loss gradient");
    mg_rng_fill_normal(&rng, z, nz, 0, 1);
    mg_rng_fill_uniform(&rng, real, nx, -1, 1);

    printf("Per layer, batch %d (backward = input + weight gradients):\n\n", batch);
    printf("| layer                  | fwd ms   | GFLOP/s | bwd ms   | GFLOP/s | vs sgemm |\n");
    printf("|------------------------|----------|---------|----------|---------|-------|\n");
    bench_layers(&G, z, batch, peak);
    bench_layers(&D, real, batch, peak);

    /* one iteration; FLOPs as the peer counts them: the first layers get no input gradient,
     * D gets no weight gradient in the G step */
    const double d_fwd = mg_net_forward_macs(&D), g_fwd = mg_net_forward_macs(&G);
    const double d_first = D.layers[0].macs, g_first = G.layers[0].macs;
    const double macs = 2 * (3 * d_fwd - d_first) + g_fwd + 2 * d_fwd + (2 * g_fwd - g_first);
    const double flop_per_image = 2 * macs;
    mg_opt_cfg ocfg = mg_opt_cfg_default(MG_OPT_ADAM);
    ocfg.lr = 2e-4f;
    ocfg.beta1 = 0.5f;
    mg_optim optG, optD;
    mg_optim_init(&optG, &ocfg, G.n_param);
    mg_optim_init(&optD, &ocfg, D.n_param);

    /* Rounds of the iteration alternate with a measurement of the rate it is compared with
     * (oneDNN's GEMM in the same precision, or sgemm for BLAS), so that each share compares
     * two measurements taken side by side; the share printed is the median of the rounds'. */
    enum { ITERS = 15, ROUNDS = 5 };
    double round_it_s[ROUNDS], round_rate[ROUNDS], round_share[ROUNDS];
    for (int round = 0; round < ROUNDS; round++) {
        double t[ITERS];
        for (int it = round ? 0 : -3; it < ITERS; it++) {
            double t0 = now_s();
            mg_rng_fill_normal(&rng, z, nz, 0, 1);
            const float *fake = mg_net_forward(&G, z, batch, MG_TRAIN);
            mg_net_zero_grad(&D);
            const float *out = mg_net_forward(&D, real, batch, MG_TRAIN);
            mg_d_loss_real(MG_LOSS_NONSATURATING, out, batch, dlogit);
            mg_net_backward(&D, dlogit, true, false);
            out = mg_net_forward(&D, fake, batch, MG_TRAIN);
            mg_d_loss_fake(MG_LOSS_NONSATURATING, out, batch, dlogit);
            mg_net_backward(&D, dlogit, true, false);
            mg_optim_step(&optD, D.param, D.grad, ocfg.lr);
            mg_net_zero_grad(&G);
            out = mg_net_forward(&D, fake, batch, MG_TRAIN);
            mg_g_loss(MG_LOSS_NONSATURATING, out, batch, dlogit);
            float *dfake = mg_net_backward(&D, dlogit, false, true);
            mg_net_backward(&G, dfake, true, false);
            mg_optim_step(&optG, G.param, G.grad, ocfg.lr);
            if (it >= 0)
                t[it] = now_s() - t0;
        }
        round_it_s[round] = median(t, ITERS);
        const double seconds = backend == MG_BACKEND_ONEDNN
                                   ? onednn_gemm_seconds(2048, precision == MG_PRECISION_BF16)
                                   : sgemm_seconds(2048);
        round_rate[round] = 2e-9 * 2048.0 * 2048 * 2048 / seconds;
        round_share[round] = 1e-9 * flop_per_image * batch / round_it_s[round] / round_rate[round];
    }
    const double it_s = median(round_it_s, ROUNDS);
    double gflops = 1e-9 * flop_per_image * batch / it_s;
    printf("\nWhole iteration (D step real+fake, G step through frozen D, fakes reused), batch %d:\n", batch);
    printf("  %.1f MFLOP/image, %.2f ms/iteration, %.0f images/s, %.1f GFLOP/s = %.0f%% of sgemm 2048 (%.0f%% of 1024)\n",
           1e-6 * flop_per_image, 1e3 * it_s, batch / it_s, gflops, 100 * gflops / peak, 100 * gflops / peak1024);
    double shares[ROUNDS];
    memcpy(shares, round_share, sizeof shares);
    const double share = median(shares, ROUNDS), rate = median(round_rate, ROUNDS);
    printf("  = %.0f%% of %s%s GEMM rate (%.1f GFLOP/s), median of %d rounds measured in turn:", 100 * share,
           backend == MG_BACKEND_ONEDNN ? "oneDNN's " : "sgemm's ",
           backend == MG_BACKEND_ONEDNN ? mg_precision_names[precision] : "fp32", rate, ROUNDS);
    for (int round = 0; round < ROUNDS; round++)
        printf(" %.0f%%", 100 * round_share[round]);
    printf("\n");

    mg_optim_free(&optG);
    mg_optim_free(&optD);
    mg_free(z);
    mg_free(real);
    mg_free(dlogit);
    mg_net_free(&G);
    mg_net_free(&D);
    mg_cfg_free(cfg);
    return 0;
}
