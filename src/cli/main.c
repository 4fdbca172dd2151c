/* mpigan's entry point: one subcommand per job, found in one table. Every command runs
 * under mpirun (or alone, as one rank); MPI is initialised first so that any error ends
 * all ranks. The commands themselves live beside their subsystems (src/<subsystem>/<name>_cmd.c), whose
 * headers declare them. */
#include "mg_blas_threads.h"
#include "mg_classifier.h"
#include "mg_cmd.h"
#include "mg_convert.h"
#include "mg_dist.h"
#include "mg_eval.h"
#include "mg_info_cmd.h"
#include "mg_net.h"
#include "mg_sample.h"
#include "mg_toy.h"
#include "mg_train.h"

static const mg_cmd commands[] = {
    {"train", mg_cmd_train, "CONFIG.yaml",
     "train a GAN data-parallel (configs/fmnist_dcgan.yaml, configs/ring8.yaml)"},
    {"sample", mg_cmd_sample, "...", "draw samples from a checkpoint's generator (PNG grid or HDF5)"},
    {"data", mg_cmd_data, "...", "write training data as HDF5 (fmnist, mixture, png) or check a file (info)"},
    {"classifier", mg_cmd_classifier, "...", "train the evaluation's feature extractor (configs/classifier.yaml)"},
    {"eval", mg_cmd_eval, "...",
     "FID, IS, KID and class coverage of a checkpoint or samples (mode counting for 2-D)"},
    {"toy", mg_cmd_toy, "CONFIG.yaml", "train the tiny example classifier data-parallel (configs/toy.yaml)"},
    {"nets", mg_cmd_nets, "CONFIG.yaml", "build the config's networks, check their shapes, print their layers"},
    {"info", mg_cmd_info, "", "versions, OpenBLAS kernel and threads, oneDNN and bf16, MPI ranks"},
};

static const mg_cmd_table table = {
    .prog = "mpigan",
    .about = "Run it under mpirun for several ranks.\n",
    .cmds = commands,
    .n_cmds = (int)(sizeof commands / sizeof commands[0]),
};

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    /* several ranks on a node: one OpenBLAS thread each, unless the environment says
     * otherwise (`train` applies its train.threads on top) */
    char threads_why[160];
    mg_blas_threads_apply(0, threads_why, sizeof threads_why);
    /* a bare `mpigan` prints the listing and succeeds, like `mpigan help` */
    char *help_argv[] = {argv[0], "help", NULL};
    const int rc = argc < 2 ? mg_cmd_dispatch(&table, 2, help_argv) : mg_cmd_dispatch(&table, argc, argv);
    mg_dist_finalize();
    return rc;
}
