/* `mpigan data ...`: the command-line front end of the converters (mg_convert.h) and a
 * validator that prints what a data file holds. Kept apart from convert.c so that the
 * converters stay plain functions that tests call directly. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_convert.h"
#include "mg_dist.h"
#include "mg_error.h"
#include "mg_h5schema.h"

static const char usage_top[] =
    "usage: mpigan data COMMAND [options]\n"
    "Writes training data as HDF5 (format: docs/data.md).\n"
    "  fmnist   [--in DIR] --out DIR       Fashion-MNIST IDX.gz files -> DIR/" MG_FMNIST_TRAIN_FILE ", DIR/"
    MG_FMNIST_TEST_FILE "\n"
    "  mixture  ring|grid --out FILE [--n N] [--seed S] [--sigma X]\n"
    "                                      2-D Gaussian mixture (mode-collapse benchmark)\n"
    "  png      --in DIR --out FILE        a folder of same-sized PNG images (subfolders = classes)\n"
    "  info     FILE                       validate a data file and print what it holds\n"
    "Run `mpigan data COMMAND --help` for details.\n";

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

static int usage_error(const char *usage, const char *fmt, const char *arg)
{
    fprintf(stderr, "mpigan data: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", usage);
    return 2;
}

static int is_help(const char *a) { return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0; }

static int parse_i64(const char *s, long long lo, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || !end || *end || end == s || v < lo)
        return 0;
    *out = v;
    return 1;
}

/* Options of the form --key VALUE; returns 0 on an unknown option or a missing value. */
typedef struct { const char *name; const char **value; } opt_t;

static int parse_opts(int argc, char **argv, int first, opt_t *opts, int n_opts, const char *usage,
                      const char **positional)
{
    for (int i = first; i < argc; i++) {
        int found = 0;
        for (int k = 0; k < n_opts && !found; k++)
            if (strcmp(argv[i], opts[k].name) == 0) {
                if (i + 1 >= argc)
                    return usage_error(usage, "option %s needs a value", argv[i]), 0;
                *opts[k].value = argv[++i];
                found = 1;
            }
        if (found)
            continue;
        if (argv[i][0] == '-' || !positional || *positional)
            return usage_error(usage, "unexpected argument '%s'", argv[i]), 0;
        *positional = argv[i];
    }
    return 1;
}

static int cmd_fmnist(int argc, char **argv)
{
    const char *in = MG_FMNIST_DEFAULT_DIR, *out = NULL;
    opt_t opts[] = {{"--in", &in}, {"--out", &out}};
    if (!parse_opts(argc, argv, 1, opts, 2, usage_fmnist, NULL))
        return 2;
    if (!out)
        return usage_error(usage_fmnist, "%s", "--out DIR is required");
    mg_convert_fmnist(in, out);
    printf("wrote %s/%s and %s/%s\n", out, MG_FMNIST_TRAIN_FILE, out, MG_FMNIST_TEST_FILE);
    return 0;
}

static int cmd_mixture(int argc, char **argv)
{
    const char *kind = NULL, *out = NULL, *n_s = "100000", *seed_s = "0", *sigma_s = NULL;
    opt_t opts[] = {{"--out", &out}, {"--n", &n_s}, {"--seed", &seed_s}, {"--sigma", &sigma_s}};
    if (!parse_opts(argc, argv, 1, opts, 4, usage_mixture, &kind))
        return 2;
    if (!kind || (strcmp(kind, "ring") != 0 && strcmp(kind, "grid") != 0))
        return usage_error(usage_mixture, "%s", "give the kind: ring or grid");
    if (!out)
        return usage_error(usage_mixture, "%s", "--out FILE is required");
    long long n = 0, seed = 0;
    if (!parse_i64(n_s, 1, &n))
        return usage_error(usage_mixture, "--n '%s' is not a positive integer", n_s);
    if (!parse_i64(seed_s, 0, &seed))
        return usage_error(usage_mixture, "--seed '%s' is not an integer >= 0", seed_s);
    double sigma = 0;
    if (sigma_s) {
        char *end = NULL;
        sigma = strtod(sigma_s, &end);
        if (!end || *end || end == sigma_s || !(sigma > 0))
            return usage_error(usage_mixture, "--sigma '%s' is not a positive number", sigma_s);
    }
    mg_convert_mixture(out, strcmp(kind, "ring") == 0 ? MG_MIXTURE_RING : MG_MIXTURE_GRID, n, (uint64_t)seed,
                       sigma);
    printf("wrote %s\n", out);
    return 0;
}

static int cmd_png(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    opt_t opts[] = {{"--in", &in}, {"--out", &out}};
    if (!parse_opts(argc, argv, 1, opts, 2, usage_png, NULL))
        return 2;
    if (!in || !out)
        return usage_error(usage_png, "%s", "--in DIR and --out FILE are required");
    mg_convert_png_dir(in, out);
    printf("wrote %s\n", out);
    return 0;
}

static int cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    if (!parse_opts(argc, argv, 1, NULL, 0, usage_info, &path))
        return 2;
    if (!path)
        return usage_error(usage_info, "%s", "give the FILE");
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

int mg_data_command(int argc, char **argv)
{
    /* The converters are single-process: under mpirun only rank 0 works (an error there
     * still ends every rank through the fatal path). */
    if (mg_dist_rank() != 0)
        return 0;
    if (argc < 2 || is_help(argv[1])) {
        fputs(usage_top, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    static const struct { const char *name; int (*run)(int, char **); const char *usage; } cmds[] = {
        {"fmnist", cmd_fmnist, usage_fmnist},
        {"mixture", cmd_mixture, usage_mixture},
        {"png", cmd_png, usage_png},
        {"info", cmd_info, usage_info},
    };
    for (size_t k = 0; k < sizeof cmds / sizeof cmds[0]; k++) {
        if (strcmp(cmd, cmds[k].name) != 0)
            continue;
        for (int i = 2; i < argc; i++)
            if (is_help(argv[i])) {
                fputs(cmds[k].usage, stdout);
                return 0;
            }
        return cmds[k].run(argc - 1, argv + 1);
    }
    return usage_error(usage_top, "unknown command '%s'", cmd);
}
