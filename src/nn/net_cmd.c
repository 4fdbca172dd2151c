/* `mpigan nets`: builds a config's networks (mg_net.h) and prints their layers, so a
 * config's shapes can be checked without training. */
#include <stdio.h>

#include "mg_cfg.h"
#include "mg_cmd.h"
#include "mg_dist.h"
#include "mg_error.h"
#include "mg_net.h"

static const char nets_usage[] =
    "usage: mpigan nets CONFIG.yaml\n"
    "Builds the networks under 'generator', 'discriminator' and 'model' (those present),\n"
    "checks that their shapes chain, and prints each layer's output shape and size.\n"
    "The discriminator is built for train.pack samples at once when the key is set.\n";

int mg_cmd_nets(int argc, char **argv)
{
    mg_cmd_parser p;
    if (!mg_cmd_parse_plain(&p, "mpigan nets", nets_usage, argc, argv, 1, 1, "CONFIG.yaml"))
        return p.status;
    const char *path = p.args[0];
    mg_cfg *cfg = mg_cfg_load_file(path);
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
    MG_CHECK(built > 0, path, "add a 'generator', 'discriminator' or 'model' section", "no network in the file");
    mg_cfg_free(cfg);
    return 0;
}
