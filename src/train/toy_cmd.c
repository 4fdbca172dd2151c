/* `mpigan toy`: the command line of the data-parallel example (mg_toy.h). */
#include "mg_cfg.h"
#include "mg_cmd.h"
#include "mg_toy.h"

static const char toy_usage[] =
    "usage: mpigan toy CONFIG.yaml\n"
    "Trains a small MLP on a synthetic 2-D 3-class task, data-parallel over the ranks\n"
    "(one gradient allreduce per step), then reports test accuracy and checks that every\n"
    "replica holds identical parameters.\n";

int mg_cmd_toy(int argc, char **argv)
{
    mg_cmd_parser p;
    if (!mg_cmd_parse_plain(&p, "mpigan toy", toy_usage, argc, argv, 1, 1, "CONFIG.yaml"))
        return p.status;
    mg_cfg *cfg = mg_cfg_load_file(p.args[0]);
    mg_toy_result r = mg_toy_train(cfg, true);
    mg_cfg_free(cfg);
    return r.replicas_equal ? 0 : 1;
}
