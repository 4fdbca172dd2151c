/* `mpigan train`: the command line of the GAN trainer (mg_train.h). */
#include "mg_cmd.h"
#include "mg_cfg.h"
#include "mg_cfg_override.h"
#include "mg_train.h"

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

enum { MAX_SETS = 64 };

int mg_cmd_train(int argc, char **argv)
{
    static const struct option options[] = {
        {"set", required_argument, NULL, 's'},
        {"resume", no_argument, NULL, 'r'},
        {0},
    };
    const char *sets[MAX_SETS];
    int n_sets = 0;
    bool resume = false;
    mg_cmd_parser p;
    mg_cmd_parse_begin(&p, "mpigan train", train_usage, "", options, argc, argv);
    for (int c; (c = mg_cmd_next(&p));) {
        switch (c) {
        case 's':
            if (n_sets == MAX_SETS)
                mg_cmd_usage_error(&p, "more than %d --set options", MAX_SETS);
            else
                sets[n_sets++] = p.value;
            break;
        case 'r':
            resume = true;
            break;
        }
    }
    if (!mg_cmd_parse_end(&p, 1, 1, "CONFIG.yaml"))
        return p.status;

    mg_train_install_signal_handlers();
    mg_cfg *cfg = mg_cfg_load_file(p.args[0]);
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
