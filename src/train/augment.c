/* DiffAugment's transforms as forward/backward pairs (see mg_augment.h). Each sample
 * draws the same count of numbers from its own stream whatever the policy and p, so
 * turning one policy off leaves the others' draws as they were. */
#include "mg_augment.h"

#include <math.h>
#include <string.h>

#include "mg_batch_streams.h"
#include "mg_error.h"

#define DRAWS 10 /* per sample: 3 gates, 2 shifts, 2 cutout centres, 3 colour factors */

mg_augment_cfg mg_augment_cfg_from(mg_cfg_node node)
{
    mg_augment_cfg c = {0};
    if (!mg_cfg_present(node))
        return c;
    mg_cfg_expect_mapping(node);
    mg_cfg_node policy = mg_cfg_require(node, "policy");
    const int n = mg_cfg_seq_len(policy);
    if (n == 0)
        mg_cfg_fail(policy, "list one or more of translation, cutout, color", "the policy list is empty");
    static const char *const names[] = {"translation", "cutout", "color"};
    for (int i = 0; i < n; i++) {
        switch (mg_cfg_as_choice(mg_cfg_seq_at(policy, i), names, 3)) {
        case 0: c.translation = true; break;
        case 1: c.cutout = true; break;
        default: c.color = true; break;
        }
    }
    c.p = (float)mg_cfg_real(node, "p", 1.0, 0.0, 1.0);
    mg_cfg_node ada = mg_cfg_get(node, "adaptive");
    if (mg_cfg_present(ada)) {
        mg_cfg_expect_mapping(ada);
        c.adaptive.on = true;
        c.adaptive.target = mg_cfg_real(ada, "target", 0.6, 0.0, 1.0);
        c.adaptive.interval = (int)mg_cfg_int(ada, "interval", 4, 1, 1000000);
        c.adaptive.speed = mg_cfg_real(ada, "speed", 500000.0, 1e-9, 1e15);
    }
    c.on = true;
    return c;
}

void mg_augment_init(mg_augment *a, mg_shape shape, int max_n)
{
    memset(a, 0, sizeof *a);
    a->shape = shape;
    a->max_n = max_n;
    a->shift = mg_alloc(sizeof(int) * 2 * (size_t)max_n, "augmentation shifts");
    a->cut = mg_alloc(sizeof(int) * 3 * (size_t)max_n, "augmentation cutouts");
    a->color = mg_alloc_floats(3 * (size_t)max_n, "augmentation colours");
    a->scratch = mg_alloc_floats(mg_shape_size(shape), "augmentation scratch");
}

void mg_augment_free(mg_augment *a)
{
    mg_free(a->shift);
    mg_free(a->cut);
    mg_free(a->color);
    mg_free(a->scratch);
    memset(a, 0, sizeof *a);
}

/* integer in [lo, hi] from u in [0, 1) */
static int uniform_int(float u, int lo, int hi)
{
    int v = lo + (int)(u * (float)(hi - lo + 1));
    return v > hi ? hi : v;
}

/* Sample i's parameters from its stream; identity where a gate says no. */
static void draw(mg_augment *a, const mg_augment_cfg *cfg, int i, uint64_t seed, uint32_t use, uint64_t item)
{
    mg_rng r;
    mg_batch_streams_rng(&r, seed ^ ((uint64_t)use * 0x9E3779B97F4A7C15ull), MG_STREAM_AUGMENT, item);
    float u[DRAWS];
    for (int k = 0; k < DRAWS; k++)
        u[k] = mg_rng_uniform(&r);
    const int h = a->shape.h, w = a->shape.w;
    int *shift = a->shift + 2 * i, *cut = a->cut + 3 * i;
    float *color = a->color + 3 * i;
    shift[0] = shift[1] = 0;
    cut[0] = cut[1] = cut[2] = 0;
    color[0] = 0.0f, color[1] = color[2] = 1.0f;
    if (cfg->translation && u[0] < cfg->p) {
        const int rh = (int)(0.125f * (float)h + 0.5f), rw = (int)(0.125f * (float)w + 0.5f);
        shift[0] = uniform_int(u[3], -rh, rh);
        shift[1] = uniform_int(u[4], -rw, rw);
    }
    if (cfg->cutout && u[1] < cfg->p) {
        const int size = (int)(0.5f * (float)(h < w ? h : w) + 0.5f);
        cut[0] = uniform_int(u[5], 0, h - 1) - size / 2; /* centre anywhere, clipped at the edges */
        cut[1] = uniform_int(u[6], 0, w - 1) - size / 2;
        cut[2] = size;
    }
    if (cfg->color && u[2] < cfg->p) {
        color[0] = u[7] - 0.5f;                                 /* brightness */
        color[1] = a->shape.c > 1 ? 2.0f * u[8] : 1.0f;         /* saturation */
        color[2] = 0.5f + u[9];                                 /* contrast */
    }
}

/* x = s x + (1 - s) mean(x) over groups of g values spaced `stride` apart, for each of
 * `groups` groups starting `step` apart: the symmetric map that saturation (the channels
 * of a pixel) and contrast (the whole sample) are, so it is its own adjoint. */
static void towards_mean(float *x, float s, int groups, size_t step, int g, size_t stride)
{
    if (s == 1.0f)
        return;
    for (int k = 0; k < groups; k++) {
        float *v = x + (size_t)k * step;
        double sum = 0;
        for (int j = 0; j < g; j++)
            sum += v[(size_t)j * stride];
        const float m = (float)(sum / g) * (1.0f - s);
        for (int j = 0; j < g; j++)
            v[(size_t)j * stride] = s * v[(size_t)j * stride] + m;
    }
}

/* out = in shifted by (sy, sx), zeros brought in; adjoint: shift by (-sy, -sx) */
static void shift_image(const float *in, float *out, int c, int h, int w, int sy, int sx)
{
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++) {
            float *o = out + ((size_t)ch * h + y) * w;
            const int ys = y - sy;
            if (ys < 0 || ys >= h) {
                memset(o, 0, sizeof(float) * (size_t)w);
                continue;
            }
            const float *row = in + ((size_t)ch * h + ys) * w;
            for (int x = 0; x < w; x++) {
                const int xs = x - sx;
                o[x] = xs >= 0 && xs < w ? row[xs] : 0.0f;
            }
        }
}

static void cut_out(float *x, int c, int h, int w, const int *cut)
{
    if (cut[2] == 0)
        return;
    const int y0 = cut[0] < 0 ? 0 : cut[0], x0 = cut[1] < 0 ? 0 : cut[1];
    const int y1 = cut[0] + cut[2] > h ? h : cut[0] + cut[2], x1 = cut[1] + cut[2] > w ? w : cut[1] + cut[2];
    for (int ch = 0; ch < c; ch++)
        for (int y = y0; y < y1; y++)
            for (int xx = x0; xx < x1; xx++)
                x[((size_t)ch * h + y) * w + xx] = 0.0f;
}

/* forward: colour (brightness, saturation, contrast) into the scratch, the shift from
 * there into y, then the cutout */
void mg_augment_forward(mg_augment *a, const mg_augment_cfg *cfg, const float *x, float *y, int n, uint64_t seed,
                        uint32_t use, uint64_t first_item)
{
    MG_CHECK(n >= 0 && n <= a->max_n, "train.augment", "a bug: the batch is larger than the augmentation's buffers",
             "batch %d, room for %d", n, a->max_n);
    const int c = a->shape.c, h = a->shape.h, w = a->shape.w;
    const size_t plane = (size_t)h * w, size = (size_t)c * plane;
    a->n = n;
    for (int i = 0; i < n; i++) {
        draw(a, cfg, i, seed, use, first_item + (uint64_t)i);
        const float *xi = x + (size_t)i * size, *color = a->color + 3 * i;
        for (size_t k = 0; k < size; k++)
            a->scratch[k] = xi[k] + color[0];
        towards_mean(a->scratch, color[1], (int)plane, 1, c, plane);
        towards_mean(a->scratch, color[2], 1, 0, (int)size, 1);
        float *yi = y + (size_t)i * size;
        shift_image(a->scratch, yi, c, h, w, a->shift[2 * i], a->shift[2 * i + 1]);
        cut_out(yi, c, h, w, a->cut + 3 * i);
    }
}

/* backward: the cutout's mask (its own adjoint) on dy, the shift back, then the colour
 * maps, each its own adjoint, in reverse order (brightness adds a constant: identity) */
void mg_augment_backward(const mg_augment *a, const float *dy, float *dx)
{
    const int c = a->shape.c, h = a->shape.h, w = a->shape.w;
    const size_t plane = (size_t)h * w, size = (size_t)c * plane;
    for (int i = 0; i < a->n; i++) {
        memcpy(a->scratch, dy + (size_t)i * size, sizeof(float) * size);
        cut_out(a->scratch, c, h, w, a->cut + 3 * i);
        float *dxi = dx + (size_t)i * size;
        shift_image(a->scratch, dxi, c, h, w, -a->shift[2 * i], -a->shift[2 * i + 1]);
        towards_mean(dxi, a->color[3 * i + 2], 1, 0, (int)size, 1);
        towards_mean(dxi, a->color[3 * i + 1], (int)plane, 1, c, plane);
    }
}
