/* Spectral normalisation: power iteration, sigma, W / sigma and the backward correction,
 * shared by linear, conv2d, conv_transpose2d and the projection head (see mg_spectral.h for the formulas and
 * the memory layout). Matrix-vector products go through the checked sgemv, one per block
 * of the matrix view (one block for linear and conv2d, cin for conv_transpose2d); norms,
 * dot products and the correction's inner product are summed in double. */
#include "mg_spectral.h"

#include <math.h>
#include <string.h>

#include "mg_blas.h"
#include "mg_error.h"

/* normalize(x) = x / max(||x||, eps), eps as PyTorch's spectral_norm */
#define NORM_EPS 1e-12
/* power iterations at initialisation (torch.nn.utils.parametrizations.spectral_norm's) */
#define INIT_ITERS 15

static size_t n_cols(const mg_spectral *sn) { return (size_t)sn->blocks * sn->blen; }
static size_t n_weights(const mg_spectral *sn) { return (size_t)sn->rows * n_cols(sn); }

/* The cache block (mg_spectral.h) */
typedef struct { float *sigma, *w_sn, *scratch, *u, *v; } sn_cache;

static sn_cache cache_of(const mg_layer *l, const mg_spectral *sn)
{
    const size_t nw = n_weights(sn);
    sn_cache c;
    c.sigma = l->cache;
    c.w_sn = l->cache + MG_SPECTRAL_HEAD;
    c.scratch = c.w_sn + nw;
    c.u = c.scratch + nw;
    c.v = c.u + sn->rows;
    return c;
}

int mg_spectral_iters_from_cfg(mg_cfg_node spec)
{
    const bool on = mg_cfg_bool(spec, "sn", false);
    mg_cfg_node iters = mg_cfg_get(spec, "sn_iters");
    if (!mg_cfg_present(iters))
        return on ? 1 : 0;
    if (!on)
        mg_cfg_fail(iters, "add sn: true, or remove sn_iters", "sn_iters given but spectral normalisation is off");
    return (int)mg_cfg_as_int(iters, 1, 100);
}

void mg_spectral_setup(mg_layer *l, mg_spectral *sn, int iters, int rows, int blocks, int blen)
{
    MG_CHECK(iters >= 1 && rows >= 1 && blocks >= 1 && blen >= 1, l->name, "this is a bug in the caller",
             "spectral normalisation with %d iterations over a %d x (%d x %d) weight", iters, rows, blocks, blen);
    MG_CHECK(l->n_state == 0 && l->n_cache == 0 && l->n_cache_fixed == 0, l->name, "this is a bug in the layer kind",
             "spectral normalisation needs the layer's state and cache to itself");
    MG_CHECK((size_t)rows * blocks * blen <= l->n_param, l->name, "this is a bug in the layer kind",
             "the normalised weight (%d x %d x %d) is larger than the layer's parameters (%zu)", rows, blocks, blen,
             l->n_param);
    *sn = (mg_spectral){.iters = iters, .rows = rows, .blocks = blocks, .blen = blen};
    const size_t cols = n_cols(sn);
    l->n_state = (size_t)rows + cols;
    l->n_cache_fixed = MG_SPECTRAL_HEAD + 2 * n_weights(sn) + (size_t)rows + cols;
}

void mg_spectral_set_offset(mg_layer *l, mg_spectral *sn, size_t offset)
{
    MG_CHECK(offset + n_weights(sn) <= l->n_param, l->name, "this is a bug in the layer kind",
             "the normalised weight (%zu floats at %zu) runs past the layer's %zu parameters", n_weights(sn), offset,
             l->n_param);
    sn->offset = offset;
}

/* y (rows) = W x (cols) */
static void mat_vec(const mg_layer *l, const mg_spectral *sn, const float *w, const float *x, float *y)
{
    const size_t block = (size_t)sn->rows * sn->blen;
    for (int b = 0; b < sn->blocks; b++)
        mg_sgemv_checked(l->name, "spectral norm W v", CblasNoTrans, sn->rows, sn->blen, 1.0f, w + b * block, sn->blen,
                         x + (size_t)b * sn->blen, b ? 1.0f : 0.0f, y);
}

/* y (cols) = W^T x (rows) */
static void mat_t_vec(const mg_layer *l, const mg_spectral *sn, const float *w, const float *x, float *y)
{
    const size_t block = (size_t)sn->rows * sn->blen;
    for (int b = 0; b < sn->blocks; b++)
        mg_sgemv_checked(l->name, "spectral norm W^T u", CblasTrans, sn->rows, sn->blen, 1.0f, w + b * block, sn->blen,
                         x, 0.0f, y + (size_t)b * sn->blen);
}

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* x = x / max(||x||, eps) */
static void normalize(float *x, size_t n)
{
    const double norm = fmax(sqrt(dot(x, x, n)), NORM_EPS);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(x[i] / norm);
}

/* iters rounds of v = normalize(W^T u), u = normalize(W v) on u, v in l->state; wv gets
 * the last unnormalised W v (rows floats), so that sigma needs no further product. */
static void power_iterate(const mg_layer *l, const mg_spectral *sn, const float *w, int iters, float *wv)
{
    float *u = l->state, *v = l->state + sn->rows;
    for (int it = 0; it < iters; it++) {
        mat_t_vec(l, sn, w, u, v);
        normalize(v, n_cols(sn));
        mat_vec(l, sn, w, v, wv);
        memcpy(u, wv, sizeof(float) * (size_t)sn->rows);
        normalize(u, (size_t)sn->rows);
    }
}

void mg_spectral_init(mg_layer *l, const mg_spectral *sn, mg_rng *rng)
{
    float *u = l->state, *v = l->state + sn->rows;
    mg_rng_fill_normal(rng, u, (size_t)sn->rows, 0.0f, 1.0f);
    mg_rng_fill_normal(rng, v, n_cols(sn), 0.0f, 1.0f);
    normalize(u, (size_t)sn->rows);
    normalize(v, n_cols(sn));
    power_iterate(l, sn, l->param + sn->offset, INIT_ITERS, cache_of(l, sn).scratch);
}

const float *mg_spectral_forward(mg_layer *l, const mg_spectral *sn, mg_mode mode)
{
    const sn_cache c = cache_of(l, sn);
    const float *w = l->param + sn->offset, *u = l->state, *v = l->state + sn->rows;
    const size_t nw = n_weights(sn);
    /* W v (the scratch is free until backward): from the last iteration, or computed */
    float *wv = c.scratch;
    if (mode == MG_TRAIN)
        power_iterate(l, sn, w, sn->iters, wv);
    else
        mat_vec(l, sn, w, v, wv);
    /* sigma = u^T W v; the same expression in both modes, so an evaluation pass right
     * after a training pass divides by the same sigma bitwise */
    const float sigma = (float)dot(u, wv, (size_t)sn->rows);
    *c.sigma = sigma;
    for (size_t i = 0; i < nw; i++)
        c.w_sn[i] = w[i] / sigma;
    /* backward's u and v: those of this pass, whatever later changes l->state */
    memcpy(c.u, u, sizeof(float) * ((size_t)sn->rows + n_cols(sn)));
    return c.w_sn;
}

float *mg_spectral_grad_scratch(mg_layer *l, const mg_spectral *sn)
{
    float *g = cache_of(l, sn).scratch;
    memset(g, 0, sizeof(float) * n_weights(sn));
    return g;
}

void mg_spectral_backward(mg_layer *l, const mg_spectral *sn)
{
    const sn_cache c = cache_of(l, sn);
    const size_t nw = n_weights(sn);
    const double sigma = *c.sigma, lambda = dot(c.scratch, c.w_sn, nw);
    float *dw = l->grad + sn->offset;
    /* entry (b, r, j) of W is matrix entry (r, b blen + j): u[r] v[b blen + j] */
    size_t i = 0;
    for (int b = 0; b < sn->blocks; b++)
        for (int r = 0; r < sn->rows; r++) {
            const double lu = lambda * c.u[r];
            const float *vb = c.v + (size_t)b * sn->blen;
            for (int j = 0; j < sn->blen; j++, i++)
                dw[i] += (float)((c.scratch[i] - lu * vb[j]) / sigma);
        }
}
