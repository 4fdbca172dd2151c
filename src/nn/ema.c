/* Generator EMA (see mg_ema.h): one loop over the flat parameter buffer per update.
 * The update is written as a lerp, ema += (1-d)(p - ema), which stays exact when p == ema
 * (a constant parameter keeps its value bit for bit) and loses less to rounding than
 * d·ema + (1-d)·p for d close to 1. */
#include "mg_ema.h"

#include <string.h>

#include "mg_error.h"

mg_ema_cfg mg_ema_cfg_from(mg_cfg_node spec)
{
    mg_ema_cfg c = {.on = false, .decay = 0.999f, .start = 0};
    if (!mg_cfg_present(spec))
        return c;
    if (mg_cfg_type_of(spec) != MG_CFG_MAPPING)
        mg_cfg_fail(spec, "write e.g. ema: {decay: 0.999, start: 0}, or leave it out for no EMA",
                    "train.ema must be a mapping");
    c.on = true;
    mg_cfg_node decay = mg_cfg_get(spec, "decay");
    if (mg_cfg_present(decay)) {
        double d = mg_cfg_as_real(decay, 0.0, 1.0);
        if (d <= 0.0 || d >= 1.0 || (float)d >= 1.0f)
            mg_cfg_fail(decay, "typical values are 0.999 or 0.9999", "decay %g must lie strictly between 0 and 1", d);
        c.decay = (float)d;
    }
    c.start = mg_cfg_int(spec, "start", 0, 0, 1L << 40);
    return c;
}

void mg_ema_init(mg_ema *e, const mg_ema_cfg *cfg, const mg_net *net)
{
    memset(e, 0, sizeof *e);
    e->cfg = *cfg;
    e->n_param = net->n_param;
    e->n_state = net->n_state;
    /* +1: a network without state still gets a valid pointer */
    e->param = mg_alloc_floats(e->n_param + 1, "EMA parameters");
    e->state = mg_alloc_floats(e->n_state + 1, "EMA state");
    memcpy(e->param, net->param, e->n_param * sizeof(float));
    memcpy(e->state, net->state, e->n_state * sizeof(float));
}

void mg_ema_update(mg_ema *e, const mg_net *net, long t)
{
    MG_CHECK(net->n_param == e->n_param && net->n_state == e->n_state, net->name, NULL,
             "EMA buffers (%zu, %zu) do not fit the network (%zu, %zu)", e->n_param, e->n_state, net->n_param,
             net->n_state);
    memcpy(e->state, net->state, e->n_state * sizeof(float));
    if (t <= e->cfg.start) {
        memcpy(e->param, net->param, e->n_param * sizeof(float));
        return;
    }
    const float w = 1.0f - e->cfg.decay;
    float *restrict a = e->param;
    const float *restrict p = net->param;
    for (size_t i = 0; i < e->n_param; i++)
        a[i] += w * (p[i] - a[i]);
}

static void swap_floats(float *restrict a, float *restrict b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float x = a[i];
        a[i] = b[i];
        b[i] = x;
    }
}

void mg_ema_swap(mg_ema *e, mg_net *net)
{
    MG_CHECK(net->n_param == e->n_param && net->n_state == e->n_state, net->name, NULL,
             "EMA buffers do not fit the network");
    swap_floats(e->param, net->param, e->n_param);
    swap_floats(e->state, net->state, e->n_state);
}

void mg_ema_free(mg_ema *e)
{
    mg_free(e->param);
    mg_free(e->state);
    memset(e, 0, sizeof *e);
}
