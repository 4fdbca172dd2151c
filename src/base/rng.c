/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11).
 * Chosen over a sequential generator because streams are free: a stream id in the
 * high counter words gives every rank and purpose its own sequence with no jump-ahead. */
#include "mg_rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static void philox_block(const uint32_t key_in[2], const uint32_t ctr_in[4], uint32_t out[4])
{
    uint32_t k0 = key_in[0], k1 = key_in[1];
    uint32_t c0 = ctr_in[0], c1 = ctr_in[1], c2 = ctr_in[2], c3 = ctr_in[3];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t)p0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

void mg_rng_init(mg_rng *r, uint64_t seed, uint64_t stream)
{
    r->key[0] = (uint32_t)seed;
    r->key[1] = (uint32_t)(seed >> 32);
    r->ctr[0] = 0;
    r->ctr[1] = 0;
    r->ctr[2] = (uint32_t)stream;
    r->ctr[3] = (uint32_t)(stream >> 32);
    r->used = 4;
    r->has_spare = 0;
    r->spare = 0.0f;
    r->block[0] = r->block[1] = r->block[2] = r->block[3] = 0;
}

uint32_t mg_rng_u32(mg_rng *r)
{
    if (r->used == 4) {
        philox_block(r->key, r->ctr, r->block);
        if (++r->ctr[0] == 0)
            ++r->ctr[1];
        r->used = 0;
    }
    return r->block[r->used++];
}

uint64_t mg_rng_u64(mg_rng *r)
{
    uint64_t hi = mg_rng_u32(r);
    return (hi << 32) | mg_rng_u32(r);
}

float mg_rng_uniform(mg_rng *r) { return (float)(mg_rng_u32(r) >> 8) * (1.0f / 16777216.0f); }

uint64_t mg_rng_below(mg_rng *r, uint64_t n)
{
    /* Rejection from the top of the 64-bit range removes modulo bias. */
    uint64_t limit = UINT64_MAX - (UINT64_MAX % n);
    uint64_t v;
    do
        v = mg_rng_u64(r);
    while (v >= limit);
    return v % n;
}

float mg_rng_normal(mg_rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    /* u1 in (0, 1] so that log(u1) is finite. */
    double u1 = ((double)(mg_rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    double u2 = (double)(mg_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    double radius = sqrt(-2.0 * log(u1));
    double angle = 6.283185307179586 * u2;
    r->spare = (float)(radius * sin(angle));
    r->has_spare = 1;
    return (float)(radius * cos(angle));
}

void mg_rng_fill_uniform(mg_rng *r, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * mg_rng_uniform(r);
}

void mg_rng_fill_normal(mg_rng *r, float *x, size_t n, float mean, float std)
{
    for (size_t i = 0; i < n; i++)
        x[i] = mean + std * mg_rng_normal(r);
}

void mg_rng_shuffle(mg_rng *r, uint64_t *idx, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)mg_rng_below(r, i);
        uint64_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}
