/* A network trained data-parallel: every rank holds a replica, and ONE reduction per
 * update keeps the replicas equal.
 *
 * The reduction buffer red is [the flat gradient (n_param) | a tail (n_tail)]: whatever
 * the caller wants summed with the gradient (losses and statistics for the log, flags
 * every rank must agree on, state to average) travels in the same message. The reduced
 * buffer is the same on every rank, so a verdict drawn from it (mg_replica_check) is
 * collective without another message. An update is:
 *
 *     mg_net_zero_grad(net); forward and backward passes;
 *     write mg_replica_tail(r); mg_replica_reduce(r);        (or bucketed: mg_grad_overlap)
 *     if (mg_replica_check(r, &norm)) mg_replica_update(r, lr);
 *
 * The GAN trainer (two replicas), the feature classifier and the toy trainer share it. */
#ifndef MG_REPLICA_H
#define MG_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_dist.h"
#include "mg_net.h"
#include "mg_optim.h"

/* How the reduction travels: through buffers the ranks of a node share (mg_dist_shared:
 * the node's ranks sum one another's, one MPI_Allreduce between nodes), or as one
 * MPI_Allreduce of a private buffer (train.reduce: mpi). Both give every rank the same
 * mean; with two ranks the same bits. */
typedef enum { MG_REDUCE_NODE, MG_REDUCE_MPI, MG_REDUCE_COUNT } mg_reduce_path;
extern const char *const mg_reduce_path_names[MG_REDUCE_COUNT];

typedef struct {
    mg_net *net;        /* not owned */
    mg_optim *opt;      /* not owned: its state must match net's parameters */
    size_t n_tail;
    mg_dist_shared *shared; /* owns red and reduces it, by either path */
    float *red;         /* n_param + n_tail floats: mg_dist_shared_buf(shared) */
} mg_replica;

/* Collective (the node path allocates a shared window). */
void mg_replica_init(mg_replica *r, mg_net *net, mg_optim *opt, size_t n_tail, mg_reduce_path path);
void mg_replica_free(mg_replica *r);

/* Rank 0's parameters and state on every rank (after initialising or loading them). */
void mg_replica_sync(mg_replica *r);

/* Where the caller writes the n_tail floats to reduce with the gradient. */
float *mg_replica_tail(const mg_replica *r);

/* The gradient into red, then red's mean over the ranks in one reduction. */
void mg_replica_reduce(mg_replica *r);

/* After a reduction: true when the reduced gradient and tail are finite; *norm gets the
 * gradient's L2 norm (summed in double). */
bool mg_replica_check(const mg_replica *r, double *norm);

/* The optimizer step on the reduced gradient. */
void mg_replica_update(mg_replica *r, float lr);

/* Checksum of the replica's parameters and state: equal replicas agree. */
uint64_t mg_replica_checksum(const mg_net *net);

#endif
