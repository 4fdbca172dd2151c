/* `mpigan info`: what this build runs on: its version, the OpenBLAS kernel and threads
 * per rank (mg_blas_threads.h), oneDNN and whether bf16 can run (mg_onednn.h), the MPI
 * ranks (mg_dist.h). */
#include <cblas.h>
#include <stdio.h>

#include "mg_blas_threads.h"
#include "mg_cmd.h"
#include "mg_dist.h"
#include "mg_info_cmd.h"
#include "mg_onednn.h"

#define MPIGAN_VERSION "0.1.0"

static const char info_usage[] =
    "usage: mpigan info\n"
    "Prints mpigan's version, the OpenBLAS kernel and threads per rank (and why that many),\n"
    "oneDNN's version and whether train.precision: bf16 can run here, and the MPI ranks, in\n"
    "all and on this node.\n";

int mg_cmd_info(int argc, char **argv)
{
    mg_cmd_parser p;
    if (!mg_cmd_parse_plain(&p, "mpigan info", info_usage, argc, argv, 0, 0, ""))
        return p.status;
    /* the rule main applied already; applying it again gives the same count and reason */
    char threads_why[160];
    mg_blas_threads_apply(0, threads_why, sizeof threads_why);
    char onednn[160];
    mg_onednn_describe_library(onednn, sizeof onednn);
    if (mg_dist_rank() == 0)
        printf("mpigan %s\nOpenBLAS core: %s, threads per rank: %d (%s)\n%s\nMPI ranks: %d, %d on this node\n",
               MPIGAN_VERSION, openblas_get_corename(), openblas_get_num_threads(), threads_why, onednn,
               mg_dist_size(), mg_dist_node_size());
    return 0;
}
