/* Fully connected layer: y = x W^T + b over the whole batch with one sgemm.
 * W is (out, in) row-major as in PyTorch, so checkpoints map one to one.
 * With sn (mg_spectral.h) the products use W / sigma(W), W viewed as (out, in); the
 * weight gradient then goes to the spectral scratch first and is corrected into l->grad.
 * Under the oneDNN backend (l->onednn set) oneDNN's inner product primitives do the three
 * products on the same buffers (mg_onednn.h). */
#include <string.h>

#include "mg_error.h"
#include "mg_blas.h"
#include "mg_layers.h"
#include "mg_onednn.h"
#include "mg_spectral.h"

typedef struct {
    int in, out;
    bool bias;
    mg_spectral sn;
} linear_impl;

/* x (n, in) -> y (n, out) */
static void linear_forward(mg_layer *l, const float *x, float *y, int n, mg_mode mode)
{
    const linear_impl *p = l->impl;
    const float *w = mg_spectral_on(&p->sn) ? mg_spectral_forward(l, &p->sn, mode) : l->param;
    const float *b = l->param + (size_t)p->out * p->in;
    if (l->onednn) {
        mg_onednn_forward(l->onednn, x, w, p->bias ? b : NULL, y, n);
        return;
    }
    if (p->bias)
        for (int i = 0; i < n; i++)
            memcpy(y + (size_t)i * p->out, b, sizeof(float) * (size_t)p->out);
    mg_sgemm_checked(l->name, "forward x W^T", CblasNoTrans, CblasTrans, n, p->out, p->in, 1.0f, x, p->in, w, p->in,
                     p->bias ? 1.0f : 0.0f, y, p->out);
}

/* dW += dy^T x; db += sum_n dy; dx = dy W (W_sn and the spectral correction with sn) */
static void linear_backward(mg_layer *l, const float *x, const float *y, const float *dy, float *dx, int n,
                            bool param_grads)
{
    (void)y;
    const linear_impl *p = l->impl;
    const bool sn = mg_spectral_on(&p->sn);
    if (l->onednn) {
        if (param_grads) {
            float *dw = sn ? mg_spectral_grad_scratch(l, &p->sn) : l->grad;
            mg_onednn_backward_weights_add(l->onednn, x, dy, dw, p->bias ? l->grad + (size_t)p->out * p->in : NULL, n);
            if (sn)
                mg_spectral_backward(l, &p->sn);
        }
        if (dx)
            mg_onednn_backward_data(l->onednn, dy, sn ? mg_spectral_weight(l) : l->param, dx, n);
        return;
    }
    if (param_grads) {
        float *dw = sn ? mg_spectral_grad_scratch(l, &p->sn) : l->grad, *db = l->grad + (size_t)p->out * p->in;
        mg_sgemm_checked(l->name, "backward dW += dy^T x", CblasTrans, CblasNoTrans, p->out, p->in, n, 1.0f, dy,
                         p->out, x, p->in, 1.0f, dw, p->in);
        if (sn)
            mg_spectral_backward(l, &p->sn);
        if (p->bias)
            for (int i = 0; i < n; i++)
                for (int o = 0; o < p->out; o++)
                    db[o] += dy[(size_t)i * p->out + o];
    }
    if (dx)
        mg_sgemm_checked(l->name, "backward dx = dy W", CblasNoTrans, CblasNoTrans, n, p->in, p->out, 1.0f, dy,
                         p->out, sn ? mg_spectral_weight(l) : l->param, p->in, 0.0f, dx, p->in);
}

static void linear_init(mg_layer *l, const mg_init *init, mg_rng *rng)
{
    const linear_impl *p = l->impl;
    mg_init_weights(l->param, (size_t)p->out * p->in, p->in, p->out, init, rng);
    if (mg_spectral_on(&p->sn))
        mg_spectral_init(l, &p->sn, rng);
}

static mg_onednn_op *linear_onednn(const mg_layer *l, int max_batch, bool bf16)
{
    const linear_impl *p = l->impl;
    const mg_onednn_geom g = {.kind = MG_ONEDNN_LINEAR, .cin = p->in, .h = 1, .w = 1, .cout = p->out, .bias = p->bias, .bf16 = bf16};
    return mg_onednn_op_make(l->name, &g, max_batch);
}

static const mg_layer_ops linear_ops = {"linear", linear_forward, linear_backward, linear_init, linear_onednn};

void mg_linear_make(mg_layer *l, mg_shape in, int out, bool bias)
{
    MG_CHECK(out > 0, l->name, NULL, "output size %d must be positive", out);
    linear_impl *p = mg_alloc(sizeof *p, l->name);
    *p = (linear_impl){.in = (int)mg_shape_size(in), .out = out, .bias = bias};
    mg_layer_setup(l, &linear_ops, in, (mg_shape){out, 1, 1}, p);
    l->n_param = (size_t)out * p->in + (bias ? (size_t)out : 0);
    l->macs = (double)out * p->in;
}

void mg_linear_sn(mg_layer *l, int iters)
{
    MG_CHECK(l->ops == &linear_ops, l->name, "this is a bug in the caller", "mg_linear_sn on a %s layer",
             l->ops ? l->ops->kind : "unmade");
    linear_impl *p = l->impl;
    mg_spectral_setup(l, &p->sn, iters, p->out, 1, p->in);
}

void mg_linear_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in)
{
    int out = (int)mg_cfg_int_req(spec, "out", 1, 1L << 24);
    bool bias = mg_cfg_bool(spec, "bias", true);
    int sn_iters = mg_spectral_iters_from_cfg(spec);
    mg_linear_make(l, in, out, bias);
    if (sn_iters)
        mg_linear_sn(l, sn_iters);
}
