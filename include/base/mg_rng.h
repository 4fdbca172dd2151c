/* Reproducible random numbers: Philox4x32-10, a counter-based generator.
 *
 * A stream is (seed, stream id); distinct ids give independent sequences, so every
 * purpose (initialisation, noise, data order, evaluation) and every rank draws from its
 * own stream and a run's numbers do not depend on how many draws another purpose made.
 * The whole state is this plain struct: copy it to save, copy it back to restore. */
#ifndef MG_RNG_H
#define MG_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t key[2];    /* the seed */
    uint32_t ctr[4];    /* ctr[0..1]: block counter; ctr[2..3]: stream id */
    uint32_t block[4];  /* output of the current block */
    uint32_t used;      /* words of block already handed out (4 = none left) */
    uint32_t has_spare; /* Box-Muller makes normals in pairs; the spare waits here */
    float spare;
} mg_rng;

/* Purposes, combined with a rank into a stream id by mg_rng_stream_id. */
enum {
    MG_STREAM_INIT = 1,
    MG_STREAM_NOISE = 2,
    MG_STREAM_DATA = 3,
    MG_STREAM_EVAL = 4,
    MG_STREAM_TEST = 5,
    MG_STREAM_LABELS = 6, /* class labels drawn for G (conditional GANs) */
    MG_STREAM_PENALTY = 16, /* WGAN-GP's interpolation weights (mg_penalty.h) */
    MG_STREAM_AUGMENT = 17, /* DiffAugment's per-sample draws (mg_augment.h) */
    MG_STREAM_SHAPES = 18,  /* the shapes benchmark's training items (mg_shapes.h) */
    MG_STREAM_SHAPES_TEST = 19, /* its test items */
};

static inline uint64_t mg_rng_stream_id(uint32_t purpose, uint32_t rank)
{
    return ((uint64_t)purpose << 32) | rank;
}

void mg_rng_init(mg_rng *r, uint64_t seed, uint64_t stream);
uint32_t mg_rng_u32(mg_rng *r);
uint64_t mg_rng_u64(mg_rng *r);
/* Uniform in [0, 1) with 24 random bits. */
float mg_rng_uniform(mg_rng *r);
/* Uniform integer in [0, n), without modulo bias; n > 0. */
uint64_t mg_rng_below(mg_rng *r, uint64_t n);
/* Standard normal (Box-Muller, computed in double). */
float mg_rng_normal(mg_rng *r);
void mg_rng_fill_uniform(mg_rng *r, float *x, size_t n, float lo, float hi);
void mg_rng_fill_normal(mg_rng *r, float *x, size_t n, float mean, float std);
/* Fisher-Yates shuffle of idx[0..n). */
void mg_rng_shuffle(mg_rng *r, uint64_t *idx, size_t n);

#endif
