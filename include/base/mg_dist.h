/* The only module that calls MPI. Everything else asks it to reduce, broadcast or agree.
 *
 * Once mg_dist_init has run, a fatal error on any rank ends every rank (MPI_Abort), so
 * no rank is left waiting in a collective for a peer that has died. Errors that every
 * rank can detect alike (config, shapes) should be raised collectively instead: the ranks
 * agree on the verdict (mg_dist_any) before anyone fails, so all ranks print one message
 * and exit with the same code. */
#ifndef MG_DIST_H
#define MG_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_util.h" /* mg_checksum: what replicas compare with mg_dist_all_equal_u64 */

typedef struct {
    int rank, size;
    int node_size;      /* ranks sharing this rank's node (shared-memory domain) */
    bool initialized;
} mg_dist;

/* Initialises MPI (thread level FUNNELED: only the main thread calls MPI) and installs
 * the all-ranks fatal handler. */
void mg_dist_init(int *argc, char ***argv);
void mg_dist_finalize(void);
const mg_dist *mg_dist_get(void);
int mg_dist_rank(void);
int mg_dist_size(void);
/* Ranks running on this rank's node, this one included (1 without MPI). */
int mg_dist_node_size(void);

/* In-place sum and average over all ranks of a flat float array (one call per network). */
void mg_dist_allreduce_sum(float *buf, size_t n);
void mg_dist_allreduce_mean(float *buf, size_t n);
void mg_dist_allreduce_sum_f64(double *buf, size_t n);
/* Adapter with the mg_reduce_fn signature (sync BatchNorm); ctx unused. */
void mg_dist_reduce_sum_cb(double *buf, int n, void *ctx);
/* Broadcast from rank 0. */
void mg_dist_bcast(void *buf, size_t bytes);
void mg_dist_barrier(void);
/* True on every rank when local_bad is true on any rank. */
bool mg_dist_any(bool local_bad);
/* Max and min over ranks of a double (timings, checksums). */
double mg_dist_max(double v);
double mg_dist_min(double v);
/* Max over ranks of a double, and the lowest rank that holds it (the straggler). */
double mg_dist_maxloc(double v, int *rank);
/* In-place elementwise max over ranks of n doubles (a log window's timers in one message). */
void mg_dist_allreduce_max_f64(double *buf, size_t n);

/* ---- node-shared reduction buffers (the replicas' gradients, mg_replica.h) ----
 * n floats per rank in memory shared by the ranks of a node (an MPI-3 shared window), so
 * that the node's ranks average them by reading one another's buffers, each rank one
 * slice, instead of passing messages; between nodes one rank per node joins an
 * MPI_Allreduce. The mean is the same on every rank, bitwise. MPIGAN_REDUCE_GROUP=k
 * splits each node into groups of k ranks, as if they were nodes of their own (tests).
 * With one rank in all, the buffer is plain memory and the mean does nothing; with
 * node_shared false, or without room for the window in /dev/shm, it is plain memory
 * averaged by one MPI_Allreduce. */
typedef struct mg_dist_shared mg_dist_shared;

/* Collective: every rank asks for the same n. The buffer starts zeroed. */
mg_dist_shared *mg_dist_shared_new(size_t n, bool node_shared, const char *what);
void mg_dist_shared_free(mg_dist_shared *s); /* collective */
/* This rank's n floats. */
float *mg_dist_shared_buf(const mg_dist_shared *s);
/* Collective: every rank's buffer becomes the mean of all ranks' buffers. */
void mg_dist_shared_mean(mg_dist_shared *s);

/* ---- non-blocking sums (overlap of gradient communication with backward) ----
 * A request set holds up to cap in-flight in-place sums. Open MPI advances non-blocking
 * collectives only inside MPI calls, so a single-threaded caller must call
 * mg_dist_reqs_progress now and then (between layers) for them to move before the wait. */
typedef struct mg_dist_reqs mg_dist_reqs;
mg_dist_reqs *mg_dist_reqs_new(int cap);
void mg_dist_reqs_free(mg_dist_reqs *r);
/* Starts the sum over ranks of buf[0..n) in place (MPI_Iallreduce; n < 2^30 floats is
 * required: split larger ranges). buf must stay untouched until the wait. */
void mg_dist_reqs_start_sum(mg_dist_reqs *r, float *buf, size_t n);
/* Lets MPI progress every started sum (MPI_Testall); true when all are complete. */
bool mg_dist_reqs_progress(mg_dist_reqs *r);
/* Waits for every started sum, then forgets them (the set is reusable). */
void mg_dist_reqs_wait(mg_dist_reqs *r);

/* True when every rank passes the same checksum. */
bool mg_dist_all_equal_u64(uint64_t v);

/* ---- evaluation (src/eval/): reductions to rank 0 and gathers ---- */

/* Sums buf[0..n) over all ranks into rank 0's buf; other ranks' buf is left unchanged. */
void mg_dist_reduce_sum_f64_root(double *buf, size_t n);
/* Concatenates every rank's `count` floats (counts may differ) in rank order into all,
 * which must hold the total: on every rank (allgather) or on rank 0 only (gather; all
 * may be NULL elsewhere). The total must stay below 2^31 floats. */
void mg_dist_allgather_floats(const float *mine, int64_t count, float *all);
void mg_dist_gather_floats(const float *mine, int64_t count, float *all);

/* ---- distributed conversion (src/data/convert_dist.c) ---- */

/* Concatenates every rank's `bytes` bytes (counts may differ) in rank order into rank 0's
 * all, which must hold the total (below 2^31 bytes); all may be NULL on other ranks. */
void mg_dist_gather_bytes(const void *mine, int64_t bytes, void *all);
/* Broadcast from rank root. */
void mg_dist_bcast_from(void *buf, size_t bytes, int root);
/* Min over ranks of an int64. */
int64_t mg_dist_min_i64(int64_t v);

#endif
