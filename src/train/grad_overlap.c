/* Bucketed non-blocking gradient reduction during backward (see mg_grad_overlap.h).
 * Buckets are planned once per network; a step allocates nothing. */
#include "mg_grad_overlap.h"

#include <string.h>
#include <time.h>

#include "mg_error.h"
#include "mg_util.h"

/* MPI counts are int: no bucket larger than this many floats. */
#define MAX_BUCKET ((size_t)1 << 29)

void mg_grad_overlap_init(mg_grad_overlap *o, const mg_net *net, size_t n_extra, double bucket_mb)
{
    memset(o, 0, sizeof *o);
    o->n_grad = net->n_param;
    o->n_extra = n_extra;
    size_t target = (size_t)(bucket_mb * (1 << 20) / sizeof(float));
    if (target < 1)
        target = 1;
    if (target > MAX_BUCKET)
        target = MAX_BUCKET;
    /* cut points: layer starts, walking from the last layer; at most one bucket per layer
     * plus the pieces of layers above MAX_BUCKET */
    int cap = 1;
    for (int i = 0; i < net->n_layers; i++)
        cap += 1 + (int)(net->layers[i].n_param / MAX_BUCKET);
    o->lo = mg_alloc(sizeof(size_t) * (size_t)cap, "overlap buckets");
    o->hi = mg_alloc(sizeof(size_t) * (size_t)cap, "overlap buckets");
    size_t hi = o->n_grad + n_extra;
    for (int i = net->n_layers - 1; i >= 0; i--) {
        const mg_layer *l = &net->layers[i];
        if (l->n_param == 0 && i > 0)
            continue;
        size_t start = i == 0 ? 0 : (size_t)(l->grad - net->grad);
        while (hi - start > MAX_BUCKET) { /* a huge layer: pieces from its end */
            o->lo[o->n_buckets] = hi - MAX_BUCKET;
            o->hi[o->n_buckets++] = hi;
            hi -= MAX_BUCKET;
        }
        if (hi - start >= target || i == 0) {
            if (hi > start) {
                o->lo[o->n_buckets] = start;
                o->hi[o->n_buckets++] = hi;
            }
            hi = start;
        }
    }
    MG_CHECK(o->n_buckets > 0 && o->n_buckets <= cap && o->lo[o->n_buckets - 1] == 0, net->name,
             "a bug in the bucket plan", "%d buckets", o->n_buckets);
    o->reqs = mg_dist_reqs_new(o->n_buckets);
}

void mg_grad_overlap_free(mg_grad_overlap *o)
{
    mg_dist_reqs_free(o->reqs);
    mg_free(o->lo);
    mg_free(o->hi);
    memset(o, 0, sizeof *o);
}

void mg_grad_overlap_begin(mg_grad_overlap *o, float *red, const float *grad)
{
    MG_CHECK(o->next == 0 || o->next == o->n_buckets, "overlap", "a bug: finish the last update first",
             "%d of %d buckets started", o->next, o->n_buckets);
    o->red = red;
    o->grad = grad;
    o->next = 0;
}

static void start_ready(mg_grad_overlap *o, size_t ready_from)
{
    while (o->next < o->n_buckets && o->lo[o->next] >= ready_from) {
        const size_t lo = o->lo[o->next], hi = o->hi[o->next];
        const size_t grad_hi = hi < o->n_grad ? hi : o->n_grad; /* the extras are in red already */
        if (grad_hi > lo)
            memcpy(o->red + lo, o->grad + lo, (grad_hi - lo) * sizeof(float));
        double t0 = mg_now();
        mg_dist_reqs_start_sum(o->reqs, o->red + lo, hi - lo);
        o->comm_s += mg_now() - t0;
        o->next++;
    }
}

void mg_grad_overlap_hook(void *ctx, size_t ready_from)
{
    mg_grad_overlap *o = ctx;
    start_ready(o, ready_from);
    double t0 = mg_now();
    mg_dist_reqs_progress(o->reqs);
    o->comm_s += mg_now() - t0;
}

void mg_grad_overlap_finish(mg_grad_overlap *o)
{
    start_ready(o, 0);
    double t0 = mg_now();
    mg_dist_reqs_wait(o->reqs);
    o->comm_s += mg_now() - t0;
    const int size = mg_dist_size();
    if (size > 1) { /* as mg_dist_allreduce_mean: the sum times 1/size */
        const float scale = 1.0f / (float)size;
        const size_t n = o->n_grad + o->n_extra;
        for (size_t i = 0; i < n; i++)
            o->red[i] *= scale;
    }
}
