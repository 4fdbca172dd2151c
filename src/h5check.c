/* Checked HDF5 calls (see mg_h5check.h), shared by every module that owns a file layout
 * (datasets, checkpoints, evaluation files) so that all report HDF5 failures alike. */
#include "mg_h5check.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mg_error.h"

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
