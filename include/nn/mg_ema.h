/* Generator EMA: an exponential moving average of G's parameters.
 *
 * The average is kept in its own flat buffer with G's parameter layout, so an update is
 * one loop and a checkpoint is one dataset (/G_ema/param). BatchNorm running statistics
 * are not averaged but COPIED from G at every update (/G_ema/state): they are already
 * running averages, and a second average would only add lag (StyleGAN2-ADA also copies
 * buffers). G's parameters are identical on every rank after the optimizer step, so every
 * rank updates its EMA alike and no message is needed.
 *
 * Schedule, with t the number of completed G updates and d the decay:
 *   t <= start:  ema = G                       (the average has not begun)
 *   t >  start:  ema ← ema + (1 - d)(G - ema)  (= d·ema + (1-d)·G)
 * so after t > start updates ema = d^(t-start) G_start + (1-d) Σ_{k=start+1..t} d^(t-k) G_k. */
#ifndef MG_EMA_H
#define MG_EMA_H

#include <stdbool.h>
#include <stddef.h>

#include "mg_cfg.h"
#include "mg_net.h"

typedef struct {
    bool on;       /* train.ema present */
    float decay;   /* d in (0, 1) (default 0.999) */
    long start;    /* G updates before the average begins; until then ema = G (default 0) */
} mg_ema_cfg;

/* The average of one network's buffers; owns param and state (mg_ema_free). */
typedef struct {
    mg_ema_cfg cfg;
    size_t n_param, n_state;
    float *param, *state;
} mg_ema;

/* Reads train.ema: absent → off; a mapping {decay: (0, 1), start: >= 0}. Errors name
 * the key (file:line:col). */
mg_ema_cfg mg_ema_cfg_from(mg_cfg_node spec);

/* Allocates buffers shaped like net's and copies net's parameters and state in. */
void mg_ema_init(mg_ema *e, const mg_ema_cfg *cfg, const mg_net *net);

/* One update after a G optimizer step; t = completed G updates including this one
 * (see the schedule above). State is copied. */
void mg_ema_update(mg_ema *e, const mg_net *net, long t);

/* Exchanges the contents of net's param/state with the average's (bitwise; calling it
 * twice restores both). Lets a caller run G with the averaged weights (sample grids)
 * without a second network. */
void mg_ema_swap(mg_ema *e, mg_net *net);

void mg_ema_free(mg_ema *e);

#endif
