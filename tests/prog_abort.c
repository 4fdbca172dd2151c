/* Helper for tests/test_abort.sh (not a test by itself): rank 1 hits the fatal error
 * path while rank 0 waits in a collective. The error path must end every rank. */
#include <stdio.h>
#include <string.h>

#include "mg_dist.h"
#include "mg_error.h"

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    if (mg_dist_rank() == 1)
        MG_FAIL("prog_abort", "none: this failure is deliberate", "rank 1 fails on purpose");
    float x = 1.0f;
    mg_dist_allreduce_sum(&x, 1); /* rank 0 would wait here forever without the abort */
    mg_dist_barrier();
    printf("unreachable: the collective completed\n");
    mg_dist_finalize();
    return 0;
}
