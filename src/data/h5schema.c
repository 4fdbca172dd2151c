/* The training-data file format (see mg_h5schema.h and docs/data.md): dataset and
 * attribute names, validation, raw layout for the loader, and the writer the converters
 * use. Validation reports into a caller's buffer instead of failing, because a
 * distributed caller must first agree with the other ranks; writing fails at once through
 * the error path, because only single-process converters write.
 *
 * Files are opened with the default sec2 driver, not MPI-IO: each rank reads a disjoint
 * set of samples with no collective pattern to exploit, MPI-IO would make HDF5 call MPI
 * (only dist.c may, and never from the prefetch thread), and the sample bytes are read
 * with pread(2) anyway (see the header). */
#include "mg_h5schema.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mg_error.h"
#include "mg_h5util.h"

/* The names. Nothing else in mpigan spells them. */
#define DS_IMAGES "images"
#define DS_VECTORS "x"
#define DS_LABELS "labels"
#define DS_FACTORS "factors"
#define AT_FORMAT "mpigan_format"
#define AT_FORMAT_VALUE "mpigan-data"
#define AT_VERSION "format_version"
#define AT_KIND "kind"
#define AT_SOURCE "source"
#define AT_SPLIT "split"
#define AT_RANGE "value_range"
#define AT_CLASSES "class_names"
#define AT_LAYOUT "layout"
#define AT_GENERATOR "generator"
#define AT_MEANS "means"
#define AT_SIGMA "sigma"
#define AT_SEED "seed"
#define AT_FACTOR_NAMES "factor_names"   /* on the factors dataset */
#define AT_FACTOR_SIZES "factor_sizes"
#define MAX_FACTORS 4096

#define MAX_CHUNK_BYTES ((int64_t)4 << 20)
#define TARGET_CHUNK_BYTES ((int64_t)256 << 10)
#define MIN_CHUNK_ROWS 256

struct mg_h5_file {
    char *path;
    hid_t file, samples, labels, factors; /* labels, factors < 0 when absent */
    mg_data_info info;
};

struct mg_h5_writer {
    char *path;
    hid_t file, samples, labels, factors;
    mg_data_info info;
};

static const char *kind_name(mg_data_kind k) { return k == MG_DATA_IMAGES ? "images" : "vectors"; }
static const char *samples_name(mg_data_kind k) { return k == MG_DATA_IMAGES ? DS_IMAGES : DS_VECTORS; }

/* The most specific message on HDF5's error stack, for messages built here. */
static const char *h5_detail(void)
{
    static char buf[256];
    return mg_h5_detail(buf, sizeof buf);
}

/* The writing path fails at once through the one HDF5 error path. */
#define H5_OK MG_H5_OK

/* ------------------------------------------------------------------ info helpers */

int64_t mg_data_sample_bytes(const mg_data_info *info)
{
    int64_t per = (int64_t)info->c * info->h * info->w;
    return info->kind == MG_DATA_IMAGES ? per : per * 4;
}

const char *mg_data_describe(const mg_data_info *info, char *buf, size_t size)
{
    if (info->kind == MG_DATA_IMAGES)
        snprintf(buf, size, "images (%lld, %d, %d, %d) uint8%s", (long long)info->n, info->c, info->h, info->w,
                 info->has_labels ? " + labels" : "");
    else
        snprintf(buf, size, "x (%lld, %d) float32%s", (long long)info->n, info->c, info->has_labels ? " + labels" : "");
    if (info->n_factors > 0) {
        const size_t used = strlen(buf);
        snprintf(buf + used, size - used, " + %d factors", info->n_factors);
    }
    return buf;
}

void mg_data_info_set_classes(mg_data_info *info, int n, const char *const *names)
{
    for (int i = 0; i < info->n_classes; i++)
        mg_free(info->class_names[i]);
    mg_free(info->class_names);
    info->class_names = NULL;
    info->n_classes = 0;
    if (n <= 0)
        return;
    info->class_names = mg_alloc((size_t)n * sizeof(char *), "class names");
    for (int i = 0; i < n; i++)
        info->class_names[i] = mg_strdup(names[i]);
    info->n_classes = n;
}

void mg_data_info_set_factors(mg_data_info *info, int n, const char *const *names, const int32_t *sizes)
{
    for (int i = 0; i < info->n_factors; i++)
        mg_free(info->factor_names[i]);
    mg_free(info->factor_names);
    mg_free(info->factor_sizes);
    info->factor_names = NULL;
    info->factor_sizes = NULL;
    info->n_factors = 0;
    if (n <= 0)
        return;
    info->factor_names = mg_alloc((size_t)n * sizeof(char *), "factor names");
    info->factor_sizes = mg_alloc((size_t)n * sizeof(int32_t), "factor sizes");
    for (int i = 0; i < n; i++) {
        info->factor_names[i] = mg_strdup(names[i]);
        info->factor_sizes[i] = sizes[i];
    }
    info->n_factors = n;
}

int mg_data_factor_index(const mg_data_info *info, const char *name)
{
    for (int j = 0; j < info->n_factors; j++)
        if (info->factor_names[j][0] && !strcmp(info->factor_names[j], name))
            return j;
    return -1;
}

const char *mg_data_factor_list(const mg_data_info *info, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = 0;
    for (int j = 0; j < info->n_factors && used < size; j++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", j ? ", " : "",
                                 info->factor_names[j][0] ? info->factor_names[j] : "(unnamed)");
    if (info->n_factors == 0)
        snprintf(buf, size, "none");
    return buf;
}

void mg_data_info_copy(mg_data_info *dst, const mg_data_info *src)
{
    *dst = *src;
    dst->class_names = NULL;
    dst->n_classes = 0;
    dst->factor_names = NULL;
    dst->factor_sizes = NULL;
    dst->n_factors = 0;
    mg_data_info_set_classes(dst, src->n_classes, (const char *const *)src->class_names);
    mg_data_info_set_factors(dst, src->n_factors, (const char *const *)src->factor_names, src->factor_sizes);
}

void mg_data_info_free(mg_data_info *info)
{
    mg_data_info_set_classes(info, 0, NULL);
    mg_data_info_set_factors(info, 0, NULL, NULL);
}

static int64_t default_chunk_rows(int64_t row_bytes, int64_t n)
{
    int64_t rows = TARGET_CHUNK_BYTES / row_bytes;
    if (rows < MIN_CHUNK_ROWS)
        rows = MIN_CHUNK_ROWS;
    if (rows * row_bytes > MAX_CHUNK_BYTES)
        rows = MAX_CHUNK_BYTES / row_bytes;
    if (rows < 1)
        rows = 1;
    return rows < n ? rows : n;
}

/* ------------------------------------------------------------------ reading */

/* Validation failure: message into err, false out. */
static bool bad(char *err, size_t errlen, const char *f, ...) __attribute__((format(printf, 3, 4)));
static bool bad(char *err, size_t errlen, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(err, errlen, f, ap);
    va_end(ap);
    return false;
}

/* Closes whichever of an attribute and its type and space are open, and clears the error
 * stack: the attribute readers below never fail (see the top). */
static void attr_release(hid_t a, hid_t ft, hid_t sp)
{
    if (sp >= 0)
        H5Sclose(sp);
    if (ft >= 0)
        H5Tclose(ft);
    if (a >= 0)
        H5Aclose(a);
    H5Eclear2(H5E_DEFAULT);
}

/* A string attribute, scalar or 1-d, variable or fixed length (as h5py and mpigan write
 * them), as *count allocated strings (release with free_strings); NULL when it is absent
 * or not strings. Never fails: the reading side reports instead (see the top). */
static char **read_attr_strings(hid_t loc, const char *name, hssize_t *count)
{
    char **out = NULL;
    hid_t a = H5Aexists(loc, name) > 0 ? H5Aopen(loc, name, H5P_DEFAULT) : -1;
    hid_t ft = a >= 0 ? H5Aget_type(a) : -1;
    hid_t sp = a >= 0 ? H5Aget_space(a) : -1;
    const hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (ft >= 0 && H5Tget_class(ft) == H5T_STRING && n > 0 && n < 1000000) {
        char **s = mg_alloc((size_t)n * sizeof(char *), name);
        bool ok = false;
        if (H5Tis_variable_str(ft) > 0) {
            char **v = mg_alloc((size_t)n * sizeof(char *), name);
            hid_t mt = H5Tcopy(H5T_C_S1);
            if (mt >= 0 && H5Tset_size(mt, H5T_VARIABLE) >= 0 && H5Tset_cset(mt, H5Tget_cset(ft)) >= 0 &&
                H5Aread(a, mt, v) >= 0) {
                ok = true;
                for (hssize_t i = 0; i < n; i++)
                    ok = ok && v[i] != NULL;
                for (hssize_t i = 0; ok && i < n; i++)
                    s[i] = mg_strdup(v[i]);
                H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, v);
            }
            if (mt >= 0)
                H5Tclose(mt);
            mg_free(v);
        } else {
            const size_t len = H5Tget_size(ft);
            char *buf = mg_alloc((size_t)n * len + 1, name);
            hid_t mt = H5Tcopy(ft);
            if (mt >= 0 && H5Aread(a, mt, buf) >= 0) {
                ok = true;
                for (hssize_t i = 0; i < n; i++) {
                    s[i] = mg_alloc(len + 1, name);
                    memcpy(s[i], buf + (size_t)i * len, len);
                }
            }
            if (mt >= 0)
                H5Tclose(mt);
            mg_free(buf);
        }
        if (ok) {
            out = s;
            *count = n;
        } else {
            mg_free(s);
        }
    }
    attr_release(a, ft, sp);
    return out;
}

static void free_strings(char **s, hssize_t n)
{
    for (hssize_t i = 0; s && i < n; i++)
        mg_free(s[i]);
    mg_free(s);
}

/* Reads a single-string attribute into out; false if absent, not one string or unreadable. */
static bool read_attr_string(hid_t loc, const char *name, char *out, size_t size)
{
    out[0] = 0;
    hssize_t n = 0;
    char **s = read_attr_strings(loc, name, &n);
    const bool ok = s && n == 1;
    if (ok)
        snprintf(out, size, "%s", s[0]);
    free_strings(s, n);
    return ok;
}

/* Reads a numeric attribute of exactly n elements, converted to double. */
static bool read_attr_doubles(hid_t loc, const char *name, double *out, hssize_t n)
{
    if (H5Aexists(loc, name) <= 0)
        return false;
    bool ok = false;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t ft = a >= 0 ? H5Aget_type(a) : -1;
    hid_t sp = a >= 0 ? H5Aget_space(a) : -1;
    if (ft >= 0 && sp >= 0 && (H5Tget_class(ft) == H5T_FLOAT || H5Tget_class(ft) == H5T_INTEGER) &&
        H5Sget_simple_extent_npoints(sp) == n)
        ok = H5Aread(a, H5T_NATIVE_DOUBLE, out) >= 0;
    attr_release(a, ft, sp);
    return ok;
}

static bool read_attr_u64(hid_t loc, const char *name, uint64_t *out)
{
    if (H5Aexists(loc, name) <= 0)
        return false;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    bool ok = a >= 0 && H5Aread(a, H5T_NATIVE_UINT64, out) >= 0;
    attr_release(a, -1, -1);
    return ok;
}

/* Class names: a 1-D string attribute (variable or fixed length). */
static void read_class_names(hid_t loc, mg_data_info *info)
{
    hssize_t n = 0;
    char **s = read_attr_strings(loc, AT_CLASSES, &n);
    if (s)
        mg_data_info_set_classes(info, (int)n, (const char *const *)s);
    free_strings(s, n);
}

/* Checks the type, rank and dimensions of a dataset. dims gets the extent. */
static bool check_dataset(hid_t d, const char *path, const char *name, H5T_class_t cls, size_t size,
                          int want_signed, int rank, hsize_t *dims, char *err, size_t errlen)
{
    hid_t t = H5Dget_type(d);
    if (t < 0)
        return bad(err, errlen, "%s: cannot read the type of dataset '%s': %s", path, name, h5_detail());
    H5T_class_t c = H5Tget_class(t);
    size_t s = H5Tget_size(t);
    H5T_sign_t sign = c == H5T_INTEGER ? H5Tget_sign(t) : H5T_SGN_ERROR;
    H5T_order_t order = H5Tget_order(t);
    H5Tclose(t);
    const char *want = cls == H5T_FLOAT ? "float32" : (want_signed ? "int32" : "uint8");
    if (c != cls || s != size || (cls == H5T_INTEGER && (sign == H5T_SGN_2) != (want_signed == 1)))
        return bad(err, errlen, "%s: dataset '%s' has the wrong type (%s %zu bytes%s); the schema wants %s",
                   path, name, c == H5T_INTEGER ? "integer" : c == H5T_FLOAT ? "float" : "non-numeric", s,
                   c == H5T_INTEGER ? (sign == H5T_SGN_2 ? ", signed" : ", unsigned") : "", want);
    if (size > 1 && order != H5T_ORDER_LE)
        return bad(err, errlen, "%s: dataset '%s' is big-endian; the loader reads little-endian %s only", path,
                   name, want);
    hid_t sp = H5Dget_space(d);
    if (sp < 0)
        return bad(err, errlen, "%s: cannot read the shape of dataset '%s': %s", path, name, h5_detail());
    int r = H5Sget_simple_extent_ndims(sp);
    if (r != rank) {
        H5Sclose(sp);
        return bad(err, errlen, "%s: dataset '%s' has %d dimensions; the schema wants %d (%s)", path, name, r,
                   rank, rank == 4 ? "N, C, H, W" : rank == 2 ? "N, D" : "N");
    }
    H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    for (int i = 0; i < rank; i++)
        if (dims[i] < 1 || dims[i] > (hsize_t)1 << 40)
            return bad(err, errlen, "%s: dataset '%s' has an empty or absurd dimension %d (%llu)", path, name, i,
                       (unsigned long long)dims[i]);
    return true;
}

/* Checks that a dataset's bytes can be read raw: plain storage, no filters, whole-sample chunks. */
static bool check_storage(hid_t d, const char *path, const char *name, int rank, const hsize_t *dims,
                          char *err, size_t errlen)
{
    hid_t dcpl = H5Dget_create_plist(d);
    if (dcpl < 0)
        return bad(err, errlen, "%s: cannot read the storage properties of '%s': %s", path, name, h5_detail());
    bool ok = true;
    H5D_layout_t layout = H5Pget_layout(dcpl);
    if (layout != H5D_CHUNKED && layout != H5D_CONTIGUOUS) {
        ok = bad(err, errlen, "%s: dataset '%s' uses %s storage; the loader reads chunked or contiguous storage "
                 "(rewrite it with: h5repack -l %s:CONTI IN OUT)", path, name,
                 layout == H5D_COMPACT ? "compact" : layout == H5D_VIRTUAL ? "virtual" : "unknown", name);
    } else if (H5Pget_nfilters(dcpl) != 0) {
        char fname[64] = "?";
        unsigned flags = 0, cd[8];
        size_t ncd = 8;
        H5Pget_filter2(dcpl, 0, &flags, &ncd, cd, sizeof fname, fname, NULL);
        ok = bad(err, errlen, "%s: dataset '%s' is filtered ('%s'); the loader reads raw bytes, so data must be "
                 "uncompressed (rewrite it with: h5repack -f %s:NONE IN OUT)", path, name, fname, name);
    } else if (H5Pget_external_count(dcpl) != 0) {
        ok = bad(err, errlen, "%s: dataset '%s' is stored in external files; the loader reads the HDF5 file only",
                 path, name);
    } else if (layout == H5D_CHUNKED) {
        hsize_t cdims[8] = {0};
        int cr = H5Pget_chunk(dcpl, 8, cdims);
        char spec[96] = "";
        size_t used = 0;
        for (int i = 0; i < rank && used < sizeof spec; i++)
            used += (size_t)snprintf(spec + used, sizeof spec - used, "%s%llu", i ? "x" : "",
                                     (unsigned long long)(i ? dims[i] : 256));
        for (int i = 1; ok && i < rank; i++)
            if (cr != rank || cdims[i] != dims[i])
                ok = bad(err, errlen, "%s: dataset '%s' has chunks that split a sample (chunk dimension %d is "
                         "%llu, the sample's is %llu); chunk along the first dimension only (rewrite it with: "
                         "h5repack -l %s:CHUNK=%s IN OUT)", path, name, i, (unsigned long long)cdims[i],
                         (unsigned long long)dims[i], name, spec);
    }
    H5Pclose(dcpl);
    H5Eclear2(H5E_DEFAULT);
    return ok;
}

/* Releases whichever handles are open, without checks: for closing after reads and on
 * error paths, where a failed close has nothing left to lose. */
static void release_quietly(hid_t file, hid_t samples, hid_t labels, hid_t factors)
{
    if (factors >= 0)
        H5Dclose(factors);
    if (labels >= 0)
        H5Dclose(labels);
    if (samples >= 0)
        H5Dclose(samples);
    if (file >= 0)
        H5Fclose(file);
    H5Eclear2(H5E_DEFAULT);
}

static void close_file(mg_h5_file *f)
{
    if (!f)
        return;
    release_quietly(f->file, f->samples, f->labels, f->factors);
    mg_data_info_free(&f->info);
    mg_free(f->path);
    mg_free(f);
}

static mg_h5_file *fail_open(mg_h5_file *f) { close_file(f); return NULL; }

/* The optional factors dataset: int32 (N, F) stored like the samples. Its attributes
 * factor_names (F strings) and factor_sizes (F whole numbers >= 1) may be absent (files
 * written by other tools: names "", sizes 0), but when present they must fit. Values are
 * checked against the sizes as they are read (mg_h5_read_factors): checking them here
 * would read the whole column on every open. */
static bool open_factors(mg_h5_file *f, char *err, size_t errlen)
{
    const char *path = f->path;
    htri_t has = H5Lexists(f->file, DS_FACTORS, H5P_DEFAULT);
    if (has <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return true;
    }
    f->factors = H5Dopen2(f->file, DS_FACTORS, H5P_DEFAULT);
    if (f->factors < 0)
        return bad(err, errlen, "%s: cannot open dataset '%s': %s", path, DS_FACTORS, h5_detail());
    hsize_t d[2] = {0, 0};
    if (!check_dataset(f->factors, path, DS_FACTORS, H5T_INTEGER, 4, 1, 2, d, err, errlen) ||
        !check_storage(f->factors, path, DS_FACTORS, 2, d, err, errlen))
        return false;
    if ((int64_t)d[0] != f->info.n)
        return bad(err, errlen, "%s: dataset '%s' has %llu rows but the file has %lld samples", path, DS_FACTORS,
                   (unsigned long long)d[0], (long long)f->info.n);
    if (d[1] > MAX_FACTORS)
        return bad(err, errlen, "%s: dataset '%s' has %llu columns; at most %d factors are supported", path,
                   DS_FACTORS, (unsigned long long)d[1], MAX_FACTORS);
    const int F = (int)d[1];
    hssize_t n_names = 0;
    char **names = read_attr_strings(f->factors, AT_FACTOR_NAMES, &n_names);
    const bool has_names = H5Aexists(f->factors, AT_FACTOR_NAMES) > 0;
    const bool has_sizes = H5Aexists(f->factors, AT_FACTOR_SIZES) > 0;
    H5Eclear2(H5E_DEFAULT);
    const char **use = mg_alloc((size_t)F * sizeof(char *), "factor names");
    int32_t *sizes = mg_alloc((size_t)F * sizeof(int32_t), "factor sizes");
    double *sz = mg_alloc((size_t)F * sizeof(double), "factor sizes");
    bool ok = true;
    if (has_names && !(names && n_names == F))
        ok = bad(err, errlen, "%s: attribute '%s' of dataset '%s' must be %d strings, one name per column", path,
                 AT_FACTOR_NAMES, DS_FACTORS, F);
    for (int i = 0; i < F; i++)
        use[i] = ok && names ? names[i] : "";
    if (ok && has_sizes && !read_attr_doubles(f->factors, AT_FACTOR_SIZES, sz, F))
        ok = bad(err, errlen, "%s: attribute '%s' of dataset '%s' must be %d integers, the values of each column",
                 path, AT_FACTOR_SIZES, DS_FACTORS, F);
    for (int i = 0; ok && i < F; i++) {
        if (has_sizes && !(sz[i] >= 1 && sz[i] <= 2147483647.0 && sz[i] == floor(sz[i])))
            ok = bad(err, errlen, "%s: attribute '%s' of '%s' gives factor %d ('%s') %g values; each needs a whole "
                     "number >= 1", path, AT_FACTOR_SIZES, DS_FACTORS, i, use[i], sz[i]);
        sizes[i] = has_sizes && ok ? (int32_t)sz[i] : 0;
    }
    if (ok)
        mg_data_info_set_factors(&f->info, F, use, sizes);
    free_strings(names, n_names);
    mg_free(use);
    mg_free(sizes);
    mg_free(sz);
    return ok;
}

mg_h5_file *mg_h5_open(const char *path, mg_data_info *info, char *err, size_t errlen)
{
    mg_h5_quiet();
    memset(info, 0, sizeof *info);
    struct stat st;
    if (stat(path, &st) != 0)
        return bad(err, errlen, "%s: cannot open: %s", path, strerror(errno)), NULL;
    if (!S_ISREG(st.st_mode))
        return bad(err, errlen, "%s: not a regular file", path), NULL;
    if (access(path, R_OK) != 0)
        return bad(err, errlen, "%s: not readable: %s", path, strerror(errno)), NULL;
    /* The HDF5 signature, read by hand (files with a user block, where it would sit
     * further in, are refused anyway). */
    static const unsigned char signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    unsigned char head[8] = {0};
    int fd = open(path, O_RDONLY);
    ssize_t got = fd >= 0 ? pread(fd, head, sizeof head, 0) : -1;
    if (fd >= 0)
        close(fd);
    if (got != (ssize_t)sizeof head || memcmp(head, signature, sizeof head) != 0)
        return bad(err, errlen, "%s: not an HDF5 file (no HDF5 signature at its start; corrupt, empty or of "
                   "another format)", path), NULL;

    mg_h5_file *f = mg_alloc(sizeof *f, "HDF5 file");
    f->path = mg_strdup(path);
    f->samples = f->labels = f->factors = -1;
    /* No file locks for reading: many ranks open the file at once, and parallel file
     * systems (NFS, Lustre) often refuse flock(2). Writers are single-process converters. */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_file_locking(fapl, 0, 1) < 0) {
        if (fapl >= 0)
            H5Pclose(fapl);
        return bad(err, errlen, "%s: cannot set up file access: %s", path, h5_detail()), fail_open(f);
    }
    f->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f->file < 0)
        return bad(err, errlen, "%s: cannot open as HDF5 (corrupt or truncated?): %s", path, h5_detail()),
               fail_open(f);
    hid_t fcpl = H5Fget_create_plist(f->file);
    hsize_t ub = 0;
    if (fcpl < 0 || H5Pget_userblock(fcpl, &ub) < 0) {
        if (fcpl >= 0)
            H5Pclose(fcpl);
        return bad(err, errlen, "%s: cannot read the file properties: %s", path, h5_detail()), fail_open(f);
    }
    H5Pclose(fcpl);
    if (ub != 0)
        return bad(err, errlen, "%s: has a %llu-byte user block, which the loader does not support", path,
                   (unsigned long long)ub), fail_open(f);

    /* Which kind of data: exactly one sample dataset. */
    htri_t has_img = H5Lexists(f->file, DS_IMAGES, H5P_DEFAULT);
    htri_t has_x = H5Lexists(f->file, DS_VECTORS, H5P_DEFAULT);
    if (has_img < 0 || has_x < 0)
        return bad(err, errlen, "%s: cannot list the file's datasets: %s", path, h5_detail()), fail_open(f);
    if (has_img && has_x)
        return bad(err, errlen, "%s: holds both '%s' and '%s'; a data file holds one of them", path, DS_IMAGES,
                   DS_VECTORS), fail_open(f);
    if (!has_img && !has_x)
        return bad(err, errlen, "%s: has no dataset '%s' (uint8 N x C x H x W images) or '%s' (float32 N x D "
                   "vectors)", path, DS_IMAGES, DS_VECTORS), fail_open(f);
    mg_data_kind kind = has_img ? MG_DATA_IMAGES : MG_DATA_VECTORS;
    const char *sname = samples_name(kind);
    f->samples = H5Dopen2(f->file, sname, H5P_DEFAULT);
    if (f->samples < 0)
        return bad(err, errlen, "%s: cannot open dataset '%s' (is it a dataset?): %s", path, sname, h5_detail()),
               fail_open(f);
    hsize_t dims[4] = {0};
    bool ok = kind == MG_DATA_IMAGES
                  ? check_dataset(f->samples, path, sname, H5T_INTEGER, 1, 0, 4, dims, err, errlen)
                  : check_dataset(f->samples, path, sname, H5T_FLOAT, 4, -1, 2, dims, err, errlen);
    if (!ok || !check_storage(f->samples, path, sname, kind == MG_DATA_IMAGES ? 4 : 2, dims, err, errlen))
        return fail_open(f);
    mg_data_info *fi = &f->info;
    fi->kind = kind;
    fi->n = (int64_t)dims[0];
    if (kind == MG_DATA_IMAGES) {
        if (dims[1] > 65536 || dims[2] > 65536 || dims[3] > 65536)
            return bad(err, errlen, "%s: dataset '%s' has an implausible sample shape", path, sname), fail_open(f);
        fi->c = (int)dims[1];
        fi->h = (int)dims[2];
        fi->w = (int)dims[3];
    } else {
        if (dims[1] > (1u << 30))
            return bad(err, errlen, "%s: dataset '%s' has an implausible D", path, sname), fail_open(f);
        fi->c = (int)dims[1];
        fi->h = fi->w = 1;
    }

    htri_t has_labels = H5Lexists(f->file, DS_LABELS, H5P_DEFAULT);
    if (has_labels > 0) {
        f->labels = H5Dopen2(f->file, DS_LABELS, H5P_DEFAULT);
        hsize_t ld[1] = {0};
        if (f->labels < 0)
            return bad(err, errlen, "%s: cannot open dataset '%s': %s", path, DS_LABELS, h5_detail()),
                   fail_open(f);
        if (!check_dataset(f->labels, path, DS_LABELS, H5T_INTEGER, 4, 1, 1, ld, err, errlen) ||
            !check_storage(f->labels, path, DS_LABELS, 1, ld, err, errlen))
            return fail_open(f);
        if ((int64_t)ld[0] != fi->n)
            return bad(err, errlen, "%s: dataset '%s' has %llu entries but '%s' has %lld samples", path, DS_LABELS,
                       (unsigned long long)ld[0], sname, (long long)fi->n), fail_open(f);
        fi->has_labels = true;
    }

    if (!open_factors(f, err, errlen))
        return fail_open(f);

    hid_t dcpl = H5Dget_create_plist(f->samples);
    hsize_t cd[4] = {0};
    fi->chunk_rows = fi->n;
    if (dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_chunk(dcpl, 4, cd) > 0)
        fi->chunk_rows = (int64_t)cd[0];
    if (dcpl >= 0)
        H5Pclose(dcpl);

    /* Attributes: optional (files written by other tools may lack them), but if present
     * they must agree with the data. */
    char text[512];
    if (read_attr_string(f->file, AT_FORMAT, text, sizeof text) && strcmp(text, AT_FORMAT_VALUE) != 0)
        return bad(err, errlen, "%s: attribute '%s' is '%s', not '%s'", path, AT_FORMAT, text, AT_FORMAT_VALUE),
               fail_open(f);
    double version = 0;
    if (read_attr_doubles(f->file, AT_VERSION, &version, 1) && version > MG_H5_FORMAT_VERSION)
        return bad(err, errlen, "%s: format version %g is newer than this mpigan reads (%d)", path, version,
                   MG_H5_FORMAT_VERSION), fail_open(f);
    if (read_attr_string(f->file, AT_KIND, text, sizeof text) && strcmp(text, kind_name(kind)) != 0)
        return bad(err, errlen, "%s: attribute '%s' says '%s' but the file holds %s", path, AT_KIND, text,
                   kind_name(kind)), fail_open(f);
    read_attr_string(f->file, AT_SOURCE, fi->source, sizeof fi->source);
    read_attr_string(f->file, AT_SPLIT, fi->split, sizeof fi->split);
    if (!read_attr_doubles(f->file, AT_RANGE, fi->value_range, 2)) {
        fi->value_range[0] = 0;
        fi->value_range[1] = kind == MG_DATA_IMAGES ? 255 : 0;
    }
    read_class_names(f->file, fi);

    /* The caller's copy shares nothing with ours. */
    mg_data_info_copy(info, fi);
    return f;
}

mg_h5_file *mg_h5_open_or_fail(const char *path, mg_data_info *info)
{
    char err[1024];
    mg_h5_file *f = mg_h5_open(path, info, err, sizeof err);
    if (!f)
        MG_FAIL(NULL, "docs/data.md describes the format; `mpigan data --help` lists the converters", "%s", err);
    return f;
}

const char *mg_h5_path(const mg_h5_file *f) { return f->path; }

void mg_h5_close(mg_h5_file *f) { close_file(f); }

void mg_h5_raw_free(mg_h5_raw *raw)
{
    mg_free(raw->chunk_addr);
    memset(raw, 0, sizeof *raw);
}

/* Reads one row through HDF5 (for the raw cross-check). */
static bool h5_read_row(hid_t d, hid_t memtype, int64_t row, int64_t row_elems, void *dst)
{
    hid_t fs = H5Dget_space(d);
    if (fs < 0)
        return false;
    int rank = H5Sget_simple_extent_ndims(fs);
    hsize_t start[4] = {(hsize_t)row, 0, 0, 0}, count[4] = {1, 1, 1, 1};
    H5Sget_simple_extent_dims(fs, count, NULL);
    count[0] = 1;
    hsize_t m = (hsize_t)row_elems;
    hid_t ms = H5Screate_simple(1, &m, NULL);
    bool ok = rank > 0 && ms >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
              H5Dread(d, memtype, ms, fs, H5P_DEFAULT, dst) >= 0;
    if (ms >= 0)
        H5Sclose(ms);
    H5Sclose(fs);
    return ok;
}

static bool raw_map(mg_h5_file *f, hid_t d, const char *name, int64_t row_bytes, int64_t row_elems,
                    hid_t memtype, mg_h5_raw *raw, char *err, size_t errlen)
{
    memset(raw, 0, sizeof *raw);
    const char *path = f->path;
    int64_t n = f->info.n;
    struct stat st;
    if (stat(path, &st) != 0)
        return bad(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
    hid_t dcpl = H5Dget_create_plist(d);
    if (dcpl < 0)
        return bad(err, errlen, "%s: cannot read the layout of '%s': %s", path, name, h5_detail());
    H5D_layout_t layout = H5Pget_layout(dcpl);
    hsize_t cd[4] = {0};
    int cr = layout == H5D_CHUNKED ? H5Pget_chunk(dcpl, 4, cd) : 0;
    H5Pclose(dcpl);
    raw->n_rows = n;
    raw->row_bytes = row_bytes;
    if (layout == H5D_CONTIGUOUS) {
        haddr_t a = H5Dget_offset(d);
        if (a == HADDR_UNDEF) {
            H5Eclear2(H5E_DEFAULT);
            return bad(err, errlen, "%s: dataset '%s' has no data written (storage not allocated)", path, name);
        }
        raw->chunk_rows = n;
        raw->n_chunks = 1;
        raw->chunk_addr = mg_alloc(sizeof(uint64_t), "chunk addresses");
        raw->chunk_addr[0] = a;
    } else {
        if (cr < 1 || cd[0] < 1)
            return bad(err, errlen, "%s: cannot read the chunk shape of '%s': %s", path, name, h5_detail());
        raw->chunk_rows = (int64_t)cd[0];
        raw->n_chunks = (n + raw->chunk_rows - 1) / raw->chunk_rows;
        raw->chunk_addr = mg_alloc((size_t)raw->n_chunks * sizeof(uint64_t), "chunk addresses");
        hsize_t off[4] = {0, 0, 0, 0};
        for (int64_t k = 0; k < raw->n_chunks; k++) {
            off[0] = (hsize_t)(k * raw->chunk_rows);
            unsigned mask = 0;
            haddr_t a = HADDR_UNDEF;
            hsize_t size = 0;
            if (H5Dget_chunk_info_by_coord(d, off, &mask, &a, &size) < 0) {
                mg_h5_raw_free(raw);
                return bad(err, errlen, "%s: cannot locate chunk %lld of '%s': %s", path, (long long)k, name,
                           h5_detail());
            }
            if (a == HADDR_UNDEF || size == 0) {
                mg_h5_raw_free(raw);
                return bad(err, errlen, "%s: chunk %lld of '%s' (samples from %lld) was never written; the file "
                           "is incomplete", path, (long long)k, name, (long long)off[0]);
            }
            if ((int64_t)size != raw->chunk_rows * row_bytes) {
                mg_h5_raw_free(raw);
                return bad(err, errlen, "%s: chunk %lld of '%s' holds %llu bytes, expected %lld", path,
                           (long long)k, name, (unsigned long long)size, (long long)(raw->chunk_rows * row_bytes));
            }
            raw->chunk_addr[k] = a;
        }
    }
    /* Every byte the loader will read must lie inside the file. */
    for (int64_t k = 0; k < raw->n_chunks; k++) {
        int64_t rows = n - k * raw->chunk_rows < raw->chunk_rows ? n - k * raw->chunk_rows : raw->chunk_rows;
        if ((int64_t)raw->chunk_addr[k] + rows * row_bytes > (int64_t)st.st_size) {
            mg_h5_raw_free(raw);
            return bad(err, errlen, "%s: dataset '%s' extends past the end of the file (%lld bytes): the file is "
                       "truncated", path, name, (long long)st.st_size);
        }
    }
    /* Cross-check: the first and last rows through HDF5 and through the raw map agree. */
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        mg_h5_raw_free(raw);
        return bad(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    }
    unsigned char *a = mg_alloc((size_t)row_bytes, "row"), *b = mg_alloc((size_t)row_bytes, "row");
    bool ok = true;
    int64_t rows_to_check[2] = {0, n - 1};
    for (int i = 0; ok && i < 2; i++) {
        int64_t row = rows_to_check[i];
        uint64_t at = raw->chunk_addr[row / raw->chunk_rows] + (uint64_t)((row % raw->chunk_rows) * row_bytes);
        if (!h5_read_row(d, memtype, row, row_elems, a))
            ok = bad(err, errlen, "%s: cannot read sample %lld of '%s': %s", path, (long long)row, name,
                     h5_detail());
        else if (pread(fd, b, (size_t)row_bytes, (off_t)at) != (ssize_t)row_bytes)
            ok = bad(err, errlen, "%s: cannot read sample %lld of '%s' at byte %llu", path, (long long)row, name,
                     (unsigned long long)at);
        else if (memcmp(a, b, (size_t)row_bytes) != 0)
            ok = bad(err, errlen, "%s: the raw bytes of '%s' do not match what HDF5 reads; unsupported storage",
                     path, name);
    }
    close(fd);
    mg_free(a);
    mg_free(b);
    if (!ok)
        mg_h5_raw_free(raw);
    return ok;
}

bool mg_h5_raw_layout(mg_h5_file *f, mg_h5_raw *samples, mg_h5_raw *labels, char *err, size_t errlen)
{
    mg_h5_quiet();
    const mg_data_info *fi = &f->info;
    int64_t elems = (int64_t)fi->c * fi->h * fi->w;
    hid_t mt = fi->kind == MG_DATA_IMAGES ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT;
    memset(labels, 0, sizeof *labels);
    if (!raw_map(f, f->samples, samples_name(fi->kind), mg_data_sample_bytes(fi), elems, mt, samples, err, errlen))
        return false;
    if (fi->has_labels && !raw_map(f, f->labels, DS_LABELS, 4, 1, H5T_NATIVE_INT32, labels, err, errlen)) {
        mg_h5_raw_free(samples);
        return false;
    }
    return true;
}

bool mg_h5_raw_factors(mg_h5_file *f, mg_h5_raw *factors, char *err, size_t errlen)
{
    mg_h5_quiet();
    memset(factors, 0, sizeof *factors);
    const int F = f->info.n_factors;
    if (f->factors < 0 || F < 1)
        return bad(err, errlen, "%s: has no dataset '%s' (only synthetic sets such as `mpigan data shapes` store "
                   "factors)", f->path, DS_FACTORS);
    return raw_map(f, f->factors, DS_FACTORS, 4 * (int64_t)F, F, H5T_NATIVE_INT32, factors, err, errlen);
}

static void read_rows(mg_h5_file *f, hid_t d, const char *name, hid_t memtype, int64_t start, int64_t count,
                      void *dst)
{
    mg_h5_quiet();
    MG_CHECK(start >= 0 && count >= 0 && start + count <= f->info.n, f->path, NULL,
             "reading samples [%lld, %lld) of '%s' outside [0, %lld)", (long long)start,
             (long long)(start + count), name, (long long)f->info.n);
    mg_h5_rows_read(d, f->path, name, memtype, start, count, dst);
}

void mg_h5_read_samples(mg_h5_file *f, int64_t start, int64_t count, void *dst)
{
    read_rows(f, f->samples, samples_name(f->info.kind),
              f->info.kind == MG_DATA_IMAGES ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT, start, count, dst);
}

void mg_h5_read_labels(mg_h5_file *f, int64_t start, int64_t count, int32_t *labels)
{
    MG_CHECK(f->labels >= 0, f->path, "this file has no labels", "no dataset '%s'", DS_LABELS);
    read_rows(f, f->labels, DS_LABELS, H5T_NATIVE_INT32, start, count, labels);
}

int mg_h5_n_factors(const mg_h5_file *f) { return f->info.n_factors; }

const char *mg_h5_factor_name(const mg_h5_file *f, int j)
{
    MG_CHECK(j >= 0 && j < f->info.n_factors, f->path, NULL, "factor %d of %d", j, f->info.n_factors);
    return f->info.factor_names[j];
}

void mg_h5_read_factors(mg_h5_file *f, int64_t start, int64_t count, int32_t *factors)
{
    MG_CHECK(f->factors >= 0, f->path, "only synthetic sets such as `mpigan data shapes` store factors",
             "this file has no dataset '%s'", DS_FACTORS);
    read_rows(f, f->factors, DS_FACTORS, H5T_NATIVE_INT32, start, count, factors);
    const int F = f->info.n_factors;
    for (int64_t i = 0; i < count; i++)
        for (int j = 0; j < F; j++) {
            const int32_t v = factors[i * F + j], size = f->info.factor_sizes[j];
            MG_CHECK(size == 0 || (v >= 0 && v < size), f->path, "the file is damaged or was written wrongly",
                     "dataset '%s', sample %lld: factor '%s' is %d, outside 0..%d", DS_FACTORS,
                     (long long)(start + i), f->info.factor_names[j], v, size - 1);
        }
}

bool mg_h5_read_mixture(mg_h5_file *f, mg_mixture_info *mix)
{
    mg_h5_quiet();
    memset(mix, 0, sizeof *mix);
    if (!read_attr_string(f->file, AT_GENERATOR, mix->generator, sizeof mix->generator))
        return false;
    hid_t a = H5Aopen(f->file, AT_MEANS, H5P_DEFAULT);
    hid_t sp = a >= 0 ? H5Aget_space(a) : -1;
    hsize_t d[2] = {0, 0};
    bool ok = sp >= 0 && H5Sget_simple_extent_ndims(sp) == 2 && H5Sget_simple_extent_dims(sp, d, NULL) == 2 &&
              d[1] == 2 && d[0] >= 1 && d[0] <= MG_MIXTURE_MAX_MODES &&
              H5Aread(a, H5T_NATIVE_DOUBLE, mix->means) >= 0;
    if (sp >= 0)
        H5Sclose(sp);
    if (a >= 0)
        H5Aclose(a);
    H5Eclear2(H5E_DEFAULT);
    MG_CHECK(ok, f->path, "see docs/data.md", "attribute '%s' is missing or not a K x 2 array (K <= %d)", AT_MEANS,
             MG_MIXTURE_MAX_MODES);
    mix->n_modes = (int)d[0];
    MG_CHECK(read_attr_doubles(f->file, AT_SIGMA, &mix->sigma, 1), f->path, "see docs/data.md",
             "attribute '%s' is missing", AT_SIGMA);
    read_attr_u64(f->file, AT_SEED, &mix->seed);
    return true;
}

/* ------------------------------------------------------------------ writing */

static hid_t create_dataset(mg_h5_writer *w, const char *name, hid_t type, int rank, const hsize_t *dims,
                            int64_t chunk_rows)
{
    hsize_t chunk[4];
    for (int i = 0; i < rank; i++)
        chunk[i] = dims[i];
    chunk[0] = (hsize_t)chunk_rows;
    hid_t s = H5_OK(H5Screate_simple(rank, dims, NULL), w->path, name);
    hid_t dcpl = H5_OK(H5Pcreate(H5P_DATASET_CREATE), w->path, name);
    H5_OK(H5Pset_chunk(dcpl, rank, chunk), w->path, name);
    /* All chunks allocated up front, in order, so that a sample range is one contiguous
     * byte range; no fill values, since every byte is written once by the converter. */
    H5_OK(H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY), w->path, name);
    H5_OK(H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER), w->path, name);
    /* No creation times in the object headers: the same data gives the same file bytes. */
    H5_OK(H5Pset_obj_track_times(dcpl, 0), w->path, name);
    /* No chunk cache: rows go to the file in H5Dwrite, so a write error (a full disk) is
     * raised by the write that met it, naming the dataset, and not later while closing. */
    hid_t dapl = H5_OK(H5Pcreate(H5P_DATASET_ACCESS), w->path, name);
    H5_OK(H5Pset_chunk_cache(dapl, 0, 0, 1.0), w->path, name);
    hid_t d = H5_OK(H5Dcreate2(w->file, name, type, s, H5P_DEFAULT, dcpl, dapl), w->path, name);
    H5_OK(H5Pclose(dapl), w->path, name);
    H5_OK(H5Pclose(dcpl), w->path, name);
    H5_OK(H5Sclose(s), w->path, name);
    return d;
}

/* A scalar UTF-8 string attribute of the file (variable-length, as h5py writes them). */
static void write_attr_string(mg_h5_writer *w, const char *name, const char *value)
{
    mg_h5_attr_write_vstr(w->file, w->path, name, H5T_CSET_UTF8, 0, &value);
}

mg_h5_writer *mg_h5_create(const char *path, const mg_data_info *info, const mg_mixture_info *mix)
{
    mg_h5_quiet();
    MG_CHECK(info->n >= 1 && info->c >= 1 && info->h >= 1 && info->w >= 1, path, NULL,
             "cannot write an empty data set (N %lld, shape %d x %d x %d)", (long long)info->n, info->c, info->h,
             info->w);
    MG_CHECK(info->kind == MG_DATA_IMAGES || (info->h == 1 && info->w == 1), path, NULL,
             "vector data must have shape (D, 1, 1)");
    mg_h5_writer *w = mg_alloc(sizeof *w, "HDF5 writer");
    w->path = mg_strdup(path);
    w->file = w->samples = w->labels = w->factors = -1;
    mg_data_info_copy(&w->info, info);
    mg_data_info_set_factors(&w->info, 0, NULL, NULL); /* mg_h5_add_factors adds them */
    int64_t row_bytes = mg_data_sample_bytes(info);
    if (w->info.chunk_rows <= 0)
        w->info.chunk_rows = default_chunk_rows(row_bytes, info->n);
    if (w->info.chunk_rows > info->n)
        w->info.chunk_rows = info->n;

    w->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (w->file < 0) {
        const char *detail = h5_detail();
        mg_h5_writer_abandon(w);
        MG_FAIL(path, "check that the directory exists and is writable", "cannot create the HDF5 file: %s", detail);
    }
    if (info->kind == MG_DATA_IMAGES) {
        hsize_t d[4] = {(hsize_t)info->n, (hsize_t)info->c, (hsize_t)info->h, (hsize_t)info->w};
        w->samples = create_dataset(w, DS_IMAGES, H5T_STD_U8LE, 4, d, w->info.chunk_rows);
        write_attr_string(w, AT_KIND, "images");
        const char *layout = "NCHW";
        mg_h5_attr_write_vstr(w->samples, path, AT_LAYOUT, H5T_CSET_ASCII, 0, &layout);
    } else {
        hsize_t d[2] = {(hsize_t)info->n, (hsize_t)info->c};
        w->samples = create_dataset(w, DS_VECTORS, H5T_IEEE_F32LE, 2, d, w->info.chunk_rows);
        write_attr_string(w, AT_KIND, "vectors");
    }
    if (info->has_labels) {
        hsize_t d[1] = {(hsize_t)info->n};
        w->labels = create_dataset(w, DS_LABELS, H5T_STD_I32LE, 1, d, w->info.chunk_rows);
    }
    write_attr_string(w, AT_FORMAT, AT_FORMAT_VALUE);
    int32_t version = MG_H5_FORMAT_VERSION;
    mg_h5_attr_write(w->file, path, AT_VERSION, H5T_STD_I32LE, H5T_NATIVE_INT32, 0, NULL, &version);
    write_attr_string(w, AT_SOURCE, info->source);
    if (info->split[0])
        write_attr_string(w, AT_SPLIT, info->split);
    hsize_t two = 2;
    mg_h5_attr_write(w->file, path, AT_RANGE, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &two, info->value_range);
    if (w->info.n_classes > 0)
        mg_h5_attr_write_vstr(w->file, path, AT_CLASSES, H5T_CSET_UTF8, w->info.n_classes,
                              (const char *const *)w->info.class_names);
    if (mix) {
        MG_CHECK(mix->n_modes >= 1 && mix->n_modes <= MG_MIXTURE_MAX_MODES, path, NULL, "bad mixture (%d modes)",
                 mix->n_modes);
        write_attr_string(w, AT_GENERATOR, mix->generator);
        hsize_t md[2] = {(hsize_t)mix->n_modes, 2};
        mg_h5_attr_write(w->file, path, AT_MEANS, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, md, mix->means);
        mg_h5_attr_write(w->file, path, AT_SIGMA, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, NULL, &mix->sigma);
        mg_h5_attr_write(w->file, path, AT_SEED, H5T_STD_U64LE, H5T_NATIVE_UINT64, 0, NULL, &mix->seed);
    }
    return w;
}

void mg_h5_write_rows(mg_h5_writer *w, int64_t start, int64_t count, const void *samples, const int32_t *labels)
{
    MG_CHECK(start >= 0 && count >= 1 && start + count <= w->info.n, w->path, NULL,
             "writing samples [%lld, %lld) outside [0, %lld)", (long long)start, (long long)(start + count),
             (long long)w->info.n);
    mg_h5_rows_write(w->samples, w->path, samples_name(w->info.kind),
                     w->info.kind == MG_DATA_IMAGES ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT, start, count, samples);
    if (w->labels >= 0) {
        MG_CHECK(labels != NULL, w->path, NULL, "the file has labels but none were given");
        mg_h5_rows_write(w->labels, w->path, DS_LABELS, H5T_NATIVE_INT32, start, count, labels);
    }
}

void mg_h5_add_factors(mg_h5_writer *w, int n_factors, const char *const *names, const int32_t *sizes)
{
    MG_CHECK(w->factors < 0, w->path, NULL, "the file already has '%s'", DS_FACTORS);
    MG_CHECK(n_factors >= 1 && n_factors <= MAX_FACTORS, w->path, NULL, "%d factor columns (1 to %d allowed)",
             n_factors, MAX_FACTORS);
    for (int j = 0; sizes && j < n_factors; j++)
        MG_CHECK(sizes[j] >= 1, w->path, NULL, "factor %d ('%s') has %d values; each needs at least 1", j,
                 names ? names[j] : "", sizes[j]);
    hsize_t d[2] = {(hsize_t)w->info.n, (hsize_t)n_factors}, nf = (hsize_t)n_factors;
    w->factors = create_dataset(w, DS_FACTORS, H5T_STD_I32LE, 2, d, w->info.chunk_rows);
    if (names)
        mg_h5_attr_write_vstr(w->factors, w->path, AT_FACTOR_NAMES, H5T_CSET_UTF8, n_factors, names);
    if (sizes)
        mg_h5_attr_write(w->factors, w->path, AT_FACTOR_SIZES, H5T_STD_I32LE, H5T_NATIVE_INT32, 1, &nf, sizes);
}

void mg_h5_write_factors(mg_h5_writer *w, int64_t start, int64_t count, const int32_t *factors)
{
    MG_CHECK(w->factors >= 0, w->path, NULL, "the file has no '%s' (mg_h5_add_factors first)", DS_FACTORS);
    MG_CHECK(start >= 0 && count >= 1 && start + count <= w->info.n, w->path, NULL,
             "writing factors [%lld, %lld) outside [0, %lld)", (long long)start, (long long)(start + count),
             (long long)w->info.n);
    mg_h5_rows_write(w->factors, w->path, DS_FACTORS, H5T_NATIVE_INT32, start, count, factors);
}

/* New extent along the first dimension (shrinking only: chunks wholly past n are freed,
 * and the remaining ones keep their full size, which the raw layout expects). */
static void shrink_dataset(mg_h5_writer *w, hid_t d, const char *name, int64_t n)
{
    hsize_t dims[4] = {0};
    hid_t sp = H5_OK(H5Dget_space(d), w->path, name);
    H5_OK(H5Sget_simple_extent_dims(sp, dims, NULL), w->path, name);
    H5_OK(H5Sclose(sp), w->path, name);
    dims[0] = (hsize_t)n;
    H5_OK(H5Dset_extent(d, dims), w->path, name);
}

void mg_h5_writer_shrink(mg_h5_writer *w, int64_t n)
{
    MG_CHECK(n >= 1 && n <= w->info.n, w->path, NULL, "cannot shrink %lld samples to %lld", (long long)w->info.n,
             (long long)n);
    if (n == w->info.n)
        return;
    shrink_dataset(w, w->samples, samples_name(w->info.kind), n);
    if (w->labels >= 0)
        shrink_dataset(w, w->labels, DS_LABELS, n);
    if (w->factors >= 0)
        shrink_dataset(w, w->factors, DS_FACTORS, n);
    w->info.n = n;
}

void mg_h5_writer_set_range(mg_h5_writer *w, double lo, double hi)
{
    double r[2] = {lo, hi};
    mg_h5_attr_rewrite(w->file, w->path, AT_RANGE, H5T_NATIVE_DOUBLE, r);
    w->info.value_range[0] = lo;
    w->info.value_range[1] = hi;
}

void mg_h5_writer_close(mg_h5_writer *w)
{
    const char *path = w->path;
    if (w->factors >= 0) {
        H5_OK(H5Dclose(w->factors), path, DS_FACTORS);
        w->factors = -1;
    }
    if (w->labels >= 0) {
        H5_OK(H5Dclose(w->labels), path, DS_LABELS);
        w->labels = -1;
    }
    H5_OK(H5Dclose(w->samples), path, samples_name(w->info.kind));
    w->samples = -1;
    H5_OK(H5Fclose(w->file), path, "closing the file");
    w->file = -1;
    mg_h5_writer_abandon(w);
}

void mg_h5_writer_abandon(mg_h5_writer *w)
{
    if (!w)
        return;
    release_quietly(w->file, w->samples, w->labels, w->factors);
    mg_data_info_free(&w->info);
    mg_free(w->path);
    mg_free(w);
}
