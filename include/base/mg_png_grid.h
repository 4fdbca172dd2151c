/* Writing a batch of images as one PNG grid (libpng), for looking at samples.
 * images (n, c, h, w) float in [-1, 1] (clamped), c = 1 (grey) or 3 (RGB); tiles are laid
 * out row by row, cols = ceil(sqrt(n)), with a 2-pixel black border. The file is written
 * to path.tmp and renamed, so a failure leaves no partial PNG. Fatal errors name path. */
#ifndef MG_PNG_GRID_H
#define MG_PNG_GRID_H

void mg_png_grid_write(const char *path, const float *images, int n, int c, int h, int w);

#endif
