/* `mpigan classifier train`: the evaluation's feature extractor, a small CNN trained
 * data-parallel on a labelled image data set (Fashion-MNIST) and never touched by GAN
 * training. It is what FID, IS and KID measure with (mg_extractor.h, docs/evaluation.md).
 *
 * Config (strict; unknown keys are errors):
 *   classifier:
 *     test_data: FILE.h5        labelled test set, scored after training (required)
 *     epochs: 4                 passes over the training set (steps = ceil(epochs N / batch))
 *     batch: 128                global batch, divisible by the number of ranks
 *     seed: 1
 *     log_interval: 100         steps between progress lines
 *     bn: sync | local          BatchNorm statistics over the global batch (default) or
 *                               the rank's slice (then rank 0's running statistics are kept)
 *     hflip: true               flip each training image left-right with probability 1/2
 *     features: features        name of the layer whose output is the feature vector
 *     label: labels             the classes: the data files' labels (default), or
 *            {factor: NAME}     one factor column of them (e.g. colour of `mpigan data
 *                               shapes`): the loader hands that column out as the labels,
 *                               the model must end in the factor's size, and the test set
 *                               is scored on the same column; the model file records it
 *                               (label_factor), so factor coverage can check it
 *     out: FILE.h5              the model file (mg_eval_files.h)
 *     optimizer: {...}          mg_optim.h (required)
 *     schedule: {...}           mg_sched.h (default constant)
 *   data: {path: FILE.h5, ...}  training set, read by the loader (mg_loader.h)
 *   model: {input: [c, h, w], layers: [...]}   the network; its output is the logits
 *
 * Each step: every rank takes its slice of the global batch from the loader (labels
 * included), forward, softmax cross-entropy, backward, ONE allreduce (mean) of the flat
 * gradient, optimizer step. Replicas therefore stay identical (checked at the end). The
 * test set is scored in evaluation mode, each rank a contiguous share, counts summed; the
 * model file keeps the test set's label and predicted-class histograms beside the accuracy
 * (factor coverage compares generated samples with the latter, docs/evaluation.md). */
#ifndef MG_CLASSIFIER_H
#define MG_CLASSIFIER_H

#include <stdbool.h>
#include <stdint.h>

#include "mg_cfg.h"
#include "mg_net.h"

typedef struct {
    double test_accuracy;       /* fraction of the test set classified correctly */
    double first_loss, final_loss; /* mean training loss of the first / last logged window */
    double train_accuracy;      /* on the last logged window (augmented, train mode) */
    long steps;
    double train_seconds;       /* the training loop (slowest rank) */
    double compute_seconds, allreduce_seconds, data_seconds; /* rank 0's split of it */
    double test_seconds;
    uint64_t checksum;          /* of the written model file */
    int feature_dim, n_classes;
    bool replicas_equal;        /* parameters and statistics identical on every rank */
} mg_classifier_result;

/* Trains per cfg (already parsed from config_text, with overrides applied; both are
 * stored in the model file so the network can be rebuilt). Collective. verbose: rank 0
 * prints progress. Writes classifier.out on rank 0. */
mg_classifier_result mg_classifier_train(mg_cfg *cfg, const char *config_text, const char *overrides, bool verbose);

/* Fraction of the labelled images in path that net (in evaluation mode) classifies
 * correctly; each rank scores a contiguous share in batches of at most net->max_batch,
 * the counts are summed over ranks. Collective. The labels are the file's labels, or
 * with factor (not NULL or "") that factor's column. label_hist and pred_hist (net's k
 * classes each; either may be NULL) get the true and the predicted (argmax, first
 * maximum) classes counted over the file, on every rank. */
double mg_classifier_score(mg_net *net, const char *path, const char *factor, double *label_hist, double *pred_hist);
/* mg_classifier_score on the file's labels, without histograms. */
double mg_classifier_accuracy(mg_net *net, const char *path);

/* `mpigan classifier train CONFIG.yaml` (src/eval/classifier_cmd.c).
 * A command as mg_cmd.h defines it. */
int mg_cmd_classifier(int argc, char **argv);

#endif
