/* The only module that calls MPI. Everything else asks it to reduce, broadcast or agree.
 *
 * Once mg_dist_init has run, a fatal error on any rank ends every rank (MPI_Abort), so
 * no rank is left waiting in a collective for a peer that has died. Errors that every
 * rank can detect alike (config, shapes) should be raised collectively instead, through
 * mg_dist_agree, so all ranks print one message and exit with the same code. */
#ifndef MG_DIST_H
#define MG_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int rank, size;
    bool initialized;
} mg_dist;

/* Initialises MPI (thread level FUNNELED: only the main thread calls MPI) and installs
 * the all-ranks fatal handler. */
void mg_dist_init(int *argc, char ***argv);
void mg_dist_finalize(void);
const mg_dist *mg_dist_get(void);
int mg_dist_rank(void);
int mg_dist_size(void);

/* In-place sum and average over all ranks of a flat float array (one call per network). */
void mg_dist_allreduce_sum(float *buf, size_t n);
void mg_dist_allreduce_mean(float *buf, size_t n);
void mg_dist_allreduce_sum_f64(double *buf, size_t n);
/* Adapter with the mg_reduce_fn signature (sync BatchNorm); ctx unused. */
void mg_dist_reduce_sum_cb(float *buf, int n, void *ctx);
/* Broadcast from rank 0. */
void mg_dist_bcast(void *buf, size_t bytes);
void mg_dist_barrier(void);
/* True on every rank when local_bad is true on any rank. */
bool mg_dist_any(bool local_bad);
/* Max and min over ranks of a double (timings, checksums). */
double mg_dist_max(double v);
double mg_dist_min(double v);

/* Order-sensitive checksum (FNV-1a over the bytes) of a buffer; equal replicas agree. */
uint64_t mg_checksum(const void *buf, size_t bytes);
/* True when every rank passes the same checksum. */
bool mg_dist_all_equal_u64(uint64_t v);

#endif
