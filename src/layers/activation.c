/* Element-wise activations. Backward uses the forward output where the derivative is
 * a function of it (ReLU, tanh, sigmoid) so no extra cache is needed. */
#include <math.h>

#include "mg_error.h"
#include "mg_layers.h"

static size_t count(const mg_layer *l, int n) { return mg_shape_size(l->in) * (size_t)n; }

/* y = max(x, 0); dx = dy [y > 0] (the kink at 0 takes gradient 0, as PyTorch) */
static void relu_forward(mg_layer *l, const float *x, float *y, int n, mg_mode mode)
{
    (void)mode;
    size_t m = count(l, n);
    for (size_t i = 0; i < m; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
static void relu_backward(mg_layer *l, const float *x, const float *y, const float *dy, float *dx, int n,
                          bool param_grads)
{
    (void)x, (void)param_grads;
    if (!dx)
        return;
    size_t m = count(l, n);
    for (size_t i = 0; i < m; i++)
        dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

/* y = x for x > 0, slope x otherwise */
static void leaky_forward(mg_layer *l, const float *x, float *y, int n, mg_mode mode)
{
    (void)mode;
    const float slope = *(const float *)l->impl;
    size_t m = count(l, n);
    for (size_t i = 0; i < m; i++)
        y[i] = x[i] > 0.0f ? x[i] : slope * x[i];
}
static void leaky_backward(mg_layer *l, const float *x, const float *y, const float *dy, float *dx, int n,
                           bool param_grads)
{
    (void)y, (void)param_grads;
    if (!dx)
        return;
    const float slope = *(const float *)l->impl;
    size_t m = count(l, n);
    for (size_t i = 0; i < m; i++)
        dx[i] = x[i] > 0.0f ? dy[i] : slope * dy[i];
}

/* y = tanh x; dx = dy (1 - y^2) */
static void tanh_forward(mg_layer *l, const float *x, float *y, int n, mg_mode mode)
{
    (void)mode;
    size_t m = count(l, n);
    for (size_t i = 0; i < m; i++)
        y[i] = tanhf(x[i]);
}
static void tanh_backward(mg_layer *l, const float *x, const float *y, const float *dy, float *dx, int n,
                          bool param_grads)
{
    (void)x, (void)param_grads;
    if (!dx)
        return;
    size_t m = count(l, n);
    for (size_t i = 0; i < m; i++)
        dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

/* y = 1 / (1 + e^-x), written so that neither branch overflows; dx = dy y (1 - y) */
static void sigmoid_forward(mg_layer *l, const float *x, float *y, int n, mg_mode mode)
{
    (void)mode;
    size_t m = count(l, n);
    for (size_t i = 0; i < m; i++) {
        if (x[i] >= 0.0f) {
            y[i] = 1.0f / (1.0f + expf(-x[i]));
        } else {
            float e = expf(x[i]);
            y[i] = e / (1.0f + e);
        }
    }
}
static void sigmoid_backward(mg_layer *l, const float *x, const float *y, const float *dy, float *dx, int n,
                             bool param_grads)
{
    (void)x, (void)param_grads;
    if (!dx)
        return;
    size_t m = count(l, n);
    for (size_t i = 0; i < m; i++)
        dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}

static const mg_layer_ops relu_ops = {"relu", relu_forward, relu_backward, NULL};
static const mg_layer_ops leaky_ops = {"leaky_relu", leaky_forward, leaky_backward, NULL};
static const mg_layer_ops tanh_ops = {"tanh", tanh_forward, tanh_backward, NULL};
static const mg_layer_ops sigmoid_ops = {"sigmoid", sigmoid_forward, sigmoid_backward, NULL};

void mg_relu_make(mg_layer *l, mg_shape in) { mg_layer_setup(l, &relu_ops, in, in, NULL); }
void mg_tanh_make(mg_layer *l, mg_shape in) { mg_layer_setup(l, &tanh_ops, in, in, NULL); }
void mg_sigmoid_make(mg_layer *l, mg_shape in) { mg_layer_setup(l, &sigmoid_ops, in, in, NULL); }

void mg_leaky_relu_make(mg_layer *l, mg_shape in, float slope)
{
    MG_CHECK(slope >= 0.0f && slope < 1.0f, l->name, "LeakyReLU slopes are in [0, 1), e.g. 0.2",
             "slope %g out of range", slope);
    float *p = mg_alloc(sizeof *p, l->name);
    *p = slope;
    mg_layer_setup(l, &leaky_ops, in, in, p);
}

void mg_relu_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in) { (void)spec; mg_relu_make(l, in); }
void mg_tanh_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in) { (void)spec; mg_tanh_make(l, in); }
void mg_sigmoid_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in) { (void)spec; mg_sigmoid_make(l, in); }
void mg_leaky_relu_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in)
{
    mg_leaky_relu_make(l, in, (float)mg_cfg_real(spec, "slope", 0.2, 0.0, 0.999999));
}
