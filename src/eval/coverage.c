/* Factor coverage (see mg_coverage.h): loading and checking the per-factor classifiers,
 * counting their predictions, and the per-factor reports. The arithmetic (values over 1%,
 * total variation) is mg_hist_coverage_of in metrics.c; the reduction over ranks is the
 * caller's (eval.c), since this module does not call MPI. */
#include "mg_coverage.h"

#include <stdio.h>
#include <string.h>

#include "mg_error.h"
#include "mg_extractor.h"
#include "mg_metrics.h"

static const char train_hint[] =
    "train one per factor with tools/train_factor_classifiers.sh (configs/classifier_shapes_factor.yaml)";

struct mg_coverage_set {
    int n;
    mg_extractor ex[MG_COVERAGE_MAX];
    size_t offset[MG_COVERAGE_MAX + 1]; /* extractor j's counts: [offset[j], offset[j + 1]) */
    int *classes;                       /* one batch's predictions (max_batch) */
    int max_batch;
};

mg_coverage_set *mg_coverage_load(const char *const *paths, int n, mg_shape in, int max_batch)
{
    MG_CHECK(n >= 1 && n <= MG_COVERAGE_MAX, "coverage", "list at most 16 coverage extractors",
             "%d coverage extractors", n);
    MG_CHECK(max_batch >= 1, "coverage", NULL, "batch %d", max_batch);
    mg_coverage_set *c = mg_alloc(sizeof *c, "factor coverage");
    c->max_batch = max_batch;
    c->classes = mg_alloc(sizeof(int) * (size_t)max_batch, "coverage predictions");
    for (int j = 0; j < n; j++) {
        mg_extractor *ex = &c->ex[j];
        mg_extractor_load(ex, paths[j], max_batch);
        c->n = j + 1; /* loaded: freed with the others */
        const mg_shape x = ex->net.in;
        MG_CHECK(x.c == in.c && x.h == in.h && x.w == in.w, paths[j],
                 "use factor classifiers trained on images shaped like the generator's output",
                 "the coverage extractor takes %dx%dx%d images, the samples to score are %dx%dx%d", x.c, x.h, x.w,
                 in.c, in.h, in.w);
        MG_CHECK(ex->label_factor[0], paths[j], train_hint,
                 "the coverage extractor was trained on its data file's labels, not on a factor "
                 "(classifier.label: {factor: NAME})");
        MG_CHECK(ex->test_pred_hist, paths[j], train_hint,
                 "the model file has no test_pred_hist (written before factor coverage): retrain it");
        MG_CHECK(ex->n_classes <= MG_COVERAGE_MAX_VALUES, paths[j], NULL,
                 "factor '%s' has %d values, at most %d supported", ex->label_factor, ex->n_classes,
                 MG_COVERAGE_MAX_VALUES);
        double real_n = 0;
        for (int v = 0; v < ex->n_classes; v++)
            real_n += ex->test_pred_hist[v];
        MG_CHECK(real_n > 0, paths[j], "retrain it", "its test histogram is empty");
        for (int i = 0; i < j; i++)
            MG_CHECK(strcmp(c->ex[i].label_factor, ex->label_factor) != 0, paths[j],
                     "list one coverage extractor per factor", "judges factor '%s', as %s does", ex->label_factor,
                     paths[i]);
        c->offset[j + 1] = c->offset[j] + (size_t)ex->n_classes;
    }
    return c;
}

void mg_coverage_free(mg_coverage_set *c)
{
    if (!c)
        return;
    for (int j = 0; j < c->n; j++)
        mg_extractor_free(&c->ex[j]);
    mg_free(c->classes);
    mg_free(c);
}

int mg_coverage_count(const mg_coverage_set *c) { return c ? c->n : 0; }

size_t mg_coverage_n_counts(const mg_coverage_set *c) { return c ? c->offset[c->n] : 0; }

void mg_coverage_add(mg_coverage_set *c, const float *x, int n, double *counts)
{
    const size_t size = mg_shape_size(c->ex[0].net.in);
    for (int done = 0; done < n; done += c->max_batch) {
        const int m = n - done < c->max_batch ? n - done : c->max_batch;
        for (int j = 0; j < c->n; j++) {
            mg_extractor_classify(&c->ex[j], x + (size_t)done * size, m, c->classes);
            double *hist = counts + c->offset[j];
            for (int i = 0; i < m; i++)
                hist[c->classes[i]] += 1;
        }
    }
}

void mg_coverage_finish(const mg_coverage_set *c, const double *counts, mg_factor_coverage *out)
{
    for (int j = 0; j < c->n; j++) {
        const mg_extractor *ex = &c->ex[j];
        mg_factor_coverage *f = &out[j];
        memset(f, 0, sizeof *f);
        snprintf(f->factor, sizeof f->factor, "%s", ex->label_factor);
        snprintf(f->extractor, sizeof f->extractor, "%s", ex->path);
        snprintf(f->real_data, sizeof f->real_data, "%s", ex->test_data);
        f->checksum = ex->checksum;
        f->n_values = ex->n_classes;
        f->accuracy = ex->test_accuracy;
        memcpy(f->hist, counts + c->offset[j], sizeof(double) * (size_t)ex->n_classes);
        memcpy(f->real_hist, ex->test_pred_hist, sizeof(double) * (size_t)ex->n_classes);
        for (int v = 0; v < ex->n_classes; v++)
            f->real_n += f->real_hist[v];
        const mg_hist_coverage h = mg_hist_coverage_of(f->hist, f->real_hist, f->n_values);
        f->values_over_1pct = h.values_over_1pct;
        f->values_seen = h.values_seen;
        f->tv = h.tv;
    }
}
