/* The shapes benchmark's renderer (see mg_shapes.h): factors from per-item Philox
 * streams, and an image from the factors.
 *
 * Each shape is a signed distance function in unit coordinates (y up, circumradius <= 1):
 * negative inside, in units of the circumradius. Scaled to pixels, it gives each pixel's
 * coverage clamp(0.5 - d, 0, 1), a one-pixel antialiasing ramp across the edge at the cost
 * of one distance per pixel (a supersampled render would cost 16 or more). Only the pixels
 * within R + 1 of the centre are evaluated; the rest are background. The distances are
 * exact for the square, the heart's outline near its edges and the triangle's inside,
 * and first order for the ellipse, which is all the ramp needs. Every shape is centred on
 * its centre of mass, so an image's coverage centroid is the position its factors give. */
#include "mg_shapes.h"

#include <math.h>
#include <string.h>

#include "mg_batch_streams.h"
#include "mg_error.h"
#include "mg_rng.h"

const char *const mg_shapes_factor_names[MG_SHAPES_N_FACTORS] = {"shape", "colour",     "scale",     "rotation",
                                                                 "x",     "y",          "background"};
const int32_t mg_shapes_factor_sizes[MG_SHAPES_N_FACTORS] = {MG_SHAPES_N_SHAPES, 8, 6, 8, 8, 8, 4};
const char *const mg_shapes_shape_names[MG_SHAPES_N_SHAPES] = {"square", "ellipse", "heart", "triangle"};
const char *const mg_shapes_colour_names[8] = {"red", "amber", "lime", "green", "cyan", "blue", "violet", "magenta"};
const char *const mg_shapes_background_names[4] = {"dark", "light", "dark gradient", "light gradient"};

/* HSV(45 deg * k, 0.8, 0.95) rounded to bytes. */
static const uint8_t colours[8][3] = {{242, 48, 48},  {242, 194, 48}, {145, 242, 48}, {48, 242, 97},
                                      {48, 242, 242}, {48, 97, 242},  {145, 48, 242}, {242, 48, 194}};
/* Background colour at the top and the bottom row (equal for the plain ones). */
static const uint8_t backgrounds[4][2][3] = {{{20, 20, 28}, {20, 20, 28}},
                                             {{225, 225, 215}, {225, 225, 215}},
                                             {{8, 8, 16}, {88, 88, 104}},
                                             {{250, 250, 240}, {160, 160, 150}}};
/* Each shape's rotational symmetry in degrees: the 8 rotation steps divide it. */
static const float symmetry_deg[MG_SHAPES_N_SHAPES] = {90.0f, 180.0f, 360.0f, 120.0f};

#define SQUARE_HALF 0.7f     /* half side: circumradius 0.99 */
#define ELLIPSE_A 1.0f       /* semi-axes */
#define ELLIPSE_B 0.55f
#define HEART_SIDE 1.07f     /* the side of the heart's diamond (circumradius 0.994); lobes of this diameter */

int64_t mg_shapes_combinations(void)
{
    int64_t n = 1;
    for (int f = 0; f < MG_SHAPES_N_FACTORS; f++)
        n *= mg_shapes_factor_sizes[f];
    return n;
}

float mg_shapes_radius(int scale) { return 7.0f + 2.0f * (float)scale; }
float mg_shapes_position(int step) { return 18.0f + 4.0f * (float)step; }

void mg_shapes_colour(int colour, uint8_t rgb[3]) { memcpy(rgb, colours[colour], 3); }

void mg_shapes_background(int background, int y, uint8_t rgb[3])
{
    const float t = ((float)y + 0.5f) / (float)MG_SHAPES_SIZE;
    for (int c = 0; c < 3; c++) {
        const float top = backgrounds[background][0][c], bottom = backgrounds[background][1][c];
        rgb[c] = (uint8_t)(top + (bottom - top) * t + 0.5f);
    }
}

void mg_shapes_draw(int32_t *factors, uint64_t seed, mg_shapes_split split, int64_t item)
{
    mg_rng r;
    mg_batch_streams_rng(&r, seed, split == MG_SHAPES_TEST ? MG_STREAM_SHAPES_TEST : MG_STREAM_SHAPES,
                         (uint64_t)item);
    for (int f = 0; f < MG_SHAPES_N_FACTORS; f++)
        factors[f] = (int32_t)mg_rng_below(&r, (uint64_t)mg_shapes_factor_sizes[f]);
}

/* ------------------------------------------------------------------ distances */

/* An axis-aligned square of half side h centred at the origin (exact). */
static float box_distance(float u, float v, float h)
{
    const float qx = fabsf(u) - h, qy = fabsf(v) - h;
    const float ox = qx > 0 ? qx : 0, oy = qy > 0 ? qy : 0;
    const float in = qx > qy ? qx : qy;
    return sqrtf(ox * ox + oy * oy) + (in < 0 ? in : 0);
}

/* f / |grad f| for f = u^2/a^2 + v^2/b^2 - 1: the distance to first order near the edge. */
static float ellipse_distance(float u, float v)
{
    const float ia2 = 1.0f / (ELLIPSE_A * ELLIPSE_A), ib2 = 1.0f / (ELLIPSE_B * ELLIPSE_B);
    const float f = u * u * ia2 + v * v * ib2 - 1.0f;
    const float g = 2.0f * sqrtf(u * u * ia2 * ia2 + v * v * ib2 * ib2);
    return g > 1e-6f ? f / g : -1.0f;
}

/* Equilateral, circumradius 1, a vertex up: the largest distance to the three edge lines
 * (inradius 0.5). Exact inside and beside the edges; short of the truth past a vertex. */
static float triangle_distance(float u, float v)
{
    const float c30 = 0.86602540f;
    float d = -v - 0.5f;
    const float d1 = c30 * u + 0.5f * v - 0.5f, d2 = -c30 * u + 0.5f * v - 0.5f;
    d = d1 > d ? d1 : d;
    return d2 > d ? d2 : d;
}

/* A diamond (a square turned 45 deg, its lower vertex the heart's point) with a disc on
 * each upper edge; the union's distance is the smallest of the three. The diamond's centre
 * sits 0.2215 a below the origin, so that the origin is the heart's centre of mass (the
 * outer half discs, area pi a^2 / 8 each, have their centroids 0.5036 a above the
 * diamond's centre); the point is then 0.929 a from it, the lobes 0.878 a. */
static float heart_distance(float u, float v)
{
    const float a = HEART_SIDE, r2 = 0.70710678f;
    const float y0 = -0.2215368f * a;
    const float w = v - y0;
    float d = box_distance(r2 * (u + w), r2 * (w - u), 0.5f * a);
    const float cx = 0.35355339f * a, cy = 0.35355339f * a, rad = 0.5f * a;
    for (int side = -1; side <= 1; side += 2) {
        const float du = u - (float)side * cx, dv = w - cy;
        const float dc = sqrtf(du * du + dv * dv) - rad;
        d = dc < d ? dc : d;
    }
    return d;
}

static float shape_distance(int shape, float u, float v)
{
    switch (shape) {
    case MG_SHAPE_SQUARE: return box_distance(u, v, SQUARE_HALF);
    case MG_SHAPE_ELLIPSE: return ellipse_distance(u, v);
    case MG_SHAPE_HEART: return heart_distance(u, v);
    default: return triangle_distance(u, v);
    }
}

/* ------------------------------------------------------------------ rendering */

void mg_shapes_render(uint8_t *chw, const int32_t *factors)
{
    for (int f = 0; f < MG_SHAPES_N_FACTORS; f++)
        MG_CHECK(factors[f] >= 0 && factors[f] < mg_shapes_factor_sizes[f], mg_shapes_factor_names[f], NULL,
                 "factor value %d outside 0..%d", factors[f], mg_shapes_factor_sizes[f] - 1);
    const int S = MG_SHAPES_SIZE, plane = S * S;
    const int shape = factors[MG_SHAPES_F_SHAPE];
    uint8_t fg[3], bg_row[MG_SHAPES_SIZE][3];
    mg_shapes_colour(factors[MG_SHAPES_F_COLOUR], fg);
    for (int y = 0; y < S; y++) {
        mg_shapes_background(factors[MG_SHAPES_F_BACKGROUND], y, bg_row[y]);
        for (int c = 0; c < 3; c++)
            memset(chw + c * plane + y * S, bg_row[y][c], (size_t)S);
    }
    const float R = mg_shapes_radius(factors[MG_SHAPES_F_SCALE]), inv_r = 1.0f / R;
    const float cx = mg_shapes_position(factors[MG_SHAPES_F_X]), cy = mg_shapes_position(factors[MG_SHAPES_F_Y]);
    const float angle = (float)factors[MG_SHAPES_F_ROTATION] * symmetry_deg[shape] / 8.0f * (float)M_PI / 180.0f;
    const float cs = cosf(angle), sn = sinf(angle);
    int x0 = (int)floorf(cx - R - 1), x1 = (int)ceilf(cx + R + 1);
    int y0 = (int)floorf(cy - R - 1), y1 = (int)ceilf(cy + R + 1);
    x0 = x0 < 0 ? 0 : x0;
    y0 = y0 < 0 ? 0 : y0;
    x1 = x1 > S ? S : x1;
    y1 = y1 > S ? S : y1;
    for (int y = y0; y < y1; y++) {
        const float dy = (cy - ((float)y + 0.5f)) * inv_r; /* y up */
        for (int x = x0; x < x1; x++) {
            const float dx = ((float)x + 0.5f - cx) * inv_r;
            /* into the shape's frame: rotate by -angle */
            const float u = cs * dx + sn * dy, v = -sn * dx + cs * dy;
            float cover = 0.5f - shape_distance(shape, u, v) * R;
            if (cover <= 0)
                continue;
            cover = cover > 1 ? 1 : cover;
            for (int c = 0; c < 3; c++) {
                const float b = bg_row[y][c];
                chw[c * plane + y * S + x] = (uint8_t)(b + ((float)fg[c] - b) * cover + 0.5f);
            }
        }
    }
}

void mg_shapes_make(uint8_t *images, int32_t *labels, int32_t *factors, uint64_t seed, mg_shapes_split split,
                    int64_t first, int64_t count)
{
    for (int64_t i = 0; i < count; i++) {
        int32_t f[MG_SHAPES_N_FACTORS];
        mg_shapes_draw(f, seed, split, first + i);
        mg_shapes_render(images + i * MG_SHAPES_IMAGE_BYTES, f);
        if (labels)
            labels[i] = f[MG_SHAPES_F_SHAPE];
        if (factors)
            memcpy(factors + i * MG_SHAPES_N_FACTORS, f, sizeof f);
    }
}
