/* Set-up shared by the tests (mg_testenv.h): temporary directories shared by all ranks or
 * by a test's runs at several rank counts, the tiny training config with a test's changes,
 * small image files, classifiers and networks from YAML text. Linked into every test
 * program. */
#include "mg_testenv.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "mg_cfg_override.h"
#include "mg_dist.h"
#include "mg_h5schema.h"
#include "mg_rng.h"

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

void mg_test_shared_dir(char *dir, size_t size, const char *tag)
{
    if (mg_dist_rank() == 0) {
        const char *suite = getenv("MPIGAN_TEST_SHARED"), *tmp = getenv("TMPDIR");
        if (!tmp || !*tmp)
            tmp = "/tmp";
        int n = suite && *suite ? snprintf(dir, size, "%s/%s", suite, tag)
                                : snprintf(dir, size, "%s/mpigan_%s", tmp, tag);
        if (n < 0 || (size_t)n >= size)
            fail_msg("shared directory name for '%s' longer than %zu bytes", tag, size);
        struct stat st;
        if (mkdir(dir, 0777) != 0 && !(stat(dir, &st) == 0 && S_ISDIR(st.st_mode)))
            fail_msg("cannot make the shared directory %s", dir);
    }
    mg_dist_bcast(dir, size);
}

/* configs/tiny.yaml with its data line replaced by data (when not NULL) and run_dir set. */
static mg_cfg *tiny_with_run_dir(const char *run_dir, const char *data)
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
    return cfg;
}

mg_cfg *mg_test_tiny_cfg(const char *run_dir, const char *data, ...)
{
    mg_cfg *cfg = tiny_with_run_dir(run_dir, data);
    va_list ap;
    va_start(ap, data);
    for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *))
        mg_cfg_override(cfg, s);
    va_end(ap);
    return cfg;
}

mg_cfg *mg_test_tiny_cfg_sets(const char *run_dir, const char *data, const char *const *sets)
{
    mg_cfg *cfg = tiny_with_run_dir(run_dir, data);
    for (; sets && *sets; sets++)
        mg_cfg_override(cfg, *sets);
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

void mg_test_write_quadrant_images(const char *path, int side, int64_t n, uint64_t seed, const char *source)
{
    unsigned char *x = malloc((size_t)n * side * side);
    int32_t *y = malloc(sizeof(int32_t) * (size_t)n);
    if (!x || !y)
        fail_msg("out of memory for %lld images of %dx%d", (long long)n, side, side);
    mg_rng r;
    mg_rng_init(&r, seed, mg_rng_stream_id(MG_STREAM_TEST, 0));
    const int h = side / 2;
    for (int64_t i = 0; i < n; i++) {
        y[i] = (int32_t)(i % 4);
        unsigned char *img = x + i * side * side;
        for (int p = 0; p < side * side; p++)
            img[p] = (unsigned char)mg_rng_below(&r, 90);
        const int oy = (y[i] / 2) * h + (int)mg_rng_below(&r, 2), ox = (y[i] % 2) * h + (int)mg_rng_below(&r, 2);
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++)
                img[(oy + a) * side + ox + b] = (unsigned char)(170 + mg_rng_below(&r, 86));
    }
    mg_test_write_images(path, 1, side, n, x, y, source);
    free(x);
    free(y);
}

mg_classifier_result mg_test_classifier_train(const char *source, const char *format, ...)
{
    static char text[8192];
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(text, sizeof text, format, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof text)
        fail_msg("classifier config %s longer than %zu bytes", source, sizeof text);
    mg_cfg *cfg = mg_cfg_parse(text, source);
    mg_classifier_result r = mg_classifier_train(cfg, text, "", false);
    mg_cfg_free(cfg);
    return r;
}

void mg_test_net_from_text(const char *text, const char *source, const char *name)
{
    mg_cfg *cfg = mg_cfg_parse(text, source);
    mg_net net;
    mg_net_from_cfg(&net, name, mg_cfg_get(mg_cfg_root(cfg), "net"), (mg_shape){0, 0, 0}, 4);
    mg_cfg_check_unused(cfg);
    mg_net_free(&net);
    mg_cfg_free(cfg);
}
