/* Set-up shared by the tests (mg_testenv.h): temporary directories shared by all ranks,
 * and the tiny training config with a test's changes. Linked into every test program. */
#include "mg_testenv.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mg_cfg_override.h"
#include "mg_dist.h"
#include "mg_h5schema.h"

void mg_test_dir_make(char *dir, size_t size, const char *tag)
{
    if (mg_dist_rank() == 0) {
        const char *tmp = getenv("TMPDIR");
        if (!tmp || !*tmp)
            tmp = "/tmp";
        int n = snprintf(dir, size, "%s/mpigan_%s_XXXXXX", tmp, tag);
        if (n < 0 || (size_t)n >= size)
            fail_msg("temporary directory name for '%s' longer than %zu bytes", tag, size);
        if (!mkdtemp(dir))
            fail_msg("cannot make the temporary directory %s", dir);
    }
    mg_dist_bcast(dir, size);
}

void mg_test_dir_remove(const char *dir)
{
    mg_dist_barrier();
    if (mg_dist_rank() == 0 && dir[0]) {
        char cmd[1100];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fail_msg("cannot remove the temporary directory %s", dir);
    }
    mg_dist_barrier();
}

mg_cfg *mg_test_tiny_cfg(const char *run_dir, const char *data, ...)
{
    const char *file = "configs/tiny.yaml";
    mg_cfg *cfg;
    if (data) {
        FILE *f = fopen(file, "rb");
        if (!f)
            fail_msg("cannot open %s (run the tests from the repository root)", file);
        char text[8192], edited[8704];
        size_t n = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[n] = 0;
        const char *old = "data: {source: ring8}";
        const char *at = strstr(text, old);
        if (!at)
            fail_msg("%s has no line '%s' to replace", file, old);
        snprintf(edited, sizeof edited, "%.*s%s%s", (int)(at - text), text, data, at + strlen(old));
        cfg = mg_cfg_parse(edited, "tiny.yaml (HDF5 data)");
    } else {
        cfg = mg_cfg_load_file(file);
    }
    char set[1100];
    snprintf(set, sizeof set, "run_dir=%s", run_dir);
    mg_cfg_override(cfg, set);
    va_list ap;
    va_start(ap, data);
    for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *))
        mg_cfg_override(cfg, s);
    va_end(ap);
    return cfg;
}

void mg_test_write_images(const char *path, int c, int side, int64_t n, const unsigned char *x, const int32_t *y,
                          const char *source)
{
    mg_data_info info = {0};
    info.kind = MG_DATA_IMAGES;
    info.n = n, info.c = c, info.h = side, info.w = side;
    info.has_labels = y != NULL;
    info.value_range[1] = 255;
    snprintf(info.source, sizeof info.source, "%s", source);
    mg_h5_writer *w = mg_h5_create(path, &info, NULL);
    mg_h5_write_rows(w, 0, n, x, y);
    mg_h5_writer_close(w);
}
