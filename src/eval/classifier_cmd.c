/* `mpigan classifier ...`: the command line of the feature extractor's training
 * (mg_classifier.h). Its one command, train, keeps the config's text and the --set
 * overrides so that the model file can rebuild the network. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mg_cfg.h"
#include "mg_cfg_override.h"
#include "mg_classifier.h"
#include "mg_cmd.h"
#include "mg_error.h"

static const char train_usage[] =
    "usage: mpigan classifier train CONFIG.yaml [--set key.path=value ...]\n"
    "Trains the evaluation's feature extractor (a small CNN, configs/classifier.yaml) data-parallel over\n"
    "the ranks on a labelled image set, scores it on the test set, and writes the model file\n"
    "(classifier.out) with a checksum attribute. `mpigan eval` measures FID, IS and KID with it.\n"
    "The classes are the data's labels, or with classifier.label: {factor: NAME} one factor column of\n"
    "a shapes file (`mpigan data shapes`): a factor classifier for `mpigan eval --coverage`.\n"
    "  --set key.path=value  override one config value, e.g. --set classifier.epochs=2 (repeatable)\n";

/* The whole file as a string (mg_free). */
static char *read_text_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    MG_CHECK(f != NULL, path, "check the path", "cannot open: %s", strerror(errno));
    MG_CHECK(fseek(f, 0, SEEK_END) == 0, path, NULL, "cannot seek: %s", strerror(errno));
    long len = ftell(f);
    MG_CHECK(len >= 0 && fseek(f, 0, SEEK_SET) == 0, path, NULL, "cannot size: %s", strerror(errno));
    char *text = mg_alloc((size_t)len + 1, path);
    MG_CHECK(fread(text, 1, (size_t)len, f) == (size_t)len, path, NULL, "short read");
    text[len] = 0;
    fclose(f);
    return text;
}

enum { MAX_SETS = 64 };

static int cmd_train(int argc, char **argv)
{
    static const struct option options[] = {
        {"set", required_argument, NULL, 's'},
        {0},
    };
    const char *sets[MAX_SETS];
    int n_sets = 0;
    mg_cmd_parser p;
    mg_cmd_parse_begin(&p, "mpigan classifier train", train_usage, "", options, argc, argv);
    for (int c; (c = mg_cmd_next(&p));) {
        if (c != 's')
            continue;
        if (n_sets == MAX_SETS)
            mg_cmd_usage_error(&p, "more than %d --set options", MAX_SETS);
        else if (strchr(p.value, '\n'))
            mg_cmd_usage_error(&p, "an override cannot contain a newline: '%s'", p.value);
        else
            sets[n_sets++] = p.value;
    }
    if (!mg_cmd_parse_end(&p, 1, 1, "CONFIG.yaml"))
        return p.status;

    /* the overrides as stored in the model file: one per line */
    size_t over_len = 1;
    for (int i = 0; i < n_sets; i++)
        over_len += strlen(sets[i]) + 1;
    char *overrides = mg_alloc(over_len, "overrides");
    for (int i = 0, at = 0; i < n_sets; i++)
        at += sprintf(overrides + at, "%s\n", sets[i]);

    const char *config = p.args[0];
    char *text = read_text_file(config);
    mg_cfg *cfg = mg_cfg_parse(text, config);
    for (int i = 0; i < n_sets; i++)
        mg_cfg_override(cfg, sets[i]);
    mg_classifier_result r = mg_classifier_train(cfg, text, overrides, true);
    mg_cfg_free(cfg);
    mg_free(text);
    mg_free(overrides);
    return r.replicas_equal ? 0 : 1;
}

static const mg_cmd classifier_commands[] = {
    {"train", cmd_train, "CONFIG.yaml [--set key.path=value ...]",
     "train the feature extractor data-parallel and write its model file"},
};

static const mg_cmd_table classifier_table = {
    .prog = "mpigan classifier",
    .about = "The evaluation's feature extractor (configs/classifier.yaml); `mpigan eval` measures\n"
             "FID, IS and KID with it.\n",
    .cmds = classifier_commands,
    .n_cmds = (int)(sizeof classifier_commands / sizeof classifier_commands[0]),
};

int mg_cmd_classifier(int argc, char **argv) { return mg_cmd_dispatch(&classifier_table, argc, argv); }
