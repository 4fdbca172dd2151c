/* In-memory training data made on the fly, for the 2-D benchmarks and for tests:
 *   ring8      8 Gaussian modes, means on the unit circle at angles 2 pi k / 8, sigma 0.01
 *   grid25     25 modes, means at {-4, -2, 0, 2, 4}^2, sigma 0.05
 *   synthetic  samples of any shape, uniform in [-1, 1] with a per-sample offset (tests)
 * Sample g of the run draws from its own stream (mg_batch_streams.h, purpose
 * MG_STREAM_DATA), so a rank makes exactly its slice of every global batch. */
#ifndef MG_MEM_DATA_H
#define MG_MEM_DATA_H

#include <stdint.h>

#include "mg_layer.h"

/* Where the trainer's real samples come from (config data.source, or data.path for
 * HDF5): the in-memory sources made here, or an HDF5 file read by the loader (mg_loader.h). */
typedef enum { MG_DATA_RING8, MG_DATA_GRID25, MG_DATA_SYNTHETIC, MG_DATA_HDF5 } mg_data_source;

/* The per-sample shape source produces given the networks' data shape want (synthetic
 * takes want; the mixtures are (2)). */
mg_shape mg_mem_data_shape(mg_data_source source, mg_shape want);

/* x (n, shape): samples first_item .. first_item + n - 1. */
void mg_mem_data_fill(mg_data_source source, float *x, int n, mg_shape shape, uint64_t seed, uint64_t first_item);
/* The same, and labels (n ints, optional) the class of each sample: the mixtures' mode
 * index (mg_mixture_params's numbering), for class-conditional runs on them. */
void mg_mem_data_fill_labelled(mg_data_source source, float *x, int *labels, int n, mg_shape shape, uint64_t seed,
                               uint64_t first_item);
/* Classes a source labels its samples with: 8 (ring8), 25 (grid25), 0 (synthetic: none). */
int mg_mem_data_classes(mg_data_source source);

#endif
