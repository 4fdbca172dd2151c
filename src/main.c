/* mpigan's command line: one subcommand per job. Every command runs under mpirun
 * (or alone, as one rank); MPI is initialised first so that any error ends all ranks. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_blas_threads.h"
#include "mg_cfg.h"
#include "mg_classifier.h"
#include "mg_convert.h"
#include "mg_dist.h"
#include "mg_error.h"
#include "mg_eval.h"
#include "mg_net.h"
#include "mg_toy.h"
#include "mg_train.h"
#include "mg_cfg_override.h"
#include "mg_png_grid.h"
#include "mg_sample.h"

#define MPIGAN_VERSION "0.1.0"

static const char usage[] =
    "usage: mpigan <command> [options]      (run under mpirun for several ranks)\n"
    "\n"
    "commands:\n"
    "  train CONFIG.yaml   train a GAN data-parallel (configs/fmnist_dcgan.yaml, configs/ring8.yaml)\n"
    "  sample ...          draw samples from a checkpoint's generator (PNG grid or HDF5)\n"
    "  data ...            write training data as HDF5 (fmnist, mixture, png) or check a file (info)\n"
    "  classifier ...      train the evaluation's feature extractor (configs/classifier.yaml)\n"
    "  eval ...            FID, IS, KID and class coverage of a checkpoint or samples (mode counting for 2-D)\n"
    "  toy CONFIG.yaml     train the tiny example classifier data-parallel (configs/toy.yaml)\n"
    "  nets CONFIG.yaml    build the config's networks, check their shapes, print their layers\n"
    "  info                versions, OpenBLAS kernel and threads, MPI ranks\n"
    "  help [COMMAND]      this text, or a command's own\n"
    "\n"
    "mpigan <command> --help shows a command's options.\n";

static bool wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return true;
    return false;
}

static int cmd_toy(int argc, char **argv)
{
    if (wants_help(argc, argv) || argc != 1) {
        if (mg_dist_rank() == 0)
            printf("usage: mpigan toy CONFIG.yaml\n"
                   "Trains a small MLP on a synthetic 2-D 3-class task, data-parallel over the ranks\n"
                   "(one gradient allreduce per step), then reports test accuracy and checks that every\n"
                   "replica holds identical parameters.\n");
        return argc == 1 ? 0 : 2;
    }
    mg_cfg *cfg = mg_cfg_load_file(argv[0]);
    mg_toy_result r = mg_toy_train(cfg, true);
    mg_cfg_free(cfg);
    return r.replicas_equal ? 0 : 1;
}

static const char train_usage[] =
    "usage: mpigan train CONFIG.yaml [--set key.path=value ...] [--resume]\n"
    "Trains the config's generator and discriminator data-parallel over the MPI ranks: the global\n"
    "batch (train.batch) is split evenly, and one gradient allreduce per network and update keeps\n"
    "the replicas identical. Data: an HDF5 file (data.path; write one with `mpigan data`) or an\n"
    "in-memory source (data.source). Writes run_dir/config.yaml (the resolved config),\n"
    "run_dir/metrics.jsonl, run_dir/samples/step_<N>.png (image data, every train.sample_interval\n"
    "steps) and checkpoints (checkpoint.dir, default run_dir/checkpoints).\n"
    "  --set key.path=value  override one config value, e.g. --set train.steps=500\n"
    "                        or --set generator.layers[0].out=256 (repeatable)\n"
    "  --resume              continue from the newest complete checkpoint (fresh start if none;\n"
    "                        a config's init.from is used only on a fresh start)\n"
    "SIGTERM or SIGUSR1 (mpirun forwards SIGUSR1) finishes the current step, writes a checkpoint and\n"
    "exits 0. Exit status: 0 done or stopped by a signal, 3 NaN/Inf with train.nan_policy: stop,\n"
    "4 replicas differ at a check (before each checkpoint, and every debug.check_replicas steps).\n";

static int cmd_train(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        if (mg_dist_rank() == 0)
            fputs(train_usage, stdout);
        return 0;
    }
    const char *config = NULL;
    bool resume = false;
    const char *sets[64];
    int n_sets = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--resume"))
            resume = true;
        else if (!strcmp(argv[i], "--set") && i + 1 < argc && n_sets < 64)
            sets[n_sets++] = argv[++i];
        else if (!strncmp(argv[i], "--set=", 6) && n_sets < 64)
            sets[n_sets++] = argv[i] + 6;
        else if (argv[i][0] != '-' && !config)
            config = argv[i];
        else {
            if (mg_dist_rank() == 0)
                fprintf(stderr, "mpigan train: unexpected argument '%s'\n\n%s", argv[i], train_usage);
            return 2;
        }
    }
    if (!config) {
        if (mg_dist_rank() == 0)
            fputs(train_usage, stderr);
        return 2;
    }
    mg_train_install_signal_handlers();
    mg_cfg *cfg = mg_cfg_load_file(config);
    for (int i = 0; i < n_sets; i++)
        mg_cfg_override(cfg, sets[i]);
    mg_trainer *t = mg_trainer_create(cfg, resume, true);
    mg_train_result r = mg_trainer_run(t);
    mg_trainer_free(t);
    mg_cfg_free(cfg);
    if (r.status == MG_TRAIN_NAN)
        return 3;
    if (r.status == MG_TRAIN_DIVERGED)
        return 4;
    return r.replicas_equal ? 0 : 1;
}

static const char sample_usage[] =
    "usage: mpigan sample --checkpoint CKPT.h5 [-n N] [--seed S] [--ema] -o OUT.png|OUT.h5\n"
    "Rebuilds the generator from the checkpoint's stored config, loads its parameters and\n"
    "BatchNorm statistics, and runs it in evaluation mode on N(0, I) noise.\n"
    "  -n N       samples to draw (default 64; an 8x8 grid)\n"
    "  --seed S   noise seed (default 1)\n"
    "  --ema      use the checkpoint's EMA generator (train.ema; group G_ema) instead of G\n"
    "  -o OUT     .png: image grid (image data only); .h5: `images` float32 (N, C, H, W) in\n"
    "             [-1, 1] or `x` float32 (N, D) for vector data such as ring8/grid25\n";

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static int cmd_sample(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        if (mg_dist_rank() == 0)
            fputs(sample_usage, stdout);
        return 0;
    }
    const char *checkpoint = NULL, *out = NULL;
    long n = 64;
    unsigned long long seed = 1;
    bool ema = false;
    for (int i = 0; i < argc; i++) {
        bool has_value = i + 1 < argc;
        char *end = NULL;
        if (!strcmp(argv[i], "--checkpoint") && has_value)
            checkpoint = argv[++i];
        else if (!strcmp(argv[i], "-o") && has_value)
            out = argv[++i];
        else if (!strcmp(argv[i], "--ema"))
            ema = true;
        else if (!strcmp(argv[i], "-n") && has_value && (n = strtol(argv[++i], &end, 10), *end == 0) && n > 0 &&
                 n <= 1000000)
            ;
        else if (!strcmp(argv[i], "--seed") && has_value && (seed = strtoull(argv[++i], &end, 10), *end == 0))
            ;
        else {
            if (mg_dist_rank() == 0)
                fprintf(stderr, "mpigan sample: bad or unexpected argument '%s'\n\n%s", argv[i], sample_usage);
            return 2;
        }
    }
    if (!checkpoint || !out || !(ends_with(out, ".png") || ends_with(out, ".h5"))) {
        if (mg_dist_rank() == 0)
            fprintf(stderr, "mpigan sample: need --checkpoint and -o ending in .png or .h5\n\n%s", sample_usage);
        return 2;
    }
    if (mg_dist_rank() == 0) {
        mg_shape shape;
        float *samples = mg_sample_generate_from(checkpoint, ema ? "G_ema" : "G", (int)n, seed, &shape);
        if (ends_with(out, ".png")) {
            MG_CHECK(shape.h > 1 || shape.w > 1, out, "write -o samples.h5 for vector data (a scatter plot comes later)",
                     "the generator makes %d-dimensional vectors, not images", shape.c);
            mg_png_grid_write(out, samples, (int)n, shape.c, shape.h, shape.w);
        } else {
            mg_sample_write_h5(out, samples, (int)n, shape, checkpoint);
        }
        printf("wrote %ld samples%s to %s\n", n, ema ? " of the EMA generator" : "", out);
        mg_free(samples);
    }
    return 0;
}

static int cmd_nets(int argc, char **argv)
{
    if (wants_help(argc, argv) || argc != 1) {
        if (mg_dist_rank() == 0)
            printf("usage: mpigan nets CONFIG.yaml\n"
                   "Builds the networks under 'generator', 'discriminator' and 'model' (those present),\n"
                   "checks that their shapes chain, and prints each layer's output shape and size.\n"
                   "The discriminator is built for train.pack samples at once when the key is set.\n");
        return argc == 1 ? 0 : 2;
    }
    mg_cfg *cfg = mg_cfg_load_file(argv[0]);
    mg_cfg_node root = mg_cfg_root(cfg);
    static const char *const sections[] = {"generator", "discriminator", "model"};
    static const char *const short_names[] = {"G", "D", "M"};
    int built = 0;
    for (int i = 0; i < 3; i++) {
        mg_cfg_node spec = mg_cfg_get(root, sections[i]);
        if (!mg_cfg_present(spec))
            continue;
        /* PacGAN: D judges train.pack samples stacked along channels */
        int pack = 1;
        if (i == 1) {
            mg_cfg_node train = mg_cfg_get(root, "train");
            if (mg_cfg_type_of(train) == MG_CFG_MAPPING)
                pack = (int)mg_cfg_int(train, "pack", 1, 1, 1024);
        }
        mg_net net;
        mg_net_from_cfg_packed(&net, short_names[i], spec, (mg_shape){0, 0, 0}, pack, 1);
        if (mg_dist_rank() == 0) {
            mg_net_print(&net, stdout);
            printf("  forward: %.2f MFLOP per sample\n", 2e-6 * mg_net_forward_macs(&net));
        }
        mg_net_free(&net);
        built++;
    }
    MG_CHECK(built > 0, argv[0], "add a 'generator', 'discriminator' or 'model' section", "no network in the file");
    mg_cfg_free(cfg);
    return 0;
}

static int cmd_info(const char *threads_why)
{
    if (mg_dist_rank() == 0)
        printf("mpigan %s\nOpenBLAS core: %s, threads per rank: %d (%s)\nMPI ranks: %d, %d on this node\n",
               MPIGAN_VERSION, openblas_get_corename(), openblas_get_num_threads(), threads_why, mg_dist_size(),
               mg_dist_node_size());
    return 0;
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    /* several ranks on a node: one OpenBLAS thread each, unless the environment says
     * otherwise (`train` applies its train.threads on top) */
    char threads_why[160];
    mg_blas_threads_apply(0, threads_why, sizeof threads_why);
    int rc;
    const char *cmd = argc > 1 ? argv[1] : "help";
    if (!strcmp(cmd, "train"))
        rc = cmd_train(argc - 2, argv + 2);
    else if (!strcmp(cmd, "sample"))
        rc = cmd_sample(argc - 2, argv + 2);
    else if (!strcmp(cmd, "data"))
        rc = mg_data_command(argc - 1, argv + 1);
    else if (!strcmp(cmd, "classifier"))
        rc = mg_classifier_command(argc - 1, argv + 1);
    else if (!strcmp(cmd, "eval"))
        rc = mg_eval_command(argc - 1, argv + 1);
    else if (!strcmp(cmd, "toy"))
        rc = cmd_toy(argc - 2, argv + 2);
    else if (!strcmp(cmd, "nets"))
        rc = cmd_nets(argc - 2, argv + 2);
    else if (!strcmp(cmd, "info"))
        rc = cmd_info(threads_why);
    else if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        if (argc > 2) {
            char *help[] = {"--help"};
            if (!strcmp(argv[2], "train"))
                return cmd_train(1, help), mg_dist_finalize(), 0;
            if (!strcmp(argv[2], "sample"))
                return cmd_sample(1, help), mg_dist_finalize(), 0;
            if (!strcmp(argv[2], "eval")) {
                char *eval_help[] = {"eval", "--help"};
                return mg_eval_command(2, eval_help), mg_dist_finalize(), 0;
            }
            if (!strcmp(argv[2], "classifier")) {
                char *classifier_help[] = {"classifier", "--help"};
                return mg_classifier_command(2, classifier_help), mg_dist_finalize(), 0;
            }
            if (!strcmp(argv[2], "data")) {
                char *data_help[] = {"data", "--help"};
                return mg_data_command(2, data_help), mg_dist_finalize(), 0;
            }
            if (!strcmp(argv[2], "toy"))
                return cmd_toy(1, help), mg_dist_finalize(), 0;
            if (!strcmp(argv[2], "nets"))
                return cmd_nets(1, help), mg_dist_finalize(), 0;
        }
        if (mg_dist_rank() == 0)
            fputs(usage, stdout);
        rc = 0;
    } else {
        if (mg_dist_rank() == 0)
            fprintf(stderr, "mpigan: unknown command '%s'\n\n%s", cmd, usage);
        rc = 2;
    }
    mg_dist_finalize();
    return rc;
}
