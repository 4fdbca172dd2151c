/* Plain <-> nChw16c moves (see mg_channel_blocks.h).
 *
 * Each move takes one sample's 16-channel block 16 positions at a time: sixteen channel
 * rows of 16 floats become sixteen position rows of 16 channels (or back) through one
 * in-register 16 x 16 transpose. The last position group of a plane is masked, and the
 * channels past c of the last block are zeros (packing) or skipped (unpacking). */
#include "mg_channel_blocks.h"

#include <stdint.h>

#include "mg_error.h"

#ifdef __AVX512F__
#include <immintrin.h>

/* rows r[0..16) of 16 floats -> columns: r[i][j] becomes r[j][i] */
static inline void transpose16(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) { /* pairs of rows interleaved */
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) { /* then 64-bit pairs of those */
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 8; i++) { /* then 128-bit lanes, rows four apart */
        const int a = (i / 4) * 8 + i % 4, b = a + 4;
        t[a] = _mm512_shuffle_f32x4(r[a], r[b], 0x88);
        t[b] = _mm512_shuffle_f32x4(r[a], r[b], 0xDD);
    }
    for (int i = 0; i < 8; i++) { /* and rows eight apart */
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
    }
}

static inline __mmask16 first_lanes(size_t m) { return (__mmask16)((1u << m) - 1u); }

/* r = the 16 x m block of channels [0, cc) at positions [p, p + m): rows are channels */
static inline void load_channels(__m512 r[16], const float *s, size_t sc, int cc, size_t p, size_t m)
{
    const __mmask16 k = first_lanes(m);
    for (int c = 0; c < 16; c++)
        r[c] = c >= cc ? _mm512_setzero_ps()
               : m == 16 ? _mm512_loadu_ps(s + (size_t)c * sc + p)
                         : _mm512_maskz_loadu_ps(k, s + (size_t)c * sc + p);
}
#endif

#if defined(__AVX512F__) && defined(__AVX512BF16__)
#define HAVE_BF16_PACK 1
#else
#define HAVE_BF16_PACK 0
#endif

bool mg_channel_blocks_available(bool bf16)
{
#ifdef __AVX512F__
    return !bf16 || HAVE_BF16_PACK;
#else
    (void)bf16;
    return false;
#endif
}

void mg_channel_blocks_pack(void *dst, bool bf16, const float *src, int n, int c, size_t hw, size_t sn, size_t sc)
{
    MG_CHECK(mg_channel_blocks_available(bf16), "channel blocks", "this is a bug in the caller",
             "not built for this target");
#ifdef __AVX512F__
    const int blocks = (c + 15) / 16;
    for (int s = 0; s < n; s++)
        for (int b = 0; b < blocks; b++) {
            const size_t at = ((size_t)s * blocks + b) * hw * 16;
            const float *in = src + (size_t)s * sn + (size_t)b * 16 * sc;
            const int cc = c - b * 16 < 16 ? c - b * 16 : 16;
            for (size_t p = 0; p < hw; p += 16) {
                const size_t m = hw - p < 16 ? hw - p : 16;
                __m512 r[16];
                load_channels(r, in, sc, cc, p, m);
                transpose16(r); /* r[i]: the block's 16 channels at position p + i */
                if (!bf16) {
                    float *out = (float *)dst + at + p * 16;
                    for (size_t i = 0; i < m; i++)
                        _mm512_storeu_ps(out + i * 16, r[i]);
                    continue;
                }
#if HAVE_BF16_PACK
                uint16_t *out = (uint16_t *)dst + at + p * 16;
                size_t i = 0;
                for (; i + 1 < m; i += 2) /* two positions per conversion: r[i] low, r[i + 1] high */
                    _mm512_storeu_si512(out + i * 16, (__m512i)_mm512_cvtne2ps_pbh(r[i + 1], r[i]));
                if (i < m)
                    _mm256_storeu_si256((__m256i *)(out + i * 16), (__m256i)_mm512_cvtneps_pbh(r[i]));
#endif
            }
        }
#else
    (void)dst, (void)src, (void)n, (void)c, (void)hw, (void)sn, (void)sc;
#endif
}

void mg_channel_blocks_unpack(float *dst, size_t sn, size_t sc, const float *src, int n, int c, size_t hw)
{
    MG_CHECK(mg_channel_blocks_available(false), "channel blocks", "this is a bug in the caller",
             "not built for this target");
#ifdef __AVX512F__
    const int blocks = (c + 15) / 16;
    for (int s = 0; s < n; s++)
        for (int b = 0; b < blocks; b++) {
            const float *in = src + ((size_t)s * blocks + b) * hw * 16;
            float *out = dst + (size_t)s * sn + (size_t)b * 16 * sc;
            const int cc = c - b * 16 < 16 ? c - b * 16 : 16;
            for (size_t p = 0; p < hw; p += 16) {
                const size_t m = hw - p < 16 ? hw - p : 16;
                __m512 r[16];
                for (size_t i = 0; i < 16; i++)
                    r[i] = i < m ? _mm512_loadu_ps(in + (p + i) * 16) : _mm512_setzero_ps();
                transpose16(r); /* r[ch]: channel ch at positions p .. p + 15 */
                if (m == 16) /* a plain store where the whole row is ours: cheaper than a masked one */
                    for (int ch = 0; ch < cc; ch++)
                        _mm512_storeu_ps(out + (size_t)ch * sc + p, r[ch]);
                else
                    for (int ch = 0; ch < cc; ch++)
                        _mm512_mask_storeu_ps(out + (size_t)ch * sc + p, first_lanes(m), r[ch]);
            }
        }
#else
    (void)dst, (void)sn, (void)sc, (void)src, (void)n, (void)c, (void)hw;
#endif
}

#ifdef __AVX512F__
/* rows[j][i][l] = src element (a = ab 16 + l, b = bb 16 + j) at position p + i, for i < m;
 * zero past a and b */
static void weight_block_rows(float rows[16][16][16], const float *src, size_t sa, size_t sb, int ab, int bb, int ac,
                              int bc, size_t p, size_t m)
{
    for (int j = 0; j < 16; j++) {
        __m512 r[16];
        if (j < bc) {
            load_channels(r, src + (size_t)(ab * 16) * sa + (size_t)(bb * 16 + j) * sb, sa, ac, p, m);
            transpose16(r); /* r[i]: the 16 a at position p + i */
        } else
            for (int i = 0; i < 16; i++)
                r[i] = _mm512_setzero_ps();
        for (size_t i = 0; i < m; i++)
            _mm512_storeu_ps(rows[j][i], r[i]);
    }
}
#endif

void mg_channel_blocks_pack_weights(void *dst, bool bf16, const float *src, int a, int b, size_t hw, size_t sa,
                                    size_t sb)
{
    MG_CHECK(mg_channel_blocks_available(bf16), "channel blocks", "this is a bug in the caller",
             "not built for this target");
#ifdef __AVX512F__
    /* after one conversion of two 16-float rows lo, hi (bf16): lo's 16 values then hi's;
     * this index interleaves them, lo[0] hi[0] lo[1] hi[1] ... */
    uint16_t order[32];
    for (int i = 0; i < 16; i++)
        order[2 * i] = (uint16_t)i, order[2 * i + 1] = (uint16_t)(16 + i);
    const __m512i interleave = _mm512_loadu_si512(order);
    (void)interleave; /* unused where the build has no bf16 conversion */
    const int a_blocks = (a + 15) / 16, b_blocks = (b + 15) / 16;
    float rows[16][16][16]; /* [b in block][position][a in block] for one group of positions */
    for (int ab = 0; ab < a_blocks; ab++)
        for (int bb = 0; bb < b_blocks; bb++) {
            const int ac = a - ab * 16 < 16 ? a - ab * 16 : 16, bc = b - bb * 16 < 16 ? b - bb * 16 : 16;
            const size_t block = ((size_t)ab * b_blocks + bb) * hw * 256;
            for (size_t p = 0; p < hw; p += 16) {
                const size_t m = hw - p < 16 ? hw - p : 16;
                weight_block_rows(rows, src, sa, sb, ab, bb, ac, bc, p, m);
                for (size_t i = 0; i < m; i++) {
                    if (!bf16) { /* ABcd16b16a: [b % 16][a % 16] */
                        float *out = (float *)dst + block + (p + i) * 256;
                        for (int j = 0; j < 16; j++)
                            _mm512_storeu_ps(out + j * 16, _mm512_loadu_ps(rows[j][i]));
                        continue;
                    }
#if HAVE_BF16_PACK
                    uint16_t *out = (uint16_t *)dst + block + (p + i) * 256;
                    for (int j = 0; j < 8; j++) { /* ABcd8b16a2b: [b % 16 / 2][a % 16][b % 2] */
                        const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(rows[2 * j + 1][i]),
                                                                          _mm512_loadu_ps(rows[2 * j][i]));
                        _mm512_storeu_si512(out + j * 32, _mm512_permutexvar_epi16(interleave, both));
                    }
#endif
                }
            }
        }
#else
    (void)dst, (void)bf16, (void)src, (void)a, (void)b, (void)hw, (void)sa, (void)sb;
#endif
}
