/* Checked BLAS products (mg_blas.h): the one path through which mpigan calls CBLAS. */
#include "mg_blas.h"

#include "mg_error.h"

/* row-major: op(X) is r x c, stored r x c (ld >= c) or, transposed, c x r (ld >= r) */
static int stored_cols(enum CBLAS_TRANSPOSE trans, int rows, int cols) { return trans == CblasNoTrans ? cols : rows; }

static void check_gemm(const char *who, const char *what, const char *routine, enum CBLAS_TRANSPOSE trans_a,
                       enum CBLAS_TRANSPOSE trans_b, int m, int n, int k, int lda, int ldb, int ldc,
                       const void *a, const void *b, const void *c)
{
    const int a_cols = stored_cols(trans_a, m, k), b_cols = stored_cols(trans_b, k, n);
    if (m < 1 || n < 1 || k < 1 || lda < a_cols || ldb < b_cols || ldc < n || !a || !b || !c)
        MG_FAIL(who, "this is a bug in the caller's shape bookkeeping",
                "%s %s: m=%d n=%d k=%d with lda=%d (needs >= %d), ldb=%d (needs >= %d), ldc=%d (needs >= %d)",
                routine, what, m, n, k, lda, a_cols, ldb, b_cols, ldc, n);
}

void mg_sgemm_checked(const char *who, const char *what, enum CBLAS_TRANSPOSE trans_a,
                      enum CBLAS_TRANSPOSE trans_b, int m, int n, int k, float alpha, const float *a,
                      int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    check_gemm(who, what, "sgemm", trans_a, trans_b, m, n, k, lda, ldb, ldc, a, b, c);
    cblas_sgemm(CblasRowMajor, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void mg_dgemm_checked(const char *who, const char *what, enum CBLAS_TRANSPOSE trans_a,
                      enum CBLAS_TRANSPOSE trans_b, int m, int n, int k, double alpha, const double *a,
                      int lda, const double *b, int ldb, double beta, double *c, int ldc)
{
    check_gemm(who, what, "dgemm", trans_a, trans_b, m, n, k, lda, ldb, ldc, a, b, c);
    cblas_dgemm(CblasRowMajor, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void mg_sgemv_checked(const char *who, const char *what, enum CBLAS_TRANSPOSE trans, int m, int n, float alpha,
                      const float *a, int lda, const float *x, float beta, float *y)
{
    if (m < 1 || n < 1 || lda < n || !a || !x || !y)
        MG_FAIL(who, "this is a bug in the caller's shape bookkeeping", "sgemv %s: m=%d n=%d with lda=%d (needs >= %d)",
                what, m, n, lda, n);
    cblas_sgemv(CblasRowMajor, trans, m, n, alpha, a, lda, x, 1, beta, y, 1);
}

static void check_syrk(const char *who, const char *what, const char *routine, enum CBLAS_TRANSPOSE trans, int n,
                       int k, int lda, int ldc, const void *a, const void *c)
{
    const int a_cols = stored_cols(trans, n, k);
    if (n < 1 || k < 1 || lda < a_cols || ldc < n || !a || !c)
        MG_FAIL(who, "this is a bug in the caller's shape bookkeeping",
                "%s %s: n=%d k=%d with lda=%d (needs >= %d), ldc=%d (needs >= %d)", routine, what, n, k, lda,
                a_cols, ldc, n);
}

void mg_ssyrk_checked(const char *who, const char *what, enum CBLAS_TRANSPOSE trans, int n, int k, float alpha,
                      const float *a, int lda, float beta, float *c, int ldc)
{
    check_syrk(who, what, "ssyrk", trans, n, k, lda, ldc, a, c);
    cblas_ssyrk(CblasRowMajor, CblasLower, trans, n, k, alpha, a, lda, beta, c, ldc);
}

void mg_dsyrk_checked(const char *who, const char *what, enum CBLAS_TRANSPOSE trans, int n, int k, double alpha,
                      const double *a, int lda, double beta, double *c, int ldc)
{
    check_syrk(who, what, "dsyrk", trans, n, k, lda, ldc, a, c);
    cblas_dsyrk(CblasRowMajor, CblasLower, trans, n, k, alpha, a, lda, beta, c, ldc);
}

void mg_dsymm_right_lower_checked(const char *who, const char *what, int m, int n, double alpha, const double *s,
                                  int lds, const double *b, int ldb, double beta, double *c, int ldc)
{
    if (m < 1 || n < 1 || lds < n || ldb < n || ldc < n || !s || !b || !c)
        MG_FAIL(who, "this is a bug in the caller's shape bookkeeping",
                "dsymm %s: m=%d n=%d with lds=%d, ldb=%d, ldc=%d (each needs >= %d)", what, m, n, lds, ldb, ldc, n);
    cblas_dsymm(CblasRowMajor, CblasRight, CblasLower, m, n, alpha, s, lds, b, ldb, beta, c, ldc);
}
