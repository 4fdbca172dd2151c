/* Overlap of a network's gradient reduction with its backward pass (train.overlap), as
 * PyTorch DDP does it.
 *
 * The reduction buffer red holds the flat gradient (n_grad floats, layer order) followed
 * by n_extra floats the trainer sends along (losses, stop flag). It is cut into buckets of
 * about bucket_mb, at layer boundaries, counted from the END: backward runs the layers in
 * reverse, so the buffer's tail is final first. The first bucket also carries the extras,
 * which are known before the last backward starts. As soon as backward reports (through
 * the mg_net_backward_hooked hook) that a bucket's range is final, its gradients are
 * copied into red and a non-blocking sum starts; between layers the hook lets MPI progress
 * the sums in flight. mg_grad_overlap_finish starts what is left, waits, and divides by
 * the rank count, so red ends up as the blocking path's mg_dist_allreduce_mean makes it.
 *
 * Without overlap a network's gradient still goes in ONE fused allreduce per update
 * (src/train/train.c); this is the opt-in. All MPI goes through mg_dist.h. */
#ifndef MG_GRAD_OVERLAP_H
#define MG_GRAD_OVERLAP_H

#include <stddef.h>

#include "mg_dist.h"
#include "mg_net.h"

typedef struct {
    size_t n_grad, n_extra;
    int n_buckets;
    size_t *lo, *hi;        /* bucket b covers red[lo[b], hi[b]); b = 0 is the buffer's tail */
    int next;               /* first bucket not started yet */
    float *red;             /* this update's reduction buffer (not owned) */
    const float *grad;      /* the network's gradient (not owned) */
    mg_dist_reqs *reqs;
    double comm_s;          /* seconds spent in MPI calls (start, progress, wait), accumulated */
} mg_grad_overlap;

/* Plans the buckets of net's gradient plus n_extra floats. */
void mg_grad_overlap_init(mg_grad_overlap *o, const mg_net *net, size_t n_extra, double bucket_mb);
void mg_grad_overlap_free(mg_grad_overlap *o);
/* Starts an update: red (n_grad + n_extra floats) must already hold the extras at its end;
 * grad is the network's gradient buffer, filled by the backward pass that follows. */
void mg_grad_overlap_begin(mg_grad_overlap *o, float *red, const float *grad);
/* The mg_backward_hook (ctx: the mg_grad_overlap): starts every bucket whose range is
 * final (lo >= ready_from), then progresses the sums in flight. */
void mg_grad_overlap_hook(void *ctx, size_t ready_from);
/* Starts the remaining buckets, waits for all and scales red to the mean over ranks. */
void mg_grad_overlap_finish(mg_grad_overlap *o);

#endif
