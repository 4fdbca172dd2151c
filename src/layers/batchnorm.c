/* Batch normalisation, 1-d (vectors, statistics over the batch) and 2-d (images,
 * statistics over batch, height and width): the same code with P = h*w positions.
 *
 * Training mode normalises with batch statistics, computed in two passes (mean, then
 * centred squares) for accuracy, and updates the running statistics in l->state
 * (running_var uses the unbiased variance, as PyTorch); backward takes its two sums (dy and
 * dy (x - mean), the mean being known) in one pass. With a reduce callback (sync BN)
 * the sums are taken over every replica, so N ranks x B/N samples normalise exactly as
 * one rank x B. Backward recomputes x_hat from x and the cached mean and 1/std.
 *
 * param: gamma (C), beta (C)   state: running_mean (C), running_var (C)
 * cache (fixed): mean (C), inv_std (C), scratch (2C + 1) for reductions, the last mode (1),
 *                backward coefficients (3C) */
#include <math.h>
#include <string.h>

#include "mg_error.h"
#include "mg_layers.h"

typedef struct { float momentum, eps; } bn_impl;

#define MODE_SLOT(C) (4 * (size_t)(C) + 1)
#define COEF_SLOT(C) (4 * (size_t)(C) + 2)

static void reduce(mg_layer *l, float *buf, int n)
{
    if (l->reduce)
        l->reduce(buf, n, l->reduce_ctx);
}

/* Per-channel sums over (n, P), into double across planes (1-d: P == 1, in float across
 * the batch, vectorised over channels). Within a plane of P contiguous floats the sum runs
 * in 8 float lanes: a single float accumulator would be one serial chain of dependent
 * adds, which the compiler may not reorder (no -ffast-math), ~4 cycles per element.
 *   SUMS_X:  s1[c] = sum x
 *   SUMS_SQ: s1[c] = sum (x - mean[c])^2
 *   SUMS_DY: s1[c] = sum dy, s2[c] = sum dy (x - mean[c])  (one pass) */
typedef float f8 __attribute__((vector_size(32)));

static inline f8 load8(const float *p)
{
    f8 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline double lanes_sum(f8 v)
{
    double s = 0;
    for (int i = 0; i < 8; i++)
        s += v[i];
    return s;
}

typedef enum { SUMS_X, SUMS_SQ, SUMS_DY } sums_kind;

static void channel_sums(sums_kind kind, float *s1, float *s2, const float *restrict x, const float *restrict dy,
                         const float *mean, int n, int C, size_t P)
{
    if (P == 1) {
        for (int c = 0; c < C; c++) {
            s1[c] = 0;
            if (s2)
                s2[c] = 0;
        }
        for (int i = 0; i < n; i++)
            for (int c = 0; c < C; c++) {
                const size_t k = (size_t)i * C + c;
                if (kind == SUMS_X)
                    s1[c] += x[k];
                else if (kind == SUMS_SQ)
                    s1[c] += (x[k] - mean[c]) * (x[k] - mean[c]);
                else {
                    s1[c] += dy[k];
                    s2[c] += dy[k] * (x[k] - mean[c]);
                }
            }
        return;
    }
    for (int c = 0; c < C; c++) {
        const float m = mean ? mean[c] : 0.0f;
        double t1 = 0, t2 = 0;
        for (int i = 0; i < n; i++) {
            const size_t base = ((size_t)i * C + c) * P;
            const float *xc = x + base, *dyc = dy ? dy + base : NULL;
            f8 a1 = {0}, a2 = {0};
            float r1 = 0, r2 = 0;
            size_t q = 0;
            if (kind == SUMS_X) {
                for (; q + 8 <= P; q += 8)
                    a1 += load8(xc + q);
                for (; q < P; q++)
                    r1 += xc[q];
            } else if (kind == SUMS_SQ) {
                for (; q + 8 <= P; q += 8) {
                    const f8 d = load8(xc + q) - m;
                    a1 += d * d;
                }
                for (; q < P; q++)
                    r1 += (xc[q] - m) * (xc[q] - m);
            } else {
                for (; q + 8 <= P; q += 8) {
                    const f8 g = load8(dyc + q);
                    a1 += g;
                    a2 += g * (load8(xc + q) - m);
                }
                for (; q < P; q++) {
                    r1 += dyc[q];
                    r2 += dyc[q] * (xc[q] - m);
                }
            }
            t1 += lanes_sum(a1) + r1;
            t2 += lanes_sum(a2) + r2;
        }
        s1[c] = (float)t1;
        if (s2)
            s2[c] = (float)t2;
    }
}

/* Per-channel affine map y[i, c, q] = a[c] x[i, c, q] + b[c] (also used for gradients). */
static void channel_affine(const float *restrict x, float *restrict y, const float *a, const float *b, int n,
                           int C, size_t P)
{
    if (P == 1) { /* 1-d: vectorise across channels */
        for (int i = 0; i < n; i++)
            for (int c = 0; c < C; c++)
                y[(size_t)i * C + c] = a[c] * x[(size_t)i * C + c] + (b ? b[c] : 0.0f);
        return;
    }
    for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++) {
            const float ac = a[c], bc = b ? b[c] : 0.0f;
            const float *xc = x + ((size_t)i * C + c) * P;
            float *yc = y + ((size_t)i * C + c) * P;
            for (size_t q = 0; q < P; q++)
                yc[q] = ac * xc[q] + bc;
        }
}

/* x (n, C, P) -> y (n, C, P) */
static void bn_forward(mg_layer *l, const float *x, float *y, int n, mg_mode mode)
{
    const bn_impl *p = l->impl;
    const int C = l->in.c;
    const size_t P = (size_t)l->in.h * l->in.w;
    const float *gamma = l->param, *beta = l->param + C;
    float *run_mean = l->state, *run_var = l->state + C;
    float *mean = l->cache, *inv_std = l->cache + C, *scratch = l->cache + 2 * C;
    float *a = scratch, *b = scratch + C; /* reused after the statistics are known */

    if (mode == MG_TRAIN) {
        /* pass 1: mean; the count travels with the sums so sync BN knows the global batch */
        channel_sums(SUMS_X, scratch, NULL, x, NULL, NULL, n, C, P);
        scratch[C] = (float)((size_t)n * P);
        reduce(l, scratch, C + 1);
        const double count = scratch[C];
        for (int c = 0; c < C; c++)
            mean[c] = (float)(scratch[c] / count);
        /* pass 2: biased variance from centred squares */
        channel_sums(SUMS_SQ, scratch, NULL, x, NULL, mean, n, C, P);
        reduce(l, scratch, C);
        const float unbias = count > 1 ? (float)(count / (count - 1)) : 1.0f;
        for (int c = 0; c < C; c++) {
            float var = (float)(scratch[c] / count);
            inv_std[c] = 1.0f / sqrtf(var + p->eps);
            run_mean[c] = (1.0f - p->momentum) * run_mean[c] + p->momentum * mean[c];
            run_var[c] = (1.0f - p->momentum) * run_var[c] + p->momentum * var * unbias;
        }
    } else {
        for (int c = 0; c < C; c++) {
            mean[c] = run_mean[c];
            inv_std[c] = 1.0f / sqrtf(run_var[c] + p->eps);
        }
    }
    /* y = gamma (x - mean) inv_std + beta = a x + b per channel */
    for (int c = 0; c < C; c++) {
        a[c] = gamma[c] * inv_std[c];
        b[c] = beta[c] - a[c] * mean[c];
    }
    channel_affine(x, y, a, b, n, C, P);
    l->cache[MODE_SLOT(C)] = (float)mode;
}

/* With x_hat = (x - mean) inv_std and sums over the (global) batch of M values:
 *   dgamma = sum dy x_hat, dbeta = sum dy,
 *   dx = gamma inv_std (dy - sum(dy)/M - x_hat sum(dy x_hat)/M)   (training mode)
 *   dx = gamma inv_std dy                                          (evaluation mode)
 * The training-mode dx is again affine per channel in (dy, x):
 *   dx = a dy + e x + f,  a = gamma inv_std,  e = -a inv_std^2 sum(dy (x - mean))/M,
 *   f = -a sum(dy)/M - e mean. */
static void bn_backward(mg_layer *l, const float *x, const float *y, const float *dy, float *dx, int n,
                        bool param_grads)
{
    (void)y;
    const int C = l->in.c;
    const size_t P = (size_t)l->in.h * l->in.w;
    const float *gamma = l->param;
    const float *mean = l->cache, *inv_std = l->cache + C;
    float *scratch = l->cache + 2 * C;
    const bool train = l->cache[MODE_SLOT(C)] == (float)MG_TRAIN;
    float *sum_dy = scratch, *sum_dy_xc = scratch + C; /* sum dy, sum dy (x - mean) */

    channel_sums(SUMS_DY, sum_dy, sum_dy_xc, x, dy, mean, n, C, P);
    if (param_grads) /* local sums: the trainer's gradient allreduce combines replicas */
        for (int c = 0; c < C; c++) {
            l->grad[c] += sum_dy_xc[c] * inv_std[c];
            l->grad[C + c] += sum_dy[c];
        }
    if (!dx)
        return;
    if (!train) {
        for (int c = 0; c < C; c++)
            sum_dy[c] = gamma[c] * inv_std[c];
        channel_affine(dy, dx, sum_dy, NULL, n, C, P);
        return;
    }
    float count = (float)((size_t)n * P);
    if (l->reduce) {
        scratch[2 * C] = count; /* the global count travels with the sums */
        reduce(l, scratch, 2 * C + 1);
        count = scratch[2 * C];
    }
    float *coef_a = l->cache + COEF_SLOT(C), *coef_e = coef_a + C, *coef_f = coef_e + C;
    for (int c = 0; c < C; c++) {
        const float a = gamma[c] * inv_std[c];
        coef_a[c] = a;
        coef_e[c] = -a * inv_std[c] * inv_std[c] * sum_dy_xc[c] / count;
        coef_f[c] = -a * sum_dy[c] / count - coef_e[c] * mean[c];
    }
    if (P == 1) { /* 1-d: vectorise across channels */
        for (int i = 0; i < n; i++)
            for (int c = 0; c < C; c++) {
                const size_t k = (size_t)i * C + c;
                dx[k] = coef_a[c] * dy[k] + coef_e[c] * x[k] + coef_f[c];
            }
        return;
    }
    for (int c = 0; c < C; c++) {
        const float a = coef_a[c], e = coef_e[c], f = coef_f[c];
        for (int i = 0; i < n; i++) {
            const float *xc = x + ((size_t)i * C + c) * P, *dyc = dy + ((size_t)i * C + c) * P;
            float *dxc = dx + ((size_t)i * C + c) * P;
            for (size_t q = 0; q < P; q++)
                dxc[q] = a * dyc[q] + e * xc[q] + f;
        }
    }
}

static void bn_init(mg_layer *l, const mg_init *init, mg_rng *rng)
{
    const int C = l->in.c;
    if (init->bn_std > 0)
        mg_rng_fill_normal(rng, l->param, (size_t)C, 1.0f, init->bn_std);
    else
        for (int c = 0; c < C; c++)
            l->param[c] = 1.0f;
    for (int c = 0; c < C; c++) {
        l->param[C + c] = 0.0f;
        l->state[c] = 0.0f;
        l->state[C + c] = 1.0f;
    }
}

static const mg_layer_ops bn_ops = {"batchnorm", bn_forward, bn_backward, bn_init};

void mg_batchnorm_make(mg_layer *l, mg_shape in, float momentum, float eps)
{
    MG_CHECK(momentum >= 0.0f && momentum <= 1.0f, l->name, "PyTorch's default is 0.1", "momentum %g not in [0, 1]",
             momentum);
    MG_CHECK(eps > 0.0f, l->name, "PyTorch's default is 1e-5", "eps %g must be positive", eps);
    bn_impl *p = mg_alloc(sizeof *p, l->name);
    p->momentum = momentum;
    p->eps = eps;
    mg_layer_setup(l, &bn_ops, in, in, p);
    l->n_param = 2 * (size_t)in.c;
    l->n_state = 2 * (size_t)in.c;
    l->n_cache_fixed = 7 * (size_t)in.c + 2;
    l->macs = 0;
}

void mg_batchnorm_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in)
{
    float momentum = (float)mg_cfg_real(spec, "momentum", 0.1, 0.0, 1.0);
    float eps = (float)mg_cfg_real(spec, "eps", 1e-5, 1e-12, 1.0);
    mg_batchnorm_make(l, in, momentum, eps);
}
