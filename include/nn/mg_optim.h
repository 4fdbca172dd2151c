/* Optimizers as plain functions over flat float arrays.
 *
 * A network's parameters and gradients are each one contiguous array of n floats (see
 * mg_net.h), so an optimizer step is one loop over n elements. The update rules are those
 * of PyTorch's torch.optim.Adam (AdamW when weight_decay > 0), torch.optim.RMSprop
 * (centered=False) and torch.optim.SGD (dampening 0, nesterov False), so a run here can be
 * compared number for number with a PyTorch reference.
 *
 * Ownership: an mg_optim owns its state buffers (m, v), allocated by mg_optim_init and
 * released by mg_optim_free. The trainer owns the mg_optim itself (one per network) and
 * the param/grad arrays it passes in. Checkpoints save m, v and step as they are. */
#ifndef MG_OPTIM_H
#define MG_OPTIM_H

#include <stddef.h>

#include "mg_cfg.h"

typedef enum { MG_OPT_ADAM, MG_OPT_RMSPROP, MG_OPT_SGD } mg_opt_kind;

typedef struct {
    mg_opt_kind kind;
    float lr;            /* base learning rate (a schedule scales it; see mg_sched.h) */
    float beta1, beta2;  /* Adam: decay rates of the first and second moments */
    float eps;           /* Adam, RMSprop: added to the root of the second moment */
    float alpha;         /* RMSprop: smoothing of the squared-gradient average */
    float momentum;      /* SGD and RMSprop momentum (0 = none) */
    float weight_decay;  /* Adam: decoupled, p -= lr*wd*p before the step (AdamW);
                            SGD, RMSprop: L2, g += wd*p before the step (as in PyTorch) */
} mg_opt_cfg;

/* State of one optimizer over n parameters.
 *   m  Adam: first moment; SGD and RMSprop: momentum buffer (NULL when momentum is 0)
 *   v  Adam: second moment (uncorrected); RMSprop: squared-gradient average; SGD: NULL
 *   step  number of steps taken so far (Adam's bias correction uses step after the
 *         increment, i.e. t = 1 on the first step)
 * Each buffer has exactly one role; none ever holds a negated gradient. */
typedef struct {
    mg_opt_cfg cfg;
    size_t n;
    float *m, *v;
    long step;
} mg_optim;

/* PyTorch's defaults for kind: Adam lr 1e-3, betas (0.9, 0.999), eps 1e-8; RMSprop lr 1e-2,
 * alpha 0.99, eps 1e-8; SGD lr 1e-2; momentum and weight_decay 0. Unused fields are 0. */
mg_opt_cfg mg_opt_cfg_default(mg_opt_kind kind);

/* Copies *cfg and allocates zeroed state for n parameters (only the buffers the kind and
 * momentum need; see mg_optim). step starts at 0. */
void mg_optim_init(mg_optim *o, const mg_opt_cfg *cfg, size_t n);

/* One update of param[0..n) from grad[0..n) with learning rate lr (normally
 * mg_sched_lr(..., o->cfg.lr, ...); lr >= 0 and finite, else a fatal error). grad is
 * only read. Increments o->step. NaN in grad propagates into param and state. */
void mg_optim_step(mg_optim *o, float *param, const float *grad, float lr);

/* Releases the state and zeroes the struct; safe on a zeroed or already freed mg_optim. */
void mg_optim_free(mg_optim *o);

/* "adam", "rmsprop" or "sgd". */
const char *mg_opt_kind_name(mg_opt_kind kind);

/* Reads an optimizer mapping:
 *   { kind: adam|rmsprop|sgd (required), lr: > 0, beta1: [0,1), beta2: [0,1), eps: > 0,
 *     alpha: [0,1), momentum: [0,1), weight_decay: >= 0 }
 * Missing keys take mg_opt_cfg_default(kind). A key that does not apply to the kind
 * (adam: alpha, momentum; rmsprop: beta1, beta2; sgd: beta1, beta2, eps, alpha) is an
 * error naming the key; so are wrong types and values out of range. Keys nobody reads
 * at all (typos) are reported by mg_cfg_check_unused once the whole config is read. */
mg_opt_cfg mg_opt_cfg_from(mg_cfg_node spec);

#endif
