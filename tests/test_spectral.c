/* Spectral normalisation (src/nn/spectral.c) on linear, conv2d, conv_transpose2d and the
 * projection head's class embedding (E (K, F), after the head's w and b, with fixed labels):
 *  - finite-difference gradients of each kind with sn, with u and v held fixed: the checks
 *    run in MG_EVAL mode, where forward does not iterate and sigma = u^T W v with the
 *    stored u, v, which is exactly the function whose gradient backward computes (PyTorch's
 *    too: u and v are constants for autograd). A training-mode pass first brings u, v to W;
 *  - a training pass's backward is that of an evaluation pass at the same u, v, bitwise,
 *    and evaluation leaves u, v alone while training moves them; sn_iters k in one pass is
 *    k passes of one iteration;
 *  - sigma converges to the largest singular value of W as a (rows, rest) matrix (for
 *    conv_transpose2d the (cout, cin k k) view PyTorch uses), compared with a Jacobi
 *    eigen-decomposition of W W^T in double; W_sn = W / sigma;
 *    (the projection head: its w and b, not normalised, are checked by differences too);
 *  - YAML: sn and sn_iters build the layer with u, v as state; sn on a kind it does not
 *    apply to, or a bad sn_iters, is a config error naming the key. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "mg_cfg.h"
#include "mg_gradcheck.h"
#include "mg_layers.h"
#include "mg_spectral.h"
#include "mg_test.h"
#include "mg_testenv.h"

typedef enum { LINEAR, CONV, CONVT, PROJ } kind;

/* one layer with sn: input (cin, h, w), cout, kernel, stride, padding, bias, iterations;
 * PROJ: features (cin, h, w), cout classes (labels (3 i + 1) % cout) */
typedef struct { kind k; int cin, h, w, cout, ks, s, p, n; bool bias; int iters; } sn_case;

static void make_layer(mg_net *net, const sn_case *c)
{
    mg_net_begin(net, "S", (mg_shape){c->cin, c->h, c->w});
    if (c->k == PROJ)
        mg_net_set_classes(net, c->cout);
    mg_layer *l = mg_net_push(net);
    switch (c->k) {
    case LINEAR:
        mg_linear_make(l, net->in, c->cout, c->bias);
        mg_linear_sn(l, c->iters);
        break;
    case CONV:
        mg_conv2d_make(l, net->in, c->cout, c->ks, c->s, c->p, c->bias);
        mg_conv2d_sn(l, c->iters);
        break;
    case CONVT:
        mg_conv_transpose2d_make(l, net->in, c->cout, c->ks, c->s, c->p, 0, c->bias);
        mg_conv_transpose2d_sn(l, c->iters);
        break;
    case PROJ:
        mg_projection_make(l, net->in);
        mg_projection_sn(l, c->iters);
        break;
    }
    mg_net_finish(net, c->n);
    if (c->k == PROJ) {
        static int labels[64];
        for (int i = 0; i < c->n; i++)
            labels[i] = (3 * i + 1) % c->cout;
        mg_net_set_labels(net, labels);
    }
    /* the projection head has no oneDNN path: it always runs its own code */
    mg_net_set_backend(net, mg_gradcheck_backend, MG_PRECISION_FP32);
    assert_int_equal(mg_net_onednn_layers(net), mg_gradcheck_backend == MG_BACKEND_ONEDNN && c->k != PROJ);
}

/* The normalised weight: the layer's first parameters, but for the projection head's E,
 * which follows w (F) and b. */
static const float *sn_weight(const mg_net *net, const sn_case *c)
{
    const float *w = net->layers[0].param;
    return c->k == PROJ ? w + (size_t)c->cin * c->h * c->w + 1 : w;
}

/* rows x cols: the matrix sn normalises, built from the weight's layout independently of
 * spectral.c: linear (out, in), conv2d (cout, cin k k), conv_transpose2d's (cin, cout, k, k)
 * weight with cout as rows: M[o][c k k + j] = W[c][o][j]. */
static double *dense_matrix(const mg_net *net, const sn_case *c, int *rows, int *cols)
{
    const float *w = sn_weight(net, c);
    const int kk = c->ks * c->ks;
    if (c->k == LINEAR || c->k == PROJ) {
        *rows = c->cout;
        *cols = c->cin * c->h * c->w;
    } else {
        *rows = c->cout;
        *cols = c->cin * kk;
    }
    double *m = malloc(sizeof(double) * (size_t)*rows * *cols);
    for (int r = 0; r < *rows; r++)
        for (int q = 0; q < *cols; q++)
            m[(size_t)r * *cols + q] = c->k == CONVT ? w[((size_t)(q / kk) * c->cout + r) * kk + q % kk]
                                                     : w[(size_t)r * *cols + q];
    return m;
}

/* Largest eigenvalue of the symmetric n x n a (destroyed), by cyclic Jacobi rotations. */
static double largest_eigenvalue(double *a, int n)
{
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0;
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++)
                off += a[i * n + j] * a[i * n + j];
        if (off < 1e-30)
            break;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) {
                const double apq = a[p * n + q];
                if (fabs(apq) < 1e-300)
                    continue;
                const double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
                const double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
                const double cs = 1 / sqrt(t * t + 1), sn = t * cs;
                for (int k = 0; k < n; k++) { /* columns p, q */
                    const double akp = a[k * n + p], akq = a[k * n + q];
                    a[k * n + p] = cs * akp - sn * akq;
                    a[k * n + q] = sn * akp + cs * akq;
                }
                for (int k = 0; k < n; k++) { /* rows p, q */
                    const double apk = a[p * n + k], aqk = a[q * n + k];
                    a[p * n + k] = cs * apk - sn * aqk;
                    a[q * n + k] = sn * apk + cs * aqk;
                }
            }
    }
    double best = a[0];
    for (int i = 1; i < n; i++)
        best = fmax(best, a[i * n + i]);
    return best;
}

/* sigma_max of the dense view in double: sqrt of the largest eigenvalue of M M^T */
static double largest_singular_value(const mg_net *net, const sn_case *c)
{
    int rows, cols;
    double *m = dense_matrix(net, c, &rows, &cols);
    double *g = calloc((size_t)rows * rows, sizeof(double));
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < rows; j++)
            for (int q = 0; q < cols; q++)
                g[i * rows + j] += m[(size_t)i * cols + q] * m[(size_t)j * cols + q];
    double s = sqrt(largest_eigenvalue(g, rows));
    free(m);
    free(g);
    return s;
}

/* Cases: each kind with and without bias, 1 and 3 iterations; the conv kinds in both GEMM
 * layouts (per-sample in place: weights no larger than a sample's output / input and
 * P >= 64; channel-major otherwise). */
static const sn_case cases[] = {
    {LINEAR, 11, 1, 1, 7, 0, 0, 0, 3, true, 1},
    {LINEAR, 2, 3, 3, 5, 0, 0, 0, 4, false, 3},
    {CONV, 1, 12, 19, 2, 3, 1, 1, 2, true, 1},  /* in place */
    {CONV, 3, 5, 7, 4, 3, 1, 1, 3, false, 2},   /* channel-major */
    {CONV, 2, 6, 6, 3, 4, 2, 1, 2, true, 1},
    {CONVT, 1, 12, 19, 2, 3, 1, 1, 2, true, 1}, /* in place */
    {CONVT, 4, 3, 3, 5, 3, 2, 1, 3, false, 3},  /* channel-major */
    {CONVT, 3, 4, 5, 2, 4, 2, 1, 2, true, 1},
    {PROJ, 7, 1, 1, 4, 0, 0, 0, 6, true, 1},    /* 4 classes of 7 features; some classes twice */
    {PROJ, 2, 2, 3, 3, 0, 0, 0, 5, true, 2},    /* image features taken flat */
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

/* a network with random weights N(0, 0.5) and u, v brought to them by training passes */
static void prepare(mg_net *net, const sn_case *c, mg_rng *rng)
{
    make_layer(net, c);
    mg_net_init_params(net, rng);
    mg_gradcheck_randomize(net, 0.5f, rng);
    const size_t nx = mg_shape_size(net->in) * (size_t)c->n;
    float *x = mg_alloc_floats(nx, "x");
    mg_rng_fill_normal(rng, x, nx, 0.0f, 1.0f);
    for (int i = 0; i < 5; i++)
        mg_net_forward(net, x, c->n, MG_TRAIN);
    mg_free(x);
}

static void test_gradients(void **state)
{
    (void)state;
    /* W / sigma is smooth in W; eps 1e-2 keeps truncation ~1e-4 relative, float rounding
     * of L stays well under atol */
    const mg_gradcheck_opts o = {.eps = 1e-2f, .atol = 2e-3, .rtol = 1e-2, .max_checks = 60, .mode = MG_EVAL};
    for (int i = 0; i < N_CASES; i++) {
        mg_rng rng;
        mg_rng_init(&rng, 100 + (unsigned)i, MG_STREAM_TEST);
        mg_net net;
        prepare(&net, &cases[i], &rng);
        const mg_layer *l = &net.layers[0];
        float *u0 = mg_alloc_floats(l->n_state, "u");
        memcpy(u0, l->state, l->n_state * sizeof(float));
        mg_gradcheck_net(&net, cases[i].n, &o, &rng);
        /* the check itself never moved u, v */
        assert_memory_equal(u0, l->state, l->n_state * sizeof(float));
        mg_free(u0);
        mg_net_free(&net);
    }
}

/* The gradient through sigma matters: dropping it (G / sigma alone, a detached sigma) is
 * off by far more than the finite-difference tolerance, so the checks above see it. */
static void test_sigma_term_is_not_negligible(void **state)
{
    (void)state;
    const sn_case c = cases[0];
    mg_rng rng;
    mg_rng_init(&rng, 7, MG_STREAM_TEST);
    mg_net net;
    prepare(&net, &c, &rng);
    const size_t nx = mg_shape_size(net.in) * (size_t)c.n, ny = mg_shape_size(net.out) * (size_t)c.n;
    float *x = mg_alloc_floats(nx, "x"), *dy = mg_alloc_floats(ny, "dy");
    mg_rng_fill_normal(&rng, x, nx, 0, 1);
    mg_rng_fill_normal(&rng, dy, ny, 0, 1);
    mg_net_zero_grad(&net);
    mg_net_forward(&net, x, c.n, MG_EVAL);
    mg_net_backward(&net, dy, true, false);
    const mg_layer *l = &net.layers[0];
    const float sigma = mg_spectral_sigma(l);
    double worst = 0;
    for (int o = 0; o < c.cout; o++)
        for (int k = 0; k < c.cin; k++) {
            double detached = 0; /* (dy^T x)[o][k] / sigma */
            for (int s = 0; s < c.n; s++)
                detached += (double)dy[s * c.cout + o] * x[s * c.cin + k];
            detached /= sigma;
            worst = fmax(worst, fabs(detached - l->grad[o * c.cin + k]));
        }
    assert_true(worst > 0.05);
    mg_free(x);
    mg_free(dy);
    mg_net_free(&net);
}

static void test_train_and_eval_passes(void **state)
{
    (void)state;
    for (int i = 0; i < N_CASES; i++) {
        const sn_case *c = &cases[i];
        mg_rng rng;
        mg_rng_init(&rng, 200 + (unsigned)i, MG_STREAM_TEST);
        mg_net net;
        prepare(&net, c, &rng);
        mg_layer *l = &net.layers[0];
        const size_t nx = mg_shape_size(net.in) * (size_t)c->n, ny = mg_shape_size(net.out) * (size_t)c->n;
        float *x = mg_alloc_floats(nx, "x"), *dy = mg_alloc_floats(ny, "dy");
        float *g_train = mg_alloc_floats(net.n_param, "g"), *dx_train = mg_alloc_floats(nx, "dx");
        float *y_train = mg_alloc_floats(ny, "y"), *s0 = mg_alloc_floats(l->n_state, "s");
        mg_rng_fill_normal(&rng, x, nx, 0, 1);
        mg_rng_fill_normal(&rng, dy, ny, 0, 1);
        mg_rng_fill_normal(&rng, l->state, l->n_state, 0, 1); /* u, v far from converged */
        memcpy(s0, l->state, l->n_state * sizeof(float));

        /* evaluation leaves u, v alone */
        mg_net_forward(&net, x, c->n, MG_EVAL);
        assert_memory_equal(s0, l->state, l->n_state * sizeof(float));
        /* training moves them; its backward is the evaluation backward at the new u, v */
        mg_net_zero_grad(&net);
        memcpy(y_train, mg_net_forward(&net, x, c->n, MG_TRAIN), ny * sizeof(float));
        assert_true(memcmp(s0, l->state, l->n_state * sizeof(float)) != 0);
        memcpy(dx_train, mg_net_backward(&net, dy, true, true), nx * sizeof(float));
        memcpy(g_train, net.grad, net.n_param * sizeof(float));
        const float sigma_train = mg_spectral_sigma(l);
        mg_net_zero_grad(&net);
        const float *y = mg_net_forward(&net, x, c->n, MG_EVAL);
        assert_true(mg_spectral_sigma(l) == sigma_train);
        assert_memory_equal(y, y_train, ny * sizeof(float));
        assert_memory_equal(mg_net_backward(&net, dy, true, true), dx_train, nx * sizeof(float));
        assert_memory_equal(net.grad, g_train, net.n_param * sizeof(float));

        /* sn_iters k in one training pass is k passes of one iteration */
        mg_net one;
        sn_case c1 = *c;
        c1.iters = 1;
        make_layer(&one, &c1);
        memcpy(one.param, net.param, net.n_param * sizeof(float));
        memcpy(one.state, s0, l->n_state * sizeof(float));
        memcpy(l->state, s0, l->n_state * sizeof(float));
        mg_net_forward(&net, x, c->n, MG_TRAIN);
        for (int k = 0; k < c->iters; k++)
            mg_net_forward(&one, x, c->n, MG_TRAIN);
        assert_memory_equal(one.state, l->state, l->n_state * sizeof(float));
        assert_true(mg_spectral_sigma(&one.layers[0]) == mg_spectral_sigma(l));

        mg_net_free(&one);
        mg_free(x);
        mg_free(dy);
        mg_free(g_train);
        mg_free(dx_train);
        mg_free(y_train);
        mg_free(s0);
        mg_net_free(&net);
    }
}

static void test_sigma_converges(void **state)
{
    (void)state;
    for (int i = 0; i < N_CASES; i++) {
        const sn_case *c = &cases[i];
        mg_rng rng;
        mg_rng_init(&rng, 300 + (unsigned)i, MG_STREAM_TEST);
        mg_net net;
        make_layer(&net, c);
        mg_net_init_params(&net, &rng);
        mg_gradcheck_randomize(&net, 0.5f, &rng);
        mg_layer *l = &net.layers[0];
        /* a fresh random start (init already iterated 15 times) */
        mg_rng_fill_normal(&rng, l->state, l->n_state, 0, 1);
        const size_t nx = mg_shape_size(net.in) * (size_t)c->n;
        float *x = mg_alloc_floats(nx, "x");
        mg_rng_fill_normal(&rng, x, nx, 0, 1);
        for (int k = 0; k < 300; k++)
            mg_net_forward(&net, x, c->n, MG_TRAIN);
        const double want = largest_singular_value(&net, c), sigma = mg_spectral_sigma(l);
        MG_ASSERT_CLOSE(sigma, want, 0, 1e-5, "sigma after 300 power iterations vs the largest singular value");
        /* the layer computes with W / sigma */
        const float *w_sn = mg_spectral_weight(l), *w = sn_weight(&net, c);
        for (size_t j = 0; j < (size_t)(c->cout) * (l->n_state - (size_t)c->cout); j++)
            assert_true(w_sn[j] == w[j] / (float)sigma);
        /* u is a unit vector */
        double uu = 0;
        for (int r = 0; r < c->cout; r++)
            uu += (double)l->state[r] * l->state[r];
        MG_ASSERT_CLOSE(uu, 1.0, 1e-6, 0, "|u|^2");
        /* and initialisation's 15 iterations already give a close sigma */
        mg_net_init_params(&net, &rng);
        mg_net_forward(&net, x, c->n, MG_EVAL);
        const double init_want = largest_singular_value(&net, c);
        MG_ASSERT_CLOSE(mg_spectral_sigma(l), init_want, 0, 0.05, "sigma after initialisation");
        mg_free(x);
        mg_net_free(&net);
    }
}

/* ---- YAML ---- */

/* Builds the network at "net" of text (sn.yaml, network D), expected to fail. */
static void build_text(const char *text) { mg_test_net_from_text(text, "sn.yaml", "D"); }

static void test_yaml(void **state)
{
    (void)state;
    mg_cfg *cfg = mg_cfg_parse("net:\n  input: [1, 8, 8]\n  layers:\n"
                               "    - {kind: conv2d, out: 4, kernel: 4, stride: 2, padding: 1, sn: true}\n"
                               "    - {kind: conv_transpose2d, out: 2, kernel: 4, stride: 2, padding: 1, sn: true,"
                               " sn_iters: 2}\n"
                               "    - {kind: flatten}\n"
                               "    - {kind: linear, out: 3, sn: false}\n"
                               "    - {kind: linear, out: 1, sn: true}\n",
                               "sn.yaml");
    mg_net net;
    mg_net_from_cfg(&net, "D", mg_cfg_get(mg_cfg_root(cfg), "net"), (mg_shape){0, 0, 0}, 4);
    mg_cfg_check_unused(cfg);
    /* state: u (rows) and v (cols) per sn layer; parameters as without sn */
    assert_int_equal(net.layers[0].n_state, 4 + 16);
    assert_int_equal(net.layers[0].n_param, 4 * 16 + 4);
    assert_int_equal(net.layers[1].n_state, 2 + 4 * 16); /* cout rows, cin k k columns */
    assert_int_equal(net.layers[1].n_param, 4 * 2 * 16 + 2);
    assert_int_equal(net.layers[3].n_state, 0);
    assert_int_equal(net.layers[4].n_state, 1 + 3);
    mg_net_free(&net);
    mg_cfg_free(cfg);
    cfg = mg_cfg_parse("net:\n  input: [6]\n  classes: 5\n  layers:\n    - {kind: projection, sn: true, sn_iters: 2}\n",
                       "sn.yaml");
    mg_net_from_cfg(&net, "D", mg_cfg_get(mg_cfg_root(cfg), "net"), (mg_shape){0, 0, 0}, 4);
    mg_cfg_check_unused(cfg);
    assert_int_equal(net.layers[0].n_state, 5 + 6); /* u: one per class, v: one per feature */
    assert_int_equal(net.layers[0].n_param, 6 + 1 + 5 * 6);
    mg_net_free(&net);
    mg_cfg_free(cfg);

    const char *head = "net:\n  input: [4]\n  layers:\n";
    char text[512];
    snprintf(text, sizeof text, "%s    - {kind: linear, out: 3}\n    - {kind: batchnorm, sn: true}\n", head);
    MG_EXPECT_FATAL(build_text(text), "sn.yaml:5:29 (net.layers[1].sn): 'sn' on a batchnorm layer");
    snprintf(text, sizeof text, "%s    - {kind: relu, sn: true}\n", head);
    MG_EXPECT_FATAL(build_text(text), "(net.layers[0].sn): 'sn' on a relu layer");
    snprintf(text, sizeof text, "%s    - {kind: maxout, out: 2, pieces: 2, sn_iters: 2}\n", head);
    MG_EXPECT_FATAL(build_text(text), "(net.layers[0].sn_iters): 'sn_iters' on a maxout layer");
    snprintf(text, sizeof text, "%s    - {kind: linear, out: 3, sn: true, sn_iters: 0}\n", head);
    MG_EXPECT_FATAL(build_text(text), "(net.layers[0].sn_iters): value 0 out of range");
    snprintf(text, sizeof text, "%s    - {kind: linear, out: 3, sn_iters: 2}\n", head);
    MG_EXPECT_FATAL(build_text(text), "(net.layers[0].sn_iters): sn_iters given but spectral normalisation is off");
    snprintf(text, sizeof text, "%s    - {kind: conv2d, out: 3, kernel: 1, sn: yes please}\n", head);
    MG_EXPECT_FATAL(build_text(text), "net.layers[0].sn");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_sigma_term_is_not_negligible),
        cmocka_unit_test(test_train_and_eval_passes),
        cmocka_unit_test(test_sigma_converges),
        cmocka_unit_test(test_yaml),
        cmocka_unit_test_setup_teardown(test_gradients, mg_gradcheck_use_onednn, mg_gradcheck_use_blas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
