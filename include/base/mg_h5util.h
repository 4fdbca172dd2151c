/* Checked HDF5 helpers: the part of the one error path that speaks HDF5, and the small
 * operations every file format is built from (attributes, string and numeric datasets,
 * the write-to-temporary-then-rename commit).
 *
 * The modules that own a format (h5schema.c: training data; checkpoint.c: checkpoints;
 * eval_files.c: the evaluation's files and generator samples) spell their dataset and
 * attribute names and call these; nothing here knows a name. Every HDF5 call goes through
 * MG_H5_OK, which on a negative result fails naming the file, the object, the call and
 * HDF5's innermost message; HDF5's own error-stack printing is turned off (mg_h5_quiet),
 * so the user sees one message of ours.
 *
 * Conventions: loc is an open file, group or dataset; file is the path used in messages;
 * name is relative to loc. Strings written by the fixed-length helpers are fixed-length,
 * NUL-padded (h5py reads them as bytes); readers accept only that form. */
#ifndef MG_H5UTIL_H
#define MG_H5UTIL_H

#include <hdf5.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Turns off HDF5's automatic error printing (idempotent). */
void mg_h5_quiet(void);

/* The most specific message on HDF5's error stack ("truncated file: eof = ..."), written
 * into buf; the stack is cleared. Returns buf ("no HDF5 detail" when empty). */
const char *mg_h5_detail(char *buf, size_t size);

/* Fails naming file and object, the failed call and HDF5's detail. */
void mg_h5_fail_at(const char *src, int line, const char *file, const char *object, const char *call)
    __attribute__((noreturn));

/* Evaluates an HDF5 call; a negative result is fatal. Yields the call's value. */
#define MG_H5_OK(expr, file, object)                                          \
    ({                                                                        \
        __typeof__(expr) mg_h5_r_ = (expr);                                   \
        if (mg_h5_r_ < 0)                                                     \
            mg_h5_fail_at(__FILE__, __LINE__, (file), (object), #expr);       \
        mg_h5_r_;                                                             \
    })

/* ---- files ---- */

/* Opens an existing file read-only; fatal with hint when it is unreadable or not HDF5
 * (what names the expected content, e.g. "checkpoint"). */
hid_t mg_h5_open_read(const char *path, const char *what, const char *hint);

/* Creates the temporary file path is written under (mg_tmp_path, mg_util.h), creating
 * path's directory first; its name goes into tmp. */
hid_t mg_h5_create_tmp(const char *path, char *tmp, size_t size);
/* Closes f (flushed) and renames tmp over path durably (mg_file_commit). */
void mg_h5_commit(hid_t f, const char *tmp, const char *path);

/* A new group name under loc (close with H5Gclose through MG_H5_OK). */
hid_t mg_h5_group_create(hid_t loc, const char *file, const char *name);
/* True when the link name exists under loc. */
bool mg_h5_exists(hid_t loc, const char *file, const char *name);

/* ---- attributes ---- */

/* A scalar attribute on loc, stored as little-endian int64 / uint64 / float64. */
void mg_h5_attr_write_i64(hid_t loc, const char *file, const char *name, int64_t v);
void mg_h5_attr_write_u64(hid_t loc, const char *file, const char *name, uint64_t v);
void mg_h5_attr_write_f64(hid_t loc, const char *file, const char *name, double v);
/* A scalar fixed-length string attribute (NUL-padded, the string's length). */
void mg_h5_attr_write_str(hid_t loc, const char *file, const char *name, const char *s);
/* Variable-length string attributes in the given character set: a scalar when n is 0,
 * else a 1-d array of n strings. */
void mg_h5_attr_write_vstr(hid_t loc, const char *file, const char *name, H5T_cset_t cset, int n,
                           const char *const *values);
/* A numeric attribute of any shape (rank 0: scalar); mem_type describes value. */
void mg_h5_attr_write(hid_t loc, const char *file, const char *name, hid_t file_type, hid_t mem_type, int rank,
                      const hsize_t *dims, const void *value);
/* Overwrites an existing attribute's value. */
void mg_h5_attr_rewrite(hid_t loc, const char *file, const char *name, hid_t mem_type, const void *value);

/* Attribute name of the object obj (relative to loc; "." for loc itself). */
bool mg_h5_attr_exists(hid_t loc, const char *file, const char *obj, const char *name);
/* Reads a single-valued numeric attribute, converted to the type asked for; a missing
 * or non-scalar attribute is fatal with hint. */
int64_t mg_h5_attr_read_i64(hid_t loc, const char *file, const char *obj, const char *name, const char *hint);
uint64_t mg_h5_attr_read_u64(hid_t loc, const char *file, const char *obj, const char *name, const char *hint);
double mg_h5_attr_read_f64(hid_t loc, const char *file, const char *obj, const char *name, const char *hint);
/* Reads a fixed-length string attribute into out (size bytes, NUL-terminated); missing,
 * another type or too long for out is fatal with hint. */
void mg_h5_attr_read_str(hid_t loc, const char *file, const char *obj, const char *name, char *out, size_t size,
                         const char *hint);

/* ---- datasets ---- */

/* A whole dataset of the given shape (file_type in the file, mem_type in memory). */
void mg_h5_write_array(hid_t loc, const char *file, const char *name, hid_t file_type, hid_t mem_type, int rank,
                       const hsize_t *dims, const void *data);
/* Reads a whole dataset that must exist with exactly the given shape; otherwise fatal
 * ("dataset NAME holds 10 values, expected 12") with hint. */
void mg_h5_read_array(hid_t loc, const char *file, const char *name, hid_t mem_type, int rank, const hsize_t *dims,
                      void *dst, const char *hint);
/* Shape of an existing dataset: fills dims (up to max_rank) and returns its rank; a
 * missing dataset or one of higher rank is fatal with hint. */
int mg_h5_shape(hid_t loc, const char *file, const char *name, hsize_t *dims, int max_rank, const char *hint);

/* Rows [start, start + count) along the first dimension of the open dataset set, all of
 * every other dimension, read into or written from buf (mem_type describes buf). Rows
 * outside the dataset are fatal. */
void mg_h5_rows_read(hid_t set, const char *file, const char *name, hid_t mem_type, int64_t start, int64_t count,
                     void *buf);
void mg_h5_rows_write(hid_t set, const char *file, const char *name, hid_t mem_type, int64_t start, int64_t count,
                      const void *buf);

/* A scalar fixed-length string dataset (config texts). */
void mg_h5_write_text(hid_t loc, const char *file, const char *name, const char *text);
/* Reads one; returns it allocated (mg_free). Missing or not a fixed-length string is
 * fatal with hint. */
char *mg_h5_read_text(hid_t loc, const char *file, const char *name, const char *hint);

#endif
