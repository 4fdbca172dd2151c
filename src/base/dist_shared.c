/* Node-shared reduction buffers (see mg_dist.h). Each rank's buffer lives in an MPI-3
 * shared-memory window of its node's ranks, so those ranks sum one another's buffers
 * directly: rank l of a node sums slice l over the node's buffers in local rank order and
 * writes the result into every buffer. Between nodes one rank per node (the leader)
 * joins an MPI_Allreduce of its buffer, which by then holds the node's sum.
 *
 * Each value is summed once, in the same order, and copied everywhere, so the replicas
 * stay bitwise equal. With two ranks the result is the same as MPI_Allreduce's (a + b is
 * b + a). MPI's unified memory model applies: a window sync, barrier, window sync between
 * writing and reading another rank's memory (the lock_all epoch is opened once). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "dist_mpi.h"
#include "mg_dist.h"
#include "mg_error.h"
#include "mg_util.h"

struct mg_dist_shared {
    size_t n;
    float *mine;
    float **slot;      /* the group's buffers in local rank order; slot[local_rank] == mine */
    MPI_Win win;       /* MPI_WIN_NULL when mine is plain memory */
    bool by_mpi;       /* plain memory on several ranks: MPI_Allreduce (asked for, or no room for a window) */
};

/* The ranks that share memory for reductions (a node, or a part of it: MPIGAN_REDUCE_GROUP)
 * and the ranks that lead a group. Made on the first collective allocation. */
static MPI_Comm group = MPI_COMM_NULL, leaders = MPI_COMM_NULL;
static int local_rank, local_size, n_groups;

/* MPIGAN_REDUCE_GROUP=k splits each node's ranks into groups of k consecutive ranks, so
 * one machine can stand in for several nodes (tests); unset, a group is a node. */
static int group_limit(void)
{
    const char *s = getenv("MPIGAN_REDUCE_GROUP");
    if (!s || !*s)
        return 0;
    char *end = NULL;
    long k = strtol(s, &end, 10);
    MG_CHECK(*end == 0 && k >= 1 && k <= 1 << 20, "MPIGAN_REDUCE_GROUP", "unset it, or give a rank count >= 1",
             "'%s' is not a positive rank count", s);
    return (int)k;
}

static void make_groups(void)
{
    if (group != MPI_COMM_NULL)
        return;
    const int rank = mg_dist_rank();
    MPI_Comm node;
    MPI_OK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node));
    int node_rank = 0;
    MPI_OK(MPI_Comm_rank(node, &node_rank));
    const int k = group_limit();
    MPI_OK(MPI_Comm_split(node, k ? node_rank / k : 0, node_rank, &group));
    MPI_OK(MPI_Comm_free(&node));
    MPI_OK(MPI_Comm_rank(group, &local_rank));
    MPI_OK(MPI_Comm_size(group, &local_size));
    MPI_OK(MPI_Comm_split(MPI_COMM_WORLD, local_rank == 0 ? 0 : MPI_UNDEFINED, rank, &leaders));
    n_groups = local_rank == 0;
    MPI_OK(MPI_Allreduce(MPI_IN_PLACE, &n_groups, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
}

void mg_dist_shared_finalize(void)
{
    if (leaders != MPI_COMM_NULL)
        MPI_OK(MPI_Comm_free(&leaders));
    if (group != MPI_COMM_NULL)
        MPI_OK(MPI_Comm_free(&group));
}

/* Open MPI backs the window with a file in /dev/shm; on a tmpfs too small for it (a
 * container's default is 64 MiB) the first touch would end the run with SIGBUS. The free
 * bytes there, or -1 when there is no /dev/shm (Open MPI then backs it elsewhere). */
static double dev_shm_free(void)
{
    struct statvfs v;
    if (statvfs("/dev/shm", &v) != 0)
        return -1;
    return (double)v.f_bavail * (double)v.f_frsize;
}

mg_dist_shared *mg_dist_shared_new(size_t n, bool node_shared, const char *what)
{
    mg_dist_shared *s = mg_alloc(sizeof *s, what);
    s->n = n;
    s->win = MPI_WIN_NULL;
    if (mg_dist_size() == 1 || !node_shared) {
        s->mine = mg_alloc_floats_huge(n, what);
        s->by_mpi = mg_dist_size() > 1;
        return s;
    }
    make_groups();
    const double group_bytes = (double)n * sizeof(float) * local_size, free_bytes = dev_shm_free();
    if (mg_dist_any(free_bytes >= 0 && free_bytes < 1.1 * group_bytes + (1 << 20))) {
        static bool said;
        if (mg_dist_rank() == 0 && !said)
            fprintf(stderr, "mpigan: note: %s: %.1f MiB of shared buffers do not fit in /dev/shm (%.1f MiB free); "
                    "averaging by MPI_Allreduce instead (give the job a larger /dev/shm, or set train.reduce: mpi)\n",
                    what, group_bytes / (1 << 20), free_bytes / (1 << 20));
        said = true;
        s->mine = mg_alloc_floats_huge(n, what);
        s->by_mpi = true;
        return s;
    }
    MPI_Info info;
    MPI_OK(MPI_Info_create(&info));
    /* each rank's buffer on pages of its own (no false sharing at the seams) */
    MPI_OK(MPI_Info_set(info, "alloc_shared_noncontig", "true"));
    MPI_OK(MPI_Win_allocate_shared((MPI_Aint)(n * sizeof(float)), (int)sizeof(float), info, group, &s->mine,
                                   &s->win));
    MPI_OK(MPI_Info_free(&info));
    s->slot = mg_alloc(sizeof(float *) * (size_t)local_size, what);
    for (int r = 0; r < local_size; r++) {
        MPI_Aint bytes = 0;
        int unit = 0;
        MPI_OK(MPI_Win_shared_query(s->win, r, &bytes, &unit, &s->slot[r]));
    }
    MPI_OK(MPI_Win_lock_all(MPI_MODE_NOCHECK, s->win));
    memset(s->mine, 0, n * sizeof(float));
    return s;
}

float *mg_dist_shared_buf(const mg_dist_shared *s) { return s->mine; }

void mg_dist_shared_free(mg_dist_shared *s)
{
    if (!s)
        return;
    if (s->win != MPI_WIN_NULL) {
        MPI_OK(MPI_Win_unlock_all(s->win));
        MPI_OK(MPI_Win_free(&s->win));
        mg_free(s->slot);
    } else {
        mg_free(s->mine);
    }
    mg_free(s);
}

/* Every rank of the group has finished writing before anyone reads. */
static void group_sync(const mg_dist_shared *s)
{
    MPI_OK(MPI_Win_sync(s->win));
    MPI_OK(MPI_Barrier(group));
    MPI_OK(MPI_Win_sync(s->win));
}

/* [lo, hi) of this rank's slice: whole cache lines except at the end. */
static void my_slice(size_t n, size_t *lo, size_t *hi)
{
    const size_t line = 16;
    *lo = (n * (size_t)local_rank / (size_t)local_size) / line * line;
    *hi = local_rank == local_size - 1 ? n : (n * (size_t)(local_rank + 1) / (size_t)local_size) / line * line;
}

/* For each value of [lo, hi): the sum over slot[0..n_in) in that order, times scale,
 * written into slot[0..n_out). Through a small buffer that stays in L1. */
static void sum_into(float *const *slot, int n_in, int n_out, size_t lo, size_t hi, float scale)
{
    enum { STRIP = 1024 };
    float acc[STRIP];
    for (size_t c = lo; c < hi; c += STRIP) {
        const size_t m = hi - c < STRIP ? hi - c : STRIP;
        memcpy(acc, slot[0] + c, m * sizeof(float));
        for (int r = 1; r < n_in; r++) {
            const float *src = slot[r] + c;
            for (size_t i = 0; i < m; i++)
                acc[i] += src[i];
        }
        if (scale != 1.0f)
            for (size_t i = 0; i < m; i++)
                acc[i] *= scale;
        for (int r = 0; r < n_out; r++)
            memcpy(slot[r] + c, acc, m * sizeof(float));
    }
}

void mg_dist_shared_mean(mg_dist_shared *s)
{
    if (s->by_mpi)
        mg_dist_allreduce_mean(s->mine, s->n);
    if (s->win == MPI_WIN_NULL)
        return;
    const float scale = 1.0f / (float)mg_dist_size(); /* as mg_dist_allreduce_mean */
    size_t lo, hi;
    my_slice(s->n, &lo, &hi);
    group_sync(s);
    if (n_groups == 1) {
        sum_into(s->slot, local_size, local_size, lo, hi, scale);
    } else {
        sum_into(s->slot, local_size, 1, lo, hi, 1.0f); /* the group's sum, into the leader's buffer */
        group_sync(s);
        if (local_rank == 0)
            for (size_t off = 0; off < s->n; off += MG_DIST_CHUNK) {
                const size_t len = s->n - off < MG_DIST_CHUNK ? s->n - off : MG_DIST_CHUNK;
                MPI_OK(MPI_Allreduce(MPI_IN_PLACE, s->mine + off, (int)len, MPI_FLOAT, MPI_SUM, leaders));
            }
        group_sync(s);
        sum_into(s->slot, 1, local_size, lo, hi, scale); /* the total, scaled, into every buffer */
    }
    group_sync(s);
}
