/* MPI calls of mpigan (see mg_dist.h); the node-shared reduction buffers are in
 * dist_shared.c. Every call is checked (MPI_OK, dist_mpi.h); a failing MPI call is
 * reported through the one error path, which aborts every rank. */
#include "mg_dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h> /* memmove (evaluation gathers) */

#include "dist_mpi.h"
#include "mg_error.h"

static mg_dist world = {.rank = 0, .size = 1, .node_size = 1, .initialized = false};

static void abort_all_ranks(const char *message)
{
    fprintf(stderr, "[rank %d] %s\n", world.rank, message);
    fflush(stderr);
    int up = 0, down = 0;
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    if (up && !down && world.size > 1)
        MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

void mg_dist_init(int *argc, char ***argv)
{
    int provided = 0;
    MPI_OK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
    /* Errors come back as codes so that MPI_OK can name the call. */
    MPI_OK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    MPI_OK(MPI_Comm_rank(MPI_COMM_WORLD, &world.rank));
    MPI_OK(MPI_Comm_size(MPI_COMM_WORLD, &world.size));
    /* ranks of this node: they share its cores (see mg_blas_threads.h) */
    MPI_Comm node;
    MPI_OK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world.rank, MPI_INFO_NULL, &node));
    MPI_OK(MPI_Comm_size(node, &world.node_size));
    MPI_OK(MPI_Comm_free(&node));
    world.initialized = true;
    mg_set_fatal_handler(abort_all_ranks);
}

void mg_dist_finalize(void)
{
    if (!world.initialized)
        return;
    mg_set_fatal_handler(NULL);
    mg_dist_shared_finalize();
    MPI_OK(MPI_Finalize());
    world.initialized = false;
}

const mg_dist *mg_dist_get(void) { return &world; }
int mg_dist_rank(void) { return world.rank; }
int mg_dist_size(void) { return world.size; }
int mg_dist_node_size(void) { return world.node_size; }

#define CHUNK MG_DIST_CHUNK

/* In-place sum over all ranks of n values of type (elem bytes each), in pieces. */
static void allreduce_sum(void *buf, size_t n, MPI_Datatype type, size_t elem)
{
    if (world.size == 1)
        return;
    for (size_t off = 0; off < n; off += CHUNK) {
        size_t len = n - off < CHUNK ? n - off : CHUNK;
        MPI_OK(MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * elem, (int)len, type, MPI_SUM, MPI_COMM_WORLD));
    }
}

void mg_dist_allreduce_sum(float *buf, size_t n) { allreduce_sum(buf, n, MPI_FLOAT, sizeof(float)); }

void mg_dist_allreduce_mean(float *buf, size_t n)
{
    if (world.size == 1)
        return;
    mg_dist_allreduce_sum(buf, n);
    float scale = 1.0f / (float)world.size;
    for (size_t i = 0; i < n; i++)
        buf[i] *= scale;
}

void mg_dist_allreduce_sum_f64(double *buf, size_t n) { allreduce_sum(buf, n, MPI_DOUBLE, sizeof(double)); }

void mg_dist_reduce_sum_cb(double *buf, int n, void *ctx)
{
    (void)ctx;
    mg_dist_allreduce_sum_f64(buf, (size_t)n);
}

void mg_dist_bcast(void *buf, size_t bytes)
{
    if (world.size == 1)
        return;
    char *p = buf;
    for (size_t off = 0; off < bytes; off += CHUNK) {
        size_t len = bytes - off < CHUNK ? bytes - off : CHUNK;
        MPI_OK(MPI_Bcast(p + off, (int)len, MPI_BYTE, 0, MPI_COMM_WORLD));
    }
}

void mg_dist_barrier(void)
{
    if (world.size > 1)
        MPI_OK(MPI_Barrier(MPI_COMM_WORLD));
}

bool mg_dist_any(bool local_bad)
{
    int v = local_bad ? 1 : 0;
    if (world.size > 1)
        MPI_OK(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    return v != 0;
}

double mg_dist_max(double v)
{
    if (world.size > 1)
        MPI_OK(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
    return v;
}

double mg_dist_min(double v)
{
    if (world.size > 1)
        MPI_OK(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD));
    return v;
}

double mg_dist_maxloc(double v, int *rank)
{
    struct { double value; int rank; } pair = {v, world.rank};
    if (world.size > 1)
        MPI_OK(MPI_Allreduce(MPI_IN_PLACE, &pair, 1, MPI_DOUBLE_INT, MPI_MAXLOC, MPI_COMM_WORLD));
    *rank = pair.rank;
    return pair.value;
}

void mg_dist_allreduce_max_f64(double *buf, size_t n)
{
    if (world.size > 1 && n > 0)
        MPI_OK(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
}

/* ---- non-blocking sums ---- */

struct mg_dist_reqs {
    int cap, used;
    MPI_Request *req;
};

mg_dist_reqs *mg_dist_reqs_new(int cap)
{
    MG_CHECK(cap > 0, "request set", NULL, "capacity %d must be positive", cap);
    mg_dist_reqs *r = mg_alloc(sizeof *r, "request set");
    r->cap = cap;
    r->req = mg_alloc(sizeof(MPI_Request) * (size_t)cap, "request set");
    for (int i = 0; i < cap; i++)
        r->req[i] = MPI_REQUEST_NULL;
    return r;
}

void mg_dist_reqs_free(mg_dist_reqs *r)
{
    if (!r)
        return;
    mg_dist_reqs_wait(r);
    mg_free(r->req);
    mg_free(r);
}

void mg_dist_reqs_start_sum(mg_dist_reqs *r, float *buf, size_t n)
{
    MG_CHECK(r->used < r->cap, "request set", "a bug: more sums in flight than planned", "%d of %d in use",
             r->used, r->cap);
    MG_CHECK(n < CHUNK, "request set", "split the range", "%zu floats exceed one MPI call's count", n);
    if (world.size == 1)
        return;
    MPI_OK(MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &r->req[r->used]));
    r->used++;
}

bool mg_dist_reqs_progress(mg_dist_reqs *r)
{
    if (r->used == 0)
        return true;
    int done = 0;
    MPI_OK(MPI_Testall(r->used, r->req, &done, MPI_STATUSES_IGNORE));
    return done != 0;
}

void mg_dist_reqs_wait(mg_dist_reqs *r)
{
    if (r->used > 0)
        MPI_OK(MPI_Waitall(r->used, r->req, MPI_STATUSES_IGNORE));
    r->used = 0;
}

bool mg_dist_all_equal_u64(uint64_t v)
{
    if (world.size == 1)
        return true;
    uint64_t lo = v, hi = v;
    MPI_OK(MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD));
    MPI_OK(MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD));
    return lo == hi;
}

/* ---- evaluation: reductions to rank 0 and gathers ---- */

void mg_dist_reduce_sum_f64_root(double *buf, size_t n)
{
    if (world.size == 1)
        return;
    for (size_t off = 0; off < n; off += CHUNK) {
        size_t len = n - off < CHUNK ? n - off : CHUNK;
        if (world.rank == 0)
            MPI_OK(MPI_Reduce(MPI_IN_PLACE, buf + off, (int)len, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD));
        else
            MPI_OK(MPI_Reduce(buf + off, NULL, (int)len, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD));
    }
}

/* Every rank's count and its offset in the concatenation, as MPI's int arrays (free). */
static void gather_layout(int64_t count, int **counts_out, int **displs_out)
{
    int64_t *all = malloc(sizeof(int64_t) * (size_t)world.size);
    int *counts = malloc(sizeof(int) * (size_t)world.size), *displs = malloc(sizeof(int) * (size_t)world.size);
    MG_CHECK(all && counts && displs, "gather layout", NULL, "out of memory");
    MPI_OK(MPI_Allgather(&count, 1, MPI_INT64_T, all, 1, MPI_INT64_T, MPI_COMM_WORLD));
    int64_t total = 0;
    for (int r = 0; r < world.size; r++) {
        MG_CHECK(all[r] >= 0 && total + all[r] < INT32_MAX, "gather", "gather fewer values per call",
                 "%lld values in total exceed MPI's int counts", (long long)(total + all[r]));
        counts[r] = (int)all[r];
        displs[r] = (int)total;
        total += all[r];
    }
    free(all);
    *counts_out = counts, *displs_out = displs;
}

/* The concatenation of every rank's floats, on every rank (to_all) or on rank 0. */
static void gather_floats(const float *mine, int64_t count, float *all, bool to_all)
{
    if (world.size == 1) {
        if (count > 0 && all != mine)
            memmove(all, mine, (size_t)count * sizeof(float));
        return;
    }
    int *counts, *displs;
    gather_layout(count, &counts, &displs);
    if (to_all)
        MPI_OK(MPI_Allgatherv(mine, (int)count, MPI_FLOAT, all, counts, displs, MPI_FLOAT, MPI_COMM_WORLD));
    else
        MPI_OK(MPI_Gatherv(mine, (int)count, MPI_FLOAT, all, counts, displs, MPI_FLOAT, 0, MPI_COMM_WORLD));
    free(counts);
    free(displs);
}

void mg_dist_allgather_floats(const float *mine, int64_t count, float *all) { gather_floats(mine, count, all, true); }
void mg_dist_gather_floats(const float *mine, int64_t count, float *all) { gather_floats(mine, count, all, false); }

/* ---- distributed conversion ---- */

void mg_dist_gather_bytes(const void *mine, int64_t bytes, void *all)
{
    if (world.size == 1) {
        if (bytes > 0 && all != mine)
            memmove(all, mine, (size_t)bytes);
        return;
    }
    int *counts, *displs;
    gather_layout(bytes, &counts, &displs);
    MPI_OK(MPI_Gatherv(mine, (int)bytes, MPI_BYTE, all, counts, displs, MPI_BYTE, 0, MPI_COMM_WORLD));
    free(counts);
    free(displs);
}

void mg_dist_bcast_from(void *buf, size_t bytes, int root)
{
    if (world.size == 1)
        return;
    MG_CHECK(root >= 0 && root < world.size, "broadcast", "a bug in the caller", "root %d of %d ranks", root,
             world.size);
    char *p = buf;
    for (size_t off = 0; off < bytes; off += CHUNK) {
        size_t len = bytes - off < CHUNK ? bytes - off : CHUNK;
        MPI_OK(MPI_Bcast(p + off, (int)len, MPI_BYTE, root, MPI_COMM_WORLD));
    }
}

int64_t mg_dist_min_i64(int64_t v)
{
    if (world.size > 1)
        MPI_OK(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD));
    return v;
}
