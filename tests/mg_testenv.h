/* Set-up shared by the tests that train or write files: a temporary directory that all
 * ranks share, and the small GAN of configs/tiny.yaml with a test's changes applied.
 *
 * Each directory is made fresh with mkdtemp, so two runs of the suite (or two tests) at
 * the same time never share files. Failures end the running test (cmocka's fail_msg). */
#ifndef MG_TESTENV_H
#define MG_TESTENV_H

#include <stddef.h>
#include <stdint.h>

#include "mg_cfg.h"

/* Rank 0 makes a new directory $TMPDIR/mpigan_<tag>_XXXXXX (TMPDIR defaults to /tmp) and
 * broadcasts its path, which every rank receives in dir (size bytes). Collective. */
void mg_test_dir_make(char *dir, size_t size, const char *tag);

/* Removes dir and everything in it (rank 0), after every rank has got there and before
 * any goes on. Collective. */
void mg_test_dir_remove(const char *dir);

/* configs/tiny.yaml (read from the working directory, the repository root) with run_dir
 * set to run_dir; when data is not NULL it replaces the config's data line (for example
 * "data: {path: F.h5, sampler: global}"). Then each "key=value" of the NULL-terminated
 * list is applied as `--set key=value` would be. The caller frees the result with
 * mg_cfg_free. */
mg_cfg *mg_test_tiny_cfg(const char *run_dir, const char *data, ...);

/* Writes path as a data file of n uint8 images (c, side, side) from x, with labels y when
 * y is not NULL; source names the test in the file. One process; fails the test through
 * the error path. */
void mg_test_write_images(const char *path, int c, int side, int64_t n, const unsigned char *x, const int32_t *y,
                          const char *source);

#endif
