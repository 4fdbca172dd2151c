/* A scatter plot of 2-D samples over the true means of a Gaussian mixture, as a PNG:
 * the view spans the means' bounding box plus a margin (points outside it are not drawn
 * and counted in the return value); each mean gets a red cross and a light red circle of
 * radius 3 sigma (the high-quality region of mode counting), samples are dark blue dots
 * blended so that dense regions look darker. size x size pixels, RGB; written through
 * mg_png_grid_write (temporary file, renamed). */
#ifndef MG_SCATTER_PNG_H
#define MG_SCATTER_PNG_H

#include <stdint.h>

/* points (n, 2), means (n_modes, 2). Returns the number of points outside the view. */
int64_t mg_scatter_png_write(const char *path, const float *points, int64_t n, const double (*means)[2], int n_modes,
                             double sigma, int size);

#endif
