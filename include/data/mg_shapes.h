/* The procedural shapes benchmark: dSprites-style 64x64 RGB images with factor labels.
 *
 * An item is one image fully described by seven discrete factors (their sizes below; the
 * grid has mg_shapes_combinations() = 393216 distinct images). Item i of a split draws
 * its factors, each uniformly and independently, from its own Philox stream
 * (seed, split's stream, i) (mg_batch_streams.h), so the data set is a pure function of
 * the seed and does not depend on how the items are spread over ranks. The image is a
 * pure function of the factors: one shape of one colour on one background, antialiased
 * by coverage from a signed distance per pixel, clamp(0.5 - d, 0, 1) with d in pixels.
 *
 * Geometry (image coordinates: x right, y down, pixel (i, j) centred at (j + 0.5, i + 0.5)):
 *   scale s:      the shape's circumradius R = 7 + 2 s pixels (7 .. 17)
 *   x, y step k:  the shape's centre at 18 + 4 k (18 .. 46), so every shape stays inside
 *   rotation r:   r / 8 of the shape's symmetry period, counter-clockwise (square 90 deg,
 *                 ellipse 180, triangle 120, heart 360), so the 8 steps give 8 different
 *                 images of every shape
 *   colour:       HSV(45 deg * k, 0.8, 0.95)
 *   background:   dark, light, dark gradient, light gradient (top to bottom)
 * docs/data.md lists the values. */
#ifndef MG_SHAPES_H
#define MG_SHAPES_H

#include <stdint.h>

#define MG_SHAPES_SIZE 64     /* images are 3 x 64 x 64 */
#define MG_SHAPES_CHANNELS 3
#define MG_SHAPES_IMAGE_BYTES (MG_SHAPES_CHANNELS * MG_SHAPES_SIZE * MG_SHAPES_SIZE)

/* The factor columns, in the order they are stored. */
enum {
    MG_SHAPES_F_SHAPE = 0,
    MG_SHAPES_F_COLOUR,
    MG_SHAPES_F_SCALE,
    MG_SHAPES_F_ROTATION,
    MG_SHAPES_F_X,
    MG_SHAPES_F_Y,
    MG_SHAPES_F_BACKGROUND,
    MG_SHAPES_N_FACTORS
};

/* The shape factor's values (also the file's class names: labels = shape). */
enum { MG_SHAPE_SQUARE = 0, MG_SHAPE_ELLIPSE, MG_SHAPE_HEART, MG_SHAPE_TRIANGLE, MG_SHAPES_N_SHAPES };

/* Which half of the benchmark: the two draw from different streams of the same seed. */
typedef enum { MG_SHAPES_TRAIN = 0, MG_SHAPES_TEST = 1 } mg_shapes_split;

extern const char *const mg_shapes_factor_names[MG_SHAPES_N_FACTORS];
extern const int32_t mg_shapes_factor_sizes[MG_SHAPES_N_FACTORS];
extern const char *const mg_shapes_shape_names[MG_SHAPES_N_SHAPES];
extern const char *const mg_shapes_colour_names[8];
extern const char *const mg_shapes_background_names[4];

/* The number of distinct factor combinations (the product of the sizes). */
int64_t mg_shapes_combinations(void);

/* Item `item`'s factors (MG_SHAPES_N_FACTORS values). */
void mg_shapes_draw(int32_t *factors, uint64_t seed, mg_shapes_split split, int64_t item);

/* Renders the image of factors (each in range) into chw (3, 64, 64) uint8. */
void mg_shapes_render(uint8_t *chw, const int32_t *factors);

/* Items [first, first + count) of a split: images (count, 3, 64, 64), labels (count) = the
 * shape, factors (count, MG_SHAPES_N_FACTORS). labels and factors may be NULL. */
void mg_shapes_make(uint8_t *images, int32_t *labels, int32_t *factors, uint64_t seed, mg_shapes_split split,
                    int64_t first, int64_t count);

/* The geometry and colours the factors stand for (for tests and documentation). */
float mg_shapes_radius(int scale);        /* circumradius in pixels */
float mg_shapes_position(int step);       /* centre coordinate in pixels, x or y */
void mg_shapes_colour(int colour, uint8_t rgb[3]);
/* The background's colour in image row y. */
void mg_shapes_background(int background, int y, uint8_t rgb[3]);

/* ---- files (src/data/shapes_file.c) ---- */

#define MG_SHAPES_TRAIN_FILE "shapes-train.h5"
#define MG_SHAPES_TEST_FILE "shapes-test.h5"

/* Writes items [0, n) of a split as one data file at path: images (n, 3, 64, 64), labels
 * = the shape (class names: the shape names), factors (n, 7) with their names and sizes.
 * Collective: every rank renders its share through the distributed writer
 * (mg_convert_dist.h), so the file is the same for any rank count. Returns the seconds
 * it took (the same on every rank is not promised). */
double mg_shapes_write(const char *path, int64_t n, uint64_t seed, mg_shapes_split split);

/* Items [0, count) of the training split as a PNG grid (mg_png_grid.h). */
void mg_shapes_grid_png(const char *path, int count, uint64_t seed);

#endif
