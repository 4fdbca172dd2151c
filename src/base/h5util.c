/* Checked HDF5 helpers (see mg_h5util.h), shared by every module that owns a file format
 * so that all of them check HDF5 calls, validate what they read and report failures
 * alike. Nothing here spells a dataset or attribute name of a format. */
#include "mg_h5util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mg_error.h"
#include "mg_util.h"

#define H5_OK MG_H5_OK

void mg_h5_quiet(void)
{
    static int done;
    if (!done) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        done = 1;
    }
}

typedef struct { char *buf; size_t size; } detail_sink;

static herr_t innermost(unsigned n, const H5E_error2_t *e, void *ctx)
{
    detail_sink *sink = ctx;
    if (n == 0)
        snprintf(sink->buf, sink->size, "%s", e->desc && e->desc[0] ? e->desc : (e->func_name ? e->func_name : "?"));
    return 0;
}

const char *mg_h5_detail(char *buf, size_t size)
{
    detail_sink sink = {buf, size};
    buf[0] = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, &sink); /* upward: the first entry is the innermost */
    H5Eclear2(H5E_DEFAULT);
    if (!buf[0])
        snprintf(buf, size, "no HDF5 detail");
    return buf;
}

void mg_h5_fail_at(const char *src, int line, const char *file, const char *object, const char *call)
{
    char detail[256], where[1200];
    mg_h5_detail(detail, sizeof detail);
    snprintf(where, sizeof where, "%s: %s", file, object);
    mg_fatal_at(src, line, where, "the file may be truncated, foreign or on a full disk", "HDF5 call %s failed: %s",
                call, detail);
}

/* ---- files ---- */

hid_t mg_h5_open_read(const char *path, const char *what, const char *hint)
{
    mg_h5_quiet();
    MG_CHECK(access(path, R_OK) == 0, path, hint, "cannot read %s: %s", what, strerror(errno));
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        char detail[256];
        MG_FAIL(path, hint, "not a readable %s (HDF5: %s)", what, mg_h5_detail(detail, sizeof detail));
    }
    return f;
}

hid_t mg_h5_create_tmp(const char *path, char *tmp, size_t size)
{
    mg_h5_quiet();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        mg_mkdir_p(dir);
    }
    mg_tmp_path(tmp, size, path);
    return H5_OK(H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), tmp, "/");
}

void mg_h5_commit(hid_t f, const char *tmp, const char *path)
{
    if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0 || H5Fclose(f) < 0) {
        unlink(tmp);
        mg_h5_fail_at(__FILE__, __LINE__, tmp, "/", "H5Fflush/H5Fclose");
    }
    mg_file_commit(tmp, path);
}

hid_t mg_h5_group_create(hid_t loc, const char *file, const char *name)
{
    return H5_OK(H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), file, name);
}

bool mg_h5_exists(hid_t loc, const char *file, const char *name)
{
    return H5_OK(H5Lexists(loc, name, H5P_DEFAULT), file, name) > 0;
}

/* ---- attributes ---- */

/* A fixed-length, NUL-padded string type of len bytes (at least 1). */
static hid_t fixed_string_type(const char *file, const char *name, size_t len)
{
    hid_t t = H5_OK(H5Tcopy(H5T_C_S1), file, name);
    H5_OK(H5Tset_size(t, len ? len : 1), file, name);
    H5_OK(H5Tset_strpad(t, H5T_STR_NULLPAD), file, name);
    return t;
}

void mg_h5_attr_write(hid_t loc, const char *file, const char *name, hid_t file_type, hid_t mem_type, int rank,
                      const hsize_t *dims, const void *value)
{
    hid_t space = H5_OK(rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, dims, NULL), file, name);
    hid_t a = H5_OK(H5Acreate2(loc, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT), file, name);
    H5_OK(H5Awrite(a, mem_type, value), file, name);
    H5_OK(H5Aclose(a), file, name);
    H5_OK(H5Sclose(space), file, name);
}

void mg_h5_attr_rewrite(hid_t loc, const char *file, const char *name, hid_t mem_type, const void *value)
{
    hid_t a = H5_OK(H5Aopen(loc, name, H5P_DEFAULT), file, name);
    H5_OK(H5Awrite(a, mem_type, value), file, name);
    H5_OK(H5Aclose(a), file, name);
}

void mg_h5_attr_write_i64(hid_t loc, const char *file, const char *name, int64_t v)
{
    mg_h5_attr_write(loc, file, name, H5T_STD_I64LE, H5T_NATIVE_INT64, 0, NULL, &v);
}

void mg_h5_attr_write_u64(hid_t loc, const char *file, const char *name, uint64_t v)
{
    mg_h5_attr_write(loc, file, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, 0, NULL, &v);
}

void mg_h5_attr_write_f64(hid_t loc, const char *file, const char *name, double v)
{
    mg_h5_attr_write(loc, file, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, NULL, &v);
}

void mg_h5_attr_write_str(hid_t loc, const char *file, const char *name, const char *s)
{
    hid_t t = fixed_string_type(file, name, strlen(s));
    mg_h5_attr_write(loc, file, name, t, t, 0, NULL, s);
    H5_OK(H5Tclose(t), file, name);
}

void mg_h5_attr_write_vstr(hid_t loc, const char *file, const char *name, H5T_cset_t cset, int n,
                           const char *const *values)
{
    hid_t t = H5_OK(H5Tcopy(H5T_C_S1), file, name);
    H5_OK(H5Tset_size(t, H5T_VARIABLE), file, name);
    H5_OK(H5Tset_cset(t, cset), file, name);
    const hsize_t d = (hsize_t)n;
    mg_h5_attr_write(loc, file, name, t, t, n == 0 ? 0 : 1, &d, values);
    H5_OK(H5Tclose(t), file, name);
}

bool mg_h5_attr_exists(hid_t loc, const char *file, const char *obj, const char *name)
{
    return H5_OK(H5Aexists_by_name(loc, obj, name, H5P_DEFAULT), file, name) > 0;
}

/* "format" or "format of meta", for messages. */
static const char *attr_what(char *buf, size_t size, const char *obj, const char *name)
{
    if (!strcmp(obj, "."))
        snprintf(buf, size, "attribute %s", name);
    else
        snprintf(buf, size, "attribute %s of %s", name, obj);
    return buf;
}

/* Opens an attribute that must exist. */
static hid_t open_attr(hid_t loc, const char *file, const char *obj, const char *name, const char *what,
                       const char *hint)
{
    MG_CHECK(mg_h5_attr_exists(loc, file, obj, name), file, hint, "missing %s", what);
    return H5_OK(H5Aopen_by_name(loc, obj, name, H5P_DEFAULT, H5P_DEFAULT), file, what);
}

static void read_scalar(hid_t loc, const char *file, const char *obj, const char *name, hid_t mem_type, void *value,
                        const char *hint)
{
    char what[300];
    attr_what(what, sizeof what, obj, name);
    hid_t a = open_attr(loc, file, obj, name, what, hint);
    hid_t space = H5_OK(H5Aget_space(a), file, what);
    MG_CHECK(H5_OK(H5Sget_simple_extent_npoints(space), file, what) == 1, file, hint, "%s is not a single value",
             what);
    H5_OK(H5Aread(a, mem_type, value), file, what);
    H5_OK(H5Sclose(space), file, what);
    H5_OK(H5Aclose(a), file, what);
}

int64_t mg_h5_attr_read_i64(hid_t loc, const char *file, const char *obj, const char *name, const char *hint)
{
    int64_t v = 0;
    read_scalar(loc, file, obj, name, H5T_NATIVE_INT64, &v, hint);
    return v;
}

uint64_t mg_h5_attr_read_u64(hid_t loc, const char *file, const char *obj, const char *name, const char *hint)
{
    uint64_t v = 0;
    read_scalar(loc, file, obj, name, H5T_NATIVE_UINT64, &v, hint);
    return v;
}

double mg_h5_attr_read_f64(hid_t loc, const char *file, const char *obj, const char *name, const char *hint)
{
    double v = 0;
    read_scalar(loc, file, obj, name, H5T_NATIVE_DOUBLE, &v, hint);
    return v;
}

void mg_h5_attr_read_str(hid_t loc, const char *file, const char *obj, const char *name, char *out, size_t size,
                         const char *hint)
{
    char what[300];
    attr_what(what, sizeof what, obj, name);
    hid_t a = open_attr(loc, file, obj, name, what, hint);
    hid_t t = H5_OK(H5Aget_type(a), file, what);
    MG_CHECK(H5_OK(H5Tget_class(t), file, what) == H5T_STRING && H5_OK(H5Tis_variable_str(t), file, what) == 0,
             file, hint, "%s is not a fixed-length string", what);
    const size_t len = H5Tget_size(t);
    MG_CHECK(len > 0 && len < size, file, hint, "%s has an unexpected length %zu", what, len);
    hid_t mem = fixed_string_type(file, what, len);
    memset(out, 0, size);
    H5_OK(H5Aread(a, mem, out), file, what);
    H5_OK(H5Tclose(mem), file, what);
    H5_OK(H5Tclose(t), file, what);
    H5_OK(H5Aclose(a), file, what);
}

/* ---- datasets ---- */

static hsize_t count_of(int rank, const hsize_t *dims)
{
    hsize_t total = 1;
    for (int i = 0; i < rank; i++)
        total *= dims[i];
    return total;
}

void mg_h5_write_array(hid_t loc, const char *file, const char *name, hid_t file_type, hid_t mem_type, int rank,
                       const hsize_t *dims, const void *data)
{
    hid_t space = H5_OK(H5Screate_simple(rank, dims, NULL), file, name);
    hid_t set = H5_OK(H5Dcreate2(loc, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), file, name);
    if (count_of(rank, dims))
        H5_OK(H5Dwrite(set, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), file, name);
    H5_OK(H5Dclose(set), file, name);
    H5_OK(H5Sclose(space), file, name);
}

int mg_h5_shape(hid_t loc, const char *file, const char *name, hsize_t *dims, int max_rank, const char *hint)
{
    MG_CHECK(mg_h5_exists(loc, file, name), file, hint, "missing dataset %s", name);
    hid_t set = H5_OK(H5Dopen2(loc, name, H5P_DEFAULT), file, name);
    hid_t space = H5_OK(H5Dget_space(set), file, name);
    const int rank = H5_OK(H5Sget_simple_extent_ndims(space), file, name);
    MG_CHECK(rank <= max_rank, file, hint, "dataset %s has %d dimensions, at most %d expected", name, rank, max_rank);
    H5_OK(H5Sget_simple_extent_dims(space, dims, NULL), file, name);
    H5_OK(H5Sclose(space), file, name);
    H5_OK(H5Dclose(set), file, name);
    return rank;
}

/* "12" for one dimension, "(3, 4)" for more. */
static const char *shape_text(char *buf, size_t size, int rank, const hsize_t *dims)
{
    if (rank == 1) {
        snprintf(buf, size, "%llu", (unsigned long long)dims[0]);
        return buf;
    }
    size_t at = (size_t)snprintf(buf, size, "(");
    for (int i = 0; i < rank && at < size; i++)
        at += (size_t)snprintf(buf + at, size - at, "%s%llu", i ? ", " : "", (unsigned long long)dims[i]);
    if (at < size)
        snprintf(buf + at, size - at, ")");
    return buf;
}

void mg_h5_read_array(hid_t loc, const char *file, const char *name, hid_t mem_type, int rank, const hsize_t *dims,
                      void *dst, const char *hint)
{
    hsize_t got[H5S_MAX_RANK] = {0};
    const int got_rank = mg_h5_shape(loc, file, name, got, H5S_MAX_RANK, hint);
    bool same = got_rank == rank;
    for (int i = 0; same && i < rank; i++)
        same = got[i] == dims[i];
    if (!same) {
        char have[200], want[200];
        MG_FAIL(file, hint, "dataset %s holds %s values, expected %s", name,
                shape_text(have, sizeof have, got_rank, got), shape_text(want, sizeof want, rank, dims));
    }
    if (!count_of(rank, dims))
        return;
    hid_t set = H5_OK(H5Dopen2(loc, name, H5P_DEFAULT), file, name);
    H5_OK(H5Dread(set, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst), file, name);
    H5_OK(H5Dclose(set), file, name);
}

static void rows_io(hid_t set, const char *file, const char *name, hid_t mem_type, int64_t start, int64_t count,
                    void *read_to, const void *write_from)
{
    hid_t fs = H5_OK(H5Dget_space(set), file, name);
    hsize_t dims[H5S_MAX_RANK] = {0}, offset[H5S_MAX_RANK] = {0};
    const int rank = H5_OK(H5Sget_simple_extent_dims(fs, dims, NULL), file, name);
    MG_CHECK(rank >= 1 && start >= 0 && count >= 0 && (hsize_t)(start + count) <= dims[0], file, NULL,
             "rows [%lld, %lld) of dataset %s outside [0, %llu)", (long long)start, (long long)(start + count), name,
             rank >= 1 ? (unsigned long long)dims[0] : 0ull);
    if (count > 0) {
        offset[0] = (hsize_t)start;
        dims[0] = (hsize_t)count;
        hid_t ms = H5_OK(H5Screate_simple(rank, dims, NULL), file, name);
        H5_OK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, offset, NULL, dims, NULL), file, name);
        if (write_from)
            H5_OK(H5Dwrite(set, mem_type, ms, fs, H5P_DEFAULT, write_from), file, name);
        else
            H5_OK(H5Dread(set, mem_type, ms, fs, H5P_DEFAULT, read_to), file, name);
        H5_OK(H5Sclose(ms), file, name);
    }
    H5_OK(H5Sclose(fs), file, name);
}

void mg_h5_rows_read(hid_t set, const char *file, const char *name, hid_t mem_type, int64_t start, int64_t count,
                     void *buf)
{
    rows_io(set, file, name, mem_type, start, count, buf, NULL);
}

void mg_h5_rows_write(hid_t set, const char *file, const char *name, hid_t mem_type, int64_t start, int64_t count,
                      const void *buf)
{
    rows_io(set, file, name, mem_type, start, count, NULL, buf);
}

void mg_h5_write_text(hid_t loc, const char *file, const char *name, const char *text)
{
    hid_t t = fixed_string_type(file, name, strlen(text));
    hid_t space = H5_OK(H5Screate(H5S_SCALAR), file, name);
    hid_t set = H5_OK(H5Dcreate2(loc, name, t, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), file, name);
    H5_OK(H5Dwrite(set, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, text), file, name);
    H5_OK(H5Dclose(set), file, name);
    H5_OK(H5Sclose(space), file, name);
    H5_OK(H5Tclose(t), file, name);
}

char *mg_h5_read_text(hid_t loc, const char *file, const char *name, const char *hint)
{
    MG_CHECK(mg_h5_exists(loc, file, name), file, hint, "missing dataset %s", name);
    hid_t set = H5_OK(H5Dopen2(loc, name, H5P_DEFAULT), file, name);
    hid_t t = H5_OK(H5Dget_type(set), file, name);
    MG_CHECK(H5_OK(H5Tget_class(t), file, name) == H5T_STRING && H5_OK(H5Tis_variable_str(t), file, name) == 0,
             file, hint, "dataset %s is not a fixed-length string", name);
    const size_t len = H5Tget_size(t);
    char *text = mg_alloc(len + 1, name);
    hid_t mem = fixed_string_type(file, name, len);
    H5_OK(H5Dread(set, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, text), file, name);
    text[len] = 0;
    H5_OK(H5Tclose(mem), file, name);
    H5_OK(H5Tclose(t), file, name);
    H5_OK(H5Dclose(set), file, name);
    return text;
}
