/* Counter-based random streams per item of a run's sequence of global batches.
 *
 * Item g (e.g. sample i of global batch t: g = t * B + i) of a purpose draws from its own
 * Philox key derived from (seed, purpose, g). Any rank can therefore make exactly its
 * slice of a global batch, in O(slice) work, and sample i of batch t gets the same
 * numbers whatever the number of ranks: the basis of the trainer's rank-count
 * equivalence. Nothing here has state to checkpoint; the caller's item counter is it. */
#ifndef MG_BATCH_STREAMS_H
#define MG_BATCH_STREAMS_H

#include <stddef.h>
#include <stdint.h>

#include "mg_rng.h"

/* Initialises r as the stream of item `item` of `purpose`. */
void mg_batch_streams_rng(mg_rng *r, uint64_t seed, uint32_t purpose, uint64_t item);

/* z (n, dim): item first_item + i fills row i with standard normals. */
void mg_batch_streams_normals(float *z, int n, size_t dim, uint64_t seed, uint32_t purpose, uint64_t first_item);

/* y (n): item first_item + i draws a class in 0 .. K-1 from its own stream: uniformly when
 * cum is NULL, else in proportion to counts given as cumulative counts cum (K entries,
 * cum[K-1] the total), exactly (integer arithmetic), so the same on any machine. */
void mg_batch_streams_labels(int *y, int n, int K, const uint64_t *cum, uint64_t seed, uint32_t purpose,
                             uint64_t first_item);
/* The same draw from one sequential stream r (n draws in order). */
void mg_batch_streams_labels_from(mg_rng *r, int *y, int n, int K, const uint64_t *cum);

#endif
