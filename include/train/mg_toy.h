/* A tiny data-parallel example: an MLP classifier learning a synthetic 2-D task
 * (inside a disc: class 0; outside: class 1 or 2 by the sign of x*y, which no linear
 * model separates). It exercises the whole core (YAML network, flat gradients, one
 * allreduce per step, optimizer, schedule, softmax cross-entropy) before the GAN trainer
 * exists, and is what `mpigan toy` and the end-to-end learning test run. */
#ifndef MG_TOY_H
#define MG_TOY_H

#include <stdbool.h>
#include <stdint.h>

#include "mg_cfg.h"

typedef struct {
    float first_loss, final_loss; /* mean training loss over the first / last logged window */
    float accuracy;               /* on 2000 fresh test points */
    uint64_t param_checksum;      /* equal on every rank when replicas stayed in sync */
    bool replicas_equal;
} mg_toy_result;

/* Trains per the `toy` and `model` sections of cfg; prints progress on rank 0 when
 * verbose. Works with any number of ranks (the global batch must divide evenly). */
mg_toy_result mg_toy_train(mg_cfg *cfg, bool verbose);

/* `mpigan toy CONFIG.yaml` (src/train/toy_cmd.c).
 * A command as mg_cmd.h defines it. */
int mg_cmd_toy(int argc, char **argv);

#endif
