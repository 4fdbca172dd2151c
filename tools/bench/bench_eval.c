/* Speed of the evaluation's two forward passes (a benchmark, not a test): the generator of a
 * training config and the feature extractor of a classifier model file, both in
 * evaluation mode, layer by layer, at several batch sizes per forward call.
 *
 *   build/tools/bench/bench_eval CONFIG.yaml CLASSIFIER.h5 [samples per measurement] [batch ...]
 *
 * For each batch size: milliseconds per 1000 samples of every layer and of the whole
 * network (median of 5 repeats, each over `samples` samples, default 2000), and samples/s.
 * Times are the calling thread's CPU time, which stays meaningful when other jobs share the
 * cores; run with OPENBLAS_NUM_THREADS=1 so all work is on that thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mg_cfg.h"
#include "mg_error.h"
#include "mg_extractor.h"
#include "mg_net.h"
#include "mg_rng.h"
#include "mg_util.h"

#define REPEATS 5
#define MAX_LAYERS 64

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Per-layer seconds of forwarding `samples` samples of x (batch rows of in_size, reused)
 * through net in pieces of `batch`; median over repeats. */
static void time_net(mg_net *net, const float *x, int samples, int batch, double *layer_s, double *total_s)
{
    double reps[REPEATS][MAX_LAYERS + 1];
    for (int r = 0; r < REPEATS; r++) {
        memset(reps[r], 0, sizeof reps[r]);
        for (int done = 0; done < samples; done += batch) {
            const int m = samples - done < batch ? samples - done : batch;
            const float *in = x;
            for (int i = 0; i < net->n_layers; i++) {
                mg_layer *l = &net->layers[i];
                const double t0 = mg_clock_seconds(CLOCK_THREAD_CPUTIME_ID);
                l->ops->forward(l, in, net->act[i], m, MG_EVAL);
                reps[r][i] += mg_clock_seconds(CLOCK_THREAD_CPUTIME_ID) - t0;
                in = net->act[i];
            }
        }
        for (int i = 0; i < net->n_layers; i++)
            reps[r][MAX_LAYERS] += reps[r][i];
    }
    double v[REPEATS];
    for (int i = 0; i <= MAX_LAYERS; i++) {
        if (i >= net->n_layers && i < MAX_LAYERS)
            continue;
        for (int r = 0; r < REPEATS; r++)
            v[r] = reps[r][i];
        qsort(v, REPEATS, sizeof v[0], cmp_double);
        if (i < MAX_LAYERS)
            layer_s[i] = v[REPEATS / 2];
        else
            *total_s = v[REPEATS / 2];
    }
}

static void report(const char *what, mg_net *net, const float *x, int samples, const int *batches, int n_batches)
{
    printf("\n%s (%.1f MFLOP/sample): ms per 1000 samples, eval mode\n%-24s", what, 2e-6 * mg_net_forward_macs(net),
           "layer \\ batch");
    for (int b = 0; b < n_batches; b++)
        printf(" %8d", batches[b]);
    printf("\n");
    double table[16][MAX_LAYERS + 1];
    for (int b = 0; b < n_batches; b++)
        time_net(net, x, samples, batches[b], table[b], &table[b][MAX_LAYERS]);
    for (int i = 0; i < net->n_layers; i++) {
        printf("%-24s", net->layers[i].name);
        for (int b = 0; b < n_batches; b++)
            printf(" %8.1f", 1e6 * table[b][i] / samples);
        printf("\n");
    }
    printf("%-24s", "total");
    for (int b = 0; b < n_batches; b++)
        printf(" %8.1f", 1e6 * table[b][MAX_LAYERS] / samples);
    printf("\n%-24s", "samples/s");
    for (int b = 0; b < n_batches; b++)
        printf(" %8.0f", samples / table[b][MAX_LAYERS]);
    printf("\n");
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s CONFIG.yaml CLASSIFIER.h5 [samples] [batch ...]\n", argv[0]);
        return 2;
    }
    const int samples = argc > 3 ? atoi(argv[3]) : 2000;
    int batches[16] = {25, 50, 100, 250, 500}, n_batches = 5, max_batch = 0;
    if (argc > 4) {
        n_batches = 0;
        for (int i = 4; i < argc && n_batches < 16; i++)
            batches[n_batches++] = atoi(argv[i]);
    }
    for (int b = 0; b < n_batches; b++) {
        MG_CHECK(batches[b] > 0, "bench_eval", NULL, "bad batch %d", batches[b]);
        max_batch = batches[b] > max_batch ? batches[b] : max_batch;
    }
    MG_CHECK(samples > 0, "bench_eval", NULL, "bad sample count %d", samples);

    mg_cfg *cfg = mg_cfg_load_file(argv[1]);
    mg_net G;
    mg_net_from_cfg(&G, "G", mg_cfg_require(mg_cfg_root(cfg), "generator"), (mg_shape){0, 0, 0}, max_batch);
    mg_rng rng;
    mg_rng_init(&rng, 1, 0);
    mg_net_init_params(&G, &rng);
    mg_extractor ex;
    mg_extractor_load(&ex, argv[2], max_batch);
    MG_CHECK(G.n_layers < MAX_LAYERS && ex.net.n_layers < MAX_LAYERS, "bench_eval", NULL, "too many layers");

    const size_t zsize = (size_t)max_batch * mg_shape_size(G.in);
    float *z = mg_alloc_floats(zsize, "noise");
    mg_rng_fill_normal(&rng, z, zsize, 0.0f, 1.0f);
    const float *images = mg_net_forward(&G, z, max_batch, MG_EVAL);
    float *x = mg_alloc_floats((size_t)max_batch * mg_shape_size(G.out), "images");
    memcpy(x, images, (size_t)max_batch * mg_shape_size(G.out) * sizeof(float));

    report("generator", &G, z, samples, batches, n_batches);
    report("extractor", &ex.net, x, samples, batches, n_batches);
    mg_free(z);
    mg_free(x);
    mg_extractor_free(&ex);
    mg_net_free(&G);
    mg_cfg_free(cfg);
    return 0;
}
