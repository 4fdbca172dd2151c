/* C constructors of every layer kind (the YAML path calls these too).
 * Each fills l for input shape in and fails through mg_error naming l->name. */
#ifndef MG_LAYERS_H
#define MG_LAYERS_H

#include "mg_layer.h"

/* (n, in) -> (n, out): y = W x + b, W is out x in (row-major, as PyTorch). */
void mg_linear_make(mg_layer *l, mg_shape in, int out, bool bias);

/* Maxout, (n, in) -> (n, out): y_o = max_k (W x + b)_{o * pieces + k}, k < pieces; W is
 * (out * pieces) x in. pieces >= 2. */
void mg_maxout_make(mg_layer *l, mg_shape in, int out, int pieces, bool bias);

/* (n, cin, h, w) -> (n, cout, ho, wo), ho = (h + 2p - k) / s + 1. W is cout x cin x k x k. */
void mg_conv2d_make(mg_layer *l, mg_shape in, int cout, int kernel, int stride, int pad, bool bias);

/* The adjoint of conv2d: ho = (h - 1) s - 2p + k (+ output_padding). W is cin x cout x k x k. */
void mg_conv_transpose2d_make(mg_layer *l, mg_shape in, int cout, int kernel, int stride, int pad,
                              int output_pad, bool bias);

/* Spectral normalisation (mg_spectral.h) of a layer just made by the constructor of its
 * kind, before mg_net_finish: the layer then computes with W / sigma(W), sigma from iters
 * >= 1 power iterations per training forward on W as a (outputs, rest) matrix (for
 * conv_transpose2d: (cout, cin k k), PyTorch's dim=1). Adds u, v to the layer's state. */
void mg_linear_sn(mg_layer *l, int iters);
void mg_conv2d_sn(mg_layer *l, int iters);
void mg_conv_transpose2d_sn(mg_layer *l, int iters);

/* Per-channel batch normalisation: 1-d over (n) for vectors, 2-d over (n, h, w).
 * momentum as PyTorch: running = (1 - momentum) running + momentum batch. */
void mg_batchnorm_make(mg_layer *l, mg_shape in, float momentum, float eps);
/* Conditional BatchNorm: gamma and beta per class, (K, C) each (K = l->n_classes, the
 * network's classes), looked up by each sample's label; statistics as mg_batchnorm_make. */
void mg_batchnorm_make_conditional(mg_layer *l, mg_shape in, float momentum, float eps);

/* Class conditioning (the labels are the network's, mg_net_set_labels; K = l->n_classes):
 * (n, c, h, w) -> (n, c + dim, h, w): a learned class embedding (K, dim), each value spread
 * over the positions, after the input's channels (features for vectors). */
void mg_embed_concat_make(mg_layer *l, mg_shape in, int dim);
/* (n, c, h, w) -> (n, c + K, h, w): the one-hot class map after the input's channels. */
void mg_onehot_concat_make(mg_layer *l, mg_shape in);
/* The projection discriminator's head, (n, F) (any shape, F values) -> (n, 1):
 * out = w . h + b + E[y] . h; param w (F), b (1), E (K, F). */
void mg_projection_make(mg_layer *l, mg_shape in);
/* Spectral normalisation of the projection head's class embedding E, viewed as (K, F)
 * (mg_spectral.h; w and b stay as they are): after mg_projection_make, before
 * mg_net_finish. */
void mg_projection_sn(mg_layer *l, int iters);

void mg_relu_make(mg_layer *l, mg_shape in);
void mg_leaky_relu_make(mg_layer *l, mg_shape in, float slope);
void mg_tanh_make(mg_layer *l, mg_shape in);
void mg_sigmoid_make(mg_layer *l, mg_shape in);

/* Reinterprets the per-sample shape; size must match. flatten is reshape to (c*h*w). */
void mg_reshape_make(mg_layer *l, mg_shape in, mg_shape out);
void mg_flatten_make(mg_layer *l, mg_shape in);

/* Minibatch standard deviation (ProGAN), (n, c, h, w) -> (n, c+1, h, w): appends one
 * channel (one feature for vectors) holding, for each group of `group` consecutive samples
 * of the batch, the mean over features of sqrt(group variance + eps). group 0 takes the
 * whole batch as one group; otherwise batches must be multiples of group. */
void mg_mbstd_make(mg_layer *l, mg_shape in, int group, float eps);

#endif
