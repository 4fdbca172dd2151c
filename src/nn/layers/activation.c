/* Element-wise activations. Backward uses the forward output where the derivative is
 * a function of it (ReLU, tanh, sigmoid) so no extra cache is needed. */
#include <math.h>
#include <stdint.h>
#include <string.h>

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

/* tanh of 8 floats, vectorised (libm's tanhf is a scalar call, a visible cost on G's output
 * layer; docs/results/2026-12-02-vector-loops):
 *   |x| < 0.55: the odd Taylor series through x^17 (truncation < 1e-8 relative there, as the
 *              series converges with ratio (x / (pi/2))^2 <= 0.123);
 *   |x| >= 0.55: 1 - 2 / (1 + e^{2|x|}), no cancellation as tanh >= 0.5, with e^y = 2^k p(r),
 *              r = y - k ln 2 (ln 2 split in two), |r| <= ln2/2, p the Taylor series through
 *              r^7; |x| is clamped at 20 first (tanh is 1 in float from ~9 on), so 2^k is
 *              built from exponent bits without overflow;
 * then the sign of x is copied back. Relative error ~3e-7 against tanh in double
 * (tests/test_layers.c); NaN stays NaN (selected back at the end), +-inf give +-1. */
typedef float f8 __attribute__((vector_size(32)));
typedef int32_t i8 __attribute__((vector_size(32)));

static inline f8 tanh8(f8 x)
{
    const i8 bits = (i8)x, sign = bits & (int32_t)0x80000000;
    const f8 a = (f8)(bits & 0x7fffffff); /* |x| */
    /* small: x (1 + x^2 q(x^2)) */
    const f8 s = a * a;
    f8 q = (f8){0} + -443861162.0f / 1856156927625.0f;
    q = q * s + 6404582.0f / 10854718875.0f;
    q = q * s - 929569.0f / 638512875.0f;
    q = q * s + 21844.0f / 6081075.0f;
    q = q * s - 1382.0f / 155925.0f;
    q = q * s + 62.0f / 2835.0f;
    q = q * s - 17.0f / 315.0f;
    q = q * s + 2.0f / 15.0f;
    q = q * s - 1.0f / 3.0f;
    const f8 small = a + a * (s * q);
    /* large: 1 - 2 / (1 + e^{2|x|}) */
    const f8 y = 2.0f * (f8)((i8)a & (i8)(a < 20.0f)) + (f8)((i8)((f8){0} + 40.0f) & (i8)(a >= 20.0f));
    const f8 shifter = (f8){0} + 12582912.0f; /* 1.5 2^23: adding it rounds to an integer */
    const f8 t = y * 1.44269504f + shifter;
    const f8 k = t - shifter;
    const f8 r = (y - k * 0.693145752f) - k * 1.42860677e-06f;
    f8 p = (f8){0} + 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const f8 e = (f8)((i8)p + (((i8)t - (i8)shifter) << 23));
    const f8 large = 1.0f - 2.0f / (1.0f + e);
    const i8 use_small = a < 0.55f;
    const f8 mag = (f8)(((i8)small & use_small) | ((i8)large & ~use_small));
    const f8 result = (f8)((i8)mag | sign);
    const i8 nan = x != x;
    return (f8)(((i8)x & nan) | ((i8)result & ~nan));
}

/* y = tanh x; dx = dy (1 - y^2) */
static void tanh_forward(mg_layer *l, const float *x, float *y, int n, mg_mode mode)
{
    (void)mode;
    size_t m = count(l, n), i = 0;
    for (; i + 8 <= m; i += 8) {
        f8 v;
        memcpy(&v, x + i, sizeof v);
        v = tanh8(v);
        memcpy(y + i, &v, sizeof v);
    }
    if (i < m) { /* the last 1..7, through a padded copy */
        f8 v = {0};
        memcpy(&v, x + i, (m - i) * sizeof(float));
        v = tanh8(v);
        memcpy(y + i, &v, (m - i) * sizeof(float));
    }
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

static const mg_layer_ops relu_ops = {"relu", relu_forward, relu_backward, NULL, NULL};
static const mg_layer_ops leaky_ops = {"leaky_relu", leaky_forward, leaky_backward, NULL, NULL};
static const mg_layer_ops tanh_ops = {"tanh", tanh_forward, tanh_backward, NULL, NULL};
static const mg_layer_ops sigmoid_ops = {"sigmoid", sigmoid_forward, sigmoid_backward, NULL, NULL};

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
