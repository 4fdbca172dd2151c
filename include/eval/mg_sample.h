/* `mpigan sample`: draws samples from a checkpoint's generator.
 *
 * G is rebuilt from the resolved config stored in the checkpoint, its parameters and
 * BatchNorm running statistics are loaded, and it runs in evaluation mode on standard
 * normal noise from (seed, MG_STREAM_EVAL). Single-process work (rank 0). */
#ifndef MG_SAMPLE_H
#define MG_SAMPLE_H

#include <stdint.h>

#include "mg_layer.h"
#include "mg_net.h"

/* The noise `mpigan sample --seed seed` feeds G: z (n, dim) standard normals from the
 * Philox stream (seed, MG_STREAM_EVAL). The trainer's fixed sample grid uses the same,
 * with seed = train.seed. */
void mg_sample_noise(float *z, int n, size_t dim, uint64_t seed);

/* G in evaluation mode on z (n, G in) and, for a class-conditional G, labels (n classes;
 * else NULL), in pieces of at most G->max_batch, into out (n, G out). Overwrites G's activations; parameters and BatchNorm state are untouched,
 * and evaluation-mode BatchNorm calls no reduction, so one rank may call it alone. */
void mg_sample_eval(mg_net *G, const float *z, const int *labels, int n, float *out);

/* Classes of a class-conditional generator (labels 0 .. K-1 for n samples): every sample
 * class cls when cls >= 0, else one class per row of a PNG grid of n (mg_png_grid.h: cols
 * = ceil(sqrt(n))), row r showing class r % K, so n = K*K gives a K x K grid. */
void mg_sample_labels(int *labels, int n, int K, int cls);

/* Returns n samples, (n, shape) floats (mg_free), and their per-sample shape. A
 * class-conditional generator draws classes as mg_sample_labels(cls = -1). */
float *mg_sample_generate(const char *checkpoint, int n, uint64_t seed, mg_shape *shape);
/* The same from the checkpoint's network group which: "G", or "G_ema" (the generator EMA;
 * an error naming the file when the run had no train.ema). */
float *mg_sample_generate_from(const char *checkpoint, const char *which, int n, uint64_t seed, mg_shape *shape);
/* The same with classes as mg_sample_labels(cls): cls >= 0 only for a conditional
 * generator, and below its classes (errors naming the checkpoint). */
float *mg_sample_generate_class(const char *checkpoint, const char *which, int n, uint64_t seed, int cls,
                                mg_shape *shape);
/* The classes of the checkpoint's generator: its `classes` when it is class-conditional,
 * else 0. */
int mg_sample_classes(const char *checkpoint);

/* Writes samples as a generator-samples file (mg_samples_file_write, mg_eval_files.h)
 * whose source is the checkpoint path; labels: the classes they were drawn with, out of
 * n_classes (NULL for an unconditional generator). */
void mg_sample_write_h5(const char *path, const float *samples, int n, mg_shape shape, const int *labels,
                        int n_classes, const char *checkpoint);

/* `mpigan sample`: a PNG grid or HDF5 samples from a checkpoint (src/eval/sample_cmd.c).
 * A command as mg_cmd.h defines it. */
int mg_cmd_sample(int argc, char **argv);

#endif
