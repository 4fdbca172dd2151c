/* The oneDNN backend: how the layers with weights (linear, conv2d, conv_transpose2d) compute
 * when a network runs on oneDNN instead of im2col + OpenBLAS (mg_net_set_backend).
 *
 * An mg_onednn_op is one layer's set of oneDNN primitives: forward, backward to the data
 * and backward to the weights, in fp32 over the network's plain NCHW / row-major buffers
 * (activations, parameters and gradients never leave the flat buffers). Primitives are made
 * for one batch size at a time: for the network's largest batch when the backend is chosen,
 * and for another batch size the first time it is used; each keeps its own scratchpad. The
 * layer owns the op; every oneDNN call is checked and a failure names the layer and the call.
 *
 * Weight layouts are the layers' own (PyTorch's): conv2d (cout, cin, k, k), conv_transpose2d
 * (cin, cout, k, k), linear (out, in); the bias (cout) separately. */
#ifndef MG_ONEDNN_H
#define MG_ONEDNN_H

#include <stdbool.h>

/* How the layers with weights compute; the config names are mg_backend_names. */
typedef enum { MG_BACKEND_BLAS, MG_BACKEND_ONEDNN, MG_BACKEND_COUNT } mg_backend;
extern const char *const mg_backend_names[MG_BACKEND_COUNT];

/* The inputs of the products: fp32, or bfloat16 (bf16: the products' inputs are rounded to
 * bfloat16 on the way in, sums and outputs stay fp32, and so do the parameters, gradients
 * and everything outside the products); the config names are mg_precision_names. */
typedef enum { MG_PRECISION_FP32, MG_PRECISION_BF16, MG_PRECISION_COUNT } mg_precision;
extern const char *const mg_precision_names[MG_PRECISION_COUNT];

/* True when oneDNN may use bfloat16 instructions on this CPU (AVX512_BF16 or AMX; an
 * ONEDNN_MAX_CPU_ISA below those in the environment says no). */
bool mg_onednn_bf16_supported(void);

typedef enum { MG_ONEDNN_CONV, MG_ONEDNN_DECONV, MG_ONEDNN_LINEAR } mg_onednn_kind;

/* One layer's shape. Convolutions: input (cin, h, w), output (cout, oh, ow), square kernel
 * k, stride, zero padding pad_l before and pad_r after each spatial axis (a transposed
 * convolution's output_padding makes pad_r = pad - output_padding). Linear: in = cin h w
 * features to cout; k, stride and the paddings are unused. */
typedef struct {
    mg_onednn_kind kind;
    int cin, h, w, cout, oh, ow, k, stride, pad_l, pad_r;
    bool bias;
    bool bf16;   /* the products' inputs in bfloat16 (needs mg_onednn_bf16_supported) */
} mg_onednn_geom;

typedef struct mg_onednn_op mg_onednn_op;

/* Makes layer's primitives for batches of max_batch. Returns NULL (and the layer keeps its
 * BLAS path) when oneDNN has no implementation for the shape (e.g. a negative pad_r);
 * every other failure is fatal, naming layer. */
mg_onednn_op *mg_onednn_op_make(const char *layer, const mg_onednn_geom *g, int max_batch);
void mg_onednn_op_free(mg_onednn_op *op);

/* y (n, out) = op(x (n, in); w, b); b NULL when the layer has no bias. */
void mg_onednn_forward(mg_onednn_op *op, const float *x, const float *w, const float *b, float *y, int n);
/* dx (n, in) = dL/dx given dy (n, out): written in full. */
void mg_onednn_backward_data(mg_onednn_op *op, const float *dy, const float *w, float *dx, int n);
/* dw += dL/dw and db += dL/db (db NULL when no bias) given x and dy. */
void mg_onednn_backward_weights_add(mg_onednn_op *op, const float *x, const float *dy, float *dw, float *db, int n);

/* True when the op's products take bfloat16 inputs: asked for (g->bf16) and not one of the
 * convolutions with fewer than 16 channels on a side, which stay fp32 (see onednn.c). */
bool mg_onednn_uses_bf16(const mg_onednn_op *op);

/* "oneDNN 2.6.3, CPU ISA avx512_core_bf16, bf16: yes" into buf (for `mpigan info`). */
void mg_onednn_describe_library(char *buf, int size);

/* The names of the implementations oneDNN chose for the op's forward, backward-data and
 * backward-weights primitives at batch n, e.g. "brg:avx512_core"; the last is prefixed
 * "as forward " where the weight gradient runs as a forward convolution (onednn.c). */
void mg_onednn_describe(mg_onednn_op *op, int n, char *buf, int size);

#endif
