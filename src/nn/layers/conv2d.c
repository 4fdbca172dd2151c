/* 2-d convolution lowered to sgemm with im2col, over chunks of the local batch.
 *
 * im2col lowers a chunk of m samples to col (K x m*P), K = cin k k, P = ho wo, in the shared
 * workspace; a chunk's col is ~2 MB, so it is still in cache when the GEMM reads it (see
 * mg_conv_chunk). The GEMMs then run in one of two layouts, chosen per layer:
 *
 * Channel-major (the default, for layers whose weights are large next to one sample's
 * output): ONE sgemm  W (cout x K) col  gives the chunk's output as (cout, m*P), scattered
 * to NCHW with the bias added on the way; backward gathers dy the same way. The GEMM sees
 * N = m*P columns, so it runs near peak even when one image is small (DCGAN's 7x7 maps:
 * m = 10, N = 490).
 *
 * In place (when W is no larger than one sample's output, cout x P, e.g. DCGAN's first D
 * layer: K = 16, P = 196): one sgemm per sample, on that sample's slice of col, writes
 * straight into the sample's NCHW output, and backward reads dy in place. This skips the
 * scatter and gather of the whole output, which for a tiny-K GEMM costs as much as the
 * GEMM itself (measured in docs/results/2026-11-23-conv-layers); re-reading the small W
 * per call is cheap.
 *
 * Backward recomputes col rather than caching it (it is the layer's largest tensor) and
 * reuses its buffer for dcol. W is cout x cin x k x k as in PyTorch, then the bias.
 * With sn (mg_spectral.h) every product uses W / sigma(W), W viewed as (cout, cin k k).
 * Under the oneDNN backend (l->onednn set) oneDNN's convolution primitives replace all of
 * the above on the same buffers (mg_onednn.h). */
#include <string.h>

#include "mg_error.h"
#include "mg_blas.h"
#include "mg_im2col.h"
#include "mg_layers.h"
#include "mg_onednn.h"
#include "mg_spectral.h"

typedef struct {
    int cin, cout, k, stride, pad;
    bool bias;
    bool in_place;     /* see the top of the file */
    mg_spectral sn;    /* spectral normalisation (mg_spectral.h); iters 0: off */
    mg_conv_geom geom; /* over the input image: oh, ow are the output size */
} conv2d_impl;

/* x (n, cin, h, w) -> y (n, cout, ho, wo):
 * y[s][o][oy][ox] = b[o] + sum_{c,ki,kj} W[o][c][ki][kj] x[s][c][oy s - p + ki][ox s - p + kj] */
static void conv2d_forward(mg_layer *l, const float *x, float *y, int n, mg_mode mode)
{
    const conv2d_impl *p = l->impl;
    const int K = (int)mg_conv_geom_rows(&p->geom), P = (int)mg_conv_geom_cols(&p->geom);
    const size_t in_size = mg_shape_size(l->in), out_size = mg_shape_size(l->out);
    const float *w = mg_spectral_on(&p->sn) ? mg_spectral_forward(l, &p->sn, mode) : l->param;
    const float *bias = p->bias ? l->param + (size_t)p->cout * K : NULL;
    if (l->onednn) {
        mg_onednn_forward(l->onednn, x, w, bias, y, n);
        return;
    }
    const mg_conv_work ws = mg_conv_work_carve(l->work, &p->geom, p->cout, n);
    for (int first = 0; first < n; first += ws.chunk) {
        const int m = n - first < ws.chunk ? n - first : ws.chunk, mP = m * P;
        float *y_c = y + (size_t)first * out_size;
        mg_im2col(ws.col, x + (size_t)first * in_size, m, &p->geom, ws.scratch);
        if (p->in_place) {
            /* y_s (cout x P) = W (cout x K) col_s (K x P, a slice of col) + bias */
            mg_fill_channels(y_c, bias, m, p->cout, (size_t)P);
            for (int s = 0; s < m; s++)
                mg_sgemm_checked(l->name, "forward W col_s", CblasNoTrans, CblasNoTrans, p->cout, P, K, 1.0f, w, K,
                                 ws.col + (size_t)s * P, mP, 1.0f, y_c + (size_t)s * out_size, P);
            continue;
        }
        /* cm (cout x mP) = W (cout x K) col (K x mP), then to NCHW with the bias */
        mg_sgemm_checked(l->name, "forward W col", CblasNoTrans, CblasNoTrans, p->cout, mP, K, 1.0f, w, K, ws.col, mP,
                         0.0f, ws.cm, mP);
        mg_cm_to_nchw(y_c, ws.cm, m, p->cout, (size_t)P, bias);
    }
}

/* dy (n, cout, ho, wo) -> dW += dy col^T, db += sum dy, dx = col2im(W^T dy) */
static void conv2d_backward(mg_layer *l, const float *x, const float *y, const float *dy, float *dx, int n,
                            bool param_grads)
{
    (void)y;
    const conv2d_impl *p = l->impl;
    const int K = (int)mg_conv_geom_rows(&p->geom), P = (int)mg_conv_geom_cols(&p->geom);
    const size_t in_size = mg_shape_size(l->in), out_size = mg_shape_size(l->out);
    const bool sn = mg_spectral_on(&p->sn);
    if (!param_grads && !dx)
        return;
    /* with sn: W_sn for dx, and dL/dW_sn into the scratch, corrected into l->grad at the end */
    const float *w = sn ? mg_spectral_weight(l) : l->param;
    float *dw = sn && param_grads ? mg_spectral_grad_scratch(l, &p->sn) : l->grad;
    if (l->onednn) {
        if (param_grads)
            mg_onednn_backward_weights_add(l->onednn, x, dy, dw, p->bias ? l->grad + (size_t)p->cout * K : NULL, n);
        if (dx)
            mg_onednn_backward_data(l->onednn, dy, w, dx, n);
        if (sn && param_grads)
            mg_spectral_backward(l, &p->sn);
        return;
    }
    if (param_grads && p->bias)
        mg_channel_sums_add(l->grad + (size_t)p->cout * K, dy, n, p->cout, (size_t)P);
    const mg_conv_work ws = mg_conv_work_carve(l->work, &p->geom, p->cout, n);
    for (int first = 0; first < n; first += ws.chunk) {
        const int m = n - first < ws.chunk ? n - first : ws.chunk, mP = m * P;
        const float *dy_c = dy + (size_t)first * out_size;
        if (!p->in_place)
            mg_nchw_to_cm(ws.cm, dy_c, m, p->cout, (size_t)P);
        if (param_grads) {
            mg_im2col(ws.col, x + (size_t)first * in_size, m, &p->geom, ws.scratch);
            /* dW (cout x K) += dy (cout x mP) col^T (mP x K), per sample when in place */
            if (p->in_place)
                for (int s = 0; s < m; s++)
                    mg_sgemm_checked(l->name, "backward dW += dy_s col_s^T", CblasNoTrans, CblasTrans, p->cout, K, P,
                                     1.0f, dy_c + (size_t)s * out_size, P, ws.col + (size_t)s * P, mP, 1.0f, dw, K);
            else
                mg_sgemm_checked(l->name, "backward dW += dy col^T", CblasNoTrans, CblasTrans, p->cout, K, mP, 1.0f,
                                 ws.cm, mP, ws.col, mP, 1.0f, dw, K);
        }
        if (dx) {
            /* dcol (K x mP) = W^T (K x cout) dy (cout x mP), into the col buffer */
            if (p->in_place)
                for (int s = 0; s < m; s++)
                    mg_sgemm_checked(l->name, "backward dcol_s = W^T dy_s", CblasTrans, CblasNoTrans, K, P, p->cout,
                                     1.0f, w, K, dy_c + (size_t)s * out_size, P, 0.0f, ws.col + (size_t)s * P, mP);
            else
                mg_sgemm_checked(l->name, "backward dcol = W^T dy", CblasTrans, CblasNoTrans, K, mP, p->cout, 1.0f, w,
                                 K, ws.cm, mP, 0.0f, ws.col, mP);
            /* dx is written in full: zeroed per chunk, just before col2im adds into it */
            float *dx_c = dx + (size_t)first * in_size;
            memset(dx_c, 0, sizeof(float) * (size_t)m * in_size);
            mg_col2im_add(dx_c, ws.col, m, &p->geom, ws.scratch);
        }
    }
    if (sn && param_grads)
        mg_spectral_backward(l, &p->sn);
}

static void conv2d_init(mg_layer *l, const mg_init *init, mg_rng *rng)
{
    const conv2d_impl *p = l->impl;
    const size_t n_weights = (size_t)p->cout * p->cin * p->k * p->k;
    /* fan_in = cin k k, fan_out = cout k k, as PyTorch's _calculate_fan_in_and_fan_out */
    mg_init_weights(l->param, n_weights, p->cin * p->k * p->k, p->cout * p->k * p->k, init, rng);
    if (p->bias)
        memset(l->param + n_weights, 0, sizeof(float) * (size_t)p->cout);
    if (mg_spectral_on(&p->sn))
        mg_spectral_init(l, &p->sn, rng);
}

static mg_onednn_op *conv2d_onednn(const mg_layer *l, int max_batch, bool bf16)
{
    const conv2d_impl *p = l->impl;
    const mg_onednn_geom g = {.kind = MG_ONEDNN_CONV, .cin = p->cin, .h = l->in.h, .w = l->in.w, .cout = p->cout,
                              .oh = l->out.h, .ow = l->out.w, .k = p->k, .stride = p->stride, .pad_l = p->pad,
                              .pad_r = p->pad, .bias = p->bias, .bf16 = bf16};
    return mg_onednn_op_make(l->name, &g, max_batch);
}

static const mg_layer_ops conv2d_ops = {"conv2d", conv2d_forward, conv2d_backward, conv2d_init, conv2d_onednn};

void mg_conv2d_make(mg_layer *l, mg_shape in, int cout, int kernel, int stride, int pad, bool bias)
{
    const char *hint = "conv2d output is (h + 2 padding - kernel) / stride + 1";
    mg_conv_check_params(l->name, hint, cout, kernel, stride, pad);
    MG_CHECK(in.c >= 1 && in.h >= 1 && in.w >= 1, l->name, hint, "input %dx%dx%d is not a positive image",
             in.c, in.h, in.w);
    mg_conv_geom g = mg_conv_geom_make(in.c, in.h, in.w, kernel, stride, pad);
    MG_CHECK(g.oh >= 1 && g.ow >= 1, l->name, hint,
             "input %dx%d with kernel %d, stride %d, padding %d leaves no room for a window (output %dx%d)",
             in.h, in.w, kernel, stride, pad, g.oh, g.ow);
    const size_t K = mg_conv_geom_rows(&g), P = mg_conv_geom_cols(&g);
    MG_CHECK(K * P <= (size_t)1 << 30 && (size_t)cout * P <= (size_t)1 << 30, l->name,
             "a single sample must fit in int-indexed BLAS calls", "layer is too large (K=%zu, P=%zu)", K, P);

    conv2d_impl *p = mg_alloc(sizeof *p, l->name);
    *p = (conv2d_impl){.cin = in.c, .cout = cout, .k = kernel, .stride = stride, .pad = pad, .bias = bias,
                       .in_place = mg_conv_in_place((size_t)cout * K, (size_t)cout * P, P), .geom = g};
    mg_layer_setup(l, &conv2d_ops, in, (mg_shape){cout, g.oh, g.ow}, p);
    l->n_param = (size_t)cout * K + (bias ? (size_t)cout : 0);
    l->n_work = mg_conv_work_floats(&g, cout);
    l->macs = (double)cout * (double)K * (double)P;
}

/* W (cout, cin, k, k) as the (cout, cin k k) matrix, as PyTorch's spectral_norm (dim 0) */
void mg_conv2d_sn(mg_layer *l, int iters)
{
    MG_CHECK(l->ops == &conv2d_ops, l->name, "this is a bug in the caller", "mg_conv2d_sn on a %s layer",
             l->ops ? l->ops->kind : "unmade");
    conv2d_impl *p = l->impl;
    mg_spectral_setup(l, &p->sn, iters, p->cout, 1, (int)mg_conv_geom_rows(&p->geom));
}

void mg_conv2d_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in)
{
    int out = (int)mg_cfg_int_req(spec, "out", 1, 1L << 24);
    int kernel = (int)mg_cfg_int_req(spec, "kernel", 1, 1L << 16);
    int stride = (int)mg_cfg_int(spec, "stride", 1, 1, 1L << 16);
    int pad = (int)mg_cfg_int(spec, "padding", 0, 0, 1L << 16);
    bool bias = mg_cfg_bool(spec, "bias", true);
    int sn_iters = mg_spectral_iters_from_cfg(spec);
    mg_conv2d_make(l, in, out, kernel, stride, pad, bias);
    if (sn_iters)
        mg_conv2d_sn(l, sn_iters);
}
