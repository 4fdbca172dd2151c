/* The layer interface: a forward/backward pair over plain arrays.
 *
 * Tensors are NCHW float32; a layer sees one per-sample shape (c, h, w) and a batch
 * size n at call time (vectors are (d, 1, 1)). A layer owns no memory of its own for
 * weights: the network carves every layer's parameters, gradients, non-learned state
 * (BatchNorm running statistics) and forward-to-backward cache out of flat buffers and
 * binds pointers into them, so a whole network's gradients are one array.
 *
 * Each kind lives in one src/nn/layers/<kind>.c with its C constructor declared in
 * mg_layers.h and one line in the kind table (src/nn/layer.c). */
#ifndef MG_LAYER_H
#define MG_LAYER_H

#include <stdbool.h>
#include <stddef.h>

#include "mg_cfg.h"
#include "mg_rng.h"

typedef struct { int c, h, w; } mg_shape;

static inline size_t mg_shape_size(mg_shape s) { return (size_t)s.c * s.h * s.w; }

typedef enum { MG_TRAIN, MG_EVAL } mg_mode;

/* How a layer's weights start. Biases start at zero; BatchNorm's scale starts at
 * N(1, bn_std) (DCGAN uses 0.02) or 1 when bn_std is 0. */
typedef enum { MG_INIT_NORMAL, MG_INIT_XAVIER_UNIFORM, MG_INIT_XAVIER_NORMAL, MG_INIT_KAIMING_UNIFORM,
               MG_INIT_KAIMING_NORMAL } mg_init_kind;
typedef struct {
    mg_init_kind kind;
    float std;     /* MG_INIT_NORMAL */
    float gain;    /* Xavier: gain; Kaiming: negative slope a of the following LeakyReLU */
    float bn_std;
} mg_init;

/* Sums buf[0..n) over every replica, in place (sync BatchNorm); set by the trainer. The
 * sums are in double so that they are exact, and the same on any number of ranks. */
typedef void (*mg_reduce_fn)(double *buf, int n, void *ctx);

typedef struct mg_layer mg_layer;
struct mg_onednn_op; /* mg_onednn.h */

typedef struct {
    const char *kind;
    /* y = f(x); x is (n, in), y is (n, out). May write l->cache. */
    void (*forward)(mg_layer *l, const float *x, float *y, int n, mg_mode mode);
    /* Given dL/dy, ADDS dL/dw into l->grad when param_grads is true, and writes dL/dx
     * into dx when dx is not NULL. x and y are the forward pass's input and output. */
    void (*backward)(mg_layer *l, const float *x, const float *y, const float *dy, float *dx, int n,
                     bool param_grads);
    /* Fills l->param (and l->state) from init; NULL for layers without parameters. */
    void (*init)(mg_layer *l, const mg_init *init, mg_rng *rng);
    /* Makes the layer's oneDNN primitives for batches up to max_batch (mg_onednn.h), with
     * bfloat16 inputs to the products when bf16, or returns NULL when oneDNN cannot run this
     * shape; NULL for kinds without a oneDNN path. */
    struct mg_onednn_op *(*onednn_make)(const mg_layer *l, int max_batch, bool bf16);
} mg_layer_ops;

struct mg_layer {
    const mg_layer_ops *ops;
    char name[64];          /* "D.3.conv2d": network, index, kind; or a user-given name */
    mg_shape in, out;
    size_t n_param;         /* floats in param and grad */
    size_t n_state;         /* floats of non-learned state */
    size_t n_cache;         /* floats kept from forward to backward, per sample */
    size_t n_cache_fixed;   /* ... and independent of the batch */
    size_t n_work;          /* floats of scratch workspace, per sample */
    double macs;            /* multiply-adds of one forward pass, per sample */
    int batch_multiple;     /* > 1: batches must be multiples of it (mbstd groups); else any */
    float *param, *grad, *state, *cache, *work; /* views bound by the network */
    bool frozen;            /* never receives parameter gradients (transfer learning) */
    bool has_init;          /* init below overrides the network default */
    mg_init init;
    /* Class conditioning: n_classes is the network's `classes` (set by the network before
     * the kind's constructor runs; conditional kinds need it > 0), needs_labels is set by
     * a conditional kind, and labels points at the class of each sample of the current
     * forward pass and its backward (n ints in 0 .. n_classes-1, bound by the network). */
    int n_classes;
    bool needs_labels;
    const int *labels;
    mg_reduce_fn reduce;    /* set for BatchNorm in sync mode */
    void *reduce_ctx;
    void *impl;             /* the kind's own hyper-parameters (owned by the layer) */
    struct mg_onednn_op *onednn; /* set: forward and backward run on oneDNN (owned) */
};

/* Creates a layer of the named kind from its YAML mapping (keys other than kind, name,
 * activation, init, frozen are the kind's own). Errors name the layer and the key. */
void mg_layer_from_cfg(mg_layer *l, const char *kind, mg_cfg_node spec, mg_shape in);
/* True when kind names a layer kind. */
bool mg_layer_kind_exists(const char *kind);
/* Comma-separated list of kinds, for error hints. */
const char *mg_layer_kind_list(void);

/* Helpers for kinds: common setup, and an error naming the layer. */
void mg_layer_setup(mg_layer *l, const mg_layer_ops *ops, mg_shape in, mg_shape out, void *impl);
/* Weight initialisation shared by linear and convolution: fan_in/fan_out as the
 * Glorot/He papers define them. */
void mg_init_weights(float *w, size_t n, int fan_in, int fan_out, const mg_init *init, mg_rng *rng);
/* A per-sample shape from a YAML list: [d] (vectors, (d, 1, 1)) or [c, h, w], entries in
 * [1, 2^24]; anything else fails at the list with hint. */
mg_shape mg_shape_from_cfg(mg_cfg_node list, const char *hint);

void mg_layer_destroy(mg_layer *l);

#endif
