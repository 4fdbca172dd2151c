/* HDF5 layouts of the evaluation's files (see mg_eval_files.h): the extractor model, the
 * reference-statistics cache, per-sample features, and generator sample files. The only
 * module that spells their dataset and attribute names.
 *
 * Each file kind has a writer (a temporary file committed by rename when complete) and a
 * validating reader, built on the checked helpers of mg_h5util.h; the few HDF5 calls made
 * here directly go through H5_OK, which reports the file, the object and HDF5's innermost
 * message through the error path. */
#include "mg_eval_files.h"

#include <errno.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mg_error.h"
#include "mg_h5util.h"
#include "mg_util.h"

#define MODEL_FORMAT "mpigan-classifier"
#define REFSTATS_FORMAT "mpigan-refstats"
#define FEATURES_FORMAT "mpigan-features"

#define H5_OK MG_H5_OK

static void check_format(hid_t f, const char *path, const char *format, int version, const char *hint)
{
    char got[64];
    mg_h5_attr_read_str(f, path, ".", "format", got, sizeof got, hint);
    MG_CHECK(!strcmp(got, format), path, hint, "format is '%s', expected '%s'", got, format);
    int64_t v = mg_h5_attr_read_i64(f, path, ".", "format_version", hint);
    MG_CHECK(v == version, path, "use the mpigan version that wrote it", "%s format version %lld, this build reads %d",
             format, (long long)v, version);
}

/* ---- extractor model ---- */

uint64_t mg_model_checksum(const char *config_text, const char *overrides, const float *param, size_t n_param,
                           const float *state, size_t n_state)
{
    const uint64_t parts[4] = {mg_checksum(config_text, strlen(config_text)), mg_checksum(overrides, strlen(overrides)),
                               mg_checksum(param, n_param * sizeof(float)),
                               mg_checksum(state, n_state * sizeof(float))};
    return mg_checksum(parts, sizeof parts);
}

void mg_model_file_write(const char *path, mg_model_file *m)
{
    m->checksum = mg_model_checksum(m->config_text, m->overrides, m->param, m->n_param, m->state, m->n_state);
    char tmp[1100];
    hid_t f = mg_h5_create_tmp(path, tmp, sizeof tmp);
    mg_h5_attr_write_str(f, tmp, "format", MODEL_FORMAT);
    mg_h5_attr_write_i64(f, tmp, "format_version", MG_MODEL_FORMAT_VERSION);
    mg_h5_attr_write_u64(f, tmp, "checksum", m->checksum);
    char hex[32];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)m->checksum);
    mg_h5_attr_write_str(f, tmp, "checksum_hex", hex);
    mg_h5_attr_write_str(f, tmp, "feature_layer", m->feature_layer);
    mg_h5_attr_write_i64(f, tmp, "feature_dim", m->feature_dim);
    mg_h5_attr_write_i64(f, tmp, "n_classes", m->n_classes);
    mg_h5_attr_write_f64(f, tmp, "test_accuracy", m->test_accuracy);
    mg_h5_attr_write_str(f, tmp, "train_data", m->train_data);
    mg_h5_attr_write_str(f, tmp, "test_data", m->test_data);
    mg_h5_attr_write_u64(f, tmp, "seed", m->seed);
    mg_h5_attr_write_i64(f, tmp, "steps", m->steps);
    mg_h5_attr_write_i64(f, tmp, "n_ranks", m->n_ranks);
    mg_h5_attr_write_f64(f, tmp, "train_seconds", m->train_seconds);
    mg_h5_attr_write_str(f, tmp, "label_factor", m->label_factor);
    mg_h5_write_text(f, tmp, "config", m->config_text);
    mg_h5_write_text(f, tmp, "overrides", m->overrides);
    hsize_t np[1] = {m->n_param}, ns[1] = {m->n_state};
    mg_h5_write_array(f, tmp, "param", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, np, m->param);
    mg_h5_write_array(f, tmp, "state", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, ns, m->state);
    hsize_t nk[1] = {(hsize_t)m->n_classes};
    if (m->test_label_hist)
        mg_h5_write_array(f, tmp, "test_label_hist", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, nk, m->test_label_hist);
    if (m->test_pred_hist)
        mg_h5_write_array(f, tmp, "test_pred_hist", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, nk, m->test_pred_hist);
    mg_h5_commit(f, tmp, path);
}

/* Length of a 1-d dataset. */
static size_t length_of(hid_t f, const char *file, const char *name, const char *hint)
{
    hsize_t dims[1] = {0};
    MG_CHECK(mg_h5_shape(f, file, name, dims, 1, hint) == 1, file, hint, "%s is not 1-dimensional", name);
    return (size_t)dims[0];
}

void mg_model_file_read(const char *path, mg_model_file *m)
{
    static const char hint[] = "train one with `mpigan classifier train configs/classifier.yaml`";
    memset(m, 0, sizeof *m);
    hid_t f = mg_h5_open_read(path, "HDF5 classifier model", hint);
    check_format(f, path, MODEL_FORMAT, MG_MODEL_FORMAT_VERSION, hint);
    m->checksum = mg_h5_attr_read_u64(f, path, ".", "checksum", hint);
    mg_h5_attr_read_str(f, path, ".", "feature_layer", m->feature_layer, sizeof m->feature_layer, hint);
    m->feature_dim = (int)mg_h5_attr_read_i64(f, path, ".", "feature_dim", hint);
    m->n_classes = (int)mg_h5_attr_read_i64(f, path, ".", "n_classes", hint);
    m->test_accuracy = mg_h5_attr_read_f64(f, path, ".", "test_accuracy", hint);
    mg_h5_attr_read_str(f, path, ".", "train_data", m->train_data, sizeof m->train_data, hint);
    mg_h5_attr_read_str(f, path, ".", "test_data", m->test_data, sizeof m->test_data, hint);
    m->seed = mg_h5_attr_read_u64(f, path, ".", "seed", hint);
    m->steps = (long)mg_h5_attr_read_i64(f, path, ".", "steps", hint);
    m->n_ranks = (int)mg_h5_attr_read_i64(f, path, ".", "n_ranks", hint);
    m->train_seconds = mg_h5_attr_read_f64(f, path, ".", "train_seconds", hint);
    if (mg_h5_attr_exists(f, path, ".", "label_factor")) /* older files: trained on the labels */
        mg_h5_attr_read_str(f, path, ".", "label_factor", m->label_factor, sizeof m->label_factor, hint);
    MG_CHECK(m->n_classes >= 1, path, hint, "n_classes is %d", m->n_classes);
    hsize_t nk[1] = {(hsize_t)m->n_classes};
    if (mg_h5_exists(f, path, "test_label_hist")) {
        m->test_label_hist = mg_alloc(sizeof(double) * (size_t)m->n_classes, "test label histogram");
        mg_h5_read_array(f, path, "test_label_hist", H5T_NATIVE_DOUBLE, 1, nk, m->test_label_hist, hint);
    }
    if (mg_h5_exists(f, path, "test_pred_hist")) {
        m->test_pred_hist = mg_alloc(sizeof(double) * (size_t)m->n_classes, "test prediction histogram");
        mg_h5_read_array(f, path, "test_pred_hist", H5T_NATIVE_DOUBLE, 1, nk, m->test_pred_hist, hint);
    }
    m->config_text = mg_h5_read_text(f, path, "config", hint);
    m->overrides = mg_h5_read_text(f, path, "overrides", hint);
    m->n_param = length_of(f, path, "param", hint);
    m->n_state = length_of(f, path, "state", hint);
    m->param = mg_alloc_floats(m->n_param, "classifier parameters");
    m->state = mg_alloc_floats(m->n_state, "classifier state");
    hsize_t np[1] = {m->n_param}, ns[1] = {m->n_state};
    mg_h5_read_array(f, path, "param", H5T_NATIVE_FLOAT, 1, np, m->param, hint);
    mg_h5_read_array(f, path, "state", H5T_NATIVE_FLOAT, 1, ns, m->state, hint);
    H5_OK(H5Fclose(f), path, "/");
    const uint64_t actual = mg_model_checksum(m->config_text, m->overrides, m->param, m->n_param, m->state, m->n_state);
    MG_CHECK(actual == m->checksum, path, "the file is corrupted or was edited; retrain the classifier",
             "checksum mismatch: stored %016llx, contents give %016llx", (unsigned long long)m->checksum,
             (unsigned long long)actual);
}

void mg_model_file_free(mg_model_file *m)
{
    mg_free(m->config_text);
    mg_free(m->overrides);
    mg_free(m->param);
    mg_free(m->state);
    mg_free(m->test_label_hist);
    mg_free(m->test_pred_hist);
    memset(m, 0, sizeof *m);
}

/* ---- reference statistics cache ---- */

void mg_refstats_key_of(mg_refstats_key *key, const char *data_path, uint64_t extractor_checksum)
{
    memset(key, 0, sizeof *key);
    key->extractor_checksum = extractor_checksum;
    struct stat st;
    MG_CHECK(stat(data_path, &st) == 0, data_path, "check the path of the reference data",
             "cannot stat the data file: %s", strerror(errno));
    char *real = realpath(data_path, NULL);
    MG_CHECK(real != NULL, data_path, NULL, "realpath failed: %s", strerror(errno));
    snprintf(key->data_path, sizeof key->data_path, "%s", real);
    free(real);
    key->data_bytes = (int64_t)st.st_size;
    key->data_mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + (int64_t)st.st_mtim.tv_nsec;
}

bool mg_refstats_read(const char *path, const mg_refstats_key *want, mg_refstats *r, char *why, size_t why_size)
{
    memset(r, 0, sizeof *r);
    mg_h5_quiet();
    if (access(path, R_OK) != 0) {
        snprintf(why, why_size, "no cache file yet");
        return false;
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        snprintf(why, why_size, "the cache file is not readable HDF5");
        return false;
    }
    static const char hint[] = "delete the cache file; it will be recomputed";
    char format[64] = "";
    if (!mg_h5_attr_exists(f, path, ".", "format") || !mg_h5_attr_exists(f, path, ".", "format_version")) {
        H5_OK(H5Fclose(f), path, "/");
        snprintf(why, why_size, "the cache file has no format attributes");
        return false;
    }
    mg_h5_attr_read_str(f, path, ".", "format", format, sizeof format, hint);
    const int64_t version = mg_h5_attr_read_i64(f, path, ".", "format_version", hint);
    if (strcmp(format, REFSTATS_FORMAT) != 0 || version != MG_REFSTATS_FORMAT_VERSION) {
        H5_OK(H5Fclose(f), path, "/");
        snprintf(why, why_size, "the cache file is format '%s' version %lld, this build writes '%s' version %d", format,
                 (long long)version, REFSTATS_FORMAT, MG_REFSTATS_FORMAT_VERSION);
        return false;
    }
    mg_refstats_key *k = &r->key;
    k->extractor_checksum = mg_h5_attr_read_u64(f, path, ".", "extractor_checksum", hint);
    mg_h5_attr_read_str(f, path, ".", "data_path", k->data_path, sizeof k->data_path, hint);
    k->data_bytes = mg_h5_attr_read_i64(f, path, ".", "data_bytes", hint);
    k->data_mtime_ns = mg_h5_attr_read_i64(f, path, ".", "data_mtime_ns", hint);
    const char *stale = NULL;
    if (k->extractor_checksum != want->extractor_checksum)
        stale = "it was computed with another extractor";
    else if (strcmp(k->data_path, want->data_path) != 0)
        stale = "it was computed for another data file";
    else if (k->data_bytes != want->data_bytes || k->data_mtime_ns != want->data_mtime_ns)
        stale = "the data file changed since (size or modification time)";
    if (stale) {
        H5_OK(H5Fclose(f), path, "/");
        snprintf(why, why_size, "stale: %s", stale);
        return false;
    }
    r->n = mg_h5_attr_read_i64(f, path, ".", "n", hint);
    r->is_mean = mg_h5_attr_read_f64(f, path, ".", "is_mean", hint);
    r->is_std = mg_h5_attr_read_f64(f, path, ".", "is_std", hint);
    r->dim = (int)length_of(f, path, "mu", hint);
    r->n_classes = (int)length_of(f, path, "class_hist", hint);
    const size_t d = (size_t)r->dim;
    r->mu = mg_alloc(d * sizeof(double), "reference mean");
    r->cov = mg_alloc(d * d * sizeof(double), "reference covariance");
    r->class_hist = mg_alloc((size_t)r->n_classes * sizeof(double), "reference class histogram");
    r->features = mg_alloc_floats((size_t)r->n * d, "reference features");
    hsize_t dmu[1] = {d}, dcov[2] = {d, d}, dk[1] = {(hsize_t)r->n_classes}, dfeat[2] = {(hsize_t)r->n, d};
    mg_h5_read_array(f, path, "mu", H5T_NATIVE_DOUBLE, 1, dmu, r->mu, hint);
    mg_h5_read_array(f, path, "cov", H5T_NATIVE_DOUBLE, 2, dcov, r->cov, hint);
    mg_h5_read_array(f, path, "class_hist", H5T_NATIVE_DOUBLE, 1, dk, r->class_hist, hint);
    mg_h5_read_array(f, path, "features", H5T_NATIVE_FLOAT, 2, dfeat, r->features, hint);
    const int64_t labelled = mg_h5_attr_read_i64(f, path, ".", "labelled_classes", hint);
    MG_CHECK(labelled == 0 || labelled == r->n_classes, path, hint, "labelled_classes %lld, but %d classes",
             (long long)labelled, r->n_classes);
    if (labelled > 0) {
        const size_t k = (size_t)labelled;
        r->labelled_classes = (int)labelled;
        r->class_n = mg_alloc(k * sizeof(double), "reference class counts");
        r->class_mu = mg_alloc(k * d * sizeof(double), "reference class means");
        r->class_cov = mg_alloc(k * d * d * sizeof(double), "reference class covariances");
        hsize_t dcn[1] = {k}, dcmu[2] = {k, d}, dccov[3] = {k, d, d};
        mg_h5_read_array(f, path, "class_n", H5T_NATIVE_DOUBLE, 1, dcn, r->class_n, hint);
        mg_h5_read_array(f, path, "class_mu", H5T_NATIVE_DOUBLE, 2, dcmu, r->class_mu, hint);
        mg_h5_read_array(f, path, "class_cov", H5T_NATIVE_DOUBLE, 3, dccov, r->class_cov, hint);
    }
    H5_OK(H5Fclose(f), path, "/");
    return true;
}

void mg_refstats_write(const char *path, const mg_refstats *r)
{
    char tmp[1100];
    hid_t f = mg_h5_create_tmp(path, tmp, sizeof tmp);
    mg_h5_attr_write_str(f, tmp, "format", REFSTATS_FORMAT);
    mg_h5_attr_write_i64(f, tmp, "format_version", MG_REFSTATS_FORMAT_VERSION);
    mg_h5_attr_write_u64(f, tmp, "extractor_checksum", r->key.extractor_checksum);
    mg_h5_attr_write_str(f, tmp, "data_path", r->key.data_path);
    mg_h5_attr_write_i64(f, tmp, "data_bytes", r->key.data_bytes);
    mg_h5_attr_write_i64(f, tmp, "data_mtime_ns", r->key.data_mtime_ns);
    mg_h5_attr_write_i64(f, tmp, "n", r->n);
    mg_h5_attr_write_f64(f, tmp, "is_mean", r->is_mean);
    mg_h5_attr_write_f64(f, tmp, "is_std", r->is_std);
    const hsize_t d = (hsize_t)r->dim;
    hsize_t dmu[1] = {d}, dcov[2] = {d, d}, dk[1] = {(hsize_t)r->n_classes}, dfeat[2] = {(hsize_t)r->n, d};
    mg_h5_write_array(f, tmp, "mu", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, dmu, r->mu);
    mg_h5_write_array(f, tmp, "cov", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, dcov, r->cov);
    mg_h5_write_array(f, tmp, "class_hist", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, dk, r->class_hist);
    mg_h5_write_array(f, tmp, "features", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dfeat, r->features);
    mg_h5_attr_write_i64(f, tmp, "labelled_classes", r->labelled_classes);
    if (r->labelled_classes > 0) {
        const hsize_t k = (hsize_t)r->labelled_classes;
        hsize_t dcn[1] = {k}, dcmu[2] = {k, d}, dccov[3] = {k, d, d};
        mg_h5_write_array(f, tmp, "class_n", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, dcn, r->class_n);
        mg_h5_write_array(f, tmp, "class_mu", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, dcmu, r->class_mu);
        mg_h5_write_array(f, tmp, "class_cov", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 3, dccov, r->class_cov);
    }
    mg_h5_commit(f, tmp, path);
}

void mg_refstats_free(mg_refstats *r)
{
    mg_free(r->mu);
    mg_free(r->cov);
    mg_free(r->class_hist);
    mg_free(r->features);
    mg_free(r->class_n);
    mg_free(r->class_mu);
    mg_free(r->class_cov);
    memset(r, 0, sizeof *r);
}

/* ---- per-sample features ---- */

void mg_features_file_write(const char *path, const float *features, int64_t n, int dim, const float *probs,
                            int n_classes, const char *source, const char *extractor, uint64_t extractor_checksum,
                            uint64_t seed)
{
    char tmp[1100];
    hid_t f = mg_h5_create_tmp(path, tmp, sizeof tmp);
    mg_h5_attr_write_str(f, tmp, "format", FEATURES_FORMAT);
    mg_h5_attr_write_i64(f, tmp, "format_version", 1);
    mg_h5_attr_write_str(f, tmp, "source", source);
    mg_h5_attr_write_str(f, tmp, "extractor", extractor);
    mg_h5_attr_write_u64(f, tmp, "extractor_checksum", extractor_checksum);
    mg_h5_attr_write_u64(f, tmp, "seed", seed);
    hsize_t df[2] = {(hsize_t)n, (hsize_t)dim}, dp[2] = {(hsize_t)n, (hsize_t)n_classes};
    mg_h5_write_array(f, tmp, "features", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, df, features);
    mg_h5_write_array(f, tmp, "probs", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dp, probs);
    mg_h5_commit(f, tmp, path);
}

/* ---- generator samples ---- */

#define SAMPLES_IMAGES "images"
#define SAMPLES_VECTORS "x"
#define SAMPLES_LABELS "labels"

void mg_samples_file_write(const char *path, const float *samples, int64_t n, int c, int h, int w,
                           const int *labels, int n_classes, const char *source)
{
    const bool images = h > 1 || w > 1;
    char tmp[1100];
    hid_t f = mg_h5_create_tmp(path, tmp, sizeof tmp);
    const hsize_t dims[4] = {(hsize_t)n, (hsize_t)c, (hsize_t)h, (hsize_t)w};
    mg_h5_write_array(f, tmp, images ? SAMPLES_IMAGES : SAMPLES_VECTORS, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                      images ? 4 : 2, dims, samples);
    mg_h5_attr_write_str(f, tmp, "source", source);
    if (labels) {
        MG_CHECK(sizeof(int) == sizeof(int32_t), tmp, NULL, "a bug: labels are written as int32");
        mg_h5_write_array(f, tmp, SAMPLES_LABELS, H5T_STD_I32LE, H5T_NATIVE_INT, 1, dims, labels);
        mg_h5_attr_write_i64(f, tmp, "classes", n_classes);
    }
    mg_h5_commit(f, tmp, path);
}

struct mg_samples_file {
    hid_t file, set;
    mg_samples_info info;
    char path[1024];
    unsigned char *raw;   /* uint8 staging, grown as needed */
    size_t raw_size;
};

mg_samples_file *mg_samples_open(const char *path, mg_samples_info *info)
{
    static const char hint[] = "samples are `images` (N, C, H, W) float32 in [-1, 1] or uint8, or `x` (N, D) float32";
    hid_t f = mg_h5_open_read(path, "HDF5 samples file", hint);
    mg_samples_file *s = mg_alloc(sizeof *s, "samples file");
    snprintf(s->path, sizeof s->path, "%s", path);
    s->file = f;
    const bool images = mg_h5_exists(f, path, SAMPLES_IMAGES);
    const bool vectors = mg_h5_exists(f, path, SAMPLES_VECTORS);
    MG_CHECK(images != vectors, path, hint, "expected exactly one of the datasets `images` and `x`, found %s",
             images ? "both" : "neither");
    const char *name = images ? SAMPLES_IMAGES : SAMPLES_VECTORS;
    s->set = H5_OK(H5Dopen2(f, name, H5P_DEFAULT), path, name);
    hid_t space = H5_OK(H5Dget_space(s->set), path, name);
    hsize_t dims[4] = {0, 1, 1, 1};
    const int rank = H5_OK(H5Sget_simple_extent_ndims(space), path, name);
    MG_CHECK(rank == (images ? 4 : 2), path, hint, "dataset %s has %d dimensions", name, rank);
    H5_OK(H5Sget_simple_extent_dims(space, dims, NULL), path, name);
    H5_OK(H5Sclose(space), path, name);
    hid_t type = H5_OK(H5Dget_type(s->set), path, name);
    const H5T_class_t cls = H5_OK(H5Tget_class(type), path, name);
    const size_t size = H5Tget_size(type);
    H5_OK(H5Tclose(type), path, name);
    const bool is_float = cls == H5T_FLOAT && size == 4, is_u8 = cls == H5T_INTEGER && size == 1;
    MG_CHECK(is_float || (images && is_u8), path, hint, "dataset %s has an unsupported element type", name);
    memset(info, 0, sizeof *info);
    info->images = images;
    info->uint8 = is_u8;
    info->n = (int64_t)dims[0];
    info->c = (int)dims[1];
    info->h = images ? (int)dims[2] : 1;
    info->w = images ? (int)dims[3] : 1;
    MG_CHECK(info->n > 0 && info->c > 0 && info->h > 0 && info->w > 0, path, hint, "dataset %s is empty", name);
    s->info = *info;
    return s;
}

void mg_samples_read(mg_samples_file *s, int64_t start, int64_t count, float *dst)
{
    const mg_samples_info *in = &s->info;
    const char *name = in->images ? SAMPLES_IMAGES : SAMPLES_VECTORS;
    MG_CHECK(start >= 0 && count >= 0 && start + count <= in->n, s->path, NULL, "rows [%lld, %lld) out of %lld",
             (long long)start, (long long)(start + count), (long long)in->n);
    if (count == 0)
        return;
    const size_t values = (size_t)count * (size_t)in->c * (size_t)in->h * (size_t)in->w;
    if (in->uint8) {
        if (s->raw_size < values) {
            mg_free(s->raw);
            s->raw = mg_alloc(values, "uint8 samples");
            s->raw_size = values;
        }
        mg_h5_rows_read(s->set, s->path, name, H5T_NATIVE_UINT8, start, count, s->raw);
        for (size_t i = 0; i < values; i++)
            dst[i] = (float)s->raw[i] / 127.5f - 1.0f; /* as the loader maps pixels */
    } else {
        mg_h5_rows_read(s->set, s->path, name, H5T_NATIVE_FLOAT, start, count, dst);
        const size_t per = values / (size_t)count;
        for (size_t i = 0; i < values; i++)
            if (!isfinite(dst[i]) || (in->images && (dst[i] < -1.0f || dst[i] > 1.0f)))
                MG_FAIL(s->path, "image samples must be float32 in [-1, 1] (a tanh output) or uint8",
                        "sample %lld holds %g", (long long)(start + (int64_t)(i / per)), (double)dst[i]);
    }
}

void mg_samples_close(mg_samples_file *s)
{
    if (!s)
        return;
    H5_OK(H5Dclose(s->set), s->path, "samples");
    H5_OK(H5Fclose(s->file), s->path, "/");
    mg_free(s->raw);
    mg_free(s);
}
