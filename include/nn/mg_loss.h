/* Losses of GAN training and of the evaluation classifier, with their gradients.
 *
 * Every loss takes n raw network outputs (logits for the discriminator: no sigmoid
 * applied), returns the MEAN loss over the n samples, and, when the gradient array is
 * not NULL, WRITES (does not add) d(mean loss)/d(input) into it, so its entries carry the
 * 1/n factor. The caller owns all arrays. Sums are taken in double.
 *
 * NaN policy belongs to the caller: a NaN input gives a NaN loss and a NaN gradient
 * entry; nothing here clamps or hides it. */
#ifndef MG_LOSS_H
#define MG_LOSS_H

#include <stdint.h>

typedef enum {
    MG_LOSS_MINIMAX,        /* Goodfellow et al. 2014, G minimises E log(1 - D(G(z))) */
    MG_LOSS_NONSATURATING,  /* same D; G maximises E log D(G(z)) */
    MG_LOSS_WASSERSTEIN,    /* critic scores; needs a Lipschitz constraint elsewhere */
    MG_LOSS_HINGE,          /* Lim & Ye 2017; Miyato et al. 2018 */
    MG_LOSS_LEAST_SQUARES   /* Mao et al. 2017, a-b-c = 0-1-1 */
} mg_gan_loss;
#define MG_GAN_LOSS_COUNT 5

/* The config spellings, in enum order: "minimax", "non_saturating", "wasserstein", "hinge",
 * "least_squares" (mg_cfg_choice takes the table; mg_gan_loss_name gives "unknown" for a
 * value outside it). */
extern const char *const mg_gan_loss_names[MG_GAN_LOSS_COUNT];
const char *mg_gan_loss_name(mg_gan_loss k);

/* Binary cross-entropy on logits z (n) against one target t in [0, 1]:
 *   l = max(z, 0) - z t + log1p(exp(-|z|)),   dl/dz = sigmoid(z) - t
 * exact and finite for any finite z (tested at |z| = 1e4). dz (n) optional. */
float mg_bce_logits(const float *z, float target, int n, float *dz);

/* The discriminator's loss, split into the real-batch and fake-batch parts because D
 * sees them in separate forward passes; D's loss is their sum. d_out (n) are D's raw
 * outputs; grad (n) optional.
 *   real:  minimax, non_saturating  BCE(x, 1) = softplus(-x)
 *          wasserstein              -mean x
 *          hinge                    mean relu(1 - x)
 *          least_squares            0.5 mean (x - 1)²
 *   fake:  minimax, non_saturating  BCE(x, 0) = softplus(x)
 *          wasserstein              +mean x
 *          hinge                    mean relu(1 + x)
 *          least_squares            0.5 mean x²
 * At a hinge kink (x = ±1 exactly) the gradient is 0, as for relu'(0) in PyTorch. */
float mg_d_loss_real(mg_gan_loss k, const float *d_out, int n, float *grad);
float mg_d_loss_fake(mg_gan_loss k, const float *d_out, int n, float *grad);

/* The generator's loss on D's outputs x for a fake batch; grad (n) optional.
 *   minimax        mean log(1 - sigmoid(x)) = -BCE(x, 0) = -mean softplus(x)
 *                  (its gradient -sigmoid(x)/n vanishes when D confidently rejects fakes)
 *   non_saturating BCE(x, 1) = mean softplus(-x)
 *   wasserstein    -mean x
 *   hinge          -mean x
 *   least_squares  0.5 mean (x - 1)² */
float mg_g_loss(mg_gan_loss k, const float *d_out, int n, float *grad);

/* Softmax cross-entropy of a k-class classifier. logits (n, k) row-major, labels (n) in
 * [0, k) (else a fatal error naming the sample):
 *   l_i = logsumexp(z_i) - z_i[y_i],   dl/dz_i = softmax(z_i) - onehot(y_i)
 * computed with the row maximum subtracted. dlogits (n, k) and probs (n, k, the softmax)
 * are optional outputs. Returns the mean over the n rows. */
float mg_softmax_xent(const float *logits, const int *labels, int n, int k, float *dlogits, float *probs);

/* probs (n, k) = softmax of logits (n, k), row by row in double (the evaluation's class
 * probabilities; mg_softmax_xent's probs are computed in float). */
void mg_softmax_rows(const float *logits, int64_t n, int k, float *probs);

/* mean sigmoid(z) over n logits: D's average probability of "real", for progress reports. */
float mg_mean_sigmoid(const float *z, int n);

#endif
