/* The distributed writer: one data file (mg_h5schema.h) whose samples are made by all ranks.
 *
 * Item i of n_items is made by the caller's callback on the rank that owns it. The items go
 * in rounds: each rank makes a block of consecutive items (about round_bytes of samples),
 * rank 0 gathers the blocks in rank order, which is item order, and writes them through
 * mg_h5_writer. No rank holds more than one round (rank 0: one round of every rank), and the
 * file's bytes of samples, labels and factors do not depend on the rank count.
 *
 * The file is written as "<out>.tmp-<pid>" (rank 0's pid) and renamed when complete; any
 * error (a bad item without skip_bad, a full disk, an HDF5 failure) removes it, so the final
 * name never holds a half-written file. Collective: every rank calls it with the same spec
 * (the callback and ctx may differ per rank). */
#ifndef MG_CONVERT_DIST_H
#define MG_CONVERT_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_h5schema.h"

/* Makes item `item`: fills sample (C*H*W bytes, zeroed on entry), *label (when the file has
 * labels; else label is NULL) and factors[0..n_factors) (NULL when there are none). Returns
 * false for a bad item, with a one-line reason in why (why_size bytes) that names the item
 * (its file). It must not fail through the error path for bad input: another rank would be
 * left waiting in the next collective (a fatal error still ends every rank, through
 * MPI_Abort, but without a collective message). */
typedef bool (*mg_make_item_fn)(void *ctx, int64_t item, uint8_t *sample, int32_t *label, int32_t *factors,
                                char *why, size_t why_size);

typedef struct {
    mg_data_info info;           /* images only: shape, has_labels, classes, source, split;
                                    info.n is ignored (n_items); chunk_rows 0: the default */
    int64_t n_items;
    int n_factors;               /* 0: no factors dataset */
    const char *const *factor_names; /* n_factors names, or NULL */
    const int32_t *factor_sizes;     /* n_factors value counts (each >= 1), or NULL */
    bool skip_bad;               /* false: the first bad item (lowest index) ends the run */
    int64_t round_bytes;         /* samples per rank and round; 0: 4 MiB */
    bool quiet;                  /* true: skipped items are not reported on stderr */
    mg_make_item_fn make;
    void *ctx;
} mg_dist_write_spec;

/* The same on every rank. */
typedef struct {
    int64_t n_written;           /* the file's N */
    int64_t n_bad;               /* items skipped */
    char first_bad[512];         /* the reason of the lowest bad item ("" when none) */
} mg_dist_write_result;

/* Writes out_path (see the top). Items reported bad are dropped and counted with
 * spec->skip_bad; otherwise every rank fails with one message naming the lowest bad item.
 * No item kept is an error too. */
void mg_convert_dist_write(const char *out_path, const mg_dist_write_spec *spec, mg_dist_write_result *res);

/* Collective check before a conversion starts: rank 0's verdict (root_error, "" when all
 * is well; ignored on other ranks) is broadcast, and when it is an error every rank fails
 * with that message and hint, so all ranks print the same and none waits. */
void mg_convert_agree(const char *root_error, const char *hint);

#endif
