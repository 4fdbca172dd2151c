/* oneDNN primitives for the layers with weights (see mg_onednn.h).
 *
 * The network's buffers are plain (nchw, oihw / iohw, nc / oi). Convolutions let oneDNN
 * choose its layouts (format "any"): with plain ones it falls back to its own im2col + GEMM,
 * with blocked ones (nChw16c and the like) it runs its direct kernels. Where the chosen
 * layout differs from the plain one, the op holds a buffer in that layout and a reorder
 * primitive that fills it from the caller's buffer before the call (inputs) or copies it
 * back after (outputs). Only convolutions with at least 16 channels on both sides choose
 * (oneDNN blocks channels by 16): with one input or output channel (DCGAN's first D and last
 * G layer) the direct kernels ran 5-60x slower than the plain GEMM path on the DCGAN-28 shapes.
 * Linear layers stay plain: an inner product is one GEMM either way.
 * A primitive is bound to one batch size, so an op keeps a few per-batch entries (the
 * network's largest batch first, then whatever other sizes evaluation or accumulation
 * use); each entry holds its three primitives, its reorders, and memory objects whose data
 * handles are set to the caller's buffers on every call. The buffers in oneDNN's layouts
 * and the scratchpads (user-managed, so that oneDNN allocates nothing while training) are
 * needed only while one primitive runs, so all ops share one arena, sized for the hungriest
 * primitive, as the layers share the network's im2col workspace. oneDNN overwrites weight
 * gradients, so they land in the op's own buffer and are then added into the layer's
 * gradient (backward adds). One CPU engine and one stream serve the whole process.
 * Moves into bf16 nChw16c, from the batch-and-channel-swapped views below, and into the
 * weights layouts the weight gradient below reads run in mg_channel_blocks.h's transposes:
 * oneDNN 2.6's generic reorder kernel is 2.5-5x slower there. fp32 moves between NCHW and
 * nChw16c, which oneDNN has a specialised kernel for (as fast), and all other layout pairs
 * use oneDNN's reorders.
 * In bf16 the primitives read bfloat16 inputs (x, W, dy) and write fp32 (y, dx, dW, db),
 * and the reorders convert; a convolution's weight gradient at batches of 16 or more is a
 * forward convolution (see wgrad_make); convolutions with fewer than 16 channels on a side stay fp32 on
 * the plain GEMM path, since oneDNN's bf16 kernels for them are as slow as its blocked fp32
 * ones (DCGAN-28's 1-channel layers: 10-60x slower than the GEMM path). */
#include "mg_onednn.h"

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <stdio.h>
#include <string.h>

#include "mg_channel_blocks.h"
#include "mg_error.h"
#include "mg_im2col.h"

const char *const mg_backend_names[MG_BACKEND_COUNT] = {"blas", "onednn"};
const char *const mg_precision_names[MG_PRECISION_COUNT] = {"fp32", "bf16"};

bool mg_onednn_bf16_supported(void)
{
    const unsigned isa = (unsigned)dnnl_get_effective_cpu_isa(), bf16 = (unsigned)dnnl_cpu_isa_avx512_core_bf16;
    return (isa & bf16) == bf16;
}

/* Batch sizes an op keeps primitives for; a new size replaces the oldest but the first. */
#define MAX_ENTRIES 4

enum { FWD, BWD_DATA, BWD_WEIGHTS, N_PRIMS };
static const char *const prim_names[N_PRIMS] = {"forward", "backward data", "backward weights"};

/* A move by channel_blocks.c instead of a reorder primitive: between a plain tensor (n, c,
 * hw; strides sn, sc) and nChw16c, or from plain to a weights layout. */
typedef struct {
    enum { BLOCKS_NONE, BLOCKS_CHANNELS, BLOCKS_WEIGHTS } kind;
    bool bf16;
    int n, c;
    size_t hw, sn, sc;
} layout_move;

/* One argument of a primitive: the caller's plain memory, and where the primitive wants
 * another layout, its own buffer in that layout and the reorder between the two. */
typedef struct {
    int arg;                  /* DNNL_ARG_* */
    dnnl_memory_t user;       /* plain; its data handle is the caller's buffer (not owned) */
    dnnl_memory_t inner;      /* the primitive's layout, in the arena; NULL: user's is used */
    size_t bytes;             /* inner's size */
    dnnl_primitive_t reorder; /* user -> inner for inputs, inner -> user for outputs */
    bool output;
    layout_move move;         /* kind BLOCKS_NONE: reorder does the move */
} slot;

#define MAX_SLOTS 4

typedef struct {
    int n;                              /* batch size; 0: unused */
    bool wgrad_as_fwd;                  /* BWD_WEIGHTS is the forward convolution below */
    dnnl_primitive_desc_t pd[N_PRIMS];
    dnnl_primitive_t prim[N_PRIMS];
    size_t scratch_bytes[N_PRIMS];
    dnnl_memory_t scratch_mem[N_PRIMS]; /* in the arena */
    slot slots[N_PRIMS][MAX_SLOTS];
    int n_slots[N_PRIMS];
    dnnl_memory_t src, dst;             /* plain; also diff_src, diff_dst: same descriptors */
    dnnl_memory_t x_t, dy_t;            /* wgrad_as_fwd: x and dy viewed (channels, n, h, w) */
} entry;

struct mg_onednn_op {
    char layer[64];
    mg_onednn_geom g;
    dnnl_memory_t wei, bias, dwei, dbias; /* batch-independent; dwei/dbias on own buffers */
    dnnl_memory_t dwei_t;                 /* dwei viewed as the weight-gradient convolution's output */
    float *dw_buf;                        /* weights then bias, as oneDNN writes them */
    size_t n_w;
    entry e[MAX_ENTRIES];
    int next_victim;
};

static dnnl_engine_t engine;
static dnnl_stream_t stream;
/* The shared arena (see the top): grown, never shrunk, for the process's lifetime. */
static char *arena;
static size_t arena_bytes;

static size_t align64(size_t bytes) { return (bytes + 63) & ~(size_t)63; }

/* Fails naming the layer and the call unless status is dnnl_success. */
static void check(dnnl_status_t status, const char *layer, const char *call)
{
    if (status != dnnl_success)
        MG_FAIL(layer, "oneDNN refused the call; train.backend: blas computes the layer without oneDNN",
                "oneDNN %s failed: %s", call, dnnl_status2str(status));
}

static void ensure_engine(void)
{
    if (engine)
        return;
    check(dnnl_engine_create(&engine, dnnl_cpu, 0), "oneDNN", "dnnl_engine_create (CPU)");
    check(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags), "oneDNN", "dnnl_stream_create");
}

static void md_init(const mg_onednn_op *op, dnnl_memory_desc_t *md, int ndims, const dnnl_dims_t dims,
                    dnnl_data_type_t type, dnnl_format_tag_t tag, const char *what)
{
    char call[96];
    snprintf(call, sizeof call, "dnnl_memory_desc_init_by_tag (%s)", what);
    check(dnnl_memory_desc_init_by_tag(md, ndims, dims, type, tag), op->layer, call);
}

/* The plain descriptors of the op's tensors at batch n. */
typedef struct { dnnl_memory_desc_t src, wei, bias, dst; } descs;

bool mg_onednn_uses_bf16(const mg_onednn_op *op)
{
    return op->g.bf16 && (op->g.kind == MG_ONEDNN_LINEAR || (op->g.cin >= 16 && op->g.cout >= 16));
}

/* The descriptors of the op's tensors at batch n, of data type type; any: in format "any"
 * (oneDNN chooses), else plain. The bias is always plain fp32. */
static descs make_descs(const mg_onednn_op *op, int n, dnnl_data_type_t type, bool any)
{
    const mg_onednn_geom *g = &op->g;
    descs d;
    const dnnl_dims_t bias_dims = {g->cout};
    md_init(op, &d.bias, 1, bias_dims, dnnl_f32, dnnl_a, "bias");
    const bool conv = g->kind != MG_ONEDNN_LINEAR;
    const int nd = conv ? 4 : 2;
    const dnnl_dim_t features = (dnnl_dim_t)g->cin * g->h * g->w;
    const dnnl_dims_t src4 = {n, g->cin, g->h, g->w}, dst4 = {n, g->cout, g->oh, g->ow},
                      wei4 = {g->cout, g->cin, g->k, g->k}, src2 = {n, features}, dst2 = {n, g->cout},
                      wei2 = {g->cout, features};
    /* oneDNN orders weights (out, in, k, k); a transposed convolution stores (in, out, k, k) */
    const dnnl_format_tag_t data = any ? dnnl_format_tag_any : conv ? dnnl_nchw : dnnl_nc,
                            wtag = any ? dnnl_format_tag_any
                                 : conv ? (g->kind == MG_ONEDNN_DECONV ? dnnl_iohw : dnnl_oihw)
                                        : dnnl_oi;
    md_init(op, &d.src, nd, conv ? src4 : src2, type, data, "input");
    md_init(op, &d.dst, nd, conv ? dst4 : dst2, type, data, "output");
    md_init(op, &d.wei, nd, conv ? wei4 : wei2, type, wtag, "weights");
    return d;
}

/* One operation descriptor; in (the products' inputs) and out (fp32 results) give the
 * tensors' descriptors: forward reads in's src and weights and writes out's dst, backward
 * data reads in's dst and weights and writes out's src, backward weights reads in's src and
 * dst and writes out's weights. Returns oneDNN's status. */
typedef union { dnnl_convolution_desc_t conv; dnnl_deconvolution_desc_t deconv; dnnl_inner_product_desc_t ip; } op_desc;

static dnnl_status_t init_desc(const mg_onednn_op *op, int which, const descs *in, const descs *out, op_desc *od)
{
    const mg_onednn_geom *g = &op->g;
    const dnnl_memory_desc_t *bias = g->bias ? &in->bias : NULL;
    descs roles = *in; /* which tensor comes from which set */
    if (which == FWD)
        roles.dst = out->dst;
    else if (which == BWD_DATA)
        roles.src = out->src;
    else
        roles.wei = out->wei;
    const descs *d = &roles;
    const dnnl_dims_t st = {g->stride, g->stride}, pl = {g->pad_l, g->pad_l}, pr = {g->pad_r, g->pad_r};
    switch (g->kind) {
    case MG_ONEDNN_CONV:
        if (which == FWD)
            return dnnl_convolution_forward_desc_init(&od->conv, dnnl_forward_training, dnnl_convolution_direct,
                                                      &d->src, &d->wei, bias, &d->dst, st, pl, pr);
        if (which == BWD_DATA)
            return dnnl_convolution_backward_data_desc_init(&od->conv, dnnl_convolution_direct, &d->src, &d->wei,
                                                            &d->dst, st, pl, pr);
        return dnnl_convolution_backward_weights_desc_init(&od->conv, dnnl_convolution_direct, &d->src, &d->wei,
                                                           bias, &d->dst, st, pl, pr);
    case MG_ONEDNN_DECONV:
        if (which == FWD)
            return dnnl_deconvolution_forward_desc_init(&od->deconv, dnnl_forward_training,
                                                        dnnl_deconvolution_direct, &d->src, &d->wei, bias, &d->dst,
                                                        st, pl, pr);
        if (which == BWD_DATA)
            return dnnl_deconvolution_backward_data_desc_init(&od->deconv, dnnl_deconvolution_direct, &d->src,
                                                              &d->wei, &d->dst, st, pl, pr);
        return dnnl_deconvolution_backward_weights_desc_init(&od->deconv, dnnl_deconvolution_direct, &d->src,
                                                             &d->wei, bias, &d->dst, st, pl, pr);
    case MG_ONEDNN_LINEAR:
        if (which == FWD)
            return dnnl_inner_product_forward_desc_init(&od->ip, dnnl_forward_training, &d->src, &d->wei, bias,
                                                        &d->dst);
        if (which == BWD_DATA)
            return dnnl_inner_product_backward_data_desc_init(&od->ip, &d->src, &d->wei, &d->dst);
        return dnnl_inner_product_backward_weights_desc_init(&od->ip, &d->src, &d->wei, bias, &d->dst);
    }
    return dnnl_invalid_arguments;
}

/* ---- A convolution's weight gradient as a forward convolution ----
 * oneDNN 2.6's backward-weights kernels run at about half the rate of its forward ones on
 * DCGAN's shapes in bf16, and its GEMM path for layers with fewer than 16 channels on a
 * side is slower still. The weight gradient is itself a convolution: for conv2d
 *   dW[o][c][ki][kj] = sum_{s,i,j} dy[s][o][i][j] x[s][c][i stride - pad + ki][j stride - pad + kj],
 * a forward convolution of x viewed as (c, n, h, w) (the batch as channels, the input
 * channels as the batch) with dy viewed as (o, n, oh, ow) for its weights, taps dilated by
 * the stride, giving (c, o, k, k); for conv_transpose2d the roles of x and dy swap. The
 * views are strided descriptors over the plain buffers, so the reorders into bfloat16 that
 * the backward primitive needed anyway do the transposing. The products and their fp32 sums
 * are the same as the backward primitive's; only their order differs. */

/* (a, n, h, w) over an NCHW buffer of (n, a, h, w): the batch and channel axes swapped. */
static void md_swapped(const mg_onednn_op *op, dnnl_memory_desc_t *md, int n, int a, int h, int w, const char *what)
{
    const dnnl_dims_t dims = {a, n, h, w}, strides = {(dnnl_dim_t)h * w, (dnnl_dim_t)a * h * w, w, 1};
    char call[96];
    snprintf(call, sizeof call, "dnnl_memory_desc_init_by_strides (%s)", what);
    check(dnnl_memory_desc_init_by_strides(md, 4, dims, dnnl_f32, strides), op->layer, call);
}

/* The weight-gradient convolution's output (a, b, k, k) over the layer's weight gradient,
 * stored (b, a, k, k). */
static void md_wgrad_out(const mg_onednn_op *op, dnnl_memory_desc_t *md, int a, int b)
{
    const dnnl_dim_t k = op->g.k;
    const dnnl_dims_t dims = {a, b, k, k}, strides = {k * k, (dnnl_dim_t)a * k * k, k, 1};
    check(dnnl_memory_desc_init_by_strides(md, 4, dims, dnnl_f32, strides), op->layer,
          "dnnl_memory_desc_init_by_strides (weight gradient view)");
}

/* Makes e's BWD_WEIGHTS as the weight-gradient convolution at batch n, with its views of
 * x and dy. Returns false, leaving e's BWD_WEIGHTS unset, when the geometry needs negative
 * padding (the layer skips input rows) or oneDNN offers only its reference or GEMM kernels
 * (below 16 samples its direct kernels refuse the batch as channels). */
static bool wgrad_make(mg_onednn_op *op, entry *e, int n, const_dnnl_primitive_attr_t attr)
{
    const mg_onednn_geom *g = &op->g;
    const bool conv = g->kind == MG_ONEDNN_CONV;
    /* the convolution's input is the larger map (conv: x; transposed: dy), its weights the
     * smaller; its output, one tap per (ki, kj), needs this much padding after the input */
    const int big_c = conv ? g->cin : g->cout, big_h = conv ? g->h : g->oh, big_w = conv ? g->w : g->ow;
    const int small_c = conv ? g->cout : g->cin, small_h = conv ? g->oh : g->h, small_w = conv ? g->ow : g->w;
    const int pad_r_h = g->k - big_h - g->pad_l + (small_h - 1) * g->stride;
    const int pad_r_w = g->k - big_w - g->pad_l + (small_w - 1) * g->stride;
    if (pad_r_h < 0 || pad_r_w < 0)
        return false;
    dnnl_memory_desc_t src, wei, dst;
    const dnnl_dims_t src_dims = {big_c, n, big_h, big_w}, wei_dims = {small_c, n, small_h, small_w},
                      dst_dims = {big_c, small_c, g->k, g->k};
    const dnnl_data_type_t type = mg_onednn_uses_bf16(op) ? dnnl_bf16 : dnnl_f32;
    md_init(op, &src, 4, src_dims, type, dnnl_nChw16c, "weight-gradient input");
    md_init(op, &wei, 4, wei_dims, type, dnnl_format_tag_any, "weight-gradient weights");
    md_init(op, &dst, 4, dst_dims, dnnl_f32, dnnl_format_tag_any, "weight-gradient output");
    const dnnl_dims_t stride = {1, 1}, dilation = {g->stride - 1, g->stride - 1}, pad_l = {g->pad_l, g->pad_l},
                      pad_r = {pad_r_h, pad_r_w};
    dnnl_convolution_desc_t od;
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_dilated_convolution_forward_desc_init(&od, dnnl_forward_inference, dnnl_convolution_direct, &src, &wei,
                                                   NULL, &dst, stride, dilation, pad_l, pad_r) != dnnl_success ||
        dnnl_primitive_desc_create(&pd, &od, attr, engine, NULL) != dnnl_success)
        return false;
    const char *impl = NULL;
    check(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl), op->layer,
          "dnnl_primitive_desc_query (implementation)");
    if (!impl || strstr(impl, "ref") || strstr(impl, "gemm")) {
        check(dnnl_primitive_desc_destroy(pd), op->layer, "dnnl_primitive_desc_destroy");
        return false;
    }
    e->pd[BWD_WEIGHTS] = pd;
    dnnl_memory_desc_t x_t, dy_t;
    md_swapped(op, &x_t, n, g->cin, g->h, g->w, "input, batch and channels swapped");
    md_swapped(op, &dy_t, n, g->cout, g->oh, g->ow, "output gradient, batch and channels swapped");
    check(dnnl_memory_create(&e->x_t, &x_t, engine, DNNL_MEMORY_NONE), op->layer, "dnnl_memory_create (input view)");
    check(dnnl_memory_create(&e->dy_t, &dy_t, engine, DNNL_MEMORY_NONE), op->layer,
          "dnnl_memory_create (output gradient view)");
    e->wgrad_as_fwd = true;
    return true;
}

static void entry_free(mg_onednn_op *op, entry *e)
{
    for (int i = 0; i < N_PRIMS; i++) {
        for (int k = 0; k < e->n_slots[i]; k++) {
            slot *sl = &e->slots[i][k];
            if (sl->reorder)
                check(dnnl_primitive_destroy(sl->reorder), op->layer, "dnnl_primitive_destroy (reorder)");
            if (sl->inner)
                check(dnnl_memory_destroy(sl->inner), op->layer, "dnnl_memory_destroy (reordered buffer)");
        }
        if (e->prim[i])
            check(dnnl_primitive_destroy(e->prim[i]), op->layer, "dnnl_primitive_destroy");
        if (e->pd[i])
            check(dnnl_primitive_desc_destroy(e->pd[i]), op->layer, "dnnl_primitive_desc_destroy");
        if (e->scratch_mem[i])
            check(dnnl_memory_destroy(e->scratch_mem[i]), op->layer, "dnnl_memory_destroy (scratchpad)");
    }
    if (e->src)
        check(dnnl_memory_destroy(e->src), op->layer, "dnnl_memory_destroy (input)");
    if (e->dst)
        check(dnnl_memory_destroy(e->dst), op->layer, "dnnl_memory_destroy (output)");
    if (e->x_t)
        check(dnnl_memory_destroy(e->x_t), op->layer, "dnnl_memory_destroy (input view)");
    if (e->dy_t)
        check(dnnl_memory_destroy(e->dy_t), op->layer, "dnnl_memory_destroy (output gradient view)");
    memset(e, 0, sizeof *e);
}

/* Sets sl up to move between the plain user memory (4-D fp32, h w planes contiguous, any
 * strides of the first two axes) and the primitive's buffer inner by channel_blocks.c, when
 * inner is nChw16c of the same dims (bf16 for an input; fp32 unless the plain side is NCHW
 * itself) or, for an input, the weights layout of its type (ABcd16b16a, ABcd8b16a2b), and
 * this build has the move; returns false otherwise. */
static bool blocks_move(const mg_onednn_op *op, slot *sl, const dnnl_memory_desc_t *have,
                        const dnnl_memory_desc_t *want)
{
    const bool bf16 = want->data_type == dnnl_bf16;
    if (have->ndims != 4 || have->data_type != dnnl_f32 || have->format_kind != dnnl_blocked || have->offset0 ||
        have->format_desc.blocking.inner_nblks != 0 || (bf16 && sl->output) ||
        (!bf16 && want->data_type != dnnl_f32) || !mg_channel_blocks_available(bf16))
        return false;
    const dnnl_dim_t *dims = have->dims, *strides = have->format_desc.blocking.strides;
    if (strides[3] != 1 || strides[2] != dims[3])
        return false;
    dnnl_memory_desc_t blocked, weights;
    md_init(op, &blocked, 4, dims, want->data_type, dnnl_aBcd16b, "channel blocks");
    md_init(op, &weights, 4, dims, want->data_type, bf16 ? dnnl_ABcd8b16a2b : dnnl_ABcd16b16a, "weight blocks");
    /* fp32 between NCHW itself and nChw16c: oneDNN's reorder kernel for the pair is as fast */
    const bool nchw = strides[1] == dims[2] * dims[3] && strides[0] == dims[1] * strides[1];
    if (dnnl_memory_desc_equal(want, &blocked) && (bf16 || !nchw))
        sl->move.kind = BLOCKS_CHANNELS;
    else if (!sl->output && dnnl_memory_desc_equal(want, &weights))
        sl->move.kind = BLOCKS_WEIGHTS;
    else
        return false;
    sl->move.bf16 = bf16;
    sl->move.n = (int)dims[0];
    sl->move.c = (int)dims[1];
    sl->move.hw = (size_t)(dims[2] * dims[3]);
    sl->move.sn = (size_t)strides[0];
    sl->move.sc = (size_t)strides[1];
    return true;
}

/* Adds the argument arg of primitive `which` to e, over the plain memory user: when the
 * primitive wants another layout, with a buffer in it and the reorder to or from user. */
static void add_slot(mg_onednn_op *op, entry *e, int which, int arg, dnnl_memory_t user, bool output)
{
    MG_CHECK(e->n_slots[which] < MAX_SLOTS, op->layer, "this is a bug in onednn.c", "too many arguments");
    slot *sl = &e->slots[which][e->n_slots[which]++];
    *sl = (slot){.arg = arg, .user = user, .output = output};
    const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(e->pd[which], dnnl_query_exec_arg_md, arg);
    const dnnl_memory_desc_t *have;
    check(dnnl_memory_get_memory_desc(user, &have), op->layer, "dnnl_memory_get_memory_desc");
    MG_CHECK(want, op->layer, NULL, "oneDNN gave no layout for an argument of %s", prim_names[which]);
    if (dnnl_memory_desc_equal(want, have))
        return;
    check(dnnl_memory_create(&sl->inner, want, engine, DNNL_MEMORY_NONE), op->layer,
          "dnnl_memory_create (reordered buffer)");
    sl->bytes = dnnl_memory_desc_get_size(want);
    if (blocks_move(op, sl, have, want))
        return;
    dnnl_primitive_desc_t rpd;
    check(dnnl_reorder_primitive_desc_create(&rpd, output ? want : have, engine, output ? have : want, engine, NULL),
          op->layer, "dnnl_reorder_primitive_desc_create");
    check(dnnl_primitive_create(&sl->reorder, rpd), op->layer, "dnnl_primitive_create (reorder)");
    check(dnnl_primitive_desc_destroy(rpd), op->layer, "dnnl_primitive_desc_destroy (reorder)");
}

/* Makes e's primitives for batch n. Returns false, leaving e empty, when oneDNN has no
 * implementation for the shape and quiet is set; fails otherwise. */
static bool entry_make(mg_onednn_op *op, entry *e, int n, bool quiet)
{
    memset(e, 0, sizeof *e);
    const descs plain = make_descs(op, n, dnnl_f32, false);
    const bool bf16 = mg_onednn_uses_bf16(op);
    const bool blocked = bf16 || (op->g.kind != MG_ONEDNN_LINEAR && op->g.cin >= 16 && op->g.cout >= 16);
    const descs d = make_descs(op, n, dnnl_f32, blocked);
    const descs in = bf16 ? make_descs(op, n, dnnl_bf16, true) : d;
    dnnl_primitive_attr_t attr;
    check(dnnl_primitive_attr_create(&attr), op->layer, "dnnl_primitive_attr_create");
    check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), op->layer,
          "dnnl_primitive_attr_set_scratchpad_mode");
    /* where oneDNN's own backward-weights kernels are the slow ones (see wgrad_make) */
    const bool try_wgrad = op->g.kind != MG_ONEDNN_LINEAR && (bf16 || !blocked);
    for (int i = 0; i < N_PRIMS; i++) {
        char call[96];
        op_desc od;
        dnnl_status_t st = dnnl_success;
        if (!(i == BWD_WEIGHTS && try_wgrad && wgrad_make(op, e, n, attr))) {
            st = init_desc(op, i, &in, &d, &od);
            if (st == dnnl_success)
                st = dnnl_primitive_desc_create(&e->pd[i], &od, attr, engine, i == FWD ? NULL : e->pd[FWD]);
        }
        if (st != dnnl_success && quiet) {
            check(dnnl_primitive_attr_destroy(attr), op->layer, "dnnl_primitive_attr_destroy");
            entry_free(op, e);
            return false;
        }
        snprintf(call, sizeof call, "primitive descriptor (%s, batch %d)", prim_names[i], n);
        check(st, op->layer, call);
        snprintf(call, sizeof call, "dnnl_primitive_create (%s, batch %d)", prim_names[i], n);
        check(dnnl_primitive_create(&e->prim[i], e->pd[i]), op->layer, call);
        const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(e->pd[i], dnnl_query_scratchpad_md, 0);
        MG_CHECK(smd, op->layer, NULL, "oneDNN gave no scratchpad descriptor (%s)", prim_names[i]);
        e->scratch_bytes[i] = dnnl_memory_desc_get_size(smd);
        check(dnnl_memory_create(&e->scratch_mem[i], smd, engine, DNNL_MEMORY_NONE), op->layer,
              "dnnl_memory_create (scratchpad)");
    }
    check(dnnl_primitive_attr_destroy(attr), op->layer, "dnnl_primitive_attr_destroy");
    check(dnnl_memory_create(&e->src, &plain.src, engine, DNNL_MEMORY_NONE), op->layer, "dnnl_memory_create (input)");
    check(dnnl_memory_create(&e->dst, &plain.dst, engine, DNNL_MEMORY_NONE), op->layer,
          "dnnl_memory_create (output)");
    add_slot(op, e, FWD, DNNL_ARG_SRC, e->src, false);
    add_slot(op, e, FWD, DNNL_ARG_WEIGHTS, op->wei, false);
    add_slot(op, e, FWD, DNNL_ARG_DST, e->dst, true);
    add_slot(op, e, BWD_DATA, DNNL_ARG_DIFF_DST, e->dst, false);
    add_slot(op, e, BWD_DATA, DNNL_ARG_WEIGHTS, op->wei, false);
    add_slot(op, e, BWD_DATA, DNNL_ARG_DIFF_SRC, e->src, true);
    if (e->wgrad_as_fwd) {
        const bool conv = op->g.kind == MG_ONEDNN_CONV;
        add_slot(op, e, BWD_WEIGHTS, DNNL_ARG_SRC, conv ? e->x_t : e->dy_t, false);
        add_slot(op, e, BWD_WEIGHTS, DNNL_ARG_WEIGHTS, conv ? e->dy_t : e->x_t, false);
        add_slot(op, e, BWD_WEIGHTS, DNNL_ARG_DST, op->dwei_t, true);
    } else {
        add_slot(op, e, BWD_WEIGHTS, DNNL_ARG_SRC, e->src, false);
        add_slot(op, e, BWD_WEIGHTS, DNNL_ARG_DIFF_DST, e->dst, false);
        add_slot(op, e, BWD_WEIGHTS, DNNL_ARG_DIFF_WEIGHTS, op->dwei, true);
    }
    if (op->g.bias)
        add_slot(op, e, FWD, DNNL_ARG_BIAS, op->bias, false);
    if (op->g.bias && !e->wgrad_as_fwd)
        add_slot(op, e, BWD_WEIGHTS, DNNL_ARG_DIFF_BIAS, op->dbias, true);
    for (int i = 0; i < N_PRIMS; i++) { /* the arena holds any one primitive's buffers */
        size_t need = align64(e->scratch_bytes[i]);
        for (int k = 0; k < e->n_slots[i]; k++)
            need += align64(e->slots[i][k].bytes);
        if (need > arena_bytes) {
            mg_free(arena);
            arena = mg_alloc(need, "oneDNN arena (reordered buffers, scratchpads)");
            arena_bytes = need;
        }
    }
    e->n = n;
    return true;
}

/* The entry for batch n, made on first use. */
static entry *entry_for(mg_onednn_op *op, int n)
{
    for (int i = 0; i < MAX_ENTRIES; i++)
        if (op->e[i].n == n)
            return &op->e[i];
    entry *e = NULL;
    for (int i = 0; i < MAX_ENTRIES && !e; i++)
        if (!op->e[i].n)
            e = &op->e[i];
    if (!e) { /* the largest batch (entry 0) stays; the others take turns */
        e = &op->e[1 + op->next_victim];
        op->next_victim = (op->next_victim + 1) % (MAX_ENTRIES - 1);
        entry_free(op, e);
    }
    entry_make(op, e, n, false);
    return e;
}

mg_onednn_op *mg_onednn_op_make(const char *layer, const mg_onednn_geom *g, int max_batch)
{
    MG_CHECK(max_batch > 0, layer, NULL, "batch size %d must be positive", max_batch);
    if (g->kind != MG_ONEDNN_LINEAR && (g->pad_r < 0 || g->pad_l < 0))
        return NULL; /* output_padding beyond the padding: oneDNN takes no negative padding */
    ensure_engine();
    mg_onednn_op *op = mg_alloc(sizeof *op, layer);
    snprintf(op->layer, sizeof op->layer, "%s", layer);
    op->g = *g;
    MG_CHECK(!g->bf16 || mg_onednn_bf16_supported(), layer,
             "set train.precision: fp32 (bf16 needs AVX512_BF16 or AMX: Intel Cooper Lake or Sapphire Rapids and "
             "later, AMD Zen 4 and later)",
             "precision bf16: this CPU has no bfloat16 instructions oneDNN can use");
    const descs d = make_descs(op, max_batch, dnnl_f32, false);
    op->n_w = g->kind == MG_ONEDNN_LINEAR ? (size_t)g->cout * g->cin * g->h * g->w
                                          : (size_t)g->cout * g->cin * g->k * g->k;
    op->dw_buf = mg_alloc_floats(op->n_w + (size_t)g->cout, "oneDNN weight gradients");
    check(dnnl_memory_create(&op->wei, &d.wei, engine, DNNL_MEMORY_NONE), layer, "dnnl_memory_create (weights)");
    check(dnnl_memory_create(&op->dwei, &d.wei, engine, op->dw_buf), layer,
          "dnnl_memory_create (weight gradients)");
    if (g->kind != MG_ONEDNN_LINEAR) {
        dnnl_memory_desc_t view;
        const bool conv = g->kind == MG_ONEDNN_CONV;
        md_wgrad_out(op, &view, conv ? g->cin : g->cout, conv ? g->cout : g->cin);
        check(dnnl_memory_create(&op->dwei_t, &view, engine, op->dw_buf), layer,
              "dnnl_memory_create (weight gradient view)");
    }
    if (g->bias) {
        check(dnnl_memory_create(&op->bias, &d.bias, engine, DNNL_MEMORY_NONE), layer, "dnnl_memory_create (bias)");
        check(dnnl_memory_create(&op->dbias, &d.bias, engine, op->dw_buf + op->n_w), layer,
              "dnnl_memory_create (bias gradient)");
    }
    if (!entry_make(op, &op->e[0], max_batch, true)) {
        mg_onednn_op_free(op);
        return NULL;
    }
    return op;
}

void mg_onednn_op_free(mg_onednn_op *op)
{
    if (!op)
        return;
    for (int i = 0; i < MAX_ENTRIES; i++)
        if (op->e[i].n)
            entry_free(op, &op->e[i]);
    dnnl_memory_t mems[] = {op->wei, op->bias, op->dwei, op->dbias, op->dwei_t};
    for (int i = 0; i < 5; i++)
        if (mems[i])
            check(dnnl_memory_destroy(mems[i]), op->layer, "dnnl_memory_destroy");
    mg_free(op->dw_buf);
    mg_free(op);
}

/* oneDNN only reads through const pointers here; its API takes void *. */
static void bind(const mg_onednn_op *op, dnnl_memory_t m, const float *p, const char *what)
{
    char call[96];
    snprintf(call, sizeof call, "dnnl_memory_set_data_handle (%s)", what);
    check(dnnl_memory_set_data_handle(m, (void *)p), op->layer, call);
}

static void *data_of(const mg_onednn_op *op, dnnl_memory_t m)
{
    void *p;
    check(dnnl_memory_get_data_handle(m, &p), op->layer, "dnnl_memory_get_data_handle");
    return p;
}

/* user -> inner for an input, inner -> user for an output */
static void reorder(const mg_onednn_op *op, const slot *sl)
{
    const layout_move *m = &sl->move;
    if (m->kind == BLOCKS_WEIGHTS)
        mg_channel_blocks_pack_weights(data_of(op, sl->inner), m->bf16, data_of(op, sl->user), m->n, m->c, m->hw,
                                       m->sn, m->sc);
    else if (m->kind == BLOCKS_CHANNELS && sl->output)
        mg_channel_blocks_unpack(data_of(op, sl->user), m->sn, m->sc, data_of(op, sl->inner), m->n, m->c, m->hw);
    else if (m->kind == BLOCKS_CHANNELS)
        mg_channel_blocks_pack(data_of(op, sl->inner), m->bf16, data_of(op, sl->user), m->n, m->c, m->hw, m->sn,
                               m->sc);
    if (m->kind != BLOCKS_NONE)
        return;
    const dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, sl->output ? sl->inner : sl->user},
                                     {DNNL_ARG_TO, sl->output ? sl->user : sl->inner}};
    check(dnnl_primitive_execute(sl->reorder, stream, 2, args), op->layer, "dnnl_primitive_execute (reorder)");
}

/* Runs primitive `which` of e on the memories its slots hold (handles already bound),
 * reordering inputs before and outputs after where the layouts differ. */
static void run(const mg_onednn_op *op, entry *e, int which)
{
    size_t at = 0; /* the primitive's buffers in the arena */
    for (int k = 0; k < e->n_slots[which]; k++)
        if (e->slots[which][k].inner) {
            check(dnnl_memory_set_data_handle(e->slots[which][k].inner, arena + at), op->layer,
                  "dnnl_memory_set_data_handle (reordered buffer)");
            at += align64(e->slots[which][k].bytes);
        }
    check(dnnl_memory_set_data_handle(e->scratch_mem[which], arena + at), op->layer,
          "dnnl_memory_set_data_handle (scratchpad)");
    dnnl_exec_arg_t args[MAX_SLOTS + 1];
    int nargs = 0;
    for (int k = 0; k < e->n_slots[which]; k++) {
        const slot *sl = &e->slots[which][k];
        if (sl->inner && !sl->output)
            reorder(op, sl);
        args[nargs++] = (dnnl_exec_arg_t){sl->arg, sl->inner ? sl->inner : sl->user};
    }
    args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, e->scratch_mem[which]};
    char call[96];
    snprintf(call, sizeof call, "dnnl_primitive_execute (%s, batch %d)", prim_names[which], e->n);
    check(dnnl_primitive_execute(e->prim[which], stream, nargs, args), op->layer, call);
    for (int k = 0; k < e->n_slots[which]; k++)
        if (e->slots[which][k].inner && e->slots[which][k].output)
            reorder(op, &e->slots[which][k]);
    snprintf(call, sizeof call, "dnnl_stream_wait (%s)", prim_names[which]);
    check(dnnl_stream_wait(stream), op->layer, call);
}

void mg_onednn_forward(mg_onednn_op *op, const float *x, const float *w, const float *b, float *y, int n)
{
    entry *e = entry_for(op, n);
    bind(op, e->src, x, "input");
    bind(op, op->wei, w, "weights");
    bind(op, e->dst, y, "output");
    if (op->g.bias) {
        MG_CHECK(b, op->layer, "this is a bug in the layer", "the layer has a bias but passed none");
        bind(op, op->bias, b, "bias");
    }
    run(op, e, FWD);
}

void mg_onednn_backward_data(mg_onednn_op *op, const float *dy, const float *w, float *dx, int n)
{
    entry *e = entry_for(op, n);
    bind(op, e->dst, dy, "output gradient");
    bind(op, op->wei, w, "weights");
    bind(op, e->src, dx, "input gradient");
    run(op, e, BWD_DATA);
}

void mg_onednn_backward_weights_add(mg_onednn_op *op, const float *x, const float *dy, float *dw, float *db, int n)
{
    entry *e = entry_for(op, n);
    bind(op, e->wgrad_as_fwd ? e->x_t : e->src, x, "input");
    bind(op, e->wgrad_as_fwd ? e->dy_t : e->dst, dy, "output gradient");
    run(op, e, BWD_WEIGHTS);
    for (size_t i = 0; i < op->n_w; i++)
        dw[i] += op->dw_buf[i];
    if (op->g.bias && db && e->wgrad_as_fwd)
        mg_channel_sums_add(db, dy, n, op->g.cout, (size_t)op->g.oh * op->g.ow);
    else if (op->g.bias && db)
        for (int i = 0; i < op->g.cout; i++)
            db[i] += op->dw_buf[op->n_w + (size_t)i];
}

void mg_onednn_describe_library(char *buf, int size)
{
    const dnnl_version_t *v = dnnl_version();
    snprintf(buf, (size_t)size, "oneDNN %d.%d.%d, CPU ISA %s, bf16: %s", v->major, v->minor, v->patch,
             dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa()), mg_onednn_bf16_supported() ? "yes" : "no");
}

void mg_onednn_describe(mg_onednn_op *op, int n, char *buf, int size)
{
    entry *e = entry_for(op, n);
    const char *name[N_PRIMS];
    for (int i = 0; i < N_PRIMS; i++)
        check(dnnl_primitive_desc_query(e->pd[i], dnnl_query_impl_info_str, 0, &name[i]), op->layer,
              "dnnl_primitive_desc_query (implementation)");
    snprintf(buf, (size_t)size, "%s / %s / %s%s", name[0], name[1], e->wgrad_as_fwd ? "as forward " : "", name[2]);
}
