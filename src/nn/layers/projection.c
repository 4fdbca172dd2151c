/* The projection discriminator's head (Miyato & Koyama 2018, "cGANs with projection
 * discriminator"): D's last layer, one score per sample from its features h (any shape,
 * taken as F = c*h*w values; pool before it) and its class y:
 *   out = w . h + b + E[y] . h
 * the unconditional linear score plus the inner product of a class embedding with h.
 * param: w (F), b (1), E (K, F). The labels are the network's (mg_net_set_labels). */
#include <string.h>

#include "mg_error.h"
#include "mg_layers.h"

/* h (n, F) -> out (n, 1) */
static void projection_forward(mg_layer *l, const float *x, float *y, int n, mg_mode mode)
{
    (void)mode;
    const size_t F = mg_shape_size(l->in);
    const float *w = l->param, *b = w + F, *E = b + 1;
    for (int i = 0; i < n; i++) {
        const float *h = x + (size_t)i * F, *e = E + (size_t)l->labels[i] * F;
        double s = b[0];
        for (size_t f = 0; f < F; f++)
            s += (double)(w[f] + e[f]) * h[f];
        y[i] = (float)s;
    }
}

/* dw += sum_i dy_i h_i; db += sum_i dy_i; dE[y_i] += dy_i h_i; dh_i = dy_i (w + E[y_i]) */
static void projection_backward(mg_layer *l, const float *x, const float *y, const float *dy, float *dx, int n,
                                bool param_grads)
{
    (void)y;
    const size_t F = mg_shape_size(l->in);
    const float *w = l->param, *E = l->param + F + 1;
    float *dw = l->grad, *db = dw + F, *dE = db + 1;
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
}

/* w and every class's embedding as a linear layer's weights of fan-in F; b = 0. */
static void projection_init(mg_layer *l, const mg_init *init, mg_rng *rng)
{
    const size_t F = mg_shape_size(l->in);
    mg_init_weights(l->param, F, (int)F, 1, init, rng);
    mg_init_weights(l->param + F + 1, (size_t)l->n_classes * F, (int)F, 1, init, rng);
}

static const mg_layer_ops projection_ops = {"projection", projection_forward, projection_backward, projection_init, NULL};

void mg_projection_make(mg_layer *l, mg_shape in)
{
    MG_CHECK(l->n_classes > 0, l->name, "give the network classes: K (the data's class count)",
             "a projection head in a network without 'classes'");
    mg_layer_setup(l, &projection_ops, in, (mg_shape){1, 1, 1}, NULL);
    const size_t F = mg_shape_size(in);
    l->needs_labels = true;
    l->n_param = F + 1 + (size_t)l->n_classes * F;
    l->macs = (double)F;
}

void mg_projection_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in)
{
    (void)spec;
    mg_projection_make(l, in);
}
