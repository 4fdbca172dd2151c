/* Keeping frozen layers fixed through an optimizer step.
 *
 * A layer marked frozen (mg_layer.frozen: per layer `frozen: true`, or init.freeze in
 * mg_transfer.h) gets no parameter gradients, but weight decay, momentum and weight
 * clipping could still move its parameters. mg_frozen holds the ranges of a network's
 * flat parameter buffer that belong to its frozen layers and room for their values: the
 * trainer saves them before each optimizer step and restores them after it (and after
 * weight clipping), bit for bit. */
#ifndef MG_FROZEN_H
#define MG_FROZEN_H

#include <stddef.h>

#include "mg_net.h"

typedef struct {
    int n;
    size_t *off, *len;   /* ranges in the network's param buffer */
    size_t total;
    float *saved;        /* (total) */
} mg_frozen;

/* The frozen layers of net as they are marked now (mark them first). */
void mg_frozen_init(mg_frozen *f, const mg_net *net);
/* Copies the frozen ranges of param (the network's flat buffer) into f. */
void mg_frozen_save(mg_frozen *f, const float *param);
/* Writes the saved values back into param. */
void mg_frozen_restore(const mg_frozen *f, float *param);
void mg_frozen_free(mg_frozen *f);

#endif
