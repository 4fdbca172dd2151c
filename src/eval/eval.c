/* Distributed evaluation (see mg_eval.h): sample sources, the share of each rank, the
 * reference-statistics cache, and the JSON report.
 *
 * Data flow for images: every rank makes its share of the samples, a contiguous run of
 * whole batches (from a generator, a samples file or a real data file: one `source`),
 * runs the extractor, keeps its features and probabilities, and adds them into one
 * mg_eval_sums. Then: one
 * reduction of the sums to rank 0 (FID, IS, coverage), one all-gather of the features
 * (KID's subsets are shared out over the ranks, their estimates reduced to rank 0).
 * Times are taken per phase and reported as the slowest rank's. */
#include "mg_eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mg_batch_streams.h"
#include "mg_dist.h"
#include "mg_error.h"
#include "mg_eval_files.h"
#include "mg_extractor.h"
#include "mg_scatter_png.h"
#include "mg_text.h"
#include "mg_util.h"

void mg_eval_cfg_default(mg_eval_cfg *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->extractor, sizeof c->extractor, "runs/classifier/classifier.h5");
    c->batch = 250;
    c->splits = 10;
    c->kid_subsets = 100;
    c->kid_subset_size = 1000;
}

#define EXTRACTOR_PIECE 64
/* The coverage extractors run in pieces of at most COVERAGE_PIECE: each holds its own
 * activations (~340 KB per 64x64 sample for configs/classifier_shapes_factor.yaml), so seven
 * of them took 310 MB more per rank in pieces of 64 and 80 MB in pieces of 16, at the same
 * speed (docs/evaluation.md, "Factor coverage"). */
#define COVERAGE_PIECE 16

/* ---- sample sources ---- */

typedef enum { SRC_GENERATOR, SRC_SAMPLES, SRC_REAL } source_kind;

typedef struct {
    source_kind kind;
    mg_shape shape;          /* per sample */
    int64_t available;       /* files: samples in the file; generator: unlimited (-1) */
    char what[1100];         /* for messages and the report */
    mg_net *G;               /* generator */
    uint64_t seed;
    float *z;
    int *y;                  /* the last fill's labels: a class-conditional G's requested classes
                              * (uniform per item), or a labelled real file's labels; else NULL */
    int n_label_classes;     /* classes of y: G's `classes`, the data file's (-1: it names none) */
    int32_t *labels32;       /* real data: labels as read */
    mg_samples_file *samples;
    mg_h5_file *real;        /* real data file (training format) */
    mg_data_info info;
    unsigned char *raw;
    int batch;
} source;

static void source_open_generator(source *s, mg_net *G, uint64_t seed, int batch)
{
    memset(s, 0, sizeof *s);
    s->kind = SRC_GENERATOR;
    s->G = G, s->seed = seed, s->batch = batch;
    s->shape = G->out;
    s->available = -1;
    snprintf(s->what, sizeof s->what, "generator");
    s->z = mg_alloc_floats((size_t)batch * mg_shape_size(G->in), "evaluation noise");
    if (G->conditional) {
        s->y = mg_alloc(sizeof(int) * (size_t)batch, "evaluation labels");
        s->n_label_classes = G->n_classes;
    }
}

static void source_open_file(source *s, const char *path, bool real, int batch)
{
    memset(s, 0, sizeof *s);
    s->batch = batch;
    if (real) {
        s->kind = SRC_REAL;
        s->real = mg_h5_open_or_fail(path, &s->info);
        s->shape = (mg_shape){s->info.c, s->info.h, s->info.w};
        s->available = s->info.n;
        if (s->info.kind == MG_DATA_IMAGES)
            s->raw = mg_alloc((size_t)batch * mg_shape_size(s->shape), "real images");
        if (s->info.kind == MG_DATA_IMAGES && s->info.has_labels) { /* per-class statistics need them */
            s->y = mg_alloc(sizeof(int) * (size_t)batch, "real labels");
            s->labels32 = mg_alloc(sizeof(int32_t) * (size_t)batch, "real labels");
            s->n_label_classes = s->info.n_classes > 0 ? s->info.n_classes : -1;
        }
        snprintf(s->what, sizeof s->what, "real %s", path);
    } else {
        s->kind = SRC_SAMPLES;
        mg_samples_info info;
        s->samples = mg_samples_open(path, &info);
        s->shape = (mg_shape){info.c, info.h, info.w};
        s->available = info.n;
        snprintf(s->what, sizeof s->what, "samples %s", path);
    }
}

/* Samples [start, start + count) of the source into dst (count <= batch). */
static void source_fill(source *s, int64_t start, int count, float *dst)
{
    const size_t size = mg_shape_size(s->shape);
    switch (s->kind) {
    case SRC_GENERATOR: {
        mg_batch_streams_normals(s->z, count, mg_shape_size(s->G->in), s->seed, MG_STREAM_EVAL, (uint64_t)start);
        if (s->y) /* a conditional G: item g's class from its own stream, uniform over the classes */
            mg_batch_streams_labels(s->y, count, s->G->n_classes, NULL, s->seed, MG_STREAM_LABELS, (uint64_t)start);
        for (int done = 0; done < count; done += s->G->max_batch) {
            const int m = count - done < s->G->max_batch ? count - done : s->G->max_batch;
            if (s->y)
                mg_net_set_labels(s->G, s->y + done);
            const float *y = mg_net_forward(s->G, s->z + (size_t)done * mg_shape_size(s->G->in), m, MG_EVAL);
            memcpy(dst + (size_t)done * size, y, (size_t)m * size * sizeof(float));
        }
        break;
    }
    case SRC_SAMPLES:
        mg_samples_read(s->samples, start, count, dst);
        break;
    case SRC_REAL:
        if (s->info.kind == MG_DATA_IMAGES) {
            mg_h5_read_samples(s->real, start, count, s->raw);
            for (size_t i = 0; i < (size_t)count * size; i++)
                dst[i] = (float)s->raw[i] / 127.5f - 1.0f; /* the loader's mapping */
            if (s->y) {
                mg_h5_read_labels(s->real, start, count, s->labels32);
                for (int i = 0; i < count; i++)
                    s->y[i] = s->labels32[i];
            }
        } else {
            mg_h5_read_samples(s->real, start, count, dst); /* float32 vectors */
        }
        break;
    }
}

static void source_close(source *s)
{
    mg_free(s->z);
    mg_free(s->y);
    if (s->G)
        mg_net_set_labels(s->G, NULL); /* they pointed into y */
    mg_free(s->raw);
    mg_free(s->labels32);
    if (s->samples)
        mg_samples_close(s->samples);
    if (s->real) {
        mg_h5_close(s->real);
        mg_data_info_free(&s->info);
    }
    memset(s, 0, sizeof *s);
}

/* How many samples to use: n = 0 takes all of a file; more than a file holds is an error. */
static int64_t samples_to_use(const source *s, int64_t n)
{
    if (s->available < 0) {
        MG_CHECK(n > 0, s->what, "ask for at least one sample", "n = %lld", (long long)n);
        return n;
    }
    if (n <= 0)
        return s->available;
    MG_CHECK(n <= s->available, s->what, "ask for at most as many samples as the file holds",
             "%lld samples asked, the file holds %lld", (long long)n, (long long)s->available);
    return n;
}

/* Whether the source's labels can be scored by an extractor over k classes: they must
 * be the same classes (a data file naming no classes is taken at its word, its labels
 * checked per sample). When not, why says so for a conditional generator ("" for a
 * source without labels: nothing was asked of it). */
static bool labels_usable(const source *s, int k, const char *extractor, char *why, size_t size)
{
    why[0] = 0;
    if (!s->y)
        return false;
    if (s->n_label_classes < 0 || s->n_label_classes == k)
        return true;
    snprintf(why, size, "%s has %d classes, the extractor %s classifies into %d: no class accuracy or per-class FID",
             s->kind == SRC_GENERATOR ? "the generator" : s->what, s->n_label_classes, extractor, k);
    return false;
}

/* ---- the evaluator ---- */

struct mg_evaluator {
    mg_eval_cfg cfg;
    mg_extractor ex;
    mg_refstats ref;           /* mu, cov, class_hist: rank 0; features, n: every rank */
    bool recomputed;
    bool noted;                /* a conditional_note was printed already (verbose, once) */
    double reference_seconds;
    char save_features[1024];
    mg_coverage_set *coverage;     /* factor classifiers, or NULL */
};

/* This rank's share [lo, hi) of n samples: whole batches [tB, (t+1)B) (the last may be
 * short), a contiguous run of them per rank. Every rank count thus runs the extractor
 * (and the generator) on the same batches, so the features are the same bits whatever
 * the number of ranks, and only the order of the final double sums differs. */
static void my_share(int64_t n, int batch, int64_t *lo, int64_t *hi)
{
    const int64_t r = mg_dist_rank(), p = mg_dist_size(), batches = (n + batch - 1) / batch;
    *lo = batches * r / p * batch;
    *hi = batches * (r + 1) / p * batch;
    *lo = *lo < n ? *lo : n;
    *hi = *hi < n ? *hi : n;
}

typedef struct {
    mg_eval_sums sums;         /* with labelled parts when labelled */
    bool labelled;
    float *feats, *probs;    /* this rank's share: (hi - lo, dim), (hi - lo, k) */
    double *coverage;        /* factor coverage counts (mg_coverage_n_counts), or NULL */
    int64_t lo, hi;
    double t_generate, t_features, t_coverage;
} share;

/* Makes and extracts this rank's share of n samples of src; IS splits from seed; with
 * labelled, the source's labels go into the labelled sums too; with coverage, the
 * coverage extractors' predictions are counted. */
static void extract_share(mg_evaluator *e, source *src, int64_t n, uint64_t seed, bool labelled, bool coverage,
                          share *sh)
{
    const mg_shape in = e->ex.net.in;
    MG_CHECK(src->shape.c == in.c && src->shape.h == in.h && src->shape.w == in.w, src->what,
             "evaluate images of the shape the classifier was trained on",
             "samples are %dx%dx%d, the extractor %s takes %dx%dx%d", src->shape.c, src->shape.h, src->shape.w,
             e->ex.path, in.c, in.h, in.w);
    const int d = e->ex.dim, k = e->ex.n_classes, batch = e->cfg.batch;
    memset(sh, 0, sizeof *sh);
    my_share(n, batch, &sh->lo, &sh->hi);
    const int64_t local = sh->hi - sh->lo;
    sh->labelled = labelled;
    mg_eval_sums_init_labelled(&sh->sums, d, k, e->cfg.splits, 0, labelled ? k : 0);
    sh->feats = mg_alloc_floats((size_t)(local > 0 ? local : 1) * (size_t)d, "features");
    sh->probs = mg_alloc_floats((size_t)(local > 0 ? local : 1) * (size_t)k, "class probabilities");
    if (coverage && e->coverage)
        sh->coverage = mg_alloc(sizeof(double) * mg_coverage_n_counts(e->coverage), "coverage counts");
    int *split = mg_alloc(sizeof(int) * (size_t)n, "IS splits");
    mg_split_assignment(split, n, e->cfg.splits, seed);
    float *x = mg_alloc_floats((size_t)batch * mg_shape_size(in), "evaluation batch");
    for (int64_t start = sh->lo; start < sh->hi; start += batch) {
        const int m = (int)(sh->hi - start < batch ? sh->hi - start : batch);
        const double t0 = mg_now();
        source_fill(src, start, m, x);
        const double t1 = mg_now();
        float *f = sh->feats + (size_t)(start - sh->lo) * d, *p = sh->probs + (size_t)(start - sh->lo) * k;
        mg_extractor_run(&e->ex, x, m, f, p);
        mg_eval_sums_add(&sh->sums, f, p, split + start, m, src->what);
        if (labelled)
            mg_eval_sums_add_labels(&sh->sums, f, p, src->y, m, src->what);
        const double t2 = mg_now();
        if (sh->coverage) /* the same batch through every factor classifier */
            mg_coverage_add(e->coverage, x, m, sh->coverage);
        sh->t_generate += t1 - t0;
        sh->t_features += t2 - t1;
        sh->t_coverage += mg_now() - t2;
    }
    mg_free(x);
    mg_free(split);
}

static void share_free(share *sh)
{
    mg_eval_sums_free(&sh->sums);
    mg_free(sh->feats);
    mg_free(sh->probs);
    mg_free(sh->coverage);
}

/* Computes the reference statistics over all ranks; rank 0 writes the cache. */
static void compute_reference(mg_evaluator *e, const mg_refstats_key *key, const char *cache_path)
{
    source src;
    source_open_file(&src, e->cfg.reference, true, e->cfg.batch);
    const int64_t n = src.available;
    char why[600];
    const bool labelled = labels_usable(&src, e->ex.n_classes, e->ex.path, why, sizeof why);
    share sh;
    extract_share(e, &src, n, 0, labelled, false, &sh);
    source_close(&src);
    mg_dist_reduce_sum_f64_root(sh.sums.buf, sh.sums.n_values);
    mg_refstats *r = &e->ref;
    memset(r, 0, sizeof *r);
    r->key = *key;
    r->n = n, r->dim = e->ex.dim, r->n_classes = e->ex.n_classes;
    r->features = mg_alloc_floats((size_t)n * (size_t)r->dim, "reference features");
    mg_dist_allgather_floats(sh.feats, (sh.hi - sh.lo) * r->dim, r->features);
    if (mg_dist_rank() == 0) {
        const size_t d = (size_t)r->dim;
        r->mu = mg_alloc(d * sizeof(double), "reference mean");
        r->cov = mg_alloc(d * d * sizeof(double), "reference covariance");
        r->class_hist = mg_alloc((size_t)r->n_classes * sizeof(double), "reference class histogram");
        mg_gaussian_from_sums(sh.sums.count[0], sh.sums.feat_sum, sh.sums.feat_outer, r->dim, r->mu, r->cov,
                              e->cfg.reference);
        mg_inception_score(&sh.sums, &r->is_mean, &r->is_std);
        memcpy(r->class_hist, sh.sums.class_hist, (size_t)r->n_classes * sizeof(double));
        if (labelled) { /* per-class Gaussians; a class with too few samples for one keeps zeros */
            const size_t k = (size_t)r->n_classes;
            r->labelled_classes = r->n_classes;
            r->class_n = mg_alloc(k * sizeof(double), "reference class counts");
            r->class_mu = mg_alloc(k * d * sizeof(double), "reference class means");
            r->class_cov = mg_alloc(k * d * d * sizeof(double), "reference class covariances");
            memset(r->class_mu, 0, k * d * sizeof(double));
            memset(r->class_cov, 0, k * d * d * sizeof(double));
            for (size_t c = 0; c < k; c++) {
                r->class_n[c] = sh.sums.label_count[c];
                if (r->class_n[c] > r->dim)
                    mg_gaussian_from_sums(r->class_n[c], sh.sums.label_feat_sum + c * d,
                                          sh.sums.label_feat_outer + c * d * d, r->dim, r->class_mu + c * d,
                                          r->class_cov + c * d * d, e->cfg.reference);
            }
        }
        mg_refstats_write(cache_path, r);
    }
    share_free(&sh);
}

mg_evaluator *mg_evaluator_create(const mg_eval_cfg *cfg)
{
    MG_CHECK(cfg->batch > 0 && cfg->splits > 0 && cfg->kid_subsets > 0 && cfg->kid_subset_size >= 2, "evaluation",
             NULL, "bad settings: batch %d, splits %d, KID %d x %d", cfg->batch, cfg->splits, cfg->kid_subsets,
             cfg->kid_subset_size);
    const double t0 = mg_now();
    mg_evaluator *e = mg_alloc(sizeof *e, "evaluator");
    e->cfg = *cfg;
    /* the extractor runs a batch in pieces of at most 64: as fast per sample as larger
     * pieces (the Fashion-MNIST extractor's 25088-wide first activations stay in cache;
     * docs/evaluation.md), and its activation memory stays bounded whatever the batch
     * (~55 MB for that extractor) */
    mg_extractor_load(&e->ex, cfg->extractor, cfg->batch < EXTRACTOR_PIECE ? cfg->batch : EXTRACTOR_PIECE);
    MG_CHECK(e->ex.n_classes <= MG_EVAL_MAX_CLASSES, cfg->extractor, NULL, "%d classes, at most %d supported",
             e->ex.n_classes, MG_EVAL_MAX_CLASSES);
    const mg_shape in = e->ex.net.in, want = cfg->samples_shape;
    MG_CHECK(want.c <= 0 || (want.c == in.c && want.h == in.h && want.w == in.w), cfg->extractor,
             "use an extractor trained on images shaped like the generator's output",
             "the extractor takes %dx%dx%d images, the samples to score are %dx%dx%d", in.c, in.h, in.w, want.c,
             want.h, want.w);
    if (cfg->n_coverage > 0) { /* before any collective call: a bad file fails every rank alike */
        const char *paths[MG_COVERAGE_MAX];
        for (int j = 0; j < cfg->n_coverage && j < MG_COVERAGE_MAX; j++)
            paths[j] = cfg->coverage[j];
        e->coverage = mg_coverage_load(paths, cfg->n_coverage, in, cfg->batch < COVERAGE_PIECE ? cfg->batch
                                                                                               : COVERAGE_PIECE);
    }
    if (!e->cfg.reference[0]) { /* default: the classifier's own training data */
        mg_model_file m;
        mg_model_file_read(cfg->extractor, &m);
        snprintf(e->cfg.reference, sizeof e->cfg.reference, "%s", m.train_data);
        mg_model_file_free(&m);
    }
    char dir[1024];
    if (e->cfg.cache_dir[0]) {
        snprintf(dir, sizeof dir, "%s", e->cfg.cache_dir);
    } else {
        snprintf(dir, sizeof dir, "%s", cfg->extractor);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = 0;
        else
            snprintf(dir, sizeof dir, ".");
    }
    const char *base = strrchr(e->cfg.reference, '/');
    base = base ? base + 1 : e->cfg.reference;
    char stem[512], cache_path[2100];
    snprintf(stem, sizeof stem, "%s", base);
    char *dot = strrchr(stem, '.');
    if (dot && !strcmp(dot, ".h5"))
        *dot = 0;
    snprintf(cache_path, sizeof cache_path, "%s/refstats-%s.h5", dir, stem);

    mg_refstats_key key;
    mg_refstats_key_of(&key, e->cfg.reference, e->ex.checksum);
    int ok = 0;
    char why[256] = "";
    int64_t meta[3] = {0, 0, 0};
    if (mg_dist_rank() == 0) {
        ok = mg_refstats_read(cache_path, &key, &e->ref, why, sizeof why);
        if (ok && (e->ref.dim != e->ex.dim || e->ref.n_classes != e->ex.n_classes)) {
            snprintf(why, sizeof why, "stale: its feature size differs from the extractor's");
            mg_refstats_free(&e->ref);
            ok = 0;
        }
        meta[0] = e->ref.n, meta[1] = e->ref.dim, meta[2] = e->ref.n_classes;
    }
    mg_dist_bcast(&ok, sizeof ok);
    if (ok) {
        mg_dist_bcast(meta, sizeof meta);
        if (mg_dist_rank() != 0) {
            e->ref.n = meta[0], e->ref.dim = (int)meta[1], e->ref.n_classes = (int)meta[2];
            e->ref.features = mg_alloc_floats((size_t)meta[0] * (size_t)meta[1], "reference features");
        }
        mg_dist_bcast(e->ref.features, (size_t)meta[0] * (size_t)meta[1] * sizeof(float));
        if (cfg->verbose && mg_dist_rank() == 0)
            fprintf(stderr, "eval: reference statistics from cache %s (%lld samples of %s)\n", cache_path,
                   (long long)e->ref.n, e->cfg.reference);
    } else {
        if (cfg->verbose && mg_dist_rank() == 0)
            fprintf(stderr, "eval: computing reference statistics of %s (cache %s: %s)\n", e->cfg.reference, cache_path, why);
        compute_reference(e, &key, cache_path);
        e->recomputed = true;
        if (cfg->verbose && mg_dist_rank() == 0)
            fprintf(stderr, "eval: cached them in %s (%.1f s)\n", cache_path, mg_now() - t0);
    }
    mg_dist_bcast(&e->ref.is_mean, sizeof e->ref.is_mean);
    mg_dist_bcast(&e->ref.is_std, sizeof e->ref.is_std);
    e->reference_seconds = mg_dist_max(mg_now() - t0);
    return e;
}

void mg_evaluator_free(mg_evaluator *e)
{
    if (!e)
        return;
    mg_extractor_free(&e->ex);
    mg_coverage_free(e->coverage);
    mg_refstats_free(&e->ref);
    mg_free(e);
}

int mg_evaluator_feature_dim(const mg_evaluator *e) { return e->ex.dim; }

void mg_evaluator_save_features(mg_evaluator *e, const char *path)
{
    snprintf(e->save_features, sizeof e->save_features, "%s", path ? path : "");
}

static mg_eval_result run_source(mg_evaluator *e, source *src, int64_t n, uint64_t seed)
{
    const double t_start = mg_now();
    const int rank = mg_dist_rank(), size = mg_dist_size();
    mg_eval_result r;
    memset(&r, 0, sizeof r);
    n = samples_to_use(src, n);
    MG_CHECK(n > e->ex.dim, src->what, "evaluate more samples than the feature dimension (10000 is usual)",
             "%lld samples for %d-dimensional features: the covariance would be singular", (long long)n, e->ex.dim);
    r.n = n, r.seed = seed;
    snprintf(r.source, sizeof r.source, "%s", src->what);
    snprintf(r.extractor, sizeof r.extractor, "%s", e->ex.path);
    snprintf(r.reference, sizeof r.reference, "%s", e->cfg.reference);
    r.extractor_checksum = e->ex.checksum;
    r.dim = e->ex.dim, r.n_classes = e->ex.n_classes;
    r.reference_n = e->ref.n;
    r.reference_is_mean = e->ref.is_mean, r.reference_is_std = e->ref.is_std;
    r.reference_recomputed = e->recomputed;
    r.time_reference = e->reference_seconds;
    e->recomputed = false;
    e->reference_seconds = 0;

    const bool labelled =
        labels_usable(src, e->ex.n_classes, e->ex.path, r.conditional_note, sizeof r.conditional_note);
    share sh;
    extract_share(e, src, n, seed, labelled, true, &sh);
    const int d = e->ex.dim, k = e->ex.n_classes;
    const int64_t local = sh.hi - sh.lo;
    r.time_generate = mg_dist_max(sh.t_generate);
    r.time_features = mg_dist_max(sh.t_features);
    r.time_coverage = mg_dist_max(sh.t_coverage);

    double t0 = mg_now();
    mg_dist_reduce_sum_f64_root(sh.sums.buf, sh.sums.n_values);
    if (sh.coverage) /* whole-number counts: exact whatever the order of the sums */
        mg_dist_reduce_sum_f64_root(sh.coverage, mg_coverage_n_counts(e->coverage));
    float *all = mg_alloc_floats((size_t)n * (size_t)d, "all features");
    mg_dist_allgather_floats(sh.feats, local * d, all);
    r.time_reduce = mg_dist_max(mg_now() - t0);

    /* KID: subsets j = rank, rank + P, ...; their estimates summed into rank 0 */
    t0 = mg_now();
    r.kid_subsets = e->cfg.kid_subsets;
    int64_t m = e->cfg.kid_subset_size;
    m = m < n ? m : n;
    m = m < e->ref.n ? m : e->ref.n;
    r.kid_subset_size = (int)m;
    double *kid = mg_alloc(sizeof(double) * (size_t)r.kid_subsets, "KID estimates");
    mg_kid_subsets(all, n, e->ref.features, e->ref.n, d, (int)m, r.kid_subsets, seed, rank, size, kid);
    mg_dist_reduce_sum_f64_root(kid, (size_t)r.kid_subsets);
    r.time_kid = mg_dist_max(mg_now() - t0);

    if (e->save_features[0]) {
        float *probs = rank == 0 ? mg_alloc_floats((size_t)n * (size_t)k, "all probabilities") : NULL;
        mg_dist_gather_floats(sh.probs, local * k, probs);
        if (rank == 0)
            mg_features_file_write(e->save_features, all, n, d, probs, k, src->what, e->ex.path, e->ex.checksum, seed);
        mg_free(probs);
    }

    if (rank == 0) {
        t0 = mg_now();
        mg_kid_finish(kid, r.kid_subsets, &r.kid_mean, &r.kid_std);
        double *mu = mg_alloc(sizeof(double) * (size_t)d, "sample mean");
        double *cov = mg_alloc(sizeof(double) * (size_t)d * (size_t)d, "sample covariance");
        mg_gaussian_from_sums(sh.sums.count[0], sh.sums.feat_sum, sh.sums.feat_outer, d, mu, cov, src->what);
        r.fid = mg_fid(mu, cov, e->ref.mu, e->ref.cov, d);
        mg_inception_score(&sh.sums, &r.is_mean, &r.is_std);
        r.is_splits = e->cfg.splits;
        r.coverage = mg_class_coverage(&sh.sums);
        memcpy(r.class_hist, sh.sums.class_hist, sizeof(double) * (size_t)k);
        if (sh.coverage) {
            r.n_factors = mg_coverage_count(e->coverage);
            mg_coverage_finish(e->coverage, sh.coverage, r.factors);
        }
        if (labelled) {
            r.labelled = true;
            r.class_accuracy = mg_label_accuracy(&sh.sums, r.class_accuracy_per);
            memcpy(r.class_count, sh.sums.label_count, sizeof(double) * (size_t)k);
            r.class_fid_done = e->ref.labelled_classes == k;
            if (r.class_fid_done)
                r.intra_fid = mg_class_fids(&sh.sums, e->ref.class_n, e->ref.class_mu, e->ref.class_cov, r.class_fid);
            else
                snprintf(r.conditional_note, sizeof r.conditional_note,
                         "the reference %s has no labels: no per-class FID or intra-FID", e->cfg.reference);
        }
        if (r.conditional_note[0] && e->cfg.verbose && !e->noted) {
            fprintf(stderr, "eval: note: %s\n", r.conditional_note);
            e->noted = true;
        }
        r.time_linalg = mg_now() - t0;
        mg_free(mu);
        mg_free(cov);
    }
    mg_free(kid);
    mg_free(all);
    share_free(&sh);
    r.time_total = mg_dist_max(mg_now() - t_start) + r.time_reference;
    return r;
}

mg_eval_result mg_evaluator_run_generator(mg_evaluator *e, mg_net *G, int64_t n, uint64_t seed)
{
    source src;
    source_open_generator(&src, G, seed, e->cfg.batch);
    mg_eval_result r = run_source(e, &src, n, seed);
    source_close(&src);
    return r;
}

mg_eval_result mg_evaluator_run_file(mg_evaluator *e, const char *path, bool real, int64_t n, uint64_t seed)
{
    source src;
    source_open_file(&src, path, real, e->cfg.batch);
    mg_eval_result r = run_source(e, &src, n, seed);
    source_close(&src);
    return r;
}

/* ---- 2-D mixtures ---- */

#define SCATTER_MAX_POINTS 20000

static mg_eval_result run_mixture(source *src, int64_t n, const mg_mixture_info *mix, const char *png)
{
    const double t_start = mg_now();
    mg_eval_result r;
    memset(&r, 0, sizeof r);
    n = samples_to_use(src, n);
    MG_CHECK(src->shape.c == 2 && src->shape.h == 1 && src->shape.w == 1, src->what,
             "mode counting needs 2-D vectors (ring8, grid25)", "samples are %dx%dx%d", src->shape.c, src->shape.h,
             src->shape.w);
    MG_CHECK(mix->n_modes > 0 && mix->sigma > 0, src->what, NULL, "no mixture parameters");
    r.mixture = true;
    r.n = n;
    r.seed = src->seed;
    snprintf(r.source, sizeof r.source, "%s", src->what);
    snprintf(r.mixture_generator, sizeof r.mixture_generator, "%s", mix->generator);
    int64_t lo, hi;
    my_share(n, src->batch, &lo, &hi);
    mg_eval_sums sums;
    mg_eval_sums_init(&sums, 0, 0, 0, mix->n_modes);
    float *points = mg_alloc_floats(2 * (size_t)(hi - lo > 0 ? hi - lo : 1), "mixture samples");
    double t0 = mg_now();
    for (int64_t start = lo; start < hi; start += src->batch) {
        const int m = (int)(hi - start < src->batch ? hi - start : src->batch);
        source_fill(src, start, m, points + 2 * (size_t)(start - lo));
    }
    r.time_generate = mg_dist_max(mg_now() - t0);
    mg_eval_sums_add_points(&sums, points, hi - lo, (const double(*)[2])mix->means, mix->sigma);
    t0 = mg_now();
    mg_dist_reduce_sum_f64_root(sums.buf, sums.n_values);
    const bool plot = png && png[0];
    float *all = plot && mg_dist_rank() == 0 ? mg_alloc_floats(2 * (size_t)n, "all mixture samples") : NULL;
    if (plot)
        mg_dist_gather_floats(points, 2 * (hi - lo), all);
    r.time_reduce = mg_dist_max(mg_now() - t0);
    if (mg_dist_rank() == 0) {
        r.modes = mg_mode_report_from(&sums);
        if (plot)
            mg_scatter_png_write(png, all, n < SCATTER_MAX_POINTS ? n : SCATTER_MAX_POINTS,
                                 (const double(*)[2])mix->means, mix->n_modes, mix->sigma, 600);
    }
    mg_free(all);
    mg_free(points);
    mg_eval_sums_free(&sums);
    r.time_total = mg_dist_max(mg_now() - t_start);
    return r;
}

mg_eval_result mg_eval_mixture_generator(mg_net *G, int64_t n, uint64_t seed, const mg_mixture_info *mix, int batch,
                                         const char *png)
{
    source src;
    source_open_generator(&src, G, seed, batch);
    mg_eval_result r = run_mixture(&src, n, mix, png);
    source_close(&src);
    return r;
}

mg_eval_result mg_eval_mixture_file(const char *path, bool real, int64_t n, const mg_mixture_info *mix, int batch,
                                    const char *png)
{
    source src;
    source_open_file(&src, path, real, batch);
    mg_eval_result r = run_mixture(&src, n, mix, png);
    source_close(&src);
    return r;
}

/* ---- output ---- */

/* "factor_coverage": one object per coverage extractor (docs/evaluation.md). */
static void factor_coverage_json(mg_json *j, const mg_eval_result *r)
{
    mg_json_array(j, "factor_coverage");
    for (int i = 0; i < r->n_factors; i++) {
        const mg_factor_coverage *f = &r->factors[i];
        mg_json_object(j, NULL);
        mg_json_str(j, "factor", f->factor);
        mg_json_int(j, "values", f->n_values);
        mg_json_int(j, "values_over_1pct", f->values_over_1pct);
        mg_json_int(j, "values_seen", f->values_seen);
        mg_json_num(j, "tv_to_real", f->tv);
        mg_json_num(j, "extractor_accuracy", f->accuracy);
        mg_json_array(j, "histogram");
        for (int v = 0; v < f->n_values; v++)
            mg_json_fmt(j, NULL, "%.0f", f->hist[v]);
        mg_json_end(j);
        mg_json_array(j, "real_histogram");
        for (int v = 0; v < f->n_values; v++)
            mg_json_fmt(j, NULL, "%.0f", f->real_hist[v]);
        mg_json_end(j);
        mg_json_fmt(j, "real_n", "%.0f", f->real_n);
        mg_json_str(j, "real_data", f->real_data);
        mg_json_str(j, "extractor", f->extractor);
        char hex[32];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)f->checksum);
        mg_json_str(j, "extractor_checksum", hex);
        mg_json_end(j);
    }
    mg_json_end(j);
}

char *mg_eval_result_json(const mg_eval_result *r)
{
    mg_text t = {0};
    mg_json j;
    mg_json_begin(&j, &t, 10);
    mg_json_str(&j, "source", r->source);
    mg_json_int(&j, "n", (long long)r->n);
    mg_json_uint(&j, "seed", (unsigned long long)r->seed);
    if (r->mixture) {
        mg_json_str(&j, "mixture", r->mixture_generator);
        mg_json_int(&j, "n_modes", r->modes.n_modes);
        mg_json_int(&j, "modes_covered", r->modes.modes_covered);
        mg_json_num(&j, "high_quality_fraction", r->modes.high_quality_fraction);
        mg_json_num(&j, "kl_uniform", r->modes.kl_uniform);
    } else {
        mg_json_num(&j, "fid", r->fid.fid);
        mg_json_num(&j, "fid_mean_term", r->fid.mean_term);
        mg_json_num(&j, "fid_trace_sqrt", r->fid.trace_sqrt);
        mg_json_int(&j, "fid_clamped_eigenvalues", r->fid.clamped);
        mg_json_num(&j, "fid_most_negative_eigenvalue", r->fid.most_negative);
        mg_json_num(&j, "is_mean", r->is_mean);
        mg_json_num(&j, "is_std", r->is_std);
        mg_json_int(&j, "is_splits", r->is_splits);
        mg_json_num(&j, "kid_mean", r->kid_mean);
        mg_json_num(&j, "kid_std", r->kid_std);
        mg_json_int(&j, "kid_subsets", r->kid_subsets);
        mg_json_int(&j, "kid_subset_size", r->kid_subset_size);
        mg_json_object(&j, "coverage");
        mg_json_array(&j, "histogram");
        for (int y = 0; y < r->n_classes; y++)
            mg_json_fmt(&j, NULL, "%.0f", r->class_hist[y]); /* counts, whole numbers */
        mg_json_end(&j);
        mg_json_num(&j, "entropy", r->coverage.entropy);
        mg_json_num(&j, "entropy_max", r->coverage.entropy_max);
        mg_json_int(&j, "classes_over_1pct", r->coverage.classes_over_1pct);
        mg_json_int(&j, "classes_seen", r->coverage.classes_seen);
        mg_json_end(&j);
        if (r->n_factors > 0)
            factor_coverage_json(&j, r);
        if (r->labelled) { /* conditional metrics: only for labelled samples */
            mg_json_num(&j, "class_accuracy", r->class_accuracy);
            if (r->class_fid_done)
                mg_json_num(&j, "intra_fid", r->intra_fid);
            mg_json_array(&j, "class_counts");
            for (int y = 0; y < r->n_classes; y++)
                mg_json_fmt(&j, NULL, "%.0f", r->class_count[y]);
            mg_json_end(&j);
            mg_json_array(&j, "class_accuracy_per_class");
            for (int y = 0; y < r->n_classes; y++)
                mg_json_num(&j, NULL, r->class_accuracy_per[y]);
            mg_json_end(&j);
            if (r->class_fid_done) {
                mg_json_array(&j, "class_fid");
                for (int y = 0; y < r->n_classes; y++)
                    mg_json_num(&j, NULL, r->class_fid[y]);
                mg_json_end(&j);
            }
        }
        if (r->conditional_note[0])
            mg_json_str(&j, "conditional_note", r->conditional_note);
        mg_json_str(&j, "extractor", r->extractor);
        char hex[32];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)r->extractor_checksum);
        mg_json_str(&j, "extractor_checksum", hex);
        mg_json_int(&j, "feature_dim", r->dim);
        mg_json_int(&j, "n_classes", r->n_classes);
        mg_json_str(&j, "reference", r->reference);
        mg_json_int(&j, "reference_n", (long long)r->reference_n);
        mg_json_num(&j, "reference_is_mean", r->reference_is_mean);
        mg_json_num(&j, "reference_is_std", r->reference_is_std);
        mg_json_bool(&j, "reference_recomputed", r->reference_recomputed);
    }
    mg_json_object(&j, "time_s");
    mg_json_num(&j, "generate", r->time_generate);
    mg_json_num(&j, "features", r->time_features);
    if (r->n_factors > 0)
        mg_json_num(&j, "coverage", r->time_coverage);
    mg_json_num(&j, "reduce", r->time_reduce);
    mg_json_num(&j, "linalg", r->time_linalg);
    mg_json_num(&j, "kid", r->time_kid);
    mg_json_num(&j, "reference", r->time_reference);
    mg_json_num(&j, "total", r->time_total);
    mg_json_end(&j);
    mg_json_int(&j, "ranks", mg_dist_size());
    mg_json_end(&j);
    return mg_text_take(&t);
}

char *mg_eval_result_text(const mg_eval_result *r)
{
    mg_text t = {0};
    if (r->mixture) {
        mg_text_put(&t, "%s (%s mixture), %lld samples:\n", r->source, r->mixture_generator, (long long)r->n);
        mg_text_put(&t, "  modes covered %d / %d   high quality %.1f%%   KL(modes || uniform) %.4f\n",
                    r->modes.modes_covered, r->modes.n_modes, 100 * r->modes.high_quality_fraction,
                    r->modes.kl_uniform);
        return mg_text_take(&t);
    }
    mg_text_put(&t, "%s, %lld samples, extractor %s (%016llx), reference %s:\n", r->source, (long long)r->n,
                r->extractor, (unsigned long long)r->extractor_checksum, r->reference);
    mg_text_put(&t, "  FID %.4f   IS %.4f +- %.4f   KID %.6f +- %.6f\n", r->fid.fid, r->is_mean, r->is_std,
                r->kid_mean, r->kid_std);
    mg_text_put(&t, "  class coverage: %d / %d classes >= 1%%, entropy %.4f of %.4f nats\n",
                r->coverage.classes_over_1pct, r->n_classes, r->coverage.entropy, r->coverage.entropy_max);
    if (r->n_factors > 0) {
        mg_text_put(&t, "  factor coverage (values >= 1%% / values, TV to the real test set, the classifier's test "
                        "accuracy):\n   ");
        for (int i = 0; i < r->n_factors; i++) {
            const mg_factor_coverage *f = &r->factors[i];
            mg_text_put(&t, " %s %d/%d TV %.3f (acc %.3f)%s", f->factor, f->values_over_1pct, f->n_values, f->tv,
                        f->accuracy, i + 1 < r->n_factors ? "," : "\n");
        }
    }
    if (r->labelled) {
        mg_text_put(&t, "  conditional: class accuracy %.4f", r->class_accuracy);
        if (r->class_fid_done) {
            mg_text_put(&t, "   intra-FID %.4f   per class:", r->intra_fid);
            for (int y = 0; y < r->n_classes; y++)
                mg_text_put(&t, " %.3f", r->class_fid[y]);
        }
        mg_text_put(&t, "\n");
    }
    if (r->conditional_note[0])
        mg_text_put(&t, "  note: %s\n", r->conditional_note);
    if (r->fid.clamped)
        mg_text_put(&t, "  note: %d negative eigenvalue(s) clamped to 0 (most negative %.3g)\n", r->fid.clamped,
                    r->fid.most_negative);
    mg_text_put(&t, "  time: generate %.2f s, features %.2f s", r->time_generate, r->time_features);
    if (r->n_factors > 0)
        mg_text_put(&t, ", factor coverage %.2f s", r->time_coverage);
    mg_text_put(&t, ", reduce %.2f s, FID/IS linear algebra %.3f s, KID %.2f s, total %.2f s\n", r->time_reduce,
                r->time_linalg, r->time_kid, r->time_total);
    return mg_text_take(&t);
}
