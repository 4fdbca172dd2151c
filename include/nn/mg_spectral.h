/* Spectral normalisation of a layer's weight (Miyato et al. 2018), shared by linear,
 * conv2d, conv_transpose2d and the projection head's class embedding (`sn: true`,
 * `sn_iters` in a layer's YAML).
 *
 * The layer computes with W_sn = W / sigma, sigma estimated by power iteration on W viewed
 * as a matrix of `rows` rows (the output units), as torch.nn.utils.spectral_norm does:
 *   training forward, sn_iters times:  v = normalize(W^T u),  u = normalize(W v);
 *   then (both modes)                  sigma = u^T W v.
 * Evaluation forwards do not iterate: they use the stored u and v.
 *
 * Memory, all carved by the network (the layer itself has no other state or cache):
 *   l->state        [u (rows) | v (cols)]  non-learned state: broadcast at start, saved in
 *                   checkpoints, restored on resume like BatchNorm's running statistics;
 *                   identical on every rank because W is (u depends on W and u only);
 *   l->cache fixed  [sigma, padding to 16 | W_sn (rows cols) | dL/dW_sn scratch (rows cols)
 *                   | u, v as the forward used them]  (mg_spectral_sigma reads sigma).
 *
 * Backward (the gradient THROUGH sigma, with u and v held constant as PyTorch's autograd
 * does, since sigma = u^T W v gives dsigma/dW = u v^T):
 *   dL/dW = (G - <G, W_sn> u v^T) / sigma,   G = dL/dW_sn,
 * where <G, W_sn> = sum_ij G_ij W_sn_ij. The layer writes G into the scratch
 * (mg_spectral_grad_scratch) with its usual code and mg_spectral_backward adds dL/dW into
 * l->grad; dL/dx uses W_sn. The bias is not normalised.
 *
 * Cost per forward: 2 sn_iters + 1 matrix-vector products over W in training (the last
 * W v is kept for sigma), 1 in evaluation, plus a pass over W to scale it; backward one
 * more pass over W. Small beside the layer's GEMMs over a batch. */
#ifndef MG_SPECTRAL_H
#define MG_SPECTRAL_H

#include <stdbool.h>

#include "mg_cfg.h"
#include "mg_layer.h"

/* The weight l->param[0 .. rows cols) as a rows x cols matrix, cols = blocks blen:
 * entry (r, b blen + j) is param[(b rows + r) blen + j]. linear and conv2d: blocks 1
 * (W is (out, in) or (cout, cin k k)); conv_transpose2d: its (cin, cout, k, k) weight
 * with cout as rows, blocks = cin, blen = k k (PyTorch's dim=1 for transposed convs). */
typedef struct {
    int iters;              /* power iterations per training forward; 0: off */
    int rows, blocks, blen;
    size_t offset;          /* where W starts in l->param (and its gradient in l->grad): 0 but
                               for a weight after other parameters (mg_spectral_set_offset) */
} mg_spectral;

static inline bool mg_spectral_on(const mg_spectral *sn) { return sn->iters > 0; }

/* `sn` (bool, default false) and `sn_iters` (1 .. 100, default 1; only with sn: true) of
 * a layer's mapping: the number of iterations, 0 when off. */
int mg_spectral_iters_from_cfg(mg_cfg_node spec);

/* Turns spectral normalisation on for l with iters >= 1 iterations: records the matrix
 * view and adds u, v to l->n_state and the block above to l->n_cache_fixed. l must have
 * no state or cache of its own. Called by the kinds' mg_*_sn before mg_net_finish. */
void mg_spectral_setup(mg_layer *l, mg_spectral *sn, int iters, int rows, int blocks, int blen);

/* The normalised weight starts at l->param + offset rather than at l->param (the
 * projection head's embedding, after its unconditional w and b). After
 * mg_spectral_setup; the weight must fit in the layer's parameters. */
void mg_spectral_set_offset(mg_layer *l, mg_spectral *sn, size_t offset);

/* u and v drawn N(0, 1) from rng and normalised, then 15 power iterations on the freshly
 * initialised W (as torch.nn.utils.parametrizations.spectral_norm does), so that an
 * evaluation pass before any training already divides by a good sigma. */
void mg_spectral_init(mg_layer *l, const mg_spectral *sn, mg_rng *rng);

/* Power iteration (MG_TRAIN only; updates u, v in l->state), sigma, and W_sn into the
 * cache; returns W_sn (rows cols floats, the layout of W). */
const float *mg_spectral_forward(mg_layer *l, const mg_spectral *sn, mg_mode mode);

/* The dL/dW_sn scratch, zeroed: the layer ACCUMULATES its weight gradient into it. */
float *mg_spectral_grad_scratch(mg_layer *l, const mg_spectral *sn);

/* Adds dL/dW = (G - <G, W_sn> u v^T) / sigma into l->grad[offset .. offset + rows cols),
 * G the scratch. */
void mg_spectral_backward(mg_layer *l, const mg_spectral *sn);

/* floats before W_sn in the cache: sigma, padded so that W_sn starts 64-byte aligned */
#define MG_SPECTRAL_HEAD 16

/* sigma and W_sn of l's last forward pass (l a layer with sn on). */
static inline float mg_spectral_sigma(const mg_layer *l) { return l->cache[0]; }
static inline const float *mg_spectral_weight(const mg_layer *l) { return l->cache + MG_SPECTRAL_HEAD; }

#endif
