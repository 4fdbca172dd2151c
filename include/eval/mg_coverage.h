/* Factor coverage (docs/evaluation.md, "Factor coverage"): which values of each generative
 * factor (colour, position, scale, ... of the shapes set) the samples of an evaluation
 * show, as judged by one small classifier per factor, trained by `mpigan classifier train`
 * with classifier.label: {factor: NAME} (a "coverage extractor").
 *
 * Each coverage extractor classifies every sample the evaluation already makes (the
 * argmax of its logits, mg_extractor_classify); each rank counts its samples per
 * predicted value into one flat array of doubles (every extractor's values back to back),
 * the arrays are summed to rank 0, and rank 0 turns the counts into, per factor:
 *   - values_over_1pct: values predicted for at least 1% of the samples, out of the
 *     factor's size (the rule of the class coverage's classes_over_1pct);
 *   - tv: the total-variation distance between the samples' predicted-value histogram
 *     and the SAME classifier's predicted histogram on its real test set (stored in its
 *     model file when it was trained). Predictions are compared with predictions so that
 *     the classifier's own confusions cancel: samples drawn like the real data score
 *     TV ~ 0 (up to sampling noise) however accurate the classifier is, while against the
 *     true factor histogram they would score the classifier's bias;
 *   - accuracy: the classifier's own test accuracy, how far to trust the two above.
 * The counts are whole numbers and the samples go through the same batches at any rank
 * count, so the numbers do not depend on the number of ranks.
 *
 * Loading is local (no MPI): every rank loads its own copies and fails alike on a bad
 * file, before any collective call. */
#ifndef MG_COVERAGE_H
#define MG_COVERAGE_H

#include <stddef.h>
#include <stdint.h>

#include "mg_layer.h"

#define MG_COVERAGE_MAX 16          /* coverage extractors per evaluation */
#define MG_COVERAGE_MAX_VALUES 64   /* values of one factor */

/* One factor's report. */
typedef struct {
    char factor[64];                           /* the factor's name (the model file's label_factor) */
    char extractor[1024];                      /* the coverage extractor's model file */
    uint64_t checksum;                         /* its checksum */
    int n_values;                              /* the factor's size = the classifier's classes */
    double hist[MG_COVERAGE_MAX_VALUES];       /* samples per predicted value */
    double real_hist[MG_COVERAGE_MAX_VALUES];  /* real test images per predicted value */
    double real_n;                             /* real test images */
    char real_data[1024];                      /* the test set they come from */
    double accuracy;                           /* the classifier's accuracy on that test set */
    int values_over_1pct, values_seen;         /* values predicted for >= 1% / >= 1 sample */
    double tv;                                 /* TV(hist, real_hist) of the normalised histograms */
} mg_factor_coverage;

typedef struct mg_coverage_set mg_coverage_set;

/* Loads the n coverage extractors paths[0..n) for samples of shape in, each run in batches
 * of at most max_batch. Each must be a classifier model file taking `in`, trained on a
 * factor, with its test histograms and at most MG_COVERAGE_MAX_VALUES classes; two may not
 * judge the same factor. A violation is fatal, naming the file and what is wrong. */
mg_coverage_set *mg_coverage_load(const char *const *paths, int n, mg_shape in, int max_batch);
void mg_coverage_free(mg_coverage_set *c);

/* Coverage extractors loaded. */
int mg_coverage_count(const mg_coverage_set *c);
/* Length of the counts array: the sum of the factors' sizes. */
size_t mg_coverage_n_counts(const mg_coverage_set *c);

/* Classifies the n samples x (n, C, H, W) with every coverage extractor and adds one count
 * per sample and extractor into counts (mg_coverage_n_counts doubles). */
void mg_coverage_add(mg_coverage_set *c, const float *x, int n, double *counts);

/* The reports from counts summed over all samples: out gets mg_coverage_count entries. */
void mg_coverage_finish(const mg_coverage_set *c, const double *counts, mg_factor_coverage *out);

#endif
