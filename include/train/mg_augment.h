/* Differentiable augmentation of D's inputs (DiffAugment, Zhao et al. 2020): real and fake
 * images are transformed alike before D, and G's gradient flows back through the
 * transform, so D cannot tell the two apart by the augmentation and G is not taught to
 * produce augmented images.
 *
 * Policies, each applied to a sample with probability p (config `train.augment`), in the
 * order color, translation, cutout:
 *   translation  shift by up to 1/8 of the height and width (integers), zeros brought in;
 *   cutout       a square of half the size (rounded) at a random place set to 0;
 *   color        brightness (+ U(-0.5, 0.5)), saturation (x U(0, 2) about each pixel's
 *                channel mean; nothing for one channel), contrast (x U(0.5, 1.5) about the
 *                sample's mean), in that order.
 * Every transform is affine in the image, y = A x + b with A and b drawn per sample, so the
 * backward pass is dx = A^T dy.
 *
 * Randomness: sample i of a batch draws from the per-item stream of (seed, use, first_item
 * + i) (mg_batch_streams.h), so a sample is augmented the same way on any number of ranks;
 * `use` tells apart the real batch, the D step's fakes and the G step's fakes.
 *
 * With `adaptive`, p is not fixed but steered by the trainer (mg_ada.h): ADA's heuristic
 * (Karras et al. 2020) raises p while D is too sure of the real samples. */
#ifndef MG_AUGMENT_H
#define MG_AUGMENT_H

#include <stdbool.h>
#include <stdint.h>

#include "mg_cfg.h"
#include "mg_layer.h"

/* `train.augment.adaptive: {target, interval, speed}`: every `interval` D updates p moves
 * by sign(r_t - target) * batch * interval / speed, r_t = E[sign(D(real))] over those
 * updates (mg_ada.h). */
typedef struct {
    bool on;
    double target;    /* wanted E[sign(D(real))]: 0.6 */
    int interval;     /* D updates between two adjustments: 4 */
    double speed;     /* images for p to go from 0 to 1: 500000 */
} mg_ada_cfg;

typedef struct {
    bool on;
    bool translation, cutout, color;
    float p;          /* probability that a sample gets each policy (adaptive: at the start) */
    mg_ada_cfg adaptive;
} mg_augment_cfg;

/* `train.augment: {policy: [translation, cutout, color], p: 1.0, adaptive: {...}}`;
 * absent: off. Unknown policies or keys, an empty list, p or target outside [0, 1], an
 * interval below 1 and a speed not above 0 are errors naming the key. */
mg_augment_cfg mg_augment_cfg_from(mg_cfg_node node);

/* What the draws of one batch decided, kept for its backward pass. */
typedef struct {
    int n, max_n;
    mg_shape shape;
    int *shift;       /* (n, 2): dy, dx of the translation (0, 0 without) */
    int *cut;         /* (n, 3): top, left, size of the cutout (size 0 without) */
    float *color;     /* (n, 3): brightness add, saturation factor, contrast factor */
    float *scratch;   /* one sample */
} mg_augment;

void mg_augment_init(mg_augment *a, mg_shape shape, int max_n);
void mg_augment_free(mg_augment *a);

/* y (n, shape) = aug(x); draws the batch's parameters. x and y may not overlap. */
void mg_augment_forward(mg_augment *a, const mg_augment_cfg *cfg, const float *x, float *y, int n, uint64_t seed,
                        uint32_t use, uint64_t first_item);
/* dx = A^T dy for the batch of the last forward pass. dy and dx may not overlap.
 * (const a: the scratch it writes is the augmentation's own.) */
void mg_augment_backward(const mg_augment *a, const float *dy, float *dx);

#endif
