/* Learning-rate schedules: a pure function of the step number.
 *
 * The schedule holds no state, so resuming from a checkpoint needs only the step count,
 * and every rank computes the same rate without communication. The returned rate is
 * passed to mg_optim_step (mg_optim.h). */
#ifndef MG_SCHED_H
#define MG_SCHED_H

#include "mg_cfg.h"

typedef enum { MG_SCHED_CONSTANT, MG_SCHED_LINEAR, MG_SCHED_COSINE, MG_SCHED_STEP } mg_sched_kind;

typedef struct {
    mg_sched_kind kind;
    long warmup;         /* steps of linear warmup from 0 (0 = none); every kind */
    float final_factor;  /* linear, cosine: lr at the last step, as a fraction of base */
    long step_size;      /* step: steps between decays (>= 1) */
    float gamma;         /* step: factor applied every step_size steps */
} mg_sched;

/* A constant schedule without warmup (also what mg_sched_from gives for an absent node). */
mg_sched mg_sched_constant(void);

/* Learning rate at step (0-based) of a run of total_steps, for base rate base_lr:
 *   lr = base_lr · w(step) · d(step)
 *   warmup  w = step / warmup while step < warmup, else 1 (so step 0 has lr 0 and the
 *           full rate is reached at step == warmup)
 *   decay, with progress p = (step - warmup) / (total_steps - 1 - warmup) clamped to
 *   [0, 1] (p = 1 when no step follows the warmup):
 *     constant  d = 1
 *     linear    d = 1 + (f - 1) p                  (1 after warmup, f at the last step)
 *     cosine    d = f + (1 - f) (1 + cos(π p)) / 2
 *     step      d = γ^floor(step / step_size)      (step counted from 0, not from warmup)
 * Steps past the end keep the last value. step >= 0; total_steps >= 1 for linear and
 * cosine (ignored by the others). */
float mg_sched_lr(const mg_sched *s, float base_lr, long step, long total_steps);

/* "constant", "linear", "cosine" or "step". */
const char *mg_sched_kind_name(mg_sched_kind kind);

/* Reads a schedule mapping:
 *   { kind: constant|linear|cosine|step (required), warmup: int >= 0 (default 0),
 *     final_factor: [0, 1] (linear, cosine; default 0),
 *     step_size: int >= 1 (step; required), gamma: (0, 1] (step; default 0.1) }
 * An absent node gives mg_sched_constant(). A key that does not apply to the kind, a
 * wrong type or a value out of range is an error naming the key; unread keys (typos)
 * are reported by mg_cfg_check_unused. */
mg_sched mg_sched_from(mg_cfg_node spec);

#endif
