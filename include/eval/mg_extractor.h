/* The evaluation's feature extractor: a classifier trained by `mpigan classifier train`
 * (mg_classifier.h), loaded from its model file (mg_eval_files.h) and run in evaluation
 * mode (BatchNorm running statistics), so a sample's features do not depend on the
 * other samples of its batch.
 *
 * The features are the output of one named layer (the penultimate representation, e.g.
 * the 128 units after the last hidden BatchNorm + ReLU); the class probabilities are the
 * softmax of the network's output, computed in double. */
#ifndef MG_EXTRACTOR_H
#define MG_EXTRACTOR_H

#include <stdint.h>

#include "mg_net.h"

typedef struct {
    mg_net net;
    int feature_layer;      /* index into net.layers whose output is the feature vector */
    int dim, n_classes;     /* feature dimension, classes (the network's output size) */
    uint64_t checksum;      /* the model file's verified checksum */
    double test_accuracy;   /* as measured after training */
    char path[1024];
    char label_factor[64];  /* the factor its classes are ("" = the data file's labels) */
    char test_data[1024];   /* the real data test_accuracy and test_pred_hist come from */
    double *test_pred_hist; /* owned: n_classes counts of the classes predicted on test_data,
                             * or NULL (files written before factor coverage) */
} mg_extractor;

/* Index of the layer called name in net (a YAML layer's `name:`), or -1. */
int mg_extractor_find_layer(const mg_net *net, const char *name);

/* Loads path (checksum verified), rebuilds the network from the stored config and
 * overrides for batches up to max_batch, and binds the stored parameters and statistics.
 * Collective-free: every rank may load its own copy. */
void mg_extractor_load(mg_extractor *ex, const char *path, int max_batch);

/* x (n, C, H, W) in [-1, 1] -> feats (n, dim) and probs (n, n_classes), either of which
 * may be NULL. Any n: batches of at most max_batch are run in turn. */
void mg_extractor_run(mg_extractor *ex, const float *x, int64_t n, float *feats, float *probs);

/* The class of each of the n samples x (n, C, H, W): the argmax of the logits, first
 * maximum, the rule the classifier's test scoring counts with (test_pred_hist). */
void mg_extractor_classify(mg_extractor *ex, const float *x, int64_t n, int *classes);

void mg_extractor_free(mg_extractor *ex);

#endif
