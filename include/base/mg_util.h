/* Small base utilities every subsystem may use: a clock, directories and the
 * write-then-rename commit of a file, and the checksum replicas compare.
 * No MPI, no HDF5; failures go through the one error path (mg_error.h). */
#ifndef MG_UTIL_H
#define MG_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- clock ---- */

/* Seconds on CLOCK_MONOTONIC: for intervals (step times, evaluation times). */
double mg_now(void);
/* Seconds on the given clock (CLOCK_THREAD_CPUTIME_ID for CPU time in benchmarks). */
double mg_clock_seconds(clockid_t clock);

/* ---- files ---- */

/* Creates dir and its parents (mkdir -p); fatal on failure. */
void mg_mkdir_p(const char *dir);

/* The temporary name a file is written under before mg_file_commit renames it into
 * place: "<path>.tmp-<pid>", so that two processes never share one. */
void mg_tmp_path(char *tmp, size_t size, const char *path);

/* Makes a completely written tmp the file path: fsync tmp, rename it over path, fsync
 * the directory. A crash at any moment leaves either the old path or the new one. On
 * failure tmp is removed and the error is fatal. */
void mg_file_commit(const char *tmp, const char *path);

/* ---- checksum ---- */

/* Order-sensitive checksum of bytes: equal buffers, equal sums. FNV-1a's step and 64-bit
 * prime, started from 1469598103934665603 (not FNV's offset basis 14695981039346656037):
 * extractor model files store these sums, so the start value stays as it is. */
uint64_t mg_checksum(const void *buf, size_t bytes);

#endif
