/* A network: a sequence of layers over flat buffers.
 *
 * Memory (all owned by the network, allocated once by mg_net_finish for max_batch):
 *   param, grad   every layer's weights and their gradients, one array each, same layout;
 *   state         non-learned state (BatchNorm running mean and variance);
 *   act[i]        output of layer i for the last forward pass (backward needs them);
 *   cache         what layers keep between forward and backward;
 *   work          one scratch workspace (im2col) sized for the hungriest layer on the BLAS
 *                 path (mg_net_set_backend resizes it);
 *   delta[2]      ping-pong buffers for gradients flowing backward.
 * So zeroing gradients is one memset, and a data-parallel step reduces one array. */
#ifndef MG_NET_H
#define MG_NET_H

#include "mg_cfg.h"
#include <stdio.h>

#include "mg_layer.h"
#include "mg_onednn.h"

typedef struct mg_net mg_net;

/* Called by mg_net_forward before layer i runs, with that layer's input x (n samples).
 * Diagnostics and tests use it to see every pass's activations (which the network keeps
 * only for the last pass). */
typedef void (*mg_forward_observer)(void *ctx, const mg_net *net, int layer, const float *x, int n);

struct mg_net {
    char name[16];
    mg_shape in, out;
    int n_layers, cap_layers;
    mg_layer *layers;
    int max_batch;
    size_t n_param, n_state;
    float *param, *grad, *state;
    float **act;           /* act[i]: output of layer i, (max_batch, layers[i].out) */
    float *act_mem, *cache, *work, *delta[2];
    const float *input;    /* input of the last forward pass (not owned) */
    int last_batch;
    mg_init default_init;
    /* Class conditioning. n_classes: the config's `classes` (mg_net_set_classes), 0 for
     * none; conditional: some layer reads labels, so every forward needs them; next_labels:
     * what mg_net_set_labels gave (not owned); labels: the last forward's copy (max_batch,
     * owned), which its backward and the layers read. */
    int n_classes;
    bool conditional;
    const int *next_labels;
    int *labels;
    mg_backend backend;    /* how the layers with weights compute (mg_net_set_backend) */
    mg_precision precision; /* ... and in what precision */
    mg_forward_observer observe; /* NULL unless a test or diagnostic set one */
    void *observe_ctx;
};

/* Starts an empty network taking per-sample input shape in. */
void mg_net_begin(mg_net *net, const char *name, mg_shape in);
/* Appends a layer slot; fill it with one of the mg_*_make constructors, whose input
 * shape must be mg_net_tail_shape(net). Returns the slot, named "<net>.<index>.<kind>". */
mg_layer *mg_net_push(mg_net *net);
mg_shape mg_net_tail_shape(const mg_net *net);
/* Sets the number of classes the network's conditional layers know (before pushing them;
 * the YAML key `classes`). */
void mg_net_set_classes(mg_net *net, int n_classes);
/* Allocates and binds all buffers for batches up to max_batch. */
void mg_net_finish(mg_net *net, int max_batch);

/* Makes the layers with weights compute through backend, in precision, from now on (after
 * mg_net_finish; BLAS in fp32 is the default). With MG_BACKEND_ONEDNN, each such layer's
 * primitives are made here for max_batch; a layer oneDNN cannot run (mg_onednn_op_make)
 * keeps the BLAS path. fp32 results agree with BLAS's within fp32 rounding, not bitwise.
 * bf16 needs MG_BACKEND_ONEDNN and a CPU with bfloat16 instructions; either missing is a
 * fatal error saying so (the config names the key; this names the network). */
void mg_net_set_backend(mg_net *net, mg_backend backend, mg_precision precision);
/* Layers that compute on oneDNN (0 under BLAS). */
int mg_net_onednn_layers(const mg_net *net);

/* Builds from a YAML mapping: { input: [c, h, w], init: {...}, layers: [ {kind: ...}, ... ] },
 * and for class-conditional networks classes: K (labels 0..K-1) and optionally
 * condition: {kind: concat, dim: D}: a learned class embedding of D floats concatenated to
 * the input (an embed_concat layer put first).
 * If in.c > 0, the config's input (if given) must equal it. */
void mg_net_from_cfg(mg_net *net, const char *name, mg_cfg_node spec, mg_shape in, int max_batch);
/* The same for a network judging `pack` samples at once (PacGAN): in (and a declared
 * input) is ONE sample's shape, and the network is built for (pack * c, h, w), the pack
 * samples stacked along channels (features for vectors). pack 1 is mg_net_from_cfg. */
void mg_net_from_cfg_packed(mg_net *net, const char *name, mg_cfg_node spec, mg_shape in, int pack, int max_batch);
/* Fails naming the first layer that cannot take batches of n (mbstd: n not a multiple of
 * its group); why says where n comes from, e.g. "train.batch 64 / 2 ranks". */
void mg_net_check_batch(const mg_net *net, int n, const char *why);
/* Parses an initialiser mapping ({kind: normal, std: 0.02, bn_std: 0.02}). */
mg_init mg_init_from_cfg(mg_cfg_node spec, mg_init def);

/* Initialises every layer's parameters (layer-specific init overrides default_init). */
void mg_net_init_params(mg_net *net, mg_rng *rng);

/* The class labels of the next forward passes (n ints in 0 .. n_classes-1 for a pass of n;
 * not owned: each forward copies the first n, so the caller may change them afterwards).
 * Needed before any forward of a conditional network; NULL clears them. */
void mg_net_set_labels(mg_net *net, const int *labels);

/* Forward pass of n samples (n <= max_batch); returns the output (n, out), owned by net. */
const float *mg_net_forward(mg_net *net, const float *x, int n, mg_mode mode);
/* Backward pass of the last forward's batch given dL/dout. Adds parameter gradients when
 * param_grads (frozen layers excepted). Returns dL/dinput (owned by net) when want_dx,
 * else NULL and the first layer skips its input gradient. */
float *mg_net_backward(mg_net *net, const float *dout, bool param_grads, bool want_dx);

/* Called during backward after each layer that has parameters: every gradient from
 * grad[ready_from] to the end of the flat buffer is final (layers run in reverse, and
 * their parameters lie in layer order, so the buffer fills from its end). */
typedef void (*mg_backward_hook)(void *ctx, size_t ready_from);
/* mg_net_backward that reports progress to hook (gradient-communication overlap). */
float *mg_net_backward_hooked(mg_net *net, const float *dout, bool param_grads, bool want_dx, mg_backward_hook hook,
                              void *ctx);

void mg_net_zero_grad(mg_net *net);
/* Makes every BatchNorm layer reduce its statistics with fn (sync BN); NULL: local. */
void mg_net_set_reduce(mg_net *net, mg_reduce_fn fn, void *ctx);
/* Multiply-accumulate count of one forward pass per sample (for GFLOP/s). */
double mg_net_forward_macs(const mg_net *net);
void mg_net_print(const mg_net *net, FILE *f);
void mg_net_free(mg_net *net);

/* `mpigan nets CONFIG.yaml`: builds and prints the networks (src/nn/net_cmd.c).
 * A command as mg_cmd.h defines it. */
int mg_cmd_nets(int argc, char **argv);

#endif
