/* Adaptive augmentation probability (ADA, Karras et al. 2020): the trainer observes, after
 * every D update, the mean of sign(D(x)) over that update's real samples (the whole global
 * batch: the reduced value, so the same on every rank); every `interval` observations the
 * mean of them, r_t, moves p by sign(r_t - target) * batch * interval / speed, clamped to
 * [0, 1]. A D that is sure of every real sample (r_t near 1) is overfitting, and more
 * augmentation makes its task harder. The state is a few numbers the trainer checkpoints,
 * so a resumed run steers p exactly as an uninterrupted one. */
#ifndef MG_ADA_H
#define MG_ADA_H

#include <stdbool.h>

#include "mg_augment.h"

typedef struct {
    double p;          /* the probability in use */
    double sign_sum;   /* sum of the observed means since the last adjustment */
    int seen;          /* observations since the last adjustment */
    double last_rt;    /* r_t of the last adjustment (0 before the first) */
} mg_ada;

/* Starts at p0 with nothing observed. */
void mg_ada_init(mg_ada *a, double p0);

/* One D update's mean sign of D's outputs on its real samples; batch is the global batch
 * (images) of the update. Returns true when this observation completed an interval and p
 * was adjusted. */
bool mg_ada_observe(mg_ada *a, const mg_ada_cfg *cfg, double mean_sign, int batch);

/* The mean of sign(out[i]) over n values (0 counts as 0). */
float mg_ada_mean_sign(const float *out, int n);

#endif
