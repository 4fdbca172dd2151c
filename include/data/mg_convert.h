/* Converters into the HDF5 data format (mg_h5schema.h, docs/data.md).
 *
 * Each converter writes "<out>.tmp-<pid>" and renames it to its final name only when the
 * file is complete, so bad input (missing file, wrong magic number, truncated gzip, PNGs of
 * different sizes) ends in one error through the error path and leaves nothing under the
 * final name (the temporary file is removed too). Single-process; no MPI. */
#ifndef MG_CONVERT_H
#define MG_CONVERT_H

#include <stdint.h>

#include "mg_h5schema.h"

/* Where Debian's dataset-fashion-mnist package puts the files. */
#define MG_FMNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define MG_FMNIST_TRAIN_FILE "fashion-mnist-train.h5"
#define MG_FMNIST_TEST_FILE "fashion-mnist-test.h5"

/* Reads idx_dir/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz (IDX format, gzip, read
 * with zlib) and writes out_dir/fashion-mnist-train.h5 (60000 samples) and
 * out_dir/fashion-mnist-test.h5 (10000): images uint8 (N, 1, 28, 28), labels int32 (N),
 * the ten class names. out_dir is created if missing (one level). */
void mg_convert_fmnist(const char *idx_dir, const char *out_dir);

typedef enum { MG_MIXTURE_RING = 0, MG_MIXTURE_GRID = 1 } mg_mixture_kind;

/* The standard mode-collapse benchmarks: ring = 8 means on the unit circle (angles
 * 2 pi k / 8), sigma 0.01; grid = 25 means at {-4,-2,0,2,4}^2, sigma 0.05. sigma > 0
 * overrides the default. Fills mix (generator, means, sigma; seed is left to the caller). */
void mg_mixture_params(mg_mixture_info *mix, mg_mixture_kind kind, double sigma);

/* Writes n samples x float32 (n, 2) and labels int32 (n) = index of the mode each sample
 * was drawn from (uniformly), x = mean + sigma * N(0, I), from Philox stream
 * (seed, MG_STREAM_DATA). Means, sigma and seed are stored as attributes. */
void mg_convert_mixture(const char *out_path, mg_mixture_kind kind, int64_t n, uint64_t seed, double sigma);

/* A folder of same-sized PNG images (libpng) -> images uint8 (N, C, H, W), C = 1 for grey
 * and 3 for colour (palettes expanded, 16-bit reduced to 8, alpha dropped), files in name
 * order. If dir holds no PNG files but subdirectories of them, each subdirectory is a class
 * (sorted by name) and the file gets labels and class_names. */
void mg_convert_png_dir(const char *dir, const char *out_path);

/* `mpigan data fmnist|mixture|png|info` (src/data/data_cmd.c).
 * A command as mg_cmd.h defines it. */
int mg_cmd_data(int argc, char **argv);

#endif
