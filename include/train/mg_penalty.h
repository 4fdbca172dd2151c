/* Gradient penalties on the discriminator (R1, R2, WGAN-GP), added to D's gradient in the
 * D update before its one fused reduction.
 *
 * Each penalty is a function of the input gradient g = dS/dX of S(X; theta) = sum_i D(x_i)
 * over the batch X (one row per D input): with phi the per-sample term and w its weight,
 *     P = w * mean_i phi(g_i),  phi = 1/2 ||g_i||^2      (R1 on reals: w = r1_gamma, R2 on fakes: w = r2_gamma)
 *                               phi = (||g_i|| - 1)^2    (GP on interpolates: w = gp_lambda)
 * Its parameter gradient needs the mixed second derivative of S. With V = dP/dG (row i:
 * w/n * dphi/dg_i), dP/dtheta = d/de dS/dtheta (X + e V) at e = 0, a Hessian-vector
 * product, taken here by central differences of D's parameter gradient:
 *     dP/dtheta ~ [dS/dtheta (X + h V) - dS/dtheta (X - h V)] / (2h)
 * (two extra forward/backward passes after the one giving g). h is chosen relative to the
 * inputs: ||h V_i|| = delta ||x_i|| per sample (MG_PENALTY_DELTA), one common h for the
 * whole (coupled) batch when D mixes samples in training mode (BatchNorm, mbstd). Error:
 * truncation (h^2/6) d^3/de^3 dS/dtheta, O(delta^2) relative for smooth D; rounding about
 * u |dS/dtheta| / h (u = 6e-8), i.e. O(u / delta) relative; piecewise-linear D (ReLU,
 * LeakyReLU, maxout, linear, conv) is exact between kinks, and only units whose input
 * crosses a kink inside [x - hV, x + hV] (a fraction O(delta)) add error. docs/training.md,
 * "Gradient penalties", has the derivation.
 *
 * D's BatchNorm running statistics are saved before and restored after the extra passes,
 * so a step with a penalty moves them exactly as one without. */
#ifndef MG_PENALTY_H
#define MG_PENALTY_H

#include <stdbool.h>
#include <stdint.h>

#include "mg_cfg.h"
#include "mg_net.h"

/* Relative step of the central difference: ||h V_i|| = delta ||x_i||. Balances rounding
 * (u / delta ~ 6e-5) against kink crossings in piecewise-linear nets (~delta). */
#define MG_PENALTY_DELTA 1e-3

/* train: r1_gamma, r1_every, r2_gamma, gp_lambda (0 = off; r1_every 1 = every D update). */
typedef struct {
    float r1_gamma, r2_gamma, gp_lambda;
    int r1_every;
} mg_penalty_cfg;

/* Reads the four keys from the train section (strict: r1_every without r1_gamma is an
 * error naming the key). */
mg_penalty_cfg mg_penalty_cfg_from(mg_cfg_node train);
static inline bool mg_penalty_any(const mg_penalty_cfg *c)
{
    return c->r1_gamma > 0 || c->r2_gamma > 0 || c->gp_lambda > 0;
}

/* Fails (a config error at node `at`, naming the layer) when D holds a layer kind whose
 * penalty gradient is not checked by tests/test_penalty.c. key names the penalty's key. */
void mg_penalty_check_net(const mg_net *D, mg_cfg_node at, const char *key);

typedef enum { MG_PENALTY_SQ, MG_PENALTY_GP } mg_penalty_kind;

/* Work buffers for D's penalties at batches up to D->max_batch. */
typedef struct {
    mg_net *D;            /* not owned */
    bool coupled;         /* D mixes the samples of a batch in training mode: one common h */
    float *x, *v, *mix;   /* (max_batch, in) each: perturbed inputs, direction V, GP interpolates */
    float *dout;          /* (max_batch) */
    double *h;            /* per-sample steps */
    float *state;         /* D's running statistics, kept around the extra passes */
} mg_penalty;

void mg_penalty_init(mg_penalty *p, mg_net *D);
void mg_penalty_free(mg_penalty *p);

/* One penalty on batch x (n D inputs, n <= D->max_batch) with the labels D holds
 * (mg_net_set_labels; a class-conditional D): ADDS scale * dP/dtheta into
 * D->grad (frozen layers excepted) and returns P = w * mean_i phi(g_i) (without scale).
 * Runs three forward and three backward passes of D in training mode; D's state is left
 * as it was. With sync BatchNorm in D it is collective (every rank calls it alike). */
double mg_penalty_apply(mg_penalty *p, mg_penalty_kind kind, const float *x, int n, double w, double scale);

/* The GP interpolates: x_hat_i = e_i real_i + (1 - e_i) fake_i, e_i ~ U[0, 1) from the
 * per-item stream (seed, first_item + i) (mg_batch_streams.h), so the same on any number
 * of ranks. out, real, fake: (n, dim). */
void mg_penalty_interpolate(float *out, const float *real, const float *fake, int n, size_t dim, uint64_t seed,
                            uint64_t first_item);

/* The D update's penalties as configured (R1 on real, lazily every r1_every-th update
 * with weight r1_gamma * r1_every; R2 on fake; GP on interpolates), each scaled by scale
 * (1 / train.accumulate). d_update: the run's index of this D update (0-based); first_item:
 * the global index of this batch's first D input. Returns the sum of the penalties'
 * values (the R1 term at weight r1_gamma); *ran says whether any penalty ran (lazy R1
 * alone skips most updates). y_real, y_fake: the real and fake samples' classes for a
 * class-conditional D (NULL otherwise): R1 judges reals with y_real, R2 fakes with y_fake,
 * GP the interpolates with y_real (the class the real end of each line holds). D's labels
 * are left as the last penalty set them. */
double mg_penalty_d(mg_penalty *p, const mg_penalty_cfg *c, const float *real, const float *fake, const int *y_real,
                    const int *y_fake, int n, long d_update, uint64_t seed, uint64_t first_item, double scale,
                    bool *ran);

#endif
