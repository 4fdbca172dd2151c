/* `mpigan data ...`: the command-line front end of the converters (mg_convert.h) and a
 * validator that prints what a data file holds. Kept apart from convert.c so that the
 * converters stay plain functions that tests call directly. The converters are
 * single-process: under mpirun every rank parses the arguments (so all agree on a usage
 * error) and only rank 0 works; an error there still ends every rank through the fatal
 * path. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mg_cmd.h"
#include "mg_convert.h"
#include "mg_dist.h"
#include "mg_error.h"
#include "mg_h5schema.h"

static const char usage_fmnist[] =
    "usage: mpigan data fmnist [--in DIR] --out DIR\n"
    "Reads DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz (default --in: " MG_FMNIST_DEFAULT_DIR
    ", from Debian's dataset-fashion-mnist)\n"
    "and writes " MG_FMNIST_TRAIN_FILE " (60000 samples) and " MG_FMNIST_TEST_FILE
    " (10000) into the --out folder:\n"
    "images uint8 (N, 1, 28, 28), labels int32 (N), class names as an attribute.\n";

static const char usage_mixture[] =
    "usage: mpigan data mixture ring|grid --out FILE [--n N] [--seed S] [--sigma X]\n"
    "ring: 8 Gaussians on the unit circle, sigma 0.01; grid: 25 Gaussians at {-4,-2,0,2,4}^2, sigma 0.05.\n"
    "Writes x float32 (N, 2) and labels int32 (N) = mode index; means, sigma and seed as attributes.\n"
    "  --n N        samples (default 100000)\n"
    "  --seed S     random seed (default 0)\n"
    "  --sigma X    standard deviation of every mode (default: the benchmark's)\n";

static const char usage_png[] =
    "usage: mpigan data png --in DIR --out FILE\n"
    "Writes every *.png of DIR (name order) as images uint8 (N, C, H, W): C = 1 for grey, 3 for colour\n"
    "(palettes expanded, 16-bit reduced to 8 bits, alpha dropped). All images must have one size and\n"
    "colour type. If DIR holds no PNG files but subfolders of them, each subfolder is a class: the file\n"
    "then has labels and class_names.\n";

static const char usage_info[] =
    "usage: mpigan data info FILE\n"
    "Validates FILE as the loader would and prints its shape, attributes and storage.\n";

/* The options of the converters that read --in and write --out (and take no positional
 * arguments); false when the command must return p->status. */
static bool parse_in_out(mg_cmd_parser *p, const char *prog, const char *usage, int argc, char **argv,
                         const char **in, const char **out)
{
    static const struct option options[] = {
        {"in", required_argument, NULL, 'i'},
        {"out", required_argument, NULL, 'o'},
        {0},
    };
    mg_cmd_parse_begin(p, prog, usage, "", options, argc, argv);
    for (int c; (c = mg_cmd_next(p));) {
        if (c == 'i')
            *in = p->value;
        else
            *out = p->value;
    }
    return mg_cmd_parse_end(p, 0, 0, "");
}

static int cmd_fmnist(int argc, char **argv)
{
    const char *in = MG_FMNIST_DEFAULT_DIR, *out = NULL;
    mg_cmd_parser p;
    if (!parse_in_out(&p, "mpigan data fmnist", usage_fmnist, argc, argv, &in, &out))
        return p.status;
    if (!out)
        return mg_cmd_usage_error(&p, "--out DIR is required");
    if (mg_dist_rank() != 0)
        return 0;
    mg_convert_fmnist(in, out);
    printf("wrote %s/%s and %s/%s\n", out, MG_FMNIST_TRAIN_FILE, out, MG_FMNIST_TEST_FILE);
    return 0;
}

static int cmd_mixture(int argc, char **argv)
{
    static const struct option options[] = {
        {"out", required_argument, NULL, 'o'},
        {"n", required_argument, NULL, 'n'},
        {"seed", required_argument, NULL, 's'},
        {"sigma", required_argument, NULL, 'g'},
        {0},
    };
    const char *out = NULL;
    long long n = 100000, seed = 0;
    double sigma = 0; /* 0: the benchmark's */
    mg_cmd_parser p;
    mg_cmd_parse_begin(&p, "mpigan data mixture", usage_mixture, "", options, argc, argv);
    for (int c; (c = mg_cmd_next(&p));) {
        switch (c) {
        case 'o': out = p.value; break;
        case 'n': mg_cmd_int(&p, 1, INT64_MAX, &n); break;
        case 's': mg_cmd_int(&p, 0, INT64_MAX, &seed); break;
        case 'g': mg_cmd_positive(&p, &sigma); break;
        }
    }
    if (!mg_cmd_parse_end(&p, 1, 1, "the kind: ring or grid"))
        return p.status;
    const char *kind = p.args[0];
    if (strcmp(kind, "ring") != 0 && strcmp(kind, "grid") != 0)
        return mg_cmd_usage_error(&p, "unknown kind '%s': give ring or grid", kind);
    if (!out)
        return mg_cmd_usage_error(&p, "--out FILE is required");
    if (mg_dist_rank() != 0)
        return 0;
    mg_convert_mixture(out, strcmp(kind, "ring") == 0 ? MG_MIXTURE_RING : MG_MIXTURE_GRID, n, (uint64_t)seed,
                       sigma);
    printf("wrote %s\n", out);
    return 0;
}

static int cmd_png(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    mg_cmd_parser p;
    if (!parse_in_out(&p, "mpigan data png", usage_png, argc, argv, &in, &out))
        return p.status;
    if (!in || !out)
        return mg_cmd_usage_error(&p, "--in DIR and --out FILE are required");
    if (mg_dist_rank() != 0)
        return 0;
    mg_convert_png_dir(in, out);
    printf("wrote %s\n", out);
    return 0;
}

static int cmd_info(int argc, char **argv)
{
    mg_cmd_parser p;
    if (!mg_cmd_parse_plain(&p, "mpigan data info", usage_info, argc, argv, 1, 1, "FILE"))
        return p.status;
    if (mg_dist_rank() != 0)
        return 0;
    const char *path = p.args[0];
    mg_data_info info;
    mg_h5_file *f = mg_h5_open_or_fail(path, &info);
    char err[1024], what[160];
    mg_h5_raw x, y;
    if (!mg_h5_raw_layout(f, &x, &y, err, sizeof err))
        MG_FAIL(NULL, "docs/data.md describes the format", "%s", err);
    printf("%s: %s\n", path, mg_data_describe(&info, what, sizeof what));
    printf("  source       %s\n", info.source[0] ? info.source : "(not given)");
    if (info.split[0])
        printf("  split        %s\n", info.split);
    printf("  value range  [%g, %g]\n", info.value_range[0], info.value_range[1]);
    printf("  storage      %lld samples per chunk, %lld chunk%s, %lld bytes per sample\n", (long long)x.chunk_rows,
           (long long)x.n_chunks, x.n_chunks == 1 ? "" : "s", (long long)x.row_bytes);
    if (info.n_classes > 0) {
        printf("  classes      ");
        for (int k = 0; k < info.n_classes; k++)
            printf("%s%d=%s", k ? ", " : "", k, info.class_names[k]);
        printf("\n");
    }
    if (info.n_factors > 0) {
        int64_t combinations = 1;
        printf("  factors      ");
        for (int k = 0; k < info.n_factors; k++) {
            printf("%s%s (%d)", k ? ", " : "", info.factor_names[k], info.factor_sizes[k]);
            combinations = combinations > INT64_MAX / info.factor_sizes[k] ? INT64_MAX
                                                                           : combinations * info.factor_sizes[k];
        }
        printf("; %lld combinations\n", (long long)combinations);
    }
    mg_mixture_info mix;
    if (mg_h5_read_mixture(f, &mix)) {
        printf("  mixture      %s, %d modes, sigma %g, seed %llu\n", mix.generator, mix.n_modes, mix.sigma,
               (unsigned long long)mix.seed);
    }
    mg_h5_raw_free(&x);
    mg_h5_raw_free(&y);
    mg_h5_close(f);
    mg_data_info_free(&info);
    return 0;
}

static const mg_cmd data_commands[] = {
    {"fmnist", cmd_fmnist, "[--in DIR] --out DIR",
     "Fashion-MNIST IDX.gz files -> DIR/" MG_FMNIST_TRAIN_FILE ", DIR/" MG_FMNIST_TEST_FILE},
    {"mixture", cmd_mixture, "ring|grid --out FILE [--n N] [--seed S] [--sigma X]",
     "2-D Gaussian mixture (mode-collapse benchmark)"},
    {"png", cmd_png, "--in DIR --out FILE", "a folder of same-sized PNG images (subfolders = classes)"},
    {"info", cmd_info, "FILE", "validate a data file and print what it holds"},
};

static const mg_cmd_table data_table = {
    .prog = "mpigan data",
    .about = "Writes training data as HDF5 (format: docs/data.md).\n",
    .cmds = data_commands,
    .n_cmds = (int)(sizeof data_commands / sizeof data_commands[0]),
};

int mg_cmd_data(int argc, char **argv) { return mg_cmd_dispatch(&data_table, argc, argv); }
