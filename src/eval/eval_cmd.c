/* `mpigan eval`: the command-line front end of the evaluation (mg_eval.h). It decides
 * what the input is (a checkpoint's generator, a samples file, a real data file), whether
 * it holds images (extractor metrics) or 2-D vectors (mode counting), where the report
 * goes, and prints it: the JSON object on stdout and in the report file, a readable
 * summary and progress on stderr. */
#include "mg_eval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_cfg.h"
#include "mg_checkpoint.h"
#include "mg_cmd.h"
#include "mg_convert.h"
#include "mg_dist.h"
#include "mg_error.h"
#include "mg_eval_files.h"
#include "mg_h5schema.h"

static const char eval_usage[] =
    "usage: mpigan eval [CHECKPOINT.h5 | --samples FILE.h5 | --real FILE.h5] [options]\n"
    "Scores samples with the feature extractor (`mpigan classifier train`): FID and KID against the\n"
    "reference data's statistics (cached), Inception Score and class coverage, and for a conditional\n"
    "generator (or labelled real data) class accuracy, per-class FID and intra-FID; for 2-D vectors (ring8,\n"
    "grid25) mode counting and a scatter plot instead. Work is shared over the MPI ranks.\n"
    "input (one of):\n"
    "  CHECKPOINT.h5         a training checkpoint's generator (also --checkpoint CHECKPOINT.h5)\n"
    "  --ema                 use the checkpoint's EMA generator (group G_ema) instead of G\n"
    "  --samples FILE.h5     any generator's samples: `images` (N, C, H, W) float32 in [-1, 1] or uint8,\n"
    "                        or `x` (N, 2) float32 (`mpigan sample -o FILE.h5` writes these)\n"
    "  --real FILE.h5        a data file in mpigan's format: scores real data (floors and ceilings)\n"
    "options:\n"
    "  -n N                  samples (checkpoint: 10000 images or 2500 vectors; files: all of them)\n"
    "  --seed S              noise, IS splits and KID subsets (default 1)\n"
    "  --extractor FILE.h5   the classifier (default runs/classifier/classifier.h5)\n"
    "  --coverage FILE.h5    a factor classifier (classifier.label: {factor: NAME}): report which values\n"
    "                        of that factor the samples show (factor coverage); repeat for each factor\n"
    "  --reference FILE.h5   real data to compare with (default: the classifier's training data)\n"
    "  --cache-dir DIR       where reference statistics are cached (default: the extractor's folder)\n"
    "  --splits K            IS splits (default 10)\n"
    "  --kid-subsets S       KID subsets (default 100)\n"
    "  --kid-subset-size M   KID subset size (default 1000)\n"
    "  --batch B             samples per rank and batch (default 250)\n"
    "  -o OUT.json           the report (default: the input's name with .h5 replaced by .eval.json)\n"
    "  --save-features F.h5  also write every sample's features and class probabilities\n"
    "  --png FILE.png        2-D data: the scatter plot (default: OUT.json's name with .png)\n"
    "  --mixture ring|grid   2-D data: the true mixture, when the input does not say\n";

typedef struct {
    const char *checkpoint, *samples, *real, *out, *save_features, *png, *mixture;
    bool ema;
    long long n;
    unsigned long long seed;
    mg_eval_cfg cfg;
} eval_args;

/* Returns true when the command should go on; otherwise the usage or an error is
 * printed and p->status is the exit status. */
static bool parse_args(mg_cmd_parser *p, int argc, char **argv, eval_args *a)
{
    enum { CHECKPOINT = 1000, SAMPLES, REAL, SAVE_FEATURES, PNG, MIXTURE, EXTRACTOR, REFERENCE, CACHE_DIR, SEED,
           SPLITS, KID_SUBSETS, KID_SUBSET_SIZE, BATCH, EMA, COVERAGE };
    static const struct option options[] = {
        {"checkpoint", required_argument, NULL, CHECKPOINT},
        {"samples", required_argument, NULL, SAMPLES},
        {"real", required_argument, NULL, REAL},
        {"ema", no_argument, NULL, EMA},
        {"save-features", required_argument, NULL, SAVE_FEATURES},
        {"png", required_argument, NULL, PNG},
        {"mixture", required_argument, NULL, MIXTURE},
        {"extractor", required_argument, NULL, EXTRACTOR},
        {"coverage", required_argument, NULL, COVERAGE},
        {"reference", required_argument, NULL, REFERENCE},
        {"cache-dir", required_argument, NULL, CACHE_DIR},
        {"seed", required_argument, NULL, SEED},
        {"splits", required_argument, NULL, SPLITS},
        {"kid-subsets", required_argument, NULL, KID_SUBSETS},
        {"kid-subset-size", required_argument, NULL, KID_SUBSET_SIZE},
        {"batch", required_argument, NULL, BATCH},
        {0},
    };
    memset(a, 0, sizeof *a);
    mg_eval_cfg_default(&a->cfg);
    a->seed = 1;
    mg_cmd_parse_begin(p, "mpigan eval", eval_usage, "n:o:", options, argc, argv);
    for (int c; (c = mg_cmd_next(p));) {
        const char *v = p->value;
        long long x = 0;
        switch (c) {
        case CHECKPOINT: a->checkpoint = v; break;
        case SAMPLES: a->samples = v; break;
        case REAL: a->real = v; break;
        case EMA: a->ema = true; break;
        case 'o': a->out = v; break;
        case SAVE_FEATURES: a->save_features = v; break;
        case PNG: a->png = v; break;
        case MIXTURE:
            a->mixture = v;
            if (strcmp(v, "ring") != 0 && strcmp(v, "grid") != 0)
                mg_cmd_usage_error(p, "option '--mixture': '%s' is neither ring nor grid", v);
            break;
        case EXTRACTOR: snprintf(a->cfg.extractor, sizeof a->cfg.extractor, "%s", v); break;
        case COVERAGE:
            if (a->cfg.n_coverage == MG_COVERAGE_MAX)
                mg_cmd_usage_error(p, "option '--coverage': more than %d factor classifiers", MG_COVERAGE_MAX);
            else if (strlen(v) >= sizeof a->cfg.coverage[0])
                mg_cmd_usage_error(p, "option '--coverage': path too long");
            else
                snprintf(a->cfg.coverage[a->cfg.n_coverage++], sizeof a->cfg.coverage[0], "%s", v);
            break;
        case REFERENCE: snprintf(a->cfg.reference, sizeof a->cfg.reference, "%s", v); break;
        case CACHE_DIR: snprintf(a->cfg.cache_dir, sizeof a->cfg.cache_dir, "%s", v); break;
        case 'n': mg_cmd_int(p, 1, 1LL << 40, &a->n); break;
        case SEED:
            if (mg_cmd_int(p, 0, 1LL << 62, &x))
                a->seed = (unsigned long long)x;
            break;
        case SPLITS:
            if (mg_cmd_int(p, 1, 1000, &x))
                a->cfg.splits = (int)x;
            break;
        case KID_SUBSETS:
            if (mg_cmd_int(p, 1, 100000, &x))
                a->cfg.kid_subsets = (int)x;
            break;
        case KID_SUBSET_SIZE:
            if (mg_cmd_int(p, 2, 1000000, &x))
                a->cfg.kid_subset_size = (int)x;
            break;
        case BATCH:
            if (mg_cmd_int(p, 1, 1 << 20, &x))
                a->cfg.batch = (int)x;
            break;
        }
    }
    if (!mg_cmd_parse_end(p, 0, 1, "CHECKPOINT.h5"))
        return false;
    if (p->n_args == 1) {
        if (a->checkpoint)
            return mg_cmd_usage_error(p, "two checkpoints: '%s' and '%s'", a->checkpoint, p->args[0]), false;
        a->checkpoint = p->args[0];
    }
    const int inputs = !!a->checkpoint + !!a->samples + !!a->real;
    if (inputs != 1)
        return mg_cmd_usage_error(p, "give exactly one input (a checkpoint, --samples or --real)"), false;
    return true;
}

/* name with a trailing ".h5" replaced by suffix. */
static void replace_suffix(char *dst, size_t size, const char *name, const char *suffix)
{
    snprintf(dst, size, "%s", name);
    size_t len = strlen(dst);
    if (len > 3 && !strcmp(dst + len - 3, ".h5"))
        dst[len - 3] = 0;
    snprintf(dst + strlen(dst), size - strlen(dst), "%s", suffix);
}

/* The mixture a checkpoint's training data came from (data.source or data.path). */
static bool checkpoint_mixture(mg_cfg *cfg, mg_mixture_info *mix)
{
    mg_cfg_node data = mg_cfg_get(mg_cfg_root(cfg), "data");
    const char *source = mg_cfg_string(data, "source", NULL);
    if (source && !strcmp(source, "ring8"))
        return mg_mixture_params(mix, MG_MIXTURE_RING, 0), true;
    if (source && !strcmp(source, "grid25"))
        return mg_mixture_params(mix, MG_MIXTURE_GRID, 0), true;
    const char *path = mg_cfg_string(data, "path", NULL);
    if (!path)
        return false;
    mg_data_info info;
    mg_h5_file *f = mg_h5_open_or_fail(path, &info);
    const bool found = mg_h5_read_mixture(f, mix);
    mg_h5_close(f);
    mg_data_info_free(&info);
    return found;
}

static bool file_mixture(const char *path, mg_mixture_info *mix)
{
    mg_data_info info;
    mg_h5_file *f = mg_h5_open_or_fail(path, &info);
    const bool found = mg_h5_read_mixture(f, mix);
    mg_h5_close(f);
    mg_data_info_free(&info);
    return found;
}

static void write_report(const char *path, const char *json)
{
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    MG_CHECK(f, tmp, "check the path of -o", "cannot write the report");
    MG_CHECK(fprintf(f, "%s\n", json) > 0 && fclose(f) == 0, tmp, "check the disk", "cannot write the report");
    MG_CHECK(rename(tmp, path) == 0, path, NULL, "cannot rename the report into place");
}

int mg_cmd_eval(int argc, char **argv)
{
    eval_args a;
    mg_cmd_parser p;
    if (!parse_args(&p, argc, argv, &a))
        return p.status;
    const bool root = mg_dist_rank() == 0;
    a.cfg.verbose = true;
    const char *input = a.checkpoint ? a.checkpoint : a.samples ? a.samples : a.real;
    char out[1100], png[1100];
    if (a.out)
        snprintf(out, sizeof out, "%s", a.out);
    else
        replace_suffix(out, sizeof out, input, ".eval.json");
    if (a.png)
        snprintf(png, sizeof png, "%s", a.png);
    else {
        snprintf(png, sizeof png, "%s", out);
        size_t len = strlen(png);
        if (len > 5 && !strcmp(png + len - 5, ".json"))
            png[len - 5] = 0;
        snprintf(png + strlen(png), sizeof png - strlen(png), ".png");
    }

    /* what the input holds */
    mg_net G;
    mg_cfg *ckpt_cfg = NULL;
    char *ckpt_text = NULL;
    bool vectors;
    if (a.checkpoint) {
        long step = 0;
        ckpt_text = mg_ckpt_read_config(a.checkpoint, &step);
        char name[1200];
        snprintf(name, sizeof name, "%s:/meta/config", a.checkpoint);
        ckpt_cfg = mg_cfg_parse(ckpt_text, name);
        mg_net_from_cfg(&G, "G", mg_cfg_require(mg_cfg_root(ckpt_cfg), "generator"), (mg_shape){0, 0, 0}, a.cfg.batch);
        mg_ckpt_read_net(a.checkpoint, a.ema ? "G_ema" : "G", &G);
        vectors = G.out.h == 1 && G.out.w == 1;
        a.cfg.samples_shape = G.out; /* checked against the extractors before any work */
    } else if (a.samples) {
        mg_samples_info info;
        mg_samples_close(mg_samples_open(a.samples, &info));
        vectors = !info.images;
    } else {
        mg_data_info info;
        mg_h5_file *f = mg_h5_open_or_fail(a.real, &info);
        vectors = info.kind == MG_DATA_VECTORS;
        mg_h5_close(f);
        mg_data_info_free(&info);
    }

    mg_eval_result r;
    if (vectors) {
        mg_mixture_info mix = {0};
        bool known = false;
        if (a.mixture)
            mg_mixture_params(&mix, !strcmp(a.mixture, "ring") ? MG_MIXTURE_RING : MG_MIXTURE_GRID, 0), known = true;
        else if (a.checkpoint)
            known = checkpoint_mixture(ckpt_cfg, &mix);
        else if (a.real)
            known = file_mixture(a.real, &mix);
        else if (a.cfg.reference[0])
            known = file_mixture(a.cfg.reference, &mix);
        MG_CHECK(known, input, "name it with --mixture ring|grid, or --reference a mixture data file",
                 "2-D samples, but which mixture they should match is unknown");
        MG_CHECK(a.cfg.n_coverage == 0, input, "factor coverage scores images; leave out --coverage",
                 "2-D samples (mode counting) have no factors for --coverage %s", a.cfg.coverage[0]);
        const int64_t n = a.n > 0 ? a.n : (a.checkpoint ? 2500 : 0);
        if (a.checkpoint) {
            r = mg_eval_mixture_generator(&G, n, a.seed, &mix, a.cfg.batch, png);
            snprintf(r.source, sizeof r.source, "checkpoint %s%s", a.checkpoint, a.ema ? " (G_ema)" : "");
        } else {
            r = mg_eval_mixture_file(a.samples ? a.samples : a.real, a.real != NULL, n, &mix, a.cfg.batch, png);
        }
    } else {
        mg_evaluator *e = mg_evaluator_create(&a.cfg);
        if (a.save_features)
            mg_evaluator_save_features(e, a.save_features);
        if (a.checkpoint) {
            r = mg_evaluator_run_generator(e, &G, a.n > 0 ? a.n : 10000, a.seed);
            snprintf(r.source, sizeof r.source, "checkpoint %s%s", a.checkpoint, a.ema ? " (G_ema)" : "");
        } else {
            r = mg_evaluator_run_file(e, a.samples ? a.samples : a.real, a.real != NULL, a.n, a.seed);
        }
        mg_evaluator_free(e);
    }
    if (root) {
        char *json = mg_eval_result_json(&r);
        char *summary = mg_eval_result_text(&r);
        write_report(out, json);
        fputs(summary, stderr);
        fprintf(stderr, "eval: report in %s%s%s\n", out, vectors ? ", scatter plot in " : "", vectors ? png : "");
        printf("%s\n", json);
        fflush(stdout);
        mg_free(json);
        mg_free(summary);
    }
    if (a.checkpoint) {
        mg_net_free(&G);
        mg_cfg_free(ckpt_cfg);
        mg_free(ckpt_text);
    }
    return 0;
}
