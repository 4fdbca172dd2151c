/* OpenBLAS threads per rank (see mg_blas_threads.h). The decision is a pure function so
 * that tests can check it without touching the process's environment. */
#include "mg_blas_threads.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "mg_dist.h"

int mg_blas_threads_choose(int requested, int ranks_on_node, const char *env_threads, char *why, size_t size)
{
    if (requested > 0) {
        snprintf(why, size, "train.threads");
        return requested;
    }
    if (env_threads && env_threads[0]) {
        snprintf(why, size, "from the environment");
        return 0;
    }
    if (ranks_on_node > 1) {
        snprintf(why, size, "%d ranks share this node; set train.threads or OPENBLAS_NUM_THREADS for more",
                 ranks_on_node);
        return 1;
    }
    snprintf(why, size, "OpenBLAS default: one rank on this node");
    return 0;
}

int mg_blas_threads_apply(int requested, char *why, size_t size)
{
    static const char *const vars[] = {"OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"};
    const char *env = NULL;
    for (int i = 0; i < 3 && !env; i++)
        env = getenv(vars[i]);
    int n = mg_blas_threads_choose(requested, mg_dist_node_size(), env, why, size);
    if (n > 0)
        openblas_set_num_threads(n);
    const int threads = openblas_get_num_threads();
    const int cores = omp_get_num_procs(); /* the cores this process may run on */
    omp_set_num_threads(threads < cores ? threads : (cores > 0 ? cores : 1));
    return threads;
}
