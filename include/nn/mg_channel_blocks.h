/* Moving activations between the layers' plain layout and oneDNN's channel-blocked one.
 *
 * A plain tensor here is (n, c, h w) floats with any sample and channel strides and each
 * h w plane contiguous: NCHW itself (strides c h w and h w), or a view with the batch and
 * channel axes swapped. The blocked layout is oneDNN's nChw16c (aBcd16b):
 * [n][ceil(c / 16)][h w][16], channels past c zero, in fp32 or bfloat16 (rounded to
 * nearest even, as oneDNN's own reorders and the CPU's conversion instruction round).
 * These are the reorders around every blocked convolution; written here as 16 x 16
 * transposes, they run several times faster than oneDNN 2.6's generic reorder kernels on
 * these shapes, and give the same bits. Only built where the compiler targets AVX-512
 * (and AVX512_BF16 for the bf16 form); elsewhere mg_channel_blocks_available says no and
 * oneDNN's reorders do the work. */
#ifndef MG_CHANNEL_BLOCKS_H
#define MG_CHANNEL_BLOCKS_H

#include <stdbool.h>
#include <stddef.h>

/* True when this build can pack into the blocked layout of that element type (bf16: else
 * fp32) and unpack fp32 from it. */
bool mg_channel_blocks_available(bool bf16);

/* dst (blocked, bfloat16 when bf16, else fp32) = src (n, c, hw; strides sn, sc floats). */
void mg_channel_blocks_pack(void *dst, bool bf16, const float *src, int n, int c, size_t hw, size_t sn, size_t sc);

/* dst (n, c, hw; strides sn, sc floats) = src (blocked fp32). Writes only the c channels. */
void mg_channel_blocks_unpack(float *dst, size_t sn, size_t sc, const float *src, int n, int c, size_t hw);

/* dst = src (a, b, hw; strides sa, sb floats) in the weights layout of oneDNN's AVX-512
 * convolutions, entries past a or b zero:
 *   fp32, ABcd16b16a: [ceil(a / 16)][ceil(b / 16)][hw][16 (b % 16)][16 (a % 16)];
 *   bf16, ABcd8b16a2b: [ceil(a / 16)][ceil(b / 16)][hw][8 ((b % 16) / 2)][16 (a % 16)][2 (b % 2)].
 * The weight-gradient convolution (onednn.c) takes an activation gradient, or an input, in it. */
void mg_channel_blocks_pack_weights(void *dst, bool bf16, const float *src, int a, int b, size_t hw, size_t sa,
                                    size_t sb);

#endif
