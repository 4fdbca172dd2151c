/* Batch normalisation, 1-d (vectors, statistics over the batch) and 2-d (images,
 * statistics over batch, height and width): the same code with P = h*w positions.
 *
 * Training mode normalises with batch statistics and updates the running statistics in
 * l->state (running_var uses the unbiased variance, as PyTorch); backward takes its two sums
 * (dy and dy (x - mean), the mean being known) in one pass. Backward recomputes x_hat from x
 * and the cached mean and 1/std.
 *
 * With a reduce callback (sync BN) the sums are taken over every replica, so N ranks x B/N
 * samples normalise as one rank x B. Every reduction is then a point where all ranks meet,
 * so the forward statistics come from one pass and one message: the sums of x - K and
 * (x - K)^2 about a shift K that every replica knows, the running mean (kept equal by the
 * synchronised updates). Those sums lose little while K is within a few standard
 * deviations of the batch mean; when it is far (the first steps, or a jump in the
 * activations) the variance is taken again from centred squares, a second pass and
 * message. Every rank sees the same reduced sums, so all take the same branch. Without
 * the callback the same code runs on the local batch.
 *
 * The sums are the same however the batch is split over ranks: each sample's share (a
 * float, or for images a plane's sum in float lanes) depends on that sample alone, and the
 * shares are added, across samples and then across ranks, in double. Those double sums
 * are exact for the spans of magnitude a batch has, so their order does not matter, and
 * the statistics come out bitwise equal on any number of ranks. That matters beyond
 * rounding: the layers after BatchNorm have kinks (ReLU at 0), and a value rounded to
 * either side of one takes a different branch of the gradient.
 *
 * Conditional BatchNorm (`conditional: true`; de Vries et al. 2017, as in BigGAN): the gain
 * and bias are looked up per sample from tables indexed by its class (the network's labels),
 * gamma[y] and beta[y]; the statistics and the running statistics are the unconditional
 * ones. Backward is then that of BatchNorm with dx_hat = gamma[y_i] dy: the same sums taken
 * over g = gamma[y_i] dy (in the workspace) with unit gain.
 *
 * param: gamma (C), beta (C), or conditional gamma (K, C), beta (K, C)
 * state: running_mean (C), running_var (C)
 * cache (fixed): sums for reductions (2C + 1 doubles), mean (C), inv_std (C), the last
 *                mode (1), backward coefficients (3C) */
#include <math.h>
#include <string.h>

#include "mg_error.h"
#include "mg_layers.h"

typedef struct { float momentum, eps; bool conditional; } bn_impl;

/* Float offsets in the cache; the doubles come first, on the block's 64-byte alignment. */
#define SUMS_FLOATS(C) (2 * (2 * (size_t)(C) + 1))
#define MEAN_SLOT(C) SUMS_FLOATS(C)
#define INV_STD_SLOT(C) (SUMS_FLOATS(C) + (size_t)(C))
#define MODE_SLOT(C) (SUMS_FLOATS(C) + 2 * (size_t)(C))
#define COEF_SLOT(C) (SUMS_FLOATS(C) + 2 * (size_t)(C) + 1)
#define CACHE_FLOATS(C) (COEF_SLOT(C) + 3 * (size_t)(C))

static double *sums_of(const mg_layer *l) { return (double *)(void *)l->cache; }

/* The forward statistics come from one pass while the shift is within sqrt(SHIFT_LIMIT)
 * standard deviations of the batch mean. The float sums hold the shifted squares to ~1e-7
 * relative, so the variance is good to ~1e-7 (1 + d^2/var), d = mean - shift: ~2e-6 at the
 * limit (two passes: ~1e-7). */
#define SHIFT_LIMIT 16.0

/* Per-channel sums over (n, P) in double: across the batch of single floats (1-d: P == 1,
 * vectorised over channels), or of each plane's float-lane sum (2-d). Within a plane of P contiguous floats the sum runs in
 * 8 float lanes: a single float accumulator would be one serial chain of dependent adds,
 * which the compiler may not reorder (no -ffast-math), ~4 cycles per element.
 *   SUMS_SQ:    s1[c] = sum (x - m[c])^2
 *   SUMS_DY:    s1[c] = sum dy, s2[c] = sum dy (x - m[c])  (one pass)
 *   SUMS_SHIFT: s1[c] = sum (x - m[c]), s2[c] = sum (x - m[c])^2  (one pass) */
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

typedef enum { SUMS_SQ, SUMS_DY, SUMS_SHIFT } sums_kind;

static void channel_sums(sums_kind kind, double *s1, double *s2, const float *restrict x, const float *restrict dy,
                         const float *m, int n, int C, size_t P)
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
                const float d = x[k] - m[c];
                if (kind == SUMS_SQ)
                    s1[c] += d * d;
                else if (kind == SUMS_DY) {
                    s1[c] += dy[k];
                    s2[c] += dy[k] * d;
                } else {
                    s1[c] += d;
                    s2[c] += d * d;
                }
            }
        return;
    }
    for (int c = 0; c < C; c++) {
        const float mc = m[c];
        double t1 = 0, t2 = 0;
        for (int i = 0; i < n; i++) {
            const size_t base = ((size_t)i * C + c) * P;
            const float *xc = x + base, *dyc = dy ? dy + base : NULL;
            f8 a1 = {0}, a2 = {0};
            float r1 = 0, r2 = 0;
            size_t q = 0;
            if (kind == SUMS_SQ) {
                for (; q + 8 <= P; q += 8) {
                    const f8 d = load8(xc + q) - mc;
                    a1 += d * d;
                }
                for (; q < P; q++)
                    r1 += (xc[q] - mc) * (xc[q] - mc);
            } else if (kind == SUMS_DY) {
                for (; q + 8 <= P; q += 8) {
                    const f8 g = load8(dyc + q);
                    a1 += g;
                    a2 += g * (load8(xc + q) - mc);
                }
                for (; q < P; q++) {
                    r1 += dyc[q];
                    r2 += dyc[q] * (xc[q] - mc);
                }
            } else {
                for (; q + 8 <= P; q += 8) {
                    const f8 d = load8(xc + q) - mc;
                    a1 += d;
                    a2 += d * d;
                }
                for (; q < P; q++) {
                    r1 += xc[q] - mc;
                    r2 += (xc[q] - mc) * (xc[q] - mc);
                }
            }
            t1 += lanes_sum(a1) + r1;
            t2 += lanes_sum(a2) + r2;
        }
        s1[c] = t1;
        if (s2)
            s2[c] = t2;
    }
}

static void reduce(mg_layer *l, double *buf, int n)
{
    if (l->reduce)
        l->reduce(buf, n, l->reduce_ctx);
}

/* Batch mean and biased variance per channel (over every replica with sync BN): one pass
 * and one message of shifted sums about the running mean, and a second of centred squares
 * only when the shift was too far (see the top). Returns the count of values per channel. */
static double batch_statistics(mg_layer *l, const float *x, int n, float *mean, float *var)
{
    const int C = l->in.c;
    const size_t P = (size_t)l->in.h * l->in.w;
    const float *shift = l->state; /* running mean: equal on every replica */
    double *s = sums_of(l);
    channel_sums(SUMS_SHIFT, s, s + C, x, NULL, shift, n, C, P);
    s[2 * C] = (double)((size_t)n * P); /* the count travels with the sums */
    reduce(l, s, 2 * C + 1);
    const double count = s[2 * C];
    bool recentre = false;
    for (int c = 0; c < C; c++) {
        /* in double, so that the difference adds no rounding of its own */
        const double d = s[c] / count, v = s[C + c] / count - d * d;
        mean[c] = (float)(shift[c] + d);
        var[c] = (float)(v > 0 ? v : 0);
        recentre |= d * d > SHIFT_LIMIT * v;
    }
    if (recentre) { /* every rank holds the same sums, so all take this branch together */
        channel_sums(SUMS_SQ, s, NULL, x, NULL, mean, n, C, P);
        reduce(l, s, C);
        for (int c = 0; c < C; c++)
            var[c] = (float)(s[c] / count);
    }
    return count;
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
    float *mean = l->cache + MEAN_SLOT(C), *inv_std = l->cache + INV_STD_SLOT(C);
    /* the backward coefficients' slots, free until backward */
    float *a = l->cache + COEF_SLOT(C), *b = a + C, *var = b + C;

    if (mode == MG_TRAIN) {
        const double count = batch_statistics(l, x, n, mean, var);
        const float unbias = count > 1 ? (float)(count / (count - 1)) : 1.0f;
        for (int c = 0; c < C; c++) {
            inv_std[c] = 1.0f / sqrtf(var[c] + p->eps);
            run_mean[c] = (1.0f - p->momentum) * run_mean[c] + p->momentum * mean[c];
            run_var[c] = (1.0f - p->momentum) * run_var[c] + p->momentum * var[c] * unbias;
        }
    } else {
        for (int c = 0; c < C; c++) {
            mean[c] = run_mean[c];
            inv_std[c] = 1.0f / sqrtf(run_var[c] + p->eps);
        }
    }
    l->cache[MODE_SLOT(C)] = (float)mode;
    if (p->conditional) { /* the same map with sample i's class's gamma and beta */
        const float *gammas = l->param, *betas = l->param + (size_t)l->n_classes * C;
        for (int i = 0; i < n; i++) {
            const float *g = gammas + (size_t)l->labels[i] * C, *be = betas + (size_t)l->labels[i] * C;
            for (int c = 0; c < C; c++) {
                a[c] = g[c] * inv_std[c];
                b[c] = be[c] - a[c] * mean[c];
            }
            channel_affine(x + (size_t)i * C * P, y + (size_t)i * C * P, a, b, 1, C, P);
        }
        return;
    }
    /* y = gamma (x - mean) inv_std + beta = a x + b per channel */
    for (int c = 0; c < C; c++) {
        a[c] = gamma[c] * inv_std[c];
        b[c] = beta[c] - a[c] * mean[c];
    }
    channel_affine(x, y, a, b, n, C, P);
}

static void cbn_backward(mg_layer *l, const float *x, const float *dy, float *dx, int n, bool param_grads);

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
    const bn_impl *p = l->impl;
    const int C = l->in.c;
    const size_t P = (size_t)l->in.h * l->in.w;
    const float *gamma = l->param;
    if (p->conditional) {
        cbn_backward(l, x, dy, dx, n, param_grads);
        return;
    }
    const float *mean = l->cache + MEAN_SLOT(C), *inv_std = l->cache + INV_STD_SLOT(C);
    const bool train = l->cache[MODE_SLOT(C)] == (float)MG_TRAIN;
    float *coef_a = l->cache + COEF_SLOT(C), *coef_e = coef_a + C, *coef_f = coef_e + C;
    double *sums = sums_of(l), *sum_dy = sums, *sum_dy_xc = sums + C; /* sum dy, sum dy (x - mean) */

    channel_sums(SUMS_DY, sum_dy, sum_dy_xc, x, dy, mean, n, C, P);
    if (param_grads) /* local sums: the trainer's gradient allreduce combines replicas */
        for (int c = 0; c < C; c++) {
            l->grad[c] += (float)sum_dy_xc[c] * inv_std[c];
            l->grad[C + c] += (float)sum_dy[c];
        }
    if (!dx)
        return;
    if (!train) {
        for (int c = 0; c < C; c++)
            coef_a[c] = gamma[c] * inv_std[c];
        channel_affine(dy, dx, coef_a, NULL, n, C, P);
        return;
    }
    double count = (double)((size_t)n * P);
    if (l->reduce) {
        sums[2 * C] = count; /* the global count travels with the sums */
        reduce(l, sums, 2 * C + 1);
        count = sums[2 * C];
    }
    for (int c = 0; c < C; c++) {
        const float a = gamma[c] * inv_std[c];
        coef_a[c] = a;
        coef_e[c] = -a * inv_std[c] * inv_std[c] * (float)(sum_dy_xc[c] / count);
        coef_f[c] = -a * (float)(sum_dy[c] / count) - coef_e[c] * mean[c];
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

/* Conditional BatchNorm's backward (see the top): per-class parameter gradients, then
 * dx as unconditional BatchNorm's with unit gain and g = gamma[y_i] dy for dy. */
static void cbn_backward(mg_layer *l, const float *x, const float *dy, float *dx, int n, bool param_grads)
{
    const int C = l->in.c;
    const size_t P = (size_t)l->in.h * l->in.w;
    const float *gammas = l->param;
    const float *mean = l->cache + MEAN_SLOT(C), *inv_std = l->cache + INV_STD_SLOT(C);
    const bool train = l->cache[MODE_SLOT(C)] == (float)MG_TRAIN;
    if (param_grads) { /* dgamma[y_i, c] += sum_q dy x_hat, dbeta[y_i, c] += sum_q dy */
        float *dgammas = l->grad, *dbetas = l->grad + (size_t)l->n_classes * C;
        for (int i = 0; i < n; i++)
            for (int c = 0; c < C; c++) {
                const size_t base = ((size_t)i * C + c) * P;
                double s_dy = 0, s_dyx = 0;
                for (size_t q = 0; q < P; q++) {
                    s_dy += dy[base + q];
                    s_dyx += dy[base + q] * (x[base + q] - mean[c]);
                }
                const size_t k = (size_t)l->labels[i] * C + c;
                dgammas[k] += (float)s_dyx * inv_std[c];
                dbetas[k] += (float)s_dy;
            }
    }
    if (!dx)
        return;
    float *g = l->work; /* (n, C, P): gamma[y_i] dy */
    for (int i = 0; i < n; i++)
        channel_affine(dy + (size_t)i * C * P, g + (size_t)i * C * P, gammas + (size_t)l->labels[i] * C, NULL, 1,
                       C, P);
    float *coef_a = l->cache + COEF_SLOT(C), *coef_e = coef_a + C, *coef_f = coef_e + C;
    if (!train) {
        channel_affine(g, dx, inv_std, NULL, n, C, P);
        return;
    }
    double *sums = sums_of(l), *sum_g = sums, *sum_g_xc = sums + C;
    channel_sums(SUMS_DY, sum_g, sum_g_xc, x, g, mean, n, C, P);
    double count = (double)((size_t)n * P);
    if (l->reduce) {
        sums[2 * C] = count;
        reduce(l, sums, 2 * C + 1);
        count = sums[2 * C];
    }
    for (int c = 0; c < C; c++) { /* as bn_backward's coefficients with gamma 1 */
        const float a = inv_std[c];
        coef_a[c] = a;
        coef_e[c] = -a * inv_std[c] * inv_std[c] * (float)(sum_g_xc[c] / count);
        coef_f[c] = -a * (float)(sum_g[c] / count) - coef_e[c] * mean[c];
    }
    for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++) {
            const size_t base = ((size_t)i * C + c) * P;
            for (size_t q = 0; q < P; q++)
                dx[base + q] = coef_a[c] * g[base + q] + coef_e[c] * x[base + q] + coef_f[c];
        }
}

static void bn_init(mg_layer *l, const mg_init *init, mg_rng *rng)
{
    const bn_impl *p = l->impl;
    const int C = l->in.c;
    if (p->conditional) { /* per-class gains 1 and biases 0: every class starts as plain BN */
        const size_t K = (size_t)l->n_classes;
        for (size_t k = 0; k < K * (size_t)C; k++) {
            l->param[k] = 1.0f;
            l->param[K * C + k] = 0.0f;
        }
        for (int c = 0; c < C; c++) {
            l->state[c] = 0.0f;
            l->state[C + c] = 1.0f;
        }
        return;
    }
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

static const mg_layer_ops bn_ops = {"batchnorm", bn_forward, bn_backward, bn_init, NULL};

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
    l->n_cache_fixed = CACHE_FLOATS(in.c);
    l->macs = 0;
}

void mg_batchnorm_make_conditional(mg_layer *l, mg_shape in, float momentum, float eps)
{
    MG_CHECK(l->n_classes > 0, l->name, "give the network classes: K (the data's class count)",
             "conditional BatchNorm in a network without 'classes'");
    mg_batchnorm_make(l, in, momentum, eps);
    ((bn_impl *)l->impl)->conditional = true;
    l->needs_labels = true;
    l->n_param = 2 * (size_t)l->n_classes * (size_t)in.c;
    l->n_work = mg_shape_size(in); /* backward's gamma[y_i] dy */
}

void mg_batchnorm_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in)
{
    float momentum = (float)mg_cfg_real(spec, "momentum", 0.1, 0.0, 1.0);
    float eps = (float)mg_cfg_real(spec, "eps", 1e-5, 1e-12, 1.0);
    mg_cfg_node cond = mg_cfg_get(spec, "conditional");
    if (mg_cfg_bool(spec, "conditional", false)) {
        if (l->n_classes <= 0)
            mg_cfg_fail(cond, "add classes: K (the data's class count) to this network",
                        "conditional BatchNorm needs the network's 'classes'");
        mg_batchnorm_make_conditional(l, in, momentum, eps);
    } else {
        mg_batchnorm_make(l, in, momentum, eps);
    }
}
