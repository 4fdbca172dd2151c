/* Class information concatenated to a layer's input along channels (features for
 * vectors), for class-conditional networks:
 *   embed_concat   a learned embedding E[y] of dim floats per class (table (K, dim) in
 *                  param), each value spread over the h*w positions: G's
 *                  `condition: {kind: concat, dim}` puts it before the first layer, so z
 *                  and the class embedding enter G together;
 *   onehot_concat  K constant channels, 1 on the sample's class and 0 elsewhere: the
 *                  simple conditional D input, beside the projection head.
 * (n, c, h, w) -> (n, c + extra, h, w); the input passes through unchanged. The labels
 * are the network's (l->labels, mg_net_set_labels). */
#include <string.h>

#include "mg_error.h"
#include "mg_layers.h"

typedef struct { int extra; bool learned; } concat_impl;

/* x (n, c, P) -> y (n, c + extra, P) */
static void concat_forward(mg_layer *l, const float *x, float *y, int n, mg_mode mode)
{
    (void)mode;
    const concat_impl *p = l->impl;
    const size_t P = (size_t)l->in.h * l->in.w, in_size = mg_shape_size(l->in), out_size = mg_shape_size(l->out);
    for (int i = 0; i < n; i++) {
        float *yi = y + (size_t)i * out_size;
        memcpy(yi, x + (size_t)i * in_size, in_size * sizeof(float));
        const int label = l->labels[i];
        for (int d = 0; d < p->extra; d++) {
            const float v = p->learned ? l->param[(size_t)label * p->extra + d] : (d == label ? 1.0f : 0.0f);
            float *plane = yi + in_size + (size_t)d * P;
            for (size_t q = 0; q < P; q++)
                plane[q] = v;
        }
    }
}

/* dx = dy's first c channels; embed_concat: dE[y_i, d] += sum over positions of dy[i, c + d] */
static void concat_backward(mg_layer *l, const float *x, const float *y, const float *dy, float *dx, int n,
                            bool param_grads)
{
    (void)x, (void)y;
    const concat_impl *p = l->impl;
    const size_t P = (size_t)l->in.h * l->in.w, in_size = mg_shape_size(l->in), out_size = mg_shape_size(l->out);
    for (int i = 0; i < n; i++) {
        const float *dyi = dy + (size_t)i * out_size;
        if (dx)
            memcpy(dx + (size_t)i * in_size, dyi, in_size * sizeof(float));
        if (!p->learned || !param_grads)
            continue;
        float *dE = l->grad + (size_t)l->labels[i] * p->extra;
        for (int d = 0; d < p->extra; d++) {
            const float *plane = dyi + in_size + (size_t)d * P;
            float s = 0;
            for (size_t q = 0; q < P; q++)
                s += plane[q];
            dE[d] += s;
        }
    }
}

/* An embedding table starts N(0, 1) as PyTorch's nn.Embedding (the scale of z), unless the
 * layer gives its own init. */
static void embed_init(mg_layer *l, const mg_init *init, mg_rng *rng)
{
    const concat_impl *p = l->impl;
    const size_t count = (size_t)l->n_classes * p->extra;
    if (l->has_init)
        mg_init_weights(l->param, count, p->extra, p->extra, init, rng);
    else
        mg_rng_fill_normal(rng, l->param, count, 0.0f, 1.0f);
}

static const mg_layer_ops embed_ops = {"embed_concat", concat_forward, concat_backward, embed_init, NULL};
static const mg_layer_ops onehot_ops = {"onehot_concat", concat_forward, concat_backward, NULL, NULL};

static void concat_make(mg_layer *l, const mg_layer_ops *ops, mg_shape in, int extra, bool learned)
{
    MG_CHECK(l->n_classes > 0, l->name, "give the network classes: K (the data's class count)",
             "a class-conditional layer in a network without 'classes'");
    concat_impl *p = mg_alloc(sizeof *p, l->name);
    p->extra = extra;
    p->learned = learned;
    mg_layer_setup(l, ops, in, (mg_shape){in.c + extra, in.h, in.w}, p);
    l->needs_labels = true;
    l->n_param = learned ? (size_t)l->n_classes * (size_t)extra : 0;
}

void mg_embed_concat_make(mg_layer *l, mg_shape in, int dim)
{
    MG_CHECK(dim > 0, l->name, NULL, "embedding size %d must be positive", dim);
    concat_make(l, &embed_ops, in, dim, true);
}

void mg_onehot_concat_make(mg_layer *l, mg_shape in) { concat_make(l, &onehot_ops, in, l->n_classes, false); }

void mg_embed_concat_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in)
{
    mg_embed_concat_make(l, in, (int)mg_cfg_int_req(spec, "dim", 1, 1 << 20));
}

void mg_onehot_concat_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in)
{
    (void)spec;
    mg_onehot_concat_make(l, in);
}
