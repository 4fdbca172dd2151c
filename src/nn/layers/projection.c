/* The projection discriminator's head (Miyato & Koyama 2018, "cGANs with projection
 * discriminator"): D's last layer, one score per sample from its features h (any shape,
 * taken as F = c*h*w values; pool before it) and its class y:
 *   out = w . h + b + E[y] . h
 * the unconditional linear score plus the inner product of a class embedding with h.
 * param: w (F), b (1), E (K, F). The labels are the network's (mg_net_set_labels).
 * With sn (mg_spectral.h) the embedding is used as E / sigma(E), E viewed as (K, F) like
 * an embedding table (sigma is the same for E and its transpose); w and b are not
 * normalised. */
#include <string.h>

#include "mg_error.h"
#include "mg_layers.h"
#include "mg_spectral.h"

typedef struct {
    mg_spectral sn;   /* over E; off unless sn: true */
} projection_impl;

static size_t features(const mg_layer *l) { return mg_shape_size(l->in); }

/* h (n, F) -> out (n, 1) */
static void projection_forward(mg_layer *l, const float *x, float *y, int n, mg_mode mode)
{
    const projection_impl *p = l->impl;
    const size_t F = features(l);
    const float *w = l->param, *b = w + F;
    const float *E = mg_spectral_on(&p->sn) ? mg_spectral_forward(l, &p->sn, mode) : b + 1;
    for (int i = 0; i < n; i++) {
        const float *h = x + (size_t)i * F, *e = E + (size_t)l->labels[i] * F;
        double s = b[0];
        for (size_t f = 0; f < F; f++)
            s += (double)(w[f] + e[f]) * h[f];
        y[i] = (float)s;
    }
}

/* dw += sum_i dy_i h_i; db += sum_i dy_i; dE[y_i] += dy_i h_i; dh_i = dy_i (w + E[y_i])
 * (with sn: E / sigma in dh, and dE through the spectral scratch and its correction) */
static void projection_backward(mg_layer *l, const float *x, const float *y, const float *dy, float *dx, int n,
                                bool param_grads)
{
    (void)y;
    const projection_impl *p = l->impl;
    const bool sn = mg_spectral_on(&p->sn);
    const size_t F = features(l);
    const float *w = l->param, *E = sn ? mg_spectral_weight(l) : l->param + F + 1;
    float *dw = l->grad, *db = dw + F;
    float *dE = param_grads ? (sn ? mg_spectral_grad_scratch(l, &p->sn) : db + 1) : NULL;
    for (int i = 0; i < n; i++) {
        const float *h = x + (size_t)i * F, g = dy[i];
        const size_t at = (size_t)l->labels[i] * F;
        if (param_grads) {
            db[0] += g;
            for (size_t f = 0; f < F; f++) {
                dw[f] += g * h[f];
                dE[at + f] += g * h[f];
            }
        }
        if (dx)
            for (size_t f = 0; f < F; f++)
                dx[(size_t)i * F + f] = g * (w[f] + E[at + f]);
    }
    if (param_grads && sn)
        mg_spectral_backward(l, &p->sn);
}

/* w and every class's embedding as a linear layer's weights of fan-in F; b = 0. */
static void projection_init(mg_layer *l, const mg_init *init, mg_rng *rng)
{
    const projection_impl *p = l->impl;
    const size_t F = features(l);
    mg_init_weights(l->param, F, (int)F, 1, init, rng);
    mg_init_weights(l->param + F + 1, (size_t)l->n_classes * F, (int)F, 1, init, rng);
    if (mg_spectral_on(&p->sn))
        mg_spectral_init(l, &p->sn, rng);
}

static const mg_layer_ops projection_ops = {"projection", projection_forward, projection_backward, projection_init, NULL};

void mg_projection_make(mg_layer *l, mg_shape in)
{
    MG_CHECK(l->n_classes > 0, l->name, "give the network classes: K (the data's class count)",
             "a projection head in a network without 'classes'");
    projection_impl *p = mg_alloc(sizeof *p, l->name);
    *p = (projection_impl){0};
    mg_layer_setup(l, &projection_ops, in, (mg_shape){1, 1, 1}, p);
    const size_t F = mg_shape_size(in);
    l->needs_labels = true;
    l->n_param = F + 1 + (size_t)l->n_classes * F;
    l->macs = (double)F;
}

void mg_projection_sn(mg_layer *l, int iters)
{
    MG_CHECK(l->ops == &projection_ops, l->name, "this is a bug in the caller", "mg_projection_sn on a %s layer",
             l->ops ? l->ops->kind : "unmade");
    projection_impl *p = l->impl;
    const size_t F = features(l);
    mg_spectral_setup(l, &p->sn, iters, l->n_classes, 1, (int)F);
    mg_spectral_set_offset(l, &p->sn, F + 1);
}

void mg_projection_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in)
{
    const int sn_iters = mg_spectral_iters_from_cfg(spec);
    mg_projection_make(l, in);
    if (sn_iters)
        mg_projection_sn(l, sn_iters);
}
