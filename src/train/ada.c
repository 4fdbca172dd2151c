/* The ADA controller for train.augment.adaptive (see mg_ada.h): a running sum over one
 * interval and a clamped step of p. Plain arithmetic on values every rank holds alike, so
 * every rank computes the same p without a message of its own. */
#include "mg_ada.h"

void mg_ada_init(mg_ada *a, double p0)
{
    *a = (mg_ada){.p = p0};
}

bool mg_ada_observe(mg_ada *a, const mg_ada_cfg *cfg, double mean_sign, int batch)
{
    a->sign_sum += mean_sign;
    if (++a->seen < cfg->interval)
        return false;
    const double rt = a->sign_sum / a->seen;
    const double step = (double)batch * cfg->interval / cfg->speed;
    const double p = a->p + (rt > cfg->target ? step : rt < cfg->target ? -step : 0.0);
    a->p = p < 0.0 ? 0.0 : p > 1.0 ? 1.0 : p;
    a->last_rt = rt;
    a->sign_sum = 0;
    a->seen = 0;
    return true;
}

float mg_ada_mean_sign(const float *out, int n)
{
    int s = 0;
    for (int i = 0; i < n; i++)
        s += (out[i] > 0.0f) - (out[i] < 0.0f);
    return n > 0 ? (float)s / (float)n : 0.0f;
}
