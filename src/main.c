/* mpigan's command line: one subcommand per job. Every command runs under mpirun
 * (or alone, as one rank); MPI is initialised first so that any error ends all ranks. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_cfg.h"
#include "mg_dist.h"
#include "mg_error.h"
#include "mg_net.h"
#include "mg_toy.h"

#define MPIGAN_VERSION "0.1.0"

static const char usage[] =
    "usage: mpigan <command> [options]      (run under mpirun for several ranks)\n"
    "\n"
    "commands:\n"
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

static int cmd_nets(int argc, char **argv)
{
    if (wants_help(argc, argv) || argc != 1) {
        if (mg_dist_rank() == 0)
            printf("usage: mpigan nets CONFIG.yaml\n"
                   "Builds the networks under 'generator', 'discriminator' and 'model' (those present),\n"
                   "checks that their shapes chain, and prints each layer's output shape and size.\n");
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
        mg_net net;
        mg_net_from_cfg(&net, short_names[i], spec, (mg_shape){0, 0, 0}, 1);
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

static int cmd_info(void)
{
    if (mg_dist_rank() == 0)
        printf("mpigan %s\nOpenBLAS core: %s, threads: %d\nMPI ranks: %d\n", MPIGAN_VERSION, openblas_get_corename(),
               openblas_get_num_threads(), mg_dist_size());
    return 0;
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    int rc;
    const char *cmd = argc > 1 ? argv[1] : "help";
    if (!strcmp(cmd, "toy"))
        rc = cmd_toy(argc - 2, argv + 2);
    else if (!strcmp(cmd, "nets"))
        rc = cmd_nets(argc - 2, argv + 2);
    else if (!strcmp(cmd, "info"))
        rc = cmd_info();
    else if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        if (argc > 2) {
            char *help[] = {"--help"};
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
