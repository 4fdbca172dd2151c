/* Distributed evaluation of a generator or a set of samples (docs/evaluation.md).
 *
 * Images. Samples (from a generator, a samples file or a real data file) are cut into
 * batches of cfg.batch, and each rank takes a contiguous run of whole batches (so any
 * rank count runs the networks on the same batches: the features are the same bits
 * whatever the number of ranks). Each rank makes its share batch by batch, passes them
 * through the feature extractor (mg_extractor.h) and adds features and class
 * probabilities into an mg_eval_sums. One reduction brings the sums to rank 0, which
 * computes FID against the reference statistics, IS and class coverage; the features
 * are all-gathered and KID's subsets are shared out over the ranks. Sample g's noise
 * comes from its own stream (seed, g) and its IS split from a seeded permutation of
 * the N indices, so the numbers do not depend on the number of ranks.
 *
 * Conditional generators (G->conditional: its labels are drawn uniformly per item from
 * (seed, MG_STREAM_LABELS, g)) and real data files with labels: when the label classes
 * are the extractor's classes, the labelled parts of the sums (mg_metrics.h) give the
 * class accuracy and, against the reference's per-class statistics, per-class FID and
 * intra-FID. When the class counts differ the conditional metrics are skipped, with the
 * reason in conditional_note (printed once when verbose): an extractor over other classes
 * cannot say whether a sample shows its requested class.
 *
 * Reference statistics (mean and covariance of the real data's features in float64, their
 * class histogram, the features themselves for KID) are computed once per extractor and
 * data file and cached in HDF5 (mg_eval_files.h); a cache whose key does not match is
 * recomputed, never reused.
 *
 * Factor coverage (mg_coverage.h): with coverage extractors (cfg.coverage), every sample is
 * also classified by each per-factor classifier; the counts per predicted value go to
 * rank 0 in one more small reduction, and the report says per factor how many values the
 * samples show and how far their histogram is from the real test set's.
 *
 * 2-D mixtures (vector samples): mode counting (mg_metrics.h) over the samples, plus a
 * scatter plot written by rank 0.
 *
 * Everything here is collective unless said otherwise; results are valid on rank 0. */
#ifndef MG_EVAL_H
#define MG_EVAL_H

#include <stdbool.h>
#include <stdint.h>

#include "mg_coverage.h"
#include "mg_h5schema.h"
#include "mg_metrics.h"
#include "mg_net.h"

#define MG_EVAL_MAX_CLASSES 256

typedef struct {
    char extractor[1024];     /* classifier model file */
    char reference[1024];     /* real data file; "" = the extractor's training data */
    char cache_dir[1024];     /* reference statistics cache; "" = the extractor's directory */
    int batch;                /* samples per rank and batch (generation and extraction) */
    int splits;               /* IS splits (10) */
    int kid_subsets;          /* KID subsets (100) */
    int kid_subset_size;      /* KID subset size (1000; lowered to the smaller set's size) */
    bool verbose;             /* rank 0 reports what it does (cache use, progress) */
    mg_shape samples_shape;   /* if c > 0: the shape of the samples to come, checked against
                               * the extractor's input before the reference statistics */
    int n_coverage;           /* coverage extractors (factor classifiers), 0 = no factor coverage */
    char coverage[MG_COVERAGE_MAX][1024]; /* their model files */
} mg_eval_cfg;

/* batch 250, splits 10, KID 100 x 1000, extractor runs/classifier/classifier.h5. */
void mg_eval_cfg_default(mg_eval_cfg *c);

typedef struct {
    /* what was measured */
    int64_t n;
    uint64_t seed;
    char source[1100];              /* "checkpoint PATH", "samples PATH", "real PATH", "generator" */
    bool mixture;                   /* 2-D mode counting instead of extractor metrics */
    /* extractor metrics */
    char extractor[1024], reference[1024];
    uint64_t extractor_checksum;
    int dim, n_classes;
    mg_fid_result fid;
    double is_mean, is_std;
    int is_splits;
    double kid_mean, kid_std;
    int kid_subsets, kid_subset_size;
    mg_coverage coverage;
    double class_hist[MG_EVAL_MAX_CLASSES];
    int64_t reference_n;
    double reference_is_mean, reference_is_std;
    bool reference_recomputed;
    /* labelled samples: a conditional generator's requested classes, or a real data file's
     * labels, over the extractor's classes (docs/evaluation.md, "Conditional generators") */
    bool labelled;                                    /* the fields below are set */
    double class_accuracy;                            /* argmax class == label, over all */
    double class_accuracy_per[MG_EVAL_MAX_CLASSES];   /* per label (NAN: no samples) */
    double class_count[MG_EVAL_MAX_CLASSES];          /* samples per label */
    bool class_fid_done;                              /* the reference has per-class statistics */
    double class_fid[MG_EVAL_MAX_CLASSES];            /* per label (NAN: <= dim samples on a side) */
    double intra_fid;                                 /* mean of class_fid (NAN if any is) */
    char conditional_note[300];                       /* why conditional metrics are missing, or "" */
    /* factor coverage: one entry per coverage extractor (docs/evaluation.md, "Factor coverage") */
    int n_factors;
    mg_factor_coverage factors[MG_COVERAGE_MAX];
    /* mixtures */
    mg_mode_report modes;
    char mixture_generator[16];
    /* seconds (slowest rank, except linalg: rank 0) */
    double time_generate, time_features, time_coverage, time_reduce, time_linalg, time_kid, time_reference, time_total;
} mg_eval_result;

typedef struct mg_evaluator mg_evaluator;

/* Loads the extractor and the coverage extractors on every rank (each rank alone: a bad
 * file fails every rank before any collective call), then the reference statistics (from
 * the cache, or computed over all ranks and cached by rank 0). */
mg_evaluator *mg_evaluator_create(const mg_eval_cfg *cfg);
void mg_evaluator_free(mg_evaluator *e);
/* The extractor's feature dimension (an evaluation needs more samples than this). */
int mg_evaluator_feature_dim(const mg_evaluator *e);

/* n samples of G (evaluation mode; G's activations are overwritten, its parameters and
 * statistics untouched), noise of sample g from (seed, MG_STREAM_EVAL, g). G must be the
 * same on every rank (the trainer's replicas are). For images. */
mg_eval_result mg_evaluator_run_generator(mg_evaluator *e, mg_net *G, int64_t n, uint64_t seed);

/* Samples read from a file: a samples file (`images` float32/uint8 or `x`), or with
 * real = true a data file in the training format (mg_h5schema.h). n = 0: all of them. */
mg_eval_result mg_evaluator_run_file(mg_evaluator *e, const char *path, bool real, int64_t n, uint64_t seed);

/* From now on, every run also gathers each sample's features and class probabilities to
 * rank 0, which writes them to path (mg_eval_files.h); NULL or "" stops it. */
void mg_evaluator_save_features(mg_evaluator *e, const char *path);

/* ---- 2-D mixtures (no extractor) ---- */

/* Mode counting over n samples of G (noise as above), or of a file of vectors `x`
 * (samples file, or real = true a data file); mix gives the true means and sigma.
 * png, if not NULL or "", gets a scatter plot of (at most 20000 of) the samples. */
mg_eval_result mg_eval_mixture_generator(mg_net *G, int64_t n, uint64_t seed, const mg_mixture_info *mix, int batch,
                                         const char *png);
mg_eval_result mg_eval_mixture_file(const char *path, bool real, int64_t n, const mg_mixture_info *mix, int batch,
                                    const char *png);

/* ---- output ---- */

/* One JSON object with every number of r (NaN as null). Allocated (mg_free). */
char *mg_eval_result_json(const mg_eval_result *r);
/* A few human-readable lines. Allocated (mg_free). */
char *mg_eval_result_text(const mg_eval_result *r);

/* `mpigan eval`: scores a checkpoint or a samples file (src/eval/eval_cmd.c).
 * A command as mg_cmd.h defines it. */
int mg_cmd_eval(int argc, char **argv);

#endif
