/* Private to the MPI module (dist.c, dist_shared.c): the one error path of MPI calls. */
#ifndef MG_DIST_MPI_H
#define MG_DIST_MPI_H

#include <mpi.h>

#include "mg_error.h"

/* A failing MPI call is fatal on every rank, named by its own text. */
#define MPI_OK(call)                                                                         \
    do {                                                                                     \
        int rc_ = (call);                                                                    \
        if (rc_ != MPI_SUCCESS) {                                                            \
            char msg_[MPI_MAX_ERROR_STRING];                                                 \
            int len_ = 0;                                                                    \
            MPI_Error_string(rc_, msg_, &len_);                                              \
            MG_FAIL(#call, "an MPI peer may have died; see its output", "MPI error: %s", msg_); \
        }                                                                                    \
    } while (0)

/* MPI counts are int: large buffers go in pieces of this many elements. */
#define MG_DIST_CHUNK ((size_t)1 << 30)

/* Frees the communicators of the node-shared reductions (before MPI_Finalize). */
void mg_dist_shared_finalize(void);

#endif
