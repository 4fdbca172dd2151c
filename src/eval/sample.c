/* Sampling a trained generator (see mg_sample.h): rebuilds G from a checkpoint and hands
 * its outputs to the samples file's owner (mg_eval_files.h). */
#include "mg_sample.h"

#include <stdio.h>
#include <string.h>

#include "mg_checkpoint.h"
#include "mg_error.h"
#include "mg_eval_files.h"
#include "mg_net.h"

void mg_sample_noise(float *z, int n, size_t dim, uint64_t seed)
{
    mg_rng rng;
    mg_rng_init(&rng, seed, mg_rng_stream_id(MG_STREAM_EVAL, 0));
    mg_rng_fill_normal(&rng, z, (size_t)n * dim, 0.0f, 1.0f);
}

void mg_sample_eval(mg_net *G, const float *z, int n, float *out)
{
    const size_t in_size = mg_shape_size(G->in), out_size = mg_shape_size(G->out);
    for (int done = 0; done < n; done += G->max_batch) {
        int m = n - done < G->max_batch ? n - done : G->max_batch;
        const float *y = mg_net_forward(G, z + (size_t)done * in_size, m, MG_EVAL);
        memcpy(out + (size_t)done * out_size, y, (size_t)m * out_size * sizeof(float));
    }
}

float *mg_sample_generate(const char *checkpoint, int n, uint64_t seed, mg_shape *shape)
{
    return mg_sample_generate_from(checkpoint, "G", n, seed, shape);
}

float *mg_sample_generate_from(const char *checkpoint, const char *which, int n, uint64_t seed, mg_shape *shape)
{
    MG_CHECK(n > 0, "sample", "ask for at least one sample", "n = %d", n);
    long step = 0;
    char *text = mg_ckpt_read_config(checkpoint, &step);
    char name[1100];
    snprintf(name, sizeof name, "%s:/meta/config", checkpoint);
    mg_cfg *cfg = mg_cfg_parse(text, name);
    const int chunk = n < 256 ? n : 256;
    mg_net G;
    mg_net_from_cfg(&G, "G", mg_cfg_require(mg_cfg_root(cfg), "generator"), (mg_shape){0, 0, 0}, chunk);
    mg_ckpt_read_net(checkpoint, which, &G);
    *shape = G.out;
    float *samples = mg_alloc_floats((size_t)n * mg_shape_size(G.out), "samples");
    float *z = mg_alloc_floats((size_t)n * mg_shape_size(G.in), "sample noise");
    mg_sample_noise(z, n, mg_shape_size(G.in), seed);
    mg_sample_eval(&G, z, n, samples);
    mg_free(z);
    mg_net_free(&G);
    mg_cfg_free(cfg);
    mg_free(text);
    return samples;
}

void mg_sample_write_h5(const char *path, const float *samples, int n, mg_shape shape, const char *checkpoint)
{
    mg_samples_file_write(path, samples, n, shape.c, shape.h, shape.w, checkpoint);
}
