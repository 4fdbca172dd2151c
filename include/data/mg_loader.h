/* The training-data loader: each rank reads only its own samples of an HDF5 data file
 * (mg_h5schema.h) and hands out local batches as float arrays.
 *
 * Sample stream. Samplers define an endless stream of sample indices made of epochs;
 * batches are cut from it back to back, so a batch may straddle two epochs and no sample
 * is ever dropped. With global batch B on P ranks, the local batch is b = B / P.
 *   global  Every epoch is a seeded permutation of all N samples, the same on every
 *           rank; global batch t is stream[tB, (t+1)B) and rank r takes
 *           stream[tB + rb, tB + (r+1)b). A run on P ranks thus sees exactly the
 *           batches of a one-rank run with batch B. Reads are scattered (one pread per
 *           run of adjacent indices); needs 8 N bytes for the permutation.
 *   shard   Rank r owns samples [floor(rN/P), floor((r+1)N/P)) and its stream is its
 *           shard, reshuffled every epoch: every sample is seen once per epoch across
 *           ranks. If the shard fits in memory_bytes it is read once and kept;
 *           otherwise it is cut into blocks of contiguous samples, each epoch visits the
 *           blocks in a seeded order, a window of consecutive blocks (half the budget) is
 *           shuffled and handed out while the next window is read in large preads (by an
 *           I/O thread when prefetch is on). For data larger than memory.
 * The order depends only on (seed, sampler, N, B, P, memory budget), never on timing or
 * on prefetching.
 *
 * Prefetch. With prefetch on, a background thread reads and decodes the next batches
 * (images: uint8 v -> (float)v / 127.5f - 1 in [-1, 1], exactly -1 and 1 at 0 and 255;
 * vectors: float32 as stored) while the
 * caller computes. The threads call neither MPI nor HDF5: HDF5 runs on the caller's
 * thread in mg_loader_open only, which turns the file into byte ranges that the threads
 * read with pread(2). A read error in a thread is raised by the next mg_loader_next.
 *
 * Errors. mg_loader_open validates the file before reading any sample (dataset present,
 * rank, type, shape, N >= B, sample shape equal to the model's input, B divisible by P,
 * and with label_factor the factor present);
 * every rank checks and the ranks agree (mg_dist_any), so a problem ends every rank with
 * the same message and none waits in a collective. */
#ifndef MG_LOADER_H
#define MG_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_cfg.h"
#include "mg_h5schema.h"
#include "mg_layer.h"

typedef enum { MG_SAMPLER_GLOBAL = 0, MG_SAMPLER_SHARD = 1 } mg_sampler;

typedef struct {
    char path[1024];        /* the HDF5 data file (relative to the working directory) */
    mg_sampler sampler;
    size_t memory_bytes;    /* shard: budget for this rank's raw sample buffers (config: memory_mb) */
    bool prefetch;
    uint64_t seed;
    int64_t limit;          /* > 0: only the file's first `limit` samples (config: limit); 0: all */
    char label_factor[64];  /* "": labels from the file's labels dataset; else the name of a
                             * factor column (mg_h5schema.h) whose values are handed out as
                             * the labels, each checked against the factor's size (set by its
                             * user, e.g. classifier.label: {factor: colour}; not a data key) */
} mg_loader_cfg;

/* sampler global, 1024 MiB, prefetch on, seed 0, no limit, no path, labels from `labels`. */
void mg_loader_cfg_default(mg_loader_cfg *cfg);
/* Parses the config's data section strictly:
 *   data: { path: FILE (required), sampler: global|shard (global), memory_mb: 1.. (1024),
 *           prefetch: bool (true), seed: int >= 0 (default_seed),
 *           limit: int >= 1 (all: train on the file's first `limit` samples, e.g. a
 *                  limited-data study; more than the file holds is an error) }
 * Marks only these keys as read; other keys of the section are left to their owners. */
void mg_loader_cfg_from(mg_loader_cfg *cfg, mg_cfg_node data, uint64_t default_seed);

/* Where the loader is in its stream: what a checkpoint saves (MG_LOADER_STATE_WORDS uint64
 * words, e.g. as one uint64 dataset). All ranks hold the same values except the informational epoch
 * fields, so saving rank 0's copy is enough. */
#define MG_LOADER_STATE_VERSION 1
typedef struct {
    uint64_t version;        /* MG_LOADER_STATE_VERSION */
    uint64_t sampler;        /* mg_sampler */
    uint64_t seed;
    uint64_t n_samples;      /* N of the file */
    uint64_t global_batch;
    uint64_t ranks;          /* P (a shard state resumes on P ranks only) */
    uint64_t window_samples; /* shard: window capacity, 0 when resident (from memory_bytes) */
    uint64_t block_samples;  /* shard: block length */
    uint64_t step;           /* batches handed out so far */
    uint64_t epoch;          /* informational: epoch of the next sample (this rank's stream) */
    uint64_t epoch_pos;      /* informational: samples of that epoch already handed out */
} mg_loader_state;
#define MG_LOADER_STATE_WORDS (sizeof(mg_loader_state) / sizeof(uint64_t))
/* The words' names in order, for files that store the state (checkpoints). */
#define MG_LOADER_STATE_FIELDS \
    "version sampler seed n_samples global_batch ranks window_samples block_samples step epoch epoch_pos"

typedef struct {
    double wait_s;           /* caller's time blocked in mg_loader_next */
    double read_s;           /* reading (pread), in the producer */
    double decode_s;         /* decoding and copying into batches, in the producer */
    uint64_t bytes_read;
    uint64_t batches;        /* handed out */
} mg_loader_stats;

typedef struct mg_loader mg_loader;

/* Opens cfg->path for model input shape model_input (vectors: (D, 1, 1)) and global
 * batch global_batch over all ranks of mg_dist (collective: every rank calls it). */
mg_loader *mg_loader_open(const mg_loader_cfg *cfg, mg_shape model_input, int global_batch);
/* The same as rank `rank` of `size` without any MPI (validation errors are local): a
 * one-rank reference in tests, or tools. */
mg_loader *mg_loader_open_as(const mg_loader_cfg *cfg, mg_shape model_input, int global_batch, int rank,
                             int size);
void mg_loader_close(mg_loader *L);

/* The next local batch, (b, C, H, W) floats (vectors (b, D)), owned by the loader and
 * valid until the next call. labels_out (b ints, optional) gets the labels, or -1 when
 * the file has none. */
const float *mg_loader_next(mg_loader *L, int *labels_out);
/* File indices of the samples of the batch last returned (b entries; for tests and tools). */
const int64_t *mg_loader_last_indices(const mg_loader *L);

int mg_loader_local_batch(const mg_loader *L);
/* Whether mg_loader_next hands out labels (the labels dataset, or the factor column of
 * cfg.label_factor); values (optional) gets how many values they take: the factor's size,
 * or the file's class count for labels (0 when the file names no classes). */
bool mg_loader_labels(const mg_loader *L, int *values);
const mg_data_info *mg_loader_info(const mg_loader *L);
/* Epoch of the next sample of this rank's stream (global: of the next global batch). */
uint64_t mg_loader_epoch(const mg_loader *L);

void mg_loader_get_state(const mg_loader *L, mg_loader_state *state);
/* Continues from a saved state: the following batches are exactly those the saved run
 * would have seen. Fails if the state belongs to another file, seed, batch, sampler or
 * (shard) rank count or memory budget. */
void mg_loader_set_state(mg_loader *L, const mg_loader_state *state);

void mg_loader_get_stats(const mg_loader *L, mg_loader_stats *stats);

#endif
