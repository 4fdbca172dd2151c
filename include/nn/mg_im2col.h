/* Lowering 2-d convolutions to matrix products over a whole local batch.
 *
 * A convolution window sweep is described by mg_conv_geom: an image of (c, h, w) per
 * sample, a square kernel k, stride s and symmetric zero padding p, giving
 * oh = (h + 2p - k) / s + 1 by ow = (w + 2p - k) / s + 1 window positions.
 *
 * The column matrix of n samples is K x (n * oh * ow), K = c * k * k, row-major:
 *   row index    (ci, ki, kj)   = (ci * k + ki) * k + kj
 *   column index (sample, oy, ox) = (sample * oh + oy) * ow + ox
 *   col[row][col] = img[sample][ci][oy * s - p + ki][ox * s - p + kj]   (0 outside the image)
 * so that conv2d is one sgemm  W (cout x K) * col (K x n*oh*ow), whose result is
 * "channel-major" (cout, n * oh * ow); mg_cm_to_nchw and mg_nchw_to_cm convert between
 * that and NCHW. Transposed convolution uses the same matrices the other way round
 * (col2im is the adjoint of im2col). The layers apply all this to chunks of the local
 * batch (mg_conv_chunk), so "n" below is a chunk's sample count.
 *
 * All buffers are owned by the caller; no function here allocates. im2col and col2im move
 * whole vectors that may run a few floats past the row they work on, but never outside col,
 * img or scratch. */
#ifndef MG_IM2COL_H
#define MG_IM2COL_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    int c, h, w;       /* image per sample */
    int k, stride, pad;
    int oh, ow;        /* window positions: (h + 2 pad - k) / stride + 1, likewise ow */
} mg_conv_geom;

/* Fills oh and ow from the other fields (no validation; callers check sizes >= 1). */
mg_conv_geom mg_conv_geom_make(int c, int h, int w, int k, int stride, int pad);

/* Rows of the column matrix (c k k) and columns per sample (oh ow). */
static inline size_t mg_conv_geom_rows(const mg_conv_geom *g) { return (size_t)g->c * g->k * g->k; }
static inline size_t mg_conv_geom_cols(const mg_conv_geom *g) { return (size_t)g->oh * g->ow; }

/* Floats of scratch im2col and col2im need for n samples: each sample's zero-padded image
 * plane split into phase planes, about (h + 2p) (w + 2p) floats per sample, plus a row
 * buffer of about 2 h (w + 2p) floats and 16. */
size_t mg_im2col_scratch_floats(const mg_conv_geom *g, int n);

/* img (n, c, h, w) -> col (c k k, n oh ow), every entry written.
 * scratch: mg_im2col_scratch_floats(g, n) floats, contents irrelevant. */
void mg_im2col(float *col, const float *img, int n, const mg_conv_geom *g, float *scratch);

/* The adjoint of mg_im2col: img (n, c, h, w) += col2im(col (c k k, n oh ow)).
 * Every image pixel receives the sum of the column entries that im2col would copy it to;
 * pixels no window touches are left unchanged. Same scratch as mg_im2col. */
void mg_col2im_add(float *img, const float *col, int n, const mg_conv_geom *g, float *scratch);

/* NCHW x (n, c, p) -> channel-major cm (c, n p). */
void mg_nchw_to_cm(float *cm, const float *x, int n, int c, size_t p);

/* Channel-major cm (c, n p) -> NCHW y (n, c, p), y = cm + bias[c] (bias may be NULL). */
void mg_cm_to_nchw(float *y, const float *cm, int n, int c, size_t p, const float *bias);

/* NCHW y (n, c, p) = bias[c], or 0 when bias is NULL. */
void mg_fill_channels(float *y, const float *bias, int n, int c, size_t p);

/* db[c] += sum over samples and positions of dy (n, c, p). */
void mg_channel_sums_add(float *db, const float *dy, int n, int c, size_t p);

/* How a convolution layer runs its GEMMs over a local batch.
 * In place, one sgemm per sample on the NCHW tensors as they are: chosen when the weight
 * matrix (weights floats, re-read by every per-sample GEMM) is no larger than the per-sample
 * NCHW operand that the batched form would gather or scatter (operand floats), and the
 * per-sample GEMM is at least 64 columns (P) wide. */
bool mg_conv_in_place(size_t weights, size_t operand, size_t P);

/* Either way, im2col / col2im and the GEMMs run on chunks of this many samples (balanced
 * over n), so that a chunk's column matrix (col_floats per sample) is about 2 MB and stays
 * in cache between im2col and the GEMM: a whole batch's (12.8 MB in DCGAN) falls out of
 * cache and makes im2col and col2im several times slower, while GEMMs of N = 490 columns
 * (10 samples of 7x7) still run at full speed (docs/results/2026-11-23-conv-layers).
 * Otherwise than in place, a chunk's NCHW operand is gathered to channel-major order (or
 * its result scattered back) around one sgemm per product. */
int mg_conv_chunk(size_t col_floats, int n);

/* Overrides that ~2 MB budget (floats of column matrix per chunk; 0 restores the default), so
 * that tests can split small batches into several chunks and benchmarks can tune it. */
void mg_conv_set_chunk_floats(size_t floats);

/* A convolution layer's workspace for a batch of n samples run in chunks (mg_conv_chunk),
 * carved from the network's workspace for one chunk of m = chunk samples:
 * [col (c k k, m oh ow) | channel-major operand (cm_channels, m oh ow) | scratch].
 * conv2d keeps its output there (cm_channels = cout), conv_transpose2d its input (cin). */
typedef struct {
    float *col, *cm, *scratch;
    int chunk; /* samples per chunk */
} mg_conv_work;
mg_conv_work mg_conv_work_carve(float *work, const mg_conv_geom *g, int cm_channels, int n);
/* Floats of that workspace per sample (the layer's n_work). */
size_t mg_conv_work_floats(const mg_conv_geom *g, int cm_channels);

/* The checks conv2d and conv_transpose2d share: cout, kernel and stride at least 1, padding
 * in [0, kernel). Fails naming layer, with hint. */
void mg_conv_check_params(const char *layer, const char *hint, int cout, int kernel, int stride, int pad);

#endif
