/* In-memory data sources (see mg_mem_data.h). Each sample: pick a mode uniformly, add
 * isotropic Gaussian noise; all from the sample's own counter-based stream. */
#include "mg_mem_data.h"

#include <math.h>

#include "mg_batch_streams.h"
#include "mg_error.h"

mg_shape mg_mem_data_shape(mg_data_source source, mg_shape want)
{
    return source == MG_DATA_SYNTHETIC ? want : (mg_shape){2, 1, 1};
}

void mg_mem_data_fill(mg_data_source source, float *x, int n, mg_shape shape, uint64_t seed, uint64_t first_item)
{
    const size_t dim = mg_shape_size(shape);
    for (int i = 0; i < n; i++) {
        mg_rng r;
        mg_batch_streams_rng(&r, seed, MG_STREAM_DATA, first_item + (uint64_t)i);
        float *s = x + (size_t)i * dim;
        switch (source) {
        case MG_DATA_RING8: {
            double angle = 2.0 * M_PI * (double)mg_rng_below(&r, 8) / 8.0;
            s[0] = (float)cos(angle) + 0.01f * mg_rng_normal(&r);
            s[1] = (float)sin(angle) + 0.01f * mg_rng_normal(&r);
            break;
        }
        case MG_DATA_GRID25: {
            uint64_t mode = mg_rng_below(&r, 25);
            s[0] = (float)(-4.0 + 2.0 * (double)(mode % 5)) + 0.05f * mg_rng_normal(&r);
            s[1] = (float)(-4.0 + 2.0 * (double)(mode / 5)) + 0.05f * mg_rng_normal(&r);
            break;
        }
        case MG_DATA_SYNTHETIC: {
            float offset = 0.5f * mg_rng_uniform(&r) - 0.25f;
            mg_rng_fill_uniform(&r, s, dim, -0.75f + offset, 0.75f + offset);
            break;
        }
        default:
            MG_FAIL("data", NULL, "source %d is not an in-memory source", (int)source);
        }
    }
}
