/* The HDF5 training-data schema: the ONLY module that knows dataset and attribute names
 * (docs/data.md describes the format for users).
 *
 * A data file holds one sample dataset, indexed by sample along its first dimension:
 *   images   uint8   (N, C, H, W)   raw pixels 0..255 (the loader maps them to [-1, 1])
 *   x        float32 (N, D)         vectors, used as they are
 * and optionally
 *   labels   int32   (N)            class of each sample (0 .. K-1)
 *   factors  int32   (N, F)         generative factors of each sample (synthetic sets such as
 *                                   the shapes benchmark); attributes factor_names (F strings)
 *                                   and factor_sizes (F ints: column f in 0 .. size-1); the
 *                                   loader ignores it
 * Datasets are chunked along N only (a chunk is whole samples), uncompressed, with every
 * chunk allocated; root attributes say what the file is (mpigan_format, format_version,
 * kind, source, value_range, class_names, and generator/means/sigma/seed for synthetic
 * mixtures).
 *
 * Reading: mg_h5_open validates a file read-only without failing, so that a distributed
 * caller can agree on the verdict before anyone raises the error. The loader does not read
 * samples through HDF5: mg_h5_raw_layout returns where each chunk's bytes lie in the file,
 * and the loader's prefetch thread reads them with pread(2). Debian's parallel HDF5 is not
 * thread-safe, and other modules (checkpoints) call HDF5 on the main thread while the
 * prefetch thread reads, so no HDF5 call may happen off the main thread. This is why the
 * schema requires uncompressed, fully allocated, sample-aligned storage.
 *
 * Every HDF5 call here is checked; failures name the file, the dataset or attribute, and
 * the innermost HDF5 message (HDF5's own automatic stack printing is switched off). */
#ifndef MG_H5SCHEMA_H
#define MG_H5SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MG_H5_FORMAT_VERSION 1
#define MG_MIXTURE_MAX_MODES 64

typedef enum { MG_DATA_IMAGES = 0, MG_DATA_VECTORS = 1 } mg_data_kind;

/* What a data file holds. Filled by mg_h5_open; filled by the caller for mg_h5_create.
 * class_names (n_classes strings), factor_names and factor_sizes (n_factors each; a name
 * "" and a size 0 when the file gives none) are owned by the struct: release with
 * mg_data_info_free. */
typedef struct {
    mg_data_kind kind;
    int64_t n;              /* samples */
    int c, h, w;            /* per-sample shape: images (C, H, W); vectors (D, 1, 1) */
    bool has_labels;
    int64_t chunk_rows;     /* samples per chunk; 0 asks mg_h5_create for the default */
    char source[512];       /* where the data came from (free text) */
    char split[16];         /* "train", "test" or "" */
    double value_range[2];  /* range of the stored values (images: 0, 255) */
    int n_classes;          /* 0 when the file names no classes */
    char **class_names;
    int n_factors;          /* columns of the factors dataset; 0 when there is none */
    char **factor_names;
    int32_t *factor_sizes;  /* values of each factor: column f holds 0 .. factor_sizes[f]-1 (0: not given) */
} mg_data_info;

/* Generator parameters of a synthetic 2-D mixture of Gaussians (mode counting needs them). */
typedef struct {
    char generator[16];     /* "ring" or "grid" */
    int n_modes;
    double means[MG_MIXTURE_MAX_MODES][2];
    double sigma;           /* per-coordinate standard deviation of every mode */
    uint64_t seed;
} mg_mixture_info;

/* Where the rows of one dataset lie in the file, for pread(2). Row i of the dataset is
 * the row_bytes bytes at chunk_addr[i / chunk_rows] + (i % chunk_rows) * row_bytes. */
typedef struct {
    int64_t n_rows;
    int64_t row_bytes;
    int64_t chunk_rows;     /* n_rows for contiguous storage */
    int64_t n_chunks;
    uint64_t *chunk_addr;   /* n_chunks byte offsets, owned; release with mg_h5_raw_free */
} mg_h5_raw;

typedef struct mg_h5_file mg_h5_file;
typedef struct mg_h5_writer mg_h5_writer;

/* Bytes of one sample as stored (images C*H*W, vectors 4*D). */
int64_t mg_data_sample_bytes(const mg_data_info *info);
/* "images (60000, 1, 28, 28) uint8 + labels" style summary. */
const char *mg_data_describe(const mg_data_info *info, char *buf, size_t size);
/* Sets class names (copied). */
void mg_data_info_set_classes(mg_data_info *info, int n, const char *const *names);
/* Sets the factor columns' names and sizes (copied); n = 0 removes them. */
void mg_data_info_set_factors(mg_data_info *info, int n, const char *const *names, const int32_t *sizes);
/* Column of the factor called name (0 .. n_factors-1), or -1 when the file has none of
 * that name. */
int mg_data_factor_index(const mg_data_info *info, const char *name);
/* "shape, colour, ..." (the factors' names; "none" without factors), for messages. */
const char *mg_data_factor_list(const mg_data_info *info, char *buf, size_t size);
/* A deep copy of src into dst (dst's own names are not released first). */
void mg_data_info_copy(mg_data_info *dst, const mg_data_info *src);
void mg_data_info_free(mg_data_info *info);

/* ---- reading (validation reports instead of failing) ---- */

/* Opens path read-only and checks the schema: exactly one of images/x with the right
 * rank and type, labels (if present) int32 of length N, N >= 1, storage readable raw
 * (uncompressed, chunks of whole samples, all allocated, inside the file). Returns NULL
 * and writes a one-line message naming the file and dataset into err on any problem. */
mg_h5_file *mg_h5_open(const char *path, mg_data_info *info, char *err, size_t errlen);
/* Raw layout of the samples and (if has_labels; else zeroed) labels. Also cross-checks
 * one sample read through HDF5 against the raw bytes. Returns false with err on failure. */
bool mg_h5_raw_layout(mg_h5_file *f, mg_h5_raw *samples, mg_h5_raw *labels, char *err, size_t errlen);
/* Raw layout of the factors dataset (rows of n_factors int32), for a loader that hands out
 * one factor column as labels; cross-checked like the samples. Returns false with err when
 * the file has no factors or they cannot be read raw. */
bool mg_h5_raw_factors(mg_h5_file *f, mg_h5_raw *factors, char *err, size_t errlen);
void mg_h5_raw_free(mg_h5_raw *raw);
/* Reads samples [start, start+count) through HDF5 into dst (count * sample bytes), and
 * labels into labels (count int32). Fail through the error path. For tools and tests. */
void mg_h5_read_samples(mg_h5_file *f, int64_t start, int64_t count, void *dst);
void mg_h5_read_labels(mg_h5_file *f, int64_t start, int64_t count, int32_t *labels);
/* Factor columns: F (0 when the file has no factors dataset) and the name of column j
 * ("" when the file names none); info->factor_names/factor_sizes hold the same. */
int mg_h5_n_factors(const mg_h5_file *f);
const char *mg_h5_factor_name(const mg_h5_file *f, int j);
/* Reads factors of samples [start, start+count) into factors (count * F int32, row-major),
 * checking every value against its factor's size when the file gives sizes; fails through
 * the error path naming the file, sample and factor (also when the file has no factors). */
void mg_h5_read_factors(mg_h5_file *f, int64_t start, int64_t count, int32_t *factors);
/* Reads mixture attributes; false when the file is not a synthetic mixture. */
bool mg_h5_read_mixture(mg_h5_file *f, mg_mixture_info *mix);
const char *mg_h5_path(const mg_h5_file *f);
void mg_h5_close(mg_h5_file *f);

/* Opens and validates, failing through the error path (single-process tools). */
mg_h5_file *mg_h5_open_or_fail(const char *path, mg_data_info *info);

/* ---- writing ---- */

/* Creates path (truncating it) with the datasets and attributes described by info
 * (chunk_rows 0: a default that makes chunks a few hundred samples and <= 4 MiB); with
 * n_factors > 0 also the factors dataset, written by mg_h5_write_factors.
 * mix, if not NULL, adds the mixture attributes. Writes go through mg_h5_write_rows. */
mg_h5_writer *mg_h5_create(const char *path, const mg_data_info *info, const mg_mixture_info *mix);
/* Writes samples [start, start+count) (count * sample bytes) and, if the file has labels,
 * their labels (count int32; must not be NULL then). */
void mg_h5_write_rows(mg_h5_writer *w, int64_t start, int64_t count, const void *samples,
                      const int32_t *labels);
/* Adds the factors dataset (N, n_factors) int32, chunked as the samples, with names
 * (n_factors strings) and sizes (values per column, each >= 1); NULL leaves that attribute
 * out. Call right after mg_h5_create (which ignores info's factor fields). */
void mg_h5_add_factors(mg_h5_writer *w, int n_factors, const char *const *names, const int32_t *sizes);
/* Writes factor rows [start, start+count) (count * F int32, row-major). */
void mg_h5_write_factors(mg_h5_writer *w, int64_t start, int64_t count, const int32_t *factors);
/* Cuts every dataset to its first n rows (1 <= n <= N): for writers that learn only at the
 * end how many samples they kept. The file stays readable raw (whole chunks remain). */
void mg_h5_writer_shrink(mg_h5_writer *w, int64_t n);
/* Rewrites the value_range attribute (for data whose range is known only once written). */
void mg_h5_writer_set_range(mg_h5_writer *w, double lo, double hi);
/* Closes, checking that every HDF5 object was flushed and released. */
void mg_h5_writer_close(mg_h5_writer *w);
/* Releases without checks (error paths); w may be NULL. */
void mg_h5_writer_abandon(mg_h5_writer *w);

#endif
