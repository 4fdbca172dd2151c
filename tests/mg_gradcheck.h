/* Finite-difference gradient checks for layers and small networks.
 *
 * The scalar checked is L = sum(y * r) with r fixed and random, so dL/dy = r. Every input
 * and parameter entry (or a random subset of at most max_checks of each) is moved by
 * +-eps and the central difference (L+ - L-) / 2 eps, accumulated in double, is compared
 * with the analytic gradient: |num - ana| <= atol + rtol * max(|num|, |ana|).
 *
 * Tests whose checks run again under oneDNN build their networks for mg_gradcheck_backend
 * and give those cmocka tests mg_gradcheck_use_onednn / mg_gradcheck_use_blas as setup and
 * teardown. */
#ifndef MG_GRADCHECK_H
#define MG_GRADCHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mg_net.h"
#include "mg_test.h"

typedef struct {
    float eps;         /* finite-difference step */
    double atol, rtol;
    float kink_margin; /* inputs closer than this to 0 are pushed away (ReLU kinks); 0: off */
    int max_checks;    /* entries checked per tensor (random subset) */
    mg_mode mode;
} mg_gradcheck_opts;

/* The backend the running test builds its networks for: BLAS unless the test's setup is
 * mg_gradcheck_use_onednn (its teardown mg_gradcheck_use_blas sets it back). */
__attribute__((unused)) static mg_backend mg_gradcheck_backend = MG_BACKEND_BLAS;

__attribute__((unused)) static int mg_gradcheck_use_onednn(void **state)
{
    (void)state;
    mg_gradcheck_backend = MG_BACKEND_ONEDNN;
    return 0;
}

__attribute__((unused)) static int mg_gradcheck_use_blas(void **state)
{
    (void)state;
    mg_gradcheck_backend = MG_BACKEND_BLAS;
    return 0;
}

static double gc_loss(mg_net *net, const float *x, int n, const float *r, mg_mode mode)
{
    const float *y = mg_net_forward(net, x, n, mode);
    size_t m = mg_shape_size(net->out) * (size_t)n;
    double sum = 0;
    for (size_t i = 0; i < m; i++)
        sum += (double)y[i] * r[i];
    return sum;
}

static void gc_compare(const char *what, size_t index, double num, double ana, const mg_gradcheck_opts *o)
{
    double scale = fabs(num) > fabs(ana) ? fabs(num) : fabs(ana);
    if (!(fabs(num - ana) <= o->atol + o->rtol * scale))
        fail_msg("%s[%zu]: numeric %.7g vs analytic %.7g", what, index, num, ana);
}

/* Checks dL/dx and dL/dparams of net (already finished and initialised) at batch n.
 * BatchNorm running statistics change during the check; that does not affect TRAIN mode. */
static void mg_gradcheck_net(mg_net *net, int n, const mg_gradcheck_opts *o, mg_rng *rng)
{
    size_t nx = mg_shape_size(net->in) * (size_t)n, ny = mg_shape_size(net->out) * (size_t)n;
    float *x = mg_alloc_floats(nx, "gradcheck x");
    float *r = mg_alloc_floats(ny, "gradcheck r");
    float *dx = mg_alloc_floats(nx, "gradcheck dx");
    float *grad = mg_alloc_floats(net->n_param, "gradcheck grad");
    mg_rng_fill_normal(rng, x, nx, 0.0f, 1.0f);
    if (o->kink_margin > 0)
        for (size_t i = 0; i < nx; i++)
            if (fabsf(x[i]) < o->kink_margin)
                x[i] = x[i] < 0 ? -o->kink_margin : o->kink_margin;
    mg_rng_fill_normal(rng, r, ny, 0.0f, 1.0f);

    mg_net_zero_grad(net);
    mg_net_forward(net, x, n, o->mode);
    float *dx_net = mg_net_backward(net, r, true, true);
    memcpy(dx, dx_net, nx * sizeof(float));
    memcpy(grad, net->grad, net->n_param * sizeof(float));

    char what[96];
    for (int k = 0; k < o->max_checks && (size_t)k < nx; k++) {
        size_t i = nx <= (size_t)o->max_checks ? (size_t)k : (size_t)mg_rng_below(rng, nx);
        float saved = x[i];
        x[i] = saved + o->eps;
        double lp = gc_loss(net, x, n, r, o->mode);
        x[i] = saved - o->eps;
        double lm = gc_loss(net, x, n, r, o->mode);
        x[i] = saved;
        snprintf(what, sizeof what, "%s dL/dx", net->layers[0].name);
        gc_compare(what, i, (lp - lm) / (2.0 * o->eps), dx[i], o);
    }
    for (int li = 0; li < net->n_layers; li++) {
        mg_layer *l = &net->layers[li];
        for (int k = 0; k < o->max_checks && (size_t)k < l->n_param; k++) {
            size_t i = l->n_param <= (size_t)o->max_checks ? (size_t)k : (size_t)mg_rng_below(rng, l->n_param);
            float saved = l->param[i];
            l->param[i] = saved + o->eps;
            double lp = gc_loss(net, x, n, r, o->mode);
            l->param[i] = saved - o->eps;
            double lm = gc_loss(net, x, n, r, o->mode);
            l->param[i] = saved;
            snprintf(what, sizeof what, "%s dL/dparam", l->name);
            gc_compare(what, i, (lp - lm) / (2.0 * o->eps), grad[(size_t)(l->grad - net->grad) + i], o);
        }
    }
    mg_free(x);
    mg_free(r);
    mg_free(dx);
    mg_free(grad);
}

/* Parameters drawn N(0, std) so that every weight matters (not DCGAN's tiny init). */
static void mg_gradcheck_randomize(mg_net *net, float std, mg_rng *rng)
{
    mg_rng_fill_normal(rng, net->param, net->n_param, 0.0f, std);
}

#endif
