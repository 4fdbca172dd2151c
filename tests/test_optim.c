/* Optimizers and learning-rate schedules against values derived by hand (written out in
 * the comments) and against a straightforward double-precision reference of the
 * textbook update rules; config parsing, valid and invalid. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "mg_test.h"

#include "mg_cfg.h"
#include "mg_error.h"
#include "mg_optim.h"
#include "mg_rng.h"
#include "mg_sched.h"

/* ---- Optimizers, a few steps by hand ---- */

/* Adam, lr 0.1 (passed to the step; cfg.lr stays 1e-3), betas (0.9, 0.999), eps 1e-8.
 * p = 1, g1 = 0.5, g2 = -1:
 *   t=1: m = 0.1*0.5 = 0.05, v = 0.001*0.25 = 2.5e-4; m̂ = 0.05/0.1 = 0.5, v̂ = 2.5e-4/0.001 = 0.25
 *        p = 1 - 0.1*0.5/(0.5 + 1e-8) = 0.900000002
 *   t=2: m = 0.045 - 0.1 = -0.055, v = 0.999*2.5e-4 + 0.001*1 = 1.24975e-3
 *        m̂ = -0.055/0.19 = -0.2894737, v̂ = 1.24975e-3/1.999e-3 = 0.6251876, √v̂ = 0.7906881
 *        p = 0.9 + 0.1*0.2894737/0.7906881 = 0.9366104
 * p = -2, g1 = -0.25, g2 = 0.5: the mirror image, -1.9 then -1.9366104. */
static void test_adam_by_hand(void **state)
{
    (void)state;
    mg_opt_cfg cfg = mg_opt_cfg_default(MG_OPT_ADAM);
    mg_optim o;
    mg_optim_init(&o, &cfg, 2);
    float p[2] = {1.0f, -2.0f};
    const float g1[2] = {0.5f, -0.25f}, g2[2] = {-1.0f, 0.5f};
    mg_optim_step(&o, p, g1, 0.1f);
    assert_int_equal(o.step, 1);
    MG_ASSERT_CLOSE(p[0], 0.900000002, 1e-6, 0, "adam p0 t=1");
    MG_ASSERT_CLOSE(p[1], -1.900000004, 1e-6, 0, "adam p1 t=1");
    /* The betas are stored as floats: 0.999f = 0.99900001287, so the weight of g² is
     * 1 - 0.999f = 9.9998713e-4, not 1e-3 (the bias correction uses the same value, so
     * v̂ and p are unaffected). The expected moments use the float-rounded betas. */
    const double b1 = 0.9f, b2 = 0.999f;
    MG_ASSERT_CLOSE(o.m[0], (1 - b1) * 0.5, 1e-9, 1e-6, "adam m t=1");
    MG_ASSERT_CLOSE(o.v[0], (1 - b2) * 0.25, 1e-12, 1e-6, "adam v t=1");
    mg_optim_step(&o, p, g2, 0.1f);
    assert_int_equal(o.step, 2);
    MG_ASSERT_CLOSE(p[0], 0.9366103542, 1e-6, 0, "adam p0 t=2");
    MG_ASSERT_CLOSE(p[1], -1.9366103558, 1e-6, 0, "adam p1 t=2");
    MG_ASSERT_CLOSE(o.m[0], b1 * (1 - b1) * 0.5 - (1 - b1), 1e-9, 1e-6, "adam m t=2");          /* -0.055 */
    MG_ASSERT_CLOSE(o.v[0], b2 * (1 - b2) * 0.25 + (1 - b2), 1e-12, 1e-6, "adam v t=2"); /* 1.24975e-3 */
    mg_optim_free(&o);
    mg_optim_free(&o); /* safe twice */
}

/* With a constant gradient, m̂ = g and v̂ = g² exactly at every t (that is what the bias
 * correction is for), so each step moves p by lr·|g|/(|g| + eps) = lr (1 - 3.3e-8). The
 * second parameter is reset to 0 before every step so that its move is measured without
 * the rounding of a parameter near 1; an error in the correction shows as a wrong step
 * (t one too high makes the first step 0.74 lr). The first parameter accumulates: after
 * 2000 steps of lr 1e-3, p = 1 - 2 (up to float accumulation). */
static void test_adam_bias_correction(void **state)
{
    (void)state;
    mg_opt_cfg cfg = mg_opt_cfg_default(MG_OPT_ADAM);
    mg_optim o;
    mg_optim_init(&o, &cfg, 2);
    float p[2] = {1.0f, 0.0f};
    const float g[2] = {0.3f, 0.3f};
    for (int t = 1; t <= 2000; t++) {
        p[1] = 0.0f;
        mg_optim_step(&o, p, g, 1e-3f);
        /* Float rounding in v's average is amplified up to 1/(1-β2) = 1000 times as t grows
         * (as in PyTorch), so the tight bound holds for the first steps only. */
        MG_ASSERT_CLOSE(-p[1], 1e-3, 0, t <= 20 ? 1e-6 : 1e-4, "adam constant-gradient step");
    }
    MG_ASSERT_CLOSE(p[0], -1.0, 2e-4, 0, "adam after 2000 steps");
    mg_optim_free(&o);
}

/* AdamW: lr 0.1, wd 0.1, p = 1, g = 0.5 twice.
 *   t=1: p = 1*(1 - 0.1*0.1) = 0.99, then - 0.1*0.5/(0.5 + 1e-8) → 0.890000002
 *   t=2: p = 0.89*0.99 = 0.8811; m = 0.095, v = 4.9975e-4, m̂ = 0.5, v̂ = 0.25 → p = 0.7811000040
 * The moments never see the decay term: m = 0.095 is pure gradient. */
static void test_adamw_decoupled_decay(void **state)
{
    (void)state;
    mg_opt_cfg cfg = mg_opt_cfg_default(MG_OPT_ADAM);
    cfg.weight_decay = 0.1f;
    mg_optim o;
    mg_optim_init(&o, &cfg, 1);
    float p = 1.0f;
    const float g = 0.5f;
    mg_optim_step(&o, &p, &g, 0.1f);
    MG_ASSERT_CLOSE(p, 0.890000002, 1e-6, 0, "adamw t=1");
    mg_optim_step(&o, &p, &g, 0.1f);
    MG_ASSERT_CLOSE(p, 0.781100004, 1e-6, 0, "adamw t=2");
    /* m = 0.05 (0.9 + 1) = 0.095, v = 2.5e-4 (0.999 + 1) = 4.9975e-4, with float betas as above */
    const double b1 = 0.9f, b2 = 0.999f;
    MG_ASSERT_CLOSE(o.m[0], (1 - b1) * 0.5 * (b1 + 1), 1e-9, 1e-6, "adamw m is gradient only");
    MG_ASSERT_CLOSE(o.v[0], (1 - b2) * 0.25 * (b2 + 1), 1e-12, 1e-6, "adamw v is gradient only");
    mg_optim_free(&o);
}

/* RMSprop, lr 0.01, alpha 0.99, eps 1e-8, p = 1, g = 0.5 twice.
 *   no momentum:  v1 = 0.01*0.25 = 2.5e-3, √v1 = 0.05, p = 1 - 0.01*0.5/0.05 = 0.9
 *                 v2 = 0.99*2.5e-3 + 2.5e-3 = 4.975e-3, √v2 = 0.07053368, p = 0.9 - 0.0708881 = 0.8291119
 *   momentum 0.9: b1 = 0.5/0.05 = 10, p = 0.9;  b2 = 9 + 7.088809 = 16.088809, p = 0.9 - 0.16088809 = 0.7391119
 *   wd 0.1:       g1 = 0.6, v1 = 3.6e-3, √v1 = 0.06, p = 1 - 0.01*0.6/0.06 = 0.9
 *                 g2 = 0.5 + 0.09 = 0.59, v2 = 3.564e-3 + 3.481e-3 = 7.045e-3, p = 0.9 - 0.01*0.59/0.0839345 = 0.8297071 */
static void test_rmsprop_by_hand(void **state)
{
    (void)state;
    const float g = 0.5f;
    mg_opt_cfg cfg = mg_opt_cfg_default(MG_OPT_RMSPROP);
    mg_optim o;

    mg_optim_init(&o, &cfg, 1);
    assert_null(o.m); /* no momentum buffer without momentum */
    float p = 1.0f;
    mg_optim_step(&o, &p, &g, cfg.lr);
    MG_ASSERT_CLOSE(p, 0.9, 1e-6, 0, "rmsprop t=1");
    mg_optim_step(&o, &p, &g, cfg.lr);
    MG_ASSERT_CLOSE(p, 0.8291119095, 1e-6, 0, "rmsprop t=2");
    MG_ASSERT_CLOSE(o.v[0], 4.975e-3, 1e-10, 1e-6, "rmsprop v");
    mg_optim_free(&o);

    cfg.momentum = 0.9f;
    mg_optim_init(&o, &cfg, 1);
    assert_non_null(o.m);
    assert_ptr_not_equal(o.m, o.v);
    p = 1.0f;
    mg_optim_step(&o, &p, &g, cfg.lr);
    MG_ASSERT_CLOSE(p, 0.9, 1e-6, 0, "rmsprop momentum t=1");
    MG_ASSERT_CLOSE(o.m[0], 10.0, 0, 1e-6, "rmsprop momentum buffer t=1");
    mg_optim_step(&o, &p, &g, cfg.lr);
    MG_ASSERT_CLOSE(p, 0.7391119275, 1e-6, 0, "rmsprop momentum t=2");
    MG_ASSERT_CLOSE(o.m[0], 16.088809245, 0, 1e-6, "rmsprop momentum buffer t=2");
    mg_optim_free(&o);

    cfg.momentum = 0.0f;
    cfg.weight_decay = 0.1f;
    mg_optim_init(&o, &cfg, 1);
    p = 1.0f;
    mg_optim_step(&o, &p, &g, cfg.lr);
    MG_ASSERT_CLOSE(p, 0.9, 1e-6, 0, "rmsprop wd t=1");
    mg_optim_step(&o, &p, &g, cfg.lr);
    MG_ASSERT_CLOSE(p, 0.8297071165, 1e-6, 0, "rmsprop wd t=2");
    mg_optim_free(&o);
}

/* SGD, lr 0.1, momentum 0.9, p = 1, g = 1, 2, -1:
 *   b = 1 (the first step copies g),  p = 0.9
 *   b = 0.9 + 2 = 2.9,                p = 0.9 - 0.29 = 0.61
 *   b = 2.61 - 1 = 1.61,              p = 0.61 - 0.161 = 0.449
 * The buffer holds +b, never a negated gradient. Then plain SGD with L2 decay 0.1:
 *   p = 1, g = 1: g' = 1 + 0.1 = 1.1, p = 1 - 0.11 = 0.89 (and no buffer). */
static void test_sgd_by_hand(void **state)
{
    (void)state;
    mg_opt_cfg cfg = mg_opt_cfg_default(MG_OPT_SGD);
    cfg.momentum = 0.9f;
    mg_optim o;
    mg_optim_init(&o, &cfg, 1);
    assert_null(o.v);
    float p = 1.0f;
    const float g[3] = {1.0f, 2.0f, -1.0f};
    const float want_p[3] = {0.9f, 0.61f, 0.449f}, want_b[3] = {1.0f, 2.9f, 1.61f};
    for (int t = 0; t < 3; t++) {
        mg_optim_step(&o, &p, &g[t], 0.1f);
        MG_ASSERT_CLOSE(p, want_p[t], 1e-6, 0, "sgd momentum p");
        MG_ASSERT_CLOSE(o.m[0], want_b[t], 1e-6, 0, "sgd momentum buffer");
    }
    mg_optim_free(&o);

    cfg = mg_opt_cfg_default(MG_OPT_SGD);
    cfg.weight_decay = 0.1f;
    mg_optim_init(&o, &cfg, 1);
    assert_null(o.m);
    assert_null(o.v);
    p = 1.0f;
    mg_optim_step(&o, &p, &g[0], 0.1f);
    MG_ASSERT_CLOSE(p, 0.89, 1e-6, 0, "sgd weight decay");
    mg_optim_free(&o);
}

/* ---- Optimizers against a double-precision reference over many elements and steps ---- */

/* The textbook forms (Adam with m̂, v̂), in double; independent of the arrangement in optim.c. */
static void reference_step(const mg_opt_cfg *c, double *p, const double *g_in, double *m, double *v, size_t n,
                           long t, double lr)
{
    for (size_t i = 0; i < n; i++) {
        double g = g_in[i];
        if (c->kind == MG_OPT_ADAM) {
            p[i] -= lr * c->weight_decay * p[i];
            m[i] = c->beta1 * m[i] + (1.0 - c->beta1) * g;
            v[i] = c->beta2 * v[i] + (1.0 - c->beta2) * g * g;
            double m_hat = m[i] / (1.0 - pow(c->beta1, (double)t));
            double v_hat = v[i] / (1.0 - pow(c->beta2, (double)t));
            p[i] -= lr * m_hat / (sqrt(v_hat) + c->eps);
        } else if (c->kind == MG_OPT_RMSPROP) {
            g += c->weight_decay * p[i];
            v[i] = c->alpha * v[i] + (1.0 - c->alpha) * g * g;
            double scaled = g / (sqrt(v[i]) + c->eps);
            m[i] = c->momentum * m[i] + scaled;
            p[i] -= lr * (c->momentum > 0 ? m[i] : scaled);
        } else {
            g += c->weight_decay * p[i];
            m[i] = t == 1 ? g : c->momentum * m[i] + g;
            p[i] -= lr * (c->momentum > 0 ? m[i] : g);
        }
    }
}

static void run_against_reference(const mg_opt_cfg *cfg, const char *what)
{
    enum { N = 37, STEPS = 12 };
    mg_rng rng;
    mg_rng_init(&rng, 1234, mg_rng_stream_id(MG_STREAM_TEST, 0));
    float p[N], g[N];
    double pr[N], gr[N], mr[N] = {0}, vr[N] = {0};
    mg_rng_fill_normal(&rng, p, N, 0.0f, 1.0f);
    for (int i = 0; i < N; i++)
        pr[i] = p[i];
    mg_optim o;
    mg_optim_init(&o, cfg, N);
    for (long t = 1; t <= STEPS; t++) {
        float lr = cfg->lr * (float)t / STEPS; /* a changing lr, as a schedule gives */
        mg_rng_fill_normal(&rng, g, N, 0.0f, 1.0f);
        for (int i = 0; i < N; i++)
            gr[i] = g[i];
        float g_copy[N];
        memcpy(g_copy, g, sizeof g);
        mg_optim_step(&o, p, g, lr);
        assert_memory_equal(g, g_copy, sizeof g); /* the gradient is only read */
        reference_step(cfg, pr, gr, mr, vr, N, t, lr);
        for (int i = 0; i < N; i++)
            MG_ASSERT_CLOSE(p[i], pr[i], 2e-6, 2e-6, what);
    }
    mg_optim_free(&o);
}

static void test_optimizers_match_reference(void **state)
{
    (void)state;
    mg_opt_cfg c = mg_opt_cfg_default(MG_OPT_ADAM);
    c.lr = 0.01f;
    c.beta1 = 0.5f;
    run_against_reference(&c, "adam vs reference");
    c.weight_decay = 0.3f;
    run_against_reference(&c, "adamw vs reference");

    c = mg_opt_cfg_default(MG_OPT_RMSPROP);
    run_against_reference(&c, "rmsprop vs reference");
    c.momentum = 0.8f;
    c.weight_decay = 0.05f;
    run_against_reference(&c, "rmsprop momentum+wd vs reference");

    c = mg_opt_cfg_default(MG_OPT_SGD);
    run_against_reference(&c, "sgd vs reference");
    c.momentum = 0.9f;
    c.weight_decay = 1e-2f;
    run_against_reference(&c, "sgd momentum+wd vs reference");
}

static void test_optim_errors(void **state)
{
    (void)state;
    mg_opt_cfg cfg = mg_opt_cfg_default(MG_OPT_ADAM);
    mg_optim o;
    mg_optim_init(&o, &cfg, 1);
    float p = 0.0f, g = 1.0f;
    MG_EXPECT_FATAL(mg_optim_step(&o, &p, &g, -1e-3f), "learning rate");
    MG_EXPECT_FATAL(mg_optim_step(&o, &p, &g, NAN), "learning rate");
    assert_int_equal(o.step, 0);
    mg_optim_free(&o);
    cfg.beta2 = 1.0f;
    MG_EXPECT_FATAL(mg_optim_init(&o, &cfg, 1), "beta2");
    cfg = mg_opt_cfg_default(MG_OPT_RMSPROP);
    cfg.eps = 0.0f;
    MG_EXPECT_FATAL(mg_optim_init(&o, &cfg, 1), "eps");
}

/* A NaN gradient reaches the parameter (the trainer's NaN check must see it). */
static void test_optim_nan_propagates(void **state)
{
    (void)state;
    for (int kind = MG_OPT_ADAM; kind <= MG_OPT_SGD; kind++) {
        mg_opt_cfg cfg = mg_opt_cfg_default((mg_opt_kind)kind);
        mg_optim o;
        mg_optim_init(&o, &cfg, 2);
        float p[2] = {1.0f, 1.0f}, g[2] = {NAN, 0.5f};
        mg_optim_step(&o, p, g, cfg.lr);
        assert_true(isnan(p[0]));
        assert_false(isnan(p[1]));
        mg_optim_free(&o);
    }
}

/* ---- Schedules ---- */

/* Linear, base 1, warmup 10, final_factor 0.1, 110 steps: decay span = 109 - 10 = 99.
 *   step 0 → 0, 5 → 0.5, 10 → 1 (warmup end), 43 → p = 1/3 → 1 - 0.9/3 = 0.7,
 *   76 → p = 2/3 → 0.4, 109 (last) → 0.1, 200 (past the end) → 0.1 */
static void test_sched_linear(void **state)
{
    (void)state;
    mg_sched s = {.kind = MG_SCHED_LINEAR, .warmup = 10, .final_factor = 0.1f};
    const long steps[] = {0, 5, 10, 43, 76, 109, 200};
    const double want[] = {0.0, 0.5, 1.0, 0.7, 0.4, 0.1, 0.1};
    for (int i = 0; i < 7; i++)
        MG_ASSERT_CLOSE(mg_sched_lr(&s, 1.0f, steps[i], 110), want[i], 1e-6, 0, "linear schedule");
    MG_ASSERT_CLOSE(mg_sched_lr(&s, 2e-4f, 43, 110), 1.4e-4, 1e-10, 1e-6, "linear schedule scales base");
}

/* Cosine, base 1, warmup 10, f = 0.1, 111 steps: span 100.
 *   step 0 → 0, 5 → 0.5, 10 → 1, 35 → p = 1/4 → 0.1 + 0.9 (1 + cos(π/4))/2 = 0.1 + 0.9·0.8535534 = 0.8681981,
 *   60 → p = 1/2 → 0.1 + 0.45 = 0.55, 85 → 0.1 + 0.9·0.1464466 = 0.2318019, 110 → 0.1 */
static void test_sched_cosine(void **state)
{
    (void)state;
    mg_sched s = {.kind = MG_SCHED_COSINE, .warmup = 10, .final_factor = 0.1f};
    const long steps[] = {0, 5, 10, 35, 60, 85, 110, 300};
    const double want[] = {0.0, 0.5, 1.0, 0.8681980515, 0.55, 0.2318019485, 0.1, 0.1};
    for (int i = 0; i < 8; i++)
        MG_ASSERT_CLOSE(mg_sched_lr(&s, 1.0f, steps[i], 111), want[i], 1e-6, 0, "cosine schedule");
    /* No warmup, f = 0: plain cosine annealing from 1 at step 0 to 0 at the last step. */
    mg_sched plain = {.kind = MG_SCHED_COSINE};
    MG_ASSERT_CLOSE(mg_sched_lr(&plain, 1.0f, 0, 11), 1.0, 1e-7, 0, "cosine start");
    MG_ASSERT_CLOSE(mg_sched_lr(&plain, 1.0f, 5, 11), 0.5, 1e-7, 0, "cosine middle");
    MG_ASSERT_CLOSE(mg_sched_lr(&plain, 1.0f, 10, 11), 0.0, 1e-7, 0, "cosine end");
}

/* Step, gamma 0.5 every 30 steps: 0 → 1, 29 → 1, 30 → 0.5, 59 → 0.5, 60 → 0.25, 95 → 0.125.
 * With warmup 10 the warmup factor multiplies: step 5 → 0.5, step 10 → 1.
 * Constant with warmup 4: 0 → 0, 1 → 0.25, 3 → 0.75, 4 → 1, 1000 → 1. */
static void test_sched_step_and_constant(void **state)
{
    (void)state;
    mg_sched s = {.kind = MG_SCHED_STEP, .step_size = 30, .gamma = 0.5f};
    const long steps[] = {0, 29, 30, 59, 60, 95};
    const double want[] = {1.0, 1.0, 0.5, 0.5, 0.25, 0.125};
    for (int i = 0; i < 6; i++)
        MG_ASSERT_CLOSE(mg_sched_lr(&s, 1.0f, steps[i], 100), want[i], 1e-7, 0, "step schedule");
    s.warmup = 10;
    MG_ASSERT_CLOSE(mg_sched_lr(&s, 1.0f, 5, 100), 0.5, 1e-7, 0, "step schedule in warmup");
    MG_ASSERT_CLOSE(mg_sched_lr(&s, 1.0f, 10, 100), 1.0, 1e-7, 0, "step schedule after warmup");
    MG_ASSERT_CLOSE(mg_sched_lr(&s, 1.0f, 30, 100), 0.5, 1e-7, 0, "step schedule decays with warmup");

    mg_sched c = mg_sched_constant();
    c.warmup = 4;
    const long csteps[] = {0, 1, 3, 4, 1000};
    const double cwant[] = {0.0, 0.25, 0.75, 1.0, 1.0};
    for (int i = 0; i < 5; i++)
        MG_ASSERT_CLOSE(mg_sched_lr(&c, 1.0f, csteps[i], 0), cwant[i], 1e-7, 0, "constant schedule");
    MG_EXPECT_FATAL(mg_sched_lr(&c, 1.0f, -1, 10), "negative step");
    mg_sched lin = {.kind = MG_SCHED_LINEAR};
    MG_EXPECT_FATAL(mg_sched_lr(&lin, 1.0f, 0, 0), "total_steps");
}

/* ---- Config parsing ---- */

static void test_opt_cfg_valid(void **state)
{
    (void)state;
    mg_cfg *cfg = mg_cfg_parse("adam_opt:\n"
                               "  kind: adam\n"
                               "  lr: 2.0e-4\n"
                               "  beta1: 0.5\n"
                               "  beta2: 0.999\n"
                               "  weight_decay: 0.01\n"
                               "rms_opt: {kind: rmsprop, lr: 5e-5, alpha: 0.9, momentum: 0.5, eps: 1e-6}\n"
                               "sgd_opt: {kind: sgd}\n",
                               "test.yaml");
    mg_cfg_node root = mg_cfg_root(cfg);
    mg_opt_cfg a = mg_opt_cfg_from(mg_cfg_get(root, "adam_opt"));
    assert_int_equal(a.kind, MG_OPT_ADAM);
    assert_true(a.lr == 2.0e-4f && a.beta1 == 0.5f && a.beta2 == 0.999f && a.weight_decay == 0.01f);
    assert_true(a.eps == 1e-8f); /* PyTorch default kept */
    mg_opt_cfg r = mg_opt_cfg_from(mg_cfg_get(root, "rms_opt"));
    assert_int_equal(r.kind, MG_OPT_RMSPROP);
    assert_true(r.lr == 5e-5f && r.alpha == 0.9f && r.momentum == 0.5f && r.eps == 1e-6f);
    mg_opt_cfg s = mg_opt_cfg_from(mg_cfg_get(root, "sgd_opt"));
    assert_int_equal(s.kind, MG_OPT_SGD);
    assert_true(s.lr == 1e-2f && s.momentum == 0.0f && s.weight_decay == 0.0f);
    mg_cfg_check_unused(cfg); /* every key was read */
    mg_cfg_free(cfg);
}

/* Reads the "optimizer" mapping of cfg, then checks for unread keys. */
static void read_opt(mg_cfg *cfg)
{
    mg_opt_cfg_from(mg_cfg_get(mg_cfg_root(cfg), "optimizer"));
    mg_cfg_check_unused(cfg);
}

/* Expects reading the config text to fail with a message containing substring; the
 * config is parsed outside the fatal jump so that it can be freed afterwards. */
#define EXPECT_CFG_ERROR(reader, text, substring)                                           \
    do {                                                                                    \
        mg_cfg *cfg_ = mg_cfg_parse((text), "test.yaml");                                   \
        MG_EXPECT_FATAL(reader(cfg_), (substring));                                         \
        mg_cfg_free(cfg_);                                                                  \
    } while (0)
#define EXPECT_OPT_ERROR(text, substring) EXPECT_CFG_ERROR(read_opt, text, substring)

static void test_opt_cfg_invalid(void **state)
{
    (void)state;
    /* unknown key (a typo), reported by the unread-key check with the key's name */
    EXPECT_OPT_ERROR("optimizer: {kind: adam, lr: 1e-3, betta1: 0.5}", "betta1");
    /* wrong types */
    EXPECT_OPT_ERROR("optimizer: {kind: adam, lr: fast}", "optimizer.lr");
    EXPECT_OPT_ERROR("optimizer: {kind: sgd, momentum: [0.9]}", "optimizer.momentum");
    /* out of range */
    EXPECT_OPT_ERROR("optimizer: {kind: adam, lr: 0}", "optimizer.lr");
    EXPECT_OPT_ERROR("optimizer: {kind: adam, lr: -1e-3}", "optimizer.lr");
    EXPECT_OPT_ERROR("optimizer: {kind: adam, beta1: 1.0}", "optimizer.beta1");
    EXPECT_OPT_ERROR("optimizer: {kind: adam, beta2: -0.1}", "optimizer.beta2");
    EXPECT_OPT_ERROR("optimizer: {kind: rmsprop, eps: 0}", "optimizer.eps");
    EXPECT_OPT_ERROR("optimizer: {kind: rmsprop, alpha: 1}", "optimizer.alpha");
    EXPECT_OPT_ERROR("optimizer: {kind: sgd, weight_decay: -0.1}", "optimizer.weight_decay");
    EXPECT_OPT_ERROR("optimizer: {kind: sgd, lr: .inf}", "optimizer.lr");
    /* keys that do not apply to the kind */
    EXPECT_OPT_ERROR("optimizer: {kind: adam, momentum: 0.9}", "optimizer.momentum");
    EXPECT_OPT_ERROR("optimizer: {kind: adam, alpha: 0.9}", "'alpha' does not apply");
    EXPECT_OPT_ERROR("optimizer: {kind: sgd, beta1: 0.9}", "optimizer.beta1");
    EXPECT_OPT_ERROR("optimizer: {kind: sgd, eps: 1e-8}", "optimizer.eps");
    EXPECT_OPT_ERROR("optimizer: {kind: rmsprop, beta2: 0.9}", "optimizer.beta2");
    /* kind missing, unknown, or the mapping not a mapping */
    EXPECT_OPT_ERROR("optimizer: {lr: 1e-3}", "kind");
    EXPECT_OPT_ERROR("optimizer: {kind: adagrad}", "adagrad");
    EXPECT_OPT_ERROR("optimizer: adam", "expected a mapping");
}

static void test_sched_cfg_valid(void **state)
{
    (void)state;
    mg_cfg *cfg = mg_cfg_parse("cos: {kind: cosine, warmup: 100, final_factor: 0.1}\n"
                               "lin: {kind: linear}\n"
                               "stp: {kind: step, step_size: 1000, gamma: 0.5}\n"
                               "stp_default: {kind: step, step_size: 7}\n"
                               "con: {kind: constant, warmup: 3}\n",
                               "test.yaml");
    mg_cfg_node root = mg_cfg_root(cfg);
    mg_sched c = mg_sched_from(mg_cfg_get(root, "cos"));
    assert_int_equal(c.kind, MG_SCHED_COSINE);
    assert_int_equal(c.warmup, 100);
    assert_true(c.final_factor == 0.1f);
    mg_sched l = mg_sched_from(mg_cfg_get(root, "lin"));
    assert_int_equal(l.kind, MG_SCHED_LINEAR);
    assert_int_equal(l.warmup, 0);
    assert_true(l.final_factor == 0.0f);
    mg_sched s = mg_sched_from(mg_cfg_get(root, "stp"));
    assert_int_equal(s.kind, MG_SCHED_STEP);
    assert_int_equal(s.step_size, 1000);
    assert_true(s.gamma == 0.5f);
    mg_sched sd = mg_sched_from(mg_cfg_get(root, "stp_default"));
    assert_true(sd.gamma == 0.1f);
    mg_sched k = mg_sched_from(mg_cfg_get(root, "con"));
    assert_int_equal(k.kind, MG_SCHED_CONSTANT);
    assert_int_equal(k.warmup, 3);
    mg_sched absent = mg_sched_from(mg_cfg_get(root, "no_such_section"));
    assert_int_equal(absent.kind, MG_SCHED_CONSTANT);
    assert_int_equal(absent.warmup, 0);
    MG_ASSERT_CLOSE(mg_sched_lr(&absent, 3e-4f, 12345, 0), 3e-4, 0, 1e-7, "absent schedule is constant");
    mg_cfg_check_unused(cfg);
    mg_cfg_free(cfg);
}

/* Reads the "schedule" mapping of cfg, then checks for unread keys. */
static void read_sched(mg_cfg *cfg)
{
    mg_sched_from(mg_cfg_get(mg_cfg_root(cfg), "schedule"));
    mg_cfg_check_unused(cfg);
}
#define EXPECT_SCHED_ERROR(text, substring) EXPECT_CFG_ERROR(read_sched, text, substring)

static void test_sched_cfg_invalid(void **state)
{
    (void)state;
    EXPECT_SCHED_ERROR("schedule: {kind: cosine, warmpu: 10}", "warmpu");
    EXPECT_SCHED_ERROR("schedule: {kind: cosine, warmup: 1.5}", "schedule.warmup");
    EXPECT_SCHED_ERROR("schedule: {kind: cosine, warmup: -1}", "schedule.warmup");
    EXPECT_SCHED_ERROR("schedule: {kind: linear, final_factor: 1.5}", "schedule.final_factor");
    EXPECT_SCHED_ERROR("schedule: {kind: linear, final_factor: low}", "schedule.final_factor");
    EXPECT_SCHED_ERROR("schedule: {kind: step, step_size: 0}", "schedule.step_size");
    EXPECT_SCHED_ERROR("schedule: {kind: step, gamma: 0.5}", "step_size");
    EXPECT_SCHED_ERROR("schedule: {kind: step, step_size: 10, gamma: 0}", "schedule.gamma");
    EXPECT_SCHED_ERROR("schedule: {kind: step, step_size: 10, gamma: 2}", "schedule.gamma");
    EXPECT_SCHED_ERROR("schedule: {kind: constant, gamma: 0.5}", "schedule.gamma");
    EXPECT_SCHED_ERROR("schedule: {kind: cosine, step_size: 5}", "'step_size' does not apply");
    EXPECT_SCHED_ERROR("schedule: {kind: step, step_size: 5, final_factor: 0.1}", "schedule.final_factor");
    EXPECT_SCHED_ERROR("schedule: {kind: exponential}", "exponential");
    EXPECT_SCHED_ERROR("schedule: {warmup: 5}", "kind");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adam_by_hand),
        cmocka_unit_test(test_adam_bias_correction),
        cmocka_unit_test(test_adamw_decoupled_decay),
        cmocka_unit_test(test_rmsprop_by_hand),
        cmocka_unit_test(test_sgd_by_hand),
        cmocka_unit_test(test_optimizers_match_reference),
        cmocka_unit_test(test_optim_errors),
        cmocka_unit_test(test_optim_nan_propagates),
        cmocka_unit_test(test_sched_linear),
        cmocka_unit_test(test_sched_cosine),
        cmocka_unit_test(test_sched_step_and_constant),
        cmocka_unit_test(test_opt_cfg_valid),
        cmocka_unit_test(test_opt_cfg_invalid),
        cmocka_unit_test(test_sched_cfg_valid),
        cmocka_unit_test(test_sched_cfg_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
