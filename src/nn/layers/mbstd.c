/* Minibatch standard deviation (Karras et al. 2018, ProGAN): lets D see how varied a
 * small group of its inputs is, so a generator that collapses onto few modes is easy to
 * tell from real data.
 *
 * The batch is cut into groups of `group` CONSECUTIVE samples (samples 0..G-1, G..2G-1,
 * ...; ProGAN interleaves them instead). For each group and each feature f of the
 * (c, h, w) input, s_f = sqrt(var_f + eps) with the population variance over the group;
 * their mean over all c*h*w features is one number per group, appended to every member
 * as one extra channel (c+1, h, w), constant over h, w (for vectors: one extra feature).
 *
 * Groups live inside the batch the layer is given, which in data-parallel training is
 * the rank's local batch: they never span ranks, and no communication happens here.
 * Consecutive groups keep a run independent of the rank count: with a contiguous slice
 * of the global batch per rank and a local batch divisible by the group, the groups are
 * the same whatever the number of ranks.
 *
 * eps (default 1e-8, as ProGAN) sits inside the square root: a group of identical
 * samples (var = 0, exactly what a collapsed G produces) would otherwise put the kink of
 * sqrt at the very point D should push G away from, with an infinite derivative there.
 *
 *   forward:  y_i = [x_i, stat_g],  stat_g = (1/F) sum_f s_f,  F = c*h*w
 *   backward: dx_if = dy_if + (sum_{j in g, hw} dy_j[c, hw]) (x_if - mu_f) / (F G s_f)
 * (the mean's own dependence on x_if cancels, as the centred values sum to zero). The
 * cache keeps (x_if - mu_f) / s_f per sample and feature. */
#include <math.h>
#include <string.h>

#include "mg_error.h"
#include "mg_layers.h"

typedef struct { int group; float eps; } mbstd_impl;

static int group_of(const mg_layer *l, int n)
{
    const mbstd_impl *p = l->impl;
    int g = p->group ? p->group : n;
    MG_CHECK(n % g == 0, l->name, "give this layer batches that are multiples of its group (groups never span ranks)",
             "batch %d does not split into groups of %d", n, g);
    return g;
}

/* x (n, c, h, w) -> y (n, c+1, h, w) */
static void mbstd_forward(mg_layer *l, const float *x, float *y, int n, mg_mode mode)
{
    (void)mode;
    const mbstd_impl *p = l->impl;
    const int G = group_of(l, n);
    const size_t F = mg_shape_size(l->in), plane = (size_t)l->in.h * l->in.w, out_size = F + plane;
    float *centred = l->cache; /* (n, F): (x - mu) / s */
    for (int g0 = 0; g0 < n; g0 += G) {
        double stat = 0;
        for (size_t f = 0; f < F; f++) {
            double mu = 0, var = 0;
            for (int i = g0; i < g0 + G; i++)
                mu += x[(size_t)i * F + f];
            mu /= G;
            for (int i = g0; i < g0 + G; i++) {
                double d = x[(size_t)i * F + f] - mu;
                var += d * d;
            }
            double s = sqrt(var / G + p->eps);
            stat += s;
            for (int i = g0; i < g0 + G; i++)
                centred[(size_t)i * F + f] = (float)((x[(size_t)i * F + f] - mu) / s);
        }
        const float value = (float)(stat / (double)F);
        for (int i = g0; i < g0 + G; i++) {
            float *yi = y + (size_t)i * out_size;
            memcpy(yi, x + (size_t)i * F, F * sizeof(float));
            for (size_t k = 0; k < plane; k++)
                yi[F + k] = value;
        }
    }
}

static void mbstd_backward(mg_layer *l, const float *x, const float *y, const float *dy, float *dx, int n,
                           bool param_grads)
{
    (void)x, (void)y, (void)param_grads;
    if (!dx)
        return;
    const int G = group_of(l, n);
    const size_t F = mg_shape_size(l->in), plane = (size_t)l->in.h * l->in.w, out_size = F + plane;
    const float *centred = l->cache;
    for (int g0 = 0; g0 < n; g0 += G) {
        double dstat = 0;
        for (int i = g0; i < g0 + G; i++)
            for (size_t k = 0; k < plane; k++)
                dstat += dy[(size_t)i * out_size + F + k];
        const float coef = (float)(dstat / ((double)F * G));
        for (int i = g0; i < g0 + G; i++) {
            const float *dyi = dy + (size_t)i * out_size, *ci = centred + (size_t)i * F;
            float *dxi = dx + (size_t)i * F;
            for (size_t f = 0; f < F; f++)
                dxi[f] = dyi[f] + coef * ci[f];
        }
    }
}

static const mg_layer_ops mbstd_ops = {"mbstd", mbstd_forward, mbstd_backward, NULL, NULL};

void mg_mbstd_make(mg_layer *l, mg_shape in, int group, float eps)
{
    MG_CHECK(group == 0 || group >= 2, l->name, "use group >= 2, or 0 (all) for the whole batch",
             "group %d: a group of one sample has no spread", group);
    MG_CHECK(eps > 0, l->name, "eps keeps sqrt away from its kink at 0", "eps %g must be positive", (double)eps);
    mbstd_impl *p = mg_alloc(sizeof *p, l->name);
    p->group = group;
    p->eps = eps;
    mg_layer_setup(l, &mbstd_ops, in, (mg_shape){in.c + 1, in.h, in.w}, p);
    l->n_cache = mg_shape_size(in);
    l->batch_multiple = group;
    l->macs = 4.0 * (double)mg_shape_size(in);
}

/* group: N (>= 2, default 4) or all; eps (default 1e-8) */
void mg_mbstd_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in)
{
    mg_cfg_node g = mg_cfg_get(spec, "group");
    int group = 4;
    if (mg_cfg_present(g))
        group = mg_cfg_type_of(g) == MG_CFG_SCALAR && !strcmp(mg_cfg_as_string(g), "all")
                    ? 0
                    : (int)mg_cfg_as_int(g, 2, 1 << 24);
    float eps = (float)mg_cfg_real(spec, "eps", 1e-8, 1e-30, 1.0);
    mg_mbstd_make(l, in, group, eps);
}
