/* Sample-quality metrics (see mg_metrics.h for the definitions and references).
 *
 * Everything except KID is a sum over samples, kept in one flat array of doubles so that
 * a distributed evaluation reduces it with one call. The linear algebra is float64
 * throughout: OpenBLAS for products, LAPACK dsyevd (inside libopenblas, declared here)
 * for symmetric eigendecompositions, whose `info` is checked through the error path. */
#include "mg_metrics.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mg_blas.h"
#include "mg_error.h"
#include "mg_rng.h"

/* LAPACK (Fortran ABI, 32-bit integers as in Debian's libopenblas): eigenvalues w
 * (ascending) and, with jobz = 'V', eigenvectors of the symmetric matrix a (n, n). The
 * trailing lengths are gfortran's hidden lengths of the two character arguments. */
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
                    double *work, const int *lwork, int *iwork, const int *liwork, int *info, size_t jobz_len,
                    size_t uplo_len);

/* Stream purposes of this module (distinct from MG_STREAM_*). */
#define SPLIT_STREAM 0x53504C54u /* "SPLT" */
#define KID_STREAM 0x4B494421u   /* "KID!" */

/* ---- sums ---- */

void mg_eval_sums_init(mg_eval_sums *s, int dim, int n_classes, int n_splits, int n_modes)
{
    mg_eval_sums_init_labelled(s, dim, n_classes, n_splits, n_modes, 0);
}

void mg_eval_sums_init_labelled(mg_eval_sums *s, int dim, int n_classes, int n_splits, int n_modes, int n_labels)
{
    MG_CHECK(n_labels == 0 || n_labels == n_classes, "evaluation sums", NULL,
             "%d label classes, but the extractor classifies into %d", n_labels, n_classes);
    MG_CHECK(dim >= 0 && n_classes >= 0 && n_splits >= 0 && n_modes >= 0 && (n_splits == 0 || n_classes > 0),
             "evaluation sums", NULL, "bad sizes dim %d, classes %d, splits %d, modes %d", dim, n_classes,
             n_splits, n_modes);
    memset(s, 0, sizeof *s);
    s->dim = dim, s->n_classes = n_classes, s->n_splits = n_splits, s->n_modes = n_modes, s->n_labels = n_labels;
    const size_t d = (size_t)dim, k = (size_t)n_classes, S = (size_t)n_splits, L = (size_t)n_labels;
    s->n_values = 1 + d + d * d + S + S * k + S + k + (size_t)n_modes + L * (2 + d + d * d);
    s->buf = mg_alloc(s->n_values * sizeof(double), "evaluation sums");
    double *p = s->buf;
    s->count = p, p += 1;
    s->feat_sum = p, p += d;
    s->feat_outer = p, p += d * d;
    s->split_count = p, p += S;
    s->split_prob = p, p += S * k;
    s->split_plogp = p, p += S;
    s->class_hist = p, p += k;
    s->mode_hist = p, p += n_modes;
    /* labelled parts last: one flat buffer, so one reduction still sums everything */
    s->label_count = p, p += L;
    s->label_correct = p, p += L;
    s->label_feat_sum = p, p += L * d;
    s->label_feat_outer = p;
}

void mg_eval_sums_zero(mg_eval_sums *s) { memset(s->buf, 0, s->n_values * sizeof(double)); }

void mg_eval_sums_free(mg_eval_sums *s)
{
    mg_free(s->buf);
    memset(s, 0, sizeof *s);
}

/* Rows per block when converting features to double for the outer-product update. */
#define OUTER_BLOCK 256

void mg_eval_sums_add(mg_eval_sums *s, const float *feats, const float *probs, const int *split, int64_t n,
                      const char *what)
{
    const int d = s->dim, k = s->n_classes;
    s->count[0] += (double)n;
    if (d > 0) {
        double *block = mg_alloc((size_t)OUTER_BLOCK * (size_t)d * sizeof(double), "feature block");
        for (int64_t start = 0; start < n; start += OUTER_BLOCK) {
            const int rows = (int)(n - start < OUTER_BLOCK ? n - start : OUTER_BLOCK);
            const float *src = feats + (size_t)start * (size_t)d;
            for (size_t i = 0; i < (size_t)rows * (size_t)d; i++) {
                if (!isfinite(src[i]))
                    MG_FAIL(what, "the samples or the extractor produce NaN/Inf", "feature %zu of sample %lld is %g",
                            i % (size_t)d, (long long)(start + (int64_t)(i / (size_t)d)), (double)src[i]);
                block[i] = src[i];
            }
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < d; j++)
                    s->feat_sum[j] += block[(size_t)r * (size_t)d + (size_t)j];
            /* outer += B^T B, lower triangle of the row-major (d, d) matrix */
            mg_dsyrk_checked(what, "feature outer products", CblasTrans, d, rows, 1.0, block, d, 1.0, s->feat_outer, d);
        }
        mg_free(block);
    }
    if (k > 0 && probs) {
        for (int64_t i = 0; i < n; i++) {
            const float *p = probs + (size_t)i * (size_t)k;
            int best = 0;
            double plogp = 0;
            for (int y = 0; y < k; y++) {
                if (!(p[y] >= 0.0f && p[y] <= 1.0f + 1e-5f))
                    MG_FAIL(what, "class probabilities must lie in [0, 1]", "p(y=%d | sample %lld) is %g", y,
                            (long long)i, (double)p[y]);
                if (p[y] > p[best])
                    best = y;
                if (p[y] > 0)
                    plogp += (double)p[y] * log((double)p[y]);
            }
            s->class_hist[best] += 1;
            if (s->n_splits > 0) {
                const int sp = split[i];
                MG_CHECK(sp >= 0 && sp < s->n_splits, what, NULL, "split %d of sample %lld out of range", sp,
                         (long long)i);
                s->split_count[sp] += 1;
                s->split_plogp[sp] += plogp;
                double *sum = s->split_prob + (size_t)sp * (size_t)k;
                for (int y = 0; y < k; y++)
                    sum[y] += p[y];
            }
        }
    }
}

/* Index of the largest of p[0..k) (the first one on ties), as class_hist counts it. */
static int argmax(const float *p, int k)
{
    int best = 0;
    for (int y = 1; y < k; y++)
        if (p[y] > p[best])
            best = y;
    return best;
}

void mg_eval_sums_add_labels(mg_eval_sums *s, const float *feats, const float *probs, const int *labels, int64_t n,
                             const char *what)
{
    const int d = s->dim, L = s->n_labels;
    MG_CHECK(L > 0, what, NULL, "a bug: labelled samples added to sums made without label classes");
    for (int64_t i = 0; i < n; i++) {
        MG_CHECK(labels[i] >= 0 && labels[i] < L, what, "labels must be classes the extractor knows",
                 "label %d of sample %lld is outside 0 .. %d", labels[i], (long long)i, L - 1);
        s->label_count[labels[i]] += 1;
        if (probs && argmax(probs + (size_t)i * (size_t)s->n_classes, s->n_classes) == labels[i])
            s->label_correct[labels[i]] += 1;
    }
    if (d == 0)
        return;
    /* per block of rows: each label's rows gathered into one matrix, then one dsyrk per
     * label into its outer-product sum (as the unlabelled sum, not a rank-1 update per row) */
    double *block = mg_alloc((size_t)OUTER_BLOCK * (size_t)d * sizeof(double), "labelled feature block");
    for (int64_t start = 0; start < n; start += OUTER_BLOCK) {
        const int rows = (int)(n - start < OUTER_BLOCK ? n - start : OUTER_BLOCK);
        for (int c = 0; c < L; c++) {
            int m = 0;
            for (int r = 0; r < rows; r++) {
                if (labels[start + r] != c)
                    continue;
                const float *src = feats + (size_t)(start + r) * (size_t)d;
                double *dst = block + (size_t)m * (size_t)d;
                for (int j = 0; j < d; j++) {
                    if (!isfinite(src[j]))
                        MG_FAIL(what, "the samples or the extractor produce NaN/Inf", "feature %d of sample %lld is %g",
                                j, (long long)(start + r), (double)src[j]);
                    dst[j] = src[j];
                    s->label_feat_sum[(size_t)c * (size_t)d + (size_t)j] += dst[j];
                }
                m++;
            }
            if (m > 0)
                mg_dsyrk_checked(what, "per-class feature outer products", CblasTrans, d, m, 1.0, block, d, 1.0,
                                 s->label_feat_outer + (size_t)c * (size_t)d * (size_t)d, d);
        }
    }
    mg_free(block);
}

void mg_eval_sums_add_points(mg_eval_sums *s, const float *x, int64_t n, const double (*means)[2], double sigma)
{
    MG_CHECK(s->n_modes > 0 && sigma > 0, "mode counting", NULL, "needs modes (%d) and sigma > 0 (%g)", s->n_modes,
             sigma);
    const double radius2 = 9.0 * sigma * sigma; /* (3 sigma)^2 */
    s->count[0] += (double)n;
    for (int64_t i = 0; i < n; i++) {
        const double px = x[2 * i], py = x[2 * i + 1];
        int nearest = 0;
        double best = INFINITY;
        for (int m = 0; m < s->n_modes; m++) {
            const double dx = px - means[m][0], dy = py - means[m][1], d2 = dx * dx + dy * dy;
            if (d2 < best)
                best = d2, nearest = m;
        }
        if (best <= radius2) /* also false for NaN points: they are never high quality */
            s->mode_hist[nearest] += 1;
    }
}

void mg_split_assignment(int *split, int64_t n, int n_splits, uint64_t seed)
{
    MG_CHECK(n_splits >= 1 && n >= n_splits, "IS splits", "evaluate more samples or use fewer splits",
             "%lld samples cannot fill %d splits", (long long)n, n_splits);
    uint64_t *perm = mg_alloc((size_t)n * sizeof(uint64_t), "split permutation");
    for (int64_t i = 0; i < n; i++)
        perm[i] = (uint64_t)i;
    mg_rng rng;
    mg_rng_init(&rng, seed, mg_rng_stream_id(SPLIT_STREAM, 0));
    mg_rng_shuffle(&rng, perm, (size_t)n);
    /* position j of the shuffled order goes to split floor(j * S / n) */
    for (int64_t j = 0; j < n; j++)
        split[perm[j]] = (int)((j * (int64_t)n_splits) / n);
    mg_free(perm);
}

/* ---- Gaussians and FID ---- */

void mg_gaussian_from_sums(double n, const double *sum, const double *outer, int d, double *mu, double *cov,
                           const char *what)
{
    MG_CHECK(n > d, what, "evaluate at least feature-dimension + 1 samples (more is better: FID is biased at small N)",
             "%.0f samples for %d-dimensional features: the covariance would be singular", n, d);
    for (int i = 0; i < d; i++)
        mu[i] = sum[i] / n;
    /* cov = (outer - n mu mu^T) / (n - 1), mirrored from the lower triangle */
    for (int i = 0; i < d; i++)
        for (int j = 0; j <= i; j++) {
            const double c = (outer[(size_t)i * d + j] - n * mu[i] * mu[j]) / (n - 1);
            cov[(size_t)i * d + j] = c;
            cov[(size_t)j * d + i] = c;
        }
}

/* Eigenvalues w (ascending) of the symmetric a (d, d), overwritten by the eigenvectors as
 * rows (row-major view of LAPACK's column-major columns) when vectors is true. */
static void symmetric_eigen(double *a, int d, double *w, bool vectors, const char *what)
{
    for (size_t i = 0; i < (size_t)d * d; i++)
        MG_CHECK(isfinite(a[i]), what, "the features contain NaN/Inf or overflowed",
                 "entry (%zu, %zu) is %g", i / (size_t)d, i % (size_t)d, a[i]);
    const char jobz = vectors ? 'V' : 'N', uplo = 'L';
    int lwork = -1, liwork = -1, info = 0, iwork_query = 0;
    double work_query = 0;
    dsyevd_(&jobz, &uplo, &d, a, &d, w, &work_query, &lwork, &iwork_query, &liwork, &info, 1, 1);
    MG_CHECK(info == 0, what, "a bug: LAPACK rejected the workspace query", "dsyevd workspace query: info = %d", info);
    lwork = (int)work_query;
    liwork = iwork_query;
    double *work = mg_alloc((size_t)lwork * sizeof(double), "dsyevd workspace");
    int *iwork = mg_alloc((size_t)liwork * sizeof(int), "dsyevd integer workspace");
    dsyevd_(&jobz, &uplo, &d, a, &d, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    mg_free(work);
    mg_free(iwork);
    if (info < 0)
        MG_FAIL(what, "a bug in the caller", "dsyevd: argument %d had an illegal value", -info);
    if (info > 0)
        MG_FAIL(what, "the matrix may be badly scaled or contain huge values",
                "dsyevd failed to converge (info = %d)", info);
}

static void note_negative(mg_fid_result *r, double v)
{
    if (v < 0) {
        r->clamped++;
        if (v < r->most_negative)
            r->most_negative = v;
    }
}

mg_fid_result mg_fid(const double *mu1, const double *cov1, const double *mu2, const double *cov2, int d)
{
    mg_fid_result r = {0};
    const size_t dd = (size_t)d * (size_t)d;
    double *a = mg_alloc(dd * sizeof(double), "FID eigenvectors");
    double *t = mg_alloc(dd * sizeof(double), "FID product");
    double *m = mg_alloc(dd * sizeof(double), "FID middle matrix");
    double *w = mg_alloc((size_t)d * sizeof(double), "FID eigenvalues");

    /* S1 = V^T diag(l) V with V's rows the eigenvectors; l < 0 (rounding) -> 0 */
    memcpy(a, cov1, dd * sizeof(double));
    symmetric_eigen(a, d, w, true, "FID: covariance of the first set");
    /* A = diag(sqrt l) V (row i of V scaled), so S1^(1/2) = V^T A and A = V S1^(1/2) */
    for (int i = 0; i < d; i++) {
        note_negative(&r, w[i]);
        const double root = w[i] > 0 ? sqrt(w[i]) : 0.0;
        for (int j = 0; j < d; j++)
            a[(size_t)i * d + j] *= root;
    }
    /* M = A S2 A^T = V (S1^(1/2) S2 S1^(1/2)) V^T: same eigenvalues, symmetric PSD */
    mg_dsymm_right_lower_checked("FID", "T = A S2", d, d, 1.0, cov2, d, a, d, 0.0, t, d);
    mg_dgemm_checked("FID", "M = T A^T", CblasNoTrans, CblasTrans, d, d, d, 1.0, t, d, a, d, 0.0, m, d);
    for (int i = 0; i < d; i++) /* exact symmetry: average M and M^T */
        for (int j = 0; j < i; j++) {
            const double avg = 0.5 * (m[(size_t)i * d + j] + m[(size_t)j * d + i]);
            m[(size_t)i * d + j] = m[(size_t)j * d + i] = avg;
        }
    symmetric_eigen(m, d, w, false, "FID: S1^(1/2) S2 S1^(1/2)");
    /* Tr (S1 S2)^(1/2) = sum of sqrt of the eigenvalues, summed smallest first */
    double trace_sqrt = 0;
    for (int i = 0; i < d; i++) {
        note_negative(&r, w[i]);
        if (w[i] > 0)
            trace_sqrt += sqrt(w[i]);
    }
    double mean_term = 0, trace1 = 0, trace2 = 0;
    for (int i = 0; i < d; i++) {
        const double diff = mu1[i] - mu2[i];
        mean_term += diff * diff;
        trace1 += cov1[(size_t)i * d + i];
        trace2 += cov2[(size_t)i * d + i];
    }
    r.mean_term = mean_term;
    r.trace_sqrt = trace_sqrt;
    r.fid = mean_term + trace1 + trace2 - 2.0 * trace_sqrt;
    mg_free(a);
    mg_free(t);
    mg_free(m);
    mg_free(w);
    return r;
}

/* ---- Inception Score, coverage, modes ---- */

/* Mean and population standard deviation of v[0..n), two-pass (no cancellation). */
static void mean_and_std(const double *v, int n, double *mean, double *std)
{
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += v[i];
    *mean = sum / n;
    double sq = 0;
    for (int i = 0; i < n; i++)
        sq += (v[i] - *mean) * (v[i] - *mean);
    *std = sqrt(sq / n);
}

void mg_inception_score(const mg_eval_sums *s, double *mean, double *std)
{
    const int k = s->n_classes;
    double *scores = mg_alloc(sizeof(double) * (size_t)(s->n_splits > 0 ? s->n_splits : 1), "IS split scores");
    int used = 0;
    for (int sp = 0; sp < s->n_splits; sp++) {
        const double c = s->split_count[sp];
        if (c <= 0)
            continue;
        /* E KL(p(y|x) || p(y)) = E sum_y p log p - sum_y pbar log pbar */
        double marginal_plogp = 0;
        for (int y = 0; y < k; y++) {
            const double pbar = s->split_prob[(size_t)sp * k + y] / c;
            if (pbar > 0)
                marginal_plogp += pbar * log(pbar);
        }
        scores[used++] = exp(s->split_plogp[sp] / c - marginal_plogp);
    }
    MG_CHECK(used > 0, "Inception Score", "evaluate at least one sample", "no samples in any split");
    mean_and_std(scores, used, mean, std);
    mg_free(scores);
}

mg_coverage mg_class_coverage(const mg_eval_sums *s)
{
    mg_coverage c = {0};
    const double total = s->count[0];
    c.entropy_max = s->n_classes > 0 ? log((double)s->n_classes) : 0.0;
    for (int y = 0; y < s->n_classes && total > 0; y++) {
        const double h = s->class_hist[y];
        if (h <= 0)
            continue;
        const double p = h / total;
        c.entropy -= p * log(p);
        c.classes_seen++;
        if (h >= 0.01 * total)
            c.classes_over_1pct++;
    }
    return c;
}

mg_hist_coverage mg_hist_coverage_of(const double *hist, const double *ref, int k)
{
    mg_hist_coverage c = {0, 0, NAN};
    double n = 0, nr = 0;
    for (int v = 0; v < k; v++)
        n += hist[v], nr += ref[v];
    for (int v = 0; v < k && n > 0; v++) {
        c.values_seen += hist[v] > 0;
        c.values_over_1pct += hist[v] > 0 && hist[v] >= 0.01 * n; /* the rule of classes_over_1pct */
    }
    if (n > 0 && nr > 0) {
        double sum = 0;
        for (int v = 0; v < k; v++)
            sum += fabs(hist[v] / n - ref[v] / nr);
        c.tv = 0.5 * sum;
    }
    return c;
}

/* ---- labelled samples ---- */

double mg_label_accuracy(const mg_eval_sums *s, double *per_class)
{
    double count = 0, correct = 0;
    for (int c = 0; c < s->n_labels; c++) {
        count += s->label_count[c];
        correct += s->label_correct[c];
        if (per_class)
            per_class[c] = s->label_count[c] > 0 ? s->label_correct[c] / s->label_count[c] : NAN;
    }
    return count > 0 ? correct / count : NAN;
}

double mg_class_fids(const mg_eval_sums *s, const double *ref_n, const double *ref_mu, const double *ref_cov,
                     double *fid)
{
    const int d = s->dim, L = s->n_labels;
    const size_t dd = (size_t)d * (size_t)d;
    double *mu = mg_alloc((size_t)d * sizeof(double), "class mean");
    double *cov = mg_alloc(dd * sizeof(double), "class covariance");
    double total = 0;
    for (int c = 0; c < L; c++) {
        /* a covariance needs more samples than dimensions on both sides */
        if (!(s->label_count[c] > d && ref_n[c] > d)) {
            fid[c] = NAN;
            total = NAN;
            continue;
        }
        mg_gaussian_from_sums(s->label_count[c], s->label_feat_sum + (size_t)c * (size_t)d,
                              s->label_feat_outer + (size_t)c * dd, d, mu, cov, "per-class FID");
        fid[c] = mg_fid(mu, cov, ref_mu + (size_t)c * (size_t)d, ref_cov + (size_t)c * dd, d).fid;
        total += fid[c];
    }
    mg_free(mu);
    mg_free(cov);
    return L > 0 ? total / L : NAN;
}

mg_mode_report mg_mode_report_from(const mg_eval_sums *s)
{
    mg_mode_report r = {.n_modes = s->n_modes};
    double high = 0;
    for (int m = 0; m < s->n_modes; m++) {
        high += s->mode_hist[m];
        if (s->mode_hist[m] > 0)
            r.modes_covered++;
    }
    r.high_quality_fraction = s->count[0] > 0 ? high / s->count[0] : 0.0;
    if (high <= 0) {
        r.kl_uniform = NAN;
        return r;
    }
    /* KL(h || u) = sum_m h_m log(h_m K), u = 1/K */
    for (int m = 0; m < s->n_modes; m++) {
        const double h = s->mode_hist[m] / high;
        if (h > 0)
            r.kl_uniform += h * log(h * s->n_modes);
    }
    return r;
}

/* ---- KID ---- */

/* The first m entries of a uniformly shuffled 0..n-1 (partial Fisher-Yates). */
static void draw_subset(mg_rng *rng, int64_t *idx, int64_t n, int m)
{
    for (int64_t i = 0; i < n; i++)
        idx[i] = i;
    for (int i = 0; i < m; i++) {
        const int64_t j = i + (int64_t)mg_rng_below(rng, (uint64_t)(n - i));
        const int64_t swap = idx[i];
        idx[i] = idx[j], idx[j] = swap;
    }
}

static void gather_rows(float *dst, const float *src, const int64_t *idx, int m, int d)
{
    for (int i = 0; i < m; i++)
        memcpy(dst + (size_t)i * d, src + (size_t)idx[i] * d, sizeof(float) * (size_t)d);
}

/* sum over j < n of (g[j] + 1)^3 in float64, in 8 interleaved partial sums: a fixed order
 * (the same bits on every rank) that the compiler can keep in vector registers, where one
 * running sum would serialise on the latency of each addition (docs/evaluation.md). */
static double cubes_sum(const float *g, int n)
{
    double part[8] = {0};
    int j = 0;
    for (; j + 8 <= n; j += 8)
        for (int l = 0; l < 8; l++) {
            const double v = (double)g[j + l] + 1.0;
            part[l] += v * v * v;
        }
    double tail = 0;
    for (; j < n; j++) {
        const double v = (double)g[j] + 1.0;
        tail += v * v * v;
    }
    return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7])) + tail;
}

/* k = (g + 1)^3 summed over the strict lower triangle of the (m, m) Gram matrix g. */
static double kernel_sum_lower(const float *g, int m)
{
    double total = 0;
    for (int i = 1; i < m; i++)
        total += cubes_sum(g + (size_t)i * m, i);
    return total;
}

static double kernel_sum_all(const float *g, int m)
{
    double total = 0;
    for (int i = 0; i < m; i++)
        total += cubes_sum(g + (size_t)i * m, m);
    return total;
}

/* The Gram matrices are float32 (sgemm/ssyrk: about half the time and memory of float64;
 * docs/evaluation.md); the kernel values are summed in float64. A dot product of d floats
 * carries a relative error of about d x 6e-8, far below the spread of KID over subsets
 * (docs/evaluation.md). */
void mg_kid_subsets(const float *x, int64_t nx, const float *y, int64_t ny, int d, int m, int n_subsets,
                    uint64_t seed, int first, int stride, double *estimates)
{
    MG_CHECK(m >= 2 && m <= nx && m <= ny && d > 0 && stride > 0, "KID",
             "the subset size must be at least 2 and at most the size of each set",
             "subset size %d, sets of %lld and %lld samples", m, (long long)nx, (long long)ny);
    const size_t mm = (size_t)m * (size_t)m;
    float *xs = mg_alloc_floats((size_t)m * d, "KID subset x");
    float *ys = mg_alloc_floats((size_t)m * d, "KID subset y");
    float *gram = mg_alloc_floats(mm, "KID Gram matrix");
    int64_t *idx = mg_alloc((size_t)(nx > ny ? nx : ny) * sizeof(int64_t), "KID subset indices");
    const float inv_d = 1.0f / (float)d;
    const double pairs_within = (double)m * (m - 1), pairs_across = (double)m * m;
    for (int j = first; j < n_subsets; j += stride) {
        mg_rng rng;
        mg_rng_init(&rng, seed, mg_rng_stream_id(KID_STREAM, (uint32_t)j));
        draw_subset(&rng, idx, nx, m);
        gather_rows(xs, x, idx, m, d);
        draw_subset(&rng, idx, ny, m);
        gather_rows(ys, y, idx, m, d);
        /* MMD^2_u = sum_{i!=j} k(x_i,x_j) / m(m-1) + sum_{i!=j} k(y_i,y_j) / m(m-1)
         *           - 2 sum_{i,j} k(x_i,y_j) / m^2,   k(a,b) = (a.b/d + 1)^3 */
        mg_ssyrk_checked("KID", "Gram of the first set", CblasNoTrans, m, d, inv_d, xs, d, 0.0f, gram, m);
        const double kxx = 2.0 * kernel_sum_lower(gram, m);
        mg_ssyrk_checked("KID", "Gram of the second set", CblasNoTrans, m, d, inv_d, ys, d, 0.0f, gram, m);
        const double kyy = 2.0 * kernel_sum_lower(gram, m);
        mg_sgemm_checked("KID", "cross Gram", CblasNoTrans, CblasTrans, m, m, d, inv_d, xs, d, ys, d, 0.0f, gram, m);
        const double kxy = kernel_sum_all(gram, m);
        estimates[j] = kxx / pairs_within + kyy / pairs_within - 2.0 * kxy / pairs_across;
    }
    mg_free(xs);
    mg_free(ys);
    mg_free(gram);
    mg_free(idx);
}

void mg_kid_finish(const double *estimates, int n_subsets, double *mean, double *std)
{
    MG_CHECK(n_subsets > 0, "KID", NULL, "no subsets");
    mean_and_std(estimates, n_subsets, mean, std);
}
