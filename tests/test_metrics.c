/* Evaluation metrics against closed forms and hand-made cases (FID, IS, KID, class
 * coverage, mixture mode counting, class accuracy and per-class FID), and the distributed path: sums reduced over ranks
 * give the numbers of one process to 1e-9.
 * mpirun-np: 1 2 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mg_batch_streams.h"
#include "mg_blas.h"
#include "mg_dist.h"
#include "mg_metrics.h"
#include "mg_test.h"

/* Orthogonal Q (d, d) as a product of three Householder reflections. */
static void random_orthogonal(double *q, int d, mg_rng *rng)
{
    memset(q, 0, sizeof(double) * (size_t)d * d);
    for (int i = 0; i < d; i++)
        q[(size_t)i * d + i] = 1;
    double *v = malloc(sizeof(double) * (size_t)d), *t = malloc(sizeof(double) * (size_t)d * d);
    for (int r = 0; r < 3; r++) {
        double norm2 = 0;
        for (int i = 0; i < d; i++)
            v[i] = mg_rng_normal(rng), norm2 += v[i] * v[i];
        /* Q <- (I - 2 v v^T / |v|^2) Q */
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) {
                double dot = 0;
                for (int l = 0; l < d; l++)
                    dot += v[l] * q[(size_t)l * d + j];
                t[(size_t)i * d + j] = q[(size_t)i * d + j] - 2 * v[i] * dot / norm2;
            }
        memcpy(q, t, sizeof(double) * (size_t)d * d);
    }
    free(v);
    free(t);
}

/* cov = Q diag(eig) Q^T */
static void covariance_from(double *cov, const double *q, const double *eig, int d)
{
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            double s = 0;
            for (int l = 0; l < d; l++)
                s += q[(size_t)i * d + l] * eig[l] * q[(size_t)j * d + l];
            cov[(size_t)i * d + j] = s;
        }
}

static void test_fid_closed_form_2d(void **state)
{
    (void)state;
    /* for 2x2 matrices, Tr sqrt(S1 S2) = sqrt(Tr(S1 S2) + 2 sqrt(det S1 det S2)),
     * which holds for non-commuting S1, S2 */
    const double s1[4] = {2.0, 0.5, 0.5, 1.0}, s2[4] = {1.0, -0.3, -0.3, 3.0};
    const double mu1[2] = {1.0, 2.0}, mu2[2] = {0.0, -1.0};
    const double tr12 = s1[0] * s2[0] + s1[1] * s2[2] + s1[2] * s2[1] + s1[3] * s2[3];
    const double det1 = s1[0] * s1[3] - s1[1] * s1[2], det2 = s2[0] * s2[3] - s2[1] * s2[2];
    const double expect = 1.0 + 9.0 + (s1[0] + s1[3]) + (s2[0] + s2[3]) - 2 * sqrt(tr12 + 2 * sqrt(det1 * det2));
    mg_fid_result r = mg_fid(mu1, s1, mu2, s2, 2);
    MG_ASSERT_CLOSE(r.fid, expect, 0, 1e-6, "FID 2-d non-commuting");
    MG_ASSERT_CLOSE(r.mean_term, 10.0, 0, 1e-12, "FID mean term");
    assert_int_equal(r.clamped, 0);
}

static void test_fid_closed_form_64d(void **state)
{
    (void)state;
    /* S1 = Q diag(a) Q^T, S2 = Q diag(b) Q^T commute: FID = |dmu|^2 + sum (sqrt a - sqrt b)^2 */
    const int d = 64;
    mg_rng rng;
    mg_rng_init(&rng, 11, mg_rng_stream_id(MG_STREAM_TEST, 0));
    double *q = malloc(sizeof(double) * d * d), *s1 = malloc(sizeof(double) * d * d),
           *s2 = malloc(sizeof(double) * d * d);
    double a[64], b[64], mu1[64], mu2[64], expect = 0;
    random_orthogonal(q, d, &rng);
    for (int i = 0; i < d; i++) {
        a[i] = 0.01 + 4.0 * mg_rng_uniform(&rng);
        b[i] = 0.01 + 4.0 * mg_rng_uniform(&rng);
        mu1[i] = mg_rng_normal(&rng);
        mu2[i] = mg_rng_normal(&rng);
        expect += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]) + (sqrt(a[i]) - sqrt(b[i])) * (sqrt(a[i]) - sqrt(b[i]));
    }
    covariance_from(s1, q, a, d);
    covariance_from(s2, q, b, d);
    mg_fid_result r = mg_fid(mu1, s1, mu2, s2, d);
    MG_ASSERT_CLOSE(r.fid, expect, 0, 1e-6, "FID 64-d");
    /* symmetric in its arguments */
    MG_ASSERT_CLOSE(mg_fid(mu2, s2, mu1, s1, d).fid, expect, 0, 1e-6, "FID 64-d swapped");
    /* scaled copy: S2 = 4 S1 -> Tr sqrt(S1 S2) = 2 Tr S1, FID = Tr S1 */
    double tr1 = 0;
    for (int i = 0; i < d; i++)
        tr1 += a[i];
    for (int i = 0; i < d * d; i++)
        s2[i] = 4 * s1[i];
    MG_ASSERT_CLOSE(mg_fid(mu1, s1, mu1, s2, d).fid, tr1, 0, 1e-6, "FID scaled covariance");
    free(q);
    free(s1);
    free(s2);
}

/* Features of sample g: its own stream, so any rank can make any sample. Column 3 is
 * always 0 (a dead ReLU unit), the rest correlated normals. */
static void make_features(float *f, int64_t first, int64_t n, int d, uint64_t seed)
{
    for (int64_t i = 0; i < n; i++) {
        mg_rng r;
        mg_batch_streams_rng(&r, seed, MG_STREAM_TEST, (uint64_t)(first + i));
        float *row = f + (size_t)i * d;
        float common = mg_rng_normal(&r);
        for (int j = 0; j < d; j++)
            row[j] = 0.5f * common + mg_rng_normal(&r) * (1.0f + 0.1f * (float)j) + 0.2f * (float)j;
        row[3 % d] = 0;
    }
}

/* Class probabilities of sample g: a softmax of random logits, some classes favoured. */
static void make_probs(float *p, int64_t first, int64_t n, int k, uint64_t seed)
{
    for (int64_t i = 0; i < n; i++) {
        mg_rng r;
        mg_batch_streams_rng(&r, seed, MG_STREAM_TEST, (uint64_t)(first + i));
        float *row = p + (size_t)i * k;
        double z[64], mx = -1e30, sum = 0;
        for (int y = 0; y < k; y++)
            z[y] = 3.0 * mg_rng_normal(&r) + (y < 3 ? 1.0 : 0.0), mx = z[y] > mx ? z[y] : mx;
        for (int y = 0; y < k; y++)
            sum += exp(z[y] - mx);
        for (int y = 0; y < k; y++)
            row[y] = (float)(exp(z[y] - mx) / sum);
    }
}

static void test_fid_self_is_zero(void **state)
{
    (void)state;
    const int d = 16, n = 500;
    float *f = malloc(sizeof(float) * n * d);
    make_features(f, 0, n, d, 5);
    mg_eval_sums s;
    mg_eval_sums_init(&s, d, 0, 0, 0);
    mg_eval_sums_add(&s, f, NULL, NULL, n, "test features");
    double mu[16], cov[256];
    mg_gaussian_from_sums(s.count[0], s.feat_sum, s.feat_outer, d, mu, cov, "test");
    mg_fid_result r = mg_fid(mu, cov, mu, cov, d);
    if (!(fabs(r.fid) < 1e-9))
        fail_msg("FID(X, X) = %.3g, expected 0 within 1e-9", r.fid);
    /* the dead unit makes S singular: its eigenvalue may come out slightly negative */
    assert_true(r.most_negative <= 0 && r.most_negative > -1e-12);
    mg_eval_sums_free(&s);
    free(f);
}

static void test_fid_needs_more_samples_than_dims(void **state)
{
    (void)state;
    const int d = 8;
    double sum[8] = {0}, outer[64] = {0}, mu[8], cov[64];
    MG_EXPECT_FATAL(mg_gaussian_from_sums(8, sum, outer, d, mu, cov, "generated samples"), "singular");
    double bad[4] = {1, NAN, NAN, 1}, m2[2] = {0, 0};
    MG_EXPECT_FATAL(mg_fid(m2, bad, m2, bad, 2), "NaN");
}

static void test_inception_score(void **state)
{
    (void)state;
    const int k = 10, splits = 7, n = k * splits;
    /* n = 70: split s holds samples 10s..10s+9, one of each class, one-hot */
    float *p = calloc((size_t)n * k, sizeof(float));
    int split[70];
    for (int i = 0; i < n; i++) {
        p[i * k + i % k] = 1.0f;
        split[i] = i / k;
    }
    mg_eval_sums s;
    mg_eval_sums_init(&s, 0, k, splits, 0);
    mg_eval_sums_add(&s, NULL, p, split, n, "one-hot");
    double mean, std;
    mg_inception_score(&s, &mean, &std);
    MG_ASSERT_CLOSE(mean, (double)k, 0, 1e-12, "IS of uniform one-hot predictions");
    MG_ASSERT_CLOSE(std, 0, 1e-9, 0, "IS std");
    mg_coverage c = mg_class_coverage(&s);
    assert_int_equal(c.classes_over_1pct, k);
    MG_ASSERT_CLOSE(c.entropy, log(k), 0, 1e-12, "coverage entropy");

    /* identical predictions: p(y|x) = p(y), KL = 0, IS = 1 */
    make_probs(p, 0, 1, k, 3);
    for (int i = 1; i < n; i++)
        memcpy(p + i * k, p, sizeof(float) * k);
    int random_split[70];
    mg_split_assignment(random_split, n, splits, 9);
    mg_eval_sums_zero(&s);
    mg_eval_sums_add(&s, NULL, p, random_split, n, "identical");
    mg_inception_score(&s, &mean, &std);
    MG_ASSERT_CLOSE(mean, 1.0, 1e-12, 0, "IS of identical predictions");
    c = mg_class_coverage(&s);
    assert_int_equal(c.classes_over_1pct, 1);
    assert_int_equal(c.classes_seen, 1);
    MG_ASSERT_CLOSE(c.entropy, 0, 1e-15, 0, "entropy of a collapsed histogram");

    /* coverage: 1% threshold */
    mg_eval_sums_zero(&s);
    memset(p, 0, sizeof(float) * n * k);
    for (int i = 0; i < n; i++)
        p[i * k + (i == 0 ? 1 : 0)] = 1.0f; /* class 1 once (1/70 > 1%), class 0 otherwise */
    mg_eval_sums_add(&s, NULL, p, random_split, n, "two classes");
    c = mg_class_coverage(&s);
    assert_int_equal(c.classes_over_1pct, 2);
    mg_eval_sums_free(&s);
    free(p);
}

/* Factor coverage from counts: values over 1%, values seen, and the total variation
 * between normalised histograms, against hand values. */
static void test_hist_coverage(void **state)
{
    (void)state;
    /* equal shapes at different totals: TV 0; every value above 1% */
    const double real[4] = {10, 20, 30, 40}, same[4] = {1, 2, 3, 4};
    mg_hist_coverage c = mg_hist_coverage_of(same, real, 4);
    assert_int_equal(c.values_over_1pct, 4);
    assert_int_equal(c.values_seen, 4);
    MG_ASSERT_CLOSE(c.tv, 0, 1e-15, 0, "TV of proportional histograms");
    /* one value only: TV = 1 - its real share (0.4) = 0.6 */
    const double one[4] = {0, 0, 0, 250};
    c = mg_hist_coverage_of(one, real, 4);
    assert_int_equal(c.values_over_1pct, 1);
    assert_int_equal(c.values_seen, 1);
    MG_ASSERT_CLOSE(c.tv, 0.6, 1e-15, 0, "TV of a collapsed histogram");
    /* disjoint supports: TV 1; a value at 1/200 is seen but under 1% */
    const double left[4] = {199, 1, 0, 0}, right[4] = {0, 0, 5, 5};
    c = mg_hist_coverage_of(left, right, 4);
    assert_int_equal(c.values_over_1pct, 1);
    assert_int_equal(c.values_seen, 2);
    MG_ASSERT_CLOSE(c.tv, 1, 1e-15, 0, "TV of disjoint histograms");
    /* exactly 1% counts (the rule of classes_over_1pct); hand TV:
     * h = (.01, .99, 0), r = (.5, .25, .25): (.49 + .74 + .25) / 2 = .74 */
    const double edge[3] = {1, 99, 0}, ref3[3] = {2, 1, 1};
    c = mg_hist_coverage_of(edge, ref3, 3);
    assert_int_equal(c.values_over_1pct, 2);
    MG_ASSERT_CLOSE(c.tv, 0.74, 1e-15, 0, "TV by hand");
    /* no samples: nothing seen, TV undefined */
    const double none[3] = {0, 0, 0};
    c = mg_hist_coverage_of(none, ref3, 3);
    assert_int_equal(c.values_seen, 0);
    assert_true(isnan(c.tv));
}

static void test_split_assignment(void **state)
{
    (void)state;
    int a[1003], b[1003], sizes[10] = {0};
    mg_split_assignment(a, 1003, 10, 4);
    mg_split_assignment(b, 1003, 10, 4);
    assert_memory_equal(a, b, sizeof a);
    for (int i = 0; i < 1003; i++) {
        assert_true(a[i] >= 0 && a[i] < 10);
        sizes[a[i]]++;
    }
    for (int s = 0; s < 10; s++)
        assert_true(sizes[s] == 100 || sizes[s] == 101);
    /* shuffled: the first 100 samples do not all land in one split */
    int first = a[0], same = 1;
    for (int i = 1; i < 100; i++)
        same += a[i] == first;
    assert_true(same < 50);
}

/* Brute-force unbiased MMD^2 over whole sets (the subset estimator with m = n draws a
 * permutation, to which MMD is invariant). */
static double naive_mmd(const float *x, const float *y, int n, int d)
{
    double kxx = 0, kyy = 0, kxy = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double dxx = 0, dyy = 0, dxy = 0;
            for (int l = 0; l < d; l++) {
                dxx += (double)x[i * d + l] * x[j * d + l];
                dyy += (double)y[i * d + l] * y[j * d + l];
                dxy += (double)x[i * d + l] * y[j * d + l];
            }
            if (i != j) {
                kxx += pow(dxx / d + 1, 3);
                kyy += pow(dyy / d + 1, 3);
            }
            kxy += pow(dxy / d + 1, 3);
        }
    return (kxx + kyy) / ((double)n * (n - 1)) - 2 * kxy / ((double)n * n);
}

static void test_kid(void **state)
{
    (void)state;
    const int d = 16, n = 4000, subsets = 40, m = 1000;
    float *x = malloc(sizeof(float) * n * d), *y = malloc(sizeof(float) * n * d);
    make_features(x, 0, n, d, 21);
    make_features(y, 0, n, d, 22); /* same distribution, other samples */
    double est[40], mean, std;
    mg_kid_subsets(x, n, y, n, d, m, subsets, 1, 0, 1, est);
    mg_kid_finish(est, subsets, &mean, &std);
    /* std is the spread of one subset's estimate: the estimator's standard error */
    if (!(fabs(mean) < std && std > 0))
        fail_msg("KID of one distribution: %.3g +- %.3g, expected |mean| < std", mean, std);
    /* another distribution is far away */
    for (int i = 0; i < n * d; i++)
        y[i] = 1.15f * y[i] + 0.1f;
    mg_kid_subsets(x, n, y, n, d, m, subsets, 1, 0, 1, est);
    double mean2, std2;
    mg_kid_finish(est, subsets, &mean2, &std2);
    if (!(mean2 > 4 * std2))
        fail_msg("KID of different distributions: %.3g +- %.3g, expected > 4 std", mean2, std2);
    /* the estimator itself against brute force in float64: the Gram matrices are float32,
     * so each kernel value (about 1 here) may be off by ~d x 6e-8 relative; the mean of
     * thousands of them by no more than that */
    const int small = 60;
    mg_kid_subsets(x, small, y, small, d, small, 1, 5, 0, 1, est);
    MG_ASSERT_CLOSE(est[0], naive_mmd(x, y, small, d), 2e-6, 0, "MMD^2 against brute force");
    MG_EXPECT_FATAL(mg_kid_subsets(x, 10, y, 10, d, 11, 1, 1, 0, 1, est), "subset size");
    free(x);
    free(y);
}

static void test_mode_counting(void **state)
{
    (void)state;
    const double sigma = 0.01;
    double means[8][2];
    for (int m = 0; m < 8; m++)
        means[m][0] = cos(2 * M_PI * m / 8), means[m][1] = sin(2 * M_PI * m / 8);
    /* three at mode 0, one each at modes 1..4, one 2.9 sigma off mode 5 (high quality),
     * one 3.1 sigma off mode 6 (not), one at the origin (not) */
    float pts[20];
    int n = 0;
    const int at[7] = {0, 0, 0, 1, 2, 3, 4};
    for (int i = 0; i < 7; i++, n++)
        pts[2 * n] = (float)means[at[i]][0], pts[2 * n + 1] = (float)means[at[i]][1];
    pts[2 * n] = (float)(means[5][0] + 2.9 * sigma), pts[2 * n + 1] = (float)means[5][1], n++;
    pts[2 * n] = (float)means[6][0], pts[2 * n + 1] = (float)(means[6][1] - 3.1 * sigma), n++;
    pts[2 * n] = 0, pts[2 * n + 1] = 0, n++;
    mg_eval_sums s;
    mg_eval_sums_init(&s, 0, 0, 0, 8);
    mg_eval_sums_add_points(&s, pts, n, (const double(*)[2])means, sigma);
    mg_mode_report r = mg_mode_report_from(&s);
    assert_int_equal(r.n_modes, 8);
    assert_int_equal(r.modes_covered, 6);
    MG_ASSERT_CLOSE(r.high_quality_fraction, 0.8, 0, 1e-12, "high-quality fraction");
    /* histogram (3, 1, 1, 1, 1, 1, 0, 0) / 8: KL = 3/8 log 3 + 5/8 log 1 */
    MG_ASSERT_CLOSE(r.kl_uniform, 0.375 * log(3.0), 0, 1e-12, "KL from uniform");
    /* all collapsed onto one mode: KL = log 8 */
    mg_eval_sums_zero(&s);
    mg_eval_sums_add_points(&s, pts, 3, (const double(*)[2])means, sigma);
    r = mg_mode_report_from(&s);
    assert_int_equal(r.modes_covered, 1);
    MG_ASSERT_CLOSE(r.kl_uniform, log(8.0), 0, 1e-12, "KL of a collapsed generator");
    /* nothing high quality: KL undefined */
    mg_eval_sums_zero(&s);
    mg_eval_sums_add_points(&s, pts + 18, 1, (const double(*)[2])means, sigma);
    r = mg_mode_report_from(&s);
    assert_int_equal(r.modes_covered, 0);
    assert_true(isnan(r.kl_uniform));
    mg_eval_sums_free(&s);
}

/* Labels of the per-class tests: sample g's class from its own stream (uneven counts). */
static int label_of(int64_t g, int k) { return (int)((g * 7 + g / 5) % k); }

/* Features of class c: make_features shifted by 1.5 (c + 1) in coordinate c. */
static void make_labelled(float *f, int *y, int64_t n, int d, int k, uint64_t seed)
{
    make_features(f, 0, n, d, seed);
    for (int64_t i = 0; i < n; i++) {
        y[i] = label_of(i, k);
        f[(size_t)i * d + (size_t)y[i]] += 1.5f * (float)(y[i] + 1);
    }
}

/* Per-class FID against known answers: (1) each class's value equals mg_fid of that
 * class's own samples gathered by hand; (2) against a reference that is each class's own
 * Gaussian with the mean moved by delta_c, FID_c = |delta_c|^2 and intra-FID their mean;
 * (3) class accuracy counts; (4) a class with <= d samples has no FID (NaN); (5) the
 * labelled sums reduced over ranks give the same numbers as one process. */
static void test_per_class_fid(void **state)
{
    (void)state;
    enum { D = 6, K = 3, N = 901 };
    float *f = malloc(sizeof(float) * N * D), *p = calloc((size_t)N * K, sizeof(float));
    int *y = malloc(sizeof(int) * N);
    make_labelled(f, y, N, D, K, 41);
    /* predictions: the label, except every 4th sample (the next class) */
    double want_correct[K] = {0}, want_count[K] = {0};
    for (int i = 0; i < N; i++) {
        const bool right = i % 4 != 0;
        p[(size_t)i * K + (size_t)(right ? y[i] : (y[i] + 1) % K)] = 1.0f;
        want_count[y[i]] += 1;
        want_correct[y[i]] += right;
    }
    mg_eval_sums s;
    mg_eval_sums_init_labelled(&s, D, K, 0, 0, K);
    mg_eval_sums_add(&s, f, p, NULL, N, "labelled");
    mg_eval_sums_add_labels(&s, f, p, y, N, "labelled");
    double per[K];
    const double acc = mg_label_accuracy(&s, per);
    MG_ASSERT_CLOSE(acc, (want_correct[0] + want_correct[1] + want_correct[2]) / N, 0, 1e-15, "class accuracy");
    for (int c = 0; c < K; c++) {
        MG_ASSERT_CLOSE(s.label_count[c], want_count[c], 0, 0, "class count");
        MG_ASSERT_CLOSE(per[c], want_correct[c] / want_count[c], 0, 1e-15, "per-class accuracy");
    }

    /* (1) by hand: each class's rows into unlabelled sums; reference = the whole set */
    double ref_n[K], ref_mu[K * D], ref_cov[K * D * D], mu[D], cov[D * D], fid[K];
    mg_eval_sums all;
    mg_eval_sums_init(&all, D, 0, 0, 0);
    mg_eval_sums_add(&all, f, NULL, NULL, N, "all");
    for (int c = 0; c < K; c++) {
        ref_n[c] = N;
        mg_gaussian_from_sums(all.count[0], all.feat_sum, all.feat_outer, D, ref_mu + c * D, ref_cov + c * D * D, "all");
    }
    const double intra = mg_class_fids(&s, ref_n, ref_mu, ref_cov, fid);
    double sum = 0;
    for (int c = 0; c < K; c++) {
        float *rows = malloc(sizeof(float) * N * D);
        int m = 0;
        for (int i = 0; i < N; i++)
            if (y[i] == c)
                memcpy(rows + (size_t)m++ * D, f + (size_t)i * D, sizeof(float) * D);
        mg_eval_sums one;
        mg_eval_sums_init(&one, D, 0, 0, 0);
        mg_eval_sums_add(&one, rows, NULL, NULL, m, "one class");
        mg_gaussian_from_sums(one.count[0], one.feat_sum, one.feat_outer, D, mu, cov, "one class");
        const double want = mg_fid(mu, cov, ref_mu + c * D, ref_cov + c * D * D, D).fid;
        MG_ASSERT_CLOSE(fid[c], want, 1e-12, 1e-9, "per-class FID vs the class's own samples");
        assert_true(fid[c] > 0.5); /* a shifted class is far from the mixture of all */
        sum += want;
        mg_eval_sums_free(&one);
        free(rows);
    }
    MG_ASSERT_CLOSE(intra, sum / K, 1e-12, 1e-12, "intra-FID = mean of the per-class FIDs");

    /* (2) reference = each class's own Gaussian, mean moved by delta_c: FID_c = |delta_c|^2 */
    double want_intra = 0;
    for (int c = 0; c < K; c++) {
        mg_gaussian_from_sums(s.label_count[c], s.label_feat_sum + c * D, s.label_feat_outer + c * D * D, D,
                              ref_mu + c * D, ref_cov + c * D * D, "class");
        double delta2 = 0;
        for (int j = 0; j < D; j++) {
            const double delta = 0.1 * (c + 1) * (j % 2 ? 1 : -1);
            ref_mu[c * D + j] += delta;
            delta2 += delta * delta;
        }
        ref_n[c] = 1000;
        fid[c] = NAN;
        want_intra += delta2 / K;
        const double got = (mg_class_fids(&s, ref_n, ref_mu, ref_cov, fid), fid[c]);
        MG_ASSERT_CLOSE(got, delta2, 1e-9, 0, "per-class FID with equal covariances = squared mean shift");
    }
    MG_ASSERT_CLOSE(mg_class_fids(&s, ref_n, ref_mu, ref_cov, fid), want_intra, 1e-9, 0, "intra-FID, closed form");

    /* (4) a reference class with d samples: no covariance, NaN, and intra-FID NaN */
    ref_n[1] = D;
    assert_true(isnan(mg_class_fids(&s, ref_n, ref_mu, ref_cov, fid)));
    assert_true(isnan(fid[1]) && isfinite(fid[0]) && isfinite(fid[2]));
    ref_n[1] = 1000;

    /* bad labels and sizes */
    int bad[1] = {K};
    MG_EXPECT_FATAL(mg_eval_sums_add_labels(&s, f, p, bad, 1, "bad label"), "label 3 of sample 0 is outside 0 .. 2");
    mg_eval_sums wrong;
    MG_EXPECT_FATAL(mg_eval_sums_init_labelled(&wrong, D, K, 0, 0, K + 1), "4 label classes");

    /* (5) distributed: each rank a contiguous slice, one reduction of the whole buffer */
    const int rank = mg_dist_rank(), size = mg_dist_size();
    const int64_t lo = (int64_t)N * rank / size, hi = (int64_t)N * (rank + 1) / size;
    mg_eval_sums dist;
    mg_eval_sums_init_labelled(&dist, D, K, 0, 0, K);
    mg_eval_sums_add(&dist, f + lo * D, p + lo * K, NULL, hi - lo, "slice");
    mg_eval_sums_add_labels(&dist, f + lo * D, p + lo * K, y + lo, hi - lo, "slice");
    mg_dist_reduce_sum_f64_root(dist.buf, dist.n_values);
    if (rank == 0) {
        double fid_dist[K];
        MG_ASSERT_CLOSE(mg_label_accuracy(&dist, NULL), acc, 0, 0, "class accuracy, reduced vs serial");
        const double a = mg_class_fids(&s, ref_n, ref_mu, ref_cov, fid);
        const double b = mg_class_fids(&dist, ref_n, ref_mu, ref_cov, fid_dist);
        MG_ASSERT_CLOSE(b, a, 1e-10, 1e-9, "intra-FID, reduced vs serial");
        for (int c = 0; c < K; c++)
            MG_ASSERT_CLOSE(fid_dist[c], fid[c], 1e-10, 1e-9, "per-class FID, reduced vs serial");
    }
    mg_eval_sums_free(&dist);
    mg_eval_sums_free(&all);
    mg_eval_sums_free(&s);
    free(f);
    free(p);
    free(y);
}

/* Every metric from sums reduced over the ranks (each rank holding a contiguous slice of
 * the samples) equals the one-process computation to 1e-9 relative. */
static void test_distributed_equals_serial(void **state)
{
    (void)state;
    const int d = 24, k = 10, splits = 10, n = 3001, subsets = 6, m = 500;
    const int rank = mg_dist_rank(), size = mg_dist_size();
    const int64_t lo = (int64_t)n * rank / size, hi = (int64_t)n * (rank + 1) / size, local = hi - lo;
    int *split = malloc(sizeof(int) * n);
    mg_split_assignment(split, n, splits, 77);
    float *f = malloc(sizeof(float) * n * d), *p = malloc(sizeof(float) * n * k), *ref = malloc(sizeof(float) * n * d);
    make_features(f, 0, n, d, 31);
    make_probs(p, 0, n, k, 32);
    make_features(ref, 0, n, d, 33);
    for (int i = 0; i < n * d; i++)
        ref[i] = 0.9f * ref[i] + 0.05f;

    /* distributed: my slice, one reduction; KID over gathered features, subsets by rank */
    mg_eval_sums dist;
    mg_eval_sums_init(&dist, d, k, splits, 0);
    mg_eval_sums_add(&dist, f + lo * d, p + lo * k, split + lo, local, "slice");
    mg_dist_reduce_sum_f64_root(dist.buf, dist.n_values);
    float *gathered = malloc(sizeof(float) * n * d);
    mg_dist_allgather_floats(f + lo * d, local * d, gathered);
    assert_memory_equal(gathered, f, sizeof(float) * n * d);
    double kid[6] = {0};
    mg_kid_subsets(gathered, n, ref, n, d, m, subsets, 3, rank, size, kid);
    mg_dist_reduce_sum_f64_root(kid, subsets);
    float *root_copy = rank == 0 ? malloc(sizeof(float) * n * d) : NULL;
    mg_dist_gather_floats(f + lo * d, local * d, root_copy);

    if (rank == 0) {
        assert_memory_equal(root_copy, f, sizeof(float) * n * d);
        mg_eval_sums serial, reference;
        mg_eval_sums_init(&serial, d, k, splits, 0);
        mg_eval_sums_init(&reference, d, 0, 0, 0);
        mg_eval_sums_add(&serial, f, p, split, n, "all");
        mg_eval_sums_add(&reference, ref, NULL, NULL, n, "reference");
        double mu_r[24], cov_r[576], mu_a[24], cov_a[576], mu_b[24], cov_b[576];
        mg_gaussian_from_sums(reference.count[0], reference.feat_sum, reference.feat_outer, d, mu_r, cov_r, "ref");
        mg_gaussian_from_sums(serial.count[0], serial.feat_sum, serial.feat_outer, d, mu_a, cov_a, "serial");
        mg_gaussian_from_sums(dist.count[0], dist.feat_sum, dist.feat_outer, d, mu_b, cov_b, "dist");
        const double fid_a = mg_fid(mu_a, cov_a, mu_r, cov_r, d).fid, fid_b = mg_fid(mu_b, cov_b, mu_r, cov_r, d).fid;
        MG_ASSERT_CLOSE(fid_b, fid_a, 0, 1e-9, "FID, reduced vs serial");
        assert_true(fid_a > 0.1);
        double is_a, is_sa, is_b, is_sb;
        mg_inception_score(&serial, &is_a, &is_sa);
        mg_inception_score(&dist, &is_b, &is_sb);
        MG_ASSERT_CLOSE(is_b, is_a, 0, 1e-9, "IS mean, reduced vs serial");
        MG_ASSERT_CLOSE(is_sb, is_sa, 0, 1e-9, "IS std, reduced vs serial");
        assert_true(is_a > 1.5 && is_sa > 0);
        mg_coverage ca = mg_class_coverage(&serial), cb = mg_class_coverage(&dist);
        MG_ASSERT_CLOSE(cb.entropy, ca.entropy, 0, 1e-9, "coverage entropy");
        assert_int_equal(ca.classes_over_1pct, cb.classes_over_1pct);
        double serial_kid[6] = {0}, ka, ksa, kb, ksb;
        mg_kid_subsets(f, n, ref, n, d, m, subsets, 3, 0, 1, serial_kid);
        mg_kid_finish(serial_kid, subsets, &ka, &ksa);
        mg_kid_finish(kid, subsets, &kb, &ksb);
        MG_ASSERT_CLOSE(kb, ka, 0, 1e-9, "KID mean, distributed vs serial");
        MG_ASSERT_CLOSE(ksb, ksa, 0, 1e-9, "KID std, distributed vs serial");
        mg_eval_sums_free(&serial);
        mg_eval_sums_free(&reference);
        free(root_copy);
    }
    mg_eval_sums_free(&dist);
    free(gathered);
    free(split);
    free(f);
    free(p);
    free(ref);
}

/* The checked BLAS module the metrics go through: each product against a plain loop, and
 * a leading dimension too small for its matrix is a fatal error naming the caller. */
static void test_blas_checked(void **state)
{
    (void)state;
    enum { M = 3, N = 4, K = 5 };
    double a[M * K], b[K * N], c[M * N], s[N * N], bs[M * N];
    float af[M * K], bf[K * N], cf[M * N], gf[M * M];
    for (int i = 0; i < M * K; i++)
        af[i] = (float)(a[i] = 0.25 * i - 1.0);
    for (int i = 0; i < K * N; i++)
        bf[i] = (float)(b[i] = 0.5 - 0.125 * i);
    for (int i = 0; i < N * N; i++)
        s[(i / N) * N + i % N] = s[(i % N) * N + i / N] = 1.0 + 0.1 * (i / N + i % N);
    mg_dgemm_checked("test", "A B", CblasNoTrans, CblasNoTrans, M, N, K, 1.0, a, K, b, N, 0.0, c, N);
    mg_sgemm_checked("test", "A B", CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, af, K, bf, N, 0.0f, cf, N);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double want = 0;
            for (int k = 0; k < K; k++)
                want += a[i * K + k] * b[k * N + j];
            MG_ASSERT_CLOSE(c[i * N + j], want, 1e-12, 1e-12, "dgemm");
            MG_ASSERT_CLOSE(cf[i * N + j], want, 1e-5, 1e-5, "sgemm");
        }
    /* lower triangle of A A^T */
    mg_ssyrk_checked("test", "A A^T", CblasNoTrans, M, K, 1.0f, af, K, 0.0f, gf, M);
    double gd[K * K];
    mg_dsyrk_checked("test", "A^T A", CblasTrans, K, M, 1.0, a, K, 0.0, gd, K);
    for (int i = 0; i < M; i++)
        for (int j = 0; j <= i; j++) {
            double want = 0;
            for (int k = 0; k < K; k++)
                want += a[i * K + k] * a[j * K + k];
            MG_ASSERT_CLOSE(gf[i * M + j], want, 1e-5, 1e-5, "ssyrk");
        }
    for (int i = 0; i < K; i++)
        for (int j = 0; j <= i; j++) {
            double want = 0;
            for (int r = 0; r < M; r++)
                want += a[r * K + i] * a[r * K + j];
            MG_ASSERT_CLOSE(gd[i * K + j], want, 1e-12, 1e-12, "dsyrk");
        }
    /* B S with S symmetric (only its lower triangle is read): B = the first M x N of c */
    memcpy(bs, c, sizeof bs);
    double out[M * N];
    mg_dsymm_right_lower_checked("test", "B S", M, N, 1.0, s, N, bs, N, 0.0, out, N);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double want = 0;
            for (int k = 0; k < N; k++)
                want += bs[i * N + k] * s[k * N + j];
            MG_ASSERT_CLOSE(out[i * N + j], want, 1e-12, 1e-12, "dsymm");
        }
    MG_EXPECT_FATAL(mg_dgemm_checked("FID", "M = T A^T", CblasNoTrans, CblasTrans, M, N, K, 1.0, a, K - 1, b, K, 0.0,
                                     c, N),
                    "dgemm M = T A^T");
    MG_EXPECT_FATAL(mg_ssyrk_checked("KID", "Gram", CblasNoTrans, M, K, 1.0f, af, K, 0.0f, gf, M - 1), "ldc=2");
    MG_EXPECT_FATAL(mg_dsymm_right_lower_checked("FID", "T = A S2", M, N, 1.0, s, N - 1, bs, N, 0.0, out, N),
                    "dsymm T = A S2");
}

int main(int argc, char **argv)
{
    mg_dist_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fid_closed_form_2d),
        cmocka_unit_test(test_fid_closed_form_64d),
        cmocka_unit_test(test_fid_self_is_zero),
        cmocka_unit_test(test_fid_needs_more_samples_than_dims),
        cmocka_unit_test(test_inception_score),
        cmocka_unit_test(test_split_assignment),
        cmocka_unit_test(test_kid),
        cmocka_unit_test(test_mode_counting),
        cmocka_unit_test(test_distributed_equals_serial),
        cmocka_unit_test(test_per_class_fid),
        cmocka_unit_test(test_hist_coverage),
        cmocka_unit_test(test_blas_checked),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    mg_dist_finalize();
    return failed ? 1 : 0;
}
