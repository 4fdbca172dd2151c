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

void mg_sample_eval(mg_net *G, const float *z, const int *labels, int n, float *out)
{
    const size_t in_size = mg_shape_size(G->in), out_size = mg_shape_size(G->out);
    for (int done = 0; done < n; done += G->max_batch) {
        int m = n - done < G->max_batch ? n - done : G->max_batch;
        if (labels)
            mg_net_set_labels(G, labels + done);
        const float *y = mg_net_forward(G, z + (size_t)done * in_size, m, MG_EVAL);
        memcpy(out + (size_t)done * out_size, y, (size_t)m * out_size * sizeof(float));
    }
    if (labels)
        mg_net_set_labels(G, NULL); /* they were the caller's */
}

void mg_sample_labels(int *labels, int n, int K, int cls)
{
    int cols = 1;
    while (cols * cols < n) /* mg_png_grid's ceil(sqrt(n)) */
        cols++;
    for (int i = 0; i < n; i++)
        labels[i] = cls >= 0 ? cls : (i / cols) % K;
}

float *mg_sample_generate(const char *checkpoint, int n, uint64_t seed, mg_shape *shape)
{
    return mg_sample_generate_from(checkpoint, "G", n, seed, shape);
}

float *mg_sample_generate_from(const char *checkpoint, const char *which, int n, uint64_t seed, mg_shape *shape)
{
    return mg_sample_generate_class(checkpoint, which, n, seed, -1, shape);
}

/* G rebuilt from the checkpoint's stored config for batches up to max_batch (no
 * parameters loaded); the caller frees cfg and text after G. */
static mg_cfg *stored_generator(const char *checkpoint, mg_net *G, int max_batch, char **text)
{
    long step = 0;
    *text = mg_ckpt_read_config(checkpoint, &step);
    char name[1100];
    snprintf(name, sizeof name, "%s:/meta/config", checkpoint);
    mg_cfg *cfg = mg_cfg_parse(*text, name);
    mg_net_from_cfg(G, "G", mg_cfg_require(mg_cfg_root(cfg), "generator"), (mg_shape){0, 0, 0}, max_batch);
    return cfg;
}

int mg_sample_classes(const char *checkpoint)
{
    char *text;
    mg_net G;
    mg_cfg *cfg = stored_generator(checkpoint, &G, 1, &text);
    const int K = G.conditional ? G.n_classes : 0;
    mg_net_free(&G);
    mg_cfg_free(cfg);
    mg_free(text);
    return K;
}

float *mg_sample_generate_class(const char *checkpoint, const char *which, int n, uint64_t seed, int cls,
                                mg_shape *shape)
{
    MG_CHECK(n > 0, "sample", "ask for at least one sample", "n = %d", n);
    char *text;
    mg_net G;
    mg_cfg *cfg = stored_generator(checkpoint, &G, n < 256 ? n : 256, &text);
    MG_CHECK(cls < 0 || G.conditional, checkpoint, "drop --class: the run trained an unconditional generator",
             "--class %d asked of a generator without classes", cls);
    MG_CHECK(cls < G.n_classes || !G.conditional, checkpoint, "classes are 0 .. K-1",
             "--class %d, but the generator has %d classes (0 .. %d)", cls, G.n_classes, G.n_classes - 1);
    mg_ckpt_read_net(checkpoint, which, &G);
    *shape = G.out;
    float *samples = mg_alloc_floats((size_t)n * mg_shape_size(G.out), "samples");
    float *z = mg_alloc_floats((size_t)n * mg_shape_size(G.in), "sample noise");
    mg_sample_noise(z, n, mg_shape_size(G.in), seed);
    int *labels = NULL;
    if (G.conditional) {
        labels = mg_alloc(sizeof(int) * (size_t)n, "sample labels");
        mg_sample_labels(labels, n, G.n_classes, cls);
    }
    mg_sample_eval(&G, z, labels, n, samples);
    mg_free(labels);
    mg_free(z);
    mg_net_free(&G);
    mg_cfg_free(cfg);
    mg_free(text);
    return samples;
}

void mg_sample_write_h5(const char *path, const float *samples, int n, mg_shape shape, const int *labels,
                        int n_classes, const char *checkpoint)
{
    mg_samples_file_write(path, samples, n, shape.c, shape.h, shape.w, labels, n_classes, checkpoint);
}
