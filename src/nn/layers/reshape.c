/* Reshape and flatten: the data is already contiguous NCHW, so both are a copy under a
 * new per-sample shape (a copy keeps every layer's output its own, which backward needs). */
#include <string.h>

#include "mg_error.h"
#include "mg_layers.h"

static void reshape_forward(mg_layer *l, const float *x, float *y, int n, mg_mode mode)
{
    (void)mode;
    memcpy(y, x, sizeof(float) * mg_shape_size(l->in) * (size_t)n);
}

static void reshape_backward(mg_layer *l, const float *x, const float *y, const float *dy, float *dx, int n,
                             bool param_grads)
{
    (void)x, (void)y, (void)param_grads;
    if (dx)
        memcpy(dx, dy, sizeof(float) * mg_shape_size(l->in) * (size_t)n);
}

static const mg_layer_ops reshape_ops = {"reshape", reshape_forward, reshape_backward, NULL, NULL};
static const mg_layer_ops flatten_ops = {"flatten", reshape_forward, reshape_backward, NULL, NULL};

void mg_reshape_make(mg_layer *l, mg_shape in, mg_shape out)
{
    MG_CHECK(out.c > 0 && out.h > 0 && out.w > 0 && mg_shape_size(out) == mg_shape_size(in), l->name,
             "the element count must stay the same", "cannot reshape %dx%dx%d (%zu values) to %dx%dx%d", in.c,
             in.h, in.w, mg_shape_size(in), out.c, out.h, out.w);
    mg_layer_setup(l, &reshape_ops, in, out, NULL);
}

void mg_flatten_make(mg_layer *l, mg_shape in)
{
    mg_layer_setup(l, &flatten_ops, in, (mg_shape){(int)mg_shape_size(in), 1, 1}, NULL);
}

void mg_reshape_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in)
{
    mg_reshape_make(l, in, mg_shape_from_cfg(mg_cfg_require(spec, "shape"), "write [d] or [c, h, w]"));
}

void mg_flatten_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in)
{
    (void)spec;
    mg_flatten_make(l, in);
}
