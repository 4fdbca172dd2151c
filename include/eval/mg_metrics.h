/* Sample-quality metrics: FID, Inception Score, KID, class coverage, and mode counting
 * for the 2-D Gaussian mixtures. Pure arithmetic: no MPI, no files.
 *
 * Distributed use. Everything FID, IS, coverage and mode counting need is a sum over
 * samples, so each rank adds its samples into an mg_eval_sums (one flat array of
 * doubles), one reduction sums the arrays, and one rank turns the totals into numbers
 * (the finishing functions below). Which IS split a sample belongs to depends only on its global
 * index and a seed (mg_split_assignment), never on the number of ranks. KID needs the
 * feature vectors themselves; its random subsets are numbered, each drawn from its own
 * stream, so any rank can compute any subset and one reduction collects the estimates.
 *
 * Definitions (features x in R^d, class probabilities p(y|x) over k classes):
 *   FID  = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))        Heusel et al. 2017
 *          S = unbiased covariance (n - 1 denominator); Tr (S1 S2)^(1/2) is computed as
 *          the sum of square roots of the eigenvalues of the symmetric PSD matrix
 *          S1^(1/2) S2 S1^(1/2), so the result is real by construction.
 *   IS   = exp(E_x KL(p(y|x) || p(y))), p(y) the mean of p(y|x) over the split;
 *          mean and population standard deviation over splits    Salimans et al. 2016
 *   KID  = unbiased MMD^2 with kernel k(a, b) = (a.b / d + 1)^3, averaged over random
 *          subsets of m samples of each set (without replacement)  Binkowski et al. 2018
 *   coverage  histogram of argmax_y p(y|x), its entropy (nats), classes holding >= 1%.
 *   factor coverage  for one factor's classifier: values predicted for >= 1% of the
 *          samples, and TV(h, r) = 1/2 sum_v |h_v / sum h - r_v / sum r| between the samples'
 *          predicted-value histogram h and the real data's r (docs/evaluation.md)
 *   modes (2-D mixtures)  a sample is high quality when its Euclidean distance to the
 *          nearest mean is at most 3 sigma; a mode is covered when it is the nearest
 *          mean of at least one high-quality sample; KL(h || uniform) of the histogram h
 *          of high-quality samples over modes                      Srivastava et al. 2017,
 *                                                                  Lin et al. 2018 */
#ifndef MG_METRICS_H
#define MG_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- per-sample sums, reduced across ranks as one array ---- */

/* Layout of buf (all doubles; a part is empty when its size is 0):
 *   count[1]                        samples added
 *   feat_sum[dim]                   sum of x
 *   feat_outer[dim * dim]           sum of x x^T (row-major; only the lower triangle is
 *                                   accumulated, mg_gaussian_from_sums mirrors it)
 *   split_count[n_splits]           samples per IS split
 *   split_prob[n_splits * n_classes] sum of p(y|x) per split
 *   split_plogp[n_splits]           sum over the split of sum_y p log p (0 log 0 = 0)
 *   class_hist[n_classes]           samples per predicted class (argmax, first maximum)
 *   mode_hist[n_modes]              high-quality samples per nearest mixture mode
 * and for labelled samples (n_labels = K > 0: each sample comes with a class label, the
 * class a conditional generator was asked for, or a real sample's class):
 *   label_count[K]                  samples per label
 *   label_correct[K]                of them, those whose argmax class equals the label
 *   label_feat_sum[K * dim]         sum of x per label
 *   label_feat_outer[K * dim * dim] sum of x x^T per label (lower triangles, as above) */
typedef struct {
    int dim, n_classes, n_splits, n_modes, n_labels;
    size_t n_values;  /* doubles in buf */
    double *buf;      /* owned; the views below point into it */
    double *count, *feat_sum, *feat_outer, *split_count, *split_prob, *split_plogp, *class_hist, *mode_hist;
    double *label_count, *label_correct, *label_feat_sum, *label_feat_outer;
} mg_eval_sums;

/* Sums without the labelled parts (n_labels = 0). */
void mg_eval_sums_init(mg_eval_sums *s, int dim, int n_classes, int n_splits, int n_modes);
/* Sums with the labelled parts for n_labels classes; n_labels > 0 needs
 * n_labels == n_classes (the extractor classifies over the labels' classes). */
void mg_eval_sums_init_labelled(mg_eval_sums *s, int dim, int n_classes, int n_splits, int n_modes, int n_labels);
void mg_eval_sums_zero(mg_eval_sums *s);
void mg_eval_sums_free(mg_eval_sums *s);

/* Adds n samples: feats (n, dim) (may be NULL when dim is 0), probs (n, n_classes) (may be
 * NULL when n_classes is 0), split (n) the IS split of each sample (NULL when n_splits
 * is 0). Non-finite features or probabilities are a fatal error naming `what`. */
void mg_eval_sums_add(mg_eval_sums *s, const float *feats, const float *probs, const int *split, int64_t n,
                      const char *what);

/* Adds the labelled parts of n samples (count them with mg_eval_sums_add as well):
 * feats (n, dim), probs (n, n_classes), labels (n) in 0 .. n_labels-1. A label out of
 * range or a non-finite feature is a fatal error naming `what`. */
void mg_eval_sums_add_labels(mg_eval_sums *s, const float *feats, const float *probs, const int *labels, int64_t n,
                             const char *what);

/* Adds n 2-D points x (n, 2) to count and the mode histogram: means (n_modes, 2),
 * sigma > 0. For sums made with dim = n_classes = n_splits = 0. */
void mg_eval_sums_add_points(mg_eval_sums *s, const float *x, int64_t n, const double (*means)[2], double sigma);

/* Split of every sample: a seeded permutation of the n global indices cut into n_splits
 * consecutive parts (sizes differ by at most one). split (n) is written. n >= n_splits. */
void mg_split_assignment(int *split, int64_t n, int n_splits, uint64_t seed);

/* ---- finishing ---- */

/* Mean and unbiased covariance from n, sum (d) and the full sum of outer products
 * (d, d): cov = (outer - n mu mu^T) / (n - 1). Fails (naming what) unless n > d:
 * a covariance from fewer samples than dimensions is singular. */
void mg_gaussian_from_sums(double n, const double *sum, const double *outer, int d, double *mu, double *cov,
                           const char *what);

typedef struct {
    double fid;
    double mean_term;    /* |mu1 - mu2|^2 */
    double trace_sqrt;   /* Tr (S1 S2)^(1/2) */
    int clamped;         /* negative eigenvalues set to 0 (rounding; both decompositions) */
    double most_negative;/* the most negative eigenvalue met, 0 if none */
} mg_fid_result;

/* FID between Gaussians (mu1, cov1) and (mu2, cov2) of dimension d, in float64, with two
 * symmetric eigendecompositions (LAPACK dsyevd): S1 = V^T diag(l) V, then the eigenvalues
 * of A S2 A^T with A = diag(sqrt l) V, which is S1^(1/2) S2 S1^(1/2) in S1's eigenbasis.
 * Inputs are only read. Non-finite input or a LAPACK failure is fatal. */
mg_fid_result mg_fid(const double *mu1, const double *cov1, const double *mu2, const double *cov2, int d);

/* Inception Score from the split sums of an mg_eval_sums: per split s with c_s samples,
 * KL_s = plogp_s / c_s - sum_y pbar_y log pbar_y, pbar = prob_s / c_s; IS_s = exp(KL_s).
 * Writes the mean and population standard deviation over the splits with c_s > 0. */
void mg_inception_score(const mg_eval_sums *s, double *mean, double *std);

typedef struct {
    double entropy;          /* -sum p log p of the predicted-class histogram, nats */
    double entropy_max;      /* log k */
    int classes_over_1pct;   /* classes predicted for at least 1% of the samples */
    int classes_seen;        /* classes predicted at least once */
} mg_coverage;

mg_coverage mg_class_coverage(const mg_eval_sums *s);

/* One factor's coverage from counts: hist (k) samples per predicted value, ref (k) the real
 * data's counts per predicted value. values_over_1pct: values with hist >= 1% of the
 * samples; values_seen: with hist > 0; tv: the total-variation distance between the two
 * normalised histograms (0 equal, 1 disjoint; NAN when either is empty). */
typedef struct {
    int values_over_1pct, values_seen;
    double tv;
} mg_hist_coverage;

mg_hist_coverage mg_hist_coverage_of(const double *hist, const double *ref, int k);

/* ---- labelled samples: class accuracy and per-class FID ---- */

/* Fraction of the labelled samples whose argmax class equals their label (NAN when there
 * are none); per_class (n_labels, may be NULL) gets the same per label (NAN for a label
 * with no samples). */
double mg_label_accuracy(const mg_eval_sums *s, double *per_class);

/* Per-class FID: for each label k, the FID between the Gaussian of the samples labelled k
 * (from s's labelled sums) and the reference Gaussian of class k: ref_n (K) samples,
 * ref_mu (K, d), ref_cov (K, d, d). fid (K) gets the values; a class with at most d
 * samples on either side has no covariance and gets NAN. Returns intra-FID, the mean
 * over the K classes (NAN when any class has none). */
double mg_class_fids(const mg_eval_sums *s, const double *ref_n, const double *ref_mu, const double *ref_cov,
                     double *fid);

typedef struct {
    int n_modes;
    int modes_covered;
    double high_quality_fraction; /* high-quality samples / all samples */
    double kl_uniform;            /* KL(h || uniform), nats; NAN when no sample is high quality */
} mg_mode_report;

mg_mode_report mg_mode_report_from(const mg_eval_sums *s);

/* ---- KID ---- */

/* Unbiased MMD^2 estimates on subsets j = first, first + stride, ... < n_subsets, written
 * to estimates[j] (other entries untouched). Subset j draws m rows of x (nx, d) and m
 * rows of y (ny, d) without replacement from the Philox stream (seed, j), so any rank
 * can compute any subset: ranks fill disjoint entries of a zeroed array and one sum
 * reduction collects them exactly. 2 <= m <= nx, ny (fatal otherwise). */
void mg_kid_subsets(const float *x, int64_t nx, const float *y, int64_t ny, int d, int m, int n_subsets,
                    uint64_t seed, int first, int stride, double *estimates);

/* Mean and population standard deviation of estimates[0..n_subsets). */
void mg_kid_finish(const double *estimates, int n_subsets, double *mean, double *std);

#endif
