/* 2-d transposed convolution, computed as the adjoint of conv2d with the same building
 * blocks: sgemm, im2col and col2im, over chunks of the local batch.
 *
 * With W viewed as a (cin x cout k k) matrix, the forward pass is col = W^T x followed by
 * col2im into y; the backward pass is im2col of dy (dcol), then dW += x dcol^T and dx = W dcol.
 * The im2col geometry is that of a conv2d from the OUTPUT image (cout, ho, wo) back to the
 * input's (h, w) positions, so conv2d and conv_transpose2d with equal (k, s, p) are exact
 * adjoints. Chunks of ~2 MB of col keep it in cache between GEMM and col2im (see
 * mg_conv_chunk). As in conv2d.c, the GEMMs run in one of two layouts:
 *   channel-major: x and dx of a chunk in channel-major order (cin, m*h*w), gathered /
 *            scattered around one sgemm per product per chunk (DCGAN's G 128 -> 64 layer:
 *            M = 1024, K = 128, N = 10 * 49);
 *   in place: one sgemm per sample on x and dx as NCHW stores them, and on that sample's
 *            slice of col, when W is no larger than one sample's input (DCGAN's last G
 *            layer, 64 -> 1: M = 16, P = 196), which skips gathering and scattering the whole
 *            64-channel tensor (docs/results/2026-11-23-conv-layers).
 * W is cin x cout x k x k as in PyTorch, followed by the bias (cout).
 * With sn (mg_spectral.h) every product uses W / sigma(W), W viewed as (cout, cin k k).
 * Under the oneDNN backend (l->onednn set) oneDNN's deconvolution primitives replace all
 * of the above on the same buffers (mg_onednn.h). */
#include <string.h>

#include "mg_error.h"
#include "mg_blas.h"
#include "mg_im2col.h"
#include "mg_layers.h"
#include "mg_onednn.h"
#include "mg_spectral.h"

typedef struct {
    int cin, cout, k, stride, pad, output_pad;
    bool bias;
    bool in_place;
    mg_spectral sn;    /* spectral normalisation (mg_spectral.h); iters 0: off */
    mg_conv_geom geom; /* over the OUTPUT image (cout, ho, wo); its oh, ow are the input h, w */
} convt_impl;

/* x (n, cin, h, w) -> y (n, cout, ho, wo):
 * y[s][o][iy s - p + ki][ix s - p + kj] += W[c][o][ki][kj] x[s][c][iy][ix], plus b[o] */
static void convt_forward(mg_layer *l, const float *x, float *y, int n, mg_mode mode)
{
    const convt_impl *p = l->impl;
    const int K = (int)mg_conv_geom_rows(&p->geom), P = (int)mg_conv_geom_cols(&p->geom);
    const size_t in_size = mg_shape_size(l->in), out_size = mg_shape_size(l->out);
    const float *w = mg_spectral_on(&p->sn) ? mg_spectral_forward(l, &p->sn, mode) : l->param;
    const float *bias = p->bias ? l->param + (size_t)p->cin * K : NULL;
    if (l->onednn) {
        mg_onednn_forward(l->onednn, x, w, bias, y, n);
        return;
    }
    const mg_conv_work ws = mg_conv_work_carve(l->work, &p->geom, p->cin, n);
    for (int first = 0; first < n; first += ws.chunk) {
        const int m = n - first < ws.chunk ? n - first : ws.chunk, mP = m * P;
        const float *x_c = x + (size_t)first * in_size;
        /* col (cout k k x mP) = W^T (cout k k x cin) x (cin x mP), per sample when in place */
        if (p->in_place) {
            for (int s = 0; s < m; s++)
                mg_sgemm_checked(l->name, "forward col_s = W^T x_s", CblasTrans, CblasNoTrans, K, P, p->cin, 1.0f, w,
                                 K, x_c + (size_t)s * in_size, P, 0.0f, ws.col + (size_t)s * P, mP);
        } else {
            mg_nchw_to_cm(ws.cm, x_c, m, p->cin, (size_t)P);
            mg_sgemm_checked(l->name, "forward col = W^T x", CblasTrans, CblasNoTrans, K, mP, p->cin, 1.0f, w, K,
                             ws.cm, mP, 0.0f, ws.col, mP);
        }
        /* y starts at the bias (or 0) and col2im adds every window's contribution; filled
         * per chunk, just before, so that col2im's read-modify-write finds y in cache */
        float *y_c = y + (size_t)first * out_size;
        mg_fill_channels(y_c, bias, m, p->cout, out_size / (size_t)p->cout);
        mg_col2im_add(y_c, ws.col, m, &p->geom, ws.scratch);
    }
}

/* dcol = im2col(dy); dW += x dcol^T; db += sum dy; dx = W dcol */
static void convt_backward(mg_layer *l, const float *x, const float *y, const float *dy, float *dx, int n,
                           bool param_grads)
{
    (void)y;
    const convt_impl *p = l->impl;
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
            mg_onednn_backward_weights_add(l->onednn, x, dy, dw, p->bias ? l->grad + (size_t)p->cin * K : NULL, n);
        if (dx)
            mg_onednn_backward_data(l->onednn, dy, w, dx, n);
        if (sn && param_grads)
            mg_spectral_backward(l, &p->sn);
        return;
    }
    if (param_grads && p->bias)
        mg_channel_sums_add(l->grad + (size_t)p->cin * K, dy, n, p->cout, out_size / (size_t)p->cout);
    const mg_conv_work ws = mg_conv_work_carve(l->work, &p->geom, p->cin, n);
    for (int first = 0; first < n; first += ws.chunk) {
        const int m = n - first < ws.chunk ? n - first : ws.chunk, mP = m * P;
        const float *x_c = x + (size_t)first * in_size;
        float *dx_c = dx ? dx + (size_t)first * in_size : NULL;
        mg_im2col(ws.col, dy + (size_t)first * out_size, m, &p->geom, ws.scratch);
        if (param_grads) {
            /* dW (cin x cout k k) += x (cin x mP) dcol^T (mP x cout k k), per sample when in place */
            if (p->in_place) {
                for (int s = 0; s < m; s++)
                    mg_sgemm_checked(l->name, "backward dW += x_s dcol_s^T", CblasNoTrans, CblasTrans, p->cin, K, P,
                                     1.0f, x_c + (size_t)s * in_size, P, ws.col + (size_t)s * P, mP, 1.0f, dw, K);
            } else {
                mg_nchw_to_cm(ws.cm, x_c, m, p->cin, (size_t)P);
                mg_sgemm_checked(l->name, "backward dW += x dcol^T", CblasNoTrans, CblasTrans, p->cin, K, mP, 1.0f,
                                 ws.cm, mP, ws.col, mP, 1.0f, dw, K);
            }
        }
        if (dx_c) {
            /* dx (cin x mP) = W (cin x cout k k) dcol (cout k k x mP) */
            if (p->in_place) {
                for (int s = 0; s < m; s++)
                    mg_sgemm_checked(l->name, "backward dx_s = W dcol_s", CblasNoTrans, CblasNoTrans, p->cin, P, K,
                                     1.0f, w, K, ws.col + (size_t)s * P, mP, 0.0f, dx_c + (size_t)s * in_size, P);
            } else {
                mg_sgemm_checked(l->name, "backward dx = W dcol", CblasNoTrans, CblasNoTrans, p->cin, mP, K, 1.0f, w,
                                 K, ws.col, mP, 0.0f, ws.cm, mP);
                mg_cm_to_nchw(dx_c, ws.cm, m, p->cin, (size_t)P, NULL);
            }
        }
    }
    if (sn && param_grads)
        mg_spectral_backward(l, &p->sn);
}

static void convt_init(mg_layer *l, const mg_init *init, mg_rng *rng)
{
    const convt_impl *p = l->impl;
    const size_t n_weights = (size_t)p->cin * p->cout * p->k * p->k;
    /* PyTorch computes fans from the weight tensor (cin, cout, k, k) as if it were a conv
     * weight: fan_in = size(1) k k = cout k k, fan_out = size(0) k k = cin k k. We follow
     * it so that an initialiser gives the same distribution as in PyTorch. */
    mg_init_weights(l->param, n_weights, p->cout * p->k * p->k, p->cin * p->k * p->k, init, rng);
    if (p->bias)
        memset(l->param + n_weights, 0, sizeof(float) * (size_t)p->cout);
    if (mg_spectral_on(&p->sn))
        mg_spectral_init(l, &p->sn, rng);
}

/* oneDNN's deconvolution takes the output size from the paddings: pad_r = pad - output_pad */
static mg_onednn_op *convt_onednn(const mg_layer *l, int max_batch, bool bf16)
{
    const convt_impl *p = l->impl;
    const mg_onednn_geom g = {.kind = MG_ONEDNN_DECONV, .cin = p->cin, .h = l->in.h, .w = l->in.w, .cout = p->cout,
                              .oh = l->out.h, .ow = l->out.w, .k = p->k, .stride = p->stride, .pad_l = p->pad,
                              .pad_r = p->pad - p->output_pad, .bias = p->bias, .bf16 = bf16};
    return mg_onednn_op_make(l->name, &g, max_batch);
}

static const mg_layer_ops convt_ops = {"conv_transpose2d", convt_forward, convt_backward, convt_init, convt_onednn};

void mg_conv_transpose2d_make(mg_layer *l, mg_shape in, int cout, int kernel, int stride, int pad,
                              int output_pad, bool bias)
{
    const char *hint = "conv_transpose2d output is (h - 1) stride - 2 padding + kernel + output_padding";
    mg_conv_check_params(l->name, hint, cout, kernel, stride, pad);
    MG_CHECK(output_pad >= 0 && output_pad < stride, l->name, hint, "output_padding %d must be in [0, stride %d)",
             output_pad, stride);
    MG_CHECK(in.c >= 1 && in.h >= 1 && in.w >= 1, l->name, hint, "input %dx%dx%d is not a positive image",
             in.c, in.h, in.w);
    /* ho = (h - 1) s - 2p + k + output_pad */
    const long ho = (long)(in.h - 1) * stride - 2L * pad + kernel + output_pad;
    const long wo = (long)(in.w - 1) * stride - 2L * pad + kernel + output_pad;
    MG_CHECK(ho >= 1 && wo >= 1, l->name, hint,
             "input %dx%d with kernel %d, stride %d, padding %d, output_padding %d gives output %ldx%ld, smaller "
             "than 1x1", in.h, in.w, kernel, stride, pad, output_pad, ho, wo);
    MG_CHECK(ho <= 1L << 20 && wo <= 1L << 20, l->name, hint, "output %ldx%ld is too large", ho, wo);
    mg_conv_geom g = mg_conv_geom_make(cout, (int)ho, (int)wo, kernel, stride, pad);
    /* the conv2d that this layer is the adjoint of maps (ho, wo) back to (h, w) since
     * output_pad < stride: floor(((h - 1) s + output_pad) / s) + 1 = h */
    MG_CHECK(g.oh == in.h && g.ow == in.w, l->name, "this is a bug in the geometry",
             "adjoint conv2d maps %ldx%ld to %dx%d, not %dx%d", ho, wo, g.oh, g.ow, in.h, in.w);
    const size_t K = mg_conv_geom_rows(&g), P = mg_conv_geom_cols(&g);
    MG_CHECK(K * P <= (size_t)1 << 30 && (size_t)in.c * P <= (size_t)1 << 30, l->name,
             "a single sample must fit in int-indexed BLAS calls", "layer is too large (K=%zu, P=%zu)", K, P);

    convt_impl *p = mg_alloc(sizeof *p, l->name);
    *p = (convt_impl){.cin = in.c, .cout = cout, .k = kernel, .stride = stride, .pad = pad,
                      .output_pad = output_pad, .bias = bias,
                      .in_place = mg_conv_in_place((size_t)in.c * K, (size_t)in.c * P, P), .geom = g};
    mg_layer_setup(l, &convt_ops, in, (mg_shape){cout, (int)ho, (int)wo}, p);
    l->n_param = (size_t)in.c * K + (bias ? (size_t)cout : 0);
    l->n_work = mg_conv_work_floats(&g, in.c);
    l->macs = (double)in.c * (double)K * (double)P;
}

/* W (cin, cout, k, k) viewed with cout as rows, (cout, cin k k): PyTorch's spectral_norm
 * takes dim=1 for transposed convolutions, so u has one entry per output channel in both
 * conv kinds and a checkpoint's u maps to PyTorch's weight_u one to one. The matrix is the
 * weight's blocks W[c] (cout x k k) side by side, one block per input channel. */
void mg_conv_transpose2d_sn(mg_layer *l, int iters)
{
    MG_CHECK(l->ops == &convt_ops, l->name, "this is a bug in the caller", "mg_conv_transpose2d_sn on a %s layer",
             l->ops ? l->ops->kind : "unmade");
    convt_impl *p = l->impl;
    mg_spectral_setup(l, &p->sn, iters, p->cout, p->cin, p->k * p->k);
}

void mg_conv_transpose2d_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in)
{
    int out = (int)mg_cfg_int_req(spec, "out", 1, 1L << 24);
    int kernel = (int)mg_cfg_int_req(spec, "kernel", 1, 1L << 16);
    int stride = (int)mg_cfg_int(spec, "stride", 1, 1, 1L << 16);
    int pad = (int)mg_cfg_int(spec, "padding", 0, 0, 1L << 16);
    int output_pad = (int)mg_cfg_int(spec, "output_padding", 0, 0, 1L << 16);
    bool bias = mg_cfg_bool(spec, "bias", true);
    int sn_iters = mg_spectral_iters_from_cfg(spec);
    mg_conv_transpose2d_make(l, in, out, kernel, stride, pad, output_pad, bias);
    if (sn_iters)
        mg_conv_transpose2d_sn(l, sn_iters);
}
