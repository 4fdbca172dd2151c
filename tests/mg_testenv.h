/* Set-up shared by the tests that train or write files: a temporary directory that all
 * ranks share, the directory a test's runs at several rank counts share, the small GAN of
 * configs/tiny.yaml with a test's changes applied, small data files, classifiers and
 * networks built from YAML text.
 *
 * Each temporary directory is made fresh with mkdtemp, so two runs of the suite (or two
 * tests) at the same time never share files; the shared directories of mg_test_shared_dir
 * are one set per run of tests/run.sh. Failures end the running test (cmocka's fail_msg). */
#ifndef MG_TESTENV_H
#define MG_TESTENV_H

#include <stddef.h>
#include <stdint.h>

#include "mg_cfg.h"
#include "mg_classifier.h"
#include "mg_net.h"

/* Rank 0 makes a new directory $TMPDIR/mpigan_<tag>_XXXXXX (TMPDIR defaults to /tmp) and
 * broadcasts its path, which every rank receives in dir (size bytes). Collective. */
void mg_test_dir_make(char *dir, size_t size, const char *tag);

/* Removes dir and everything in it (rank 0), after every rank has got there and before
 * any goes on. Collective. */
void mg_test_dir_remove(const char *dir);

/* The directory where a test's one-rank run leaves a reference for its runs at other rank
 * counts (tests/run.sh runs them one after the other): $MPIGAN_TEST_SHARED/<tag>, where
 * run.sh makes MPIGAN_TEST_SHARED a new directory per suite run (and removes it at the
 * end), so two suites at once never read each other's references. Without it (a test run
 * by hand) $TMPDIR/mpigan_<tag> (TMPDIR defaults to /tmp), the same for every run.
 * Rank 0 makes the directory if missing and broadcasts its path into dir (size bytes).
 * Collective. */
void mg_test_shared_dir(char *dir, size_t size, const char *tag);

/* configs/tiny.yaml (read from the working directory, the repository root) with run_dir
 * set to run_dir; when data is not NULL it replaces the config's data line (for example
 * "data: {path: F.h5, sampler: global}"). Then each "key=value" of the NULL-terminated
 * list is applied as `--set key=value` would be. The caller frees the result with
 * mg_cfg_free. */
mg_cfg *mg_test_tiny_cfg(const char *run_dir, const char *data, ...);

/* mg_test_tiny_cfg with the "key=value" overrides in the NULL-terminated array sets
 * (sets may be NULL). */
mg_cfg *mg_test_tiny_cfg_sets(const char *run_dir, const char *data, const char *const *sets);

/* Writes path as a data file of n uint8 images (c, side, side) from x, with labels y when
 * y is not NULL; source names the test in the file. One process; fails the test through
 * the error path. */
void mg_test_write_images(const char *path, int c, int side, int64_t n, const unsigned char *x, const int32_t *y,
                          const char *source);

/* Writes path as a data file of n labelled grey side x side images (side >= 8, even) in 4
 * classes: image i has class i % 4, dim noise (0..89) and a bright 3x3 block (170..255)
 * in quadrant i % 4, moved by up to one pixel; seed picks the noise. One process. */
void mg_test_write_quadrant_images(const char *path, int side, int64_t n, uint64_t seed, const char *source);

/* Trains a classifier from the YAML config that format and its arguments make (printf
 * style; at most 8 KiB; named source in errors), without overrides or progress lines, and
 * returns the result. Collective. */
mg_classifier_result mg_test_classifier_train(const char *source, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* Builds the network spec at the key "net" of the YAML text (named source in errors) as
 * network name, batch 4, checks that no key went unused, and frees it all: for tests that
 * expect the build to fail (MG_EXPECT_FATAL). */
void mg_test_net_from_text(const char *text, const char *source, const char *name);

#endif
