/* The sample grid a training run writes every train.sample_interval steps: G in
 * evaluation mode on one FIXED noise batch, drawn once when the run starts, as a PNG grid
 * (mg_png_grid.h) in run_dir/samples/step_<N>.png. The same noise at every step makes the
 * grids a film of one set of samples improving. The noise is that of
 * `mpigan sample --seed <train.seed>` (mg_sample_noise), so a checkpoint's samples can be
 * redrawn later. Rank 0 only; no collective calls. */
#ifndef MG_SAMPLE_GRID_H
#define MG_SAMPLE_GRID_H

#include <stdbool.h>
#include <stdint.h>

#include "mg_net.h"

typedef struct {
    int n;              /* samples per grid */
    float *z;           /* (n, G in): the fixed noise */
    int *labels;        /* class-conditional G: one class per row (mg_sample_labels); else NULL */
    float *images;      /* (n, G out) */
    char dir[1024];     /* where the PNG files go */
} mg_sample_grid;

/* True when G's samples can be drawn as a PNG (images with 1 or 3 channels, not vectors). */
bool mg_sample_grid_drawable(const mg_net *G);

/* Draws the fixed noise (n samples, seed) and remembers dir (created on the first write). */
void mg_sample_grid_init(mg_sample_grid *g, const mg_net *G, int n, uint64_t seed, const char *dir);

/* Runs G (evaluation mode) on the fixed noise and writes dir/step_<step>.png. G's
 * activations are overwritten; its parameters and BatchNorm state are not. */
void mg_sample_grid_write(mg_sample_grid *g, mg_net *G, long step);

void mg_sample_grid_free(mg_sample_grid *g);

#endif
