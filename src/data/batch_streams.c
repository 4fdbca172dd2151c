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
