/* `mpigan sample`: draws samples from a checkpoint's generator.
 *
 * G is rebuilt from the resolved config stored in the checkpoint, its parameters and
 * BatchNorm running statistics are loaded, and it runs in evaluation mode on standard
 * normal noise from (seed, MG_STREAM_EVAL). Single-process work (rank 0). */
#ifndef MG_SAMPLE_H
#define MG_SAMPLE_H

#include <stdint.h>

#include "mg_layer.h"

/* Returns n samples, (n, shape) floats (mg_free), and their per-sample shape. */
float *mg_sample_generate(const char *checkpoint, int n, uint64_t seed, mg_shape *shape);

/* Writes samples to an HDF5 file: `images` float32 (n, c, h, w) for images, `x` float32
 * (n, d) for vectors, and an attribute source (the checkpoint path). Written to
 * path.tmp and renamed. */
void mg_sample_write_h5(const char *path, const float *samples, int n, mg_shape shape, const char *checkpoint);

#endif
