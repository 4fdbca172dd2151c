/* Scatter plots of 2-D mixture samples (see mg_scatter_png.h). Drawing is done by hand
 * into an RGB canvas in [0, 1]; the PNG encoding is mg_png_grid_write's (one tile). */
#include "mg_scatter_png.h"

#include <math.h>

#include "mg_error.h"
#include "mg_png_grid.h"

typedef struct {
    float *rgb;          /* (3, size, size), channel planes, 1 = white */
    int size;
    double x0, y0, scale; /* pixel = (coordinate - origin) * scale */
} canvas;

/* Blends colour c into pixel (px, py) with opacity alpha. */
static void blend(canvas *cv, int px, int py, const float c[3], float alpha)
{
    if (px < 0 || py < 0 || px >= cv->size || py >= cv->size)
        return;
    const size_t plane = (size_t)cv->size * cv->size, at = (size_t)py * cv->size + px;
    for (int ch = 0; ch < 3; ch++)
        cv->rgb[ch * plane + at] = (1 - alpha) * cv->rgb[ch * plane + at] + alpha * c[ch];
}

static void to_pixel(const canvas *cv, double x, double y, double *px, double *py)
{
    *px = (x - cv->x0) * cv->scale;
    *py = (double)cv->size - 1 - (y - cv->y0) * cv->scale; /* y grows upwards */
}

int64_t mg_scatter_png_write(const char *path, const float *points, int64_t n, const double (*means)[2], int n_modes,
                             double sigma, int size)
{
    MG_CHECK(n_modes > 0 && size >= 64 && size <= 4096, path, NULL, "bad plot request (%d modes, %d pixels)",
             n_modes, size);
    double lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
    for (int m = 0; m < n_modes; m++)
        for (int a = 0; a < 2; a++)
            lo[a] = fmin(lo[a], means[m][a]), hi[a] = fmax(hi[a], means[m][a]);
    const double span = fmax(hi[0] - lo[0], hi[1] - lo[1]), margin = 0.5 * span + 6 * sigma;
    canvas cv = {.size = size};
    cv.scale = (size - 1) / (span + 2 * margin);
    cv.x0 = 0.5 * (lo[0] + hi[0]) - 0.5 * (span + 2 * margin);
    cv.y0 = 0.5 * (lo[1] + hi[1]) - 0.5 * (span + 2 * margin);
    const size_t plane = (size_t)size * size;
    cv.rgb = mg_alloc_floats(3 * plane, "scatter canvas");
    for (size_t i = 0; i < 3 * plane; i++)
        cv.rgb[i] = 1.0f;

    static const float circle[3] = {1.0f, 0.75f, 0.75f}, cross[3] = {0.85f, 0.0f, 0.0f}, dot[3] = {0.05f, 0.1f, 0.5f};
    /* 3 sigma circles, at least 2 pixels across */
    const double radius = fmax(3 * sigma * cv.scale, 2.0);
    for (int m = 0; m < n_modes; m++) {
        double cx, cy;
        to_pixel(&cv, means[m][0], means[m][1], &cx, &cy);
        const int steps = (int)(2 * M_PI * radius) + 8;
        for (int s = 0; s < steps; s++) {
            const double t = 2 * M_PI * s / steps;
            blend(&cv, (int)lround(cx + radius * cos(t)), (int)lround(cy + radius * sin(t)), circle, 1.0f);
        }
    }
    /* samples: 2x2 dots at 35% opacity */
    int64_t outside = 0;
    for (int64_t i = 0; i < n; i++) {
        double px, py;
        to_pixel(&cv, points[2 * i], points[2 * i + 1], &px, &py);
        if (!(px >= 0 && py >= 0 && px <= size - 1 && py <= size - 1)) {
            outside++;
            continue;
        }
        const int x = (int)px, y = (int)py;
        for (int dy = 0; dy < 2; dy++)
            for (int dx = 0; dx < 2; dx++)
                blend(&cv, x + dx, y + dy, dot, 0.35f);
    }
    /* means on top: crosses of half-width 5 pixels */
    for (int m = 0; m < n_modes; m++) {
        double cx, cy;
        to_pixel(&cv, means[m][0], means[m][1], &cx, &cy);
        for (int d = -5; d <= 5; d++) {
            blend(&cv, (int)lround(cx) + d, (int)lround(cy), cross, 1.0f);
            blend(&cv, (int)lround(cx), (int)lround(cy) + d, cross, 1.0f);
        }
    }
    for (size_t i = 0; i < 3 * plane; i++) /* mg_png_grid_write takes [-1, 1] */
        cv.rgb[i] = 2.0f * cv.rgb[i] - 1.0f;
    mg_png_grid_write(path, cv.rgb, 1, 3, size, size);
    mg_free(cv.rgb);
    return outside;
}
