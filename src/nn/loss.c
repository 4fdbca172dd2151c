/* GAN losses, binary and softmax cross-entropy (see mg_loss.h).
 *
 * Every GAN loss is a mean of one elementwise term of D's raw output x, so each is
 * written once as a (value, derivative) pair and the three public functions only pick
 * the term for the loss kind. Terms are evaluated in double with the numerically stable
 * forms (softplus through log1p(exp(-|x|))), and NaN is passed through on purpose:
 * relu and its step are written so that a NaN input stays NaN instead of comparing
 * false and turning into 0. */
#include "mg_loss.h"

#include <math.h>

#include "mg_error.h"

const char *const mg_gan_loss_names[MG_GAN_LOSS_COUNT] = {"minimax", "non_saturating", "wasserstein",
                                                              "hinge", "least_squares"};

const char *mg_gan_loss_name(mg_gan_loss k)
{
    return (unsigned)k < MG_GAN_LOSS_COUNT ? mg_gan_loss_names[k] : "unknown";
}

/* relu(v) = max(v, 0), NaN kept (v <= 0 is false for NaN). */
static double relu_keep_nan(double v) { return v <= 0.0 ? 0.0 : v; }
/* relu'(v) = [v > 0], 0 at the kink v = 0, NaN kept. */
static double relu_grad_keep_nan(double v) { return v > 0.0 ? 1.0 : v <= 0.0 ? 0.0 : v; }
/* The derivative c of a linear term c·x, made NaN where x is NaN. */
static double const_grad_keep_nan(double c, double x) { return isnan(x) ? x : c; }

/* sigmoid(z) = 1 / (1 + exp(-z)), without overflow for either sign of z. */
static double sigmoid(double z)
{
    if (z >= 0.0)
        return 1.0 / (1.0 + exp(-z));
    double e = exp(z); /* also the NaN path */
    return e / (1.0 + e);
}

/* Binary cross-entropy on a logit: l = max(z,0) - z t + log1p(exp(-|z|)), dl/dz = sigmoid(z) - t. */
static double bce_term(double z, double t, double *dl_dz)
{
    *dl_dz = sigmoid(z) - t;
    return relu_keep_nan(z) - z * t + log1p(exp(-fabs(z)));
}

float mg_bce_logits(const float *z, float target, int n, float *dz)
{
    MG_CHECK(n > 0, "binary cross-entropy", NULL, "batch of %d samples", n);
    double sum = 0.0, inv_n = 1.0 / n;
    for (int i = 0; i < n; i++) {
        double d;
        sum += bce_term(z[i], target, &d);
        if (dz)
            dz[i] = (float)(d * inv_n);
    }
    return (float)(sum * inv_n);
}

/* Elementwise terms the GAN losses are means of. */
typedef enum {
    TERM_BCE_ONE,      /* BCE(x, 1) = softplus(-x)       d = sigmoid(x) - 1 */
    TERM_BCE_ZERO,     /* BCE(x, 0) = softplus(x)        d = sigmoid(x) */
    TERM_NEG_BCE_ZERO, /* -BCE(x, 0) = log(1-sigmoid(x)) d = -sigmoid(x) */
    TERM_IDENTITY,     /* x                              d = 1 */
    TERM_NEGATE,       /* -x                             d = -1 */
    TERM_HINGE_REAL,   /* relu(1 - x)                    d = -[1 - x > 0] */
    TERM_HINGE_FAKE,   /* relu(1 + x)                    d = [1 + x > 0] */
    TERM_HALF_SQ_ONE,  /* (x - 1)² / 2                   d = x - 1 */
    TERM_HALF_SQ_ZERO  /* x² / 2                         d = x */
} loss_term;

static double term_value(loss_term term, double x, double *d)
{
    switch (term) {
    case TERM_BCE_ONE: return bce_term(x, 1.0, d);
    case TERM_BCE_ZERO: return bce_term(x, 0.0, d);
    case TERM_NEG_BCE_ZERO: {
        double v = bce_term(x, 0.0, d);
        *d = -*d;
        return -v;
    }
    case TERM_IDENTITY: *d = const_grad_keep_nan(1.0, x); return x;
    case TERM_NEGATE: *d = const_grad_keep_nan(-1.0, x); return -x;
    case TERM_HINGE_REAL: *d = -relu_grad_keep_nan(1.0 - x); return relu_keep_nan(1.0 - x);
    case TERM_HINGE_FAKE: *d = relu_grad_keep_nan(1.0 + x); return relu_keep_nan(1.0 + x);
    case TERM_HALF_SQ_ONE: *d = x - 1.0; return 0.5 * (x - 1.0) * (x - 1.0);
    case TERM_HALF_SQ_ZERO: *d = x; return 0.5 * x * x;
    }
    MG_FAIL("loss", NULL, "unknown loss term %d", (int)term);
}

/* mean over i of term(x_i); grad_i = term'(x_i) / n when grad is not NULL. */
static float mean_term(loss_term term, const float *x, int n, float *grad, const char *what)
{
    MG_CHECK(n > 0, what, NULL, "batch of %d samples", n);
    double sum = 0.0, inv_n = 1.0 / n;
    for (int i = 0; i < n; i++) {
        double d;
        sum += term_value(term, x[i], &d);
        if (grad)
            grad[i] = (float)(d * inv_n);
    }
    return (float)(sum * inv_n);
}

static void check_kind(mg_gan_loss k, const char *what)
{
    MG_CHECK((unsigned)k < MG_GAN_LOSS_COUNT, what, "minimax, non_saturating, wasserstein, hinge, least_squares",
             "unknown GAN loss kind %d", (int)k);
}

float mg_d_loss_real(mg_gan_loss k, const float *d_out, int n, float *grad)
{
    static const loss_term terms[MG_GAN_LOSS_COUNT] = {
        [MG_LOSS_MINIMAX] = TERM_BCE_ONE,     [MG_LOSS_NONSATURATING] = TERM_BCE_ONE,
        [MG_LOSS_WASSERSTEIN] = TERM_NEGATE,  [MG_LOSS_HINGE] = TERM_HINGE_REAL,
        [MG_LOSS_LEAST_SQUARES] = TERM_HALF_SQ_ONE};
    check_kind(k, "D loss (real)");
    return mean_term(terms[k], d_out, n, grad, "D loss (real)");
}

float mg_d_loss_fake(mg_gan_loss k, const float *d_out, int n, float *grad)
{
    static const loss_term terms[MG_GAN_LOSS_COUNT] = {
        [MG_LOSS_MINIMAX] = TERM_BCE_ZERO,     [MG_LOSS_NONSATURATING] = TERM_BCE_ZERO,
        [MG_LOSS_WASSERSTEIN] = TERM_IDENTITY, [MG_LOSS_HINGE] = TERM_HINGE_FAKE,
        [MG_LOSS_LEAST_SQUARES] = TERM_HALF_SQ_ZERO};
    check_kind(k, "D loss (fake)");
    return mean_term(terms[k], d_out, n, grad, "D loss (fake)");
}

float mg_g_loss(mg_gan_loss k, const float *d_out, int n, float *grad)
{
    static const loss_term terms[MG_GAN_LOSS_COUNT] = {
        [MG_LOSS_MINIMAX] = TERM_NEG_BCE_ZERO, [MG_LOSS_NONSATURATING] = TERM_BCE_ONE,
        [MG_LOSS_WASSERSTEIN] = TERM_NEGATE,   [MG_LOSS_HINGE] = TERM_NEGATE,
        [MG_LOSS_LEAST_SQUARES] = TERM_HALF_SQ_ONE};
    check_kind(k, "G loss");
    return mean_term(terms[k], d_out, n, grad, "G loss");
}

/* Per row i, with m = max_j z_ij and s = Σ_j exp(z_ij - m):
 *   p_ij = exp(z_ij - m) / s,   l_i = log s - (z_iy - m),   dl/dz_ij = (p_ij - [j = y]) / n. */
float mg_softmax_xent(const float *logits, const int *labels, int n, int k, float *dlogits, float *probs)
{
    MG_CHECK(n > 0 && k > 0, "softmax cross-entropy", NULL, "shape (%d, %d)", n, k);
    double total = 0.0, inv_n = 1.0 / n;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * k;
        int y = labels[i];
        MG_CHECK(y >= 0 && y < k, "softmax cross-entropy", "labels must be in [0, classes)",
                 "sample %d has label %d, not in [0, %d)", i, y, k);
        double max = z[0];
        for (int j = 1; j < k; j++)
            if (z[j] > max)
                max = z[j];
        double sum = 0.0;
        for (int j = 0; j < k; j++)
            sum += exp(z[j] - max);
        total += log(sum) - (z[y] - max);
        for (int j = 0; j < k; j++) {
            double p = exp(z[j] - max) / sum;
            if (probs)
                probs[(size_t)i * k + j] = (float)p;
            if (dlogits)
                dlogits[(size_t)i * k + j] = (float)((p - (j == y ? 1.0 : 0.0)) * inv_n);
        }
    }
    return (float)(total * inv_n);
}

/* mean_i sigmoid(z_i) */
float mg_mean_sigmoid(const float *z, int n)
{
    MG_CHECK(n > 0, "mean sigmoid", NULL, "batch of %d samples", n);
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += sigmoid(z[i]);
    return (float)(sum / n);
}

void mg_softmax_rows(const float *logits, int64_t n, int k, float *probs)
{
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * (size_t)k;
        float *p = probs + (size_t)i * (size_t)k;
        /* p_y = exp(z_y - max z) / sum_j exp(z_j - max z) */
        double top = z[0], sum = 0;
        for (int y = 1; y < k; y++)
            top = z[y] > top ? z[y] : top;
        for (int y = 0; y < k; y++)
            sum += exp((double)z[y] - top);
        for (int y = 0; y < k; y++)
            p[y] = (float)(exp((double)z[y] - top) / sum);
    }
}
