/* Fully connected layer: y = x W^T + b over the whole batch with one sgemm.
 * W is (out, in) row-major as in PyTorch, so checkpoints map one to one. */
#include <string.h>

#include "mg_error.h"
#include "mg_blas.h"
#include "mg_layers.h"

typedef struct { int in, out; bool bias; } linear_impl;

/* x (n, in) -> y (n, out) */
static void linear_forward(mg_layer *l, const float *x, float *y, int n, mg_mode mode)
{
    (void)mode;
    const linear_impl *p = l->impl;
    const float *w = l->param, *b = l->param + (size_t)p->out * p->in;
    if (p->bias)
        for (int i = 0; i < n; i++)
            memcpy(y + (size_t)i * p->out, b, sizeof(float) * (size_t)p->out);
    mg_sgemm_checked(l->name, "forward x W^T", CblasNoTrans, CblasTrans, n, p->out, p->in, 1.0f, x, p->in, w, p->in,
                     p->bias ? 1.0f : 0.0f, y, p->out);
}

/* dW += dy^T x; db += sum_n dy; dx = dy W */
static void linear_backward(mg_layer *l, const float *x, const float *y, const float *dy, float *dx, int n,
                            bool param_grads)
{
    (void)y;
    const linear_impl *p = l->impl;
    if (param_grads) {
        float *dw = l->grad, *db = l->grad + (size_t)p->out * p->in;
        mg_sgemm_checked(l->name, "backward dW += dy^T x", CblasTrans, CblasNoTrans, p->out, p->in, n, 1.0f, dy,
                         p->out, x, p->in, 1.0f, dw, p->in);
        if (p->bias)
            for (int i = 0; i < n; i++)
                for (int o = 0; o < p->out; o++)
                    db[o] += dy[(size_t)i * p->out + o];
    }
    if (dx)
        mg_sgemm_checked(l->name, "backward dx = dy W", CblasNoTrans, CblasNoTrans, n, p->in, p->out, 1.0f, dy,
                         p->out, l->param, p->in, 0.0f, dx, p->in);
}

static void linear_init(mg_layer *l, const mg_init *init, mg_rng *rng)
{
    const linear_impl *p = l->impl;
    mg_init_weights(l->param, (size_t)p->out * p->in, p->in, p->out, init, rng);
}

static const mg_layer_ops linear_ops = {"linear", linear_forward, linear_backward, linear_init};

void mg_linear_make(mg_layer *l, mg_shape in, int out, bool bias)
{
    MG_CHECK(out > 0, l->name, NULL, "output size %d must be positive", out);
    linear_impl *p = mg_alloc(sizeof *p, l->name);
    p->in = (int)mg_shape_size(in);
    p->out = out;
    p->bias = bias;
    mg_layer_setup(l, &linear_ops, in, (mg_shape){out, 1, 1}, p);
    l->n_param = (size_t)out * p->in + (bias ? (size_t)out : 0);
    l->macs = (double)out * p->in;
}

void mg_linear_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in)
{
    int out = (int)mg_cfg_int_req(spec, "out", 1, 1L << 24);
    bool bias = mg_cfg_bool(spec, "bias", true);
    mg_linear_make(l, in, out, bias);
}
