/* The shapes benchmark on disk (see mg_shapes.h): the renderer as the distributed
 * writer's item callback, and a PNG grid of the first items for looking at the set. */
#include <stdio.h>
#include <string.h>

#include "mg_convert_dist.h"
#include "mg_error.h"
#include "mg_png_grid.h"
#include "mg_shapes.h"
#include "mg_util.h"

typedef struct {
    uint64_t seed;
    mg_shapes_split split;
} shapes_ctx;

static bool make_item(void *ctx, int64_t item, uint8_t *sample, int32_t *label, int32_t *factors, char *why,
                      size_t why_size)
{
    (void)why;
    (void)why_size;
    const shapes_ctx *c = ctx;
    int32_t f[MG_SHAPES_N_FACTORS];
    mg_shapes_draw(f, c->seed, c->split, item);
    mg_shapes_render(sample, f);
    *label = f[MG_SHAPES_F_SHAPE];
    memcpy(factors, f, sizeof f);
    return true;
}

double mg_shapes_write(const char *path, int64_t n, uint64_t seed, mg_shapes_split split)
{
    shapes_ctx ctx = {seed, split};
    mg_dist_write_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.info.kind = MG_DATA_IMAGES;
    spec.info.c = MG_SHAPES_CHANNELS;
    spec.info.h = spec.info.w = MG_SHAPES_SIZE;
    spec.info.has_labels = true;
    spec.info.value_range[1] = 255;
    snprintf(spec.info.source, sizeof spec.info.source,
             "procedural shapes (dSprites-style, 64x64 RGB), seed %llu, %s split, written by `mpigan data shapes`; "
             "labels are the shape, factors the generative factors",
             (unsigned long long)seed, split == MG_SHAPES_TEST ? "test" : "train");
    snprintf(spec.info.split, sizeof spec.info.split, "%s", split == MG_SHAPES_TEST ? "test" : "train");
    mg_data_info_set_classes(&spec.info, MG_SHAPES_N_SHAPES, mg_shapes_shape_names);
    spec.n_items = n;
    spec.n_factors = MG_SHAPES_N_FACTORS;
    spec.factor_names = mg_shapes_factor_names;
    spec.factor_sizes = mg_shapes_factor_sizes;
    spec.make = make_item;
    spec.ctx = &ctx;
    mg_dist_write_result res;
    const double t0 = mg_clock_seconds(CLOCK_MONOTONIC);
    mg_convert_dist_write(path, &spec, &res);
    const double seconds = mg_clock_seconds(CLOCK_MONOTONIC) - t0;
    mg_data_info_free(&spec.info);
    MG_CHECK(res.n_written == n, path, NULL, "wrote %lld of %lld items", (long long)res.n_written, (long long)n);
    return seconds;
}

void mg_shapes_grid_png(const char *path, int count, uint64_t seed)
{
    MG_CHECK(count >= 1, path, NULL, "a grid of %d images", count);
    uint8_t *img = mg_alloc((size_t)count * MG_SHAPES_IMAGE_BYTES, "shapes grid");
    float *x = mg_alloc_floats((size_t)count * MG_SHAPES_IMAGE_BYTES, "shapes grid");
    mg_shapes_make(img, NULL, NULL, seed, MG_SHAPES_TRAIN, 0, count);
    for (size_t i = 0; i < (size_t)count * MG_SHAPES_IMAGE_BYTES; i++)
        x[i] = (float)img[i] / 127.5f - 1.0f; /* mg_png_grid_write takes [-1, 1] */
    mg_png_grid_write(path, x, count, MG_SHAPES_CHANNELS, MG_SHAPES_SIZE, MG_SHAPES_SIZE);
    mg_free(x);
    mg_free(img);
}
