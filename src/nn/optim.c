/* Adam(W), RMSprop and SGD as single loops over a network's flat parameter array.
 *
 * Each rule follows PyTorch's single-tensor implementation operation for operation
 * (same order of weight decay, moment updates and epsilon placement), so that results
 * agree with torch.optim to float rounding. Scalars that depend only on the step count
 * (Adam's bias corrections, AdamW's decay factor) are computed once per step in double;
 * the per-element arithmetic is float, as in PyTorch for float32 tensors. */
#include "mg_optim.h"

#include <math.h>
#include <string.h>

#include "mg_error.h"

static const char *const opt_kind_names[] = {"adam", "rmsprop", "sgd"};
#define OPT_KIND_COUNT 3

const char *mg_opt_kind_name(mg_opt_kind kind)
{
    return (unsigned)kind < OPT_KIND_COUNT ? opt_kind_names[kind] : "unknown";
}

mg_opt_cfg mg_opt_cfg_default(mg_opt_kind kind)
{
    mg_opt_cfg c = {.kind = kind};
    switch (kind) {
    case MG_OPT_ADAM:
        c.lr = 1e-3f;
        c.beta1 = 0.9f;
        c.beta2 = 0.999f;
        c.eps = 1e-8f;
        break;
    case MG_OPT_RMSPROP:
        c.lr = 1e-2f;
        c.alpha = 0.99f;
        c.eps = 1e-8f;
        break;
    case MG_OPT_SGD:
        c.lr = 1e-2f;
        break;
    default:
        MG_FAIL("optimizer", "use MG_OPT_ADAM, MG_OPT_RMSPROP or MG_OPT_SGD", "unknown optimizer kind %d",
                (int)kind);
    }
    return c;
}

/* Rejects a configuration built in C with values the parser would have refused. */
static void check_cfg(const mg_opt_cfg *c)
{
    const char *name = mg_opt_kind_name(c->kind);
    MG_CHECK((unsigned)c->kind < OPT_KIND_COUNT, "optimizer", NULL, "unknown optimizer kind %d", (int)c->kind);
    MG_CHECK(c->lr > 0.0f && isfinite(c->lr), name, NULL, "lr must be > 0 and finite, got %g", c->lr);
    MG_CHECK(c->weight_decay >= 0.0f && isfinite(c->weight_decay), name, NULL,
             "weight_decay must be >= 0 and finite, got %g", c->weight_decay);
    MG_CHECK(c->momentum >= 0.0f && c->momentum < 1.0f, name, NULL, "momentum must be in [0, 1), got %g",
             c->momentum);
    if (c->kind == MG_OPT_ADAM) {
        MG_CHECK(c->beta1 >= 0.0f && c->beta1 < 1.0f, name, NULL, "beta1 must be in [0, 1), got %g", c->beta1);
        MG_CHECK(c->beta2 >= 0.0f && c->beta2 < 1.0f, name, NULL, "beta2 must be in [0, 1), got %g", c->beta2);
    }
    if (c->kind == MG_OPT_RMSPROP)
        MG_CHECK(c->alpha >= 0.0f && c->alpha < 1.0f, name, NULL, "alpha must be in [0, 1), got %g", c->alpha);
    if (c->kind != MG_OPT_SGD)
        MG_CHECK(c->eps > 0.0f && isfinite(c->eps), name, NULL, "eps must be > 0 and finite, got %g", c->eps);
}

void mg_optim_init(mg_optim *o, const mg_opt_cfg *cfg, size_t n)
{
    check_cfg(cfg);
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
    o->n = n;
    bool needs_m = cfg->kind == MG_OPT_ADAM || cfg->momentum > 0.0f;
    bool needs_v = cfg->kind != MG_OPT_SGD;
    if (needs_m)
        o->m = mg_alloc_floats(n, cfg->kind == MG_OPT_ADAM ? "Adam first moment" : "momentum buffer");
    if (needs_v)
        o->v = mg_alloc_floats(n, cfg->kind == MG_OPT_ADAM ? "Adam second moment" : "RMSprop square average");
}

void mg_optim_free(mg_optim *o)
{
    mg_free(o->m);
    mg_free(o->v);
    memset(o, 0, sizeof *o);
}

/* Adam, with AdamW's decoupled weight decay when wd > 0 (t = step, from 1):
 *   p ← p (1 - lr wd)
 *   m ← β1 m + (1-β1) g            v ← β2 v + (1-β2) g²
 *   p ← p - (lr / (1-β1^t)) · m / (√v / √(1-β2^t) + ε)
 * which is p -= lr m̂ / (√v̂ + ε) with m̂ = m/(1-β1^t), v̂ = v/(1-β2^t), arranged as PyTorch does. */
static void adam_step(mg_optim *o, float *param, const float *grad, float lr)
{
    const mg_opt_cfg *c = &o->cfg;
    double t = (double)o->step;
    double bias_correction1 = 1.0 - pow((double)c->beta1, t);
    double bias_correction2 = 1.0 - pow((double)c->beta2, t);
    float step_size = (float)((double)lr / bias_correction1);
    float bias_correction2_sqrt = (float)sqrt(bias_correction2);
    float decay = (float)(1.0 - (double)lr * (double)c->weight_decay);
    float one_minus_beta1 = 1.0f - c->beta1, one_minus_beta2 = 1.0f - c->beta2;
    /* constants in locals and restrict pointers, so that the loop vectorises (with
     * -fno-math-errno for sqrtf; docs/results/2026-12-02-vector-loops), and bitwise the same
     * as the scalar loop, as every operation is correctly rounded either way */
    const float beta1 = c->beta1, beta2 = c->beta2, eps = c->eps;
    const bool decays = c->weight_decay != 0.0f;
    const size_t n = o->n;
    float *restrict m = o->m, *restrict v = o->v, *restrict p = param;
    const float *restrict gr = grad;
    for (size_t i = 0; i < n; i++) {
        float g = gr[i];
        float pi = decays ? p[i] * decay : p[i];
        m[i] = beta1 * m[i] + one_minus_beta1 * g;
        v[i] = beta2 * v[i] + one_minus_beta2 * g * g;
        float denom = sqrtf(v[i]) / bias_correction2_sqrt + eps;
        p[i] = pi - step_size * (m[i] / denom);
    }
}

/* RMSprop (not centered), with L2 weight decay g ← g + wd p:
 *   v ← α v + (1-α) g²
 *   no momentum:  p ← p - lr g / (√v + ε)
 *   momentum μ:   b ← μ b + g / (√v + ε);  p ← p - lr b */
static void rmsprop_step(mg_optim *o, float *param, const float *grad, float lr)
{
    const mg_opt_cfg *c = &o->cfg;
    float one_minus_alpha = 1.0f - c->alpha;
    float *v = o->v, *buf = o->m;
    for (size_t i = 0; i < o->n; i++) {
        float g = grad[i];
        if (c->weight_decay != 0.0f)
            g += c->weight_decay * param[i];
        v[i] = c->alpha * v[i] + one_minus_alpha * g * g;
        float denom = sqrtf(v[i]) + c->eps;
        if (buf) {
            buf[i] = c->momentum * buf[i] + g / denom;
            param[i] -= lr * buf[i];
        } else {
            param[i] -= lr * (g / denom);
        }
    }
}

/* SGD with L2 weight decay g ← g + wd p:
 *   no momentum:  p ← p - lr g
 *   momentum μ:   b ← g on the first step, else b ← μ b + g;  p ← p - lr b */
static void sgd_step(mg_optim *o, float *param, const float *grad, float lr)
{
    const mg_opt_cfg *c = &o->cfg;
    float *buf = o->m;
    bool first_step = o->step == 1;
    for (size_t i = 0; i < o->n; i++) {
        float g = grad[i];
        if (c->weight_decay != 0.0f)
            g += c->weight_decay * param[i];
        if (buf) {
            buf[i] = first_step ? g : c->momentum * buf[i] + g;
            param[i] -= lr * buf[i];
        } else {
            param[i] -= lr * g;
        }
    }
}

void mg_optim_step(mg_optim *o, float *param, const float *grad, float lr)
{
    const char *name = mg_opt_kind_name(o->cfg.kind);
    MG_CHECK(lr >= 0.0f && isfinite(lr), name, "check the learning-rate schedule",
             "learning rate must be >= 0 and finite, got %g", lr);
    MG_CHECK(o->n == 0 || (param && grad), name, NULL, "NULL parameter or gradient array");
    MG_CHECK(o->cfg.kind == MG_OPT_SGD || o->v, name, "call mg_optim_init first", "optimizer has no state");
    o->step++;
    switch (o->cfg.kind) {
    case MG_OPT_ADAM: adam_step(o, param, grad, lr); break;
    case MG_OPT_RMSPROP: rmsprop_step(o, param, grad, lr); break;
    case MG_OPT_SGD: sgd_step(o, param, grad, lr); break;
    default: MG_FAIL("optimizer", NULL, "unknown optimizer kind %d", (int)o->cfg.kind);
    }
}

/* Reads an optional real key in [lo, hi], optionally excluding the ends; def if absent. */
static float real_key(mg_cfg_node spec, const char *key, float def, double lo, double hi, bool lo_open,
                      bool hi_open)
{
    mg_cfg_node n = mg_cfg_get(spec, key);
    if (!mg_cfg_present(n))
        return def;
    double x = mg_cfg_as_real(n, lo, hi);
    if ((lo_open && x == lo) || (hi_open && x == hi))
        mg_cfg_fail(n, NULL, "%s = %g out of range %s%g, %g%s", key, x, lo_open ? "(" : "[", lo, hi,
                    hi_open ? ")" : "]");
    if (!isfinite((float)x) || (x != 0.0 && (float)x == 0.0f))
        mg_cfg_fail(n, NULL, "%s = %g is not representable as a float", key, x);
    return (float)x;
}

/* Fails if key is present although the optimizer kind has no use for it. */
static void reject_key(mg_cfg_node spec, const char *key, const char *kind_name)
{
    mg_cfg_reject_key(spec, key, "optimizer kind", kind_name, "remove it, or choose an optimizer kind that has it");
}

mg_opt_cfg mg_opt_cfg_from(mg_cfg_node spec)
{
    mg_cfg_expect_mapping(spec);
    mg_opt_kind kind = (mg_opt_kind)mg_cfg_choice(spec, "kind", opt_kind_names, OPT_KIND_COUNT, -1);
    const char *name = opt_kind_names[kind];
    mg_opt_cfg c = mg_opt_cfg_default(kind);
    c.lr = real_key(spec, "lr", c.lr, 0.0, HUGE_VAL, true, true);
    c.weight_decay = real_key(spec, "weight_decay", c.weight_decay, 0.0, HUGE_VAL, false, true);
    if (kind == MG_OPT_ADAM) {
        c.beta1 = real_key(spec, "beta1", c.beta1, 0.0, 1.0, false, true);
        c.beta2 = real_key(spec, "beta2", c.beta2, 0.0, 1.0, false, true);
    } else {
        reject_key(spec, "beta1", name);
        reject_key(spec, "beta2", name);
    }
    if (kind != MG_OPT_SGD)
        c.eps = real_key(spec, "eps", c.eps, 0.0, HUGE_VAL, true, true);
    else
        reject_key(spec, "eps", name);
    if (kind == MG_OPT_RMSPROP)
        c.alpha = real_key(spec, "alpha", c.alpha, 0.0, 1.0, false, true);
    else
        reject_key(spec, "alpha", name);
    if (kind != MG_OPT_ADAM)
        c.momentum = real_key(spec, "momentum", c.momentum, 0.0, 1.0, false, true);
    else
        reject_key(spec, "momentum", name);
    return c;
}
