/* Checked HDF5 calls: the part of the one error path that speaks HDF5.
 * HDF5's own error-stack printing is turned off (mg_h5_quiet) so that the user sees one
 * message of ours naming the file, the object and HDF5's innermost explanation. */
#ifndef MG_H5CHECK_H
#define MG_H5CHECK_H

#include <hdf5.h>
#include <stddef.h>

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

/* Opens an existing file read-only; fatal with hint when it is unreadable or not HDF5
 * (what names the expected content, e.g. "checkpoint"). */
hid_t mg_h5_open_read(const char *path, const char *what, const char *hint);

#endif
