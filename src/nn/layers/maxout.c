/* Maxout (Goodfellow et al. 2013): a linear map to out * pieces values, then the max over
 * each group of pieces. The parameters are one block laid out as a linear layer of
 * out * pieces outputs (W (out * pieces, in) row-major, then the bias), unit o's pieces
 * being rows o * pieces .. o * pieces + pieces - 1, so a maxout checkpoint reads like
 * PyTorch's Linear(in, out * pieces) followed by a max over view(n, out, pieces).
 * Forward keeps the winning piece of every output in the cache; backward scatters dy to
 * those rows and reuses the linear layer's two sgemms. The pre-max values live only in
 * the shared workspace. */
#include <string.h>

#include "mg_error.h"
#include "mg_blas.h"
#include "mg_layers.h"

typedef struct { int in, out, pieces; bool bias; } maxout_impl;

/* x (n, in) -> z (n, out * pieces) in work -> y (n, out); cache (n, out) holds the
 * arg-max piece (a small integer, exact as a float). Ties go to the first piece. */
static void maxout_forward(mg_layer *l, const float *x, float *y, int n, mg_mode mode)
{
    (void)mode;
    const maxout_impl *p = l->impl;
    const int rows = p->out * p->pieces;
    const float *w = l->param, *b = l->param + (size_t)rows * p->in;
    float *z = l->work;
    if (p->bias)
        for (int i = 0; i < n; i++)
            memcpy(z + (size_t)i * rows, b, sizeof(float) * (size_t)rows);
    mg_sgemm_checked(l->name, "forward z = x W^T", CblasNoTrans, CblasTrans, n, rows, p->in, 1.0f, x, p->in, w,
                     p->in, p->bias ? 1.0f : 0.0f, z, rows);
    for (size_t u = 0; u < (size_t)n * p->out; u++) {
        const float *zu = z + u * p->pieces;
        int best = 0;
        for (int k = 1; k < p->pieces; k++)
            if (zu[k] > zu[best])
                best = k;
        y[u] = zu[best];
        l->cache[u] = (float)best;
    }
}

/* dz = dy at the arg-max piece, 0 elsewhere; then as linear: dW += dz^T x, db += sum_n dz,
 * dx = dz W. */
static void maxout_backward(mg_layer *l, const float *x, const float *y, const float *dy, float *dx, int n,
                            bool param_grads)
{
    (void)y;
    const maxout_impl *p = l->impl;
    const int rows = p->out * p->pieces;
    float *dz = l->work;
    memset(dz, 0, sizeof(float) * (size_t)n * rows);
    for (size_t u = 0; u < (size_t)n * p->out; u++)
        dz[u * p->pieces + (size_t)l->cache[u]] = dy[u];
    if (param_grads) {
        float *dw = l->grad, *db = l->grad + (size_t)rows * p->in;
        mg_sgemm_checked(l->name, "backward dW += dz^T x", CblasTrans, CblasNoTrans, rows, p->in, n, 1.0f, dz, rows,
                         x, p->in, 1.0f, dw, p->in);
        if (p->bias)
            for (int i = 0; i < n; i++)
                for (int r = 0; r < rows; r++)
                    db[r] += dz[(size_t)i * rows + r];
    }
    if (dx)
        mg_sgemm_checked(l->name, "backward dx = dz W", CblasNoTrans, CblasNoTrans, n, p->in, rows, 1.0f, dz, rows,
                         l->param, p->in, 0.0f, dx, p->in);
}

/* Each piece is a linear unit of fan-in in; fan-out counts every piece (as PyTorch's
 * Linear(in, out * pieces) would). */
static void maxout_init(mg_layer *l, const mg_init *init, mg_rng *rng)
{
    const maxout_impl *p = l->impl;
    const int rows = p->out * p->pieces;
    mg_init_weights(l->param, (size_t)rows * p->in, p->in, rows, init, rng);
}

static const mg_layer_ops maxout_ops = {"maxout", maxout_forward, maxout_backward, maxout_init, NULL};

void mg_maxout_make(mg_layer *l, mg_shape in, int out, int pieces, bool bias)
{
    MG_CHECK(out > 0, l->name, NULL, "output size %d must be positive", out);
    MG_CHECK(pieces >= 2, l->name, "use pieces >= 2 (one piece is a linear layer)", "pieces %d must be at least 2",
             pieces);
    maxout_impl *p = mg_alloc(sizeof *p, l->name);
    p->in = (int)mg_shape_size(in);
    p->out = out;
    p->pieces = pieces;
    p->bias = bias;
    mg_layer_setup(l, &maxout_ops, in, (mg_shape){out, 1, 1}, p);
    const size_t rows = (size_t)out * pieces;
    l->n_param = rows * p->in + (bias ? rows : 0);
    l->n_cache = (size_t)out;
    l->n_work = rows;
    l->macs = (double)rows * p->in;
}

/* out (>= 1), pieces (>= 2), bias (default true) */
void mg_maxout_from_cfg(mg_layer *l, mg_cfg_node spec, mg_shape in)
{
    int out = (int)mg_cfg_int_req(spec, "out", 1, 1L << 24);
    int pieces = (int)mg_cfg_int_req(spec, "pieces", 2, 1L << 10);
    bool bias = mg_cfg_bool(spec, "bias", true);
    MG_CHECK((double)out * pieces <= (double)(1L << 24), l->name, "lower out or pieces",
             "out %d x pieces %d = %.0f linear rows is too many", out, pieces, (double)out * pieces);
    mg_maxout_make(l, in, out, pieces, bias);
}
