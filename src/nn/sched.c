/* Learning-rate schedules (see mg_sched.h): a stateless function of the step, so a
 * resumed run and every rank get the same rate from the step count alone. Computed in
 * double and rounded once to float. */
#include "mg_sched.h"

#include <limits.h>
#include <math.h>

#include "mg_error.h"

static const char *const sched_kind_names[] = {"constant", "linear", "cosine", "step"};
#define SCHED_KIND_COUNT 4

const char *mg_sched_kind_name(mg_sched_kind kind)
{
    return (unsigned)kind < SCHED_KIND_COUNT ? sched_kind_names[kind] : "unknown";
}

mg_sched mg_sched_constant(void)
{
    mg_sched s = {.kind = MG_SCHED_CONSTANT, .warmup = 0, .final_factor = 1.0f, .step_size = 1, .gamma = 1.0f};
    return s;
}

/* Progress through the decay phase: 0 at step == warmup, 1 at the last step. */
static double decay_progress(const mg_sched *s, long step, long total_steps)
{
    long span = total_steps - 1 - s->warmup;
    if (span <= 0)
        return 1.0;
    double p = (double)(step - s->warmup) / (double)span;
    return p < 0.0 ? 0.0 : p > 1.0 ? 1.0 : p;
}

float mg_sched_lr(const mg_sched *s, float base_lr, long step, long total_steps)
{
    const char *name = mg_sched_kind_name(s->kind);
    MG_CHECK(step >= 0, name, NULL, "negative step %ld", step);
    MG_CHECK(s->warmup >= 0, name, NULL, "negative warmup %ld", s->warmup);
    double warm = step < s->warmup ? (double)step / (double)s->warmup : 1.0;
    double f = s->final_factor, decay;
    switch (s->kind) {
    case MG_SCHED_CONSTANT:
        decay = 1.0;
        break;
    case MG_SCHED_LINEAR:
        MG_CHECK(total_steps >= 1, name, "the run length must be known", "total_steps %ld < 1", total_steps);
        decay = 1.0 + (f - 1.0) * decay_progress(s, step, total_steps);
        break;
    case MG_SCHED_COSINE:
        MG_CHECK(total_steps >= 1, name, "the run length must be known", "total_steps %ld < 1", total_steps);
        decay = f + (1.0 - f) * (1.0 + cos(M_PI * decay_progress(s, step, total_steps))) / 2.0;
        break;
    case MG_SCHED_STEP:
        MG_CHECK(s->step_size >= 1, name, NULL, "step_size %ld < 1", s->step_size);
        decay = pow((double)s->gamma, (double)(step / s->step_size));
        break;
    default:
        MG_FAIL("lr schedule", NULL, "unknown schedule kind %d", (int)s->kind);
    }
    return (float)((double)base_lr * warm * decay);
}

/* Fails if key is present although the schedule kind has no use for it. */
static void reject_key(mg_cfg_node spec, const char *key, const char *kind_name)
{
    mg_cfg_reject_key(spec, key, "schedule kind", kind_name, "remove it, or choose a schedule kind that has it");
}

mg_sched mg_sched_from(mg_cfg_node spec)
{
    mg_sched s = mg_sched_constant();
    if (!mg_cfg_present(spec))
        return s;
    mg_cfg_expect_mapping(spec);
    s.kind = (mg_sched_kind)mg_cfg_choice(spec, "kind", sched_kind_names, SCHED_KIND_COUNT, -1);
    const char *name = sched_kind_names[s.kind];
    s.warmup = mg_cfg_int(spec, "warmup", 0, 0, LONG_MAX);
    if (s.kind == MG_SCHED_LINEAR || s.kind == MG_SCHED_COSINE)
        s.final_factor = (float)mg_cfg_real(spec, "final_factor", 0.0, 0.0, 1.0);
    else
        reject_key(spec, "final_factor", name);
    if (s.kind == MG_SCHED_STEP) {
        s.step_size = mg_cfg_int_req(spec, "step_size", 1, LONG_MAX);
        mg_cfg_node gamma = mg_cfg_get(spec, "gamma");
        if (mg_cfg_present(gamma)) {
            double g = mg_cfg_as_real(gamma, 0.0, 1.0);
            if ((float)g == 0.0f)
                mg_cfg_fail(gamma, "gamma is the factor applied at each decay", "gamma = %g out of range (0, 1]", g);
            s.gamma = (float)g;
        } else {
            s.gamma = 0.1f;
        }
    } else {
        reject_key(spec, "step_size", name);
        reject_key(spec, "gamma", name);
    }
    return s;
}
