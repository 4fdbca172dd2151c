/* How many OpenBLAS threads each rank uses, and OpenMP's (oneDNN's) with it.
 *
 * OpenBLAS starts one thread per core by default. Under mpirun with several ranks on a
 * node, every rank would then run that many threads on the same cores, and the ranks
 * slow each other down (a 2-rank run can be slower than a 1-rank run). The rule, in order:
 *   1. a positive request (the config's train.threads) is used as given;
 *   2. OPENBLAS_NUM_THREADS (or GOTO_NUM_THREADS, OMP_NUM_THREADS, which OpenBLAS also
 *      reads) set in the environment is left in force;
 *   3. with more than one rank on the node, 1 thread per rank;
 *   4. otherwise OpenBLAS's own default (all cores) stands. */
#ifndef MG_BLAS_THREADS_H
#define MG_BLAS_THREADS_H

#include <stddef.h>

/* The decision alone (no side effects): returns the thread count to set, or 0 to leave
 * OpenBLAS as it is. env_threads: the value of the first of the environment variables
 * above that is set, or NULL. why (size bytes) gets a short reason for the log. */
int mg_blas_threads_choose(int requested, int ranks_on_node, const char *env_threads, char *why, size_t size);

/* Applies the rule for this process (environment, mg_dist_node_size) and returns the
 * number of threads OpenBLAS now uses; why as above. OpenMP, which oneDNN runs on, is set
 * to the same count, capped at the cores this process may run on, so that one setting
 * (train.threads, Slurm's --cpus-per-task through OMP_NUM_THREADS) governs both. */
int mg_blas_threads_apply(int requested, char *why, size_t size);

#endif
