/* `mpigan sample`: the command line of sampling (mg_sample.h). Rank 0 draws and writes;
 * the other ranks parse the same arguments and return. */
#include <stdio.h>
#include <string.h>

#include "mg_cmd.h"
#include "mg_dist.h"
#include "mg_error.h"
#include "mg_png_grid.h"
#include "mg_sample.h"

static const char sample_usage[] =
    "usage: mpigan sample --checkpoint CKPT.h5 [-n N] [--seed S] [--ema] [--class K] -o OUT.png|OUT.h5\n"
    "Rebuilds the generator from the checkpoint's stored config, loads its parameters and\n"
    "BatchNorm statistics, and runs it in evaluation mode on N(0, I) noise.\n"
    "  -n N       samples to draw (default 64, an 8x8 grid; a class-conditional generator:\n"
    "             K*K, a K x K grid with one class per row, class r in row r)\n"
    "  --class K  a class-conditional generator: every sample of class K (0 .. classes-1)\n"
    "  --seed S   noise seed (default 1)\n"
    "  --ema      use the checkpoint's EMA generator (train.ema; group G_ema) instead of G\n"
    "  -o OUT     .png: image grid (image data only); .h5: `images` float32 (N, C, H, W) in\n"
    "             [-1, 1] or `x` float32 (N, D) for vector data such as ring8/grid25, and\n"
    "             for a class-conditional generator `labels` int32 (N), each sample's class\n";

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

int mg_cmd_sample(int argc, char **argv)
{
    static const struct option options[] = {
        {"checkpoint", required_argument, NULL, 'c'},
        {"seed", required_argument, NULL, 's'},
        {"ema", no_argument, NULL, 'e'},
        {"class", required_argument, NULL, 'k'},
        {0},
    };
    const char *checkpoint = NULL, *out = NULL;
    long long n = 64, seed = 1, cls = -1;
    bool n_given = false;
    bool ema = false;
    mg_cmd_parser p;
    mg_cmd_parse_begin(&p, "mpigan sample", sample_usage, "n:o:", options, argc, argv);
    for (int c; (c = mg_cmd_next(&p));) {
        switch (c) {
        case 'c': checkpoint = p.value; break;
        case 'o': out = p.value; break;
        case 'e': ema = true; break;
        case 'n': mg_cmd_int(&p, 1, 1000000, &n), n_given = true; break;
        case 'k': mg_cmd_int(&p, 0, 1 << 20, &cls); break;
        case 's': mg_cmd_int(&p, 0, 0x7fffffffffffffffLL, &seed); break;
        }
    }
    if (!mg_cmd_parse_end(&p, 0, 0, ""))
        return p.status;
    if (!checkpoint || !out || !(ends_with(out, ".png") || ends_with(out, ".h5")))
        return mg_cmd_usage_error(&p, "need --checkpoint and -o ending in .png or .h5");

    if (mg_dist_rank() == 0) {
        mg_shape shape;
        const int K = mg_sample_classes(checkpoint);
        if (K && cls < 0 && !n_given) /* one row per class */
            n = (long long)K * K;
        float *samples = mg_sample_generate_class(checkpoint, ema ? "G_ema" : "G", (int)n, (unsigned long long)seed,
                                                  (int)cls, &shape);
        if (ends_with(out, ".png")) {
            MG_CHECK(shape.h > 1 || shape.w > 1, out, "write -o samples.h5 for vector data (a scatter plot comes later)",
                     "the generator makes %d-dimensional vectors, not images", shape.c);
            mg_png_grid_write(out, samples, (int)n, shape.c, shape.h, shape.w);
        } else { /* with the classes the samples were drawn with (mg_sample_generate_class's) */
            int *labels = K ? mg_alloc(sizeof(int) * (size_t)n, "sample labels") : NULL;
            if (K)
                mg_sample_labels(labels, (int)n, K, (int)cls);
            mg_sample_write_h5(out, samples, (int)n, shape, labels, K, checkpoint);
            mg_free(labels);
        }
        char what[64] = "";
        if (K)
            snprintf(what, sizeof what, cls >= 0 ? " of class %lld" : " (one class per row)", cls);
        printf("wrote %lld samples%s%s to %s\n", n, what, ema ? " of the EMA generator" : "", out);
        mg_free(samples);
    }
    return 0;
}
