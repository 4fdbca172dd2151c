/* HDF5 files of the evaluation: the ONLY module that knows their layouts.
 * docs/evaluation.md describes them for users; h5dump or h5py read them all.
 *
 * Extractor model (format "mpigan-classifier"), written by `mpigan classifier train`:
 *   /config      string: the classifier's YAML config as given
 *   /overrides   string: its --set assignments, one per line (may be empty)
 *   /param       float32 (n_param)  the network's flat parameters
 *   /state       float32 (n_state)  BatchNorm running statistics
 *   /test_label_hist  float64 (n_classes)  the test set's labels, counted per class
 *   /test_pred_hist   float64 (n_classes)  the classes predicted on the test set, counted
 *   root attributes: format, format_version, checksum (uint64) and checksum_hex,
 *   feature_layer, feature_dim, n_classes, test_accuracy, train_data, test_data, seed,
 *   steps, n_ranks, train_seconds, label_factor (the factor column the classes are, e.g.
 *   "colour"; "" for the data file's labels).
 * The two histograms and label_factor came later (factor coverage, docs/evaluation.md):
 * files without them still load, as classifiers over the labels with no histograms.
 * The checksum covers config, overrides, param and state (mg_model_checksum); reading
 * recomputes it and refuses a file that does not match (corruption, hand edits).
 *
 * Reference statistics cache (format "mpigan-refstats"): what FID, KID and coverage need
 * of a real data set, computed once per (extractor, data file):
 *   /mu f64 (d)  /cov f64 (d, d)  /class_hist f64 (k)  /features f32 (n, d)
 *   root attributes: format, format_version, the key (extractor_checksum, data_path as
 *   an absolute path, data_bytes, data_mtime_ns), n, is_mean, is_std, labelled_classes.
 *   Since format version 2, when the data file has labels (labelled_classes = k > 0),
 *   the per-class statistics for per-class FID:
 *   /class_n f64 (k)  /class_mu f64 (k, d)  /class_cov f64 (k, d, d)
 *   (a class with at most d samples has no covariance: its mu and cov are zeros).
 *   A version-1 file (no labelled_classes) is not read: it is recomputed, once.
 *
 * Per-sample features (format "mpigan-features", `mpigan eval --save-features`):
 *   /features f32 (n, d)  /probs f32 (n, k)
 *   root attributes: format, format_version, source, extractor, extractor_checksum, seed.
 *
 * Generator samples (`mpigan sample -o FILE.h5` or any other tool): `images` float32 in
 * [-1, 1] or uint8 (N, C, H, W), or `x` float32 (N, D); read here by rows. mpigan writes
 * float32 and a root attribute source (what the samples came from); for a class-conditional
 * generator also `labels` int32 (N), the class each sample was drawn with, and a root
 * attribute classes (K, the generator's class count).
 *
 * Every file is written to PATH.tmp-PID and renamed when complete (mg_h5_commit); every
 * HDF5 call is checked (mg_h5util.h) and failures name the file and the object. */
#ifndef MG_EVAL_FILES_H
#define MG_EVAL_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- extractor model ---- */

#define MG_MODEL_FORMAT_VERSION 1

typedef struct {
    char *config_text;       /* owned (mg_free) */
    char *overrides;         /* owned; "" when none */
    float *param, *state;    /* owned */
    size_t n_param, n_state;
    uint64_t checksum;       /* set by mg_model_file_write / verified by the reader */
    char feature_layer[64];
    int feature_dim, n_classes;
    double test_accuracy;
    char train_data[1024], test_data[1024];
    uint64_t seed;
    long steps;
    int n_ranks;
    double train_seconds;
    char label_factor[64];   /* the factor the classes are ("" = the data file's labels) */
    double *test_label_hist; /* owned, n_classes counts over the test set, or NULL (older files) */
    double *test_pred_hist;  /* owned, the same for the predicted classes, or NULL */
} mg_model_file;

/* FNV-1a based checksum of the four parts (each hashed with mg_checksum, then the four
 * hashes hashed again). */
uint64_t mg_model_checksum(const char *config_text, const char *overrides, const float *param, size_t n_param,
                           const float *state, size_t n_state);
/* Computes m->checksum and writes path atomically (creating its directory). */
void mg_model_file_write(const char *path, mg_model_file *m);
/* Reads and verifies path into m (allocating its buffers). */
void mg_model_file_read(const char *path, mg_model_file *m);
void mg_model_file_free(mg_model_file *m);

/* ---- reference statistics cache ---- */

#define MG_REFSTATS_FORMAT_VERSION 2

/* What identifies the statistics: the extractor and the data file's identity. */
typedef struct {
    uint64_t extractor_checksum;
    char data_path[1024];    /* absolute */
    int64_t data_bytes;
    int64_t data_mtime_ns;
} mg_refstats_key;

typedef struct {
    mg_refstats_key key;
    int64_t n;
    int dim, n_classes;
    double *mu, *cov, *class_hist; /* owned: (dim), (dim, dim), (n_classes) */
    float *features;               /* owned: (n, dim) */
    double is_mean, is_std;        /* the data's own Inception Score (informative) */
    /* per-class statistics of labelled data (labelled_classes = n_classes), else 0 and NULL:
     * class_n (K) samples, class_mu (K, dim), class_cov (K, dim, dim); owned */
    int labelled_classes;
    double *class_n, *class_mu, *class_cov;
} mg_refstats;

/* The key of data_path for an extractor (stat(2) and realpath(3); fatal if missing). */
void mg_refstats_key_of(mg_refstats_key *key, const char *data_path, uint64_t extractor_checksum);
/* Reads path if it exists, is a complete cache file and its key equals want: returns
 * true. Otherwise returns false with the reason in why (missing, other extractor, data
 * file changed, unreadable): the caller recomputes. */
bool mg_refstats_read(const char *path, const mg_refstats_key *want, mg_refstats *r, char *why, size_t why_size);
void mg_refstats_write(const char *path, const mg_refstats *r);
void mg_refstats_free(mg_refstats *r);

/* ---- per-sample features ---- */

void mg_features_file_write(const char *path, const float *features, int64_t n, int dim, const float *probs,
                            int n_classes, const char *source, const char *extractor, uint64_t extractor_checksum,
                            uint64_t seed);

/* ---- generator samples ---- */

typedef struct mg_samples_file mg_samples_file;

/* Writes n samples, (n, c, h, w) floats, atomically (creating path's directory): images
 * (N, C, H, W) when h or w exceeds 1, else vectors x (N, C); source names their origin.
 * labels: the n classes the samples were drawn with, out of n_classes (NULL: none). */
void mg_samples_file_write(const char *path, const float *samples, int64_t n, int c, int h, int w,
                           const int *labels, int n_classes, const char *source);

typedef struct {
    bool images;         /* images (N, C, H, W), else vectors x (N, D) */
    bool uint8;          /* images stored as uint8 (0..255) rather than float32 */
    int64_t n;
    int c, h, w;         /* vectors: (D, 1, 1) */
} mg_samples_info;

/* Opens path read-only and checks the dataset's presence, rank and type (fatal otherwise). */
mg_samples_file *mg_samples_open(const char *path, mg_samples_info *info);
/* Rows [start, start + count) as floats: uint8 v -> v / 127.5 - 1, float32 as stored
 * (images must lie in [-1, 1]: a value outside is fatal, naming the sample). */
void mg_samples_read(mg_samples_file *f, int64_t start, int64_t count, float *dst);
void mg_samples_close(mg_samples_file *f);

#endif
