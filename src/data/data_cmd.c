/* `mpigan data ...`: the command-line front end of the converters (mg_convert.h,
 * mg_convert_images.h, mg_shapes.h) and a validator that prints what a data file holds.
 * Kept apart from the converters so that they stay plain functions that tests call
 * directly. Under mpirun every rank parses the arguments (so all agree on a usage error);
 * fmnist, mixture and png are single-process (only rank 0 works; an error there still ends
 * every rank through the fatal path), images, cifar10 and shapes run on every rank. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mg_cmd.h"
#include "mg_convert.h"
#include "mg_convert_images.h"
#include "mg_dist.h"
#include "mg_error.h"
#include "mg_h5schema.h"
#include "mg_shapes.h"

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

static const char usage_shapes[] =
    "usage: mpigan data shapes --n N --out DIR [--seed S] [--test-n M] [--grid FILE.png]\n"
    "Renders the procedural shapes benchmark (docs/data.md): 64x64 RGB images of a square, ellipse,\n"
    "heart or triangle with 7 discrete factors (shape 4, colour 8, scale 6, rotation 8, x 8, y 8,\n"
    "background 4). Writes DIR/" MG_SHAPES_TRAIN_FILE " (N items) and DIR/" MG_SHAPES_TEST_FILE
    " (M items from another stream\n"
    "of the same seed): images uint8 (N, 3, 64, 64), labels int32 = shape, factors int32 (N, 7).\n"
    "Item i depends only on (seed, split, i): the files are the same for any number of ranks.\n"
    "  --n N            training items (required)\n"
    "  --out DIR        output folder, created if missing (one level)\n"
    "  --seed S         random seed (default 0)\n"
    "  --test-n M       test items (default N/6, as Fashion-MNIST's 60000/10000; 0: no test file)\n"
    "  --grid FILE.png  also draw the first 100 training items as a 10x10 PNG grid\n";

static const char usage_images[] =
    "usage: mpigan data images DIR --size S --out OUTDIR [--crop center|none] [--resize area|bilinear]\n"
    "                          [--grey] [--skip-bad]\n"
    "Converts the JPEG and PNG files of DIR (names ending in .jpg, .jpeg or .png, in name order) into\n"
    "OUTDIR/<name of DIR>.h5: images uint8 (N, C, S, S). If DIR holds no images but subfolders of them,\n"
    "each subfolder (sorted by name) is a class: the file gets labels and class_names. C is 3 when any\n"
    "image is colour (grey ones are promoted), else 1. Runs on every MPI rank: each decodes its share.\n"
    "  --size S         side of the square samples (required)\n"
    "  --out OUTDIR     folder of the output file (made if missing)\n"
    "  --crop center    take each image's centred square first (default)\n"
    "  --crop none      scale the whole image to S x S (the aspect ratio changes)\n"
    "  --resize area    exact box filter, for shrinking (default)\n"
    "  --resize bilinear  bilinear interpolation at the output pixels' centres\n"
    "  --grey           one channel: colour images become their luma (0.299 R + 0.587 G + 0.114 B)\n"
    "  --skip-bad       skip damaged, non-image and too small files (each named on stderr, counted\n"
    "                   in the summary) instead of stopping at the first\n"
    "Images are never enlarged: one smaller than S (its centred square with --crop center) is a bad file.\n";

static const char usage_cifar10[] =
    "usage: mpigan data cifar10 DIR --out OUTDIR\n"
    "Converts CIFAR-10's binary batches DIR/data_batch_1..5.bin and DIR/test_batch.bin into\n"
    "OUTDIR/" MG_CIFAR10_TRAIN_FILE " and OUTDIR/" MG_CIFAR10_TEST_FILE ": images uint8 (N, 3, 32, 32), labels 0..9,\n"
    "class names from DIR/batches.meta.txt (else CIFAR-10's ten). Runs on every MPI rank.\n";

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

/* Rank 0 makes the output folder (one level) and checks that it can write there; every
 * rank gets the verdict, so a bad folder ends all of them with one message before the
 * collective writer starts. */
static void shapes_out_dir(const char *dir)
{
    char why[512] = "";
    if (mg_dist_rank() == 0) {
        struct stat st;
        if (mkdir(dir, 0777) != 0 && errno != EEXIST)
            snprintf(why, sizeof why, "cannot create the output folder: %s", strerror(errno));
        else if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            snprintf(why, sizeof why, "not a folder");
        else if (access(dir, W_OK | X_OK) != 0)
            snprintf(why, sizeof why, "cannot write into the output folder: %s", strerror(errno));
    }
    mg_dist_bcast(why, sizeof why);
    if (why[0])
        MG_FAIL(dir, "give --out a folder that exists or can be made, and is writable", "%s", why);
}

static int cmd_shapes(int argc, char **argv)
{
    static const struct option options[] = {
        {"n", required_argument, NULL, 'n'},
        {"out", required_argument, NULL, 'o'},
        {"seed", required_argument, NULL, 's'},
        {"test-n", required_argument, NULL, 't'},
        {"grid", required_argument, NULL, 'g'},
        {0},
    };
    const char *out = NULL, *grid = NULL;
    long long n = 0, seed = 0, test_n = -1;
    const long long max_items = (long long)1 << 40;
    mg_cmd_parser p;
    mg_cmd_parse_begin(&p, "mpigan data shapes", usage_shapes, "", options, argc, argv);
    for (int c; (c = mg_cmd_next(&p));) {
        switch (c) {
        case 'n': mg_cmd_int(&p, 1, max_items, &n); break;
        case 'o': out = p.value; break;
        case 's': mg_cmd_int(&p, 0, INT64_MAX, &seed); break;
        case 't': mg_cmd_int(&p, 0, max_items, &test_n); break;
        case 'g': grid = p.value; break;
        }
    }
    if (!mg_cmd_parse_end(&p, 0, 0, ""))
        return p.status;
    if (n == 0 || !out)
        return mg_cmd_usage_error(&p, "--n N and --out DIR are required");
    if (test_n < 0)
        test_n = n / 6;
    shapes_out_dir(out);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out, MG_SHAPES_TRAIN_FILE);
    double t = mg_shapes_write(path, n, (uint64_t)seed, MG_SHAPES_TRAIN);
    if (mg_dist_rank() == 0)
        printf("wrote %s: %lld images in %.1f s (%.0f images/s on %d rank%s)\n", path, n, t, (double)n / t,
               mg_dist_size(), mg_dist_size() == 1 ? "" : "s");
    if (test_n > 0) {
        snprintf(path, sizeof path, "%s/%s", out, MG_SHAPES_TEST_FILE);
        t = mg_shapes_write(path, test_n, (uint64_t)seed, MG_SHAPES_TEST);
        if (mg_dist_rank() == 0)
            printf("wrote %s: %lld images in %.1f s\n", path, test_n, t);
    }
    if (grid && mg_dist_rank() == 0) {
        mg_shapes_grid_png(grid, n < 100 ? (int)n : 100, (uint64_t)seed);
        printf("wrote %s\n", grid);
    }
    return 0;
}

static int cmd_images(int argc, char **argv)
{
    static const struct option options[] = {
        {"size", required_argument, NULL, 's'},
        {"out", required_argument, NULL, 'o'},
        {"crop", required_argument, NULL, 'c'},
        {"resize", required_argument, NULL, 'r'},
        {"grey", no_argument, NULL, 'g'},
        {"skip-bad", no_argument, NULL, 'b'},
        {0},
    };
    const char *out = NULL;
    long long size = 0;
    mg_images_opts o = {.crop_center = true, .resize = MG_RESIZE_AREA};
    mg_cmd_parser p;
    mg_cmd_parse_begin(&p, "mpigan data images", usage_images, "", options, argc, argv);
    for (int c; (c = mg_cmd_next(&p));) {
        switch (c) {
        case 's': mg_cmd_int(&p, 1, 4096, &size); break;
        case 'o': out = p.value; break;
        case 'c':
            if (strcmp(p.value, "center") == 0 || strcmp(p.value, "none") == 0)
                o.crop_center = strcmp(p.value, "center") == 0;
            else
                return mg_cmd_usage_error(&p, "--crop '%s': give center or none", p.value);
            break;
        case 'r':
            if (strcmp(p.value, "area") == 0 || strcmp(p.value, "bilinear") == 0)
                o.resize = strcmp(p.value, "area") == 0 ? MG_RESIZE_AREA : MG_RESIZE_BILINEAR;
            else
                return mg_cmd_usage_error(&p, "--resize '%s': give area or bilinear", p.value);
            break;
        case 'g': o.grey = true; break;
        case 'b': o.skip_bad = true; break;
        }
    }
    if (!mg_cmd_parse_end(&p, 1, 1, "DIR (the folder of images)"))
        return p.status;
    if (size == 0)
        return mg_cmd_usage_error(&p, "--size S is required");
    if (!out)
        return mg_cmd_usage_error(&p, "--out OUTDIR is required");
    o.size = (int)size;
    mg_images_result r;
    mg_convert_images(p.args[0], out, &o, &r);
    if (mg_dist_rank() == 0) {
        printf("wrote %s: %lld images (%d x %d x %d)", r.out_path, (long long)r.n_written, r.channels, o.size,
               o.size);
        if (r.n_classes > 0)
            printf(", %d classes", r.n_classes);
        printf("; skipped %lld bad file%s", (long long)r.n_bad, r.n_bad == 1 ? "" : "s");
        if (r.n_ignored > 0)
            printf("; ignored %lld file%s not named *.jpg, *.jpeg or *.png", (long long)r.n_ignored,
                   r.n_ignored == 1 ? "" : "s");
        printf("\n");
        if (r.n_bad > 0)
            printf("  first skipped: %s\n", r.first_bad);
    }
    return 0;
}

static int cmd_cifar10(int argc, char **argv)
{
    static const struct option options[] = {
        {"out", required_argument, NULL, 'o'},
        {0},
    };
    const char *out = NULL;
    mg_cmd_parser p;
    mg_cmd_parse_begin(&p, "mpigan data cifar10", usage_cifar10, "", options, argc, argv);
    for (int c; (c = mg_cmd_next(&p));)
        out = p.value;
    if (!mg_cmd_parse_end(&p, 1, 1, "DIR (the folder of the binary batches)"))
        return p.status;
    if (!out)
        return mg_cmd_usage_error(&p, "--out OUTDIR is required");
    int64_t n_train = 0, n_test = 0;
    mg_convert_cifar10(p.args[0], out, &n_train, &n_test);
    if (mg_dist_rank() == 0)
        printf("wrote %s/%s (%lld images) and %s/%s (%lld images)\n", out, MG_CIFAR10_TRAIN_FILE,
               (long long)n_train, out, MG_CIFAR10_TEST_FILE, (long long)n_test);
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
    printf("  samples      %lld\n", (long long)info.n);
    if (info.kind == MG_DATA_IMAGES)
        printf("  channels     %d\n  size         %d x %d (height x width)\n", info.c, info.h, info.w);
    else
        printf("  dimensions   %d\n", info.c);
    if (info.has_labels)
        printf("  labels       yes, %d class name%s\n", info.n_classes, info.n_classes == 1 ? "" : "s");
    else
        printf("  labels       none\n");
    if (info.n_factors > 0) {
        /* name (values) per column, and the grid's size when every column's is known */
        int64_t combinations = 1;
        printf("  factors      %d:", info.n_factors);
        for (int k = 0; k < info.n_factors; k++) {
            const int32_t size = info.factor_sizes[k];
            printf("%s %s", k ? "," : "", info.factor_names[k][0] ? info.factor_names[k] : "(unnamed)");
            if (size > 0)
                printf(" (%d)", size);
            combinations = size == 0 || combinations == 0 ? 0
                           : combinations > INT64_MAX / size ? INT64_MAX : combinations * size;
        }
        if (combinations > 0)
            printf("; %lld combinations", (long long)combinations);
        printf("\n");
    }
    struct stat st;
    if (stat(path, &st) == 0)
        printf("  on disk      %lld bytes (%.1f MiB; %lld bytes allocated)\n", (long long)st.st_size,
               (double)st.st_size / (1 << 20), (long long)st.st_blocks * 512);
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

static const mg_cmd data_commands[] = {
    {"fmnist", cmd_fmnist, "[--in DIR] --out DIR",
     "Fashion-MNIST IDX.gz files -> DIR/" MG_FMNIST_TRAIN_FILE ", DIR/" MG_FMNIST_TEST_FILE},
    {"mixture", cmd_mixture, "ring|grid --out FILE [--n N] [--seed S] [--sigma X]",
     "2-D Gaussian mixture (mode-collapse benchmark)"},
    {"images", cmd_images, "DIR --size S --out OUTDIR [--crop center|none] [--resize area|bilinear] [--grey] "
     "[--skip-bad]", "JPEG/PNG folders resized to S x S, on every rank (subfolders = classes)"},
    {"cifar10", cmd_cifar10, "DIR --out OUTDIR", "CIFAR-10 binary batches -> OUTDIR/" MG_CIFAR10_TRAIN_FILE
     ", OUTDIR/" MG_CIFAR10_TEST_FILE},
    {"png", cmd_png, "--in DIR --out FILE", "a folder of same-sized PNG images, as they are (subfolders = classes)"},
    {"shapes", cmd_shapes, "--n N --out DIR [--seed S] [--test-n M] [--grid FILE.png]",
     "procedural 64x64 RGB shapes with factor labels, on every rank"},
    {"info", cmd_info, "FILE", "validate a data file and print what it holds"},
};

static const mg_cmd_table data_table = {
    .prog = "mpigan data",
    .about = "Writes training data as HDF5 (format: docs/data.md).\n",
    .cmds = data_commands,
    .n_cmds = (int)(sizeof data_commands / sizeof data_commands[0]),
};

int mg_cmd_data(int argc, char **argv) { return mg_cmd_dispatch(&data_table, argc, argv); }
