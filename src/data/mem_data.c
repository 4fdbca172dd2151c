/* In-memory data sources (see mg_mem_data.h). Each sample: pick a mode uniformly, add
 * isotropic Gaussian noise; all from the sample's own counter-based stream. */
#include "mg_mem_data.h"

#include "mg_batch_streams.h"
#include "mg_convert.h"
#include "mg_error.h"

mg_shape mg_mem_data_shape(mg_data_source source, mg_shape want)
{
    return source == MG_DATA_SYNTHETIC ? want : (mg_shape){2, 1, 1};
}

int mg_mem_data_classes(mg_data_source source)
{
    return source == MG_DATA_RING8 ? 8 : source == MG_DATA_GRID25 ? 25 : 0;
}

void mg_mem_data_fill(mg_data_source source, float *x, int n, mg_shape shape, uint64_t seed, uint64_t first_item)
{
    mg_mem_data_fill_labelled(source, x, NULL, n, shape, seed, first_item);
}

void mg_mem_data_fill_labelled(mg_data_source source, float *x, int *labels, int n, mg_shape shape, uint64_t seed,
                               uint64_t first_item)
{
    const size_t dim = mg_shape_size(shape);
    mg_mixture_info mix = {0};
    if (source == MG_DATA_RING8 || source == MG_DATA_GRID25)
        mg_mixture_params(&mix, source == MG_DATA_RING8 ? MG_MIXTURE_RING : MG_MIXTURE_GRID, 0);
    const float sigma = (float)mix.sigma;
    for (int i = 0; i < n; i++) {
        mg_rng r;
        mg_batch_streams_rng(&r, seed, MG_STREAM_DATA, first_item + (uint64_t)i);
        float *s = x + (size_t)i * dim;
        switch (source) {
        case MG_DATA_RING8:
        case MG_DATA_GRID25: {
            uint64_t mode = mg_rng_below(&r, (uint64_t)mix.n_modes);
            /* The grid's draw k is the mode at column k % 5, row k / 5, which mg_mixture_params
             * numbers 5 * (k % 5) + k / 5; kept so that runs reproduce sample for sample. */
            if (source == MG_DATA_GRID25)
                mode = mode % 5 * 5 + mode / 5;
            s[0] = (float)mix.means[mode][0] + sigma * mg_rng_normal(&r);
            s[1] = (float)mix.means[mode][1] + sigma * mg_rng_normal(&r);
            if (labels)
                labels[i] = (int)mode;
            break;
        }
        case MG_DATA_SYNTHETIC: {
            float offset = 0.5f * mg_rng_uniform(&r) - 0.25f;
            mg_rng_fill_uniform(&r, s, dim, -0.75f + offset, 0.75f + offset);
            if (labels)
                labels[i] = -1;
            break;
        }
        default:
            MG_FAIL("data", NULL, "source %d is not an in-memory source", (int)source);
        }
    }
}
