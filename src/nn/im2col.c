/* im2col / col2im over a whole batch, the NCHW <-> channel-major reshuffles around a
 * batched sgemm, and the chunking policy of the convolution layers (layouts in mg_im2col.h).
 *
 * These loops are the overhead around the convolution GEMMs, so they are shaped to run at
 * memory speed rather than at the speed of per-element index arithmetic:
 *   - each image plane is first split into stride x stride "phase planes" of the padded
 *     image (see below), which turns a stride-s convolution into s*s stride-1 ones: every
 *     kernel tap is then a unit-stride (oh x ow) block of one phase plane, and the zero
 *     border makes bounds checks unnecessary. For stride 2 the split is a vector
 *     de-interleave of padded rows, and the merge back a vector interleave;
 *   - blocks move a whole vector per row: 8 floats (DCGAN's 7-float rows), or 16 with
 *     AVX-512 for rows of 9..16 (DCGAN's 14), spilling onto the next row, which is written
 *     next (im2col), or masking the lanes past the row (col2im); longer rows go 8 at a time;
 *   - col2im adds each tap's block into the phase planes, then interleaves them into the
 *     image;
 *   - per channel, the phase planes of a group of samples sized for L1 are built together,
 *     then each of the k*k column rows is swept over the group, so col is touched in long
 *     contiguous runs (one per column row and group) rather than k*k short pieces per sample;
 *   - no division, modulo or memcpy call per plane or row: index arithmetic happens once per
 *     call and short copies are inline.
 * So shaped, im2col and col2im cost a small fraction of the GEMM they feed
 * (docs/results/2026-11-23-conv-layers; their share of a training step: docs/benchmarks.md). */
#include "mg_im2col.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

#include "mg_error.h"

mg_conv_geom mg_conv_geom_make(int c, int h, int w, int k, int stride, int pad)
{
    mg_conv_geom g = {.c = c, .h = h, .w = w, .k = k, .stride = stride, .pad = pad};
    /* oh = floor((h + 2p - k) / s) + 1; a negative numerator means no window fits */
    int num_h = h + 2 * pad - k, num_w = w + 2 * pad - k;
    g.oh = num_h < 0 || stride < 1 ? 0 : num_h / stride + 1;
    g.ow = num_w < 0 || stride < 1 ? 0 : num_w / stride + 1;
    return g;
}

/* 8-wide values as GCC/Clang vector types: each load8/store8 is one vector move on any
 * target (the auto-vectoriser does not reliably vectorise these once inlined into the block
 * loops). memcpy makes the accesses unaligned and alias-safe. */
typedef float f8 __attribute__((vector_size(32)));
typedef int32_t i8 __attribute__((vector_size(32)));

static inline f8 load8(const float *p)
{
    f8 v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void store8(float *p, f8 v) { memcpy(p, &v, sizeof v); }

/* Lanes lo <= l < hi set, the others clear, as windows of two constant tables: built with a
 * vector compare, the mask gets folded by the compiler into an AVX-512 masked load, which
 * measured slower than a plain load and an AND (docs/results/2026-11-23-conv-layers). */
static const int32_t set_from_8[16] = {0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1, -1, -1, -1, -1};
static const int32_t set_below_8[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

static inline i8 lanes_between(int lo, int hi)
{
    lo = lo < 0 ? 0 : lo > 8 ? 8 : lo;
    hi = hi < 0 ? 0 : hi > 8 ? 8 : hi;
    i8 from, below; /* from[l] = (l >= lo), below[l] = (l < hi) */
    memcpy(&from, set_from_8 + 8 - lo, sizeof from);
    memcpy(&below, set_below_8 + 8 - hi, sizeof below);
    return from & below;
}

/* src[0..8) with the lanes outside keep set to +0: a bit mask, not a multiply, so whatever
 * src holds there (even NaN) is ignored. */
static inline f8 load8_masked(const float *src, i8 keep) { return (f8)((i8)load8(src) & keep); }

/* dst[0..count) = src[0..count), inline: these copies are 7 to 200 floats long, where a
 * memcpy call (dispatch, size checks) cost more than the rest of im2col's work. Up to 16
 * floats take two overlapping moves, longer runs 8 at a time. The empty asm in the loop
 * stops GCC from turning it back into a memcpy call (loop-distribution idiom recognition). */
typedef float f4 __attribute__((vector_size(16)));

static inline void copy_floats(float *restrict dst, const float *restrict src, size_t count)
{
    if (count >= 16) {
        size_t i = 0;
        for (; i + 8 <= count; i += 8) {
            store8(dst + i, load8(src + i));
            __asm__ volatile("" ::: "memory");
        }
        if (i < count)
            store8(dst + count - 8, load8(src + count - 8));
    } else if (count >= 8) {
        const f8 head = load8(src), tail = load8(src + count - 8);
        store8(dst, head);
        store8(dst + count - 8, tail);
    } else if (count >= 4) {
        f4 head, tail;
        memcpy(&head, src, sizeof head);
        memcpy(&tail, src + count - 4, sizeof tail);
        memcpy(dst, &head, sizeof head);
        memcpy(dst + count - 4, &tail, sizeof tail);
    } else {
        if (count > 0)
            dst[0] = src[0];
        if (count > 1)
            dst[1] = src[1];
        if (count > 2)
            dst[2] = src[2];
    }
}

/* Phase planes. Write the zero-padded image as xp[y][x], y < h + 2p, x < w + 2p. For stride
 * s it splits into s*s phase planes of hq x wq, hq = ceil((h + 2p) / s), wq likewise:
 *   phase[py][px][r][c] = xp[r s + py][c s + px]
 * and the tap (ki, kj) of window (oy, ox) is
 *   xp[oy s + ki][ox s + kj] = phase[ki % s][kj % s][oy + ki / s][ox + kj / s].
 * The highest row read is oh - 1 + (k - 1) / s <= hq - 1 (as (oh - 1) s + k <= h + 2p), and
 * likewise for columns. Only phases below nq = min(s, k) are ever read (with s > k some
 * pixels are in no window), so a sample's "phase set" is nq * nq planes, whose rows are
 * padded to ld, a multiple of 8 floats, so that 8-wide moves tile them exactly.
 * Scratch holds the sets of a group of samples, a padded-rows buffer for stride 2 (h rows
 * of 2 ld), then SLACK floats for moves that run past the last row. */
#define SLACK 16

typedef struct {
    int nq;       /* phases per axis in use: min(stride, k) */
    int hq, wq;   /* phase plane size */
    int ld;       /* row stride: wq rounded up to a multiple of 8 */
    size_t plane; /* hq * ld */
    size_t set;   /* nq * nq * plane: one sample's planes */
} phase_layout;

static phase_layout phases_of(const mg_conv_geom *g)
{
    phase_layout L;
    L.nq = g->stride < g->k ? g->stride : g->k;
    L.hq = (g->h + 2 * g->pad + g->stride - 1) / g->stride;
    L.wq = (g->w + 2 * g->pad + g->stride - 1) / g->stride;
    L.ld = (L.wq + 7) / 8 * 8;
    L.plane = (size_t)L.hq * L.ld;
    L.set = (size_t)L.nq * L.nq * L.plane;
    return L;
}

size_t mg_im2col_scratch_floats(const mg_conv_geom *g, int n)
{
    const phase_layout L = phases_of(g);
    return (size_t)n * L.set + (size_t)g->h * 2 * (size_t)L.ld + SLACK;
}

/* Along one axis of size `size` with padding p: the pixels of phase q are
 * first, first + s, ... (count of them), landing at phase-plane index start, start + 1, ...
 * first = smallest index >= 0 with (first + p) % s == q; start = (first + p) / s. */
typedef struct { int first, start, count; } phase_run;

static phase_run run_of(int size, int pad, int s, int q)
{
    phase_run run;
    run.first = ((q - pad) % s + s) % s;
    run.start = (run.first + pad) / s;
    run.count = run.first < size ? (size - 1 - run.first) / s + 1 : 0;
    return run;
}

/* Per-call constants of the im2col/col2im loops. Runs of the generic-stride split are
 * cached for up to MAX_CACHED phases and recomputed beyond (correct, only slower). */
#define MAX_CACHED 16
typedef struct {
    const mg_conv_geom *g;
    phase_layout L;
    phase_run rows[MAX_CACHED], cols[MAX_CACHED];
    int cached;
    size_t per_sample, row_len;        /* oh ow; n oh ow */
    int group;                         /* samples whose phase sets are built at once */
    float *rows_buffer;                /* h rows of 2 ld floats, for stride 2 */
} sweep;

static inline phase_run row_run(const sweep *S, int q)
{
    return q < S->cached ? S->rows[q] : run_of(S->g->h, S->g->pad, S->g->stride, q);
}
static inline phase_run col_run(const sweep *S, int q)
{
    return q < S->cached ? S->cols[q] : run_of(S->g->w, S->g->pad, S->g->stride, q);
}

/* Phase sets of one group of samples should stay in L1 while the taps sweep over them. */
#define L1_BUDGET_FLOATS 4096

static sweep sweep_of(const mg_conv_geom *g, int n, float *scratch)
{
    sweep S;
    S.g = g;
    S.L = phases_of(g);
    S.cached = S.L.nq <= MAX_CACHED ? S.L.nq : 0;
    for (int q = 0; q < S.cached; q++) {
        S.rows[q] = run_of(g->h, g->pad, g->stride, q);
        S.cols[q] = run_of(g->w, g->pad, g->stride, q);
    }
    S.per_sample = (size_t)g->oh * g->ow;
    S.row_len = (size_t)n * S.per_sample;
    size_t group = L1_BUDGET_FLOATS / S.L.set;
    S.group = group < 1 ? 1 : group > (size_t)n ? n : (int)group;
    S.rows_buffer = scratch + (size_t)S.group * S.L.set;
    return S;
}

/* One image plane (h, w) -> its phase set: xp[r s + py][c s + px] = img[r s + py - p][c s + px - p].
 * Entries that are padding are not written; the caller zeroes the sets once per call. */
static void split_phases(float *restrict set, const float *restrict img, const sweep *S)
{
    const mg_conv_geom *g = S->g;
    const phase_layout *L = &S->L;
    const int s = g->stride, p = g->pad, w = g->w;
    if (s == 1) {
        for (int y = 0; y < g->h; y++)
            copy_floats(set + (size_t)(y + p) * L->ld + p, img + (size_t)y * w, (size_t)w);
        return;
    }
    if (s == 2) {
        /* rows_buffer row y holds the padded row xp[y + p][0 .. 2 ld), whose padding stays zero;
         * the even / odd lanes of each 16 floats go to the px = 0 / px = 1 planes. All rows are
         * copied before any is read back, so the vector loads do not wait on the copies'
         * narrower, misaligned stores (store-to-load forwarding fails on those). */
        const size_t buffer_ld = 2 * (size_t)L->ld;
        for (int y = 0; y < g->h; y++)
            copy_floats(S->rows_buffer + y * buffer_ld + p, img + (size_t)y * w, (size_t)w);
        for (int y = 0; y < g->h; y++) {
            const int py = (y + p) & 1, r = (y + p) >> 1;
            if (py >= L->nq)
                continue;
            const float *row = S->rows_buffer + y * buffer_ld;
            float *even = set + (size_t)(py * L->nq) * L->plane + (size_t)r * L->ld;
            float *odd = even + L->plane;
            for (int c0 = 0; c0 < L->ld; c0 += 8) {
                const f8 a = load8(row + 2 * c0), b = load8(row + 2 * c0 + 8);
                store8(even + c0, __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14));
                if (L->nq > 1)
                    store8(odd + c0, __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15));
            }
        }
        return;
    }
    for (int py = 0; py < L->nq; py++) {
        const phase_run rows = row_run(S, py);
        for (int px = 0; px < L->nq; px++) {
            const phase_run cols = col_run(S, px);
            float *restrict dst = set + (size_t)(py * L->nq + px) * L->plane + (size_t)rows.start * L->ld + cols.start;
            const float *restrict src = img + (size_t)rows.first * w + cols.first;
            for (int j = 0; j < rows.count; j++, dst += L->ld, src += (size_t)s * w)
                for (int i = 0; i < cols.count; i++)
                    dst[i] = src[i * s];
        }
    }
}

/* One image plane (h, w) += its phase set: the adjoint of split_phases. */
static void merge_phases_add(float *restrict img, const float *restrict set, const sweep *S)
{
    const mg_conv_geom *g = S->g;
    const phase_layout *L = &S->L;
    const int s = g->stride, p = g->pad, w = g->w;
    if (s == 1) {
        for (int y = 0; y < g->h; y++) {
            float *restrict out = img + (size_t)y * w;
            const float *restrict in = set + (size_t)(y + p) * L->ld + p;
            for (int x = 0; x < w; x++)
                out[x] += in[x];
        }
        return;
    }
    if (s == 2 && L->nq == 2 && w % 2 == 0 && w >= 8) {
        /* Image pixel x of row y is xp[y + p][x + p]: for x = 2i + t it comes from phase plane
         * px = (p + t) % 2 at column i + (p + t) / 2. So the image row is the interleave of
         * two plane rows, `first` (t = 0) and `second` (t = 1), each read from an offset; an
         * 8-wide chunk of the row interleaves 4 floats of each. Chunks go left to right, and a
         * last partial one is taken at w - 8 (w even keeps it pair-aligned), its lanes already
         * added masked off. */
        const int a0 = p / 2, b0 = (p + 1) / 2; /* column offsets of the t = 0 / t = 1 sources */
        const size_t first_plane = (size_t)(p % 2) * L->plane, second_plane = (size_t)((p + 1) % 2) * L->plane;
        for (int y = 0; y < g->h; y++) {
            const int py = (y + p) & 1, r = (y + p) >> 1;
            const float *row = set + (size_t)(py * 2) * L->plane + (size_t)r * L->ld;
            const float *first = row + first_plane + a0, *second = row + second_plane + b0;
            float *out = img + (size_t)y * w;
            int x = 0;
            for (; x + 8 <= w; x += 8) {
                const f8 a = load8(first + x / 2), b = load8(second + x / 2);
                store8(out + x, load8(out + x) + __builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11));
            }
            if (x < w) {
                const int t0 = w - 8; /* even */
                const f8 a = load8(first + t0 / 2), b = load8(second + t0 / 2);
                const f8 v = __builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11);
                store8(out + t0, load8(out + t0) + (f8)((i8)v & lanes_between(x - t0, 8)));
            }
        }
        return;
    }
    if (s == 2) {
        /* interleave the px = 0 / px = 1 rows back into padded rows, then add their interiors
         * (all rows first, for the same reason as in split_phases) */
        const size_t buffer_ld = 2 * (size_t)L->ld;
        for (int y = 0; y < g->h; y++) {
            const int py = (y + p) & 1, r = (y + p) >> 1;
            if (py >= L->nq)
                continue; /* no window covers these pixels */
            float *row = S->rows_buffer + y * buffer_ld;
            const float *even = set + (size_t)(py * L->nq) * L->plane + (size_t)r * L->ld;
            const float *odd = even + L->plane;
            for (int c0 = 0; c0 < L->ld; c0 += 8) {
                const f8 a = load8(even + c0), b = L->nq > 1 ? load8(odd + c0) : (f8){0};
                store8(row + 2 * c0, __builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11));
                store8(row + 2 * c0 + 8, __builtin_shufflevector(a, b, 4, 12, 5, 13, 6, 14, 7, 15));
            }
        }
        for (int y = 0; y < g->h; y++) {
            if (((y + p) & 1) >= L->nq)
                continue;
            float *restrict out = img + (size_t)y * w;
            const float *restrict in = S->rows_buffer + y * buffer_ld + p;
            for (int x = 0; x < w; x++)
                out[x] += in[x];
        }
        return;
    }
    for (int py = 0; py < L->nq; py++) {
        const phase_run rows = row_run(S, py);
        for (int px = 0; px < L->nq; px++) {
            const phase_run cols = col_run(S, px);
            const float *restrict src =
                set + (size_t)(py * L->nq + px) * L->plane + (size_t)rows.start * L->ld + cols.start;
            float *restrict dst = img + (size_t)rows.first * w + cols.first;
            for (int j = 0; j < rows.count; j++, src += L->ld, dst += (size_t)s * w)
                for (int i = 0; i < cols.count; i++)
                    dst[i * s] += src[i];
        }
    }
}

/* Short rows. A column row of n samples is n*oh rows of ow floats, contiguous. When ow is
 * below the vector width V, each row moves a whole vector (ow real floats, then V - ow past
 * the row end), which is safe while the vector ends inside the column row: im2col's spills
 * land on rows written next, col2im's over-reads are masked off. `room` is the number of
 * floats from the group's first block to the end of its column row; the rows whose vectors
 * would pass it (the last one or two of the last sample) move exactly.
 * V is 8, or 16 with AVX-512 for rows of 9..16 floats (the 14 of DCGAN's 28x28 layers).
 * (Moving two 7-float rows per 16-wide vector with a permute measured no faster than one
 * 8-wide move per row: unaligned 64-byte stores cross cache lines.) */
static inline int vector_rows(int oh, int ow, size_t room, int width)
{
    if ((size_t)oh * ow + (size_t)width <= room)
        return oh;
    if (room < (size_t)width)
        return 0;
    const size_t rows = (room - (size_t)width) / (size_t)ow + 1; /* oy ow + width <= room */
    return rows < (size_t)oh ? (int)rows : oh;
}

#ifdef __AVX512F__
#define WIDE_ROWS 16 /* rows of 9..16 floats move as one 16-wide vector */
#else
#define WIDE_ROWS 8 /* no such rows: ow <= 8 is the only single-vector case */
#endif

/* One tap over a group of samples: dst (samples * oh rows of ow, contiguous) <- the rows of
 * stride ld at src + sample * set (a phase plane). Reads run at most 15 floats past a plane
 * row: into the next row, the next plane or set, the row buffer or the slack. */
static void copy_tap(float *restrict dst, const float *restrict src, int samples, size_t set, int oh, int ow, int ld,
                     size_t room)
{
    const size_t block = (size_t)oh * ow;
    const int width = ow <= 8 ? 8 : 16; /* of the whole-row moves, when there are any */
    if (ow > WIDE_ROWS) {
        for (int sample = 0; sample < samples; sample++, src += set) {
            const float *row = src;
            for (int oy = 0; oy < oh; oy++, dst += ow, row += ld)
                copy_floats(dst, row, (size_t)ow);
        }
        return;
    }
    for (int sample = 0; sample < samples; sample++, src += set, room -= block) {
        const float *row = src;
        const int rows = vector_rows(oh, ow, room, width);
        int oy = 0;
        if (width == 8)
            for (; oy < rows; oy++, dst += ow, row += ld)
                store8(dst, load8(row));
#ifdef __AVX512F__
        else
            for (; oy < rows; oy++, dst += ow, row += ld)
                _mm512_storeu_ps(dst, _mm512_loadu_ps(row));
#endif
        for (; oy < oh; oy++, dst += ow, row += ld) /* the rest, exactly */
            copy_floats(dst, row, (size_t)ow);
    }
}

/* (n, c, h, w) -> (c k k, n oh ow) */
void mg_im2col(float *restrict col, const float *restrict img, int n, const mg_conv_geom *g,
               float *restrict scratch)
{
    const sweep S = sweep_of(g, n, scratch);
    const int k = g->k, s = g->stride, oh = g->oh, ow = g->ow, nq = S.L.nq;
    const size_t in_plane = (size_t)g->h * g->w;
    /* padding entries are never written below, so they stay zero for the whole call */
    memset(scratch, 0, mg_im2col_scratch_floats(g, S.group) * sizeof(float));
    for (int ci = 0; ci < g->c; ci++) {
        float *rows = col + (size_t)ci * k * k * S.row_len; /* column row (ci, 0, 0) */
        for (int first = 0; first < n; first += S.group) {
            const int count = first + S.group < n ? S.group : n - first;
            for (int i = 0; i < count; i++)
                split_phases(scratch + (size_t)i * S.L.set, img + ((size_t)(first + i) * g->c + ci) * in_plane, &S);
            /* tap (ki, kj) reads phase (ki % s, kj % s) at offset (ki / s, kj / s), counted up */
            float *dst = rows + (size_t)first * S.per_sample;
            for (int ki = 0, py = 0, dy = 0; ki < k; ki++) {
                for (int kj = 0, px = 0, dx = 0; kj < k; kj++, dst += S.row_len) {
                    const float *src = scratch + (size_t)(py * nq + px) * S.L.plane + (size_t)dy * S.L.ld + (size_t)dx;
                    copy_tap(dst, src, count, S.L.set, oh, ow, S.L.ld, S.row_len - (size_t)first * S.per_sample);
                    if (++px == s)
                        px = 0, dx++;
                }
                if (++py == s)
                    py = 0, dy++;
            }
        }
    }
}

/* The adjoint of copy_tap: the rows of stride ld at acc + sample * set += src (samples * oh
 * rows of ow, contiguous). Whole-row vectors read past a row of src only within `room`
 * (lanes past the row are masked off) and add +0 past a row of acc, into its padding up to
 * ld, the next row or the slack. */
static void add_tap(float *restrict acc, const float *restrict src, int samples, size_t set, int oh, int ow, int ld,
                    size_t room)
{
    const size_t block = (size_t)oh * ow;
    if (ow < 8) {
        const i8 row_lanes = lanes_between(0, ow);
        for (int sample = 0; sample < samples; sample++, acc += set, room -= block) {
            float *row = acc;
            const int rows = vector_rows(oh, ow, room, 8);
            int oy = 0;
            for (; oy < rows; oy++, src += ow, row += ld)
                store8(row, load8(row) + load8_masked(src, row_lanes));
            for (; oy < oh; oy++, src += ow, row += ld) /* the rest, exactly */
                for (int x = 0; x < ow; x++)
                    row[x] += src[x];
        }
        return;
    }
#ifdef __AVX512F__
    if (ow <= WIDE_ROWS) {
        const __mmask16 wide_lanes = (__mmask16)(ow >= 16 ? 0xFFFFu : (1u << ow) - 1);
        const i8 tail_lanes = lanes_between(8 - ow % 8, 8);
        for (int sample = 0; sample < samples; sample++, acc += set, room -= block) {
            float *row = acc;
            const int rows = vector_rows(oh, ow, room, 16);
            int oy = 0;
            for (; oy < rows; oy++, src += ow, row += ld)
                _mm512_storeu_ps(row, _mm512_add_ps(_mm512_loadu_ps(row),
                                                    _mm512_maskz_mov_ps(wide_lanes, _mm512_loadu_ps(src))));
            for (; oy < oh; oy++, src += ow, row += ld) { /* the rest, exactly: two chunks */
                store8(row, load8(row) + load8(src));
                store8(row + ow - 8, load8(row + ow - 8) + load8_masked(src + ow - 8, tail_lanes));
            }
        }
        return;
    }
#endif
    /* rows of 8 or more: 8-wide chunks, the last one shifted back to end at ow with the
     * overlap masked off (it keeps the lanes [8 - ow % 8, 8) the chunks before it missed) */
    const i8 tail_lanes = lanes_between(8 - ow % 8, 8);
    for (int sample = 0; sample < samples; sample++, acc += set) {
        float *row = acc;
        for (int oy = 0; oy < oh; oy++, src += ow, row += ld) {
            int x = 0;
            for (; x + 8 <= ow; x += 8)
                store8(row + x, load8(row + x) + load8(src + x));
            if (ow % 8)
                store8(row + ow - 8, load8(row + ow - 8) + load8_masked(src + ow - 8, tail_lanes));
        }
    }
}

/* img (n, c, h, w) += adjoint of im2col applied to col (c k k, n oh ow) */
void mg_col2im_add(float *restrict img, const float *restrict col, int n, const mg_conv_geom *g,
                   float *restrict scratch)
{
    const sweep S = sweep_of(g, n, scratch);
    const int k = g->k, s = g->stride, oh = g->oh, ow = g->ow, nq = S.L.nq;
    const size_t in_plane = (size_t)g->h * g->w;
    for (int ci = 0; ci < g->c; ci++) {
        const float *rows = col + (size_t)ci * k * k * S.row_len;
        for (int first = 0; first < n; first += S.group) {
            const int count = first + S.group < n ? S.group : n - first;
            /* taps add into every phase entry, padding included: start from zero */
            memset(scratch, 0, sizeof(float) * (size_t)count * S.L.set);
            const float *src = rows + (size_t)first * S.per_sample;
            for (int ki = 0, py = 0, dy = 0; ki < k; ki++) {
                for (int kj = 0, px = 0, dx = 0; kj < k; kj++, src += S.row_len) {
                    float *acc = scratch + (size_t)(py * nq + px) * S.L.plane + (size_t)dy * S.L.ld + (size_t)dx;
                    add_tap(acc, src, count, S.L.set, oh, ow, S.L.ld, S.row_len - (size_t)first * S.per_sample);
                    if (++px == s)
                        px = 0, dx++;
                }
                if (++py == s)
                    py = 0, dy++;
            }
            for (int i = 0; i < count; i++)
                merge_phases_add(img + ((size_t)(first + i) * g->c + ci) * in_plane, scratch + (size_t)i * S.L.set, &S);
        }
    }
}

/* (n, c, p) -> (c, n p) */
void mg_nchw_to_cm(float *restrict cm, const float *restrict x, int n, int c, size_t p)
{
    const size_t row_len = (size_t)n * p;
    for (int sample = 0; sample < n; sample++)
        for (int ci = 0; ci < c; ci++)
            copy_floats(cm + ci * row_len + sample * p, x + ((size_t)sample * c + ci) * p, p);
}

/* (c, n p) -> (n, c, p), plus bias[c] */
void mg_cm_to_nchw(float *restrict y, const float *restrict cm, int n, int c, size_t p, const float *restrict bias)
{
    const size_t row_len = (size_t)n * p;
    for (int sample = 0; sample < n; sample++)
        for (int ci = 0; ci < c; ci++) {
            float *restrict out = y + ((size_t)sample * c + ci) * p;
            const float *restrict in = cm + ci * row_len + sample * p;
            if (bias) {
                const float b = bias[ci];
                for (size_t j = 0; j < p; j++)
                    out[j] = in[j] + b;
            } else {
                copy_floats(out, in, p);
            }
        }
}

/* y (n, c, p) = bias[c] (or 0) */
void mg_fill_channels(float *restrict y, const float *restrict bias, int n, int c, size_t p)
{
    if (!bias) {
        memset(y, 0, sizeof(float) * (size_t)n * c * p);
        return;
    }
    for (int sample = 0; sample < n; sample++)
        for (int ci = 0; ci < c; ci++) {
            float *restrict out = y + ((size_t)sample * c + ci) * p;
            const float b = bias[ci];
            for (size_t j = 0; j < p; j++)
                out[j] = b;
        }
}

/* db[c] += sum_{sample, j} dy[sample][c][j]. Each plane is summed in 8 float lanes (short
 * sums, small rounding error), planes are added in double. */
void mg_channel_sums_add(float *restrict db, const float *restrict dy, int n, int c, size_t p)
{
    for (int ci = 0; ci < c; ci++) {
        double total = 0;
        for (int sample = 0; sample < n; sample++) {
            const float *restrict in = dy + ((size_t)sample * c + ci) * p;
            f8 lanes = {0};
            size_t j = 0;
            for (; j + 8 <= p; j += 8)
                lanes += load8(in + j);
            double plane = 0;
            for (; j < p; j++)
                plane += in[j];
            for (int l = 0; l < 8; l++)
                plane += lanes[l];
            total += plane;
        }
        db[ci] += (float)total;
    }
}

#define PER_SAMPLE_MIN_COLUMNS 64
#define CHUNK_COL_FLOATS ((size_t)1 << 19) /* 2 MB of column matrix per chunk */
static size_t chunk_col_floats = CHUNK_COL_FLOATS;

void mg_conv_set_chunk_floats(size_t floats) { chunk_col_floats = floats ? floats : CHUNK_COL_FLOATS; }

bool mg_conv_in_place(size_t weights, size_t operand, size_t P)
{
    return P >= PER_SAMPLE_MIN_COLUMNS && weights <= operand;
}

int mg_conv_chunk(size_t col_floats, int n)
{
    if (n <= 1)
        return 1;
    size_t most = chunk_col_floats / (col_floats ? col_floats : 1);
    if (most < 1)
        most = 1;
    const size_t chunks = ((size_t)n + most - 1) / most;
    return (int)(((size_t)n + chunks - 1) / chunks);
}

mg_conv_work mg_conv_work_carve(float *work, const mg_conv_geom *g, int cm_channels, int n)
{
    const size_t P = mg_conv_geom_cols(g), K = mg_conv_geom_rows(g);
    mg_conv_work w;
    w.chunk = mg_conv_chunk(K * P, n);
    const int m = w.chunk;
    w.col = work;
    w.cm = w.col + (size_t)m * K * P;
    w.scratch = w.cm + (size_t)m * cm_channels * P;
    return w;
}

size_t mg_conv_work_floats(const mg_conv_geom *g, int cm_channels)
{
    const size_t P = mg_conv_geom_cols(g), K = mg_conv_geom_rows(g);
    return K * P + (size_t)cm_channels * P + mg_im2col_scratch_floats(g, 1);
}

void mg_conv_check_params(const char *layer, const char *hint, int cout, int kernel, int stride, int pad)
{
    MG_CHECK(cout >= 1, layer, hint, "output channels %d must be at least 1", cout);
    MG_CHECK(kernel >= 1, layer, hint, "kernel %d must be at least 1", kernel);
    MG_CHECK(stride >= 1, layer, hint, "stride %d must be at least 1", stride);
    MG_CHECK(pad >= 0 && pad < kernel, layer, hint, "padding %d must be in [0, kernel %d)", pad, kernel);
}
