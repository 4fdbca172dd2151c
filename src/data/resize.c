/* Area and bilinear resizing for the image converters (mg_resize.h). One output axis is a
 * list of (source index, weight) taps per output pixel; the image goes through the rows'
 * taps, then the columns', in double precision, and is rounded once at the end, so a
 * constant image stays exactly constant and a box average is exact. */
#include "mg_resize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mg_error.h"

typedef struct {
    int *first, *count; /* per output pixel: its first tap, and how many */
    int *index;         /* source index of each tap */
    double *weight;     /* its weight; the weights of one output pixel sum to 1 */
} taps;

/* Taps mapping r source pixels onto d output pixels. */
static void taps_make(taps *t, int r, int d, mg_resize_kind kind)
{
    double scale = (double)r / d;
    int per = kind == MG_RESIZE_AREA ? (int)ceil(scale) + 2 : 2;
    t->first = mg_alloc((size_t)d * sizeof(int), "resize taps");
    t->count = mg_alloc((size_t)d * sizeof(int), "resize taps");
    t->index = mg_alloc((size_t)d * per * sizeof(int), "resize taps");
    t->weight = mg_alloc((size_t)d * per * sizeof(double), "resize taps");
    int k = 0;
    for (int o = 0; o < d; o++) {
        t->first[o] = k;
        if (kind == MG_RESIZE_AREA) {
            double a = o * scale, b = (o + 1) * scale;
            int lo = (int)floor(a), hi = (int)ceil(b);
            if (hi > r)
                hi = r;
            double sum = 0;
            int k0 = k;
            for (int i = lo; i < hi; i++) {
                double wgt = fmin(b, i + 1.0) - fmax(a, (double)i);
                if (wgt <= 1e-12)
                    continue;
                t->index[k] = i;
                t->weight[k++] = wgt;
                sum += wgt;
            }
            for (int j = k0; j < k; j++)
                t->weight[j] /= sum;
        } else {
            double x = (o + 0.5) * scale - 0.5;
            if (x < 0)
                x = 0;
            if (x > r - 1)
                x = r - 1;
            int i0 = (int)floor(x);
            int i1 = i0 + 1 < r ? i0 + 1 : i0;
            double f = x - i0;
            t->index[k] = i0;
            t->weight[k++] = 1 - f;
            t->index[k] = i1;
            t->weight[k++] = f;
        }
        t->count[o] = k - t->first[o];
    }
}

static void taps_free(taps *t)
{
    mg_free(t->first);
    mg_free(t->count);
    mg_free(t->index);
    mg_free(t->weight);
}

static uint8_t to_u8(double v)
{
    v = floor(v + 0.5);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

void mg_resize_region(uint8_t *dst, int out_c, int dw, int dh, const uint8_t *src, int w, int h, int c, int x0,
                      int y0, int rw, int rh, mg_resize_kind kind)
{
    MG_CHECK(x0 >= 0 && y0 >= 0 && rw >= 1 && rh >= 1 && x0 + rw <= w && y0 + rh <= h && dw >= 1 && dh >= 1 &&
                 (c == 1 || c == 3) && (out_c == 1 || out_c == 3),
             "resize", "a bug in the caller", "region %d x %d at (%d, %d) of a %d x %d x %d image to %d x %d x %d",
             rw, rh, x0, y0, w, h, c, out_c, dh, dw);
    taps tx, ty;
    taps_make(&tx, rw, dw, kind);
    taps_make(&ty, rh, dh, kind);
    /* rows: (rh, dw, c) */
    double *mid = mg_alloc((size_t)rh * dw * c * sizeof(double), "resize rows");
    for (int y = 0; y < rh; y++) {
        const uint8_t *row = src + ((size_t)(y0 + y) * w + x0) * c;
        for (int o = 0; o < dw; o++)
            for (int ch = 0; ch < c; ch++) {
                double v = 0;
                for (int k = tx.first[o]; k < tx.first[o] + tx.count[o]; k++)
                    v += tx.weight[k] * row[(size_t)tx.index[k] * c + ch];
                mid[((size_t)y * dw + o) * c + ch] = v;
            }
    }
    /* columns, then the channel mapping, into channels first */
    const size_t plane = (size_t)dw * dh;
    for (int o = 0; o < dh; o++)
        for (int x = 0; x < dw; x++) {
            double v[3] = {0, 0, 0};
            for (int k = ty.first[o]; k < ty.first[o] + ty.count[o]; k++)
                for (int ch = 0; ch < c; ch++)
                    v[ch] += ty.weight[k] * mid[((size_t)ty.index[k] * dw + x) * c + ch];
            size_t at = (size_t)o * dw + x;
            if (out_c == c) {
                for (int ch = 0; ch < c; ch++)
                    dst[ch * plane + at] = to_u8(v[ch]);
            } else if (out_c == 3) {
                uint8_t g = to_u8(v[0]);
                dst[at] = dst[plane + at] = dst[2 * plane + at] = g;
            } else {
                dst[at] = to_u8(0.299 * v[0] + 0.587 * v[1] + 0.114 * v[2]);
            }
        }
    mg_free(mid);
    taps_free(&tx);
    taps_free(&ty);
}

void mg_crop_center(int w, int h, int *x0, int *y0, int *side)
{
    *side = w < h ? w : h;
    *x0 = (w - *side) / 2;
    *y0 = (h - *side) / 2;
}
