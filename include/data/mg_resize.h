/* Resizing for the image converters: a region of a decoded image (mg_image.h, channels
 * interleaved) to a dw x dh sample in the data file's layout (channels first).
 *
 * area      exact box filter: each output pixel is the mean of the source area it covers,
 *           fractional pixels at its edges weighted by their covered fraction (for shrinking;
 *           at equal size it is the identity).
 * bilinear  the value at the output pixel's centre mapped into the source
 *           ((o + 0.5) * r / d - 0.5, clamped to the edge), from its four neighbours.
 * Both are separable (rows, then columns, in double precision) and round to nearest. */
#ifndef MG_RESIZE_H
#define MG_RESIZE_H

#include <stdint.h>

typedef enum { MG_RESIZE_AREA = 0, MG_RESIZE_BILINEAR = 1 } mg_resize_kind;

/* Resizes the rw x rh region at (x0, y0) of src (w x h pixels, c = 1 or 3 interleaved
 * channels) into dst (out_c x dh x dw, channels first). out_c may differ from c: grey to 3
 * channels copies the grey value into each, colour to 1 channel takes the luma
 * 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601) of the resized colour values. */
void mg_resize_region(uint8_t *dst, int out_c, int dw, int dh, const uint8_t *src, int w, int h, int c, int x0,
                      int y0, int rw, int rh, mg_resize_kind kind);

/* The centred square of a w x h image: side min(w, h), at ((w - side) / 2, (h - side) / 2)
 * rounded down. */
void mg_crop_center(int w, int h, int *x0, int *y0, int *side);

#endif
