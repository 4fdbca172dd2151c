/* Per-item random streams (see mg_batch_streams.h): a SplitMix64 finaliser turns
 * (seed, item) into a Philox key; the purpose selects the Philox stream. */
#include "mg_batch_streams.h"

static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

void mg_batch_streams_rng(mg_rng *r, uint64_t seed, uint32_t purpose, uint64_t item)
{
    mg_rng_init(r, mix64(seed ^ mix64(item)), mg_rng_stream_id(purpose, 0));
}

void mg_batch_streams_normals(float *z, int n, size_t dim, uint64_t seed, uint32_t purpose, uint64_t first_item)
{
    for (int i = 0; i < n; i++) {
        mg_rng r;
        mg_batch_streams_rng(&r, seed, purpose, first_item + (uint64_t)i);
        mg_rng_fill_normal(&r, z + (size_t)i * dim, dim, 0.0f, 1.0f);
    }
}

/* One class: below(K), or the first k with u < cum[k] for u = below(total). */
static int draw_class(mg_rng *r, int K, const uint64_t *cum)
{
    if (!cum)
        return (int)mg_rng_below(r, (uint64_t)K);
    const uint64_t u = mg_rng_below(r, cum[K - 1]);
    int lo = 0, hi = K - 1; /* cum is non-decreasing: binary search */
    while (lo < hi) {
        const int mid = (lo + hi) / 2;
        if (u < cum[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

void mg_batch_streams_labels(int *y, int n, int K, const uint64_t *cum, uint64_t seed, uint32_t purpose,
                             uint64_t first_item)
{
    for (int i = 0; i < n; i++) {
        mg_rng r;
        mg_batch_streams_rng(&r, seed, purpose, first_item + (uint64_t)i);
        y[i] = draw_class(&r, K, cum);
    }
}

void mg_batch_streams_labels_from(mg_rng *r, int *y, int n, int K, const uint64_t *cum)
{
    for (int i = 0; i < n; i++)
        y[i] = draw_class(r, K, cum);
}
