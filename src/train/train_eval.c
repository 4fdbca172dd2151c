/* Evaluation during training (see mg_train_eval.h): the eval: config section, and the
 * periodic scoring of a copy of the generator with the evaluator of `mpigan eval`. */
#include "mg_train_eval.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mg_convert.h"
#include "mg_dist.h"
#include "mg_error.h"
#include "mg_eval.h"
#include "mg_h5schema.h"
#include "mg_text.h"
#include "mg_util.h"

#define DEFAULT_IMAGE_SAMPLES 5000
#define DEFAULT_MIXTURE_SAMPLES 2500

/* ---- config ---- */

static void copy_key(char *dst, size_t size, mg_cfg_node map, const char *key, const char *def)
{
    mg_cfg_node n = mg_cfg_get(map, key);
    const char *s = mg_cfg_present(n) ? mg_cfg_as_string(n) : def;
    if (strlen(s) >= size)
        mg_cfg_fail(n, NULL, "string longer than %zu characters", size - 1);
    snprintf(dst, size, "%s", s);
}

/* eval.coverage: a list of factor classifiers' model files (absent or []: none). */
static void read_coverage(mg_train_eval_cfg *c, mg_cfg_node list)
{
    c->n_coverage = 0;
    c->coverage_where[0] = 0;
    if (!mg_cfg_present(list))
        return;
    static const char hint[] = "list factor classifiers' model files: coverage: [runs/x/classifier.h5, ...]";
    if (mg_cfg_type_of(list) != MG_CFG_SEQUENCE)
        mg_cfg_fail(list, hint, "not a list");
    const int n = mg_cfg_seq_len(list);
    if (n > MG_COVERAGE_MAX)
        mg_cfg_fail(list, hint, "%d files, at most %d", n, MG_COVERAGE_MAX);
    for (int j = 0; j < n; j++) {
        mg_cfg_node item = mg_cfg_seq_at(list, j);
        const char *path = mg_cfg_as_string(item);
        if (!path[0] || strlen(path) >= sizeof c->coverage[0])
            mg_cfg_fail(item, hint, "the path is empty or longer than %zu characters", sizeof c->coverage[0] - 1);
        snprintf(c->coverage[j], sizeof c->coverage[j], "%s", path);
    }
    c->n_coverage = n;
    mg_cfg_where(list, c->coverage_where, sizeof c->coverage_where);
}

void mg_train_eval_cfg_read(mg_train_eval_cfg *c, mg_cfg_node eval, uint64_t train_seed)
{
    memset(c, 0, sizeof *c);
    mg_cfg_expect_mapping(eval);
    c->interval = mg_cfg_int(eval, "interval", 0, 0, 1L << 40);
    c->samples = mg_cfg_int(eval, "samples", 0, 0, 1L << 32);
    c->seed = (uint64_t)mg_cfg_int(eval, "seed", (long)train_seed, 0, 1L << 62);
    c->batch = (int)mg_cfg_int(eval, "batch", 100, 1, 1 << 16);
    c->splits = (int)mg_cfg_int(eval, "splits", 10, 1, 1000);
    c->kid_subsets = (int)mg_cfg_int(eval, "kid_subsets", 20, 1, 100000);
    c->kid_subset_size = (int)mg_cfg_int(eval, "kid_subset_size", 1000, 2, 1000000);
    copy_key(c->extractor, sizeof c->extractor, eval, "extractor", "runs/classifier/classifier.h5");
    copy_key(c->reference, sizeof c->reference, eval, "reference", "");
    copy_key(c->cache_dir, sizeof c->cache_dir, eval, "cache_dir", "");
    read_coverage(c, mg_cfg_get(eval, "coverage"));
    if (mg_cfg_present(eval))
        mg_cfg_where(eval, c->where, sizeof c->where);
    else
        snprintf(c->where, sizeof c->where, "eval");
    if (c->samples > 0 && c->samples < c->splits)
        mg_cfg_fail(mg_cfg_get(eval, "samples"), "evaluate at least as many samples as IS splits",
                    "%ld samples for %d splits", c->samples, c->splits);
}

/* A string as a double-quoted YAML scalar. */
static void quoted(char *dst, size_t size, const char *s)
{
    size_t k = 0;
    if (size < 3)
        return;
    dst[k++] = '"';
    for (; *s && k + 3 < size; s++) {
        if (*s == '"' || *s == '\\')
            dst[k++] = '\\';
        dst[k++] = *s;
    }
    dst[k++] = '"';
    dst[k] = 0;
}

char *mg_train_eval_cfg_yaml(const mg_train_eval_cfg *c)
{
    char ex[2100], ref[2100], cache[2100], item[2100];
    quoted(ex, sizeof ex, c->extractor);
    quoted(ref, sizeof ref, c->reference);
    quoted(cache, sizeof cache, c->cache_dir);
    mg_text t = {0};
    mg_text_put(&t,
                "eval: {interval: %ld, samples: %ld, seed: %llu, batch: %d, splits: %d, kid_subsets: %d, "
                "kid_subset_size: %d, extractor: %s, reference: %s, cache_dir: %s, coverage: [",
                c->interval, c->samples, (unsigned long long)c->seed, c->batch, c->splits, c->kid_subsets,
                c->kid_subset_size, ex, ref, cache);
    for (int j = 0; j < c->n_coverage; j++) {
        quoted(item, sizeof item, c->coverage[j]);
        mg_text_put(&t, "%s%s", j ? ", " : "", item);
    }
    mg_text_put(&t, "]}\n");
    return mg_text_take(&t);
}

/* ---- the evaluation ---- */

struct mg_train_eval {
    mg_train_eval_cfg cfg;
    bool verbose, mixture;
    int64_t samples;
    mg_net G;                   /* the evaluated copy */
    mg_evaluator *evaluator;    /* images */
    mg_mixture_info mix;        /* 2-D data */
    char plot_dir[1100];
};

mg_train_eval *mg_train_eval_create(const mg_train_eval_cfg *c, const mg_train_eval_target *target, bool verbose)
{
    if (c->interval <= 0)
        return NULL;
    mg_train_eval *e = mg_alloc(sizeof *e, "training evaluation");
    e->cfg = *c;
    e->verbose = verbose && mg_dist_rank() == 0;
    const mg_shape out = target->G->out;
    e->mixture = out.h == 1 && out.w == 1;
    e->samples = c->samples > 0 ? c->samples : e->mixture ? DEFAULT_MIXTURE_SAMPLES : DEFAULT_IMAGE_SAMPLES;
    mg_error_set_context(c->where);
    if (e->mixture) {
        bool known = false;
        if (target->mixture_kind >= 0) {
            mg_mixture_params(&e->mix, (mg_mixture_kind)target->mixture_kind, 0);
            known = true;
        } else if (target->data_path) {
            mg_data_info info;
            mg_h5_file *f = mg_h5_open_or_fail(target->data_path, &info);
            known = mg_h5_read_mixture(f, &e->mix);
            mg_h5_close(f);
            mg_data_info_free(&info);
        }
        MG_CHECK(known && out.c == 2, "eval.interval",
                 "evaluation scores images with the extractor, or 2-D samples of a known mixture (ring8, grid25); "
                 "set eval.interval: 0",
                 "G makes %dx%dx%d samples, and the training data are no known 2-D mixture", out.c, out.h, out.w);
        snprintf(e->plot_dir, sizeof e->plot_dir, "%s/eval", target->run_dir);
        MG_CHECK(c->n_coverage == 0, "eval.coverage", "factor coverage scores images; remove eval.coverage",
                 "G makes 2-D samples (mode counting), which have no factors");
    } else {
        mg_eval_cfg ec;
        mg_eval_cfg_default(&ec);
        snprintf(ec.extractor, sizeof ec.extractor, "%s", c->extractor);
        snprintf(ec.reference, sizeof ec.reference, "%s", c->reference);
        snprintf(ec.cache_dir, sizeof ec.cache_dir, "%s", c->cache_dir);
        ec.batch = c->batch;
        ec.splits = c->splits;
        ec.kid_subsets = c->kid_subsets;
        ec.kid_subset_size = c->kid_subset_size;
        ec.verbose = verbose;
        ec.samples_shape = out;
        ec.n_coverage = c->n_coverage;
        for (int j = 0; j < c->n_coverage; j++)
            snprintf(ec.coverage[j], sizeof ec.coverage[j], "%s", c->coverage[j]);
        char where[620]; /* a bad coverage extractor is named with the config place of the list */
        if (c->n_coverage > 0) {
            snprintf(where, sizeof where, "%s; %s", c->where, c->coverage_where);
            mg_error_set_context(where);
        }
        MG_CHECK(e->samples > 0, "eval.samples", NULL, "no samples");
        e->evaluator = mg_evaluator_create(&ec);
        const int dim = mg_evaluator_feature_dim(e->evaluator);
        MG_CHECK(e->samples > dim, "eval.samples", "evaluate more samples than the feature dimension (5000 is usual)",
                 "%lld samples for %d-dimensional features: the covariance would be singular", (long long)e->samples,
                 dim);
    }
    mg_net_from_cfg(&e->G, "G", target->gspec, (mg_shape){0, 0, 0}, c->batch);
    MG_CHECK(e->G.n_param == target->G->n_param && e->G.n_state == target->G->n_state, "eval", NULL,
             "the evaluation's copy of G has %zu parameters, G %zu", e->G.n_param, target->G->n_param);
    mg_error_set_context(NULL);
    if (e->verbose)
        printf("eval: every %ld steps and at the end, %lld samples (%s)\n", c->interval, (long long)e->samples,
               e->mixture ? "mode counting" : c->n_coverage > 0 ? "FID, IS, KID, class and factor coverage"
                                                                : "FID, IS, KID, class coverage");
    return e;
}

bool mg_train_eval_due(const mg_train_eval *e, long step, long steps)
{
    return e && (step % e->cfg.interval == 0 || step == steps);
}

/* key and value for the progress line: NaN/Inf as `-`. */
static void put_value(const char *fmt, const char *key, double v)
{
    if (isfinite(v))
        printf(fmt, key, v);
    else
        printf("  %s -", key);
}

/* The headline numbers as top-level fields (plotting tools pick fid*, kid*, is_* there),
 * then every number of the evaluation under "eval". */
static void write_metrics_line(FILE *f, const mg_eval_result *r, long step)
{
    mg_text line = {0};
    mg_json j;
    mg_json_begin(&j, &line, 7);
    mg_json_int(&j, "step", step);
    if (r->mixture) {
        mg_json_int(&j, "modes_covered", r->modes.modes_covered);
        mg_json_num(&j, "high_quality_fraction", r->modes.high_quality_fraction);
        mg_json_num(&j, "kl_uniform", r->modes.kl_uniform);
    } else {
        mg_json_num(&j, "fid", r->fid.fid);
        mg_json_num(&j, "is_mean", r->is_mean);
        mg_json_num(&j, "kid_mean", r->kid_mean);
        mg_json_int(&j, "classes_over_1pct", r->coverage.classes_over_1pct);
        if (r->n_factors > 0) { /* per factor: values >= 1% of the samples, TV to the real test set */
            mg_json_object(&j, "factor_values_over_1pct");
            for (int i = 0; i < r->n_factors; i++)
                mg_json_int(&j, r->factors[i].factor, r->factors[i].values_over_1pct);
            mg_json_end(&j);
            mg_json_object(&j, "factor_tv");
            for (int i = 0; i < r->n_factors; i++)
                mg_json_num(&j, r->factors[i].factor, r->factors[i].tv);
            mg_json_end(&j);
        }
        if (r->labelled) { /* a conditional generator scored by an extractor over its classes */
            mg_json_num(&j, "class_accuracy", r->class_accuracy);
            if (r->class_fid_done)
                mg_json_num(&j, "intra_fid", r->intra_fid);
        }
    }
    char *json = mg_eval_result_json(r);
    mg_json_raw(&j, "eval", json);
    mg_free(json);
    mg_json_end(&j);
    fprintf(f, "%s\n", mg_text_str(&line));
    mg_text_free(&line);
    fflush(f);
}

static void print_progress(const mg_eval_result *r, long step, double seconds)
{
    printf("eval    step %7ld ", step);
    if (r->mixture) {
        printf(" modes %d/%d  high quality %.1f%%", r->modes.modes_covered, r->modes.n_modes,
               100 * r->modes.high_quality_fraction);
        put_value("  %s %.4f", "KL", r->modes.kl_uniform);
    } else {
        put_value(" %s %.3f", "FID", r->fid.fid);
        put_value("  %s %.3f", "IS", r->is_mean);
        printf(" +- %.3f", r->is_std);
        put_value("  %s %.5f", "KID", r->kid_mean);
        printf("  classes >= 1%%: %d/%d", r->coverage.classes_over_1pct, r->n_classes);
        if (r->n_factors > 0) {
            printf("  factors >= 1%% (TV):");
            for (int i = 0; i < r->n_factors; i++)
                printf(" %s %d/%d (%.3f)", r->factors[i].factor, r->factors[i].values_over_1pct,
                       r->factors[i].n_values, r->factors[i].tv);
        }
        if (r->labelled) {
            put_value("  %s %.4f", "class acc", r->class_accuracy);
            if (r->class_fid_done)
                put_value("  %s %.3f", "intra-FID", r->intra_fid);
        }
    }
    printf("  (%lld samples, %.1f s)\n", (long long)r->n, seconds);
    fflush(stdout);
}

double mg_train_eval_run(mg_train_eval *e, const mg_net *G, long step, FILE *metrics)
{
    const double t0 = mg_now();
    memcpy(e->G.param, G->param, G->n_param * sizeof(float));
    memcpy(e->G.state, G->state, G->n_state * sizeof(float));
    mg_eval_result r;
    if (e->mixture) {
        char png[1200]; /* the same on every rank: the plot's gather is collective */
        snprintf(png, sizeof png, "%s/modes_step_%ld.png", e->plot_dir, step);
        if (mg_dist_rank() == 0)
            mg_mkdir_p(e->plot_dir);
        r = mg_eval_mixture_generator(&e->G, e->samples, e->cfg.seed, &e->mix, e->cfg.batch, png);
    } else {
        r = mg_evaluator_run_generator(e->evaluator, &e->G, e->samples, e->cfg.seed);
    }
    snprintf(r.source, sizeof r.source, "generator at step %ld", step);
    const double seconds = mg_dist_max(mg_now() - t0);
    if (mg_dist_rank() == 0) {
        if (metrics)
            write_metrics_line(metrics, &r, step);
        if (e->verbose)
            print_progress(&r, step, seconds);
    }
    return seconds;
}

void mg_train_eval_free(mg_train_eval *e)
{
    if (!e)
        return;
    mg_evaluator_free(e->evaluator);
    mg_net_free(&e->G);
    mg_free(e);
}
