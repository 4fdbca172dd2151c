/* Gradient penalties on D (see mg_penalty.h): the input gradient by one backward pass,
 * the penalty's parameter gradient as a Hessian-vector product by central differences of
 * D's parameter gradient along V = dP/dG. Only D's own forward/backward are used, so any
 * layer kind with a correct backward works; the kinds are still listed (kinds_checked),
 * so that a new kind is refused until tests/test_penalty.c has checked it. */
#include "mg_penalty.h"

#include <math.h>
#include <string.h>

#include "mg_batch_streams.h"
#include "mg_error.h"

mg_penalty_cfg mg_penalty_cfg_from(mg_cfg_node train)
{
    mg_penalty_cfg c = {0};
    c.r1_gamma = (float)mg_cfg_real(train, "r1_gamma", 0.0, 0.0, 1e6);
    c.r2_gamma = (float)mg_cfg_real(train, "r2_gamma", 0.0, 0.0, 1e6);
    c.gp_lambda = (float)mg_cfg_real(train, "gp_lambda", 0.0, 0.0, 1e6);
    mg_cfg_node every = mg_cfg_get(train, "r1_every");
    /* r1_gamma: 0 given beside r1_every turns R1 off on purpose (--set train.r1_gamma=0) */
    if (mg_cfg_present(every) && !mg_cfg_present(mg_cfg_get(train, "r1_gamma")))
        mg_cfg_fail(every, "set train.r1_gamma (e.g. 10), or drop r1_every", "r1_every without r1_gamma");
    c.r1_every = (int)mg_cfg_int(train, "r1_every", 1, 1, 1000000);
    return c;
}

/* Layer kinds whose penalty gradient tests/test_penalty.c checks. */
static const char *const kinds_checked[] = {"linear",  "maxout",  "conv2d",  "conv_transpose2d",
                                            "batchnorm", "relu",  "leaky_relu", "tanh",
                                            "sigmoid", "reshape", "flatten", "mbstd",
                                            "onehot_concat", "projection"};

void mg_penalty_check_net(const mg_net *D, mg_cfg_node at, const char *key)
{
    for (int i = 0; i < D->n_layers; i++) {
        const mg_layer *l = &D->layers[i];
        bool known = false;
        for (size_t k = 0; k < sizeof kinds_checked / sizeof kinds_checked[0]; k++)
            known |= !strcmp(l->ops->kind, kinds_checked[k]);
        if (!known)
            mg_cfg_fail(at,
                        "gradient penalties support D layers of kinds linear, maxout, conv2d, conv_transpose2d, "
                        "batchnorm, relu, leaky_relu, tanh, sigmoid, reshape, flatten, mbstd, onehot_concat, "
                        "projection; drop the penalty or the layer",
                        "train.%s: D's layer %s (kind %s) has no checked second-order gradient for the penalty",
                        key, l->name, l->ops->kind);
    }
}

void mg_penalty_init(mg_penalty *p, mg_net *D)
{
    memset(p, 0, sizeof *p);
    p->D = D;
    for (int i = 0; i < D->n_layers; i++)
        p->coupled |= !strcmp(D->layers[i].ops->kind, "batchnorm") || !strcmp(D->layers[i].ops->kind, "mbstd");
    const size_t nx = mg_shape_size(D->in) * (size_t)D->max_batch;
    p->x = mg_alloc_floats(nx, "penalty inputs");
    p->v = mg_alloc_floats(nx, "penalty direction");
    p->mix = mg_alloc_floats(nx, "penalty interpolates");
    p->dout = mg_alloc_floats((size_t)D->max_batch, "penalty output gradient");
    p->h = mg_alloc((size_t)D->max_batch * sizeof(double), "penalty steps");
    p->state = mg_alloc_floats(D->n_state + 1, "penalty state snapshot");
}

void mg_penalty_free(mg_penalty *p)
{
    mg_free(p->x);
    mg_free(p->v);
    mg_free(p->mix);
    mg_free(p->dout);
    mg_free(p->h);
    mg_free(p->state);
    memset(p, 0, sizeof *p);
}

/* Sums buf over the replicas when D's BatchNorm is synchronised (its reduce callback):
 * with sync BN the batch function spans the ranks, so h must be one number for all. */
static void reduce_like_bn(const mg_net *D, double *buf, int n)
{
    for (int i = 0; i < D->n_layers; i++)
        if (D->layers[i].reduce) {
            D->layers[i].reduce(buf, n, D->layers[i].reduce_ctx);
            return;
        }
}

static double sum_sq(const float *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return s;
}

double mg_penalty_apply(mg_penalty *p, mg_penalty_kind kind, const float *x, int n, double w, double scale)
{
    mg_net *D = p->D;
    const size_t d = mg_shape_size(D->in);
    memcpy(p->state, D->state, D->n_state * sizeof(float));

    /* g = dS/dX, S = sum_i D(x_i) */
    mg_net_forward(D, x, n, MG_TRAIN);
    for (int i = 0; i < n; i++)
        p->dout[i] = 1.0f;
    memcpy(p->v, mg_net_backward(D, p->dout, false, true), (size_t)n * d * sizeof(float));

    /* value, and V_i = dphi/dg_i (the w/n goes into the output gradient below):
     * R1/R2: phi = ||g||^2 / 2, V = g;  GP: phi = (||g|| - 1)^2, V = 2 (1 - 1/||g||) g
     * (V = 0 at g = 0, where the norm has no derivative). The step scale ||x_i|| has a
     * floor of 0.1 sqrt(d) (an RMS of 0.1) so that an all-zero input still gets a step. */
    double value = 0, sx = 0, sv = 0;
    for (int i = 0; i < n; i++) {
        float *v = p->v + (size_t)i * d;
        const double gn2 = sum_sq(v, d), gn = sqrt(gn2);
        double f = 1.0;
        if (kind == MG_PENALTY_SQ) {
            value += 0.5 * gn2;
        } else {
            value += (gn - 1.0) * (gn - 1.0);
            f = gn > 0 ? 2.0 * (1.0 - 1.0 / gn) : 0.0;
            for (size_t k = 0; k < d; k++)
                v[k] = (float)(f * v[k]);
        }
        const double vn2 = f * f * gn2, floor2 = 0.01 * (double)d;
        const double xn2 = fmax(sum_sq(x + (size_t)i * d, d), floor2);
        p->h[i] = vn2 > 0 ? MG_PENALTY_DELTA * sqrt(xn2 / vn2) : 0.0;
        sx += xn2;
        sv += vn2;
    }
    if (p->coupled) { /* one h for the batch function */
        double sums[2] = {sx, sv};
        reduce_like_bn(D, sums, 2);
        const double h = sums[1] > 0 ? MG_PENALTY_DELTA * sqrt(sums[0] / sums[1]) : 0.0;
        for (int i = 0; i < n; i++)
            p->h[i] = h;
    }

    /* dP/dtheta = (w/n) [dS/dtheta (X + hV) - dS/dtheta (X - hV)] / 2h: two backward passes
     * adding +-coef/2h times D's parameter gradient (backward adds, so no extra buffer) */
    const double coef = scale * w / n;
    for (int sign = 1; sign >= -1; sign -= 2) {
        for (int i = 0; i < n; i++) {
            const float hs = (float)(sign * p->h[i]);
            const float *xi = x + (size_t)i * d, *vi = p->v + (size_t)i * d;
            float *yi = p->x + (size_t)i * d;
            for (size_t k = 0; k < d; k++)
                yi[k] = xi[k] + hs * vi[k];
            p->dout[i] = p->h[i] > 0 ? (float)(sign * coef / (2.0 * p->h[i])) : 0.0f;
        }
        mg_net_forward(D, p->x, n, MG_TRAIN);
        mg_net_backward(D, p->dout, true, false);
    }
    memcpy(D->state, p->state, D->n_state * sizeof(float));
    return w * value / n;
}

void mg_penalty_interpolate(float *out, const float *real, const float *fake, int n, size_t dim, uint64_t seed,
                            uint64_t first_item)
{
    for (int i = 0; i < n; i++) {
        mg_rng r;
        mg_batch_streams_rng(&r, seed, MG_STREAM_PENALTY, first_item + (uint64_t)i);
        const float e = mg_rng_uniform(&r);
        const size_t o = (size_t)i * dim;
        for (size_t k = 0; k < dim; k++)
            out[o + k] = e * real[o + k] + (1.0f - e) * fake[o + k];
    }
}

double mg_penalty_d(mg_penalty *p, const mg_penalty_cfg *c, const float *real, const float *fake, const int *y_real,
                    const int *y_fake, int n, long d_update, uint64_t seed, uint64_t first_item, double scale,
                    bool *ran)
{
    double total = 0;
    *ran = false;
    if (c->r1_gamma > 0 && d_update % c->r1_every == 0) { /* lazy R1 (StyleGAN2): k times the weight */
        mg_net_set_labels(p->D, y_real);
        total += mg_penalty_apply(p, MG_PENALTY_SQ, real, n, c->r1_gamma, scale * c->r1_every);
        *ran = true;
    }
    if (c->r2_gamma > 0) {
        mg_net_set_labels(p->D, y_fake);
        total += mg_penalty_apply(p, MG_PENALTY_SQ, fake, n, c->r2_gamma, scale);
        *ran = true;
    }
    if (c->gp_lambda > 0) {
        mg_net_set_labels(p->D, y_real);
        mg_penalty_interpolate(p->mix, real, fake, n, mg_shape_size(p->D->in), seed, first_item);
        total += mg_penalty_apply(p, MG_PENALTY_GP, p->mix, n, c->gp_lambda, scale);
        *ran = true;
    }
    return total;
}
