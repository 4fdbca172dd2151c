/* Evaluation during training (docs/evaluation.md, docs/training.md): every
 * eval.interval steps and at the end of the run, all ranks score the current generator
 * with the machinery of `mpigan eval` (mg_eval.h) and rank 0 appends the numbers to
 * metrics.jsonl and the progress output.
 *
 * Images: FID, IS, KID and class coverage with the feature extractor, and with
 * eval.coverage the factor coverage of each listed factor classifier; the extractors and
 * the reference statistics are loaded once, when the trainer is created. 2-D mixtures
 * (ring8, grid25, or an HDF5 mixture file): modes covered, % high quality and KL, plus a
 * scatter plot per evaluation; no extractor.
 *
 * The evaluated generator runs as a copy: its own network (same config, a batch sized
 * for evaluation) into which the trainer's G parameters and BatchNorm statistics are
 * copied. The noise comes from the evaluation stream (eval.seed, MG_STREAM_EVAL, sample
 * index). So the training G's activations, the training noise and data streams and
 * every other training state stay untouched: a run trains bitwise the same with the
 * evaluation on or off. */
#ifndef MG_TRAIN_EVAL_H
#define MG_TRAIN_EVAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "mg_cfg.h"
#include "mg_coverage.h"
#include "mg_net.h"

/* The config's eval: section. Owned strings in fixed buffers; no pointers. */
typedef struct {
    long interval;            /* steps between evaluations; 0 = off (default) */
    long samples;             /* samples per evaluation; 0 = automatic: 5000 images, 2500 2-D */
    uint64_t seed;            /* noise, IS splits, KID subsets (default: train.seed) */
    int batch;                /* samples per rank and forward pass (default 100) */
    int splits;               /* IS splits (10) */
    int kid_subsets;          /* KID subsets (default 20: a fifth of `mpigan eval`'s cost) */
    int kid_subset_size;      /* KID subset size (1000) */
    char extractor[1024];     /* classifier model file (default runs/classifier/classifier.h5) */
    char reference[1024];     /* real data for FID/KID; "" = the extractor's training data */
    char cache_dir[1024];     /* reference statistics cache; "" = the extractor's folder */
    int n_coverage;           /* factor classifiers for factor coverage (mg_coverage.h); 0 = none */
    char coverage[MG_COVERAGE_MAX][1024]; /* their model files (eval.coverage: [FILE, ...]) */
    char where[300];          /* config place of the section, for error messages */
    char coverage_where[300]; /* config place of eval.coverage ("" when absent) */
} mg_train_eval_cfg;

/* Reads the eval: mapping (absent: evaluation off), types and ranges checked; errors name
 * file:line:col and the key. train_seed is eval.seed's default. */
void mg_train_eval_cfg_read(mg_train_eval_cfg *c, mg_cfg_node eval, uint64_t train_seed);

/* The resolved section as one YAML line ("eval: {...}\n"). Allocated (mg_free). */
char *mg_train_eval_cfg_yaml(const mg_train_eval_cfg *c);

typedef struct mg_train_eval mg_train_eval;

/* What the generator makes, so the evaluation knows which metrics apply. */
typedef struct {
    mg_cfg_node gspec;        /* the generator's config mapping (its copy is built from it) */
    const mg_net *G;          /* shapes only */
    int mixture_kind;         /* in-memory 2-D data: MG_MIXTURE_RING/GRID (mg_convert.h); -1 otherwise */
    const char *data_path;    /* HDF5 training data (mixture attributes are read from it), or NULL */
    const char *run_dir;      /* 2-D data: scatter plots go to run_dir/eval/ */
} mg_train_eval_target;

/* Prepares the evaluation: NULL when c->interval is 0. Images: loads the extractor on every
 * rank (a missing or invalid file, or input shape other than G's output shape, is an error
 * on every rank before any collective call) and the reference statistics (cache, or
 * computed over all ranks). 2-D vectors: the mixture's means from the data. Collective. */
mg_train_eval *mg_train_eval_create(const mg_train_eval_cfg *c, const mg_train_eval_target *target, bool verbose);

/* Whether an evaluation follows the completed step `step` of a run of `steps`. */
bool mg_train_eval_due(const mg_train_eval *e, long step, long steps);

/* Scores G (its parameters and BatchNorm statistics are copied; G is only read). Rank 0
 * appends {"step": step, "eval": {...}} to metrics (if not NULL) and, when verbose, prints
 * a progress line. Returns the seconds it took (the same on every rank). Collective. */
double mg_train_eval_run(mg_train_eval *e, const mg_net *G, long step, FILE *metrics);

void mg_train_eval_free(mg_train_eval *e);

#endif
